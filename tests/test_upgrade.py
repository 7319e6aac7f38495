"""`kea-db upgrade`: the explicit upgrade, against Debian's kea-admin db-upgrade, on real
servers; refusals, --plan, --sql, concurrency, and MySQL runs cut by SIGKILL and Ctrl-C."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from kea_admin import KeaAdminError, kea_admin_init, kea_admin_upgrade
from servers import (
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    grant_verify_scratch,
)

from keadb_cli.errors import ExitCode
from keadb_cli.schema import catalog, migrate, scripts

pytestmark = [pytest.mark.db, pytest.mark.kea]

IGNORE = {"body_hash"}  # kea-db's routine bodies are its own text
TO = {"2.6.3": {"postgresql": "22.2", "mysql": "22.2"},
      "3.0.4": {"postgresql": "29.0", "mysql": "30.0"}}


def kea_db(db: FreshDatabase | None, *args: str, timeout: float = 600,
           env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    target = [] if db is None else [
        "--type", db.type, "--host", db.host, "--port", str(db.port), "--user", db.user,
        "--name", db.name]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    if db is not None:
        env["KEA_DB_PASSWORD"] = db.password
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", args[0], *target, *args[1:]],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def upgrade_json(db: FreshDatabase, *args: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "upgrade", *args, "--json")
    return proc.returncode, json.loads(proc.stdout)["results"][0]


def read_catalog(db: FreshDatabase) -> catalog.Catalog:
    if db.type == "postgresql":
        with psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                             dbname=db.name) as conn:
            return catalog.read_catalog(conn, "postgresql")
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name)
    try:
        return catalog.read_catalog(conn, "mysql")
    finally:
        conn.close()


def seed(db: FreshDatabase) -> None:
    """Kea 2.2 rows of every kind the steps convert (the chain tests' own seeds)."""
    if db.type == "postgresql":
        from test_chain_pgsql import SEED_13_0, _execute

        _execute(db, SEED_13_0)
    else:
        from test_chain_mysql import SEED_CONFIG, SEED_LEASES_14_0, _seed

        # Config-backend rows with audit revisions, as Kea's config backend writes them.
        _seed(db, ["CALL createAuditRevisionDHCP4(NOW(), 'all', 'seed', 0)",
                   "CALL createAuditRevisionDHCP6(NOW(), 'all', 'seed', 0)",
                   *SEED_CONFIG, *SEED_LEASES_14_0])


def assert_same(theirs: FreshDatabase, ours: FreshDatabase, label: str) -> None:
    catalog.assert_same_catalog(read_catalog(theirs), read_catalog(ours), ignore=IGNORE,
                                labels=(label, "kea-db upgrade"))


def version(db: FreshDatabase) -> str:
    rows = db.server.sql("SELECT version, minor FROM schema_version", database=db.name)
    return ".".join(str(v) for v in rows[0])


@pytest.fixture(params=["postgresql", "mariadb", "mysql"])
def dbs(request: pytest.FixtureRequest, pg_server: Any,
        mysql_server_factory: Any) -> Iterator[Callable[[], FreshDatabase]]:
    server = pg_server if request.param == "postgresql" else mysql_server_factory(
        tls="on", flavor=request.param)
    made: list[FreshDatabase] = []

    def make() -> FreshDatabase:
        db = create_fresh_database(server)
        made.append(db)
        if db.type == "mysql":
            server.warm_auth_cache(db.user, db.password)
            grant_verify_scratch(db)
        return db

    yield make
    for db in reversed(made):
        drop_fresh_database(db)


def kea22(db: FreshDatabase, built: str = "kea-admin") -> FreshDatabase:
    """A Kea 2.2 database built by Debian's kea-admin 2.2.0 (or by kea-db init), with
    rows."""
    if built == "kea-admin":
        kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
    else:
        proc = kea_db(db, "init", "--kea-version", "2.2.0")
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    seed(db)
    return db


# -- the same result as kea-admin db-upgrade -------------------------------------------------


@pytest.mark.parametrize(("path", "built"), [
    (["3.0.4"], "kea-admin"), (["2.6.3", "3.0.4"], "kea-admin"), (["3.0.4"], "kea-db"),
    (["2.6.3"], "kea-db")], ids=["main", "via-2.6", "kea-db-built", "kea-db-built-to-2.6"])
def test_upgrade_matches_kea_admin_db_upgrade(path: list[str], built: str, dbs: Any) -> None:
    """A 2.2 database with rows of every kind (leases in every state, hosts, reservations,
    options, classes, config-backend rows with audit revisions), built by kea-admin 2.2.0 or
    by kea-db, upgraded by kea-db: the same catalog and rows as kea-admin db-upgrade's."""
    theirs, ours = kea22(dbs()), kea22(dbs(), built)
    for release in path:
        kea_admin_upgrade(theirs.type, theirs.host, theirs.port, theirs.user, theirs.password,
                          theirs.name, release=release)
        code, result = upgrade_json(ours, "--kea-version", release, "--yes")
        assert code == ExitCode.OK, result["detail"]
        assert (result["action"], result["to"]) == ("upgraded", TO[release][ours.type])
        assert [s["revision"] for s in result["steps"]] == [s["revision"] for s in
                                                            result["plan"]]
        assert all(s["seconds"] >= 0 for s in result["steps"])
        assert_same(theirs, ours, f"kea-admin {release} db-upgrade")
    assert version(ours) == TO[path[-1]][ours.type]
    # Nothing of kea-db's own is left behind.
    assert "keadb_upgrade_journal" not in {t.name for t in read_catalog(ours).tables}
    code, result = upgrade_json(ours, "--kea-version", path[-1], "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "none")


def test_upgrade_sql_loaded_by_the_client_gives_the_same_result(dbs: Any) -> None:
    theirs, ours = kea22(dbs()), kea22(dbs())
    kea_admin_upgrade(theirs.type, theirs.host, theirs.port, theirs.user, theirs.password,
                      theirs.name, release="3.0.4")
    start = "13.0" if ours.type == "postgresql" else "14.0"
    proc = kea_db(None, "upgrade", "--sql", "--type", ours.type, "--from", start,
                  "--kea-version", "3.0.4")
    assert proc.returncode == 0, proc.stderr
    if ours.type == "postgresql":
        from test_chain_pgsql import build_with_psql

        build_with_psql(ours, proc.stdout)
    else:
        from test_chain_mysql import _load_with_client

        _load_with_client(ours, proc.stdout)
    assert_same(theirs, ours, "kea-admin 3.0.4 db-upgrade")


# -- refusals ------------------------------------------------------------------------------


def test_refusals_leave_the_catalog_unchanged(dbs: Any) -> None:
    empty = dbs()
    code, result = upgrade_json(empty, "--kea-version", "3.0", "--yes")
    assert (code, result["verdict"]) == (ExitCode.EMPTY, "EMPTY"), result
    assert read_catalog(empty).tables == ()

    db = kea22(dbs())
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "2.2", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "none")
    code, result = upgrade_json(db, "--kea-version", "2.0", "--yes")
    assert (code, result["verdict"]) == (ExitCode.AHEAD, "AHEAD")
    code, result = upgrade_json(db, "--kea-version", "3.0", "--yes", "--readonly")
    assert code == ExitCode.READONLY
    assert read_catalog(db) == before

    old = kea22(dbs())
    old.server.sql("UPDATE schema_version SET version = 12", database=old.name)
    code, result = upgrade_json(old, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.UNSUPPORTED_RELEASE, result
    assert "kea-admin db-upgrade" in result["detail"]
    old.server.sql("UPDATE schema_version SET version = 14 WHERE version = 12"
                   if old.type == "mysql" else
                   "UPDATE schema_version SET version = 13", database=old.name)

    foreign = dbs()
    foreign.server.sql("CREATE TABLE notes (id int)", database=foreign.name)
    if foreign.type == "postgresql":
        foreign.server.sql(f'ALTER TABLE notes OWNER TO "{foreign.user}"', database=foreign.name)
    code, result = upgrade_json(foreign, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.FOREIGN
    assert [t.name for t in read_catalog(foreign).tables] == ["notes"]


def test_plan_changes_nothing_and_lists_the_steps(dbs: Any) -> None:
    db = kea22(dbs())
    before = read_catalog(db)
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan", "--json")
    assert proc.returncode == ExitCode.OK, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["action"] == "planned"
    plan = result["plan"]
    first = "pgsql_14_0" if db.type == "postgresql" else "mysql_15_0"
    assert plan[0]["revision"] == first and plan[-1]["schema"] == TO["3.0.4"][db.type]
    assert any("lease6" in step["rewrites"] for step in plan)
    assert all(step["kea"].startswith("Kea ") for step in plan)
    assert read_catalog(db) == before
    human = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan")
    assert first in human.stdout and "rewrites" in human.stdout
    # The downtime estimate: said to be one, from the rows the listed steps rewrite.
    assert "estimated downtime: about" in human.stdout and "an estimate" in human.stdout
    assert result["estimate"]["is_estimate"] is True
    assert result["estimate"]["rate"] == "default"
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan", "--json",
                  "--rows-per-second", "0.5")
    declared = json.loads(proc.stdout)["results"][0]
    estimate = declared["estimate"]
    rows = sum(n or 0 for step in declared["plan"] for n in step["rewrites"].values())
    assert rows > 0, declared["plan"]
    assert (estimate["rewritten_rows"], estimate["rows_per_second"], estimate["rate"]) == (
        rows, 0.5, "declared")
    assert estimate["seconds"] >= rows / 0.5
    # The rate rates --plan's estimate only.
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--yes", "--rows-per-second", "9")
    assert proc.returncode == ExitCode.SETTINGS and "--plan" in proc.stderr, proc.stderr
    assert read_catalog(db) == before


def test_plan_runs_the_privilege_check(dbs: Any) -> None:
    """--plan runs upgrade's checks, the privilege check included: a user who may not
    change the schema is told so by --plan (a finding, exit 0), not only by the run."""
    db = kea22(dbs())
    if db.type == "postgresql":
        # A database the user does not own: PostgreSQL 15 gives it no CREATE on public.
        db.server.sql(f'ALTER DATABASE "{db.name}" OWNER TO postgres')
        db.server.sql(f'REVOKE ALL ON DATABASE "{db.name}" FROM "{db.user}"')
        db.server.sql(f'GRANT CONNECT ON DATABASE "{db.name}" TO "{db.user}"')
        fragment = "GRANT CREATE ON SCHEMA"
    else:
        db.server.sql(f"REVOKE TRIGGER ON `{db.name}`.* FROM '{db.user}'@'%'")
        fragment = "lacks TRIGGER"
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "3.0", "--plan")
    assert (code, result["action"]) == (ExitCode.OK, "planned"), result
    assert any(fragment in f and "the upgrade refuses this" in f
               for f in result["findings"]), result["findings"]
    code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.PRIVILEGES, result
    assert fragment in result["detail"]
    assert read_catalog(db) == before


def test_other_sessions_and_confirmation(dbs: Any) -> None:
    db = kea22(dbs())
    before = read_catalog(db)
    proc = kea_db(db, "upgrade", "--kea-version", "3.0")  # no terminal, no --yes
    assert proc.returncode == ExitCode.NOT_CONFIRMED, proc.stdout + proc.stderr
    if db.type == "postgresql":
        other: Any = psycopg.connect(host=db.host, port=db.port, user=db.user,
                                     password=db.password, dbname=db.name,
                                     application_name="kea-dhcp4")
    else:
        other = pymysql.connect(host=db.host, port=db.port, user=db.user,
                                password=db.password, database=db.name)
    try:
        code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
        assert code == ExitCode.OTHER_SESSIONS, result
        assert any("session" in f for f in result["findings"])
        assert read_catalog(db) == before
        code, result = upgrade_json(db, "--kea-version", "3.0", "--yes",
                                    "--allow-other-sessions")
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    finally:
        other.close()


def test_empty_user_context_is_refused_before_any_change(dbs: Any) -> None:
    """A lease6 row with an empty user context, as `kea-admin lease-upload` writes it (the
    insert trigger lets it in; later updates of the row trip over it). kea-admin 3.0.4
    stops halfway through MySQL step 18 -> 19 on it; PostgreSQL takes it as no context."""
    db = kea22(dbs())
    if db.type == "mysql":
        db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, "
                      "prefix_len, state, user_context) VALUES ('2001:db8::99', UNHEX('01'), "
                      "1, 0, 9, 128, 0, '')", database=db.name)
    else:
        db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, "
                      "prefix_len, state, user_context) VALUES ('2001:db8::99', '\\x01', 1, "
                      "0, 9, 128, 0, '')", database=db.name)
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
    if db.type == "mysql":
        assert code == ExitCode.DATA_TRAP, result
        assert any("2001:db8::99" in f for f in result["findings"]), result
        assert read_catalog(db) == before
        code, result = upgrade_json(db, "--kea-version", "3.0", "--yes", "--fix-user-context")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert version(db) == TO["3.0.4"][db.type]
    if db.type == "mysql":
        rows = db.server.sql("SELECT user_context FROM lease6 WHERE address = "
                             "INET6_ATON('2001:db8::99')", database=db.name)
        assert rows == [(None,)]


