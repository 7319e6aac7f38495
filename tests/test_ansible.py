"""The keadb.kea_db Ansible collection (ansible/), built with ansible-galaxy and installed in a
temporary collections path, run by ansible-playbook (local connection, this Python as the
modules' interpreter) against throw-away PostgreSQL and MariaDB servers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase, grant_verify_scratch

from keadb_cli import api

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOOKS = [{"library": f"/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_{lib}.so"}
         for lib in ("mysql", "pgsql")]


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of ansible-playbook: the collection built from ansible/ and installed
    into a temporary ANSIBLE_COLLECTIONS_PATH, nothing of the user's configuration."""
    if not (BIN / "ansible-playbook").exists():
        pytest.fail("ansible-core is not installed: pip install -e '.[test]'")
    home = tmp_path_factory.mktemp("ansible")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "KEA_DB_"))}
    env.update({"ANSIBLE_HOME": str(home), "ANSIBLE_CONFIG": str(home / "none.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(home / "collections"),
                "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_PIPELINING": "1",
                "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).with_name("ansible_callback")),
                "ANSIBLE_CALLBACKS_ENABLED": "keadb_results",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "PYTHONWARNINGS": "ignore"})
    build = home / "build"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO / "ansible"),
                    "--output-path", str(build)], check=True, env=env, capture_output=True)
    (tarball,) = build.glob("keadb-kea_db-*.tar.gz")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball),
                    "-p", str(home / "collections")], check=True, env=env,
                   capture_output=True)
    installed = home / "collections" / "ansible_collections" / "keadb" / "kea_db"
    assert (installed / "plugins" / "modules" / "kea_db_schema.py").is_file()
    return env


def playbook(path: Path, tasks: list[dict[str, Any]]) -> Path:
    """A play on localhost (JSON is YAML)."""
    play = {"hosts": "localhost", "connection": "local", "gather_facts": False,
            "tasks": tasks}
    path.write_text(json.dumps([play], indent=1))
    return path


