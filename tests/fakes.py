"""Fake MySQL and PostgreSQL servers that misbehave on purpose, for kea-db's tests.

kea-db reaches databases through libpq and libmariadb (ctypes) and through its own protocol
clients. These fakes speak just enough of the PostgreSQL frontend/backend protocol 3.0 and of
the MySQL client/server protocol (handshake v10 and v9, text resultsets) to play a hostile or
broken server, and they record everything they receive, so that a test can assert, for
example, that a password never reached the wire::

    with FakeServer("mysql", "clear_password") as server:
        ...  # point the client under test at server.host, server.port
    assert not server.received_any(b"the password")

One thread accepts, one thread serves each connection. Nothing blocks for long: sockets are
polled every 0.1 s, each connection has a hard lifetime (``lifetime``, 30 s by default), the
listener stops after ``max_connections`` connections, and :meth:`FakeServer.close` returns
within about a second. Standard library only, plus ``cryptography`` for the RSA key of the
``caching_sha2_rsa`` scenario.

Statements. The scenarios that log the client in count the statements it sends: PostgreSQL
simple Query messages, MySQL commands other than COM_QUIT (COM_QUERY, COM_PING...). Each
statement before the *special* one (the scenario's misbehaviour) gets an empty success
(MySQL OK packet; PostgreSQL CommandComplete named after the statement's first word, then
ReadyForQuery). The special statement is the first one whose index (from 0) is at least
``stall_after`` and, when ``trigger`` is given, whose text contains ``trigger`` (ignoring
case). Statements after it, when the scenario lets the connection live on, are answered like
the ones before it.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import secrets
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["SCENARIOS", "FakeServer", "Flavor", "MysqlLogin"]

Flavor = Literal["mysql", "postgresql"]

MIB: Final = 1 << 20
POLL_INTERVAL: Final = 0.1  # seconds between checks of the stop flag and the lifetime
CLOSE_WITHIN: Final = 1.0  # seconds close() waits for the threads
PROTOCOL9_WAIT: Final = 2.0  # seconds the protocol9 scenario waits for the client's reply
MAX_CLIENT_MESSAGE: Final = 16 * MIB  # a longer client message ends the connection

SCENARIOS: Final[dict[str, tuple[str, ...]]] = {
    "mysql": (
        "clear_password",
        "dialog",
        "caching_sha2_rsa",
        "accept_then_stall",
        "oversized_packet",
        "many_rows",
        "protocol9",
        "drop_after_login",
        "echo_password_error",
        "huge_length_prefix",
        "null_marker_length",
        "truncated_row",
    ),
    "postgresql": (
        "accept_then_stall",
        "oversized_message",
        "many_rows",
        "drop_after_login",
        "cleartext_password",
        "md5_password",
        "scram_without_final",
        "scram_costly",
        "echo_password_error",
    ),
}

# -- MySQL client/server protocol constants ---------------------------------------------------

CLIENT_LONG_PASSWORD: Final = 0x00000001  # also "CLIENT_MYSQL": not a MariaDB server
CLIENT_FOUND_ROWS: Final = 0x00000002
CLIENT_LONG_FLAG: Final = 0x00000004
CLIENT_CONNECT_WITH_DB: Final = 0x00000008
CLIENT_PROTOCOL_41: Final = 0x00000200
CLIENT_SSL: Final = 0x00000800
CLIENT_TRANSACTIONS: Final = 0x00002000
CLIENT_SECURE_CONNECTION: Final = 0x00008000
CLIENT_MULTI_STATEMENTS: Final = 0x00010000
CLIENT_MULTI_RESULTS: Final = 0x00020000
CLIENT_PS_MULTI_RESULTS: Final = 0x00040000
CLIENT_PLUGIN_AUTH: Final = 0x00080000
CLIENT_CONNECT_ATTRS: Final = 0x00100000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: Final = 0x00200000

# What every greeting offers. No CLIENT_SSL (no TLS), no CLIENT_DEPRECATE_EOF (resultsets end
# with EOF packets), no CLIENT_SESSION_TRACK (plain OK packets).
MYSQL_CAPABILITIES: Final = (
    CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
)
SERVER_STATUS_AUTOCOMMIT: Final = 0x0002
UTF8MB4_GENERAL_CI: Final = 45
MYSQL_TYPE_VAR_STRING: Final = 0xFD
COM_QUIT: Final = 0x01
COM_QUERY: Final = 0x03
MAX_PACKET: Final = 0xFFFFFF  # a payload this long continues in the next packet
SCRAMBLE_LENGTH: Final = 20
DIALOG_PASSWORD_QUESTION: Final = 4  # the dialog plugin's "ask for a password" type byte
ER_ACCESS_DENIED: Final = 1045

# -- PostgreSQL frontend/backend protocol constants -------------------------------------------

PG_PROTOCOL_3_0: Final = 3 << 16
PG_SSL_REQUEST: Final = 80877103
PG_GSSENC_REQUEST: Final = 80877104
PG_CANCEL_REQUEST: Final = 80877102
PG_AUTH_OK: Final = 0
PG_AUTH_CLEARTEXT: Final = 3
PG_AUTH_MD5: Final = 5
PG_AUTH_SASL: Final = 10
PG_AUTH_SASL_CONTINUE: Final = 11
PG_TEXT_OID: Final = 25
PG_CLAIMED_DATAROW_LENGTH: Final = 0x3FFFFFF0  # what oversized_message's DataRow says it is
PG_MAX_STARTUP: Final = 10_000


class _Closed(Exception):
    """The connection is over: the client left, the lifetime ran out, the scenario ended it,
    or the server is closing."""


@dataclass(frozen=True)
class MysqlLogin:
    """A client's HandshakeResponse41 as the fake understood it.

    Fields the fake could not parse keep their empty defaults; ``raw`` is the whole payload.
    """

    raw: bytes
    capabilities: int = 0
    user: bytes = b""
    auth_data: bytes = b""
    database: bytes | None = None
    plugin: bytes | None = None

    @property
    def is_ssl_request(self) -> bool:
        """The 32-byte SSLRequest a client sends before TLS instead of a full response."""
        return len(self.raw) == 32 and bool(self.capabilities & CLIENT_SSL)


class _Reader:
    """Cursor over a received payload; raises IndexError past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise IndexError("payload too short")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def cstring(self) -> bytes:
        end = self.data.index(b"\0", self.pos)
        chunk = self.data[self.pos : end]
        self.pos = end + 1
        return chunk

    def lenenc_int(self) -> int:
        first = self.take(1)[0]
        if first < 0xFB:
            return first
        width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
        if width is None:
            raise IndexError(f"not a length-encoded integer: {first:#x}")
        return int.from_bytes(self.take(width), "little")

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


