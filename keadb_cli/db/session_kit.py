"""What every session implementation shares: the :class:`Session` interface, loading a
client library, deadlines, the bounds on one answer, and the error constructors.

:mod:`keadb_cli.db.session` opens sessions; the library sessions (:mod:`.libpq`,
:mod:`.libmariadb`) and the driver fallback (:mod:`.drivers`) are built from this module
and never import the opener.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

from keadb_cli.errors import KeaDbError, UnreachableError
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.plan import ConnectPlan

MAX_ROWS = 100_000  # rows one statement may return to kea-db
MAX_BYTES = 32 * 1024 * 1024  # bytes of values one statement may return
MAX_GROWTH = 40 * 1024 * 1024  # resident memory one statement may add (buffered messages)
GRACE = 2.0  # seconds past the server-side timeout before kea-db gives up itself
CANCEL_WAIT = 3.0  # seconds a cancel request may take

Row = tuple[str | None, ...]


@dataclass(frozen=True)
class Endpoint:
    """The server a session reached: with PostgreSQL's host list, the host that answered
    (libpq's ``PQhost`` / ``PQport`` once logged in); else the plan's host or socket."""

    host: str  # a name, an address, or a Unix socket (directory, for libpq)
    port: int | None

    def __str__(self) -> str:
        if self.port is None or self.host.startswith("/"):
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}

    @classmethod
    def of_plan(cls, plan: ConnectPlan) -> Endpoint:
        """The plan's one endpoint (a backend without host lists)."""
        if plan.unix_socket:
            return cls(plan.unix_socket, None)
        return cls(plan.host or "localhost", plan.port)


class Session(Protocol):
    """An open session: text rows, what TLS it runs on, and what opened it."""

    library: str  # "libpq 15.20", "libmariadb 3.3.20", "psycopg 3.2.3"
    fallback: str | None  # why a driver opened it instead of Kea's library, else None
    tls_version: str | None  # "TLSv1.3", or None for cleartext
    tls_cipher: str | None
    tls_bits: int | None
    server: str  # "PostgreSQL 150020", "10.11.19-MariaDB", "9.1.0"
    answered: Endpoint  # the host (of a PostgreSQL host list) the session reached
    closed: bool

    def query(self, sql: str) -> list[Row]:
        """Run ``sql`` (several statements on PostgreSQL) and return the last result's rows.

        Raises:
            QueryError: the statement failed (``code`` is SQLSTATE or the MySQL number).
            UnreachableError: the session broke, timed out, or the result is over the caps.
        """
        ...

    def each_row(self, sql: str, on_row: Callable[[Row], None]) -> int:
        """Run one statement and hand each row of its answer to ``on_row`` as it arrives
        (nothing kept: no cap on the rows or bytes of the whole answer, only on one row and
        on memory). Returns the number of rows.

        Raises:
            QueryError, UnreachableError: as :meth:`query`; and what ``on_row`` raises.
        """
        ...

    def close(self) -> None: ...


class LibrarySession:
    """What the library sessions share: closing once, the context manager, and refusing
    statements once closed (a broken, timed-out or interrupted session stays closed)."""

    closed: bool = False
    _plan: ConnectPlan

    def _release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._release()

    def _check_open(self) -> None:
        if self.closed:
            raise UnreachableError(
                f"{self._plan.backend.display} {self._plan.where}: the session is closed",
                reason_code="connection-lost",
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Signature = tuple[str, Any, list[Any]]  # a C function: name, result type, argument types


def load_library(soname: str, link_name: str, signatures: Iterable[Signature]) -> Any:
    """A client library by soname (what Kea's packages link), else by what the linker finds
    under ``link_name``, with ``signatures`` declared. None when neither loads."""
    import ctypes

    for name in (soname, None):
        path = name
        if path is None:  # ctypes.util spawns processes: only when the soname is absent
            from ctypes import util

            path = util.find_library(link_name)
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            for function, result, arguments in signatures:
                declared = getattr(lib, function)
                declared.restype, declared.argtypes = result, arguments
            return lib
        except (OSError, AttributeError):  # missing, or too old for a function kea-db uses
            continue
    return None


class Deadline:
    """A point in time for waits; ``left()`` is never negative."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at


def wait_socket(fd: int, *, read: bool, write: bool, deadline: Deadline) -> bool:
    """Wait until ``fd`` is ready or the deadline passes (False). Ctrl-C raises
    KeyboardInterrupt out of the wait, so the caller can cancel and re-raise."""
    events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, events)
        return bool(selector.select(deadline.left()))


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory, to bound what a library buffers for one answer."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


WATCH_INTERVAL = 0.005  # seconds between two looks at memory while a statement runs


class Budget:
    """What one statement may return: rows, bytes of values, and memory growth.

    Used as a context manager around the reading of an answer, with the session's socket:
    a watcher thread then looks at memory every few milliseconds while the client library
    reads (libpq reads as long as data arrives, and buffers a whole message however large
    its length says it is), and shuts the socket down past :data:`MAX_GROWTH`, so the
    library's read ends and the next check reports the cap.
    """

    def __init__(self, backend: str, where: str, fd: int = -1, *,
                 streaming: bool = False) -> None:
        self.streaming = streaming  # rows are handed on, not kept: cap each row only
        self.rows = 0
        self.bytes = 0
        self.base = resident_bytes()
        self.prefix = f"{backend} {where}"
        self.fd = fd
        self.exceeded = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.base and self.fd >= 0:
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(1.0)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            if resident_bytes() - self.base > MAX_GROWTH:
                self.exceeded = True
                import socket

                with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self.fd)) as s:
                    s.shutdown(socket.SHUT_RDWR)
                return

    def add_row(self, size: int) -> None:
        if self.streaming:
            if size > MAX_BYTES:
                raise self._over(f"a row of more than {MAX_BYTES // (1024 * 1024)} MiB")
            return
        self.rows += 1
        self.bytes += size
        if self.rows > MAX_ROWS:
            raise self._over(f"more than {MAX_ROWS:,} rows")
        if self.bytes > MAX_BYTES:
            raise self._over(f"more than {MAX_BYTES // (1024 * 1024)} MiB")

    def check_memory(self) -> None:
        if self.streaming and not self.exceeded:
            # a streamed answer keeps nothing: read /proc once every few hundred rows (the
            # watcher thread looks every few milliseconds anyway)
            self.rows += 1
            if self.rows % 512:
                return
        if self.exceeded or (self.base and resident_bytes() - self.base > MAX_GROWTH):
            raise self._over(f"more than {MAX_GROWTH // (1024 * 1024)} MiB in one answer")

    def _over(self, what: str) -> KeaDbError:
        return UnreachableError(
            f"{self.prefix}: the server sent {what} for one statement; kea-db stopped "
            "reading and closed the session",
            reason_code="result-too-large",
        )


def login_error(backend: str, where: str, text: str, *, code: str = "") -> KeaDbError:
    """:func:`keadb_cli.db.classify.login_error`, imported only when a login fails."""
    from keadb_cli.db import classify

    return classify.login_error(backend, where, text, code=code)


def query_error(backend: str, text: str, *, code: str = "") -> KeaDbError:
    """:func:`keadb_cli.db.classify.query_error`, imported only when a statement fails."""
    from keadb_cli.db import classify

    return classify.query_error(backend, text, code=code)


def garbage_error(backend: str, where: str, text: str) -> UnreachableError:
    """:func:`keadb_cli.db.classify.garbage_error`, imported only when an answer is garbage."""
    from keadb_cli.db import classify

    return classify.garbage_error(backend, where, text)


def timed_out(plan: ConnectPlan) -> UnreachableError:
    """The statement deadline of ``plan`` passed; the message names which deadline it was
    (``--statement-timeout``, or the read deadline of a command that only reads)."""
    return UnreachableError(
        f"{plan.backend.display} {plan.where}: no answer within {plan.statement_timeout:g} s "
        f"({plan.deadline}); the statement was cancelled and the session closed",
        reason_code="statement-timeout",
    )


def statement_error(plan: ConnectPlan, text: str, *, code: str = "") -> KeaDbError:
    """:func:`query_error` for a statement of ``plan``'s session. When the server ended the
    statement itself (PostgreSQL 57014, MariaDB 1969, MySQL 3024: usually its side of the
    deadline, which kea-db sets with the login), the message keeps the server's words and
    names the deadline that was in force, as kea-db's own end does (:func:`timed_out`)."""
    error = query_error(plan.backend.type, text, code=code)
    if error.reason_code != "statement-timeout":
        return error
    return UnreachableError(
        f"{plan.backend.display} {plan.where}: the server ended the statement: {shown(text)} "
        f"(deadline {plan.statement_timeout:g} s, {plan.deadline}); the session was closed",
        reason_code="statement-timeout",
    )


def run_bounded(action: Callable[[], object], seconds: float = CANCEL_WAIT) -> None:
    """Run ``action`` (a cancel request) in a daemon thread and wait at most ``seconds``:
    a server that stalls the cancel too must not hold kea-db."""
    worker = threading.Thread(target=_quietly, args=(action,), daemon=True)
    worker.start()
    worker.join(seconds)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()
