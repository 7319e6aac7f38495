"""kea-db's own minimal MySQL/MariaDB client: client/server protocol 4.1, text queries.

Enough for read-only commands: TLS the way Kea asks for it, mysql_native_password,
caching_sha2_password and (over TLS or a Unix socket) mysql_clear_password, and COM_QUERY
with text results. Built on the standard library only, so that ``kea-db check-version``
starts about as fast as the ``mariadb`` client; ``ssl`` is imported only when TLS is used and
``cryptography`` only for caching_sha2_password's RSA exchange over cleartext TCP.

The pieces are public for the TLS probe: :func:`open_socket`, :func:`read_greeting`,
:func:`send_ssl_request`, :func:`start_tls`, :func:`login`; :func:`connect` strings them
together like libmariadb does for Kea.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keadb_cli.db import wire_common
from keadb_cli.errors import (
    DeniedError,
    KeaDbError,
    ProtocolError,
    QueryError,
    TlsError,
    UnreachableError,
    UnsupportedError,
)

if TYPE_CHECKING:
    import ssl

    from keadb_cli.db.plan import ConnectPlan

# Capability flags (CLIENT_*).
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
_COM_QUIT = 0x01
_COM_QUERY = 0x03

NATIVE_PASSWORD = "mysql_native_password"
CACHING_SHA2_PASSWORD = "caching_sha2_password"
CLEAR_PASSWORD = "mysql_clear_password"

# Login errors that mean "the server cannot take a session now" rather than "refused".
_UNAVAILABLE_ERRORS = {1040, 1053}  # too many connections, server shutdown in progress
_UNSUPPORTED_ERRORS = {1251}  # client does not support authentication protocol


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


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


def native_password_scramble(password: bytes, nonce: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    import hashlib

    stage1 = hashlib.sha1(password).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(nonce[:20] + stage2).digest())


def caching_sha2_scramble(password: bytes, nonce: bytes) -> bytes:
    """caching_sha2_password's fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    if not password:
        return b""
    import hashlib

    stage1 = hashlib.sha256(password).digest()
    stage2 = hashlib.sha256(stage1).digest()
    return _xor(stage1, hashlib.sha256(stage2 + nonce[:20]).digest())


