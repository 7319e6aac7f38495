"""The one session path: Kea's client libraries, the error table, and the bounds.

Real throw-away servers: libpq's own password sources, the same answer classified the same
way on every path, statement deadlines on a sleeping ``schema_version``, a locked account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase, add_sleeping_version_view

from keadb_cli.db import classify
from keadb_cli.db.classify import Outcome
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import DeniedError, QueryError, UnreachableError
from keadb_cli.kea.access import DbAccess

db = pytest.mark.db

# One real example per rule of the table, written from what the servers and libraries say.
EXAMPLES: list[tuple[str, str, str, Outcome, str]] = [
    ("postgresql", "28P01", "", Outcome.DENIED, "auth-failed"),
    ("postgresql", "28000", "", Outcome.DENIED, "not-authorized"),
    ("postgresql", "3D000", "", Outcome.DENIED, "unknown-database"),
    ("postgresql", "42501", "", Outcome.DENIED, "no-privilege"),
    ("postgresql", "53300", "", Outcome.UNREACHABLE, "too-many-connections"),
    ("postgresql", "57P03", "", Outcome.UNREACHABLE, "server-starting"),
    ("postgresql", "57P01", "", Outcome.UNREACHABLE, "server-shutdown"),
    ("postgresql", "57P02", "", Outcome.UNREACHABLE, "server-shutdown"),
    ("postgresql", "57014", "", Outcome.UNREACHABLE, "statement-timeout"),
    ("postgresql", "08006", "", Outcome.UNREACHABLE, "connection-lost"),
    ("postgresql", "08003", "", Outcome.UNREACHABLE, "connection-lost"),
    ("postgresql", "", "FATAL:  sorry, too many clients already", Outcome.UNREACHABLE,
     "too-many-connections"),
    ("postgresql", "", "FATAL:  remaining connection slots are reserved for roles with the "
     "SUPERUSER attribute", Outcome.UNREACHABLE, "too-many-connections"),
    ("postgresql", "", "FATAL:  the database system is starting up", Outcome.UNREACHABLE,
     "server-starting"),
    ("postgresql", "", "FATAL:  the database system is shutting down", Outcome.UNREACHABLE,
     "server-shutdown"),
    ("postgresql", "", "FATAL:  the database system is in recovery mode", Outcome.UNREACHABLE,
     "server-starting"),
    ("postgresql", "", 'connection to server at "db1" (10.0.0.5), port 5432 failed: '
     'authentication method requirement "!password" failed: server requested a cleartext '
     "password", Outcome.INSECURE_AUTH, "insecure-auth"),
    ("postgresql", "", 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
     'password authentication failed for user "kea"', Outcome.DENIED, "auth-failed"),
    ("postgresql", "", 'connection to server at "127.0.0.1", port 5432 failed: '
     "fe_sendauth: no password supplied", Outcome.DENIED, "no-password"),
    ("postgresql", "", 'FATAL:  certificate authentication failed for user "kea"',
     Outcome.DENIED, "client-cert-rejected"),
    ("postgresql", "", "FATAL:  connection requires a valid client certificate",
     Outcome.DENIED, "client-cert-missing"),
    ("postgresql", "", 'FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "kea", '
     'database "kea", no encryption', Outcome.DENIED, "hba-rejected"),
    ("postgresql", "", 'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1"',
     Outcome.DENIED, "hba-rejected"),
    ("postgresql", "", "FATAL:  SASL authentication failed", Outcome.DENIED, "auth-failed"),
    ("postgresql", "", 'FATAL:  database "nope" does not exist', Outcome.DENIED,
     "unknown-database"),
    ("postgresql", "", 'FATAL:  role "nobody" does not exist', Outcome.DENIED, "auth-failed"),
    ("postgresql", "", 'FATAL:  permission denied for database "kea"', Outcome.DENIED,
     "no-privilege"),
    ("postgresql", "", 'could not translate host name "db.invalid" to address: Name or '
     "service not known", Outcome.UNREACHABLE, "dns"),
    ("postgresql", "", 'connection to server at "127.0.0.1", port 1 failed: Connection '
     "refused", Outcome.UNREACHABLE, "refused"),
    ("postgresql", "", "timeout expired", Outcome.UNREACHABLE, "timeout"),
    ("postgresql", "", "could not connect: No route to host", Outcome.UNREACHABLE, "network"),
    ("postgresql", "", "could not connect: Network is unreachable", Outcome.UNREACHABLE,
     "network"),
    ("postgresql", "", 'connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such '
     "file or directory", Outcome.UNREACHABLE, "no-socket"),
    ("postgresql", "", "server closed the connection unexpectedly", Outcome.UNREACHABLE,
     "connection-lost"),
    ("postgresql", "", "server does not support SSL, but SSL was required", Outcome.TLS,
     "tls-refused"),
    ("postgresql", "", "SSL error: certificate verify failed", Outcome.TLS, "tls-verify"),
    ("postgresql", "", 'server certificate for "db1" does not match host name "db2"',
     Outcome.TLS, "tls-hostname"),
    ("postgresql", "", 'could not read root certificate file "/x": No such file',
     Outcome.TLS, "tls-files"),
    ("postgresql", "", 'could not load private key file "/k"', Outcome.TLS, "tls-files"),
    ("postgresql", "", 'could not read certificate file "/c"', Outcome.TLS, "tls-files"),
    ("postgresql", "", "SSL SYSCALL error: EOF detected", Outcome.TLS, "tls"),
    ("postgresql", "", "the server sent a bad certificate chain", Outcome.TLS, "tls"),
    ("postgresql", "", "expected authentication request from server, but received H",
     Outcome.UNREACHABLE, "protocol"),
    ("postgresql", "", "FATAL:  unsupported frontend protocol 3.0", Outcome.UNREACHABLE,
     "protocol"),
    ("mysql", "1045", "", Outcome.DENIED, "auth-failed"),
    ("mysql", "1698", "", Outcome.DENIED, "auth-failed"),
    ("mysql", "1044", "", Outcome.DENIED, "no-privilege"),
    ("mysql", "1227", "", Outcome.DENIED, "no-privilege"),
    ("mysql", "1142", "", Outcome.DENIED, "no-privilege"),
    ("mysql", "1049", "", Outcome.DENIED, "unknown-database"),
    ("mysql", "1130", "", Outcome.DENIED, "host-not-allowed"),
    ("mysql", "1129", "", Outcome.DENIED, "host-blocked"),
    ("mysql", "1251", "", Outcome.DENIED, "auth-unsupported"),
    ("mysql", "2059", "", Outcome.DENIED, "auth-unsupported"),
    ("mysql", "3118", "", Outcome.DENIED, "account-locked"),
    ("mysql", "4151", "", Outcome.DENIED, "account-locked"),
    ("mysql", "1862", "", Outcome.DENIED, "password-expired"),
    ("mysql", "1820", "", Outcome.DENIED, "password-expired"),
    ("mysql", "3159", "", Outcome.DENIED, "tls-required"),
    ("mysql", "1040", "", Outcome.UNREACHABLE, "too-many-connections"),
    ("mysql", "1203", "", Outcome.UNREACHABLE, "too-many-connections"),
    ("mysql", "2002", "", Outcome.UNREACHABLE, "refused"),
    ("mysql", "2003", "", Outcome.UNREACHABLE, "refused"),
    ("mysql", "2005", "", Outcome.UNREACHABLE, "dns"),
    ("mysql", "2006", "", Outcome.UNREACHABLE, "connection-lost"),
    ("mysql", "2013", "", Outcome.UNREACHABLE, "connection-lost"),
    ("mysql", "1927", "", Outcome.UNREACHABLE, "connection-lost"),
    ("mysql", "5013", "", Outcome.UNREACHABLE, "connection-lost"),
    ("mysql", "5014", "", Outcome.UNREACHABLE, "connection-lost"),
    ("mysql", "2007", "", Outcome.UNREACHABLE, "protocol"),
    ("mysql", "2012", "", Outcome.UNREACHABLE, "protocol"),
    ("mysql", "2027", "", Outcome.UNREACHABLE, "protocol"),
    ("mysql", "2000", "", Outcome.UNREACHABLE, "protocol"),
    ("mysql", "2020", "", Outcome.UNREACHABLE, "result-too-large"),
    ("mysql", "1969", "", Outcome.UNREACHABLE, "statement-timeout"),
    ("mysql", "3024", "", Outcome.UNREACHABLE, "statement-timeout"),
    ("mysql", "2026", "", Outcome.TLS, "tls"),
    ("mysql", "5010", "", Outcome.INSECURE_AUTH, "insecure-auth"),
]


@pytest.mark.parametrize(("backend", "code", "text", "outcome", "reason"), EXAMPLES)
def test_error_table_entry(backend: str, code: str, text: str, outcome: Outcome,
                           reason: str) -> None:
    rule = classify.rule_for(backend, code=code, text=text)
    assert rule is not None
    assert (rule.outcome, rule.reason) == (outcome, reason)


def test_every_rule_has_an_example() -> None:
    hit = {classify.rule_for(b, code=c, text=t) for b, c, t, _o, _r in EXAMPLES}
    missing = [r for r in classify.RULES if r not in hit]
    assert missing == []


def test_unknown_answers_are_unreachable_not_denied() -> None:
    err = classify.login_error("mysql", "db1:3306/kea", "something new", code="9999")
    assert isinstance(err, UnreachableError)
    assert err.reason_code == "unexpected"


def test_login_error_text_is_made_printable() -> None:
    err = classify.login_error("postgresql", "db1", "FATAL:  \x1b[2Jrole \"x\" does not exist")
    assert isinstance(err, DeniedError)
    assert "\x1b" not in err.message and "\\x1b[2J" in err.message


def _cli(*args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=base, timeout=timeout, check=False)


def _target(db: FreshDatabase) -> list[str]:
    return ["--type", db.type, "--host", db.host, "--port", str(db.port), "--user", db.user,
            "--name", db.name, "--expect", "13.0", "--json"]


def _result(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.stdout, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert len(results) == 1
    return dict(results[0])


@db
def test_pgpassword_is_libpqs_own(pg_db: FreshDatabase) -> None:
    proc = _cli("check-version", *_target(pg_db), env={"PGPASSWORD": pg_db.password})
    assert _result(proc)["verdict"] == "EMPTY", proc.stderr
    assert proc.returncode == 12
    wrong = _cli("check-version", *_target(pg_db), env={"PGPASSWORD": pg_db.password + "x"})
    assert _result(wrong)["verdict"] == "DENIED"
    assert _result(wrong)["reason_code"] == "auth-failed"
    assert wrong.returncode == 21


@db
def test_pgpassfile_is_libpqs_own(pg_db: FreshDatabase, tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{pg_db.host}:{pg_db.port}:{pg_db.name}:{pg_db.user}:{pg_db.password}\n")
    passfile.chmod(0o600)
    proc = _cli("check-version", *_target(pg_db), env={"PGPASSFILE": str(passfile)})
    assert _result(proc)["verdict"] == "EMPTY", proc.stderr
    passfile.write_text(f"{pg_db.host}:{pg_db.port}:{pg_db.name}:{pg_db.user}:nope\n")
    wrong = _cli("check-version", *_target(pg_db), env={"PGPASSFILE": str(passfile)})
    assert _result(wrong)["verdict"] == "DENIED"
    assert wrong.returncode == 21


@db
def test_no_password_anywhere_is_denied_by_libpq(pg_db: FreshDatabase, tmp_path: Path) -> None:
    proc = _cli("check-version", *_target(pg_db),
                env={"PGPASSFILE": str(tmp_path / "none"), "HOME": str(tmp_path)})
    result = _result(proc)
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "no-password"


def _access(db: FreshDatabase, **extra: object) -> DbAccess:
    return DbAccess(type=db.type, host=db.host, port=db.port, user=db.user, name=db.name,
                    password=db.password, **extra)  # type: ignore[arg-type]


@db
def test_session_reports_kea_library(fresh_db: FreshDatabase) -> None:
    session = open_session(plan_for(_access(fresh_db), env={}))
    try:
        expected = "libpq " if fresh_db.type == "postgresql" else "libmariadb "
        assert session.library.startswith(expected)
        assert session.fallback is None
        assert session.query("SELECT 1") == [("1",)]
        with pytest.raises(QueryError) as info:
            session.query("SELECT * FROM no_such_table")
        assert info.value.code in ("42P01", "1146")
        assert session.query("SELECT 2") == [("2",)]  # a failed statement keeps the session
    finally:
        session.close()


@db
def test_sleeping_schema_version_ends_within_the_deadline(fresh_db: FreshDatabase) -> None:
    add_sleeping_version_view(fresh_db)
    started = time.monotonic()
    proc = _cli("check-version", *_target(fresh_db), "--statement-timeout", "1",
                env={"KEA_DB_PASSWORD": fresh_db.password})
    elapsed = time.monotonic() - started
    result = _result(proc)
    assert result["verdict"] == "UNREACHABLE", result
    assert result["reason_code"] == "statement-timeout"
    assert proc.returncode == 20
    assert elapsed < 8, elapsed
    assert "Traceback" not in proc.stderr


@db
def test_locked_account_is_denied(mysql_db: FreshDatabase) -> None:
    mysql_db.server.sql("ALTER USER %s@'%%' ACCOUNT LOCK", params=(mysql_db.user,))
    proc = _cli("check-version", *_target(mysql_db), env={"KEA_DB_PASSWORD": mysql_db.password})
    result = _result(proc)
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "account-locked"
    assert proc.returncode == 21


@db
def test_fallback_driver_is_said_and_works(fresh_db: FreshDatabase,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from keadb_cli.db import libmariadb, libpq

    module = libpq if fresh_db.type == "postgresql" else libmariadb
    monkeypatch.setitem(module._state, "lib", None)  # as on a machine without the library
    session = open_session(plan_for(_access(fresh_db), env={}))
    try:
        assert session.fallback is not None and "cannot be loaded" in session.fallback
        assert session.library.startswith(("psycopg", "PyMySQL"))
        assert session.query("SELECT 1") == [("1",)]
        with pytest.raises(QueryError) as info:
            session.query("SELECT * FROM no_such_table")
        assert info.value.code in ("42P01", "1146")
    finally:
        session.close()


def test_fallback_refuses_cleartext_plugin_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakes import FakeServer

    from keadb_cli.db import libmariadb
    from keadb_cli.errors import InsecureAuthError

    monkeypatch.setitem(libmariadb._state, "lib", None)
    with FakeServer("mysql", "clear_password") as server:
        access = DbAccess(type="mysql", host=server.host, port=server.port, user="kea",
                          name="kea", password="fallback-secret")
        with pytest.raises(InsecureAuthError):
            open_session(plan_for(access, env={}))
        assert not server.received_any(b"fallback-secret")


@db
@pytest.mark.parametrize("mysql_flavor", ["mysql"], indirect=True)
def test_oracle_mysql_rsa_exchange_needs_tls_or_a_given_key(
    mysql_db: FreshDatabase, tls_material: Any, tmp_path: Path
) -> None:
    """A caching_sha2_password user the server has not cached yet: over TCP without TLS the
    login needs an RSA key exchange. kea-db refuses to take the server's key (Kea would),
    logs in once the user gives the key, and with TLS needs no key at all."""
    server = mysql_db.server
    server.sql("FLUSH PRIVILEGES")  # empties caching_sha2_password's cache
    env = {"KEA_DB_PASSWORD": mysql_db.password}
    refused = _result(_cli("check-version", *_target(mysql_db), env=env))
    assert refused["verdict"] == "DENIED"
    assert refused["reason_code"] == "insecure-rsa-key"
    assert "--server-public-key" in str(refused["detail"])
    key = tmp_path / "server-public-key.pem"
    key.write_bytes((server.data / "public_key.pem").read_bytes())  # type: ignore[attr-defined]
    given = _cli("check-version", *_target(mysql_db), "--server-public-key", str(key), env=env)
    assert _result(given)["verdict"] == "EMPTY", given.stderr
    server.sql("FLUSH PRIVILEGES")
    over_tls = _cli("check-version", *_target(mysql_db), "--trust-anchor",
                    str(tls_material.ca_cert), env=env)
    result = _result(over_tls)
    assert result["verdict"] == "EMPTY", over_tls.stderr
    assert result["tls"]


def test_a_forked_child_logs_in_without_its_parents_login_threads() -> None:
    """libpq's login steps run on reused worker threads; a fork copies none of them, so a
    child (an API user that forks, a test harness) must start its own: a refused port is
    refused at once there too, not waited on until the connect deadline."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # nothing listens once closed
    plan = plan_for(DbAccess(type="postgresql", host="127.0.0.1", port=port, name="kea",
                             user="kea", connect_timeout=5), env={})
    with pytest.raises(UnreachableError) as parent:
        open_session(plan)  # leaves an idle worker behind in this process
    assert parent.value.reason_code == "refused"
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only for a refusal well inside the 5 s deadline
        code = 1
        try:
            started = time.monotonic()
            open_session(plan)
        except UnreachableError as err:
            code = 0 if err.reason_code == "refused" and time.monotonic() - started < 4 else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child never finished its login")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
