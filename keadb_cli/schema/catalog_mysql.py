"""The catalog of a MySQL/MariaDB schema, from ``information_schema``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from keadb_cli.schema.catalog import (
    Catalog,
    Column,
    Constraint,
    Index,
    Routine,
    Table,
    Trigger,
    _query,
    _rows,
    _text,
    body_hash,
    unescape_literals,
)


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read(dbapi_connection: Any, row_tables: Collection[str] | None) -> Catalog:
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
        for t, n, clause in q(dbapi_connection, _checks_sql(dbapi_connection), p)
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
    index_info: dict[tuple[str, str], tuple[bool, str, str]] = {}
    for stat in _statistics(dbapi_connection, schema):
        key = (_text(stat["TABLE_NAME"]), _text(stat["INDEX_NAME"]))
        # A functional key part (Oracle MySQL) has an expression instead of a column.
        expression = stat.get("EXPRESSION")
        part = _text(stat["COLUMN_NAME"]) if expression is None else f"({_text(expression)})"
        if stat["SUB_PART"] is not None:
            part += f"({int(stat['SUB_PART'])})"
        if _text(stat["COLLATION"]) == "D":
            part += " DESC"
        index_parts.setdefault(key, []).append((int(stat["SEQ_IN_INDEX"]), part))
        index_info[key] = (
            int(stat["NON_UNIQUE"]) == 0,
            _text(stat["INDEX_TYPE"]),
            _index_definition(stat),
        )
    indexes: dict[str, list[Index]] = {}
    for (table, iname), parts in index_parts.items():
        unique, method, definition = index_info[(table, iname)]
        indexes.setdefault(table, []).append(
            Index(
                name=iname,
                columns=tuple(part for _seq, part in sorted(parts)),
                unique=unique,
                primary=iname == "PRIMARY",
                method=method,
                definition=definition,
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
        if auto_inc is None and any("auto_increment" in c.extra.lower()
                                    for c in columns.get(name, [])):
            # Oracle MySQL shows NULL for a table that has never had a row until an ALTER
            # TABLE; the next value is 1 either way (MariaDB always shows 1).
            auto_inc = 1
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
                *_unescaped(_text(sql_mode), _text(body)),
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
                    *_unescaped(_text(sql_mode), None if body is None else _text(body)),
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
        rows=_rows(dbapi_connection, quote, tables, row_tables),
        options=(
            ("charset", _text(charset)),
            ("collation", _text(collation)),
            ("events", ",".join(sorted(_text(e[0]) for e in events))),
        ),
    )


UNESCAPED = "body_hash_unescaped"


def _unescaped(sql_mode: str, body: str | None) -> tuple[tuple[str, str], ...]:
    """For a body stored under NO_BACKSLASH_ESCAPES (which keeps the backslashes of its
    string literals as text): the hash of the body as the default mode reads it, so that
    verify can tell Kea's own text stored that way from a foreign body."""
    if body is None or "NO_BACKSLASH_ESCAPES" not in sql_mode.upper().split(","):
        return ()
    return ((UNESCAPED, body_hash(unescape_literals(body))),)


def _checks_sql(dbapi_connection: Any) -> str:
    """CHECK constraints with their table: MariaDB's CHECK_CONSTRAINTS has TABLE_NAME (and
    names are per table); Oracle MySQL's has not, and its names are per schema."""
    (version,) = _query(dbapi_connection, "SELECT VERSION()")[0]
    if "mariadb" in _text(version).lower():
        return ("SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE "
                "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s")
    return ("SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE "
            "FROM information_schema.CHECK_CONSTRAINTS cc "
            "JOIN information_schema.TABLE_CONSTRAINTS tc "
            "ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA "
            "AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME AND tc.CONSTRAINT_TYPE = 'CHECK' "
            "WHERE cc.CONSTRAINT_SCHEMA = %s")


_STATISTICS = ("TABLE_NAME", "INDEX_NAME", "SEQ_IN_INDEX", "COLUMN_NAME", "SUB_PART",
               "COLLATION", "NON_UNIQUE", "INDEX_TYPE", "INDEX_COMMENT",
               "EXPRESSION", "IS_VISIBLE", "IGNORED")


def _statistics(dbapi_connection: Any, schema: str) -> list[dict[str, Any]]:
    """information_schema.STATISTICS of one schema, one dict per key part, with the
    columns of :data:`_STATISTICS` this server has (the flavours differ: Oracle MySQL has
    EXPRESSION and IS_VISIBLE, MariaDB 10.6+ IGNORED)."""
    have = {
        _text(name).upper()
        for (name,) in _query(
            dbapi_connection,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'STATISTICS'",
        )
    }
    names = [n for n in _STATISTICS if n in have]
    rows = _query(
        dbapi_connection,
        f"SELECT {', '.join(names)} FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s",
        (schema,),
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


def _index_definition(row: dict[str, Any]) -> str:
    """What else defines an index besides its columns, type and uniqueness: its comment and
    whether the optimizer may use it (Oracle MySQL: IS_VISIBLE; MariaDB: IGNORED)."""
    if "IS_VISIBLE" in row:
        visible = _text(row["IS_VISIBLE"]).upper() != "NO"
    else:
        visible = _text(row.get("IGNORED")).upper() != "YES"
    comment = _text(row.get("INDEX_COMMENT"))
    return f"comment={comment!r} visible={'yes' if visible else 'no'}"
