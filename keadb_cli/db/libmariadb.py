"""MySQL sessions through MariaDB Connector/C (libmariadb), the library Kea links on
Debian, called with ctypes through its non-blocking API.

TLS is asked for as Kea 2.6+ asks (the five ``MYSQL_OPT_SSL_*`` options when any TLS key
is set, no mode of its own), so a server without TLS still gives the cleartext session Kea
would get. Unlike Kea, kea-db never hands the password to a reader on the path: over TCP
without enforced TLS the authentication plugins are restricted (``mysql_clear_password``
and ``dialog`` are refused), and an RSA key exchange (``caching_sha2_password`` full
authentication, ``sha256_password``) only uses a key the user gave, never one the server
sends over cleartext. LOAD DATA LOCAL is off, results stream row by row under caps, every
wait is bounded, and Ctrl-C sends ``KILL QUERY`` on a second connection.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keadb_cli.db.session_kit import (
    GRACE,
    Budget,
    Deadline,
    Endpoint,
    LibrarySession,
    Row,
    Signature,
    garbage_error,
    load_library,
    login_error,
    run_bounded,
    statement_error,
    timed_out,
)
from keadb_cli.errors import InsecureAuthError, KeaDbError, QueryError, UnreachableError
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.plan import ConnectPlan

# enum mysql_option (MariaDB Connector/C 3.x)
_OPT_CONNECT_TIMEOUT = 0
_OPT_SET_CHARSET_NAME = 7
_OPT_LOCAL_INFILE = 8
_OPT_READ_TIMEOUT = 11
_OPT_WRITE_TIMEOUT = 12
_OPT_RECONNECT = 20
_OPT_SSL_KEY, _OPT_SSL_CERT, _OPT_SSL_CA, _OPT_SSL_CAPATH, _OPT_SSL_CIPHER = 25, 26, 27, 28, 29
_OPT_SERVER_PUBLIC_KEY = 35
_OPT_SSL_ENFORCE = 38
_OPT_MAX_ALLOWED_PACKET = 39
_OPT_NONBLOCK = 6000
_OPT_RESTRICTED_AUTH = 7026
_INFO_TLS_VERSION = 23  # enum mariadb_value: MARIADB_CONNECTION_TLS_VERSION
_WAIT_READ, _WAIT_WRITE, _WAIT_EXCEPT, _WAIT_TIMEOUT = 1, 2, 4, 8
_CLIENT_FOUND_ROWS = 2  # Kea sets it
_CR_PLUGIN_NOT_ALLOWED = 5010
_CR_UNKNOWN_ERROR = 2000
_RSA_STOPPED = (2061, _CR_UNKNOWN_ERROR)  # CR_AUTH_PLUGIN_ERR, CR_UNKNOWN_ERROR
_MAX_PACKET = 16 * 1024 * 1024

# Plugins that never put the password itself on the wire without TLS.
_SAFE_PLUGINS = (
    "mysql_native_password,caching_sha2_password,sha256_password,client_ed25519,parsec,"
    "auth_gssapi_client"
)
# Given to libmariadb as "the server's public key" when the user gave none: not a key, so a
# full RSA authentication stops here instead of asking the server for its key.
_NO_KEY_FILE = os.path.join(os.path.dirname(__file__), "no-server-public-key.txt")

_state: dict[str, Any] = {}
_LOADING = threading.Lock()


def load(soname: str) -> Any:
    """libmariadb, declared, or None when it cannot be loaded (or lacks the async API).
    ``soname``: the backend's (what Kea's packages link)."""
    with _LOADING:  # preflight opens sessions from several threads at once
        if "lib" not in _state:
            _state["lib"] = load_library(soname, "mariadb", _signatures())
    return _state["lib"]


def _signatures() -> tuple[Signature, ...]:
    p, cp, u, ul, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int
    pp, pi = ctypes.POINTER(p), ctypes.POINTER(i)
    return (
        ("mysql_init", p, [p]),
        ("mysql_options", i, [p, i, p]),
        ("mysql_real_connect_start", i, [pp, p, cp, cp, cp, cp, u, cp, ul]),
        ("mysql_real_connect_cont", i, [pp, p, i]),
        ("mysql_real_query_start", i, [pi, p, cp, ul]),
        ("mysql_real_query_cont", i, [pi, p, i]),
        ("mysql_get_socket", i, [p]),
        ("mysql_get_timeout_value_ms", u, [p]),
        ("mysql_field_count", u, [p]),
        ("mysql_use_result", p, [p]),
        ("mysql_num_fields", u, [p]),
        ("mysql_fetch_row_start", i, [pp, p]),
        ("mysql_fetch_row_cont", i, [pp, p, i]),
        ("mysql_fetch_lengths", ctypes.POINTER(ul), [p]),
        ("mysql_free_result", None, [p]),
        ("mysql_next_result_start", i, [pi, p]),
        ("mysql_next_result_cont", i, [pi, p, i]),
        ("mysql_errno", u, [p]),
        ("mysql_error", cp, [p]),
        ("mysql_sqlstate", cp, [p]),
        ("mysql_get_ssl_cipher", cp, [p]),
        ("mariadb_get_info", ctypes.c_char, [p, i, p]),
        ("mysql_get_server_info", cp, [p]),
        ("mysql_thread_id", ul, [p]),
        ("mysql_close", None, [p]),
        ("mysql_get_client_info", cp, []),
    )


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _wait(lib: Any, handle: int, status: int, deadline: Deadline) -> int:
    """Wait for what libmariadb asked for; the ready bits for its ``_cont`` call, or -1
    when our deadline passed first. Ctrl-C raises KeyboardInterrupt out of the wait."""
    timeout = deadline.left()
    if status & _WAIT_TIMEOUT:
        timeout = min(timeout, lib.mysql_get_timeout_value_ms(handle) / 1000.0)
    events = (selectors.EVENT_READ if status & (_WAIT_READ | _WAIT_EXCEPT) else 0) | (
        selectors.EVENT_WRITE if status & _WAIT_WRITE else 0
    )
    fd = lib.mysql_get_socket(handle)
    ready = []
    if events and fd >= 0:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, events)
            ready = selector.select(timeout)
    elif timeout > 0:
        selectors.DefaultSelector().select(timeout)
    if not ready:
        return _WAIT_TIMEOUT if status & _WAIT_TIMEOUT and not deadline.passed() else -1
    mask = ready[0][1]
    return (_WAIT_READ if mask & selectors.EVENT_READ else 0) | (
        _WAIT_WRITE if mask & selectors.EVENT_WRITE else 0
    )


def _drive(lib: Any, handle: int, status: int, step: Any, deadline: Deadline) -> bool:
    """Run a non-blocking call to its end; False when the deadline passed first."""
    while status:
        ready = _wait(lib, handle, status, deadline)
        if ready < 0:
            return False
        status = step(ready)
    return True


def _set(lib: Any, handle: int, option: int, value: Any) -> None:
    arg = ctypes.c_char_p(value.encode()) if isinstance(value, str) else ctypes.byref(value)
    if lib.mysql_options(handle, option, arg) != 0:
        raise UnreachableError(f"libmariadb refused option {option}", reason_code="client")


class MariadbSession(LibrarySession):
    """A logged-in libmariadb connection (see :class:`keadb_cli.db.session_kit.Session`)."""

    fallback: str | None = None

    def __init__(self, lib: Any, handle: int, plan: ConnectPlan) -> None:
        self._lib, self._handle, self._plan = lib, handle, plan
        self.library = f"libmariadb {_text(lib.mysql_get_client_info())}"
        self.server = shown(_text(lib.mysql_get_server_info(handle)), 100)
        self.tls_cipher = _text(lib.mysql_get_ssl_cipher(handle)) or None  # Kea's own check
        version = ctypes.c_char_p()
        self.tls_version = None
        if self.tls_cipher and lib.mariadb_get_info(handle, _INFO_TLS_VERSION,
                                                    ctypes.byref(version)) == b"\x00":
            self.tls_version = _text(version.value) or None
        self.tls_bits: int | None = None
        self.flavor = "mariadb" if "mariadb" in self.server.lower() else "mysql"
        self.answered = Endpoint.of_plan(plan)

    def query(self, sql: str) -> list[Row]:
        rows: list[Row] = []
        self._run(sql, rows.append, streaming=False)
        return rows

    def each_row(self, sql: str, on_row: Callable[[Row], None]) -> int:
        return self._run(sql, on_row, streaming=True)

    def _run(self, sql: str, on_row: Callable[[Row], None], *, streaming: bool) -> int:
        self._check_open()
        try:
            return self._query(sql, on_row, streaming)
        except KeyboardInterrupt:
            self._kill_and_close()
            raise
        except QueryError:
            raise
        except KeaDbError:  # timed out, over a cap or broken: the rest is not wanted
            self._kill_and_close()
            raise

    def _query(self, sql: str, on_row: Callable[[Row], None], streaming: bool) -> int:
        lib, handle = self._lib, self._handle
        deadline = Deadline(self._plan.statement_timeout + GRACE)
        data = sql.encode()  # kept alive until the query is sent (libmariadb holds a pointer)
        err = ctypes.c_int()
        status = lib.mysql_real_query_start(ctypes.byref(err), handle, data, len(data))
        if not _drive(lib, handle, status, lambda ready: lib.mysql_real_query_cont(
                ctypes.byref(err), handle, ready), deadline):
            raise timed_out(self._plan)
        if err.value:
            raise self._error()
        if lib.mysql_field_count(handle) == 0:
            self._drain(deadline)
            return 0
        res = lib.mysql_use_result(handle)
        if not res:
            raise self._error()
        budget = Budget("MySQL", self._plan.where, lib.mysql_get_socket(handle),
                        streaming=streaming)
        width = lib.mysql_num_fields(res)
        count = 0
        done = False
        with budget:
            try:
                while True:
                    row = ctypes.c_void_p()
                    status = lib.mysql_fetch_row_start(ctypes.byref(row), res)
                    if not _drive(lib, handle, status,
                                  lambda ready, row=row: lib.mysql_fetch_row_cont(
                                      ctypes.byref(row), res, ready), deadline):
                        raise timed_out(self._plan)
                    if not row.value:
                        if lib.mysql_errno(handle):
                            budget.check_memory()  # a cut by the watcher is the cap
                            raise self._error()
                        done = True
                        break
                    on_row(self._row(row.value, res, width, budget))
                    count += 1
                    budget.check_memory()
            finally:
                if done:
                    lib.mysql_free_result(res)  # every row was read: no I/O left
                else:
                    self._shutdown()  # free_result would read the rest: cut the socket first
                    lib.mysql_free_result(res)
        self._drain(deadline)
        return count

    def _drain(self, deadline: Deadline) -> None:
        """Read the results that follow the first (a CALL ends with a status result), so
        that the session can run the next statement; their rows are not wanted."""
        lib, handle = self._lib, self._handle
        ret = ctypes.c_int()
        while True:
            status = lib.mysql_next_result_start(ctypes.byref(ret), handle)
            if not _drive(lib, handle, status, lambda ready: lib.mysql_next_result_cont(
                    ctypes.byref(ret), handle, ready), deadline):
                raise timed_out(self._plan)
            if ret.value < 0:
                return
            if ret.value > 0:
                raise self._error()
            if lib.mysql_field_count(handle):
                res = lib.mysql_use_result(handle)
                if not res:
                    raise self._error()
                self._shutdown()  # a second result set: not read; the session ends
                lib.mysql_free_result(res)
                raise garbage_error("mysql", self._plan.where,
                                    "the statement returned more than one result set")

    def _row(self, row: int, res: int, width: int, budget: Budget) -> Row:
        # the row's pointers and lengths read in one slice each, not one access per value
        lengths = self._lib.mysql_fetch_lengths(res)[:width]
        cells = ctypes.cast(row, ctypes.POINTER(ctypes.c_void_p))[:width]
        values: list[str | None] = []
        size = 0
        string_at = ctypes.string_at
        for cell, length in zip(cells, lengths, strict=True):
            if cell is None:
                values.append(None)
                continue
            size += length
            values.append(string_at(cell, length).decode("utf-8", "replace"))
        budget.add_row(size)
        return tuple(values)

    def _error(self) -> KeaDbError:
        lib, handle = self._lib, self._handle
        code = int(lib.mysql_errno(handle))
        text = _text(lib.mysql_error(handle))
        # 0: failed without a word (a column definition it could not read); 2000, "unknown
        # error": a row whose lengths run past its packet, a LOAD DATA LOCAL request.
        if code in (0, _CR_UNKNOWN_ERROR):
            return garbage_error("mysql", self._plan.where,
                                 f"libmariadb: {text or 'failed without an error'} ({code})")
        return statement_error(self._plan, text, code=str(code))

    def _shutdown(self) -> None:
        import socket

        fd = self._lib.mysql_get_socket(self._handle)
        if fd >= 0:
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(fd))
                with sock:
                    sock.shutdown(socket.SHUT_RDWR)

    def _kill_and_close(self) -> None:
        """Ask the server to stop the running statement (a bounded second connection),
        then close this one without waiting for it."""
        if self.closed:
            return
        thread_id = int(self._lib.mysql_thread_id(self._handle))
        plan = self._plan

        def kill() -> None:
            other = _connect(plan, Deadline(3.0))
            with contextlib.closing(other):
                other.query(f"KILL QUERY {thread_id}")

        run_bounded(kill)
        self._shutdown()
        self.close()

    def _release(self) -> None:
        self._lib.mysql_close(self._handle)


def _secure(plan: ConnectPlan) -> bool:
    """Is the password safe from readers on the path whatever the server asks for?"""
    return bool(plan.unix_socket) or plan.tls.required


def _open_handle(lib: Any, plan: ConnectPlan, *, enforce_tls: bool) -> int:
    handle = lib.mysql_init(None)
    if not handle:
        raise UnreachableError("libmariadb could not allocate a connection")
    try:
        lib.mysql_options(handle, _OPT_NONBLOCK, None)
        _set(lib, handle, _OPT_CONNECT_TIMEOUT, ctypes.c_uint(max(1, int(plan.connect_timeout))))
        if plan.read_timeout:
            _set(lib, handle, _OPT_READ_TIMEOUT, ctypes.c_uint(int(plan.read_timeout)))
        if plan.write_timeout:
            _set(lib, handle, _OPT_WRITE_TIMEOUT, ctypes.c_uint(int(plan.write_timeout)))
        _set(lib, handle, _OPT_LOCAL_INFILE, ctypes.c_uint(0))
        _set(lib, handle, _OPT_RECONNECT, ctypes.c_char(0))
        _set(lib, handle, _OPT_MAX_ALLOWED_PACKET, ctypes.c_ulong(_MAX_PACKET))
        _set(lib, handle, _OPT_SET_CHARSET_NAME, "utf8mb4")
        tls = plan.tls
        if tls.use:  # Kea 2.6+: each key with its own option, unset ones left alone
            for option, value in ((_OPT_SSL_KEY, tls.key_file), (_OPT_SSL_CERT, tls.cert_file),
                                  (_OPT_SSL_CA, tls.ca_file), (_OPT_SSL_CAPATH, tls.ca_path),
                                  (_OPT_SSL_CIPHER, tls.ciphers)):
                if value:
                    _set(lib, handle, option, value)
        if enforce_tls:
            _set(lib, handle, _OPT_SSL_ENFORCE, ctypes.c_char(1))
        if not (_secure(plan) or enforce_tls):
            _set(lib, handle, _OPT_RESTRICTED_AUTH, _SAFE_PLUGINS)
            _set(lib, handle, _OPT_SERVER_PUBLIC_KEY,
                 plan.server_public_key or _NO_KEY_FILE)
        elif plan.server_public_key:
            _set(lib, handle, _OPT_SERVER_PUBLIC_KEY, plan.server_public_key)
    except BaseException:
        lib.mysql_close(handle)
        raise
    return int(handle)


def _login(lib: Any, plan: ConnectPlan, deadline: Deadline, *, enforce_tls: bool) -> int:
    handle = _open_handle(lib, plan, enforce_tls=enforce_tls)
    ret = ctypes.c_void_p()

    def arg(value: str | None) -> bytes | None:
        return value.encode() if value is not None else None

    # libmariadb keeps these pointers until the last _cont call: keep the bytes alive.
    args = [arg(plan.host), arg(plan.user), arg(plan.password), arg(plan.database)]
    sock = arg(plan.unix_socket)
    try:
        status = lib.mysql_real_connect_start(
            ctypes.byref(ret), handle, *args, plan.port if not plan.unix_socket else 0, sock,
            _CLIENT_FOUND_ROWS,
        )
        if not _drive(lib, handle, status, lambda ready: lib.mysql_real_connect_cont(
                ctypes.byref(ret), handle, ready), deadline):
            raise UnreachableError(
                f"MySQL {plan.where}: timeout expired after {plan.connect_timeout:g} s "
                "(connect-timeout)", reason_code="timeout")
        if not ret.value:
            raise _login_error(lib, handle, plan)
        del args, sock
    except BaseException:
        lib.mysql_close(handle)
        raise
    return handle


def _login_error(lib: Any, handle: int, plan: ConnectPlan) -> KeaDbError:
    code = int(lib.mysql_errno(handle))
    text = _text(lib.mysql_error(handle))
    if code == _CR_PLUGIN_NOT_ALLOWED:
        return InsecureAuthError(
            f"MySQL {plan.where}: Kea would send its password in clear to this server: it "
            f"asks for a plugin that sends the password itself over a connection without "
            f"TLS ({shown(text)}); kea-db refused to send it. Use TLS or the Unix socket",
        )
    # The RSA step stops at kea-db's non-key file; libmariadb then reports 2061, or 2000
    # ("unknown error") when the plugin gives up without a message of its own.
    if code in _RSA_STOPPED and not _secure(plan) and not plan.server_public_key:
        return InsecureAuthError(
            f"MySQL {plan.where}: the server wants the password RSA-encrypted with a key it "
            "sends over a connection without TLS, which anyone on the path can replace: Kea "
            f"would send its password to such a key; kea-db refused ({shown(text)}). Use TLS, "
            "or give the server's public key (--server-public-key)",
            reason_code="insecure-rsa-key",
        )
    return login_error("mysql", plan.where, text, code=str(code))


def _connect(plan: ConnectPlan, deadline: Deadline) -> MariadbSession:
    lib = load(plan.backend.soname)
    if lib is None:
        raise UnreachableError("libmariadb cannot be loaded")
    try:
        handle = _login(lib, plan, deadline, enforce_tls=False)
    except InsecureAuthError as err:
        if err.reason_code != "insecure-auth" or not plan.tls.use or plan.tls.required:
            raise
        # TLS keys are set but not required: the password is safe if this server does TLS.
        try:
            handle = _login(lib, plan, deadline, enforce_tls=True)
        except KeaDbError:
            raise err from None
    session = MariadbSession(lib, handle, plan)
    return session


def connect(plan: ConnectPlan) -> MariadbSession:
    """Log in with libmariadb as Kea does, bounded by the connect timeout, with every
    statement then bounded by the statement timeout (server- and client-side).

    Raises:
        UnreachableError, DeniedError, TlsError, InsecureAuthError.
    """
    session = _connect(plan, Deadline(plan.connect_timeout + 1.0))
    template = plan.backend.statement_timeout_sql.get(session.flavor)
    if template:
        try:
            session.query(template.format(seconds=plan.statement_timeout,
                                          ms=max(1, int(plan.statement_timeout * 1000))))
        except BaseException:
            session.close()
            raise
    return session
