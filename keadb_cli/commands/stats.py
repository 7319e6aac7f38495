"""Kea's lease statistics tables against a recount from the lease tables.

Kea keeps counters of its leases in statistics tables, maintained by triggers on
``lease4`` and ``lease6``: per subnet and state (``lease4_stat``, ``lease6_stat``), per
pool (``lease4_pool_stat``, ``lease6_pool_stat``, schema 18.0 MySQL / 17.0 PostgreSQL on)
and per client class (``lease4_stat_by_client_class``, ``lease6_stat_by_client_class``,
for lease limits). :func:`check_one` compares every such table the database has with a
recount made by the rules of those triggers; :func:`recount_one` rewrites the tables
``kea-admin stats-recount`` rewrites, with the rows it would leave.

The rules (read from Kea's schema scripts and kea-admin 2.2.0, 2.6.3 and 3.0.4):

* a subnet or pool counter counts leases in state 0 (assigned) and 1 (declined); from
  schema 29.0 (Kea 2.7.7) ``lease6_stat`` counts state 4 (registered) as well, the pool
  counters never do;
* a class counter counts leases in state 0 only, once per element of the
  ``ISC.client-classes`` array of the lease's ``user_context`` (and per lease type on
  IPv6);
* a trigger leaves a counter at 0 when its last lease goes, a recount has no row for it:
  the two are equal;
* ``stats-recount`` deletes and refills the subnet counters and, where the schema has
  them, the pool counters; it leaves the class counters alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import DeniedError, ExitCode, KeaDbError, QueryError, Refusal
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema, releases_for_schema
from keadb_cli.schema.state import access_json, kea_schema, read_state
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.node import Node
    from keadb_cli.db.session import Session

# The schema (the same number on both backends) from which lease6_stat counts state 4.
REGISTERED_FROM = Schema(29, 0)
STATE_NAMES = {0: "assigned", 1: "declined", 2: "expired-reclaimed", 3: "released",
               4: "registered"}
LEASE_TYPES = {0: "IA_NA", 1: "IA_TA", 2: "IA_PD"}
INSERT_BATCH = 500  # rows per INSERT statement of a recount

Key = tuple[int | str, ...]


@dataclass(frozen=True)
class StatTable:
    """One statistics table: its key columns, the lease table it counts, and how."""

    name: str
    keys: tuple[str, ...]  # key columns, as in the table and the lease table
    lease_table: str
    by_class: bool = False  # counted per element of user_context's ISC.client-classes
    recounted: bool = True  # rewritten by kea-admin stats-recount

    def states(self, schema: Schema) -> tuple[int, ...]:
        """The lease states this table counts at ``schema``."""
        if self.by_class:
            return (0,)
        if self.name == "lease6_stat" and schema >= REGISTERED_FROM:
            return (0, 1, 4)
        return (0, 1)


TABLES: tuple[StatTable, ...] = (
    StatTable("lease4_stat", ("subnet_id", "state"), "lease4"),
    StatTable("lease6_stat", ("subnet_id", "lease_type", "state"), "lease6"),
    StatTable("lease4_pool_stat", ("subnet_id", "pool_id", "state"), "lease4"),
    StatTable("lease6_pool_stat", ("subnet_id", "pool_id", "lease_type", "state"), "lease6"),
    StatTable("lease4_stat_by_client_class", ("client_class",), "lease4", by_class=True,
              recounted=False),
    StatTable("lease6_stat_by_client_class", ("client_class", "lease_type"), "lease6",
              by_class=True, recounted=False),
)


@dataclass(frozen=True)
class Difference:
    """One counter that is not what the lease table says."""

    table: str
    keys: tuple[str, ...]
    key: Key
    stored: int | None  # None: no row (or a NULL counter, see ``row``)
    counted: int
    row: bool  # the table has a row for the key

    def where(self) -> str:
        """"subnet 7 pool 1 IA_PD declined", "class 'gold' IA_NA"."""
        words = []
        for column, value in zip(self.keys, self.key, strict=True):
            if column == "subnet_id":
                words.append(f"subnet {value}")
            elif column == "pool_id":
                words.append(f"pool {value}")
            elif column == "lease_type":
                words.append(LEASE_TYPES.get(int(value), f"lease type {value}"))
            elif column == "state":
                words.append(STATE_NAMES.get(int(value), f"state {value}"))
            else:
                words.append(f"class '{shown(str(value), 128)}'")
        return " ".join(words)

    def stored_text(self) -> str:
        if not self.row:
            return "no row"
        return "NULL" if self.stored is None else str(self.stored)

    def line(self) -> str:
        return (f"{self.table} {self.where()}: table {self.stored_text()}, "
                f"recount {self.counted}")

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, **dict(zip(self.keys, self.key, strict=True)),
                "stored": self.stored, "row": self.row, "recount": self.counted}


@dataclass(frozen=True)
class TableReport:
    """What one table holds against the recount, and (recount) what rewriting it does."""

    name: str
    rows: int  # rows in the table now
    recount_rows: int  # rows the recount has (counters above 0)
    differences: int  # counters that differ (a row at 0 and no row are equal)
    rewritten: bool = False  # recount: the table is one kea-admin stats-recount rewrites
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"table": self.name, "rows": self.rows,
                               "recount_rows": self.recount_rows,
                               "differences": self.differences}
        if self.rewritten:
            out.update(added=self.added, changed=self.changed, removed=self.removed,
                       unchanged=self.unchanged)
        return out


@dataclass(frozen=True)
class StatsResult:
    command: str  # "check", "recount", "plan"
    access: DbAccess
    verdict: str  # CONSISTENT, MISMATCH, RECOUNTED, PLANNED, UNCHANGED, or a refusal's
    exit_code: ExitCode
    detail: str
    schema: Schema | None = None
    tables: tuple[TableReport, ...] = ()
    differences: tuple[Difference, ...] = ()
    seconds: float = 0.0
    node: Node | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "verdict": self.verdict,
            "exit_code": int(self.exit_code),
            **access_json(self.access),
            "schema": str(self.schema) if self.schema else None,
            "detail": self.detail,
            "tables": [t.to_json() for t in self.tables],
            "differences": [d.to_json() for d in self.differences],
            "seconds": round(self.seconds, 3),
            "node": self.node.to_json() if self.node else None,
        }


@dataclass
class _Counts:
    """A table's rows and its recount, read in one transaction."""

    table: StatTable
    stored: dict[Key, int | None] = field(default_factory=dict)
    counted: dict[Key, int] = field(default_factory=dict)

    def differences(self) -> list[Difference]:
        out = []
        for key in sorted(set(self.stored) | set(self.counted), key=_sort_key):
            row = key in self.stored
            stored = self.stored.get(key)
            counted = self.counted.get(key, 0)
            if (stored if row else 0) != counted:
                out.append(Difference(self.table.name, self.table.keys, key, stored, counted,
                                      row))
        return out

    def report(self, *, rewrite: bool = False) -> TableReport:
        differences = len(self.differences())
        if not rewrite:
            return TableReport(self.table.name, len(self.stored), len(self.counted),
                               differences)
        old, new = self.stored, self.counted
        common = set(old) & set(new)
        changed = sum(1 for k in common if old[k] != new[k])
        return TableReport(self.table.name, len(old), len(new), differences, rewritten=True,
                           added=len(set(new) - set(old)), changed=changed,
                           removed=len(set(old) - set(new)), unchanged=len(common) - changed)


