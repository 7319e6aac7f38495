"""The throw-away servers and TLS material behave as the rest of the suite assumes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from cryptography import x509
from servers import (
    HOST,
    SERVER_FLAVORS,
    DatabaseServer,
    FreshDatabase,
    MySQLFamilyServer,
    PostgresServer,
    ServerStartError,
    TlsMaterial,
    start_mariadb,
    start_oracle_mysql,
    start_postgres,
)

PgFactory = Callable[..., PostgresServer]
MyFactory = Callable[..., MySQLFamilyServer]
DbFactory = Callable[..., FreshDatabase]

# PostgreSQL and the two MySQL flavours (MariaDB, Oracle MySQL).
BACKENDS = list(SERVER_FLAVORS)

# Oracle MySQL's answer to a cleartext login when require_secure_transport is ON.
ER_SECURE_TRANSPORT_REQUIRED = 3159

# Inner pytest sessions (pytester, in-process): hypothesis' plugin would re-import hypothesis
# (pytester restores sys.modules after each run), which costs seconds.
INNER_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

# OpenSSL verify results (include/openssl/x509_vfy.h).
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN = 19
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_IP_ADDRESS_MISMATCH = 64


def _client_context(
    *, cafile: Path | None = None, capath: Path | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.load_verify_locations(cafile=cafile, capath=capath)
    return ctx


def _pg_handshake(port: int, ctx: ssl.SSLContext) -> str:
    """PostgreSQL's SSLRequest, then a TLS handshake verified by ``ctx``; the TLS version."""
    raw = socket.create_connection((HOST, port), timeout=10)
    try:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        assert raw.recv(1) == b"S", "server did not accept SSLRequest"
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            return str(tls.version())
    finally:
        raw.close()


def _pg_connect(db: FreshDatabase, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        dbname=db.name,
        connect_timeout=10,
        **kwargs,
    )


def _pg_ssl_in_use(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None
    return bool(row[0])


def _my_connect(db: FreshDatabase, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        database=db.name,
        connect_timeout=10,
        **kwargs,
    )


def _my_tls_version(conn: pymysql.connections.Connection[Any]) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
    assert row is not None
    return str(row[1])


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat_file.parent.name))
    return members


