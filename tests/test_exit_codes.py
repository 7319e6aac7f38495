"""Exit codes and paths the other files leave out: INTERNAL and --debug, INIT_FAILED, init on
routines alone, the check-version cleartext warning, and --config with an include.
(INTERRUPTED, 130, is proven with a real Ctrl-C in test_hostile.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase, MariaDBServer, TlsMaterial
from test_check_version import sql_as_owner
from test_init import init_json, object_count

from keadb_cli.cli.main import main
from keadb_cli.errors import ExitCode


def test_internal_error_is_one_line_and_debug_shows_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from keadb_cli.commands import check_version

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(check_version, "check_all", broken)
    args = ["check-version", "--type", "postgresql", "--host", "127.0.0.1", "--name", "kea",
            "--expect", "13.0"]
    assert main(args) == ExitCode.INTERNAL == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        "kea-db: error: internal error (ZeroDivisionError: a bug); rerun with --debug and "
        "report it"
    ]
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(["--debug", *args])


@pytest.mark.db
def test_init_failed_when_the_server_refuses_a_statement(pg_db: FreshDatabase) -> None:
    # A composite type named like a Kea table: not a table, so the database is EMPTY, but
    # PostgreSQL refuses CREATE TABLE lease4 because its row type name is taken.
    sql_as_owner(pg_db, "CREATE TYPE lease4 AS (x int)")
    code, result = init_json(pg_db)
    assert code == ExitCode.INIT_FAILED == 46
    assert result["action"] == "refused" and result["verdict"] == "EMPTY"
    assert "lease4" in result["detail"] and "nothing was kept" in result["detail"]
    assert object_count(pg_db) == 0  # one transaction: nothing left behind


@pytest.mark.db
@pytest.mark.parametrize(("routine", "code"), [("leftover", ExitCode.NOT_EMPTY),
                                               ("lease4DumpHeader", ExitCode.PARTIAL)])
def test_init_on_routines_only(fresh_db: FreshDatabase, routine: str, code: ExitCode) -> None:
    if fresh_db.type == "postgresql":
        sql_as_owner(fresh_db, f"CREATE FUNCTION {routine}() RETURNS int LANGUAGE sql "
                               "AS 'SELECT 1'")
    else:
        sql_as_owner(fresh_db, f"CREATE PROCEDURE {routine}() SELECT 1")
    before = object_count(fresh_db)
    got, result = init_json(fresh_db)
    assert got == code, result
    assert result["action"] == "refused"
    assert routine.lower() in result["detail"].lower()
    assert object_count(fresh_db) == before == 1


@pytest.mark.db
def test_check_version_warns_of_a_cleartext_session(
    mysql_server_factory: Callable[..., MariaDBServer],
    fresh_db_factory: Callable[..., FreshDatabase], tls_material: TlsMaterial,
) -> None:
    db = fresh_db_factory(mysql_server_factory(tls="off"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = db.password
    args = [sys.executable, "-m", "keadb_cli", "check-version", "--type", "mysql", "--host",
            db.host, "--port", str(db.port), "--user", db.user, "--name", db.name,
            "--expect", "14.0", "--trust-anchor", str(tls_material.ca_cert)]
    proc = subprocess.run([*args, "--json"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    result = json.loads(proc.stdout)["results"][0]
    assert result["verdict"] == "EMPTY" and proc.returncode == ExitCode.EMPTY
    assert result["tls"] is None
    assert any("the session is cleartext" in w for w in result["warnings"]), result
    human = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert human.returncode == ExitCode.EMPTY
    warnings = [line for line in human.stderr.splitlines() if line.startswith("kea-db: warning:")]
    assert len(warnings) == 1 and "the session is cleartext" in warnings[0], human.stderr


@pytest.mark.db
def test_config_with_an_include(pg_db: FreshDatabase, tmp_path: Path) -> None:
    (tmp_path / "lease-db.json").write_text(json.dumps(
        {"type": "postgresql", "host": pg_db.host, "port": pg_db.port, "user": pg_db.user,
         "name": pg_db.name}))
    (tmp_path / "kea-dhcp4.conf").write_text(
        '{"Dhcp4": {\n  // the database entry lives in its own file\n'
        '  "lease-database": <?include "lease-db.json"?>\n}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env["KEA_DB_PASSWORD"] = pg_db.password
    proc = subprocess.run(  # includes are relative to the working directory, as in Kea
        [sys.executable, "-m", "keadb_cli", "check-version", "--config", "kea-dhcp4.conf",
         "--expect", "13.0", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False)
    assert proc.returncode == ExitCode.EMPTY, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["path"] == "Dhcp4.lease-database"
    assert result["name"] == pg_db.name and result["verdict"] == "EMPTY"
