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


def _mysql_quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _pg_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_table_rows(dbapi_connection: Any, backend_type: str, table: str) -> TableRows:
    """Every row of one table, as JSON scalars, sorted (date/time values masked)."""
    quote = _mysql_quote if backend_type == "mysql" else _pg_quote
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SELECT * FROM {quote(table)}")
        names = tuple(_text(d[0]) for d in cursor.description)
        rows = [tuple(_json_value(v) for v in row) for row in cursor.fetchall()]
    finally:
        cursor.close()
    return TableRows(table, names, tuple(sorted(rows, key=_row_key)))


def _rows(
    dbapi_connection: Any,
    backend_type: str,
    tables: Iterable[str],
    row_tables: Collection[str] | None,
) -> tuple[TableRows, ...]:
    found = []
    for name in sorted(tables):
        if row_tables is not None and name not in row_tables:
            continue
        rows = read_table_rows(dbapi_connection, backend_type, name)
        if rows.rows:
            found.append(rows)
    return tuple(found)


def _read_mysql(dbapi_connection: Any, row_tables: Collection[str] | None) -> Catalog:
    q = _query
    (schema,) = q(dbapi_connection, "SELECT DATABASE()")[0]
    schema = _text(schema)
    p = (schema,)

    columns: dict[str, list[Column]] = {}
    for row in q(
        dbapi_connection,
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
        "COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION",
        p,
    ):
        table, name, pos, ctype, nullable, default, extra, charset, collation, comment = row
        columns.setdefault(_text(table), []).append(
            Column(
                name=_text(name),
                position=int(pos),
                type=_text(ctype),
                nullable=_text(nullable) == "YES",
                default=None if default is None else _text(default),
                extra=_text(extra),
                charset=None if charset is None else _text(charset),
                collation=None if collation is None else _text(collation),
                comment=_text(comment),
            )
        )

    key_columns: dict[tuple[str, str], list[tuple[str, str | None, str | None]]] = {}
    for table, cname, col, ref_table, ref_col in q(
        dbapi_connection,
        "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
        "REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
        p,
    ):
        key_columns.setdefault((_text(table), _text(cname)), []).append(
            (
                _text(col),
                None if ref_table is None else _text(ref_table),
                None if ref_col is None else _text(ref_col),
            )
        )
    rules = {
        (_text(t), _text(n)): (_text(upd), _text(dele))
        for t, n, upd, dele in q(
            dbapi_connection,
            "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE "
            "FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
            p,
        )
    }
    checks = {
        (_text(t), _text(n)): _text(clause)
        for t, n, clause in q(
            dbapi_connection,
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE "
            "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
            p,
        )
    }
    constraints: dict[str, list[Constraint]] = {}
    for table, cname, ctype in q(
        dbapi_connection,
        "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE "
        "FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
        p,
    ):
        table, cname, ctype = _text(table), _text(cname), _text(ctype)
        cols = key_columns.get((table, cname), [])
        update_rule, delete_rule = rules.get((table, cname), (None, None))
        constraints.setdefault(table, []).append(
            Constraint(
                name=cname,
                kind=ctype,
                columns=tuple(c for c, _t, _r in cols),
                ref_table=cols[0][1] if cols and ctype == "FOREIGN KEY" else None,
                ref_columns=tuple(r for _c, _t, r in cols if r is not None),
                on_delete=delete_rule,
                on_update=update_rule,
                definition=checks.get((table, cname)),
            )
        )

    index_parts: dict[tuple[str, str], list[tuple[int, str]]] = {}
    index_info: dict[tuple[str, str], tuple[bool, str]] = {}
    for table, iname, non_unique, seq, col, sub_part, itype, collation in q(
        dbapi_connection,
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, "
        "INDEX_TYPE, COLLATION FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s",
        p,
    ):
        key = (_text(table), _text(iname))
        part = _text(col)
        if sub_part is not None:
            part += f"({int(sub_part)})"
        if _text(collation) == "D":
            part += " DESC"
        index_parts.setdefault(key, []).append((int(seq), part))
        index_info[key] = (int(non_unique) == 0, _text(itype))
    indexes: dict[str, list[Index]] = {}
    for (table, iname), parts in index_parts.items():
        unique, method = index_info[(table, iname)]
        indexes.setdefault(table, []).append(
            Index(
                name=iname,
                columns=tuple(part for _seq, part in sorted(parts)),
                unique=unique,
                primary=iname == "PRIMARY",
                method=method,
            )
        )

    tables = []
    for name, engine, collation, auto_inc, comment, create_options, ttype in q(
        dbapi_connection,
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, AUTO_INCREMENT, TABLE_COMMENT, "
        "CREATE_OPTIONS, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        p,
    ):
        name = _text(name)
        tables.append(
            Table(
                name=name,
                columns=tuple(columns.get(name, [])),
                constraints=tuple(sorted(constraints.get(name, []), key=lambda c: c.name)),
                indexes=tuple(sorted(indexes.get(name, []), key=lambda i: i.name)),
                options=(
                    ("type", _text(ttype)),
                    ("engine", _text(engine)),
                    ("collation", _text(collation)),
                    ("auto_increment", _text(auto_inc)),
                    ("create_options", _text(create_options)),
                    ("comment", _text(comment)),
                ),
            )
        )
    tables.sort(key=lambda t: t.name)

    triggers = [
        Trigger(
            name=_text(name),
            table=_text(table),
            timing=_text(timing),
            events=(_text(event),),
            body_hash=body_hash(_text(body)),
            options=(
                ("order", _text(order)),
                ("orientation", _text(orientation)),
                ("sql_mode", _text(sql_mode)),
            ),
        )
        for name, table, timing, event, order, orientation, sql_mode, body in q(
            dbapi_connection,
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
            "ACTION_ORDER, ACTION_ORIENTATION, SQL_MODE, ACTION_STATEMENT "
            "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            p,
        )
    ]
    triggers.sort(key=lambda t: t.name)

    params: dict[str, list[str]] = {}
    for routine, mode, pname, dtd in q(
        dbapi_connection,
        "SELECT SPECIFIC_NAME, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER "
        "FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = %s "
        "AND ORDINAL_POSITION > 0 ORDER BY SPECIFIC_NAME, ORDINAL_POSITION",
        p,
    ):
        params.setdefault(_text(routine), []).append(
            " ".join(_text(x) for x in (mode, pname, dtd) if x is not None)
        )
    routines = []
    for name, rtype, returns, deterministic, access, security, sql_mode, comment, body in q(
        dbapi_connection,
        "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, IS_DETERMINISTIC, "
        "SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, ROUTINE_COMMENT, ROUTINE_DEFINITION "
        "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
        p,
    ):
        name = _text(name)
        routines.append(
            Routine(
                name=name,
                kind=_text(rtype),
                arguments=tuple(params.get(name, [])),
                returns=None if returns is None else _text(returns),
                body_hash=body_hash(None if body is None else _text(body)),
                options=(
                    ("deterministic", _text(deterministic)),
                    ("data_access", _text(access)),
                    ("security", _text(security)),
                    ("sql_mode", _text(sql_mode)),
                    ("comment", _text(comment)),
                ),
            )
        )
    routines.sort(key=lambda r: r.key)

    charset, collation = q(
        dbapi_connection,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        p,
    )[0]
    events = q(
        dbapi_connection,
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
        p,
    )
    return Catalog(
        backend="mysql",
        tables=tuple(tables),
        triggers=tuple(triggers),
        routines=tuple(routines),
        rows=_rows(dbapi_connection, "mysql", [t.name for t in tables], row_tables),
        options=(
            ("charset", _text(charset)),
            ("collation", _text(collation)),
            ("events", ",".join(sorted(_text(e[0]) for e in events))),
        ),
    )