def test_certificates_have_the_promised_properties(tls_material: TlsMaterial) -> None:
    def load(path: Path) -> x509.Certificate:
        return x509.load_pem_x509_certificate(path.read_bytes())

    def names(cert: x509.Certificate) -> set[str]:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
            str(a) for a in san.get_values_for_type(x509.IPAddress)
        }

    now = dt.datetime.now(dt.UTC)
    ca, other_ca = load(tls_material.ca_cert), load(tls_material.other_ca_cert)
    valid, expired = load(tls_material.server_cert), load(tls_material.expired_server_cert)
    wrong_host = load(tls_material.wrong_host_server_cert)
    client, other_client = load(tls_material.client_cert), load(tls_material.other_client_cert)

    assert valid.not_valid_before_utc < now < valid.not_valid_after_utc
    assert expired.not_valid_after_utc < now
    assert names(valid) == names(expired) == {"localhost", str(ipaddress.ip_address(HOST))}
    assert names(wrong_host) == {"db.invalid"}
    for cert in (valid, expired, wrong_host, client):
        cert.verify_directly_issued_by(ca)
    other_client.verify_directly_issued_by(other_ca)
    assert other_client.issuer != ca.subject
    cn = x509.oid.NameOID.COMMON_NAME
    assert client.subject.get_attributes_for_oid(cn)[0].value == "kea"
    for key in (tls_material.server_key, tls_material.client_key, tls_material.ca_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("backend", BACKENDS)
def test_hashed_ca_dir_verifies_the_live_server_certificate(
    backend: str,
    tls_material: TlsMaterial,
    request: pytest.FixtureRequest,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
) -> None:
    good = _client_context(capath=tls_material.ca_dir)
    wrong = _client_context(capath=tls_material.other_ca_dir)
    if backend == "postgresql":
        port = request.getfixturevalue("pg_server").port
        assert _pg_handshake(port, good).startswith("TLS")
        with pytest.raises(ssl.SSLCertVerificationError) as err:
            _pg_handshake(port, wrong)
        # PostgreSQL sends its chain up to the root (OpenSSL's auto chain from ssl_ca_file).
        assert err.value.verify_code in (
            X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        )
    else:
        mysql_db = fresh_db_factory(mysql_server_factory(tls="on", flavor=backend))
        with _my_connect(mysql_db, ssl=good) as conn:
            assert _my_tls_version(conn).startswith("TLS")
        with pytest.raises(pymysql.err.OperationalError, match="certificate verify failed"):
            _my_connect(mysql_db, ssl=wrong)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("choice", "verify_code", "reason"),
    [
        ("expired", X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired"),
        ("wrong-host", X509_V_ERR_IP_ADDRESS_MISMATCH, "IP address mismatch"),
    ],
)
def test_server_presents_the_chosen_bad_certificate(
    backend: str,
    choice: str,
    verify_code: int,
    reason: str,
    tls_material: TlsMaterial,
    pg_server_factory: PgFactory,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
) -> None:
    ctx = _client_context(cafile=tls_material.ca_cert)
    if backend == "postgresql":
        with pytest.raises(ssl.SSLCertVerificationError) as err:
            _pg_handshake(pg_server_factory(server_cert=choice).port, ctx)
        assert err.value.verify_code == verify_code
    else:
        db = fresh_db_factory(mysql_server_factory(server_cert=choice, flavor=backend))
        with pytest.raises(pymysql.err.OperationalError, match=reason):
            _my_connect(db, ssl=ctx)


def test_pg_required_refuses_cleartext_tcp(
    pg_server_factory: PgFactory, fresh_db_factory: DbFactory
) -> None:
    server = pg_server_factory(tls="required")
    db = fresh_db_factory(server)
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        _pg_connect(db, sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(host=HOST, port=server.port, user="postgres", sslmode="disable")
    with _pg_connect(db, sslmode="require") as conn:
        assert _pg_ssl_in_use(conn)
        assert conn.execute("SELECT current_user").fetchone() == (db.user,)


@pytest.mark.parametrize(("tls", "ssl_setting"), [("off", "off"), ("on", "on")])
def test_pg_ssl_setting_follows_the_mode_and_passwords_work(
    tls: str, ssl_setting: str, pg_server_factory: PgFactory, fresh_db_factory: DbFactory
) -> None:
    server = pg_server_factory(tls=tls)
    assert server.sql("SHOW ssl") == [(ssl_setting,)]
    db = fresh_db_factory(server)
    with _pg_connect(db, sslmode="prefer") as conn:
        assert _pg_ssl_in_use(conn) is (tls == "on")
        conn.execute("CREATE TABLE t (i int)")  # the user owns its database
    with _pg_connect(db, sslmode="disable") as conn:
        assert not _pg_ssl_in_use(conn)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=HOST, port=db.port, user=db.user, password="wrong", dbname=db.name)


def test_prepended_hba_rule_is_in_force_on_return(
    pg_server_factory: PgFactory, fresh_db_factory: DbFactory
) -> None:
    server = pg_server_factory(tls="off")
    db = fresh_db_factory(server)
    _pg_connect(db).close()
    server.prepend_hba(f"host all {db.user} {HOST}/32 reject")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        _pg_connect(db)


def test_mysql_required_refuses_cleartext_tcp(
    mysql_flavor: str,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
    tls_material: TlsMaterial,
) -> None:
    db = fresh_db_factory(mysql_server_factory(tls="required", flavor=mysql_flavor))
    # MariaDB 10.11 answers a cleartext login with "Access denied" (1045), Oracle MySQL with
    # ER_SECURE_TRANSPORT_REQUIRED (3159).
    with pytest.raises(pymysql.err.OperationalError) as err:
        _my_connect(db, ssl_disabled=True)
    expected = 1045 if mysql_flavor == "mariadb" else ER_SECURE_TRANSPORT_REQUIRED
    assert err.value.args[0] == expected, err.value
    with _my_connect(db, ssl=_client_context(cafile=tls_material.ca_cert)) as conn:
        assert _my_tls_version(conn).startswith("TLSv1.")


@pytest.mark.parametrize(
    ("tls", "have_ssl", "secure_transport"),
    [("off", "DISABLED", "OFF"), ("on", "YES", "OFF"), ("required", "YES", "ON")],
)
def test_mysql_have_ssl_follows_the_mode(
    tls: str,
    have_ssl: str,
    secure_transport: str,
    mysql_flavor: str,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
    tls_material: TlsMaterial,
) -> None:
    """MariaDB's have_ssl, or on Oracle MySQL (which dropped have_ssl in 8.4) an empty
    tls_version for "off", and require_secure_transport follow the mode."""
    server = mysql_server_factory(tls=tls, flavor=mysql_flavor)
    if mysql_flavor == "mariadb":
        names, expected = "'have_ssl'", {"have_ssl": have_ssl}
    else:
        tls_version = "" if tls == "off" else "TLSv1.2,TLSv1.3"
        names, expected = "'have_ssl', 'tls_version'", {"tls_version": tls_version}
    rows = dict(
        server.sql(
            f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names}, 'require_secure_transport')"
        )
    )
    assert rows == {**expected, "require_secure_transport": secure_transport}
    if tls == "off":  # really no TLS: a client that insists on it is refused
        with pytest.raises(pymysql.err.OperationalError, match=r"SSL|TLS"):
            pymysql.connect(host=HOST, port=server.port, user="root", password="",
                            ssl=_client_context(cafile=tls_material.ca_cert), connect_timeout=10)
    if tls != "required":
        db = fresh_db_factory(server)
        with _my_connect(db, ssl_disabled=True) as conn:
            assert _my_tls_version(conn) == ""
        with pytest.raises(pymysql.err.OperationalError) as err:
            pymysql.connect(host=HOST, port=db.port, user=db.user, password="wrong")
        assert err.value.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_created_with_require_x509_need_a_client_certificate(
    backend: str,
    tls_material: TlsMaterial,
    request: pytest.FixtureRequest,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
) -> None:
    server: DatabaseServer
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
    else:
        server = mysql_server_factory(tls="on", flavor=backend)
    db = fresh_db_factory(server, require_x509=True)
    cert = {"cert": tls_material.client_cert, "key": tls_material.client_key}
    if backend == "postgresql":
        with pytest.raises(psycopg.OperationalError, match="requires a valid client certificate"):
            _pg_connect(db, sslmode="require")
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):
            _pg_connect(db, sslmode="disable")
        with _pg_connect(db, sslmode="require", sslcert=cert["cert"], sslkey=cert["key"]) as c:
            assert _pg_ssl_in_use(c)
    else:
        ctx = _client_context(cafile=tls_material.ca_cert)
        with pytest.raises(pymysql.err.OperationalError) as err:
            _my_connect(db, ssl=ctx)
        assert err.value.args[0] == 1045
        ctx.load_cert_chain(cert["cert"], cert["key"])
        with _my_connect(db, ssl=ctx) as conn:
            assert _my_tls_version(conn).startswith("TLSv1.")


