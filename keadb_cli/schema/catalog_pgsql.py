"""The catalog of a PostgreSQL schema, from ``pg_catalog``."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict
from typing import Any

from keadb_cli.schema.catalog import (
    Catalog,
    Column,
    Constraint,
    Index,
    Routine,
    Sequence,
    Table,
    Trigger,
    _query,
    _rows,
    body_hash,
)

_PG_RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_PG_KINDS = {"p": "PRIMARY KEY", "u": "UNIQUE", "f": "FOREIGN KEY", "c": "CHECK", "x": "EXCLUDE"}
_PG_NS = "n.nspname = ANY (current_schemas(false))"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bool(value: Any) -> bool:
    """A boolean from a driver (``True``) or from a text row (``"t"``)."""
    return value is True or value in ("t", "true", "1", 1)


def _ints(value: Any) -> list[int]:
    """An ``array_to_string(..., ',')`` of column numbers (``None`` or ``""``: none)."""
    return [int(part) for part in str(value).split(",")] if value else []


def read(dbapi_connection: Any, row_tables: Collection[str] | None) -> Catalog:
    q = _query
    tables_raw = q(
        dbapi_connection,
        "SELECT c.oid, c.relname, c.relkind, c.relpersistence, "
        "coalesce(array_to_string(c.reloptions, ','), '') "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_NS}",
    )
    names = {str(oid): relname for oid, relname, *_rest in tables_raw}

    columns: dict[str, list[Column]] = {}
    attnames: dict[tuple[str, int], str] = {}
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
        relid = str(relid)
        attnames[(relid, int(attnum))] = name
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
                nullable=not _bool(notnull),
                default=default,
                extra=extra,
                collation=coll,
            )
        )
    for relid, cols in columns.items():
        columns[relid] = [
            Column(**{**asdict(c), "position": i}) for i, c in enumerate(cols, start=1)
        ]

    constraints: dict[str, list[Constraint]] = {}
    # PostgreSQL 18 also lists every NOT NULL as a constraint (contype 'n', a name of the
    # server's making): a column's nullability says it already, as on older servers.
    for relid, name, contype, conkey, confrelid, confkey, upd, dele, definition in q(
        dbapi_connection,
        "SELECT co.conrelid, co.conname, co.contype, array_to_string(co.conkey, ','), "
        "co.confrelid, array_to_string(co.confkey, ','), "
        "co.confupdtype, co.confdeltype, pg_get_constraintdef(co.oid) "
        "FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_namespace n "
        f"ON n.oid = co.connamespace WHERE co.conrelid <> 0 AND co.contype <> 'n' "
        f"AND {_PG_NS}",
    ):
        relid, confrelid = str(relid), str(confrelid)
        ref_names = tuple(attnames.get((confrelid, k), str(k)) for k in _ints(confkey))
        constraints.setdefault(relid, []).append(
            Constraint(
                name=name,
                kind=_PG_KINDS.get(contype, contype),
                columns=tuple(attnames.get((relid, k), str(k)) for k in _ints(conkey)),
                ref_table=names.get(confrelid) if contype == "f" else None,
                ref_columns=ref_names,
                on_delete=_PG_RULES.get(dele) if contype == "f" else None,
                on_update=_PG_RULES.get(upd) if contype == "f" else None,
                definition=definition,
            )
        )

    indexes: dict[str, list[Index]] = {}
    for relid, name, unique, primary, method, definition, cols in q(
        dbapi_connection,
        "SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, am.amname, "
        "pg_get_indexdef(i.indexrelid), "
        "array_to_json(ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) "
        "      FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k))::text "
        "FROM pg_catalog.pg_index i "
        "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_catalog.pg_am am ON am.oid = ic.relam "
        f"JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace WHERE {_PG_NS}",
    ):
        indexes.setdefault(str(relid), []).append(
            Index(
                name=name,
                columns=tuple(json.loads(cols)),
                unique=_bool(unique),
                primary=_bool(primary),
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
        for oid in (str(oid),)
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
        tgtype, relid = int(tgtype), str(relid)
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
                    ("strict", str(_bool(strict))),
                    ("security_definer", str(_bool(secdef))),
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
                ("cycle", str(_bool(cycle))),
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
            quote,
            [t for t in tables if dict(t.options).get("kind") in ("r", "p")],
            row_tables,
        ),
        options=(("extensions", ",".join(sorted(e[0] for e in extensions))),),
    )