def test_addresses_a_step_cannot_convert_are_refused_before_any_change(dbs: Any) -> None:
    """Kea 2.2 stores IPv6 addresses as text; MySQL 18 -> 19 converts them to 16 bytes.
    Text that is no address, and two spellings of one address, stop kea-admin 3.0.4 inside
    that step; kea-db refuses before any change with the rows named. PostgreSQL: its step
    fails in the one transaction, and nothing changes."""
    db, theirs = kea22(dbs()), kea22(dbs())
    for target in (db, theirs):
        address = "UNHEX('01')" if target.type == "mysql" else "'\\x01'"
        target.server.sql(
            "INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, prefix_len, "
            f"state) VALUES ('not an address', {address}, 1, 0, 9, 128, 0), "
            f"('2001:0DB8::1', {address}, 1, 0, 10, 128, 0)", database=target.name)
    with pytest.raises(KeaAdminError):
        kea_admin_upgrade(theirs.type, theirs.host, theirs.port, theirs.user,
                          theirs.password, theirs.name, release="3.0.4")
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--plan")
    if db.type == "mysql":
        assert code == ExitCode.OK and any("'not an address'" in f for f in result["findings"])
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    if db.type == "mysql":
        assert (code, result["action"]) == (ExitCode.DATA_TRAP, "refused"), result["detail"]
        named = " ".join(result["findings"])
        assert "'not an address'" in named and "is not an IPv6 address" in named
        assert "is the same address as another row's" in named
    else:
        assert (code, result["action"]) == (ExitCode.UPGRADE_FAILED, "refused"), result
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    db.server.sql("DELETE FROM lease6 WHERE iaid IN (9, 10)", database=db.name)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]


