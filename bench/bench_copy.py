"""`kea-db copy` from MariaDB to PostgreSQL (or back): wall time and peak memory.

Starts a throw-away MariaDB and PostgreSQL (tests/servers.py), builds Kea 3.0.4's schema on
both with `kea-db init`, inserts ``--leases`` lease4 and as many lease6 rows (plus, from
MariaDB, ``--hosts`` hosts with an IPv6 reservation and a host option each) into the source
(server-side, as the superuser), then runs `kea-db copy` once and prints its wall time,
the rows per second, its peak resident memory and the comparison's verdict.

The peak is what ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` reports in a small
launcher process whose only child is kea-db (a forked child's peak starts at its parent's
resident size, so kea-db is not forked from this script, which holds the servers' state).
Target: 150 MB at 1,000,000 leases per family (``--leases 1000000``).

Usage: python bench/bench_copy.py [--leases 100000] [--hosts 1000] [--reverse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_export import seed as seed_leases  # noqa: E402
from servers import (  # noqa: E402
    FreshDatabase,
    create_fresh_database,
    start_mariadb,
    start_postgres,
    stop_all,
)

RELEASE = "3.0.4"
TARGET_MIB = 150

# Runs argv, then prints the child's wall seconds, peak resident KiB and CPU seconds (a
# loaded machine stretches the wall time; the CPU time is kea-db's own).
_LAUNCHER = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "s = time.perf_counter() - t\n"
    "sys.stderr.buffer.write(p.stderr)\n"
    "sys.stdout.buffer.write(p.stdout)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'\\n{p.returncode} {s} {u.ru_maxrss} {u.ru_utime + u.ru_stime}')\n"
)


def seed_hosts(db: FreshDatabase, count: int) -> None:
    if not count:
        return
    db.server.sql(
        "INSERT INTO hosts (host_id, dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, "
        "dhcp6_subnet_id, ipv4_address, hostname) SELECT seq, UNHEX(LPAD(HEX(seq), 12, '0')), "
        "0, 1 + seq % 4, 1 + seq % 4, 184549376 + seq, CONCAT('res-', seq, '.example.') "
        f"FROM seq_1_to_{count}", database=db.name)
    db.server.sql(
        "INSERT INTO ipv6_reservations (address, prefix_len, type, dhcp6_iaid, host_id) SELECT "
        "INET6_ATON(CONCAT('2001:db8:1::', HEX(seq))), 128, 0, seq, seq "
        f"FROM seq_1_to_{count}", database=db.name)
    db.server.sql(
        "INSERT INTO dhcp4_options (code, value, space, persistent, host_id, scope_id) SELECT "
        f"6, X'0a000001', 'dhcp4', 0, seq, 3 FROM seq_1_to_{count}", database=db.name)


def kea_config(db: FreshDatabase, folder: Path) -> str:
    entry = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
             "password": db.password, "name": db.name}
    path = folder / f"{db.name}.json"
    path.write_text(json.dumps({"Dhcp4": {"lease-database": entry,
                                          "hosts-databases": [entry]}}))
    path.chmod(0o600)
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=100_000,
                        help="lease4 rows and as many lease6 rows (default 100,000)")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--reverse", action="store_true",
                        help="copy from PostgreSQL to MariaDB (leases only)")
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    folder = Path(tempfile.mkdtemp(prefix="keadb-bench-copy-"))
    try:
        source = create_fresh_database(start_mariadb(tls="off"))
        target = create_fresh_database(start_postgres(tls="off"))
        if args.reverse:
            source, target = target, source
        for db in (source, target):
            subprocess.run([kea_db, "init", "--kea-version", RELEASE, "--type", db.type,
                            "--host", db.host, "--port", str(db.port), "--user", db.user,
                            "--name", db.name], env={**env, "KEA_DB_PASSWORD": db.password},
                           check=True, capture_output=True)
        started = time.perf_counter()
        seed_leases(source, args.leases)
        hosts = 0 if args.reverse else args.hosts
        seed_hosts(source, hosts)
        print(f"{source.type}: seeded {args.leases:,} lease4 + {args.leases:,} lease6 + "
              f"{hosts:,} hosts in {time.perf_counter() - started:.1f} s", flush=True)
        argv = [kea_db, "copy", "--from-config", kea_config(source, folder), "--to-config",
                kea_config(target, folder), "--json"]
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], env=env,
                              capture_output=True, check=False)
        out = proc.stdout.decode()
        document, _, last = out.rstrip("\n").rpartition("\n")
        code, seconds, peak_kib, cpu = last.split()
        if code != "0":
            print(proc.stderr.decode(), file=sys.stderr)
            print(f"kea-db copy exited {code}", file=sys.stderr)
            return 1
        doc = json.loads(document)
        rows = doc["rows_copied"]
        peak_mib = int(peak_kib) / 1024
        print(f"kea-db copy {source.type} -> {target.type} {RELEASE}: {rows:,} rows in "
              f"{float(seconds):.1f} s "
              f"({rows / float(seconds):,.0f} rows/s; kea-db's own count "
              f"{doc['seconds']:.1f} s; kea-db CPU {float(cpu):.1f} s)")
        print(f"peak resident memory: {peak_mib:.1f} MiB (target <= {TARGET_MIB} MB: "
              f"{'met' if peak_mib * 1.048576 <= TARGET_MIB else 'NOT met'})")
        print(f"comparison: equal={doc['comparison']['equal']} source "
              f"{doc['comparison']['source_checksum']} target "
              f"{doc['comparison']['target_checksum']}; statistics triggers disabled: "
              f"{doc['stats']['triggers_disabled']}")
    finally:
        stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
