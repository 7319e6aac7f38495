"""``kea-db leases export``: Kea's memfile CSV of a database's leases, as kea-admin writes it.

The file is what ``kea-admin lease-dump -4|-6`` of the release matching the schema writes
for the same database, byte for byte: the schema's own ``lease{4,6}DumpHeader`` and
``lease{4,6}DumpData`` routines are called (they exist in every database Kea built, and in
every one kea-db built), and each row is written as kea-admin's client program prints it
and kea-admin then turns it (the backend objects' ``lease_dump_line``). The routines give
the header, the column order, the escaping (commas as ``&#x2c``) and the order of the rows.

Rows stream from the server to the file one at a time, nothing kept (MySQL: an unbuffered
result; PostgreSQL through libpq: ``COPY (SELECT * FROM leaseNDumpData()) TO STDOUT``, the
same text of each value as psql prints, one library call per row; through the psycopg
fallback: single-row mode). A file is written to a temporary file beside
it and renamed at the end: an error or Ctrl-C leaves no half-written file, and an existing
file is only replaced when asked (``force``).

A core module: it never prints and never exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import Row, open_session
from keadb_cli.errors import ExitCode, KeaDbError, QueryError, Refusal, SettingsError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema, releases_for_schema
from keadb_cli.schema.state import access_json, kea_schema, read_state

if TYPE_CHECKING:
    from keadb_cli.db.backends.base import Backend
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session

# One statement of an export reads the whole lease table: the default deadline of a
# statement (60 s) is too short for millions of rows; --statement-timeout still wins.
EXPORT_STATEMENT_TIMEOUT = 6 * 3600.0
PROGRESS_EVERY = 1.0  # seconds between two progress reports
_CHUNK = 1024 * 1024  # bytes gathered before one write


@dataclass(frozen=True)
class ExportResult:
    access: DbAccess
    family: int
    schema: Schema
    rows: int  # lease rows (the header line not counted)
    output: str | None  # the file written, or None for stdout
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            **access_json(self.access),
            "family": self.family,
            "schema": str(self.schema),
            "releases": [str(r) for r in releases_for_schema(self.access.type or "",
                                                             self.schema)],
            "rows": self.rows,
            "file": self.output,
            "seconds": round(self.seconds, 3),
        }


def pick_lease_access(accesses: list[DbAccess]) -> DbAccess:
    """The one backend to export from: the only one given, or the only lease database of
    a configuration.

    Raises:
        SettingsError: none, or several that --backend must choose between.
    """
    if len(accesses) == 1:
        return accesses[0]
    leases = [a for a in accesses if a.role == "lease"]
    if len(leases) == 1:
        return leases[0]
    if not accesses:
        raise SettingsError("no SQL backend to export from: give --type and the database, "
                            "or --config with a lease database")
    paths = ", ".join(a.path or "?" for a in accesses)
    raise SettingsError(f"several SQL backends ({paths}): choose one with --backend")


def check_output(output: str, *, force: bool) -> None:
    """Refuse an output path before connecting: a missing directory, a directory, an
    existing file without ``force``.

    Raises:
        SettingsError: the path cannot be written as asked.
    """
    folder = os.path.dirname(output) or "."
    if not os.path.isdir(folder):
        raise SettingsError(f"--output {output}: the directory {folder} does not exist")
    if os.path.isdir(output):
        raise SettingsError(f"--output {output} is a directory")
    if os.path.lexists(output) and not force:
        raise SettingsError(f"--output {output} exists; give --force to replace it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingsError(f"--output {output}: the directory {folder} is not writable")


def export_leases(
    access: DbAccess,
    family: int,
    *,
    output: str | None,
    stdout: IO[bytes],
    force: bool = False,
    env: dict[str, str] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> ExportResult:
    """Write the ``family`` (4 or 6) leases of ``access``'s database as kea-admin
    lease-dump does: to ``output`` (through a temporary file beside it), or to ``stdout``.

    ``progress`` is called with (rows so far, seconds) about once a second.

    Raises:
        SettingsError: a bad family or output path.
        KeaDbError: connection failures (UNREACHABLE, DENIED...); a database without a
            known Kea schema (EMPTY, FOREIGN); a failed dump routine.
    """
    if family not in (4, 6):
        raise SettingsError(f"the lease family is 4 or 6, not {family}")
    if output is not None:
        check_output(output, force=force)
    if access.statement_timeout is None:
        access = dataclasses.replace(access, statement_timeout=EXPORT_STATEMENT_TIMEOUT)
    plan = plan_for(access, env)
    backend = plan.backend
    started = time.monotonic()
    session = open_session(plan)
    try:
        schema = known_schema(session, plan, access)
        if output is None:
            rows = _dump(session, backend, family, stdout, progress, started)
        else:
            rows = _dump_to_file(session, backend, family, output, force, progress, started)
    finally:
        session.close()
    return ExportResult(access, family, schema, rows, output, time.monotonic() - started)


def known_schema(session: Session, plan: ConnectPlan, access: DbAccess,
                 nothing: str = "nothing exported") -> Schema:
    """The schema version of the database, when it is one a known Kea release expects;
    ``nothing`` ends each refusal ("nothing exported").

    Raises:
        KeaDbError: EMPTY or FOREIGN.
    """
    try:
        return kea_schema(*read_state(session, plan), access.type or "", nothing=nothing)
    except Refusal as refusal:
        raise KeaDbError(f"{plan.where}: {refusal.detail}", exit_code=refusal.code) from None


class _Lines:
    """Rows of a dump routine as lines of kea-admin's file, written in large chunks."""

    def __init__(self, format_line: Callable[[Row], str], copy_line: Callable[[bytes], bytes],
                 out: IO[bytes], progress: Callable[[int, float], None] | None,
                 started: float) -> None:
        self.format_line, self.copy_line, self.out = format_line, copy_line, out
        self.progress, self.started = progress, started
        self.parts: list[bytes] = []
        self.size = 0
        self.rows = 0
        self.next_report = time.monotonic() + PROGRESS_EVERY

    def add(self, row: Row) -> None:
        line = self.format_line(row).encode("utf-8", "surrogateescape")
        self.parts.append(line)
        self.size += len(line)
        if self.size >= _CHUNK:
            self.flush()

    def add_lease(self, row: Row) -> None:
        self.add(row)
        self.counted()

    def add_copied(self, data: bytes) -> None:
        """A line of COPY's data (PostgreSQL), turned into the file's line."""
        line = self.copy_line(data)
        self.parts.append(line)
        self.size += len(line)
        if self.size >= _CHUNK:
            self.flush()
        self.counted()

    def counted(self) -> None:
        self.rows += 1
        if self.progress is not None and time.monotonic() >= self.next_report:
            self.next_report = time.monotonic() + PROGRESS_EVERY
            self.progress(self.rows, time.monotonic() - self.started)

    def flush(self) -> None:
        if self.parts:
            self.out.write(b"".join(self.parts))
            self.parts, self.size = [], 0


