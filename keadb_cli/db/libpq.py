"""PostgreSQL sessions through libpq, the library Kea links, called with ctypes.

The connection is opened with libpq's asynchronous calls so that kea-db, not libpq, owns
every wait: the login is bounded by ``connect-timeout``, each statement by the statement
timeout (on the server, and here plus a grace period), and Ctrl-C cancels the running
statement with ``PQcancel`` before it propagates. Results arrive row by row
(``PQsetSingleRowMode``) so that caps apply before anything large is kept. Server notices
are collected, never printed by libpq.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keadb_cli.db.pg_guard import LoginGuard, tcp_connected
from keadb_cli.db.session_kit import (
    GRACE,
    Budget,
    Deadline,
    Endpoint,
    LibrarySession,
    Row,
    Signature,
    load_library,
    login_error,
    run_bounded,
    statement_error,
    timed_out,
    wait_socket,
)
from keadb_cli.errors import KeaDbError, QueryError, UnreachableError
from keadb_cli.text import keep_secret, shown

if TYPE_CHECKING:
    from keadb_cli.db.plan import ConnectPlan

_CONNECTION_OK, _CONNECTION_BAD, _CONNECTION_STARTED = 0, 1, 2
_REQUIRE_AUTH_SINCE = 160000  # libpq 16: require_auth
_POLLING_FAILED, _POLLING_READING, _POLLING_WRITING, _POLLING_OK = 0, 1, 2, 3
_TUPLES_OK, _COPY_OUT, _FATAL_ERROR, _SINGLE_TUPLE = 2, 3, 7, 9
_DIAG_SQLSTATE = ord("C")
_MAX_NOTICES = 20

_NOTICE_PROCESSOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_state: dict[str, Any] = {}
_LOADING = threading.Lock()


def load(soname: str) -> Any:
    """libpq, declared, or None when it cannot be loaded (or is too old).
    ``soname``: the backend's (what Kea's packages link)."""
    with _LOADING:  # preflight opens sessions from several threads at once
        if "lib" not in _state:
            _state["lib"] = load_library(soname, "pq", _signatures())
    return _state["lib"]


def _signatures() -> tuple[Signature, ...]:
    p, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    return (
        ("PQconnectStartParams", p, [ctypes.POINTER(cp), ctypes.POINTER(cp), i]),
        ("PQconnectPoll", i, [p]),
        ("PQstatus", i, [p]),
        ("PQsocket", i, [p]),
        ("PQerrorMessage", cp, [p]),
        ("PQfinish", None, [p]),
        ("PQsetnonblocking", i, [p, i]),
        ("PQsendQuery", i, [p, cp]),
        ("PQsetSingleRowMode", i, [p]),
        ("PQflush", i, [p]),
        ("PQconsumeInput", i, [p]),
        ("PQisBusy", i, [p]),
        ("PQgetResult", p, [p]),
        ("PQresultStatus", i, [p]),
        ("PQresultErrorField", cp, [p, i]),
        ("PQresultErrorMessage", cp, [p]),
        ("PQntuples", i, [p]),
        ("PQnfields", i, [p]),
        ("PQgetvalue", p, [p, i, i]),
        ("PQgetlength", i, [p, i, i]),
        ("PQgetisnull", i, [p, i, i]),
        ("PQclear", None, [p]),
        ("PQgetCopyData", i, [p, ctypes.POINTER(p), i]),
        ("PQfreemem", None, [p]),
        ("PQsslInUse", i, [p]),
        ("PQsslAttribute", cp, [p, cp]),
        ("PQlibVersion", i, []),
        ("PQserverVersion", i, [p]),
        ("PQgetCancel", p, [p]),
        ("PQcancel", i, [p, cp, i]),
        ("PQfreeCancel", None, [p]),
        ("PQsetNoticeProcessor", p, [p, _NOTICE_PROCESSOR, p]),
        ("PQpass", cp, [p]),
        ("PQhost", cp, [p]),
        ("PQport", cp, [p]),
    )


def version_text(lib: Any) -> str:
    version = int(lib.PQlibVersion())
    return f"libpq {version // 10000}.{version % 10000}"


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _current(lib: Any, conn: int) -> Endpoint:
    """The host libpq is on (the one trying, or the one logged in), from ``PQhost`` and
    ``PQport``: with a host list, which one it is."""
    port = _text(lib.PQport(conn))
    return Endpoint(_text(lib.PQhost(conn)), int(port) if port.isdigit() else None)


def _guard_prefix(lib: Any, conn: int, plan: ConnectPlan) -> str:
    """"PostgreSQL host:port/db" for the guard's messages: with a host list, the host that
    libpq is trying now (and the list)."""
    return f"PostgreSQL {plan.answered_by(_current(lib, conn)).where}"


class LibpqSession(LibrarySession):
    """A logged-in libpq connection (see :class:`keadb_cli.db.session_kit.Session`)."""

    fallback: str | None = None

    def __init__(self, lib: Any, conn: int, plan: ConnectPlan, notices: list[str],
                 callback: Any) -> None:
        self.answered = _current(lib, conn)  # with a host list: the host that answered
        self._lib, self._conn, self._plan = lib, conn, plan.answered_by(self.answered)
        self._callback = callback  # the notice processor must outlive the connection
        self.notices = notices
        self.library = version_text(lib)
        self.server = f"PostgreSQL {lib.PQserverVersion(conn)}"
        in_use = bool(lib.PQsslInUse(conn))
        self.tls_version = _text(lib.PQsslAttribute(conn, b"protocol")) or None if in_use else None
        self.tls_cipher = _text(lib.PQsslAttribute(conn, b"cipher")) or None if in_use else None
        bits = _text(lib.PQsslAttribute(conn, b"key_bits")) if in_use else ""
        self.tls_bits = int(bits) if bits.isdigit() else None

    def query(self, sql: str) -> list[Row]:
        return self._run(sql, None)

    def each_row(self, sql: str, on_row: Callable[[Row], None]) -> int:
        count = 0

        def counted(row: Row) -> None:
            nonlocal count
            on_row(row)
            count += 1

        self._run(sql, counted)
        return count

    def copy_out(self, sql: str, on_line: Callable[[bytes], None]) -> int:
        """Run ``COPY ... TO STDOUT`` and hand each line of its data (COPY's text format,
        with its newline) to ``on_line`` as it arrives; returns the number of lines.

        Raises:
            QueryError, UnreachableError: as :meth:`query`; and what ``on_line`` raises.
        """
        self._check_open()
        lib, conn = self._lib, self._conn
        deadline = Deadline(self._plan.statement_timeout + GRACE)
        try:
            if not lib.PQsendQuery(conn, sql.encode()):
                raise self._broken()
            self._flush(deadline)
            with Budget("PostgreSQL", self._plan.where, lib.PQsocket(conn),
                        streaming=True) as budget:
                if not self._copy_started(deadline):
                    return 0  # an error, raised by _copy_finished
                count = self._copy_lines(on_line, budget, deadline)
                self._copy_finished(deadline)
                return count
        except KeyboardInterrupt:
            self._cancel_and_close()
            raise
        except QueryError:
            if lib.PQstatus(conn) == _CONNECTION_BAD:
                self.close()
            raise
        except Exception:  # broken, timed out, on_line failed: the rest is not wanted
            self._cancel_and_close()
            raise

    def _wait_result(self, deadline: Deadline) -> None:
        lib, conn = self._lib, self._conn
        while lib.PQisBusy(conn):
            if not wait_socket(lib.PQsocket(conn), read=True, write=False, deadline=deadline):
                raise self._timeout()
            if not lib.PQconsumeInput(conn):
                raise self._broken()

    def _copy_started(self, deadline: Deadline) -> bool:
        """Is the first result COPY OUT? Otherwise read the rest and raise its error."""
        self._wait_result(deadline)
        res = self._lib.PQgetResult(self._conn)
        status = self._lib.PQresultStatus(res) if res else -1
        if res:
            self._lib.PQclear(res)
        if status == _COPY_OUT:
            return True
        self._copy_finished(deadline, started=status)
        raise statement_error(self._plan, "the statement did not start a COPY TO STDOUT")

    def _copy_lines(self, on_line: Callable[[bytes], None], budget: Budget,
                    deadline: Deadline) -> int:
        lib, conn = self._lib, self._conn
        buffer = ctypes.c_void_p()
        count = 0
        while True:
            size = lib.PQgetCopyData(conn, ctypes.byref(buffer), 1)
            if size > 0:
                try:
                    line = ctypes.string_at(buffer, size)
                finally:
                    lib.PQfreemem(buffer)
                budget.add_row(size)
                on_line(line)
                count += 1
                budget.check_memory()
            elif size == 0:
                if not wait_socket(lib.PQsocket(conn), read=True, write=False,
                                   deadline=deadline):
                    raise self._timeout()
                if not lib.PQconsumeInput(conn):
                    raise self._broken()
            elif size == -1:
                return count
            else:
                raise self._broken()

    def _copy_finished(self, deadline: Deadline, started: int = _COPY_OUT) -> None:
        """Read the results after the copy's data; raise the first error among them."""
        lib, conn = self._lib, self._conn
        error: tuple[str, str] | None = None
        while True:
            self._wait_result(deadline)
            res = lib.PQgetResult(conn)
            if not res:
                break
            try:
                if lib.PQresultStatus(res) == _FATAL_ERROR and error is None:
                    error = (_text(lib.PQresultErrorField(res, _DIAG_SQLSTATE)),
                             _text(lib.PQresultErrorMessage(res)))
            finally:
                lib.PQclear(res)
        if error is None and started == _FATAL_ERROR:
            error = ("", _text(lib.PQerrorMessage(conn)))
        if error is not None:
            code, message = error
            if lib.PQstatus(conn) == _CONNECTION_BAD:
                raise login_error("postgresql", self._plan.where, message, code=code)
            raise statement_error(self._plan, message, code=code)

    def _run(self, sql: str, on_row: Callable[[Row], None] | None) -> list[Row]:
        self._check_open()
        lib, conn = self._lib, self._conn
        seconds = self._plan.statement_timeout + GRACE
        deadline = Deadline(seconds)
        try:
            if not lib.PQsendQuery(conn, sql.encode()):
                raise self._broken()
            lib.PQsetSingleRowMode(conn)
            self._flush(deadline)
            return self._collect(deadline, on_row)
        except KeyboardInterrupt:
            self._cancel_and_close()
            raise
        except QueryError:
            if lib.PQstatus(conn) == _CONNECTION_BAD:
                self.close()
            raise
        except KeaDbError:  # over a cap, or broken: the rest of the answer is not wanted
            self._cancel_and_close()
            raise
        except Exception:  # on_row failed (a full disk): the rest of the answer is not wanted
            self._cancel_and_close()
            raise

    def _flush(self, deadline: Deadline) -> None:
        lib, conn = self._lib, self._conn
        while True:
            pending = lib.PQflush(conn)
            if pending == 0:
                return
            if pending < 0:
                raise self._broken()
            if not wait_socket(lib.PQsocket(conn), read=True, write=True, deadline=deadline):
                raise self._timeout()
            if not lib.PQconsumeInput(conn):
                raise self._broken()

    def _collect(self, deadline: Deadline, on_row: Callable[[Row], None] | None) -> list[Row]:
        with Budget("PostgreSQL", self._plan.where, self._lib.PQsocket(self._conn),
                    streaming=on_row is not None) as budget:
            try:
                return self._collect_within(budget, deadline, on_row)
            except KeaDbError:
                budget.check_memory()  # a cut by the watcher is the cap, not a lost session
                raise

    def _collect_within(self, budget: Budget, deadline: Deadline,
                        on_row: Callable[[Row], None] | None) -> list[Row]:
        lib, conn = self._lib, self._conn
        rows: list[Row] = []  # the last complete result set
        current: list[Row] = []
        error: tuple[str, str] | None = None
        while True:
            while lib.PQisBusy(conn):
                if not wait_socket(lib.PQsocket(conn), read=True, write=False,
                                   deadline=deadline):
                    raise self._timeout()
                if not lib.PQconsumeInput(conn):
                    raise self._broken()
                budget.check_memory()
            res = lib.PQgetResult(conn)
            if not res:
                break
            try:
                status = lib.PQresultStatus(res)
                if status == _SINGLE_TUPLE and on_row is not None:
                    on_row(self._streamed_row(res, budget))
                elif status == _SINGLE_TUPLE:
                    current.append(self._row(res, budget))
                elif status == _TUPLES_OK:  # the end of a set (or a whole one, no row mode)
                    current.extend(self._row(res, budget, n) for n in range(lib.PQntuples(res)))
                    rows, current = current, []
                elif status == _FATAL_ERROR:
                    if error is None:
                        error = (_text(lib.PQresultErrorField(res, _DIAG_SQLSTATE)),
                                 _text(lib.PQresultErrorMessage(res)))
                else:
                    rows, current = [], []
            finally:
                lib.PQclear(res)
            budget.check_memory()
        if error is not None:
            code, message = error
            budget.check_memory()
            if lib.PQstatus(conn) == _CONNECTION_BAD:
                raise login_error("postgresql", self._plan.where, message, code=code)
            raise statement_error(self._plan, message, code=code)
        return rows

    def _row(self, res: int, budget: Budget, number: int = 0) -> Row:
        """Row ``number`` of a result, with one library call per value: a value in text
        format never holds a NUL byte, so it is read up to its terminator (an empty one
        may be a NULL: asked then)."""
        lib, value = self._lib, _value_bytes(self._lib)
        values: list[str | None] = []
        size = 0
        for col in range(lib.PQnfields(res)):
            raw: bytes = value(res, number, col)
            if not raw and lib.PQgetisnull(res, number, col):
                values.append(None)
                continue
            size += len(raw)
            values.append(raw.decode("utf-8", "replace"))
        budget.add_row(size)
        return tuple(values)

    def _streamed_row(self, res: int, budget: Budget) -> Row:
        """:meth:`_row` for the one row of single-row mode."""
        return self._row(res, budget, 0)

    def _broken(self) -> KeaDbError:
        message = _text(self._lib.PQerrorMessage(self._conn))
        self.close()
        error = login_error("postgresql", self._plan.where,
                                     message or "the connection broke")
        if not error.reason_code or error.reason_code == "unexpected":
            error.reason_code = "connection-lost"
        return error

    def _timeout(self) -> KeaDbError:
        self._cancel_and_close()
        return timed_out(self._plan)

    def _cancel_and_close(self) -> None:
        """Ask the server to cancel the running statement (bounded), then close."""
        if self.closed:
            return
        lib, conn = self._lib, self._conn
        cancel = lib.PQgetCancel(conn)
        if cancel:
            buffer = ctypes.create_string_buffer(256)

            def send() -> None:
                lib.PQcancel(cancel, buffer, len(buffer))

            run_bounded(send)
        self.close()  # the cancel object stays allocated if its thread still runs: tiny

    def _release(self) -> None:
        self._lib.PQfinish(self._conn)


