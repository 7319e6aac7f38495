"""``kea-db leases export`` writes what ``kea-admin lease-dump`` writes, byte for byte.

Each database is built by ``kea-db init`` of a release and seeded with leases in every
state the schema's ``lease_state`` table has, user contexts holding commas, double quotes
(escaped with backslashes in their JSON), newlines and tabs, NULL and empty hardware
addresses, client ids and host names, IPv6 addresses and prefixes (type 2), the largest
IAID, and pool ids where the schema has them. kea-admin of the same release then dumps the
same database: its file is the expected value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kea_admin import kea_admin_lease_dump
from servers import FreshDatabase

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.db, pytest.mark.kea]

# kea-admin release -> what kea-db init builds for it.
RELEASES = {"3.0.4": "3.0.4", "2.6.3": "2.6.3", "2.2.0": "2.2.0"}

CONTEXTS: tuple[str | None, ...] = (
    None,
    '{"comment": "a, b, c", "quoted": "say \\"hi\\""}',
    '{"lines": "x",\n\t"n": [1, 2, 3],\n "path": "C:\\\\dir"}',
    "{}",
)
HOSTNAMES: tuple[str | None, ...] = ("host,with,commas.example.org.", "", None, "plain.example.")


def cli_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = password
    return env


def kea_db(db: FreshDatabase, *args: str) -> subprocess.CompletedProcess[bytes]:
    command, rest = args[0], args[1:]
    words = command.split()
    argv = [sys.executable, "-m", "keadb_cli", *words, "--type", db.type, "--host", db.host,
            "--port", str(db.port), "--user", db.user, "--name", db.name, *rest]
    proc = subprocess.run(argv, capture_output=True, env=cli_env(db.password), timeout=300,
                          check=False)
    assert b"Traceback" not in proc.stderr, proc.stderr
    assert db.password.encode() not in proc.stdout + proc.stderr
    return proc


def _columns(db: FreshDatabase, table: str) -> set[str]:
    if db.type == "postgresql":
        rows = db.server.sql("SELECT column_name FROM information_schema.columns "
                             "WHERE table_name = %s", database=db.name, params=[table])
    else:
        rows = db.server.sql("SELECT column_name FROM information_schema.columns "
                             "WHERE table_schema = %s AND table_name = %s",
                             params=[db.name, table])
    return {str(r[0]).lower() for r in rows}


def _binary_address6(db: FreshDatabase) -> bool:
    """Does MySQL's lease6.address hold the 16 bytes (newer schemas) rather than text?"""
    if db.type == "postgresql":
        return False
    rows = db.server.sql("SELECT data_type FROM information_schema.columns WHERE "
                         "table_schema = %s AND table_name = 'lease6' AND column_name = "
                         "'address'", params=[db.name])
    return "binary" in str(rows[0][0]).lower()


def _insert(db: FreshDatabase, table: str, row: dict[str, Any],
            expressions: dict[str, str] | None = None) -> None:
    names = ", ".join(row)
    marks = ", ".join((expressions or {}).get(name, "%s") for name in row)
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    db.server.sql(sql, database=db.name, params=list(row.values()))


