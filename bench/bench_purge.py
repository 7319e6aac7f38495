"""`kea-db purge` wall time and lock holds on a Kea 3.0 database, per backend.

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py), builds Kea 3.0's schema with
`kea-db init`, fills it in bulk (as the superuser, bypassing Kea's triggers): ``--audit``
DHCPv4 audit rows over ``--objects`` objects, ten per revision, every revision 100 days
old, and ``--logs`` forensic log rows aged 0 to 59 days. Then `purge --plan` and `purge`
with ages of 30 days, printing each one's time and, per table, the rows deleted, the
batches and the longest DELETE (how long a batch held its row locks). No target is set;
the numbers are recorded in the README.

Usage: python bench/bench_purge.py [--audit 200000] [--objects 2000] [--logs 500000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import create_fresh_database, start_mariadb, start_postgres  # noqa: E402


def fill(backend: str, audit: int, objects: int, logs: int) -> list[str]:
    if backend == "postgresql":
        return [
            "INSERT INTO dhcp4_audit_revision (modification_ts, log_message) SELECT now() - "
            f"interval '100 days' + g * interval '1 second', 'r' "
            f"FROM generate_series(1, {audit // 10}) g",
            "INSERT INTO dhcp4_audit (object_type, object_id, modification_type, revision_id) "
            f"SELECT 'dhcp4_subnet', g % {objects}, 1, (SELECT min(id) FROM "
            f"dhcp4_audit_revision) + (g - 1) / 10 FROM generate_series(1, {audit}) g",
            "INSERT INTO logs (timestamp, address, log) SELECT now() - (g % 60) * "
            f"interval '1 day', '192.0.2.1', 'x' FROM generate_series(1, {logs}) g",
        ]
    return [
        "INSERT INTO dhcp4_audit_revision (modification_ts, log_message) SELECT NOW() - "
        f"INTERVAL 100 DAY + INTERVAL seq SECOND, 'r' FROM seq_1_to_{audit // 10}",
        "INSERT INTO dhcp4_audit (object_type, object_id, modification_type, revision_id) "
        f"SELECT 'dhcp4_subnet', seq % {objects}, 1, (SELECT min(id) FROM "
        f"dhcp4_audit_revision) + (seq - 1) DIV 10 FROM seq_1_to_{audit}",
        "INSERT INTO logs (timestamp, address, log) SELECT NOW() - INTERVAL (seq % 60) DAY, "
        f"'192.0.2.1', 'x' FROM seq_1_to_{logs}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audit", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=2_000)
    parser.add_argument("--logs", type=int, default=500_000)
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

            def run(*command: str) -> tuple[float, dict[str, object]]:
                started = time.perf_counter()
                proc = subprocess.run([kea_db, *command, *where], env=run_env,  # noqa: B023
                                      capture_output=True, text=True, check=False,
                                      stdin=subprocess.DEVNULL)
                seconds = time.perf_counter() - started
                assert proc.returncode == 0, proc.stdout + proc.stderr
                return seconds, json.loads(proc.stdout) if proc.stdout.startswith("{") else {}

            run("init", "--kea-version", "3.0")
            for statement in fill(backend, args.audit, args.objects, args.logs):
                server.sql(statement, database=db.name)
            ages = ["--audit-older-than", "30", "--logs-older-than", "30", "--json"]
            for label, extra in (("purge --plan", ["--plan"]), ("purge", [])):
                seconds, doc = run("purge", *ages, *extra)
                print(f"{backend}: {label}: {seconds:.2f} s")
                results: list[dict[str, object]] = doc["results"]  # type: ignore[assignment]
                tables: list[dict[str, object]] = results[0]["tables"]  # type: ignore[assignment]
                for t in tables:
                    gone = t["to_delete"] if extra else t["deleted"]
                    print(f"  {t['table']}: {gone} rows, kept {t['kept_newest']}, "
                          f"{t['batches']} batches, longest DELETE "
                          f"{t['longest_batch_seconds']} s")
    finally:
        for server in servers.values():
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
