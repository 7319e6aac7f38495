"""``kea-db copy``: leases and host reservations between MariaDB and PostgreSQL.

A MariaDB database built by ``kea-db init`` is seeded with the lease workload of the export
tests (every lease state, user contexts with commas, quotes, newlines and tabs, NULL and
empty hardware addresses, prefixes, the largest IAID, pool ids), relay and remote ids, and
host reservations of every identifier type with IPv6 reservations (the largest IAID, an
excluded prefix) and host options. It is copied to PostgreSQL and back to a second MariaDB
database: the second's ``leases export`` output is the first's, byte for byte, and its
hosts, reservations and options are the first's rows (read with the server's own SQL).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase, MySQLFamilyServer, PostgresServer
from test_leases_export import seed as seed_leases

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.db]

RELEASE = "3.0.4"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}


def kea_db(*args: str, secrets: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          env=_env(), timeout=300, check=False)
    assert b"Traceback" not in proc.stderr, proc.stderr
    for secret in secrets:
        assert secret.encode() not in proc.stdout + proc.stderr
    return proc


def on_db(db: FreshDatabase, command: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = _env()
    env["KEA_DB_PASSWORD"] = db.password
    argv = [sys.executable, "-m", "keadb_cli", *command.split(), "--type", db.type,
            "--host", db.host, "--port", str(db.port), "--user", db.user, "--name", db.name,
            *args]
    return subprocess.run(argv, capture_output=True, env=env, timeout=300, check=False)


def kea_config(db: FreshDatabase, folder: Path, *, config_only: bool = False) -> str:
    """A kea-dhcp4 configuration whose lease and hosts databases are ``db``."""
    entry = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
             "password": db.password, "name": db.name}
    dhcp4: dict[str, Any] = {"config-control": {"config-databases": [entry]}}
    if not config_only:
        dhcp4.update({"lease-database": entry, "hosts-databases": [entry]})
    path = folder / f"kea-{db.name}{'-cb' if config_only else ''}.json"
    path.write_text(json.dumps({"Dhcp4": dhcp4}))
    return str(path)


def init(db: FreshDatabase, release: str = RELEASE) -> None:
    proc = on_db(db, "init", "--kea-version", release)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def seed_hosts(db: FreshDatabase) -> int:
    """Hosts of every identifier type on MariaDB, with reservations and options; returns
    the number of hosts."""
    sql = db.server.sql
    hosts = 0
    for i in range(12):
        kind = i % 5
        sql("INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, "
            "dhcp6_subnet_id, ipv4_address, hostname, dhcp4_client_classes, "
            "dhcp6_client_classes, dhcp4_next_server, dhcp4_server_hostname, "
            "dhcp4_boot_file_name, user_context, auth_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            params=[bytes([kind, 0xAB, i, 0xFF, 0, 1]), kind, 1 + i % 3 if i % 4 else None,
                    10 + i % 2 if i % 3 else None, 0xC0000264 + i if i % 4 else None,
                    f"host-{i},\"quoted\"\u00e9.example." if i % 2 else None,
                    "gold,silver" if i % 3 == 0 else None, None if i % 2 else "",
                    0xC0000201 if i == 3 else None, "tftp" if i == 3 else None,
                    "boot.efi" if i == 3 else None,
                    '{"note": "a, b",\n"n": [1]}' if i % 3 == 1 else None,
                    "0123456789abcdef0123456789abcdef" if i == 5 else None],
            database=db.name)
        (host_id,), = sql("SELECT MAX(host_id) FROM hosts", database=db.name)
        hosts += 1
        if i % 3:
            sql("INSERT INTO ipv6_reservations (address, prefix_len, type, dhcp6_iaid, "
                "host_id, excluded_prefix, excluded_prefix_len) VALUES "
                "(INET6_ATON(%s), %s, %s, %s, %s, INET6_ATON(%s), %s)",
                params=[f"2001:db8:1::{i + 1:x}", 128, 0, 4294967295 if i == 1 else i,
                        host_id, None, 0], database=db.name)
            sql("INSERT INTO ipv6_reservations (address, prefix_len, type, dhcp6_iaid, "
                "host_id, excluded_prefix, excluded_prefix_len) VALUES "
                "(INET6_ATON(%s), %s, %s, %s, %s, INET6_ATON(%s), %s)",
                params=[f"2001:db8:{i:x}00::", 56, 2, None, host_id,
                        f"2001:db8:{i:x}00:ff00::" if i == 2 else None, 64 if i == 2 else 0],
                database=db.name)
        sql("INSERT INTO dhcp4_options (code, value, formatted_value, space, persistent, "
            "host_id, scope_id, user_context, cancelled) VALUES "
            "(%s, %s, %s, 'dhcp4', %s, %s, 3, %s, %s)",
            params=[6 + i % 3, bytes([10, 0, 0, i]), None if i % 2 else f"10.0.0.{i}",
                    i % 2, host_id, '{"why": "tab\\there"}' if i == 4 else None, 0],
            database=db.name)
        if i % 2:
            sql("INSERT INTO dhcp6_options (code, value, formatted_value, space, persistent, "
                "host_id, scope_id, cancelled) VALUES (23, NULL, %s, 'dhcp6', 1, %s, 3, 0)",
                params=[f"2001:db8::{i:x}", host_id], database=db.name)
    return hosts


def seed_extended(db: FreshDatabase) -> None:
    """Relay and remote ids of leases (lease4 columns, lease6's tables)."""
    sql = db.server.sql
    sql("UPDATE lease4 SET relay_id = X'0a0b0c', remote_id = X'01' WHERE address % 3 = 0",
        database=db.name)
    # client classes, counted by the class statistics triggers
    sql("UPDATE lease4 SET user_context = '{\"ISC\": {\"client-classes\": [\"gold\", "
        "\"x, y\"]}}' WHERE address % 4 = 0", database=db.name)
    sql("UPDATE lease6 SET user_context = '{\"ISC\": {\"client-classes\": [\"silver\"]}}' "
        "WHERE lease_type = 2", database=db.name)
    for n in range(3):
        sql("INSERT INTO lease6_relay_id (relay_id, lease_addr) VALUES (%s, INET6_ATON(%s))",
            params=[bytes([0, 1, n]), f"2001:db8::{n + 1:x}"], database=db.name)
    sql("INSERT INTO lease6_remote_id (remote_id, lease_addr) VALUES (X'ff00', "
        "INET6_ATON('2001:db8::2'))", database=db.name)


HOST_SQL = (
    "SELECT HEX(dhcp_identifier), dhcp_identifier_type, dhcp4_subnet_id, dhcp6_subnet_id, "
    "ipv4_address, hostname, dhcp4_client_classes, dhcp6_client_classes, dhcp4_next_server, "
    "dhcp4_server_hostname, dhcp4_boot_file_name, user_context, auth_key, host_id "
    "FROM hosts ORDER BY host_id",
    "SELECT INET6_NTOA(address), prefix_len, type, dhcp6_iaid, host_id, "
    "INET6_NTOA(excluded_prefix), excluded_prefix_len FROM ipv6_reservations "
    "ORDER BY host_id, type, address",
    "SELECT code, HEX(value), formatted_value, space, persistent, dhcp_client_class, "
    "dhcp4_subnet_id, host_id, scope_id, user_context, shared_network_name, pool_id, "
    "modification_ts, cancelled, client_classes FROM dhcp4_options ORDER BY host_id, code",
    "SELECT code, HEX(value), formatted_value, space, persistent, host_id, scope_id, "
    "cancelled FROM dhcp6_options ORDER BY host_id, code",
    "SELECT HEX(relay_id), INET6_NTOA(lease_addr) FROM lease6_relay_id ORDER BY 2, 1",
    "SELECT HEX(remote_id), INET6_NTOA(lease_addr) FROM lease6_remote_id ORDER BY 2, 1",
    "SELECT address, HEX(relay_id), HEX(remote_id) FROM lease4 ORDER BY address",
)


def host_rows(db: FreshDatabase) -> list[list[Any]]:
    return [list(db.server.sql(q, database=db.name)) for q in HOST_SQL]


def exports(db: FreshDatabase) -> dict[int, bytes]:
    out = {}
    for family in (4, 6):
        proc = on_db(db, "leases export", f"-{family}")
        assert proc.returncode == 0, proc.stderr
        out[family] = proc.stdout
    return out


@pytest.fixture
def mariadb_factory(
    mysql_server_factory: Callable[..., MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
) -> Callable[[], FreshDatabase]:
    return lambda: fresh_db_factory(mysql_server_factory(tls="on", flavor="mariadb"))


def test_mariadb_postgresql_mariadb_round_trip(
    mariadb_factory: Callable[[], FreshDatabase], pg_server: PostgresServer,
    fresh_db_factory: Callable[..., FreshDatabase], tmp_path: Path,
) -> None:
    """MariaDB -> PostgreSQL -> MariaDB: the same leases export output, the same hosts,
    reservations and options; on PostgreSQL, the same expiry instants, Kea's int4 IAID, and
    statistics that match a recount. A merge of the same source replaces every row and
    keeps the target's own lease."""
    first, pg, last = mariadb_factory(), fresh_db_factory(pg_server), mariadb_factory()
    for db in (first, pg, last):
        init(db)
    n4, n6 = seed_leases(first)
    hosts = seed_hosts(first)
    seed_extended(first)
    before = exports(first)
    assert before[4].count(b"\n") > n4 and b"&#x2c" in before[4]
    secrets = (first.password, pg.password, last.password)

    to_pg = kea_db("copy", "--from-config", kea_config(first, tmp_path), "--to-config",
                   kea_config(pg, tmp_path), "--json", secrets=secrets)
    assert to_pg.returncode == 0, to_pg.stderr
    doc = json.loads(to_pg.stdout)
    assert doc["committed"] is True and doc["comparison"]["equal"] is True
    assert doc["comparison"]["source_checksum"] == doc["comparison"]["target_checksum"]
    copied = {name: t["copied"] for name, t in doc["tables"].items()}
    assert (copied["lease4"], copied["lease6"], copied["hosts"]) == (n4, n6, hosts)
    assert (copied["lease6_relay_id"], copied["lease6_remote_id"]) == (3, 1)
    assert copied["ipv6_reservations"] == 16 and copied["dhcp4_options"] == 12
    assert copied["dhcp6_options"] == 6
    assert doc["stats"]["triggers_disabled"] is True and doc["rows_replaced"] == 0
    recounted = {t["table"] for t in doc["stats"]["tables"] if t["differences"]}
    assert {"lease4_stat", "lease6_stat", "lease4_stat_by_client_class"} <= recounted
    assert doc["source"]["schema"] == "30.0" and doc["target"]["schema"] == "29.0"

    # the same instants and Kea's PostgreSQL IAID, read with each server's own SQL
    mine = dict(first.server.sql("SELECT address, UNIX_TIMESTAMP(expire) FROM lease4",
                                 database=first.name))
    theirs = dict(pg.server.sql("SELECT address, extract(epoch FROM expire)::bigint "
                                "FROM lease4", database=pg.name))
    assert {int(k): int(v) for k, v in mine.items()} == \
        {int(k): int(v) for k, v in theirs.items()}
    assert pg.server.sql("SELECT count(*) FROM lease6 WHERE iaid = -1",
                         database=pg.name)[0][0] > 0
    assert pg.server.sql("SELECT dhcp6_iaid FROM ipv6_reservations WHERE dhcp6_iaid < 0",
                         database=pg.name) == [(-1,)]
    stats = on_db(pg, "stats check")
    assert stats.returncode == 0, stats.stdout + stats.stderr
    # the copied host ids are kept, and the next host Kea adds gets a free one
    pg.server.sql("INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) "
                  "VALUES ('\\x0102'::bytea, 0, 99)", database=pg.name)
    pg.server.sql("DELETE FROM hosts WHERE dhcp4_subnet_id = 99", database=pg.name)

    back = kea_db("copy", "--from-config", kea_config(pg, tmp_path), "--to-config",
                  kea_config(last, tmp_path), secrets=secrets)
    assert back.returncode == 0, back.stderr
    assert b"match the source" in back.stdout
    stats = on_db(last, "stats check")
    assert stats.returncode == 0, stats.stdout + stats.stderr
    assert exports(last) == before
    assert host_rows(last) == host_rows(first)

    # merge: the target's own lease stays; every copied row replaces its twin
    last.server.sql("INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, "
                    "fqdn_fwd, fqdn_rev, hostname, state) VALUES (167772161, X'01', 60, "
                    "'2026-01-01 00:00:00', 7, 0, 0, 'own', 0)", database=last.name)
    refused = kea_db("copy", "--from-config", kea_config(pg, tmp_path), "--to-config",
                     kea_config(last, tmp_path), secrets=secrets)
    assert refused.returncode == ExitCode.NOT_EMPTY, refused.stderr
    assert b"--merge" in refused.stderr and len(refused.stderr.splitlines()) == 1
    merged = kea_db("copy", "--from-config", kea_config(pg, tmp_path), "--to-config",
                    kea_config(last, tmp_path), "--merge", "--json", secrets=secrets)
    assert merged.returncode == 0, merged.stderr
    doc = json.loads(merged.stdout)
    assert doc["tables"]["lease4"]["replaced"] == n4
    assert doc["tables"]["lease6"]["replaced"] == n6
    assert doc["tables"]["hosts"]["replaced"] == hosts
    assert last.server.sql("SELECT hostname FROM lease4 WHERE address = 167772161",
                           database=last.name) == [("own",)]
    after = exports(last)
    assert after[6] == before[6]
    added = set(after[4].split(b"\n")) - set(before[4].split(b"\n"))
    assert [line[:12] for line in added] == [b"10.0.0.1,01,"]
    assert len(after[4].split(b"\n")) == len(before[4].split(b"\n")) + 1
    rows = host_rows(last)
    assert len(rows[0]) == hosts and rows[1:] != [] and len(rows[1]) == 16


def test_copy_refuses_bad_input(
    mariadb_factory: Callable[[], FreshDatabase], pg_server: PostgresServer,
    fresh_db_factory: Callable[..., FreshDatabase], tmp_path: Path,
) -> None:
    """One line, its exit code, nothing written: the same database twice, a config backend,
    backends of two roles, an empty target, schemas of two releases, a target that changes
    the rows it is given (rolled back). Then a PostgreSQL target whose lease tables the
    user does not own: Kea's triggers count the copied leases."""
    source, target, other = mariadb_factory(), fresh_db_factory(pg_server), \
        fresh_db_factory(pg_server)
    init(source)
    seed_leases(source)
    seed_hosts(source)
    secrets = (source.password, target.password, other.password)
    src = kea_config(source, tmp_path)

    def refused(code: ExitCode, *args: str) -> bytes:
        proc = kea_db("copy", *args, secrets=secrets)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if b"warning" not in line]
        assert len(lines) == 1, proc.stderr
        assert proc.stdout == b""
        return proc.stderr

    assert b"same database" in refused(ExitCode.SETTINGS, "--from-config", src,
                                       "--to-config", src)
    assert b"config backend" in refused(
        ExitCode.SETTINGS, "--from-config", kea_config(source, tmp_path, config_only=True),
        "--to-config", kea_config(target, tmp_path))
    assert b"role" in refused(ExitCode.SETTINGS, "--from-config", src, "--from-backend",
                              "lease", "--to-config", kea_config(target, tmp_path),
                              "--to-backend", "hosts")
    assert b"empty" in refused(ExitCode.EMPTY, "--from-config", src, "--to-config",
                               kea_config(target, tmp_path))
    init(other, "2.6.3")
    assert b"upgrade the target" in refused(ExitCode.BEHIND, "--from-config", src,
                                            "--to-config", kea_config(other, tmp_path))
    assert target.server.sql("SELECT count(*) FROM information_schema.tables WHERE "
                             "table_schema = 'public'", database=target.name) == [(0,)]

    init(target)
    assert b"upgrade the source" in refused(ExitCode.AHEAD, "--from-config",
                                            kea_config(other, tmp_path), "--to-config",
                                            kea_config(target, tmp_path))

    # A target whose trigger rewrites a host name: the comparison sees it, all rolled back.
    target.server.sql(
        "CREATE FUNCTION keadb_test_mangle() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.hostname := 'mangled'; RETURN NEW; END $$", database=target.name)
    target.server.sql("CREATE TRIGGER keadb_test_mangle BEFORE INSERT ON hosts FOR EACH ROW "
                      "EXECUTE FUNCTION keadb_test_mangle()", database=target.name)
    proc = kea_db("copy", "--from-config", src, "--to-config", kea_config(target, tmp_path),
                  "--json", secrets=secrets)
    assert proc.returncode == ExitCode.COPY_MISMATCH, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["committed"] is False and doc["comparison"]["equal"] is False
    assert doc["tables"]["hosts"]["checksums_equal"] is False
    assert doc["tables"]["lease4"]["checksums_equal"] is True
    for table in ("lease4", "lease6", "hosts", "ipv6_reservations", "dhcp4_options"):
        assert target.server.sql(f"SELECT count(*) FROM {table}",
                                 database=target.name) == [(0,)], table

    # Lease tables the user does not own (Kea's grants only): their triggers cannot be
    # disabled, so they count every copied lease; the statistics still match a recount.
    target.server.sql("DROP TRIGGER keadb_test_mangle ON hosts", database=target.name)
    owner = f"keadb_owner_{target.name}"
    target.server.sql(f'CREATE ROLE "{owner}" NOLOGIN')
    try:
        for table in ("lease4", "lease6"):
            target.server.sql(f'ALTER TABLE {table} OWNER TO "{owner}"', database=target.name)
            target.server.sql(f'GRANT ALL ON {table} TO "{target.user}"', database=target.name)
        proc = kea_db("copy", "--from-config", src, "--to-config",
                      kea_config(target, tmp_path), "--json", secrets=secrets)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["stats"]["triggers_disabled"] is False and doc["comparison"]["equal"]
        assert not [t for t in doc["stats"]["tables"] if t["differences"]]
        stats = on_db(target, "stats check")
        assert stats.returncode == 0, stats.stdout + stats.stderr
    finally:
        for table in ("lease4", "lease6"):
            target.server.sql(f'ALTER TABLE {table} OWNER TO "{target.user}"',
                              database=target.name)
        target.server.sql(f'DROP ROLE "{owner}"')


def test_round_trip_of_kea_2_2_schemas(
    mariadb_factory: Callable[[], FreshDatabase], pg_server: PostgresServer,
    fresh_db_factory: Callable[..., FreshDatabase], tmp_path: Path,
) -> None:
    """Kea 2.2's schemas (MySQL 14.0, PostgreSQL 13.0: no pool ids, no relay or remote ids,
    MySQL's lease6 address as text): MariaDB -> PostgreSQL -> MariaDB gives back the same
    leases export output and the same host rows."""
    first, pg, last = mariadb_factory(), fresh_db_factory(pg_server), mariadb_factory()
    for db in (first, pg, last):
        init(db, "2.2.0")
    n4, n6 = seed_leases(first)
    for i in range(3):
        first.server.sql("INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, "
                         "dhcp4_subnet_id, dhcp6_subnet_id, ipv4_address, hostname) VALUES "
                         "(%s, 0, 1, 10, %s, %s)", params=[bytes([1, 2, 3, 4, 5, i]),
                                                          0xC0000264 + i, f"h{i}, ok"],
                         database=first.name)
        (host_id,), = first.server.sql("SELECT MAX(host_id) FROM hosts", database=first.name)
        first.server.sql("INSERT INTO ipv6_reservations (address, prefix_len, type, "
                         "dhcp6_iaid, host_id) VALUES (%s, 128, 0, 4294967295, %s)",
                         params=[f"2001:db8:2::{i + 1}", host_id], database=first.name)
        first.server.sql("INSERT INTO dhcp4_options (code, value, space, persistent, host_id, "
                         "scope_id) VALUES (15, %s, 'dhcp4', 1, %s, 3)",
                         params=[b"example.org", host_id], database=first.name)
    before = exports(first)
    for a, b in ((first, pg), (pg, last)):
        proc = kea_db("copy", "--from-config", kea_config(a, tmp_path), "--to-config",
                      kea_config(b, tmp_path), "--json", secrets=(a.password, b.password))
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert (doc["tables"]["lease4"]["copied"], doc["tables"]["lease6"]["copied"],
                doc["tables"]["hosts"]["copied"]) == (n4, n6, 3)
        assert "lease6_relay_id" not in doc["tables"]
    assert exports(last) == before
    for query in ("SELECT * FROM hosts ORDER BY host_id",
                  "SELECT address, prefix_len, type, dhcp6_iaid, host_id FROM "
                  "ipv6_reservations ORDER BY host_id",
                  "SELECT code, value, space, persistent, host_id, scope_id FROM "
                  "dhcp4_options ORDER BY host_id"):
        assert last.server.sql(query, database=last.name) == \
            first.server.sql(query, database=first.name), query
