"""``kea-db verify``: is a live database really the schema its ``schema_version`` says?

The expectation is built from kea-db's revisions, on the same server, so that the server
spells types, defaults and definitions as it spells the live ones, and it leaves no trace:

- PostgreSQL: a scratch schema inside a transaction that is rolled back (needs CREATE on
  the database, which Kea's database owner has).
- MySQL: a scratch database ``keadb_verify_<hex>`` with the live database's character set
  and collation, dropped at once (needs CREATE and DROP on it).

The live catalog is then compared object by object (:mod:`keadb_cli.schema.catalog`):
a Kea object that is missing or different is an error; an object Kea does not have (an
operator's own table, column, index, trigger, routine) is a warning; a lookup-table row
Kea inserts and the database lacks is an error. Routine and trigger bodies are compared by
a hash of their normalised text: a body is right when it is kea-db's for that schema or
one Kea's own scripts create (``keadb_cli/schema/kea_bodies.json``: hashes only).

Nothing here prints; the CLI renders :class:`VerifyResult`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from keadb_cli.db.backends import backend_for
from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import CannotVerify as CannotVerify
from keadb_cli.errors import DeniedError, ExitCode, KeaDbError, Refusal
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema
from keadb_cli.schema.state import access_json, kea_schema, read_state
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.node import Node
    from keadb_cli.schema.catalog import Catalog, Column

OBJECT_LIMIT = 400  # characters of an object's name in a finding (a routine's arguments)
DETAIL_LIMIT = 600  # ... of what differs (two index or constraint definitions)

# Attributes that say how a database is used or tuned, not what Kea's schema is: never
# compared (next values of counters) or compared as warnings (storage tuning, comments, the
# sql_mode a routine was created under).
_IGNORED = frozenset({"auto_increment", "last_value"})
_TUNING = frozenset({"options", "create_options", "comment", "sql_mode"})
_BODY = "body_hash"
_UNESCAPED = "body_hash_unescaped"  # catalog_mysql.UNESCAPED, without importing the reader
_NBE_BODY = (
    "Kea's body, created under NO_BACKSLASH_ESCAPES, which kept the backslashes of its "
    "string literals as text (Kea's JSON paths '\\$[' then match nothing, so its client "
    "class lease counting and limits do not work): re-create Kea's routines without that "
    "sql_mode")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    kind: str  # missing | changed | extra
    object: str  # "table lease4 index lease4_by_hwaddr", "routine function f(...)", ...
    detail: str = ""

    def line(self) -> str:
        detail = f": {shown(self.detail, DETAIL_LIMIT)}" if self.detail else ""
        return f"{self.kind} {shown(self.object, OBJECT_LIMIT)}{detail}"

    def to_json(self) -> dict[str, str]:
        # Server text (names, definitions): printable, and bounded like every other value.
        return {"severity": self.severity.value, "kind": self.kind,
                "object": shown(self.object, OBJECT_LIMIT),
                "detail": shown(self.detail, DETAIL_LIMIT)}


# Where the expectation came from (JSON's ``expected``).
FROM_SCRATCH = "scratch"  # built by kea-db's revisions on this server, then removed
FROM_RECORD = "record"  # kea-db's record for the server's flavour (MySQL, Kea's grant)


@dataclass(frozen=True)
class Comparison:
    findings: tuple[Finding, ...]
    kea_bodies: int  # routine/trigger bodies recognised as Kea's own text
    own_bodies: int  # ... as kea-db's
    source: str = FROM_SCRATCH

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]


@dataclass(frozen=True)
class VerifyResult:
    access: DbAccess
    verdict: str  # CLEAN | DRIFT | UNVERIFIED | EMPTY | FOREIGN | UNREACHABLE | DENIED
    found: Schema | None
    detail: str
    exit_code: ExitCode
    comparison: Comparison | None = None
    seconds: float = 0.0
    node: Node | None = None  # the server's role, when a session was opened

    def to_json(self) -> dict[str, Any]:
        comparison = self.comparison
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "schema": str(self.found) if self.found else None,
            **access_json(self.access),
            "detail": self.detail,
            "exit_code": int(self.exit_code),
            "errors": [f.to_json() for f in comparison.errors] if comparison else [],
            "warnings": [f.to_json() for f in comparison.warnings] if comparison else [],
            "bodies": ({"kea": comparison.kea_bodies, "kea-db": comparison.own_bodies}
                       if comparison else None),
            "expected": comparison.source if comparison else None,
            "seconds": round(self.seconds, 3),
            "node": self.node.to_json() if self.node else None,
        }
        if self.access.path:
            out["path"], out["role"] = self.access.path, self.access.role
        return out


# -- a kea-db session as the DBAPI connection the catalog readers take --------------------


class _Cursor:
    def __init__(self, session: Session, backend_type: str) -> None:
        self.session, self.backend = session, backend_for(backend_type)
        self.rows: list[tuple[str | None, ...]] = []

    def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        values = [self.backend.sql_literal(str(v)) for v in params]
        if values:
            sql = sql.replace("%s", "{}").format(*values)
        self.rows = self.session.query(sql)

    def fetchall(self) -> list[tuple[str | None, ...]]:
        return self.rows

    def close(self) -> None:
        self.rows = []


class SessionConnection:
    """What :func:`keadb_cli.schema.catalog.read_catalog` needs of a connection (cursors
    with ``%s`` parameters), over a kea-db session whose rows are text."""

    def __init__(self, session: Session, backend_type: str) -> None:
        self.session, self.backend_type = session, backend_type

    def cursor(self) -> _Cursor:
        return _Cursor(self.session, self.backend_type)


# -- Kea's own bodies ---------------------------------------------------------------------


@cache
def _kea_bodies() -> dict[str, dict[str, dict[str, list[str]]]]:
    text = resources.files("keadb_cli.schema").joinpath("kea_bodies.json").read_text("utf-8")
    data: dict[str, dict[str, dict[str, list[str]]]] = json.loads(text)
    return data


def flavour(plan: ConnectPlan, session: Session) -> str:
    """``postgresql``, ``mariadb`` or ``mysql`` (Oracle MySQL): Kea's bodies are recorded
    per server flavour."""
    return plan.backend.flavour(session)


def kea_body(flavour_name: str, key: str, digest: str, schema: Schema,
             bodies: dict[str, dict[str, dict[str, list[str]]]] | None = None) -> str | None:
    """``"yes"`` when ``digest`` is a body Kea's scripts give ``key`` at ``schema``; the
    schema versions it belongs to when it is Kea's body of other versions; None when Kea
    never had it. A body recorded at versions either side of ``schema`` counts as Kea's;
    so does, for a schema no Kea release expects (a development step), a body of the
    nearest recorded versions either side. ``bodies``: the record (default: the file's)."""
    data = (_kea_bodies() if bodies is None else bodies).get(flavour_name, {})
    versions = data.get(key, {}).get(digest)
    if not versions:
        return None
    want = f"{schema.version}.{schema.minor}"
    if want in versions:
        return "yes"
    # Kea re-creates a routine only in a step that changes it: a body recorded below and
    # above ``schema`` (a 2.2 body kept through kea-admin's upgrades) is Kea's in between.
    seen = [Schema(*map(int, v.split("."))) for v in versions]
    if min(seen) < schema < max(seen):
        return "yes"
    recorded = sorted({Schema(*map(int, v.split("."))) for hashes in data.values()
                       for vs in hashes.values() for v in vs})
    if schema not in recorded:
        below = [s for s in recorded if s < schema]
        above = [s for s in recorded if s > schema]
        near = {f"{s.version}.{s.minor}" for s in (below[-1:] + above[:1])}
        if near & set(versions):
            return "yes"
    return ", ".join(versions)


# -- the expectation ----------------------------------------------------------------------


def _read(session: Session, plan: ConnectPlan) -> Catalog:
    return plan.backend.read_catalog(SessionConnection(session, plan.backend.type),
                                     row_tables=())


def _scratch(session: Session, plan: ConnectPlan, schema: Schema,
             read: Callable[[], Catalog]) -> Catalog:
    """Build Kea's schema ``schema`` with kea-db's revisions in a scratch namespace of
    this server, call ``read`` there, and remove the namespace again.

    Raises:
        CannotVerify: no revision builds ``schema`` (UNSUPPORTED_RELEASE), or the user may
            not create the scratch namespace (PRIVILEGES).
        KeaDbError: the session failed.
    """
    from keadb_cli.schema import scripts

    revision = scripts.known_schemas(plan.backend.type).get((schema.version, schema.minor))
    if revision is None:
        raise CannotVerify(f"kea-db has no revision that builds {plan.backend.display} "
                           f"schema {schema}: it cannot say what that schema should hold",
                           exit_code=ExitCode.UNSUPPORTED_RELEASE)
    return plan.backend.build_scratch(session, scripts.rendered(plan.backend.type, revision),
                                      read)


# -- comparing ------------------------------------------------------------------------------


def _order_of(columns: str, keep: set[str]) -> str:
    return ", ".join(c for c in columns.split(", ") if c in keep)


def _flat(catalog: Catalog, namespace: str) -> dict[str, dict[str, str]]:
    """The catalog's objects; PostgreSQL's definitions name the schema (``public.t``),
    which is left out so that the scratch schema compares with the live one."""
    from keadb_cli.schema.catalog import _flatten

    flat = _flatten(catalog)
    if not namespace:
        return flat
    for pattern in (f'"{namespace}".', f"{namespace}."):
        flat = {key: {a: v.replace(pattern, "") for a, v in attrs.items()}
                for key, attrs in flat.items()}
    return flat


# What MySQL's explicit_defaults_for_timestamp decides for a TIMESTAMP column Kea declares
# without NULL / NOT NULL or without a default: OFF (MariaDB before 10.10) makes it NOT NULL
# and gives the table's first one DEFAULT current_timestamp() ON UPDATE current_timestamp().
# A column keeps what it got when it was built: a database built under OFF and verified on
# a server with ON (an in-place server upgrade), or the other way round, differs in those
# attributes only. That is a warning; any other difference stays an error.
_TIMESTAMP_SETTING = frozenset({"nullable", "default", "extra"})


def _timestamp_setting(w: dict[str, str], h: dict[str, str]) -> str | None:
    """How ``h`` (live) differs from ``w`` (expected) when the difference is only what
    explicit_defaults_for_timestamp made of one TIMESTAMP column; None otherwise."""
    if w.get("type", "").lower() != "'timestamp'" or h.get("type") != w.get("type"):
        return None
    differ = {a for a in w.keys() | h.keys() if w.get(a) != h.get(a)}
    if not differ or not differ <= _TIMESTAMP_SETTING:
        return None

    def off_made(attrs: dict[str, str]) -> bool:
        return (attrs.get("nullable") == "False"
                and "current_timestamp" in (attrs.get("default") or "").lower())

    if "on update" in h.get("extra", "").lower() + w.get("extra", "").lower() or any(
            off_made(a) for a in (w, h)):
        was = "OFF" if off_made(h) or "on update" in h.get("extra", "").lower() else "ON"
        return (f"built while explicit_defaults_for_timestamp was {was}: "
                + "; ".join(f"{a} is {h.get(a, '<absent>')}, Kea's schema here has "
                            f"{w.get(a, '<absent>')}" for a in sorted(differ)))
    return None


def compare(expected: Catalog, live: Catalog, flavour_name: str, schema: Schema,
            namespaces: tuple[str, str] = ("", "")) -> Comparison:
    """Every way ``live`` differs from ``expected`` (see the module's docstring).
    ``namespaces``: the PostgreSQL schemas the two were read from."""
    return compare_flat(_flat(expected, namespaces[0]), _flat(live, namespaces[1]),
                        flavour_name, schema)


def compare_flat(want: dict[str, dict[str, str]], have: dict[str, dict[str, str]],
                 flavour_name: str, schema: Schema) -> Comparison:
    """:func:`compare` on flattened catalogs (object key -> attribute -> value)."""
    findings: list[Finding] = []
    kea_bodies = own_bodies = 0
    whole: list[str] = []  # a missing or extra table: its columns, keys... go with it
    for key in sorted(want.keys() | have.keys()):
        if any(key.startswith(parent + " ") for parent in whole):
            continue
        if key not in have:
            findings.append(Finding(Severity.ERROR, "missing", key, "Kea's schema has it"))
            whole.append(key)
            continue
        if key not in want:
            findings.append(Finding(Severity.WARNING, "extra", key, "not part of Kea's schema"))
            whole.append(key)
            continue
        w, h = dict(want[key]), dict(have[key])
        if "column order" in w:  # the operator's own columns do not count
            kea_columns = set(w["column order"].split(", "))
            h["column order"] = _order_of(h.get("column order", ""), kea_columns)
        trigger_text = key.startswith("trigger ") and "definition" in w
        if trigger_text and w["definition"] == h.get("definition"):
            h[_BODY] = w[_BODY]  # PostgreSQL: the server's text, equal but for the schema
        unescaped = h.pop(_UNESCAPED, None)
        w.pop(_UNESCAPED, None)
        if _BODY in w and _BODY in h:
            if w[_BODY] == h[_BODY]:
                own_bodies += 1
            else:
                known = kea_body(flavour_name, key, h[_BODY], schema)
                if known != "yes" and unescaped is not None and (
                        unescaped == w[_BODY]
                        or kea_body(flavour_name, key, unescaped, schema) == "yes"):
                    kea_bodies += 1
                    findings.append(Finding(Severity.WARNING, "changed", key, _NBE_BODY))
                elif known == "yes":
                    kea_bodies += 1
                else:
                    detail = (f"the body is Kea's of schema {known}, not of {schema}" if known
                              else "the body is neither Kea's nor kea-db's")
                    findings.append(Finding(Severity.ERROR, "changed", key, detail))
            if trigger_text:  # PostgreSQL's trigger definition is its body: judged above
                w.pop("definition"), h.pop("definition", None)
            del w[_BODY], h[_BODY]
        setting = _timestamp_setting(w, h) if " column " in key else None
        if setting is not None:
            findings.append(Finding(Severity.WARNING, "changed", key, setting))
            continue
        for attr in sorted(w.keys() | h.keys()):
            if attr in _IGNORED:
                continue
            a, b = w.get(attr, "<absent>"), h.get(attr, "<absent>")
            if a != b:
                severity = Severity.WARNING if attr in _TUNING else Severity.ERROR
                findings.append(Finding(severity, "changed", key,
                                        f"{attr} is {b}, Kea's schema has {a}"))
    return Comparison(tuple(findings), kea_bodies, own_bodies)


def missing_rows(session: Session, plan: ConnectPlan, live: Catalog,
                 wanted: Mapping[str, tuple[Sequence[Column], set[tuple[Any, ...]]]],
                 ) -> list[Finding]:
    """Rows of Kea's lookup tables (those init fills) the live database lacks. ``wanted``:
    per table, the columns to read the rows with and the rows Kea's schema has."""
    from keadb_cli.schema.catalog import read_table_rows

    findings = []
    live_tables = {t.name: t for t in live.tables}
    for table, (columns, rows) in sorted(wanted.items()):
        if not rows or table == "schema_version":
            continue
        have = live_tables.get(table)
        if have is None or not {c.name for c in columns} <= {c.name for c in have.columns}:
            continue  # reported as a missing table or column already
        got = read_table_rows(SessionConnection(session, plan.backend.type),
                              plan.backend.quote_identifier, table, columns)
        for row in sorted(rows - set(got.rows), key=repr):
            findings.append(Finding(Severity.ERROR, "missing", f"rows {table} row",
                                    json.dumps(dict(zip(got.columns, row, strict=True)))))
    return findings


def _expected_rows(session: Session, plan: ConnectPlan,
                   catalog: Catalog) -> dict[str, set[tuple[Any, ...]]]:
    from keadb_cli.schema.catalog import read_table_rows

    rows = {}
    for table in catalog.tables:
        got = read_table_rows(SessionConnection(session, plan.backend.type),
                              plan.backend.quote_identifier, table.name, table.columns)
        if got.rows:
            rows[table.name] = set(got.rows)
    return rows


def _namespace(session: Session, plan: ConnectPlan) -> str:
    return plan.backend.namespace(session)


def verify_session(session: Session, plan: ConnectPlan, schema: Schema) -> Comparison:
    """Compare the database of an open session with Kea's schema ``schema``.

    Raises:
        CannotVerify, KeaDbError: see :func:`expected_catalog`.
    """
    lookup: dict[str, set[tuple[Any, ...]]] = {}
    namespaces: list[str] = []

    def read_expected() -> Catalog:
        catalog = _read(session, plan)
        lookup.update(_expected_rows(session, plan, catalog))
        namespaces.append(_namespace(session, plan))
        return catalog

    try:
        expected = _scratch(session, plan, schema, read_expected)
    except CannotVerify as err:
        if err.exit_code is not ExitCode.PRIVILEGES or not plan.backend.verify_from_record:
            raise
        return _verify_recorded(session, plan, schema, err)
    live = _read(session, plan)
    namespaces.append(_namespace(session, plan))
    comparison = compare(expected, live, flavour(plan, session), schema,
                         (namespaces[0], namespaces[1]))
    rows = missing_rows(session, plan, live, {t.name: (t.columns, lookup[t.name])
                                              for t in expected.tables if t.name in lookup})
    return Comparison(comparison.findings + tuple(rows), comparison.kea_bodies,
                      comparison.own_bodies)


def _verify_recorded(session: Session, plan: ConnectPlan, schema: Schema,
                     why: CannotVerify) -> Comparison:
    """MySQL, when no scratch database can be built (Kea's documented grant): compare with
    kea-db's record of the schema for the server's flavour, both sides normalised
    (:mod:`keadb_cli.schema.expected`)."""
    from keadb_cli.schema import expected as record

    name = flavour(plan, session)
    version = f"{schema.version}.{schema.minor}"

    (mode,), = session.query("SELECT @@GLOBAL.sql_mode")
    want = record.expected_flat(name, version, plan.backend.build_sql_mode(mode or ""))
    if want is None:
        raise CannotVerify(f"{why.message}; kea-db has no record of schema {schema} for "
                           f"{name} to compare with instead", exit_code=why.exit_code)
    live = _read(session, plan)
    comparison = compare_flat(want, record.normalise(_flat(live, "")), name, schema)
    # The record names each lookup table's columns; they are read as the live table has
    # them (a table lacking one is reported as a changed table already).
    tables = {t.name: {c.name: c for c in t.columns} for t in live.tables}
    wanted = {table: ([tables[table][c] for c in columns], rows)
              for table, (columns, rows) in record.expected_rows(name, version).items()
              if table in tables and set(columns) <= set(tables[table])}
    rows = missing_rows(session, plan, live, wanted)
    return Comparison(comparison.findings + tuple(rows), comparison.kea_bodies,
                      comparison.own_bodies, FROM_RECORD)


# -- one backend --------------------------------------------------------------------------


def verify_one(access: DbAccess, env: dict[str, str] | None = None) -> VerifyResult:
    """Verify one backend against the schema its ``schema_version`` records. Raises only
    for unusable settings (SettingsError)."""
    started = time.monotonic()
    found: Schema | None = None
    nodes: list[Node] = []

    def result(verdict: str, code: ExitCode, detail: str,
               comparison: Comparison | None = None) -> VerifyResult:
        return VerifyResult(access, verdict, found, detail, code, comparison,
                            time.monotonic() - started, nodes[0] if nodes else None)

    plan = plan_for(access, env)
    try:
        session = open_session(plan)
    except DeniedError as err:
        return result("DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return result("UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    plan = plan.answered_by(session.answered)  # a host list: messages name the host
    try:
        nodes.append(plan.backend.read_node(session))
        try:
            found = kea_schema(*read_state(session, plan), plan.backend.type,
                               nothing="nothing to verify", known=False)
        except Refusal as refusal:
            return result(refusal.verdict, refusal.code, refusal.detail)
        comparison = verify_session(session, plan, found)
        if comparison.errors:
            return result("DRIFT", ExitCode.DRIFT,
                          f"{len(comparison.errors)} difference(s) from Kea's schema {found}",
                          comparison)
        extra = (f"; {len(comparison.warnings)} warning(s)" if comparison.warnings else "")
        return result("CLEAN", ExitCode.OK, f"the database is Kea's schema {found}{extra}",
                      comparison)
    except CannotVerify as err:
        node = nodes[0] if nodes else None
        if node is not None and not node.writable and err.exit_code is ExitCode.PRIVILEGES:
            # A standby or read-only server cannot hold even a rolled-back scratch schema:
            # no grant helps there. Its schema is the primary's (replayed): verify that.
            return result("UNVERIFIED", ExitCode.NODE_NOT_WRITABLE,
                          f"{plan.backend.display} {plan.where} {node.write_problem()}: verify "
                          "builds the expected schema in a scratch namespace, which this "
                          "server cannot hold; verify on the primary, whose schema it "
                          "replays")
        return result("UNVERIFIED", err.exit_code, err.message)
    except KeaDbError as err:
        return result("UNREACHABLE", err.exit_code if err.exit_code is not ExitCode.INTERNAL
                      else ExitCode.UNREACHABLE, err.message)
    finally:
        with contextlib.suppress(Exception):
            session.close()


def verify_all(accesses: list[DbAccess]) -> list[VerifyResult]:
    """verify_one for each backend, one after the other."""
    return [verify_one(a) for a in accesses]
