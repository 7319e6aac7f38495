"""The read deadline (issue 21): a command that only reads gives each statement a deadline
derived from the connection's own settings (2 x connect-timeout; MySQL: read-timeout when
larger) instead of the 60 s statement default, unless --statement-timeout is set; the
message names the deadline that ended the session. init and upgrade keep the long default.

Hostile servers are the fakes of tests/fakes.py (as tests/test_hostile.py uses them); the
sleeping ``schema_version`` view runs on real PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fakes import FakeServer
from servers import FreshDatabase, add_sleeping_version_view

from keadb_cli.db.plan import plan_for
from keadb_cli.kea.access import DEFAULT_STATEMENT_TIMEOUT, DbAccess

db = pytest.mark.db

PASSWORD = "s3cret-Kea-password"
READ_DEADLINE_3 = "no answer within 6 s (the read deadline: 2 x connect-timeout; set " \
                  "--statement-timeout to wait longer)"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    env["KEA_DB_PASSWORD"] = PASSWORD
    env.update(extra)
    return env


def _run(*args: str, env: dict[str, str] | None = None,
         timeout: float = 40) -> tuple[subprocess.CompletedProcess[str], float]:
    """The CLI as a child process, and the seconds it took."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=env or _env(), timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, elapsed


def _fake_target(server: FakeServer, *extra: str) -> list[str]:
    return ["--type", server.flavor, "--host", server.host, "--port", str(server.port),
            "--user", "kea", "--name", "kea", "--json", *extra]


def _result(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.stdout, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert len(results) == 1
    return dict(results[0])


# -- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "seconds", "source"), [
    ({"type": "postgresql"}, 10, "2 x connect-timeout"),  # Kea's default connect-timeout 5
    ({"type": "postgresql", "connect_timeout": 3}, 6, "2 x connect-timeout"),
    # libpq has no read timeout: Kea's PostgreSQL backend does not use read-timeout.
    ({"type": "postgresql", "connect_timeout": 3, "read_timeout": 30}, 6,
     "2 x connect-timeout"),
    ({"type": "mysql", "connect_timeout": 3}, 6, "2 x connect-timeout"),
    ({"type": "mysql", "connect_timeout": 3, "read_timeout": 4}, 6, "2 x connect-timeout"),
    ({"type": "mysql", "connect_timeout": 3, "read_timeout": 30}, 30, "read-timeout"),
])
def test_read_deadline_comes_from_the_connection_settings(
    entry: dict[str, object], seconds: float, source: str
) -> None:
    plan = plan_for(DbAccess(name="kea", **entry), env={})  # type: ignore[arg-type]
    assert plan.statement_timeout == DEFAULT_STATEMENT_TIMEOUT  # what init and upgrade use
    assert plan.deadline == "--statement-timeout"
    reads = plan.for_reads()
    assert reads.statement_timeout == seconds
    assert reads.deadline == (f"the read deadline: {source}; set --statement-timeout to "
                              "wait longer")
    options = reads.libpq_params()["options"]  # the server's side of it (PostgreSQL)
    assert options.endswith(f"statement_timeout={int(seconds * 1000)}")


@pytest.mark.parametrize("statement_timeout", [1.0, 60.0, 300.0])
def test_an_explicit_statement_timeout_wins(statement_timeout: float) -> None:
    access = DbAccess(type="mysql", name="kea", connect_timeout=3, read_timeout=30,
                      statement_timeout=statement_timeout)
    plan = plan_for(access, env={})
    assert plan.for_reads() == plan
    assert plan.statement_timeout == statement_timeout
    assert plan.deadline == "--statement-timeout"


# -- a server that stalls after the login ---------------------------------------------------


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_stalled_check_version_ends_at_the_read_deadline(flavor: str) -> None:
    with FakeServer(flavor, "accept_then_stall", trigger=b"schema_version") as server:
        proc, elapsed = _run("check-version", *_fake_target(server, "--expect", "13.0",
                                                            "--connect-timeout", "3"))
        assert server.wait_for("stall", timeout=1)
    result = _result(proc)
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "statement-timeout"
    assert proc.returncode == 20
    assert READ_DEADLINE_3 in str(result["detail"]), result["detail"]
    # 6 s read deadline + kea-db's 2 s grace + the cancel; the statement default is 60 s.
    assert 6 <= elapsed < 12, elapsed


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_stalled_test_tls_session_ends_at_the_read_deadline(flavor: str) -> None:
    """test-tls reads the session's TLS state (pg_stat_ssl, MySQL's Ssl_* status) on the
    session it opened: that read stalls."""
    with FakeServer(flavor, "accept_then_stall", trigger=b"ssl") as server:
        proc, elapsed = _run("test-tls", *_fake_target(server, "--connect-timeout", "3"))
        assert server.wait_for("stall", timeout=1)
    result = _result(proc)
    session = result["session"]
    assert isinstance(session, dict)
    assert session["failure"] == "query"
    assert READ_DEADLINE_3 in str(session["error"]), session
    assert 6 <= elapsed < 12, elapsed


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_explicit_statement_timeout_governs_a_stalled_read(flavor: str) -> None:
    with FakeServer(flavor, "accept_then_stall", trigger=b"schema_version") as server:
        proc, elapsed = _run("check-version", *_fake_target(
            server, "--expect", "13.0", "--connect-timeout", "3", "--statement-timeout", "1"))
    result = _result(proc)
    assert result["reason_code"] == "statement-timeout"
    assert proc.returncode == 20
    assert "no answer within 1 s (--statement-timeout);" in str(result["detail"])
    assert elapsed < 6, elapsed  # before the 6 s read deadline: the option won


