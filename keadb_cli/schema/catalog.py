"""A comparable description of a live Kea schema, read from the server's own catalog.

:func:`read_catalog` reads tables, columns, keys, indexes, triggers, routines, sequences and
table contents from ``information_schema`` (MySQL/MariaDB) or ``pg_catalog`` (PostgreSQL)
through a plain DBAPI connection. The result is a frozen :class:`Catalog` made of tuples and
strings only, so it can be stored as JSON (:meth:`Catalog.to_json`) and compared later with
:func:`diff`.

What is deliberately left out, because it describes the session that created an object
rather than the schema: definers and owners, the creating client's character set and
collation (``character_set_client``/``collation_connection``) and comments inside routine
bodies (bodies are compared by a hash of their text with comments and layout removed).
Date and time values in table rows are recorded as ``"<timestamp>"``: Kea's scripts stamp
some rows with the current time.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# Attribute values are strings; pairs keep them ordered and hashable.
Options = tuple[tuple[str, str], ...]

TIMESTAMP_MARK = "<timestamp>"


@dataclass(frozen=True)
class Column:
    name: str
    position: int
    type: str
    nullable: bool
    default: str | None
    # auto_increment, "on update current_timestamp()", identity, generated ...
    extra: str = ""
    charset: str | None = None
    collation: str | None = None
    comment: str = ""


@dataclass(frozen=True)
class Constraint:
    """A primary key, unique, foreign key or check constraint."""

    name: str
    kind: str  # PRIMARY KEY | UNIQUE | FOREIGN KEY | CHECK
    columns: tuple[str, ...] = ()
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    on_delete: str | None = None
    on_update: str | None = None
    definition: str | None = None  # CHECK clause, or PostgreSQL's full definition


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]  # in key order; "col(10)" for a prefix, "col DESC"
    unique: bool
    primary: bool = False
    method: str = ""
    definition: str | None = None  # PostgreSQL: pg_get_indexdef


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[Constraint, ...] = ()
    indexes: tuple[Index, ...] = ()
    options: Options = ()  # engine, collation, auto_increment, kind ...


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    timing: str  # BEFORE | AFTER | INSTEAD OF
    events: tuple[str, ...]  # INSERT, UPDATE, DELETE, TRUNCATE
    body_hash: str
    options: Options = ()


@dataclass(frozen=True)
class Routine:
    name: str
    kind: str  # FUNCTION | PROCEDURE
    arguments: tuple[str, ...]  # "IN name type" (MySQL) / identity arguments (PostgreSQL)
    returns: str | None
    body_hash: str
    options: Options = ()

    @property
    def key(self) -> str:
        return f"{self.kind.lower()} {self.name}({', '.join(self.arguments)})"


@dataclass(frozen=True)
class Sequence:
    name: str
    options: Options = ()


@dataclass(frozen=True)
class TableRows:
    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # JSON scalars only, sorted


@dataclass(frozen=True)
class Catalog:
    backend: str
    tables: tuple[Table, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    routines: tuple[Routine, ...] = ()
    sequences: tuple[Sequence, ...] = ()
    rows: tuple[TableRows, ...] = ()
    # Schema-wide facts: database character set/collation (MySQL), extensions (PostgreSQL).
    options: Options = field(default=())

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        """Object counts, in the terms of kea-facts.md section 2.1."""
        return {
            "tables": len(self.tables),
            "indexes": sum(len(t.indexes) for t in self.tables),
            "foreign_keys": sum(
                1 for t in self.tables for c in t.constraints if c.kind == "FOREIGN KEY"
            ),
            "triggers": len(self.triggers),
            "procedures": sum(1 for r in self.routines if r.kind == "PROCEDURE"),
            "functions": sum(1 for r in self.routines if r.kind == "FUNCTION"),
            "sequences": len(self.sequences),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Catalog:
        return _catalog_from_dict(json.loads(text))


# --- JSON round trip -------------------------------------------------------------------


def _opts(data: Iterable[Iterable[str]]) -> Options:
    return tuple((str(k), str(v)) for k, v in (tuple(pair) for pair in data))


def _catalog_from_dict(d: dict[str, Any]) -> Catalog:
    return Catalog(
        backend=d["backend"],
        tables=tuple(
            Table(
                name=t["name"],
                columns=tuple(Column(**c) for c in t["columns"]),
                constraints=tuple(
                    Constraint(
                        **{
                            **c,
                            "columns": tuple(c["columns"]),
                            "ref_columns": tuple(c["ref_columns"]),
                        }
                    )
                    for c in t["constraints"]
                ),
                indexes=tuple(Index(**{**i, "columns": tuple(i["columns"])}) for i in t["indexes"]),
                options=_opts(t["options"]),
            )
            for t in d["tables"]
        ),
        triggers=tuple(
            Trigger(**{**t, "events": tuple(t["events"]), "options": _opts(t["options"])})
            for t in d["triggers"]
        ),
        routines=tuple(
            Routine(**{**r, "arguments": tuple(r["arguments"]), "options": _opts(r["options"])})
            for r in d["routines"]
        ),
        sequences=tuple(Sequence(s["name"], _opts(s["options"])) for s in d["sequences"]),
        rows=tuple(
            TableRows(r["table"], tuple(r["columns"]), tuple(tuple(row) for row in r["rows"]))
            for r in d["rows"]
        ),
        options=_opts(d["options"]),
    )


# --- body normalisation ----------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`[^`]*`)
    | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def normalize_body(body: str, *, hash_comments: bool = True) -> str:
    """Routine/trigger text without comments, with every run of white space made one space.

    Quoted strings and identifiers are kept byte for byte. ``hash_comments`` treats ``#``
    as a comment start (MySQL); PostgreSQL bodies keep it.
    """
    out: list[str] = []
    pending_space = False
    for match in _TOKEN_RE.finditer(body):
        kind = match.lastgroup
        text = match.group()
        if kind == "comment" and (hash_comments or not text.startswith("#")):
            pending_space = True
            continue
        if kind == "space":
            pending_space = True
            continue
        if pending_space and out:
            out.append(" ")
        pending_space = False
        out.append(text)
    return "".join(out)


# What MySQL's default string literal escapes stand for (any other escaped character is
# the character itself).
_ESCAPES = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t",
            "Z": "\x1a", "\\": "\\", "%": "\\%", "_": "\\_"}


def unescape_literals(body: str) -> str:
    """``body`` with the backslash escapes of its string literals read as MySQL reads them
    by default. A routine created under NO_BACKSLASH_ESCAPES keeps them as text (Kea's
    script writes JSON paths as '\\$['): this is the body Kea's script meant."""
    out: list[str] = []
    for match in _TOKEN_RE.finditer(body):
        text = match.group()
        if match.lastgroup == "string" and text[0] in "'\"" and "\\" in text:
            text = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text,
                          flags=re.DOTALL)
        out.append(text)
    return "".join(out)


