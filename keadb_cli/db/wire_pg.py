"""kea-db's own minimal PostgreSQL client: frontend/backend protocol 3.0, simple queries.

Enough for read-only commands: TLS as libpq's ``sslmode`` asks, trust / cleartext / MD5 /
SCRAM-SHA-256 authentication, and the simple query protocol with text results. Built on the
standard library only, so that ``kea-db check-version`` starts about as fast as ``psql``;
``ssl`` is imported only when TLS is used.

The pieces are public for the TLS probe: :func:`open_socket`, :func:`request_tls`,
:func:`start_tls`, :func:`login`; :func:`connect` strings them together like libpq does.
"""

from __future__ import annotations

import binascii
import os
import struct
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
    import socket
    import ssl

    from keadb_cli.db.plan import ConnectPlan

PROTOCOL_VERSION = 196608  # 3.0
SSL_REQUEST_CODE = 80877103
_SSL_REQUEST = struct.pack("!ii", 8, SSL_REQUEST_CODE)
_TERMINATE = b"X\x00\x00\x00\x04"
_MAX_MESSAGE = 1 << 30  # the backend never sends more in one message

# Authentication request codes (AuthenticationXXX messages).
_AUTH_OK = 0
_AUTH_CLEARTEXT = 3
_AUTH_MD5 = 5
_AUTH_SASL = 10
_AUTH_SASL_CONTINUE = 11
_AUTH_SASL_FINAL = 12
_UNSUPPORTED_AUTH = {
    2: "Kerberos V5",
    6: "SCM credentials",
    7: "GSSAPI",
    8: "GSSAPI",
    9: "SSPI",
}

# SQLSTATEs at login that mean "the server is there but cannot take the session now".
_UNAVAILABLE_STATES = ("53300", "57P01", "57P02", "57P03")


class _AuthRejected(DeniedError):
    """Refused before authentication completed: libpq's ``prefer`` retries in cleartext."""


