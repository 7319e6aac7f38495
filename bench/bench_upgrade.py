"""`kea-db upgrade` against Debian's `kea-admin db-upgrade` (Kea 3.0.4), 2.2 -> 3.0, on
identical databases holding 100,000 lease4 and 100,000 lease6 rows.

Starts throw-away servers: by default the host's PostgreSQL and MariaDB (tests/servers.py);
with ``--cell`` the servers of cells of the server matrix (tests/matrix.py), such as
``mariadb10.5-defaults`` (MariaDB 10.5 out of the box: latin1, explicit_defaults_for_timestamp
OFF). Per server and round: two fresh databases get Kea 2.2's schema from Debian's kea-admin
2.2.0 and the same generated leases (INSERT ... SELECT on the server, every lease expiring at
one fixed time), then one is upgraded by `kea-db upgrade --kea-version 3.0.4 --yes` and the
other by kea-admin 3.0.4 `db-upgrade` (unpacked by tests/tools/kea_admin_pkgs.sh). Checks
that both ended at the same schema with the same lease rows, every column (expiry included)
of every row.

The floor is what the server must do at least during any upgrade that changes the lease
tables' layout: rebuild each lease table once, timed on a third identical 2.2 database
(MariaDB / MySQL: ``ALTER TABLE lease4 FORCE`` and ``ALTER TABLE lease6 FORCE``, a copy of
the rows and of every index; PostgreSQL: ``VACUUM FULL lease4`` and ``VACUUM FULL lease6``,
which rewrite the table and rebuild its indexes as an ALTER TABLE that changes a column's
type does).

Before each timed run the server is left to finish the work the fill left behind
(InnoDB's purge, a PostgreSQL checkpoint). Prints per server the medians of kea-db,
kea-admin and the floor, kea-db / floor (target <= 1.5x) and kea-db / kea-admin (target
<= 0.25x), kea-db's peak memory (its
maximum resident set, from GNU time) and its slowest steps (from its JSON).

Usage: python bench/bench_upgrade.py [--rounds 3] [--leases 100000]
       [--cell ID ... | --host-server postgresql|mariadb]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import matrix  # noqa: E402
from kea_admin import kea_admin_init, kea_admin_upgrade  # noqa: E402
from servers import (  # noqa: E402
    DatabaseServer,
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    grant_verify_scratch,
    start_mariadb,
    start_postgres,
    stop_all,
)

# Lease6 addresses are written as Kea writes them: the canonical text (RFC 5952, as
# inet_ntop and MySQL's INET6_NTOA spell it): 2001:db8::1:1, 2001:db8::1:2, ...
# Rows generated on the server: n from a cross join of digit tables (no recursion limits).
_DIGITS = {
    "postgresql": "SELECT g AS n FROM generate_series(1, {n}) AS g",
    "mysql": (
        "SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 100000*f.d + 1 AS n FROM "
        + ", ".join(f"(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
                    f"UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL "
                    f"SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) {x}" for x in "abcdef")
    ),
}
_LEASES = {
    "postgresql": [
        "INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, state, "
        "user_context) SELECT 167772160 + n, decode(lpad(to_hex(n), 12, '0'), 'hex'), 3600, "
        "'2031-01-01 00:00:00+00', 1 + n % 10, n % 3, "
        "CASE WHEN n % 7 = 0 THEN '{{\"ISC\": {{\"client-classes\": [\"gold\"]}}}}' END "
        "FROM ({digits}) s",
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, "
        "pref_lifetime, lease_type, iaid, prefix_len, state) SELECT "
        "'2001:db8::' || to_hex(n / 65536 + 1) || ':' || to_hex(n % 65536), "
        "decode(lpad(to_hex(n), 8, '0'), 'hex'), 3600, '2031-01-01 00:00:00+00', "
        "1 + n % 10, 1800, 0, n, 128, n % 3 FROM ({digits}) s",
    ],
    "mysql": [
        "INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, state, "
        "user_context) SELECT 167772160 + n, UNHEX(LPAD(HEX(n), 12, '0')), 3600, "
        "'2031-01-01 00:00:00', 1 + n % 10, n % 3, "
        "IF(n % 7 = 0, '{{\"ISC\": {{\"client-classes\": [\"gold\"]}}}}', NULL) "
        "FROM ({digits}) s WHERE n <= {n}",
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, "
        "pref_lifetime, lease_type, iaid, prefix_len, state) SELECT "
        "CONCAT('2001:db8::', LOWER(HEX(n DIV 65536 + 1)), ':', LOWER(HEX(n % 65536))), "
        "UNHEX(LPAD(HEX(n), 8, '0')), 3600, '2031-01-01 00:00:00', 1 + n % 10, 1800, 0, "
        "n, 128, n % 3 FROM ({digits}) s WHERE n <= {n}",
    ],
}


def _fill(db: FreshDatabase, leases: int) -> None:
    """The leases, through Kea's triggers (the statistics tables count them); on PostgreSQL
    above 200,000 rows without them: one INSERT updating the same statistics row for every
    lease leaves a chain of row versions that grows with each, and a million take hours."""
    digits = _DIGITS[db.type].format(n=leases)
    quiet = db.type == "postgresql" and leases > 200_000
    for statement in _LEASES[db.type]:
        table = "lease4" if "INTO lease4" in statement else "lease6"
        if quiet:
            db.server.sql(f"ALTER TABLE {table} DISABLE TRIGGER USER", database=db.name)
        db.server.sql(statement.format(digits=digits, n=leases), database=db.name)
        if quiet:
            db.server.sql(f"ALTER TABLE {table} ENABLE TRIGGER USER", database=db.name)


def _counts(db: FreshDatabase) -> tuple[object, ...]:
    rows = db.server.sql("SELECT (SELECT COUNT(*) FROM lease4), (SELECT COUNT(*) FROM lease6),"
                         " (SELECT version FROM schema_version)", database=db.name)
    return tuple(str(v) for v in rows[0])


def _rows(db: FreshDatabase, leases: int) -> list[object]:
    """Every lease row, every column, in key order; above 200,000 rows a table, a digest of
    them computed by the server (MySQL's CHECKSUM TABLE, an MD5 of every row's text on
    PostgreSQL) rather than the rows themselves, which would take gigabytes here."""
    if leases <= 200_000:
        return [db.server.sql(f"SELECT * FROM {table} ORDER BY address", database=db.name)
                for table in ("lease4", "lease6")]
    if db.type == "mysql":
        return [row[1] for row in db.server.sql("CHECKSUM TABLE lease4, lease6 EXTENDED",
                                                database=db.name)]
    return [db.server.sql(f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.address)) "
                          f"FROM {table} t", database=db.name)[0][0]
            for table in ("lease4", "lease6")]


_FLOOR = {
    "postgresql": ["VACUUM FULL lease4", "VACUUM FULL lease6"],
    "mysql": ["ALTER TABLE lease4 FORCE", "ALTER TABLE lease6 FORCE"],
}


def _quiesce(db: FreshDatabase, wait: float = 300.0) -> None:
    """Wait (bounded) until the server has caught up with the rows just written: InnoDB's
    purge of the fill's undo log, which otherwise competes for the two cores with whatever is
    timed next (seen: a kea-db run 4 s slower right after a 1M fill); PostgreSQL: a
    checkpoint, so that writing the fill's pages out is not charged to the next run."""
    if db.type == "postgresql":
        db.server.sql("CHECKPOINT")
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        rows = db.server.sql("SELECT COUNT FROM information_schema.INNODB_METRICS WHERE "
                             "NAME = 'trx_rseg_history_len'")
        if not rows or int(rows[0][0] or 0) < 1000:
            return
        time.sleep(0.5)


