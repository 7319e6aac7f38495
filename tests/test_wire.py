"""kea-db's own protocol clients (wire_pg, wire_mysql) against real throw-away servers, and
against small fake servers for what the real ones here cannot do (caching_sha2_password,
GSSAPI, channel binding only, a server that never answers)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg.conninfo import make_conninfo
from servers import FreshDatabase, MySQLFamilyServer, PostgresServer, TlsMaterial

from keadb_cli import wire_common, wire_mysql, wire_pg
from keadb_cli.access import DbAccess
from keadb_cli.connect import ConnectPlan, plan_for
from keadb_cli.errors import (
    DeniedError,
    ProtocolError,
    QueryError,
    TlsError,
    UnreachableError,
    UnsupportedError,
)

db = pytest.mark.db


def plan_of(fresh: FreshDatabase, **changes: Any) -> ConnectPlan:
    """The plan for a fresh database over TCP 127.0.0.1, with Kea keys changed."""
    keys: dict[str, Any] = {
        "type": fresh.type,
        "name": fresh.name,
        "host": fresh.host,
        "port": fresh.port,
        "user": fresh.user,
        "password": fresh.password,
    }
    keys.update(changes)
    return plan_for(DbAccess(**keys), env={})


def libpq_connect(plan: ConnectPlan) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(make_conninfo(**plan.libpq_params()))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

PG_SQL = (
    "SELECT 1::int, 'kea é'::text, NULL::text, true, 1.50::numeric, DATE '2024-01-02', "
    "ARRAY[1, 2] FROM generate_series(1, 3) ORDER BY 1"
)


@db
def test_pg_scram_rows_match_psycopg(pg_db: FreshDatabase) -> None:
    from psycopg.types.string import TextLoader

    plan = plan_of(pg_db, ssl_mode="disable")
    with wire_pg.connect(plan) as session:
        assert session.tls_version is None
        assert session.tls_cipher is None
        rows = session.query(PG_SQL)
        assert session.parameters["client_encoding"] == "UTF8"
        assert session.parameters["application_name"] == "kea-db"
    with libpq_connect(plan) as conn:
        for oid in (16, 23, 25, 1007, 1082, 1700):  # everything as the server's text
            conn.adapters.register_loader(oid, TextLoader)
        expected = conn.execute(PG_SQL).fetchall()
    assert rows == [tuple(r) for r in expected]
    assert rows[0] == ("1", "kea é", None, "t", "1.50", "2024-01-02", "{1,2}")


@db
def test_pg_query_error_carries_sqlstate_and_session_stays_usable(pg_db: FreshDatabase) -> None:
    with wire_pg.connect(plan_of(pg_db)) as session:
        with pytest.raises(QueryError) as err:
            session.query("SELECT * FROM no_such_table")
        assert err.value.code == "42P01"
        assert "no_such_table" in err.value.message
        assert session.query("SELECT 1; SELECT 2, NULL") == [("2", None)]
        assert session.query("") == []
        assert session.query("SET search_path = public") == []


@db
def test_pg_fatal_error_in_query_closes_the_session(pg_db: FreshDatabase) -> None:
    with wire_pg.connect(plan_of(pg_db)) as session:
        with pytest.raises(QueryError) as err:
            session.query("SELECT pg_terminate_backend(pg_backend_pid())")
        assert err.value.code == "57P01"
        with pytest.raises(QueryError, match="closed"):
            session.query("SELECT 1")


@db
@pytest.mark.parametrize("ssl_mode", [None, "prefer", "require"])
def test_pg_tls_without_verification(pg_db: FreshDatabase, ssl_mode: str | None) -> None:
    with wire_pg.connect(plan_of(pg_db, ssl_mode=ssl_mode)) as session:
        assert session.tls_version is not None
        assert session.tls_version.startswith("TLSv")
        assert session.tls_cipher
        assert session.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [("t",)]


@db
@pytest.mark.parametrize(
    ("ssl_mode", "host"), [("verify-ca", "127.0.0.1"), ("verify-full", "127.0.0.1")]
)
def test_pg_tls_verified_against_the_right_ca(
    pg_db: FreshDatabase, tls_material: TlsMaterial, ssl_mode: str, host: str
) -> None:
    plan = plan_of(pg_db, host=host, ssl_mode=ssl_mode, trust_anchor=str(tls_material.ca_cert))
    with wire_pg.connect(plan) as session:
        assert session.tls_version in ("TLSv1.2", "TLSv1.3")
        assert session.query("SELECT current_user") == [(pg_db.user,)]


@db
def test_pg_tls_wrong_ca_is_a_tls_error(pg_db: FreshDatabase, tls_material: TlsMaterial) -> None:
    plan = plan_of(pg_db, trust_anchor=str(tls_material.other_ca_cert))
    assert plan.tls.mode == "verify-ca"
    with pytest.raises(TlsError, match="certificate verify failed: unknown CA"):
        wire_pg.connect(plan)


@db
@pytest.mark.parametrize(
    ("server_cert", "ssl_mode", "reason"),
    [
        ("expired", "verify-ca", "certificate verify failed: expired"),
        ("wrong-host", "verify-full", "certificate verify failed: IP address mismatch"),
    ],
)
def test_pg_tls_bad_server_certificate(
    pg_server_factory: Callable[..., PostgresServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
    server_cert: str,
    ssl_mode: str,
    reason: str,
) -> None:
    fresh = fresh_db_factory(pg_server_factory(tls="on", server_cert=server_cert))
    plan = plan_of(fresh, ssl_mode=ssl_mode, trust_anchor=str(tls_material.ca_cert))
    with pytest.raises(TlsError, match=reason):
        wire_pg.connect(plan)
    # verify-ca does not look at the name: the wrong-host certificate is fine there.
    if server_cert == "wrong-host":
        plan = plan_of(fresh, ssl_mode="verify-ca", trust_anchor=str(tls_material.ca_cert))
        with wire_pg.connect(plan) as session:
            assert session.tls_version


@db
def test_pg_verify_full_checks_the_host_name(
    pg_server_factory: Callable[..., PostgresServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    fresh = fresh_db_factory(pg_server_factory(tls="on", server_cert="wrong-host"))
    plan = plan_of(
        fresh, host="localhost", ssl_mode="verify-full", trust_anchor=str(tls_material.ca_cert)
    )
    with pytest.raises(TlsError, match="hostname mismatch"):
        wire_pg.connect(plan)


@db
def test_pg_prefer_against_a_server_without_tls_is_cleartext(
    pg_server_factory: Callable[..., PostgresServer],
    fresh_db_factory: Callable[..., FreshDatabase],
) -> None:
    fresh = fresh_db_factory(pg_server_factory(tls="off"))
    with wire_pg.connect(plan_of(fresh, ssl_mode="prefer")) as session:
        assert session.tls_version is None
        assert session.query("SELECT 1") == [("1",)]


@db
@pytest.mark.parametrize("ssl_mode", ["require", "verify-ca"])
def test_pg_required_tls_against_a_server_without_tls(
    pg_server_factory: Callable[..., PostgresServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
    ssl_mode: str,
) -> None:
    fresh = fresh_db_factory(pg_server_factory(tls="off"))
    plan = plan_of(fresh, ssl_mode=ssl_mode, trust_anchor=str(tls_material.ca_cert))
    with pytest.raises(TlsError) as err:
        wire_pg.connect(plan)
    assert err.value.message == (
        f"server {fresh.host}:{fresh.port} does not offer TLS, and ssl-mode {ssl_mode} requires it"
    )


@db
def test_pg_wrong_password_is_denied(pg_db: FreshDatabase) -> None:
    secret = "Wrong-Secret-4711"
    with pytest.raises(DeniedError) as err:
        wire_pg.connect(plan_of(pg_db, password=secret))
    assert type(err.value) is DeniedError
    assert "password authentication failed" in err.value.message
    assert "28P01" in err.value.message
    assert secret not in err.value.message
    assert pg_db.password not in err.value.message


@db
def test_pg_no_password_is_denied_without_asking(pg_db: FreshDatabase) -> None:
    with pytest.raises(DeniedError, match="none is set"):
        wire_pg.connect(plan_of(pg_db, password=""))


@db
def test_pg_unknown_database_is_denied(pg_db: FreshDatabase) -> None:
    with pytest.raises(DeniedError, match=r'database "no_such_db" does not exist.*3D000'):
        wire_pg.connect(plan_of(pg_db, name="no_such_db"))


@db
def test_pg_client_certificate(
    pg_server: PostgresServer,
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    fresh = fresh_db_factory(pg_server, require_x509=True)
    keys = {
        "trust_anchor": str(tls_material.ca_cert),
        "cert_file": str(tls_material.client_cert),
        "key_file": str(tls_material.client_key),
    }
    with wire_pg.connect(plan_of(fresh, **keys)) as session:
        assert session.tls_version
    # Without a certificate the hostssl rule wants one: denied (libpq says the same).
    plan = plan_of(fresh, ssl_mode="require")
    with pytest.raises(DeniedError, match="certificate"):
        wire_pg.connect(plan)
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        libpq_connect(plan).close()


@db
def test_pg_prefer_retries_in_cleartext_like_libpq(
    pg_server: PostgresServer, fresh_db_factory: Callable[..., FreshDatabase]
) -> None:
    """Refused on TLS before authentication (no client certificate), ``prefer`` tries
    again in cleartext, where the ``hostnossl ... reject`` rule answers: the error is the
    one of the second attempt, as with libpq."""
    fresh = fresh_db_factory(pg_server, require_x509=True)
    plan = plan_of(fresh, ssl_mode="prefer")
    with pytest.raises(psycopg.OperationalError) as libpq_err:
        libpq_connect(plan).close()
    assert "no encryption" in str(libpq_err.value)
    with pytest.raises(DeniedError, match="no encryption") as err:
        wire_pg.connect(plan)
    assert type(err.value) is DeniedError


@db
def test_pg_unix_socket_never_uses_tls(pg_db: FreshDatabase) -> None:
    """libpq ignores sslmode on Unix sockets (the server offers no TLS there)."""
    plan = plan_of(pg_db, host=pg_db.socket, user="postgres", password="", ssl_mode="require")
    assert plan.unix_socket is not None
    with wire_pg.connect(plan) as session:
        assert session.tls_version is None
        assert session.query("SELECT current_user") == [("postgres",)]


def _pg_server_with_hba(server: PostgresServer, line: str) -> None:
    hba = server.data / "pg_hba.conf"
    text = hba.read_text()
    if line not in text:
        hba.write_text(line + "\n" + text)
        server.sql("SELECT pg_reload_conf()")
        time.sleep(0.2)


@db
@pytest.mark.parametrize("method", ["md5", "password"])
def test_pg_md5_and_cleartext_password(
    pg_server_factory: Callable[..., PostgresServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    method: str,
) -> None:
    server = pg_server_factory(tls="off", settings={"password_encryption": "md5"})
    fresh = fresh_db_factory(server)
    stored = server.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{fresh.user}'")
    assert str(stored[0][0]).startswith("md5")
    _pg_server_with_hba(server, f"host all {fresh.user} 127.0.0.1/32 {method}")
    with wire_pg.connect(plan_of(fresh)) as session:
        assert session.query("SELECT current_user") == [(fresh.user,)]
    with pytest.raises(DeniedError, match="28P01"):
        wire_pg.connect(plan_of(fresh, password="wrong"))


@db
def test_pg_scram_with_a_non_ascii_password(
    pg_server: PostgresServer, fresh_db_factory: Callable[..., FreshDatabase]
) -> None:
    fresh = fresh_db_factory(pg_server)
    # U+00A0 (no-break space) maps to a space and "ﬁ" normalises to "fi" under SASLprep;
    # U+0007 is prohibited, so that password is hashed as plain UTF-8.
    for password in ("pässwörd\u00a0ﬁ", "bell\u0007ß"):
        escaped = password.replace("'", "''")
        pg_server.sql(f"ALTER ROLE {fresh.user} PASSWORD '{escaped}'")
        plan = plan_of(fresh, password=password)
        with wire_pg.connect(plan) as session:
            assert session.query("SELECT 1") == [("1",)]
        libpq_connect(plan).close()


def test_pg_saslprep() -> None:
    assert wire_pg._saslprep("plain ascii\x07") == b"plain ascii\x07"
    assert wire_pg._saslprep("a\u00a0b\u00adc") == b"a bc"
    assert wire_pg._saslprep("\u2168") == b"IX"  # NFKC
    assert wire_pg._saslprep("bell\u0007ß") == "bell\u0007ß".encode()  # prohibited: as is


def test_pg_closed_port_is_unreachable_quickly() -> None:
    port = closed_port()
    plan = plan_for(DbAccess(type="postgresql", name="kea", host="127.0.0.1", port=port), env={})
    start = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        wire_pg.connect(plan)
    assert time.monotonic() - start < 1
    assert err.value.message == f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize("module", [wire_pg, wire_mysql], ids=["postgresql", "mysql"])
def test_unknown_host_and_missing_socket(module: Any) -> None:
    kind = "postgresql" if module is wire_pg else "mysql"
    plan = plan_for(DbAccess(type=kind, name="kea", host="no-such-host.invalid"), env={})
    with pytest.raises(UnreachableError, match=r"no-such-host\.invalid:[0-9]+: unknown host"):
        module.connect(plan)
    env = {"MYSQL_UNIX_PORT": "/nonexistent/mysqld.sock"}
    plan = plan_for(DbAccess(type=kind, name="kea", host="/nonexistent"), env=env)
    if kind == "mysql":
        plan = plan_for(DbAccess(type=kind, name="kea", host="localhost"), env=env)
    with pytest.raises(UnreachableError, match=r"/nonexistent/.*: no such socket file"):
        module.connect(plan)


# ---- fake servers -------------------------------------------------------------------------


@contextmanager
def fake_server(*handlers: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that runs one handler per accepted connection, in
    order; yields its port. A failed assertion in a handler fails the test."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(len(handlers))
    listener.settimeout(10)
    failures: list[BaseException] = []

    def serve() -> None:
        for handler in handlers:
            try:
                conn, _ = listener.accept()
            except OSError as exc:
                failures.append(exc)
                return
            with conn:
                conn.settimeout(10)
                try:
                    handler(conn)
                except (AssertionError, OSError) as exc:
                    failures.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(15)
        listener.close()
    errors = [exc for exc in failures if not isinstance(exc, OSError)]
    if errors:
        raise errors[0]


def recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, "client closed early"
        data += chunk
    return data


def fake_plan(kind: str, port: int, **changes: Any) -> ConnectPlan:
    keys: dict[str, Any] = {
        "type": kind,
        "name": "kea",
        "host": "127.0.0.1",
        "port": port,
        "user": "kea",
        "password": "secret",
        "ssl_mode": "disable" if kind == "postgresql" else None,
    }
    keys.update(changes)
    return plan_for(DbAccess(**keys), env={})


def pg_auth_request(code: int, data: bytes = b"") -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        (length,) = struct.unpack("!i", recv_exact(conn, 4))
        recv_exact(conn, length - 4)
        body = struct.pack("!i", code) + data
        conn.sendall(b"R" + struct.pack("!i", len(body) + 4) + body)
        conn.recv(100)  # the client hangs up

    return handler


@pytest.mark.parametrize(
    ("code", "data", "match"),
    [
        (7, b"", "GSSAPI authentication"),
        (9, b"", "SSPI authentication"),
        (2, b"", "Kerberos V5"),
        (10, b"SCRAM-SHA-256-PLUS\x00\x00", "only SCRAM-SHA-256-PLUS"),
        (10, b"OAUTHBEARER\x00\x00", "OAUTHBEARER"),
    ],
)
def test_pg_unsupported_authentication(code: int, data: bytes, match: str) -> None:
    with (
        fake_server(pg_auth_request(code, data)) as port,
        pytest.raises(UnsupportedError, match=match),
    ):
        wire_pg.connect(fake_plan("postgresql", port))


def test_pg_login_is_bounded_by_connect_timeout() -> None:
    def silent(conn: socket.socket) -> None:
        conn.recv(1000)
        conn.recv(1)  # until the client gives up

    with fake_server(silent) as port:
        start = time.monotonic()
        with pytest.raises(UnreachableError, match=r"timed out within 1 s .* during login"):
            wire_pg.connect(fake_plan("postgresql", port, connect_timeout=1))
        assert 0.9 < time.monotonic() - start < 2


def pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def pg_trust_and_one_query(conn: socket.socket) -> None:
    """Trust login, then answer one query with two columns and rows (1, NULL), (x, '')."""
    (length,) = struct.unpack("!i", recv_exact(conn, 4))
    startup = recv_exact(conn, length - 4)
    assert startup[:4] == struct.pack("!i", wire_pg.PROTOCOL_VERSION)
    assert b"application_name\x00kea-db\x00" in startup
    assert b"client_encoding\x00UTF8\x00" in startup
    conn.sendall(
        pg_message(b"R", struct.pack("!i", 0))
        + pg_message(b"S", b"server_version\x0099.0\x00")
        + pg_message(b"K", struct.pack("!ii", 4242, 1))
        + pg_message(b"N", b"SNOTICE\x00Mhello\x00\x00")
        + pg_message(b"Z", b"I")
    )
    kind = recv_exact(conn, 1)
    (length,) = struct.unpack("!i", recv_exact(conn, 4))
    assert (kind, recv_exact(conn, length - 4)) == (b"Q", b"SELECT a, b\x00")
    field = b"\x00" * 4 + b"\x00\x00" + struct.pack("!ihih", 25, -1, -1, 0)
    row1 = struct.pack("!hi", 2, 1) + b"1" + struct.pack("!i", -1)
    row2 = struct.pack("!hi", 2, 1) + b"x" + struct.pack("!i", 0)
    conn.sendall(
        pg_message(b"T", struct.pack("!h", 2) + b"a\x00" + field + b"b\x00" + field)
        + pg_message(b"D", row1)
        + pg_message(b"D", row2)
        + pg_message(b"C", b"SELECT 2\x00")
        + pg_message(b"Z", b"I")
    )
    assert recv_exact(conn, 5) == b"X\x00\x00\x00\x04"  # Terminate


def test_pg_prefer_retries_in_cleartext_when_the_handshake_fails() -> None:
    """libpq's ``prefer``: the server says 'S' but the TLS handshake fails: try again
    without TLS. ``require`` gives up instead."""

    def broken_tls(conn: socket.socket) -> None:
        assert recv_exact(conn, 8) == struct.pack("!ii", 8, wire_pg.SSL_REQUEST_CODE)
        conn.sendall(b"S")
        conn.recv(1000)  # the ClientHello
        conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: handshake failure

    with fake_server(broken_tls, pg_trust_and_one_query) as port:
        plan = fake_plan("postgresql", port, ssl_mode="prefer")
        with wire_pg.connect(plan) as session:
            assert session.tls_version is None
            assert session.parameters["server_version"] == "99.0"
            assert session.backend_pid == 4242
            assert session.query("SELECT a, b") == [("1", None), ("x", "")]
    with (
        fake_server(broken_tls) as port,
        pytest.raises(TlsError, match="handshake failure"),
    ):
        wire_pg.connect(fake_plan("postgresql", port, ssl_mode="require"))


@db
def test_pg_tcp_user_timeout_is_set(pg_db: FreshDatabase) -> None:
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None:
        pytest.skip("this OS has no TCP_USER_TIMEOUT")
    with wire_pg.connect(plan_of(pg_db, tcp_user_timeout=3)) as session:
        sock = session._channel.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, option) == 3000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_pg_garbage_is_a_protocol_error() -> None:
    def http(conn: socket.socket) -> None:
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with fake_server(http) as port, pytest.raises(ProtocolError):
        wire_pg.connect(fake_plan("postgresql", port))
    with fake_server(http) as port, pytest.raises(ProtocolError, match="TLS request"):
        wire_pg.connect(fake_plan("postgresql", port, ssl_mode="prefer"))


# --------------------------------------------------------------------------------------------
# MySQL / MariaDB
# --------------------------------------------------------------------------------------------

MYSQL_SQL = (
    "SELECT 1, 'kea é', NULL, 1.50, DATE '2024-01-02', REPEAT('x', 300) "
    "UNION ALL SELECT 2, NULL, 'n', NULL, NULL, ''"
)


@db
def test_mysql_native_password_rows_match_pymysql(mysql_db: FreshDatabase) -> None:
    plan = plan_of(mysql_db)
    assert not plan.tls.use
    with wire_mysql.connect(plan) as session:
        assert session.tls_version is None
        # MariaDB's version (its "5.5.5-" prefix removed), or Oracle MySQL's (whose user
        # logs in with caching_sha2_password, the RSA exchange in cleartext).
        assert ("MariaDB" in session.server_version) is (mysql_db.server.flavor == "mariadb")
        assert not session.server_version.startswith("5.5.5-")
        rows = session.query(MYSQL_SQL)
    conn = pymysql.connect(**plan.pymysql_kwargs(), conv={})  # conv={}: values as text
    try:
        with conn.cursor() as cur:
            cur.execute(MYSQL_SQL)
            expected = [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()
    assert rows == expected
    assert rows[0][:5] == ("1", "kea é", None, "1.50", "2024-01-02")
    assert rows[1][:3] == ("2", None, "n")


@db
def test_mysql_query_error_code_and_more(mysql_db: FreshDatabase) -> None:
    with wire_mysql.connect(plan_of(mysql_db)) as session:
        with pytest.raises(QueryError) as err:
            session.query("SELECT * FROM no_such_table")
        assert err.value.code == "1146"
        assert session.query("CREATE TABLE t (a INT, b VARCHAR(10))") == []
        assert session.query("INSERT INTO t VALUES (1, NULL), (2, 'b')") == []
        assert session.query("SELECT a, b FROM t ORDER BY a") == [("1", None), ("2", "b")]
        assert session.query("SELECT * FROM t WHERE a > 5") == []


@db
def test_mysql_wrong_password_is_denied(mysql_db: FreshDatabase) -> None:
    secret = "Wrong-Secret-4711"
    with pytest.raises(DeniedError, match=r"Access denied.*MySQL error 1045") as err:
        wire_mysql.connect(plan_of(mysql_db, password=secret))
    assert secret not in err.value.message
    assert mysql_db.password not in err.value.message


@db
def test_mysql_unknown_database_is_denied(
    mysql_db: FreshDatabase, mysql_server: MySQLFamilyServer
) -> None:
    with pytest.raises(DeniedError, match=r"to database 'no_such_db'.*MySQL error 1044"):
        wire_mysql.connect(plan_of(mysql_db, name="no_such_db"))
    # root may see every database: the server says it does not exist.
    env = {"MYSQL_UNIX_PORT": str(mysql_server.socket)}
    plan = plan_for(
        DbAccess(type="mysql", name="no_such_db", host="localhost", user="root"), env=env
    )
    with pytest.raises(DeniedError, match=r"Unknown database.*MySQL error 1049"):
        wire_mysql.connect(plan)


@db
def test_mysql_unix_socket(mysql_server: MySQLFamilyServer) -> None:
    env = {"MYSQL_UNIX_PORT": str(mysql_server.socket)}
    plan = plan_for(DbAccess(type="mysql", name="mysql", host="localhost", user="root"), env=env)
    assert plan.unix_socket == str(mysql_server.socket)
    with wire_mysql.connect(plan) as session:
        assert session.query("SELECT CURRENT_USER()") == [("root@localhost",)]


@db
@pytest.mark.parametrize("anchor", ["ca_cert", "ca_dir"])
def test_mysql_tls_with_the_right_ca(
    mysql_db: FreshDatabase, tls_material: TlsMaterial, anchor: str
) -> None:
    plan = plan_of(mysql_db, trust_anchor=str(getattr(tls_material, anchor)))
    with wire_mysql.connect(plan) as session:
        assert session.tls_version in ("TLSv1.2", "TLSv1.3")
        assert session.tls_cipher
        status = session.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert status == [("Ssl_cipher", session.tls_cipher)]


@db
def test_mysql_tls_wrong_ca(mysql_db: FreshDatabase, tls_material: TlsMaterial) -> None:
    plan = plan_of(mysql_db, trust_anchor=str(tls_material.other_ca_cert))
    with pytest.raises(TlsError, match="certificate verify failed: unknown CA"):
        wire_mysql.connect(plan)


@db
def test_mysql_tls_keys_without_server_tls_stay_cleartext(
    mysql_server_factory: Callable[..., MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
    mysql_flavor: str,
) -> None:
    """Kea's semantics: TLS asked for, none offered, the session goes on in cleartext."""
    fresh = fresh_db_factory(mysql_server_factory(tls="off", flavor=mysql_flavor))
    plan = plan_of(fresh, trust_anchor=str(tls_material.ca_cert))
    assert plan.tls.use and not plan.tls.required
    with wire_mysql.connect(plan) as session:
        assert session.tls_version is None
        assert session.query("SELECT 1") == [("1",)]
    # ... unless the caller insists.
    import dataclasses

    strict = dataclasses.replace(plan, tls=dataclasses.replace(plan.tls, required=True))
    with pytest.raises(TlsError, match="does not offer TLS"):
        wire_mysql.connect(strict)


