"""kea-db's PostgreSQL revision chain after 13.0 against Debian's kea-admin of later releases.

For each Kea release with a Debian package (2.6.3 from trixie, 3.0.4 from sid; unpacked by
``tests/tools/kea_admin_pkgs.sh``), three databases on one throw-away server: one built by
that release's ``kea-admin db-init``, one by ``kea-db init --kea-version R`` (the command, as
an operator runs it) and one by loading ``kea-db init --sql`` with ``psql``. Their catalogs
must be identical: tables, columns, keys, index definitions (exactly, as
``pg_get_indexdef`` prints them), triggers, function identities, sequences and the rows of
every table; function bodies are kea-db's own text, so only their hashes are left out.

Releases no Debian package ships are compared with golden catalogs of their create scripts
(tests/tools/kea_golden_catalogs.py, tests/data/catalogs/postgresql/), and the free lease
queue functions (33.0 on) with the golden results of tests/sflq_workload.py's steps.

Also here: the revision graph (the 2.6 stable line's 22.1 and 22.2, and any 22.x on to 23.0);
databases with rows upgraded by kea-db's revisions and by kea-admin db-upgrade, along both
lines, compared row by row; the 2.2 workload plus the objects added since on a 3.0 schema of
each kind; and a SHA-256 per revision's offline SQL, so that a released revision never
changes unnoticed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kea_admin import kea_admin_init, kea_admin_upgrade
from servers import FreshDatabase, PostgresServer, create_fresh_database, drop_fresh_database
from test_migrate_pgsql import COMMIT, Fails

from keadb_cli.errors import KeaDbError
from keadb_cli.kea.releases import expected_schema, parse_release
from keadb_cli.schema import catalog, migrate

pytestmark = [pytest.mark.db, pytest.mark.kea]

# Function bodies are kea-db's own text, so only their identities are compared.
IGNORE = {"body_hash"}

# Release -> the PostgreSQL schema it expects (kea-facts.md 1.1).
RELEASES = {"2.6.3": "22.2", "3.0.4": "29.0"}


def _connect(db: FreshDatabase) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, dbname=db.name
    )


def read_catalog(db: FreshDatabase) -> catalog.Catalog:
    with _connect(db) as conn:
        return catalog.read_catalog(conn, "postgresql")


def _kea_db(db: FreshDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = db.password
    argv = [
        sys.executable, "-m", "keadb_cli", *args, "--type", "postgresql", "--host", db.host,
        "--port", str(db.port), "--user", db.user, "--name", db.name,
    ]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


def build_with_kea_db_init(db: FreshDatabase, release: str) -> dict[str, Any]:
    proc = _kea_db(db, "init", "--kea-version", release, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return result


def sql_script(release: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "init", "--sql", "--type", "postgresql",
         "--kea-version", release],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def build_with_psql(db: FreshDatabase, script: str) -> None:
    done = subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "-h", db.host, "-p", str(db.port),
         "-U", db.user, "-d", db.name],
        input=script, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": db.password},
    )
    assert done.returncode == 0, f"psql failed:\n{done.stderr}"


@pytest.fixture(scope="module")
def module_dbs(pg_server: PostgresServer) -> Iterator[Callable[[], FreshDatabase]]:
    """Fresh databases that live as long as this module's tests."""
    made: list[FreshDatabase] = []

    def factory() -> FreshDatabase:
        made.append(create_fresh_database(pg_server))
        return made[-1]

    yield factory
    for db in reversed(made):
        drop_fresh_database(db)


