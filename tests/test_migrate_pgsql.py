"""kea-db's PostgreSQL revision ``pgsql_13_0`` against Debian's ``kea-admin db-init pgsql``.

Three databases on one throw-away server: one built by Kea 2.2.0's kea-admin, one by
:func:`keadb_cli.schema.migrate.upgrade` (online, SQLAlchemy + psycopg) and one by loading
:func:`keadb_cli.schema.migrate.offline_sql` with ``psql``. Their catalogs must be identical
(function bodies aside: kea-db's are its own), and the same workload of lease, host and
config-backend changes must leave identical rows in every table, statistics and audit
tables included.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from kea_admin import kea_admin_init
from servers import FreshDatabase, PostgresServer, create_fresh_database, drop_fresh_database

from keadb_cli.schema import catalog, migrate

pytestmark = [pytest.mark.db, pytest.mark.kea]

TARGET = "pgsql_13_0"
# Function bodies are kea-db's own text, so only their identities are compared.
IGNORE = {"body_hash"}


# --- building the databases --------------------------------------------------------------


def _engine(db: FreshDatabase) -> sa.Engine:
    url = sa.URL.create(
        "postgresql+psycopg",
        username=db.user,
        password=db.password,
        host=db.host,
        port=db.port,
        database=db.name,
    )
    return sa.create_engine(url, poolclass=sa.NullPool)


def _connect(db: FreshDatabase) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, dbname=db.name
    )


def build_with_kea_admin(db: FreshDatabase) -> None:
    kea_admin_init("postgresql", db.host, db.port, db.user, db.password, db.name)


def build_with_upgrade(db: FreshDatabase) -> None:
    engine = _engine(db)
    try:
        with engine.connect() as connection:
            migrate.upgrade(connection, "postgresql", TARGET)
            connection.commit()
    finally:
        engine.dispose()


def build_with_psql(db: FreshDatabase, script: str) -> None:
    done = subprocess.run(
        [
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "--no-psqlrc",
            "-q",
            "-h",
            db.host,
            "-p",
            str(db.port),
            "-U",
            db.user,
            "-d",
            db.name,
        ],
        input=script,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": db.password},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"psql failed:\n{done.stderr}"


def read_catalog(db: FreshDatabase) -> catalog.Catalog:
    with _connect(db) as conn:
        return catalog.read_catalog(conn, "postgresql")


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
def kea_catalog(module_dbs: Callable[[], FreshDatabase]) -> catalog.Catalog:
    db = module_dbs()
    build_with_kea_admin(db)
    return read_catalog(db)


@pytest.fixture(scope="module")
def upgraded_catalog(module_dbs: Callable[[], FreshDatabase]) -> catalog.Catalog:
    db = module_dbs()
    build_with_upgrade(db)
    return read_catalog(db)


# --- catalogs ----------------------------------------------------------------------------


def test_kea_admin_schema_has_the_documented_shape(kea_catalog: catalog.Catalog) -> None:
    # kea-facts.md 2.1: if this fails, the reference itself is not Kea 2.2.0's schema.
    assert kea_catalog.counts() == {
        "tables": 55,
        "indexes": 148,
        "foreign_keys": 68,
        "triggers": 81,
        "procedures": 0,
        "functions": 108,
        "sequences": 21,
    }
    assert len({r.name for r in kea_catalog.routines}) == 106


def test_upgrade_builds_kea_admins_catalog(
    kea_catalog: catalog.Catalog, upgraded_catalog: catalog.Catalog
) -> None:
    catalog.assert_same_catalog(
        kea_catalog, upgraded_catalog, ignore=IGNORE, labels=("kea-admin", "kea-db")
    )


def test_function_languages_and_kinds_match(
    kea_catalog: catalog.Catalog, upgraded_catalog: catalog.Catalog
) -> None:
    # Already part of the catalog comparison; spelled out because it is the part of a
    # function's identity the revision writes by hand.
    def shape(c: catalog.Catalog) -> list[tuple[str, str | None, str]]:
        return sorted((r.key, r.returns, dict(r.options)["language"]) for r in c.routines)

    assert shape(upgraded_catalog) == shape(kea_catalog)
    trigger_functions = [r for r in upgraded_catalog.routines if r.returns == "trigger"]
    assert len(trigger_functions) == 64


def test_offline_sql_loads_with_psql(
    kea_catalog: catalog.Catalog, module_dbs: Callable[[], FreshDatabase]
) -> None:
    script = migrate.offline_sql("postgresql", TARGET)
    assert "alembic_version" not in script
    db = module_dbs()
    build_with_psql(db, script)
    catalog.assert_same_catalog(
        kea_catalog, read_catalog(db), ignore=IGNORE, labels=("kea-admin", "offline")
    )


def test_offline_and_online_bodies_are_the_same(
    upgraded_catalog: catalog.Catalog, module_dbs: Callable[[], FreshDatabase]
) -> None:
    db = module_dbs()
    build_with_psql(db, migrate.offline_sql("postgresql", TARGET))
    catalog.assert_same_catalog(upgraded_catalog, read_catalog(db), labels=("online", "offline"))


def test_upgrade_is_one_transaction(pg_db: FreshDatabase) -> None:
    # A table in the way makes the revision fail part-way; nothing it did may remain.
    with _connect(pg_db) as conn:
        conn.execute("CREATE TABLE dhcp6_audit (id integer)")
    engine = _engine(pg_db)
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.ProgrammingError):
            migrate.upgrade(connection, "postgresql", TARGET)
    finally:
        engine.dispose()
    with _connect(pg_db) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c "
                "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1"
            )
        ]
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchone()
    assert names == ["dhcp6_audit"]
    assert functions == (0,)


# --- behaviour ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fails:
    """A workload step that must fail; both databases must fail it with the same SQLSTATE.

    With ``same_message`` the error's text (message, detail, hint) must match too: for
    errors PostgreSQL itself words, where kea-db reproduces a defect of Kea 2.2's function
    rather than raising a message of its own.
    """

    sql: str
    same_message: bool = False


COMMIT = "COMMIT"

# 192.0.2.x as the integers lease4.address holds.
A1, A2, A3, A4, A5 = (3221225984 + n for n in (1, 2, 3, 4, 5))

LEASE4 = [
    "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, "
    "fqdn_fwd, fqdn_rev, hostname, state, user_context) VALUES "
    rf"({A1}, '\x0a0b0c0d0e0f', '\x01aa', 3600, '2023-05-01 10:00:00+00', 1, true, false, "
    """'a.example.org', 0, '{"ISC": {"client-classes": ["foo", "bar"]}}'), """
    rf"({A2}, '\x0a0b0c0d0e10', NULL, 3600, '2023-05-01 10:00:00+00', 1, false, false, "
    "NULL, 0, NULL), "
    rf"({A3}, '\x0a0b0c0d0e11', '\x01bb', 3600, '2023-05-01 11:00:00+00', 1, false, true, "
    """'c.example.org', 1, '{"ISC": {"client-classes": ["foo"]}}'), """
    rf"({A4}, '\x0a0b0c0d0e12', NULL, 60, '2023-05-01 12:00:00+00', 2, false, false, "
    "'d,e.example.org', 2, ''), "
    rf"({A5}, '\x0a0b0c0d0e13', NULL, 60, '2023-05-01 12:00:00+00', 2, false, false, "
    """NULL, 0, '{"ISC": {"client-classes": ["baz"]}}')""",
    f"UPDATE lease4 SET state = 1 WHERE address = {A1}",
    f"UPDATE lease4 SET state = 0 WHERE address = {A4}",
    f"UPDATE lease4 SET subnet_id = 3 WHERE address = {A2}",
    f"""UPDATE lease4 SET user_context = '{{"ISC": {{"client-classes": ["bar"]}}}}' """
    f"WHERE address = {A5}",
    f"UPDATE lease4 SET valid_lifetime = 7200 WHERE address = {A3}",
    f"UPDATE lease4 SET state = 2 WHERE address = {A3}",
    f"DELETE FROM lease4 WHERE address = {A5}",
    Fails(f"UPDATE lease4 SET state = 7 WHERE address = {A2}"),
    Fails(f"UPDATE lease4 SET user_context = '[1, 2' WHERE address = {A2}"),
    'SELECT checklease4limits(\'{"ISC": {"limits": {"client-classes": '
    '[{"name": "foo", "address-limit": 1}, {"name": "bar", "address-limit": 1}], '
    '"subnet": {"id": 1, "address-limit": 10}}}}\')',
    'SELECT checklease4limits(\'{"ISC": {"limits": {"subnet": {"id": 2, "address-limit": 1}}}}\')',
    "SELECT checkLease4Limits('')",
    "SELECT lease4dumpheader()",
    "SELECT * FROM lease4dumpdata()",
    "SELECT lease4upload('192.0.2.99', '0A:0b:0c', '', 100, 1700000000, 7, 1, 0, "
    "'x&#x2cy', 0, '{}')",
    "SELECT * FROM lease4dumpdata()",
    COMMIT,
]

LEASE6 = [
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, fqdn_fwd, fqdn_rev, hostname, state, hwaddr, hwtype, "
    "hwaddr_source, user_context) VALUES "
    r"('2001:db8::1', '\x000100015e', 3600, '2023-05-01 10:00:00+00', 10, 1800, 0, 1, 128, "
    r"""true, true, 'six.example.org', 0, '\x0a0b0c0d0e0f', 1, 1, """
    """'{"ISC": {"client-classes": ["foo"]}}'), """
    r"('2001:db8:1::', '\x000100015e', 3600, '2023-05-01 10:00:00+00', 10, 1800, 2, 2, 56, "
    """false, false, NULL, 0, NULL, NULL, NULL, '{"ISC": {"client-classes": ["foo", "pd"]}}'), """
    r"('2001:db8::2', '\x000100015f', 3600, '2023-05-01 10:00:00+00', 10, 1800, 0, 3, 128, "
    "false, false, NULL, 1, NULL, NULL, NULL, NULL), "
    r"('2001:db8::3', '\x0001000160', 3600, '2023-05-01 10:00:00+00', 11, 1800, 1, 4, 128, "
    "false, false, NULL, 0, NULL, NULL, NULL, '')",
    "UPDATE lease6 SET state = 1 WHERE address = '2001:db8::1'",
    "UPDATE lease6 SET state = 0 WHERE address = '2001:db8::2'",
    "UPDATE lease6 SET lease_type = 0 WHERE address = '2001:db8::3'",
    "UPDATE lease6 SET subnet_id = 12, state = 2 WHERE address = '2001:db8:1::'",
    """UPDATE lease6 SET user_context = '{"ISC": {"client-classes": ["bar"]}}' """
    "WHERE address = '2001:db8::2'",
    "DELETE FROM lease6 WHERE address = '2001:db8::3'",
    Fails("UPDATE lease6 SET lease_type = 9 WHERE address = '2001:db8::2'"),
    'SELECT checklease6limits(\'{"ISC": {"limits": {"client-classes": '
    '[{"name": "bar", "address-limit": 1, "prefix-limit": 1}], '
    '"subnet": {"id": 10, "address-limit": 5, "prefix-limit": 0}}}}\')',
    'SELECT checklease6limits(\'{"ISC": {"limits": {"subnet": {"id": 10, "prefix-limit": 0}}}}\')',
    "SELECT lease6dumpheader()",
    "SELECT * FROM lease6dumpdata()",
    "SELECT lease6upload('2001:db8::99', '00:01:00:01', 100, 1700000000, 10, 50, 0, 9, 128, "
    "0, 1, 'p&#x2cq', '', 0, '{}', 1, 0)",
    "SELECT * FROM lease6dumpdata()",
    COMMIT,
]

HOSTS = [
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, "
    r"hostname, dhcp4_client_classes, user_context) VALUES ('\x0a0b0c0d0e0f', 0, 1, "
    """3221225994, 'host1', 'foo,bar', '{"comment": "first"}')""",
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp6_subnet_id, hostname, "
    r"auth_key) VALUES ('\x000100015e', 1, 10, 'host2', '0123456789abcdef')",
    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, "
    r"dhcp6_subnet_id) VALUES ('\x666c6578', 4, 1, 10)",
    Fails(
        "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) "
        r"VALUES ('\x0a0b0c0d0e0f', 0, 1)"
    ),
    "INSERT INTO ipv6_reservations (address, prefix_len, type, dhcp6_iaid, host_id) VALUES "
    "('2001:db8::10', 128, 0, 1, 2), ('2001:db8:100::', 56, 2, 2, 2)",
    "INSERT INTO ipv6_reservations (address, host_id) VALUES ('2001:db8::11', 3)",
    "INSERT INTO dhcp4_options (code, value, formatted_value, space, persistent, host_id, "
    r"scope_id, user_context) VALUES (6, '\x01020304', '1.2.3.4', 'dhcp4', false, 1, 3, "
    """'{"x": 1}')""",
    "INSERT INTO dhcp4_options (code, formatted_value, space, persistent, host_id, scope_id) "
    "VALUES (15, 'example.org', 'dhcp4', true, 3, 3)",
    "INSERT INTO dhcp6_options (code, formatted_value, space, host_id, scope_id) "
    "VALUES (23, '2001:db8::53', 'dhcp6', 2, 3)",
    "UPDATE hosts SET hostname = 'host1b', dhcp4_next_server = 3221225985 WHERE host_id = 1",
    "UPDATE dhcp4_options SET formatted_value = '5.6.7.8' WHERE host_id = 1",
    "UPDATE dhcp6_options SET persistent = true WHERE host_id = 2",
    "UPDATE ipv6_reservations SET dhcp6_iaid = 5 WHERE address = '2001:db8::11'",
    "DELETE FROM ipv6_reservations WHERE address = '2001:db8::10'",
    "DELETE FROM dhcp4_options WHERE host_id = 3",
    "DELETE FROM hosts WHERE host_id = 2",
    COMMIT,
]


def _revision(v: int, minute: int, tag: str, message: str, cascade: bool) -> str:
    return (
        f"SELECT createAuditRevisionDHCP{v}('2023-01-01 00:{minute:02d}:00+00', '{tag}', "
        f"'{message}', {str(cascade).lower()})"
    )


def _class_servers(v: int, servers: dict[str, int]) -> list[str]:
    """Puts each named client class on one server (server 1 stands for all of them)."""
    return [
        f"INSERT INTO dhcp{v}_client_class_server (class_id, server_id) "
        f"SELECT id, {server} FROM dhcp{v}_client_class WHERE name = '{name}'"
        for name, server in servers.items()
    ]


def _class_dependency(v: int, name: str, dependency: str) -> str:
    return (
        f"INSERT INTO dhcp{v}_client_class_dependency (class_id, dependency_id) "
        f"SELECT c.id, d.id FROM dhcp{v}_client_class AS c, dhcp{v}_client_class AS d "
        f"WHERE c.name = '{name}' AND d.name = '{dependency}'"
    )


CONFIG4 = [
    _revision(4, 0, "all", "add server", False),
    "INSERT INTO dhcp4_server (tag, description) VALUES ('srv1', 'first server')",
    _revision(4, 1, "srv1", "add shared network", False),
    "INSERT INTO dhcp4_shared_network (name, valid_lifetime, user_context, next_server, "
    """ddns_replace_client_name) VALUES ('net1', 3600, '{"x": 1}', '192.0.2.254', 2)""",
    "INSERT INTO dhcp4_shared_network_server (shared_network_id, server_id) VALUES (1, 2)",
    _revision(4, 2, "srv1", "add subnet", True),
    "INSERT INTO dhcp4_subnet (subnet_id, subnet_prefix, shared_network_name, valid_lifetime, "
    "next_server, t1_percent) VALUES (1, '192.0.2.0/24', 'net1', 7200, '192.0.2.1', 0.5)",
    "INSERT INTO dhcp4_subnet (subnet_id, subnet_prefix) VALUES (2, '198.51.100.0/24')",
    "INSERT INTO dhcp4_subnet_server (subnet_id, server_id) VALUES (1, 2), (2, 1)",
    "INSERT INTO dhcp4_pool (start_address, end_address, subnet_id) "
    "VALUES ('192.0.2.10', '192.0.2.100', 1)",
    "INSERT INTO dhcp4_options (code, formatted_value, space, dhcp4_subnet_id, scope_id) "
    "VALUES (3, '192.0.2.1', 'dhcp4', 1, 1)",
    _revision(4, 3, "all", "options", False),
    "INSERT INTO dhcp4_options (code, formatted_value, space, scope_id) "
    "VALUES (6, '198.51.100.53', 'dhcp4', 0)",
    "INSERT INTO dhcp4_options_server (option_id, server_id) VALUES (4, 1)",
    "INSERT INTO dhcp4_options (code, formatted_value, space, dhcp4_subnet_id, scope_id, "
    "modification_ts) VALUES (15, 'example.org', 'dhcp4', 1, 1, '2023-02-01 00:00:00+00')",
    "INSERT INTO dhcp4_options (code, formatted_value, space, shared_network_name, scope_id, "
    "modification_ts) VALUES (42, '192.0.2.123', 'dhcp4', 'net1', 4, '2023-02-02 00:00:00+00')",
    "INSERT INTO dhcp4_options (code, formatted_value, space, pool_id, scope_id, "
    "modification_ts) VALUES (44, '192.0.2.124', 'dhcp4', 1, 5, '2023-02-03 00:00:00+00')",
    "UPDATE dhcp4_options SET formatted_value = '203.0.113.53' WHERE scope_id = 0",
    "UPDATE dhcp4_options_server SET modification_ts = '2023-03-01 00:00:00+00'",
    _revision(4, 4, "all", "globals", False),
    "INSERT INTO dhcp4_global_parameter (name, value, parameter_type) "
    "VALUES ('valid-lifetime', '1000', 0), ('authoritative', 'true', 2)",
    "INSERT INTO dhcp4_global_parameter_server (parameter_id, server_id) VALUES (1, 1), (2, 2)",
    "UPDATE dhcp4_global_parameter SET value = '2000' WHERE name = 'valid-lifetime'",
    "DELETE FROM dhcp4_global_parameter WHERE name = 'authoritative'",
    "INSERT INTO dhcp4_option_def (code, name, space, type, is_array, encapsulate) "
    "VALUES (222, 'foo', 'dhcp4', 1, false, '')",
    "INSERT INTO dhcp4_option_def_server (option_def_id, server_id) VALUES (1, 1)",
    "UPDATE dhcp4_option_def SET is_array = true",
    "DELETE FROM dhcp4_options WHERE scope_id = 0",
    _revision(4, 5, "all", "client classes", False),
    "INSERT INTO dhcp4_client_class (name, test) VALUES ('c1', 'member(''KNOWN'')')",
    "UPDATE dhcp4_client_class SET depend_on_known_directly = true WHERE name = 'c1'",
    "INSERT INTO dhcp4_client_class (name, valid_lifetime) VALUES ('c2', 100)",
    "INSERT INTO dhcp4_client_class (name, follow_class_name) VALUES ('c3', 'c1')",
    "INSERT INTO dhcp4_client_class_server (class_id, server_id) VALUES (1, 1), (2, 2), (3, 1)",
    "INSERT INTO dhcp4_client_class_dependency (class_id, dependency_id) VALUES (3, 1)",
    Fails("INSERT INTO dhcp4_client_class_dependency (class_id, dependency_id) VALUES (3, 2)"),
    Fails("INSERT INTO dhcp4_client_class_dependency (class_id, dependency_id) VALUES (2, 2)"),
    Fails("INSERT INTO dhcp4_client_class (name, follow_class_name) VALUES ('c9', 'none')"),
    "UPDATE dhcp4_client_class SET valid_lifetime = 200 WHERE name = 'c2'",
    "SELECT checkDHCPv4ClientClassKnownDependencyChange()",
    "UPDATE dhcp4_client_class SET follow_class_name = 'c3' WHERE name = 'c2'",
    "DELETE FROM dhcp4_client_class WHERE name = 'c2'",
    # Kea 2.2's defects, which kea-db keeps (see the revision): c4 has a dependent and no
    # KNOWN/UNKNOWN dependency, c5 is on srv1 only, c6 on all servers.
    "INSERT INTO dhcp4_client_class (name) VALUES ('c4'), ('c5'), ('c6')",
    *_class_servers(4, {"c4": 1, "c5": 2, "c6": 1}),
    _class_dependency(4, "c5", "c4"),
    # 42703: the DHCPv4 check's "unmet dependencies" error names a missing column.
    Fails(_class_dependency(4, "c6", "c5"), same_message=True),
    # 42702: a class others depend on, not depending on KNOWN/UNKNOWN, was updated.
    "UPDATE dhcp4_client_class SET valid_lifetime = 300 WHERE name = 'c4'",
    Fails("SELECT checkDHCPv4ClientClassKnownDependencyChange()", same_message=True),
    # 42704: the same for a class depending on KNOWN/UNKNOWN (c1, which c3 depends on).
    "UPDATE dhcp4_client_class SET valid_lifetime = 300 WHERE name = 'c1'",
    Fails("SELECT checkDHCPv4ClientClassKnownDependencyChange()", same_message=True),
    "INSERT INTO dhcp4_option_def (code, name, space, type, is_array, encapsulate, class_id) "
    "VALUES (223, 'bar', 'dhcp4', 1, false, '', 3)",
    _revision(4, 6, "srv1", "update subnet", False),
    "UPDATE dhcp4_subnet SET valid_lifetime = 1000 WHERE subnet_id = 1",
    "UPDATE dhcp4_server SET description = 'renamed' WHERE tag = 'srv1'",
    # The network's own option would audit a change to the row being deleted.
    Fails("DELETE FROM dhcp4_shared_network WHERE name = 'net1'"),
    _revision(4, 7, "srv1", "delete shared network", True),
    "DELETE FROM dhcp4_shared_network WHERE name = 'net1'",
    "DELETE FROM dhcp4_subnet WHERE subnet_id = 1",
    _revision(4, 8, "all", "delete server", False),
    "DELETE FROM dhcp4_client_class_server WHERE server_id = 2",
    "DELETE FROM dhcp4_server WHERE tag = 'srv1'",
    "DELETE FROM dhcp4_option_def WHERE code = 222",
    COMMIT,
]

CONFIG6 = [
    _revision(6, 0, "all", "add server", False),
    "INSERT INTO dhcp6_server (tag, description) VALUES ('srv1', 'first server')",
    _revision(6, 1, "srv1", "add shared network", False),
    "INSERT INTO dhcp6_shared_network (name, preferred_lifetime, rapid_commit, interface_id) "
    r"VALUES ('net6', 1800, true, '\x65746830')",
    "INSERT INTO dhcp6_shared_network_server (shared_network_id, server_id) VALUES (1, 2)",
    _revision(6, 2, "srv1", "add subnet", True),
    "INSERT INTO dhcp6_subnet (subnet_id, subnet_prefix, shared_network_name, "
    "preferred_lifetime) VALUES (10, '2001:db8::/64', 'net6', 1800)",
    "INSERT INTO dhcp6_subnet_server (subnet_id, server_id) VALUES (10, 2)",
    "INSERT INTO dhcp6_pool (start_address, end_address, subnet_id) "
    "VALUES ('2001:db8::10', '2001:db8::ff', 10)",
    "INSERT INTO dhcp6_pd_pool (prefix, prefix_length, delegated_prefix_length, subnet_id, "
    "excluded_prefix_length) VALUES ('2001:db8:8000::', 48, 56, 10, 0)",
    _revision(6, 3, "srv1", "options", False),
    "INSERT INTO dhcp6_options (code, formatted_value, space, scope_id) "
    "VALUES (23, '2001:db8::53', 'dhcp6', 0)",
    "INSERT INTO dhcp6_options (code, formatted_value, space, dhcp6_subnet_id, scope_id, "
    "modification_ts) VALUES (24, 'example.org', 'dhcp6', 10, 1, '2023-02-01 00:00:00+00')",
    "INSERT INTO dhcp6_options (code, formatted_value, space, pool_id, scope_id, "
    "modification_ts) VALUES (31, '2001:db8::123', 'dhcp6', 1, 5, '2023-02-02 00:00:00+00')",
    "INSERT INTO dhcp6_options (code, formatted_value, space, pd_pool_id, scope_id, "
    "modification_ts) VALUES (32, '3600', 'dhcp6', 1, 6, '2023-02-03 00:00:00+00')",
    "INSERT INTO dhcp6_options (code, formatted_value, space, shared_network_name, scope_id, "
    "modification_ts) VALUES (33, 'x', 'dhcp6', 'net6', 4, '2023-02-04 00:00:00+00')",
    "UPDATE dhcp6_options SET formatted_value = '3601' WHERE scope_id = 6",
    "DELETE FROM dhcp6_options WHERE scope_id = 0",
    "DELETE FROM dhcp6_pd_pool WHERE subnet_id = 10",
    "INSERT INTO dhcp6_client_class (name, preferred_lifetime) VALUES ('d1', 10), ('d2', 20)",
    "INSERT INTO dhcp6_client_class (name, follow_class_name) VALUES ('d3', 'd1')",
    "INSERT INTO dhcp6_client_class_dependency (class_id, dependency_id) VALUES (3, 1)",
    "DELETE FROM dhcp6_client_class WHERE name = 'd2'",
    # Kea 2.2's defects, which kea-db keeps (see the revision): d4 depends on KNOWN/UNKNOWN
    # and d5 on d4; d5 is on srv1 only, d6 on all servers.
    "INSERT INTO dhcp6_client_class (name, depend_on_known_directly) "
    "VALUES ('d4', true), ('d5', false), ('d6', false)",
    *_class_servers(6, {"d4": 1, "d5": 2, "d6": 1}),
    _class_dependency(6, "d5", "d4"),
    # Unlike the DHCPv4 one, this check raises its own error (kea-db words it differently).
    Fails(_class_dependency(6, "d6", "d5")),
    # 42702: a class others depend on (d1), not depending on KNOWN/UNKNOWN, was updated.
    "UPDATE dhcp6_client_class SET preferred_lifetime = 30 WHERE name = 'd1'",
    Fails("SELECT checkDHCPv6ClientClassKnownDependencyChange()", same_message=True),
    # 42704: the same for a class depending on KNOWN/UNKNOWN.
    "UPDATE dhcp6_client_class SET preferred_lifetime = 40 WHERE name = 'd4'",
    Fails("SELECT checkDHCPv6ClientClassKnownDependencyChange()", same_message=True),
    # Without dependents the check passes.
    "UPDATE dhcp6_client_class SET preferred_lifetime = 50 WHERE name = 'd6'",
    "SELECT checkDHCPv6ClientClassKnownDependencyChange()",
    "INSERT INTO dhcp6_global_parameter (name, value, parameter_type) "
    "VALUES ('preferred-lifetime', '100', 0)",
    "INSERT INTO dhcp6_option_def (code, name, space, type, is_array, encapsulate) "
    "VALUES (1000, 'foo', 'dhcp6', 1, false, '')",
    _revision(6, 4, "srv1", "delete subnet", True),
    "DELETE FROM dhcp6_subnet WHERE subnet_id = 10",
    "DELETE FROM dhcp6_shared_network WHERE name = 'net6'",
    _revision(6, 5, "all", "delete server", False),
    "DELETE FROM dhcp6_client_class_server WHERE server_id = 2",
    "DELETE FROM dhcp6_server WHERE tag = 'srv1'",
    COMMIT,
]

HELPERS = [
    "SELECT colonSeparatedHex('1A2b3'), colonSeparatedHex(''), colonSeparatedHex(NULL)",
    "SELECT gmt_epoch('2023-05-01 10:00:00+02')",
    "SELECT json_cast(''), json_cast('[1]'), json_cast(NULL)",
    Fails("SELECT json_cast('{')"),
    "SELECT isJsonSupported()",
    "SELECT get_session_value('kea.never_set'), get_session_big_int('kea.never_set'), "
    "get_session_boolean('kea.never_set')",
    "SELECT set_session_value('kea.t', 'text'), set_session_value('kea.n', 5::bigint), "
    "set_session_value('kea.b', true)",
    "SELECT get_session_value('kea.t'), get_session_big_int('kea.n'), get_session_boolean('kea.b')",
    Fails("SELECT get_session_big_int('kea.t')"),
    COMMIT,
]

WORKLOAD = LEASE4 + LEASE6 + HOSTS + CONFIG4 + CONFIG6 + HELPERS

# How Kea 2.2's client class checks fail in the workload (the same_message steps, in order):
# PostgreSQL's own errors, which kea-db's functions must raise too.
_UNKNOWN_COLUMN = ("42703", ('column "class_id" does not exist', None, None))
_AMBIGUOUS = (
    "42702",
    (
        'column reference "depend_on_known_directly" is ambiguous',
        "It could refer to either a PL/pgSQL variable or a table column.",
        None,
    ),
)
_NO_SUCH_PARAMETER = ("42704", ('unrecognized configuration parameter "depended"', None, None))
KEA_22_CLASS_CHECK_ERRORS = [
    _UNKNOWN_COLUMN,
    _AMBIGUOUS,
    _NO_SUCH_PARAMETER,
    _AMBIGUOUS,
    _NO_SUCH_PARAMETER,
]


def _error_text(step: Fails, exc: psycopg.Error) -> tuple[str | None, ...] | None:
    if not step.same_message:
        return None
    return (exc.diag.message_primary, exc.diag.message_detail, exc.diag.message_hint)


def run_workload(db: FreshDatabase) -> list[Any]:
    """Run every step on one connection; return what each step returned or its SQLSTATE."""
    results: list[Any] = []
    with _connect(db) as conn:
        for step in WORKLOAD:
            if step == COMMIT:
                conn.commit()
                continue
            if isinstance(step, Fails):
                conn.execute("SAVEPOINT step")
                try:
                    conn.execute(step.sql)
                except psycopg.Error as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT step")
                    results.append(("error", step.sql, exc.sqlstate, _error_text(step, exc)))
                    continue
                pytest.fail(f"step did not fail on {db.name}: {step.sql}")
            cursor = conn.execute(step)
            rows = cursor.fetchall() if cursor.description else cursor.rowcount
            results.append((step, rows))
    return results


def table_contents(db: FreshDatabase, since: dt.datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted; a time stamp taken during the run ("now") is
    compared for presence only."""

    def value(v: Any) -> Any:
        if isinstance(v, dt.datetime) and v >= since:
            return "<now>"
        return v

    contents = {}
    with _connect(db) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
        ]
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            contents[table] = sorted((tuple(value(v) for v in row) for row in rows), key=repr)
    return contents


