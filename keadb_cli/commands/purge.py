"""``kea-db purge``: delete old config-backend audit entries and forensic ``logs`` rows.

Nothing in Kea ever deletes them. What goes, per database:

- **Audit** (``dhcp4_audit`` / ``dhcp4_audit_revision`` and the ``dhcp6_`` pair). An audit
  row (one change of one object, named by ``object_type`` and ``object_id``) is as old as
  its revision's ``modification_ts``. The *newest entry of an object* is its audit row with
  the highest ``id`` (the last one written; ids only grow). An audit row goes when its
  revision is older than the age and it is not the newest entry of its object; a revision
  goes when it is older than the age and holds no audit row any more (one that still holds
  an object's newest entry is kept whole, with that entry, however old). The foreign key
  from the audit rows to their revision has no ``ON DELETE`` action, so the audit rows go
  first, then the revisions they left empty.
- **Forensic logs** (``logs``, written by the legal log hook): rows whose ``timestamp`` is
  older than the age (a row without a timestamp is never older).

The age is counted back from the server's clock, once per run: every count and delete of a
run compares with the same moment. Everything is counted first (``--plan`` stops there);
rows then go in batches of at most ``batch`` rows, each one statement and so its own short
transaction, so locks are held briefly and Kea keeps writing meanwhile.

Nothing here prints; the CLI renders :class:`PurgeResult`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.preflight.fleet import DatabaseKey, database_key
from keadb_cli.db.backends.base import count_of
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import DeniedError, ExitCode, KeaDbError, Refusal
from keadb_cli.kea.access import DbAccess
from keadb_cli.schema.state import access_json, kea_schema, read_state

if TYPE_CHECKING:
    from keadb_cli.db.backends.base import Backend
    from keadb_cli.kea.releases import Schema

DAY = 86400  # seconds
MIN_DAYS = 1.0
MAX_DAYS = 36525  # a century: older than any timestamp a Kea server wrote
DEFAULT_BATCH = 1000
FAMILIES = ("dhcp4", "dhcp6")
LOGS = "logs"


@dataclass(frozen=True)
class Options:
    audit_days: float | None = None
    logs_days: float | None = None
    plan_only: bool = False
    batch: int = DEFAULT_BATCH


def check_options(options: Options) -> None:
    """Refuse what purge cannot run with: no age at all, an age under one day, a batch
    under one row.

    Raises:
        KeaDbError: USAGE, one line.
    """
    if options.audit_days is None and options.logs_days is None:
        raise KeaDbError("give --audit-older-than DAYS, --logs-older-than DAYS or both",
                         exit_code=ExitCode.USAGE)
    for option, days in (("--audit-older-than", options.audit_days),
                         ("--logs-older-than", options.logs_days)):
        if days is not None and not days >= MIN_DAYS:  # NaN fails too
            raise KeaDbError(f"{option} {days:g}: purge keeps at least one day; give 1 or "
                             "more days", exit_code=ExitCode.USAGE)
        if days is not None and days > MAX_DAYS:  # and infinity
            raise KeaDbError(f"{option} {days:g}: give at most {MAX_DAYS} days (a century)",
                             exit_code=ExitCode.USAGE)
    if options.batch < 1:
        raise KeaDbError(f"--batch-size {options.batch}: give 1 or more rows",
                         exit_code=ExitCode.USAGE)


@dataclass(frozen=True)
class TableCount:
    """One table: rows older than its age, of which ``kept`` stay because they are (or
    hold) an object's newest entry; ``deleted`` is None under --plan."""

    table: str
    days: float
    older: int
    kept: int
    deleted: int | None = None
    batches: int = 0
    longest_batch: float = 0.0  # seconds of the slowest DELETE (the longest lock hold)

    @property
    def to_delete(self) -> int:
        return self.older - self.kept

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "older_than_days": self.days, "older": self.older,
                "to_delete": self.to_delete, "kept_newest": self.kept,
                "deleted": self.deleted, "batches": self.batches,
                "longest_batch_seconds": round(self.longest_batch, 3)}


@dataclass(frozen=True)
class PurgeResult:
    access: DbAccess
    verdict: str  # PURGED | PLAN | EMPTY | FOREIGN | NODE_NOT_WRITABLE | UNREACHABLE | DENIED
    exit_code: ExitCode
    detail: str
    found: Schema | None = None
    tables: tuple[TableCount, ...] = ()
    cutoff_epoch: dict[str, int] = field(default_factory=dict)  # audit/logs: the moment
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict, **access_json(self.access), "detail": self.detail,
            "schema": str(self.found) if self.found else None,
            "tables": [t.to_json() for t in self.tables],
            "cutoff": {k: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v))
                       for k, v in self.cutoff_epoch.items()},
            "seconds": round(self.seconds, 3),
        }
        if self.access.path:
            out["path"] = self.access.path
            out["role"] = self.access.role
        return out


