"""Kea's MySQL schemas as kea-db's revisions build them, recorded per server flavour.

``kea-db verify`` builds its expectation in a scratch database on the same server when the
user may create one. Kea's documented grant (``GRANT ALL ON kea.* TO kea``) does not allow
that, so for such a user the expectation comes from ``expected_mysql.json`` beside this
module: every object of every schema version kea-db knows, as kea-db's revisions build it on
MariaDB and on Oracle MySQL (``tests/tools/expected_catalogs.py`` writes it; a test rebuilds
it and compares), and the rows of Kea's lookup tables.

Servers of one flavour spell a schema alike except in what the database's character set and
the server's settings decide, so both sides are compared after :func:`normalise`:

- a column's character set and collation are ``<table>`` when they are the table's, and a
  table's collation is ``<database>`` when it is the database's (what Kea's script gets
  when it names none, in latin1, utf8mb4 or uca1400 alike); anything else is kept, and
  compared;
- the ``sql_mode`` a routine or trigger was created under is the server's global one at
  the time, so the record's is replaced by the live server's (:func:`expected_flat`).

Nothing here prints, connects or imports SQLAlchemy.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

RECORD = "expected_mysql.json"
FORMAT = 1
TABLE_DEFAULT = "'<table>'"
DATABASE_DEFAULT = "<database>"

Flat = dict[str, dict[str, str]]


def normalise(flat: Flat) -> Flat:
    """``flat`` (:func:`keadb_cli.schema.catalog._flatten` of a MySQL catalog, no rows) with
    the database's and tables' default character sets and collations named as such."""
    database = flat.get("schema", {}).get("collation")
    tables = {key: attrs.get("collation") for key, attrs in flat.items()
              if key.startswith("table ") and " column " not in key and " index " not in key
              and " constraint " not in key}
    out: Flat = {}
    for key, attrs in flat.items():
        attrs = dict(attrs)
        if key == "schema":
            attrs.pop("charset", None)
            attrs.pop("collation", None)
        elif key in tables:
            if database is not None and attrs.get("collation") == database:
                attrs["collation"] = DATABASE_DEFAULT
        elif " column " in key:
            table = key.split(" column ", 1)[0]
            collation = tables.get(table)
            if collation is not None and attrs.get("collation") == repr(collation):
                attrs["collation"] = TABLE_DEFAULT
                attrs["charset"] = TABLE_DEFAULT
        out[key] = attrs
    return out


@cache
def _record() -> dict[str, Any]:
    text = resources.files("keadb_cli.schema").joinpath(RECORD).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _within(spans: list[list[int]], index: int) -> bool:
    return any(first <= index <= last for first, last in spans)


def _spans(indexes: list[int]) -> list[list[int]]:
    """Sorted indexes as [first, last] runs: [0, 1, 2, 5] -> [[0, 2], [5, 5]]."""
    spans: list[list[int]] = []
    for index in indexes:
        if spans and spans[-1][1] == index - 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    return spans


def expected_flat(flavour: str, version: str, sql_mode: str) -> Flat | None:
    """The normalised objects of schema ``version`` on ``flavour`` (``mariadb`` or
    ``mysql``), routines and triggers under ``sql_mode``; None when not recorded."""
    entry = _record().get("flavours", {}).get(flavour)
    if entry is None or version not in entry.get("versions", []):
        return None
    index = entry["versions"].index(version)
    out: Flat = {}
    for key, variants in entry["objects"].items():
        for attrs, at in variants:
            if _within(at, index):
                attrs = dict(attrs)
                if "sql_mode" in attrs:
                    attrs["sql_mode"] = sql_mode
                out[key] = attrs
                break
    return out


def expected_rows(flavour: str, version: str) -> dict[str, tuple[list[str], set[tuple[Any, ...]]]]:
    """Per lookup table of schema ``version``: its columns and the rows init inserts."""
    entry = _record().get("flavours", {}).get(flavour, {})
    if version not in entry.get("versions", []):
        return {}
    index = entry["versions"].index(version)
    out: dict[str, tuple[list[str], set[tuple[Any, ...]]]] = {}
    for table, variants in entry.get("rows", {}).items():
        for columns, rows, at in variants:
            if _within(at, index):
                out[table] = (list(columns), {tuple(r) for r in rows})
                break
    return out


def merge(states: dict[str, tuple[Flat, dict[str, tuple[list[str], list[list[Any]]]]]],
          recorded_on: str) -> dict[str, Any]:
    """One flavour's record from the normalised objects and lookup rows of each version
    (``states``: version -> (objects, rows)): every distinct definition once, with the
    versions that have it as [first, last] runs of indexes into ``versions``."""
    objects: dict[str, list[list[Any]]] = {}
    rows: dict[str, list[list[Any]]] = {}
    order = sorted(states, key=lambda v: tuple(int(p) for p in v.split(".")))
    for version in order:
        index = order.index(version)
        flat, lookup = states[version]
        for key, attrs in sorted(flat.items()):
            variants = objects.setdefault(key, [])
            for variant in variants:
                if variant[0] == attrs:
                    variant[1].append(index)
                    break
            else:
                variants.append([attrs, [index]])
        for table, (columns, table_rows) in sorted(lookup.items()):
            row_variants = rows.setdefault(table, [])
            value = [columns, sorted(table_rows, key=json.dumps)]
            for variant in row_variants:
                if variant[:2] == value:
                    variant[2].append(index)
                    break
            else:
                row_variants.append([*value, [index]])
    for obj_variants in objects.values():
        for variant in obj_variants:
            variant[1] = _spans(variant[1])
    for row_variants in rows.values():
        for variant in row_variants:
            variant[2] = _spans(variant[2])
    return {"recorded_on": recorded_on, "versions": order, "objects": objects, "rows": rows}
