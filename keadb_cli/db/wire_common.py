"""Pieces shared by kea-db's own protocol clients (``wire_pg``, ``wire_mysql``).

Opening a socket with a deadline, reading exactly N bytes, wrapping a socket in TLS the way
the plan asks, and turning socket and TLS failures into kea-db errors with short reasons.

Only the standard library is used, and ``ssl`` is imported only when TLS is used: read-only
commands must start as fast as the native clients.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import TYPE_CHECKING

from keadb_cli.errors import KeaDbError, SettingsError, TlsError, UnreachableError

if TYPE_CHECKING:
    import ssl
    from types import TracebackType
    from typing import Self

    from keadb_cli.db.plan import ConnectPlan, TlsSettings

# Reasons for the errno values a failed connect() gives, in the words the user should read.
_CONNECT_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "no route to host",
    errno.EADDRNOTAVAIL: "address not available",
    errno.ECONNRESET: "connection reset by peer",
    errno.ENOENT: "no such socket file",
    errno.EACCES: "permission denied on the socket file",
    errno.ENOTDIR: "no such socket file",
    errno.ENOTSOCK: "not a socket",
}

# OpenSSL's certificate verification codes, said shortly (X509_V_ERR_*).
_VERIFY_REASONS = {
    2: "unknown CA",  # unable to get issuer certificate
    9: "not yet valid",
    10: "expired",
    18: "unknown CA",  # self-signed certificate
    19: "unknown CA",  # self-signed certificate in certificate chain
    20: "unknown CA",  # unable to get local issuer certificate
    21: "unknown CA",  # unable to verify the first certificate
    62: "hostname mismatch",
    64: "IP address mismatch",
}

# OpenSSL reason codes of a failed handshake, said shortly.
_SSL_REASONS = {
    "NO_SHARED_CIPHER": "no shared cipher",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failure (no shared cipher or protocol?)",
    "NO_CIPHERS_AVAILABLE": "no shared cipher",
    "NO_PROTOCOLS_AVAILABLE": "no shared TLS protocol version",
    "UNSUPPORTED_PROTOCOL": "no shared TLS protocol version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no shared TLS protocol version",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "server requires a client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "server rejected the client certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "server rejected the client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "server does not trust the client certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "server rejected the client certificate (expired)",
    "WRONG_VERSION_NUMBER": "server did not answer in TLS",
    "KEY_VALUES_MISMATCH": "the key file does not match the certificate file",
}


def endpoint(plan: ConnectPlan) -> str:
    """``host:port`` (``[v6]:port``) or the socket path of a plan, for messages."""
    if plan.unix_socket:
        return plan.unix_socket
    host = plan.host or "localhost"
    return f"[{host}]:{plan.port}" if ":" in host else f"{host}:{plan.port}"


def deadline_for(plan: ConnectPlan) -> float:
    """The ``time.monotonic()`` instant by which connecting and logging in must be done."""
    return time.monotonic() + plan.connect_timeout


def remaining(deadline: float | None, *, minimum: float = 0.001) -> float | None:
    """Seconds left until ``deadline`` (None: no deadline), at least ``minimum``."""
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), minimum)


def _connect_reason(exc: OSError, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return f"timed out after {timeout:g} s" if timeout else "timed out"
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return "unknown host"
        if exc.errno == socket.EAI_AGAIN:
            return "temporary failure in name resolution"
        return f"name lookup failed: {exc.strerror or exc}"
    if exc.errno is not None and exc.errno in _CONNECT_REASONS:
        return _CONNECT_REASONS[exc.errno]
    return str(exc.strerror or exc).lower()


def open_socket(plan: ConnectPlan, *, deadline: float | None = None) -> socket.socket:
    """A connected TCP or Unix socket for the plan, in blocking mode with a timeout.

    Every address the host name resolves to is tried in turn; together they may take no
    longer than ``plan.connect_timeout`` (or until ``deadline``). TCP_NODELAY is set, and
    TCP_USER_TIMEOUT from ``plan.tcp_user_timeout_ms`` where the OS has it. The returned
    socket's timeout is the time left until the deadline.

    Raises:
        UnreachableError: refused, timed out, unknown host, no route, no socket file.
    """
    if deadline is None:
        deadline = deadline_for(plan)
    where = endpoint(plan)
    display = plan.backend.display
    if plan.unix_socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(remaining(deadline))
        try:
            sock.connect(plan.unix_socket)
        except OSError as exc:
            sock.close()
            reason = _connect_reason(exc, plan.connect_timeout)
            raise UnreachableError(f"cannot reach {display} at {where}: {reason}") from None
        return sock

    host = plan.host or "localhost"
    try:
        infos = socket.getaddrinfo(host, plan.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        reason = _connect_reason(exc, plan.connect_timeout)
        raise UnreachableError(f"cannot reach {display} at {where}: {reason}") from None
    last: OSError | None = None
    for family, kind, proto, _name, address in infos:
        if time.monotonic() >= deadline:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
            if plan.tcp_user_timeout_ms and user_timeout is not None:
                sock.setsockopt(socket.IPPROTO_TCP, user_timeout, plan.tcp_user_timeout_ms)
            sock.settimeout(remaining(deadline))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.settimeout(remaining(deadline))
        return sock
    reason = _connect_reason(last or TimeoutError(), plan.connect_timeout)
    raise UnreachableError(f"cannot reach {display} at {where}: {reason}")


def recv_exact(sock: socket.socket, size: int, *, deadline: float | None = None) -> bytes:
    """Exactly ``size`` bytes from ``sock``, reading no further (nothing is buffered).

    Raises the socket's own errors: ``TimeoutError``, ``ConnectionError`` on end of stream.
    Use :func:`io_error` to turn them into kea-db errors.
    """
    chunks: list[bytes] = []
    missing = size
    while missing:
        if deadline is not None:
            sock.settimeout(remaining(deadline))
        chunk = sock.recv(missing)
        if not chunk:
            raise ConnectionAbortedError(errno.ECONNABORTED, "end of stream")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def send_all(sock: socket.socket, data: bytes, *, deadline: float | None = None) -> None:
    """Send every byte of ``data`` (timeout: until ``deadline``, else the socket's)."""
    if deadline is not None:
        sock.settimeout(remaining(deadline))
    sock.sendall(data)


def is_tls_error(exc: BaseException) -> bool:
    """Is ``exc`` an ``ssl.SSLError`` (without importing ssl when TLS was never used)?"""
    return type(exc).__module__ == "ssl" and isinstance(exc, OSError)


def tls_reason(exc: BaseException) -> str:
    """A short reason for a failed TLS handshake or TLS read: "certificate verify failed:
    unknown CA", "no shared cipher", "server requires a client certificate"..."""
    code = getattr(exc, "verify_code", None)
    if code is not None:
        message = str(getattr(exc, "verify_message", "") or "").rstrip(".")
        short = _VERIFY_REASONS.get(code)
        if short and message:
            return f"certificate verify failed: {short} ({message})"
        return f"certificate verify failed: {short or message or code}"
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return _SSL_REASONS.get(reason, reason.lower().replace("_", " "))
    if isinstance(exc, TimeoutError):
        return "timed out"
    if _is_eof(exc):
        return "the server closed the connection during the TLS handshake"
    return str(exc) or type(exc).__name__


def _is_eof(exc: BaseException) -> bool:
    """Did the peer just go away (no TLS alert that says why)?"""
    if getattr(exc, "reason", None) and "EOF" not in str(getattr(exc, "reason", "")):
        return False
    return isinstance(exc, (ConnectionError, EOFError)) or "EOF" in str(exc)


def io_error(
    exc: BaseException,
    *,
    display: str,
    where: str,
    phase: str,
    timeout: float | None = None,
    tls: bool = False,
) -> KeaDbError:
    """The kea-db error for a socket or TLS failure while talking to the server.

    ``phase`` says what was going on ("login", "query"), ``timeout`` which limit ran out,
    ``tls`` whether the socket is a TLS one. TLS errors become :class:`TlsError`, and so
    does the server hanging up on a fresh TLS session during login: with TLS 1.3 that is
    how a rejected client certificate often looks. Everything else is
    :class:`UnreachableError`.
    """
    if tls and phase == "login" and _is_eof(exc):
        return TlsError(
            f"{display} at {where} closed the TLS connection during login "
            "(does it reject the client certificate?)"
        )
    if is_tls_error(exc) and not isinstance(exc, TimeoutError):
        reason = tls_reason(exc)
        return TlsError(f"TLS with {display} at {where} failed during {phase}: {reason}")
    if isinstance(exc, TimeoutError):
        limit = f" within {timeout:g} s" if timeout else ""
        return UnreachableError(
            f"{display} at {where} timed out{limit} waiting for an answer during {phase}"
        )
    if isinstance(exc, (ConnectionAbortedError, ConnectionResetError, BrokenPipeError)):
        return UnreachableError(f"{display} at {where} closed the connection during {phase}")
    reason = str(getattr(exc, "strerror", None) or exc).lower()
    return UnreachableError(f"lost the connection to {display} at {where} during {phase}: {reason}")


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """``tls.context()``, with unreadable or mismatched TLS files reported as kea-db errors.

    Raises:
        SettingsError: a CA, certificate or key file cannot be read.
        TlsError: the files load but are unusable (key does not match the certificate...).
    """
    try:
        return tls.context()
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        files = ", ".join(f for f in (tls.ca_file, tls.ca_path, tls.cert_file, tls.key_file) if f)
        reason = str(exc.strerror or exc).lower()
        name = f"{exc.filename}" if exc.filename else f"one of {files}"
        raise SettingsError(f"cannot read the TLS file {name}: {reason}") from None
    except OSError as exc:  # ssl.SSLError: bad PEM, key/cert mismatch
        raise TlsError(f"cannot load the TLS files: {tls_reason(exc)}") from None
    except ValueError as exc:  # ssl.set_ciphers: no cipher matches
        raise TlsError(f"cannot use the TLS settings: {exc}") from None


def start_tls(
    sock: socket.socket,
    tls: TlsSettings,
    *,
    server_hostname: str | None,
    display: str,
    where: str,
    deadline: float | None = None,
) -> ssl.SSLSocket:
    """Wrap a connected socket in TLS per ``tls`` and complete the handshake.

    ``server_hostname`` is sent as SNI (not for IP addresses) and checked against the
    certificate when ``tls.verify_hostname``. On failure the socket is closed.

    Raises:
        TlsError: handshake failed (certificate verify failed, no shared cipher...).
        SettingsError: a TLS file cannot be read.
    """
    try:
        ctx = tls_context(tls)
    except KeaDbError:
        sock.close()
        raise
    if deadline is not None:
        sock.settimeout(remaining(deadline))
    try:
        return ctx.wrap_socket(sock, server_hostname=server_hostname or None)
    except OSError as exc:  # ssl.SSLError (and SSLCertVerificationError), resets, timeouts
        sock.close()
        timed_out = isinstance(exc, TimeoutError)
        reason = "TLS handshake timed out" if timed_out else tls_reason(exc)
        raise TlsError(f"TLS handshake with {display} at {where} failed: {reason}") from None
    except ValueError as exc:  # check_hostname without a host name (Unix socket)
        sock.close()
        raise TlsError(f"TLS with {display} at {where} cannot start: {exc}") from None


def tls_info(sock: socket.socket) -> tuple[str | None, str | None]:
    """(TLS version, cipher name) of a socket, or (None, None) for a cleartext one."""
    version = getattr(sock, "version", None)
    cipher = getattr(sock, "cipher", None)
    if version is None or cipher is None:
        return None, None
    described = cipher()
    return version(), described[0] if described else None


class Channel:
    """A connected socket with a receive buffer and the timeouts of its phase.

    During login every operation is bounded by one deadline; afterwards by the read and
    write timeouts (None: wait forever). Failures become kea-db errors via :func:`io_error`.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "deadline",
        "display",
        "login_timeout",
        "phase",
        "read_timeout",
        "sock",
        "where",
        "write_timeout",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        display: str,
        where: str,
        deadline: float | None = None,
        login_timeout: float | None = None,
    ) -> None:
        self.sock = sock
        self.login_timeout = login_timeout
        self.display = display
        self.where = where
        self.deadline = deadline
        self.read_timeout: float | None = None
        self.write_timeout: float | None = None
        self.phase = "login"
        self._buf = b""
        self._pos = 0

    def logged_in(self, read_timeout: float | None, write_timeout: float | None) -> None:
        """Switch from the login deadline to per-operation read/write timeouts."""
        self.deadline = None
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.phase = "query"

    def _limit(self, timeout: float | None) -> float | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left
        return timeout

    def _total(self, timeout: float | None) -> float | None:
        return self.login_timeout if self.deadline is not None else timeout

    def fail(self, exc: BaseException, timeout: float | None = None) -> KeaDbError:
        """The kea-db error for ``exc`` raised while talking on this channel."""
        return io_error(
            exc,
            display=self.display,
            where=self.where,
            phase=self.phase,
            timeout=timeout,
            tls=hasattr(self.sock, "version"),
        )

    def recv_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes (buffered reads)."""
        end = self._pos + size
        if end <= len(self._buf):
            data = self._buf[self._pos : end]
            self._pos = end
            return data
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        self._buf, self._pos = b"", 0
        try:
            while have < size:
                self.sock.settimeout(self._limit(self.read_timeout))
                chunk = self.sock.recv(max(65536, size - have))
                if not chunk:
                    raise ConnectionAbortedError(errno.ECONNABORTED, "end of stream")
                parts.append(chunk)
                have += len(chunk)
        except OSError as exc:
            raise self.fail(exc, self._total(self.read_timeout)) from None
        data = b"".join(parts)
        self._buf = data[size:]
        return data[:size]

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        try:
            self.sock.settimeout(self._limit(self.write_timeout))
            self.sock.sendall(data)
        except OSError as exc:
            raise self.fail(exc, self._total(self.write_timeout)) from None

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class WireSession:
    """What both protocol sessions share: a polite goodbye on close, and ``with``."""

    _GOODBYE: bytes = b""  # the protocol's "I am leaving" message

    _channel: Channel
    _closed: bool

    def close(self) -> None:
        """Say goodbye and close the socket; never raises, may be called twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._channel.sock.settimeout(1.0)
            self._channel.sock.sendall(self._GOODBYE)
        except OSError:
            pass
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

