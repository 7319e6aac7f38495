"""Monitoring: `kea-db preflight --format prometheus` / `--textfile` read back with
prometheus_client's own parser, the textfile written whole or not at all, and the database
server certificate's expiry (test-tls, preflight and the gauge) on real servers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families
from servers import FreshDatabase, TlsMaterial, _make_leaf, _write_cert, _write_key, start_postgres

from keadb_cli.commands.preflight.model import CHECKS
from keadb_cli.errors import ExitCode

pytestmark = pytest.mark.db

# A file name a person would not choose: a double quote, a backslash and a line feed.
HOSTILE_FILE = 'kea "dhcp4"\\\nnext line.conf'
HOSTILE_NAME = 'kea"\n\\db'


def run(*args: str, env_extra: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEA_DB_", "PG", "GITHUB_"))}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, preexec_fn=preexec)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def entry(db: FreshDatabase, **extra: Any) -> dict[str, Any]:
    return {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
            "password": db.password, "name": db.name, **extra}


def write_config(path: Path, lease: dict[str, Any],
                 hosts: list[dict[str, Any]] | None = None) -> Path:
    section: dict[str, Any] = {"lease-database": lease}
    if hosts:
        section["hosts-databases"] = hosts
    path.write_text(json.dumps({"Dhcp4": section}, indent=2))
    return path


def samples(text: str) -> dict[str, list[Any]]:
    """{family name: [Sample, ...]}, every family checked to be a documented gauge."""
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family
        assert family.documentation, family.name
        assert family.name.startswith("keadb_preflight_"), family.name
        out[family.name] = list(family.samples)
    return out


def cert_days_left(path: Path) -> int:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return math.floor(left.total_seconds() / 86400)


def test_textfile_carries_every_entry_and_check_escaped(
    tmp_path: Path, pg_db: FreshDatabase, tls_material: TlsMaterial
) -> None:
    init = run("init", "--type", pg_db.type, "--host", pg_db.host, "--port", str(pg_db.port),
               "--user", pg_db.user, "--name", pg_db.name, "--kea-version", "2.2",
               env_extra={"KEA_DB_PASSWORD": pg_db.password})
    assert init.returncode == 0, init.stderr
    ((major, minor),) = pg_db.server.sql("SELECT version, minor FROM schema_version",
                                         database=pg_db.name)
    conf = write_config(tmp_path / HOSTILE_FILE, entry(pg_db),
                        [{**entry(pg_db), "name": HOSTILE_NAME, "password": "wrong-pw"}])
    textfile = tmp_path / "prom" / "kea-db.prom"
    textfile.parent.mkdir()
    textfile.write_text("# the previous run\n")
    started = time.time()
    proc = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--format",
               "prometheus", "--textfile", str(textfile))
    ended = time.time()
    # The exit code is the run's, whatever the format: the hosts entry's login is denied.
    assert proc.returncode == ExitCode.DENIED, proc.stdout + proc.stderr
    text = textfile.read_text()
    assert proc.stdout == text  # one exposition, on stdout and in the file
    assert [p.name for p in textfile.parent.iterdir()] == ["kea-db.prom"]  # no temp left
    assert pg_db.password not in text
    got = samples(text)

    lease, hosts = "Dhcp4.lease-database", "Dhcp4.hosts-databases[0]"
    status = {(s.labels["file"], s.labels["entry"], s.labels["role"], s.labels["backend"],
               s.labels["check"]): s.value for s in got["keadb_preflight_check_status"]}
    expected = {(str(conf), lease, "lease", "postgresql", name): 0 for name in CHECKS}
    expected.update({(str(conf), hosts, "hosts", "postgresql", name): 3 for name in CHECKS})
    expected[(str(conf), hosts, "hosts", "postgresql", "config")] = 0
    expected[(str(conf), hosts, "hosts", "postgresql", "login")] = 2
    assert status == expected

    by_entry = {s.labels["entry"]: s for s in got["keadb_preflight_entry_exit_code"]}
    assert (by_entry[lease].value, by_entry[hosts].value) == (0, ExitCode.DENIED)
    info = {s.labels["entry"]: s.labels for s in got["keadb_preflight_entry_info"]}
    assert f"/{HOSTILE_NAME}" in info[hosts]["target"]  # quote, newline, backslash intact
    assert info[hosts]["file"] == str(conf)
    (schema,) = got["keadb_preflight_schema_info"]  # the denied entry read no schema
    assert (schema.labels["entry"], schema.labels["found"], schema.labels["verdict"]) == (
        lease, f"{major}.{minor}", "MATCH")
    assert [(s.labels["entry"], s.value) for s in got["keadb_preflight_schema_match"]] == [
        (lease, 1)]
    (days,) = got["keadb_preflight_tls_certificate_days_left"]  # pg_server offers TLS
    assert days.labels["entry"] == lease
    assert abs(days.value - cert_days_left(tls_material.server_cert)) <= 1
    assert [s.value for s in got["keadb_preflight_exit_code"]] == [proc.returncode]
    (stamp,) = got["keadb_preflight_last_run_timestamp_seconds"]
    assert started <= stamp.value <= ended
    (run_info,) = got["keadb_preflight_run_info"]
    assert run_info.labels["kea_version"].startswith("2.2")

    # --json and --format json agree; --json with another format is a usage error.
    both = run("preflight", "--config", str(conf), "--kea-version", "2.2", "--json",
               "--format", "prometheus")
    assert both.returncode == ExitCode.USAGE and both.stdout == ""
    assert len(both.stderr.strip().splitlines()) == 1


def test_textfile_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    """No database needed: a refused port fails the login, and the metrics are still
    written (a failed login is what monitoring is for)."""
    conf = write_config(tmp_path / "kea.conf", {"type": "postgresql", "host": "127.0.0.1",
                                                 "port": 1, "user": "kea", "name": "kea",
                                                 "password": "some-secret"})
    missing = run("preflight", "--config", str(conf), "--textfile",
                  str(tmp_path / "no-such-dir" / "kea-db.prom"))
    assert missing.returncode == ExitCode.USAGE
    assert missing.stdout == "" and len(missing.stderr.strip().splitlines()) == 1
    assert "no-such-dir" in missing.stderr and "does not exist" in missing.stderr

    textfile = tmp_path / "kea-db.prom"
    textfile.write_text("old\n")

    def small_files() -> None:  # every write past 256 bytes fails (EFBIG; Python ignores
        resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))  # SIGXFSZ)

    failed = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--textfile",
                 str(textfile), preexec=small_files)
    assert failed.returncode == ExitCode.SETTINGS, failed.stderr
    assert failed.stderr.startswith(f"kea-db: error: cannot write {textfile}")
    assert textfile.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kea-db.prom", "kea.conf"]

    done = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--textfile",
               str(textfile))
    assert done.returncode == ExitCode.UNREACHABLE
    got = samples(textfile.read_text())
    assert {s.labels["check"]: s.value for s in got["keadb_preflight_check_status"]} == {
        "config": 0, "login": 2, "node": 3, "schema": 3, "privileges": 3, "tls": 3}
    assert [s.value for s in got["keadb_preflight_exit_code"]] == [ExitCode.UNREACHABLE]
    assert "keadb_preflight_tls_certificate_days_left" not in got


def _expiring_material(base: TlsMaterial, directory: Path, days: int) -> TlsMaterial:
    """``base`` with a server certificate (same CA, same names) that ends in ``days``."""
    ca_cert = x509.load_pem_x509_certificate(base.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(base.ca_key.read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert, key = _make_leaf(common_name="localhost", ca_cert=ca_cert, ca_key=ca_key,  # type: ignore[arg-type]
                           server=True, dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                           not_before=now - dt.timedelta(days=60),
                           not_after=now + dt.timedelta(days=days, hours=12))
    directory.mkdir()
    _write_cert(directory / "server.crt", cert)
    _write_key(directory / "server.key", key)
    return dataclasses.replace(base, server_cert=directory / "server.crt",
                               server_key=directory / "server.key")


def test_an_expiring_server_certificate_warns_in_test_tls_preflight_and_the_gauge(
    tmp_path: Path, tls_material: TlsMaterial, fresh_db_factory: Any
) -> None:
    material = _expiring_material(tls_material, tmp_path / "pki", days=10)
    server = start_postgres(tls="on", material=material)
    try:
        db: FreshDatabase = fresh_db_factory(server)
        proc = run("test-tls", "--type", "postgresql", "--host", db.host, "--port",
                   str(db.port), "--user", db.user, "--name", db.name, "--trust-anchor",
                   str(tls_material.ca_cert), "--kea-version", "3.2", "--json",
                   env_extra={"KEA_DB_PASSWORD": db.password})
        (result,) = json.loads(proc.stdout)["results"]
        assert result["verdict"] == "VERIFIED" and proc.returncode == ExitCode.OK
        assert result["server_certificate"]["days_left"] == 10
        assert any("certificate expires on" in w and "10 days left" in w
                   for w in result["warnings"]), result["warnings"]

        conf = write_config(tmp_path / "kea.conf", entry(db))
        textfile = tmp_path / "kea-db.prom"
        proc = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--json",
                   "--textfile", str(textfile))
        doc = json.loads(proc.stdout)
        (found,) = doc["entries"]
        tls = {c["check"]: c for c in found["checks"]}["tls"]
        assert (tls["status"], tls.get("reason_code")) == ("warn", "cert-expiring"), tls
        assert "10 days left" in tls["detail"]
        assert found["tls_days_left"] == 10
        assert proc.returncode == doc["exit_code"] == ExitCode.OK  # warnings, no failure
        got = samples(textfile.read_text())
        assert [s.value for s in got["keadb_preflight_tls_certificate_days_left"]] == [10]
        tls_status = [s.value for s in got["keadb_preflight_check_status"]
                      if s.labels["check"] == "tls"]
        assert tls_status == [1]

        quiet = run("preflight", "--config", str(conf), "--kea-version", "2.6", "--json",
                    "--warn-days", "5")
        (found,) = json.loads(quiet.stdout)["entries"]
        assert {c["check"]: c for c in found["checks"]}["tls"]["status"] == "pass"
    finally:
        server.stop()