def _dump(session: Session, backend: Backend, family: int, out: IO[bytes],
          progress: Callable[[int, float], None] | None, started: float) -> int:
    header_sql, data_sql = backend.lease_dump_sql(family)
    lines = _Lines(backend.lease_dump_line, backend.lease_dump_copy_line, out, progress,
                   started)
    # PostgreSQL through libpq: the data routine's rows as COPY's text, one call per row
    # instead of one per value (the same values: COPY and psql both get the server's text)
    copy_sql = backend.lease_dump_copy(family)
    copy_out = getattr(session, "copy_out", None)
    try:
        session.each_row(header_sql, lines.add)
        if copy_sql and copy_out is not None:
            copy_out(copy_sql, lines.add_copied)
        else:
            session.each_row(data_sql, lines.add_lease)
    except QueryError as err:
        raise KeaDbError(f"{backend.display}: the schema's lease dump routine failed: "
                         f"{err.message}; nothing exported", exit_code=ExitCode.FOREIGN) from None
    lines.flush()
    out.flush()
    return lines.rows


def _dump_to_file(session: Session, backend: Backend, family: int, output: str,
                  force: bool, progress: Callable[[int, float], None] | None,
                  started: float) -> int:
    folder = os.path.dirname(output) or "."
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(output)}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            rows = _dump(session, backend, family, fh, progress, started)
            os.fsync(fh.fileno())
        if force:
            os.replace(temporary, output)
        else:
            try:
                os.link(temporary, output)  # never replaces a file that appeared meanwhile
            except FileExistsError:
                raise SettingsError(f"--output {output} appeared during the export; give "
                                    "--force to replace it") from None
            except OSError:  # a file system without hard links
                if os.path.lexists(output):
                    raise SettingsError(f"--output {output} appeared during the export; "
                                        "give --force to replace it") from None
                os.rename(temporary, output)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise SettingsError(f"--output {output}: {err.strerror or err}; nothing "
                            "written") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return rows
