"""libpq's login to a PostgreSQL server over TCP, watched on the wire until TLS or success.

libpq 15 (Debian 12's) hands the password to any server that asks for it in clear, takes
AuthenticationOk from a server that skipped the last SCRAM step (so never proved that it
knows the password), and computes whatever SCRAM iteration count the server names, inside
one ``PQconnectPoll`` call. :class:`LoginGuard` puts a socket pair between libpq and the
server for the login: libpq's descriptor becomes one end of the pair (``dup2``), kea-db
holds the server's socket, and every server message reaches libpq only after kea-db has
read and vetted it, one whole message at a time. libpq's own bytes go to the server as
they are.

The guard steps aside as soon as it has nothing left to protect: when the server agrees to
TLS ('S') or GSSAPI encryption ('G'), or when the login succeeded (AuthenticationOk). libpq's
descriptor is then the server's socket again, nothing in between, for the rest of the
session. Inside TLS the guard sees nothing: there libpq 16+'s ``require_auth`` refuses a
cleartext request, and a verified server (``verify-ca``/``verify-full``) has proven who it
is.

Reads from the server are exact (a header, then its body), so nothing past the message
being vetted is ever taken off the server's socket: what follows stays there for libpq.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import struct
import termios
from collections.abc import Callable

from keadb_cli.db.session_kit import Deadline, wait_socket
from keadb_cli.errors import InsecureAuthError, KeaDbError, UnreachableError

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
MAX_LOGIN_MESSAGE = 64 * 1024  # bytes of one server message before the login succeeded
MAX_SCRAM_ITERATIONS = 1_000_000  # PostgreSQL's default is 4,096

_AUTH_OK, _AUTH_CLEARTEXT = 0, 3
_AUTH_SASL, _AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL = 10, 11, 12
_CHUNK = 64 * 1024


def _unread(fd: int) -> int:
    """Bytes waiting to be read on ``fd``."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def tcp_connected(fd: int) -> bool:
    """Whether ``fd`` is a TCP socket whose connect has completed without error."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        # Not SO_ERROR: reading it clears it, and libpq reads it next to learn the outcome.
        sock.getpeername()  # ENOTCONN while connecting or after a failed connect
        return True
    return False


class LoginGuard:
    """The server's side of libpq's descriptor ``fd``, held by kea-db during the login.

    Drive it from the connect loop: :meth:`receive` before letting libpq read, and
    :meth:`after_poll` after each ``PQconnectPoll``. ``sqlstate`` is the code of the last
    ErrorResponse seen (libpq reports login failures as text only).
    """

    def __init__(self, fd: int, prefix: str, expired: Callable[[], KeaDbError]) -> None:
        self.fd = fd
        self.prefix = prefix  # "PostgreSQL host:port/db", for messages
        self._expired = expired  # the error when the connect deadline passes
        self.sqlstate = ""
        self.active = True
        self._server = socket.socket(fileno=os.dup(fd))
        self._server.setblocking(False)
        ours, libpqs = socket.socketpair()
        for end in (ours, libpqs):
            end.setblocking(False)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_LOGIN_MESSAGE)
        os.dup2(libpqs.fileno(), fd, inheritable=False)  # libpq now talks to kea-db
        libpqs.close()
        self._libpq = ours
        self._outgoing = bytearray()  # libpq's bytes not yet sent to the server
        self._packets = bytearray()  # libpq's untyped packets before its StartupMessage
        self._started = False  # libpq sent its StartupMessage: typed messages from now on
        self._answer_due = False  # a one-byte answer to SSLRequest / GSSENCRequest is due
        self._message = bytearray()  # the server message being read
        self._sasl = False
        self._sasl_final = False
        self._done = False  # nothing left to protect: step aside once libpq caught up

    # -- libpq -> server ---------------------------------------------------------------------

    def _forward(self, deadline: Deadline) -> None:
        while True:
            try:
                chunk = self._libpq.recv(_CHUNK)
            except BlockingIOError:
                break
            if not chunk:  # libpq closed its end: it gave this connection up
                break
            self._outgoing += chunk
            if not self._started:
                self._packets += chunk
                self._parse_packets()
        while self._outgoing:
            try:
                sent = self._server.send(self._outgoing)
            except BlockingIOError:
                if not wait_socket(self._server.fileno(), read=False, write=True,
                                   deadline=deadline):
                    raise self._timeout() from None
                continue
            except OSError:
                self._outgoing.clear()  # the server is gone: libpq will learn it by reading
                break
            del self._outgoing[:sent]

    def _parse_packets(self) -> None:
        while not self._started and len(self._packets) >= 8:
            length, code = struct.unpack("!ii", self._packets[:8])
            if length == 8 and code in (SSL_REQUEST, GSSENC_REQUEST):
                self._answer_due = True
                del self._packets[:8]
            else:
                self._started = True
                self._packets.clear()

    # -- server -> libpq ---------------------------------------------------------------------

    def receive(self, deadline: Deadline) -> None:
        """Read the server's next answer (waiting at most until ``deadline``), vet it, and
        hand it to libpq. A server that closes is passed on as a close.

        Raises:
            InsecureAuthError: the server asked for what kea-db will not give.
            UnreachableError: the deadline passed, or the message is not PostgreSQL's.
        """
        while True:
            want = self._wanted()
            try:
                chunk = self._server.recv(want)
            except BlockingIOError:
                if not wait_socket(self._server.fileno(), read=True, write=False,
                                   deadline=deadline):
                    raise self._timeout() from None
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._libpq.shutdown(socket.SHUT_WR)  # libpq reads the close itself
                return
            if self._answer_due and not self._message:
                self._answer_due = False
                if chunk in (b"S", b"G"):  # TLS or GSSAPI encryption from here on
                    self._done = True
                    self._deliver(chunk)
                    return
                if chunk != b"E":  # 'N', or garbage libpq will refuse itself
                    self._deliver(chunk)
                    return
            self._message += chunk
            if len(self._message) >= 5 and len(self._message) == self._length() + 1:
                message, self._message = bytes(self._message), bytearray()
                self._vet(message[:1], message[5:])
                self._deliver(message)
                return

    def _wanted(self) -> int:
        if self._answer_due and not self._message:
            return 1
        if len(self._message) < 5:
            return 5 - len(self._message)
        length = self._length()
        if not 4 <= length <= MAX_LOGIN_MESSAGE:
            raise UnreachableError(
                f"{self.prefix}: the server sent a login message of {length} bytes, not a "
                "PostgreSQL answer; the session was closed",
                reason_code="protocol",
            )
        return length + 1 - len(self._message)

    def _length(self) -> int:
        return int(struct.unpack("!i", self._message[1:5])[0])

    def _deliver(self, data: bytes) -> None:
        self._libpq.sendall(data)  # within the socket buffer: a message is at most 64 KiB

    def _vet(self, kind: bytes, body: bytes) -> None:
        if kind == b"E":
            self.sqlstate = _error_field(body, b"C")
            return
        if kind != b"R" or len(body) < 4:
            return
        (request,) = struct.unpack("!i", body[:4])
        if request == _AUTH_CLEARTEXT:
            raise InsecureAuthError(
                f"{self.prefix}: the server asks for the password in clear on a session "
                "without TLS; kea-db did not send it (Kea would have). Use ssl-mode "
                "verify-full with a trust-anchor, or scram-sha-256 on the server",
                reason_code="insecure-auth",
            )
        if request == _AUTH_SASL:
            self._sasl = True
        elif request == _AUTH_SASL_CONTINUE:
            self._check_iterations(body[4:])
        elif request == _AUTH_SASL_FINAL:
            self._sasl_final = True
        elif request == _AUTH_OK:
            if self._sasl and not self._sasl_final:
                raise InsecureAuthError(
                    f"{self.prefix}: the server ended SCRAM authentication without its final "
                    "message, so it never proved that it knows the password; not trusted",
                    reason_code="scram-incomplete",
                )
            self._done = True

    def _check_iterations(self, server_first: bytes) -> None:
        for attribute in server_first.split(b","):
            if attribute.startswith(b"i="):
                value = attribute[2:]
                count = int(value) if value.isdigit() and len(value) < 12 else None
                if count is None or count > MAX_SCRAM_ITERATIONS:
                    shown_count = f"{count:,}" if count is not None else "an invalid number of"
                    raise InsecureAuthError(
                        f"{self.prefix}: the server asks for {shown_count} SCRAM iterations; "
                        f"kea-db computes at most {MAX_SCRAM_ITERATIONS:,} (PostgreSQL's "
                        "default is 4,096) and refused before any work",
                        reason_code="scram-iterations",
                    )

    # -- the connect loop's hooks ------------------------------------------------------------

    def after_poll(self, deadline: Deadline) -> None:
        """After ``PQconnectPoll``: send what libpq wrote; step aside when the login needs
        no more watching and libpq has read everything it was handed."""
        self._forward(deadline)
        if self._done and not self._outgoing and _unread(self.fd) == 0 \
                and _unread(self._libpq.fileno()) == 0:
            os.dup2(self._server.fileno(), self.fd, inheritable=False)
            self.close()

    def close(self) -> None:
        """Drop kea-db's ends (libpq's descriptor is libpq's to close)."""
        if self.active:
            self.active = False
            self._libpq.close()
            self._server.close()

    def _timeout(self) -> KeaDbError:
        return self._expired()


def _error_field(body: bytes, field: bytes) -> str:
    for part in body.split(b"\0"):
        if part[:1] == field:
            return part[1:6].decode("ascii", "replace")
    return ""
