"""check-version end to end on real throw-away PostgreSQL and MariaDB servers.

Every verdict on both backends, through the real entry point (``python -m keadb_cli``) with
the password in KEA_DB_PASSWORD, as a pipeline would run it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from servers import FreshDatabase

from keadb_cli.errors import ExitCode

pytestmark = pytest.mark.db


def run_cli(
    db: FreshDatabase, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = db.password if password is None else password
    base = ["--type", db.type, "--host", db.host, "--port", str(db.port),
            "--user", db.user, "--name", db.name]
    return subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", *base, *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def verdict_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["format"] == 1
    assert len(doc["results"]) == 1
    result: dict[str, Any] = doc["results"][0]
    return result


def sql_as_owner(db: FreshDatabase, *statements: str) -> None:
    """Run statements as the database's own user (PostgreSQL: SET ROLE), so the objects
    belong to it as they would after kea-admin."""
    for statement in statements:
        if db.type == "postgresql":
            statement = f'SET ROLE "{db.user}"; {statement}'
        db.server.sql(statement, database=db.name)


@pytest.fixture
def kea_admin_db(fresh_db: FreshDatabase) -> FreshDatabase:
    """A database built by Debian's `kea-admin db-init` 2.2.0."""
    from kea_admin import kea_admin_init

    kea_admin_init(fresh_db.type, fresh_db.host, fresh_db.port, fresh_db.user,
                   fresh_db.password, fresh_db.name)
    return fresh_db


@pytest.mark.kea
@pytest.mark.parametrize(
    ("release", "verdict", "code"),
    [("2.2", "MATCH", ExitCode.OK), ("2.2.1", "MATCH", ExitCode.OK),
     ("2.6", "BEHIND", ExitCode.BEHIND), ("2.0", "AHEAD", ExitCode.AHEAD)],
)
def test_kea_admin_2_2_database(
    kea_admin_db: FreshDatabase, release: str, verdict: str, code: ExitCode
) -> None:
    proc = run_cli(kea_admin_db, "--kea-version", release, "--json")
    result = verdict_of(proc)
    assert result["verdict"] == verdict
    assert proc.returncode == code
    found = "14.0" if kea_admin_db.type == "mysql" else "13.0"
    assert result["found"] == found
    expected = {
        ("mysql", "2.2"): "14.0", ("mysql", "2.2.1"): "14.0", ("mysql", "2.6"): "22.2",
        ("mysql", "2.0"): "12.0", ("postgresql", "2.2"): "13.0",
        ("postgresql", "2.2.1"): "13.0", ("postgresql", "2.6"): "22.2",
        ("postgresql", "2.0"): "6.2",
    }[(kea_admin_db.type, release)]
    assert result["expected"] == expected
    assert result["type"] == kea_admin_db.type
    assert result["host"] == kea_admin_db.host
    assert result["name"] == kea_admin_db.name


@pytest.mark.kea
def test_expect_overrides_the_map_and_human_output_is_plain_when_piped(
    kea_admin_db: FreshDatabase,
) -> None:
    found = "14.0" if kea_admin_db.type == "mysql" else "13.0"
    proc = run_cli(kea_admin_db, "--kea-version", "2.0", "--expect", found)
    assert proc.returncode == ExitCode.OK, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Expected schema from --expect (with --kea-version 2.0.3)"
    assert lines[1].split()[:3] == ["VERDICT", "BACKEND", "DATABASE"]
    assert lines[2].split()[0] == "MATCH"
    assert "\x1b[" not in proc.stdout


def test_empty_database(fresh_db: FreshDatabase) -> None:
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json")
    result = verdict_of(proc)
    assert result["verdict"] == "EMPTY"
    assert proc.returncode == ExitCode.EMPTY
    assert result["found"] is None


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_an_unset_port_is_the_client_librarys_environment_port(fresh_db: FreshDatabase) -> None:
    """Kea sends no port when ``port`` is unset, so libpq takes PGPORT and libmariadb
    MYSQL_TCP_PORT: kea-db reaches the same server; a port list is refused (SETTINGS)."""
    variable = "PGPORT" if fresh_db.type == "postgresql" else "MYSQL_TCP_PORT"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEA_DB_", "PG", "MYSQL_"))}
    env["KEA_DB_PASSWORD"] = fresh_db.password
    base = [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
            "--host", fresh_db.host, "--user", fresh_db.user, "--name", fresh_db.name,
            "--kea-version", "2.2", "--json"]
    proc = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False,
                          env={**env, variable: str(fresh_db.port)})
    result = verdict_of(proc)
    assert (result["verdict"], result["port"]) == ("EMPTY", fresh_db.port), proc.stdout

    proc = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False,
                          env={**env, variable: f"{fresh_db.port},5433"})
    assert proc.returncode == ExitCode.SETTINGS, proc.stderr
    assert f"{variable} is a list of ports" in proc.stderr and "Traceback" not in proc.stderr


