"""Read a Kea database's schema version as Kea's server does, and judge it.

Read-only: everything runs inside a read-only transaction that is rolled back; nothing is
ever created (unlike Kea's server, which may run ``kea-admin db-init`` on an empty database).

With a wait (``--wait``), what can still change is read again until it does or the wait
ends: a login that can heal (refused, timed out, not yet in DNS; never a wrong password or
a TLS failure), a database that does not exist yet (a standby that has not replayed its
creation, a provisioning step still running), and on a standby or a read-only replica a
verdict its replay can still turn into MATCH (BEHIND, EMPTY). A primary's verdict is final
at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.retry import HEALING, Waiter
from keadb_cli.db.session import open_session
from keadb_cli.errors import DeniedError, KeaDbError, QueryError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema
from keadb_cli.schema.state import Verdict as Verdict
from keadb_cli.schema.state import access_json as access_json
from keadb_cli.schema.state import judge as judge
from keadb_cli.schema.state import read_state as read_state
from keadb_cli.schema.state import upgrading
from keadb_cli.schema.state import worst as worst

if TYPE_CHECKING:
    from keadb_cli.db.node import Node
    from keadb_cli.db.session_kit import Endpoint
    from keadb_cli.schema.state import Target


@dataclass(frozen=True)
class VersionResult:
    verdict: Verdict
    access: DbAccess
    expected: Schema | None
    found: Schema | None = None
    detail: str = ""
    tables: tuple[str, ...] = ()
    tls: str | None = None  # "TLSv1.3 TLS_AES_256_GCM_SHA384", or None for cleartext
    warnings: tuple[str, ...] = field(default_factory=tuple)
    reason_code: str = ""  # why UNREACHABLE / DENIED ("auth-failed", "refused"...)
    node: Node | None = None  # the server's role, when a session was opened
    wait: Waited | None = None  # with --wait: how long it waited, and why
    answered: Endpoint | None = None  # the host that answered (of a host list), likewise

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "found": str(self.found) if self.found else None,
            "expected": str(self.expected) if self.expected else None,
            **access_json(self.access),
            "detail": self.detail,
            "tls": self.tls,
            "warnings": list(self.warnings),
            "node": self.node.to_json() if self.node else None,
            "answered": self.answered.to_json() if self.answered else None,
        }
        if self.reason_code:
            out["reason_code"] = self.reason_code
        if self.access.path:
            out["path"] = self.access.path
            out["role"] = self.access.role
        if self.tables:
            out["tables"] = list(self.tables)
        if self.wait is not None:
            out["wait"] = self.wait.to_json()
        return out


# Verdicts a standby's (a read-only replica's) replay can still turn into MATCH.
REPLAYABLE = frozenset({Verdict.BEHIND, Verdict.EMPTY})
# FOREIGN's reason_code when schema_version carries kea-db's MySQL upgrade mark: a replica
# replaying an upgrade statement by statement shows it until the last one arrives.
UPGRADE_UNDER_WAY = "upgrade-under-way"
# DENIED's reason_code for a database the server does not have (yet): a standby before its
# replay of the CREATE DATABASE, a deployment that creates it in parallel.
UNKNOWN_DATABASE = "unknown-database"


@dataclass(frozen=True)
class Waited:
    """What --wait did for one backend."""

    timeout: float  # --wait-timeout
    attempts: int
    seconds: float
    retried: str = ""  # what was waited for: "login", "database", "replay", "" (at once)
    gave_up: bool = False  # the wait ended with a verdict that could still have changed

    def to_json(self) -> dict[str, object]:
        return {"timeout": self.timeout, "attempts": self.attempts,
                "seconds": round(self.seconds, 3), "waited_for": self.retried or None,
                "gave_up": self.gave_up}

    def text(self) -> str:
        """" (after 4 attempts in 1.3 s, waiting for replay)", or "" for one attempt."""
        if self.attempts <= 1:
            return ""
        why = {"login": "the login", "database": "the database to exist",
               "replay": "the standby's replay"}.get(self.retried, "")
        gave = f"; gave up at --wait-timeout {self.timeout:g} s" if self.gave_up else ""
        return (f" (after {self.attempts} attempts in {self.seconds:.1f} s"
                f"{', waiting for ' + why if why else ''}{gave})")


def _retry_reason(result: VersionResult) -> str:
    """Why ``result`` may still change ("login", "database", "replay"), or "" when it is
    final."""
    if result.verdict is Verdict.UNREACHABLE and result.reason_code in HEALING:
        return "login"
    if result.verdict is Verdict.DENIED and result.reason_code == UNKNOWN_DATABASE:
        return "database"
    replayable = result.verdict in REPLAYABLE or result.reason_code == UPGRADE_UNDER_WAY
    if replayable and result.node is not None:
        from keadb_cli.db.node import READ_ONLY_REPLICA, STANDBY

        if result.node.role in (STANDBY, READ_ONLY_REPLICA):
            return "replay"
    return ""


def check_version(
    access: DbAccess,
    expected: Schema,
    *,
    env: dict[str, str] | None = None,
    wait: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VersionResult:
    """Connect as Kea would, read ``schema_version`` and compare it with ``expected``.
    Every statement only reads, so each has the read deadline (see
    :meth:`keadb_cli.db.plan.ConnectPlan.for_reads`) unless ``--statement-timeout`` is set.

    With ``wait`` seconds, a result that can still change is read again (a new session
    each time) until it is final or the time is up: a login that can heal, a database that
    does not exist yet, and on a
    standby or a read-only replica BEHIND and EMPTY (:data:`REPLAYABLE`), and a MySQL
    upgrade's mark (:data:`UPGRADE_UNDER_WAY`) that its replay has not passed yet.

    Connection failures become UNREACHABLE / DENIED results; only bad settings raise.

    Raises:
        SettingsError: the access entry cannot be used as given.
    """
    plan = plan_for(access, env).for_reads()
    waiter = Waiter(wait, clock, sleep)
    retried = ""
    while True:
        waiter.attempt()
        result = _check_once(access, expected, plan)
        reason = _retry_reason(result)
        if reason and waiter.again():
            retried = reason
            continue
        if wait is None:
            return result
        waited = Waited(wait, waiter.attempts, waiter.seconds, retried, gave_up=bool(reason))
        return dataclasses.replace(result, detail=result.detail + waited.text(), wait=waited)


def _check_once(access: DbAccess, expected: Schema, plan: ConnectPlan) -> VersionResult:
    """One login and one read of the version (:func:`check_version` without a wait)."""
    warnings: list[str] = []
    try:
        session = open_session(plan)
    except DeniedError as err:
        return VersionResult(Verdict.DENIED, access, expected, detail=err.message,
                             reason_code=err.reason_code)
    except KeaDbError as err:  # unreachable, TLS failure, protocol
        return VersionResult(Verdict.UNREACHABLE, access, expected, detail=err.message,
                             reason_code=err.reason_code)
    plan = plan.answered_by(session.answered)  # a host list: messages name the host
    answered = session.answered
    if session.fallback:
        warnings.append(f"opened with {session.library}: {session.fallback}")
    tls = f"{session.tls_version} {session.tls_cipher}" if session.tls_version else None
    if access.tls_requested and plan.tls.use and not tls:
        warnings.append(
            f"TLS keys are set (ssl-mode {plan.tls.mode}) but the session is cleartext: "
            "the server offers no TLS"
        )
    node: Node | None = None
    try:
        node = plan.backend.read_node(session)
        found, reason, tables = read_state(session, plan)
    except QueryError as err:
        return VersionResult(
            Verdict.DENIED, access, expected, detail=f"cannot read schema_version: {err.message}",
            tls=tls, warnings=tuple(warnings), reason_code=err.reason_code or "query-failed",
            node=node, answered=answered,
        )
    except KeaDbError as err:  # the session broke, timed out or sent too much
        return VersionResult(
            Verdict.UNREACHABLE, access, expected, detail=err.message, tls=tls,
            warnings=tuple(warnings), reason_code=err.reason_code, node=node,
            answered=answered,
        )
    finally:
        session.close()
    if found is None:
        verdict = Verdict.FOREIGN if reason else Verdict.EMPTY
        detail = reason or "no tables: `kea-db init` can create the schema"
        return VersionResult(
            verdict, access, expected, detail=detail, tables=tables, tls=tls,
            warnings=tuple(warnings), node=node, answered=answered,
            reason_code=UPGRADE_UNDER_WAY if upgrading(reason) else "",
        )
    verdict = judge(found, expected)
    detail = {
        Verdict.MATCH: "the schema is the one this Kea release expects",
        Verdict.BEHIND: "older than the release expects: back up, stop Kea, then upgrade "
        "explicitly (Kea never upgrades by itself)",
        Verdict.AHEAD: "newer than the release expects: Kea refuses to start on it",
    }[verdict]
    return VersionResult(
        verdict, access, expected, found=found, detail=detail, tls=tls,
        warnings=tuple(warnings), node=node, answered=answered,
    )


def check_all(
    accesses: Sequence[DbAccess], target: Target, *, env: dict[str, str] | None = None,
    wait: float | None = None,
) -> list[VersionResult]:
    """check_version for each SQL backend, against the schema the target expects of it
    (each with its own ``wait``)."""
    return [check_version(a, target.schema_for(a.type or ""), env=env, wait=wait)
            for a in accesses]
