"""When a Kea database is more than one server (issue 18): the node's role in every
command's JSON, init and upgrade refused on a PostgreSQL hot standby and a MariaDB
``read_only`` replica with nothing changed on the primary, and preflight's node check.

Each topology starts once per module: a PostgreSQL primary and a hot standby made with
``pg_basebackup -R``; a MariaDB primary (binary log on) and a ``read_only`` replica with
asynchronous GTID replication. Galera is only judged from its facts here (no cluster).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from servers import (
    FreshDatabase,
    MariaDBServer,
    PostgresServer,
    create_fresh_database,
    start_mariadb,
    start_postgres,
)
from test_init import catalog, init_json, kea_db
from test_preflight import entry, run, write

from keadb_cli.db.node import (
    GALERA,
    PRIMARY,
    READ_ONLY_REPLICA,
    STANDBY,
    UNKNOWN,
    Galera,
    Node,
    conninfo_address,
    refusal_text,
)
from keadb_cli.errors import ExitCode
from keadb_cli.schema.catalog import Catalog

REPLAY_WAIT = 60.0  # seconds a change on the primary may take to reach its replica
STANDBY_PASSWORD = "Standby-Conninfo-" + secrets.token_hex(6)  # in primary_conninfo


# -- the facts alone (no server): Galera and primary_conninfo ---------------------------


def _galera(status: str = "Primary", state: str = "Synced", osu: str = "TOI") -> Node:
    return Node(GALERA, read_only=False, galera=Galera(3, status, state, osu))


@pytest.mark.parametrize(("node", "problem"), [
    (_galera(), ""),
    (_galera(status="non-Primary"), "not in the Primary component"),
    (_galera(state="Donor/Desynced"), "not Synced (wsrep_local_state_comment Donor/Desynced)"),
    (_galera(osu="RSU"), "wsrep_OSU_method RSU, not TOI"),
    (Node(GALERA, read_only=True, galera=Galera(3, "Primary", "Synced", "TOI")),
     "read-only (read_only ON)"),
    (Node(PRIMARY, read_only=False), ""),
    (Node(UNKNOWN, note="cannot read the role"), ""),  # the write itself will tell
    (Node(STANDBY, in_recovery=True), "hot standby (in recovery; primary unknown"),
    (Node(READ_ONLY_REPLICA, read_only=True, super_read_only=True, primary="db1:3306",
          primary_from="SHOW REPLICA STATUS"),
     "read-only (super_read_only ON; source db1:3306 per SHOW REPLICA STATUS)"),
])
def test_what_a_node_refuses(node: Node, problem: str) -> None:
    assert (problem in node.write_problem()) if problem else node.write_problem() == ""
    assert node.writable is not bool(problem)
    assert node.to_json()["writable"] is node.writable


def test_galera_osu_method_matters_to_schema_changes_only() -> None:
    rsu = _galera(osu="RSU")
    assert not rsu.writable and rsu.write_problem(ddl=False) == ""
    assert _galera(state="Joining").write_problem(ddl=False)
    text = refusal_text(rsu, "MariaDB 10.0.0.5:3306/kea", "upgrade")
    assert text.startswith("MariaDB 10.0.0.5:3306/kea is a Galera node that runs schema "
                           "changes with wsrep_OSU_method RSU")
    assert "Synced node of the Primary component" in text
    assert rsu.to_json()["galera"] == {"cluster_size": 3, "cluster_status": "Primary",
                                       "local_state": "Synced", "osu_method": "RSU"}


@pytest.mark.parametrize(("conninfo", "address"), [
    ("user=postgres password=s3cret host=10.0.0.1 port=5433 sslmode=prefer", "10.0.0.1:5433"),
    ("host = 'db one' password='it\\'s host=x' port=6000", "db one:6000"),
    ("password=a\\ host=x host=db2", "db2:5432"),
    ("host=db3 password='unclosed host=x", None),
    ("hostaddr=192.0.2.7 password=pw", "192.0.2.7:5432"),
    ("postgresql://rep:pw@[2001:db8::1]:5444/postgres", "[2001:db8::1]:5444"),
    ("postgres://rep:pw@primary.example", "primary.example:5432"),
    ("password=only", None),
    ("", None),
    (None, None),
])
def test_primary_conninfo_gives_host_and_port_only(conninfo: str | None,
                                                   address: str | None) -> None:
    assert conninfo_address(conninfo) == address


# -- PostgreSQL: a primary and a hot standby ----------------------------------------------


class _Standby(PostgresServer):
    """A standby takes no CREATE ROLE: the primary's roles reach it by replay."""

    def _after_start(self) -> None:
        pass


