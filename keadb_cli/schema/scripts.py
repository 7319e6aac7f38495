"""The SQL that ``init`` runs: alembic's offline rendering of kea-db's revisions, cached.

``init`` does not need SQLAlchemy, alembic or a DBAPI driver at run time: it executes the
exact script that ``kea-db init --sql`` prints (alembic offline mode over the same revision
modules; the tests prove it builds the same catalog as alembic's online mode and as
kea-admin) through kea-db's own wire client. Rendering imports alembic and SQLAlchemy (about
half a second), so the text is cached on disk, keyed by a hash of every file that shapes it;
a stale or unwritable cache only costs the rendering again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from keadb_cli import __version__
from keadb_cli.schema.migrate import migrations_dir, revision_for_schema, schema_for_revision

_FOLDERS = {"mysql": "mysql", "postgresql": "postgresql"}
_DELIMITER_RE = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.IGNORECASE)


def versions_dir(db_type: str) -> Path:
    return migrations_dir() / _FOLDERS[db_type] / "versions"


def known_schemas(db_type: str) -> dict[tuple[int, int], str]:
    """Schema versions kea-db can build, from the revision file names alone (no alembic:
    a revision's file is named after its id, and the id names the schema)."""
    known: dict[tuple[int, int], str] = {}
    folder = versions_dir(db_type)
    if not folder.is_dir():
        return known
    for path in folder.glob("*.py"):
        try:
            schema = schema_for_revision(path.stem)
        except Exception:
            continue
        if revision_for_schema(db_type, schema) == path.stem:
            known[schema] = path.stem
    return known


def _sources(db_type: str) -> list[Path]:
    package = Path(__file__).resolve().parent
    files = sorted(versions_dir(db_type).glob("*.py"))
    files += sorted(package.glob("kit*.py"))
    files.append(package / "migrate.py")
    return files


def fingerprint(db_type: str, revision: str) -> str:
    """A hash of everything that shapes the rendered script of ``revision``."""
    digest = hashlib.sha256(f"{__version__}\0{db_type}\0{revision}\0".encode())
    for path in _sources(db_type):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def cache_dir() -> Path:
    if os.environ.get("KEA_DB_CACHE_DIR"):
        return Path(os.environ["KEA_DB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kea-db"


def rendered(db_type: str, revision: str) -> str:
    """The offline DDL of every revision up to ``revision``, from the cache when fresh."""
    key = fingerprint(db_type, revision)
    path = cache_dir() / f"{revision}-{key}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    from keadb_cli.schema.migrate import offline_sql

    text = offline_sql(db_type, revision)
    _store(path, text)
    return text


def rendered_step(db_type: str, revision: str) -> str:
    """The offline SQL of one revision alone (from its previous revision), cached like
    :func:`rendered`: what ``upgrade`` runs for that step."""
    key = fingerprint(db_type, f"step:{revision}")
    path = cache_dir() / f"{revision}-step-{key}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    from keadb_cli.schema.migrate import offline_sql, previous

    text = offline_sql(db_type, revision, current=previous(db_type, revision))
    _store(path, text)
    return text


def _store(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".render-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)  # atomic: concurrent runs never read half a file
    except OSError:
        pass  # no cache: render again next time


def mysql_statements(script: str) -> list[str]:
    """Split a MySQL script as the mariadb client does for kea-db's rendering: statements
    end with the current delimiter at the end of a line; ``DELIMITER x`` changes it."""
    statements: list[str] = []
    delimiter = ";"
    buffer: list[str] = []
    for line in script.splitlines():
        match = _DELIMITER_RE.match(line)
        if match and not buffer:
            delimiter = match.group(1)
            continue
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        stripped = line.rstrip()
        if stripped.endswith(delimiter):
            buffer.append(stripped[: len(stripped) - len(delimiter)])
            statement = "\n".join(buffer).strip()
            if statement:
                statements.append(statement)
            buffer = []
        else:
            buffer.append(line)
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer).strip())
    return statements
