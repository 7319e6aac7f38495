"""What ``kea-db preflight`` reports: per configuration entry, a list of checks, each pass,
warn, fail or skip, with the exit code a failure stands for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.errors import ExitCode, worst_exit

if TYPE_CHECKING:
    from keadb_cli.commands.preflight.fleet import FleetFinding
    from keadb_cli.db.node import Node
    from keadb_cli.db.session_kit import Endpoint


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not run: an earlier check failed, or there is nothing to check


# The checks, in the order they run for every entry.
CHECKS = ("config", "login", "node", "schema", "privileges", "tls")


@dataclass(frozen=True)
class Check:
    """One check of one entry. ``code`` is the exit code a failure stands for."""

    name: str
    status: Status
    detail: str
    code: ExitCode = ExitCode.OK
    reason_code: str = ""
    attempts: int = 0  # login: how many times kea-db tried (--wait retries)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.name, "status": self.status.value,
                               "detail": self.detail}
        if self.status is Status.FAIL:
            out["exit_code"] = int(self.code)
        if self.reason_code:
            out["reason_code"] = self.reason_code
        if self.attempts:
            out["attempts"] = self.attempts
        return out


def fail(name: str, code: ExitCode, detail: str, reason_code: str = "") -> Check:
    return Check(name, Status.FAIL, detail, code, reason_code)


def passed(name: str, detail: str) -> Check:
    return Check(name, Status.PASS, detail)


def warn(name: str, detail: str, reason_code: str = "") -> Check:
    return Check(name, Status.WARN, detail, reason_code=reason_code)


def skipped(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


@dataclass(frozen=True)
class SchemaFacts:
    """What the schema check read: the version found (None: EMPTY or FOREIGN), the one the
    release expects, and check-version's verdict (MATCH, BEHIND, AHEAD, EMPTY, FOREIGN)."""

    found: str | None
    expected: str
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {"found": self.found, "expected": self.expected, "verdict": self.verdict}


@dataclass(frozen=True)
class EntryReport:
    """The checks of one database entry of one file (or of the command-line settings).

    ``path`` is the entry's place in the file ("Dhcp4.lease-database"), or "" for a whole
    file that could not be read, or "command line". ``target`` is password-free.
    """

    file: str | None
    path: str
    role: str | None
    location: str  # "file:line" of the entry, "" when unknown
    target: str  # "postgresql kea@db1:5432/kea"
    checks: tuple[Check, ...]
    checked_with: str | None = None  # another entry whose session served this one too
    node: Node | None = None  # the server's role, when a session was opened
    answered: Endpoint | None = None  # the host that answered (of a host list), likewise
    type: str | None = None  # mysql, postgresql; None when the entry could not be read
    schema: SchemaFacts | None = None  # None when the schema was not read
    tls_days_left: int | None = None  # the server certificate's, when TLS showed one

    @property
    def exit_code(self) -> ExitCode:
        return worst_exit(c.code for c in self.checks if c.status is Status.FAIL)

    @property
    def status(self) -> Status:
        statuses = {c.status for c in self.checks}
        for status in (Status.FAIL, Status.WARN, Status.PASS):
            if status in statuses:
                return status
        return Status.SKIP

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "path": self.path,
            "role": self.role,
            "location": self.location,
            "target": self.target,
            "status": self.status.value,
            "exit_code": int(self.exit_code),
            "checked_with": self.checked_with,
            "checks": [c.to_json() for c in self.checks],
            "node": self.node.to_json() if self.node else None,
            "answered": self.answered.to_json() if self.answered else None,
            "type": self.type,
            "schema": self.schema.to_json() if self.schema else None,
            "tls_days_left": self.tls_days_left,
        }


@dataclass(frozen=True)
class Report:
    """The whole run: every entry of every file, the release, and the wall time."""

    entries: tuple[EntryReport, ...]
    kea_version: str | None
    source: str
    elapsed: float
    databases: int  # distinct databases checked (entries naming one database share it)
    options: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # the files' own warnings ("file:line: ...")
    fleet: tuple[FleetFinding, ...] = ()  # what several files break together

    @property
    def exit_code(self) -> ExitCode:
        return worst([e.exit_code for e in self.entries]
                     + [f.code for f in self.fleet if f.status is Status.FAIL])

    def to_json(self) -> dict[str, Any]:
        counts = {s.value: 0 for s in Status}
        for entry in self.entries:
            for check in entry.checks:
                counts[check.status.value] += 1
        return {
            "kea_version": self.kea_version,
            "source": self.source,
            "exit_code": int(self.exit_code),
            "elapsed_s": round(self.elapsed, 3),
            "databases": self.databases,
            "counts": counts,
            "options": self.options,
            "warnings": list(self.warnings),
            "fleet": [f.to_json() for f in self.fleet],
            "entries": [e.to_json() for e in self.entries],
        }


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The run's exit code. Kea refusing the file or the entry (CONFIG, SETTINGS) is worse
    than any database answer, and so it ranks after every code of :data:`SEVERITY`."""
    return worst_exit(codes)
