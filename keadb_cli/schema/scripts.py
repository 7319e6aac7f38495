"""The SQL that ``init`` runs: alembic's offline rendering of kea-db's revisions, cached.

``init`` and ``upgrade`` do not need SQLAlchemy, alembic or a DBAPI driver at run time:
they execute the exact script that ``--sql`` prints (alembic offline mode over the same
revision modules; the tests prove it builds the same catalog as alembic's online mode and as
kea-admin) through the client library's session. Rendering imports alembic and SQLAlchemy
(about half a second), so each revision's text is cached on disk. The SHA-256 of every
revision's text is recorded in the repository (``migrations/<backend>/rendered.json``): a
cached file is used only when it has that hash, and a fresh rendering that does not have it
is refused, so neither a tampered cache nor a changed kit runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from keadb_cli.db.backends import backend_for
from keadb_cli.db.backends.mysql import mysql_statements as mysql_statements
from keadb_cli.errors import ExitCode, KeaDbError
from keadb_cli.schema.migrate import (
    Step,
    migrations_dir,
    revision_for_schema,
    schema_for_revision,
)


def versions_dir(db_type: str) -> Path:
    return migrations_dir() / backend_for(db_type).migrations_folder / "versions"


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


def recorded(db_type: str) -> dict[str, dict[str, str | None]]:
    """``migrations/<backend>/rendered.json``: per revision, the revision it starts from and
    the SHA-256 of its offline SQL, as released (written by tests/tools/rendered_hashes.py).
    tests/test_rendered.py proves every entry equals a fresh rendering, so a change to a
    shared kit can never silently change what a released revision runs; the cache is
    checked against it before anything is executed."""
    if db_type not in _RECORDED:
        path = migrations_dir() / backend_for(db_type).migrations_folder / "rendered.json"
        _RECORDED[db_type] = json.loads(path.read_text(encoding="utf-8"))
    return _RECORDED[db_type]


_RECORDED: dict[str, dict[str, dict[str, str | None]]] = {}


def chain_to(db_type: str, revision: str) -> list[str]:
    """The revisions from nothing to ``revision``, oldest first (from the record: no
    alembic import)."""
    record = recorded(db_type)
    chain: list[str] = []
    current: str | None = revision
    while current is not None:
        if current not in record or current in chain:
            raise KeaDbError(f"revision {current} has no recorded SQL hash in "
                             f"migrations/{backend_for(db_type).migrations_folder}/rendered.json",
                             exit_code=ExitCode.INTERNAL)
        chain.append(current)
        current = record[current]["previous"]
    return chain[::-1]


def plan(db_type: str, target: str, current: str) -> list[Step]:
    """:func:`keadb_cli.schema.migrate.plan` without alembic (about half a second of imports
    saved from every upgrade, which runs while Kea is stopped): the chain from the record's
    ``previous`` links and each revision file's ``upgrades_from``, the titles from the files'
    docstrings (tests/test_scripts.py proves both equal alembic's for every pair).

    Raises:
        KeaDbError: ``current`` is not an earlier revision of ``target``.
    """
    record = recorded(db_type)
    chain: list[Step] = []
    revision: str | None = target
    while revision is not None and revision != current:
        if revision not in record or len(chain) > len(record):
            break
        text = (versions_dir(db_type) / f"{revision}.py").read_text(encoding="utf-8")
        chain.append(Step(revision, schema_for_revision(revision), _title(text)))
        if current in _upgrades_from(text):
            revision = current
            break
        revision = record[revision]["previous"]
    if revision != current:
        raise KeaDbError(f"cannot upgrade {db_type} from {current} to {target}: {current} is "
                         "not an earlier revision", exit_code=ExitCode.UNSUPPORTED_RELEASE)
    return chain[::-1]


def _title(text: str) -> str:
    """The first paragraph of a revision file's docstring (alembic's ``Script.doc``)."""
    import ast
    import re

    match = re.match(r'\s*("""|\'\'\')(.*?)\1', text, re.S)
    doc = ast.literal_eval(match.group(0).strip()) if match else ""
    return re.split("\n\n", str(doc).strip())[0]


def _upgrades_from(text: str) -> tuple[str, ...]:
    import ast
    import re

    match = re.search(r"^upgrades_from\s*=\s*(\([^)]*\))", text, re.M)
    return tuple(ast.literal_eval(match.group(1))) if match else ()


def cache_dir() -> Path:
    if os.environ.get("KEA_DB_CACHE_DIR"):
        return Path(os.environ["KEA_DB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kea-db"


def rendered(db_type: str, revision: str) -> str:
    """The offline SQL of every revision up to ``revision``: what init runs (the chain's
    steps, one after the other; each checked as :func:`rendered_step` checks it)."""
    return "".join(rendered_step(db_type, r) for r in chain_to(db_type, revision))


def rendered_step(db_type: str, revision: str) -> str:
    """The offline SQL of one revision alone (from its previous one): what upgrade runs for
    that step. Read from the cache only when its SHA-256 is the recorded one; rendered
    again otherwise (importing alembic and SQLAlchemy, about half a second).

    Raises:
        KeaDbError (INTERNAL): the revision has no record, or renders to other SQL than
            the recorded (kea-db's files were changed).
    """
    record = recorded(db_type).get(revision)
    if record is None:
        raise KeaDbError(f"revision {revision} has no recorded SQL hash in "
                         f"migrations/{backend_for(db_type).migrations_folder}/rendered.json",
                         exit_code=ExitCode.INTERNAL)
    want = record["sha256"]
    path = cache_dir() / f"{revision}-{want}.sql"
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if data is not None and hashlib.sha256(data).hexdigest() == want:
        return data.decode("utf-8")
    from keadb_cli.schema.migrate import offline_sql

    text = offline_sql(db_type, revision, current=record["previous"])
    if hashlib.sha256(text.encode()).hexdigest() != want:
        raise KeaDbError(
            f"the SQL of revision {revision} is not the one recorded for it: kea-db's "
            "migrations or schema kit were changed; reinstall kea-db",
            exit_code=ExitCode.INTERNAL)
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
