"""`kea-db preflight`: every entry of every file, in parallel, read-only, on real servers."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase, ci_requires_servers

from keadb_cli.commands.preflight.model import CHECKS
from keadb_cli.errors import ExitCode

pytestmark = pytest.mark.db


def run(*args: str, env_extra: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEA_DB_", "PG", "GITHUB_"))}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def entry(db: FreshDatabase, **extra: Any) -> dict[str, Any]:
    return {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
            "password": db.password, "name": db.name, **extra}


HOOKS = [{"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_mysql.so"},
         {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_pgsql.so"}]


def write(path: Path, server: str, lease: dict[str, Any] | None = None,
          hosts: list[dict[str, Any]] | None = None,
          config_dbs: list[dict[str, Any]] | None = None, *, hooks: bool = True) -> Path:
    """A Kea configuration; ``hooks`` loads the backends' hook libraries (Kea 2.7.4+)."""
    section: dict[str, Any] = {"hooks-libraries": HOOKS} if hooks else {}
    if lease is not None:
        section["lease-database"] = lease
    if hosts:
        section["hosts-databases"] = hosts
    if config_dbs:
        section["config-control"] = {"config-databases": config_dbs}
    path.write_text(json.dumps({server: section}, indent=2))
    return path


def checks(doc: dict[str, Any], path: str, file: Path | None = None) -> dict[str, Any]:
    """{check name: check} of one entry of the JSON report."""
    found = [e for e in doc["entries"]
             if e["path"] == path and (file is None or e["file"] == str(file))]
    assert len(found) == 1, (path, [e["path"] for e in doc["entries"]])
    return {c["check"]: c for c in found[0]["checks"]}


def statuses(doc: dict[str, Any], path: str, file: Path | None = None) -> dict[str, str]:
    return {name: c["status"] for name, c in checks(doc, path, file).items()}


def init(db: FreshDatabase, release: str = "2.2") -> None:
    proc = run("init", "--type", db.type, "--host", db.host, "--port", str(db.port),
               "--user", db.user, "--name", db.name, "--kea-version", release,
               env_extra={"KEA_DB_PASSWORD": db.password})
    assert proc.returncode == 0, proc.stderr


def set_version(db: FreshDatabase, version: int) -> None:
    db.server.sql(f"UPDATE schema_version SET version = {version}", database=db.name)


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) and never says a
    word: a server that is up but hung."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


class Forwarder:
    """A TCP forwarder to a real server, listening only from ``delay`` seconds on (a server
    that is still starting), counting the connections it forwards."""

    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # the port stays free (refused) until the delay is over
        self.target_port = target_port
        self.delay = delay
        self.connections = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def _serve(self) -> None:
        if self._stop.wait(self.delay):
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener = listener
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


# -- sixteen entries, four of them hung ---------------------------------------------------