@pytest.mark.parametrize("dbs", ["mariadb"], indirect=True)
def test_lease6_is_read_once_for_its_traps_unless_a_row_could_fall_into_one(dbs: Any) -> None:
    """The guards read lease6 once (the screen); the query that sorts the table to find two
    spellings of one address runs only when a row is not spelt canonically. Read from the
    server's general log of the queries kea-db sent."""
    db = kea22(dbs())
    # The seed spells one address as Kea never does: the screen lets it into the sort.
    db.server.sql("DELETE FROM lease6 WHERE CAST(address AS BINARY) <> "
                  "CAST(INET6_NTOA(INET6_ATON(address)) AS BINARY)", database=db.name)
    db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, prefix_len, "
                  "state) VALUES ('2001:db8::5', UNHEX('01'), 1, 0, 21, 128, 0), "
                  "('2001:db8::6', UNHEX('01'), 1, 0, 22, 128, 0)", database=db.name)

    def sent() -> list[str]:
        db.server.sql("TRUNCATE mysql.general_log")
        db.server.sql("SET GLOBAL general_log = ON")
        try:
            code, result = upgrade_json(db, "--kea-version", "3.0.4", "--plan")
            assert code == ExitCode.OK, result["detail"]
        finally:
            db.server.sql("SET GLOBAL general_log = OFF")
        return [str(r[0]) for r in db.server.sql(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE "
            "user_host LIKE %s", params=(f"{db.user}%",))]

    db.server.sql("SET GLOBAL log_output = 'TABLE'")
    sorting = "FROM lease6 GROUP BY INET6_ATON(address)"
    queries = sent()
    assert any("SUM(CASE WHEN" in q and q.endswith("FROM lease6") for q in queries), queries
    assert not any(sorting in q for q in queries)
    db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, prefix_len, "
                  "state) VALUES ('2001:db8:0::5', UNHEX('01'), 1, 0, 23, 128, 0)",
                  database=db.name)
    queries = sent()
    assert any(sorting in q for q in queries)
    _code, result = upgrade_json(db, "--kea-version", "3.0.4", "--plan")
    assert any("'2001:db8:0::5'" in f and "same address as another" in f
               for f in result["findings"]), result["findings"]