_PG_RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_PG_KINDS = {"p": "PRIMARY KEY", "u": "UNIQUE", "f": "FOREIGN KEY", "c": "CHECK", "x": "EXCLUDE"}
_PG_NS = "n.nspname = ANY (current_schemas(false))"


def _read_postgresql(dbapi_connection: Any, row_tables: Collection[str] | None) -> Catalog:
    q = _query
    tables_raw = q(
        dbapi_connection,
        "SELECT c.oid, c.relname, c.relkind, c.relpersistence, "
        "coalesce(array_to_string(c.reloptions, ','), '') "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_NS}",
    )
    names = {oid: relname for oid, relname, *_rest in tables_raw}

    columns: dict[int, list[Column]] = {}
    attnames: dict[tuple[int, int], str] = {}
    for relid, attnum, name, ctype, notnull, default, identity, generated, coll in q(
        dbapi_connection,
        "SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, "
        "CASE WHEN a.attcollation <> t.typcollation THEN co.collname END "
        "FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation "
        f"WHERE a.attnum > 0 AND NOT a.attisdropped AND {_PG_NS} "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY a.attrelid, a.attnum",
    ):
        attnames[(relid, attnum)] = name
        extra = " ".join(
            x
            for x in (
                {"a": "identity always", "d": "identity by default"}.get(identity or "", ""),
                "generated stored" if generated == "s" else "",
            )
            if x
        )
        columns.setdefault(relid, []).append(
            Column(
                name=name,
                position=0,  # filled below: dropped columns leave gaps in attnum
                type=ctype,
                nullable=not notnull,
                default=default,
                extra=extra,
                collation=coll,
            )
        )
    for relid, cols in columns.items():
        columns[relid] = [
            Column(**{**asdict(c), "position": i}) for i, c in enumerate(cols, start=1)
        ]

    constraints: dict[int, list[Constraint]] = {}
    for relid, name, contype, conkey, confrelid, confkey, upd, dele, definition in q(
        dbapi_connection,
        "SELECT co.conrelid, co.conname, co.contype, co.conkey, co.confrelid, co.confkey, "
        "co.confupdtype, co.confdeltype, pg_get_constraintdef(co.oid) "
        "FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_namespace n "
        f"ON n.oid = co.connamespace WHERE co.conrelid <> 0 AND {_PG_NS}",
    ):
        ref_names = (
            tuple(attnames.get((confrelid, k), str(k)) for k in confkey or ()) if confkey else ()
        )
        constraints.setdefault(relid, []).append(
            Constraint(
                name=name,
                kind=_PG_KINDS.get(contype, contype),
                columns=tuple(attnames.get((relid, k), str(k)) for k in conkey or ()),
                ref_table=names.get(confrelid) if contype == "f" else None,
                ref_columns=ref_names,
                on_delete=_PG_RULES.get(dele) if contype == "f" else None,
                on_update=_PG_RULES.get(upd) if contype == "f" else None,
                definition=definition,
            )
        )

    indexes: dict[int, list[Index]] = {}
    for relid, name, unique, primary, method, definition, cols in q(
        dbapi_connection,
        "SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, am.amname, "
        "pg_get_indexdef(i.indexrelid), "
        "ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) "
        "      FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) "
        "FROM pg_catalog.pg_index i "
        "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_catalog.pg_am am ON am.oid = ic.relam "
        f"JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace WHERE {_PG_NS}",
    ):
        indexes.setdefault(relid, []).append(
            Index(
                name=name,
                columns=tuple(cols),
                unique=bool(unique),
                primary=bool(primary),
                method=method,
                definition=definition,
            )
        )

    tables = [
        Table(
            name=relname,
            columns=tuple(columns.get(oid, [])),
            constraints=tuple(sorted(constraints.get(oid, []), key=lambda c: c.name)),
            indexes=tuple(sorted(indexes.get(oid, []), key=lambda i: i.name)),
            options=(("kind", relkind), ("persistence", persistence), ("options", reloptions)),
        )
        for oid, relname, relkind, persistence, reloptions in tables_raw
    ]
    tables.sort(key=lambda t: t.name)

    triggers = []
    for name, relid, tgtype, function, enabled, definition in q(
        dbapi_connection,
        "SELECT t.tgname, t.tgrelid, t.tgtype, t.tgfoid::regprocedure::text, t.tgenabled, "
        "pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger t "
        "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
        f"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE NOT t.tgisinternal AND {_PG_NS}",
    ):
        timing = "INSTEAD OF" if tgtype & 64 else "BEFORE" if tgtype & 2 else "AFTER"
        events = tuple(
            event
            for bit, event in ((4, "INSERT"), (16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE"))
            if tgtype & bit
        )
        triggers.append(
            Trigger(
                name=name,
                table=names.get(relid, str(relid)),
                timing=timing,
                events=events,
                body_hash=body_hash(definition, hash_comments=False),
                options=(
                    ("level", "ROW" if tgtype & 1 else "STATEMENT"),
                    ("function", function),
                    ("enabled", enabled),
                    ("definition", definition),
                ),
            )
        )
    triggers.sort(key=lambda t: (t.table, t.name))

    routines = []
    for name, kind, args, result, language, volatility, strict, secdef, source in q(
        dbapi_connection,
        "SELECT p.proname, p.prokind, pg_get_function_identity_arguments(p.oid), "
        "pg_get_function_result(p.oid), l.lanname, p.provolatile, p.proisstrict, "
        "p.prosecdef, p.prosrc FROM pg_catalog.pg_proc p "
        "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
        f"JOIN pg_catalog.pg_language l ON l.oid = p.prolang WHERE {_PG_NS}",
    ):
        routines.append(
            Routine(
                name=name,
                kind="PROCEDURE" if kind == "p" else "FUNCTION",
                arguments=tuple(a for a in args.split(", ") if a) if args else (),
                returns=result,
                body_hash=body_hash(source, hash_comments=False),
                options=(
                    ("language", language),
                    ("volatility", volatility),
                    ("strict", str(bool(strict))),
                    ("security_definer", str(bool(secdef))),
                    ("prokind", kind),
                ),
            )
        )
    routines.sort(key=lambda r: r.key)

    sequences = [
        Sequence(
            name=name,
            options=(
                ("type", dtype),
                ("start", str(start)),
                ("increment", str(inc)),
                ("min", str(smin)),
                ("max", str(smax)),
                ("cycle", str(bool(cycle))),
                ("owned_by", owned or ""),
                ("last_value", str(last)),
            ),
        )
        for name, dtype, start, inc, smin, smax, cycle, owned, last in q(
            dbapi_connection,
            "SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, "
            "s.seqmin, s.seqmax, s.seqcycle, "
            "(SELECT tc.relname || '.' || a.attname FROM pg_catalog.pg_depend d "
            " JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid "
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid "
            "  AND a.attnum = d.refobjsubid "
            " WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid "
            "  AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') "
            " LIMIT 1), "
            "ps.last_value "
            "FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_sequences ps "
            "  ON ps.schemaname = n.nspname AND ps.sequencename = c.relname "
            f"WHERE {_PG_NS}",
        )
    ]
    sequences.sort(key=lambda s: s.name)

    extensions = q(dbapi_connection, "SELECT extname FROM pg_catalog.pg_extension")
    return Catalog(
        backend="postgresql",
        tables=tuple(tables),
        triggers=tuple(triggers),
        routines=tuple(routines),
        sequences=tuple(sequences),
        rows=_rows(
            dbapi_connection,
            "postgresql",
            [t.name for t in tables if dict(t.options).get("kind") in ("r", "p")],
            row_tables,
        ),
        options=(("extensions", ",".join(sorted(e[0] for e in extensions))),),
    )


_READERS: dict[str, Callable[[Any, Collection[str] | None], Catalog]] = {
    "mysql": _read_mysql,
    "postgresql": _read_postgresql,
}


def read_catalog(
    dbapi_connection: Any,
    backend_type: str,
    *,
    row_tables: Collection[str] | None = None,
) -> Catalog:
    """Read the schema the connection's current database (MySQL) or search path
    (PostgreSQL) holds.

    ``row_tables`` limits which tables' rows are read (``None``: every table, which suits a
    freshly initialised schema; pass the lookup tables for a production database). Only
    tables that hold rows appear in :attr:`Catalog.rows`.

    Raises:
        KeyError: unknown ``backend_type``. Driver errors propagate.
    """
    return _READERS[backend_type](dbapi_connection, row_tables)


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