def _value_bytes(lib: Any) -> Any:
    """``PQgetvalue`` declared to return the value's bytes (up to its NUL terminator)."""
    function = _state.get("value_bytes")
    if function is None:
        function = lib["PQgetvalue"]  # a second handle on the function: its own restype
        function.restype, function.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int,
                                                               ctypes.c_int]
        _state["value_bytes"] = function
    return function


def connect(plan: ConnectPlan) -> LibpqSession:
    """Log in with libpq as Kea does (its keywords, ``sslmode`` explicit), bounded by the
    plan's connect timeout and interruptible. Over TCP the login is watched on the wire
    (:mod:`keadb_cli.db.pg_guard`) until TLS starts or the login succeeded; with libpq 16+
    and no verified TLS, ``require_auth`` also refuses a cleartext password request.

    Raises:
        UnreachableError, DeniedError, TlsError: classified by :mod:`classify`;
        InsecureAuthError: the server asked for what kea-db will not give it.
    """
    lib = load(plan.backend.soname)
    if lib is None:
        raise UnreachableError("libpq cannot be loaded")
    params = plan.libpq_params()
    if lib.PQlibVersion() >= _REQUIRE_AUTH_SINCE and plan.server_unproven:
        params["require_auth"] = "!password"
    keys = (ctypes.c_char_p * (len(params) + 1))(*(k.encode() for k in params), None)
    values = (ctypes.c_char_p * (len(params) + 1))(*(v.encode() for v in params.values()), None)
    conn = lib.PQconnectStartParams(keys, values, 0)
    if not conn:
        raise UnreachableError("libpq could not allocate a connection")
    # The password libpq will send, from .pgpass too: never shown (keadb_cli.text).
    keep_secret(_text(lib.PQpass(conn)))
    notices: list[str] = []

    def on_notice(_arg: int | None, message: bytes | None) -> None:
        if len(notices) < _MAX_NOTICES:
            notices.append(shown(_text(message)))

    callback = _NOTICE_PROCESSOR(on_notice)
    lib.PQsetNoticeProcessor(conn, callback, None)
    busy: list[threading.Thread] = []  # a PQconnectPoll call that outlived its wait
    try:
        _poll_until_connected(lib, conn, plan, busy)
        if lib.PQsetnonblocking(conn, 1) != 0:
            raise login_error("postgresql", plan.where,
                                       _text(lib.PQerrorMessage(conn)))
    except BaseException:
        if not busy:  # else libpq still works on it in that thread: leave it allocated
            lib.PQfinish(conn)
        raise
    return LibpqSession(lib, conn, plan, notices, callback)