@db
def test_mysql_client_certificate(
    mysql_server: MySQLFamilyServer,
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    fresh = fresh_db_factory(mysql_server, require_x509=True)
    keys = {
        "trust_anchor": str(tls_material.ca_cert),
        "cert_file": str(tls_material.client_cert),
        "key_file": str(tls_material.client_key),
    }
    with wire_mysql.connect(plan_of(fresh, **keys)) as session:
        assert session.tls_version
    with pytest.raises(DeniedError, match="1045"):
        wire_mysql.connect(plan_of(fresh, trust_anchor=str(tls_material.ca_cert)))
    keys["cert_file"] = str(tls_material.other_client_cert)
    keys["key_file"] = str(tls_material.other_client_key)
    with pytest.raises(TlsError, match="client certificate"):
        wire_mysql.connect(plan_of(fresh, **keys))


@db
def test_mysql_read_timeout(mysql_db: FreshDatabase) -> None:
    with wire_mysql.connect(plan_of(mysql_db, read_timeout=1)) as session:
        start = time.monotonic()
        with pytest.raises(UnreachableError, match=r"timed out within 1 s .* during query"):
            session.query("SELECT SLEEP(3)")
        assert time.monotonic() - start < 2.5
        with pytest.raises(QueryError, match="closed"):
            session.query("SELECT 1")


def test_mysql_closed_port_is_unreachable_quickly() -> None:
    port = closed_port()
    plan = plan_for(DbAccess(type="mysql", name="kea", host="127.0.0.1", port=port), env={})
    start = time.monotonic()
    with pytest.raises(UnreachableError, match=f"127.0.0.1:{port}: connection refused"):
        wire_mysql.connect(plan)
    assert time.monotonic() - start < 1


# ---- a fake MySQL server ------------------------------------------------------------------

NONCE = bytes(range(33, 53))  # 20 bytes, no NUL (real servers never send one)


def mysql_packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes((seq,)) + payload


def mysql_read(conn: socket.socket, seq: int) -> bytes:
    header = recv_exact(conn, 4)
    assert header[3] == seq, f"sequence {header[3]}, expected {seq}"
    return recv_exact(conn, int.from_bytes(header[:3], "little"))


def mysql_greeting(plugin: str = "caching_sha2_password", caps: int | None = None) -> bytes:
    if caps is None:
        caps = (
            wire_mysql._WANTED | wire_mysql.CLIENT_DEPRECATE_EOF
        ) & ~wire_mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    return (
        b"\x0a8.0.36-fake\x00"
        + (42).to_bytes(4, "little")
        + NONCE[:8]
        + b"\x00"
        + (caps & 0xFFFF).to_bytes(2, "little")
        + bytes((255,))
        + (2).to_bytes(2, "little")
        + (caps >> 16).to_bytes(2, "little")
        + bytes((21,))
        + bytes(10)
        + NONCE[8:]
        + b"\x00"
        + plugin.encode()
        + b"\x00"
    )


OK = b"\x00\x00\x00\x02\x00\x00\x00"


def parse_handshake_response(payload: bytes) -> tuple[int, str, bytes, str, str]:
    flags = int.from_bytes(payload[:4], "little")
    pos = 32
    user_end = payload.index(b"\x00", pos)
    user = payload[pos:user_end].decode()
    pos = user_end + 1
    assert not flags & wire_mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    size = payload[pos]
    auth = payload[pos + 1 : pos + 1 + size]
    pos += 1 + size
    db_end = payload.index(b"\x00", pos)
    database = payload[pos:db_end].decode()
    plugin = payload[db_end + 1 :].rstrip(b"\x00").decode()
    return flags, user, auth, database, plugin


def answer_one_query(conn: socket.socket) -> None:
    """Answer ``SELECT ...`` with columns (a, b) and rows ("1", NULL), (long text, "")."""
    assert mysql_read(conn, 0)[:1] == b"\x03"
    column = b"\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00"
    eof = b"\xfe\x00\x00\x02\x00"
    long_text = b"y" * 300
    packets = [
        b"\x02",
        column,
        column.replace(b"\x01a", b"\x01b"),
        eof,
        b"\x011\xfb",
        b"\xfc" + len(long_text).to_bytes(2, "little") + long_text + b"\x00",
        eof,
    ]
    conn.sendall(b"".join(mysql_packet(i + 1, p) for i, p in enumerate(packets)))
    assert mysql_read(conn, 0) == b"\x01"  # COM_QUIT


def caching_sha2_server(*, full: bool, password: str) -> Callable[[socket.socket], None]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def handler(conn: socket.socket) -> None:
        conn.sendall(mysql_packet(0, mysql_greeting()))
        flags, user, auth, database, plugin = parse_handshake_response(mysql_read(conn, 1))
        assert (user, database, plugin) == ("kea", "kea", "caching_sha2_password")
        assert flags & wire_mysql.CLIENT_FOUND_ROWS
        assert not flags & wire_mysql.CLIENT_DEPRECATE_EOF
        assert auth == wire_mysql.caching_sha2_scramble(password.encode(), NONCE)
        if not full:
            conn.sendall(mysql_packet(2, b"\x01\x03") + mysql_packet(3, OK))
        else:
            conn.sendall(mysql_packet(2, b"\x01\x04"))
            assert mysql_read(conn, 3) == b"\x02"  # public key, please
            conn.sendall(mysql_packet(4, b"\x01" + pem))
            encrypted = mysql_read(conn, 5)
            oaep = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None
            )
            clear = wire_mysql._xor(key.decrypt(encrypted, oaep), NONCE)
            assert clear == password.encode() + b"\x00"
            conn.sendall(mysql_packet(6, OK))
        answer_one_query(conn)

    return handler


