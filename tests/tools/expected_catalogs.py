#!/usr/bin/env python3
"""Record every MySQL schema kea-db's revisions build, per flavour, for ``kea-db verify``.

    .venv/bin/python tests/tools/expected_catalogs.py [--out FILE] [--check]

``kea-db verify`` compares a MySQL database with a scratch build of its schema when the
user may create the scratch database; with Kea's documented grant only (``ALL ON kea.*``)
it compares with ``keadb_cli/schema/expected_mysql.json``, which this script writes. On a
throw-away MariaDB (the host's, utf8mb4 as Debian configures it) and Oracle MySQL (the sid
chroot) server, it builds kea-db's chain one revision at a time through a kea-db session,
as verify's scratch build runs it, and after each revision records the catalog (as
:mod:`keadb_cli.schema.expected` normalises it) and the rows of Kea's lookup tables.

Everything recorded is kea-db's own output: object names, types, defaults, key columns,
definitions, body hashes and lookup rows. tests/test_verify.py rebuilds the record on the
test servers and requires it to equal the file (``--check`` does the same here). Rebuild
after a change to a revision, the catalog reader or the normalisation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent.parent
sys.path[:0] = [str(TOOLS.parent), str(ROOT)]

from servers import (  # noqa: E402
    FreshDatabase,
    MySQLFamilyServer,
    MySQLFlavor,
    create_fresh_database,
    drop_fresh_database,
    start_mysql_family,
)

from keadb_cli.commands.verify import SessionConnection, _flat  # noqa: E402
from keadb_cli.db.plan import plan_for  # noqa: E402
from keadb_cli.db.session import open_session  # noqa: E402
from keadb_cli.kea.access import DbAccess  # noqa: E402
from keadb_cli.schema import catalog, catalog_mysql, expected, scripts  # noqa: E402

OUT = ROOT / "keadb_cli" / "schema" / expected.RECORD
FLAVOURS: tuple[MySQLFlavor, ...] = ("mariadb", "mysql")


def server_family(server: MySQLFamilyServer) -> str:
    """"MariaDB 10.11" / "Oracle MySQL 9.7": what the record was made on."""
    version = server.version.split("-")[0]
    major_minor = ".".join(version.split(".")[:2])
    return f"{'MariaDB' if server.flavor == 'mariadb' else 'Oracle MySQL'} {major_minor}"


def build_states(db: FreshDatabase) -> dict[str, tuple[expected.Flat, dict[str, Any]]]:
    """Every schema version of the chain built in ``db``, one revision after the other:
    version -> (normalised objects, lookup rows)."""
    access = DbAccess(type="mysql", host=db.host, port=db.port, user=db.user,
                      password=db.password, name=db.name)
    states: dict[str, tuple[expected.Flat, dict[str, Any]]] = {}
    known = scripts.known_schemas("mysql")
    with open_session(plan_for(access)) as session:
        connection = SessionConnection(session, "mysql")
        for (major, minor) in sorted(known):
            revision = known[(major, minor)]
            for statement in scripts.mysql_statements(scripts.rendered_step("mysql", revision)):
                session.query(statement)
            read = catalog.read_catalog(connection, "mysql", row_tables=())
            rows: dict[str, Any] = {}
            for table in read.tables:
                if table.name == "schema_version":
                    continue
                got = catalog.read_table_rows(connection, catalog_mysql.quote, table.name,
                                              table.columns)
                if got.rows:
                    rows[table.name] = (list(got.columns), [list(r) for r in got.rows])
            states[f"{major}.{minor}"] = (expected.normalise(_flat(read, "")), rows)
    return states


def record_flavour(server: MySQLFamilyServer) -> dict[str, Any]:
    db = create_fresh_database(server)
    try:
        server.warm_auth_cache(db.user, db.password)
        return expected.merge(build_states(db), server_family(server))
    finally:
        drop_fresh_database(db)


def render(flavours: dict[str, dict[str, Any]]) -> str:
    """The file's text: one line per object, so that a change shows as a small diff."""
    lines = ["{", f' "format": {expected.FORMAT},', ' "flavours": {']
    for n, (name, entry) in enumerate(sorted(flavours.items())):
        lines.append(f'  {json.dumps(name)}: {{')
        lines.append(f'   "recorded_on": {json.dumps(entry["recorded_on"])},')
        lines.append(f'   "versions": {json.dumps(entry["versions"])},')
        for part in ("objects", "rows"):
            lines.append(f'   "{part}": {{')
            items = sorted(entry[part].items())
            for i, (key, value) in enumerate(items):
                comma = "," if i < len(items) - 1 else ""
                lines.append(f"    {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
            lines.append("   }" + ("," if part == "objects" else ""))
        lines.append("  }" + ("," if n < len(flavours) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="compare with the file instead of writing it; exit 1 if it differs")
    args = parser.parse_args()
    flavours = {}
    for flavour in FLAVOURS:
        server = start_mysql_family(flavour, tls="off")
        try:
            flavours[flavour] = record_flavour(server)
        finally:
            server.stop()
    text = render(flavours)
    if args.check:
        same = args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'as recorded' if same else 'differs from a new build'}")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