def _poll_until_connected(lib: Any, conn: int, plan: ConnectPlan,
                          busy: list[threading.Thread]) -> None:
    deadline = Deadline(plan.connect_timeout)

    def expired() -> UnreachableError:
        return UnreachableError(
            f"PostgreSQL {plan.where}: timeout expired after {plan.connect_timeout:g} s "
            "(connect-timeout)",
            reason_code="timeout",
        )

    if lib.PQstatus(conn) == _CONNECTION_BAD:
        raise login_error("postgresql", plan.where, _text(lib.PQerrorMessage(conn)))
    guard: LoginGuard | None = None
    state = _POLLING_WRITING
    try:
        while True:
            if state == _POLLING_OK:
                return
            if state == _POLLING_FAILED:
                raise login_error("postgresql", plan.where, _text(lib.PQerrorMessage(conn)),
                                  code=guard.sqlstate if guard else "")
            fd = lib.PQsocket(conn)
            if fd < 0:
                raise expired()
            if guard is not None and state == _POLLING_READING:
                guard.receive(deadline)  # vetted server bytes are now waiting for libpq
            else:
                if not wait_socket(fd, read=state == _POLLING_READING,
                                   write=state == _POLLING_WRITING, deadline=deadline):
                    raise expired()
                if guard is None and plan.unix_socket is None \
                        and lib.PQstatus(conn) == _CONNECTION_STARTED and tcp_connected(fd):
                    # connected, nothing sent yet: from here libpq talks to the guard
                    guard = LoginGuard(fd, _guard_prefix(lib, conn, plan), expired)
            state = _bounded_poll(lib, conn, deadline, expired, busy)
            if guard is not None:
                if lib.PQstatus(conn) == _CONNECTION_STARTED:  # libpq moved on to another
                    guard.close()  # address and closed our pair's end
                    guard = None
                else:
                    guard.after_poll(deadline)
                    guard = guard if guard.active else None
    finally:
        if guard is not None:
            guard.close()