@pytest.mark.parametrize("full", [False, True], ids=["fast", "full-rsa"])
def test_mysql_caching_sha2_password(full: bool) -> None:
    with fake_server(caching_sha2_server(full=full, password="sécret")) as port:
        plan = fake_plan("mysql", port, password="sécret")
        with wire_mysql.connect(plan) as session:
            assert session.server_version == "8.0.36-fake"
            assert session.connection_id == 42
            assert session.query("SELECT a, b") == [("1", None), ("y" * 300, "")]


def test_mysql_auth_switch_to_native_and_to_unsupported() -> None:
    def switch(plugin: bytes) -> Callable[[socket.socket], None]:
        def handler(conn: socket.socket) -> None:
            conn.sendall(mysql_packet(0, mysql_greeting(plugin="mysql_native_password")))
            _, _, auth, _, _ = parse_handshake_response(mysql_read(conn, 1))
            assert auth == wire_mysql.native_password_scramble(b"secret", NONCE)
            other = bytes(range(60, 80))
            conn.sendall(mysql_packet(2, b"\xfe" + plugin + b"\x00" + other + b"\x00"))
            if plugin == b"mysql_native_password":
                assert mysql_read(conn, 3) == wire_mysql.native_password_scramble(b"secret", other)
                conn.sendall(mysql_packet(4, OK))
                answer_one_query(conn)
            else:
                conn.recv(100)

        return handler

    with (
        fake_server(switch(b"mysql_native_password")) as port,
        wire_mysql.connect(fake_plan("mysql", port)) as session,
    ):
        assert session.query("SELECT a, b")[0] == ("1", None)
    with (
        fake_server(switch(b"client_ed25519")) as port,
        pytest.raises(UnsupportedError, match="client_ed25519"),
    ):
        wire_mysql.connect(fake_plan("mysql", port))
    with (
        fake_server(switch(b"mysql_clear_password")) as port,
        pytest.raises(UnsupportedError, match="cleartext"),
    ):
        wire_mysql.connect(fake_plan("mysql", port))


