"""`kea-db test-tls` through the real entry point: verdicts, exit codes, JSON, --config."""

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

pytestmark = pytest.mark.db


def run(db: FreshDatabase | None, *args: str, password: str = "",
        env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env.update(env_extra or {})
    base: list[str] = []
    if db is not None:
        env["KEA_DB_PASSWORD"] = db.password
        base = ["--type", db.type, "--host", db.host, "--port", str(db.port), "--user",
                db.user, "--name", db.name]
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", "test-tls", *base, *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    if db is not None:
        assert db.password not in proc.stdout + proc.stderr
    return proc


def result_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc = json.loads(proc.stdout)
    assert doc["format"] == 1 and len(doc["results"]) == 1
    result: dict[str, Any] = doc["results"][0]
    assert result["exit_code"] == proc.returncode
    return result


@pytest.fixture
def pg_tls_db(pg_server: Any, fresh_db_factory: Any) -> FreshDatabase:
    db: FreshDatabase = fresh_db_factory(pg_server)
    return db


def test_verified_json_document(pg_tls_db: FreshDatabase, tls_material: Any) -> None:
    proc = run(pg_tls_db, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "3.2",
               "--json")
    result = result_of(proc)
    assert proc.returncode == ExitCode.OK
    assert result["verdict"] == "VERIFIED"
    assert result["protocol"].startswith("TLSv1.")
    assert result["cipher"]
    assert result["server_certificate"]["subject"]
    assert result["session"]["ssl"] is True
    assert isinstance(result["warnings"], list)
    assert json.loads(proc.stdout)["kea_version"] == "3.2.0"


def test_kea_release_decides(pg_tls_db: FreshDatabase, tls_material: Any) -> None:
    """Kea 2.6 does not pass PostgreSQL TLS keys to libpq: nothing verifies the server."""
    proc = run(pg_tls_db, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "2.6",
               "--json")
    result = result_of(proc)
    assert result["verdict"] == "ENCRYPTED-UNVERIFIED"
    assert proc.returncode == ExitCode.ENCRYPTED_UNVERIFIED


def test_handshake_failed_with_another_ca(pg_tls_db: FreshDatabase, tls_material: Any) -> None:
    proc = run(pg_tls_db, "--trust-anchor", str(tls_material.other_ca_cert),
               "--kea-version", "3.2", "--json")
    result = result_of(proc)
    assert result["verdict"] == "HANDSHAKE-FAILED"
    assert result["reason_code"] == "unknown-ca"
    assert proc.returncode == ExitCode.HANDSHAKE_FAILED


def test_tls_refused_and_cleartext_on_servers_without_tls(
    pg_server_factory: Any, mysql_server_factory: Any, fresh_db_factory: Any,
    tls_material: Any, mysql_flavor: str,
) -> None:
    pg = fresh_db_factory(pg_server_factory(tls="off"))
    proc = run(pg, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "3.2",
               "--json")
    assert result_of(proc)["verdict"] == "TLS-REFUSED"
    assert proc.returncode == ExitCode.TLS_REFUSED
    my = fresh_db_factory(mysql_server_factory(tls="off", flavor=mysql_flavor))
    proc = run(my, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "2.2",
               "--json")
    assert result_of(proc)["verdict"] == "CLEARTEXT"
    assert proc.returncode == ExitCode.CLEARTEXT


def test_policy_flag_turns_a_warning_into_a_failure(
    pg_tls_db: FreshDatabase, tls_material: Any
) -> None:
    proc = run(pg_tls_db, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "3.2",
               "--require-client-cert", "--json")
    result = result_of(proc)
    assert result["verdict"] == "VERIFIED"
    assert result["failures"]
    assert proc.returncode == ExitCode.TLS_POLICY
    human = run(pg_tls_db, "--trust-anchor", str(tls_material.ca_cert), "--kea-version", "3.2",
                "--require-client-cert")
    assert human.returncode == ExitCode.TLS_POLICY
    assert human.stdout.splitlines()[0] == "TLS as Kea 3.2.0 would open it"
    assert human.stdout.splitlines()[2].split()[0] == "VERIFIED"
    assert "policy:" in human.stderr


def test_bad_min_tls_is_a_settings_error(pg_tls_db: FreshDatabase) -> None:
    proc = run(pg_tls_db, "--min-tls", "0.9")
    assert proc.returncode == ExitCode.SETTINGS
    assert proc.stderr.startswith("kea-db: error: ") and proc.stderr.count("\n") == 1


def test_config_with_two_backends_gives_the_worst_exit_code(
    tmp_path: Path, pg_tls_db: FreshDatabase, mysql_server_factory: Any,
    fresh_db_factory: Any, tls_material: Any, mysql_flavor: str,
) -> None:
    my = fresh_db_factory(mysql_server_factory(tls="off", flavor=mysql_flavor))
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {
        "lease-database": {"type": "postgresql", "host": pg_tls_db.host,
                           "port": pg_tls_db.port, "user": pg_tls_db.user,
                           "password": pg_tls_db.password, "name": pg_tls_db.name,
                           "trust-anchor": str(tls_material.ca_cert)},
        "hosts-databases": [{"type": "mysql", "host": my.host, "port": my.port,
                             "user": my.user, "password": my.password, "name": my.name,
                             "trust-anchor": str(tls_material.ca_cert)}],
    }}))
    proc = run(None, "--config", str(conf), "--kea-version", "3.2", "--json")
    doc = json.loads(proc.stdout)
    verdicts = {r["source"]: r["verdict"] for r in doc["results"]}
    assert verdicts == {"Dhcp4.lease-database": "VERIFIED",
                        "Dhcp4.hosts-databases[0]": "CLEARTEXT"}
    assert proc.returncode == ExitCode.CLEARTEXT
    for secret in (pg_tls_db.password, my.password):
        assert secret not in proc.stdout + proc.stderr