def run_playbook(env: dict[str, str], book: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook; every task's result goes to results.json beside the playbook
    (tests/ansible_callback)."""
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(book),
                           *extra], capture_output=True, text=True, timeout=300,
                          env={**env, "KEADB_RESULTS": str(book.with_name("results.json"))},
                          check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(params=["postgresql", "mariadb"])
def db(request: pytest.FixtureRequest,
       fresh_db_factory: Callable[..., FreshDatabase]) -> FreshDatabase:
    server = (request.getfixturevalue("pg_server") if request.param == "postgresql" else
              request.getfixturevalue("mysql_server_factory")(tls="on", flavor=request.param))
    made = fresh_db_factory(server)
    grant_verify_scratch(made)
    if made.type == "mysql":
        server.warm_auth_cache(made.user, made.password)
    return made


def test_schema_preflight_and_info(db: FreshDatabase, ansible_env: dict[str, str],
                                   tmp_path: Path) -> None:
    """One play: init (changed), again (not), facts, check mode on BEHIND (the plan),
    without allow_upgrade (fails with the plan, the schema still 2.2's: check mode changed
    nothing), upgrade, again (not), AHEAD fails, preflight passes, then fails with the
    finding."""
    password_file = tmp_path / "password"
    password_file.write_text(db.password + "\n")
    password_file.chmod(0o600)
    conn = {"db_type": db.type, "host": db.host, "port": db.port, "user": db.user,
            "name": db.name, "password_file": str(password_file)}
    entry = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
             "password": db.password, "name": db.name}
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {"hooks-libraries": HOOKS, "lease-database": entry}}))

    def task(label: str, module: str, ignore: bool = False, check: bool = False,
             **args: Any) -> dict[str, Any]:
        t: dict[str, Any] = {"name": label, f"keadb.kea_db.{module}": args}
        if ignore:
            t["ignore_errors"] = True
        if check:
            t["check_mode"] = True
        return t

    tasks = [
        task("init1", "kea_db_schema", kea_version="2.2", **conn),
        task("init2", "kea_db_schema", kea_version="2.2", **conn),
        task("info22", "kea_db_info", releases=["2.2", "3.0"], tls=True, **conn),
        task("plan", "kea_db_schema", check=True, kea_version="3.0", allow_upgrade=True,
             **conn),
        task("refused", "kea_db_schema", ignore=True, kea_version="3.0", **conn),
        task("upgrade", "kea_db_schema", kea_version="3.0", allow_upgrade=True, **conn),
        task("upgrade2", "kea_db_schema", kea_version="3.0", allow_upgrade=True, **conn),
        task("ahead", "kea_db_schema", ignore=True, kea_version="2.2", **conn),
        task("preflight_ok", "kea_db_preflight", config=[str(conf)], kea_version="3.0"),
        task("preflight_fail", "kea_db_preflight", ignore=True, config=[str(conf)],
             kea_version="2.6"),
    ]
    proc = run_playbook(ansible_env, playbook(tmp_path / "play.yml", tasks), "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = (tmp_path / "results.json").read_text()
    assert db.password not in proc.stdout + proc.stderr + out
    r = json.loads(out)
    to_22 = {"postgresql": "13.0", "mysql": "14.0"}[db.type]
    to_30 = {"postgresql": "29.0", "mysql": "30.0"}[db.type]

    assert r["init1"]["changed"] is True
    assert r["init1"]["backends"][0]["action"] == "initialized"
    assert r["init2"]["changed"] is False
    assert r["init2"]["backends"][0]["verdict"] == "MATCH"

    facts = r["info22"]["backends"][0]
    assert facts["schema"] == to_22 and facts["verdicts"] == {"2.2": "MATCH", "3.0": "BEHIND"}
    assert facts["node"]["role"] == "primary"
    tls = api.test_tls(api.Settings(type=db.type, host=db.host, port=db.port, user=db.user,
                                    name=db.name, password=db.password, kea_version="3.0"))
    assert facts["tls"]["verdict"] == tls.verdict and facts["tls"]["kea_version"][:4] == "3.0."

    plan = r["plan"]["backends"][0]
    assert r["plan"]["changed"] is True and plan["action"] == "would upgrade"
    assert plan["plan"] and plan["plan"][-1]["schema"] == to_30
    assert plan["plan"][0]["revision"] in r["plan"]["diff"]["after"]

    assert r["refused"]["failed"] is True  # after check mode: still BEHIND, at 2.2's schema
    assert f"BEHIND: schema {to_22}, Kea wants {to_30}" in r["refused"]["msg"]
    assert "allow_upgrade" in r["refused"]["msg"] and "BEHIND" in r["refused"]["msg"]
    assert plan["plan"][0]["revision"] in r["refused"]["msg"]

    assert r["upgrade"]["changed"] is True
    assert r["upgrade"]["backends"][0]["action"] == "upgraded"
    assert r["upgrade"]["diff"]["before"].strip().endswith(f"schema {to_22}")
    assert r["upgrade2"]["changed"] is False
    assert r["upgrade2"]["backends"][0]["verdict"] == "MATCH"

    assert r["ahead"]["failed"] is True and "AHEAD" in r["ahead"]["msg"]
    assert r["ahead"]["exit_code"] == 11

    assert r["preflight_ok"]["verdict"] in ("pass", "warn")
    assert r["preflight_ok"]["changed"] is False
    assert r["preflight_fail"]["failed"] is True
    assert "Dhcp4.lease-database: schema:" in r["preflight_fail"]["msg"]
    assert any(f["check"] == "schema" and f["status"] == "fail"
               for f in r["preflight_fail"]["findings"])
    assert "Dhcp4.lease-database: schema:" in proc.stdout  # the play shows the finding


def test_a_wrong_password_appears_nowhere(ansible_env: dict[str, str], pg_server: Any,
                                          fresh_db_factory: Callable[..., FreshDatabase],
                                          tmp_path: Path) -> None:
    db = fresh_db_factory(pg_server)
    wrong = "Wr0ng-" + secrets.token_urlsafe(12)
    tasks = [{"name": "schema", "keadb.kea_db.kea_db_schema": {
        "db_type": db.type, "host": db.host, "port": db.port, "user": db.user,
        "name": db.name, "password": wrong, "kea_version": "3.0"}}]
    proc = run_playbook(ansible_env, playbook(tmp_path / "play.yml", tasks), "-vvv")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "DENIED" in output
    assert wrong not in output
    assert db.password not in output
