"""kea-db's MySQL revisions against Kea 2.2's own ``kea-admin db-init mysql``.

One throw-away MariaDB holds three databases: one initialised by kea-admin, one by
:func:`keadb_cli.schema.migrate.upgrade`, one by loading
:func:`keadb_cli.schema.migrate.offline_sql` with the ``mariadb`` client. Their catalogs
must be identical (routine and trigger bodies aside: kea-db writes its own), and the same
workload must leave identical rows in both.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from kea_admin import kea_admin_init
from servers import FreshDatabase, MySQLFamilyServer, create_fresh_database, drop_fresh_database

from keadb_cli.errors import KeaDbError
from keadb_cli.schema import migrate
from keadb_cli.schema.catalog import Catalog, assert_same_catalog, read_catalog

pytestmark = [pytest.mark.db, pytest.mark.kea]

# Kea 2.2 / schema 14.0 on MariaDB 10.11 (kea-facts.md section 2.1).
EXPECTED_COUNTS = {
    "tables": 54,
    "indexes": 162,
    "foreign_keys": 65,
    "triggers": 55,
    "procedures": 32,
    "functions": 4,
    "sequences": 0,
}
# kea-db writes its own routine and trigger bodies; the behaviour test covers them.
OWN_BODIES = {"body_hash"}


def _connect(db: FreshDatabase, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        database=db.name,
        **kwargs,
    )


# Sessions like kea-db's own (keadb_cli.db.plan): Kea's strict mode, utf8mb4.
KEA_DB_SESSION = {
    "charset": "utf8mb4",
    "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
}


def _engine(db: FreshDatabase) -> sa.Engine:
    return sa.create_engine(
        "mysql+pymysql://",
        creator=lambda: _connect(db, **KEA_DB_SESSION),
        poolclass=sa.pool.NullPool,
    )


def _init_with_kea_db(db: FreshDatabase) -> list[str]:
    progress: list[str] = []
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            migrate.upgrade(conn, "mysql", "mysql_14_0", progress.append)
            conn.commit()
            # The caller's session mode is back (the build ran under the global one).
            assert conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar() == (
                "STRICT_ALL_TABLES"
            )
    finally:
        engine.dispose()
    return progress


def _init_with_kea_admin(db: FreshDatabase) -> None:
    kea_admin_init("mysql", db.host, db.port, db.user, db.password, db.name)


def _load_with_client(db: FreshDatabase, script: str) -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is needed to load offline SQL"
    subprocess.run(
        [
            client,
            "--no-defaults",
            f"--host={db.host}",
            f"--port={db.port}",
            f"--user={db.user}",
            db.name,
        ],
        input=script,
        text=True,
        check=True,
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MYSQL_PWD": db.password},
        timeout=300,
    )


def _catalog(db: FreshDatabase) -> Catalog:
    conn = _connect(db)
    try:
        return read_catalog(conn, "mysql")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def databases(mysql_server: MySQLFamilyServer) -> Iterator[Callable[[], FreshDatabase]]:
    """Fresh databases that live for the whole module (each init takes seconds)."""
    made: list[FreshDatabase] = []

    def make() -> FreshDatabase:
        db = create_fresh_database(mysql_server)
        made.append(db)
        return db

    yield make
    for db in reversed(made):
        drop_fresh_database(db)


@pytest.fixture(scope="module")
def kea_db(databases: Callable[[], FreshDatabase]) -> FreshDatabase:
    db = databases()
    _init_with_kea_admin(db)
    return db


@pytest.fixture(scope="module")
def ours_db(databases: Callable[[], FreshDatabase]) -> FreshDatabase:
    db = databases()
    progress = _init_with_kea_db(db)
    assert progress == [f"mysql_14_0: {migrate.plan('mysql', 'mysql_14_0')[0].title}"]
    return db


# --- revision bookkeeping (no database) -----------------------------------------------


def test_migrations_dir_holds_both_backends() -> None:
    root = migrate.migrations_dir()
    assert (root / "mysql" / "versions").is_dir(), root
    assert (root / "postgresql" / "versions").is_dir(), root


def test_revision_ids_name_schema_versions() -> None:
    assert migrate.revision_for_schema("mysql", (14, 0)) == "mysql_14_0"
    assert migrate.revision_for_schema("postgresql", (13, 0)) == "pgsql_13_0"
    assert migrate.schema_for_revision("mysql_14_0") == (14, 0)
    assert migrate.known_schemas("mysql")[(14, 0)] == "mysql_14_0"
    with pytest.raises(KeaDbError):
        migrate.schema_for_revision("head")


def test_plan_walks_from_empty_to_target() -> None:
    steps = migrate.plan("mysql", "mysql_14_0")
    assert [(s.revision, s.schema) for s in steps] == [("mysql_14_0", (14, 0))]
    assert migrate.plan("mysql", "mysql_14_0", current="mysql_14_0") == []
    assert migrate.plan("mysql", migrate.HEAD)[-1].revision == migrate.head("mysql")


def test_unknown_target_is_a_kea_db_error() -> None:
    with pytest.raises(KeaDbError, match="mysql_99_0"):
        migrate.plan("mysql", "mysql_99_0")
    with pytest.raises(KeaDbError, match="memfile"):
        migrate.plan("memfile", "head")


def test_offline_sql_is_a_client_script() -> None:
    script = migrate.offline_sql("mysql", "mysql_14_0")
    assert script == migrate.offline_sql("mysql", "mysql_14_0")
    assert "alembic" not in script.lower()
    assert script.count("DELIMITER $$") == script.count("DELIMITER ;") == 36 + 55
    assert script.count("CREATE TABLE ") == 54
    assert "INSERT INTO schema_version (version, minor) VALUES (14, 0);" in script
    # Nothing a client would read as a bind marker or a doubled percent sign.
    assert "%%" not in script and "\\:" not in script


# --- against kea-admin ------------------------------------------------------------------


def test_upgrade_builds_what_kea_admin_builds(
    kea_db: FreshDatabase, ours_db: FreshDatabase
) -> None:
    kea, ours = _catalog(kea_db), _catalog(ours_db)
    assert kea.counts() == EXPECTED_COUNTS
    assert_same_catalog(kea, ours, ignore=OWN_BODIES, labels=("kea-admin", "kea-db"))
    assert [r.rows for r in ours.rows if r.table == "schema_version"] == [((14, 0),)]


def test_show_create_table_is_identical(kea_db: FreshDatabase, ours_db: FreshDatabase) -> None:
    """Stricter than the catalog: also column, key and option order as MariaDB prints them."""

    def definitions(db: FreshDatabase) -> dict[str, str]:
        rows = db.server.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            params=(db.name,),
        )
        return {
            name: db.server.sql(f"SHOW CREATE TABLE `{name}`", database=db.name)[0][1]
            for (name,) in rows
        }

    kea, ours = definitions(kea_db), definitions(ours_db)
    assert sorted(kea) == sorted(ours)
    different = [name for name in sorted(kea) if kea[name] != ours[name]]
    assert not different, "\n\n".join(f"{kea[n]}\n---\n{ours[n]}" for n in different)


def test_offline_sql_loads_with_the_mariadb_client(
    databases: Callable[[], FreshDatabase], kea_db: FreshDatabase, ours_db: FreshDatabase
) -> None:
    loaded = databases()
    _load_with_client(loaded, migrate.offline_sql("mysql", "mysql_14_0"))
    offline = _catalog(loaded)
    assert_same_catalog(_catalog(ours_db), offline, labels=("online", "offline"))
    assert_same_catalog(
        _catalog(kea_db), offline, ignore=OWN_BODIES, labels=("kea-admin", "offline")
    )


# --- behaviour ----------------------------------------------------------------------------

# Identical statements for both databases, run in order on one session each (autocommit).
# They touch every trigger and routine; failures are part of the outcome.
WORKLOAD_LEASES = [
    # lease4 and its statistics (state 0 and 1 counted, 2 not; classes only for state 0)
    "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id,"
    " fqdn_fwd, fqdn_rev, hostname, state, user_context) VALUES (INET_ATON('192.0.2.1'),"
    " UNHEX('0a0b0c0d0e0f'), UNHEX('01020304'), 3600, '2030-01-01 00:00:00', 1, 1, 0,"
    ' \'one.example.org\', 0, \'{"ISC": {"client-classes": ["gold", "silver"]}}\')',
    "INSERT INTO lease4 (address, hwaddr, subnet_id, state, user_context) VALUES"
    " (INET_ATON('192.0.2.2'), UNHEX('0a0b0c0d0e10'), 1, 1,"
    ' \'{"ISC": {"client-classes": ["gold"]}}\')',
    "INSERT INTO lease4 (address, subnet_id, state) VALUES (INET_ATON('192.0.2.3'), 1, 2)",
    "INSERT INTO lease4 (address, subnet_id) VALUES (INET_ATON('192.0.2.4'), 2)",
    "INSERT INTO lease4 (address, subnet_id, state, user_context) VALUES"
    " (INET_ATON('192.0.2.5'), 2, 0, 'not json at all')",
    "INSERT INTO lease4 (address, subnet_id, state, user_context) VALUES"
    ' (INET_ATON(\'192.0.2.6\'), 2, 0, \'{"ISC": {"client-classes": "gold"}}\')',
    "INSERT INTO lease4 (address, subnet_id, state) VALUES (INET_ATON('192.0.2.7'), 2, 7)",
    "INSERT INTO lease4 (address, subnet_id, state) VALUES (INET_ATON('192.0.2.1'), 1, 0)",
    "UPDATE lease4 SET state = 1 WHERE address = INET_ATON('192.0.2.1')",
    "UPDATE lease4 SET state = 0 WHERE address = INET_ATON('192.0.2.1')",
    "UPDATE lease4 SET subnet_id = 3 WHERE address = INET_ATON('192.0.2.1')",
    'UPDATE lease4 SET user_context = \'{"ISC": {"client-classes": ["bronze"]}}\''
    " WHERE address = INET_ATON('192.0.2.1')",
    "UPDATE lease4 SET hostname = 'renamed' WHERE address = INET_ATON('192.0.2.2')",
    "UPDATE lease4 SET state = 2 WHERE address = INET_ATON('192.0.2.2')",
    "UPDATE lease4 SET state = 0, user_context = 'still not json'"
    " WHERE address = INET_ATON('192.0.2.5')",
    "UPDATE lease4 SET subnet_id = NULL WHERE address = INET_ATON('192.0.2.4')",
    "DELETE FROM lease4 WHERE address = INET_ATON('192.0.2.3')",
    "DELETE FROM lease4 WHERE address = INET_ATON('192.0.2.1')",
    "CALL lease4Upload('192.0.2.50', '01:02:03:04:05:06', '', 100, 1893456000, 7, 1, 1,"
    ' \'a&#x2cb\', 0, \'{"ISC": {"client-classes": ["up&#x2cload"]}}\')',
    "CALL lease4DumpHeader()",
    "CALL lease4DumpData()",
    'SELECT checkLease4Limits(\'{"ISC": {"limits": {"client-classes":'
    ' [{"name": "gold", "address-limit": 5}, {"name": "silver", "address-limit": 0}]}}}\')',
    'SELECT checkLease4Limits(\'{"ISC": {"limits": {"subnet": {"id": 2, "address-limit": 1}}}}\')',
    'SELECT checkLease4Limits(\'{"ISC": {"limits": {"subnet": {"id": 2, "address-limit": 10}}}}\')',
    "SELECT checkLease4Limits(NULL)",
    # lease6: per lease type
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime,"
    " lease_type, iaid, prefix_len, fqdn_fwd, fqdn_rev, hostname, hwaddr, hwtype,"
    " hwaddr_source, state, user_context) VALUES ('2001:db8::1', UNHEX('000102030405'),"
    " 3600, '2031-02-03 04:05:06', 1, 1800, 0, 7, 128, 0, 1, 'six.example.org',"
    ' UNHEX(\'0a0b0c0d0e0f\'), 1, 4, 0, \'{"ISC": {"client-classes": ["gold"]}}\')',
    "INSERT INTO lease6 (address, subnet_id, lease_type, prefix_len, state, user_context)"
    ' VALUES (\'2001:db8:1::\', 1, 2, 56, 0, \'{"ISC": {"client-classes": ["gold"]}}\')',
    "INSERT INTO lease6 (address, subnet_id, lease_type, state) VALUES ('2001:db8::2', 1, 0, 1)",
    "INSERT INTO lease6 (address, subnet_id, lease_type, state) VALUES ('2001:db8::3', 2, 1, 0)",
    "INSERT INTO lease6 (address, subnet_id, lease_type, state) VALUES ('2001:db8::4', 2, 3, 0)",
    "INSERT INTO lease6 (address, subnet_id, lease_type, hwaddr_source) VALUES"
    " ('2001:db8::5', 2, 0, 3)",
    "UPDATE lease6 SET lease_type = 2 WHERE address = '2001:db8::1'",
    "UPDATE lease6 SET state = 1 WHERE address = '2001:db8:1::'",
    'UPDATE lease6 SET subnet_id = 5, user_context = \'{"ISC": {"client-classes":'
    " [\"silver\"]}}' WHERE address = '2001:db8::1'",
    "DELETE FROM lease6 WHERE address = '2001:db8::2'",
    "DELETE FROM lease6 WHERE address = '2001:db8::1'",
    "CALL lease6Upload('2001:db8::99', '00:01:02', 10, 1893456000, 9, 5, 2, 3, 64, 0, 0,"
    " 'x&#x2cy', '0a:0b', 0, NULL, 1, 0)",
    "CALL lease6DumpHeader()",
    "CALL lease6DumpData()",
    'SELECT checkLease6Limits(\'{"ISC": {"limits": {"client-classes": [{"name":'
    ' "gold", "address-limit": 1, "prefix-limit": 1}]}}}\')',
    'SELECT checkLease6Limits(\'{"ISC": {"limits": {"subnet": {"id": 9, "prefix-limit": 1}}}}\')',
    'SELECT checkLease6Limits(\'{"ISC": {"limits": {"subnet": {"id": 9,'
    ' "address-limit": 1, "prefix-limit": 2}}}}\')',
    "SELECT colonSeparatedHex('abc'), colonSeparatedHex('0A0B0C'), colonSeparatedHex(''),"
    " colonSeparatedHex(NULL), isJsonSupported()",
]

WORKLOAD_HOSTS = [
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id,"
    " dhcp6_subnet_id, ipv4_address, hostname, dhcp4_client_classes, user_context) VALUES"
    " (UNHEX('aabbccddeeff'), 0, 1, 1, INET_ATON('192.0.2.100'), 'res-1', 'a,b', NULL)",
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, hostname)"
    " VALUES (UNHEX('010203'), 1, 1, 'res-2')",
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id)"
    " VALUES (UNHEX('aabbccddeeff'), 0, 1)",
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type) VALUES (UNHEX('05'), 9)",
    "INSERT INTO ipv6_reservations (address, prefix_len, type, dhcp6_iaid, host_id) VALUES"
    " ('2001:db8::100', 128, 0, 1, 1), ('2001:db8:100::', 64, 2, 2, 1)",
    "INSERT INTO ipv6_reservations (address, host_id) VALUES ('2001:db8::200', 2)",
    "INSERT INTO ipv6_reservations (address, host_id) VALUES ('2001:db8::300', 999)",
    "INSERT INTO dhcp4_options (code, value, formatted_value, space, persistent, host_id,"
    " scope_id, user_context, modification_ts) VALUES (6, NULL, '192.0.2.53', 'dhcp4', 1, 1,"
    " 3, '{\"comment\": \"dns\"}', '2024-01-01 00:00:00')",
    "INSERT INTO dhcp4_options (code, formatted_value, space, host_id, scope_id) VALUES"
    " (15, 'example.org', 'dhcp4', 2, 3)",
    "INSERT INTO dhcp6_options (code, value, space, host_id, scope_id, modification_ts)"
    " VALUES (23, UNHEX('20010db8000000000000000000000053'), 'dhcp6', 1, 3,"
    " '2024-01-01 00:00:00')",
    "UPDATE hosts SET hostname = 'res-1b', auth_key = 'abcdef' WHERE host_id = 1",
    "UPDATE dhcp4_options SET formatted_value = '192.0.2.54' WHERE host_id = 1",
    "DELETE FROM hosts WHERE host_id = 2",
    "DELETE FROM dhcp6_options WHERE host_id = 1",
]


def _config_workload(v: str) -> list[str]:
    """The same config backend story for DHCPv4 and DHCPv6."""
    ts = "'2024-02-01 10:00:00'"
    prefix = "'192.0.2.0/24'" if v == "4" else "'2001:db8::/64'"
    pool = (
        "INSERT INTO dhcp4_pool (start_address, end_address, subnet_id, modification_ts)"
        f" VALUES (INET_ATON('192.0.2.10'), INET_ATON('192.0.2.20'), 10, {ts})"
        if v == "4"
        else "INSERT INTO dhcp6_pool (start_address, end_address, subnet_id, modification_ts)"
        f" VALUES ('2001:db8::10', '2001:db8::20', 10, {ts})"
    )
    statements = [
        f"CALL createAuditRevisionDHCP{v}({ts}, 'all', 'first change', 0)",
        f"INSERT INTO dhcp{v}_server (tag, description, modification_ts) VALUES"
        f" ('server1', 'first server', {ts})",
        f"INSERT INTO dhcp{v}_server (tag, modification_ts) VALUES ('all', {ts})",
        f"INSERT INTO dhcp{v}_shared_network (name, modification_ts) VALUES ('net1', {ts})",
        f"INSERT INTO dhcp{v}_shared_network_server (shared_network_id, server_id,"
        f" modification_ts) VALUES (1, 2, {ts})",
        f"INSERT INTO dhcp{v}_subnet (subnet_id, subnet_prefix, shared_network_name,"
        f" modification_ts) VALUES (10, {prefix}, 'net1', {ts})",
        f"INSERT INTO dhcp{v}_subnet (subnet_id, subnet_prefix, shared_network_name,"
        f" modification_ts) VALUES (11, 'x', 'no such network', {ts})",
        f"INSERT INTO dhcp{v}_subnet_server (subnet_id, server_id, modification_ts)"
        f" VALUES (10, 1, {ts})",
        pool,
        f"CALL createAuditRevisionDHCP{v}('2024-02-01 11:00:00', 'server1', 'options', 0)",
        # one option per scope: global, subnet, shared network, pool
        f"INSERT INTO dhcp{v}_options (code, formatted_value, space, scope_id,"
        f" modification_ts) VALUES (6, 'global', 'dhcp{v}', 0, '2024-02-01 11:00:00')",
        f"INSERT INTO dhcp{v}_options (code, formatted_value, space, scope_id,"
        f" dhcp{v}_subnet_id, modification_ts) VALUES (6, 'subnet', 'dhcp{v}', 1, 10,"
        " '2024-02-01 11:01:00')",
        f"INSERT INTO dhcp{v}_options (code, formatted_value, space, scope_id,"
        f" shared_network_name, modification_ts) VALUES (6, 'network', 'dhcp{v}', 4, 'net1',"
        " '2024-02-01 11:02:00')",
        f"INSERT INTO dhcp{v}_options (code, formatted_value, space, scope_id, pool_id,"
        f" modification_ts) VALUES (6, 'pool', 'dhcp{v}', 5, 1, '2024-02-01 11:03:00')",
        f"INSERT INTO dhcp{v}_options_server (option_id, server_id, modification_ts)"
        f" VALUES (1, 1, {ts})",
        f"UPDATE dhcp{v}_options SET formatted_value = 'global 2',"
        " modification_ts = '2024-02-01 12:00:00' WHERE scope_id = 0",
        f"UPDATE dhcp{v}_options SET formatted_value = 'network 2',"
        " modification_ts = '2024-02-01 12:01:00' WHERE scope_id = 4",
        f"DELETE FROM dhcp{v}_options WHERE scope_id = 1",
        f"INSERT INTO dhcp{v}_global_parameter (name, value, modification_ts, parameter_type)"
        f" VALUES ('renew-timer', '100', {ts}, 0)",
        f"INSERT INTO dhcp{v}_global_parameter (name, value, modification_ts, parameter_type)"
        f" VALUES ('bad-type', '1', {ts}, 3)",
        f"INSERT INTO dhcp{v}_global_parameter_server (parameter_id, server_id,"
        f" modification_ts) VALUES (1, 1, {ts})",
        f"UPDATE dhcp{v}_global_parameter SET value = '200' WHERE name = 'renew-timer'",
        f"INSERT INTO dhcp{v}_option_def (code, name, space, type, modification_ts, is_array,"
        f" encapsulate, record_types) VALUES (222, 'foo', 'dhcp{v}', 1, {ts}, 0, '', NULL)",
        f"UPDATE dhcp{v}_option_def SET is_array = 1 WHERE code = 222",
        # client classes: order, dependencies, KNOWN/UNKNOWN tracking
        f"CALL createAuditRevisionDHCP{v}('2024-02-01 13:00:00', 'all', 'classes', 0)",
        f"INSERT INTO dhcp{v}_client_class (name, test, depend_on_known_directly,"
        f" modification_ts) VALUES ('A', 'member(''KNOWN'')', 1, {ts})",
        f"INSERT INTO dhcp{v}_client_class (name, modification_ts) VALUES ('B', {ts})",
        f"INSERT INTO dhcp{v}_client_class (name, follow_class_name, modification_ts)"
        f" VALUES ('C', 'A', {ts})",
        f"INSERT INTO dhcp{v}_client_class (name, follow_class_name, modification_ts)"
        f" VALUES ('D', 'nonexistent', {ts})",
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) VALUES (3, 1)",
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) VALUES (1, 3)",
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) VALUES (2, 2)",
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) VALUES (2, 77)",
        f"INSERT INTO dhcp{v}_client_class_server (class_id, server_id, modification_ts)"
        f" VALUES (2, 2, {ts})",
        f"INSERT INTO dhcp{v}_client_class_server (class_id, server_id, modification_ts)"
        f" VALUES (3, 2, {ts})",
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) VALUES (2, 1)",
        f"UPDATE dhcp{v}_client_class SET test = 'option[1].exists' WHERE name = 'C'",
        f"UPDATE dhcp{v}_client_class SET depend_on_known_directly = 0 WHERE name = 'A'",
        f"CALL checkDHCPv{v}ClientClassKnownDependencyChange()",
        f"UPDATE dhcp{v}_client_class SET follow_class_name = 'B' WHERE name = 'C'",
        f"UPDATE dhcp{v}_client_class SET follow_class_name = 'C' WHERE name = 'A'",
        f"UPDATE dhcp{v}_client_class SET follow_class_name = NULL WHERE name = 'B'",
        f"DELETE FROM dhcp{v}_client_class WHERE name = 'B'",
        "SELECT @depend_on_known_directly, @depend_on_known_indirectly, @client_class_id",
        # cascade: option changes ride on the owner's audit entry
        f"CALL createAuditRevisionDHCP{v}('2024-02-02 00:00:00', 'server1', 'cascade', 1)",
        f"INSERT INTO dhcp{v}_options (code, formatted_value, space, scope_id,"
        f" dhcp{v}_subnet_id, modification_ts) VALUES (7, 'cascaded', 'dhcp{v}', 1, 10,"
        " '2024-02-02 00:00:00')",
        f"CALL createAuditRevisionDHCP{v}('2024-02-02 01:00:00', 'nobody', 'unknown tag', 0)",
        "SET @disable_audit = 1",
        f"INSERT INTO dhcp{v}_global_parameter (name, value, modification_ts, parameter_type)"
        f" VALUES ('silent', 'x', {ts}, 4)",
        f"CALL createAuditRevisionDHCP{v}('2024-02-03 00:00:00', 'all', 'ignored', 0)",
        "SET @disable_audit = 0",
        f"DELETE FROM dhcp{v}_global_parameter WHERE name = 'renew-timer'",
        f"DELETE FROM dhcp{v}_option_def WHERE code = 222",
    ]
    if v == "6":
        statements += [
            "INSERT INTO dhcp6_pd_pool (prefix, prefix_length, delegated_prefix_length,"
            " subnet_id, modification_ts, excluded_prefix, excluded_prefix_length) VALUES"
            f" ('2001:db8:8000::', 48, 64, 10, {ts}, NULL, 0)",
            "INSERT INTO dhcp6_options (code, formatted_value, space, scope_id, pd_pool_id,"
            " modification_ts) VALUES (7, 'pd pool', 'dhcp6', 6, 1, '2024-02-04 00:00:00')",
            "DELETE FROM dhcp6_pd_pool WHERE id = 1",
            "UPDATE dhcp6_subnet SET valid_lifetime = 300 WHERE subnet_id = 10",
        ]
    statements += [
        f"DELETE FROM dhcp{v}_pool WHERE id = 1",
        # Without a cascade revision the option triggers touch the table being deleted
        # from (MySQL error 1442): Kea's config backend deletes inside a cascade revision.
        f"DELETE FROM dhcp{v}_shared_network WHERE name = 'net1'",
        f"DELETE FROM dhcp{v}_subnet WHERE subnet_id = 10",
        f"DELETE FROM dhcp{v}_server WHERE tag = 'server1'",
        f"CALL createAuditRevisionDHCP{v}('2024-02-05 00:00:00', 'all', 'deletes', 1)",
        f"DELETE FROM dhcp{v}_shared_network WHERE name = 'net1'",
        f"DELETE FROM dhcp{v}_subnet WHERE subnet_id = 10",
        f"DELETE FROM dhcp{v}_client_class_server WHERE server_id = 2",
        f"DELETE FROM dhcp{v}_server WHERE tag = 'server1'",
        "SELECT @audit_revision_id, @cascade_transaction, @json_supported",
    ]
    return statements


WORKLOAD = [*WORKLOAD_LEASES, *WORKLOAD_HOSTS, *_config_workload("4"), *_config_workload("6")]


def _value(value: Any, now: tuple[dt.datetime, dt.datetime]) -> Any:
    """Rows as comparable values; a timestamp written during the run becomes "<now>"."""
    if isinstance(value, dt.datetime):
        low, high = now
        return "<now>" if low <= value <= high else value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


def _server_now(db: FreshDatabase) -> dt.datetime:
    value = db.server.sql("SELECT NOW()")[0][0]
    assert isinstance(value, dt.datetime)
    return value


def _run_workload(
    db: FreshDatabase, since: dt.datetime, workload: list[str] | None = None
) -> tuple[list[Any], dict[str, list[Any]]]:
    """Every statement's outcome (result sets or error), then every table's rows.

    ``workload`` defaults to this module's Kea 2.2 :data:`WORKLOAD`.

    Timestamps from ``since`` (taken before the databases were initialised) to the end of
    the run are "now" values and compare as "<now>".
    """
    conn = _connect(db, autocommit=True)
    outcomes: list[Any] = []
    try:
        with conn.cursor() as cur:
            started = since - dt.timedelta(seconds=1)
            for statement in WORKLOAD if workload is None else workload:
                try:
                    cur.execute(statement)
                    results = []
                    while True:
                        if cur.description:
                            results.append([tuple(row) for row in cur.fetchall()])
                        if not cur.nextset():
                            break
                    outcomes.append((statement, "ok", results))
                except pymysql.MySQLError as exc:
                    code, message = exc.args[0], str(exc.args[1]).replace(db.name, "<db>")
                    outcomes.append((statement, "error", code, message))
            cur.execute("SELECT NOW()")
            ended = cur.fetchone()[0] + dt.timedelta(seconds=1)
            now = (started, ended)
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
            tables = sorted(row[0] for row in cur.fetchall())
            contents = {}
            for table in tables:
                cur.execute(f"SELECT * FROM `{table}`")
                rows = [tuple(_value(v, now) for v in row) for row in cur.fetchall()]
                contents[table] = sorted(rows, key=repr)
    finally:
        conn.close()
    return [_normalize_results(o, now) for o in outcomes], contents


def _normalize_results(outcome: tuple[Any, ...], now: tuple[dt.datetime, dt.datetime]) -> Any:
    if outcome[1] != "ok":
        return outcome
    return (
        outcome[0],
        "ok",
        [[tuple(_value(v, now) for v in row) for row in rs] for rs in outcome[2]],
    )


def test_same_workload_leaves_the_same_rows(databases: Callable[[], FreshDatabase]) -> None:
    kea_db, ours_db = databases(), databases()
    since = _server_now(kea_db)
    _init_with_kea_admin(kea_db)
    _init_with_kea_db(ours_db)

    kea_outcomes, kea_rows = _run_workload(kea_db, since)
    ours_outcomes, ours_rows = _run_workload(ours_db, since)

    for kea_outcome, ours_outcome in zip(kea_outcomes, ours_outcomes, strict=True):
        assert ours_outcome == kea_outcome
    assert sorted(ours_rows) == sorted(kea_rows)
    different = [t for t in sorted(kea_rows) if kea_rows[t] != ours_rows[t]]
    assert not different, "\n".join(
        f"{t}:\n  kea-admin: {kea_rows[t]}\n  kea-db:    {ours_rows[t]}" for t in different
    )
    # The workload really exercised the triggers (statistics, audit, cascades).
    assert kea_rows["lease4_stat"] and kea_rows["lease6_stat_by_client_class"]
    assert len(kea_rows["dhcp4_audit"]) > 10 and len(kea_rows["dhcp6_audit_revision"]) > 3
    assert sum(1 for o in kea_outcomes if o[1] == "error") >= 10
    # Only timestamps written during the test are masked; explicit ones compare exactly.
    assert [row[3] for row in kea_rows["dhcp4_server"]] == ["<now>"]
    assert kea_rows["dhcp4_audit_revision"][0][1] == "2024-02-01T10:00:00"
    # Same counters (AUTO_INCREMENT) and structure after the run.
    assert_same_catalog(
        _catalog(kea_db), _catalog(ours_db), ignore=OWN_BODIES, labels=("kea-admin", "kea-db")
    )
