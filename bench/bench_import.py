"""`kea-db leases export`/`import` beside `kea-admin lease-dump`/`lease-upload` (3.0.4).

Starts a throw-away PostgreSQL and MariaDB (tests/servers.py); on each, builds Kea 3.0.4's
schema with `kea-db init` in three databases: the source, seeded with ``--leases`` lease4
and as many lease6 rows (server-side, as bench/bench_export.py seeds), and two empty
targets. Then, per family, once each:

- `kea-db leases export` of the source, and `kea-admin lease-dump` of it (both files must be
  identical);
- `kea-db leases import` of that file into the first target, then again (every row
  unchanged; ``--no-reimport`` skips it), and the target's row count checked;
- `kea-admin lease-upload` of the same file into the second target, given
  ``--upload-timeout`` seconds; when it fails or runs out of time, why (and how many rows
  its shell loop had turned into SQL by then).

The unpacked kea-admin 3.0.4 has no kea-lfc beside it, which lease-upload runs first: the
bench runs a private copy of it whose kea-lfc is Kea 3.0.4's from the test chroot
(``--kea-lfc-root``, default /var/cache/kea-db-tests/sid-kea, started through that root's
own dynamic loader); without that root, lease-upload fails and the table says why.

Wall times and the peak resident memory of each kea-db process (/usr/bin/time's maximum
resident set) are printed in one table.

Usage: python bench/bench_import.py [--leases 100000] [--upload-timeout 300] [--no-reimport]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_export import RELEASE, seed, timed  # noqa: E402
from kea_admin import (  # noqa: E402
    KeaAdminError,
    kea_admin_lease_dump,
    kea_admin_lease_upload,
    kea_admin_with_lfc,
)
from servers import (  # noqa: E402
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    start_mariadb,
    start_postgres,
    stop_all,
)


def _where(db: FreshDatabase, backend: str) -> list[str]:
    return ["--type", backend, "--host", db.host, "--port", str(db.port), "--user", db.user,
            "--name", db.name]


def _count(db: FreshDatabase, table: str) -> int:
    return int(db.server.sql(f"SELECT COUNT(*) FROM {table}", database=db.name)[0][0])


def _why(text: str) -> str:
    """The first line of kea-admin's output that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in ("error", "not found", "no such", "too long",
                                                 "denied", "failed")):
            return line[:160]
    return (lines[-1] if lines else "no output")[:160]


def upload(backend: str, db: FreshDatabase, family: int, path: Path, timeout: float,
           program: str | None) -> tuple[float, str]:
    """kea-admin lease-upload's wall time and its outcome ("ok, N rows" or why not)."""
    started = time.perf_counter()
    statements = Path("/tmp") / f"{path.name}.sql.tmp"  # kea-admin's SQL, built row by row
    try:
        kea_admin_lease_upload(backend, db.host, db.port, db.user, db.password, db.name,
                               family, str(path), release=RELEASE, timeout=timeout,
                               program=program)
    except KeaAdminError as err:
        return time.perf_counter() - started, "failed: " + _why(str(err))
    except subprocess.TimeoutExpired:
        time.sleep(1)  # its last child commands end
        done = 0
        if statements.exists():
            with statements.open("rb") as fh:
                done = max(sum(1 for _ in fh) - 1, 0)
        return (time.perf_counter() - started,
                f"unfinished after {timeout:.0f} s (stopped): {done} rows turned into SQL, "
                f"none uploaded")
    finally:
        for leftover in Path("/tmp").glob(f"{path.name}.*"):  # kea-admin's copies
            leftover.unlink(missing_ok=True)
    rows = _count(db, f"lease{family}")
    return time.perf_counter() - started, f"ok, {rows} rows"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=100000)
    parser.add_argument("--upload-timeout", type=float, default=300.0,
                        help="seconds kea-admin lease-upload may run (default 300)")
    parser.add_argument("--no-reimport", action="store_true",
                        help="skip the second import (all rows unchanged)")
    parser.add_argument("--kea-lfc-root", type=Path,
                        default=Path("/var/cache/kea-db-tests/sid-kea"),
                        help="a root holding Kea 3.0.4's kea-lfc for lease-upload")
    args = parser.parse_args()
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    servers = {"postgresql": start_postgres(tls="off"), "mysql": start_mariadb(tls="off")}
    folder = Path(tempfile.mkdtemp(prefix="keadb-bench-import-"))
    lines = []
    program = kea_admin_with_lfc(folder, RELEASE, args.kea_lfc_root)
    try:
        for backend, server in servers.items():
            source, target, theirs = (create_fresh_database(server) for _ in range(3))
            for db in (source, target, theirs):
                subprocess.run([kea_db, "init", "--kea-version", RELEASE,
                                *_where(db, backend)],
                               env={**env, "KEA_DB_PASSWORD": db.password}, check=True,
                               capture_output=True)
            started = time.perf_counter()
            seed(source, args.leases)
            print(f"{backend}: seeded in {time.perf_counter() - started:.1f} s", flush=True)
            for family in (4, 6):
                out = folder / f"kea-db-{uuid.uuid4().hex}.csv"
                export_s, export_kib = timed(
                    [kea_db, "leases", "export", f"-{family}", "--output", str(out),
                     *_where(source, backend)], {**env, "KEA_DB_PASSWORD": source.password})
                dumped = folder / f"kea-admin-{uuid.uuid4().hex}.csv"
                started = time.perf_counter()
                expected = kea_admin_lease_dump(backend, source.host, source.port,
                                                source.user, source.password, source.name,
                                                family, str(dumped), release=RELEASE)
                dump_s = time.perf_counter() - started
                identical = out.read_bytes() == expected
                dumped.unlink()
                print(f"{backend} -{family}: exported", flush=True)

                importing = [kea_db, "leases", "import", f"-{family}", str(out),
                             *_where(target, backend)]
                target_env = {**env, "KEA_DB_PASSWORD": target.password}
                import_s, import_kib = timed(importing, target_env)
                again_s, again_kib = ((float("nan"), 0) if args.no_reimport
                                      else timed(importing, target_env))
                loaded = _count(target, f"lease{family}")
                print(f"{backend} -{family}: imported", flush=True)
                upload_s, outcome = upload(backend, theirs, family, out, args.upload_timeout,
                                         program)
                out.unlink()
                lines.append(
                    f"{backend:<11}{family:>3}{export_s:>9.2f}{dump_s:>11.2f}"
                    f"{export_s / dump_s:>7.2f}{export_kib / 1024:>8.1f}  {identical!s:<6}"
                    f"{import_s:>9.2f}{again_s:>9.2f}"
                    f"{max(import_kib, again_kib) / 1024:>8.1f}{loaded:>10}"
                    f"{upload_s:>10.2f}  {outcome}")
            for db in (source, target, theirs):
                drop_fresh_database(db)
    finally:
        stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{args.leases:,} leases per family, kea-admin {RELEASE}; seconds (wall), "
          "MiB (kea-db's peak resident memory)")
    print(f"{'backend':<11}{'fam':>3}{'export':>9}{'lease-dump':>11}{'ratio':>7}{'MiB':>8}"
          f"  {'same':<6}{'import':>9}{'again':>9}{'MiB':>8}{'rows':>10}"
          f"{'upload':>10}  lease-upload")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