def purge_all(accesses: Sequence[DbAccess], options: Options, *,
              env: dict[str, str] | None = None) -> list[PurgeResult]:
    """purge_one for each database, once per database however many entries name it.

    Raises:
        KeaDbError: USAGE for options purge refuses (:func:`check_options`).
    """
    check_options(options)
    seen: set[DatabaseKey] = set()
    results = []
    for access in accesses:
        key = database_key(access)
        if key in seen:
            continue
        seen.add(key)
        results.append(purge_one(access, options, env=env))
    return results


def purge_one(access: DbAccess, options: Options, *,
              env: dict[str, str] | None = None) -> PurgeResult:
    """Count, and unless ``options.plan_only`` delete, one database's old rows. Failures
    become results; only unusable settings raise (SettingsError)."""
    started = time.monotonic()
    plan = plan_for(access, env)
    try:
        session = open_session(plan)
    except DeniedError as err:
        return PurgeResult(access, "DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return PurgeResult(access, "UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    found: Schema | None = None
    try:
        node = plan.backend.read_node(session)
        found, reason, names = read_state(session, plan)
        _check_schema(session, plan.backend, found, reason, names, options)
        assert found is not None
        problem = node.write_problem(ddl=False)
        if problem and not options.plan_only:
            raise Refusal("NODE_NOT_WRITABLE", ExitCode.NODE_NOT_WRITABLE,
                          f"{plan.backend.display} {plan.where} {problem}: purge on the "
                          "primary")
        run = _Run(session, plan.backend, options)
        tables = run.count()
        if not options.plan_only:
            tables = run.delete(tables)
        verdict = "PLAN" if options.plan_only else "PURGED"
        gone = sum(t.to_delete if options.plan_only else (t.deleted or 0) for t in tables)
        kept = sum(t.kept for t in tables)
        detail = (f"{gone} row(s) {'to delete' if options.plan_only else 'deleted'}, "
                  f"{kept} old row(s) kept as the newest entry of their object")
        return PurgeResult(access, verdict, ExitCode.OK, detail, found, tuple(tables),
                           run.cutoffs, time.monotonic() - started)
    except Refusal as refusal:
        return PurgeResult(access, refusal.verdict, refusal.code, refusal.detail, found,
                           seconds=time.monotonic() - started)
    except KeaDbError as err:
        code = err.exit_code if err.exit_code is not ExitCode.INTERNAL else \
            ExitCode.UNREACHABLE
        verdict = "DENIED" if code is ExitCode.DENIED else "UNREACHABLE"
        return PurgeResult(access, verdict, code, err.message, found,
                           seconds=time.monotonic() - started)
    finally:
        with contextlib.suppress(Exception):
            session.close()


def wanted_tables(options: Options) -> list[str]:
    """The tables the options purge, audit before revision (the order rows go in)."""
    tables: list[str] = []
    if options.audit_days is not None:
        for family in FAMILIES:
            tables += [f"{family}_audit", f"{family}_audit_revision"]
    if options.logs_days is not None:
        tables.append(LOGS)
    return tables


def _check_schema(session: Session, backend: Backend, found: Schema | None, reason: str,
                  names: tuple[str, ...], options: Options) -> None:
    """Refuse a database that is not a Kea schema kea-db knows, or lacks a table to purge.

    Raises:
        Refusal: EMPTY or FOREIGN.
    """
    found = kea_schema(found, reason, names, backend.type, nothing="nothing was deleted")
    present = {(r[0] or "").lower() for r in session.query(backend.tables_sql)}
    missing = [t for t in wanted_tables(options) if t not in present]
    if missing:
        raise Refusal("FOREIGN", ExitCode.FOREIGN,
                      f"Kea schema {found} without table(s) {', '.join(missing)}: not Kea's "
                      "schema as kea-db knows it; nothing was deleted")


# -- the SQL both backends share ----------------------------------------------------------
# {a}: the audit table, {r}: its revision table, {cutoff}: the moment (backend SQL).

# The newest entry of each object: the highest audit id per (object_type, object_id).
_NEWEST = "SELECT MAX(n.id) FROM {a} n GROUP BY n.object_type, n.object_id"

_COUNT_AUDIT = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN a.id IN (" + _NEWEST + ") THEN 1 ELSE 0 END), 0) "
    "FROM {a} a JOIN {r} r ON r.id = a.revision_id WHERE r.modification_ts < {cutoff}"
)
_COUNT_REVISIONS = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM {a} k WHERE "
    "k.revision_id = r.id AND k.id IN (" + _NEWEST + ")) THEN 1 ELSE 0 END), 0) "
    "FROM {r} r WHERE r.modification_ts < {cutoff}"
)
_COUNT_LOGS = "SELECT COUNT(*), 0 FROM logs WHERE timestamp < {cutoff}"