def test_two_upgrades_at_once_one_waits(dbs: Any) -> None:
    db = kea22(dbs())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = db.password
    argv = [sys.executable, "-m", "keadb_cli", "upgrade", "--type", db.type, "--host",
            db.host, "--port", str(db.port), "--user", db.user, "--name", db.name,
            "--kea-version", "3.0", "--yes", "--json", "--allow-other-sessions"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    actions = sorted(json.loads(o)["results"][0]["action"] for o, _e in outs)
    assert actions == ["none", "upgraded"], outs
    assert all(p.returncode == 0 for p in procs)


# -- interrupted runs -------------------------------------------------------------------------


def _start(db: FreshDatabase, *extra: str) -> subprocess.Popen[str]:
    """`kea-db upgrade --kea-version 3.0 --yes --json` (and ``extra``) in the background."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = db.password
    return subprocess.Popen(
        [sys.executable, "-m", "keadb_cli", "upgrade", "--type", db.type, "--host", db.host,
         "--port", str(db.port), "--user", db.user, "--name", db.name, "--kea-version",
         "3.0", "--yes", "--json", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)


# kea-db's upgrade transaction on a PostgreSQL database, seen from a superuser session on
# another database (a session on this one would be one of the "other sessions" upgrade
# refuses): a session of kea-db (application_name) that has a transaction id (it has
# written) and holds an exclusive lock on one of the database's own tables as they were
# before the run (a step's ALTER TABLE). Neither the read-only checks (no transaction id)
# nor verify's scratch build (its own schema, rolled back) match. With the next
# transaction id, to widen the 32-bit id to pg_xact_status's 64-bit one.
_PG_OPEN_UPGRADE = (
    "SELECT a.pid, a.backend_xid::text, pg_snapshot_xmax(pg_current_snapshot())::text "
    "FROM pg_stat_activity a WHERE a.datname = %s AND a.application_name = 'kea-db' "
    "AND a.backend_xid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid "
    "AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = %s) "
    "AND l.relation = ANY(%s::oid[]))"
)
PG_CUT_ATTEMPTS = 8  # at most, until PG_CUTS_WANTED cuts landed inside the transaction
PG_CUTS_WANTED = 3


def _pg_tables(db: FreshDatabase) -> list[int]:
    """The oids of the tables in ``db``'s public schema (an ALTER TABLE keeps them)."""
    return [int(oid) for (oid,) in db.server.sql(
        "SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r'", database=db.name)]


def _pg_open_upgrade(db: FreshDatabase, proc: subprocess.Popen[str],
                     tables: list[int]) -> tuple[int, int] | None:
    """Wait until ``proc``'s upgrade transaction is open on ``db`` (it holds an exclusive lock
    on one of ``tables``): (its backend's pid, its 64-bit transaction id); None if the
    process ended before it was seen."""
    assert tables
    deadline = time.monotonic() + 120
    while proc.poll() is None:
        rows = db.server.sql(_PG_OPEN_UPGRADE, params=(db.name, db.name, tables))
        if rows:
            pid, xid, next_xid = int(rows[0][0]), int(rows[0][1]), int(rows[0][2])
            epoch = (next_xid >> 32) - (1 if xid > next_xid & 0xFFFFFFFF else 0)
            return pid, (epoch << 32) | xid
        assert time.monotonic() < deadline, "the upgrade's transaction never opened"
        time.sleep(0.005)
    return None


def _pg_fate(db: FreshDatabase, pid: int, xid: int) -> str:
    """Once the backend ``pid`` is gone: "committed" or "aborted", as the server recorded
    the transaction ``xid``."""
    deadline = time.monotonic() + 120
    while db.server.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", params=(pid,)):
        assert time.monotonic() < deadline, "the upgrade's backend outlived its client by 2 min"
        time.sleep(0.05)
    status = db.server.sql("SELECT pg_xact_status(%s::xid8)", params=(str(xid),))[0][0]
    assert status in ("committed", "aborted"), status
    return str(status)


def _pg_window(db: FreshDatabase) -> float:
    """Seconds an uninterrupted upgrade of ``db`` holds its transaction open, as seen from
    the first poll that finds it open to the last (bounds the cut points)."""
    tables = _pg_tables(db)
    proc = _start(db)
    opened = _pg_open_upgrade(db, proc, tables)
    assert opened is not None, "the upgrade ended before its transaction was seen open"
    seen = time.monotonic()
    while db.server.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND backend_xid::text "
                        "= %s", params=(opened[0], str(opened[1] & 0xFFFFFFFF))):
        assert time.monotonic() - seen < 600, "the upgrade's transaction never ended"
        time.sleep(0.005)
    window = time.monotonic() - seen
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == ExitCode.OK, out + err
    assert _pg_fate(db, *opened) == "committed"
    return window


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_an_interrupted_upgrade_is_completed_or_untouched(dbs: Any, how: int) -> None:
    """An upgrade cut by SIGKILL or Ctrl-C at a random point inside its run. MySQL: the cut
    run is detected (check-version) and a second run completes it. PostgreSQL (one
    transaction): cut inside it, the database is exactly as before (catalog, lookup rows,
    schema_version) and a second run upgrades it; committed before the cut, it is complete.

    Each half fails unless a cut really landed inside the run: MySQL's when schema_version
    carries the journal's mark; PostgreSQL's when the upgrade's transaction was seen open
    (a transaction id and an exclusive lock on one of the database's tables) before the
    signal and was rolled back after it (pg_xact_status "aborted"). PostgreSQL's attempts
    go on until PG_CUTS_WANTED cuts landed inside, at most PG_CUT_ATTEMPTS."""
    reference = kea22(dbs())
    rng = random.Random(int(how) * 7919 + len(reference.type))
    if reference.type == "postgresql":
        full = _pg_window(reference)
    else:
        started = time.monotonic()
        code, _result = upgrade_json(reference, "--kea-version", "3.0", "--yes")
        full = time.monotonic() - started
        assert code == ExitCode.OK
    expected = read_catalog(reference)
    midway = attempts = 0
    while attempts < (PG_CUT_ATTEMPTS if reference.type == "postgresql" else 3):
        attempts += 1
        db = kea22(dbs())
        original, original_version = read_catalog(db), version(db)
        untouched = False
        if db.type == "postgresql":
            # Cut inside the transaction: once it is seen open, at a random point of it.
            tables = _pg_tables(db)
            proc = _start(db)
            opened = _pg_open_upgrade(db, proc, tables)
            point = rng.uniform(0.0, 0.8 * full)
            if opened is not None:
                time.sleep(point)
            proc.send_signal(how)
            proc.communicate(timeout=120)
            fate = _pg_fate(db, *opened) if opened is not None else "unseen"
            if fate == "aborted":
                midway += 1
                untouched = True
                assert proc.returncode != ExitCode.OK, f"cut at {point:.2f} s"
                catalog.assert_same_catalog(original, read_catalog(db), ignore=set(),
                                            labels=("before", f"cut at {point:.2f} s"))
                assert version(db) == original_version
            elif fate == "committed":
                # Committed before the signal landed: all of it, then (one transaction).
                catalog.assert_same_catalog(expected, read_catalog(db), ignore=set(),
                                            labels=("uninterrupted", "committed, then cut"))
        else:
            proc = _start(db)
            # Cut inside the run: once schema_version carries the mark (the journal has
            # begun), at a random point of what is left of it.
            begun = time.monotonic()
            while not version(db).endswith(".9999") and proc.poll() is None:
                assert time.monotonic() - begun < 60, "the upgrade never began"
                time.sleep(0.02)
            point = rng.uniform(0.0, max(0.05, 0.8 * (full - (time.monotonic() - begun))))
            time.sleep(point)
            proc.send_signal(how)
            proc.communicate(timeout=120)
            if proc.returncode != 0 and version(db).endswith(".9999"):
                midway += 1
                check = kea_db(db, "check-version", "--kea-version", "3.0", "--json")
                assert check.returncode == ExitCode.FOREIGN, check.stdout
                assert "upgrade is under way or was cut short" in check.stdout
        code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
        assert code == ExitCode.OK, (point, result["detail"], result)
        assert result["action"] in ("upgraded", "none"), (point, result)
        if db.type == "postgresql":
            assert result["action"] == ("upgraded" if untouched else "none"), (point, result)
        catalog.assert_same_catalog(expected, read_catalog(db), ignore=set(),
                                    labels=("uninterrupted", f"cut at {point:.2f} s"))
        if db.type == "postgresql" and midway == PG_CUTS_WANTED:
            break
    assert midway >= 1, (f"no cut of {attempts} landed inside the upgrade: the test proved "
                         "nothing")