def _parse_handshake_response(payload: bytes) -> MysqlLogin:
    """Parse a HandshakeResponse41 (or SSLRequest) as far as it goes."""
    reader = _Reader(payload)
    fields: dict[str, bytes | None] = {}
    capabilities = 0
    try:
        capabilities = int.from_bytes(reader.take(4), "little")
        reader.take(4 + 1 + 23)  # max packet size, character set, filler
        if reader.at_end():
            return MysqlLogin(payload, capabilities)
        fields["user"] = reader.cstring()
        if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            fields["auth_data"] = reader.take(reader.lenenc_int())
        elif capabilities & CLIENT_SECURE_CONNECTION:
            fields["auth_data"] = reader.take(reader.take(1)[0])
        else:
            fields["auth_data"] = reader.cstring()
        if capabilities & CLIENT_CONNECT_WITH_DB:
            fields["database"] = reader.cstring()
        if capabilities & CLIENT_PLUGIN_AUTH:
            fields["plugin"] = reader.cstring()
    except (IndexError, ValueError):
        pass  # keep what was parsed: a fake must not trip over a strange client
    return MysqlLogin(
        raw=payload,
        capabilities=capabilities,
        user=fields.get("user") or b"",
        auth_data=fields.get("auth_data") or b"",
        database=fields.get("database"),
        plugin=fields.get("plugin"),
    )


def _strip_nul(data: bytes) -> bytes:
    """A NUL-terminated string's text (the data itself when it has no terminator)."""
    return data[:-1] if data.endswith(b"\0") else data


def _mysql_scramble() -> bytes:
    """20 printable bytes, no NUL, as real servers make them."""
    return bytes(0x21 + secrets.randbelow(0x7F - 0x21) for _ in range(SCRAMBLE_LENGTH))


def _lenenc_bytes(data: bytes) -> bytes:
    """A length-encoded string (for the short strings of column definitions)."""
    if len(data) >= 0xFB:
        raise ValueError("only short strings here")
    return bytes([len(data)]) + data


def _mysql_greeting_v10(version: str, connection_id: int, scramble: bytes, plugin: bytes) -> bytes:
    return (
        bytes([10])
        + version.encode() + b"\0"
        + connection_id.to_bytes(4, "little")
        + scramble[:8] + b"\0"
        + (MYSQL_CAPABILITIES & 0xFFFF).to_bytes(2, "little")
        + bytes([UTF8MB4_GENERAL_CI])
        + SERVER_STATUS_AUTOCOMMIT.to_bytes(2, "little")
        + (MYSQL_CAPABILITIES >> 16).to_bytes(2, "little")
        + bytes([len(scramble) + 1])
        + bytes(10)  # reserved
        + scramble[8:] + b"\0"
        + plugin + b"\0"
    )  # fmt: skip


def _mysql_greeting_v9(version: str, connection_id: int, scramble: bytes) -> bytes:
    return (
        bytes([9])
        + version.encode() + b"\0"
        + connection_id.to_bytes(4, "little")
        + scramble[:8] + b"\0"
    )  # fmt: skip


def _mysql_ok() -> bytes:
    # header, affected rows, last insert id, status flags, warnings
    return b"\x00\x00\x00" + struct.pack("<HH", SERVER_STATUS_AUTOCOMMIT, 0)


def _mysql_eof() -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, SERVER_STATUS_AUTOCOMMIT)


def _mysql_err(code: int, sqlstate: str, message: str) -> bytes:
    return b"\xff" + struct.pack("<H", code) + b"#" + sqlstate.encode() + message.encode()


def _mysql_column(name: bytes) -> bytes:
    """A ColumnDefinition41 for a VAR_STRING column."""
    return (
        _lenenc_bytes(b"def")  # catalog
        + _lenenc_bytes(b"")  # schema
        + _lenenc_bytes(b"")  # table
        + _lenenc_bytes(b"")  # org_table
        + _lenenc_bytes(name)
        + _lenenc_bytes(name)  # org_name
        + b"\x0c"  # length of the fixed fields
        + struct.pack("<HIBHB", UTF8MB4_GENERAL_CI, 0xFFFFFFFF, MYSQL_TYPE_VAR_STRING, 0, 0)
        + b"\x00\x00"  # filler
    )


def _mysql_packet(payload: bytes, seq: int) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


@cache
def _filler() -> memoryview:
    """One maximal packet's worth of b"x": the only big buffer the streams ever hold."""
    return memoryview(b"x" * MAX_PACKET)


def _pg_message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _pg_error(severity: str, code: str, message: str) -> bytes:
    fields = (("S", severity), ("V", severity), ("C", code), ("M", message))
    body = b"".join(key.encode() + value.encode() + b"\0" for key, value in fields) + b"\0"
    return _pg_message(b"E", body)


def _pg_row_description(*names: bytes) -> bytes:
    body = struct.pack("!h", len(names)) + b"".join(
        # name, table OID, column number, type OID, type size, type modifier, format (text)
        name + b"\0" + struct.pack("!ihihih", 0, 0, PG_TEXT_OID, -1, -1, 0)
        for name in names
    )
    return _pg_message(b"T", body)


def _pg_command_tag(sql: bytes, status: bytes) -> tuple[bytes, bytes]:
    """The CommandComplete tag for an answered statement, and the transaction status after."""
    words = sql.split(None, 1)
    word = words[0].upper() if words and words[0].isalpha() else b"SET"
    if word in (b"BEGIN", b"START"):
        return (b"BEGIN" if word == b"BEGIN" else b"START TRANSACTION"), b"T"
    if word in (b"COMMIT", b"END", b"ROLLBACK", b"ABORT"):
        return (b"ROLLBACK" if word in (b"ROLLBACK", b"ABORT") else b"COMMIT"), b"I"
    if word == b"SELECT":
        return b"SELECT 0", status
    return word, status