def body_hash(body: str | None, *, hash_comments: bool = True) -> str:
    """sha256 of :func:`normalize_body` (empty string for an unreadable body)."""
    if body is None:
        return ""
    normal = normalize_body(body, hash_comments=hash_comments)
    return hashlib.sha256(normal.encode()).hexdigest()


# --- reading ---------------------------------------------------------------------------


def _query(dbapi_connection: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _text(value: Any) -> str:
    """Server strings can come back as bytes (PyMySQL, binary collations)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode()
    return "" if value is None else str(value)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return TIMESTAMP_MARK
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def _row_key(row: tuple[Any, ...]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


_TIME_TYPES = re.compile(r"^(timestamp|datetime|date|time|interval)\b", re.IGNORECASE)


def read_table_rows(
    dbapi_connection: Any,
    quote: Callable[[str], str],
    table: str,
    columns: Iterable[Column] | None = None,
) -> TableRows:
    """Every row of one table, as JSON scalars, sorted (date/time values masked).
    ``quote`` quotes an identifier (the backend's ``quote_identifier``).

    With ``columns`` (the table's catalog columns) the query names them and masks the
    date/time ones by type, so a connection whose rows are text (a kea-db session) works
    too; without, it reads ``*`` and masks by value type.
    """
    known = list(columns or ())
    listed = ", ".join(quote(c.name) for c in known) if known else "*"
    timed = [bool(_TIME_TYPES.match(c.type)) for c in known]
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SELECT {listed} FROM {quote(table)}")
        if known:
            names = tuple(c.name for c in known)
        else:
            names = tuple(_text(d[0]) for d in cursor.description)
        rows = []
        for raw in cursor.fetchall():
            values = [_json_value(v) for v in raw]
            for i, is_time in enumerate(timed):
                if is_time and values[i] is not None:
                    values[i] = TIMESTAMP_MARK
            rows.append(tuple(values))
    finally:
        cursor.close()
    return TableRows(table, names, tuple(sorted(rows, key=_row_key)))


def _rows(
    dbapi_connection: Any,
    quote: Callable[[str], str],
    tables: Iterable[Table],
    row_tables: Collection[str] | None,
) -> tuple[TableRows, ...]:
    found = []
    for table in sorted(tables, key=lambda t: t.name):
        if row_tables is not None and table.name not in row_tables:
            continue
        rows = read_table_rows(dbapi_connection, quote, table.name, table.columns)
        if rows.rows:
            found.append(rows)
    return tuple(found)


def read_catalog(
    dbapi_connection: Any,
    backend_type: str,
    *,
    row_tables: Collection[str] | None = None,
) -> Catalog:
    """Read the schema the connection's current database (MySQL) or search path
    (PostgreSQL) holds, with the backend's reader (``Backend.read_catalog``).

    ``row_tables`` limits which tables' rows are read (``None``: every table, which suits a
    freshly initialised schema; pass the lookup tables for a production database). Only
    tables that hold rows appear in :attr:`Catalog.rows`.

    Raises:
        KeyError: unknown ``backend_type``. Driver errors propagate.
    """
    from keadb_cli.db.backends import backend_for

    return backend_for(backend_type).read_catalog(dbapi_connection, row_tables)


# --- comparing -------------------------------------------------------------------------


def _flatten(catalog: Catalog) -> dict[str, dict[str, str]]:
    """Object key -> attribute -> printable value."""
    objects: dict[str, dict[str, str]] = {"schema": dict(catalog.options)}
    for table in catalog.tables:
        tkey = f"table {table.name}"
        objects[tkey] = {
            **dict(table.options),
            "column order": ", ".join(c.name for c in table.columns),
        }
        for column in table.columns:
            attrs = asdict(column)
            del attrs["name"], attrs["position"]
            objects[f"{tkey} column {column.name}"] = {k: repr(v) for k, v in attrs.items()}
        for constraint in table.constraints:
            attrs = asdict(constraint)
            del attrs["name"]
            objects[f"{tkey} constraint {constraint.name}"] = {k: repr(v) for k, v in attrs.items()}
        for index in table.indexes:
            attrs = asdict(index)
            del attrs["name"]
            objects[f"{tkey} index {index.name}"] = {k: repr(v) for k, v in attrs.items()}
    for trigger in catalog.triggers:
        objects[f"trigger {trigger.name}"] = {
            "table": trigger.table,
            "timing": trigger.timing,
            "events": ",".join(trigger.events),
            "body_hash": trigger.body_hash,
            **dict(trigger.options),
        }
    for routine in catalog.routines:
        objects[f"routine {routine.key}"] = {
            "returns": repr(routine.returns),
            "body_hash": routine.body_hash,
            **dict(routine.options),
        }
    for sequence in catalog.sequences:
        objects[f"sequence {sequence.name}"] = dict(sequence.options)
    for rows in catalog.rows:
        objects[f"rows {rows.table}"] = {"columns": ", ".join(rows.columns)}
        for row in rows.rows:
            objects[f"rows {rows.table} row {json.dumps(list(row))}"] = {}
    return objects


def diff(
    a: Catalog,
    b: Catalog,
    *,
    ignore: Collection[str] = (),
    labels: tuple[str, str] = ("a", "b"),
) -> list[str]:
    """Every difference between two catalogs, one sorted line each; empty when equal.

    ``ignore`` names attributes to leave out (for example ``{"body_hash"}`` to compare two
    independently written schemas, or ``{"auto_increment", "last_value"}`` for a database
    in use).
    """
    left, right = _flatten(a), _flatten(b)
    lines = []
    for key in sorted(left.keys() | right.keys()):
        if key not in right:
            lines.append(f"{key}: only in {labels[0]}")
        elif key not in left:
            lines.append(f"{key}: only in {labels[1]}")
        else:
            for attr in sorted(left[key].keys() | right[key].keys()):
                if attr in ignore:
                    continue
                va, vb = left[key].get(attr, "<absent>"), right[key].get(attr, "<absent>")
                if va != vb:
                    lines.append(f"{key}: {attr}: {labels[0]}={va} {labels[1]}={vb}")
    return lines


def assert_same_catalog(
    a: Catalog,
    b: Catalog,
    *,
    ignore: Collection[str] = (),
    labels: tuple[str, str] = ("a", "b"),
) -> None:
    """For tests: raise AssertionError listing every difference (see :func:`diff`)."""
    lines = diff(a, b, ignore=ignore, labels=labels)
    if lines:
        raise AssertionError(
            f"{len(lines)} catalog difference(s):\n" + "\n".join(f"  {line}" for line in lines)
        )