@pytest.mark.parametrize(("code", "error"), [(1130, DeniedError), (1040, UnreachableError)])
def test_mysql_error_instead_of_greeting(code: int, error: type[Exception]) -> None:
    def refuse(conn: socket.socket) -> None:
        message = b"Host '127.0.0.1' is not allowed to connect to this MariaDB server"
        conn.sendall(mysql_packet(0, b"\xff" + code.to_bytes(2, "little") + message))

    with (
        fake_server(refuse) as port,
        pytest.raises(error, match=f"is not allowed to connect.*MySQL error {code}"),
    ):
        wire_mysql.connect(fake_plan("mysql", port))


def wait_for_hangup(conn: socket.socket) -> None:
    conn.recv(1)


def test_mysql_login_is_bounded_by_connect_timeout() -> None:
    with fake_server(wait_for_hangup) as port:
        start = time.monotonic()
        with pytest.raises(UnreachableError, match="timed out"):
            wire_mysql.connect(fake_plan("mysql", port, connect_timeout=1))
        assert time.monotonic() - start < 2


def test_mysql_wrong_sequence_is_a_protocol_error() -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(mysql_packet(0, mysql_greeting(plugin="mysql_native_password")))
        mysql_read(conn, 1)
        conn.sendall(mysql_packet(5, OK))
        conn.recv(100)

    with (
        fake_server(handler) as port,
        pytest.raises(ProtocolError, match="packet 5 where 2 was due"),
    ):
        wire_mysql.connect(fake_plan("mysql", port))


def test_scrambles_match_known_values() -> None:
    # Values computed independently with PyMySQL's _auth helpers for the same inputs.
    from pymysql import _auth

    nonce = os.urandom(20)
    assert wire_mysql.native_password_scramble(b"pw", nonce) == _auth.scramble_native_password(
        b"pw", nonce
    )
    assert wire_mysql.caching_sha2_scramble(b"pw", nonce) == _auth.scramble_caching_sha2(
        b"pw", nonce
    )
    assert wire_mysql.native_password_scramble(b"", nonce) == b""


def test_modules_import_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, keadb_cli.wire_pg, keadb_cli.wire_mysql; "
        "print(sorted(m for m in ('ssl', 'cryptography', 'psycopg', 'pymysql', 'hashlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    assert wire_common.tls_info(socket.socket()) == (None, None)