@pytest.fixture(scope="module")
def kea_catalog(module_dbs: Callable[[], FreshDatabase]) -> Callable[[str], catalog.Catalog]:
    """kea-admin ``release`` db-init's catalog, built once per release and module."""
    built: dict[str, catalog.Catalog] = {}

    def get(release: str) -> catalog.Catalog:
        if release not in built:
            db = module_dbs()
            kea_admin_init(
                "postgresql", db.host, db.port, db.user, db.password, db.name, release=release
            )
            built[release] = read_catalog(db)
        return built[release]

    return get


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_init_builds_kea_admins_catalog(
    release: str,
    kea_catalog: Callable[[str], catalog.Catalog],
    module_dbs: Callable[[], FreshDatabase],
) -> None:
    reference = kea_catalog(release)
    db = module_dbs()
    result = build_with_kea_db_init(db, release)
    assert (result["action"], result["schema"]) == ("initialized", RELEASES[release])
    catalog.assert_same_catalog(
        reference, read_catalog(db), ignore=IGNORE, labels=(f"kea-admin {release}", "kea-db")
    )


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_init_sql_loaded_by_psql_builds_kea_admins_catalog(
    release: str,
    kea_catalog: Callable[[str], catalog.Catalog],
    module_dbs: Callable[[], FreshDatabase],
) -> None:
    reference = kea_catalog(release)
    db = module_dbs()
    script = sql_script(release)
    assert "alembic_version" not in script
    build_with_psql(db, script)
    catalog.assert_same_catalog(
        reference, read_catalog(db), ignore=IGNORE, labels=(f"kea-admin {release}", "init --sql")
    )


# Releases no Debian package ships: golden catalogs of their create scripts, built by
# tests/tools/kea_golden_catalogs.py from Kea's git tags (release -> file under
# tests/data/catalogs/postgresql/).
GOLDEN = {
    "2.4.0": "Kea-2.4.0.json",
    "2.7.0": "Kea-2.7.0.json",  # 23.0: the main line after 22.0, without 22.1's table
    "3.1.0": "Kea-3.1.0.json",
    "3.1.1": "Kea-3.1.1.json",
    "3.1.5": "Kea-3.1.5.json",
    "3.1.8": "Kea-3.1.8.json",
    "3.2.0": "Kea-3.2.0.json",
}
GOLDEN_DIR = Path(__file__).parent / "data" / "catalogs" / "postgresql"


@pytest.mark.parametrize("how", ["init", "init --sql"])
@pytest.mark.parametrize("release", sorted(GOLDEN))
def test_init_builds_the_golden_catalog_of_the_create_script(
    release: str, how: str, module_dbs: Callable[[], FreshDatabase]
) -> None:
    reference = catalog.Catalog.from_json((GOLDEN_DIR / GOLDEN[release]).read_text())
    db = module_dbs()
    if how == "init":
        result = build_with_kea_db_init(db, release)
        assert result["schema"] == str(expected_schema(parse_release(release), "postgresql"))
    else:
        build_with_psql(db, sql_script(release))
    catalog.assert_same_catalog(
        reference, read_catalog(db), ignore=IGNORE, labels=(f"Kea-{release} create", how)
    )


# Releases whose golden files include the results of tests/sflq_workload.py's steps.
SFLQ_GOLDEN = {"3.1.8": "Kea-3.1.8.sflq.json", "3.2.0": "Kea-3.2.0.sflq.json"}


@pytest.mark.parametrize("release", sorted(SFLQ_GOLDEN))
def test_free_lease_queue_functions_behave_as_kea_s(
    release: str, module_dbs: Callable[[], FreshDatabase]
) -> None:
    import sflq_workload

    expected = json.loads((GOLDEN_DIR / SFLQ_GOLDEN[release]).read_text())
    db = module_dbs()
    build_with_kea_db_init(db, release)
    with _connect(db) as conn:
        actual = sflq_workload.run(conn)
    assert len(actual) == len(expected) == len(sflq_workload.STEPS)
    for step, want, got in zip(sflq_workload.STEPS, expected, actual, strict=True):
        assert got == want, step


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_reference_has_the_expected_schema_version(
    release: str, kea_catalog: Callable[[str], catalog.Catalog]
) -> None:
    # If this fails, the unpacked package is not the release the comparison is about.
    rows = {r.table: r for r in kea_catalog(release).rows}["schema_version"].rows
    assert [f"{major}.{minor}" for major, minor in rows] == [RELEASES[release]]


# --- the revision graph ------------------------------------------------------------------