def test_pg_client_cert_required_checks_the_issuing_ca(
    tls_material: TlsMaterial, pg_server_factory: PgFactory, fresh_db_factory: DbFactory
) -> None:
    db = fresh_db_factory(pg_server_factory(tls="on", client_cert_required=True))
    with pytest.raises(psycopg.OperationalError, match="requires a valid client certificate"):
        _pg_connect(db, sslmode="require")
    with pytest.raises(psycopg.OperationalError, match="unknown ca"):
        _pg_connect(
            db,
            sslmode="require",
            sslcert=str(tls_material.other_client_cert),
            sslkey=str(tls_material.other_client_key),
        )
    with _pg_connect(
        db,
        sslmode="verify-full",
        sslrootcert=str(tls_material.ca_cert),
        sslcert=str(tls_material.client_cert),
        sslkey=str(tls_material.client_key),
    ) as conn:
        assert _pg_ssl_in_use(conn)


def test_mysql_cipher_restriction_is_enforced(
    mysql_flavor: str,
    tls_material: TlsMaterial,
    mysql_server_factory: MyFactory,
    fresh_db_factory: DbFactory,
) -> None:
    allowed, other = "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"
    server = mysql_server_factory(ssl_cipher=allowed, tls_version="TLSv1.2", flavor=mysql_flavor)
    assert dict(server.sql("SHOW GLOBAL VARIABLES LIKE 'ssl_cipher'")) == {"ssl_cipher": allowed}
    db = fresh_db_factory(server)
    ctx = _client_context(cafile=tls_material.ca_cert)
    with _my_connect(db, ssl=ctx) as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone() == ("Ssl_cipher", allowed)
    ctx.set_ciphers(other)
    with pytest.raises(pymysql.err.OperationalError, match=r"HANDSHAKE_FAILURE|handshake failure"):
        _my_connect(db, ssl=ctx)


@pytest.mark.parametrize(
    "start", [start_postgres, start_mariadb, start_oracle_mysql], ids=BACKENDS
)
def test_stop_ends_every_process_and_removes_the_directory(
    start: Callable[..., DatabaseServer],
) -> None:
    server = start()
    assert server.is_running()
    pid = server.pid
    assert pid is not None
    assert server.sql("SELECT 1") == [(1,)]
    assert _group_members(pid)
    server.stop()
    assert not server.is_running()
    assert _group_members(pid) == []
    assert not server.directory.exists()
    server.stop()  # idempotent