def test_sixteen_entries_over_both_backends_every_verdict_right(
    tmp_path: Path, pg_server: Any, mysql_server_factory: Any, fresh_db_factory: Any
) -> None:
    maria = mysql_server_factory(tls="on", flavor="mariadb")
    pg_match, pg_empty, pg_ahead, pg_foreign = (fresh_db_factory(pg_server) for _ in range(4))
    my_match, my_behind, my_empty = (fresh_db_factory(maria) for _ in range(3))
    for db in (pg_match, pg_ahead, my_match, my_behind):
        init(db)
    set_version(pg_ahead, 99)
    set_version(my_behind, 13)
    pg_foreign.server.sql("CREATE TABLE operator_notes (id int)", database=pg_foreign.name)
    with silent_listener() as hung_pg, silent_listener() as hung_my:
        hung = {"connect-timeout": 1, "user": "kea", "password": "secret", "name": "kea",
                "host": "127.0.0.1"}
        v4 = write(
            tmp_path / "kea-dhcp4.conf", "Dhcp4", lease=entry(pg_match),
            hosts=[entry(pg_match, readonly=True), entry(pg_empty), entry(my_match),
                   {**entry(my_match), "password": "wrong-password"},
                   {**hung, "type": "postgresql", "port": hung_pg},
                   {**hung, "type": "mysql", "port": hung_my}],
            config_dbs=[entry(my_empty)])
        v6 = write(
            tmp_path / "kea-dhcp6.conf", "Dhcp6", lease=entry(my_behind),
            hosts=[entry(pg_ahead), entry(pg_foreign), entry(my_match),
                   {**hung, "type": "postgresql", "port": hung_pg, "name": "other"},
                   {**hung, "type": "mysql", "port": hung_my, "name": "other"},
                   {**entry(pg_match), "password": "wrong-password"}],
            config_dbs=[entry(pg_match)])
        proc = run("preflight", "--config", str(v4), "--config", str(v6),
                   "--kea-version", "2.2", "--json")
    doc = json.loads(proc.stdout)
    assert len(doc["entries"]) == 16
    hp = "Dhcp4.hosts-databases"
    h6 = "Dhcp6.hosts-databases"
    every = {"config": "pass", "login": "pass", "node": "pass", "schema": "pass",
             "privileges": "pass", "tls": "pass"}
    assert statuses(doc, "Dhcp4.lease-database") == every
    assert statuses(doc, f"{hp}[0]") == every  # readonly, same database: checked once
    assert checks(doc, f"{hp}[0]")["privileges"]["detail"].endswith(
        "may read its tables (readonly hosts backend)")
    empty = checks(doc, f"{hp}[1]")["schema"]
    assert empty["status"] == "fail" and empty["exit_code"] == ExitCode.EMPTY
    assert "before 2.5.6" in empty["detail"]
    assert statuses(doc, f"{hp}[2]")["schema"] == "pass"
    denied = checks(doc, f"{hp}[3]")["login"]
    assert denied["status"] == "fail" and denied["exit_code"] == ExitCode.DENIED
    for path, file in ((f"{hp}[4]", v4), (f"{hp}[5]", v4), (f"{h6}[3]", v6), (f"{h6}[4]", v6)):
        login = checks(doc, path, file)["login"]
        assert login["status"] == "fail", (path, login)
        assert login["exit_code"] == ExitCode.UNREACHABLE, (path, login)
        # libmariadb reports a greeting that never comes as a lost connection (2013)
        assert login["reason_code"] in ("timeout", "connection-lost"), (path, login)
        assert statuses(doc, path, file)["schema"] == "skip"
    assert checks(doc, "Dhcp4.config-control.config-databases[0]")["schema"]["exit_code"] == (
        ExitCode.EMPTY)
    behind = checks(doc, "Dhcp6.lease-database")["schema"]
    assert behind["exit_code"] == ExitCode.BEHIND and "schema 13.0" in behind["detail"]
    assert checks(doc, f"{h6}[0]")["schema"]["exit_code"] == ExitCode.AHEAD
    foreign = checks(doc, f"{h6}[1]")["schema"]
    assert foreign["exit_code"] == ExitCode.FOREIGN and "operator_notes" in foreign["detail"]
    assert statuses(doc, f"{h6}[2]", v6)["schema"] == "pass"
    assert checks(doc, f"{h6}[5]")["login"]["exit_code"] == ExitCode.DENIED
    assert statuses(doc, "Dhcp6.config-control.config-databases[0]") == every
    # pg_match under the same login: lease, hosts[0] and Dhcp6's config entry share a probe
    shared = [e for e in doc["entries"] if e["checked_with"] == "Dhcp4.lease-database"]
    assert [e["path"] for e in shared] == [f"{hp}[0]"]
    assert [e["checked_with"] for e in doc["entries"]
            if e["path"] == "Dhcp6.config-control.config-databases[0]"] == [
        f"{v4}: Dhcp4.lease-database"]
    # 16 entries, 13 distinct logins (the same database with another password is another)
    assert doc["databases"] == 13
    assert proc.returncode == doc["exit_code"] == ExitCode.UNREACHABLE
    for db in (pg_match, my_match):
        assert db.password not in proc.stdout + proc.stderr


# -- --wait ---------------------------------------------------------------------------------