def test_stable_line_is_a_branch_off_22_0() -> None:
    stable = [s.revision for s in migrate.plan("postgresql", "pgsql_22_2")]
    assert stable[-4:] == ["pgsql_21_0", "pgsql_22_0", "pgsql_22_1", "pgsql_22_2"]
    assert stable[0] == "pgsql_13_0"
    schemas = [s.schema for s in migrate.plan("postgresql", migrate.HEAD)]
    assert (22, 1) not in schemas and (22, 2) not in schemas
    assert schemas == sorted(schemas)
    # Any 22.x goes on to 23.0, as Kea's upgrade does; the branches do not cross otherwise.
    for current in ("pgsql_22_0", "pgsql_22_1", "pgsql_22_2"):
        steps = migrate.plan("postgresql", "pgsql_24_0", current=current)
        assert [s.revision for s in steps] == ["pgsql_23_0", "pgsql_24_0"]
    with pytest.raises(KeaDbError):
        migrate.plan("postgresql", "pgsql_22_1", current="pgsql_22_2")
    with pytest.raises(KeaDbError):
        migrate.plan("postgresql", "pgsql_22_2", current="pgsql_23_0")


def test_init_builds_every_release_from_2_2_on() -> None:
    from keadb_cli.commands.init import release_map
    from keadb_cli.kea.releases import Release

    buildable = {r.release: "postgresql" in r.buildable for r in release_map()}
    assert all(ok for rel, ok in buildable.items() if rel >= Release(2, 2, 0))
    assert not any(ok for rel, ok in buildable.items() if rel < Release(2, 2, 0))
    assert max(buildable) == Release(3, 3, 0)


# --- upgrading a database with rows --------------------------------------------------------

