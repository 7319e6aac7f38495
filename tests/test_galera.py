"""The Galera harness (issue 18): a real 3-node cluster of the host's MariaDB 10.11 and
galera-4 (``galera`` fixture, :func:`servers.start_galera_cluster`), and the facts about it
that kea-db's Galera work builds on, as this build (Debian 12's 10.11.19, galera-4 26.4)
shows them:

- GET_LOCK is per node: a lock held on node 1 does not stop node 2 taking the same name
  (no error with wsrep on, unlike the 10.6.13 / 10.11.3 reports the issue cites);
- log_bin is OFF on the nodes, and a user with Kea's grant (ALL on its database, no SUPER)
  may CREATE FUNCTION although log_bin_trust_function_creators is 0, but not CREATE TRIGGER
  (1419: wsrep checks triggers as if the binary log were on); with the binary log
  (``--log-bin``) functions are refused too (1419, 1418); log_bin_trust_function_creators=1
  lets all through;
- wsrep_OSU_method is TOI and a session may switch to RSU;
- :meth:`servers.GaleraNode.desync` and :meth:`servers.GaleraNode.isolate` make a node
  Donor/Desynced (still Primary) or non-Primary, and the ``galera`` fixture undoes both.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pymysql
import pytest
from servers import FreshDatabase, GaleraCluster, GaleraNode, create_fresh_database

db = pytest.mark.db

REPLICATION_WAIT = 10.0
ER_BINLOG_UNSAFE_ROUTINE = 1418
ER_BINLOG_CREATE_ROUTINE_NEED_SUPER = 1419
ER_UNKNOWN_COM_ERROR = 1047  # "WSREP has not yet prepared node for application use"


def _connect_as(
    node: GaleraNode, fresh: FreshDatabase
) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    """A session of ``fresh``'s user on ``node`` over TCP, in its database."""
    return pymysql.connect(host=node.host, port=node.port, user=fresh.user,
                           password=fresh.password, database=fresh.name, autocommit=True,
                           connect_timeout=10, read_timeout=30)


def _connect(node: GaleraNode) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    """A root session on ``node`` (its own, unlike ``node.sql``'s one per statement)."""
    return pymysql.connect(unix_socket=node.socket, user="root", password="",
                           autocommit=True, connect_timeout=10, read_timeout=30)


def _one(conn: pymysql.connections.Connection[pymysql.cursors.Cursor], query: str) -> object:
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def galera_db(galera: GaleraCluster) -> Iterator[FreshDatabase]:
    """A fresh database on node 1 and a user with Kea's grant (ALL on it), dropped after."""
    fresh = create_fresh_database(galera.nodes[0])
    yield fresh
    galera.nodes[0].drop_user(fresh.user)
    galera.nodes[0].drop_database(fresh.name)


@db
def test_three_synced_nodes_in_the_primary_component(galera: GaleraCluster) -> None:
    assert len(galera.nodes) == 3
    uuids = set()
    for node in galera.nodes:
        status = node.status()
        assert status["wsrep_cluster_size"] == "3"
        assert status["wsrep_cluster_status"] == "Primary"
        assert status["wsrep_local_state_comment"] == "Synced"
        assert status["wsrep_ready"] == "ON"
        assert node.sql("SELECT @@wsrep_on, @@binlog_format") == [(1, "ROW")]
        uuids.add(status["wsrep_cluster_state_uuid"])
    assert len(uuids) == 1
    assert galera.startup_seconds > 0


@db
def test_a_row_written_on_node_1_is_read_on_nodes_2_and_3(galera: GaleraCluster) -> None:
    name = f"keadb_galera_{secrets.token_hex(4)}"
    first = galera.nodes[0]
    first.create_database(name)
    try:
        first.sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", database=name)
        first.sql("INSERT INTO t VALUES (1, 'from node1')", database=name)
        for node in galera.nodes[1:]:
            deadline = time.monotonic() + REPLICATION_WAIT
            rows: list[tuple[object, ...]] = []
            while not rows and time.monotonic() < deadline:
                try:
                    rows = node.sql("SELECT id, v FROM t", database=name)
                except pymysql.Error:  # the database or table not there yet
                    time.sleep(0.05)
            assert rows == [(1, "from node1")], node.name
    finally:
        first.drop_database(name)


@db
def test_get_lock_is_per_node(galera: GaleraCluster) -> None:
    lock = f"keadb-galera-{secrets.token_hex(4)}"
    node1, node2 = galera.nodes[0], galera.nodes[1]
    holder, same_node, other_node = _connect(node1), _connect(node1), _connect(node2)
    try:
        assert _one(holder, f"SELECT GET_LOCK('{lock}', 0)") == 1
        # Held: another session of node 1 cannot take it...
        assert _one(same_node, f"SELECT GET_LOCK('{lock}', 0)") == 0
        # ... but a session of node 2 can, and sees it held by itself only.
        assert _one(other_node, f"SELECT IS_FREE_LOCK('{lock}')") == 1
        assert _one(other_node, f"SELECT GET_LOCK('{lock}', 0)") == 1
        assert _one(other_node, f"SELECT IS_USED_LOCK('{lock}')") == other_node.thread_id()
    finally:
        for conn in (holder, same_node, other_node):
            conn.close()


