"""`--config`: Kea's own configuration file as the input of every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase

from keadb_cli.errors import ExitCode


def run(*args: str, env_extra: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def entry(db: FreshDatabase, **extra: Any) -> dict[str, Any]:
    return {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
            "password": db.password, "name": db.name, **extra}


def write_config(path: Path, lease: dict[str, Any], hosts: dict[str, Any],
                 config_db: dict[str, Any]) -> Path:
    body = json.dumps({
        "Dhcp4": {
            "lease-database": lease,
            "hosts-databases": [hosts],
            "config-control": {"config-databases": [config_db]},
        }
    }, indent=2)
    # Kea's syntax: comments of every kind and a trailing comma must be accepted.
    text = "# kea-dhcp4.conf for the test\n// generated\n/* with comments */\n" + body
    path.write_text(text.replace('"Dhcp4": {', '"Dhcp4": { // the server\n', 1))
    return path


@pytest.mark.db
@pytest.mark.kea
def test_three_backends_from_one_file(
    tmp_path: Path, mysql_server: Any, pg_server: Any, fresh_db_factory: Any
) -> None:
    from kea_admin import kea_admin_init

    lease = fresh_db_factory(mysql_server)
    hosts = fresh_db_factory(pg_server)
    config_db = fresh_db_factory(mysql_server)
    for db in (lease, hosts):
        kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
    conf = write_config(tmp_path / "kea-dhcp4.conf", entry(lease), entry(hosts),
                        entry(config_db))
    proc = run("check-version", "--config", str(conf), "--kea-version", "2.2", "--json")
    doc = json.loads(proc.stdout)
    by_path = {r["path"]: r for r in doc["results"]}
    assert set(by_path) == {"Dhcp4.lease-database", "Dhcp4.hosts-databases[0]",
                            "Dhcp4.config-control.config-databases[0]"}
    assert by_path["Dhcp4.lease-database"]["verdict"] == "MATCH"
    assert by_path["Dhcp4.lease-database"]["role"] == "lease"
    assert by_path["Dhcp4.hosts-databases[0]"]["verdict"] == "MATCH"
    assert by_path["Dhcp4.hosts-databases[0]"]["type"] == "postgresql"
    assert by_path["Dhcp4.config-control.config-databases[0]"]["verdict"] == "EMPTY"
    assert proc.returncode == ExitCode.EMPTY  # the worst of MATCH, MATCH, EMPTY
    for db in (lease, hosts, config_db):
        assert db.password not in proc.stdout + proc.stderr
    # --backend narrows the run to one entry
    proc = run("check-version", "--config", str(conf), "--backend", "hosts",
               "--kea-version", "2.2", "--json")
    assert [r["path"] for r in json.loads(proc.stdout)["results"]] == [
        "Dhcp4.hosts-databases[0]"]
    assert proc.returncode == ExitCode.OK
    # human output names each entry by its path
    proc = run("check-version", "--config", str(conf), "--kea-version", "2.2")
    assert "Dhcp4.config-control.config-databases[0] (mysql)" in proc.stdout
    assert proc.returncode == ExitCode.EMPTY


@pytest.mark.db
def test_precedence_option_then_environment_then_file(
    tmp_path: Path, pg_db: FreshDatabase
) -> None:
    wrong = {**entry(pg_db), "port": 1, "password": "not-the-password"}
    conf = tmp_path / "kea.conf"
    conf.write_text(json.dumps({"Dhcp4": {"lease-database": wrong}}))
    base = ["check-version", "--config", str(conf), "--kea-version", "2.2", "--json"]
    # the file alone: wrong port
    assert json.loads(run(*base).stdout)["results"][0]["verdict"] == "UNREACHABLE"
    # the environment overrides the file's port, but the file's password is still wrong
    proc = run(*base, env_extra={"KEA_DB_PORT": str(pg_db.port)})
    assert json.loads(proc.stdout)["results"][0]["verdict"] == "DENIED"
    # KEA_DB_PASSWORD overrides the file's password
    proc = run(*base, env_extra={"KEA_DB_PORT": str(pg_db.port),
                                 "KEA_DB_PASSWORD": pg_db.password})
    assert json.loads(proc.stdout)["results"][0]["verdict"] == "EMPTY"
    # the command line wins over the environment
    proc = run(*base, "--port", "1", env_extra={"KEA_DB_PORT": str(pg_db.port),
                                                "KEA_DB_PASSWORD": pg_db.password})
    assert json.loads(proc.stdout)["results"][0]["verdict"] == "UNREACHABLE"
    # --password-file overrides the file's password too
    pw = tmp_path / "pw"
    pw.write_text(pg_db.password + "\n")
    proc = run(*base, "--port", str(pg_db.port), "--password-file", str(pw))
    assert json.loads(proc.stdout)["results"][0]["verdict"] == "EMPTY"
    assert "not-the-password" not in proc.stdout + proc.stderr


def test_invalid_config_is_one_line_and_the_config_code(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text('{"Dhcp4": {"lease-database": {"type": "mysql", "name": "kea",\n'
                    '  "bogus-keyword": 1}}}')
    for command in (["check-version", "--kea-version", "2.2"], ["backends"],
                    ["init", "--kea-version", "2.2"]):
        proc = run(*command, "--config", str(conf))
        assert proc.returncode == ExitCode.CONFIG, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kea-db: error: ")
        assert f"{conf}:2" in lines[0] and "bogus-keyword" in lines[0]


def test_memfile_only_is_nothing_to_check(tmp_path: Path) -> None:
    conf = tmp_path / "memfile.conf"
    conf.write_text('{"Dhcp6": {"lease-database": {"type": "memfile", "lfc-interval": 3600}}}')
    proc = run("backends", "--config", str(conf), "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert doc["backends"] == [{
        "path": "Dhcp6.lease-database", "role": "lease", "server": "Dhcp6", "type": "memfile",
        "location": f"{conf}:1", "check": False, "host": None, "port": None, "name": None,
        "user": None, "password": None, "readonly": None, "tls": {}, "timeouts": {},
        "retry": {}, "warnings": [], "errors": []}]
    proc = run("check-version", "--config", str(conf), "--kea-version", "2.2")
    assert proc.returncode == ExitCode.CONFIG
    assert "no MySQL or PostgreSQL backend" in proc.stderr


def test_backends_lists_without_connecting_and_hides_passwords(tmp_path: Path) -> None:
    conf = tmp_path / "kea.conf"
    conf.write_text(json.dumps({"Dhcp4": {
        "lease-database": {"type": "postgresql", "host": "db.invalid", "name": "kea",
                           "user": "kea", "password": "Sup3r-Secret", "trust-anchor": "/ca.pem",
                           "on-fail": "serve-retry-continue", "retry-on-startup": True},
        "hosts-databases": [{"type": "mysql", "name": "hosts", "readonly": True}],
    }}))
    proc = run("backends", "--config", str(conf), "--kea-version", "2.6", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kea_version"] == "2.6.5"
    lease, hosts = doc["backends"]
    assert lease["path"] == "Dhcp4.lease-database" and lease["password"] == "***"
    assert lease["tls"] == {"trust-anchor": "/ca.pem"}
    assert lease["retry"] == {"on-fail": "serve-retry-continue", "retry-on-startup": True}
    assert lease["warnings"] == [
        "'trust-anchor' is accepted but not used for PostgreSQL before Kea 3.1.0 (Kea 2.6.5): "
        "libpq defaults apply"]
    assert "Dhcp4.lease-database: 'trust-anchor' is accepted but not used" in proc.stderr
    assert hosts["path"] == "Dhcp4.hosts-databases[0]" and hosts["readonly"] is True
    human = run("backends", "--config", str(conf), "--kea-version", "2.6")
    assert "Sup3r-Secret" not in proc.stdout + proc.stderr + human.stdout + human.stderr
    assert "db.invalid" in human.stdout


def test_backend_needs_config() -> None:
    proc = run("check-version", "--backend", "lease", "--type", "mysql", "--name", "x",
               "--kea-version", "2.2")
    assert proc.returncode == ExitCode.SETTINGS
    assert "--backend selects entries of --config" in proc.stderr


def test_unknown_backend_lists_the_paths(tmp_path: Path) -> None:
    conf = tmp_path / "kea.conf"
    conf.write_text('{"Dhcp4": {"lease-database": {"type": "mysql", "name": "kea"}}}')
    proc = run("check-version", "--config", str(conf), "--backend", "Dhcp6.lease-database",
               "--kea-version", "2.2")
    assert proc.returncode == ExitCode.CONFIG
    assert "Dhcp4.lease-database (mysql)" in proc.stderr
