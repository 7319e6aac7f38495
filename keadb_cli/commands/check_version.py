"""Read a Kea database's schema version as Kea's server does, and judge it.

Read-only: everything runs inside a read-only transaction that is rolled back; nothing is
ever created (unlike Kea's server, which may run ``kea-admin db-init`` on an empty database).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import DeniedError, ExitCode, KeaDbError, QueryError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.commands.settings import Target


class Verdict(StrEnum):
    """check-version's answer for one backend. The order below is "worst last"."""

    MATCH = "MATCH"
    EMPTY = "EMPTY"
    BEHIND = "BEHIND"
    AHEAD = "AHEAD"
    FOREIGN = "FOREIGN"
    DENIED = "DENIED"
    UNREACHABLE = "UNREACHABLE"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode[self.name] if self is not Verdict.MATCH else ExitCode.OK

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The verdict that decides the exit code of a run over several backends."""
    return max(verdicts, key=lambda v: v.rank) if verdicts else Verdict.MATCH


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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "found": str(self.found) if self.found else None,
            "expected": str(self.expected) if self.expected else None,
            **access_json(self.access),
            "detail": self.detail,
            "tls": self.tls,
            "warnings": list(self.warnings),
        }
        if self.reason_code:
            out["reason_code"] = self.reason_code
        if self.access.path:
            out["path"] = self.access.path
            out["role"] = self.access.role
        if self.tables:
            out["tables"] = list(self.tables)
        return out


def access_json(access: DbAccess) -> dict[str, Any]:
    """Where a result is from, for JSON: type, host, port and database name."""
    return {
        "type": access.type,
        "host": access.effective_host,
        "port": access.port or default_port(access.type),
        "name": access.name,
    }


def default_port(db_type: str | None) -> int | None:
    from keadb_cli.db.backends import BACKENDS

    backend = BACKENDS.get(db_type or "")
    return backend.default_port if backend else None


# schema_version.minor while kea-db upgrades MySQL (see commands/upgrade/journal.py): no
# Kea release expects it, so neither Kea nor kea-admin takes the database for a version.
UPGRADING_MINOR = 9999

_INT_RE = re.compile(r"-?[0-9]+\Z")  # ASCII only: \d takes other scripts' digits too
_INT32_MAX = 2**31 - 1


def judge(found: Schema, expected: Schema) -> Verdict:
    """Kea accepts only an exact match; older is BEHIND, newer is AHEAD."""
    if found == expected:
        return Verdict.MATCH
    return Verdict.BEHIND if found < expected else Verdict.AHEAD


def _version_from_rows(rows: list[tuple[str | None, ...]]) -> Schema | str:
    """A Schema, or the reason why the rows are not a version Kea can read."""
    if not rows:
        return "schema_version has no row"
    if len(rows) > 1:
        return f"schema_version has {len(rows)} rows, Kea expects exactly one"
    version, minor = (rows[0] + (None, None))[:2]
    if version is None:
        return "schema_version.version is NULL"
    if minor is None:
        return "schema_version.minor is NULL: Kea cannot read this version"
    v_text, m_text = version.strip(), minor.strip()
    if not (_INT_RE.match(v_text) and _INT_RE.match(m_text)):
        return f"schema_version holds '{shown(v_text, 40)}'.'{shown(m_text, 40)}', not two integers"
    v, m = _int32(v_text), _int32(m_text)
    if v is None or m is None:
        return (f"schema_version holds {shown(v_text, 20)}.{shown(m_text, 20)}, beyond the "
                "32-bit integers Kea reads")
    if v < 0 or m < 0:
        return f"schema_version holds a negative version {v}.{m}"
    if m == UPGRADING_MINOR:
        return (f"schema_version says {v}.{m}: a kea-db upgrade is under way or was cut "
                "short; run `kea-db upgrade` again to complete it")
    return Schema(v, m)


def _int32(text: str) -> int | None:
    """The value of a decimal integer Kea could read (32 bits), without ever converting a
    huge digit string."""
    digits = text.lstrip("-").lstrip("0")
    if len(digits) > 10:
        return None
    value = int(digits or "0") * (-1 if text.startswith("-") else 1)
    return value if -_INT32_MAX - 1 <= value <= _INT32_MAX else None


def _names(rows: list[tuple[str | None, ...]]) -> tuple[str, ...]:
    """Object names from the server, printable (control characters escaped, shortened)."""
    return tuple(shown(r[0] or "", 128) for r in rows)


def _missing_table(plan: ConnectPlan, err: QueryError) -> bool:
    return err.code in plan.backend.missing_table_codes


def read_state(session: Session, plan: ConnectPlan) -> tuple[Schema | None, str, tuple[str, ...]]:
    """(version, reason, tables) for an open session, in a read-only transaction.

    ``version`` is None when there is no usable version; ``reason`` then says why (empty
    string for an empty database).
    """
    backend = plan.backend
    session.query(backend.read_only_begin)
    try:
        try:
            rows = session.query(backend.version_sql)
        except QueryError as err:
            if not _missing_table(plan, err):
                raise
            session.query("ROLLBACK")
            session.query(backend.read_only_begin)
            tables = _names(session.query(backend.tables_sql))
            if tables:
                return None, "tables but no schema_version table", tables
            routines = _names(session.query(backend.routines_sql))
            if routines:
                return None, "no tables, but routines remain", routines
            return None, "", ()
        found = _version_from_rows(rows)
        if isinstance(found, str):
            tables = _names(session.query(backend.tables_sql))
            return None, found, tables
        return found, "", ()
    finally:
        if not session.closed:  # a broken or interrupted session has nothing to roll back
            session.query("ROLLBACK")


def check_version(
    access: DbAccess,
    expected: Schema,
    *,
    env: dict[str, str] | None = None,
) -> VersionResult:
    """Connect as Kea would, read ``schema_version`` and compare it with ``expected``.

    Connection failures become UNREACHABLE / DENIED results; only bad settings raise.

    Raises:
        SettingsError: the access entry cannot be used as given.
    """
    plan = plan_for(access, env)
    warnings: list[str] = []
    try:
        session = open_session(plan)
    except DeniedError as err:
        return VersionResult(Verdict.DENIED, access, expected, detail=err.message,
                             reason_code=err.reason_code)
    except KeaDbError as err:  # unreachable, TLS failure, protocol
        return VersionResult(Verdict.UNREACHABLE, access, expected, detail=err.message,
                             reason_code=err.reason_code)
    if session.fallback:
        warnings.append(f"opened with {session.library}: {session.fallback}")
    tls = f"{session.tls_version} {session.tls_cipher}" if session.tls_version else None
    if access.tls_requested and plan.tls.use and not tls:
        warnings.append(
            f"TLS keys are set (ssl-mode {plan.tls.mode}) but the session is cleartext: "
            "the server offers no TLS"
        )
    try:
        found, reason, tables = read_state(session, plan)
    except QueryError as err:
        return VersionResult(
            Verdict.DENIED, access, expected, detail=f"cannot read schema_version: {err.message}",
            tls=tls, warnings=tuple(warnings), reason_code=err.reason_code or "query-failed",
        )
    except KeaDbError as err:  # the session broke, timed out or sent too much
        return VersionResult(
            Verdict.UNREACHABLE, access, expected, detail=err.message, tls=tls,
            warnings=tuple(warnings), reason_code=err.reason_code,
        )
    finally:
        session.close()
    if found is None:
        verdict = Verdict.FOREIGN if reason else Verdict.EMPTY
        detail = reason or "no tables: `kea-db init` can create the schema"
        return VersionResult(
            verdict, access, expected, detail=detail, tables=tables, tls=tls,
            warnings=tuple(warnings),
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
        warnings=tuple(warnings),
    )


def check_all(
    accesses: Sequence[DbAccess], target: Target, *, env: dict[str, str] | None = None
) -> list[VersionResult]:
    """check_version for each SQL backend, against the schema the target expects of it."""
    return [check_version(a, target.schema_for(a.type or ""), env=env) for a in accesses]
