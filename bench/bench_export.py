"""`kea-db leases export` beside `kea-admin lease-dump` (3.0.4), per backend and family.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), builds Kea 3.0.4's schema
with `kea-db init`, inserts ``--leases`` lease4 and as many lease6 rows (server-side, as
the superuser), then runs each export ``--rounds`` times and prints the median wall time
of each tool, kea-db's peak resident memory, and whether the two files are identical.

Usage: python bench/bench_export.py [--leases 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kea_admin import kea_admin_lease_dump  # noqa: E402
from servers import (  # noqa: E402
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    start_mariadb,
    start_postgres,
    stop_all,
)

RELEASE = "3.0.4"


def _type_of(db: FreshDatabase, table: str, column: str) -> str:
    if db.type == "postgresql":
        rows = db.server.sql("SELECT data_type FROM information_schema.columns WHERE "
                             "table_name = %s AND column_name = %s", database=db.name,
                             params=[table, column])
    else:
        rows = db.server.sql("SELECT data_type FROM information_schema.columns WHERE "
                             "table_schema = %s AND table_name = %s AND column_name = %s",
                             params=[db.name, table, column])
    return str(rows[0][0]).lower()


SEED_BATCH = 5000  # rows per INSERT (each its own transaction)


def seed(db: FreshDatabase, count: int) -> None:
    """``count`` lease4 and lease6 rows, in statements of :data:`SEED_BATCH` rows: the
    schema's triggers update the same statistics rows for every lease, and PostgreSQL
    slows down quadratically when one transaction updates one row that often."""
    for first in range(1, count + 1, SEED_BATCH):
        _seed(db, first, min(first + SEED_BATCH - 1, count))


def _seed(db: FreshDatabase, first: int, last: int) -> None:
    context = "'{\"note\": \"a, b\", \"n\": 1}'"
    if db.type == "postgresql":
        address6 = "('2001:db8::' || to_hex(g >> 16) || ':' || to_hex(g & 65535))"
        if _type_of(db, "lease6", "address") == "inet":
            address6 += "::inet"
        db.server.sql(
            "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, "
            "subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context) SELECT "
            "167772160 + g, decode(lpad(to_hex(g), 12, '0'), 'hex'), NULL, 3600, "
            "now() + interval '1 hour', 1 + g % 4, false, false, 'host-' || g || "
            f"'.example.', 0, {context} FROM generate_series({first}, {last}) g", database=db.name)
        db.server.sql(
            "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, "
            "pref_lifetime, lease_type, iaid, prefix_len, fqdn_fwd, fqdn_rev, hostname, "
            f"hwaddr, state, user_context) SELECT {address6}, "
            "decode(lpad(to_hex(g), 16, '0'), 'hex'), 7200, now() + interval '1 hour', "
            "1 + g % 4, 3600, 0, g, 128, false, false, NULL, NULL, 0, NULL "
            f"FROM generate_series({first}, {last}) g", database=db.name)
        return
    address6 = "CONCAT('2001:db8::', HEX(seq >> 16), ':', HEX(seq & 65535))"
    if "binary" in _type_of(db, "lease6", "address"):
        address6 = f"INET6_ATON({address6})"
    db.server.sql(
        "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, "
        "fqdn_fwd, fqdn_rev, hostname, state, user_context) SELECT 167772160 + seq, "
        "UNHEX(LPAD(HEX(seq), 12, '0')), NULL, 3600, NOW() + INTERVAL 1 HOUR, 1 + seq % 4, "
        f"0, 0, CONCAT('host-', seq, '.example.'), 0, {context} FROM seq_{first}_to_{last}",
        database=db.name)
    db.server.sql(
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
        "lease_type, iaid, prefix_len, fqdn_fwd, fqdn_rev, hostname, hwaddr, state, "
        f"user_context) SELECT {address6}, UNHEX(LPAD(HEX(seq), 16, '0')), 7200, "
        "NOW() + INTERVAL 1 HOUR, 1 + seq % 4, 3600, 0, seq, 128, 0, 0, NULL, NULL, 0, NULL "
        f"FROM seq_{first}_to_{last}", database=db.name)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak resident KiB of one process, measured by /usr/bin/time: a
    child's peak as wait4 reports it starts at its parent's resident size when it forked
    (Linux carries the forked copy's high-water mark across exec), and this script holds
    kea-admin's files in memory."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *argv],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        seconds = time.perf_counter() - started
        assert proc.returncode == 0, proc.stderr
        return seconds, int(report.read().split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers = {"postgresql": start_postgres(tls="off"), "mysql": start_mariadb(tls="off")}
    folder = Path(tempfile.mkdtemp(prefix="keadb-bench-export-"))
    try:
        print(f"{args.leases:,} leases per family, kea-admin {RELEASE}, median of "
              f"{args.rounds}")
        print(f"{'backend':<11}{'family':>7}{'kea-db s':>10}{'kea-admin s':>13}{'ratio':>7}"
              f"{'kea-db peak MiB':>17}  identical")
        for backend, server in servers.items():
            db = create_fresh_database(server)
            run_env = {**env, "KEA_DB_PASSWORD": db.password}
            where = ["--type", backend, "--host", db.host, "--port", str(db.port), "--user",
                     db.user, "--name", db.name]
            subprocess.run([kea_db, "init", "--kea-version", RELEASE, *where], env=run_env,
                           check=True, capture_output=True)
            started = time.perf_counter()
            seed(db, args.leases)
            print(f"{backend}: seeded in {time.perf_counter() - started:.1f} s", flush=True)
            for family in (4, 6):
                ours, theirs, peaks = [], [], []
                identical = True
                for _ in range(args.rounds):
                    out = folder / f"kea-db-{uuid.uuid4().hex}.csv"
                    seconds, peak = timed([kea_db, "leases", "export", f"-{family}",
                                           "--output", str(out), *where], run_env)
                    ours.append(seconds)
                    peaks.append(peak)
                    theirs_out = folder / f"kea-admin-{uuid.uuid4().hex}.csv"
                    started = time.perf_counter()
                    expected = kea_admin_lease_dump(backend, db.host, db.port, db.user,
                                                    db.password, db.name, family,
                                                    str(theirs_out), release=RELEASE)
                    theirs.append(time.perf_counter() - started)
                    identical = identical and out.read_bytes() == expected
                    out.unlink()
                    theirs_out.unlink()
                a, b = statistics.median(ours), statistics.median(theirs)
                print(f"{backend:<11}{family:>7}{a:>10.2f}{b:>13.2f}{a / b:>7.2f}"
                      f"{max(peaks) / 1024:>17.1f}  {identical}")
            drop_fresh_database(db)
    finally:
        stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
