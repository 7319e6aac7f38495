"""The protocol's own TLS upgrade, for the test-tls wire probe: no login.

Like ``openssl s_client -starttls``: open a socket with a deadline, send PostgreSQL's
SSLRequest or read MySQL's greeting and send its SSL request packet, then hand the socket
to the TLS handshake. Socket and TLS failures become kea-db errors with short reasons. No
password is ever sent here; sessions are opened by :mod:`keadb_cli.db.session`.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keadb_cli.errors import DeniedError, KeaDbError, SettingsError, TlsError, UnreachableError

if TYPE_CHECKING:
    import ssl

    from keadb_cli.db.plan import ConnectPlan, TlsSettings


def _protocol_error(message: str) -> KeaDbError:
    return UnreachableError(message, reason_code="protocol")


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



# -- PostgreSQL

SSL_REQUEST_CODE = 80877103
_SSL_REQUEST = struct.pack("!ii", 8, SSL_REQUEST_CODE)


def request_tls(
    sock: socket.socket, *, where: str = "the server", deadline: float | None = None
) -> bool:
    """Send SSLRequest; True when the server answers 'S' (go on with a TLS handshake),
    False when it answers 'N' (it has no TLS; the socket stays usable in cleartext).

    Raises:
        UnreachableError: the server closed the connection or did not answer.
        UnreachableError (protocol): any other answer (not a PostgreSQL server?).
    """
    try:
        send_all(sock, _SSL_REQUEST, deadline=deadline)
        answer = recv_exact(sock, 1, deadline=deadline)
    except OSError as exc:
        raise io_error(
            exc, display="PostgreSQL", where=where, phase="the TLS request"
        ) from None
    if answer == b"S":
        return True
    if answer == b"N":
        return False
    if answer == b"E":
        raise _protocol_error(
            f"PostgreSQL at {where} answered the TLS request with an error "
            "(a server older than 7.0, or not PostgreSQL)"
        )
    raise _protocol_error(
        f"{where} answered the TLS request with {answer!r}: is it a PostgreSQL server?"
    )



# -- MySQL

CLIENT_LONG_PASSWORD = 1
CLIENT_FOUND_ROWS = 1 << 1
CLIENT_LONG_FLAG = 1 << 2
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_SSL = 1 << 11
CLIENT_TRANSACTIONS = 1 << 13
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
CLIENT_DEPRECATE_EOF = 1 << 24

# What kea-db asks for (masked by what the server offers). FOUND_ROWS as Kea sets it;
# no DEPRECATE_EOF, so result sets always end with an EOF packet.
_WANTED = (
    CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
)

SERVER_MORE_RESULTS_EXISTS = 0x0008
UTF8MB4_GENERAL_CI = 45
MAX_PACKET = 1 << 24
_MAX_PAYLOAD = 0xFFFFFF

UTF8MB4_GENERAL_CI = 45


@dataclass(frozen=True)
class Greeting:
    """The server's initial handshake packet (HandshakeV10)."""

    protocol_version: int
    server_version: str  # MariaDB's "5.5.5-" replication prefix removed, as libmariadb does
    connection_id: int
    capabilities: int
    charset: int
    status: int
    auth_plugin: str  # the server's default plugin ("" when it has no CLIENT_PLUGIN_AUTH)
    auth_data: bytes  # the scramble (nonce), 20 bytes on current servers

    @property
    def offers_tls(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    """A length-encoded integer at ``pos``: (value, next position)."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFC:
        return int.from_bytes(data[pos + 1 : pos + 3], "little"), pos + 3
    if first == 0xFD:
        return int.from_bytes(data[pos + 1 : pos + 4], "little"), pos + 4
    if first == 0xFE:
        return int.from_bytes(data[pos + 1 : pos + 9], "little"), pos + 9
    raise ValueError(f"bad length-encoded integer 0x{first:02x}")


def _lenenc_bytes(data: bytes) -> bytes:
    size = len(data)
    if size < 0xFB:
        return bytes((size,)) + data
    if size < 1 << 16:
        return b"\xfc" + size.to_bytes(2, "little") + data
    if size < 1 << 24:
        return b"\xfd" + size.to_bytes(3, "little") + data
    return b"\xfe" + size.to_bytes(8, "little") + data


def _cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    """A NUL-terminated string at ``pos`` (or the rest, if the NUL is missing)."""
    end = data.find(b"\x00", pos)
    if end < 0:
        return data[pos:], len(data)
    return data[pos:end], end + 1


def parse_error(payload: bytes) -> tuple[int, str, str]:
    """An ERR packet: (error number, SQLSTATE or "", message)."""
    if len(payload) < 3 or payload[0] != 0xFF:
        raise ValueError("not an ERR packet")
    code = int.from_bytes(payload[1:3], "little")
    rest = payload[3:]
    state = ""
    if rest[:1] == b"#" and len(rest) >= 6:
        state, rest = rest[1:6].decode("ascii", "replace"), rest[6:]
    return code, state, rest.decode("utf-8", "replace")


def parse_greeting(payload: bytes) -> Greeting:
    """The fields of a HandshakeV10 packet.

    Raises:
        UnreachableError (protocol): not a HandshakeV10 packet.
    """
    if not payload:
        raise _protocol_error("empty greeting")
    if payload[0] != 10:
        if payload[0] == 9:
            raise _protocol_error("the server speaks the MySQL 3.x protocol (version 9)")
        raise _protocol_error(f"unknown protocol version {payload[0]}")
    try:
        raw_version, pos = _cstring(payload, 1)
        connection_id = int.from_bytes(payload[pos : pos + 4], "little")
        auth_data = payload[pos + 4 : pos + 12]
        pos += 13  # 8 bytes of nonce, one filler
        capabilities = int.from_bytes(payload[pos : pos + 2], "little")
        pos += 2
        charset = status = 0
        plugin = b""
        if len(payload) > pos:
            charset = payload[pos]
            status = int.from_bytes(payload[pos + 1 : pos + 3], "little")
            capabilities |= int.from_bytes(payload[pos + 3 : pos + 5], "little") << 16
            auth_length = payload[pos + 5]
            pos += 16  # charset 1, status 2, capabilities 2, auth length 1, reserved 10
            if capabilities & CLIENT_SECURE_CONNECTION:
                part = max(13, auth_length - 8)
                auth_data += payload[pos : pos + part].rstrip(b"\x00")
                pos += part
            if capabilities & CLIENT_PLUGIN_AUTH:
                plugin, pos = _cstring(payload, pos)
    except IndexError:
        raise _protocol_error("truncated greeting") from None
    version = raw_version.decode("utf-8", "replace")
    if version.startswith("5.5.5-") and "MariaDB" in version:
        version = version[len("5.5.5-") :]
    return Greeting(
        protocol_version=payload[0],
        server_version=version,
        connection_id=connection_id,
        capabilities=capabilities,
        charset=charset,
        status=status,
        auth_plugin=plugin.decode("ascii", "replace"),
        auth_data=auth_data,
    )


def _login_error(payload: bytes, display_where: str) -> KeaDbError:
    """The kea-db error for an ERR packet instead of a greeting."""
    from keadb_cli.db import classify

    try:
        code, _state, message = parse_error(payload)
    except ValueError:
        return _protocol_error(f"{display_where} sent a malformed error packet")
    error = classify.login_error("mysql", display_where, message, code=str(code))
    return error if isinstance(error, DeniedError | UnreachableError) else UnreachableError(
        error.message, reason_code=error.reason_code)


def read_greeting(
    sock: socket.socket, *, where: str = "the server", deadline: float | None = None
) -> Greeting:
    """Read the server's greeting (the first packet, sequence id 0), and nothing more.

    Raises:
        DeniedError: the server sent an error instead ("Host ... is not allowed to
            connect", error 1130).
        UnreachableError: closed or timed out (or "Too many connections", 1040).
        UnreachableError (protocol): not a MySQL/MariaDB server.
    """
    display_where = f"MySQL at {where}"
    try:
        header = recv_exact(sock, 4, deadline=deadline)
        size = int.from_bytes(header[:3], "little")
        if header[3] != 0 or size == 0 or size > 1 << 16:
            raise _protocol_error(f"{where} did not greet like a MySQL server: is it one?")
        payload = recv_exact(sock, size, deadline=deadline)
    except OSError as exc:
        raise io_error(
            exc, display="MySQL", where=where, phase="the greeting"
        ) from None
    if payload[0] == 0xFF:
        raise _login_error(payload, display_where)
    try:
        return parse_greeting(payload)
    except KeaDbError as exc:
        raise _protocol_error(
            f"{display_where} sent a greeting kea-db cannot use: {exc.message}") from None


def client_flags(greeting: Greeting, *, tls: bool) -> int:
    """The capability flags kea-db sends to this server (with CLIENT_SSL when ``tls``)."""
    flags = _WANTED & greeting.capabilities
    if tls:
        flags |= CLIENT_SSL
    return flags


def send_ssl_request(
    sock: socket.socket,
    greeting: Greeting,
    *,
    charset: int = UTF8MB4_GENERAL_CI,
    where: str = "the server",
    deadline: float | None = None,
) -> None:
    """Send the short SSLRequest packet (sequence id 1, CLIENT_SSL set); the TLS handshake
    (:func:`start_tls`) follows at once.

    Raises:
        UnreachableError: the connection broke.
    """
    payload = struct.pack("<IIB23x", client_flags(greeting, tls=True), MAX_PACKET, charset)
    try:
        send_all(
            sock, len(payload).to_bytes(3, "little") + b"\x01" + payload, deadline=deadline
        )
    except OSError as exc:
        raise io_error(
            exc, display="MySQL", where=where, phase="the TLS request"
        ) from None