def _fields(body: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse or NoticeResponse, by field type letter."""
    out: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def _error_text(fields: dict[str, str]) -> str:
    """``message (SQLSTATE)`` of an ErrorResponse, with the detail when there is one."""
    text = fields.get("M", "unknown error")
    if fields.get("D"):
        text += f"; {fields['D']}"
    code = fields.get("C")
    return f"{text} (SQLSTATE {code})" if code else text


def _saslprep(password: str) -> bytes:
    """The password as SCRAM hashes it (RFC 4013 SASLprep), or its plain UTF-8 when
    SASLprep rejects it (what libpq and the server do)."""
    raw = password.encode("utf-8")
    if password.isascii():
        return raw  # ASCII needs no preparation, as in PostgreSQL's pg_saslprep
    import stringprep
    import unicodedata

    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in password
        if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1,
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    if not prepared or any(test(ch) for ch in prepared for test in prohibited):
        return raw
    if any(stringprep.in_table_d1(ch) for ch in prepared) and (
        any(stringprep.in_table_d2(ch) for ch in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        return raw
    return prepared.encode("utf-8")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def open_socket(plan: ConnectPlan, *, deadline: float | None = None) -> socket.socket:
    """A connected socket to the PostgreSQL server of the plan (TCP, or the Unix socket
    ``plan.unix_socket``), with TCP_USER_TIMEOUT set from ``plan.tcp_user_timeout_ms``.

    Connecting (and logging in, in :func:`connect`) is bounded by ``plan.connect_timeout``
    or ``deadline`` (a ``time.monotonic()`` instant).

    Raises:
        UnreachableError: refused, timed out, unknown host, no socket file.
    """
    return wire_common.open_socket(plan, deadline=deadline)


def request_tls(
    sock: socket.socket, *, where: str = "the server", deadline: float | None = None
) -> bool:
    """Send SSLRequest; True when the server answers 'S' (go on with a TLS handshake),
    False when it answers 'N' (it has no TLS; the socket stays usable in cleartext).

    Raises:
        UnreachableError: the server closed the connection or did not answer.
        ProtocolError: any other answer (not a PostgreSQL server?).
    """
    try:
        wire_common.send_all(sock, _SSL_REQUEST, deadline=deadline)
        answer = wire_common.recv_exact(sock, 1, deadline=deadline)
    except OSError as exc:
        raise wire_common.io_error(
            exc, display="PostgreSQL", where=where, phase="the TLS request"
        ) from None
    if answer == b"S":
        return True
    if answer == b"N":
        return False
    if answer == b"E":
        raise ProtocolError(
            f"PostgreSQL at {where} answered the TLS request with an error "
            "(a server older than 7.0, or not PostgreSQL)"
        )
    raise ProtocolError(
        f"{where} answered the TLS request with {answer!r}: is it a PostgreSQL server?"
    )


def start_tls(
    sock: socket.socket, plan: ConnectPlan, *, deadline: float | None = None
) -> ssl.SSLSocket:
    """The TLS handshake after :func:`request_tls` said yes, verifying the server as
    ``plan.tls`` says (chain, host name against ``plan.host``). Closes ``sock`` on failure.

    Raises:
        TlsError: the handshake failed; the message says why (unknown CA, expired...).
        SettingsError: a TLS file cannot be read.
    """
    return wire_common.start_tls(
        sock,
        plan.tls,
        server_hostname=plan.host,
        display="PostgreSQL",
        where=wire_common.endpoint(plan),
        deadline=deadline,
    )


def login(sock: socket.socket, plan: ConnectPlan, *, deadline: float | None = None) -> PgSession:
    """Start up and authenticate on a connected (and maybe TLS-wrapped) socket.

    Sends the startup message (user, database, ``application_name=kea-db``,
    ``client_encoding=UTF8``), answers the authentication the server asks for (trust,
    cleartext password, MD5, SCRAM-SHA-256 without channel binding) and waits for
    ReadyForQuery. On failure the socket is closed.

    Raises:
        DeniedError: the server refused the session (password, pg_hba, unknown database).
        UnsupportedError: the server asks for an authentication method kea-db lacks.
        UnreachableError: the connection failed or timed out.
        TlsError: the server broke the TLS session (e.g. it wants a client certificate).
        ProtocolError: the server sent something that is not PostgreSQL's protocol.
    """
    try:
        return _login(sock, plan, deadline=deadline)
    except _AuthRejected as exc:
        raise DeniedError(exc.message) from None


def _login(sock: socket.socket, plan: ConnectPlan, *, deadline: float | None) -> PgSession:
    """:func:`login`, telling refusals before authentication ended by their class."""
    where = wire_common.endpoint(plan)
    channel = wire_common.Channel(
        sock,
        display="PostgreSQL",
        where=where,
        deadline=deadline if deadline is not None else wire_common.deadline_for(plan),
        login_timeout=plan.connect_timeout,
    )
    try:
        session = PgSession(channel)
        session._login(plan)
    except (struct.error, ValueError, IndexError):
        channel.close()
        raise ProtocolError(f"PostgreSQL at {where} sent a malformed message") from None
    except BaseException:
        channel.close()
        raise
    return session


def connect(plan: ConnectPlan) -> PgSession:
    """Open a session the way libpq would for the plan (``sslmode`` semantics included).

    TLS is asked for only over TCP (libpq never uses TLS on Unix sockets), and only when
    ``plan.tls.use``. A server without TLS is fine unless ``plan.tls.required``. Like libpq
    in ``prefer`` mode, a failed TLS handshake, or a refusal before authentication ended
    while on TLS, is retried once in cleartext.

    Raises:
        UnreachableError, DeniedError, TlsError, UnsupportedError, ProtocolError,
        SettingsError (unreadable TLS files).
    """
    deadline = wire_common.deadline_for(plan)
    where = wire_common.endpoint(plan)
    tls = plan.tls
    sock = open_socket(plan, deadline=deadline)
    if not tls.use or plan.unix_socket:
        return login(sock, plan, deadline=deadline)
    try:
        offered = request_tls(sock, where=where, deadline=deadline)
    except KeaDbError:
        sock.close()
        raise
    if not offered:
        if tls.required:
            sock.close()
            raise TlsError(
                f"server {where} does not offer TLS, and ssl-mode {tls.mode} requires it"
            )
        return login(sock, plan, deadline=deadline)
    try:
        tls_sock = start_tls(sock, plan, deadline=deadline)
    except TlsError:
        if tls.required:
            raise
        # libpq "prefer": a failed handshake is retried without TLS.
        return login(open_socket(plan, deadline=deadline), plan, deadline=deadline)
    try:
        return _login(tls_sock, plan, deadline=deadline)
    except _AuthRejected as exc:
        if tls.required:
            raise DeniedError(exc.message) from None
    except TlsError:
        if tls.required:
            raise
    # libpq "prefer": refused on TLS before authentication ended (a hostnossl rule, a
    # client certificate demanded): one more try, in cleartext.
    return login(open_socket(plan, deadline=deadline), plan, deadline=deadline)


class PgSession(wire_common.WireSession):
    """An open PostgreSQL session: simple-query protocol, text results.

    ``parameters`` holds what the server reported (``server_version``, ``TimeZone``...).
    """

    tls_version: str | None
    tls_cipher: str | None

    _GOODBYE = _TERMINATE

    def __init__(self, channel: wire_common.Channel) -> None:
        self._channel = channel
        self.tls_version, self.tls_cipher = wire_common.tls_info(channel.sock)
        self.parameters: dict[str, str] = {}
        self.backend_pid: int | None = None
        self._closed = False

    # -- reading --------------------------------------------------------------------------

    def _read(self) -> tuple[int, bytes]:
        header = self._channel.recv_exact(5)
        kind = header[0]
        (length,) = struct.unpack_from("!i", header, 1)
        if length < 4 or length > _MAX_MESSAGE:
            raise ProtocolError(
                f"{self._channel.where} sent a malformed message (type {kind!r}, "
                f"length {length}): is it a PostgreSQL server?"
            )
        return kind, self._channel.recv_exact(length - 4)

    def _unexpected(self, kind: int, during: str) -> ProtocolError:
        return ProtocolError(
            f"PostgreSQL at {self._channel.where} sent an unexpected message "
            f"{chr(kind)!r} during {during}"
        )

    # -- login ----------------------------------------------------------------------------

    def _login(self, plan: ConnectPlan) -> None:
        params = (
            ("user", plan.user),
            ("database", plan.database),
            ("application_name", "kea-db"),
            ("client_encoding", "UTF8"),
        )
        body = struct.pack("!i", PROTOCOL_VERSION) + b"".join(
            key.encode() + b"\x00" + value.encode("utf-8") + b"\x00" for key, value in params
        )
        self._channel.send(struct.pack("!i", len(body) + 5) + body + b"\x00")
        self._authenticate(plan)
        while True:
            kind, body = self._read()
            if kind == 0x5A:  # 'Z' ReadyForQuery
                break
            if kind == 0x53:  # 'S' ParameterStatus
                self._parameter(body)
            elif kind == 0x4B:  # 'K' BackendKeyData
                self.backend_pid = struct.unpack_from("!i", body)[0]
            elif kind == 0x45:  # 'E' (unknown database, too many connections...)
                raise _login_error(_fields(body), plan, before_auth=False)
            elif kind not in (0x4E, 0x76):  # NoticeResponse, NegotiateProtocolVersion
                raise self._unexpected(kind, "login")
        self._channel.logged_in(None, None)

    def _parameter(self, body: bytes) -> None:
        name, value, _ = body.split(b"\x00", 2)
        self.parameters[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")

    def _auth_request(self, plan: ConnectPlan) -> tuple[int, bytes]:
        """The next Authentication message, as (code, rest); errors raised."""
        while True:
            kind, body = self._read()
            if kind == 0x52 and len(body) >= 4:  # 'R'
                return struct.unpack_from("!i", body)[0], body[4:]
            if kind == 0x45:
                raise _login_error(_fields(body), plan, before_auth=True)
            if kind in (0x4E, 0x76):
                continue
            if kind == 0x52:
                raise ProtocolError(f"{self._channel.where} sent a malformed Authentication")
            raise ProtocolError(
                f"{self._channel.where} did not answer the startup message like a "
                f"PostgreSQL server (message {chr(kind)!r})"
            )

    def _password(self, plan: ConnectPlan, method: str) -> str:
        if not plan.password:
            raise DeniedError(
                f"PostgreSQL at {self._channel.where} asks user {plan.user!r} for a password "
                f"({method}), but none is set"
            )
        return plan.password

    def _authenticate(self, plan: ConnectPlan) -> None:
        code, data = self._auth_request(plan)
        if code == _AUTH_OK:
            return
        if code == _AUTH_CLEARTEXT:
            password = self._password(plan, "password").encode("utf-8")
            self._channel.send(_message(b"p", password + b"\x00"))
        elif code == _AUTH_MD5:
            if len(data) < 4:
                raise ProtocolError(f"{self._channel.where} sent an MD5 request without salt")
            import hashlib

            secret = self._password(plan, "md5").encode("utf-8")
            inner = hashlib.md5(secret + plan.user.encode("utf-8")).hexdigest().encode()
            digest = b"md5" + hashlib.md5(inner + data[:4]).hexdigest().encode()
            self._channel.send(_message(b"p", digest + b"\x00"))
        elif code == _AUTH_SASL:
            mechanisms = [m.decode("utf-8", "replace") for m in data.split(b"\x00") if m]
            if "SCRAM-SHA-256" not in mechanisms:
                if mechanisms == ["SCRAM-SHA-256-PLUS"]:
                    raise UnsupportedError(
                        f"PostgreSQL at {self._channel.where} offers only SCRAM-SHA-256-PLUS "
                        "(channel binding), which kea-db's own client does not implement"
                    )
                raise UnsupportedError(
                    f"PostgreSQL at {self._channel.where} offers SASL mechanisms "
                    f"{', '.join(mechanisms) or '(none)'}; kea-db's own client knows only "
                    "SCRAM-SHA-256"
                )
            self._scram(plan)
        elif code in _UNSUPPORTED_AUTH:
            raise UnsupportedError(
                f"PostgreSQL at {self._channel.where} asks for {_UNSUPPORTED_AUTH[code]} "
                "authentication, which kea-db's own client does not implement"
            )
        else:
            raise UnsupportedError(
                f"PostgreSQL at {self._channel.where} asks for an unknown authentication "
                f"method (code {code})"
            )
        code, data = self._auth_request(plan)
        if code != _AUTH_OK:
            raise ProtocolError(
                f"{self._channel.where} sent authentication request {code} after the password"
            )

    def _scram(self, plan: ConnectPlan) -> None:
        """SCRAM-SHA-256 (RFC 5802/7677) without channel binding, as libpq does it."""
        import hashlib
        import hmac

        password = _saslprep(self._password(plan, "SCRAM-SHA-256"))
        where = self._channel.where
        nonce = _b64(os.urandom(18))
        client_first_bare = f"n=,r={nonce}"
        first = ("n,," + client_first_bare).encode("ascii")
        self._channel.send(
            _message(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first)
        )
        code, data = self._auth_request(plan)
        if code != _AUTH_SASL_CONTINUE:
            raise ProtocolError(f"{where} broke off SCRAM (request {code})")
        server_first = data.decode("utf-8", "replace")
        attrs = dict(item.split("=", 1) for item in server_first.split(",") if "=" in item)
        try:
            server_nonce = attrs["r"]
            salt = binascii.a2b_base64(attrs["s"].encode("ascii"), strict_mode=True)
            iterations = int(attrs["i"])
        except (KeyError, ValueError, binascii.Error) as exc:
            raise ProtocolError(f"{where} sent a malformed SCRAM challenge") from exc
        if not server_nonce.startswith(nonce) or len(server_nonce) == len(nonce):
            raise ProtocolError(f"{where} sent a SCRAM nonce that does not extend ours")
        if not 0 < iterations <= 10_000_000:
            raise ProtocolError(f"{where} asks for {iterations} SCRAM iterations")
        salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={server_nonce}"  # biws = base64("n,,")
        auth_message = f"{client_first_bare},{server_first},{final_bare}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = f"{final_bare},p={_b64(proof)}"
        self._channel.send(_message(b"p", final.encode("ascii")))
        code, data = self._auth_request(plan)
        if code != _AUTH_SASL_FINAL:
            raise ProtocolError(f"{where} broke off SCRAM (request {code})")
        server_final = data.decode("utf-8", "replace")
        if server_final.startswith("e="):
            raise DeniedError(f"PostgreSQL at {where} refused SCRAM: {server_final[2:]}")
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        expected = _b64(hmac.digest(server_key, auth_message, "sha256"))
        verifier = server_final.split(",", 1)[0]
        if not (verifier.startswith("v=") and hmac.compare_digest(verifier[2:], expected)):
            raise ProtocolError(
                f"{where} could not prove it knows the password (SCRAM server signature "
                "mismatch): is something in between?"
            )

    # -- queries --------------------------------------------------------------------------

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` with the simple query protocol; the rows of the last result set, as
        text (None for NULL). Several statements may be given, separated by ``;``.

        Raises:
            QueryError: the server reported an error (``code`` is the SQLSTATE).
            UnreachableError: the connection was lost.
        """
        if self._closed:
            raise QueryError("the PostgreSQL session is closed")
        try:
            return self._query(sql)
        except (UnreachableError, ProtocolError, TlsError):
            self._abandon()
            raise
        except (struct.error, ValueError, IndexError):
            self._abandon()
            raise ProtocolError(
                f"PostgreSQL at {self._channel.where} sent a malformed message"
            ) from None

    def _query(self, sql: str) -> list[tuple[str | None, ...]]:
        channel = self._channel
        channel.send(_message(b"Q", sql.encode("utf-8") + b"\x00"))
        rows: list[tuple[str | None, ...]] = []
        error: dict[str, str] | None = None
        unpack_short = struct.Struct("!h").unpack_from
        unpack_int = struct.Struct("!i").unpack_from
        while True:
            try:
                kind, body = self._read()
            except UnreachableError:
                if error is not None:  # a FATAL error closes the session after it
                    break
                raise
            if kind == 0x44:  # 'D' DataRow
                (count,) = unpack_short(body)
                pos = 2
                values: list[str | None] = []
                for _ in range(count):
                    (size,) = unpack_int(body, pos)
                    pos += 4
                    if size < 0:
                        values.append(None)
                    else:
                        values.append(body[pos : pos + size].decode("utf-8", "replace"))
                        pos += size
                rows.append(tuple(values))
            elif kind == 0x54:  # 'T' RowDescription: a new result set
                rows = []
            elif kind == 0x5A:  # 'Z' ReadyForQuery
                break
            elif kind == 0x45:  # 'E' ErrorResponse; ReadyForQuery follows
                error = _fields(body)
            elif kind == 0x53:
                self._parameter(body)
            elif kind == 0x47 or kind == 0x57:  # CopyInResponse / CopyBothResponse
                channel.send(_message(b"f", b"kea-db does not send COPY data\x00"))
            elif kind not in (0x43, 0x49, 0x4E, 0x41, 0x48, 0x64, 0x63):
                # CommandComplete, EmptyQueryResponse, Notice, Notification, CopyOut data
                raise self._unexpected(kind, "a query")
        if error is not None:
            if error.get("V", error.get("S")) in ("FATAL", "PANIC"):
                self._abandon()
            raise QueryError(_error_text(error), code=error.get("C", ""))
        return rows

    # -- closing --------------------------------------------------------------------------

    def _abandon(self) -> None:
        self._closed = True
        self._channel.close()


def _login_error(fields: dict[str, str], plan: ConnectPlan, *, before_auth: bool) -> KeaDbError:
    """The kea-db error for an ErrorResponse during login."""
    where = wire_common.endpoint(plan)
    code = fields.get("C", "")
    text = _error_text(fields)
    if code in _UNAVAILABLE_STATES:
        return UnreachableError(f"PostgreSQL at {where} cannot take the session: {text}")
    if code.startswith("08") and "protocol" in text.lower():
        return ProtocolError(f"PostgreSQL at {where} rejected the startup: {text}")
    kind = _AuthRejected if before_auth else DeniedError
    return kind(f"PostgreSQL at {where} refused the session: {text}")