def test_every_mysql_statement_is_resumable() -> None:
    from keadb_cli.commands.upgrade import journal

    known = scripts.known_schemas("mysql")
    for revision in known.values():
        if migrate.previous("mysql", revision) is None:
            continue
        for statement in scripts.mysql_statements(scripts.rendered_step("mysql", revision)):
            journal.classify(statement)  # raises for a shape the journal cannot resume


@pytest.mark.parametrize(("server", "atomic"), [
    ("10.11.19-MariaDB-0+deb12u1", True), ("10.6.1-MariaDB", True),
    ("5.5.5-10.5.29-MariaDB-0+deb11u1", False), ("10.3.39-MariaDB", False),
    ("9.1.0", True), ("8.0.36-0ubuntu0.22.04.1", True), ("5.7.44-log", False), ("", False)])
def test_atomic_ddl_is_read_from_the_server_version(server: str, atomic: bool) -> None:
    from keadb_cli.commands.upgrade.journal import atomic_ddl

    assert atomic_ddl(server) is atomic


# -- the quiet UPDATE (keadb_cli/commands/upgrade/quiet.py) --------------------------------

QUIET_LEASES = 30_000  # lease6 rows: mysql_19_0's quiet UPDATE takes a few tenths of a second
_DIGITS = " CROSS JOIN ".join(
    f"(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 "
    f"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL "
    f"SELECT 9) {x}" for x in "abcde")