def _sort_key(key: Key) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, v) if isinstance(v, int) else (1, v) for v in key)


def _key(table: StatTable, values: Sequence[str | None]) -> Key:
    return tuple(
        (v or "") if column == "client_class" else int(v or 0)
        for column, v in zip(table.keys, values, strict=True)
    )


def _present(session: Session, plan: ConnectPlan) -> tuple[StatTable, ...]:
    """The statistics tables this database has."""
    names = {(r[0] or "").lower() for r in session.query(plan.backend.tables_sql)}
    return tuple(t for t in TABLES if t.name in names)


def _read(session: Session, plan: ConnectPlan, table: StatTable, schema: Schema, *,
          lock: bool = False) -> _Counts:
    """The table's rows and the recount, in the session's open transaction (``lock``: the
    recount's reads hold the lease rows they count until the transaction ends)."""
    backend = plan.backend
    counts = _Counts(table)
    columns = ", ".join(table.keys)
    for row in session.query(f"SELECT {columns}, leases FROM {table.name}"):
        value = row[-1]
        counts.stored[_key(table, row[:-1])] = None if value is None else int(value)
    states = ", ".join(str(s) for s in table.states(schema))
    if table.by_class:
        sql = backend.class_count_sql[table.lease_table].format(states=states)
    else:
        sql = (f"SELECT {columns}, COUNT(*) FROM {table.lease_table} "
               f"WHERE state IN ({states}) GROUP BY {columns}")
        if lock:
            sql += backend.stats_read_lock
    for row in session.query(sql):
        key = _key(table, row[:-1])
        counts.counted[key] = counts.counted.get(key, 0) + int(row[-1] or 0)
    return counts


