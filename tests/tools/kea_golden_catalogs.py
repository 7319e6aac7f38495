#!/usr/bin/env python3
"""Build the golden catalogs of Kea releases that no Debian package ships.

    .venv/bin/python tests/tools/kea_golden_catalogs.py --repo /path/to/kea.git [TAG ...]
    .venv/bin/python tests/tools/kea_golden_catalogs.py --server mariadb --repo ... TAG ...

For each tag (default: every tag in ``TAGS``) the create script of that tag (``git show
TAG:src/share/database/scripts/pgsql/dhcpdb_create.pgsql``, or ``.../mysql/dhcpdb_create.mysql``;
what ``kea-admin db-init`` runs) is loaded with the backend's client (``psql``, or ``mysql`` as
kea-admin runs it) into a fresh database on a throw-away server (tests/servers.py: PostgreSQL,
MariaDB or Oracle MySQL), and the catalog kea-db reads from it (:mod:`keadb_cli.schema.catalog`:
names, types, keys, index and constraint definitions, routine identities and body hashes,
lookup rows) is written to ``tests/data/catalogs/<server>/<TAG>.json``. For PostgreSQL tags with
the shared free lease queue (``SFLQ_TAGS``), the steps of tests/sflq_workload.py then run on
that database and their results go to ``<TAG>.sflq.json``.

Only those catalogs are committed, never Kea's SQL: the script reads it from the git
repository into psql's standard input and nothing of it is kept. tests/test_chain_pgsql.py
compares ``kea-db init --kea-version R`` with them. Rebuild after a change to the catalog
reader; the PostgreSQL major version (here Debian 12's 15) shapes a few definitions, so use
the one the tests run on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

import sflq_workload  # noqa: E402
import sflq_workload_mysql  # noqa: E402
from servers import (  # noqa: E402
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    start_mysql_family,
    start_postgres,
)

from keadb_cli.schema import catalog  # noqa: E402

# Tag -> the release the test builds with kea-db init. Releases whose PostgreSQL schema no
# Debian kea-admin package has (2.6.3 and 3.0.4 are compared with Debian's packages).
TAGS = ["Kea-2.4.0", "Kea-2.7.0", "Kea-3.1.0", "Kea-3.1.1", "Kea-3.1.5", "Kea-3.1.8", "Kea-3.2.0"]
SFLQ_TAGS = {"Kea-3.1.8", "Kea-3.2.0"}
SCRIPTS = "src/share/database/scripts"
OUT = TESTS / "data" / "catalogs"


def _load_pgsql(db: FreshDatabase, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "-h", db.host,
         "-p", str(db.port), "-U", db.user, "-d", db.name],
        input=script, capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "PGPASSWORD": db.password},
    )


def _load_mysql(db: FreshDatabase, script: str) -> subprocess.CompletedProcess[str]:
    # As kea-admin runs it: the mysql client, the server's own session defaults.
    return subprocess.run(
        ["mysql", "-N", "-B", f"--host={db.host}", f"--port={db.port}", f"--user={db.user}",
         db.name],
        input=script, capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "MYSQL_PWD": db.password},
    )


def _golden_pgsql(db: FreshDatabase, tag: str) -> tuple[str, str | None]:
    import psycopg

    with psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                         dbname=db.name) as conn:
        found = catalog.read_catalog(conn, "postgresql").to_json() + "\n"
        conn.commit()
        results = None
        if tag in SFLQ_TAGS:
            results = json.dumps(sflq_workload.run(conn), indent=1) + "\n"
        return found, results


def _golden_mysql(db: FreshDatabase, tag: str) -> tuple[str, str | None]:
    import pymysql

    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=True)
    try:
        found = catalog.read_catalog(conn, "mysql").to_json() + "\n"
        results = None
        if tag in SFLQ_TAGS:
            results = json.dumps(sflq_workload_mysql.run(conn), indent=1) + "\n"
        return found, results
    finally:
        conn.close()


# Server -> (script directory and file under SCRIPTS, loader, catalog reader).
BACKENDS = {
    "postgresql": ("pgsql/dhcpdb_create.pgsql", _load_pgsql, _golden_pgsql),
    "mariadb": ("mysql/dhcpdb_create.mysql", _load_mysql, _golden_mysql),
    "mysql": ("mysql/dhcpdb_create.mysql", _load_mysql, _golden_mysql),
}


def golden(repo: Path, tag: str, server: object, kind: str) -> tuple[str, str | None]:
    """The catalog of ``tag``'s create script, and the queue steps' results (or None)."""
    path, load, read = BACKENDS[kind]
    script = subprocess.run(
        ["git", "-C", str(repo), "show", f"{tag}:{SCRIPTS}/{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    db = create_fresh_database(server)  # type: ignore[arg-type]
    try:
        done = load(db, script)
        if done.returncode != 0:
            raise SystemExit(f"{tag}: loading {path} failed:\n{done.stderr}")
        return read(db, tag)
    finally:
        drop_fresh_database(db)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="a clone of isc-projects/kea")
    parser.add_argument("--server", choices=sorted(BACKENDS), default="postgresql",
                        help="the server to load the create script into (directory name)")
    parser.add_argument("tags", nargs="*", default=TAGS)
    args = parser.parse_args()
    out = OUT / args.server
    out.mkdir(parents=True, exist_ok=True)
    server = start_postgres() if args.server == "postgresql" else start_mysql_family(args.server)
    try:
        for tag in args.tags:
            found, results = golden(args.repo, tag, server, args.server)
            path = out / f"{tag}.json"
            path.write_text(found)
            print(f"{tag}: {path.relative_to(TESTS.parent)}")
            if results is not None:
                path = out / f"{tag}.sflq.json"
                path.write_text(results)
                print(f"{tag}: {path.relative_to(TESTS.parent)}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
