"""Self-tests of tests/fakes.py: each fake scenario behaves as documented, against real
clients (PyMySQL, psycopg with its libpq) and raw sockets where a client would hide the
detail under test."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pytest
from fakes import SCENARIOS, FakeServer

PASSWORD = "s3cret-Pa55word"
PW = PASSWORD.encode()

pytestmark = pytest.mark.timeout(30)


def mysql_connect(server: FakeServer, **options: Any) -> pymysql.connections.Connection[Any]:
    params: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "user": "kea",
        "password": PASSWORD,
        "database": "kea",
        "connect_timeout": 5,
        "read_timeout": 5,
        "autocommit": None,  # PyMySQL then sends one setup statement: SET NAMES utf8mb4
    }
    params.update(options)
    return pymysql.connect(**params)


def pg_connect(server: FakeServer, **options: Any) -> psycopg.Connection[Any]:
    params: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "user": "kea",
        "password": PASSWORD,
        "dbname": "keadb",
        "connect_timeout": 5,
        "sslmode": "prefer",
        "gssencmode": "disable",
        "autocommit": True,  # no implicit BEGIN before each query
    }
    params.update(options)
    return psycopg.connect(**params)


# -- raw protocol clients ---------------------------------------------------------------------


@contextmanager
def raw_socket(server: FakeServer, timeout: float = 5.0) -> Iterator[socket.socket]:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def mysql_read(sock: socket.socket) -> tuple[int, bytes]:
    header = recv_exact(sock, 4)
    return header[3], recv_exact(sock, int.from_bytes(header[:3], "little"))


def mysql_send(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq]) + payload)


def mysql_raw_login(
    sock: socket.socket, auth: bytes = b"\x01" * 20, plugin: bytes = b"mysql_native_password"
) -> bytes:
    """Read the greeting, send a HandshakeResponse41 (1-byte auth length); return the
    server's next payload."""
    seq, greeting = mysql_read(sock)
    assert (seq, greeting[0]) == (0, 10)
    caps = 0x200 | 0x8000 | 0x80000  # PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
    response = (
        struct.pack("<IIB23x", caps, 1 << 24, 45)
        + b"kea\0"
        + bytes([len(auth)])
        + auth
        + plugin
        + b"\0"
    )
    mysql_send(sock, 1, response)
    return mysql_read(sock)[1]


def pg_read(sock: socket.socket) -> tuple[bytes, bytes]:
    kind = recv_exact(sock, 1)
    (length,) = struct.unpack("!i", recv_exact(sock, 4))
    return kind, recv_exact(sock, length - 4)


def pg_startup(sock: socket.socket) -> None:
    params = b"user\0kea\0database\0keadb\0\0"
    sock.sendall(struct.pack("!ii", 8 + len(params), 3 << 16) + params)


def pg_raw_login(sock: socket.socket) -> list[bytes]:
    """Start up and read until ReadyForQuery; return the message types seen."""
    pg_startup(sock)
    kinds = []
    while True:
        kind, _ = pg_read(sock)
        kinds.append(kind)
        if kind == b"Z":
            return kinds