class _PollWorker:
    """A daemon thread that runs one libpq call at a time for :func:`_bounded_poll`. Starting
    a thread per ``PQconnectPoll`` step cost about 2 ms each (a login takes a dozen steps);
    a worker is reused while its calls return in time, and left to its call when one does
    not."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[tuple[Callable[[], int], list[int], threading.Event]]
        self._tasks = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="keadb-libpq-poll")
        self.thread.start()

    def _run(self) -> None:
        while True:
            call, result, done = self._tasks.get()
            try:
                result.append(call())
            finally:
                done.set()

    def submit(self, call: Callable[[], int]) -> tuple[list[int], threading.Event]:
        result: list[int] = []
        done = threading.Event()
        self._tasks.put((call, result, done))
        return result, done


_IDLE_WORKERS: list[_PollWorker] = []
_WORKERS_LOCK = threading.Lock()


def _forget_workers() -> None:
    """In a forked child: the parent's worker threads do not exist here (a fork copies
    only the thread that forked), so their queues would never be served."""
    global _WORKERS_LOCK
    _WORKERS_LOCK = threading.Lock()
    _IDLE_WORKERS.clear()


os.register_at_fork(after_in_child=_forget_workers)


def _take_worker() -> _PollWorker:
    with _WORKERS_LOCK:
        while _IDLE_WORKERS:
            worker = _IDLE_WORKERS.pop()
            if worker.thread.is_alive():
                return worker
    return _PollWorker()


def _give_back(worker: _PollWorker) -> None:
    with _WORKERS_LOCK:
        _IDLE_WORKERS.append(worker)


def _bounded_poll(lib: Any, conn: int, deadline: Deadline,
                  expired: Callable[[], UnreachableError], busy: list[threading.Thread]) -> int:
    """``PQconnectPoll`` in a worker thread, waited for until ``deadline``: one call may
    compute for as long as a server makes it (a TLS session the guard cannot see into).
    While the call runs, the connection is its own: its thread goes to ``busy`` and the
    caller must not free the connection (a process that exits takes it along)."""
    worker = _take_worker()
    result, done = worker.submit(lambda: int(lib.PQconnectPoll(conn)))
    try:
        done.wait(deadline.left() + 0.05)
    except BaseException:  # Ctrl-C: give the call a moment, never free it under libpq
        done.wait(0.2)
        if done.is_set():
            _give_back(worker)
        else:
            busy.append(worker.thread)
        raise
    if not done.is_set():
        busy.append(worker.thread)
        error = expired()
        raise UnreachableError(f"{error.message}; libpq was still working on the login",
                               reason_code="timeout")
    _give_back(worker)
    if not result:  # the call raised in the worker (no libpq state to return)
        raise UnreachableError("libpq's login step failed in kea-db", reason_code="unexpected")
    return result[0]
