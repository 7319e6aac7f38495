# Copyright: kea-db developers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
"""keadb.kea_db.kea_db_schema: Kea's database schema at a release's version."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kea_db_schema
short_description: Make a Kea database's schema the one a Kea release expects
description:
  - Reads the schema version of each SQL backend as Kea's server does (kea-db
    C(check-version)), then makes it match the release.
  - C(EMPTY) database, the schema is built (kea-db C(init)).
  - C(BEHIND), the schema is upgraded step by step (kea-db C(upgrade)), only with
    O(allow_upgrade=true); otherwise the task fails with the plan.
  - C(AHEAD) (a newer Kea's schema), C(FOREIGN) (not a Kea schema), an unreachable server
    or a refused login fail the task; nothing is changed.
  - Check mode is kea-db's C(--plan), it changes nothing and reports what a run would do.
    With C(--diff), the schema before and after and the upgrade steps are shown.
version_added: 0.1.0
extends_documentation_fragment:
  - keadb.kea_db.connection
options:
  state:
    description: C(present), the schema matches the release.
    type: str
    choices: [present]
    default: present
  allow_upgrade:
    description: Upgrade a C(BEHIND) schema. Back the database up first.
    type: bool
    default: false
  allow_other_sessions:
    description: Upgrade although other sessions (a running Kea) use the database.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another kea-db init or upgrade on the same server.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - kea-db developers
"""

EXAMPLES = r"""
- name: Kea 3.0's schema on the lease database (init when empty, upgrade when behind)
  keadb.kea_db.kea_db_schema:
    config: /etc/kea/kea-dhcp4.conf
    backend: lease
    kea_version: "3.0"
    password_file: /etc/kea/db-password
    allow_upgrade: true

- name: The schema for the installed Kea, by options
  keadb.kea_db.kea_db_schema:
    db_type: postgresql
    host: db1
    user: kea
    name: kea
    password: "{{ vault_kea_db_password }}"
"""

RETURN = r"""
backends:
  description: One item per SQL backend, in the order of the configuration file.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The entry (C(Dhcp4.lease-database)), or C(command line).
      type: str
    verdict:
      description: The state found first (MATCH, EMPTY, BEHIND, AHEAD, FOREIGN, ...).
      type: str
    action:
      description: C(none), C(initialized), C(upgraded), C(would initialize), C(would upgrade).
      type: str
    from:
      description: The schema version found (null when empty).
      type: str
    to:
      description: The schema version the release expects.
      type: str
    plan:
      description: The upgrade steps (revision, schema, title, kea, rewrites).
      type: list
    detail:
      description: One line from kea-db.
      type: str
"""

import dataclasses  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.keadb.kea_db.plugins.module_utils.kea_db import (  # noqa: E402
    CONNECTION_ARGS,
    api,
    fail_on_error,
    require_kea_db,
    settings,
)

REFUSED = ("AHEAD", "FOREIGN", "DENIED", "UNREACHABLE")


def _one(base: Any, result: Any) -> Any:
    """Settings for one backend of a run over a configuration file."""
    if base.config is None or not result.access.path:
        return base
    return dataclasses.replace(base, backend=result.access.path)


def _fail(module: Any, done: list[dict[str, Any]], item: dict[str, Any], detail: str,
          **extra: Any) -> None:
    done.append(item)
    module.fail_json(msg=f"{item['path']}: {detail}", backends=done,
                     changed=any(d["action"] in ("initialized", "upgraded") for d in done),
                     **extra)


def behind(module: Any, one: Any, item: dict[str, Any], done: list[dict[str, Any]],
           found: str | None, expected: str | None, code: int) -> None:
    """BEHIND: the plan (check mode, or no allow_upgrade: fail with it), or the upgrade
    (whose result lists the steps it ran through)."""
    if module.check_mode or not module.params["allow_upgrade"]:
        planned = api.upgrade(one, plan=True)
        doc = planned.to_json()["results"][0]
        item["plan"], item["detail"] = doc["plan"], planned.detail
        if not planned.ok:
            _fail(module, done, item, f"upgrade refused: {planned.detail}",
                  exit_code=int(planned.exit_code), findings=doc["findings"])
        if not module.params["allow_upgrade"]:
            steps = ", ".join(f"{s['revision']} ({s['schema']})" for s in item["plan"])
            _fail(module, done, item,
                  f"BEHIND: schema {found}, Kea wants {expected}; set allow_upgrade: true to "
                  f"upgrade ({len(item['plan'])} step(s): {steps})", exit_code=code)
        item["action"] = "would upgrade"
        return
    result = api.upgrade(one, allow_other_sessions=module.params["allow_other_sessions"],
                         lock_timeout=module.params["lock_timeout"])
    doc = result.to_json()["results"][0]
    item["plan"], item["detail"] = doc["plan"], result.detail
    if not result.ok:
        _fail(module, done, item, f"upgrade failed: {result.detail}",
              exit_code=int(result.exit_code), findings=doc["findings"])
    item["action"] = "upgraded" if result.changed else "none"


def run(module: Any) -> None:
    base = settings(module)
    check = api.check_version(base)
    done: list[dict[str, Any]] = []
    before: list[str] = []
    after: list[str] = []
    for checked in check.results:
        path = checked.access.path or "command line"
        found = str(checked.found) if checked.found else None
        expected = str(checked.expected) if checked.expected else None
        item: dict[str, Any] = {"path": path, "verdict": checked.verdict.value,
                                "action": "none", "from": found, "to": expected, "plan": [],
                                "detail": checked.detail}
        verdict = checked.verdict.value
        before.append(f"{path}: schema {found or 'none'}")
        if verdict in REFUSED:
            _fail(module, done, item, f"{verdict}: {checked.detail}",
                  exit_code=int(checked.verdict.exit_code))
        one = _one(base, checked)
        if verdict == "EMPTY":
            if module.check_mode:
                item["action"] = "would initialize"
            else:
                result = api.init(one, lock_timeout=module.params["lock_timeout"])
                item["detail"] = result.detail
                if not result.ok:
                    _fail(module, done, item, f"init refused: {result.detail}",
                          exit_code=int(result.exit_code))
                item["action"] = "initialized" if result.changed else "none"
        elif verdict == "BEHIND":
            behind(module, one, item, done, found, expected, int(checked.verdict.exit_code))
        lines = [f"{path}: schema {expected if item['action'] != 'none' else found}"]
        lines += [f"  step {s['revision']}: schema {s['schema']} ({s['kea']}) {s['title']}"
                  for s in item["plan"] if item["action"] != "none"]
        after.extend(lines)
        done.append(item)
    changed = any(d["action"] != "none" for d in done)
    diff = {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n",
            "before_header": "schema", "after_header": "schema"}
    for line in check.warnings:
        module.warn(line)
    module.exit_json(changed=changed, backends=done, diff=diff)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_ARGS,
            "state": {"type": "str", "choices": ["present"], "default": "present"},
            "allow_upgrade": {"type": "bool", "default": False},
            "allow_other_sessions": {"type": "bool", "default": False},
            "lock_timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    require_kea_db(module)
    try:
        run(module)
    except api.KeaDbError as err:
        fail_on_error(module, err)


if __name__ == "__main__":
    main()