def pg_query(sock: socket.socket, sql: bytes) -> None:
    sock.sendall(b"Q" + struct.pack("!i", len(sql) + 5) + sql + b"\0")


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the socket within ``within`` seconds (data is drained)."""
    sock.settimeout(within)
    end = time.monotonic() + within
    try:
        while time.monotonic() < end:
            if not sock.recv(1 << 20):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


# -- the server itself ------------------------------------------------------------------------


def test_rejects_unknown_flavor_and_scenario() -> None:
    with pytest.raises(ValueError, match="scenario must be one of"):
        FakeServer("mysql", "cleartext_password")
    with pytest.raises(ValueError, match="flavor"):
        FakeServer("oracle", "many_rows")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flavor", "scenario"),
    [(flavor, scenario) for flavor, names in SCENARIOS.items() for scenario in names],
)
def test_every_scenario_is_documented(flavor: Any, scenario: str) -> None:
    server = FakeServer(flavor, scenario)
    try:
        assert len(server.describe()) > 80
    finally:
        server.close()


def test_max_connections_then_refused() -> None:
    server = FakeServer("mysql", "accept_then_stall", max_connections=1)
    with server, raw_socket(server) as sock:
        assert server.wait_for("accepted")
        assert mysql_read(sock)[1][0] == 10
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, server.port), timeout=2).close()


def test_lifetime_closes_a_stalled_connection() -> None:
    with FakeServer("postgresql", "accept_then_stall", lifetime=0.5) as server:
        with raw_socket(server) as sock:
            pg_raw_login(sock)
            pg_query(sock, b"SELECT 1")
            assert closed_by_server(sock, within=2.0)
        assert server.wait_for("lifetime-expired")


def test_close_is_quick_with_busy_connections() -> None:
    server = FakeServer("mysql", "oversized_packet").start()
    with raw_socket(server) as streaming, raw_socket(server) as stalled:
        assert mysql_raw_login(streaming)[0] == 0
        mysql_send(streaming, 0, b"\x03SELECT big")  # the server streams; nobody reads
        mysql_read(stalled)  # greeting read, response never sent
        assert server.wait_for("accepted", 2)
        time.sleep(0.3)
        start = time.monotonic()
        server.close()
        assert time.monotonic() - start < 1.5
    assert server.wait_for("closed", 2, timeout=1)
    assert not server.errors


# -- MySQL ------------------------------------------------------------------------------------


def test_mysql_clear_password_receives_the_password() -> None:
    with FakeServer("mysql", "clear_password") as server:
        with pytest.raises(pymysql.err.OperationalError) as info:
            mysql_connect(server)
        assert info.value.args[0] == 1045
    assert "auth-switch-sent" in server.events
    assert server.received_any(PW)
    assert not server.received_any(b"not-the-password")
    assert server.recovered_passwords == [PW]
    assert server.logins[0].user == b"kea"
    assert server.logins[0].database == b"kea"
    assert server.logins[0].plugin == b"mysql_native_password"
    assert len(server.logins[0].auth_data) == 20
    assert not server.errors


def test_mysql_dialog_receives_the_password() -> None:
    with FakeServer("mysql", "dialog") as server:
        with pytest.raises(pymysql.err.OperationalError) as info:
            mysql_connect(server)
        assert info.value.args[0] == 1045
    assert "auth-switch-sent" in server.events
    assert server.auth_replies == [PW + b"\0"]
    assert server.recovered_passwords == [PW]
    assert not server.errors


def test_mysql_caching_sha2_rsa_recovers_the_encrypted_password() -> None:
    with FakeServer("mysql", "caching_sha2_rsa") as server:
        with pytest.raises(pymysql.err.OperationalError) as info:
            mysql_connect(server)
        assert info.value.args[0] == 1045
    assert server.logins[0].plugin == b"caching_sha2_password"
    assert "public-key-requested" in server.events
    assert server.recovered_passwords == [PW]
    assert not server.received_any(PW)  # it travelled RSA-encrypted
    assert server.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert not server.errors


def test_mysql_caching_sha2_rsa_records_a_cleartext_reply() -> None:
    with FakeServer("mysql", "caching_sha2_rsa") as server, raw_socket(server) as sock:
        assert mysql_raw_login(sock, b"\x02" * 32, b"caching_sha2_password") == b"\x01\x04"
        mysql_send(sock, 3, PW + b"\0")
        seq, reply = mysql_read(sock)
        assert (seq, reply[:3]) == (4, b"\xff\x15\x04")  # ERR 1045
        assert reply[3:9] == b"#28000"
        assert server.wait_for("password-recovered")
    assert server.recovered_passwords == [PW]
    assert "public-key-requested" not in server.events


def test_mysql_accept_then_stall_answers_setup_then_stalls() -> None:
    with FakeServer("mysql", "accept_then_stall", stall_after=1) as server:
        conn = mysql_connect(server, read_timeout=1)  # its SET NAMES is answered
        try:
            start = time.monotonic()
            with pytest.raises(pymysql.err.OperationalError) as info:
                conn.cursor().execute("SELECT version, minor FROM schema_version")
            assert info.value.args[0] == 2013  # lost connection: read timeout
            assert 0.9 < time.monotonic() - start < 3
        finally:
            conn.close()
        assert server.wait_for("client-closed")
    assert server.queries == [b"SET NAMES utf8mb4", b"SELECT version, minor FROM schema_version"]
    assert server.events.count("stall") == 1
    assert not server.errors


def test_mysql_accept_then_stall_without_stall_after_stalls_pymysql_setup() -> None:
    with (
        FakeServer("mysql", "accept_then_stall") as server,
        pytest.raises(pymysql.err.OperationalError),
    ):
        mysql_connect(server, read_timeout=1)
    assert server.queries == [b"SET NAMES utf8mb4"]


def test_mysql_trigger_picks_the_special_statement() -> None:
    with FakeServer("mysql", "drop_after_login", trigger=b"SCHEMA_VERSION") as server:
        conn = mysql_connect(server, autocommit=False)  # two setup statements
        cur = conn.cursor()
        cur.execute("SET @x = 1")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("SELECT version FROM schema_version")
    assert server.queries[-1] == b"SELECT version FROM schema_version"
    assert len(server.queries) == 4


def test_mysql_quit_closes() -> None:
    with FakeServer("mysql", "accept_then_stall", stall_after=1) as server:
        mysql_connect(server).close()
        assert server.wait_for("closed")
    assert "quit" in server.events
    assert "stall" not in server.events


def test_mysql_oversized_packet_complete_value() -> None:
    total = 2 * 0xFFFFFF + 1000  # three packets
    with FakeServer("mysql", "oversized_packet", stall_after=1, total_bytes=total) as server:
        conn = mysql_connect(server)
        try:
            cur = conn.cursor()
            cur.execute("SELECT value")
            (row,) = cur.fetchall()
            assert len(row[0]) == total - 9
            assert set(row[0]) == {"x"}
            cur.execute("SELECT 1")  # later statements: OK
        finally:
            conn.close()
    assert "stream-done" in server.events
    assert not server.errors


def test_mysql_oversized_packet_uses_maximal_packets_and_stops_when_client_leaves() -> None:
    with FakeServer("mysql", "oversized_packet") as server:
        with raw_socket(server) as sock:
            assert mysql_raw_login(sock)[0] == 0
            mysql_send(sock, 0, b"\x03SELECT big")
            assert mysql_read(sock) == (1, b"\x01")
            assert mysql_read(sock)[0] == 2  # column definition
            assert mysql_read(sock) == (3, b"\xfe\x00\x00\x02\x00")  # EOF
            header = recv_exact(sock, 4)
            assert (int.from_bytes(header[:3], "little"), header[3]) == (0xFFFFFF, 4)
            value_length = 256 * 2**20 - 9
            assert recv_exact(sock, 9) == b"\xfe" + value_length.to_bytes(8, "little")
            recv_exact(sock, 4 * 2**20)
        assert server.wait_for("client-closed")
        assert server.wait_for("closed")
    assert "stream-done" not in server.events
    assert not server.errors


def test_mysql_many_rows_to_pymysql() -> None:
    with FakeServer("mysql", "many_rows", stall_after=1, rows=1000) as server:
        conn = mysql_connect(server)
        try:
            cur = conn.cursor()
            cur.execute("SELECT version, minor FROM schema_version")
            assert [d[0] for d in cur.description] == ["version", "minor"]
            rows = cur.fetchall()
            assert len(rows) == 1000
            assert set(rows) == {("1", "0")}
        finally:
            conn.close()
    assert not server.errors


def test_mysql_many_rows_default_million_raw() -> None:
    rows = 1_000_000
    with FakeServer("mysql", "many_rows") as server, raw_socket(server) as sock:
        assert mysql_raw_login(sock)[0] == 0
        mysql_send(sock, 0, b"\x03SELECT version, minor FROM schema_version")
        assert [mysql_read(sock)[0] for _ in range(4)] == [1, 2, 3, 4]
        data = recv_exact(sock, rows * 8)
        for i in (0, 1, 250, 251, 252, 999_999):
            assert (
                data[i * 8 : i * 8 + 8] == b"\x04\x00\x00" + bytes([(5 + i) & 0xFF]) + b"\x011\x010"
            )
        assert mysql_read(sock) == ((5 + rows) & 0xFF, b"\xfe\x00\x00\x02\x00")


def test_mysql_protocol9_fails_pymysql() -> None:
    with FakeServer("mysql", "protocol9") as server:
        with pytest.raises((pymysql.err.Error, struct.error, IndexError)):
            mysql_connect(server)
        assert server.wait_for("closed")
    assert server.received == [b""]
    assert not server.errors


def test_mysql_protocol9_records_what_comes_back() -> None:
    with FakeServer("mysql", "protocol9") as server, raw_socket(server) as sock:
        seq, greeting = mysql_read(sock)
        assert (seq, greeting[0]) == (0, 9)
        mysql_send(sock, 1, b"\x85\xa6\x03\x00\x00\x00\x00kea\0")
        assert closed_by_server(sock, within=2.0)
    assert server.received == [b"\x0b\x00\x00\x01\x85\xa6\x03\x00\x00\x00\x00kea\0"]
    assert "reply-received" in server.events


def test_mysql_drop_after_login() -> None:
    with FakeServer("mysql", "drop_after_login", stall_after=1) as server:
        conn = mysql_connect(server)
        with pytest.raises(pymysql.err.OperationalError) as info:
            conn.cursor().execute("SELECT 1")
        assert info.value.args[0] == 2013
    assert "dropped" in server.events


def test_mysql_ssl_request_is_recorded_and_closed() -> None:
    with FakeServer("mysql", "accept_then_stall") as server, raw_socket(server) as sock:
        mysql_read(sock)
        mysql_send(sock, 1, struct.pack("<IIB23x", 0x200 | 0x800 | 0x8000, 1 << 24, 45))
        assert closed_by_server(sock, within=2.0)
        assert "ssl-request" in server.events
        assert server.logins == []


# -- PostgreSQL -------------------------------------------------------------------------------


def test_pg_cleartext_password_receives_the_password() -> None:
    with (
        FakeServer("postgresql", "cleartext_password") as server,
        pytest.raises(psycopg.OperationalError, match="password authentication failed"),
    ):
        pg_connect(server)
    assert server.events[:3] == ["accepted", "ssl-request", "startup"]
    assert server.startups[0]["user"] == "kea"
    assert server.startups[0]["database"] == "keadb"
    assert server.received_any(PW)
    assert server.recovered_passwords == [PW]
    assert not server.errors


def test_pg_md5_password_records_the_digest() -> None:
    with (
        FakeServer("postgresql", "md5_password") as server,
        pytest.raises(psycopg.OperationalError, match="password authentication failed"),
    ):
        pg_connect(server)
    (reply,) = server.auth_replies
    assert reply.startswith(b"md5")
    assert len(reply) == 3 + 32 + 1
    assert not server.received_any(PW)
    assert server.recovered_passwords == []


def test_pg_gssenc_request_gets_n() -> None:
    with FakeServer("postgresql", "accept_then_stall") as server, raw_socket(server) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877104))
        assert recv_exact(sock, 1) == b"N"
        sock.sendall(struct.pack("!ii", 8, 80877103))
        assert recv_exact(sock, 1) == b"N"
        assert pg_raw_login(sock) == [b"R"] + [b"S"] * 6 + [b"K", b"Z"]
    assert server.events[1:4] == ["gssenc-request", "ssl-request", "startup"]


def test_pg_accept_then_stall_cancel() -> None:
    with FakeServer("postgresql", "accept_then_stall", stall_after=1) as server:
        with pg_connect(server) as conn:
            conn.execute("SET application_name = 'kea-db'")
            assert conn.info.parameter_status("server_version") == "15.0"
            cancel_errors: list[BaseException] = []

            def cancel_when_stalled() -> None:
                try:
                    assert server.wait_for("stall")
                    conn.cancel_safe(timeout=5)
                except BaseException as exc:
                    cancel_errors.append(exc)

            canceller = threading.Thread(target=cancel_when_stalled)
            canceller.start()
            with pytest.raises(psycopg.errors.QueryCanceled) as info:
                conn.execute("SELECT version, minor FROM schema_version")
            canceller.join(5)
            assert not cancel_errors
            assert info.value.sqlstate == "57014"
            conn.execute("SET search_path = public")  # answered again after the cancel
        assert server.wait_for("terminate")
    assert "cancel-request" in server.events
    assert "cancel-matched" in server.events
    assert server.cancel_requests == server.backend_keys
    assert server.queries == [
        b"SET application_name = 'kea-db'",
        b"SELECT version, minor FROM schema_version",
        b"SET search_path = public",
    ]
    assert not server.errors


def test_pg_accept_then_stall_never_answers_and_ignores_a_wrong_cancel() -> None:
    with FakeServer("postgresql", "accept_then_stall") as server, raw_socket(server) as sock:
        pg_raw_login(sock)
        pg_query(sock, b"SELECT 1")
        with raw_socket(server) as cancel:
            cancel.sendall(struct.pack("!iiII", 16, 80877102, 1, 2))
            assert closed_by_server(cancel, within=2.0)
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert server.cancel_requests == [(1, 2)]
    assert "cancel-matched" not in server.events


def test_pg_oversized_message_claims_a_gigabyte() -> None:
    total = 3 * 2**20 + 7
    with FakeServer("postgresql", "oversized_message", total_bytes=total) as server:
        with raw_socket(server) as sock:
            pg_raw_login(sock)
            pg_query(sock, b"SELECT value")
            kind, _ = pg_read(sock)
            assert kind == b"T"
            assert recv_exact(sock, 1) == b"D"
            (length, count, column) = struct.unpack("!ihi", recv_exact(sock, 10))
            assert (length, count, column) == (0x3FFFFFF0, 1, 0x3FFFFFF0 - 10)
            assert recv_exact(sock, total) == b"x" * total
            assert server.wait_for("stream-done")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):  # then nothing more
                sock.recv(1)
        assert server.wait_for("client-closed")
    assert not server.errors


def test_pg_oversized_message_stops_when_client_leaves() -> None:
    with FakeServer("postgresql", "oversized_message") as server:
        with raw_socket(server) as sock:
            pg_raw_login(sock)
            pg_query(sock, b"SELECT value")
            recv_exact(sock, 2 * 2**20)
        assert server.wait_for("client-closed")
        assert server.wait_for("closed")
    assert "stream-done" not in server.events


def test_pg_many_rows_to_psycopg() -> None:
    with FakeServer("postgresql", "many_rows", rows=1000) as server, pg_connect(server) as conn:
        cur = conn.execute("SELECT version, minor FROM schema_version")
        assert cur.description is not None
        assert [d.name for d in cur.description] == ["version", "minor"]
        rows = cur.fetchall()
        assert cur.statusmessage == "SELECT 1000"
        assert len(rows) == 1000
        assert set(rows) == {("1", "0")}
    assert not server.errors


def test_pg_many_rows_default_million_after_setup() -> None:
    with FakeServer("postgresql", "many_rows", stall_after=2) as server:
        with pg_connect(server, autocommit=False) as conn:  # BEGIN counts as a statement
            conn.execute("SET search_path = public")
            cur = conn.execute("SELECT version, minor FROM schema_version")
            assert cur.rowcount == 1_000_000
            assert cur.fetchone() == ("1", "0")
        assert server.wait_for("terminate")
    assert server.queries == [
        b"BEGIN",
        b"SET search_path = public",
        b"SELECT version, minor FROM schema_version",
        b"COMMIT",
    ]


def test_pg_drop_after_login() -> None:
    with FakeServer("postgresql", "drop_after_login", stall_after=1) as server:
        with pg_connect(server) as conn:
            conn.execute("SET application_name = 'kea-db'")
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        assert server.wait_for("closed")
    assert "dropped" in server.events
    assert not server.errors


def test_pg_extended_query_is_refused_cleanly() -> None:
    with FakeServer("postgresql", "many_rows", rows=3) as server, pg_connect(server) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SELECT %s", (1,))
        assert len(conn.execute("SELECT version, minor FROM schema_version").fetchall()) == 3
    assert "extended-query" in server.events