def test_wait_for_a_server_that_starts_three_seconds_later(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    init(pg_db)
    with Forwarder(pg_db.port, delay=3.0) as late:
        conf = write(tmp_path / "kea.conf", "Dhcp4",
                     lease={**entry(pg_db), "port": late.port, "connect-timeout": 2})
        proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json",
                   "--wait-timeout", "30")
    doc = json.loads(proc.stdout)
    login = checks(doc, "Dhcp4.lease-database")["login"]
    assert login["status"] == "pass" and login["attempts"] > 1, login
    assert checks(doc, "Dhcp4.lease-database")["schema"]["detail"].startswith("MATCH")
    assert proc.returncode == ExitCode.OK, proc.stdout
    # Without --wait the same moment is UNREACHABLE (refused), tried once.
    with Forwarder(pg_db.port, delay=30.0) as never:
        conf = write(tmp_path / "kea.conf", "Dhcp4", lease={**entry(pg_db), "port": never.port})
        proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json")
    login = checks(json.loads(proc.stdout), "Dhcp4.lease-database")["login"]
    assert (login["reason_code"], login["attempts"]) == ("refused", 1)
    assert proc.returncode == ExitCode.UNREACHABLE


def test_a_wrong_password_is_never_waited_for(tmp_path: Path, pg_db: FreshDatabase) -> None:
    conf = write(tmp_path / "kea.conf", "Dhcp4",
                 lease={**entry(pg_db), "password": "not-the-password"})
    started = time.monotonic()
    proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json",
               "--wait", "--wait-timeout", "60")
    elapsed = time.monotonic() - started
    login = checks(json.loads(proc.stdout), "Dhcp4.lease-database")["login"]
    assert (login["status"], login["exit_code"], login["attempts"]) == (
        "fail", ExitCode.DENIED, 1)
    assert proc.returncode == ExitCode.DENIED
    assert elapsed < 30, elapsed  # not a speed target: it must not sit out the 60 s wait


# -- findings on real servers -----------------------------------------------------------


def test_default_password_is_a_finding_for_3_0_not_for_2_6(
    tmp_path: Path, pg_server: Any, fresh_db_factory: Any
) -> None:
    db = fresh_db_factory(pg_server)
    pg_server.sql(f"ALTER ROLE {db.user} PASSWORD '1234'")
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease={**entry(db), "password": "1234"},
                 hosts=[entry(db, password="1234", readonly=True)])
    old = json.loads(run("preflight", "--config", str(conf), "--kea-version", "2.6",
                         "--json").stdout)
    assert statuses(old, "Dhcp4.lease-database")["config"] == "pass"
    assert statuses(old, "Dhcp4.lease-database")["login"] == "pass"
    proc = run("preflight", "--config", str(conf), "--kea-version", "3.0", "--json")
    new = json.loads(proc.stdout)
    for path in ("Dhcp4.lease-database", "Dhcp4.hosts-databases[0]"):
        config = checks(new, path)["config"]
        assert config["status"] == "fail" and config["exit_code"] == ExitCode.CONFIG
        assert config["reason_code"] == "refused-at-connect"
        assert "built-in default passwords" in config["detail"]
        assert statuses(new, path)["login"] == "skip"  # Kea 3.0 never connects with it
    assert new["databases"] == 0
    assert proc.returncode == ExitCode.CONFIG


def test_auto_init_is_a_warning_and_readonly_is_a_failure(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease=entry(pg_db),
                 hosts=[entry(pg_db, readonly=True)])
    proc = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--json")
    doc = json.loads(proc.stdout)
    schema = checks(doc, "Dhcp4.lease-database")["schema"]
    assert (schema["status"], schema["reason_code"]) == ("warn", "auto-init")
    assert "kea-admin db-init" in schema["detail"]
    readonly = checks(doc, "Dhcp4.hosts-databases[0]")["schema"]
    assert (readonly["status"], readonly["exit_code"]) == ("fail", ExitCode.EMPTY)
    assert proc.returncode == ExitCode.EMPTY
    # Without the readonly entry, a warning alone passes the run.
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease=entry(pg_db))
    proc = run("preflight", "--config", str(conf), "--kea-version", "2.6")
    assert proc.returncode == ExitCode.OK, proc.stdout
    assert "warn" in proc.stdout and "kea-admin db-init" in proc.stdout


