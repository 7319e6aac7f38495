"""kea-db's commands on a real 3-node Galera cluster (issue 18, items 3 and 4): init through
one node is the schema on every node; the init/upgrade lock and the other-sessions check
hold for the whole cluster (GET_LOCK and PROCESSLIST are each node's own, so kea-db takes
and reads them on every node); ``upgrade --plan`` says that each step's DDL blocks writes
on every node (TOI); a node outside the Primary component takes no init or upgrade; kea-db's
upgrade through one node leaves on every node the catalog and rows that kea-admin 3.0.4's
upgrade of the same data leaves on a single server (issue 18, item 1).

Every run is the real CLI (a subprocess) as a user with Kea's documented grant only (ALL
on its database), through the nodes' client ports on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from kea_admin import kea_admin_init, kea_admin_upgrade
from matrix import Cell
from servers import (
    DatabaseServer,
    FreshDatabase,
    GaleraCluster,
    GaleraNode,
    create_fresh_database,
    drop_fresh_database,
)
from test_matrix import EXPIRIES, expiries, lifted, seed_expiries
from test_upgrade import IGNORE, read_catalog, seed

from keadb_cli.db.backends.mysql import _NODE_ADDRESS
from keadb_cli.db.cluster import ClusterSessions
from keadb_cli.errors import ExitCode
from keadb_cli.schema import catalog
from keadb_cli.schema.guards import toi_findings

db_test = pytest.mark.db

ER_CON_COUNT_ERROR = 1040  # Too many connections
REPLICATION_WAIT = 10.0  # seconds a row committed on one node may take to show on another
SCHEMA = {"2.2": "14.0", "2.6": "22.1", "3.0": "30.0"}  # MySQL schemas of these releases


def through(db: FreshDatabase, node: GaleraNode) -> FreshDatabase:
    """``db`` as reached through ``node``'s client port."""
    return dataclasses.replace(db, server=node, host=node.host, port=node.port)


def argv(db: FreshDatabase, command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "keadb_cli", command, "--type", "mysql", "--host", db.host,
            "--port", str(db.port), "--user", db.user, "--name", db.name, *extra]


def cli_env(db: FreshDatabase) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "MYSQL"))}
    env["KEA_DB_PASSWORD"] = db.password
    return env


