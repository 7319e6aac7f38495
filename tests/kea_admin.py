"""Run Debian's ``kea-admin`` (Kea 2.2) against a throw-away database, for comparisons.

kea-db's own revisions must build what ``kea-admin db-init`` builds; the tests initialise
one database each way and compare them. Kea's scripts are only ever run here, at test
time: nothing they produce is kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from servers import ci_requires_servers

KEA_ADMIN = shutil.which("kea-admin") or "/usr/sbin/kea-admin"

# kea-admin's backend argument for each Kea database type.
_ADMIN_BACKEND = {"mysql": "mysql", "postgresql": "pgsql"}


class KeaAdminError(RuntimeError):
    """kea-admin exited non-zero; the message carries its output."""


def require_kea_admin() -> str:
    """The kea-admin path; skip the test (fail under CI) when it is not installed."""
    if os.path.exists(KEA_ADMIN) and os.access(KEA_ADMIN, os.X_OK):
        return KEA_ADMIN
    message = f"kea-admin not found at {KEA_ADMIN} (Debian package kea-admin, Kea 2.2)"
    if ci_requires_servers(os.environ):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def kea_admin_init(
    backend_type: str, host: str, port: int, user: str, password: str, name: str
) -> subprocess.CompletedProcess[str]:
    """``kea-admin db-init`` on an empty database; returns the finished process.

    The password travels in the environment (``KEA_ADMIN_DB_PASSWORD``, and ``PGPASSWORD``
    which psql reads), not in kea-admin's argv. The port is given twice on purpose:
    kea-admin 2.2 drops ``-P`` from the mysql command that runs the create script (fixed in
    2.7.2), but appends ``-x`` words to every client command.

    Raises:
        KeaAdminError: kea-admin exited non-zero.
    """
    program = require_kea_admin()
    argv = [
        program,
        "db-init",
        _ADMIN_BACKEND[backend_type],
        "-h",
        host,
        "-P",
        str(port),
        "-u",
        user,
        "-n",
        name,
        "-x",
        f"--port={port}",
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
        "KEA_ADMIN_DB_PASSWORD": password,
        "PGPASSWORD": password,
    }
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise KeaAdminError(
            f"kea-admin db-init {_ADMIN_BACKEND[backend_type]} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done