@pytest.mark.parametrize("backend", ["postgresql", "mariadb", "mysql"])
def test_privileges_a_select_only_user(
    tmp_path: Path, backend: str, pg_server: Any, mysql_server_factory: Any,
    fresh_db_factory: Any,
) -> None:
    server = pg_server if backend == "postgresql" else mysql_server_factory(
        tls="on", flavor=backend)
    db = fresh_db_factory(server)
    init(db)
    reader, password = f"reader_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    if backend == "postgresql":
        server.sql(f"CREATE ROLE {reader} LOGIN PASSWORD '{password}'")
        server.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}", database=db.name)
    else:
        server.sql(f"CREATE USER '{reader}'@'%' IDENTIFIED BY '{password}'")
        server.sql(f"GRANT SELECT ON `{db.name}`.* TO '{reader}'@'%'")
        server.warm_auth_cache(reader, password)  # Oracle MySQL: as a server that knows it
    try:
        as_reader = {**entry(db), "user": reader, "password": password}
        conf = write(tmp_path / "kea.conf", "Dhcp4", lease=as_reader,
                     hosts=[{**as_reader, "readonly": True}])
        proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json")
    finally:
        if backend == "postgresql":  # its grants go first
            server.sql(f"DROP OWNED BY {reader}", database=db.name)
        server.drop_user(reader)
    doc = json.loads(proc.stdout)
    lease = checks(doc, "Dhcp4.lease-database")["privileges"]
    assert (lease["status"], lease["exit_code"]) == ("fail", ExitCode.PRIVILEGES), (
        checks(doc, "Dhcp4.lease-database"))
    assert "INSERT on" in lease["detail"] and "lease4" in lease["detail"]
    if backend != "postgresql":
        assert "EXECUTE" in lease["detail"]
    hosts = checks(doc, "Dhcp4.hosts-databases[0]")["privileges"]
    assert hosts["status"] == "pass", hosts
    assert doc["databases"] == 1
    assert proc.returncode == ExitCode.PRIVILEGES


def test_a_missing_backend_hook_library_for_kea_2_7_4_and_later(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    init(pg_db)
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease=entry(pg_db), hooks=False)
    old = json.loads(run("preflight", "--config", str(conf), "--kea-version", "2.6",
                         "--json").stdout)
    assert statuses(old, "Dhcp4.lease-database")["config"] == "pass"
    proc = run("preflight", "--config", str(conf), "--kea-version", "3.0", "--expect",
               "13.0", "--json")
    doc = json.loads(proc.stdout)
    config = checks(doc, "Dhcp4.lease-database")["config"]
    assert (config["status"], config["reason_code"]) == ("fail", "hook-missing")
    assert "libdhcp_pgsql.so" in config["detail"]
    assert statuses(doc, "Dhcp4.lease-database")["schema"] == "pass"  # still checked
    assert proc.returncode == ExitCode.CONFIG


def test_tls_policy_failure(tmp_path: Path, pg_db: FreshDatabase) -> None:
    init(pg_db)
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease=entry(pg_db))
    plain = json.loads(run("preflight", "--config", str(conf), "--kea-version", "3.0",
                           "--expect", "13.0", "--json").stdout)
    assert statuses(plain, "Dhcp4.lease-database")["tls"] == "pass"  # nothing asked for
    proc = run("preflight", "--config", str(conf), "--kea-version", "3.0", "--expect",
               "13.0", "--require-verify", "--json")
    tls = checks(json.loads(proc.stdout), "Dhcp4.lease-database")["tls"]
    assert (tls["status"], tls["exit_code"]) == ("fail", ExitCode.TLS_POLICY), tls
    assert proc.returncode == ExitCode.TLS_POLICY