def _floor(db: FreshDatabase) -> float:
    """Seconds to rebuild each lease table once (the server's own statements)."""
    started = time.perf_counter()
    for statement in _FLOOR[db.type]:
        db.server.sql(statement, database=db.name)
    return time.perf_counter() - started


def _run_measured(argv: list[str], env: dict[str, str]) -> tuple[int, str, str, int]:
    """Run a child; (exit code, stdout, stderr, its peak resident set in KiB).

    The peak comes from GNU time run as the child: a child forked by this process (which
    holds every compared row by then) would start with this process's resident set.
    """
    with tempfile.NamedTemporaryFile("r") as peak:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *argv], env=env,
                              capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
        kib = int(peak.read().split()[-1])
    return proc.returncode, proc.stdout, proc.stderr, kib


def _prepared(leases: int, make: Callable[[], FreshDatabase]) -> FreshDatabase:
    db = make()
    kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
    _fill(db, leases)
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--leases", type=int, default=100_000)
    parser.add_argument("--cell", action="append", default=[],
                        help="a cell of tests/matrix.py (repeatable); default: the host's "
                        "PostgreSQL and MariaDB")
    parser.add_argument("--host-server", choices=("postgresql", "mariadb"), action="append",
                        help="without --cell: only this one of the host's servers (repeatable)")
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers: dict[str, tuple[DatabaseServer, Callable[[], FreshDatabase]]] = {}

    def fresh(server: DatabaseServer) -> Callable[[], FreshDatabase]:
        def make() -> FreshDatabase:
            db = create_fresh_database(server)
            grant_verify_scratch(db)
            return db
        return make

    try:
        if not args.cell:
            for name, start in (("postgresql", start_postgres), ("mariadb", start_mariadb)):
                if name in (args.host_server or (name,)):
                    server = start(tls="off")
                    servers[name] = (server, fresh(server))
        for cell_id in args.cell:
            cell = matrix.cell(cell_id)
            server = cell.start()
            servers[cell_id] = (server, lambda c=cell, s=server: c.create_database(s))
        for label, (server, make) in servers.items():
            backend = server.type
            ours_t, theirs_t, floor_t, rss = [], [], [], []
            slowest: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                ours, theirs, floor = (_prepared(args.leases, make) for _ in range(3))
                _quiesce(floor)
                floor_t.append(_floor(floor))
                _quiesce(ours)
                started = time.perf_counter()
                code, out, err, kib = _run_measured(
                    [kea_db, "upgrade", "--type", backend, "--host", ours.host, "--port",
                     str(ours.port), "--user", ours.user, "--name", ours.name,
                     "--kea-version", "3.0.4", "--yes", "--json"],
                    {**env, "KEA_DB_PASSWORD": ours.password})
                ours_t.append(time.perf_counter() - started)
                assert code == 0, err or out
                rss.append(kib)
                for run in json.loads(out)["results"][0]["steps"]:
                    slowest.setdefault(run["revision"], []).append(run["seconds"])
                _quiesce(theirs)
                started = time.perf_counter()
                kea_admin_upgrade(backend, theirs.host, theirs.port, theirs.user,
                                  theirs.password, theirs.name, release="3.0.4")
                theirs_t.append(time.perf_counter() - started)
                assert _counts(ours) == _counts(theirs), (_counts(ours), _counts(theirs))
                assert _rows(ours, args.leases) == _rows(theirs, args.leases), \
                    "the lease rows differ"
                for db in (ours, theirs, floor):
                    drop_fresh_database(db)
            o, t, f = (statistics.median(x) for x in (ours_t, theirs_t, floor_t))
            steps = sorted(((statistics.median(v), k) for k, v in slowest.items()),
                           reverse=True)[:8]
            print(f"{label} ({server.version}), {args.leases} lease4 + {args.leases} lease6, "
                  f"medians of {args.rounds}:\n"
                  f"  kea-db upgrade {o:.2f} s | kea-admin 3.0.4 db-upgrade {t:.2f} s | "
                  f"floor ({' + '.join(_FLOOR[backend])}) {f:.2f} s\n"
                  f"  kea-db / floor {o / f:.2f}x (target <= 1.5x) | kea-db / kea-admin "
                  f"{o / t:.2f}x (target <= 0.25x) | kea-db peak memory "
                  f"{max(rss) / 1024:.0f} MiB\n"
                  f"  kea-db's slowest steps: "
                  + ", ".join(f"{k} {v:.2f} s" for v, k in steps), flush=True)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