def seed(db: FreshDatabase) -> tuple[int, int]:
    """The workload; returns the number of lease4 and lease6 rows."""
    pg = db.type == "postgresql"
    states = [int(r[0]) for r in db.server.sql("SELECT state FROM lease_state ORDER BY 1",
                                                database=db.name)]
    address6 = {"address": "INET6_ATON(%s)"} if _binary_address6(db) else {}
    pools4 = "pool_id" in _columns(db, "lease4")
    pools6 = "pool_id" in _columns(db, "lease6")
    n4 = n6 = 0
    for i in range(len(states) * len(CONTEXTS)):
        state = states[i % len(states)]
        expire = f"2026-03-{1 + i % 28:02d} 10:{i % 60:02d}:07" + ("+00" if pg else "")
        row4: dict[str, Any] = {
            "address": 0xC0000200 + 250 - i,  # inserted backwards: the dump orders them
            "hwaddr": None if i % 3 == 0 else (b"" if i % 3 == 1 else bytes([0, 0x1A, i, 3])),
            "client_id": None if i % 2 else bytes([1, 0xAA, i]),
            "valid_lifetime": 3600 + i,
            "expire": expire,
            "subnet_id": 1 + i % 3,
            "fqdn_fwd": bool(i % 2),
            "fqdn_rev": bool((i + 1) % 2),
            "hostname": HOSTNAMES[i % len(HOSTNAMES)],
            "state": state,
            "user_context": CONTEXTS[(i // len(states)) % len(CONTEXTS)],
        }
        if pools4:
            row4["pool_id"] = i % 4
        _insert(db, "lease4", row4)
        n4 += 1
        for prefix in (False, True):
            row6: dict[str, Any] = {
                "address": (f"2001:db8:{i:x}:100::" if prefix else f"2001:db8::{i + 1:x}"),
                "duid": bytes([0, 1, 0, 1, i, 0xFE]),
                "valid_lifetime": 7200,
                "expire": expire,
                "subnet_id": 10 + i % 2,
                "pref_lifetime": 3600,
                "lease_type": 2 if prefix else 0,
                "iaid": (-1 if pg else 4294967295) if i % 5 == 0 else i,  # Kea: int32 on pg
                "prefix_len": 56 if prefix else 128,
                "fqdn_fwd": bool(i % 2),
                "fqdn_rev": False,
                "hostname": HOSTNAMES[(i + 1) % len(HOSTNAMES)],
                "hwaddr": None if i % 2 else bytes([0xAA, 0xBB, i]),
                "state": state,
                "user_context": CONTEXTS[(i + 1) % len(CONTEXTS)],
                "hwtype": None if i % 2 else 1,
                "hwaddr_source": None if i % 2 else 4,
            }
            if pools6:
                row6["pool_id"] = i % 3
            _insert(db, "lease6", row6, address6)
            n6 += 1
    return n4, n6


def _kea_admin_dump(db: FreshDatabase, family: int, release: str, folder: Path) -> bytes:
    output = folder / f"kea-admin-{uuid.uuid4().hex}-{family}.csv"
    return kea_admin_lease_dump(db.type, db.host, db.port, db.user, db.password, db.name,
                                family, str(output), release=release)


@pytest.mark.parametrize(
    ("fresh_db", "release"),
    [(backend, release) for release in RELEASES for backend in ("postgresql", "mariadb")]
    + [("mysql", release) for release in RELEASES],
    indirect=["fresh_db"],
)
def test_export_is_kea_admin_lease_dump(
    fresh_db: FreshDatabase, release: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both families, to a file and to stdout, equal kea-admin lease-dump's file; the JSON
    summary counts the rows; a second export refuses to replace the file without --force.
    For 3.0.4, also through the stack's driver (psycopg, PyMySQL), used when Kea's client
    library cannot be loaded."""
    db = fresh_db
    init = kea_db(db, "init", "--kea-version", RELEASES[release])
    assert init.returncode == 0, init.stdout + init.stderr
    n4, n6 = seed(db)
    for family, rows in ((4, n4), (6, n6)):
        expected = _kea_admin_dump(db, family, release, tmp_path)
        lines = expected.split(b"\n")
        assert len(lines) > rows + 1  # the header, every lease, more for newlines in values
        assert b"&#x2c" in expected  # commas in host names and contexts, as Kea escapes them
        if db.type == "postgresql":  # psql writes a value's newline and tab as they are
            assert b'"x"&#x2c\n\t"n"' in expected
        else:  # the mysql client escapes them, and writes NULL as a word
            assert b'"x"&#x2c\\n\\t"n"' in expected and b",NULL," in expected

        out = tmp_path / f"kea-db-{family}.csv"
        started = time.monotonic()
        proc = kea_db(db, "leases export", f"-{family}", "--output", str(out), "--json")
        seconds = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == expected, (release, db.type, family)
        summary = json.loads(proc.stdout)
        assert (summary["rows"], summary["family"], summary["file"]) == (rows, family, str(out))
        print(f"{db.type} {release} -{family}: {rows} rows, kea-db {seconds:.2f} s")

        piped = kea_db(db, "leases export", f"-{family}")
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == expected

        again = kea_db(db, "leases export", f"-{family}", "--output", str(out))
        assert again.returncode == ExitCode.SETTINGS
        assert b"--force" in again.stderr and len(again.stderr.splitlines()) == 1
        assert out.read_bytes() == expected
        forced = kea_db(db, "leases export", f"-{family}", "--output", str(out), "--force")
        assert forced.returncode == 0, forced.stderr
        assert out.read_bytes() == expected
        if release == "3.0.4":
            assert _export_through_driver(db, family, tmp_path, monkeypatch) == expected
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _export_through_driver(db: FreshDatabase, family: int, folder: Path,
                           monkeypatch: pytest.MonkeyPatch) -> bytes:
    from keadb_cli.cli.main import main
    from keadb_cli.db import libmariadb, libpq

    out = folder / f"driver-{family}.csv"
    with monkeypatch.context() as patch:
        module = libpq if db.type == "postgresql" else libmariadb
        patch.setitem(module._state, "lib", None)  # as on a machine without the library
        for key in [k for k in os.environ if k.startswith(("KEA_DB_", "PG"))]:
            patch.delenv(key)
        patch.setenv("KEA_DB_PASSWORD", db.password)
        code = main(["leases", "export", f"-{family}", "--type", db.type, "--host", db.host,
                     "--port", str(db.port), "--user", db.user, "--name", db.name,
                     "--output", str(out)])
    assert code == 0
    data = out.read_bytes()
    out.unlink()
    return data


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_export_refuses_bad_input(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    """One line, its exit code, nothing written: both families at once, neither, an output
    in a missing directory, --json without --output, an empty and a non-Kea database."""
    db = fresh_db
    out = tmp_path / "leases.csv"

    def refused(code: ExitCode, *args: str) -> bytes:
        proc = kea_db(db, "leases export", *args)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stdout == b""
        assert list(tmp_path.iterdir()) == []
        return proc.stderr

    assert b"-4 and -6" in refused(ExitCode.SETTINGS, "-4", "-6", "--output", str(out))
    refused(ExitCode.SETTINGS, "--output", str(out))
    assert b"does not exist" in refused(ExitCode.SETTINGS, "-4", "--output",
                                        str(tmp_path / "missing" / "leases.csv"))
    refused(ExitCode.SETTINGS, "-4", "--json")
    assert b"empty" in refused(ExitCode.EMPTY, "-4", "--output", str(out))
    if db.type == "postgresql":
        db.server.sql("CREATE TABLE inventory (id integer)", database=db.name)
        db.server.sql(f'GRANT SELECT ON inventory TO "{db.user}"', database=db.name)
    else:
        db.server.sql("CREATE TABLE inventory (id integer)", database=db.name)
    assert b"not a Kea schema kea-db can read" in refused(ExitCode.FOREIGN, "-6", "--output",
                                                          str(out))


def test_the_lease_database_of_a_configuration_is_chosen() -> None:
    """With --config, the one lease entry is exported; several entries without one lease
    entry, or none, are a SETTINGS error that names the paths."""
    from keadb_cli.commands.leases import pick_lease_access
    from keadb_cli.errors import SettingsError
    from keadb_cli.kea.access import DbAccess

    lease = DbAccess(type="mysql", name="leases", path="Dhcp4.lease-database", role="lease")
    hosts = DbAccess(type="mysql", name="hosts", path="Dhcp4.hosts-database", role="hosts")
    config = DbAccess(type="mysql", name="cb", path="Dhcp4.config-control.config-databases[0]",
                      role="config")
    assert pick_lease_access([hosts, lease, config]) is lease
    assert pick_lease_access([hosts]) is hosts
    with pytest.raises(SettingsError, match=r"Dhcp4\.hosts-database.*--backend"):
        pick_lease_access([hosts, config])
    with pytest.raises(SettingsError, match="no SQL backend"):
        pick_lease_access([])