def test_two_entries_on_one_database_are_checked_once(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    init(pg_db)
    counts = []
    for hosts in ([], [entry(pg_db)]):
        with Forwarder(pg_db.port) as proxy:
            lease = {**entry(pg_db), "port": proxy.port}
            conf = write(tmp_path / "kea.conf", "Dhcp4", lease=lease,
                         hosts=[{**h, "port": proxy.port} for h in hosts])
            proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json")
            assert proc.returncode == ExitCode.OK, proc.stdout
            counts.append(proxy.connections)
    doc = json.loads(proc.stdout)
    assert doc["databases"] == 1
    assert checks(doc, "Dhcp4.hosts-databases[0]")["schema"]["status"] == "pass"
    assert [e["checked_with"] for e in doc["entries"]] == [None, "Dhcp4.lease-database"]
    assert counts[0] > 0 and counts[1] == counts[0], counts


def test_one_entry_from_options_and_backend_selection(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    init(pg_db)
    proc = run("preflight", "--type", "postgresql", "--host", pg_db.host, "--port",
               str(pg_db.port), "--user", pg_db.user, "--name", pg_db.name,
               "--kea-version", "2.2", "--json", env_extra={"KEA_DB_PASSWORD": pg_db.password})
    doc = json.loads(proc.stdout)
    assert [(e["file"], e["path"]) for e in doc["entries"]] == [(None, "command line")]
    assert statuses(doc, "command line")["schema"] == "pass"
    assert proc.returncode == ExitCode.OK
    conf = write(tmp_path / "kea.conf", "Dhcp4", lease=entry(pg_db),
                 hosts=[{**entry(pg_db), "password": "wrong"}])
    proc = run("preflight", "--config", str(conf), "--backend", "lease", "--kea-version",
               "2.2", "--json")
    assert [e["path"] for e in json.loads(proc.stdout)["entries"]] == ["Dhcp4.lease-database"]
    assert proc.returncode == ExitCode.OK
    proc = run("preflight", "--backend", "lease", "--type", "postgresql", "--name", "x",
               "--kea-version", "2.2")
    assert proc.returncode == ExitCode.SETTINGS
    assert proc.stderr.startswith("kea-db: error: --backend selects entries of --config")


# -- JUnit and GitHub annotations ----------------------------------------------------------


def _junit_schema(cache: Path) -> Path:
    """Jenkins' JUnit schema (junit-10.xsd), as pytest's source distribution carries it;
    fetched from PyPI once, never committed."""
    xsd = cache / "junit-10.xsd"
    if xsd.exists():
        return xsd
    import tarfile

    version = pytest.__version__
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           "--no-binary", ":all:", "-d", str(cache), f"pytest=={version}"],
                          capture_output=True, text=True, timeout=300, check=False)
    sdists = list(cache.glob(f"pytest-{version}.tar.gz"))
    if proc.returncode != 0 or not sdists:
        message = f"cannot fetch pytest's sdist for junit-10.xsd: {proc.stderr[-300:]}"
        if ci_requires_servers(os.environ):
            pytest.fail(message)
        pytest.skip(message)
    with tarfile.open(sdists[0]) as tar:
        member = tar.getmember(f"pytest-{version}/testing/example_scripts/junit-10.xsd")
        data = tar.extractfile(member)
        assert data is not None
        xsd.write_bytes(data.read())
    return xsd


