"""`kea-db verify` wall time on Kea 3.2's schema (the longest revision chain), per backend,
with `kea-db check-version` (one login and one query) as the floor of any kea-db command.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), builds Kea 3.2's schema with
`kea-db init`, then runs `kea-db verify` and `kea-db check-version` ``--rounds`` times each
and prints the medians. verify builds the whole chain in a scratch namespace (PostgreSQL: a
schema in a rolled-back transaction; MariaDB: a scratch database) and reads two catalogs, so
it costs about an init plus two catalog reads; no target is set, the numbers are recorded in
the closing notes.

Usage: python bench/bench_verify.py [--rounds 5] [--kea-version 3.2.0]
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

from servers import (  # noqa: E402
    create_fresh_database,
    drop_fresh_database,
    grant_verify_scratch,
    start_mariadb,
    start_postgres,
    stop_all,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kea-version", default="3.2.0")
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers = {"postgresql": start_postgres(tls="off"), "mysql": start_mariadb(tls="off")}
    try:
        for backend, server in servers.items():
            db = create_fresh_database(server)
            grant_verify_scratch(db)
            where = ["--type", backend, "--host", db.host, "--port", str(db.port), "--user",
                     db.user, "--name", db.name]
            run_env = {**env, "KEA_DB_PASSWORD": db.password}

            def run(*command: str, expect: int = 0) -> float:
                started = time.perf_counter()
                proc = subprocess.run([kea_db, *command, *where], env=run_env,  # noqa: B023
                                      capture_output=True, text=True, check=False,
                                      stdin=subprocess.DEVNULL)
                seconds = time.perf_counter() - started
                assert proc.returncode == expect, proc.stdout + proc.stderr
                return seconds

            run("init", "--kea-version", args.kea_version)
            verify = [run("verify") for _ in range(args.rounds)]
            check = [run("check-version", "--kea-version", args.kea_version)
                     for _ in range(args.rounds)]
            drop_fresh_database(db)
            v, c = statistics.median(verify), statistics.median(check)
            print(f"{backend}: kea-db verify {v:.2f} s (min {min(verify):.2f}, max "
                  f"{max(verify):.2f}), check-version {c:.2f} s, Kea {args.kea_version} schema, "
                  f"medians of {args.rounds}")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
