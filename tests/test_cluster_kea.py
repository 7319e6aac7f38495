"""A real kea-dhcp4 3.0.4 (Debian sid, from its chroot) serving from a Kea database that is
more than one server (issue 18): a node of a 3-node Galera cluster, after ``kea-db init``
and ``kea-db upgrade`` through other nodes; and a PostgreSQL primary whose hot standby
``kea-db preflight`` refuses as Kea's lease database.

The machinery is ``real_kea.py``'s and ``test_real_kea_releases.py``'s: kea-dhcp4 serves one
end of a veth pair in the root network namespace (where the database servers listen on
127.0.0.1), perfdhcp makes its DHCPv4 exchanges from the other end, in a namespace of its
own. The cluster is the session's (``galera``, shared with ``test_galera_kea.py``); its
nodes and the PostgreSQL pair take cleartext sessions (TLS is proven by the other real-Kea
tests), so Kea is given no TLS settings here.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import servers
from real_kea import (
    EXCHANGES,
    Backend,
    DhcpLink,
    Exchange,
    Kea,
    check_version,
    dhcp_link,
    kea_runner,
    kea_tools,
    run_perfdhcp,
)
from servers import (
    FreshDatabase,
    GaleraCluster,
    PostgresServer,
    TlsMaterial,
    create_fresh_database,
    start_postgres,
)
from test_galera_kea import SCHEMA, kea_db, kea_db_on, through
from test_preflight import run
from test_real_kea_releases import KEA_DHCP4, RELEASES, require_chroot
from test_replicas import _start_standby

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.kea, pytest.mark.db]

__all__ = ["dhcp_link", "kea_db_on", "kea_tools"]  # fixtures

KEA = RELEASES["3.0.4"]
PG_TLS_ENV = ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY")  # Kea told no TLS
REPLAY_WAIT = 60.0  # seconds a lease written on the primary may take to reach the standby

Lease = tuple[str, str, int, int]  # (hwaddr hex, address, subnet_id, state) of a lease4 row


def plain_lease_database(db: FreshDatabase) -> dict[str, object]:
    """Kea's ``lease-database`` map for ``db``, without TLS."""
    return {"type": db.type, "host": db.host, "port": db.port, "name": db.name,
            "user": db.user, "password": db.password, "connect-timeout": 5,
            "max-reconnect-tries": 0}


def serve(kea: Kea, backend: Backend, link: DhcpLink, config: Path) -> set[Lease]:
    """kea-dhcp4 on ``config`` answers every DORA exchange perfdhcp makes from the client
    namespace; stopped cleanly. Returns the leases perfdhcp was acknowledged, as the lease4
    rows Kea must have written."""
    run_ = kea.start(config, backend, without_env=PG_TLS_ENV)
    run_.wait_started()
    base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
    perf = run_perfdhcp(link, base_mac)
    context = f"perfdhcp output:\n{perf.output}\nkea-dhcp4 {KEA.version}:\n{run_.tail()}"
    assert run_.process.poll() is None, context
    assert set(perf.exchanges) == {"DISCOVER-OFFER", "REQUEST-ACK"}, context
    for name, stats in perf.exchanges.items():
        assert stats == Exchange(sent=EXCHANGES, received=EXCHANGES, drops=0, orphans=0,
                                 rejected=0), f"{name}: {stats}\n{context}"
    acked = perf.leases["REQUEST-ACK"]
    first, last = link.pool
    for _client_id, address in acked:
        assert first <= ipaddress.IPv4Address(address) <= last, address
    leases = {(client_id[2:], address, 1, 0) for client_id, address in acked}
    assert len(leases) == EXCHANGES, context  # distinct clients, distinct addresses
    errors = [line for line in run_.text().splitlines() if " ERROR " in line]
    assert not errors, "\n".join(errors)
    assert run_.stop() == 0, run_.tail()
    return leases


def rows(found: list[tuple[Any, ...]]) -> set[Lease]:
    return {(bytes(hwaddr).hex(), str(ipaddress.IPv4Address(int(address))), int(subnet),
             int(state)) for address, hwaddr, subnet, state in found}


LEASE4 = "SELECT address, hwaddr, subnet_id, state FROM lease4"


# -- Galera ----------------------------------------------------------------------------------


def causal_read(db: FreshDatabase, query: str) -> list[tuple[Any, ...]]:
    """``query`` as Kea's user through ``db``'s node, once that node has applied everything
    the cluster committed before (``wsrep_sync_wait``)."""
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute(query)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_kea_3_0_serves_from_a_galera_node_after_kea_db_upgrade(
    galera: GaleraCluster, kea_db_on: Callable[[str], FreshDatabase], kea_tools: None,
    dhcp_link: DhcpLink, tls_material: TlsMaterial,
) -> None:
    """``kea-db init --kea-version 2.2`` through node 1, ``kea-db upgrade --kea-version 3.0``
    through node 2; kea-dhcp4 3.0.4 with its lease database on node 3 (``kea-db
    check-version --config`` on its very file says MATCH) hands out a lease to every client,
    and every node holds exactly those leases."""
    root = require_chroot(KEA)
    db = kea_db_on("2.2")
    node1, node2, node3 = galera.nodes
    started = time.monotonic()
    code, result, output = kea_db(through(db, node2), "upgrade", "--kea-version", "3.0",
                                  "--yes")
    print(f"\nkea-db upgrade 2.2 -> 3.0 through node 2: {time.monotonic() - started:.1f} s")
    assert (code, result["action"], result["to"]) == (ExitCode.OK, "upgraded",
                                                      SCHEMA["3.0"]), output
    on_node3 = through(db, node3)
    version = causal_read(on_node3, "SELECT CONCAT(version, '.', minor) FROM schema_version")
    assert version == [(SCHEMA["3.0"],)], version  # node 3 applied the upgrade
    backend = Backend(db=on_node3, tls=tls_material, release=KEA.version,
                      schema=KEA.schema["mysql"])
    with kea_runner(KEA_DHCP4, root, KEA.hooks["mysql"]) as kea:
        config = kea.write_config(backend, dhcp_link, "galera",
                                  lease_database=plain_lease_database(on_node3))
        code, checked = check_version(backend, config)
        assert (code, checked["verdict"], checked["node"]["role"]) == (
            ExitCode.OK, "MATCH", "galera"), checked
        given = serve(kea, backend, dhcp_link, config)
    for node in (node3, node1, node2):
        assert rows(causal_read(through(db, node), LEASE4)) == given, node.name
    for node in galera.nodes:
        status = node.status()
        assert (status["wsrep_cluster_size"], status["wsrep_local_state_comment"]) == (
            "3", "Synced"), node.name