def test_mysql_users_get_the_flavors_default_plugin(
    mysql_flavor: str, mysql_server_factory: MyFactory, fresh_db_factory: DbFactory
) -> None:
    """mysql_native_password on MariaDB 10.11, caching_sha2_password on Oracle MySQL; either
    logs in over cleartext TCP (PyMySQL fetches the RSA key for caching_sha2_password), and
    root needs no password over 127.0.0.1."""
    server = mysql_server_factory(tls="off", flavor=mysql_flavor)
    assert server.flavor == mysql_flavor and server.type == "mysql"
    db = fresh_db_factory(server)
    plugin = server.sql("SELECT plugin FROM mysql.user WHERE user = %s", params=(db.user,))
    expected = "mysql_native_password" if mysql_flavor == "mariadb" else "caching_sha2_password"
    assert plugin == [(expected,)]
    with _my_connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == (f"{db.user}@%",)
    root = pymysql.connect(host=HOST, port=server.port, user="root", password="")
    with root, root.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    assert row is not None and ("MariaDB" in row[0]) is (mysql_flavor == "mariadb")


@pytest.mark.parametrize("mysql_flavor", ["mysql"], indirect=True)
def test_oracle_mysql_runs_in_the_sid_chroot(mysql_flavor: str, mysql_server: Any) -> None:
    server = mysql_server
    assert server.flavor == "mysql"
    major, minor = (int(p) for p in server.version.split("-")[0].split(".")[:2])
    assert (major, minor) >= (8, 4), server.version
    assert server.pid is not None
    assert os.readlink(f"/proc/{server.pid}/root") == str(server.chroot)
    # No X Protocol listener (it would take 33060 on every address), no binary log.
    plugin = server.sql(
        "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'mysqlx'"
    )
    assert plugin in ([], [("DISABLED",)])
    assert server.sql("SELECT @@log_bin, @@skip_name_resolve") == [(0, 1)]
    assert Path(server.socket).is_socket()
    assert server.inside(server.socket) == f"/tmp/{server.directory.name}/mysqld.sock"


def test_oracle_mysql_without_its_chroot_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEADB_SID_CHROOT", str(tmp_path / "none"))
    with pytest.raises(ServerStartError, match=r"sid_chroot\.sh"):
        start_oracle_mysql()


def test_mysql_server_factory_refuses_an_unknown_flavor(mysql_server_factory: MyFactory) -> None:
    with pytest.raises(ValueError, match="unknown MySQL flavor 'percona'"):
        mysql_server_factory(flavor="percona")


def test_a_server_that_cannot_start_reports_its_log() -> None:
    with pytest.raises(ServerStartError) as err:
        start_postgres(settings={"shared_buffers": "not-a-size"})
    message = str(err.value)
    assert "exited with code" in message
    assert 'invalid value for parameter "shared_buffers"' in message


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), (None, "skipped")])
def test_unstartable_server_fails_in_ci_and_skips_outside(
    ci: str | None, outcome: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(
        """
        def test_needs_a_server(pg_server_factory):
            pg_server_factory(tls="off", settings={"shared_buffers": "not-a-size"})
        """
    )
    result = pytester.runpytest(*INNER_ARGS, "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*PostgreSQL (tls=off*could not start*"])
    result.stdout.fnmatch_lines(['*invalid value for parameter "shared_buffers"*'])


@pytest.mark.parametrize(("ci", "status"), [("true", 1), (None, 0)])
def test_ci_hook_counts_xfail_and_skip_as_failures(
    ci: str | None, status: int, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makeini("[pytest]\nxfail_strict = true\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.xfail(reason="known")
        def test_known_failure():
            assert False

        def test_passes():
            assert True
        """
    )
    result = pytester.runpytest(*INNER_ARGS)
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == status
    if ci:
        result.stdout.fnmatch_lines(["*1 test(s) expected to fail in CI: that is a failure*"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.xfail(reason="known")
        def test_unexpected_pass():
            assert True
        """
    )
    strict = pytester.runpytest(*INNER_ARGS)
    strict.assert_outcomes(failed=1)  # xfail_strict: an unexpected pass is a failure


def test_environment_is_isolated_for_each_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrubbed = ["KEA_DB_URL", "PGHOST", "PGSSLMODE", "MYSQL_UNIX_PORT", "NO_COLOR"]
    for name in scrubbed:
        monkeypatch.setenv(name, "/leaked")
    monkeypatch.setenv("KEADB_KEEP", "kept")
    monkeypatch.setenv("HOME", "/leaked-home")
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(
        f"""
        import os
        def test_env():
            assert [n for n in {scrubbed!r} if n in os.environ] == []
            assert os.environ["KEADB_KEEP"] == "kept"
            assert os.environ["HOME"] != "/leaked-home"
            assert os.path.isdir(os.environ["HOME"])
        """
    )
    pytester.runpytest(*INNER_ARGS).assert_outcomes(passed=1)
    assert os.environ["PGHOST"] == "/leaked"  # restored after the inner test
