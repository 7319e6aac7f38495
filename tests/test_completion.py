"""Shell completion (click's own): the generated bash script, sourced in a real interactive
bash inside tmux, completes subcommands and option values as a person would see it; the zsh
and fish scripts are generated and their protocol carries the releases' help."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import ci_requires_servers

KEA_DB = Path(sys.executable).with_name("kea-db")  # the console script pip installed
WAIT = 8.0  # seconds any one screen may take (a completion starts Python: ~0.2 s)


def completion_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "_KEA_DB"))}
    env.update(extra)
    return env


def source(shell: str) -> str:
    proc = subprocess.run([str(KEA_DB)], env=completion_env(_KEA_DB_COMPLETE=f"{shell}_source"),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if ci_requires_servers(os.environ):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Pane:
    """One tmux session on its own server socket, running an interactive bash."""

    def __init__(self, tmux: str, rcfile: Path, env: dict[str, str]) -> None:
        self.tmux = tmux
        self.socket = f"keadb-completion-{os.getpid()}-{secrets.token_hex(4)}"
        self.env = env
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "200", "-y", "50",
                   f"bash --noprofile --rcfile {rcfile} -i")

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run([self.tmux, "-L", self.socket, *args], env=self.env,
                              capture_output=True, text=True, timeout=10, check=False)
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait(self, ready: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            text = self.screen()
            if ready(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"bash never showed {what}; the screen:\n{text}")
            time.sleep(0.05)

    def clear(self) -> None:
        self.keys("C-u", "C-l")
        self.wait(lambda s: s.strip() == "$", "an empty prompt")

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=10, check=False)


def test_bash_in_tmux_completes_commands_and_option_values(tmp_path: Path) -> None:
    tmux, bash = tool("tmux"), tool("bash")
    script = tmp_path / "kea-db.bash"
    script.write_text(source("bash"))
    rcfile = tmp_path / "bashrc"
    rcfile.write_text(f"PS1='$ '\nPATH={KEA_DB.parent}:$PATH\nsource {script}\n")
    env = completion_env(HOME=str(tmp_path), SHELL=bash, TERM="xterm",
                         TMUX_TMPDIR=str(tmp_path))
    env.pop("TMUX", None)
    pane = Pane(tmux, rcfile, env)
    try:
        pane.wait(lambda s: s.strip() == "$", "its prompt")
        pane.keys("kea-db che", "Tab")
        # capture-pane drops the space bash adds after a single match
        pane.wait(lambda s: "$ kea-db check-version" in s.splitlines(), "check-version")
        pane.clear()

        pane.keys("kea-db check-version --kea-version 3.", "Tab", "Tab")
        shown = pane.wait(lambda s: re.search(r"3\.0\s+3\.1\s+3\.2\s+3\.3", s) is not None,
                          "the 3.x series")
        listed = set(re.findall(r"(?<![\w.])\d+\.\d+(?:\.\d+)?(?![\w.])", shown))
        assert "2.6" not in listed and all(v.startswith("3.") for v in listed), shown
        pane.clear()

        pane.keys("kea-db check-version --kea-version 3.0.", "Tab", "Tab")
        pane.wait(lambda s: re.search(r"3\.0\.0\s+3\.0\.1\s+3\.0\.2\s+3\.0\.3\s+3\.0\.4", s)
                  is not None, "the 3.0.x releases")
        pane.clear()

        pane.keys("kea-db preflight --backend h", "Tab")
        pane.wait(lambda s: "$ kea-db preflight --backend hosts" in s.splitlines(),
                  "--backend hosts")
    finally:
        pane.close()


def test_zsh_and_fish_scripts_and_their_help() -> None:
    assert "#compdef kea-db" in source("zsh")
    assert "complete --no-files --command kea-db" in source("fish")
    proc = subprocess.run([str(KEA_DB)], capture_output=True, text=True, timeout=30,
                          check=False,
                          env=completion_env(_KEA_DB_COMPLETE="fish_complete",
                                             COMP_WORDS="kea-db init --kea-version 2.6.",
                                             COMP_CWORD="2.6."))
    lines = proc.stdout.splitlines()
    # fish: "plain,VALUE\tHELP"; 2.6.2 expects MySQL and PostgreSQL schema 22.2
    assert "plain,2.6.2\tMySQL 22.2, PostgreSQL 22.2" in lines, lines
    assert all(line.split(",", 1)[1].startswith("2.6.") for line in lines), lines


def fish_complete(words: str, incomplete: str) -> list[str]:
    proc = subprocess.run([str(KEA_DB)], capture_output=True, text=True, timeout=30,
                          check=False,
                          env=completion_env(_KEA_DB_COMPLETE="fish_complete",
                                             COMP_WORDS=words, COMP_CWORD=incomplete))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def test_backend_completes_the_entry_paths_of_the_config_file_given_before_it(
    tmp_path: Path,
) -> None:
    """``--backend`` after ``--config FILE`` offers that file's entry paths, each labelled
    without its password (an entry Kea would refuse, here for a host name with control
    characters, is labelled as such and its text not shown); an unreadable file offers the
    roles alone."""
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(
        '{"Dhcp4": {"lease-database": {"type": "memfile"},\n'
        ' "hosts-databases": [\n'
        '  {"type": "mysql", "name": "kea", "user": "kea", "password": "s3cret-pw",'
        ' "host": "db1"},\n'
        '  {"type": "postgresql", "name": "kea", "user": "kea", "password": "s3cret-pw",'
        ' "host": "db2\\n\\u001b[2Jx"}]}}\n')
    lines = fish_complete(f"kea-db check-version --config {conf} --backend Dhcp4.h",
                          "Dhcp4.h")
    assert lines == ["plain,Dhcp4.hosts-databases[0]\tmysql kea@db1/kea",
                     "plain,Dhcp4.hosts-databases[1]\tpostgresql: the entry has an error"], lines
    assert "s3cret-pw" not in "".join(lines)

    # preflight takes --config several times: the paths of every file, each once
    lines = fish_complete(f"kea-db preflight --config {conf} --config {conf} --backend D",
                          "D")
    assert [line.split("\t")[0] for line in lines] == [
        "plain,Dhcp4", "plain,Dhcp6", "plain,Dhcp4.lease-database",
        "plain,Dhcp4.hosts-databases[0]", "plain,Dhcp4.hosts-databases[1]"], lines

    lines = fish_complete(f"kea-db check-version --config {tmp_path / 'none.conf'} "
                          "--backend ", "")
    assert [line.split("\t")[0] for line in lines] == [
        "plain,lease", "plain,hosts", "plain,config", "plain,Dhcp4", "plain,Dhcp6"], lines