# -- PostgreSQL: a primary and its hot standby -----------------------------------------------


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[tuple[FreshDatabase, FreshDatabase]]:
    """(primary, standby): a database ``kea-db init --kea-version 3.0`` built on the
    primary, and the same database on its hot standby (``pg_basebackup -R``), there once
    replayed."""
    primary = start_postgres(settings={"wal_level": "replica", "max_wal_senders": "5"})
    standby: PostgresServer | None = None
    try:
        primary.prepend_hba(f"host replication postgres {primary.host}/32 trust")
        standby = _start_standby(primary)
        db = create_fresh_database(primary)
        proc = run("init", "--type", db.type, "--host", db.host, "--port", str(db.port),
                   "--user", db.user, "--name", db.name, "--kea-version", "3.0", "--json",
                   env_extra={"KEA_DB_PASSWORD": db.password})
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        on_standby = FreshDatabase(server=standby, name=db.name, user=db.user,
                                   password=db.password, host=standby.host, port=standby.port,
                                   type=db.type, socket=standby.socket)
        version = "SELECT version, minor FROM schema_version"
        deadline = time.monotonic() + REPLAY_WAIT
        while not has_lease4(on_standby) or standby.sql(version, database=db.name) != \
                primary.sql(version, database=db.name):
            assert time.monotonic() < deadline, "the schema did not reach the standby"
            time.sleep(0.1)
        yield db, on_standby
    finally:
        servers.stop_servers([s for s in (standby, primary) if s is not None])


def has_lease4(db: FreshDatabase) -> bool:
    return db.server.sql("SELECT to_regclass('public.lease4') IS NOT NULL",
                         database=db.name) == [(True,)]


def replayed(standby: FreshDatabase, want: set[Lease]) -> set[Lease]:
    """lease4 on the standby once it holds ``want`` (or REPLAY_WAIT has passed)."""
    deadline = time.monotonic() + REPLAY_WAIT
    while True:
        have = rows(standby.server.sql(LEASE4, database=standby.name))
        if have == want or time.monotonic() > deadline:
            return have
        time.sleep(0.1)


def test_kea_3_0_serves_from_the_primary_that_preflight_tells_from_its_standby(
    pg_pair: tuple[FreshDatabase, FreshDatabase], kea_tools: None, dhcp_link: DhcpLink,
    tls_material: TlsMaterial,
) -> None:
    """``kea-db preflight`` on a kea-dhcp4 3.0.4 configuration whose lease database is the
    standby fails its node check (NODE_NOT_WRITABLE, the standby named); on the same
    configuration pointed at the primary every check passes; kea-dhcp4 3.0.4 serves from
    the primary, and the leases it wrote reach the standby."""
    primary, standby = pg_pair
    root = require_chroot(KEA)
    schema = KEA.schema["postgresql"]
    backend = Backend(db=primary, tls=tls_material, release=KEA.version, schema=schema)
    with kea_runner(KEA_DHCP4, root, KEA.hooks["postgresql"]) as kea:
        configs = {db: kea.write_config(backend, dhcp_link, label,
                                        lease_database=plain_lease_database(db))
                   for db, label in ((standby, "standby"), (primary, "primary"))}
        for db, config in configs.items():
            proc = run("preflight", "--config", str(config), "--kea-version", KEA.version,
                       "--json")
            assert db.password not in proc.stdout + proc.stderr
            doc = json.loads(proc.stdout)
            (entry,) = doc["entries"]
            assert entry["path"] == "Dhcp4.lease-database", entry
            found = {c["check"]: c for c in entry["checks"]}
            if db is standby:
                assert proc.returncode == ExitCode.NODE_NOT_WRITABLE, doc
                node = found["node"]
                assert (node["status"], node["reason_code"]) == ("fail",
                                                                 "node-not-writable"), node
                assert (f"{standby.host}:{standby.port}/{standby.name} is a hot standby"
                        in node["detail"]), node
                assert entry["node"]["role"] == "standby", entry
                assert found["schema"]["status"] == "pass", found  # 29.0 replayed there
            else:
                assert proc.returncode == ExitCode.OK, doc
                assert {name: c["status"] for name, c in found.items()} == dict.fromkeys(
                    found, "pass"), found
                assert entry["node"]["role"] == "primary", entry
        given = serve(kea, backend, dhcp_link, configs[primary])
    assert rows(primary.server.sql(LEASE4, database=primary.name)) == given
    assert replayed(standby, given) == given
