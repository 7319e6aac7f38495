"""How fast is `kea-db check-version` next to the native clients, on the same servers?

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), builds a Kea 2.2 schema in
each with Debian's kea-admin, then runs, interleaved, N rounds of:

- `kea-db check-version` (the installed console script) against each server,
- `psql -tAc 'SELECT version, minor FROM schema_version'`,
- `mariadb -N -B -e 'SELECT version, minor FROM schema_version'`,
- `kea-db --help`,

and prints the median wall time of each and the ratios against the targets:
PostgreSQL <= 3x psql, MySQL <= 5x the mariadb client, `kea-db --help` <= 80 ms.

Usage: python bench/bench_check_version.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kea_admin import kea_admin_init  # noqa: E402
from servers import create_fresh_database, start_mariadb, start_postgres, stop_all  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    pg = start_postgres(tls="off")
    my = start_mariadb(tls="off")
    try:
        pg_db = create_fresh_database(pg)
        my_db = create_fresh_database(my)
        for db in (pg_db, my_db):
            kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
        query = "SELECT version, minor FROM schema_version"
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "kea-db check-version (postgresql)": (
                [kea_db, "check-version", "--type", "postgresql", "--host", pg_db.host,
                 "--port", str(pg_db.port), "--user", pg_db.user, "--name", pg_db.name,
                 "--kea-version", "2.2"],
                {**base_env, "KEA_DB_PASSWORD": pg_db.password},
            ),
            "psql -tAc": (
                ["psql", "-h", pg_db.host, "-p", str(pg_db.port), "-U", pg_db.user,
                 "-d", pg_db.name, "-tAc", query],
                {**base_env, "PGPASSWORD": pg_db.password, "PGSSLMODE": "prefer"},
            ),
            "kea-db check-version (mysql)": (
                [kea_db, "check-version", "--type", "mysql", "--host", my_db.host,
                 "--port", str(my_db.port), "--user", my_db.user, "--name", my_db.name,
                 "--kea-version", "2.2"],
                {**base_env, "KEA_DB_PASSWORD": my_db.password},
            ),
            "mariadb -e": (
                ["mariadb", "--no-defaults", "-h", my_db.host, "-P", str(my_db.port),
                 "-u", my_db.user, f"-p{my_db.password}", my_db.name, "-N", "-B", "-e", query],
                base_env,
            ),
            "kea-db --help": ([kea_db, "--help"], base_env),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd, env in commands.values():  # warm up caches once
            timed(cmd, env)
        for _ in range(args.rounds):
            for name, (cmd, env) in commands.items():
                times[name].append(timed(cmd, env))
        med = {name: statistics.median(t) * 1000 for name, t in times.items()}
        print(f"rounds: {args.rounds} (interleaved), median wall time")
        for name, ms in med.items():
            print(f"  {name:36s} {ms:7.1f} ms")
        pg_ratio = med["kea-db check-version (postgresql)"] / med["psql -tAc"]
        my_ratio = med["kea-db check-version (mysql)"] / med["mariadb -e"]
        print(f"PostgreSQL: kea-db / psql    = {pg_ratio:.2f}x  (target <= 3x)")
        print(f"MySQL:      kea-db / mariadb = {my_ratio:.2f}x  (target <= 5x)")
        print(f"kea-db --help                = {med['kea-db --help']:.1f} ms (target <= 80 ms)")
        ok = pg_ratio <= 3 and my_ratio <= 5 and med["kea-db --help"] <= 80
        print("targets met" if ok else "targets NOT met")
        return 0 if ok else 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