def test_workload_leaves_identical_contents(
    pg_db: FreshDatabase, pg_server: PostgresServer
) -> None:
    theirs = pg_db
    ours = create_fresh_database(pg_server)
    try:
        started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        build_with_kea_admin(theirs)
        build_with_upgrade(ours)

        expected_steps, actual_steps = run_workload(theirs), run_workload(ours)
        for expected_step, actual_step in zip(expected_steps, actual_steps, strict=True):
            assert actual_step == expected_step
        # The steps meant to meet Kea 2.2's defective checks do (on kea-admin's database,
        # and so, by the comparison above, on kea-db's).
        assert [
            step[2:] for step in expected_steps if step[0] == "error" and step[3] is not None
        ] == KEA_22_CLASS_CHECK_ERRORS

        expected = table_contents(theirs, started)
        actual = table_contents(ours, started)
        assert sorted(actual) == sorted(expected)
        for table in sorted(expected):
            assert actual[table] == expected[table], f"rows of {table} differ"
        # The workload reaches every trigger-maintained table.
        for table in (
            "lease4_stat",
            "lease6_stat",
            "lease4_stat_by_client_class",
            "lease6_stat_by_client_class",
            "dhcp4_audit",
            "dhcp6_audit",
            "dhcp4_audit_revision",
            "dhcp4_client_class_order",
        ):
            assert expected[table], f"the workload left {table} empty"
        # Sequences (and the rest of the catalog) moved the same way.
        catalog.assert_same_catalog(
            read_catalog(theirs), read_catalog(ours), ignore=IGNORE, labels=("kea-admin", "kea-db")
        )
    finally:
        drop_fresh_database(ours)
