"""`kea-db stats check` and `kea-db stats recount` wall time on 100,000 leases, per backend.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), builds Kea 3.0's schema with
`kea-db init`, inserts ``--leases`` leases (half IPv4, half IPv6 addresses and prefixes; 100
subnets, 4 pools each, every state, a third with client classes) so Kea's triggers fill the
statistics tables, then times `stats check` (``--rounds`` times), `stats recount --plan`
and, after raising one counter, `stats recount`, and prints the medians. No target is set;
the numbers are recorded in the closing notes.

Usage: python bench/bench_stats.py [--rounds 3] [--leases 100000]
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
    start_mariadb,
    start_postgres,
    stop_all,
)

CLASSES = ("'{\"ISC\": {\"client-classes\": [\"gold\", \"silver\"]}}'", "NULL",
           "'{\"ISC\": {\"client-classes\": [\"bronze\"]}}'")


def seed(backend: str, half: int) -> list[str]:
    """Statements that insert ``half`` IPv4 and ``half`` IPv6 leases."""
    if backend == "postgresql":
        rows, n = f"generate_series(0, {half - 1}) AS g(n)", "n"
        expire, v6 = "now() + interval '1 day'", "('2001:db8::' || to_hex(n))::inet"
        pd = "('2001:db8:' || to_hex(n % 65536) || ':' || to_hex(n / 65536) || '00::')::inet"
        duid = "'\\x0102'::bytea"
        ctx = f"(ARRAY[{', '.join(CLASSES)}])[n % 3 + 1]"
    else:
        rows, n = f"seq_0_to_{half - 1}", "seq"
        expire = "NOW() + INTERVAL 1 DAY"
        v6 = "INET6_ATON(CONCAT('2001:db8::', HEX(seq)))"
        pd = "INET6_ATON(CONCAT('2001:db8:', HEX(seq % 65536), ':', HEX(seq DIV 65536), '00::'))"
        duid = "UNHEX('0102')"
        ctx = f"ELT(seq % 3 + 1, {', '.join(CLASSES)})"
    div = "/" if backend == "postgresql" else "DIV"
    state = f"(CASE WHEN {n} % 10 < 6 THEN 0 WHEN {n} % 10 < 8 THEN 1 ELSE 2 END)"
    return [
        "INSERT INTO lease4 (address, valid_lifetime, expire, subnet_id, state, pool_id, "
        f"user_context) SELECT 167772160 + {n}, 3600, {expire}, {n} % 100 + 1, {state}, "
        f"({n} {div} 100) % 4, {ctx} FROM {rows}",
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
        "lease_type, iaid, prefix_len, state, pool_id, user_context) SELECT "
        f"CASE WHEN {n} % 4 = 3 THEN {pd} ELSE {v6} END, {duid}, 3600, {expire}, "
        f"{n} % 100 + 1, 1800, CASE WHEN {n} % 4 = 3 THEN 2 ELSE 0 END, {n}, "
        f"CASE WHEN {n} % 4 = 3 THEN 56 ELSE 128 END, {state}, ({n} {div} 100) % 4, {ctx} "
        f"FROM {rows}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--leases", type=int, default=100_000)
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers = {"postgresql": start_postgres(tls="off"), "mysql": start_mariadb(tls="off")}
    try:
        for backend, server in servers.items():
            db = create_fresh_database(server)
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

            run("init", "--kea-version", "3.0")
            started = time.perf_counter()
            for statement in seed(backend, args.leases // 2):
                server.sql(statement, database=db.name)
            loaded = time.perf_counter() - started
            check = [run("stats", "check") for _ in range(args.rounds)]
            plan = run("stats", "recount", "--plan")
            server.sql("UPDATE lease4_stat SET leases = leases + 1 WHERE subnet_id = 1 "
                       "AND state = 0", database=db.name)
            run("stats", "check", expect=53)
            recount = run("stats", "recount")
            run("stats", "check")
            drop_fresh_database(db)
            print(f"{backend}: {args.leases} leases (loaded through Kea's triggers in "
                  f"{loaded:.1f} s): stats check {statistics.median(check):.2f} s (min "
                  f"{min(check):.2f}, max {max(check):.2f}, {args.rounds} rounds), "
                  f"recount --plan {plan:.2f} s, recount {recount:.2f} s")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