_MANY_LEASE6 = (
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, state, user_context) SELECT "
    "CONCAT('2001:db8:5::', LOWER(HEX(n DIV 65536)), ':', LOWER(HEX(n % 65536))), "
    "UNHEX(LPAD(HEX(n), 8, '0')), 3600, '2031-01-01 00:00:00', 1 + n % 5, 1800, n % 2, n, 128, "
    "n % 3, IF(n % 7 = 0, '{\"ISC\": {\"client-classes\": [\"gold\", \"silver\"]}}', NULL) "
    f"FROM (SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 1 AS n FROM {_DIGITS}) s "
    f"WHERE n <= {QUIET_LEASES}")
# The window: mysql_19_0 has begun and lease6's AFTER UPDATE trigger is missing.
_QUIET_WINDOW = (
    "SELECT (SELECT step FROM `{db}`.keadb_upgrade_journal WHERE id = 1), "
    "(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
    "AND TRIGGER_NAME = 'lease6_AUPD')")


def _kea22_many(db: FreshDatabase) -> FreshDatabase:
    kea22(db)
    db.server.sql(_MANY_LEASE6, database=db.name)
    return db


@pytest.mark.parametrize(("dbs", "how"), [("mariadb", "ctrl-c"), ("mariadb", "lost-connection"),
                                          ("mariadb", "sigkill")], indirect=["dbs"])
