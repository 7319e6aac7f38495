"""kea-db init on real servers: build, nothing to do, every refusal, concurrency, SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from servers import FreshDatabase

from keadb_cli.errors import ExitCode
from keadb_cli.schema.catalog import Catalog, assert_same_catalog, read_catalog

pytestmark = pytest.mark.db

SCHEMA = {"mysql": "14.0", "postgresql": "13.0"}


def cli_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = password
    return env


def argv(db: FreshDatabase, command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "keadb_cli", command, "--type", db.type, "--host", db.host,
            "--port", str(db.port), "--user", db.user, "--name", db.name, *extra]


def kea_db(db: FreshDatabase, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv(db, command, *extra), capture_output=True, text=True,
                          env=cli_env(db.password), timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert db.password not in proc.stdout + proc.stderr
    return proc


def init_json(db: FreshDatabase, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "init", "--kea-version", "2.2", "--json", *extra)
    doc = json.loads(proc.stdout)
    assert doc["format"] == 1 and len(doc["results"]) == 1
    result: dict[str, Any] = doc["results"][0]
    assert result["exit_code"] == proc.returncode
    return proc.returncode, result


def connect(db: FreshDatabase) -> Any:
    if db.type == "postgresql":
        import psycopg

        return psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                               dbname=db.name, sslmode="disable", autocommit=True)
    import pymysql

    return pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, ssl_disabled=True, autocommit=True)


def catalog(db: FreshDatabase) -> Catalog:
    conn = connect(db)
    try:
        return read_catalog(conn, db.type)
    finally:
        conn.close()


def object_count(db: FreshDatabase) -> int:
    c = catalog(db)
    return len(c.tables) + len(c.routines) + len(c.triggers)


def version_verdict(db: FreshDatabase) -> str:
    proc = kea_db(db, "check-version", "--kea-version", "2.2", "--json")
    verdict: str = json.loads(proc.stdout)["results"][0]["verdict"]
    return verdict


def test_init_builds_then_nothing_to_do(fresh_db: FreshDatabase) -> None:
    code, result = init_json(fresh_db)
    assert (code, result["action"], result["verdict"]) == (0, "initialized", "EMPTY")
    assert result["schema"] == SCHEMA[fresh_db.type]
    assert version_verdict(fresh_db) == "MATCH"
    built = catalog(fresh_db)
    assert not any(t.name == "alembic_version" for t in built.tables)
    code, result = init_json(fresh_db)
    assert (code, result["action"], result["verdict"]) == (0, "none", "MATCH")
    assert_same_catalog(built, catalog(fresh_db), labels=("first", "second"))


def test_init_human_output(fresh_db: FreshDatabase) -> None:
    proc = kea_db(fresh_db, "init", "--kea-version", "2.2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Schema for --kea-version 2.2"
    assert lines[1].split()[:3] == ["ACTION", "FOUND", "BACKEND"]
    assert lines[2].split()[:2] == ["initialized", "EMPTY"]


def test_refuses_readonly_backend(fresh_db: FreshDatabase) -> None:
    code, result = init_json(fresh_db, "--readonly")
    assert code == ExitCode.READONLY and result["action"] == "refused"
    assert "readonly" in result["detail"]
    assert object_count(fresh_db) == 0


def test_refuses_release_not_covered(fresh_db: FreshDatabase) -> None:
    # Kea 2.0's schemas (MySQL 12.0, PostgreSQL 6.2) come before the first revision.
    proc = kea_db(fresh_db, "init", "--kea-version", "2.0", "--json")
    result = json.loads(proc.stdout)["results"][0]
    assert proc.returncode == ExitCode.UNSUPPORTED_RELEASE
    old = {"mysql": "MySQL schema 12.0", "postgresql": "PostgreSQL schema 6.2"}[fresh_db.type]
    assert f"cannot build {old}," in result["detail"]
    assert SCHEMA[fresh_db.type] in result["detail"]
    assert object_count(fresh_db) == 0


def _as_owner(db: FreshDatabase, statement: str) -> None:
    if db.type == "postgresql":
        statement = f'SET ROLE "{db.user}"; {statement}'
    db.server.sql(statement, database=db.name)


def test_refuses_foreign_database(fresh_db: FreshDatabase) -> None:
    _as_owner(fresh_db, "CREATE TABLE customers (id INT)")
    before = catalog(fresh_db)
    code, result = init_json(fresh_db)
    assert code == ExitCode.NOT_EMPTY and result["verdict"] == "FOREIGN"
    assert "customers" in result["detail"]
    assert_same_catalog(before, catalog(fresh_db), labels=("before", "after"))


def test_refuses_partial_kea_schema(fresh_db: FreshDatabase) -> None:
    _as_owner(fresh_db, "CREATE TABLE lease4 (address INT)")
    _as_owner(fresh_db, "CREATE TABLE hosts (host_id INT)")
    before = catalog(fresh_db)
    code, result = init_json(fresh_db)
    assert code == ExitCode.PARTIAL and result["verdict"] == "FOREIGN"
    assert "interrupted init" in result["detail"]
    assert_same_catalog(before, catalog(fresh_db), labels=("before", "after"))


@pytest.mark.parametrize(("shift", "verdict", "code"),
                         [(-1, "BEHIND", ExitCode.BEHIND), (1, "AHEAD", ExitCode.AHEAD)])
def test_refuses_other_schema_versions(
    fresh_db: FreshDatabase, shift: int, verdict: str, code: ExitCode
) -> None:
    assert init_json(fresh_db)[0] == 0
    major = int(SCHEMA[fresh_db.type].split(".")[0]) + shift
    _as_owner(fresh_db, f"UPDATE schema_version SET version = {major}")
    before = catalog(fresh_db)
    rc, result = init_json(fresh_db)
    assert rc == code and result["verdict"] == verdict and result["action"] == "refused"
    if verdict == "BEHIND":
        assert "never upgrades" in result["detail"]
    assert_same_catalog(before, catalog(fresh_db), labels=("before", "after"))


def test_refuses_without_privileges(
    fresh_db: FreshDatabase, fresh_db_factory: Any
) -> None:
    server = fresh_db.server
    if fresh_db.type == "postgresql":
        # A database the user does not own: PostgreSQL 15 gives it no CREATE on public.
        server.sql(f'ALTER DATABASE "{fresh_db.name}" OWNER TO postgres')
        server.sql(f'REVOKE ALL ON DATABASE "{fresh_db.name}" FROM "{fresh_db.user}"')
        server.sql(f'GRANT CONNECT ON DATABASE "{fresh_db.name}" TO "{fresh_db.user}"')
        fragment = "GRANT CREATE ON SCHEMA"
    else:
        server.sql(f"REVOKE ALL PRIVILEGES ON `{fresh_db.name}`.* FROM '{fresh_db.user}'@'%'")
        server.sql(f"GRANT SELECT, INSERT, CREATE ON `{fresh_db.name}`.* "
                   f"TO '{fresh_db.user}'@'%'")
        fragment = "TRIGGER"
    code, result = init_json(fresh_db)
    assert code == ExitCode.PRIVILEGES, result
    assert fragment in result["detail"]
    assert object_count(fresh_db) == 0


@pytest.mark.kea
def test_eight_concurrent_inits(fresh_db: FreshDatabase, fresh_db_factory: Any) -> None:
    """One builds; the others find MATCH after the lock (or time out); the result is the
    schema kea-admin builds."""
    from kea_admin import kea_admin_init

    procs = [
        subprocess.Popen(argv(fresh_db, "init", "--kea-version", "2.2", "--json"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cli_env(fresh_db.password))
        for _ in range(8)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert "Traceback" not in err, err
        assert fresh_db.password not in out + err
        outcomes.append((p.returncode, json.loads(out)["results"][0]))
    actions = sorted(r["action"] for _, r in outcomes)
    assert actions.count("initialized") == 1, outcomes
    for code, r in outcomes:
        assert (code, r["action"]) in ((0, "initialized"), (0, "none"),
                                       (ExitCode.LOCKED, "refused")), r
    assert version_verdict(fresh_db) == "MATCH"
    reference = fresh_db_factory(fresh_db.server)
    kea_admin_init(reference.type, reference.host, reference.port, reference.user,
                   reference.password, reference.name)
    assert_same_catalog(catalog(reference), catalog(fresh_db), labels=("kea-admin", "8 inits"),
                        ignore={"body_hash"})


def test_lock_timeout(fresh_db: FreshDatabase) -> None:
    """A held lock makes init give up after --lock-timeout, with nothing touched."""
    from keadb_cli.db.backends import backend_for
    from keadb_cli.db.plan import plan_for
    from keadb_cli.db.session import open_session
    from keadb_cli.kea.access import DbAccess

    plan = plan_for(DbAccess(type=fresh_db.type, host=fresh_db.host, port=fresh_db.port,
                             user=fresh_db.user, password=fresh_db.password,
                             name=fresh_db.name), env={})
    holder = open_session(plan)
    try:
        backend = backend_for(fresh_db.type)
        rows = holder.query(backend.lock_sql.format(seconds=5))
        if fresh_db.type == "mysql":
            assert rows == [("1",)]  # GET_LOCK got it (0 would be a failed lock)
        else:  # pg_advisory_lock returns nothing: ask the server who holds what
            held = fresh_db.server.sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            assert held[0][0] == 1
        started = time.monotonic()
        code, result = init_json(fresh_db, "--lock-timeout", "1")
        waited = time.monotonic() - started
        assert code == ExitCode.LOCKED and result["action"] == "refused"
        assert "--lock-timeout" in result["detail"]
        assert 1.0 <= waited < 30, waited  # it really waited for the lock, then gave up
        assert object_count(fresh_db) == 0
    finally:
        holder.close()


class StallingProxy:
    """A loopback TCP proxy between init and the server that stops passing the server's
    answers once the client has sent ``stall_after`` bytes: init then waits, mid-build,
    for as long as the test wants."""

    def __init__(self, port: int, stall_after: int) -> None:
        import socket
        import threading

        self.target, self.stall_after = port, stall_after
        self.sent = 0
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for args in ((client, server, True), (server, client, False)):
                t = threading.Thread(target=self._pipe, args=args, daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: Any, dst: Any, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client:
                    self.sent += len(data)
                elif self.sent >= self.stall_after:
                    self.stalled.set()
                    return  # hold every answer from here on: the client waits
                dst.sendall(data)
        except OSError:
            pass
        if from_client:  # the client is gone (killed): end its server session too
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.listener.close()


def test_sigkill_during_init_never_leaves_match(fresh_db: FreshDatabase) -> None:
    # MySQL: stall after some 20 kB of statements (tables exist, the version row does not).
    # PostgreSQL: stall once the whole script has gone in, before COMMIT is sent.
    proxy = StallingProxy(fresh_db.port, 20_000 if fresh_db.type == "mysql" else 60_000)
    cmd = argv(fresh_db, "init", "--kea-version", "2.2")
    cmd[cmd.index("--port") + 1] = str(proxy.port)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=cli_env(fresh_db.password))
    try:
        assert proxy.stalled.wait(60), "init never reached the stall point"
        if fresh_db.type == "mysql":
            built = fresh_db.server.sql(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                params=(fresh_db.name,))[0][0]
            assert built > 3  # a partial schema really is there
        else:  # the whole build ran and waits, uncommitted, in init's transaction
            held = fresh_db.server.sql(
                "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE d.datname = %s AND l.mode = 'AccessExclusiveLock'",
                params=(fresh_db.name,))[0][0]
            assert held > 50
        assert proc.poll() is None, "init finished although its answers were held"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proxy.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the server has ended the dead session
        verdict = version_verdict(fresh_db)
        if fresh_db.type == "mysql" or verdict == "EMPTY":
            break
        time.sleep(0.1)
    assert verdict == ("EMPTY" if fresh_db.type == "postgresql" else "FOREIGN")
    if fresh_db.type == "mysql":
        code, result = init_json(fresh_db)
        assert code == ExitCode.PARTIAL and "interrupted init" in result["detail"]


def test_sql_needs_type(capsys: pytest.CaptureFixture[str]) -> None:
    from keadb_cli.cli.main import main

    assert main(["init", "--sql", "--kea-version", "2.2"]) == ExitCode.SETTINGS
    assert "give --type" in capsys.readouterr().err
    assert main(["init", "--sql", "--type", "mysql", "--kea-version", "2.0"]) == (
        ExitCode.UNSUPPORTED_RELEASE
    )


def test_sql_output_loads_with_the_native_client(
    fresh_db: FreshDatabase, fresh_db_factory: Any, tmp_path: Any
) -> None:
    """`init --sql` loaded with plain `psql -f` / `mariadb <` builds what init builds."""
    script = tmp_path / "kea.sql"
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "init", "--sql", "--type", fresh_db.type,
         "--kea-version", "2.2"], capture_output=True, text=True, check=True,
        env=cli_env(""))
    script.write_text(proc.stdout)
    if fresh_db.type == "postgresql":
        load = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", fresh_db.host, "-p",
             str(fresh_db.port), "-U", fresh_db.user, "-d", fresh_db.name, "-f", str(script)],
            capture_output=True, text=True, env={**cli_env(""), "PGPASSWORD": fresh_db.password},
            check=False)
    else:
        with open(script) as fh:
            load = subprocess.run(
                ["mariadb", "--no-defaults", "-h", fresh_db.host, "-P", str(fresh_db.port),
                 "-u", fresh_db.user, f"-p{fresh_db.password}", fresh_db.name],
                stdin=fh, capture_output=True, text=True, check=False)
    assert load.returncode == 0, load.stderr[-2000:]
    assert version_verdict(fresh_db) == "MATCH"
    reference = fresh_db_factory(fresh_db.server)
    assert init_json(reference)[0] == 0
    assert_same_catalog(catalog(reference), catalog(fresh_db), labels=("init", "--sql"))


@pytest.mark.kea
def test_init_builds_what_kea_admin_builds(
    fresh_db: FreshDatabase, fresh_db_factory: Any
) -> None:
    """The fidelity proof on the path init really takes (rendered script, wire client)."""
    from kea_admin import kea_admin_init

    assert init_json(fresh_db)[0] == 0
    reference = fresh_db_factory(fresh_db.server)
    kea_admin_init(reference.type, reference.host, reference.port, reference.user,
                   reference.password, reference.name)
    # Routine and trigger bodies are our own text (their behaviour is compared by the
    # workload tests in test_migrate_*.py); everything else must be identical.
    assert_same_catalog(catalog(reference), catalog(fresh_db), labels=("kea-admin", "kea-db"),
                        ignore={"body_hash"})


def test_init_builds_what_alembic_online_mode_builds(
    fresh_db: FreshDatabase, fresh_db_factory: Any
) -> None:
    """init runs alembic's offline rendering; it must equal the online migration exactly,
    routine bodies included."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from keadb_cli.schema import migrate

    assert init_json(fresh_db)[0] == 0
    online = fresh_db_factory(fresh_db.server)
    conn = connect(online)
    if online.type == "postgresql":
        conn.autocommit = False
        driver = "postgresql+psycopg"
    else:
        driver = "mysql+pymysql"
    engine = create_engine(f"{driver}://", creator=lambda: conn, poolclass=StaticPool)
    with engine.connect() as sa_conn, sa_conn.begin():
        migrate.upgrade(sa_conn, online.type, "mysql_14_0" if online.type == "mysql"
                        else "pgsql_13_0")
    engine.dispose()
    assert_same_catalog(catalog(online), catalog(fresh_db), labels=("online", "init"))


def test_refuses_binary_logging_without_trust_function_creators(
    mysql_server_factory: Any, fresh_db_factory: Any, mysql_flavor: str
) -> None:
    """With binary logging on, a user without SUPER cannot create Kea's triggers and
    routines: init says so before creating anything (kea-admin finds out half-way)."""
    server = mysql_server_factory(tls="off", flavor=mysql_flavor, extra_args=(
        "--log-bin=binlog", "--log-bin-trust-function-creators=0", "--server-id=1"))
    db = fresh_db_factory(server)
    assert server.sql("SELECT @@log_bin, @@log_bin_trust_function_creators")[0] == (1, 0)
    code, result = init_json(db)
    assert code == ExitCode.PRIVILEGES, result
    assert "log_bin_trust_function_creators" in result["detail"]
    assert object_count(db) == 0
    # The refusal is not a false alarm: this user really cannot create a trigger here.
    import pymysql

    conn = connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE probe (id INT)")
            with pytest.raises(pymysql.err.OperationalError) as err:
                cur.execute("CREATE TRIGGER probe_ai AFTER INSERT ON probe FOR EACH ROW "
                            "SET @x = 1")
            assert err.value.args[0] == 1419  # "You do not have the SUPER privilege ..."
    finally:
        conn.close()
