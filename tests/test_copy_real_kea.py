"""A real kea-dhcp4 3.0.4 serves host reservations from a database `kea-db copy` filled.

Host reservations (hardware address -> a fixed address outside the pool) are written into
a MariaDB database that ``kea-db init --kea-version 3.0.4`` built, then copied with
``kea-db copy`` into a PostgreSQL database built the same way. kea-dhcp4 3.0.4 (from the
Debian sid chroot of ``tools/sid_chroot.sh``) then runs on the PostgreSQL database only
(lease and hosts database, over TLS) and perfdhcp's clients, from the test's client network
namespace, each get the address reserved for their hardware address; those are the lease
rows Kea wrote.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from pathlib import Path

import pytest
from real_kea import (
    EXCHANGES,
    Backend,
    DhcpLink,
    dhcp_link,
    kea_db,
    kea_runner,
    kea_tools,
    lease_rows,
    make_backend,
    run_perfdhcp,
)
from test_real_kea_releases import KEA_DHCP4, RELEASES, require_chroot

pytestmark = [pytest.mark.kea, pytest.mark.db]

__all__ = ["dhcp_link", "kea_tools"]  # fixtures

RELEASE = RELEASES["3.0.4"]


def kea_db_config(backend: Backend, folder: Path) -> str:
    """kea-db's own view of the entry: Kea's map plus, for PostgreSQL, the TLS that Kea
    3.0 takes from libpq's environment."""
    entry = backend.lease_database()
    entry.update(backend.tls_keys())
    if backend.type == "postgresql":
        entry["ssl-mode"] = "verify-full"
    path = folder / f"kea-db-{backend.db.name}.json"
    path.write_text(json.dumps({"Dhcp4": {"lease-database": entry,
                                          "hosts-databases": [entry]}}))
    path.chmod(0o600)
    return str(path)


def test_kea_dhcp4_serves_reservations_copied_from_mariadb_to_postgresql(
    request: pytest.FixtureRequest, dhcp_link: DhcpLink, tmp_path: Path
) -> None:
    root = require_chroot(RELEASE)
    source = make_backend(request, "mariadb", RELEASE.version, RELEASE.schema)
    target = make_backend(request, "postgresql", RELEASE.version, RELEASE.schema)
    base = bytes([0x02, *secrets.token_bytes(3), 0, 0])
    reserved: dict[str, ipaddress.IPv4Address] = {}
    for k in range(EXCHANGES * 4):  # perfdhcp's clients: the base MAC, the last bytes varied
        mac = base[:4] + k.to_bytes(2, "big")
        address = dhcp_link.network[20 + k] if k < 60 else dhcp_link.network[200 + k - 60]
        reserved[mac.hex()] = address
        source.sql(f"INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, "
                   f"dhcp4_subnet_id, ipv4_address, hostname) VALUES (X'{mac.hex()}', 0, 1, "
                   f"{int(address)}, 'client-{k}.example.')")

    copied = kea_db("copy", "--from-config", kea_db_config(source, tmp_path), "--to-config",
                    kea_db_config(target, tmp_path), "--json")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert json.loads(copied.stdout)["tables"]["hosts"]["copied"] == len(reserved)

    with kea_runner(KEA_DHCP4, root, RELEASE.hooks["postgresql"]) as kea:
        config = kea.write_config(target, dhcp_link, "copied")
        document = json.loads(config.read_text())
        document["Dhcp4"]["hosts-databases"] = [target.lease_database()]
        config.write_text(json.dumps(document, indent=2))
        run = kea.start(config, target)
        run.wait_started()
        perf = run_perfdhcp(dhcp_link, ":".join(f"{b:02x}" for b in base))
        context = f"perfdhcp output:\n{perf.output}\nkea-dhcp4:\n{run.tail()}"
        acked = perf.leases.get("REQUEST-ACK", [])
        assert len(acked) == EXCHANGES, context
        for client_id, address in acked:
            mac = client_id[2:]  # hardware type 1, then the MAC
            assert mac in reserved, (client_id, context)
            assert ipaddress.IPv4Address(address) == reserved[mac], (client_id, context)
        rows = lease_rows(target)
        assert sorted(rows) == sorted((c[2:], a, 1, 0) for c, a in acked), context
        assert run.stop() == 0, run.tail()