# Rows in a Kea 2.2 (13.0) database that the later steps convert, move or delete: a one-byte
# DUID, leases to count per pool, text IPv6 addresses, retired and renamed global parameters,
# option definitions with record types, single client classes, only-if-required classes.
SEED_13_0 = [
    "INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, state) VALUES "
    r"(3221225985, '\x0a0b0c0d0e0f', 3600, '2023-05-01 10:00:00+00', 1, 0), "
    r"(3221225986, '\x0a0b0c0d0e10', 3600, '2023-05-01 10:00:00+00', 1, 1), "
    r"(3221225987, '\x0a0b0c0d0e11', 3600, '2023-05-01 10:00:00+00', 1, 2), "
    r"(3221225988, '\x0a0b0c0d0e12', 3600, '2023-05-01 10:00:00+00', 2, 0)",
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, state) VALUES "
    r"('2001:db8::1', '\x00', 3600, '2023-05-01 10:00:00+00', 10, 1800, 0, 1, 128, 0), "
    r"('2001:db8::2', '\x000100015e', 3600, '2023-05-01 10:00:00+00', 10, 1800, 0, 2, 128, 1), "
    r"('2001:db8:1::', '\x00', 3600, '2023-05-01 10:00:00+00', 10, 1800, 2, 3, 56, 0), "
    r"('2001:db8::3', '\x0001', 3600, '2023-05-01 10:00:00+00', 11, 1800, 0, 4, 128, 2)",
    r"INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp6_subnet_id) "
    r"VALUES ('\x0102', 1, 10)",
    "INSERT INTO ipv6_reservations (address, host_id) VALUES ('2001:db8::10', 1)",
    "SELECT createAuditRevisionDHCP4('2023-01-01 00:00:00+00', 'all', 'seed', false)",
    "INSERT INTO dhcp4_global_parameter (name, value, parameter_type, modification_ts) VALUES "
    "('ddns-use-conflict-resolution', '1', 2, '2023-01-01 00:00:00+00'), "
    "('reservation-mode', 'global', 4, '2023-01-01 00:00:00+00'), "
    "('reservation-mode', 'disabled', 4, '2023-01-01 00:00:00+00'), "
    "('dhcp-ddns.override-no-update', 'true', 2, '2023-01-01 00:00:00+00'), "
    "('control-socket.socket-name', '/run/kea.sock', 4, '2023-01-01 00:00:00+00'), "
    "('valid-lifetime', '3600', 0, '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp4_option_def (code, name, space, type, is_array, encapsulate, "
    "record_types, modification_ts) VALUES "
    "(222, 'rec', 'dhcp4', 1, false, '', '1,2', '2023-01-01 00:00:00+00'), "
    "(223, 'plain', 'dhcp4', 5, false, '', NULL, '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp4_shared_network (name, client_class, modification_ts) VALUES "
    "('net1', 'foo', '2023-01-01 00:00:00+00'), ('net2', '', '2023-01-01 00:00:00+00'), "
    "('net3', NULL, '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp4_subnet (subnet_id, subnet_prefix, client_class, shared_network_name, "
    "modification_ts) VALUES (1, '192.0.2.0/24', 'bar', 'net1', '2023-01-01 00:00:00+00'), "
    "(2, '198.51.100.0/24', NULL, NULL, '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp4_pool (start_address, end_address, subnet_id, client_class, "
    "require_client_classes, modification_ts) VALUES "
    """('192.0.2.10', '192.0.2.20', 1, 'baz', '["r1"]', '2023-01-01 00:00:00+00')""",
    "INSERT INTO dhcp4_client_class (name, only_if_required, modification_ts) "
    "VALUES ('c1', true, '2023-01-01 00:00:00+00')",
    "SELECT createAuditRevisionDHCP6('2023-01-01 00:00:00+00', 'all', 'seed', false)",
    "INSERT INTO dhcp6_global_parameter (name, value, parameter_type, modification_ts) VALUES "
    "('ddns-use-conflict-resolution', '0', 2, '2023-01-01 00:00:00+00'), "
    "('reservation-mode', 'out-of-pool', 4, '2023-01-01 00:00:00+00'), "
    "('reservation-mode', 'all', 4, '2023-01-01 00:00:00+00'), "
    "('reservation-mode', 'off', 4, '2023-01-01 00:00:00+00'), "
    "('dhcp-ddns.qualifying-suffix', 'example.org', 4, '2023-01-01 00:00:00+00'), "
    "('control-socket.socket-type', 'unix', 4, '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_option_def (code, name, space, type, is_array, encapsulate, "
    "record_types, modification_ts) VALUES "
    "(1000, 'rec6', 'dhcp6', 14, false, '', '4,5', '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_shared_network (name, client_class, modification_ts) "
    "VALUES ('net6', 'foo6', '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_subnet (subnet_id, subnet_prefix, client_class, modification_ts) "
    "VALUES (10, '2001:db8::/64', 'c6', '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_pool (start_address, end_address, subnet_id, client_class, "
    "modification_ts) VALUES ('2001:db8::10', '2001:db8::ff', 10, 'p6', "
    "'2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_pd_pool (prefix, prefix_length, delegated_prefix_length, subnet_id, "
    "excluded_prefix_length, client_class, modification_ts) VALUES "
    "('2001:db8:8000::', 48, 56, 10, 0, '', '2023-01-01 00:00:00+00')",
    "INSERT INTO dhcp6_client_class (name, only_if_required, modification_ts) "
    "VALUES ('d1', true, '2023-01-01 00:00:00+00')",
]

# After the upgrade: the lease triggers count per pool, and lease6_stat counts registered
# leases (state 4).
AFTER_29_0 = [
    "INSERT INTO lease4 (address, valid_lifetime, expire, subnet_id, state, pool_id) VALUES "
    "(3221225995, 60, '2023-05-01 10:00:00+00', 1, 0, 7), "
    "(3221225996, 60, '2023-05-01 10:00:00+00', 1, 1, 7)",
    "UPDATE lease4 SET pool_id = 8 WHERE address = 3221225995",
    "DELETE FROM lease4 WHERE address = 3221225985",
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, state, pool_id) VALUES "
    r"('2001:db8::20', '\x01', 60, '2023-05-01 10:00:00+00', 10, 30, 0, 9, 128, 4, 0), "
    r"('2001:db8::21', '\x02', 60, '2023-05-01 10:00:00+00', 10, 30, 0, 9, 128, 0, 3)",
    "UPDATE lease6 SET state = 4 WHERE address = '2001:db8::21'",
    "UPDATE lease6 SET state = 0 WHERE address = '2001:db8::20'",
    "DELETE FROM lease6 WHERE address = '2001:db8::2'",
    "INSERT INTO lease6_relay_id (relay_id, lease_addr) VALUES ('\\x0102', '2001:db8::1')",
    "SELECT * FROM lease4dumpdata()",
    "SELECT * FROM lease6dumpdata()",
]