def test_check_version_writes_nothing(fresh_db: FreshDatabase) -> None:
    proc = run_cli(fresh_db, "--kea-version", "2.2")
    assert proc.returncode == ExitCode.EMPTY, proc.stderr
    if fresh_db.type == "postgresql":
        rows = fresh_db.server.sql(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'", database=fresh_db.name)
    else:
        rows = fresh_db.server.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            database=fresh_db.name, params=(fresh_db.name,))
    assert rows[0][0] == 0


def _schema_version_table(column_type: str) -> str:
    return f"CREATE TABLE schema_version (version {column_type}, minor {column_type})"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (["CREATE TABLE hosts (id INT)"], "tables but no schema_version table"),
        ([_schema_version_table("INT")], "no row"),
        ([_schema_version_table("INT"),
          "INSERT INTO schema_version VALUES (14, 0)",
          "INSERT INTO schema_version VALUES (13, 0)"], "2 rows"),
        ([_schema_version_table("INT"),
          "INSERT INTO schema_version VALUES (NULL, 0)"], "version is NULL"),
        ([_schema_version_table("INT"),
          "INSERT INTO schema_version VALUES (14, NULL)"], "minor is NULL"),
        ([_schema_version_table("VARCHAR(20)"),
          "INSERT INTO schema_version VALUES ('fourteen', '0')"], "not two integers"),
        ([_schema_version_table("VARCHAR(20)"),
          "INSERT INTO schema_version VALUES ('14.0', '')"], "not two integers"),
    ],
    ids=["other-tables", "no-row", "two-rows", "null-version", "null-minor", "garbage",
         "garbage-2"],
)
def test_foreign(fresh_db: FreshDatabase, setup: list[str], fragment: str) -> None:
    sql_as_owner(fresh_db, *setup)
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json")
    result = verdict_of(proc)
    assert result["verdict"] == "FOREIGN"
    assert proc.returncode == ExitCode.FOREIGN
    assert fragment in result["detail"]
    assert "\n" not in result["detail"]