class _Peer:
    """One accepted connection: buffered, interruptible, recorded reads and writes."""

    def __init__(self, server: FakeServer, index: int, sock: socket.socket) -> None:
        self.server = server
        self.index = index
        self.sock = sock
        self.deadline = time.monotonic() + server.lifetime
        self.buffer = bytearray()
        self.seq = 0  # MySQL: sequence id of the next packet sent
        self.tx_status = b"I"  # PostgreSQL: transaction status for ReadyForQuery
        sock.settimeout(POLL_INTERVAL)

    def event(self, name: str) -> None:
        self.server._event(self.index, name)

    def check(self) -> None:
        """Raise _Closed when the server is closing or this connection's time is up."""
        if self.server._stopping.is_set():
            raise _Closed("server closing")
        if time.monotonic() >= self.deadline:
            self.event("lifetime-expired")
            raise _Closed("lifetime expired")

    def fill(self, wake: threading.Event | None = None, until: float | None = None) -> bool:
        """Receive more bytes into the buffer: True once some arrived, False when ``wake`` was
        set or the ``until`` time passed first. Raises _Closed when the connection ends."""
        while True:
            if (wake is not None and wake.is_set()) or (
                until is not None and time.monotonic() >= until
            ):
                return False
            self.check()
            try:
                chunk = self.sock.recv(256 * 1024)
            except TimeoutError:
                continue
            except OSError as exc:
                self.event("client-closed")
                raise _Closed(f"receive failed: {exc}") from exc
            if not chunk:
                self.event("client-closed")
                raise _Closed("client closed")
            self.server._record(self.index, chunk)
            self.buffer += chunk
            return True

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def send(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            self.check()
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue  # the client is not reading: poll again
            except OSError as exc:
                self.event("client-closed")
                raise _Closed(f"send failed: {exc}") from exc
            view = view[sent:]

    def stall(self, wake: threading.Event | None = None) -> None:
        """Answer nothing; keep receiving (and recording) until ``wake`` is set. Without
        ``wake`` this only ends by raising _Closed (client gone, lifetime, server closing)."""
        self.event("stall")
        while self.fill(wake):
            pass

    # MySQL packets

    def mysql_read(self) -> bytes:
        """One client payload (continuation packets joined); the next sequence id follows."""
        payload = bytearray()
        while True:
            header = self.read(4)
            length = int.from_bytes(header[:3], "little")
            self.seq = (header[3] + 1) & 0xFF
            if len(payload) + length > MAX_CLIENT_MESSAGE:
                self.event("client-message-too-long")
                raise _Closed("client packet too long")
            payload += self.read(length)
            if length < MAX_PACKET:
                return bytes(payload)

    def mysql_write(self, payload: bytes) -> None:
        if len(payload) >= MAX_PACKET:
            raise ValueError("mysql_write is for short packets")
        self.send(_mysql_packet(payload, self.seq))
        self.seq = (self.seq + 1) & 0xFF

    # PostgreSQL messages

    def pg_read(self) -> tuple[bytes, bytes]:
        """One typed client message: (type byte, body)."""
        kind = self.read(1)
        (length,) = struct.unpack("!i", self.read(4))
        if not 4 <= length <= MAX_CLIENT_MESSAGE:
            self.event("client-message-too-long")
            raise _Closed(f"bad client message length {length}")
        return kind, self.read(length - 4)


Special = Callable[[_Peer, bytes], None]


class FakeServer:
    """A fake MySQL or PostgreSQL server on 127.0.0.1 (or ``bind``) that plays one scenario.

    Args:
        flavor: "mysql" or "postgresql".
        scenario: one of ``SCENARIOS[flavor]``; :meth:`describe` gives its docstring.
        stall_after: statements answered with an empty success before the special one.
        trigger: if given, the special statement must also contain it (case-insensitive).
        rows: rows sent by ``many_rows``.
        total_bytes: bytes streamed by ``oversized_packet`` / ``oversized_message``.
        max_connections: connections accepted (cancel requests included) before the
            listener closes.
        lifetime: seconds after which each connection is closed, whatever it is doing.
        server_version: overrides "8.0.40-fake" (MySQL) / "15.0" (PostgreSQL).
        tls: PostgreSQL: a server context; SSLRequest is then answered 'S' and the rest of
            the connection runs inside TLS (else 'N').
        echo: the bytes ``echo_password_error`` puts in its error message (the password a
            server or proxy would echo back); may be changed between connections.
        bind: the address and port to listen on (another loopback address, such as
            127.0.0.3, and a real server's port make it one entry of a libpq host list).

    The port is bound when the object is made; connections are served from :meth:`start`
    (called by ``with``) until :meth:`close`.
    """

    def __init__(
        self,
        flavor: Flavor,
        scenario: str,
        *,
        stall_after: int = 0,
        trigger: bytes | None = None,
        rows: int = 1_000_000,
        total_bytes: int = 256 * MIB,
        max_connections: int = 4,
        lifetime: float = 30.0,
        server_version: str | None = None,
        tls: ssl.SSLContext | None = None,
        echo: bytes = b"",
        bind: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        if flavor not in SCENARIOS:
            raise ValueError(f"flavor must be one of {sorted(SCENARIOS)}, not {flavor!r}")
        if scenario not in SCENARIOS[flavor]:
            raise ValueError(
                f"{flavor} scenario must be one of {', '.join(SCENARIOS[flavor])}, not {scenario!r}"
            )
        if stall_after < 0 or rows < 0 or total_bytes < 0 or max_connections < 1:
            raise ValueError("stall_after, rows and total_bytes must be >= 0, max_connections >= 1")
        self.flavor: Flavor = flavor
        self.scenario = scenario
        self.stall_after = stall_after
        self.trigger = trigger
        self.rows = rows
        self.total_bytes = total_bytes
        self.max_connections = max_connections
        self.lifetime = lifetime
        self.server_version = server_version or ("8.0.40-fake" if flavor == "mysql" else "15.0")
        self.tls = tls
        self.echo = echo

        # What the server saw; every list grows under self._cond.
        self.events: list[str] = []
        self.event_log: list[tuple[int, str]] = []  # (connection index, event)
        self.logins: list[MysqlLogin] = []  # MySQL HandshakeResponses
        self.startups: list[dict[str, str]] = []  # PostgreSQL StartupMessage parameters
        self.auth_replies: list[bytes] = []  # what clients answered to auth requests
        self.recovered_passwords: list[bytes] = []  # passwords the fake could read
        self.queries: list[bytes] = []  # statement texts (MySQL: command payloads)
        self.backend_keys: list[tuple[int, int]] = []  # PostgreSQL (pid, secret) handed out
        self.cancel_requests: list[tuple[int, int]] = []  # PostgreSQL (pid, secret) received
        self.errors: list[BaseException] = []  # bugs in the fake itself (should stay empty)
        self._received: list[bytearray] = []
        self._cond = threading.Condition()
        self._cancel_wakes: dict[tuple[int, int], threading.Event] = {}

        self.private_key: rsa.RSAPrivateKey | None = None
        self.public_key_pem = b""
        if scenario == "caching_sha2_rsa":
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public_key_pem = self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )

        self._handler: Callable[[_Peer], None] = getattr(self, f"_{flavor}_{scenario}")
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accept_thread: threading.Thread | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(bind)
        self._listener.listen(max_connections + 4)
        self._listener.settimeout(POLL_INTERVAL)
        self.host = bind[0]
        self.port: int = self._listener.getsockname()[1]

    # -- public API ------------------------------------------------------------------------

    def start(self) -> FakeServer:
        """Start accepting connections (idempotent)."""
        if self._accept_thread is None:
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"fake-{self.flavor}-accept", daemon=True
            )
            self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and end every connection; returns within about a second."""
        self._stopping.set()
        deadline = time.monotonic() + CLOSE_WITHIN
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._cond:
            threads = list(self._threads)
            sockets = list(self._sockets)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for sock in sockets:  # closed ones raise OSError; a live one is cut short
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def received(self) -> list[bytes]:
        """Everything each connection received, in accept order."""
        with self._cond:
            return [bytes(data) for data in self._received]

    def received_any(self, needle: bytes) -> bool:
        """Whether any connection received ``needle`` (e.g. a password) anywhere."""
        with self._cond:
            return any(needle in data for data in self._received)

    def wait_for(self, event: str, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``event`` happened ``count`` times; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.events.count(event) >= count, timeout)

    def describe(self) -> str:
        """The docstring of this server's scenario."""
        return inspect.getdoc(self._handler) or ""

    # -- plumbing --------------------------------------------------------------------------

    def _event(self, index: int, name: str) -> None:
        with self._cond:
            self.events.append(name)
            self.event_log.append((index, name))
            self._cond.notify_all()

    def _record(self, index: int, data: bytes) -> None:
        with self._cond:
            self._received[index] += data

    def _add(self, records: list[bytes], item: bytes) -> None:
        with self._cond:
            records.append(item)

    def _accept_loop(self) -> None:
        accepted = 0
        try:
            while accepted < self.max_connections and not self._stopping.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                index = accepted
                accepted += 1
                if accepted >= self.max_connections:
                    self._listener.close()  # later clients are refused
                thread = threading.Thread(
                    target=self._serve,
                    args=(index, sock),
                    name=f"fake-{self.flavor}-{index}",
                    daemon=True,
                )
                with self._cond:
                    self._received.append(bytearray())
                    self._sockets.append(sock)
                    self._threads.append(thread)
                self._event(index, "accepted")
                thread.start()
        finally:
            self._listener.close()

    def _serve(self, index: int, sock: socket.socket) -> None:
        try:
            self._handler(_Peer(self, index, sock))
        except _Closed:
            pass
        except Exception as exc:  # a bug in the fake: keep it for the test to see
            with self._cond:
                self.errors.append(exc)
            self._event(index, "handler-error")
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            self._event(index, "closed")

    def _auth_reply(self, peer: _Peer, reply: bytes, password: bytes | None = None) -> None:
        self._add(self.auth_replies, reply)
        peer.event("auth-reply")
        if password is not None:
            self._add(self.recovered_passwords, password)
            peer.event("password-recovered")

    def _is_special(self, index: int, sql: bytes) -> bool:
        if index < self.stall_after:
            return False
        return self.trigger is None or self.trigger.lower() in sql.lower()

    # -- MySQL -----------------------------------------------------------------------------

    def _mysql_greet(self, peer: _Peer, plugin: bytes) -> bytes:
        """Send a protocol 10 greeting naming ``plugin``; return its scramble."""
        scramble = _mysql_scramble()
        peer.seq = 0
        peer.mysql_write(_mysql_greeting_v10(self.server_version, peer.index + 1, scramble, plugin))
        peer.event("greeting-sent")
        return scramble

    def _mysql_handshake_response(self, peer: _Peer) -> MysqlLogin:
        login = _parse_handshake_response(peer.mysql_read())
        if login.is_ssl_request:
            peer.event("ssl-request")  # TLS was not offered: a client must not ask
            raise _Closed("SSL request without CLIENT_SSL")
        with self._cond:
            self.logins.append(login)
        peer.event("handshake-response")
        return login

    def _mysql_deny(self, peer: _Peer, login: MysqlLogin) -> None:
        user = login.user.decode("utf-8", "replace")
        message = f"Access denied for user '{user}'@'localhost' (using password: YES)"
        peer.mysql_write(_mysql_err(ER_ACCESS_DENIED, "28000", message))
        peer.event("access-denied")

    def _mysql_switch_then_deny(self, peer: _Peer, plugin: bytes, data: bytes) -> None:
        self._mysql_greet(peer, b"mysql_native_password")
        login = self._mysql_handshake_response(peer)
        peer.mysql_write(b"\xfe" + plugin + b"\0" + data)
        peer.event("auth-switch-sent")
        reply = peer.mysql_read()
        self._auth_reply(peer, reply, password=_strip_nul(reply))
        self._mysql_deny(peer, login)

    def _mysql_clear_password(self, peer: _Peer) -> None:
        """Greeting with mysql_native_password; after the HandshakeResponse, an
        AuthSwitchRequest to ``mysql_clear_password``. The reply (the password itself, NUL
        terminated) goes to ``auth_replies`` and, without its NUL, ``recovered_passwords``.
        Then ERR 1045 (28000) Access denied.

        Events: greeting-sent, handshake-response, auth-switch-sent, auth-reply,
        password-recovered, access-denied."""
        self._mysql_switch_then_deny(peer, b"mysql_clear_password", b"")

    def _mysql_dialog(self, peer: _Peer) -> None:
        """Like ``clear_password``, but switches to the ``dialog`` plugin with a password
        question: type byte 4 then the prompt "Password: ". The client's answer (the
        password, NUL terminated) is recorded the same way. Then ERR 1045."""
        self._mysql_switch_then_deny(
            peer, b"dialog", bytes([DIALOG_PASSWORD_QUESTION]) + b"Password: "
        )

    def _mysql_caching_sha2_rsa(self, peer: _Peer) -> None:
        """Greeting with caching_sha2_password (a client answering for another plugin gets
        an AuthSwitchRequest to it first). After the scramble response: AuthMoreData 0x01
        0x04, "perform full authentication". A client that sends 0x02 (event
        "public-key-requested") gets AuthMoreData with a real RSA-2048 public key (PEM,
        SubjectPublicKeyInfo; ``private_key`` / ``public_key_pem``). The next reply is
        decrypted (OAEP with SHA-1, or PKCS#1 v1.5) and XORed with the scramble; a reply
        that does not decrypt counts as the cleartext password (NUL terminated). Either
        way the password lands in ``recovered_passwords``. Then ERR 1045."""
        scramble = self._mysql_greet(peer, b"caching_sha2_password")
        login = self._mysql_handshake_response(peer)
        if login.plugin not in (None, b"caching_sha2_password"):
            peer.mysql_write(b"\xfecaching_sha2_password\0" + scramble + b"\0")
            peer.event("auth-switch-sent")
            self._auth_reply(peer, peer.mysql_read())
        peer.mysql_write(b"\x01\x04")
        peer.event("full-auth-requested")
        reply = peer.mysql_read()
        if reply == b"\x02":
            peer.event("public-key-requested")
            peer.mysql_write(b"\x01" + self.public_key_pem)
            peer.event("public-key-sent")
            reply = peer.mysql_read()
        password = self._rsa_recover(reply, scramble)
        if password is None:
            password = _strip_nul(reply)  # sent in clear
        self._auth_reply(peer, reply, password=password)
        self._mysql_deny(peer, login)

    def _rsa_recover(self, ciphertext: bytes, scramble: bytes) -> bytes | None:
        """The password inside an RSA-encrypted caching_sha2 reply, or None."""
        key = self.private_key
        if key is None or len(ciphertext) != key.key_size // 8:
            return None
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        for scheme in (oaep, padding.PKCS1v15()):
            try:
                mixed = key.decrypt(ciphertext, scheme)
            except ValueError:
                continue
            plain = bytes(b ^ scramble[i % len(scramble)] for i, b in enumerate(mixed))
            return _strip_nul(plain)
        return None

    def _mysql_login_ok(self, peer: _Peer) -> None:
        """Greeting with mysql_native_password; OK to any HandshakeResponse."""
        self._mysql_greet(peer, b"mysql_native_password")
        self._mysql_handshake_response(peer)
        peer.mysql_write(_mysql_ok())
        peer.event("login-ok")

    def _mysql_commands(self, peer: _Peer, special: Special) -> None:
        """Log in, then serve commands: OK, except ``special`` for the special statement.
        COM_QUIT ends the connection."""
        self._mysql_login_ok(peer)
        index = 0
        done = False
        while True:
            payload = peer.mysql_read()
            command = payload[0] if payload else -1
            if command == COM_QUIT:
                peer.event("quit")
                return
            text = payload[1:]
            self._add(self.queries, text)
            peer.event("query" if command == COM_QUERY else "command")
            if not done and self._is_special(index, text):
                done = True
                special(peer, text)
            else:
                peer.mysql_write(_mysql_ok())
            index += 1

    def _mysql_accept_then_stall(self, peer: _Peer) -> None:
        """Any login is accepted (OK whatever the auth data; no plugin switch). The first
        ``stall_after`` statements get OK; the next one is read and never answered: the
        socket stays open until the client closes it or the lifetime ends (event
        "stall")."""
        self._mysql_commands(peer, lambda p, _sql: p.stall())

    def _mysql_drop_after_login(self, peer: _Peer) -> None:
        """Any login is accepted; ``stall_after`` statements get OK; on the next one the
        server closes the socket without a word (event "dropped")."""
        self._mysql_commands(peer, _drop)

    def _mysql_oversized_packet(self, peer: _Peer) -> None:
        """Any login is accepted; ``stall_after`` statements get OK; the next one gets a text
        resultset (one VAR_STRING column "value") whose single row is one payload of
        ``total_bytes`` bytes: 0xFE + 8-byte length + "xxx...", split in packets of 0xFFFFFF
        bytes (plus the short last one, empty if need be), then EOF. Streamed lazily from a
        single 16 MiB buffer; stops when the client closes. Event "stream-done" once
        complete; later statements get OK."""
        self._mysql_commands(peer, self._mysql_send_oversized)

    def _mysql_send_oversized(self, peer: _Peer, _sql: bytes) -> None:
        peer.mysql_write(b"\x01")  # column count
        peer.mysql_write(_mysql_column(b"value"))
        peer.mysql_write(_mysql_eof())
        prefix_length = 9
        value_length = max(0, self.total_bytes - prefix_length)
        head = b"\xfe" + value_length.to_bytes(8, "little")
        remaining = prefix_length + value_length
        filler = _filler()
        while True:
            size = min(remaining, MAX_PACKET)
            peer.send(size.to_bytes(3, "little") + bytes([peer.seq]) + head)
            peer.seq = (peer.seq + 1) & 0xFF
            peer.send(filler[: size - len(head)])
            remaining -= size
            head = b""
            if size < MAX_PACKET:
                break
        peer.mysql_write(_mysql_eof())
        peer.event("stream-done")

    def _mysql_many_rows(self, peer: _Peer) -> None:
        """Any login is accepted; ``stall_after`` statements get OK; the next one gets a text
        resultset of two VAR_STRING columns, ``version`` and ``minor``, and ``rows`` rows of
        ("1", "0"), then EOF. Rows go out in pre-built 16384-row blocks (sequence ids wrap
        at 256). Event "rows-sent"; later statements get OK."""
        self._mysql_commands(peer, self._mysql_send_rows)

    def _mysql_send_rows(self, peer: _Peer, _sql: bytes) -> None:
        peer.mysql_write(b"\x02")
        peer.mysql_write(_mysql_column(b"version"))
        peer.mysql_write(_mysql_column(b"minor"))
        peer.mysql_write(_mysql_eof())
        row = _lenenc_bytes(b"1") + _lenenc_bytes(b"0")
        first_seq = peer.seq
        block_rows = min(self.rows, 64 * 256)  # whole turns of the sequence id, or all rows
        block = b"".join(_mysql_packet(row, first_seq + i) for i in range(block_rows))
        packet_size = 4 + len(row)
        sent = 0
        while sent < self.rows:
            count = min(block_rows, self.rows - sent)
            peer.send(memoryview(block)[: count * packet_size])
            sent += count
        peer.seq = (first_seq + self.rows) & 0xFF
        peer.mysql_write(_mysql_eof())
        peer.event("rows-sent")

    def _mysql_protocol9(self, peer: _Peer) -> None:
        """An old protocol version 9 greeting (version, connection id, 8-byte scramble). Up
        to 2 s for the client's answer (recorded in ``received``; event "reply-received" if
        any), until a whole packet came or the client closed; then the server closes."""
        peer.seq = 0
        peer.mysql_write(_mysql_greeting_v9(self.server_version, peer.index + 1, _mysql_scramble()))
        peer.event("greeting-sent")
        until = time.monotonic() + PROTOCOL9_WAIT
        try:
            while not _whole_mysql_packet(peer.buffer) and peer.fill(until=until):
                pass
        finally:
            if peer.buffer:
                peer.event("reply-received")

    def _mysql_echo_password_error(self, peer: _Peer) -> None:
        """A server (or proxy) that has the password and echoes it: greeting with
        mysql_native_password; after the HandshakeResponse, ERR 1045 (28000) "Access denied
        for user '<user>'@'localhost' (using password: '<echo>')", where <echo> is the
        server's ``echo`` bytes as they are. Then close. Event "echo-sent"."""
        self._mysql_greet(peer, b"mysql_native_password")
        login = self._mysql_handshake_response(peer)
        message = (b"Access denied for user '" + login.user + b"'@'localhost' (using password: '"
                   + self.echo + b"')")
        peer.mysql_write(b"\xff" + struct.pack("<H", ER_ACCESS_DENIED) + b"#28000" + message)
        peer.event("echo-sent")

    def _mysql_garbage_row(self, peer: _Peer, row: bytes) -> None:
        """A resultset of two VAR_STRING columns, ``version`` and ``minor``, whose one row
        is ``row`` as it is, then EOF. Event "garbage-sent"."""
        peer.mysql_write(b"\x02")
        peer.mysql_write(_mysql_column(b"version"))
        peer.mysql_write(_mysql_column(b"minor"))
        peer.mysql_write(_mysql_eof())
        peer.mysql_write(row)
        peer.mysql_write(_mysql_eof())
        peer.event("garbage-sent")

    def _mysql_huge_length_prefix(self, peer: _Peer) -> None:
        """Any login is accepted; ``stall_after`` statements get OK; the next one gets a text
        resultset (VAR_STRING columns ``version`` and ``minor``) whose row is a
        length-encoded string claiming 2^40 bytes (0xFE + 8-byte length) followed by only
        "13", then EOF: a length no packet can hold. Event "garbage-sent"; later statements
        get OK."""
        row = b"\xfe" + (1 << 40).to_bytes(8, "little") + b"13"
        self._mysql_commands(peer, lambda p, _sql: self._mysql_garbage_row(p, row))

    def _mysql_null_marker_length(self, peer: _Peer) -> None:
        """As ``huge_length_prefix``, but the resultset's first column definition starts
        with 0xFB, the NULL marker of a length-encoded string, where its catalog ("def")
        must be; the row is a good ("13", "0"). Event "garbage-sent"; later statements get
        OK."""

        def send(p: _Peer, _sql: bytes) -> None:
            p.mysql_write(b"\x02")
            p.mysql_write(b"\xfb" + _mysql_column(b"version")[4:])
            p.mysql_write(_mysql_column(b"minor"))
            p.mysql_write(_mysql_eof())
            p.mysql_write(_lenenc_bytes(b"13") + _lenenc_bytes(b"0"))
            p.mysql_write(_mysql_eof())
            p.event("garbage-sent")

        self._mysql_commands(peer, send)

    def _mysql_truncated_row(self, peer: _Peer) -> None:
        """As ``huge_length_prefix``, but the row is a length-encoded string claiming 10
        bytes followed by only "13" (and no ``minor``): the packet ends inside the first
        value. Event "garbage-sent"; later statements get OK."""
        row = b"\x0a" + b"13"
        self._mysql_commands(peer, lambda p, _sql: self._mysql_garbage_row(p, row))

    # -- PostgreSQL ------------------------------------------------------------------------

    def _pg_startup(self, peer: _Peer) -> dict[str, str]:
        """Answer SSLRequest with 'S' and TLS when the server has ``tls`` (else 'N') and
        GSSENCRequest with 'N', serve a CancelRequest (then close),
        and return the StartupMessage's parameters."""
        while True:
            (length,) = struct.unpack("!i", peer.read(4))
            if not 8 <= length <= PG_MAX_STARTUP:
                peer.event("bad-startup")
                raise _Closed(f"bad startup length {length}")
            body = peer.read(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code == PG_SSL_REQUEST:
                peer.event("ssl-request")
                if self.tls is None:
                    peer.send(b"N")
                    continue
                peer.send(b"S")
                peer.sock.settimeout(5.0)  # the handshake, then polling as before
                peer.sock = self.tls.wrap_socket(peer.sock, server_side=True)
                peer.sock.settimeout(POLL_INTERVAL)
                peer.event("tls")
            elif code == PG_GSSENC_REQUEST:
                peer.event("gssenc-request")
                peer.send(b"N")
            elif code == PG_CANCEL_REQUEST:
                self._pg_cancel(peer, body[4:])
                raise _Closed("cancel request served")
            elif code >> 16 == 3:
                return self._pg_parameters(peer, code, body[4:])
            else:
                peer.event("bad-startup")
                raise _Closed(f"unknown startup code {code}")

    def _pg_parameters(self, peer: _Peer, version: int, data: bytes) -> dict[str, str]:
        parts = [part.decode("utf-8", "replace") for part in data.split(b"\0")]
        params = dict(zip(parts[0:-1:2], parts[1::2], strict=False))
        params.pop("", None)
        with self._cond:
            self.startups.append(params)
        peer.event("startup")
        unknown = [key for key in params if key.startswith("_pq_.")]
        if version != PG_PROTOCOL_3_0 or unknown:
            body = struct.pack("!ii", 0, len(unknown))
            body += b"".join(key.encode() + b"\0" for key in unknown)
            peer.send(_pg_message(b"v", body))  # NegotiateProtocolVersion: 3.0
        return params

    def _pg_cancel(self, peer: _Peer, key: bytes) -> None:
        pid, secret = struct.unpack("!II", key[:8]) if len(key) >= 8 else (0, 0)
        with self._cond:
            self.cancel_requests.append((pid, secret))
            wake = self._cancel_wakes.get((pid, secret))
        peer.event("cancel-request")
        if wake is not None:
            wake.set()
            peer.event("cancel-matched")

    def _pg_password_then_deny(self, peer: _Peer, request: bytes, cleartext: bool) -> None:
        params = self._pg_startup(peer)
        peer.send(_pg_message(b"R", request))
        peer.event("password-requested")
        kind, body = peer.pg_read()
        is_password = cleartext and kind == b"p"
        self._auth_reply(peer, body, password=_strip_nul(body) if is_password else None)
        user = params.get("user", "")
        message = f'password authentication failed for user "{user}"'
        peer.send(_pg_error("FATAL", "28P01", message))
        peer.event("access-denied")

    def _postgresql_cleartext_password(self, peer: _Peer) -> None:
        """After the StartupMessage: AuthenticationCleartextPassword (R, 3). The client's
        PasswordMessage body goes to ``auth_replies`` and, without its NUL, to
        ``recovered_passwords``. Then ErrorResponse FATAL 28P01 and close."""
        self._pg_password_then_deny(peer, struct.pack("!i", PG_AUTH_CLEARTEXT), True)

    def _postgresql_md5_password(self, peer: _Peer) -> None:
        """After the StartupMessage: AuthenticationMD5Password (R, 5) with a random 4-byte
        salt. The client's answer ("md5" + hex digest) goes to ``auth_replies``. Then
        ErrorResponse FATAL 28P01 and close."""
        request = struct.pack("!i", PG_AUTH_MD5) + secrets.token_bytes(4)
        self._pg_password_then_deny(peer, request, False)

    def _pg_scram_first(self, peer: _Peer, iterations: int) -> None:
        """After the StartupMessage: AuthenticationSASL (SCRAM-SHA-256), the client's first
        message (to ``auth_replies``), then a server-first message that extends the client's
        nonce, with a random salt and ``iterations``."""
        self._pg_startup(peer)
        peer.send(_pg_message(b"R", struct.pack("!i", PG_AUTH_SASL) + b"SCRAM-SHA-256\0\0"))
        peer.event("sasl-offered")
        _kind, body = peer.pg_read()
        self._auth_reply(peer, body)
        client_first = body[body.index(b"\0") + 5:] if b"\0" in body else b""
        nonce = next((part[2:] for part in client_first.split(b",") if part[:2] == b"r="), b"")
        salt = base64.b64encode(secrets.token_bytes(16))
        server_first = b"r=" + nonce + base64.b64encode(secrets.token_bytes(18)) + b",s=" \
            + salt + b",i=" + str(iterations).encode()
        peer.send(_pg_message(b"R", struct.pack("!i", PG_AUTH_SASL_CONTINUE) + server_first))
        peer.event("sasl-server-first")

    def _postgresql_scram_without_final(self, peer: _Peer) -> None:
        """SCRAM-SHA-256 with 4096 iterations, but after the client's final message (its
        proof, to ``auth_replies``) AuthenticationOk without AuthenticationSASLFinal: the
        server never proves that it knows the password (event "ok-without-proof"). Then the
        usual login messages, and every statement gets an empty success."""
        self._pg_scram_first(peer, 4096)
        _kind, body = peer.pg_read()
        self._auth_reply(peer, body)
        peer.event("ok-without-proof")
        self._pg_statements(peer, _pg_empty_success, startup=False)

    def _postgresql_scram_costly(self, peer: _Peer) -> None:
        """SCRAM-SHA-256 whose server-first message asks for 10^9 iterations (hours of
        work for the client); then waits for the client's final message (to
        ``auth_replies``, event "client-final") and closes."""
        self._pg_scram_first(peer, 10**9)
        _kind, body = peer.pg_read()
        self._auth_reply(peer, body)
        peer.event("client-final")

    def _pg_login_ok(self, peer: _Peer, startup: bool = True) -> threading.Event:
        """AuthenticationOk, the usual ParameterStatus, BackendKeyData, ReadyForQuery
        (after the StartupMessage, when ``startup``). Returns the event a matching
        CancelRequest sets."""
        if startup:
            self._pg_startup(peer)
        pid = 1 + secrets.randbelow(0x7FFFFFFE)
        secret = secrets.randbits(32)
        wake = threading.Event()
        with self._cond:
            self.backend_keys.append((pid, secret))
            self._cancel_wakes[(pid, secret)] = wake
        parameters = {
            "server_version": self.server_version,
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
        }
        peer.send(
            _pg_message(b"R", struct.pack("!i", PG_AUTH_OK))
            + b"".join(
                _pg_message(b"S", name.encode() + b"\0" + value.encode() + b"\0")
                for name, value in parameters.items()
            )
            + _pg_message(b"K", struct.pack("!II", pid, secret))
            + _pg_message(b"Z", b"I")
        )
        peer.event("login-ok")
        return wake

    def _pg_statements(
        self, peer: _Peer, special: Callable[[_Peer, bytes, threading.Event], None],
        startup: bool = True,
    ) -> None:
        """Log in, then serve simple Query messages: an empty success, except ``special``
        for the special statement. Terminate ends the connection; extended-protocol
        messages get one ErrorResponse 0A000, then ReadyForQuery at Sync."""
        wake = self._pg_login_ok(peer, startup)
        index = 0
        done = False
        skipping = False  # extended protocol: discarding until Sync
        while True:
            kind, body = peer.pg_read()
            if kind == b"X":
                peer.event("terminate")
                return
            if kind == b"S":
                skipping = False
                peer.send(_pg_message(b"Z", peer.tx_status))
                continue
            if kind != b"Q":
                peer.event("extended-query")
                if not skipping:
                    skipping = True
                    message = "the fake server speaks only the simple query protocol"
                    peer.send(_pg_error("ERROR", "0A000", message))
                continue
            sql = _strip_nul(body)
            self._add(self.queries, sql)
            peer.event("query")
            if not done and self._is_special(index, sql):
                done = True
                special(peer, sql, wake)
            else:
                tag, peer.tx_status = _pg_command_tag(sql, peer.tx_status)
                peer.send(_pg_message(b"C", tag + b"\0") + _pg_message(b"Z", peer.tx_status))
            index += 1

    def _postgresql_accept_then_stall(self, peer: _Peer) -> None:
        """AuthenticationOk (no password asked), ParameterStatus (server_version,
        server_encoding and client_encoding UTF8, DateStyle ISO, integer_datetimes and
        standard_conforming_strings on), BackendKeyData with a random pid and secret
        (``backend_keys``), ReadyForQuery. ``stall_after`` queries get CommandComplete +
        ReadyForQuery; the next one is never answered (event "stall")... unless a
        CancelRequest with this connection's pid and secret arrives on another connection
        (events "cancel-request", "cancel-matched"): then the query ends with ErrorResponse
        57014 "canceling statement due to user request" + ReadyForQuery (event "cancelled")
        and later queries are answered again. Each CancelRequest is recorded in
        ``cancel_requests``, matching or not."""
        self._pg_statements(peer, _pg_stall)

    def _postgresql_drop_after_login(self, peer: _Peer) -> None:
        """Login as in ``accept_then_stall``; ``stall_after`` queries answered; on the next
        one the server closes the socket without a word (event "dropped")."""
        self._pg_statements(peer, lambda p, sql, _wake: _drop(p, sql))

    def _postgresql_oversized_message(self, peer: _Peer) -> None:
        """Login as in ``accept_then_stall``; ``stall_after`` queries answered; the next one
        gets a RowDescription (one text column "value") then a DataRow whose length field
        says 0x3FFFFFF0 bytes (about 1 GiB; its one column claims the rest). Only
        ``total_bytes`` bytes of the column are streamed (lazily, stopping if the client
        closes), event "stream-done"; then the server stalls with the message unfinished.
        Were ``total_bytes`` to cover the whole column, CommandComplete + ReadyForQuery would
        follow instead."""
        self._pg_statements(peer, self._pg_send_oversized)

    def _pg_send_oversized(self, peer: _Peer, _sql: bytes, _wake: threading.Event) -> None:
        column_length = PG_CLAIMED_DATAROW_LENGTH - 4 - 2 - 4
        peer.send(
            _pg_row_description(b"value")
            + b"D"
            + struct.pack("!ihi", PG_CLAIMED_DATAROW_LENGTH, 1, column_length)
        )
        remaining = min(self.total_bytes, column_length)
        filler = _filler()
        while remaining:
            size = min(remaining, len(filler))
            peer.send(filler[:size])
            remaining -= size
        peer.event("stream-done")
        if self.total_bytes < column_length:
            peer.stall()
        peer.send(_pg_message(b"C", b"SELECT 1\0") + _pg_message(b"Z", peer.tx_status))

    def _postgresql_many_rows(self, peer: _Peer) -> None:
        """Login as in ``accept_then_stall``; ``stall_after`` queries answered; the next one
        gets RowDescription (text columns ``version`` and ``minor``), ``rows`` DataRows of
        ("1", "0") sent in pre-built 8192-row blocks, CommandComplete "SELECT <rows>" and
        ReadyForQuery. Event "rows-sent"; later queries are answered again."""
        self._pg_statements(peer, self._pg_send_rows)

    def _pg_send_rows(self, peer: _Peer, _sql: bytes, _wake: threading.Event) -> None:
        peer.send(_pg_row_description(b"version", b"minor"))
        row = _pg_message(b"D", struct.pack("!hi1si1s", 2, 1, b"1", 1, b"0"))
        block_rows = min(self.rows, 8192)
        block = row * block_rows
        sent = 0
        while sent < self.rows:
            count = min(block_rows, self.rows - sent)
            peer.send(memoryview(block)[: count * len(row)])
            sent += count
        tag = f"SELECT {self.rows}".encode()
        peer.send(_pg_message(b"C", tag + b"\0") + _pg_message(b"Z", peer.tx_status))
        peer.event("rows-sent")

    def _postgresql_echo_password_error(self, peer: _Peer) -> None:
        """A server (or proxy) that has the password and echoes it: after the
        StartupMessage, ErrorResponse FATAL 28000 'login refused for user "<user>": wrong
        password "<echo>"', where <echo> is the server's ``echo`` bytes as they are. Then
        close. Event "echo-sent"."""
        params = self._pg_startup(peer)
        message = (b'login refused for user "' + params.get("user", "").encode()
                   + b'": wrong password "' + self.echo + b'"')
        fields = ((b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"28000"), (b"M", message))
        body = b"".join(key + value + b"\0" for key, value in fields) + b"\0"
        peer.send(_pg_message(b"E", body))
        peer.event("echo-sent")


def _drop(peer: _Peer, _sql: bytes) -> None:
    peer.event("dropped")
    raise _Closed("dropped on purpose")


def _pg_empty_success(peer: _Peer, sql: bytes, _wake: threading.Event) -> None:
    tag, peer.tx_status = _pg_command_tag(sql, peer.tx_status)
    peer.send(_pg_message(b"C", tag + b"\0") + _pg_message(b"Z", peer.tx_status))


def _pg_stall(peer: _Peer, _sql: bytes, wake: threading.Event) -> None:
    peer.stall(wake)
    wake.clear()
    peer.event("cancelled")
    if peer.tx_status == b"T":
        peer.tx_status = b"E"
    peer.send(
        _pg_error("ERROR", "57014", "canceling statement due to user request")
        + _pg_message(b"Z", peer.tx_status)
    )


def _whole_mysql_packet(buffer: bytearray) -> bool:
    return len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:3], "little")
