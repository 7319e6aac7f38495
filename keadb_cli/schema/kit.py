"""Helpers for kea-db's revision modules (``migrations/<backend>/versions/*.py``).

They run inside :class:`alembic.operations.Operations` (``alembic.op``), online or offline
(see :mod:`keadb_cli.schema.migrate`), and turn small Python tables of data into DDL: foreign keys,
lookup rows, stored routines and triggers. Routine and trigger bodies are SQL text written
for kea-db; this module only wraps them into complete statements.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

# Compound statements (routine and trigger bodies) contain ';', so a script for a client
# that splits on ';' must switch delimiters around them. Keyed by dialect name; a dialect
# missing here (PostgreSQL: bodies are $$-quoted) needs no switch.
_BLOCK_DELIMITERS: dict[str, str] = {"mysql": "$$"}


def _sql_text(sql: str) -> sa.TextClause:
    # A ':' in a body is SQL (labels, JSON text), never a bind parameter.
    return sa.text(sql.replace(":", r"\:"))


def execute(sql: str) -> None:
    """Run one plain statement (no trailing ';')."""
    op.execute(_sql_text(sql))


def execute_block(sql: str) -> None:
    """Run one compound statement such as ``CREATE PROCEDURE ... BEGIN ...; END``.

    Online, the statement goes to the server as is. Offline on MySQL it is printed between
    ``DELIMITER $$`` and ``DELIMITER ;`` so that ``mariadb < file`` loads it whole.
    """
    context = op.get_context()
    delimiter = _BLOCK_DELIMITERS.get(context.dialect.name)
    if context.as_sql and delimiter is not None:
        impl = context.impl
        impl.static_output(f"DELIMITER {delimiter}")
        impl.static_output(sql.strip() + f"\n{delimiter}")
        impl.static_output("DELIMITER ;")
    else:
        op.execute(_sql_text(sql))


# --- tables ----------------------------------------------------------------------------


class ServerTimestamp(sa.types.UserDefinedType[Any]):
    """MySQL ``TIMESTAMP`` with no ``NULL`` / ``NOT NULL`` of its own, as Kea's script writes
    some columns (``lease4.expire``, ``logs.timestamp``, the free-lease-queue timestamps).

    The server's ``explicit_defaults_for_timestamp`` then decides, as it does for Kea's
    script: ON (MariaDB 10.10+, MySQL 8.0+ by default) makes the column nullable; OFF
    (MariaDB before 10.10) makes it ``NOT NULL``, and the table's first such column
    ``DEFAULT current_timestamp() ON UPDATE current_timestamp()``. SQLAlchemy's MySQL
    compiler writes an explicit ``NULL`` after every nullable ``TIMESTAMP`` column, which
    would build another column than Kea's on such a server; this type is not a
    ``TIMESTAMP`` to the compiler, so it writes nothing.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TIMESTAMP"


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key. ``None`` for a rule leaves the clause out (MySQL reports that as
    RESTRICT, an explicit ``NO ACTION`` as NO ACTION)."""

    table: str
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None
    on_update: str | None = None


def foreign_key(
    table: str,
    name: str,
    columns: str | tuple[str, ...],
    ref_table: str,
    ref_columns: str | tuple[str, ...],
    on_delete: str | None = None,
    on_update: str | None = None,
) -> ForeignKey:
    """A :class:`ForeignKey`; a single column may be given as a plain string."""
    return ForeignKey(
        table,
        name,
        (columns,) if isinstance(columns, str) else columns,
        ref_table,
        (ref_columns,) if isinstance(ref_columns, str) else ref_columns,
        on_delete,
        on_update,
    )


def foreign_key_constraints(
    keys: Iterable[ForeignKey], table: str
) -> list[sa.ForeignKeyConstraint]:
    """The keys of one table, as constraints to put inside ``op.create_table``."""
    return [
        sa.ForeignKeyConstraint(
            list(key.columns),
            [f"{key.ref_table}.{column}" for column in key.ref_columns],
            name=key.name,
            ondelete=key.on_delete,
            onupdate=key.on_update,
        )
        for key in keys
        if key.table == table
    ]


class MySQLKey(sa.schema.ColumnCollectionConstraint):
    """A non-unique index declared inside ``CREATE TABLE`` (``KEY name (col, ...)``).

    One CREATE TABLE with its keys and foreign keys costs MySQL one table definition,
    where CREATE INDEX / ADD FOREIGN KEY statements each rebuild it; and a foreign key
    declared next to a key on its columns uses that key instead of adding its own.
    """

    __visit_name__ = "mysql_key"


@compiles(MySQLKey)
def _key_elsewhere(element: MySQLKey, compiler: DDLCompiler, **kw: Any) -> str:
    raise CompileError(f"MySQLKey {element.name} used with dialect {compiler.dialect.name}")


@compiles(MySQLKey, "mysql")
def _key_mysql(element: MySQLKey, compiler: DDLCompiler, **kw: Any) -> str:
    quote = compiler.preparer.quote
    columns = ", ".join(quote(column.name) for column in element.columns)
    return f"KEY {quote(str(element.name))} ({columns})"


def create_foreign_keys(keys: Iterable[ForeignKey]) -> None:
    """``ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY`` for each key, in order."""
    for key in keys:
        op.create_foreign_key(
            key.name,
            key.table,
            key.ref_table,
            list(key.columns),
            list(key.ref_columns),
            ondelete=key.on_delete,
            onupdate=key.on_update,
        )


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert literal rows (lookup tables) with one multi-row INSERT."""
    target = sa.table(table, *(sa.column(name) for name in columns))
    # Typed literals: offline mode renders them into the script.
    values = [{c: sa.literal(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    op.execute(target.insert().values(values))


# --- MySQL routines and triggers -------------------------------------------------------


_SLOT_RE = re.compile(r"(?P<indent>[ ]*)<<(?P<name>\w+)>>(?P<tail>;?)")


def compose(template: str, **parts: str) -> str:
    """Dedent ``template`` and put each part in place of a line reading ``<<name>>``.

    The part is dedented and indented to the slot's depth, so nested blocks written as
    separate strings come out properly laid out. A ``;`` after the slot ends the part.
    """
    lines = []
    for line in textwrap.dedent(template).strip("\n").splitlines():
        slot = _SLOT_RE.fullmatch(line)
        if slot is None:
            lines.append(line.rstrip())
            continue
        part = textwrap.dedent(parts[slot["name"]]).strip("\n").rstrip(";") + slot["tail"]
        lines.append(textwrap.indent(part, slot["indent"]))
    return "\n".join(lines)


def body(*statements: str, label: str | None = None, indent: str = "    ") -> str:
    """``BEGIN stmt; stmt; END`` with each statement on its own indented line(s).

    A statement may span lines (``IF ... END IF``); its own indentation is kept.
    """
    lines = [f"{label}: BEGIN" if label else "BEGIN"]
    for statement in statements:
        text = compose(statement)
        if not text:
            continue
        lines.append(textwrap.indent(text.rstrip(";") + ";", indent))
    lines.append("END")
    return "\n".join(lines)


def mysql_create_procedure(
    name: str,
    parameters: Sequence[str],
    routine_body: str,
    *,
    characteristics: Sequence[str] = (),
) -> None:
    """``CREATE PROCEDURE name(IN p type, ...) [characteristics] body``."""
    head = f"CREATE PROCEDURE {name}({', '.join(parameters)})"
    execute_block("\n".join([head, *characteristics, routine_body]))


def mysql_create_function(
    name: str,
    parameters: Sequence[str],
    returns: str,
    routine_body: str,
    *,
    characteristics: Sequence[str] = (),
) -> None:
    """``CREATE FUNCTION name(p type, ...) RETURNS type [characteristics] body``."""
    head = f"CREATE FUNCTION {name}({', '.join(parameters)}) RETURNS {returns}"
    execute_block("\n".join([head, *characteristics, routine_body]))


@dataclass(frozen=True)
class MySQLTrigger:
    """A row trigger whose body is a list of statements."""

    name: str
    table: str
    timing: str  # BEFORE | AFTER
    event: str  # INSERT | UPDATE | DELETE
    statements: tuple[str, ...]

    def sql(self) -> str:
        head = f"CREATE TRIGGER {self.name} {self.timing} {self.event} ON {self.table} FOR EACH ROW"
        return head + "\n" + body(*self.statements)


def mysql_create_triggers(triggers: Iterable[MySQLTrigger]) -> None:
    for trigger in triggers:
        execute_block(trigger.sql())


# --- upgrade steps -----------------------------------------------------------------------


def set_schema_version(major: int, minor: int) -> None:
    """Record the schema version a step leaves (Kea's one-row ``schema_version`` table)."""
    target = sa.table("schema_version", sa.column("version"), sa.column("minor"))
    op.execute(target.update().values(version=sa.literal(major), minor=sa.literal(minor)))


def set_audit(enabled: bool) -> None:
    """Switch the config backend's audit triggers on or off for this session.

    Steps that rewrite config rows do so with auditing off: the rewrite is not a change a
    server made. Kea's triggers read ``@disable_audit`` (NULL or 0: on).
    """
    execute(f"SET @disable_audit = {0 if enabled else 1}")


def drop_routine(kind: str, name: str) -> None:
    """``DROP PROCEDURE name`` / ``DROP FUNCTION name`` (a step replaces a routine whole)."""
    if kind not in ("PROCEDURE", "FUNCTION"):
        raise ValueError(f"unknown routine kind {kind!r}")
    execute(f"DROP {kind} {name}")


def drop_trigger(name: str) -> None:
    execute(f"DROP TRIGGER {name}")


# --- lease triggers ------------------------------------------------------------------------

# (event, trigger/procedure suffix, row images passed to the procedures)
_LEASE_EVENTS = (
    ("INSERT", "AINS", ("NEW",)),
    ("UPDATE", "AUPD", ("OLD", "NEW")),
    ("DELETE", "ADEL", ("OLD",)),
)


def mysql_lease_triggers(
    v: str,
    counters: Sequence[tuple[str, Sequence[str]]],
    class_columns: Sequence[str],
    *,
    probe_json: bool,
) -> list[MySQLTrigger]:
    """The AFTER INSERT/UPDATE/DELETE triggers of ``lease{v}``, which keep its statistics.

    Each trigger calls ``lease{v}_<EVENT>_<table>(...)`` for every ``(table, columns)`` of
    ``counters`` with the old and/or new values of ``columns``, then the client-class
    counter ``lease{v}_<EVENT>_lease{v}_stat_by_client_class`` with ``class_columns``.
    ``probe_json``: the class counter runs only when ``isJsonSupported()`` (probed once per
    session into ``@json_supported``) says the server has JSON functions.
    """
    t = f"lease{v}"

    def args(rows: Sequence[str], names: Sequence[str]) -> str:
        return ", ".join(f"{row}.{name}" for row in rows for name in names)

    triggers = []
    for event, suffix, rows in _LEASE_EVENTS:
        calls = [f"CALL {t}_{suffix}_{table}({args(rows, cols)})" for table, cols in counters]
        by_class = f"CALL {t}_{suffix}_{t}_stat_by_client_class({args(rows, class_columns)})"
        if probe_json:
            statements = [
                *calls,
                # Probed once per session.
                """
                IF @json_supported IS NULL THEN
                    SET @json_supported = isJsonSupported();
                END IF""",
                f"""
                IF @json_supported = 1 THEN
                    {by_class};
                END IF""",
            ]
        else:
            statements = [*calls, by_class]
        triggers.append(MySQLTrigger(f"{t}_{suffix}", t, "AFTER", event, tuple(statements)))
    return triggers


def mysql_replace_triggers(triggers: Iterable[MySQLTrigger]) -> None:
    """Drop and recreate each trigger (a step replaces a trigger whole)."""
    for trigger in triggers:
        drop_trigger(trigger.name)
        execute_block(trigger.sql())


# --- lease CSV routines (kea-admin lease-dump / lease-upload) ------------------------------

# How a lease column travels through the CSV file: written by leaseXDumpData (``*_OUT``)
# and read back by leaseXUpload (``*_IN``); ``{c}`` is the column (or parameter) name.
# Commas inside text travel as '&#x2c'.
CSV_HEX_OUT = "IFNULL(colonSeparatedHex(HEX({c})), '')"
CSV_HEX_IN = "UNHEX(REPLACE({c}, ':', ''))"
CSV_COMMA_OUT = "REPLACE({c}, ',', '&#x2c')"
CSV_COMMA_IN = "REPLACE({c}, '&#x2c', ',')"
CSV_CONTEXT_OUT = "REPLACE(IFNULL({c}, ''), ',', '&#x2c')"
CSV_TIME_OUT = "UNIX_TIMESTAMP({c})"
CSV_TIME_IN = "FROM_UNIXTIME({c})"
CSV_SAME = "{c}"


@dataclass(frozen=True)
class CsvColumn:
    """One column of a memfile lease file: its header name, how ``leaseXDumpData`` writes
    it (``{c}`` is the column), how ``leaseXUpload`` reads it back from the parameter of
    the same name, and that parameter's type."""

    name: str
    dump: str
    load: str
    parameter_type: str


def mysql_create_lease_csv_routines(v: str, columns: Sequence[CsvColumn]) -> None:
    """``lease{v}DumpHeader``, ``lease{v}DumpData`` and ``lease{v}Upload`` for ``columns``."""
    names = [column.name for column in columns]
    sep = ",\n    "
    mysql_create_procedure(f"lease{v}DumpHeader", [], body(f"SELECT '{','.join(names)}'"))
    selected = sep.join(column.dump.format(c=column.name) for column in columns)
    mysql_create_procedure(
        f"lease{v}DumpData",
        [],
        body(f"SELECT\n    {selected}\nFROM lease{v}\nORDER BY address"),
    )
    values = sep.join(column.load.format(c=column.name) for column in columns)
    mysql_create_procedure(
        f"lease{v}Upload",
        [f"IN {column.name} {column.parameter_type}" for column in columns],
        body(f"INSERT INTO lease{v} (\n    {sep.join(names)}\n) VALUES (\n    {values}\n)"),
    )