def _start_standby(primary: PostgresServer) -> PostgresServer:
    """A hot standby of ``primary``: ``pg_basebackup -R`` over TCP as postgres (its
    primary_conninfo then names 127.0.0.1 and the primary's port, and a password)."""

    def make() -> PostgresServer:
        directory = servers._make_dir("keadb-pg-", primary.run_as)
        standby = _Standby(
            directory=directory, port=servers._free_port(), socket=directory,
            log=directory / "server.log", tls="off", server_cert="valid",
            options=primary.options, bindir=primary.bindir, run_as=primary.run_as)
        conninfo = (f"host={primary.host} port={primary.port} user=postgres "
                    f"password={STANDBY_PASSWORD}")
        proc = subprocess.run(
            [str(primary.bindir / "pg_basebackup"), "-D", str(standby.data), "-R",
             "-X", "stream", "-c", "fast", "-d", conninfo],
            env=servers._clean_env(), capture_output=True, text=True, timeout=120,
            check=False, **primary.run_as.popen_kwargs())
        if proc.returncode != 0:
            standby.stop()
            raise servers.ServerStartError(f"pg_basebackup failed: {proc.stderr[-2000:]}")
        return standby

    standby: PostgresServer = servers._start(make)
    return standby


def _wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + REPLAY_WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {REPLAY_WAIT:g} s")
        time.sleep(0.1)


def _on(server: servers.DatabaseServer, db: FreshDatabase) -> FreshDatabase:
    """The same database and user, on ``server`` (the replica)."""
    return FreshDatabase(server=server, name=db.name, user=db.user, password=db.password,
                         host=server.host, port=server.port, type=db.type,
                         socket=server.socket)


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[tuple[FreshDatabase, FreshDatabase]]:
    """(primary, standby) with a Kea 2.2 schema built by `kea-db init` on the primary."""
    primary = start_postgres(settings={"wal_level": "replica", "max_wal_senders": "5"})
    standby = None
    try:
        primary.prepend_hba(f"host replication postgres {primary.host}/32 trust")
        standby = _start_standby(primary)
        db = create_fresh_database(primary)
        code, result = init_json(db)
        assert code == 0 and result["node"]["role"] == PRIMARY, result
        on_standby = _on(standby, db)
        version = "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_version'"
        _wait_for("the schema reached the standby",
                  lambda: standby.sql(version, database=db.name)[0][0] == 1)
        yield db, on_standby
    finally:
        servers.stop_servers([s for s in (standby, primary) if s is not None])


def _pg_snapshot(db: FreshDatabase) -> tuple[Any, ...]:
    server = db.server
    version = server.sql("SELECT version, minor FROM schema_version", database=db.name)
    tables = server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                        database=db.name)
    routines = server.sql("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON "
                          "n.oid = p.pronamespace WHERE n.nspname = 'public'",
                          database=db.name)
    return version[0], tables[0][0], routines[0][0]


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return doc