@pytest.mark.parametrize("env_var", [False, True])
def test_statement_timeout_variable_governs_too(env_var: bool) -> None:
    """KEA_DB_STATEMENT_TIMEOUT is the option's variable: set, it wins over the read
    deadline as the option does; unset, the read deadline applies."""
    with FakeServer("postgresql", "accept_then_stall", trigger=b"schema_version") as server:
        env = _env(KEA_DB_STATEMENT_TIMEOUT="1") if env_var else _env()
        proc, _ = _run("check-version", *_fake_target(server, "--expect", "13.0",
                                                      "--connect-timeout", "3"), env=env)
    detail = str(_result(proc)["detail"])
    if env_var:
        assert "no answer within 1 s (--statement-timeout)" in detail, detail
    else:
        assert READ_DEADLINE_3 in detail, detail


@pytest.mark.parametrize("command", ["init", "upgrade"])
@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_init_and_upgrade_keep_the_long_statement_default(command: str, flavor: str) -> None:
    """init and upgrade run every statement with the long default (60 s, upgrade 6 h):
    against a server that stalls the first statement, each is still waiting well after
    the read deadline (2 x connect-timeout 1 = 2 s, + 2 s grace) would have ended it."""
    with FakeServer(flavor, "accept_then_stall", lifetime=60) as server:
        args = [sys.executable, "-m", "keadb_cli", command,
                *_fake_target(server, "--kea-version", "2.6", "--connect-timeout", "1")]
        if command == "upgrade":
            args.append("--yes")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())
        try:
            assert server.wait_for("stall", timeout=10), server.events
            try:
                out, err = proc.communicate(timeout=8)
            except subprocess.TimeoutExpired:
                pass  # still waiting, as it should
            else:
                pytest.fail(f"{command} ended at {proc.returncode}: {out} {err}")
        finally:
            proc.kill()
            proc.communicate()


# -- a sleeping schema_version view on real servers -----------------------------------------


def _real_target(db: FreshDatabase) -> list[str]:
    return ["--type", db.type, "--host", db.host, "--port", str(db.port), "--user", db.user,
            "--name", db.name, "--expect", "13.0", "--json"]


@db
@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_sleeping_schema_version_ends_at_the_read_deadline(fresh_db: FreshDatabase) -> None:
    """The server ends the statement at the read deadline (kea-db sets it with the login:
    PostgreSQL's statement_timeout, MariaDB's max_statement_time); the message names it."""
    add_sleeping_version_view(fresh_db)
    proc, elapsed = _run("check-version", *_real_target(fresh_db), "--connect-timeout", "2",
                         env=_env(KEA_DB_PASSWORD=fresh_db.password))
    result = _result(proc)
    assert result["verdict"] == "UNREACHABLE", result
    assert result["reason_code"] == "statement-timeout"
    assert proc.returncode == 20
    assert ("(deadline 4 s, the read deadline: 2 x connect-timeout; set --statement-timeout "
            "to wait longer)") in str(result["detail"]), result["detail"]
    assert 4 <= elapsed < 10, elapsed  # 4 s read deadline; the view sleeps 30 s


@db
@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_sleeping_schema_version_with_explicit_statement_timeout(
    fresh_db: FreshDatabase,
) -> None:
    add_sleeping_version_view(fresh_db)
    proc, elapsed = _run("check-version", *_real_target(fresh_db), "--connect-timeout", "2",
                         "--statement-timeout", "1",
                         env=_env(KEA_DB_PASSWORD=fresh_db.password))
    result = _result(proc)
    assert result["reason_code"] == "statement-timeout"
    assert proc.returncode == 20
    assert "(deadline 1 s, --statement-timeout)" in str(result["detail"]), result["detail"]
    assert elapsed < 4, elapsed  # before the 4 s read deadline: the option won
