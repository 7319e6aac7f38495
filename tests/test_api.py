"""keadb_cli.api against the command line: for each of the six commands, on real throw-away
servers, the API's ``Result.to_json()`` is the document ``--json`` prints and its
``exit_code`` the command's exit status; settings errors raise what the CLI exits with."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import (
    FreshDatabase,
    create_fresh_database,
    drop_fresh_database,
    grant_verify_scratch,
)

from keadb_cli import api
from keadb_cli.cli.main import main
from keadb_cli.errors import ConfigError, ExitCode, SettingsError

pytestmark = pytest.mark.db

BACKENDS = ["postgresql", "mariadb"]
TIMING = {"seconds", "elapsed_s"}  # wall times differ from run to run


def normalised(value: Any, db: FreshDatabase | None = None) -> Any:
    """The document without wall times, with the database's own names as placeholders (the
    CLI and the API may act on two databases in the same state)."""
    if isinstance(value, dict):
        return {k: normalised(v, db) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [normalised(v, db) for v in value]
    if isinstance(value, str) and db is not None:
        return value.replace(db.name, "DBNAME").replace(db.user, "DBUSER")
    return value


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        db: FreshDatabase | None, *args: str) -> tuple[int, dict[str, Any]]:
    """``kea-db ARGS --json`` in process (the entry point's own error handling included)."""
    target = [] if db is None else ["--type", db.type, "--host", db.host, "--port",
                                    str(db.port), "--user", db.user, "--name", db.name]
    if db is not None:
        monkeypatch.setenv("KEA_DB_PASSWORD", db.password)
    capsys.readouterr()
    code = main([args[0], *target, *args[1:], "--json"])
    out, err = capsys.readouterr()
    monkeypatch.delenv("KEA_DB_PASSWORD", raising=False)
    assert "Traceback" not in err, err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def settings(db: FreshDatabase, **given: Any) -> api.Settings:
    return api.Settings(type=db.type, host=db.host, port=db.port, user=db.user, name=db.name,
                        password=db.password, **given)


def _server(request: pytest.FixtureRequest, backend: str) -> Any:
    if backend == "postgresql":
        return request.getfixturevalue("pg_server")
    return request.getfixturevalue("mysql_server_factory")(tls="on", flavor=backend)


def _pair(server: Any) -> tuple[FreshDatabase, FreshDatabase]:
    made = (create_fresh_database(server), create_fresh_database(server))
    for db in made:
        grant_verify_scratch(db)
        if db.type == "mysql":
            server.warm_auth_cache(db.user, db.password)
    return made


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest) -> Iterator[dict[str, tuple[FreshDatabase,
                                                                        FreshDatabase]]]:
    """Pairs of databases the read-only scenarios share: "empty", and "2.2" (Kea 2.2's
    schema); one of each pair for the CLI, the other for the API."""
    server = _server(request, request.param)
    pairs = {"empty": _pair(server), "2.2": _pair(server)}
    with pytest.MonkeyPatch.context() as patch:
        for db in pairs["2.2"]:
            init_at(db, "2.2", patch)
    yield pairs
    for pair in pairs.values():
        for db in pair:
            drop_fresh_database(db)


@pytest.fixture
def own(request: pytest.FixtureRequest, shared: dict[str, Any]) -> Iterator[
        Callable[[str | None], tuple[FreshDatabase, FreshDatabase]]]:
    """``own(release)``: a pair of this test's own (the scenarios that write), on the
    server of ``shared``."""
    made: list[FreshDatabase] = []

    def make(release: str | None) -> tuple[FreshDatabase, FreshDatabase]:
        pair = _pair(shared["empty"][0].server)
        made.extend(pair)
        if release:
            with pytest.MonkeyPatch.context() as patch:
                for db in pair:
                    init_at(db, release, patch)
        return pair

    yield make
    for db in made:
        drop_fresh_database(db)