def test_a_run_cut_while_a_trigger_is_dropped_is_completed_with_it(dbs: Any, how: str) -> None:
    """mysql_19_0's UPDATE of every lease6 row runs with lease6_AUPD dropped. A run cut in
    that window (Ctrl-C, SIGKILL, or its connection killed on the server) leaves the database
    marked (check-version FOREIGN: no Kea starts on it) and the next `kea-db upgrade`
    completes it: the trigger is back and the catalog and every row (lease statistics
    included) are those of an uninterrupted run. Fails unless a cut landed in the window
    (the trigger is still missing after the cut)."""
    reference = _kea22_many(dbs())
    code, _result = upgrade_json(reference, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.OK
    expected = read_catalog(reference)
    landed = False
    for _attempt in range(3):
        db = _kea22_many(dbs())
        watch = pymysql.connect(unix_socket=db.server.socket, user="root", password="",
                                autocommit=True)
        try:
            proc = _start(db)
            query = _QUIET_WINDOW.format(db=db.name)
            deadline = time.monotonic() + 120
            with watch.cursor() as cur:
                while proc.poll() is None:
                    try:
                        cur.execute(query, (db.name,))
                        step, triggers = cur.fetchone() or (None, 1)
                    except pymysql.err.ProgrammingError:  # no journal yet, or no more
                        step, triggers = None, 1
                    if step == "mysql_19_0" and not triggers:
                        if how == "ctrl-c":
                            proc.send_signal(signal.SIGINT)
                        elif how == "sigkill":
                            proc.kill()
                        else:
                            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE "
                                        "DB = %s AND USER = %s", (db.name, db.user))
                            for (thread,) in cur.fetchall():
                                with contextlib.suppress(pymysql.err.OperationalError):
                                    cur.execute(f"KILL CONNECTION {int(thread)}")
                        break
                    assert time.monotonic() < deadline, "the upgrade never reached mysql_19_0"
                proc.communicate(timeout=120)
                cur.execute(query, (db.name,))
                step, triggers = cur.fetchone() or (None, 1)
        finally:
            watch.close()
        if proc.returncode == 0 or step != "mysql_19_0" or triggers:
            continue  # the cut came after the trigger was back: try again
        landed = True
        assert version(db).endswith(".9999"), version(db)
        check = kea_db(db, "check-version", "--kea-version", "3.0", "--json")
        assert check.returncode == ExitCode.FOREIGN, check.stdout
        code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
        assert result["plan"][0]["revision"] == "mysql_19_0", result["plan"]
        catalog.assert_same_catalog(expected, read_catalog(db), ignore=set(),
                                    labels=("uninterrupted", f"cut by {how}"))
        break
    assert landed, "no cut landed while lease6_AUPD was dropped: the test proved nothing"