@db
def test_kea_user_creates_functions_without_trust_function_creators(
    galera: GaleraCluster, galera_db: FreshDatabase
) -> None:
    node = galera.nodes[0]
    assert node.sql("SELECT @@log_bin, @@log_bin_trust_function_creators") == [(0, 0)]
    conn = _connect_as(node, galera_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = [str(row[0]) for row in cur.fetchall()]
            # Kea's documented grant, nothing global (no SUPER).
            assert [g.split(" TO ")[0] for g in grants] == [
                "GRANT USAGE ON *.*", f"GRANT ALL PRIVILEGES ON `{galera_db.name}`.*"]
            # Refused with ER_BINLOG_CREATE_ROUTINE_NEED_SUPER where the binary log is on;
            # this build lets the statement through with wsrep on and log_bin OFF, the
            # deterministic function as well as one that declares nothing.
            cur.execute("CREATE FUNCTION keadb_det() RETURNS INT DETERMINISTIC RETURN 1")
            cur.execute("CREATE FUNCTION keadb_plain() RETURNS INT RETURN 2")
            # A trigger is checked as if the binary log were on (wsrep's emulation).
            cur.execute("CREATE TABLE keadb_t (id INT PRIMARY KEY)")
            with pytest.raises(pymysql.Error) as refused:
                cur.execute("CREATE TRIGGER keadb_tr BEFORE INSERT ON keadb_t FOR EACH ROW "
                            "SET NEW.id = NEW.id")
            assert refused.value.args[0] == ER_BINLOG_CREATE_ROUTINE_NEED_SUPER
    finally:
        conn.close()
    # ... and replicated, as DDL is (TOI).
    for other in galera.nodes[1:]:
        other.wait_status(REPLICATION_WAIT, local_state_comment="Synced")
        assert other.sql(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
            "ORDER BY 1", params=(galera_db.name,)
        ) == [("keadb_det",), ("keadb_plain",)], other.name


@db
def test_with_the_binary_log_kea_user_needs_trust_function_creators(
    galera_cluster_factory: Callable[..., GaleraCluster],
) -> None:
    node = galera_cluster_factory(1, extra_args=("--log-bin=mariadb-bin",)).nodes[0]
    assert node.sql("SELECT @@wsrep_on, @@log_bin, @@log_bin_trust_function_creators") == [
        (1, 1, 0)]
    fresh = create_fresh_database(node)
    conn = _connect_as(node, fresh)
    try:
        with conn.cursor() as cur:
            with pytest.raises(pymysql.Error) as refused:
                cur.execute("CREATE FUNCTION keadb_det() RETURNS INT DETERMINISTIC RETURN 1")
            assert refused.value.args[0] == ER_BINLOG_CREATE_ROUTINE_NEED_SUPER
            with pytest.raises(pymysql.Error) as refused:
                cur.execute("CREATE FUNCTION keadb_plain() RETURNS INT RETURN 2")
            assert refused.value.args[0] == ER_BINLOG_UNSAFE_ROUTINE
            node.sql("SET GLOBAL log_bin_trust_function_creators = 1")
            try:
                cur.execute("CREATE FUNCTION keadb_det() RETURNS INT DETERMINISTIC RETURN 1")
                cur.execute("CREATE FUNCTION keadb_plain() RETURNS INT RETURN 2")
            finally:
                node.sql("SET GLOBAL log_bin_trust_function_creators = 0")
    finally:
        conn.close()
        node.drop_user(fresh.user)
        node.drop_database(fresh.name)


@db
def test_osu_method_is_toi_and_a_session_may_choose_rsu(galera: GaleraCluster) -> None:
    conn = _connect(galera.nodes[1])
    try:
        assert _one(conn, "SELECT @@global.wsrep_OSU_method") == "TOI"
        assert _one(conn, "SELECT @@session.wsrep_OSU_method") == "TOI"
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_OSU_method = 'RSU'")
        assert _one(conn, "SELECT @@session.wsrep_OSU_method") == "RSU"
        assert _one(conn, "SELECT @@global.wsrep_OSU_method") == "TOI"
    finally:
        conn.close()


@db
def test_a_desynced_node_stays_primary(galera: GaleraCluster) -> None:
    node = galera.nodes[2]
    status = node.desync()
    assert {k: status[f"wsrep_{k}"] for k in (
        "local_state", "local_state_comment", "desync_count", "cluster_status",
        "cluster_size", "ready")} == {
        "local_state": "2", "local_state_comment": "Donor/Desynced", "desync_count": "1",
        "cluster_status": "Primary", "cluster_size": "3", "ready": "ON"}
    assert node.sql("SELECT @@wsrep_desync") == [(1,)]
    status = node.resync()
    assert (status["wsrep_local_state_comment"], status["wsrep_desync_count"]) == ("Synced", "0")


@db
def test_an_isolated_node_is_non_primary_and_refuses_reads(galera: GaleraCluster) -> None:
    node = galera.nodes[2]
    status = node.isolate()
    assert {k: status[f"wsrep_{k}"] for k in (
        "local_state", "local_state_comment", "cluster_status", "cluster_size", "ready",
        "connected")} == {
        "local_state": "0", "local_state_comment": "Initialized",
        "cluster_status": "non-Primary", "cluster_size": "1", "ready": "OFF",
        "connected": "ON"}
    # Statements that touch no table still run; reading a table does not.
    assert node.sql("SELECT 1") == [(1,)]
    with pytest.raises(pymysql.Error) as refused:
        node.sql("SELECT COUNT(*) FROM mysql.user")
    assert refused.value.args[0] == ER_UNKNOWN_COM_ERROR
    # The other two stay a Primary component of 2.
    for other in galera.nodes[:2]:
        other.wait_status(cluster_status="Primary", cluster_size="2",
                          local_state_comment="Synced")
    status = node.rejoin(3)
    assert (status["wsrep_cluster_status"], status["wsrep_ready"]) == ("Primary", "ON")
