"""Real Kea 2.6 and 3.0 (issue 10) on databases that ``kea-db init --kea-version R`` built.

The releases are Debian's: kea-dhcp4 2.6.3 from trixie and 3.0.4 from sid. They need a newer
C library than the host's (Debian 12), so each runs from a ``debootstrap --variant=minbase``
chroot that ``tools/sid_chroot.sh`` builds and caches (``trixie``, ``sid-kea``; the test runs
the script, which returns at once when its cache is complete). A chroot shares the host's
network namespace: kea-dhcp4 in it reaches the throw-away database servers on 127.0.0.1 and
serves the test's veth link, exactly as the host's Kea 2.2 does in ``test_real_kea.py``, whose
machinery (``real_kea.py``) this reuses: the TLS-only servers and certificate-bound users,
the client namespace with perfdhcp (the host's, from Kea 2.2: the DHCPv4 wire is the same).

What is proven, per release, on PostgreSQL, MariaDB and Oracle MySQL:

- kea-dhcp4 starts on the database kea-db built, over TLS, and answers every DHCPv4 exchange
  perfdhcp makes from the client namespace; every lease perfdhcp was acknowledged is the row
  Kea wrote to ``lease4``, and no other row is there.
- With ``schema_version`` one version off (major down, major up; minor up too), kea-dhcp4
  exits with its schema-version mismatch error, and ``kea-db check-version --config`` on the
  very configuration file Kea was given says BEHIND / AHEAD with the versions Kea named.
- Kea 2.7.4+ (here 3.0.4) has its database backends in hooks: its configurations load
  ``libdhcp_mysql.so`` / ``libdhcp_pgsql.so``, and without them it refuses the database.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from real_kea import (
    CHANGED_SCHEMA,
    CHANGED_SCHEMA_IDS,
    Backend,
    DhcpLink,
    Kea,
    dhcp_link,
    kea_runner,
    kea_tools,
    make_backend,
    prove_changed_schema_refused,
    prove_serves_dhcp,
    unavailable,
)
from servers import FreshDatabase, grant_verify_scratch

pytestmark = [pytest.mark.kea, pytest.mark.db]

__all__ = ["dhcp_link", "kea_tools"]  # fixtures

CHROOT_SCRIPT = Path(__file__).resolve().parent / "tools" / "sid_chroot.sh"
KEA_DHCP4 = "/usr/sbin/kea-dhcp4"  # inside the chroot


@dataclass(frozen=True)
class Release:
    """A Kea release, the chroot it runs from and what kea-db init builds for it."""

    version: str
    chroot: str  # sid_chroot.sh's name for it
    chroot_env: str  # the variable that moves that chroot (read by the script too)
    schema: dict[str, str]  # backend type -> schema version
    hooks: dict[str, tuple[str, ...]]  # backend type -> hooks-libraries to load

    def chroot_dir(self) -> Path:
        return Path(os.environ.get(self.chroot_env) or f"/var/cache/kea-db-tests/{self.chroot}")


RELEASES = {
    "2.6.3": Release(
        version="2.6.3",
        chroot="trixie",
        chroot_env="KEADB_TRIXIE_CHROOT",
        schema={"mysql": "22.2", "postgresql": "22.2"},
        hooks={"mysql": (), "postgresql": ()},  # backends built into libkea-dhcpsrv
    ),
    "3.0.4": Release(
        version="3.0.4",
        chroot="sid-kea",
        chroot_env="KEADB_SID_KEA_CHROOT",
        schema={"mysql": "30.0", "postgresql": "29.0"},
        hooks={"mysql": ("libdhcp_mysql.so",), "postgresql": ("libdhcp_pgsql.so",)},
    ),
}

_CHROOTS: dict[str, Path] = {}  # release -> its chroot, checked once per process


def require_chroot(release: Release) -> Path:
    """The chroot holding kea-dhcp4 ``release.version``: built by sid_chroot.sh unless it is
    cached (the script returns at once then). Fails under CI, skips otherwise, when it cannot
    be had; fails when the chroot holds another version (the suite moved on: update
    RELEASES)."""
    if release.version in _CHROOTS:
        return _CHROOTS[release.version]
    if os.geteuid() != 0:
        unavailable(f"kea-dhcp4 {release.version} runs in a chroot: that needs root")
    done = subprocess.run(
        ["bash", str(CHROOT_SCRIPT), release.chroot],
        capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL, check=False,
        env={**os.environ, release.chroot_env: str(release.chroot_dir())},
    )
    root = Path(done.stdout.strip() or release.chroot_dir())
    if done.returncode != 0 or not os.access(root / KEA_DHCP4.lstrip("/"), os.X_OK):
        unavailable(
            f"no {release.chroot} chroot with kea-dhcp4 {release.version}: "
            f"{CHROOT_SCRIPT.name} {release.chroot} failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}"
        )
    version = subprocess.run(
        ["chroot", str(root), KEA_DHCP4, "-v"], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False,
    ).stdout.strip()
    assert version == release.version, (
        f"the {release.chroot} chroot {root} holds kea-dhcp4 {version!r}, not "
        f"{release.version}: Debian's {release.chroot.split('-')[0]} moved on"
    )
    _CHROOTS[release.version] = root
    return root


@pytest.fixture(params=list(RELEASES), scope="module")
def release(request: pytest.FixtureRequest) -> Release:
    return RELEASES[request.param]


@pytest.fixture(params=["postgresql", "mariadb", "mysql"])
def backend(request: pytest.FixtureRequest, kea_tools: None, release: Release) -> Backend:
    """A database that ``kea-db init --kea-version <release>`` built, on a server that
    accepts TLS sessions only, owned by a user that must show the test client certificate."""
    require_chroot(release)  # before a database is made for nothing
    return make_backend(request, request.param, release.version, release.schema)


@pytest.fixture
def kea(
    release: Release, backend: Backend, fresh_db_factory: Callable[..., FreshDatabase]
) -> Iterator[Kea]:
    """kea-dhcp4 ``release`` from its chroot, with the hooks its database needs; stopped
    after the test, before the databases go."""
    with kea_runner(KEA_DHCP4, require_chroot(release), release.hooks[backend.type]) as runner:
        yield runner


def test_kea_release_serves_dhcp_from_kea_db_database(
    release: Release, backend: Backend, dhcp_link: DhcpLink, kea: Kea
) -> None:
    prove_serves_dhcp(backend, dhcp_link, kea)


@pytest.mark.parametrize(("column", "delta", "verdict", "exit_code"), CHANGED_SCHEMA,
                         ids=CHANGED_SCHEMA_IDS)
def test_kea_release_and_check_version_agree_on_changed_schema(
    release: Release, backend: Backend, kea: Kea, column: str, delta: int, verdict: str,
    exit_code: int,
) -> None:
    prove_changed_schema_refused(backend, kea, column, delta, verdict, exit_code)


@pytest.mark.parametrize("release", ["3.0.4"], indirect=True)
def test_kea3_needs_its_database_hook(release: Release, backend: Backend, kea: Kea) -> None:
    """Why the configurations above load ``libdhcp_mysql.so`` / ``libdhcp_pgsql.so``: Kea
    2.7.4+ without them does not know the database type."""
    kea.hooks = ()
    config = kea.write_config(backend, None, "nohook")
    run = kea.start(config, backend)  # kea-dhcp4 -t passes: it does not open the database
    assert run.wait_exit() != 0, run.tail()
    assert re.search(rf"DHCPSRV_UNKNOWN_DB unknown database type: {backend.type}\b",
                     run.text()), run.tail()
    assert f"not been compiled with support for lease database type: {backend.type}" in (
        run.text()), run.tail()


# -- issue 11: a Kea 2.2 database with a 2.2 server's leases, upgraded by kea-db -----------


@pytest.mark.parametrize("flavor", ["postgresql", "mariadb"])
def test_kea_3_0_serves_the_leases_kea_2_2_wrote_after_kea_db_upgrade(
    request: pytest.FixtureRequest, flavor: str, kea_tools: None, dhcp_link: DhcpLink
) -> None:
    """Debian 12's kea-dhcp4 2.2.0 hands out leases from a kea-db-built 2.2 database;
    ``kea-db upgrade --kea-version 3.0.4`` takes the database to 3.0 (over TLS, as Kea
    reaches it); kea-dhcp4 3.0.4 starts on it and, asked by the same clients, hands each
    the address it had: the leases are still there and still theirs."""
    import dataclasses
    import json
    import secrets

    from real_kea import kea_db, lease_rows, run_perfdhcp

    target = RELEASES["3.0.4"]
    root = require_chroot(target)
    old = make_backend(request, flavor, "2.2", {"mysql": "14.0", "postgresql": "13.0"})
    base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
    with kea_runner() as kea22:
        run = kea22.start(kea22.write_config(old, dhcp_link, "kea22"), old)
        run.wait_started()
        first = run_perfdhcp(dhcp_link, base_mac)
        assert run.stop() == 0, run.tail()
    given = sorted(first.leases["REQUEST-ACK"])
    assert len(given) > 0, first.output
    before = sorted(lease_rows(old))
    assert len(before) == len(given)

    db = old.db
    grant_verify_scratch(db)
    proc = kea_db("upgrade", "--type", db.type, "--host", db.host, "--port", str(db.port),
                  "--user", db.user, "--name", db.name, "--kea-version", "3.0.4", "--yes",
                  "--json", *old.kea_db_tls_options(), password=db.password)
    result = json.loads(proc.stdout)["results"][0]
    assert (proc.returncode, result["action"], result["to"]) == (
        0, "upgraded", target.schema[db.type]), result
    new = dataclasses.replace(old, release="3.0.4", schema=target.schema[db.type])
    assert sorted(lease_rows(new)) == before  # every row kept, as it was
    assert result["verify"]["errors"] == [], result  # checked as 2.2's schema first
    proc = kea_db("verify", "--type", db.type, "--host", db.host, "--port", str(db.port),
                  "--user", db.user, "--name", db.name, "--json", *old.kea_db_tls_options(),
                  password=db.password)
    checked = json.loads(proc.stdout)["results"][0]
    assert (proc.returncode, checked["verdict"], checked["schema"], checked["warnings"]) == (
        0, "CLEAN", target.schema[db.type], []), checked

    with kea_runner(KEA_DHCP4, root, target.hooks[db.type]) as kea30:
        run = kea30.start(kea30.write_config(new, dhcp_link, "kea30"), new)
        run.wait_started()
        again = run_perfdhcp(dhcp_link, base_mac)
        context = f"{again.output}\nkea-dhcp4 3.0.4:\n{run.tail()}"
        assert run.stop() == 0, run.tail()
    assert sorted(again.leases["REQUEST-ACK"]) == given, context
    assert sorted((hw, address) for hw, address, _s, _st in lease_rows(new)) == sorted(
        (hw, address) for hw, address, _s, _st in before), context
