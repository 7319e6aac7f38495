"""PostgreSQL building blocks for kea-db's alembic revisions.

Kea's PostgreSQL schema leans on three things SQLAlchemy Core does not describe: ``SERIAL``
columns, PL/pgSQL functions and row triggers. This module gives each a small declarative
form, :class:`Serial`, :class:`Function` and :class:`Trigger`, so a revision lists *what* to
create and :func:`create_functions` / :func:`create_triggers` turn the lists into DDL, both on a
live connection and in alembic's offline (``--sql``) mode.

:func:`batch` makes a whole revision one round trip: building Kea's schema takes some 370
statements, and sent one by one their latency, not the server's work, dominates.

Function bodies are revision data: once a revision is released its bodies never change, so
nothing here rewrites or reformats them beyond wrapping them in ``CREATE FUNCTION``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.compiler import compiles

# Where sqlalchemy.text() would see a ":name" bind parameter (its own pattern).
_BIND_RE = re.compile(r"(?<![:\w\\]):(?=\w)")

_TIMINGS = ("BEFORE", "AFTER")
_EVENTS = ("INSERT", "UPDATE", "DELETE")


class Serial(sa.Integer):
    """PostgreSQL's ``SERIAL``: an integer column fed by a sequence the column owns.

    The server names the sequence ``<table>_<column>_seq`` and sets the column's default to
    its ``nextval``, exactly as Kea's scripts get it. SQLAlchemy writes ``SERIAL`` by itself
    only for an auto-incrementing integer primary key; this type also covers Kea's serial
    columns outside a primary key (``dhcp4_audit.id``).
    """


@compiles(Serial)
def _compile_serial(type_: Serial, compiler: Any, **kw: Any) -> str:
    return "SERIAL"


def literal_sql(sql: str) -> sa.TextClause:
    """``sqlalchemy.text()`` that keeps every ``:`` as written (no bind parameters)."""
    return sa.text(_BIND_RE.sub(r"\\:", sql))


@dataclass(frozen=True)
class Function:
    """One ``CREATE FUNCTION``.

    ``arguments`` and ``returns`` are written as in the statement (``"name text, value
    bigint"``, ``"TABLE(address inet, ...)"``); they define the function's identity, so they
    must match Kea's names and types exactly. ``body`` is the text between the dollar quotes.
    """

    name: str
    arguments: str
    returns: str
    body: str
    language: str = "plpgsql"

    def ddl(self, *, replace: bool = False) -> str:
        """``CREATE FUNCTION``; ``replace``: ``CREATE OR REPLACE FUNCTION`` (an upgrade step
        rewriting a function whose name, arguments and result stay)."""
        quote = "$body$"
        if quote in self.body:
            raise ValueError(f"the body of {self.name} contains the quote tag {quote}")
        body = self.body.strip("\n")
        create = "CREATE OR REPLACE FUNCTION" if replace else "CREATE FUNCTION"
        return (
            f"{create} {self.name}({self.arguments}) RETURNS {self.returns}\n"
            f"LANGUAGE {self.language} AS {quote}\n{body}\n{quote}"
        )


@dataclass(frozen=True)
class Trigger:
    """One ``FOR EACH ROW`` trigger running a trigger :class:`Function`."""

    name: str
    table: str
    timing: str  # BEFORE | AFTER
    event: str  # INSERT | UPDATE | DELETE
    function: str

    def __post_init__(self) -> None:
        if self.timing not in _TIMINGS or self.event not in _EVENTS:
            raise ValueError(f"trigger {self.name}: bad timing/event {self.timing} {self.event}")

    def ddl(self) -> str:
        # EXECUTE PROCEDURE: the spelling every PostgreSQL release accepts (FUNCTION needs 11).
        return (
            f"CREATE TRIGGER {self.name} {self.timing} {self.event} ON {self.table} "
            f"FOR EACH ROW EXECUTE PROCEDURE {self.function}()"
        )


@contextmanager
def batch() -> Iterator[Operations]:
    """Alembic operations whose statements reach the server together.

    Offline, the yielded :class:`~alembic.operations.Operations` print each statement as
    usual. Online, they render the statements as offline mode would (literal values, one
    after another) and the text goes to the server as a single multi-statement query when
    the block ends, inside the caller's transaction. A failing statement fails that query;
    :func:`keadb_cli.schema.migrate.offline_sql` shows the same text to locate it.
    """
    context = op.get_context()
    if context.as_sql:
        yield Operations(context)
        return
    buffer = io.StringIO()
    rendering = MigrationContext.configure(
        dialect_name=context.dialect.name,
        # "named" keeps '%' single in the text; the driver's own escaping comes later.
        dialect_opts={"paramstyle": "named"},
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
    )
    yield Operations(rendering)
    text = buffer.getvalue().strip()
    if text:
        op.execute(literal_sql(text))


@contextmanager
def only_if(ops: Operations, condition: str) -> Iterator[Operations]:
    """Operations that run only when ``condition`` (an SQL boolean expression) holds when
    the statements reach the server: they are rendered as offline mode would and wrapped in
    one anonymous PL/pgSQL block, ``DO ... IF condition THEN ... END IF``.

    For steps that must also run on a database that already has their change (Kea upgrades
    any 22.x to 23.0, and the 2.6 stable line's 22.1 has what the main line adds in 24.0).
    Only plain statements belong inside (DDL, INSERT, UPDATE, DELETE), not a SELECT.
    """
    context = ops.get_context()
    buffer = io.StringIO()
    rendering = MigrationContext.configure(
        dialect_name=context.dialect.name,
        dialect_opts={"paramstyle": "named"},
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
    )
    yield Operations(rendering)
    statements = buffer.getvalue().strip()
    quote = "$step$"
    if quote in statements or quote in condition:
        raise ValueError(f"the conditional statements contain the quote tag {quote}")
    ops.execute(
        literal_sql(
            f"DO {quote}\nBEGIN\nIF {condition} THEN\n{statements}\nEND IF;\nEND\n{quote}"
        )
    )


def create_functions(ops: Operations, functions: Iterable[Function]) -> None:
    """Create the functions, in order: SQL-language bodies are checked at creation, so
    whatever they call must come earlier."""
    for function in functions:
        ops.execute(literal_sql(function.ddl()))


def create_triggers(ops: Operations, triggers: Iterable[Trigger]) -> None:
    """Create the triggers; their tables and functions must exist."""
    for trigger in triggers:
        ops.execute(sa.text(trigger.ddl()))


# --- upgrade steps -----------------------------------------------------------------------


def replace_functions(ops: Operations, functions: Iterable[Function]) -> None:
    """Replace existing functions whole (same name, arguments and result), in order."""
    for function in functions:
        ops.execute(literal_sql(function.ddl(replace=True)))


def drop_function(ops: Operations, name: str, arguments: str = "") -> None:
    """``DROP FUNCTION name(arguments)``: the argument types pick one overload."""
    ops.execute(sa.text(f"DROP FUNCTION {name}({arguments})"))


def set_schema_version(ops: Operations, major: int, minor: int) -> None:
    """Record the schema version a step leaves (Kea's one-row ``schema_version`` table)."""
    target = sa.table("schema_version", sa.column("version"), sa.column("minor"))
    ops.execute(target.update().values(version=sa.literal(major), minor=sa.literal(minor)))


def set_audit(ops: Operations, enabled: bool) -> None:
    """Switch the config backend's audit triggers on or off for the rest of the session.

    Steps that rewrite config rows do so with auditing off: the rewrite is not a change a
    server made. Kea's audit functions read the session setting ``kea.disable_audit``.
    """
    value = "false" if enabled else "true"
    ops.execute(sa.text(f"SELECT set_config('kea.disable_audit', '{value}', false)"))


@dataclass(frozen=True)
class LeaseFileColumn:
    """One column of a memfile lease file, as ``lease<v>dumpdata`` writes it and
    ``lease<v>upload`` reads it back.

    ``dump_type``: the column's type in the dump function's result; ``upload_type``: the
    upload function's argument of the same name; ``dump`` / ``load``: expressions where
    ``{}`` stands for the table column / the argument.
    """

    name: str
    dump_type: str
    upload_type: str
    dump: str = "{}"
    load: str = "{}"


def lease_file_functions(v: int, columns: Iterable[LeaseFileColumn]) -> list[Function]:
    """``lease<v>dumpheader``, ``lease<v>dumpdata`` and ``lease<v>upload`` for ``columns``
    (the CSV header, the dump's result and the upload's arguments share their order)."""
    cols = list(columns)
    names = [c.name for c in cols]
    selected = ",\n        ".join(c.dump.format(f"l.{c.name}") for c in cols)
    converted = ",\n        ".join(c.load.format(f"lease{v}upload.{c.name}") for c in cols)
    return [
        Function(
            f"lease{v}dumpheader", "", "text", f"\n    SELECT '{','.join(names)}'::text;\n",
            language="sql",
        ),
        Function(
            f"lease{v}dumpdata",
            "",
            "TABLE(" + ", ".join(f"{c.name} {c.dump_type}" for c in cols) + ")",
            f"""
    SELECT
        {selected}
    FROM lease{v} AS l
    ORDER BY l.address;
""",
            language="sql",
        ),
        Function(
            f"lease{v}upload",
            ", ".join(f"{c.name} {c.upload_type}" for c in cols),
            "void",
            f"""
BEGIN
    INSERT INTO lease{v} ({", ".join(names)})
    VALUES (
        {converted}
    );
END;
""",
        ),
    ]
