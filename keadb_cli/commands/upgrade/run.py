"""``kea-db upgrade``: the explicit upgrade, walking kea-db's revision chain.

For each backend: refuse what is not an upgrade (MATCH is "nothing to do"; EMPTY, AHEAD,
FOREIGN, readonly, a schema older than the chain's start are refused, nothing touched);
connect once; take the session advisory lock init takes (on a Galera node: on every node of
the cluster, :meth:`~keadb_cli.db.backends.base.Backend.open_cluster`); read the state again
under it;
check privileges, other sessions on the database and known data traps; ask (or require
``--yes``); then run the steps on that one session:

- PostgreSQL: every step in one transaction. An error, Ctrl-C or a killed kea-db leaves the
  database as it was.
- MySQL: DDL commits itself, so the run keeps a journal
  (:mod:`keadb_cli.commands.upgrade.journal`) and marks ``schema_version`` while it works;
  a later ``kea-db upgrade`` finds out exactly where a cut run stopped and completes it.

Nothing here prints: progress lines go to a callback, the confirmation is a callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.upgrade import journal
from keadb_cli.db.cluster import ClusterSessions
from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import CannotVerify, DeniedError, ExitCode, KeaDbError, QueryError, Refusal
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema, releases_for_schema
from keadb_cli.schema import guards
from keadb_cli.schema.state import Verdict, access_json, judge, read_state

if TYPE_CHECKING:
    from keadb_cli.commands.upgrade.quiet import Way
    from keadb_cli.commands.verify import Comparison
    from keadb_cli.db.backends.base import RunningWork
    from keadb_cli.db.node import Node, Replicas
    from keadb_cli.schema.state import Target

Progress = Callable[[str], None]
HEARTBEAT = 15.0  # seconds between "still running" lines during one long statement
VERIFY_SHOWN = 20  # verify's findings listed among upgrade's findings
UPGRADE_STATEMENT_TIMEOUT = 6 * 3600.0  # one statement of an upgrade may rewrite a big table


class Action(StrEnum):
    UPGRADED = "upgraded"
    NONE = "none"
    REFUSED = "refused"
    PLANNED = "planned"  # --plan: nothing was changed


@dataclass(frozen=True)
class StepPlan:
    """One revision to run: what it builds, for which Kea, what it rewrites."""

    revision: str
    schema: Schema
    title: str
    kea: str  # "Kea 2.4.0" (the first release expecting this schema), or ""
    tables: tuple[str, ...]  # tables the step rewrites (ALTER / UPDATE)
    rows: dict[str, int] = field(default_factory=dict)  # about how many rows each holds
    updated: tuple[str, ...] = ()  # tables whose rows an UPDATE rewrites (triggers fire)

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "schema": str(self.schema), "title": self.title,
                "kea": self.kea, "rewrites": {t: self.rows.get(t) for t in self.tables}}


@dataclass(frozen=True)
class StepRun:
    revision: str
    schema: Schema
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "schema": str(self.schema),
                "seconds": round(self.seconds, 3)}


# --plan's downtime estimate, by backend: rows the steps rewrite per second (an ALTER TABLE
# that rebuilds a table and a full-table UPDATE count each of the table's rows once), and
# the seconds of everything else (start, checks, verify, the small steps). Measured with
# bench/bench_upgrade.py (Kea 2.2 -> 3.0, 100,000 and 1,000,000 lease4 + as many lease6
# rows, on a 2-core machine with the host's MariaDB 10.11 and PostgreSQL 15, buffer pools
# at their defaults); other hardware differs, hence --rows-per-second.
# (2.2 -> 3.0 counts 6 rewrites per 1,000,000 + 1,000,000 rows on MariaDB and 4 on
# PostgreSQL; at that size the steps took 14.5 s and 3.6 s, the rest of the run 1.1 s and
# 0.35 s; at 100,000 + 100,000, 1.6 s and 0.35 s, the rest 0.85 s and 0.3 s.)
RATES: dict[str, tuple[float, float]] = {"mysql": (350_000.0, 1.5),
                                         "postgresql": (1_000_000.0, 0.5)}


@dataclass(frozen=True)
class Estimate:
    """About how long the upgrade keeps Kea stopped: an estimate, not a measurement."""

    seconds: float
    rows: int  # rows the steps rewrite (per table as often as steps rewrite it)
    rows_per_second: float
    declared: bool  # the rate came from --rows-per-second

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "is_estimate": True,
                "rewritten_rows": self.rows, "rows_per_second": self.rows_per_second,
                "rate": "declared" if self.declared else "default",
                "basis": "row estimates of the tables each step rewrites, at the rate, plus "
                         "the fixed cost of the checks; measure on a copy of the database "
                         "for a real number"}

    def line(self) -> str:
        rate = "the declared" if self.declared else "kea-db's default"
        return (f"estimated downtime: about {self.seconds:.0f} s (an estimate: {self.rows:,} "
                f"rows rewritten at {rate} {self.rows_per_second:,.0f} rows/s, plus the "
                "checks; measure on a copy for a real number)")


def estimate(db_type: str, steps: list[StepPlan], rows_per_second: float | None) -> Estimate:
    """:class:`Estimate` for ``steps`` (their ``rows`` filled by --plan)."""
    rate, fixed = RATES.get(db_type, RATES["mysql"])
    rows = sum(step.rows.get(t, 0) for step in steps for t in step.tables)
    per_second = rows_per_second or rate
    return Estimate(fixed + rows / per_second, rows, per_second, rows_per_second is not None)


@dataclass(frozen=True)
class UpgradeResult:
    action: Action
    access: DbAccess
    verdict: str
    found: Schema | None
    expected: Schema | None
    detail: str
    exit_code: ExitCode
    steps: tuple[StepPlan, ...] = ()
    ran: tuple[StepRun, ...] = ()
    findings: tuple[str, ...] = ()
    seconds: float = 0.0
    verified: Comparison | None = None
    node: Node | None = None  # the server's role, when a session was opened
    standbys: Replicas | None = None  # a primary's standbys, when its checks read them
    estimate: Estimate | None = None  # --plan: about how long Kea stays stopped

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "verdict": self.verdict,
            "from": str(self.found) if self.found else None,
            "to": str(self.expected) if self.expected else None,
            **access_json(self.access),
            "detail": self.detail,
            "exit_code": int(self.exit_code),
            "plan": [s.to_json() for s in self.steps],
            "steps": [s.to_json() for s in self.ran],
            "findings": list(self.findings),
            "verify": None if self.verified is None else {
                "errors": [f.to_json() for f in self.verified.errors],
                "warnings": [f.to_json() for f in self.verified.warnings],
                "bodies": {"kea": self.verified.kea_bodies,
                           "kea-db": self.verified.own_bodies},
            },
            "seconds": round(self.seconds, 3),
            "node": self.node.to_json() if self.node else None,
            "standbys": self.standbys.to_json() if self.standbys else None,
            "estimate": self.estimate.to_json() if self.estimate else None,
        }
        if self.access.path:
            out["path"], out["role"] = self.access.path, self.access.role
        return out


@dataclass(frozen=True)
class Options:
    lock_timeout: float = 60.0
    allow_other_sessions: bool = False
    fix_user_context: bool = False
    plan_only: bool = False
    verify: bool = True  # compare the database with its recorded schema first (verify)
    rows_per_second: float | None = None  # --plan's estimate: a declared rate


Confirm = Callable[[DbAccess, list[StepPlan], list[str]], bool]


# -- the chain --------------------------------------------------------------------------


def chain_for(db_type: str, found: Schema, expected: Schema) -> list[StepPlan]:
    """The steps from ``found`` to ``expected``, titles and rewritten tables included.

    Raises:
        Refusal: a schema kea-db has no revision for (older than the chain's start, or a
            version no Kea release has), or a target it cannot build.
    """
    from keadb_cli.schema import scripts

    known = scripts.known_schemas(db_type)
    display = _display(db_type)
    if (expected.version, expected.minor) not in known:
        raise Refusal("BEHIND", ExitCode.UNSUPPORTED_RELEASE,
                      f"kea-db has no revision for {display} schema {expected}")
    if (found.version, found.minor) not in known:
        first = Schema(*min(known))
        if found < first:
            releases = releases_for_schema(db_type, first)
            kea = f" (Kea {releases[0]})" if releases else ""
            raise Refusal(
                "BEHIND", ExitCode.UNSUPPORTED_RELEASE,
                f"schema {found} is older than kea-db's first {display} revision {first}"
                f"{kea}: run kea-admin db-upgrade of that release first, then kea-db upgrade")
        raise Refusal("BEHIND", ExitCode.UNSUPPORTED_RELEASE,
                      f"schema {found} is not a {display} schema kea-db knows")
    steps = scripts.plan(db_type, known[(expected.version, expected.minor)],
                         known[(found.version, found.minor)])
    out = []
    for step in steps:
        schema = Schema(*step.schema)
        sql = scripts.rendered_step(db_type, step.revision)
        out.append(StepPlan(step.revision, schema, step.title, _release_of(db_type, schema),
                            _rewrites(sql), updated=_rewrites(sql, ("UPDATE",))))
    return out


def _release_of(db_type: str, schema: Schema) -> str:
    """"Kea 2.4.0": the first release expecting ``schema``; for a development step no tag
    expects, the first release that includes it ("Kea 2.3.7, within")."""
    from keadb_cli.kea.releases import RELEASES

    releases = releases_for_schema(db_type, schema)
    if releases:
        return f"Kea {releases[0]}"
    later = sorted(r for r, s in RELEASES.items() if s[db_type] > schema)
    return f"Kea {later[0]}, within" if later else ""


def _rewrites(sql: str, kinds: tuple[str, ...] = (r"ALTER\s+TABLE", "UPDATE")) -> tuple[str, ...]:
    """The tables that statements of ``kinds`` (regular expressions) change, in order."""
    import re

    names = re.findall(rf"^\s*(?:{'|'.join(kinds)})\s+(?:ONLY\s+)?[`\"]?(\w+)", sql,
                       re.I | re.M)
    seen: dict[str, None] = {}
    for name in names:
        if name.lower() != "schema_version":
            seen.setdefault(name.lower(), None)
    return tuple(seen)


def _display(db_type: str) -> str:
    from keadb_cli.db.backends import backend_for

    return backend_for(db_type).display


# -- running ------------------------------------------------------------------------------


class _Watch:
    """What the heartbeat adds to its line: the rows the server reports done, read on a
    second session of the same plan (the upgrade's own is busy running the statement),
    opened at the first heartbeat that asks and closed by :meth:`close`; where the server
    reports nothing, kea-db's estimate from the rows the statement rewrites at its rate.

    The second session never disturbs the upgrade: when it cannot be opened or read, it is
    dropped and the lines say what they said without it. One heartbeat reads at a time."""

    def __init__(self, plan: ConnectPlan, probe: str | None, rows: dict[str, int],
                 rate: float) -> None:
        self.plan, self.probe, self.rows, self.rate = plan.for_reads(), probe, rows, rate
        self.session: Session | None = None
        self.state = threading.Lock()  # guards the flags below, never held over I/O
        self.busy = self.done = False

    def said(self, tables: tuple[str, ...], seconds: float) -> str:
        """The words the line adds for a statement rewriting ``tables`` that has run
        ``seconds``, starting with "; "; "" when there is nothing to say."""
        from keadb_cli.text import shown

        total = sum(self.rows.get(t, 0) for t in tables)
        work = self._read()
        if work is not None and work.rows:
            holds = (f" ({shown(', '.join(tables), 80)} {'holds' if len(tables) == 1 else 'hold'}"
                     f" about {total:,})") if total else ""
            return f"; the server has examined {work.rows:,} rows{holds}"
        if work is not None:
            stage = f" (stage {work.stage} of {work.stages})" if work.stages > 1 else ""
            return f"; the server reports {work.percent:.0f}% done{stage}"
        if not total:
            return ""
        share = seconds * self.rate / total
        basis = f"{total:,} rows at {self.rate:,.0f} rows/s"
        if share < 1:
            return f"; about {share:.0%} by the estimate: {basis}"
        return f"; longer than the estimate: {basis}"

    def _read(self) -> RunningWork | None:
        with self.state:
            if self.probe is None or self.busy or self.done:
                return None
            self.busy = True
        work = None
        try:
            if self.session is None:
                self.session = open_session(self.plan)
            work = self.plan.backend.running_work(self.session, self.probe)
        except Exception:  # whatever it is, the upgrade goes on without the second session
            self.probe = None
            self._drop()
        with self.state:
            self.busy = False
            drop = self.done
        if drop:
            self._drop()
        return work

    def close(self) -> None:
        """Close the second session, now or, when a heartbeat is reading on it, as soon
        as that read ends."""
        with self.state:
            self.done = True
            drop = not self.busy
        if drop:
            self._drop()

    def _drop(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()


def _watch(session: Session, plan: ConnectPlan, rows: dict[str, int],
           rows_per_second: float | None) -> _Watch:
    """The :class:`_Watch` of the steps about to run on ``session``."""
    try:
        probe = plan.backend.work_probe(session)
    except QueryError:
        probe = None
    rate = rows_per_second or RATES.get(plan.backend.type, RATES["mysql"])[0]
    return _Watch(plan, probe, rows, rate)


class _Heartbeat:
    """Says every :data:`HEARTBEAT` seconds that a long statement is still running (and,
    with a :class:`_Watch`, how far it got)."""

    def __init__(self, progress: Progress | None, what: str, watch: _Watch | None = None,
                 tables: tuple[str, ...] = ()) -> None:
        self.progress, self.what, self.watch, self.tables = progress, what, watch, tables
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.progress is not None:
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT):
            assert self.progress is not None
            seconds = time.monotonic() - self.started
            said = "" if self.watch is None else self.watch.said(self.tables, seconds)
            if self.stop.is_set():  # the statement ended while the server was asked
                return
            self.progress(f"  still running {self.what} ({seconds:.0f} s{said})")


def _run_pg(session: Session, steps: list[StepPlan], progress: Progress | None,
            fix: Callable[[], None] | None = None, watch: _Watch | None = None) -> list[StepRun]:
    """Every step (and ``fix`` first) in one transaction: all or nothing."""
    from keadb_cli.schema import scripts

    ran = []
    session.query("BEGIN")
    try:
        if fix is not None:
            fix()
        for step in steps:
            started = time.monotonic()
            if progress:
                progress(f"{step.revision}: {step.title}")
            with _Heartbeat(progress, step.revision, watch, step.tables):
                session.query(scripts.rendered_step("postgresql", step.revision))
            ran.append(StepRun(step.revision, step.schema, time.monotonic() - started))
            if progress:
                progress(f"  {step.revision} done in {ran[-1].seconds:.2f} s")
        session.query("COMMIT")
    except BaseException:
        if not session.closed:
            with contextlib.suppress(KeaDbError):
                session.query("ROLLBACK")
        raise
    return ran


def _mysql_statements(revision: str, following: frozenset[str] = frozenset(),
                      ) -> list[tuple[list[journal.Statement], Way]]:
    """The ways to run a step (:class:`~keadb_cli.commands.upgrade.quiet.Way`), each with its
    statements classified: kea-db's faster ways first (``following``: the run's later
    revisions), then those of earlier kea-db releases and the recorded SQL (what a run begun
    by an earlier kea-db resumes with)."""
    from keadb_cli.commands.upgrade import quiet
    from keadb_cli.schema import scripts

    text = scripts.rendered_step("mysql", revision)
    recorded = scripts.mysql_statements(text)
    sha = hashlib.sha256(text.encode()).hexdigest()
    return [([journal.classify(s) for s in way.statements], way)
            for way in quiet.ways(revision, recorded, sha, following)]


_INDEX_EXISTS = ("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                 "DATABASE() AND TABLE_NAME = '{table}' AND INDEX_NAME = '{index}'")


def _fresh_way(session: Session, ways: list[tuple[list[journal.Statement], Way]],
               ) -> tuple[list[journal.Statement], str]:
    """The first way for a fresh step whose catalog condition holds now (the recorded SQL
    has none)."""
    for statements, way in ways:
        if not way.fresh:
            continue
        if way.needs_index is not None:
            table, index, present = way.needs_index
            rows = session.query(_INDEX_EXISTS.format(table=table, index=index))
            if bool(rows and int(rows[0][0] or 0)) != present:
                continue
        return statements, way.sha256
    raise KeaDbError("no way to run the step fits the database", exit_code=ExitCode.INTERNAL)


def _run_mysql(session: Session, plan: ConnectPlan, steps: list[StepPlan], found: Schema,
               target_revision: str, progress: Progress | None,
               resume: journal.Entry | None, watch: _Watch | None = None) -> list[StepRun]:
    # Every statement is classified before the first change: a shape the journal cannot
    # resume stops the run while the database is untouched.
    revisions = [step.revision for step in steps]
    rendered = {revision: _mysql_statements(revision, frozenset(revisions[number + 1:]))
                for number, revision in enumerate(revisions)}
    plan.backend.enter_build_mode(session)  # Kea's objects are created as init creates them
    if resume is None:
        journal.begin(session, str(found), target_revision)
    ran = []
    for number, step in enumerate(steps):
        start_at = 0
        if resume is not None and number == 0 and resume.step == step.revision:
            begun = [(statements, way.sha256) for statements, way in rendered[step.revision]
                     if way.sha256 == resume.step_sha256]
            if not begun:
                raise Refusal(
                    "INTERRUPTED", ExitCode.PARTIAL,
                    f"the interrupted step {step.revision} was started by a kea-db whose SQL "
                    "for it differs from this one's: finish it with the kea-db that began it")
            statements, sha = begun[0]
            start_at = resume.next_statement
            if start_at < len(statements) and journal.resolve_running(
                    session, statements[start_at], resume):
                start_at += 1
            for earlier in statements[:start_at]:  # the step's session settings
                if earlier.kind == "set":
                    session.query(earlier.sql)
            if progress:
                progress(f"{step.revision}: resuming at statement {start_at + 1} of "
                         f"{len(statements)}")
        else:
            statements, sha = _fresh_way(session, rendered[step.revision])
            journal.start_step(session, step.revision, sha)
            if progress:
                progress(f"{step.revision}: {step.title} ({len(statements)} statements)")
        started = time.monotonic()
        last_step = number == len(steps) - 1
        for index in range(start_at, len(statements)):
            statement = statements[index]
            what = f"{step.revision} statement {index + 1}/{len(statements)}"
            with _Heartbeat(progress, what, watch, _rewrites(statement.sql)):
                journal.run_statement(session, statement, index,
                                      last_of_run=last_step and index == len(statements) - 1)
        ran.append(StepRun(step.revision, step.schema, time.monotonic() - started))
        if progress:
            progress(f"  {step.revision} done in {ran[-1].seconds:.2f} s")
    journal.finish(session)
    return ran


# -- one backend -----------------------------------------------------------------------------


def upgrade_one(
    access: DbAccess,
    target: Target,
    options: Options,
    *,
    confirm: Confirm | None = None,
    progress: Progress | None = None,
    env: dict[str, str] | None = None,
) -> UpgradeResult:
    """Upgrade one backend to the target's schema, or say why not. Raises only for
    unusable settings (SettingsError)."""
    import dataclasses

    started = time.monotonic()
    db_type = access.type or ""
    expected = target.schema_for(db_type)
    found: Schema | None = None
    steps: list[StepPlan] = []
    findings: list[str] = []
    verified: list[Comparison] = []
    nodes: list[Node] = []
    standbys: list[Replicas] = []  # what the checks read of a primary's standbys
    # How far the run got: "checks" (nothing changed yet), "fix" (MySQL: non-JSON user
    # contexts being set to NULL), "steps" (the revisions are running).
    phase = "checks"

    def result(action: Action, verdict: str, code: ExitCode, detail: str,
               ran: list[StepRun] | None = None) -> UpgradeResult:
        return UpgradeResult(action, access, verdict, found, expected, detail, code,
                             tuple(steps), tuple(ran or ()), tuple(findings),
                             time.monotonic() - started, verified[0] if verified else None,
                             nodes[0] if nodes else None, standbys[0] if standbys else None)

    if access.readonly and not options.plan_only:
        return result(Action.REFUSED, "-", ExitCode.READONLY,
                      "the backend is readonly for Kea (readonly: true): upgrade does not "
                      "write to it; upgrade through a writable entry")
    if access.statement_timeout is None:
        access = dataclasses.replace(access, statement_timeout=UPGRADE_STATEMENT_TIMEOUT)
    plan = plan_for(access, env)
    try:
        session = open_session(plan)
    except DeniedError as err:
        return result(Action.REFUSED, "DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:
        return result(Action.REFUSED, "UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    plan = plan.answered_by(session.answered)  # a host list: messages name the host
    sessions = ClusterSessions(session)
    watch: _Watch | None = None
    try:
        nodes.append(plan.backend.read_node(session))
        try:
            resume = None if plan.backend.transactional_ddl else journal.read(session)
            if resume is None:
                found, verdict = _state(session, plan, expected)
        except QueryError:
            guards.unreadable_node(nodes[0], plan, command="upgrade")
            raise
        if resume is not None:
            found, verdict = Schema(*map(int, resume.from_schema.split("."))), "INTERRUPTED"
            findings.append(f"an interrupted kea-db upgrade from {resume.from_schema} "
                            f"stopped in {resume.step or 'its first step'}: it is resumed")
        # Before anything else (--plan: a finding): a standby or a read-only replica takes
        # no upgrade, and a MATCH there is no "nothing to do" either: it is the wrong server.
        guards.writable_node(nodes[0], plan, command="upgrade", verdict=verdict,
                             findings=findings, report=options.plan_only)
        if verdict == "MATCH":
            return result(Action.NONE, "MATCH", ExitCode.OK,
                          f"schema {found} is the one Kea expects: nothing to do")
        # A cluster's other nodes (Galera): the lock and the other-sessions check hold
        # for all of them.
        sessions = guards.cluster(session, plan, nodes[0], findings=findings,
                                  report=options.plan_only)
        if options.plan_only:
            if resume is None and options.verify:
                assert found is not None
                _verify(session, plan, found, findings, verified, refuse=False)
            planned = _plan(sessions, plan, found, expected, resume, findings, result, steps,
                            nodes[0], standbys)
            return dataclasses.replace(planned, estimate=estimate(
                plan.backend.type, steps, options.rows_per_second))
        if progress:
            progress(f"{plan.backend.display} {plan.where}: taking the lock"
                     + (f" on every node of the cluster ({', '.join(sessions.addresses())})"
                        if sessions.peers else ""))
        plan.backend.take_lock(sessions, plan, options.lock_timeout)
        resume = None if plan.backend.transactional_ddl else journal.read(session)
        if resume is None:
            found, verdict = _state(session, plan, expected)
            if verdict == "MATCH":
                return result(Action.NONE, "MATCH", ExitCode.OK,
                              f"schema {found} was reached by another kea-db upgrade while "
                              "this one waited for the lock: nothing to do")
        assert found is not None
        steps[:] = _steps(session, plan, found, expected, resume)
        checked = guards.before_change(
            sessions, plan, steps, verdict=verdict, findings=findings,
            resumed_step=resume is not None and bool(resume.step), atomic=_atomic(session, plan),
            allow_other_sessions=options.allow_other_sessions,
            fix_user_context=options.fix_user_context, report=False,
            node=nodes[0])
        bad = checked.bad_contexts
        watch = None if progress is None else _watch(session, plan, checked.rows,
                                                     options.rows_per_second)
        standbys.extend([checked.replicas] if checked.replicas is not None else [])
        if resume is not None:
            findings.append("verify skipped: the database is between two schemas until the "
                            "interrupted upgrade is completed")
        elif options.verify:
            _verify(session, plan, found, findings, verified, refuse=True)
        else:
            findings.append("verify skipped (--skip-verify)")
        if confirm is not None and not confirm(access, steps, findings):
            return result(Action.REFUSED, verdict, ExitCode.NOT_CONFIRMED,
                          "not confirmed: nothing was changed (without a terminal, give --yes)")
        fix = None
        if bad:
            findings.append(f"set the non-JSON user contexts of {', '.join(bad)} to NULL")
            fix = lambda: plan.backend.fix_user_contexts(session, bad)  # noqa: E731
        if plan.backend.transactional_ddl:
            phase = "steps"
            steps_run = _run_pg(session, steps, progress, fix, watch)
        else:
            if fix is not None:
                phase = "fix"
                fix()
            phase = "steps"
            steps_run = _run_mysql(session, plan, steps, found,
                                   steps[-1].revision if steps else "",
                                   progress, resume, watch)
        final, _verdict = _state(session, plan, expected)
        if final != expected:
            return result(Action.REFUSED, verdict, ExitCode.UPGRADE_FAILED,
                          f"after the steps, schema_version says {final}, not {expected}",
                          steps_run)
        return result(Action.UPGRADED, verdict, ExitCode.OK,
                      f"upgraded from {found} to {expected} in {len(steps_run)} step(s)",
                      steps_run)
    except Refusal as refusal:
        return result(Action.REFUSED, refusal.verdict, refusal.code, refusal.detail)
    except QueryError as err:
        after = _after_failure(session, plan, phase)
        return result(Action.REFUSED, "BEHIND", ExitCode.UPGRADE_FAILED,
                      f"the server refused a statement: {' '.join(err.message.split())[:300]}"
                      f"; {after}")
    except KeaDbError as err:
        return result(Action.REFUSED, "UNREACHABLE", err.exit_code
                      if err.exit_code is not ExitCode.INTERNAL else ExitCode.UPGRADE_FAILED,
                      f"{err.message}; {_after_failure(session, plan, phase)}")
    finally:
        if watch is not None:
            watch.close()  # the heartbeat's second session
        sessions.close()  # the other nodes' sessions, and their locks
        with contextlib.suppress(Exception):
            session.close()  # also releases the lock


def _atomic(session: Session, plan: ConnectPlan) -> bool:
    """Whether a statement the server runs is all or nothing (transactional DDL, or MySQL's
    atomic DDL)."""
    return plan.backend.transactional_ddl or journal.atomic_ddl(session.server)


def _verify(session: Session, plan: ConnectPlan, found: Schema, findings: list[str],
            verified: list[Comparison], *, refuse: bool) -> None:
    """verify's comparison of the database with its recorded schema ``found``: drift
    (errors) refuses the upgrade, the operator's own objects (warnings) are findings. With
    ``refuse`` false (--plan) everything becomes a finding."""
    from keadb_cli.commands.verify import verify_session

    try:
        comparison = verify_session(session, plan, found)
    except CannotVerify as err:
        if not refuse:
            findings.append(f"not verified: {err.message}")
            return
        raise Refusal("BEHIND", err.exit_code, f"{err.message}; or give --skip-verify to "
                      "upgrade without comparing the database with its schema") from None
    verified.append(comparison)
    ordered = comparison.errors + comparison.warnings
    for finding in ordered[:VERIFY_SHOWN]:
        findings.append(f"verify {finding.severity.value}: {finding.line()}")
    if len(ordered) > VERIFY_SHOWN:
        findings.append(f"verify: {len(ordered) - VERIFY_SHOWN} more (JSON's "
                        "`verify` and `kea-db verify` list them all)")
    if comparison.errors and refuse:
        raise Refusal("BEHIND", ExitCode.DRIFT,
                      f"the database is not Kea's schema {found} ({len(comparison.errors)} "
                      "difference(s), listed in the findings; `kea-db verify` shows them): "
                      "repair it first; nothing was changed")


AFTER_CHECKS = "nothing was changed (the upgrade stopped in its checks, before any change)"
AFTER_TRANSACTION = "nothing was changed (one transaction)"
AFTER_FIX = ("the schema was not changed, but non-JSON user contexts may have been set to "
             "NULL already (--fix-user-context)")
AFTER_JOURNAL = ("the journal records where the upgrade stopped and schema_version is marked "
                 "(no Kea starts on it): fix the cause, then run kea-db upgrade again to "
                 "complete it")
AFTER_UNKNOWN = ("the upgrade had begun; run kea-db check-version: FOREIGN (an upgrade under "
                 "way or cut short) means run kea-db upgrade again to complete it")


def _after_failure(session: Session, plan: ConnectPlan, phase: str) -> str:
    """What a failed run left, said as it is: by how far the run got and, for MySQL steps,
    by whether the journal (and so the mark on schema_version) exists."""
    if phase == "checks":
        return AFTER_CHECKS
    if plan.backend.transactional_ddl:
        return AFTER_TRANSACTION
    if phase == "fix":
        return AFTER_FIX
    try:
        begun = not session.closed and journal.read(session) is not None
    except KeaDbError:
        return AFTER_UNKNOWN
    if session.closed:
        return AFTER_UNKNOWN
    return AFTER_JOURNAL if begun else AFTER_CHECKS


def _state(session: Session, plan: ConnectPlan, expected: Schema) -> tuple[Schema | None, str]:
    """(found, verdict), refusing every state that is not an upgrade."""
    found, reason, tables = read_state(session, plan)
    if found is None and not reason:
        raise Refusal("EMPTY", ExitCode.EMPTY,
                      "the database is empty: that is `kea-db init`'s job, not upgrade's")
    if found is None:
        names = ", ".join(tables[:10])
        raise Refusal("FOREIGN", ExitCode.FOREIGN,
                      f"not a Kea schema kea-db can read ({reason}){': ' + names if names else ''}")
    verdict = judge(found, expected)
    if verdict is Verdict.AHEAD:
        raise Refusal("AHEAD", ExitCode.AHEAD,
                      f"schema {found} is newer than {expected}: kea-db never downgrades; use "
                      "the Kea release that matches it")
    return found, verdict.value


def _steps(session: Session, plan: ConnectPlan, found: Schema, expected: Schema,
           resume: journal.Entry | None) -> list[StepPlan]:
    db_type = plan.backend.type
    if resume is None:
        return chain_for(db_type, found, expected)
    # Resume: the interrupted step first, then on to the target.
    from keadb_cli.schema import migrate, scripts

    if not resume.step:
        return chain_for(db_type, found, expected)
    step_schema = Schema(*migrate.schema_for_revision(resume.step))
    previous = scripts.recorded(db_type).get(resume.step, {}).get("previous")
    start = Schema(*migrate.schema_for_revision(previous)) if previous else found
    if expected < step_schema:
        raise Refusal("INTERRUPTED", ExitCode.PARTIAL,
                      f"an interrupted upgrade stopped inside {resume.step} (schema "
                      f"{step_schema}); finish it with a target of at least {step_schema}")
    return chain_for(db_type, start, expected)


def _plan(sessions: ClusterSessions, plan: ConnectPlan, found: Schema | None,
          expected: Schema, resume: journal.Entry | None, findings: list[str],
          result: Callable[..., UpgradeResult], steps: list[StepPlan],
          node: Node, standbys: list[Replicas]) -> UpgradeResult:
    """--plan: the steps, what each rewrites and how many rows, the findings (a primary's
    standbys into ``standbys``); no change."""
    assert found is not None
    session = sessions.own
    chain = _steps(session, plan, found, expected, resume)
    checked = guards.before_change(
        sessions, plan, chain, verdict="BEHIND", findings=findings,
        resumed_step=resume is not None and bool(resume.step), atomic=_atomic(session, plan),
        allow_other_sessions=False, fix_user_context=False, report=True, node=node)
    rows = checked.rows
    standbys.extend([checked.replicas] if checked.replicas is not None else [])
    steps[:] = [StepPlan(s.revision, s.schema, s.title, s.kea, s.tables,
                         {t: rows.get(t, 0) for t in s.tables}, s.updated) for s in chain]
    return result(Action.PLANNED, "BEHIND", ExitCode.OK,
                  f"{len(steps)} step(s) from {found} to {expected}; nothing was changed")


def upgrade_all(accesses: list[DbAccess], target: Target, options: Options, *,
                confirm: Confirm | None = None,
                progress: Progress | None = None) -> list[UpgradeResult]:
    """upgrade_one for each backend, one after the other (each has its own lock)."""
    return [upgrade_one(a, target, options, confirm=confirm, progress=progress)
            for a in accesses]


def upgrade_sql(db_type: str, from_schema: Schema, expected: Schema) -> str:
    """The SQL of the steps from ``from_schema`` to ``expected``, for a DBA to run by hand
    with psql / mariadb (PostgreSQL: wrapped in one transaction). No connection is made.

    Raises:
        KeaDbError: no chain between the two (UNSUPPORTED_RELEASE), or not an upgrade.
    """
    from keadb_cli.db.backends import backend_for
    from keadb_cli.schema import scripts

    if not from_schema < expected:
        raise KeaDbError(f"--from {from_schema} is not older than the target {expected}: "
                         "nothing to upgrade", exit_code=ExitCode.SETTINGS)
    try:
        steps = chain_for(db_type, from_schema, expected)
    except Refusal as refusal:
        raise KeaDbError(refusal.detail, exit_code=refusal.code) from None
    parts = [scripts.rendered_step(db_type, s.revision) for s in steps]
    if backend_for(db_type).transactional_ddl:
        return "BEGIN;\n\n" + "\n".join(parts) + "\nCOMMIT;\n"
    return "\n".join(parts)
