# Copyright: kea-db developers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
"""keadb.kea_db.kea_db_info: facts about Kea's databases."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kea_db_info
short_description: Facts about Kea's databases (schema, verdicts, node role, TLS)
description:
  - Read-only. For each SQL backend, the schema version found, kea-db C(check-version)'s
    verdict for each of O(releases), the server's role (primary, standby, replica, Galera
    node) and, with O(tls=true), kea-db C(test-tls)'s verdict.
  - A verdict is a fact, not a failure (an unreachable server is C(UNREACHABLE)); only
    settings that cannot work (a bad option, an unreadable file) fail the task.
version_added: 0.1.0
extends_documentation_fragment:
  - keadb.kea_db.connection
options:
  releases:
    description:
      - Kea releases to judge the schema against. Default, O(kea_version) (or the
        installed Kea).
    type: list
    elements: str
  tls:
    description:
      - Also run kea-db C(test-tls) for each backend, as the last of O(releases) would open
        the session.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - kea-db developers
"""

EXAMPLES = r"""
- name: Which Kea releases does the lease database suit?
  keadb.kea_db.kea_db_info:
    config: /etc/kea/kea-dhcp4.conf
    backend: lease
    releases: ["2.6", "3.0"]
    tls: true
  register: kea_db

- ansible.builtin.debug:
    msg: "{{ kea_db.backends[0].verdicts['3.0'] }}"
"""

RETURN = r"""
backends:
  description: One item per SQL backend.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The entry (C(Dhcp4.lease-database)), or C(command line).
      type: str
    type:
      description: mysql or postgresql.
      type: str
    host:
      description: The server host.
      type: str
    port:
      description: The server port.
      type: int
    name:
      description: The database name.
      type: str
    schema:
      description: The schema version found (null when empty or unreadable).
      type: str
    verdicts:
      description: "Release: verdict (MATCH, BEHIND, AHEAD, EMPTY, FOREIGN, UNREACHABLE, DENIED)."
      type: dict
    node:
      description: The server's role, as kea-db reads it (role, and what tells it).
      type: dict
    tls:
      description:
        - With O(tls=true), test-tls's verdict, reason, protocol and cipher, for the last
          of O(releases) (or O(kea_version), or the installed Kea).
      type: dict
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


def gather(module: Any) -> list[dict[str, Any]]:
    base = settings(module)
    releases = module.params["releases"] or [base.kea_version]
    backends: list[dict[str, Any]] = []
    for release in releases:
        checked = api.check_version(dataclasses.replace(base, kea_version=release))
        key = release or "installed"
        for i, doc in enumerate(checked.to_json()["results"]):
            if len(backends) <= i:
                backends.append({"path": doc.get("path", "command line"), "type": doc["type"],
                                 "host": doc["host"], "port": doc["port"],
                                 "name": doc["name"], "schema": doc["found"],
                                 "verdicts": {}, "node": doc["node"], "tls": None})
            backends[i]["verdicts"][key] = doc["verdict"]
            backends[i]["schema"] = backends[i]["schema"] or doc["found"]
    if module.params["tls"]:  # as the last release asked for would open the session
        release = releases[-1]
        tls = api.test_tls(dataclasses.replace(base, kea_version=release)).to_json()
        for item, doc in zip(backends, tls["results"], strict=False):
            item["tls"] = {k: doc[k] for k in ("verdict", "reason", "reason_code",
                                                "protocol", "cipher", "exit_code")}
            item["tls"]["kea_version"] = tls["kea_version"]
    return backends


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_ARGS,
            "releases": {"type": "list", "elements": "str"},
            "tls": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    require_kea_db(module)
    try:
        backends = gather(module)
    except api.KeaDbError as err:
        fail_on_error(module, err)
        return
    module.exit_json(changed=False, backends=backends)


if __name__ == "__main__":
    main()