@pytest.mark.db
def test_pg_standby_reads_and_is_named(pg_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary, standby = pg_pair
    proc = kea_db(standby, "check-version", "--kea-version", "2.2", "--json")
    result = _json(proc)
    assert (proc.returncode, result["verdict"]) == (0, "MATCH"), result
    # The Kea user may not read primary_conninfo: where the primary is stays unknown.
    assert result["node"] == {
        "role": "standby", "writable": False, "in_recovery": True, "primary": None,
        "primary_from": None, "note": "primary_conninfo is not readable by this user (it "
        "needs superuser or pg_read_all_settings; before PostgreSQL 12 it is in recovery.conf)"}
    verify = kea_db(standby, "verify", "--json")
    unverified = _json(verify)
    assert (verify.returncode, unverified["verdict"]) == (52, "UNVERIFIED"), unverified
    assert "is a hot standby" in unverified["detail"]
    assert unverified["detail"].endswith("verify on the primary, whose schema it replays")
    assert _json(kea_db(primary, "verify", "--json"))["verdict"] == "CLEAN"
    human = kea_db(standby, "check-version", "--kea-version", "2.2")
    assert "(node: standby)" in human.stdout
    on_primary = _json(kea_db(primary, "check-version", "--kea-version", "2.2", "--json"))
    assert on_primary["node"] == {"role": "primary", "writable": True, "in_recovery": False}
    assert "node:" not in kea_db(primary, "check-version", "--kea-version", "2.2").stdout


@pytest.mark.db
def test_pg_init_and_upgrade_refused_on_the_standby(
        pg_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary, standby = pg_pair
    before = _pg_snapshot(primary)
    code, result = init_json(standby)
    assert code == ExitCode.NODE_NOT_WRITABLE == 52, result
    assert (result["action"], result["verdict"]) == ("refused", "MATCH")
    where = f"PostgreSQL {standby.host}:{standby.port}/{standby.name}"
    assert result["detail"] == (
        f"{where} is a hot standby (in recovery; primary unknown to this user): init would "
        "fail on its first write or be unsafe. Run it against the primary.")
    proc = kea_db(standby, "upgrade", "--kea-version", "3.0", "--yes", "--json")
    upgrade = _json(proc)
    assert proc.returncode == ExitCode.NODE_NOT_WRITABLE, upgrade
    assert (upgrade["action"], upgrade["verdict"], upgrade["steps"]) == ("refused", "BEHIND", [])
    assert upgrade["node"]["role"] == "standby"
    # --plan runs the same guards: the refusal is a finding, the plan is still shown.
    plan = kea_db(standby, "upgrade", "--kea-version", "3.0", "--plan", "--json")
    planned = _json(plan)
    assert (plan.returncode, planned["action"]) == (0, "planned"), planned
    assert any(f.startswith(f"{where} is a hot standby") and
               f.endswith("(the upgrade refuses this)") for f in planned["findings"])
    assert _pg_snapshot(primary) == before


@pytest.mark.db
def test_pg_standby_names_its_primary_to_a_user_who_may_read_it(
        pg_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    """With pg_read_all_settings (granted on the primary, replayed on the standby) the
    primary's host and port come out of primary_conninfo; its password never does."""
    primary, standby = pg_pair
    primary.server.sql(f'GRANT pg_read_all_settings TO "{primary.user}"')
    try:
        _wait_for("the grant reached the standby", lambda: standby.server.sql(
            "SELECT pg_has_role(%s, 'pg_read_all_settings', 'MEMBER')",
            params=[standby.user])[0][0])
        proc = kea_db(standby, "init", "--kea-version", "2.2", "--json")
        result = _json(proc)
        address = f"{primary.host}:{primary.port}"
        assert result["node"]["primary"] == address, result
        assert result["node"]["primary_from"] == "primary_conninfo"
        assert f"primary {address} per primary_conninfo" in result["detail"]
        assert f"Run it against the primary ({address})." in result["detail"]
        for command in ("check-version", "init", "upgrade"):
            out = kea_db(standby, command, "--kea-version", "2.2", "--json")
            assert STANDBY_PASSWORD not in out.stdout + out.stderr
    finally:
        primary.server.sql(f'REVOKE pg_read_all_settings FROM "{primary.user}"')


def _preflight(tmp_path: Path, lease: dict[str, Any], hosts: dict[str, Any],
               ) -> tuple[int, dict[str, Any]]:
    conf = write(tmp_path / "kea-dhcp4.conf", "Dhcp4", lease=lease, hosts=[hosts],
                 hooks=False)
    proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json")
    return proc.returncode, json.loads(proc.stdout)


def _entry(doc: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in doc["entries"] if e["path"] == path)
    return found


@pytest.mark.db
def test_pg_preflight_knows_where_kea_writes(
        pg_pair: tuple[FreshDatabase, FreshDatabase], tmp_path: Path) -> None:
    _primary, standby = pg_pair
    code, doc = _preflight(tmp_path, entry(standby), entry(standby, readonly=True))
    assert code == ExitCode.NODE_NOT_WRITABLE, doc
    lease = _entry(doc, "Dhcp4.lease-database")
    node = {c["check"]: c for c in lease["checks"]}["node"]
    assert node["status"] == "fail" and node["exit_code"] == 52
    assert node["reason_code"] == "node-not-writable"
    assert f"{standby.host}:{standby.port}/{standby.name} is a hot standby" in node["detail"]
    assert "a lease backend writes" in node["detail"]
    assert lease["node"]["role"] == "standby"
    hosts = _entry(doc, "Dhcp4.hosts-databases[0]")
    hosts_node = {c["check"]: c for c in hosts["checks"]}["node"]
    assert hosts_node["status"] == "pass", hosts_node
    assert "a readonly hosts backend only reads" in hosts_node["detail"]
    assert hosts["status"] == "pass" and hosts["exit_code"] == 0, hosts


# -- MariaDB: a primary and a read_only replica ----------------------------------------------


_BINLOG = ("--log-bin-trust-function-creators=1", "--binlog-format=ROW")


@pytest.fixture(scope="module")
def mariadb_pair() -> Iterator[tuple[FreshDatabase, FreshDatabase]]:
    """(primary, replica): GTID replication from the start of the primary's binary log,
    and a Kea 2.2 schema built by `kea-db init` on the primary that reached the replica."""
    primary = start_mariadb(extra_args=("--log-bin=primary-bin", "--server-id=1", *_BINLOG))
    replica: MariaDBServer | None = None
    try:
        replica = start_mariadb(extra_args=("--server-id=2", "--read-only=1", *_BINLOG))
        password = secrets.token_urlsafe(12)
        primary.sql(f"CREATE USER 'repl'@'{primary.host}' IDENTIFIED BY '{password}'")
        primary.sql(f"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'{primary.host}'")
        replica.sql(f"CHANGE MASTER TO MASTER_HOST='{primary.host}', "
                    f"MASTER_PORT={primary.port}, MASTER_USER='repl', "
                    f"MASTER_PASSWORD='{password}', MASTER_USE_GTID=slave_pos")
        replica.sql("START SLAVE")
        db = create_fresh_database(primary)
        code, result = init_json(db)
        assert code == 0 and result["node"]["role"] == PRIMARY, result
        count = ("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                 f"'{db.name}' AND TABLE_NAME = 'schema_version'")
        server = replica
        _wait_for("the schema reached the replica",
                  lambda: int(server.sql(count)[0][0]) == 1
                  and bool(server.sql(f"SELECT 1 FROM `{db.name}`.schema_version")))
        yield db, _on(replica, db)
    finally:
        servers.stop_servers([s for s in (replica, primary) if s is not None])


def _mysql_snapshot(db: FreshDatabase) -> tuple[Any, ...]:
    server = db.server
    version = server.sql(f"SELECT version, minor FROM `{db.name}`.schema_version")
    objects = server.sql(
        "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s), "
        "(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s), "
        "(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s)",
        params=[db.name] * 3)
    return tuple(version[0]), tuple(objects[0])


@pytest.mark.db
def test_mariadb_replica_reads_and_refuses(
        mariadb_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary, replica = mariadb_pair
    proc = kea_db(replica, "check-version", "--kea-version", "2.2", "--json")
    result = _json(proc)
    assert (proc.returncode, result["verdict"]) == (0, "MATCH"), result
    node = result["node"]
    assert (node["role"], node["writable"], node["read_only"]) == (
        "read-only-replica", False, True)
    assert "super_read_only" not in node  # MariaDB has no such variable
    # Kea's user may not read SHOW SLAVE STATUS: the source stays unknown, and says why.
    assert node["primary"] is None and node["note"].startswith("SHOW SLAVE STATUS refused")
    before = _mysql_snapshot(primary)
    code, init = init_json(replica)
    assert code == ExitCode.NODE_NOT_WRITABLE, init
    assert init["detail"].startswith(
        f"MySQL {replica.host}:{replica.port}/{replica.name} is read-only (read_only ON; "
        "source unknown to this user)")
    proc = kea_db(replica, "upgrade", "--kea-version", "3.0", "--yes", "--json")
    upgrade = _json(proc)
    assert proc.returncode == ExitCode.NODE_NOT_WRITABLE, upgrade
    assert upgrade["steps"] == [] and upgrade["action"] == "refused"
    assert _mysql_snapshot(primary) == before
    assert _mysql_snapshot(replica) == before  # and nothing diverged on the replica either


@pytest.mark.db
def test_mariadb_replica_names_its_source_to_a_user_who_may_read_it(
        mariadb_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary, replica = mariadb_pair
    # SLAVE MONITOR (MariaDB 10.5.9+; REPLICATION CLIENT before), granted on the replica
    # alone (as root, whom read_only does not stop).
    replica.server.sql(f"GRANT SLAVE MONITOR ON *.* TO '{replica.user}'@'%'")
    try:
        result = _json(kea_db(replica, "check-version", "--kea-version", "2.2", "--json"))
        assert result["node"]["primary"] == f"{primary.host}:{primary.port}", result["node"]
        assert result["node"]["primary_from"] == "SHOW SLAVE STATUS"
    finally:
        replica.server.sql(f"REVOKE SLAVE MONITOR ON *.* FROM '{replica.user}'@'%'")


@pytest.mark.db
def test_mariadb_preflight_knows_where_kea_writes(
        mariadb_pair: tuple[FreshDatabase, FreshDatabase], tmp_path: Path) -> None:
    primary, replica = mariadb_pair
    code, doc = _preflight(tmp_path, entry(replica), entry(replica, readonly=True))
    assert code == ExitCode.NODE_NOT_WRITABLE, doc
    lease = {c["check"]: c for c in _entry(doc, "Dhcp4.lease-database")["checks"]}
    assert lease["node"]["status"] == "fail" and lease["node"]["exit_code"] == 52
    assert "is read-only (read_only ON" in lease["node"]["detail"]
    hosts = _entry(doc, "Dhcp4.hosts-databases[0]")
    assert hosts["status"] == "pass", hosts
    code, doc = _preflight(tmp_path, entry(primary), entry(primary))
    assert code == 0, doc
    assert _entry(doc, "Dhcp4.lease-database")["node"]["role"] == "primary"


# -- both MySQL flavours: a read_only server, and a primary's node ---------------------------


@pytest.mark.db
def test_read_only_server_on_both_flavours(
        mysql_server_factory: Callable[..., servers.MySQLFamilyServer], mysql_flavor: str,
        fresh_db_factory: Callable[..., FreshDatabase], tmp_path: Path) -> None:
    """A server started with read_only ON (no replication): the node is a read-only replica
    whose source nobody names, init is refused and the database stays empty."""
    server = mysql_server_factory(tls="off", flavor=mysql_flavor, extra_args=("--read-only=1",))
    db = fresh_db_factory(server)
    result = _json(kea_db(db, "check-version", "--kea-version", "2.2", "--json"))
    assert result["verdict"] == "EMPTY", result
    node = result["node"]
    assert (node["role"], node["read_only"], node["primary"]) == (
        "read-only-replica", True, None), node
    if mysql_flavor == "mariadb":
        assert "super_read_only" not in node
        assert node["note"].startswith("SHOW SLAVE STATUS refused")
    else:
        assert node["super_read_only"] is False
        assert node["note"].startswith("SHOW REPLICA STATUS refused")
    code, init = init_json(db)
    assert (code, init["verdict"]) == (ExitCode.NODE_NOT_WRITABLE, "EMPTY"), init
    assert "is read-only (read_only ON; source unknown to this user)" in init["detail"]
    tables = server.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA = %s", params=[db.name])
    assert int(tables[0][0]) == 0
    code, doc = _preflight(tmp_path, entry(db), entry(db, readonly=True))
    lease = {c["check"]: c for c in _entry(doc, "Dhcp4.lease-database")["checks"]}
    assert lease["node"]["status"] == "fail" and lease["schema"]["status"] == "fail"
    assert code == ExitCode.NODE_NOT_WRITABLE  # worse than EMPTY
    assert {c["check"]: c for c in _entry(doc, "Dhcp4.hosts-databases[0]")["checks"]}[
        "node"]["status"] == "pass"


@pytest.mark.db
def test_a_primary_is_named_on_every_flavour(fresh_db: FreshDatabase) -> None:
    result = _json(kea_db(fresh_db, "check-version", "--kea-version", "2.2", "--json"))
    node = result["node"]
    assert (node["role"], node["writable"]) == ("primary", True), node
    flavour = fresh_db.server.flavor
    assert ("in_recovery" in node) == (flavour == "postgresql")
    assert ("read_only" in node) == (flavour != "postgresql")
    assert ("super_read_only" in node) == (flavour == "mysql")
    tls = json.loads(kea_db(fresh_db, "test-tls", "--json").stdout)
    assert tls["results"][0]["node"]["role"] == "primary", tls
    verify = _json(kea_db(fresh_db, "verify", "--json"))
    assert verify["verdict"] == "EMPTY" and verify["node"]["role"] == "primary", verify


# -- an upgrade on the primary reaches the standby: upgrade --plan names the standbys, and
# check-version --wait on the standby waits for its replay ---------------------------------


def _check(db: FreshDatabase, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "check-version", "--kea-version", "3.0", "--json", *extra)
    return proc.returncode, _json(proc)


def _plan(db: FreshDatabase) -> dict[str, Any]:
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan", "--skip-verify", "--json")
    planned = _json(proc)
    assert (proc.returncode, planned["action"]) == (0, "planned"), planned
    return planned


def _upgraded(db: FreshDatabase) -> dict[str, Any]:
    proc = kea_db(db, "upgrade", "--kea-version", "3.0", "--yes", "--skip-verify", "--json")
    result = _json(proc)
    assert (proc.returncode, result["action"]) == (0, "upgraded"), result
    return result


def _waits_in_vain_then_matches(primary: FreshDatabase, replica: FreshDatabase) -> None:
    """With the replica's replay paused after the upgrade on the primary: --wait reads the
    replica again and again until --wait-timeout, and ends BEHIND."""
    code, behind = _check(replica, "--wait-timeout", "1")
    assert (code, behind["verdict"]) == (ExitCode.BEHIND, "BEHIND"), behind
    wait = behind["wait"]
    assert (wait["waited_for"], wait["gave_up"], wait["timeout"]) == ("replay", True, 1.0)
    assert wait["attempts"] > 1, wait
    assert f"after {wait['attempts']} attempts" in behind["detail"]
    text = kea_db(replica, "check-version", "--kea-version", "3.0", "--wait-timeout", "0.5")
    assert "waiting for the standby's replay; gave up at --wait-timeout 0.5 s" in text.stdout
    # On the primary the same verdict is final at once (no replay to wait for).
    assert _check(primary, "--wait")[1]["wait"]["attempts"] == 1


@pytest.mark.db
def test_pg_upgrade_on_the_primary_reaches_the_standby(
        pg_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary_db, standby_db = pg_pair
    primary, standby = primary_db.server, standby_db.server
    db = create_fresh_database(primary)
    code, result = init_json(db)
    assert code == 0, result
    on_standby = _on(standby, db)
    # A primary with a BEHIND schema: --wait gives its verdict at once.
    code, behind = _check(db, "--wait", "--wait-timeout", "600")
    assert (code, behind["verdict"], behind["node"]["role"]) == (
        ExitCode.BEHIND, "BEHIND", "primary"), behind
    assert behind["wait"] == {"timeout": 600.0, "attempts": 1, "seconds": behind["wait"][
        "seconds"], "waited_for": None, "gave_up": False}
    # The plan counts the standby even for a user who sees no details of it.
    (name,), = primary.sql("SELECT application_name FROM pg_stat_replication")
    counted = _plan(db)
    standbys = counted["standbys"]
    assert (standbys["source"], standbys["count"]) == ("pg_stat_replication", 1), standbys
    assert standbys["rows"][0]["state"] is None and "pg_monitor" in standbys["note"]
    assert any(f.startswith("1 of them without details: this user sees no state")
               for f in counted["findings"]), counted
    primary.sql(f'GRANT pg_monitor TO "{db.user}"')
    primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
    primary.sql("SELECT pg_reload_conf()")
    try:
        _wait_for("the standby became synchronous", lambda: primary.sql(
            "SELECT sync_state FROM pg_stat_replication")[0][0] == "sync")
        planned = _plan(db)
        row = planned["standbys"]["rows"][0]
        assert (row["name"], row["state"], row["sync_state"], row["synchronous"]) == (
            name, "streaming", "sync", True), planned["standbys"]
        assert row["address"] == f"{primary.host}:{row['address'].rsplit(':', 1)[1]}"
        assert planned["standbys"]["note"] is None
        assert any(f.startswith("1 standby(s) per pg_stat_replication will replay the "
                                f"upgrade: {name} ({row['address']}, streaming, sync")
                   for f in planned["findings"]), planned["findings"]
        assert any(f.startswith(f"standby {name} is synchronous (sync_state sync): every "
                                "commit of the upgrade waits") for f in planned["findings"])
        text = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan", "--skip-verify")
        assert f"will replay the upgrade: {name} (" in text.stderr + text.stdout
    finally:
        primary.sql("ALTER SYSTEM RESET synchronous_standby_names")
        primary.sql("SELECT pg_reload_conf()")
        primary.sql(f'REVOKE pg_monitor FROM "{db.user}"')
    (lsn,), = primary.sql("SELECT pg_current_wal_lsn()::text")
    _wait_for("the standby replayed init", lambda: standby.sql(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=[lsn])[0][0])
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        assert _upgraded(db)["standbys"]["count"] == 1
        _waits_in_vain_then_matches(db, on_standby)
    finally:
        standby.sql("SELECT pg_wal_replay_resume()")
    code, match = _check(on_standby, "--wait")
    assert (code, match["verdict"], match["node"]["role"]) == (0, "MATCH", "standby"), match
    assert match["wait"]["waited_for"] in (None, "replay")
    assert _pg_snapshot(on_standby) == _pg_snapshot(db)
    assert _without_last_values(catalog(on_standby)) == _without_last_values(catalog(db))


def _replay_until_the_mark(replica: servers.DatabaseServer, db: FreshDatabase,
                           before: str) -> None:
    """Let the paused replica apply the primary's transactions after GTID ``before`` one at
    a time (START SLAVE UNTIL) until its schema_version carries kea-db's upgrade mark:
    the replica then holds a MySQL upgrade partway, as it does while replaying one."""
    domain, server, seq = before.split("-")
    for step in range(1, 200):
        until = f"{domain}-{server}-{int(seq) + step}"
        # MariaDB takes UNTIL only with both threads stopped; both stop there by themselves,
        # perhaps not yet when the wait returns: stopped for sure before the next START.
        replica.sql("STOP SLAVE")
        replica.sql(f"START SLAVE UNTIL master_gtid_pos = '{until}'")
        assert int(replica.sql("SELECT MASTER_GTID_WAIT(%s, %s)",
                               params=[until, REPLAY_WAIT])[0][0]) == 0
        (minor,), = replica.sql(f"SELECT minor FROM `{db.name}`.schema_version")
        if int(minor) == 9999:
            replica.sql("STOP SLAVE")
            return
    raise AssertionError("the upgrade's mark never showed on the replica")


def _without_last_values(read: Catalog) -> Catalog:
    """A catalog without its sequences' last values: a standby reads the value its primary
    logged ahead in the WAL (PostgreSQL logs 32 values of a sequence at a time), not the
    primary's own."""
    return dataclasses.replace(read, sequences=tuple(
        dataclasses.replace(s, options=tuple(o for o in s.options if o[0] != "last_value"))
        for s in read.sequences))


@pytest.mark.db
def test_mariadb_upgrade_on_the_primary_reaches_the_replica(
        mariadb_pair: tuple[FreshDatabase, FreshDatabase]) -> None:
    primary_db, replica_db = mariadb_pair
    primary, replica = primary_db.server, replica_db.server
    db = create_fresh_database(primary)
    code, result = init_json(db)
    assert code == 0, result
    on_replica = _on(replica, db)
    (position,), = primary.sql("SELECT @@GLOBAL.gtid_binlog_pos")
    assert int(replica.sql("SELECT MASTER_GTID_WAIT(%s, %s)",
                           params=[position, REPLAY_WAIT])[0][0]) == 0
    # The plan lists the primary's replicas to a user who may read SHOW SLAVE HOSTS only.
    standbys = _plan(db)["standbys"]
    assert (standbys["count"], standbys["rows"]) == (None, []), standbys
    assert standbys["note"].startswith("SHOW SLAVE HOSTS refused")
    assert "it needs REPLICATION MASTER ADMIN" in standbys["note"]
    primary.sql(f"GRANT REPLICATION MASTER ADMIN ON *.* TO '{db.user}'@'%'")
    try:
        (server_id,), = replica.sql("SELECT @@GLOBAL.server_id")
        planned = _plan(db)
        assert planned["standbys"]["count"] == 1, planned["standbys"]
        assert planned["standbys"]["rows"][0]["name"] == f"server_id {server_id}"
        assert any(f.startswith("1 replica(s) per SHOW SLAVE HOSTS will replay the upgrade: "
                                f"server_id {server_id}") for f in planned["findings"])
    finally:
        primary.sql(f"REVOKE REPLICATION MASTER ADMIN ON *.* FROM '{db.user}'@'%'")
    replica.sql("STOP SLAVE SQL_THREAD")
    (before,), = primary.sql("SELECT @@GLOBAL.gtid_binlog_pos")
    try:
        _upgraded(db)
        _waits_in_vain_then_matches(db, on_replica)
        _replay_until_the_mark(replica, db, before)
        # Partway, the replica shows the upgrade's mark: FOREIGN, upgrade-under-way ...
        code, partway = _check(on_replica)
        assert (code, partway["verdict"], partway.get("reason_code")) == (
            ExitCode.FOREIGN, "FOREIGN", "upgrade-under-way"), partway
        # ... which --wait waits through once the replay goes on (from 2 s into its wait).
        resume = threading.Timer(2.0, replica.sql, args=("START SLAVE",))
        resume.start()
        try:
            code, match = _check(on_replica, "--wait")
        finally:
            resume.join()
    finally:
        replica.sql("START SLAVE")
    assert (code, match["verdict"], match["node"]["role"]) == (
        0, "MATCH", "read-only-replica"), match
    assert (match["wait"]["waited_for"], match["wait"]["gave_up"]) == ("replay", False), match
    assert _mysql_snapshot(on_replica) == _mysql_snapshot(db)
    assert catalog(on_replica) == catalog(db)
