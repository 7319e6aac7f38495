"""MySQL answers that are protocol garbage (tests/fakes.py): UNREACHABLE ``protocol``, exit 20,
on the libmariadb path and on the PyMySQL fallback, never DENIED with an empty reason.
"""

from __future__ import annotations

import json

import pytest
from fakes import FakeServer

from keadb_cli.cli.main import main

PASSWORD = "garbage-test-password"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("KEA_DB_", "PG", "MYSQL")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("KEA_DB_PASSWORD", PASSWORD)


def _run(capsys: pytest.CaptureFixture[str], command: str,
         server: FakeServer) -> tuple[int, dict[str, object], str]:
    capsys.readouterr()
    code = main([command, "--type", "mysql", "--host", server.host, "--port",
                 str(server.port), "--user", "kea", "--name", "kea", "--expect", "13.0",
                 "--connect-timeout", "3", "--statement-timeout", "5", "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out), err


GARBAGE = ["huge_length_prefix", "truncated_row", "null_marker_length"]


# PyMySQL never reads a column definition's catalog, so null_marker_length's good row is
# read as it is on that path: not garbage to it.
PATHS = [(s, "libmariadb") for s in GARBAGE] + [(s, "pymysql") for s in GARBAGE[:2]]


@pytest.mark.parametrize(("scenario", "path"), PATHS)
def test_garbage_resultset_is_unreachable_protocol(
    scenario: str, path: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if path == "pymysql":
        from keadb_cli.db import libmariadb

        monkeypatch.setitem(libmariadb._state, "lib", None)  # as without the library
    with FakeServer("mysql", scenario, trigger=b"schema_version", max_connections=8) as server:
        code, doc, _err = _run(capsys, "check-version", server)
        assert server.wait_for("garbage-sent", timeout=2)
        assert server.errors == []
    result = doc["results"][0]  # type: ignore[index]
    assert result["verdict"] == "UNREACHABLE", result
    assert result["reason_code"] == "protocol"
    assert "the server's answer cannot be read" in result["detail"]
    assert code == 20


@pytest.mark.parametrize("scenario", GARBAGE)
def test_preflight_schema_check_says_protocol(scenario: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer("mysql", scenario, trigger=b"schema_version", max_connections=8) as server:
        code, doc, _err = _run(capsys, "preflight", server)
    checks = {c["check"]: c for c in doc["entries"][0]["checks"]}  # type: ignore[index]
    assert checks["login"]["status"] == "pass"
    assert checks["schema"]["status"] == "fail"
    assert checks["schema"]["reason_code"] == "protocol"
    assert checks["schema"]["exit_code"] == 20
    assert code == 20
