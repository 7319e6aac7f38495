"""The command line without a database: bad input, exit codes, help, JSON shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keadb_cli.cli.main import main
from keadb_cli.errors import ExitCode

BASE = ["check-version", "--type", "postgresql", "--host", "127.0.0.1", "--name", "kea",
        "--kea-version", "2.2"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kea-db: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], err


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["check-version", "--type", "sqlite", "--name", "x", "--kea-version", "2.2"],
         ExitCode.SETTINGS, "--type must be mysql or postgresql"),
        ([*BASE, "--port", "70000"], ExitCode.SETTINGS, "between 0 and 65535"),
        (["check-version", "--type", "mysql", "--kea-version", "2.2"], ExitCode.SETTINGS,
         "no database name"),
        (["check-version", "--name", "kea", "--kea-version", "2.2"], ExitCode.SETTINGS,
         "no backend type"),
        ([*BASE[:-2], "--kea-version", "2.8"], ExitCode.SETTINGS, "unknown Kea release series"),
        ([*BASE[:-2], "--kea-version", "2.6.77"], ExitCode.SETTINGS, "unknown Kea release"),
        ([*BASE[:-2], "--expect", "fourteen"], ExitCode.SETTINGS, "--expect"),
        ([*BASE, "--connect-timeout", "0"], ExitCode.SETTINGS, "connect-timeout"),
        ([*BASE, "--port", "abc"], ExitCode.USAGE, "'abc' is not a valid integer"),
        ([*BASE, "--no-such-option"], ExitCode.USAGE, "No such option"),
        (["no-such-command"], ExitCode.USAGE, "No such command"),
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(
    args: list[str], code: ExitCode, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(args, capsys)
    assert rc == code
    assert out == ""
    assert_one_line_error(err, fragment)


def test_password_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    rc, _, err = run([*BASE, "--password-file", str(missing)], capsys)
    assert rc == ExitCode.SETTINGS
    assert_one_line_error(err, "does not exist")
    rc, _, err = run([*BASE, "--password-file", str(tmp_path)], capsys)
    assert rc == ExitCode.SETTINGS
    assert_one_line_error(err, "is a directory")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    rc, _, err = run([*BASE, "--password-file", str(binary)], capsys)
    assert rc == ExitCode.SETTINGS
    assert_one_line_error(err, "not UTF-8")
    # Root reads any file whatever its mode; /proc/self/mem refuses plain reads for everyone.
    rc, _, err = run([*BASE, "--password-file", "/proc/self/mem"], capsys)
    assert rc == ExitCode.SETTINGS
    assert_one_line_error(err, "cannot be read")


def test_options_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEA_DB_TYPE", "oracle")
    monkeypatch.setenv("KEA_DB_NAME", "kea")
    rc, _, err = run(["check-version", "--kea-version", "2.2"], capsys)
    assert rc == ExitCode.SETTINGS
    assert_one_line_error(err, "'oracle'")
    # the command line wins over the environment
    monkeypatch.setenv("KEA_DB_PORT", "99999")
    rc, _, err = run(["check-version", "--type", "mysql", "--kea-version", "2.2"], capsys)
    assert_one_line_error(err, "99999")


def test_versions_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["versions", "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["format"] == 1
    by_kea = {r["kea"]: r for r in doc["releases"]}
    # "init": the backends whose schema `kea-db init` can build for the release.
    assert by_kea["2.2.0"] == {
        "kea": "2.2.0", "mysql": "14.0", "postgresql": "13.0", "init": ["mysql", "postgresql"]
    }
    assert {k: v for k, v in by_kea["3.0.4"].items() if k != "init"} == {
        "kea": "3.0.4", "mysql": "30.0", "postgresql": "29.0"
    }
    assert "postgresql" in by_kea["3.0.4"]["init"]
    assert by_kea["2.0.0"]["init"] == []


def test_versions_plain_text_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["versions"], capsys)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KEA", "MYSQL", "POSTGRESQL", "INIT", "BUILDS"]
    assert "2.6.3   22.2   22.2" in out
    assert [line.split()[3:] for line in lines if line.startswith("2.2.0 ")] == [
        ["mysql,", "postgresql"]
    ]
    assert [line.split()[3:] for line in lines if line.startswith("2.0.0 ")] == [["-"]]
    assert "\x1b[" not in out


def test_every_command_has_help_and_is_in_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    from keadb_cli.cli.main import cli

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"kea-db {name}" in readme, f"{name} is missing from README.md"
        rc, out, _ = run([name, "--help"], capsys)
        assert rc == 0
        assert "Example:" in out, name


def test_exit_codes_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"exit code {code.name} missing from README"


def test_real_entry_point_has_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEA_DB_")}
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", "mysql",
         "--name", "kea", "--port", "-1", "--kea-version", "2.2"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == ExitCode.SETTINGS
    assert_one_line_error(proc.stderr, "port")


def test_verify_mode_without_root_certificate_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """libpq's PGSSLMODE=verify-ca with no CA anywhere: a one-line error, not a crash."""
    monkeypatch.setenv("PGSSLMODE", "verify-ca")
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, out, err = run(BASE, capsys)
    assert rc == ExitCode.SETTINGS
    assert out == ""
    assert_one_line_error(err, "needs a root certificate")


class _Terminal:
    """A stdout that says it is a terminal, to see what a person would see."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("no_color", [False, True])
def test_terminal_gets_a_rich_table_and_no_color_is_honoured(
    monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    from keadb_cli.cli import render

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "120")
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    render.table(["VERDICT", "DETAIL"], [["MATCH", "fine"], ["AHEAD", "newer"]])
    shown = terminal.buffer.getvalue()
    assert "┃" in shown or "│" in shown  # a drawn table, not the piped plain text
    green, red = "\x1b[1;32m", "\x1b[1;31m"
    assert (green in shown and red in shown) is not no_color
    if no_color:
        assert ";32m" not in shown and ";31m" not in shown
