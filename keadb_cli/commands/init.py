"""kea-db init: build Kea's schema on an empty database, and refuse everything else.

For each backend: refuse a readonly entry or a release the migrations do not cover; connect;
read the state (read-only); if EMPTY, take a session advisory lock (on a Galera node: on
every node of the cluster), read the state again under the lock, check privileges, build the
schema (PostgreSQL: one transaction), read ``schema_version`` back. MATCH is "nothing to
do". init never upgrades.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.db.cluster import ClusterSessions
from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import (
    DeniedError,
    ExitCode,
    KeaDbError,
    QueryError,
    Refusal,
)
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import RELEASES, Release, Schema, releases_for_schema
from keadb_cli.schema import guards
from keadb_cli.schema.state import Verdict, access_json, judge, read_state

if TYPE_CHECKING:
    from keadb_cli.db.node import Node
    from keadb_cli.schema.state import Target

Progress = Callable[[str], None]

class Action(StrEnum):
    INITIALIZED = "initialized"
    NONE = "none"
    REFUSED = "refused"


@dataclass(frozen=True)
class InitResult:
    action: Action
    access: DbAccess
    verdict: str  # the state found before anything was done (EMPTY, MATCH, FOREIGN, ...)
    expected: Schema | None
    schema: Schema | None  # what schema_version says at the end
    detail: str
    exit_code: ExitCode
    seconds: float = 0.0
    node: Node | None = None  # the server's role, when a session was opened

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "verdict": self.verdict,
            "schema": str(self.schema) if self.schema else None,
            "expected": str(self.expected) if self.expected else None,
            **access_json(self.access),
            "detail": self.detail,
            "exit_code": int(self.exit_code),
            "seconds": round(self.seconds, 3),
            "node": self.node.to_json() if self.node else None,
        }
        if self.access.path:
            out["path"] = self.access.path
            out["role"] = self.access.role
        return out


@dataclass
class _State:
    verdict: Verdict
    found: Schema | None
    reason: str
    tables: tuple[str, ...]


def _state(session: Session, plan: ConnectPlan, expected: Schema) -> _State:
    found, reason, tables = read_state(session, plan)
    if found is None:
        return _State(Verdict.FOREIGN if reason else Verdict.EMPTY, None, reason, tables)
    return _State(judge(found, expected), found, reason, tables)


def _refuse_state(state: _State, expected: Schema, known: Callable[[], set[str]]) -> None:
    """Raise the refusal for any state other than EMPTY and MATCH."""
    if state.verdict is Verdict.BEHIND:
        raise Refusal(
            "BEHIND", ExitCode.BEHIND,
            f"the database has schema {state.found}, older than {expected}: init never "
            "upgrades; back up the database, stop the Kea servers, then upgrade explicitly "
            "(kea-admin db-upgrade)",
        )
    if state.verdict is Verdict.AHEAD:
        raise Refusal(
            "AHEAD", ExitCode.AHEAD,
            f"the database has schema {state.found}, newer than {expected}: use the Kea "
            "release that matches it, or another database",
        )
    if state.verdict is Verdict.FOREIGN:
        names = [t for t in state.tables]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        if names and {n.lower() for n in names} <= known():
            raise Refusal(
                "FOREIGN", ExitCode.PARTIAL,
                f"a partial Kea schema ({len(names)} Kea objects, {state.reason}): probably an "
                f"interrupted init; drop them (or recreate the database), then run init "
                f"again. Found: {shown}",
            )
        raise Refusal(
            "FOREIGN", ExitCode.NOT_EMPTY,
            f"the database is not empty and not a Kea schema ({state.reason}): {shown}; "
            "init only builds on an empty database",
        )


def _build(session: Session, plan: ConnectPlan, revision: str,
           progress: Progress | None) -> None:
    """Run the rendered script of ``revision``: PostgreSQL in one transaction, MySQL one
    statement at a time (its DDL commits itself; the version row comes last)."""
    from keadb_cli.schema import scripts

    script = scripts.rendered(plan.backend.type, revision)
    if plan.backend.transactional_ddl:
        if progress:
            progress(f"building {revision} in one transaction")
        session.query("BEGIN")
        try:
            session.query(script)
        except BaseException:
            with contextlib.suppress(Exception):
                session.query("ROLLBACK")
            raise
        session.query("COMMIT")
        return

    statements = scripts.mysql_statements(script)
    if progress:
        progress(f"building {revision}: {len(statements)} statements")
    plan.backend.enter_build_mode(session)
    for statement in statements:
        session.query(statement)


def init_one(
    access: DbAccess,
    target: Target,
    *,
    lock_timeout: float = 60.0,
    progress: Progress | None = None,
    env: dict[str, str] | None = None,
) -> InitResult:
    """Build the target's schema on one backend, or say why not. Never raises for a
    refusal; raises SettingsError for unusable settings."""

    started = time.monotonic()
    db_type = access.type or ""
    expected = target.schema_for(db_type)

    nodes: list[Node] = []

    def result(action: Action, verdict: str, code: ExitCode, detail: str,
               schema: Schema | None = None) -> InitResult:
        return InitResult(action, access, verdict, expected, schema, detail, code,
                          time.monotonic() - started, nodes[0] if nodes else None)

    plan = plan_for(access, env)
    if access.readonly:
        return result(Action.REFUSED, "-", ExitCode.READONLY,
                      "the backend is readonly for Kea (readonly: true): init does not write "
                      "to it; build the schema through a writable entry")
    try:
        revision = _revision_for(db_type, expected)
    except KeaDbError as err:
        return result(Action.REFUSED, "-", err.exit_code, err.message)
    try:
        session = open_session(plan)
    except DeniedError as err:
        return result(Action.REFUSED, "DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:  # unreachable, TLS failure, protocol
        return result(Action.REFUSED, "UNREACHABLE", ExitCode.UNREACHABLE, err.message)
    plan = plan.answered_by(session.answered)  # a host list: messages name the host
    sessions = ClusterSessions(session)
    try:
        nodes.append(plan.backend.read_node(session))
        try:
            state = _state(session, plan, expected)
        except QueryError:
            guards.unreadable_node(nodes[0], plan, command="init")
            raise
        # Before anything else: a standby or a read-only replica takes no init at all.
        guards.writable_node(nodes[0], plan, command="init", verdict=state.verdict.value,
                             findings=[], report=False)
        if state.verdict is Verdict.MATCH:
            return result(Action.NONE, "MATCH", ExitCode.OK,
                          f"schema {state.found} is already there: nothing to do", state.found)
        # Any other state is decided under the lock: another init may be building right
        # now (on MySQL its tables appear one by one), so what we saw may be its work.
        # On a Galera node the lock is taken on every node of the cluster.
        sessions = plan.backend.open_cluster(session, plan, nodes[0])
        if progress:
            progress(f"{plan.backend.display} {plan.where}: taking the init lock"
                     + (f" on every node of the cluster ({', '.join(sessions.addresses())})"
                        if sessions.peers else ""))
        plan.backend.take_lock(sessions, plan, lock_timeout)
        state = _state(session, plan, expected)
        if state.verdict is Verdict.MATCH:
            return result(Action.NONE, "MATCH", ExitCode.OK,
                          f"schema {state.found} was built by another kea-db init while this "
                          "one waited for the lock: nothing to do", state.found)
        _refuse_state(state, expected, lambda: _kea_object_names(db_type, revision))

        plan.backend.check_privileges(session, plan, nodes[0])
        try:
            _build(session, plan, revision, progress)
        except KeaDbError as err:  # the database refused a statement, or went away
            first = " ".join(err.message.split())[:300]
            after = (
                "nothing was kept (one transaction)" if plan.backend.transactional_ddl
                else "MySQL keeps what was created before the failure: check-version reports "
                "it as FOREIGN; drop those tables and run init again"
            )
            return result(Action.REFUSED, "EMPTY", ExitCode.INIT_FAILED,
                          f"building schema {expected} failed: {first}; {after}")
        final = _state(session, plan, expected)
        if final.verdict is not Verdict.MATCH:
            return result(Action.REFUSED, "EMPTY", ExitCode.INIT_FAILED,
                          f"after building, schema_version says {final.found or final.reason}, "
                          f"not {expected}", final.found)
        return result(Action.INITIALIZED, "EMPTY", ExitCode.OK,
                      f"built schema {final.found}", final.found)
    except Refusal as refusal:
        return result(Action.REFUSED, refusal.verdict, refusal.code, refusal.detail)
    except QueryError as err:
        return result(Action.REFUSED, "DENIED", ExitCode.DENIED, err.message)
    except KeaDbError as err:  # the session broke or timed out before any change
        return result(Action.REFUSED, "UNREACHABLE", err.exit_code, err.message)
    finally:
        sessions.close()  # the other nodes' sessions, and their locks
        with contextlib.suppress(Exception):  # the result is already decided
            session.close()  # closing the session also releases the advisory lock


def _revision_for(db_type: str, expected: Schema) -> str:
    """The revision that builds ``expected``.

    Raises:
        KeaDbError (UNSUPPORTED_RELEASE): kea-db has no migration to that schema.
    """
    from keadb_cli.db.backends import backend_for
    from keadb_cli.schema import scripts

    known = scripts.known_schemas(db_type)
    if expected in known:
        return known[expected]
    display = backend_for(db_type).display
    if not known:
        raise KeaDbError(f"kea-db has no {display} schema revisions",
                         exit_code=ExitCode.UNSUPPORTED_RELEASE)
    first, last = (Schema(*s) for s in (min(known), max(known)))
    builds = (
        f"it builds {_schema_with_releases(db_type, first, 'first')} to "
        f"{_schema_with_releases(db_type, last, 'last')} (see `kea-db versions`)"
    )
    if expected < first:
        raise KeaDbError(
            f"kea-db cannot build {display} schema {expected}, which is older than any it "
            f"knows; {builds}",
            exit_code=ExitCode.UNSUPPORTED_RELEASE,
        )
    raise KeaDbError(
        f"kea-db cannot build {display} schema {expected} yet; {builds}",
        exit_code=ExitCode.UNSUPPORTED_RELEASE,
    )


# The database types init builds, in the order `kea-db versions` lists them.
DB_TYPES = ("mysql", "postgresql")


@dataclass(frozen=True)
class ReleaseSchemas:
    """One row of ``kea-db versions``: a release, its schemas, what init can build."""

    release: Release
    schemas: dict[str, Schema]
    buildable: tuple[str, ...]  # the database types whose schema init can build

    def to_json(self) -> dict[str, Any]:
        return {
            "kea": str(self.release),
            **{db_type: str(self.schemas[db_type]) for db_type in DB_TYPES},
            "init": list(self.buildable),
        }


def release_map() -> list[ReleaseSchemas]:
    """Every known release with the schema each backend expects and whether kea-db has the
    revisions to build it (file names only: no alembic import)."""
    from keadb_cli.schema import scripts

    known = {db_type: set(scripts.known_schemas(db_type)) for db_type in DB_TYPES}
    return [
        ReleaseSchemas(
            release,
            dict(schemas),
            tuple(t for t in DB_TYPES if tuple(schemas[t]) in known[t]),
        )
        for release, schemas in sorted(RELEASES.items())
    ]


def _schema_with_releases(db_type: str, schema: Schema, which: str = "all") -> str:
    """``13.0 (Kea 2.2.0 to 2.3.5)`` for messages; ``which`` = ``first`` / ``last`` names
    only the first / last release expecting it."""
    releases = releases_for_schema(db_type, schema)
    if not releases:
        return str(schema)
    if which == "first" or len(releases) == 1:
        span = str(releases[0])
    elif which == "last":
        span = str(releases[-1])
    else:
        span = f"{releases[0]} to {releases[-1]}"
    return f"{schema} (Kea {span})"


def _kea_object_names(db_type: str, revision: str) -> set[str]:
    """Names (lower case) of the tables and routines the revision builds, to tell a partial
    Kea schema from someone else's tables."""
    from keadb_cli.schema import scripts

    names: set[str] = set()
    pattern = re.compile(
        r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|FUNCTION|PROCEDURE|SEQUENCE)\s+"
        r"(?:IF\s+NOT\s+EXISTS\s+)?[`\"]?(\w+)",
        re.IGNORECASE | re.MULTILINE,
    )
    for match in pattern.finditer(scripts.rendered(db_type, revision)):
        names.add(match.group(1).lower())
    return names


def init_all(
    accesses: Sequence[DbAccess],
    target: Target,
    *,
    lock_timeout: float = 60.0,
    progress: Progress | None = None,
) -> list[InitResult]:
    return [
        init_one(a, target, lock_timeout=lock_timeout, progress=progress) for a in accesses
    ]


def sql_script(db_type: str, expected: Schema) -> str:
    """The DDL that init would run, for the backend's own client (alembic offline mode)."""
    from keadb_cli.db.backends import backend_for
    from keadb_cli.schema import scripts

    script = scripts.rendered(db_type, _revision_for(db_type, expected))
    if backend_for(db_type).transactional_ddl:
        # One transaction, as `init` runs it: `psql -f` then builds all or nothing.
        script = f"BEGIN;\n\n{script.rstrip()}\n\nCOMMIT;\n"
    return script
