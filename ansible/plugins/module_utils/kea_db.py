# Copyright: kea-db developers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
"""What the keadb.kea_db modules share: the connection options and kea-db's Settings.

The modules run on the Kea host, in a Python that has kea-db installed (``pip install
kea-db``; point ``ansible_python_interpreter`` at it). Passwords come only from ``password``
(a ``no_log`` option) or ``password_file``, or from the Kea configuration file; kea-db
replaces every password it was given with ``***`` in what it returns, and Ansible hides
``no_log`` values in every output.
"""

from __future__ import annotations

import traceback
from typing import Any

try:
    from keadb_cli import api

    IMPORT_ERROR = None
except ImportError:  # reported by require_kea_db(), as Ansible modules do
    api = None
    IMPORT_ERROR = traceback.format_exc()

# The options every module takes, named as kea-db's command-line options (Kea's keywords).
CONNECTION_ARGS: dict[str, dict[str, Any]] = {
    "config": {"type": "path"},
    "backend": {"type": "str"},
    "db_type": {"type": "str", "choices": ["mysql", "postgresql"], "aliases": ["type"]},
    "host": {"type": "str"},
    "port": {"type": "int"},
    "user": {"type": "str"},
    "name": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "password_file": {"type": "path", "no_log": False},
    "kea_version": {"type": "str"},
    "expect": {"type": "str"},
    "connect_timeout": {"type": "int"},
    "read_timeout": {"type": "int"},
    "write_timeout": {"type": "int"},
    "tcp_user_timeout": {"type": "int"},
    "trust_anchor": {"type": "path"},
    "cert_file": {"type": "path"},
    "key_file": {"type": "path", "no_log": False},
    "cipher_list": {"type": "str"},
    "ssl_mode": {"type": "str"},
    "readonly": {"type": "bool"},
    "statement_timeout": {"type": "float"},
    "server_public_key": {"type": "path", "no_log": False},
}


def require_kea_db(module: Any) -> None:
    """Fail the task when kea-db cannot be imported by the module's Python."""
    if api is None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("kea-db (the keadb_cli package)",
                                                  url="https://pypi.org/project/kea-db/"),
                         exception=IMPORT_ERROR)


def settings(module: Any, **override: Any) -> Any:
    """kea-db's Settings from the module's connection options (None: not given)."""
    params = module.params
    values = {key: params.get(key) for key in CONNECTION_ARGS if key != "db_type"}
    values["type"] = params.get("db_type")
    if isinstance(values.get("config"), list):
        values["config"] = tuple(values["config"])
    values.update(override)
    return api.Settings(**values)


def fail_on_error(module: Any, err: Exception) -> None:
    """A kea-db settings error (bad option, unreadable file): one message, its exit code."""
    module.fail_json(msg=str(err), exit_code=int(getattr(err, "exit_code", 1)),
                     reason_code=getattr(err, "reason_code", "") or None)