@pytest.mark.parametrize("dbs", ["mariadb"], indirect=True)
def test_an_upgrade_from_18_0_drops_the_transient_index_first(dbs: Any) -> None:
    """A database at 18.0 holds lease6_by_binaddr (a run that stopped at 18.0 builds it, as
    kea-admin does); the upgrade from there takes the way that drops it before mysql_19_0's
    UPDATE, and ends with the catalog of a run from 2.2 straight to 3.0, which never built
    it."""
    reference = kea22(dbs())
    code, result = upgrade_json(reference, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.OK, result["detail"]
    db = kea22(dbs())
    code, result = upgrade_json(db, "--kea-version", "2.3.8", "--yes")
    assert (code, result["to"]) == (ExitCode.OK, "18.0"), result["detail"]
    index = ("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
             "INDEX_NAME = 'lease6_by_binaddr'")
    assert db.server.sql(index, params=(db.name,)) == [(1,)]
    code, result = upgrade_json(db, "--kea-version", "3.0", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert db.server.sql(index, params=(db.name,)) == [(0,)]
    catalog.assert_same_catalog(read_catalog(reference), read_catalog(db), ignore=set(),
                                labels=("2.2 -> 3.0", "2.2 -> 18.0 -> 3.0"))


@pytest.mark.parametrize("dbs", ["mariadb"], indirect=True)
def test_a_step_begun_with_the_recorded_sql_resumes_with_it(dbs: Any) -> None:
    """A run cut inside mysql_19_0 by a kea-db without the quiet variant (its journal holds
    the recorded SQL's SHA-256) is completed with the recorded statements, from where it
    stopped: the same catalog and rows as an uninterrupted run."""
    from keadb_cli.commands.upgrade import journal

    reference = kea22(dbs())
    code, _result = upgrade_json(reference, "--kea-version", "3.0", "--yes")
    assert code == ExitCode.OK
    db = kea22(dbs())
    code, result = upgrade_json(db, "--kea-version", "2.3.8", "--yes")
    assert (code, result["to"]) == (ExitCode.OK, "18.0"), result["detail"]
    text = scripts.rendered_step("mysql", "mysql_19_0")
    recorded = scripts.mysql_statements(text)
    # The earlier kea-db ran the first statement (the UPDATE, triggers and all), then was cut.
    db.server.sql(recorded[0], database=db.name)
    db.server.sql(journal.CREATE_JOURNAL, database=db.name)
    db.server.sql(
        f"INSERT INTO {journal.JOURNAL} (id, from_schema, target, step, step_sha256, "
        "next_statement) VALUES (1, '18.0', 'mysql_30_0', 'mysql_19_0', %s, 1)",
        database=db.name, params=(hashlib.sha256(text.encode()).hexdigest(),))
    db.server.sql(f"UPDATE schema_version SET minor = {journal.UPGRADING_MINOR}",
                  database=db.name)
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--yes", "--json")
    result = json.loads(proc.stdout)["results"][0]
    assert (proc.returncode, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert f"mysql_19_0: resuming at statement 2 of {len(recorded)}" in proc.stderr
    catalog.assert_same_catalog(read_catalog(reference), read_catalog(db), ignore=set(),
                                labels=("uninterrupted", "resumed with the recorded SQL"))
