"""`kea-db demo`: the whole job on a throw-away local PostgreSQL, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keadb_cli.commands import sandbox
from keadb_cli.errors import ExitCode


@pytest.mark.db
def test_demo_runs_init_check_version_and_test_tls_then_cleans_up() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", "demo", "--json"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    # The newest stable release: 3.2.0 (PostgreSQL schema 34.0), checked against 3.0.4.
    assert doc["format"] == 1 and doc["kea_version"] == "3.2.0"
    assert doc["init"]["action"] == "initialized" and doc["init"]["schema"] == "34.0"
    assert [(c["verdict"], c["expected"]) for c in doc["checks"]] == [
        ("MATCH", "34.0"), ("AHEAD", "29.0")]
    # Kea 3.0 does not pass PostgreSQL TLS keys to libpq; Kea 3.2 verifies with them.
    assert [t["verdict"] for t in doc["tls"]] == ["ENCRYPTED-UNVERIFIED", "VERIFIED"]
    assert doc["removed"] is True
    server = doc["server"]  # "PostgreSQL 127.0.0.1:PORT/kea": nothing listens there now
    port = int(server.split(":")[1].split("/")[0])
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_without_server_binaries_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keadb_cli.cli.main import main

    monkeypatch.setattr(sandbox, "SEARCH", (str(tmp_path),))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["demo"]) == ExitCode.SETTINGS
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "apt-get install postgresql" in err