def rsa_encrypt_password(password: bytes, nonce: bytes, public_key_pem: bytes) -> bytes:
    """The password (NUL-terminated, XORed with the nonce) encrypted with RSA-OAEP
    (SHA-1) for the server's public key, as caching_sha2_password wants it over cleartext.

    Raises:
        UnsupportedError: the ``cryptography`` package is missing.
        ProtocolError: the server's public key cannot be loaded.
    """
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        raise UnsupportedError(
            "caching_sha2_password over cleartext TCP needs the cryptography package"
        ) from None
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise ProtocolError(f"the server's RSA public key cannot be loaded: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProtocolError("the server's public key is not an RSA key")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return key.encrypt(_xor(password + b"\x00", nonce[:20]), oaep)


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
        ProtocolError: not a HandshakeV10 packet.
        UnsupportedError: a pre-4.1 server (protocol version 9).
    """
    if not payload:
        raise ProtocolError("empty greeting")
    if payload[0] != 10:
        if payload[0] == 9:
            raise UnsupportedError("the server speaks the MySQL 3.x protocol (version 9)")
        raise ProtocolError(f"unknown protocol version {payload[0]}")
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
        raise ProtocolError("truncated greeting") from None
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
    """The kea-db error for an ERR packet during login."""
    try:
        code, _state, message = parse_error(payload)
    except ValueError:
        return ProtocolError(f"{display_where} sent a malformed error packet")
    text = f"{message} (MySQL error {code})"
    if code in _UNAVAILABLE_ERRORS:
        return UnreachableError(f"{display_where} cannot take the session: {text}")
    if code in _UNSUPPORTED_ERRORS:
        return UnsupportedError(f"{display_where} refused kea-db's own client: {text}")
    return DeniedError(f"{display_where} refused the session: {text}")


def open_socket(plan: ConnectPlan, *, deadline: float | None = None) -> socket.socket:
    """A connected socket to the MySQL server of the plan (TCP, or the Unix socket
    ``plan.unix_socket`` libmariadb uses for host "localhost").

    Connecting (and logging in, in :func:`connect`) is bounded by ``plan.connect_timeout``
    or ``deadline`` (a ``time.monotonic()`` instant).

    Raises:
        UnreachableError: refused, timed out, unknown host, no socket file.
    """
    return wire_common.open_socket(plan, deadline=deadline)


def read_greeting(
    sock: socket.socket, *, where: str = "the server", deadline: float | None = None
) -> Greeting:
    """Read the server's greeting (the first packet, sequence id 0), and nothing more.

    Raises:
        DeniedError: the server sent an error instead ("Host ... is not allowed to
            connect", error 1130).
        UnreachableError: closed or timed out (or "Too many connections", 1040).
        ProtocolError: not a MySQL/MariaDB server.
        UnsupportedError: a pre-4.1 server.
    """
    display_where = f"MySQL at {where}"
    try:
        header = wire_common.recv_exact(sock, 4, deadline=deadline)
        size = int.from_bytes(header[:3], "little")
        if header[3] != 0 or size == 0 or size > 1 << 16:
            raise ProtocolError(f"{where} did not greet like a MySQL server: is it one?")
        payload = wire_common.recv_exact(sock, size, deadline=deadline)
    except OSError as exc:
        raise wire_common.io_error(
            exc, display="MySQL", where=where, phase="the greeting"
        ) from None
    if payload[0] == 0xFF:
        raise _login_error(payload, display_where)
    try:
        return parse_greeting(payload)
    except (ProtocolError, UnsupportedError) as exc:
        raise type(exc)(f"{display_where} sent a greeting kea-db cannot use: {exc}") from None


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
        wire_common.send_all(
            sock, len(payload).to_bytes(3, "little") + b"\x01" + payload, deadline=deadline
        )
    except OSError as exc:
        raise wire_common.io_error(
            exc, display="MySQL", where=where, phase="the TLS request"
        ) from None


def start_tls(
    sock: socket.socket, plan: ConnectPlan, *, deadline: float | None = None
) -> ssl.SSLSocket:
    """The TLS handshake after :func:`send_ssl_request`, verifying the server as
    ``plan.tls`` says (Kea: the chain when a CA is given, never the host name). Closes
    ``sock`` on failure.

    Raises:
        TlsError: the handshake failed; the message says why (unknown CA, expired...).
        SettingsError: a TLS file cannot be read.
    """
    return wire_common.start_tls(
        sock,
        plan.tls,
        server_hostname=plan.host,
        display="MySQL",
        where=wire_common.endpoint(plan),
        deadline=deadline,
    )


def login(
    sock: socket.socket,
    plan: ConnectPlan,
    greeting: Greeting,
    *,
    deadline: float | None = None,
) -> MySqlSession:
    """Send the handshake response and authenticate, on a socket that has read the
    greeting (and, if TLS is wanted, done :func:`send_ssl_request` and :func:`start_tls`).

    Flags: PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_WITH_DB, FOUND_ROWS (as
    Kea), MULTI_RESULTS, PLUGIN_AUTH_LENENC_CLIENT_DATA when offered; no DEPRECATE_EOF.
    On failure the socket is closed. The session has no side effects: no sql_mode, no
    init command.

    Raises:
        DeniedError: access denied (1045), no such database or no right on it (1049,
            1044), host not allowed (1130)...
        UnsupportedError: an authentication plugin kea-db lacks (client_ed25519, ...).
        UnreachableError: the connection failed or timed out.
        TlsError: the server broke the TLS session.
        ProtocolError: the server sent something that is not MySQL's protocol.
    """
    channel = wire_common.Channel(
        sock,
        display="MySQL",
        where=wire_common.endpoint(plan),
        deadline=deadline if deadline is not None else wire_common.deadline_for(plan),
        login_timeout=plan.connect_timeout,
    )
    try:
        session = MySqlSession(channel, greeting)
        session._login(plan)
    except (ValueError, IndexError):
        channel.close()
        raise ProtocolError(f"MySQL at {channel.where} sent a malformed packet") from None
    except BaseException:
        channel.close()
        raise
    channel.logged_in(plan.read_timeout, plan.write_timeout)
    return session


def connect(plan: ConnectPlan) -> MySqlSession:
    """Open a session the way Kea's MySQL backend would for the plan.

    TLS is asked for when ``plan.tls.use`` and the greeting offers it. A server without
    TLS gets a cleartext session (Kea keeps it and only logs an error) unless
    ``plan.tls.required``. A failed handshake is an error, never retried in cleartext.

    Raises:
        UnreachableError, DeniedError, TlsError, UnsupportedError, ProtocolError,
        SettingsError (unreadable TLS files).
    """
    deadline = wire_common.deadline_for(plan)
    where = wire_common.endpoint(plan)
    sock = open_socket(plan, deadline=deadline)
    try:
        greeting = read_greeting(sock, where=where, deadline=deadline)
        if plan.tls.use and greeting.offers_tls:
            send_ssl_request(sock, greeting, where=where, deadline=deadline)
        elif plan.tls.required:
            raise TlsError(f"server {where} does not offer TLS, and the TLS settings require it")
    except KeaDbError:
        sock.close()
        raise
    if plan.tls.use and greeting.offers_tls:
        sock = start_tls(sock, plan, deadline=deadline)
    return login(sock, plan, greeting, deadline=deadline)


class MySqlSession(wire_common.WireSession):
    """An open MySQL/MariaDB session: COM_QUERY, text results."""

    tls_version: str | None
    tls_cipher: str | None

    _GOODBYE = b"\x01\x00\x00\x00" + bytes((_COM_QUIT,))

    def __init__(self, channel: wire_common.Channel, greeting: Greeting) -> None:
        self._channel = channel
        self.greeting = greeting
        self.tls_version, self.tls_cipher = wire_common.tls_info(channel.sock)
        self.flags = client_flags(greeting, tls=self.tls_version is not None)
        self.server_version = greeting.server_version
        self.connection_id = greeting.connection_id
        self._seq = 2 if self.tls_version else 1
        self._closed = False

    # -- packets --------------------------------------------------------------------------

    def _read(self) -> bytes:
        parts: list[bytes] = []
        while True:
            header = self._channel.recv_exact(4)
            size = header[0] | header[1] << 8 | header[2] << 16
            if header[3] != self._seq:
                raise ProtocolError(
                    f"MySQL at {self._channel.where} sent packet {header[3]} where "
                    f"{self._seq} was due"
                )
            self._seq = (self._seq + 1) & 0xFF
            parts.append(self._channel.recv_exact(size))
            if size < _MAX_PAYLOAD:
                break
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        if not payload:
            raise ProtocolError(f"MySQL at {self._channel.where} sent an empty packet")
        return payload

    def _write(self, payload: bytes) -> None:
        out = []
        view = memoryview(payload)
        while True:
            chunk = view[:_MAX_PAYLOAD]
            view = view[_MAX_PAYLOAD:]
            out.append(len(chunk).to_bytes(3, "little") + bytes((self._seq,)) + chunk)
            self._seq = (self._seq + 1) & 0xFF
            if len(chunk) < _MAX_PAYLOAD:
                break
        self._channel.send(b"".join(out))

    # -- login ----------------------------------------------------------------------------

    @property
    def _secure(self) -> bool:
        """May a password travel in cleartext here (TLS, or a Unix socket)?"""
        return self.tls_version is not None or self._channel.sock.family == socket.AF_UNIX

    def _auth_response(self, plugin: str, nonce: bytes, password: bytes) -> bytes:
        if plugin == NATIVE_PASSWORD:
            return native_password_scramble(password, nonce)
        if plugin == CACHING_SHA2_PASSWORD:
            return caching_sha2_scramble(password, nonce)
        if plugin == CLEAR_PASSWORD:
            if not self._secure:
                raise UnsupportedError(
                    f"MySQL at {self._channel.where} asks for the password in cleartext "
                    "(mysql_clear_password) over unencrypted TCP; kea-db refuses: use TLS"
                )
            return password + b"\x00"
        raise UnsupportedError(
            f"MySQL at {self._channel.where} asks for the authentication plugin {plugin}, "
            "which kea-db's own client does not implement"
        )

    def _login(self, plan: ConnectPlan) -> None:
        where = f"MySQL at {self._channel.where}"
        greeting = self.greeting
        if not greeting.capabilities & CLIENT_PROTOCOL_41:
            raise UnsupportedError(f"{where} does not speak protocol 4.1")
        password = plan.password.encode("utf-8")
        plugin = greeting.auth_plugin if self.flags & CLIENT_PLUGIN_AUTH else NATIVE_PASSWORD
        if plugin not in (NATIVE_PASSWORD, CACHING_SHA2_PASSWORD):
            plugin = NATIVE_PASSWORD  # answer in the default; the server switches if needed
        nonce = greeting.auth_data
        auth = self._auth_response(plugin, nonce, password)
        payload = struct.pack("<IIB23x", self.flags, MAX_PACKET, UTF8MB4_GENERAL_CI)
        payload += plan.user.encode("utf-8") + b"\x00"
        if self.flags & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            payload += _lenenc_bytes(auth)
        else:
            payload += bytes((len(auth),)) + auth
        if self.flags & CLIENT_CONNECT_WITH_DB:
            payload += plan.database.encode("utf-8") + b"\x00"
        if self.flags & CLIENT_PLUGIN_AUTH:
            payload += plugin.encode("ascii") + b"\x00"
        self._write(payload)
        awaiting_key = False
        while True:
            packet = self._read()
            first = packet[0]
            if first == 0x00:
                return
            if first == 0xFF:
                raise _login_error(packet, where)
            if first == 0xFE:  # AuthSwitchRequest
                if len(packet) == 1:
                    raise UnsupportedError(
                        f"{where} asks for the pre-4.1 password hash (mysql_old_password)"
                    )
                name, pos = _cstring(packet, 1)
                plugin = name.decode("ascii", "replace")
                nonce = packet[pos:].rstrip(b"\x00")
                self._write(self._auth_response(plugin, nonce, password))
            elif first == 0x01 and plugin == CACHING_SHA2_PASSWORD:
                if awaiting_key:
                    self._write(rsa_encrypt_password(password, nonce, packet[1:]))
                    awaiting_key = False
                elif packet[1:] == b"\x03":
                    continue  # fast authentication succeeded; OK follows
                elif packet[1:] == b"\x04":  # full authentication
                    if self._secure:
                        self._write(password + b"\x00")
                    else:
                        self._write(b"\x02")  # ask for the server's RSA public key
                        awaiting_key = True
                else:
                    raise ProtocolError(f"{where} sent an unknown caching_sha2 state")
            else:
                raise ProtocolError(
                    f"{where} sent an unexpected packet 0x{first:02x} during authentication"
                )

    # -- queries --------------------------------------------------------------------------

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (COM_QUERY); the rows of the last result set, as text (None for
        NULL). Bytes that are not UTF-8 (binary columns) are replaced with U+FFFD.

        Raises:
            QueryError: the server reported an error (``code`` is the error number).
            UnreachableError: the connection was lost or read/write-timeout ran out.
        """
        if self._closed:
            raise QueryError("the MySQL session is closed")
        try:
            return self._query(sql)
        except (UnreachableError, ProtocolError, TlsError):
            self._abandon()
            raise
        except (IndexError, ValueError):
            self._abandon()
            raise ProtocolError(f"MySQL at {self._channel.where} sent a malformed result") from None

    def _query(self, sql: str) -> list[tuple[str | None, ...]]:
        self._seq = 0
        self._write(bytes((_COM_QUERY,)) + sql.encode("utf-8"))
        rows: list[tuple[str | None, ...]] = []
        while True:
            packet = self._read()
            first = packet[0]
            if first == 0xFF:
                code, _state, message = parse_error(packet)
                raise QueryError(message, code=str(code))
            if first == 0x00:  # OK: a statement without a result set
                _, pos = _lenenc(packet, 1)
                _, pos = _lenenc(packet, pos)
                status = int.from_bytes(packet[pos : pos + 2], "little")
            elif first == 0xFB:  # LOCAL INFILE request (never asked for): send no data
                self._write(b"")
                continue
            else:
                rows, status = self._result_set(packet)
            if not status & SERVER_MORE_RESULTS_EXISTS:
                return rows

    def _result_set(self, packet: bytes) -> tuple[list[tuple[str | None, ...]], int]:
        count, _ = _lenenc(packet, 0)
        for _ in range(count):  # column definitions: not needed for text values
            self._read()
        packet = self._read()
        if not (packet[0] == 0xFE and len(packet) < 9):
            raise ProtocolError(f"MySQL at {self._channel.where} sent no EOF after columns")
        rows: list[tuple[str | None, ...]] = []
        while True:
            packet = self._read()
            first = packet[0]
            if first == 0xFE and len(packet) < 9:  # EOF: warnings, status
                return rows, int.from_bytes(packet[3:5], "little")
            if first == 0xFF:
                code, _state, message = parse_error(packet)
                raise QueryError(message, code=str(code))
            values: list[str | None] = []
            pos = 0
            for _ in range(count):
                if packet[pos] == 0xFB:
                    values.append(None)
                    pos += 1
                    continue
                size, pos = _lenenc(packet, pos)
                values.append(packet[pos : pos + size].decode("utf-8", "replace"))
                pos += size
            rows.append(tuple(values))

    # -- closing --------------------------------------------------------------------------

    def _abandon(self) -> None:
        self._closed = True
        self._channel.close()