# One batch: the ids first (both servers read them without locking), then a DELETE by id.
_AUDIT_BATCH = (
    "SELECT a.id FROM {a} a JOIN {r} r ON r.id = a.revision_id "
    "WHERE r.modification_ts < {cutoff} AND a.id NOT IN (" + _NEWEST + ") "
    "ORDER BY a.id LIMIT {limit}"
)
_REVISION_BATCH = (
    "SELECT r.id FROM {r} r WHERE r.modification_ts < {cutoff} "
    "AND NOT EXISTS (SELECT 1 FROM {a} a WHERE a.revision_id = r.id) ORDER BY r.id LIMIT {limit}"
)
_DELETE_AUDIT = "DELETE FROM {a} WHERE id IN ({ids})"
# Emptiness is asked again: a Kea server may have written to the revision since.
_DELETE_REVISIONS = (
    "DELETE FROM {r} WHERE id IN ({ids}) "
    "AND NOT EXISTS (SELECT 1 FROM {a} a WHERE a.revision_id = {r}.id)"
)


class _Run:
    """One database's purge: its cutoffs, read once from the server's clock."""

    def __init__(self, session: Session, backend: Backend, options: Options) -> None:
        self.session, self.backend, self.options = session, backend, options
        backend.purge_setup(session)
        now = count_of(session.query(backend.epoch_sql))
        self.cutoffs: dict[str, int] = {}
        if options.audit_days is not None:
            self.cutoffs["audit"] = now - int(options.audit_days * DAY)
        if options.logs_days is not None:
            self.cutoffs["logs"] = now - int(options.logs_days * DAY)

    def _sql(self, template: str, table: str, **extra: Any) -> str:
        family = table.split("_", 1)[0]
        kind = "logs" if table == LOGS else "audit"
        return template.format(a=f"{family}_audit", r=f"{family}_audit_revision",
                               cutoff=self.backend.moment_sql(self.cutoffs[kind]), **extra)

    def _days(self, table: str) -> float:
        days = self.options.logs_days if table == LOGS else self.options.audit_days
        assert days is not None
        return days

    def count(self) -> list[TableCount]:
        counts = []
        for table in wanted_tables(self.options):
            template = (_COUNT_LOGS if table == LOGS else
                        _COUNT_REVISIONS if table.endswith("_revision") else _COUNT_AUDIT)
            row = self.session.query(self._sql(template, table))
            older, kept = count_of(row), count_of([row[0][1:]])
            counts.append(TableCount(table, self._days(table), older, kept))
        return counts

    def delete(self, counts: list[TableCount]) -> list[TableCount]:
        done = []
        for count in counts:
            deleted, batches, longest = self._delete_table(count.table)
            done.append(TableCount(count.table, count.days, count.older, count.kept,
                                   deleted, batches, longest))
        return done

    def _delete_table(self, table: str) -> tuple[int, int, float]:
        """Delete ``table``'s rows batch by batch: (rows, batches, longest DELETE)."""
        limit = self.options.batch
        deleted = batches = 0
        longest = 0.0
        while True:
            if table == LOGS:
                statement = self.backend.old_logs_batch_sql(
                    self.backend.moment_sql(self.cutoffs["logs"]), limit)
            else:
                revisions = table.endswith("_revision")
                select = _REVISION_BATCH if revisions else _AUDIT_BATCH
                ids = [_id(r[0]) for r in self.session.query(
                    self._sql(select, table, limit=limit))]
                if not ids:
                    return deleted, batches, longest
                delete = _DELETE_REVISIONS if revisions else _DELETE_AUDIT
                statement = self._sql(delete, table, ids=", ".join(map(str, ids)))
            started = time.monotonic()
            gone = self.backend.delete_counted(self.session, statement)
            longest = max(longest, time.monotonic() - started)
            if table == LOGS and gone == 0:
                return deleted, batches, longest
            deleted += gone
            batches += 1
            if table == LOGS and gone < limit:
                return deleted, batches, longest


def _id(value: str | None) -> int:
    """An id the server sent, checked to be one before it goes into a statement."""
    return count_of([(value,)])
