"""Read a Kea database's schema version as Kea's server does, and judge it.

Read-only: everything runs inside a read-only transaction that is rolled back; nothing is
ever created (unlike Kea's server, which may run ``kea-admin db-init`` on an empty database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import DeniedError, KeaDbError, QueryError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema
from keadb_cli.schema.state import Verdict as Verdict
from keadb_cli.schema.state import access_json as access_json
from keadb_cli.schema.state import judge as judge
from keadb_cli.schema.state import read_state as read_state
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
        return out


def check_version(
    access: DbAccess,
    expected: Schema,
    *,
    env: dict[str, str] | None = None,
) -> VersionResult:
    """Connect as Kea would, read ``schema_version`` and compare it with ``expected``.
    Every statement only reads, so each has the read deadline (see
    :meth:`keadb_cli.db.plan.ConnectPlan.for_reads`) unless ``--statement-timeout`` is set.

    Connection failures become UNREACHABLE / DENIED results; only bad settings raise.

    Raises:
        SettingsError: the access entry cannot be used as given.
    """
    plan = plan_for(access, env).for_reads()
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
    accesses: Sequence[DbAccess], target: Target, *, env: dict[str, str] | None = None
) -> list[VersionResult]:
    """check_version for each SQL backend, against the schema the target expects of it."""
    return [check_version(a, target.schema_for(a.type or ""), env=env) for a in accesses]
