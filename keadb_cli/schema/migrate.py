"""Build or upgrade a Kea schema with kea-db's own alembic revisions.

Kea's ``schema_version`` table is the only record of what a database holds, so kea-db never
creates alembic's ``alembic_version`` table. Instead of ``alembic.command.upgrade`` this
module walks the revision chain of ``migrations/<backend>/`` itself and runs each revision's
``upgrade()`` inside :class:`alembic.operations.Operations`, on a connection the caller owns
(online), or on a dialect alone to print the DDL (offline).

Revision ids name the Kea schema they produce: ``mysql_14_0`` is MySQL schema 14.0,
``pgsql_13_0`` PostgreSQL schema 13.0. The first revision of each backend builds the schema
from nothing; each later one upgrades from the previous schema.

The graph has one branch: Kea's 2.6 stable line has schemas 22.1 and 22.2 (``*_22_1``,
``*_22_2``, after ``*_22_0``), which the main line (22.0, 23.0, ...) never had. Kea upgrades
any 22.x to 23.0 with the same step, which checks the major number only; a revision says so
with a module attribute ``upgrades_from`` (the ids, besides its ``down_revision``, a
database may be at when it runs). The head of a backend is its newest schema; the 2.6
line's 22.2 is a second alembic head.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keadb_cli.db.backends import BACKENDS, backend_for
from keadb_cli.errors import ExitCode, KeaDbError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy.engine import Connection

_REVISION_RE = re.compile(r"^(?P<prefix>[a-z]+)_(?P<major>\d+)_(?P<minor>\d+)$")

# The alias accepted for "the newest revision this kea-db knows".
HEAD = "head"


@dataclass(frozen=True)
class Step:
    """One revision on the way to a target: its id, the Kea schema it leaves, its title."""

    revision: str
    schema: tuple[int, int]
    title: str


def migrations_dir() -> Path:
    """The directory holding ``mysql/`` and ``postgresql/`` alembic script directories.

    Wheels carry it inside the package (``keadb_cli/_migrations``); a source checkout has it
    at the top of the repository.
    """
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "migrations"


def _layout(backend_type: str) -> tuple[str, str, str]:
    """The script directory under migrations/, the revision id prefix, the dialect."""
    try:
        backend = BACKENDS[backend_type]
    except KeyError:
        raise KeaDbError(
            f"kea-db has no schema migrations for database type {backend_type!r}",
            exit_code=ExitCode.SETTINGS,
        ) from None
    return backend.migrations_folder, backend.revision_prefix, backend.alembic_dialect


def script_directory(backend_type: str) -> ScriptDirectory:
    """The alembic :class:`~alembic.script.ScriptDirectory` of one backend."""
    from alembic.script import ScriptDirectory

    folder, _prefix, _dialect = _layout(backend_type)
    return ScriptDirectory(str(migrations_dir() / folder))


def revision_for_schema(backend_type: str, schema: tuple[int, int]) -> str:
    """The revision id that produces Kea schema ``schema`` (``(14, 0)`` -> ``mysql_14_0``).

    The id is computed, not looked up: use :func:`known_schemas` to ask whether it exists.
    """
    _folder, prefix, _dialect = _layout(backend_type)
    return f"{prefix}_{schema[0]}_{schema[1]}"


def schema_for_revision(revision: str) -> tuple[int, int]:
    """The Kea schema version (major, minor) a revision id names.

    Raises:
        KeaDbError: the id does not follow the ``<prefix>_<major>_<minor>`` pattern.
    """
    match = _REVISION_RE.match(revision)
    if match is None:
        raise KeaDbError(
            f"{revision!r} is not a kea-db revision id (expected e.g. mysql_14_0)",
            exit_code=ExitCode.UNSUPPORTED_RELEASE,
        )
    return int(match["major"]), int(match["minor"])


def head(backend_type: str) -> str:
    """The revision id of a backend's newest schema (the highest of its alembic heads: the
    main line's end, not the 2.6 stable line's 22.2)."""
    heads = script_directory(backend_type).get_heads()
    if not heads:
        raise KeaDbError(
            f"the {backend_type} migrations have no revision", exit_code=ExitCode.INTERNAL
        )
    return max(heads, key=schema_for_revision)


def known_schemas(backend_type: str) -> dict[tuple[int, int], str]:
    """Every Kea schema version kea-db can build for a backend, mapped to its revision id."""
    scripts = script_directory(backend_type)
    return {schema_for_revision(s.revision): s.revision for s in scripts.walk_revisions()}


def plan(backend_type: str, target: str, *, current: str | None = None) -> list[Step]:
    """The revisions :func:`upgrade` would run, oldest first.

    ``current`` is the revision the database already has (``None``: an empty database).

    Raises:
        KeaDbError: unknown target, or ``current`` is not an ancestor of the target.
    """
    return [_step(script) for script in _chain(backend_type, target, current)]


def previous(backend_type: str, revision: str) -> str | None:
    """The revision a step starts from (None for the first, which builds from nothing)."""
    down = script_directory(backend_type).get_revision(revision).down_revision
    if isinstance(down, (tuple, list)):
        raise KeaDbError(f"revision {revision} merges branches; kea-db expects a line",
                         exit_code=ExitCode.INTERNAL)
    return down


def _step(script: Script) -> Step:
    return Step(script.revision, schema_for_revision(script.revision), script.doc or "")


def _chain(backend_type: str, target: str, current: str | None) -> list[Script]:
    from alembic.util import CommandError

    scripts = script_directory(backend_type)
    wanted = head(backend_type) if target == HEAD else target
    chain: list[Script] = []
    reached = current is None
    try:
        script: Script | None = scripts.get_revision(wanted)
        while script is not None:
            if script.revision == current:
                reached = True
                break
            chain.append(script)
            if current is not None and current in _upgrades_from(script):
                reached = True
                break
            down = script.down_revision
            if isinstance(down, (tuple, list)):
                raise KeaDbError(
                    f"revision {script.revision} merges branches; kea-db expects a line",
                    exit_code=ExitCode.INTERNAL,
                )
            script = scripts.get_revision(down) if down is not None else None
    except CommandError as exc:
        raise KeaDbError(
            f"kea-db does not know the {backend_type} revision {wanted!r}: {exc}",
            exit_code=ExitCode.UNSUPPORTED_RELEASE,
        ) from None
    if not reached:
        raise KeaDbError(
            f"cannot upgrade {backend_type} from {current} to {wanted}: "
            f"{current} is not an earlier revision",
            exit_code=ExitCode.UNSUPPORTED_RELEASE,
        )
    chain.reverse()
    return chain


def _upgrades_from(script: Script) -> tuple[str, ...]:
    """The revisions, besides ``down_revision``, a database may be at to run ``script``."""
    return tuple(getattr(script.module, "upgrades_from", ()))


def upgrade(
    connection: Connection,
    backend_type: str,
    target: str,
    progress: Callable[[str], None] | None = None,
    *,
    current: str | None = None,
) -> None:
    """Run every revision after ``current`` up to ``target`` (a revision id or ``"head"``).

    ``current=None`` means the database is empty. Nothing is committed here: PostgreSQL
    callers run this in one transaction and commit; on MySQL each DDL statement commits
    itself, but the rows written after the last DDL statement still need the caller's
    ``connection.commit()``. ``progress`` receives one line per revision before it runs.

    On MySQL the revisions run under the server's global ``sql_mode`` (what kea-admin's
    client session has, and what routines and triggers keep) less the modes that change
    how SQL text reads (:data:`keadb_cli.db.backends.mysql.TEXT_MODES`); the session's own
    mode is restored afterwards.

    Raises:
        KeaDbError: unknown revision; database errors propagate unchanged.
    """
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    chain = _chain(backend_type, target, current)
    backend = backend_for(backend_type)
    session = backend.build_session
    saved = None
    if session is not None:
        saved = connection.execute(sa.text(session[0])).scalar_one()
        mode = backend.build_sql_mode(
            str(connection.execute(sa.text(session[1])).scalar_one() or ""))
        connection.execute(sa.text(session[2]), {"value": mode})
    try:
        context = MigrationContext.configure(connection=connection)
        with Operations.context(context):
            for script in chain:
                step = _step(script)
                if progress is not None:
                    progress(f"{step.revision}: {step.title}")
                script.module.upgrade()
    finally:
        if session is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                connection.execute(sa.text(session[2]), {"value": saved})


def offline_sql(backend_type: str, target: str, *, current: str | None = None) -> str:
    """The DDL :func:`upgrade` would run, as a script for the backend's own client.

    The text loads as is with ``mariadb < file`` or ``psql -f file`` (MySQL routine and
    trigger bodies come wrapped in ``DELIMITER`` lines). Built from the dialect alone, no
    connection is made.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    chain = _chain(backend_type, target, current)
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=_layout(backend_type)[2],
        # "named" keeps the dialect from doubling '%' signs in the printed text.
        dialect_opts={"paramstyle": "named"},
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
    )
    with Operations.context(context):
        for script in chain:
            step = _step(script)
            buffer.write(f"-- kea-db {step.revision}: {step.title}\n\n")
            script.module.upgrade()
    return buffer.getvalue()