def test_foreign_routines_without_tables(fresh_db: FreshDatabase) -> None:
    if fresh_db.type == "postgresql":
        sql_as_owner(fresh_db, "CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    else:
        sql_as_owner(fresh_db, "CREATE PROCEDURE leftover() SELECT 1")
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json")
    result = verdict_of(proc)
    assert result["verdict"] == "FOREIGN"
    assert "routines" in result["detail"]
    assert proc.returncode == ExitCode.FOREIGN


def test_denied_wrong_password(fresh_db: FreshDatabase) -> None:
    wrong = "Wrong-Password-0xC0FFEE"
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json", password=wrong)
    result = verdict_of(proc)
    assert result["verdict"] == "DENIED"
    assert proc.returncode == ExitCode.DENIED
    assert wrong not in proc.stdout + proc.stderr


def test_denied_unknown_database(fresh_db: FreshDatabase) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = fresh_db.password
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
         "--host", fresh_db.host, "--port", str(fresh_db.port), "--user", fresh_db.user,
         "--name", fresh_db.name + "_missing", "--kea-version", "2.2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    result = verdict_of(proc)
    assert result["verdict"] == "DENIED"
    assert proc.returncode == ExitCode.DENIED


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_wait_for_a_database_created_after_the_start(fresh_db: FreshDatabase) -> None:
    """DENIED ``unknown-database`` heals when the database appears (a standby replaying its
    creation, a provisioning step): --wait reads again; without --wait it is final."""
    fresh_db.server.drop_database(fresh_db.name)  # the user stays
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json")
    result = verdict_of(proc)
    assert (result["verdict"], result["reason_code"]) == ("DENIED", "unknown-database")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = fresh_db.password
    waiting = subprocess.Popen(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
         "--host", fresh_db.host, "--port", str(fresh_db.port), "--user", fresh_db.user,
         "--name", fresh_db.name, "--kea-version", "2.2", "--json", "--wait-timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(2.0)
        fresh_db.server.create_database(fresh_db.name)
        stdout, stderr = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert "Traceback" not in stderr, stderr
    result = json.loads(stdout)["results"][0]
    assert result["verdict"] == "EMPTY", result
    assert result["wait"]["waited_for"] == "database" and result["wait"]["attempts"] > 1
    assert not result["wait"]["gave_up"]
    assert waiting.returncode == ExitCode.EMPTY


def test_denied_without_privilege_on_schema_version(fresh_db: FreshDatabase) -> None:
    server = fresh_db.server
    if fresh_db.type == "postgresql":
        server.sql("CREATE SCHEMA kea_admin_only", database=fresh_db.name)
        server.sql("CREATE TABLE kea_admin_only.schema_version (version INT, minor INT)",
                   database=fresh_db.name)
        server.sql(f'ALTER ROLE "{fresh_db.user}" SET search_path = kea_admin_only',
                   database=fresh_db.name)
        server.sql(f'GRANT USAGE ON SCHEMA kea_admin_only TO "{fresh_db.user}"',
                   database=fresh_db.name)
    else:
        server.sql(f"CREATE TABLE `{fresh_db.name}`.schema_version (version INT, minor INT)")
        server.sql(f"REVOKE ALL PRIVILEGES ON `{fresh_db.name}`.* FROM '{fresh_db.user}'@'%'")
        server.sql(f"GRANT USAGE ON *.* TO '{fresh_db.user}'@'%'")
        server.sql(f"GRANT SELECT (minor) ON `{fresh_db.name}`.schema_version "
                   f"TO '{fresh_db.user}'@'%'")
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json")
    result = verdict_of(proc)
    assert result["verdict"] == "DENIED", result
    assert proc.returncode == ExitCode.DENIED


def test_unreachable_refused(fresh_db: FreshDatabase) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
         "--host", "127.0.0.1", "--port", str(port), "--name", "kea",
         "--kea-version", "2.2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    result = verdict_of(proc)
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "refused"
    assert str(port) in result["detail"] or "127.0.0.1" in result["detail"]
    assert proc.returncode == ExitCode.UNREACHABLE


def test_unreachable_unknown_host() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", "postgresql",
         "--host", "no-such-host.invalid", "--name", "kea", "--kea-version", "2.2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    result = verdict_of(proc)
    assert result["verdict"] == "UNREACHABLE"
    assert proc.returncode == ExitCode.UNREACHABLE


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for c in held:
        c.close()
    listener.close()


@pytest.mark.parametrize("db_type", ["mysql", "postgresql"])
def test_unreachable_timeout_honours_connect_timeout(silent_server: int, db_type: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", db_type,
         "--host", "127.0.0.1", "--port", str(silent_server), "--name", "kea",
         "--connect-timeout", "1", "--kea-version", "2.2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    elapsed = time.monotonic() - started
    result = verdict_of(proc)
    assert result["verdict"] == "UNREACHABLE"
    # libpq says "timeout expired"; libmariadb "Lost connection ... reading initial
    # communication packet" once its connect timeout ends the wait for the greeting.
    assert result["reason_code"] in ("timeout", "connection-lost"), result
    assert proc.returncode == ExitCode.UNREACHABLE
    assert elapsed < 10


def test_tls_session_is_reported(fresh_db: FreshDatabase, tls_material: Any) -> None:
    proc = run_cli(fresh_db, "--kea-version", "2.2", "--json",
                   "--trust-anchor", str(tls_material.ca_cert))
    result = verdict_of(proc)
    assert result["verdict"] == "EMPTY"
    assert result["tls"] and result["tls"].startswith("TLSv1.")
    assert result["warnings"] == []


def test_worst_verdict_decides_over_several_results() -> None:
    from keadb_cli.commands.check_version import Verdict, worst

    assert worst([Verdict.MATCH, Verdict.EMPTY]) is Verdict.EMPTY
    assert worst([Verdict.BEHIND, Verdict.AHEAD, Verdict.MATCH]) is Verdict.AHEAD
    assert worst([Verdict.FOREIGN, Verdict.UNREACHABLE, Verdict.DENIED]) is Verdict.UNREACHABLE
    assert [v.exit_code for v in Verdict] == [0, 12, 10, 11, 13, 21, 20]


def test_password_never_appears_in_any_output(fresh_db: FreshDatabase) -> None:
    """Human, JSON, DENIED and UNREACHABLE outputs, with the password in the environment."""
    secret = fresh_db.password
    outputs = []
    for extra in ([], ["--json"]):
        outputs.append(run_cli(fresh_db, "--kea-version", "2.2", *extra))
        outputs.append(run_cli(fresh_db, "--kea-version", "2.2", *extra,
                               password=secret + "x"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = secret
    outputs.append(subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
         "--host", "127.0.0.1", "--port", "1", "--user", fresh_db.user, "--name", "x",
         "--kea-version", "2.2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False))
    outputs.append(subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", fresh_db.type,
         "--port", "99999", "--user", fresh_db.user, "--name", "x", "--kea-version", "2.2"],
        capture_output=True, text=True, env=env, timeout=60, check=False))
    codes = {p.returncode for p in outputs}
    assert codes >= {ExitCode.EMPTY, ExitCode.DENIED, ExitCode.UNREACHABLE, ExitCode.SETTINGS}
    for proc in outputs:
        assert secret not in proc.stdout
        assert secret not in proc.stderr
        assert "Traceback" not in proc.stderr