def _execute(db: FreshDatabase, statements: list[str]) -> list[Any]:
    results: list[Any] = []
    with _connect(db) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            results.append(cursor.fetchall() if cursor.description else cursor.rowcount)
    return results


def _upgrade_with_kea_db(db: FreshDatabase, current: str | None, target: str) -> None:
    import sqlalchemy as sa

    url = sa.URL.create(
        "postgresql+psycopg", username=db.user, password=db.password, host=db.host,
        port=db.port, database=db.name,
    )
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            migrate.upgrade(connection, "postgresql", target, current=current)
            connection.commit()
    finally:
        engine.dispose()


def _assert_same(theirs: FreshDatabase, ours: FreshDatabase, label: str) -> None:
    from test_migrate_pgsql import table_contents

    catalog.assert_same_catalog(
        read_catalog(theirs), read_catalog(ours), ignore=IGNORE, labels=(label, "kea-db")
    )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    expected, actual = table_contents(theirs, since), table_contents(ours, since)
    for table in sorted(expected):
        assert actual[table] == expected[table], f"rows of {table} differ after {label}"


# The kea-admin db-upgrade runs that take a 13.0 database to 29.0, and the kea-db revisions
# that must do the same: through Kea's 2.6 stable line (2.6.3 reaches 22.2, then 3.0.4
# upgrades any 22.x), or straight along the main line (3.0.4 alone).
PATHS = {
    "stable-line": [("2.6.3", "pgsql_13_0", "pgsql_22_2"), ("3.0.4", "pgsql_22_2", "pgsql_29_0")],
    "main-line": [("3.0.4", "pgsql_13_0", "pgsql_29_0")],
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_upgrade_with_rows_matches_kea_admin_db_upgrade(
    path: str, module_dbs: Callable[[], FreshDatabase]
) -> None:
    theirs, ours = module_dbs(), module_dbs()
    for db in (theirs, ours):
        kea_admin_init("postgresql", db.host, db.port, db.user, db.password, db.name)
        _execute(db, SEED_13_0)
    for release, current, target in PATHS[path]:
        kea_admin_upgrade(
            "postgresql", theirs.host, theirs.port, theirs.user, theirs.password, theirs.name,
            release=release,
        )
        _upgrade_with_kea_db(ours, current, target)
        _assert_same(theirs, ours, f"kea-admin {release} db-upgrade")
    assert _execute(ours, AFTER_29_0) == _execute(theirs, AFTER_29_0)
    _assert_same(theirs, ours, "the same changes")
    # The seed reached the conversions it is there for.
    with _connect(ours) as conn:
        assert conn.execute(
            "SELECT count(*) FROM lease6 WHERE duid = '\\x000000'::bytea"
        ).fetchone() == (2,)
        assert conn.execute(
            "SELECT client_classes FROM dhcp4_subnet ORDER BY subnet_id"
        ).fetchall() == [('[ "bar" ]',), (None,)]
        assert conn.execute("SELECT count(*) FROM lease4_pool_stat").fetchone() != (0,)


# --- behaviour on a 3.0 schema -------------------------------------------------------------

# Objects added since 2.2, on top of test_migrate_pgsql's workload (which now meets the
# renamed columns and the INET addresses too).
SINCE_2_2 = [
    "INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, state, pool_id, "
    r"relay_id, remote_id) VALUES (3221226100, '\x0a0b0c0d0e20', 60, "
    r"'2023-05-01 10:00:00+00', 1, 0, 5, '\x01', '\x02'), "
    r"(3221226101, '\x0a0b0c0d0e21', 60, '2023-05-01 10:00:00+00', 1, 1, 5, NULL, NULL)",
    "UPDATE lease4 SET pool_id = 6 WHERE address = 3221226100",
    "UPDATE lease4 SET state = 3 WHERE address = 3221226101",
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, state, pool_id) VALUES "
    r"('2001:db8::40', '\x01', 60, '2023-05-01 10:00:00+00', 10, 30, 0, 9, 128, 4, 0), "
    r"('2001:db8::41', '\x02', 60, '2023-05-01 10:00:00+00', 10, 30, 2, 9, 64, 0, 3)",
    "UPDATE lease6 SET state = 4 WHERE address = '2001:db8::41'",
    "UPDATE lease6 SET pool_id = 4 WHERE address = '2001:db8::41'",
    "INSERT INTO lease6_relay_id (relay_id, lease_addr) VALUES ('\\x0102', '2001:db8::40')",
    "INSERT INTO lease6_remote_id (remote_id, lease_addr) VALUES ('\\x0304', '2001:db8::41')",
    Fails("INSERT INTO lease6_remote_id (remote_id, lease_addr) VALUES ('\\x05', '2001:db8::99')"),
    "DELETE FROM lease6 WHERE address = '2001:db8::40'",
    "SELECT lease4upload('192.0.2.200', '0a:0b', '', 100, 1700000000, 7, 1, 0, 'h', 0, '', 9)",
    "SELECT lease6upload('2001:db8::50', '00:01', 100, 1700000000, 10, 50, 0, 9, 128, 0, 1, "
    "'p', '', 0, '', 1, 0, 2)",
    Fails("SELECT lease6upload('2001:db8::51', '00:01', 100, 1700000000, 10, 50, 0, 9, 128, "
          "0, 1, 'p', '', 0, '', 1, 0)"),
    "SELECT lease4dumpheader(), lease6dumpheader()",
    "SELECT * FROM lease4dumpdata()",
    "SELECT * FROM lease6dumpdata()",
    "SELECT texttojsonlist('x'), texttojsonlist(''), texttojsonlist(NULL)",
    "SELECT * FROM option_def_data_type ORDER BY id",
    "SELECT * FROM lease_state ORDER BY state",
    COMMIT,
]


