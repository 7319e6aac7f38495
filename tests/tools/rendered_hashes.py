#!/usr/bin/env python3
"""Write migrations/<backend>/rendered.json: every revision's offline SQL hash.

    .venv/bin/python tests/tools/rendered_hashes.py            # write both files
    .venv/bin/python tests/tools/rendered_hashes.py --check    # exit 1 if either differs

``kea-db init`` and ``upgrade`` execute a revision's SQL only when its SHA-256 is the one
``migrations/<backend>/rendered.json`` records (:func:`keadb_cli.schema.scripts.recorded`;
README, "Render store"). For each backend (MySQL, PostgreSQL) this script walks alembic's
revision chain (:func:`keadb_cli.schema.migrate.script_directory`), renders every revision
offline from the revision before it (:func:`keadb_cli.schema.migrate.offline_sql`, exactly
the text :func:`keadb_cli.schema.scripts.rendered_step` checks) and records
``{"previous": <down_revision>, "sha256": <hex>}`` under the revision's id, sorted, indent 1.
No server is needed: offline rendering uses the SQLAlchemy dialect alone.

``--check`` writes nothing and exits 1 when a file is not what it would write (the
revisions whose entries differ are listed). Either mode refuses (exit 1) when the rendering
changes an entry of a released revision (``tests/data/released-revisions.txt``, its
revision ids with the hashes they were released with): a released revision's SQL is what
operators' databases ran and must never change. ``--allow-released-change`` writes anyway
(the test suite still fails until that list is changed too, with a reason in the log).

Run it after adding a revision or changing a revision or the schema kit (kea-db is not
released yet, so every revision may still change); tests/test_rendered.py fails while a
committed file differs from what this script writes.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent.parent
sys.path.insert(0, str(ROOT))

from keadb_cli.schema import migrate  # noqa: E402

BACKENDS = {"mysql": "mysql", "postgresql": "postgresql"}  # database type -> folder
RELEASED = ROOT / "tests" / "data" / "released-revisions.txt"
_REVISION_RE = re.compile(r"(?:mysql|pgsql)_[0-9]+_[0-9]+")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")

# revision id -> {"previous": down_revision or None, "sha256": hex digest}
Entries = dict[str, dict[str, str | None]]


def path_for(db_type: str) -> Path:
    """The rendered.json of ``db_type`` in this source tree."""
    return ROOT / "migrations" / BACKENDS[db_type] / "rendered.json"


def entries(db_type: str) -> Entries:
    """Every revision of ``db_type``'s chain, rendered offline from its down_revision."""
    if migrate.migrations_dir().resolve() != (ROOT / "migrations").resolve():
        raise SystemExit(f"keadb_cli reads its revisions from {migrate.migrations_dir()}, "
                         f"not from {ROOT / 'migrations'}: run from the source tree")
    found: Entries = {}
    for script in migrate.script_directory(db_type).walk_revisions():
        down = script.down_revision
        if down is not None and not isinstance(down, str):
            raise SystemExit(f"{db_type} {script.revision}: a merge revision ({down}) has no "
                             "single previous revision to render from")
        sql = migrate.offline_sql(db_type, script.revision, current=down)
        found[script.revision] = {"previous": down,
                                  "sha256": hashlib.sha256(sql.encode()).hexdigest()}
    return found


def render(found: Entries) -> str:
    """rendered.json's text: sorted keys, indent 1, a final newline."""
    return json.dumps(found, indent=1, sort_keys=True) + "\n"


def parse_released(text: str) -> dict[str, str]:
    """tests/data/released-revisions.txt: ``<revision id> <sha256>`` per line; blank lines
    and ``#`` comments ignored. Raises ValueError for any other line or a repeated id."""
    released: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if (len(words) != 2 or not _REVISION_RE.fullmatch(words[0])
                or not _SHA256_RE.fullmatch(words[1])):
            raise ValueError(f"line {number}: not '<revision id> <sha256>': {line!r}")
        if words[0] in released:
            raise ValueError(f"line {number}: {words[0]} is listed twice")
        released[words[0]] = words[1]
    return released


def read_released(path: Path | None = None) -> dict[str, str]:
    """The released revisions (default: :data:`RELEASED`) and their hashes."""
    return parse_released((path or RELEASED).read_text(encoding="utf-8"))


def changed_released(released: dict[str, str], found: dict[str, Entries]) -> list[str]:
    """The released revisions whose hash in ``found`` (database type -> entries, e.g. the
    rendered.json files) is not the one they were released with, or that are gone; empty
    when every released revision is as it was."""
    by_id = {rev: entry for each in found.values() for rev, entry in each.items()}
    problems = []
    for revision, digest in sorted(released.items()):
        entry = by_id.get(revision)
        if entry is None:
            problems.append(f"{revision}: released with {digest}, now missing")
        elif entry["sha256"] != digest:
            problems.append(f"{revision}: released with {digest}, now {entry['sha256']}")
    return problems


def differences(old: str, new: str) -> list[str]:
    """The revisions whose entry differs between two rendered.json texts (or the text's
    unified diff when one of them is not JSON)."""
    try:
        before, after = json.loads(old), json.loads(new)
    except json.JSONDecodeError:
        return list(difflib.unified_diff(old.splitlines(), new.splitlines(), "committed",
                                         "rendered", lineterm=""))
    lines = []
    for revision in sorted(before.keys() | after.keys()):
        if before.get(revision) != after.get(revision):
            lines.append(f"{revision}: {before.get(revision)} -> {after.get(revision)}")
    return lines or ["(same entries, other formatting)"]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a file differs from the rendering")
    parser.add_argument("--allow-released-change", action="store_true",
                        help="write even when a released revision's hash changes")
    args = parser.parse_args(argv)
    started = time.monotonic()
    found = {db_type: entries(db_type) for db_type in BACKENDS}
    status = 0
    released = changed_released(read_released(), found)
    for line in released:
        print(f"released revision changed: {line}", file=sys.stderr)
    if released and not (args.allow_released_change and not args.check):
        status = 1
    for db_type, each in found.items():
        path = path_for(db_type)
        new = render(each)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old == new:
            print(f"{_shown(path)}: up to date ({len(each)} revisions)")
            continue
        changes = differences(old, new)
        if args.check:
            print(f"{_shown(path)}: differs from the rendering "
                  f"({len(changes)} entries):", file=sys.stderr)
            for line in changes:
                print(f"  {line}", file=sys.stderr)
            status = 1
        elif status == 0 or args.allow_released_change:
            path.write_text(new, encoding="utf-8")
            print(f"{_shown(path)}: wrote {len(each)} revisions, "
                  f"{len(changes)} changed:")
            for line in changes:
                print(f"  {line}")
        else:
            print(f"{_shown(path)}: not written ({len(changes)} entries differ)",
                  file=sys.stderr)
    print(f"rendered {sum(len(e) for e in found.values())} revisions in "
          f"{time.monotonic() - started:.1f}s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
