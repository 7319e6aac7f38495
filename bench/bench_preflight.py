"""Is `kea-db preflight` parallel? 16 entries over both backends, 4 of them on servers that
accept TCP and never answer (connect-timeout 1), against the slowest single entry.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), makes 6 databases with Kea
2.2's schema on each (kea-db init), and two silent listeners (a port whose kernel backlog
completes the TCP handshake while nobody ever reads: a hung server). Two Kea configuration
files hold 16 entries: 12 on the real databases, 4 on the silent ports. Then, interleaved,
N rounds of:

- `kea-db preflight --config v4 --config v6 --kea-version 2.2 --json` (all 16 entries);
- `kea-db preflight` on one hung entry alone (the slowest single entry: its connect-timeout);

and prints the median wall time of each and their ratio (target: the 16 entries in at most
1.3 s, about the slowest single entry). A serial run would take 4 x 1 s plus the rest.

Usage: python bench/bench_preflight.py [--rounds 5] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import (  # noqa: E402
    FreshDatabase,
    create_fresh_database,
    start_mariadb,
    start_postgres,
    stop_all,
)

TARGET_SECONDS = 1.3
KEA_DB = [sys.executable, "-m", "keadb_cli"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}


def _entry(db: FreshDatabase) -> dict[str, Any]:
    return {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
            "password": db.password, "name": db.name, "connect-timeout": 1}


def _init(db: FreshDatabase) -> None:
    env = {**_env(), "KEA_DB_PASSWORD": db.password}
    subprocess.run([*KEA_DB, "init", "--type", db.type, "--host", db.host, "--port",
                    str(db.port), "--user", db.user, "--name", db.name, "--kea-version",
                    "2.2"], env=env, check=True, capture_output=True, timeout=300)


def _timed(args: list[str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run([*KEA_DB, *args, "--json"], env=_env(), capture_output=True,
                          text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when the median of the 16 entries is over the target")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kea-db-bench-preflight-"))
    silent = []
    try:
        pg, maria = start_postgres(), start_mariadb()
        dbs = [create_fresh_database(server) for server in (pg, maria) for _ in range(6)]
        for db in dbs:
            _init(db)
        for _ in range(2):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            silent.append(sock)
        hung = [{"type": t, "host": "127.0.0.1", "port": s.getsockname()[1], "user": "kea",
                 "password": "secret", "name": n, "connect-timeout": 1}
                for t, s in (("postgresql", silent[0]), ("mysql", silent[1]))
                for n in ("kea", "other")]
        entries = [_entry(db) for db in dbs] + hung
        files = []
        for server, part in (("Dhcp4", entries[:8]), ("Dhcp6", entries[8:])):
            path = work / f"kea-{server.lower()}.conf"
            path.write_text(json.dumps({server: {"lease-database": part[0],
                                                 "hosts-databases": part[1:]}}))
            files.append(path)
        single = work / "single.conf"
        single.write_text(json.dumps({"Dhcp4": {"lease-database": hung[2]}}))
        many_args = ["preflight", "--config", str(files[0]), "--config", str(files[1]),
                     "--kea-version", "2.2"]
        one_args = ["preflight", "--config", str(single), "--kea-version", "2.2"]
        _timed(many_args)  # warm caches (bytecode, libraries) once
        many, one = [], []
        for _ in range(args.rounds):
            elapsed, doc = _timed(many_args)
            assert len(doc["entries"]) == 16 and doc["databases"] == 16, doc["databases"]
            many.append(elapsed)
            one.append(_timed(one_args)[0])
        m, o = statistics.median(many), statistics.median(one)
        print(f"preflight, 16 entries (4 hung, connect-timeout 1): median {m:.3f} s "
              f"(min {min(many):.3f}, max {max(many):.3f}) over {args.rounds} rounds")
        print(f"preflight, the slowest single entry (one hung):    median {o:.3f} s")
        print(f"ratio 16 entries / slowest single entry: {m / o:.2f}x; "
              f"target {TARGET_SECONDS} s: {'met' if m <= TARGET_SECONDS else 'MISSED'}")
        return 1 if args.strict and m > TARGET_SECONDS else 0
    finally:
        for sock in silent:
            sock.close()
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