def run_steps(db: FreshDatabase, steps: list[Any]) -> list[Any]:
    """Run every step on one connection; each result, or the SQLSTATE and message of the
    error (a step marked Fails must fail)."""
    results: list[Any] = []
    with _connect(db) as conn:
        for step in steps:
            if step == COMMIT:
                conn.commit()
                continue
            sql = step.sql if isinstance(step, Fails) else step
            conn.execute("SAVEPOINT step")
            try:
                cursor = conn.execute(sql)
                rows = cursor.fetchall() if cursor.description else cursor.rowcount
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT step")
                results.append(("error", sql, exc.sqlstate, exc.diag.message_primary
                                if isinstance(step, Fails) and step.same_message else None))
                continue
            assert not isinstance(step, Fails), f"step did not fail on {db.name}: {sql}"
            results.append((sql, rows))
    return results


def test_workload_on_3_0_leaves_identical_rows(module_dbs: Callable[[], FreshDatabase]) -> None:
    from test_migrate_pgsql import WORKLOAD, table_contents

    theirs, ours = module_dbs(), module_dbs()
    kea_admin_init(
        "postgresql", theirs.host, theirs.port, theirs.user, theirs.password, theirs.name,
        release="3.0.4",
    )
    build_with_kea_db_init(ours, "3.0.4")
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    steps = [*WORKLOAD, *SINCE_2_2]
    expected, actual = run_steps(theirs, steps), run_steps(ours, steps)
    for expected_step, actual_step in zip(expected, actual, strict=True):
        assert actual_step == expected_step
    contents, ours_contents = table_contents(theirs, started), table_contents(ours, started)
    assert sorted(ours_contents) == sorted(contents)
    for table in sorted(contents):
        assert ours_contents[table] == contents[table], f"rows of {table} differ"
    for table in ("lease4_pool_stat", "lease6_pool_stat", "lease6_remote_id", "lease6_stat"):
        assert contents[table], f"the workload left {table} empty"
    # Registered leases are counted: ::40 came and went, ::41 (a prefix) stays registered.
    assert {(10, 0, 4, 0), (10, 2, 4, 1)} <= set(contents["lease6_stat"])
    catalog.assert_same_catalog(
        read_catalog(theirs), read_catalog(ours), ignore=IGNORE, labels=("kea-admin", "kea-db")
    )