def init_at(db: FreshDatabase, release: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database at ``release``'s schema (built by the CLI, the path other tests prove)."""
    with monkeypatch.context() as patch:
        patch.setenv("KEA_DB_PASSWORD", db.password)
        assert main(["init", "--type", db.type, "--host", db.host, "--port", str(db.port),
                     "--user", db.user, "--name", db.name, "--kea-version", release]) == 0


# (id, the databases' state first: "empty" or a release, whether the command writes (then
# each test has its own pair), CLI arguments, API call, exit code, verdict, changed)
Call = Callable[[api.Settings], api.Result]
SCENARIOS: list[tuple[str, str, bool, list[str], Call, int, str, bool]] = [
    ("check-version-empty", "empty", False, ["check-version", "--kea-version", "2.2"],
     lambda s: api.check_version(s), ExitCode.EMPTY, "EMPTY", False),
    ("init-empty", "empty", True, ["init", "--kea-version", "2.2"],
     lambda s: api.init(s), ExitCode.OK, "EMPTY", True),
    ("init-match", "2.2", False, ["init", "--kea-version", "2.2"],
     lambda s: api.init(s), ExitCode.OK, "MATCH", False),
    ("check-version-match", "2.2", False, ["check-version", "--kea-version", "2.2"],
     lambda s: api.check_version(s), ExitCode.OK, "MATCH", False),
    ("check-version-behind", "2.2", False, ["check-version", "--kea-version", "3.0"],
     lambda s: api.check_version(s), ExitCode.BEHIND, "BEHIND", False),
    ("upgrade-plan", "2.2", False, ["upgrade", "--kea-version", "3.0", "--plan"],
     lambda s: api.upgrade(s, plan=True), ExitCode.OK, "BEHIND", False),
    ("upgrade", "2.2", True, ["upgrade", "--kea-version", "3.0", "--yes"],
     lambda s: api.upgrade(s), ExitCode.OK, "BEHIND", True),
    ("init-behind-refused", "2.2", False, ["init", "--kea-version", "3.0"],
     lambda s: api.init(s), ExitCode.BEHIND, "BEHIND", False),
    ("verify-clean", "2.2", False, ["verify"], lambda s: api.verify(s), ExitCode.OK, "CLEAN",
     False),
]


@pytest.mark.parametrize(("state", "writes", "argv", "call", "code", "verdict", "changed"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_cli_and_api_agree(shared: dict[str, tuple[FreshDatabase, FreshDatabase]],
                           own: Callable[[str | None], tuple[FreshDatabase, FreshDatabase]],
                           state: str, writes: bool, argv: list[str], call: Call, code: int,
                           verdict: str, changed: bool, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    pair = own(None if state == "empty" else state) if writes else shared[state]
    by_cli, by_api = pair
    cli_code, cli_doc = cli(capsys, monkeypatch, by_cli, *argv)
    kea_version = argv[argv.index("--kea-version") + 1] if "--kea-version" in argv else None
    result = call(settings(by_api, kea_version=kea_version))
    assert (cli_code, int(result.exit_code)) == (code, code)
    assert (result.verdict, result.changed) == (verdict, changed)
    assert normalised(result.to_json(), by_api) == normalised(cli_doc, by_cli)
    assert by_api.password not in repr(result) + json.dumps(result.to_json())
    if changed:  # both databases really changed, the same way
        for db in pair:
            check = api.check_version(settings(db, kea_version=kea_version))
            assert (check.verdict, check.exit_code) == ("MATCH", ExitCode.OK)


@pytest.fixture(params=BACKENDS)
def one_db(request: pytest.FixtureRequest,
           fresh_db_factory: Callable[..., FreshDatabase]) -> FreshDatabase:
    server = (request.getfixturevalue("pg_server") if request.param == "postgresql" else
              request.getfixturevalue("mysql_server_factory")(tls="on", flavor=request.param))
    db = fresh_db_factory(server)
    if db.type == "mysql":
        server.warm_auth_cache(db.user, db.password)
    return db


def test_preflight_on_a_kea_config_file(one_db: FreshDatabase, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only, so both run on one database: a 2.2 schema where Kea 3.0 wants 3.0's."""
    init_at(one_db, "2.2", monkeypatch)
    hooks = [{"library": f"/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_{lib}.so"}
             for lib in ("mysql", "pgsql")]
    entry = {"type": one_db.type, "host": one_db.host, "port": one_db.port,
             "user": one_db.user, "password": one_db.password, "name": one_db.name}
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {"hooks-libraries": hooks, "lease-database": entry}}))
    cli_code, cli_doc = cli(capsys, monkeypatch, None, "preflight", "--config", str(conf),
                            "--kea-version", "3.0")
    result = api.preflight(api.Settings.from_kea_config(str(conf), kea_version="3.0"))
    assert (cli_code, int(result.exit_code)) == (ExitCode.BEHIND, ExitCode.BEHIND)
    assert result.verdict == "fail" and not result.changed
    assert "Dhcp4.lease-database: schema:" in result.detail
    assert normalised(result.to_json()) == normalised(cli_doc)
    assert one_db.password not in json.dumps(result.to_json()) + result.detail


def test_test_tls_verified(one_db: FreshDatabase, tls_material: Any,
                           capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    anchor = str(tls_material.ca_cert)
    cli_code, cli_doc = cli(capsys, monkeypatch, one_db, "test-tls", "--trust-anchor", anchor,
                            "--kea-version", "3.2")
    result = api.test_tls(settings(one_db, trust_anchor=anchor, kea_version="3.2"))
    assert (cli_code, int(result.exit_code)) == (0, 0)
    assert result.verdict == "VERIFIED" and not result.changed
    assert normalised(result.to_json()) == normalised(cli_doc)


def test_unreachable_is_a_result(capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port: UNREACHABLE is a result (the CLI prints it as a document), not a
    raise."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["check-version", "--type", "postgresql", "--host", "127.0.0.1", "--port",
            str(port), "--user", "kea", "--name", "kea", "--kea-version", "2.6",
            "--connect-timeout", "2"]
    cli_code, cli_doc = cli(capsys, monkeypatch, None, *args)
    result = api.check_version(api.Settings(type="postgresql", host="127.0.0.1", port=port,
                                            user="kea", name="kea", kea_version="2.6",
                                            connect_timeout=2))
    assert (cli_code, int(result.exit_code)) == (ExitCode.UNREACHABLE, ExitCode.UNREACHABLE)
    assert result.verdict == "UNREACHABLE"
    assert normalised(result.to_json()) == normalised(cli_doc)


@pytest.mark.parametrize(("argv", "given", "error", "code", "message"), [
    (["check-version", "--host", "db", "--name", "kea", "--kea-version", "2.6"],
     {"host": "db", "name": "kea", "kea_version": "2.6"}, SettingsError, 4,
     "no backend type: give --type mysql|postgresql or --config FILE"),
    (["init", "--type", "mysql", "--name", "kea", "--kea-version", "1.1"],
     {"type": "mysql", "name": "kea", "kea_version": "1.1"}, SettingsError, 4, None),
    (["verify", "--config", "/nonexistent/kea-dhcp4.conf"],
     {"config": "/nonexistent/kea-dhcp4.conf"}, ConfigError, 3, None),
], ids=["no-type", "unknown-release", "missing-config"])
def test_bad_settings_raise_what_the_cli_exits_with(
    argv: list[str], given: dict[str, Any], error: type[Exception], code: int,
    message: str | None, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(argv) == code
    cli_error = capsys.readouterr().err.strip()
    call = {"check-version": api.check_version, "init": api.init, "verify": api.verify}
    with pytest.raises(error) as raised:
        call[argv[0]](api.Settings(**given))
    assert int(raised.value.exit_code) == code  # type: ignore[attr-defined]
    assert cli_error == f"kea-db: error: {raised.value}"
    if message:
        assert str(raised.value) == message


def test_settings_precedence_keyword_over_env_over_file(tmp_path: Path) -> None:
    env = {"KEA_DB_HOST": "from-env", "KEA_DB_PORT": "3306", "KEA_DB_READONLY": "yes",
           "KEA_DB_PASSWORD": "envpass", "KEA_DB_CONFIG": "/etc/kea/kea-dhcp4.conf"}
    s = api.Settings.from_env(env, host="given")
    assert (s.host, s.port, s.readonly, s.password, s.config) == (
        "given", 3306, True, "envpass", "/etc/kea/kea-dhcp4.conf")
    assert "envpass" not in repr(s)
    # a password file wins over KEA_DB_PASSWORD, as on the command line
    assert api.Settings.from_env(env, password_file="/run/pw").password is None
    with pytest.raises(SettingsError, match="KEA_DB_PORT must be a whole number"):
        api.Settings.from_env({"KEA_DB_PORT": "x"})
    with pytest.raises(SettingsError, match="port must be a whole number"):
        api.Settings(port="5432")  # type: ignore[arg-type]


def test_environment_over_config_file(one_db: FreshDatabase, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The file names another database and a wrong port; the environment corrects both."""
    init_at(one_db, "2.2", monkeypatch)
    entry = {"type": one_db.type, "host": one_db.host, "port": 1, "user": one_db.user,
             "password": one_db.password, "name": "not_this_one"}
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {"lease-database": entry}}))
    env = {"KEA_DB_NAME": one_db.name, "KEA_DB_PORT": str(one_db.port),
           "KEA_DB_CONFIG": str(conf), "KEA_DB_KEA_VERSION": "2.2"}
    result = api.check_version(api.Settings.from_env(env))
    assert (result.verdict, result.exit_code) == ("MATCH", ExitCode.OK)


def test_importing_the_api_stays_light() -> None:
    heavy = ("sqlalchemy", "alembic", "psycopg", "pymysql", "rich", "cryptography")
    code = ("import sys, keadb_cli.api; print(sorted({m.split('.')[0] for m in sys.modules} "
            f"& set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_public_names() -> None:
    assert set(api.__all__) >= {"Settings", "Result", "check_version", "init", "upgrade",
                                "verify", "preflight", "test_tls"}
    assert all(hasattr(api, name) for name in api.__all__)


def readme_examples() -> list[str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def test_readme_example_runs(pg_server: Any,
                             fresh_db_factory: Callable[..., FreshDatabase]) -> None:
    """The README's first example, as it is, on an empty database: EMPTY, then init; run
    again: MATCH."""
    db = fresh_db_factory(pg_server)
    example = readme_examples()[0]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "KEA_DB_TYPE": db.type,
           "KEA_DB_HOST": db.host, "KEA_DB_PORT": str(db.port), "KEA_DB_USER": db.user,
           "KEA_DB_NAME": db.name, "KEA_DB_PASSWORD": db.password}
    outputs = [subprocess.run([sys.executable, "-c", example], capture_output=True,
                              text=True, env=env, check=True, timeout=120).stdout
               for _ in range(2)]
    assert outputs[0].startswith("EMPTY 12 ") and outputs[1].startswith("MATCH 0 ")
    assert len(readme_examples()) == 2
