# Copyright: kea-db developers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
"""keadb.kea_db.kea_db_preflight: will Kea start and serve on its databases?"""

from __future__ import annotations

DOCUMENTATION = r"""
module: kea_db_preflight
short_description: Check that Kea will start and serve on its databases
description:
  - kea-db C(preflight) over the given Kea configuration files, read-only, always. For
    every MySQL and PostgreSQL entry, the entry as the release reads it, the login as Kea
    logs in, the schema verdict, the privileges Kea needs and the TLS of the session; and
    the rules several files break together (a shared lease database, HA peers).
  - A failed check fails the task, with every failed check in the message; warnings do not.
    The findings are returned as data either way.
version_added: 0.1.0
extends_documentation_fragment:
  - keadb.kea_db.connection
options:
  config:
    description: Kea configuration files; every SQL entry of each is checked.
    type: list
    elements: path
    required: true
  wait:
    description: Seconds to wait for a database that is still starting.
    type: float
  require_tls:
    description: Fail when Kea's session could be cleartext.
    type: bool
    default: false
  require_verify:
    description: Fail unless the server's chain verifies and its name matches.
    type: bool
    default: false
  warn_days:
    description: Warn when the server's certificate expires within this many days.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - kea-db developers
"""

EXAMPLES = r"""
- name: Kea 3.0 will start on these databases
  keadb.kea_db.kea_db_preflight:
    config:
      - /etc/kea/kea-dhcp4.conf
      - /etc/kea/kea-dhcp6.conf
    kea_version: "3.0"
"""

RETURN = r"""
verdict:
  description: C(pass), C(warn) or C(fail).
  returned: always
  type: str
exit_code:
  description: kea-db preflight's exit code (0 when nothing failed).
  returned: always
  type: int
findings:
  description: Every check that failed or warned, and every fleet finding.
  returned: always
  type: list
  elements: dict
  contains:
    file:
      description: The configuration file (or C(fleet)).
      type: str
    entry:
      description: The entry path (C(Dhcp4.lease-database)) or the fleet rule.
      type: str
    check:
      description: config, login, node, schema, privileges, tls, or fleet.
      type: str
    status:
      description: C(fail) or C(warn).
      type: str
    detail:
      description: What is wrong and what to do.
      type: str
report:
  description: kea-db preflight's JSON document (C(entries), C(fleet), C(counts)...).
  returned: always
  type: dict
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.keadb.kea_db.plugins.module_utils.kea_db import (  # noqa: E402
    CONNECTION_ARGS,
    api,
    fail_on_error,
    require_kea_db,
    settings,
)


def findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks that failed or warned, and the fleet findings, as flat dicts."""
    out = [{"file": entry["file"] or "command line", "entry": entry["path"],
            "check": check["check"], "status": check["status"], "detail": check["detail"]}
           for entry in doc["entries"] for check in entry["checks"]
           if check["status"] in ("fail", "warn")]
    out += [{"file": "fleet", "entry": f["rule"], "check": "fleet", "status": f["status"],
             "detail": f["detail"]} for f in doc["fleet"]]
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_ARGS,
            "config": {"type": "list", "elements": "path", "required": True},
            "wait": {"type": "float"},
            "require_tls": {"type": "bool", "default": False},
            "require_verify": {"type": "bool", "default": False},
            "warn_days": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    require_kea_db(module)
    try:
        result = api.preflight(settings(module), wait=module.params["wait"],
                               require_tls=module.params["require_tls"],
                               require_verify=module.params["require_verify"],
                               warn_days=module.params["warn_days"])
    except api.KeaDbError as err:
        fail_on_error(module, err)
        return
    doc = result.to_json()
    found = findings(doc)
    for line in result.warnings:
        module.warn(line)
    if not result.ok:
        failed = [f"{f['file']}: {f['entry']}: {f['check']}: {f['detail']}"
                  for f in found if f["status"] == "fail"]
        module.fail_json(msg="kea-db preflight failed: " + "; ".join(failed),
                         verdict=result.verdict, exit_code=int(result.exit_code),
                         findings=found, report=doc)
    module.exit_json(changed=False, verdict=result.verdict, exit_code=int(result.exit_code),
                     findings=found, report=doc)


if __name__ == "__main__":
    main()
