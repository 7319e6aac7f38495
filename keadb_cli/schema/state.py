"""The state of a Kea database, as every command reads and judges it.

:func:`read_state` reads ``schema_version`` as Kea's server does (in a read-only
transaction, rolled back); :func:`judge` compares it with the schema a :class:`Target`
expects. check-version, init, upgrade, verify and preflight share them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.errors import ExitCode, QueryError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Release, Schema, expected_schema
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session


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
class Target:
    """What schema each backend must have, and why ("--kea-version 2.2", "kea-dhcp4 2.2.0")."""

    release: Release | None
    expect: Schema | None
    source: str

    def schema_for(self, db_type: str) -> Schema:
        if self.expect is not None:
            return self.expect
        assert self.release is not None
        return expected_schema(self.release, db_type)

    def to_json(self) -> dict[str, Any]:
        return {
            "kea_version": str(self.release) if self.release else None,
            "expect": str(self.expect) if self.expect else None,
            "source": self.source,
        }


def access_json(access: DbAccess) -> dict[str, Any]:
    """Where a result is from, for JSON: type, host, port and database name."""
    return {
        "type": access.type,
        "host": access.effective_host,
        "port": access.port or default_port(access.type),
        "name": access.name,
    }


def default_port(db_type: str | None) -> int | None:
    """The port a session goes to when Kea's ``port`` is unset: the client library's
    environment variable (PGPORT, MYSQL_TCP_PORT) when it holds one port, else the
    backend's port (a bad value is refused when the session is planned: db/plan.py)."""
    from keadb_cli.db.backends import BACKENDS

    backend = BACKENDS.get(db_type or "")
    if backend is None:
        return None
    value = os.environ.get(backend.port_variable, "").strip() if backend.port_variable else ""
    return int(value) if value.isdigit() and 0 < int(value) <= 65535 else backend.default_port


# schema_version.minor while kea-db upgrades MySQL (see commands/upgrade/journal.py): no
# Kea release expects it, so neither Kea nor kea-admin takes the database for a version.
UPGRADING_MINOR = 9999
UPGRADING = "a kea-db upgrade is under way or was cut short"  # what that version says


def upgrading(reason: str) -> bool:
    """Whether a FOREIGN reason is the mark of a kea-db upgrade under way (a replica that
    replays one shows it until the upgrade's last statement arrives)."""
    return f".{UPGRADING_MINOR}: {UPGRADING}" in reason

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
        return (f"schema_version says {v}.{m}: {UPGRADING}; run `kea-db upgrade` again to "
                "complete it")
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


def kea_schema(found: Schema | None, reason: str, tables: Sequence[str], db_type: str, *,
               nothing: str, known: bool = True) -> Schema:
    """The Kea schema :func:`read_state` found, for a command that acts on Kea's tables;
    ``nothing`` ends each refusal ("nothing was deleted"). With ``known``, the schema must
    also be one of a Kea release kea-db knows.

    Raises:
        Refusal: EMPTY (no schema at all) or FOREIGN (not Kea's, or not a known release's).
    """
    from keadb_cli.errors import Refusal
    from keadb_cli.kea.releases import releases_for_schema

    if found is None and not reason:
        raise Refusal("EMPTY", ExitCode.EMPTY, f"the database is empty (no Kea schema); {nothing}")
    if found is None:
        names = ", ".join(tables[:10])
        raise Refusal("FOREIGN", ExitCode.FOREIGN, f"not a Kea schema kea-db can read "
                      f"({reason}){': ' + names if names else ''}; {nothing}")
    if known and not releases_for_schema(db_type, found):
        raise Refusal("FOREIGN", ExitCode.FOREIGN,
                      f"schema_version says {found}, not the schema of a Kea release kea-db "
                      f"knows (see `kea-db versions`); {nothing}")
    return found


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