class _Run:
    """One command on one backend: the session, the node, the result it ends with."""

    def __init__(self, command: str, access: DbAccess) -> None:
        self.command, self.access = command, access
        self.started = time.monotonic()
        self.node: Node | None = None
        self.schema: Schema | None = None

    def result(self, verdict: str, code: ExitCode, detail: str,
               tables: Sequence[TableReport] = (),
               differences: Sequence[Difference] = ()) -> StatsResult:
        return StatsResult(self.command, self.access, verdict, code, detail, self.schema,
                           tuple(tables), tuple(differences), time.monotonic() - self.started,
                           self.node)


def _kea_schema(session: Session, plan: ConnectPlan) -> Schema:
    """The database's Kea schema version (any version: an unknown release is refused or
    read by the caller).

    Raises:
        Refusal: EMPTY or FOREIGN (not a Kea schema).
    """
    return kea_schema(*read_state(session, plan), plan.backend.type,
                      nothing="no statistics to check", known=False)


def check_one(access: DbAccess, *, env: dict[str, str] | None = None) -> StatsResult:
    """Compare every statistics table of one backend with a recount, in one read-only
    transaction. Raises only for unusable settings (SettingsError)."""
    run = _Run("check", access)
    plan = plan_for(access, env)
    try:
        session = open_session(plan)
    except DeniedError as err:
        return run.result("DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return run.result("UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    try:
        run.node = plan.backend.read_node(session)
        run.schema = schema = _kea_schema(session, plan)
        session.query(plan.backend.stats_snapshot_begin)
        try:
            present = _present(session, plan)
            counts = [_read(session, plan, t, schema) for t in present]
        finally:
            if not session.closed:
                session.query("ROLLBACK")
        if not present:
            return run.result("FOREIGN", ExitCode.FOREIGN,
                              f"schema {schema} has no lease statistics tables")
        differences = [d for c in counts for d in c.differences()]
        reports = [c.report() for c in counts]
        names = ", ".join(t.name for t in present)
        if differences:
            tables = sorted({d.table for d in differences})
            return run.result("MISMATCH", ExitCode.STATS_MISMATCH,
                              f"{len(differences)} counter(s) differ from a recount of the "
                              f"leases in {', '.join(tables)}", reports, differences)
        return run.result("CONSISTENT", ExitCode.OK,
                          f"every counter matches a recount of the leases ({names})", reports)
    except Refusal as refusal:
        return run.result(refusal.verdict, refusal.code, refusal.detail)
    except QueryError as err:
        return run.result("DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return run.result("UNREACHABLE", err.exit_code if err.exit_code is not ExitCode.INTERNAL
                          else ExitCode.UNREACHABLE, err.message)
    finally:
        with contextlib.suppress(Exception):
            session.close()


def recount_one(access: DbAccess, *, plan_only: bool = False,
                env: dict[str, str] | None = None) -> StatsResult:
    """Rewrite the tables ``kea-admin stats-recount`` rewrites, in one transaction, with
    the rows it leaves; with ``plan_only`` say what would change and change nothing.
    Raises only for unusable settings (SettingsError)."""
    run = _Run("plan" if plan_only else "recount", access)
    plan = plan_for(access, env)
    if access.readonly and not plan_only:
        return run.result("REFUSED", ExitCode.READONLY,
                          "the backend is readonly for Kea (readonly: true): recount does "
                          "not write to it")
    try:
        session = open_session(plan)
    except DeniedError as err:
        return run.result("DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return run.result("UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    backend = plan.backend
    try:
        run.node = node = backend.read_node(session)
        run.schema = schema = _kea_schema(session, plan)
        releases = releases_for_schema(backend.type, schema)
        if not releases:
            return run.result("REFUSED", ExitCode.UNSUPPORTED_RELEASE,
                              f"schema {schema} is not the schema of any Kea release kea-db "
                              "knows (see `kea-db versions`): which stats-recount applies is "
                              "unknown")
        if not plan_only and not node.writable:
            return run.result("REFUSED", ExitCode.NODE_NOT_WRITABLE,
                              f"{backend.display} {plan.where} {node.write_problem(ddl=False)}"
                              ": recount on the primary")
        rules = f"the rules of Kea {releases[0]}" + (
            f" to {releases[-1]}" if len(releases) > 1 else "")
        session.query(backend.stats_snapshot_begin if plan_only else backend.stats_write_begin)
        committed = False
        try:
            present = _present(session, plan)
            rewritten = [t for t in present if t.recounted]
            if not plan_only:
                for sql in backend.stats_lock_sql(rewritten):
                    session.query(sql)
            counts = [_read(session, plan, t, schema, lock=not plan_only) for t in present]
            if not rewritten:
                return run.result("FOREIGN", ExitCode.FOREIGN,
                                  f"schema {schema} has no lease statistics tables")
            reports = [c.report(rewrite=c.table.recounted) for c in counts]
            changes = sum(r.added + r.changed + r.removed for r in reports)
            if not plan_only and changes:
                for c in counts:
                    if c.table.recounted:
                        _rewrite(session, c)
                session.query("COMMIT")
                committed = True
        finally:
            if not committed and not session.closed:
                session.query("ROLLBACK")
        summary = "; ".join(
            f"{r.name}: +{r.added} ~{r.changed} -{r.removed}" for r in reports if r.rewritten)
        kept = [r.name for r in reports if not r.rewritten]
        left = (f"; {', '.join(kept)} left as they are (as kea-admin stats-recount does)"
                if kept else "")
        if plan_only:
            would = (f"would rewrite by {rules} ({summary})" if changes else
                     f"every rewritten counter already matches ({rules}): recount would "
                     "change no row")
            return run.result("PLANNED", ExitCode.OK, f"{would}{left}; nothing changed",
                              reports)
        if not changes:
            return run.result("UNCHANGED", ExitCode.OK,
                              f"every rewritten counter already matches ({rules}): nothing "
                              f"to do{left}", reports)
        return run.result("RECOUNTED", ExitCode.OK,
                          f"rewrote by {rules} in one transaction ({summary}){left}", reports)
    except Refusal as refusal:
        return run.result(refusal.verdict, refusal.code, refusal.detail)
    except QueryError as err:
        return run.result("DENIED", ExitCode.DENIED,
                          f"{err.message} (nothing changed: the transaction was rolled back)")
    except KeaDbError as err:
        return run.result("UNREACHABLE", err.exit_code if err.exit_code is not ExitCode.INTERNAL
                          else ExitCode.UNREACHABLE, err.message)
    finally:
        with contextlib.suppress(Exception):
            session.close()


def _rewrite(session: Session, counts: _Counts,
             text: Callable[[str], str] | None = None) -> None:
    """Replace every row of the table with the recount (its keys are integers; a client
    class is a string, spelled by ``text``)."""
    table = counts.table
    session.query(f"DELETE FROM {table.name}")
    rows = sorted(counts.counted.items(), key=lambda kv: _sort_key(kv[0]))
    columns = ", ".join((*table.keys, "leases"))

    def spelled(value: int | str) -> str:
        if isinstance(value, str):
            if text is None:
                raise ValueError("a text key needs its literal")
            return text(value)
        return str(int(value))

    for start in range(0, len(rows), INSERT_BATCH):
        values = ", ".join(
            "(" + ", ".join(spelled(v) for v in (*key, leases)) + ")"
            for key, leases in rows[start:start + INSERT_BATCH]
        )
        session.query(f"INSERT INTO {table.name} ({columns}) VALUES {values}")


def recount_in_transaction(session: Session, plan: ConnectPlan,
                           schema: Schema) -> list[TableReport]:
    """Rewrite every statistics table the database has, the client-class counters too,
    with the recount, in the caller's open transaction; only tables that differ are
    written. For a writer that kept Kea's triggers from counting its rows (kea-db copy)."""
    reports = []
    for table in _present(session, plan):
        counts = _read(session, plan, table, schema, lock=True)
        report = counts.report(rewrite=True)
        if report.differences:
            _rewrite(session, counts, plan.backend.sql_literal)
        reports.append(report)
    return reports


def check_all(accesses: Sequence[DbAccess]) -> list[StatsResult]:
    return [check_one(a) for a in accesses]


def recount_all(accesses: Sequence[DbAccess], *, plan_only: bool) -> list[StatsResult]:
    return [recount_one(a, plan_only=plan_only) for a in accesses]
