"""Run Debian's ``kea-admin`` against a throw-away database, for comparisons.

kea-db's own revisions must build what ``kea-admin db-init`` builds; the tests initialise
one database each way and compare them. Kea's scripts are only ever run here, at test
time: nothing they produce is kept.

Releases: ``2.2.0`` is the host's installed Debian 12 package (``/usr/sbin/kea-admin``);
``2.6.3`` (Debian trixie) and ``3.0.4`` (Debian sid) are unpacked, never installed, by
``tests/tools/kea_admin_pkgs.sh`` into ``/var/cache/kea-db-tests/kea-admin/<release>``
(``KEADB_KEA_ADMIN_CACHE`` moves it), with kea-admin's hard-coded prefix pointed at the copy.
:func:`require_kea_admin` runs that script when the release is not cached yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from servers import ci_requires_servers

KEA_ADMIN = shutil.which("kea-admin") or "/usr/sbin/kea-admin"

# The release of the host's own kea-admin (Debian 12's package).
INSTALLED = "2.2.0"
# Releases tests/tools/kea_admin_pkgs.sh fetches from Debian (trixie, sid).
UNPACKED = ("2.6.3", "3.0.4")
RELEASES = (INSTALLED, *UNPACKED)

_FETCH_SCRIPT = Path(__file__).resolve().parent / "tools" / "kea_admin_pkgs.sh"
# Release -> its kea-admin, once the fetch script said so in this process.
_FETCHED: dict[str, str] = {}

# kea-admin's backend argument for each Kea database type.
_ADMIN_BACKEND = {"mysql": "mysql", "postgresql": "pgsql"}


class KeaAdminError(RuntimeError):
    """kea-admin exited non-zero; the message carries its output."""


def cache_dir() -> Path:
    """Where tests/tools/kea_admin_pkgs.sh unpacks the releases (one directory each)."""
    return Path(os.environ.get("KEADB_KEA_ADMIN_CACHE") or "/var/cache/kea-db-tests/kea-admin")


def _unavailable(message: str) -> None:
    if ci_requires_servers(os.environ):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_kea_admin(release: str = INSTALLED) -> str:
    """The path of kea-admin ``release``; skip the test (fail under CI) when it is missing.

    An unpacked release comes from tests/tools/kea_admin_pkgs.sh, run once per process: it
    returns at once when its cache is complete and current, and fetches the package (a few
    seconds, needs the Debian mirror and a writable cache directory) otherwise.
    """
    if release == INSTALLED:
        if os.path.exists(KEA_ADMIN) and os.access(KEA_ADMIN, os.X_OK):
            return KEA_ADMIN
        _unavailable(f"kea-admin not found at {KEA_ADMIN} (Debian package kea-admin, Kea 2.2)")
    if release not in UNPACKED:
        raise ValueError(f"no kea-admin {release} for the tests (known: {', '.join(RELEASES)})")
    if release in _FETCHED:
        return _FETCHED[release]
    done = subprocess.run(
        ["bash", str(_FETCH_SCRIPT), release],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "KEADB_KEA_ADMIN_CACHE": str(cache_dir())},
    )
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or not os.access(words[1], os.X_OK):
        _unavailable(
            f"kea-admin {release}: {_FETCH_SCRIPT.name} failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}"
        )
    _FETCHED[release] = words[1]
    return words[1]


def kea_examples(release: str = INSTALLED) -> Path:
    """The directory of Kea's example configurations of ``release`` (Debian's kea-doc:
    installed for 2.2.0, unpacked beside kea-admin for the others); skip (fail under CI)
    when it is missing."""
    if release == INSTALLED:
        folder = Path("/usr/share/doc/kea/examples")
    else:
        folder = Path(require_kea_admin(release)).parents[1] / "share" / "doc" / "kea" / "examples"
    if not (folder / "kea4").is_dir():
        _unavailable(f"Kea {release}'s example files are not at {folder} (Debian's kea-doc)")
    return folder


def _run(
    command: str,
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    release: str,
    extra: tuple[str, ...] = (),
    timeout: float = 300,
    program: str | None = None,
) -> subprocess.CompletedProcess[str]:
    program = program or require_kea_admin(release)
    argv = [
        program,
        command,
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
        *extra,
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
        "KEA_ADMIN_DB_PASSWORD": password,
        "PGPASSWORD": password,
        "PGPORT": str(port),
    }
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise KeaAdminError(
            f"kea-admin {release} {command} {_ADMIN_BACKEND[backend_type]} exited "
            f"{done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def kea_admin_init(
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    *,
    release: str = INSTALLED,
) -> subprocess.CompletedProcess[str]:
    """``kea-admin db-init`` of Kea ``release`` on an empty database; returns the finished
    process.

    The password travels in the environment (``KEA_ADMIN_DB_PASSWORD``, and ``PGPASSWORD``
    which psql reads), not in kea-admin's argv. The port is given thrice on purpose:
    kea-admin before 2.7.2 drops ``-P`` from some client commands, but appends ``-x`` words
    to every one; ``PGPORT`` covers psql as well.

    Raises:
        KeaAdminError: kea-admin exited non-zero.
    """
    return _run("db-init", backend_type, host, port, user, password, name, release)


def kea_admin_upgrade(
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    *,
    release: str = INSTALLED,
) -> subprocess.CompletedProcess[str]:
    """``kea-admin db-upgrade`` of Kea ``release``: every upgrade script of that release runs
    in turn (each skips itself unless the database is at its starting version).

    Raises:
        KeaAdminError: kea-admin exited non-zero.
    """
    return _run("db-upgrade", backend_type, host, port, user, password, name, release)


def kea_admin_stats_recount(
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    *,
    release: str = INSTALLED,
) -> subprocess.CompletedProcess[str]:
    """``kea-admin stats-recount`` of Kea ``release``: the lease statistics tables rewritten
    from the lease tables.

    Raises:
        KeaAdminError: kea-admin exited non-zero.
    """
    return _run("stats-recount", backend_type, host, port, user, password, name, release)


def kea_admin_lease_dump(
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    family: int,
    output: str,
    *,
    release: str = INSTALLED,
) -> bytes:
    """``kea-admin lease-dump -4|-6 -o output`` of Kea ``release``; returns the file's bytes.

    ``output`` must not exist (kea-admin asks before overwriting, and without a terminal
    the answer is no); on MySQL neither may ``/tmp/<its name>.tmp``.

    Raises:
        KeaAdminError: kea-admin exited non-zero.
    """
    _run("lease-dump", backend_type, host, port, user, password, name, release,
         (f"-{family}", "-o", output))
    return Path(output).read_bytes()


def kea_admin_lease_upload(
    backend_type: str,
    host: str,
    port: int,
    user: str,
    password: str,
    name: str,
    family: int,
    input_file: str,
    *,
    release: str = INSTALLED,
    timeout: float = 300,
    program: str | None = None,
) -> None:
    """``kea-admin lease-upload -4|-6 -i input_file -y`` of Kea ``release`` (it runs kea-lfc
    on a copy of the file in ``/tmp``, then one ``leaseNUpload`` call per row in one
    transaction). ``program``: another copy of that release's kea-admin to run (the
    unpacked releases have no kea-lfc beside them).

    Raises:
        KeaAdminError: kea-admin exited non-zero.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
    """
    _run("lease-upload", backend_type, host, port, user, password, name, release,
         (f"-{family}", "-i", input_file, "-y"), timeout=timeout, program=program)


# The test chroot holding Kea 3.0.4's kea-lfc (tests/tools/sid_chroot.sh sid-kea).
SID_KEA_ROOT = Path(os.environ.get("KEADB_SID_KEA_CHROOT") or "/var/cache/kea-db-tests/sid-kea")


def kea_admin_with_lfc(folder: Path, release: str = "3.0.4",
                       root: Path = SID_KEA_ROOT) -> str | None:
    """A private copy of kea-admin ``release`` (unpacked) in ``folder`` whose kea-lfc is
    ``root``'s (Kea 3.0.4 in a test chroot, started through that root's dynamic loader): the
    unpacked releases have none, and lease-upload runs it first. None without that root."""
    lfc, loader = root / "usr/sbin/kea-lfc", root / "lib64/ld-linux-x86-64.so.2"
    if not (lfc.exists() and loader.exists()):
        return None
    original = Path(require_kea_admin(release))
    prefix = folder / "kea-admin" / "usr"
    (prefix / "sbin").mkdir(parents=True)
    (prefix / "share").symlink_to(original.parents[1] / "share")
    text = original.read_text()
    lines = [f'prefix="{prefix}"' if line.startswith("prefix=") else line
             for line in text.splitlines()]
    program = prefix / "sbin" / "kea-admin"
    program.write_text("\n".join(lines) + "\n")
    libraries = f"{root}/usr/lib/x86_64-linux-gnu:{root}/lib/x86_64-linux-gnu"
    wrapper = prefix / "sbin" / "kea-lfc"
    wrapper.write_text(f'#!/bin/sh\nKEA_LOCKFILE_DIR=none exec {loader} --library-path '
                       f'{libraries} {lfc} "$@"\n')
    for path in (program, wrapper):
        path.chmod(0o755)
    return str(program)
