"""`kea-db init` against Debian's `kea-admin db-init` of the same release, per release.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py) and runs, interleaved, N rounds
of, per release (2.2.0: the installed kea-admin; 2.6.3 and 3.0.4: Debian's packages unpacked
by tests/tools/kea_admin_pkgs.sh): a fresh empty database initialised by `kea-db init
--kea-version R` (the installed console script, a new process each time, as a pipeline runs
it) and another initialised by that release's `kea-admin db-init`. Prints the median wall
time of each and the ratio; target <= 1.0x on both backends for every release.

Usage: python bench/bench_init.py [--rounds 7] [--release 3.0.4 ...]
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

RELEASES = ("2.2.0", "2.6.3", "3.0.4")
from servers import (  # noqa: E402
    create_fresh_database,
    drop_fresh_database,
    start_mariadb,
    start_postgres,
    stop_all,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--release", action="append", choices=RELEASES,
                        help="a release to measure (repeatable; default: all)")
    args = parser.parse_args()
    releases = args.release or list(RELEASES)
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers = {"postgresql": start_postgres(tls="off"), "mysql": start_mariadb(tls="off")}
    try:
        times: dict[str, list[float]] = {}
        for round_ in range(args.rounds + 1):  # round 0 warms caches and is not counted
            for release in releases:
                for backend, server in servers.items():
                    db = create_fresh_database(server)
                    started = time.perf_counter()
                    proc = subprocess.run(
                        [kea_db, "init", "--type", backend, "--host", db.host, "--port",
                         str(db.port), "--user", db.user, "--name", db.name, "--kea-version",
                         release],
                        env={**env, "KEA_DB_PASSWORD": db.password}, capture_output=True,
                        text=True, check=False)
                    elapsed = time.perf_counter() - started
                    if proc.returncode != 0:
                        raise SystemExit(f"kea-db init failed: {proc.stderr[-500:]}")
                    if round_:
                        times.setdefault(f"{release} kea-db init ({backend})", []).append(
                            elapsed)
                    drop_fresh_database(db)
                    db = create_fresh_database(server)
                    started = time.perf_counter()
                    kea_admin_init(backend, db.host, db.port, db.user, db.password, db.name,
                                   release=release)
                    elapsed = time.perf_counter() - started
                    if round_:
                        times.setdefault(f"{release} kea-admin db-init ({backend})", []).append(
                            elapsed)
                    drop_fresh_database(db)
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"rounds: {args.rounds} (interleaved, after one warm-up), median wall time")
        for name, seconds in sorted(med.items()):
            print(f"  {name:40s} {seconds:6.3f} s")
        ok = True
        for release in releases:
            for backend in servers:
                ratio = (med[f"{release} kea-db init ({backend})"]
                         / med[f"{release} kea-admin db-init ({backend})"])
                ok = ok and ratio <= 1.0
                print(f"{release} {backend:10s}: kea-db / kea-admin = {ratio:.2f}x  "
                      "(target <= 1.0x)")
        print("targets met" if ok else "targets NOT met")
        return 0 if ok else 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