def test_junit_validates_and_matches_the_exit_code(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    import xmlschema

    schema = xmlschema.XMLSchema(str(_junit_schema(Path("/var/cache/kea-db-tests/junit"))))
    init(pg_db)
    good = write(tmp_path / "good.conf", "Dhcp4", lease=entry(pg_db))
    bad = write(tmp_path / "bad\x1b[31m.conf", "Dhcp6", lease=entry(pg_db),
                hosts=[{**entry(pg_db), "password": "wrong \x1b]0;title\x07"}])
    for files, code in (([good], ExitCode.OK), ([good, bad], ExitCode.DENIED)):
        report = tmp_path / "out" / "preflight.xml"
        report.parent.mkdir(exist_ok=True)
        args = [a for f in files for a in ("--config", str(f))]
        proc = run("preflight", *args, "--kea-version", "2.2", "--junit", str(report))
        assert proc.returncode == code, proc.stdout
        schema.validate(str(report))
        tree = schema.to_dict(str(report))
        suites = tree["testsuite"]
        failures = [c for s in suites for c in s.get("testcase", []) if "failure" in c]
        assert int(tree["@failures"]) == len(failures)
        assert (len(failures) > 0) == (code != ExitCode.OK)
        cases = sum(len(s.get("testcase", [])) for s in suites)
        assert cases == len(CHECKS) * (len(files) + (1 if bad in files else 0))
        text = report.read_text()
        assert "\x1b" not in text and "wrong" not in text and pg_db.password not in text
        assert [p.name for p in report.parent.iterdir()] == ["preflight.xml"]  # no temp left


def test_github_annotations_only_under_github_actions(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    conf = write(tmp_path / "kea.conf", "Dhcp4",
                 lease={**entry(pg_db), "password": "wrong"}, hosts=[entry(pg_db)])
    plain = run("preflight", "--config", str(conf), "--kea-version", "2.6")
    assert "::error" not in plain.stdout + plain.stderr
    gha = run("preflight", "--config", str(conf), "--kea-version", "2.6",
              env_extra={"GITHUB_ACTIONS": "true"})
    errors = [line for line in gha.stdout.splitlines() if line.startswith("::error ")]
    warnings = [line for line in gha.stdout.splitlines() if line.startswith("::warning ")]
    assert len(errors) == 1, gha.stdout
    assert errors[0].startswith(f"::error file={conf},line=")  # the lease entry's line
    assert "title=kea-db preflight login%3A Dhcp4.lease-database::" in errors[0]
    assert any("kea-admin db-init" in w for w in warnings), warnings
    assert gha.returncode == plain.returncode == ExitCode.DENIED
    as_json = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--json",
                  env_extra={"GITHUB_ACTIONS": "true"})
    json.loads(as_json.stdout)  # still one JSON document; annotations went to stderr
    assert "::error " in as_json.stderr


# -- Kea's own example files ----------------------------------------------------------------


@pytest.mark.kea
@pytest.mark.parametrize("release", ["2.2.0", "3.0.4"])
def test_kea_examples_have_no_file_level_error(release: str) -> None:
    """Debian's kea-doc examples: backends and preflight report per entry, never refuse a
    file Kea loads. Kea 3.0.4 refuses the examples' default passwords when it connects:
    those entries fail their config check (CONFIG), the file is still read."""
    import gzip
    import tempfile

    from kea_admin import kea_examples

    folder = kea_examples(release)
    files = sorted(p for p in folder.rglob("*") if p.parent.name in ("kea4", "kea6")
                   and p.name.endswith((".json", ".json.gz")))
    with_sql, refused = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for found in files:
            path = found
            if found.suffix == ".gz":
                path = Path(tmp) / found.stem
                path.write_bytes(gzip.decompress(found.read_bytes()))
            listing = run("backends", "--config", str(path), "--kea-version", release, "--json")
            assert listing.returncode in (ExitCode.OK, ExitCode.CONFIG), (path, listing.stderr)
            if listing.returncode == ExitCode.CONFIG:
                assert listing.stdout, (path, listing.stderr)  # listed, not refused
            doc = json.loads(listing.stdout)
            if not any(b["check"] for b in doc["backends"]):
                continue
            with_sql += 1
            proc = run("preflight", "--config", str(path), "--kea-version", release, "--json",
                       "--connect-timeout", "1", "--statement-timeout", "5")
            report = json.loads(proc.stdout)
            for item in report["entries"]:
                assert item["path"], (path, item)  # an entry, never the file as a whole
                config = checks(report, item["path"])["config"]
                assert config.get("reason_code") not in ("config-invalid",), (path, config)
                refused += config.get("reason_code") == "refused-at-connect"
    assert with_sql >= 6  # all-keys, mysql-reservations, pgsql-reservations, ...
    # 3.0.4 refuses the examples' keatest / 1234 passwords; 2.2.0 takes them.
    assert (refused > 0) == (release == "3.0.4"), refused