def test_ia_ta_leases_become_ia_na_in_34_0(module_dbs: Callable[[], FreshDatabase]) -> None:
    """34.0 converts every IA_TA lease (type 1) to IA_NA as Kea's step does: the lease
    triggers move the statistics, then type 1's statistics rows and its lookup row go."""
    db = module_dbs()
    build_with_kea_db_init(db, "3.1.8")  # schema 33.0
    _execute(db, [
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
        "lease_type, iaid, prefix_len, state, pool_id, user_context) VALUES "
        r"('2001:db8::1', '\x01', 60, '2023-05-01 10:00:00+00', 10, 30, 1, 1, 128, 0, 2, "
        """'{"ISC": {"client-classes": ["ta"]}}'), """
        r"('2001:db8::2', '\x02', 60, '2023-05-01 10:00:00+00', 10, 30, 0, 2, 128, 0, 2, NULL),"
        r"('2001:db8::3', '\x03', 60, '2023-05-01 10:00:00+00', 10, 30, 1, 3, 128, 1, 2, NULL)",
        "SELECT sflqcreateflqpool6('2001:db8::10', '2001:db8::11', 1::smallint, 128::smallint, "
        "10, false)",
    ])
    _upgrade_with_kea_db(db, "pgsql_33_0", "pgsql_34_0")
    with _connect(db) as conn:
        leases = conn.execute("SELECT host(address), lease_type FROM lease6 ORDER BY 1")
        assert leases.fetchall() == [("2001:db8::1", 0), ("2001:db8::2", 0), ("2001:db8::3", 0)]
        assert conn.execute("SELECT lease_type FROM flq_pool6").fetchall() == [(0,)]
        assert conn.execute(
            "SELECT subnet_id, lease_type, state, leases FROM lease6_stat ORDER BY 1, 2, 3"
        ).fetchall() == [(10, 0, 0, 2), (10, 0, 1, 1)]
        assert conn.execute(
            "SELECT subnet_id, pool_id, lease_type, state, leases FROM lease6_pool_stat "
            "ORDER BY 1, 2, 3, 4"
        ).fetchall() == [(10, 2, 0, 0, 2), (10, 2, 0, 1, 1)]
        assert conn.execute(
            "SELECT client_class, lease_type, leases FROM lease6_stat_by_client_class"
        ).fetchall() == [("ta", 0, 1)]
        assert conn.execute("SELECT lease_type FROM lease6_types ORDER BY 1").fetchall() == [
            (0,), (2,)
        ]
        assert conn.execute("SELECT version, minor FROM schema_version").fetchall() == [(34, 0)]


def test_online_upgrade_to_head_builds_the_newest_golden_catalog(
    module_dbs: Callable[[], FreshDatabase],
) -> None:
    """migrate.upgrade (alembic online, as the coming `upgrade` command runs the steps) from
    an empty database through every main-line step builds Kea 3.2.0's catalog too."""
    db = module_dbs()
    _upgrade_with_kea_db(db, None, migrate.HEAD)
    reference = catalog.Catalog.from_json((GOLDEN_DIR / "Kea-3.2.0.json").read_text())
    catalog.assert_same_catalog(
        reference, read_catalog(db), ignore=IGNORE, labels=("Kea-3.2.0 create", "kea-db online")
    )