def kea_db(db: FreshDatabase, command: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    """Run ``kea-db command ... --json``: (exit code, the one result, stdout + stderr)."""
    proc = subprocess.run(argv(db, command, *extra, "--json"), capture_output=True, text=True,
                          env=cli_env(db), timeout=300, check=False, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert db.password not in output
    result: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return proc.returncode, result, output


def verdicts(db: FreshDatabase, cluster: GaleraCluster, release: str) -> list[str]:
    """check-version for ``release`` through every node, once each node shows the same
    schema (a row committed on one node is applied on the others moments later)."""
    deadline = time.monotonic() + REPLICATION_WAIT
    while True:
        found = [kea_db(through(db, node), "check-version", "--kea-version", release)[1]
                 for node in cluster.nodes]
        seen = [r["verdict"] for r in found]
        if len(set(seen)) == 1 or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def schema_everywhere(db: FreshDatabase, cluster: GaleraCluster) -> list[object]:
    return [node.sql("SELECT version, minor FROM schema_version", database=db.name)
            for node in cluster.nodes]


@pytest.fixture
def kea_db_on(galera: GaleraCluster) -> Iterator[Callable[[str], FreshDatabase]]:
    """``make(release)``: a fresh database of a user with Kea's grant (ALL on it), created
    on node 1 (users, grants and databases replicate as DDL), with ``kea-db init`` of
    ``release`` through node 1 ("" for an empty one); dropped after."""
    made: list[FreshDatabase] = []
    trust(galera, True)

    def make(release: str) -> FreshDatabase:
        db = create_fresh_database(galera.nodes[0])
        made.append(db)
        if release:
            code, result, output = kea_db(db, "init", "--kea-version", release)
            assert (code, result["action"]) == (ExitCode.OK, "initialized"), output
        return db

    yield make
    trust(galera, False)
    first = galera.nodes[0]
    for db in made:
        first.drop_user(db.user)
        first.drop_database(db.name)


def trust(cluster: GaleraCluster, on: bool) -> None:
    """``log_bin_trust_function_creators`` on every node (a node's own setting): on a
    Galera node, Kea's user (no SUPER) may create triggers only with it on."""
    for node in cluster.nodes:
        node.sql(f"SET GLOBAL log_bin_trust_function_creators = {int(on)}")


@db_test
def test_init_through_one_node_is_kea_schema_on_every_node(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    # Kea's grant holds no SUPER: with log_bin OFF but wsrep on, MariaDB refuses its
    # CREATE TRIGGER (1419) unless log_bin_trust_function_creators; init says so before
    # it creates anything.
    assert galera.nodes[0].sql("SELECT @@log_bin") == [(0,)]
    db = kea_db_on("")
    trust(galera, False)
    code, result, output = kea_db(db, "init", "--kea-version", "2.2")
    assert (code, result["action"]) == (ExitCode.PRIVILEGES, "refused"), output
    assert "log_bin_trust_function_creators = 1 on every node" in result["detail"]
    assert verdicts(db, galera, "2.2") == ["EMPTY"] * 3
    trust(galera, True)
    code, result, output = kea_db(db, "init", "--kea-version", "2.2")
    assert (code, result["action"], result["schema"]) == (ExitCode.OK, "initialized",
                                                           SCHEMA["2.2"]), output
    assert result["node"]["role"] == "galera" and result["node"]["writable"]
    assert verdicts(db, galera, "2.2") == ["MATCH"] * 3
    # Again through node 3: already there.
    code, result, output = kea_db(through(db, galera.nodes[2]), "init", "--kea-version", "2.2")
    assert (code, result["action"]) == (ExitCode.OK, "none"), output


@db_test
def test_the_cluster_lists_each_node_client_address(galera: GaleraCluster) -> None:
    """What the cluster-wide lock logs in to: every node's 127.0.0.1:<client port>."""
    wanted = sorted(f"{node.host}:{node.port}" for node in galera.nodes)
    for node in galera.nodes:
        listed = node.status()["wsrep_incoming_addresses"]
        assert sorted(listed.split(",")) == wanted, node.name


@db_test
def test_two_upgrades_through_two_nodes_one_upgrades(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    db = kea_db_on("2.2")
    runs = [through(db, node) for node in galera.nodes[:2]]
    # Each sees the other's sessions (it logs in to every node): --allow-other-sessions.
    procs = [subprocess.Popen(argv(run, "upgrade", "--kea-version", "3.0", "--yes", "--json",
                                   "--allow-other-sessions"),
                              env=cli_env(run), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL) for run in runs]
    outs = [proc.communicate(timeout=600) for proc in procs]
    results = [json.loads(out)["results"][0] for out, _err in outs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(r["action"] for r in results) == ["none", "upgraded"], outs
    upgraded = next(r for r in results if r["action"] == "upgraded")
    waited = next(r for r in results if r["action"] == "none")
    assert upgraded["steps"] and not waited["steps"]
    assert "reached by another kea-db upgrade while this one waited" in waited["detail"]
    assert verdicts(db, galera, "3.0") == ["MATCH"] * 3
    assert len({str(s) for s in schema_everywhere(db, galera)}) == 1


@db_test
def test_the_lock_held_on_node_1_stops_an_upgrade_through_node_2(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    """GET_LOCK is each node's own: kea-db takes it on every node, so a lock held on node 1
    alone stops an upgrade started through node 2 (LOCKED, node 1 named)."""
    db = kea_db_on("2.6")
    node1, node2 = galera.nodes[0], galera.nodes[1]
    holder = pymysql.connect(host=node1.host, port=node1.port, user=db.user,
                             password=db.password, database=db.name, connect_timeout=10)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK('kea-db-init', 0)")
            assert cur.fetchone() == (1,)
        started = time.monotonic()
        code, result, output = kea_db(through(db, node2), "upgrade", "--kea-version", "3.0",
                                      "--yes", "--lock-timeout", "2")
        assert (code, result["action"]) == (ExitCode.LOCKED, "refused"), output
        assert f"holds the lock on node {node1.host}:{node1.port} of the cluster" in \
            result["detail"]
        assert time.monotonic() - started < 60
    finally:
        holder.close()
    assert verdicts(db, galera, "2.6") == ["MATCH"] * 3  # nothing changed


@db_test
def test_a_session_on_node_3_refuses_an_upgrade_through_node_1(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    db = kea_db_on("2.6")
    node3 = galera.nodes[2]
    kea = pymysql.connect(host=node3.host, port=node3.port, user=db.user,
                          password=db.password, database=db.name, connect_timeout=10)
    try:
        code, result, output = kea_db(db, "upgrade", "--kea-version", "3.0", "--yes")
        assert (code, result["action"]) == (ExitCode.OTHER_SESSIONS, "refused"), output
        assert f"on node(s) {node3.host}:{node3.port} of the cluster's 3" in result["detail"]
        assert any(f.startswith(f"node {node3.host}:{node3.port}: session ")
                   for f in result["findings"]), result["findings"]
        assert verdicts(db, galera, "2.6") == ["MATCH"] * 3  # nothing changed
        # --plan reports the session and what the cluster will feel of each step.
        code, plan, output = kea_db(db, "upgrade", "--kea-version", "3.0", "--plan")
        assert (code, plan["action"]) == (ExitCode.OK, "planned"), output
        findings = plan["findings"]
        assert any(f.startswith(f"node {node3.host}:{node3.port}: session ") for f in findings)
        assert any("total order isolation (TOI)" in f and "every node of the cluster (3 nodes)"
                   in f and "blocks writes" in f for f in findings), findings
        toi = [f for f in findings if f.startswith("Galera TOI: ")]
        assert len(toi) == len(plan["plan"]) > 0, findings
        for step, finding in zip(plan["plan"], toi, strict=True):
            assert finding.startswith(f"Galera TOI: {step['revision']} (schema "), finding
            for table, rows in step["rewrites"].items():
                assert f"{table} (~{rows} rows)" in finding, finding
        assert any(" (~0 rows)" in f for f in toi), toi  # some step rewrites tables
        code, result, output = kea_db(db, "upgrade", "--kea-version", "3.0", "--yes",
                                      "--allow-other-sessions")
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), output
        assert any("total order isolation" in f for f in result["findings"])
    finally:
        kea.close()
    assert verdicts(db, galera, "3.0") == ["MATCH"] * 3


@db_test
def test_plan_text_names_toi(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    db = kea_db_on("2.6")
    proc = subprocess.run(argv(db, "upgrade", "--kea-version", "3.0", "--plan"),
                          capture_output=True, text=True, env=cli_env(db), timeout=300,
                          check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blocks writes on every node while it runs; it rewrites" in proc.stderr
    assert "total order isolation (TOI)" in proc.stderr


@db_test
def test_a_node_outside_the_primary_component_refuses(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    empty, older = kea_db_on(""), kea_db_on("2.6")
    node3 = galera.nodes[2]
    node3.isolate()
    for db, command in ((empty, "init"), (older, "upgrade")):
        extra = ("--yes",) if command == "upgrade" else ()
        code, result, output = kea_db(through(db, node3), command, "--kea-version", "3.0",
                                      *extra)
        assert (code, result["action"]) == (ExitCode.NODE_NOT_WRITABLE, "refused"), output
        assert "is not in the Primary component" in result["detail"], result["detail"]
    galera.restore()
    assert verdicts(empty, galera, "3.0") == ["EMPTY"] * 3
    assert verdicts(older, galera, "2.6") == ["MATCH"] * 3


@db_test
def test_a_node_that_refuses_the_login_refuses_init_before_any_change(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase]
) -> None:
    """Node 3 full (max_connections reached; root keeps its one extra connection): init
    through node 1 cannot take the lock there, and refuses with node 3 named."""
    db = kea_db_on("")
    node3 = galera.nodes[2]
    (previous,), = node3.sql("SELECT @@GLOBAL.max_connections")
    node3.sql("SET GLOBAL max_connections = 10")  # MariaDB's least
    held: list[Any] = []
    try:
        full = 0  # Kea's user refused (1040) so many times in a row, 0.3 s apart
        for _ in range(40):  # bounded: root sessions fill node 3 until Kea's user is refused
            try:
                probe = pymysql.connect(host=node3.host, port=node3.port, user=db.user,
                                        password=db.password, database=db.name,
                                        connect_timeout=10)
            except pymysql.OperationalError as err:
                assert err.args[0] == ER_CON_COUNT_ERROR, err
                full += 1
                if full == 2:
                    break
                time.sleep(0.3)
                continue
            probe.close()
            full = 0
            held.append(pymysql.connect(unix_socket=node3.socket, user="root", password="",
                                        connect_timeout=10))
        assert full == 2, "node 3 never refused Kea's user"
        code, result, output = kea_db(db, "init", "--kea-version", "2.2")
        assert code in (ExitCode.UNREACHABLE, ExitCode.DENIED), output
        assert result["action"] == "refused", output
        assert f"its node {node3.host}:{node3.port} cannot be logged in to" in result["detail"]
    finally:
        for conn in held:
            conn.close()
        node3.sql(f"SET GLOBAL max_connections = {int(str(previous))}")
    assert verdicts(db, galera, "2.2") == ["EMPTY"] * 3  # nothing was built


@db_test
def test_with_the_binary_log_init_refuses_before_any_change(
    galera_cluster_factory: Callable[..., GaleraCluster],
) -> None:
    """A node with the binary log on and log_bin_trust_function_creators off: Kea's user
    cannot create the routines, and init says so before it creates anything."""
    node = galera_cluster_factory(1, extra_args=("--log-bin=mariadb-bin",)).nodes[0]
    db = create_fresh_database(node)
    try:
        code, result, output = kea_db(db, "init", "--kea-version", "2.2")
        assert (code, result["action"]) == (ExitCode.PRIVILEGES, "refused"), output
        assert "log_bin_trust_function_creators" in result["detail"]
        assert node.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA = %s", params=(db.name,)) == [(0,)]
    finally:
        node.drop_user(db.user)
        node.drop_database(db.name)


# -- the same result as kea-admin on a single server ------------------------------------------


def synced_catalog(db: FreshDatabase) -> catalog.Catalog:
    """The catalog and rows of ``db`` on its node, read once the node has applied every
    write the cluster committed before (``wsrep_sync_wait``: causal reads)."""
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
        return catalog.read_catalog(conn, "mysql")
    finally:
        conn.close()


@contextlib.contextmanager
def plain_auto_increment(node: GaleraNode) -> Iterator[None]:
    """New sessions on ``node`` number AUTO_INCREMENT rows 1, 2, 3 ... as a single server
    does: the matrix's seed names the rows it refers to by those ids. Galera (with
    ``wsrep_auto_increment_control``, its default) gives each node its own
    increment (the cluster size) and offset, and a session cannot change them."""
    names = ("wsrep_auto_increment_control", "auto_increment_increment",
             "auto_increment_offset")
    saved = node.sql(f"SELECT {', '.join('@@GLOBAL.' + n for n in names)}")[0]
    node.sql("SET GLOBAL wsrep_auto_increment_control = OFF, auto_increment_increment = 1, "
             "auto_increment_offset = 1")
    try:
        yield
    finally:
        node.sql("SET GLOBAL auto_increment_increment = %s, auto_increment_offset = %s, "
                 "wsrep_auto_increment_control = %s", params=(saved[1], saved[2], saved[0]))


@db_test
@pytest.mark.kea
@pytest.mark.parametrize("matrix_server", ["mariadb10.11-latin1"], indirect=True)
def test_upgrade_through_node_2_leaves_kea_admins_catalog_and_rows_on_every_node(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase],
    matrix_server: DatabaseServer, matrix_cell: Cell,
) -> None:
    """kea-admin 2.2.0's db-init and the matrix's seed, on the cluster through node 1 and on
    a single MariaDB 10.11 of the same settings (the nodes' compiled-in defaults); kea-db's
    upgrade to 3.0 through node 2 and kea-admin 3.0.4's upgrade of the single server: every
    node holds the single server's catalog and rows, and the cluster keeps its 3 nodes.

    The single server's upgrade numbers new AUTO_INCREMENT rows as Galera does on node 2
    (its increment and offset, read from node 2), where kea-db's upgrade runs."""
    ours = kea_db_on("")  # log_bin_trust_function_creators on: kea-admin's triggers too
    theirs = matrix_cell.create_database(matrix_server)
    try:
        started = time.monotonic()
        for db in (ours, theirs):
            kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
        with plain_auto_increment(galera.nodes[0]):
            seed(ours)
            seed_expiries(ours)
        seed(theirs)
        seed_expiries(theirs)
        print(f"\nkea-admin 2.2.0 db-init + seed, cluster and single server: "
              f"{time.monotonic() - started:.1f} s")
        catalog.assert_same_catalog(read_catalog(theirs), synced_catalog(ours),
                                    labels=("single server", "cluster"))
        before = expiries(ours)
        assert len(before) >= 2 * len(EXPIRIES)

        node2 = galera.nodes[1]
        (increment, offset), = node2.sql(
            "SELECT @@GLOBAL.auto_increment_increment, @@GLOBAL.auto_increment_offset")
        assert int(str(increment)) == len(galera.nodes)  # wsrep_auto_increment_control
        started = time.monotonic()
        with lifted(matrix_server, (f"SET GLOBAL auto_increment_increment = {increment}",
                                    f"SET GLOBAL auto_increment_offset = {offset}")):
            kea_admin_upgrade(theirs.type, theirs.host, theirs.port, theirs.user,
                              theirs.password, theirs.name, release="3.0.4")
        admin_seconds = time.monotonic() - started
        started = time.monotonic()
        code, result, output = kea_db(through(ours, node2), "upgrade", "--kea-version", "3.0",
                                      "--yes")
        print(f"kea-admin 3.0.4 db-upgrade (single server): {admin_seconds:.1f} s; kea-db "
              f"upgrade through node 2: {time.monotonic() - started:.1f} s")
        assert (code, result["action"], result["to"]) == (ExitCode.OK, "upgraded",
                                                          SCHEMA["3.0"]), output
        assert result["node"]["role"] == "galera", result["node"]

        want = read_catalog(theirs)
        assert want.rows, "the single server's upgrade left no rows"
        for node in galera.nodes:
            catalog.assert_same_catalog(want, synced_catalog(through(ours, node)),
                                        ignore=IGNORE, labels=("kea-admin 3.0.4 db-upgrade",
                                                               f"kea-db, {node.name}"))
            assert expiries(through(ours, node)) == before, node.name
        for node in galera.nodes:
            status = node.status()
            assert (status["wsrep_cluster_size"], status["wsrep_cluster_status"],
                    status["wsrep_local_state_comment"]) == ("3", "Primary", "Synced"), \
                node.name
    finally:
        drop_fresh_database(theirs)


# -- no server ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Step:
    revision: str
    schema: str
    tables: tuple[str, ...]
    updated: tuple[str, ...] = ()


def test_toi_findings_name_each_step_tables_and_rows() -> None:
    steps = [_Step("mysql_15_0", "15.0", ("lease4", "hosts")), _Step("mysql_16_0", "16.0", ())]
    found = toi_findings(3, steps, {"lease4": 120000})
    assert found[0].startswith("Galera: each step's DDL runs in total order isolation (TOI)")
    assert "every node of the cluster (3 nodes) blocks writes" in found[0]
    assert found[1:] == [
        "Galera TOI: mysql_15_0 (schema 15.0) blocks writes on every node while it runs; it "
        "rewrites lease4 (~120000 rows), hosts (~0 rows)",
        "Galera TOI: mysql_16_0 (schema 16.0) blocks writes on every node while it runs; it "
        "rewrites no table"]
    assert toi_findings(None, [], {}) == []
    assert "(all its nodes)" in toi_findings(None, steps, {})[0]


def test_the_lock_order_is_the_cluster_address_order_whichever_node_runs() -> None:
    own, a, b = object(), object(), object()
    via_2 = ClusterSessions(own, "10.0.0.2:3306", {"10.0.0.3:3306": a, "10.0.0.1:3306": b})
    assert [x for x, _s in via_2.ordered()] == ["10.0.0.1:3306", "10.0.0.2:3306",
                                                "10.0.0.3:3306"]
    assert [s for _x, s in via_2.ordered()] == [b, own, a]
    assert via_2.nodes == 3
    assert ClusterSessions(own).ordered() == [("", own)]


@pytest.mark.parametrize(("listed", "usable"), [
    ("127.0.0.1:3306", True), ("db-1.example:3307", True), ("[2001:db8::1]:3306", True),
    ("AUTO", False), ("127.0.0.1", False), ("", False), ("127.0.0.1:3306;x", False),
])
def test_a_listed_node_address_is_host_and_port(listed: str, usable: bool) -> None:
    assert bool(_NODE_ADDRESS.fullmatch(listed)) is usable
