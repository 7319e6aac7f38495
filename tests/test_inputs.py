"""Every local input file is hostile: bounded in size, never blocking, one clear line.

For each kind of input (``--password-file``, ``--config``, an ``<?include?>``d file, Kea's
``password-file``, trust-anchor, cert-file, key-file) a regular file works, and
``/dev/zero``, a FIFO nobody writes to, a directory, a missing file, an unreadable file and
an oversized one each give one line and the documented exit code, without a traceback,
within a second and in bounded memory. No database: the commands used either read files
only (``backends``), fail on the file before connecting, or connect to 127.0.0.1 port 1,
which refuses at once.

Every case runs in a forked child (``_in_child``) so that a regression cannot take the test
run down with it: the child's address space is capped (reading ``/dev/zero`` ends in a
MemoryError, an exit code 1, a failed test), the parent gives up on it after a few seconds
(a FIFO that blocks is a failed test, not a hung run), and the unreadable case drops to
user ``nobody`` (root reads files whatever their mode).
"""

from __future__ import annotations

import io
import json
import os
import pwd
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

# Everything the child may need is imported here: a child running as `nobody` cannot read
# the interpreter's own modules under /root.
import keadb_cli.cli.render
import keadb_cli.commands.check_version
import keadb_cli.commands.settings
import keadb_cli.commands.test_tls.check
import keadb_cli.kea.entries
import keadb_cli.kea.validate
import keadb_cli.text
from keadb_cli import files as kea_files
from keadb_cli.cli.main import main as cli_main
from keadb_cli.commands.settings import read_password_file
from keadb_cli.commands.test_tls import files as tls_files
from keadb_cli.commands.test_tls.files import Severity, check_tls_files
from keadb_cli.errors import ConfigError, ExitCode, SettingsError
from keadb_cli.files import (
    MAX_CONFIG_FILE,
    MAX_PASSWORD_FILE,
    MAX_TLS_FILE,
    read_bounded,
)
from keadb_cli.kea import config as kea_config
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.config import load, loads
from keadb_cli.kea.hostname import host_problem

assert keadb_cli.commands.check_version and keadb_cli.commands.test_tls.check
assert keadb_cli.kea.entries and keadb_cli.kea.validate and keadb_cli.text
assert keadb_cli.cli.render and keadb_cli.commands.settings
"ok".encode("idna")  # the codec module, for host names

SECOND = 1.0  # every refusal, and every working read, ends within this
PEAK = 8 * 1024 * 1024  # bytes Python may allocate for one refusal
CHILD_TIMEOUT = 10.0  # seconds before a child is taken for hung
HEADROOM = 512 * 1024 * 1024  # address space the child may add to what it inherits
UNREACHABLE_PORT = "1"

IS_ROOT = os.geteuid() == 0


# -- the child ------------------------------------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


def _drop_to_nobody() -> None:
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


def _in_child(fn: Callable[[], dict[str, Any]], *, as_nobody: bool = False) -> dict[str, Any]:
    """``fn()`` in a forked child with capped memory; its result, plus ``seconds`` and
    ``peak`` (bytes Python allocated at most). Fails the test when the child hangs."""
    read_end, write_end = os.pipe()
    limit = _vm_size() + HEADROOM
    pid = os.fork()
    if pid == 0:  # the child: never returns
        payload = b'{"crash": "the child did not finish"}'
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            if as_nobody:
                _drop_to_nobody()
            tracemalloc.start()
            started = time.monotonic()
            result = fn()
            result["seconds"] = time.monotonic() - started
            result["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            payload = json.dumps(result).encode()
        except BaseException as exc:
            payload = json.dumps({"crash": f"{type(exc).__name__}: {exc}"[:2000]}).encode()
        finally:
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            os._exit(0)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"hung: no answer within {CHILD_TIMEOUT:g} seconds")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(b"".join(chunks))
    assert "crash" not in result, result["crash"]
    return result


def _cli(args: list[str]) -> Callable[[], dict[str, Any]]:
    """The CLI in-process (in the child): exit code, stdout, stderr."""

    def run() -> dict[str, Any]:
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        code = cli_main(args)
        return {"code": code, "out": out.getvalue(), "err": err.getvalue()}

    return run


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kea-db: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _bounded(result: dict[str, Any]) -> None:
    assert result["seconds"] < SECOND, result
    assert result["peak"] < PEAK, result


# -- the files ------------------------------------------------------------------------------

CASES = ["regular", "dev-zero", "fifo", "directory", "missing", "unreadable", "oversized"]

# What the one line says for each bad case (after "<what> <path> ").
SAYS = {
    "dev-zero": "is a character device, not a regular file",
    "fifo": "is a FIFO (named pipe), not a regular file",
    "directory": "is a directory, not a file",
    "missing": "does not exist",
    "unreadable": "is not readable by this user",
    "oversized": "is larger than",
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory user `nobody` may enter (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="kea-db-inputs-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _make(place: Path, case: str, name: str, content: bytes, limit: int) -> str:
    """A path for ``case``; ``content`` is what the regular file holds."""
    path = place / name
    if case == "dev-zero":
        return "/dev/zero"
    if case == "fifo":
        os.mkfifo(path)
    elif case == "directory":
        path.mkdir()
    elif case == "missing":
        pass
    elif case == "unreadable":
        path.write_bytes(content)
        path.chmod(0)
    elif case == "oversized":
        with open(path, "wb") as fh:  # sparse: no disk, no memory
            fh.truncate(limit + 1)
    else:
        path.write_bytes(content)
        path.chmod(0o644)
    return str(path)


def _skip_unless_nobody(case: str) -> None:
    if case == "unreadable" and IS_ROOT:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root without a `nobody` user: root reads any file")


# -- --password-file: SETTINGS ----------------------------------------------------------------

CHECK = ["check-version", "--type", "postgresql", "--host", "127.0.0.1", "--port",
         UNREACHABLE_PORT, "--connect-timeout", "1", "--name", "kea", "--expect", "1.0"]


@pytest.mark.parametrize("case", CASES)
def test_password_file(place: Path, case: str) -> None:
    _skip_unless_nobody(case)
    path = _make(place, case, "pw", b"s3cret\nsecond line\n", MAX_PASSWORD_FILE)
    result = _in_child(_cli([*CHECK, "--password-file", path]),
                       as_nobody=case == "unreadable")
    _bounded(result)
    if case == "regular":  # read; then the connection is refused at once
        assert result["code"] == ExitCode.UNREACHABLE, result
        assert "password file" not in result["err"]
        assert read_password_file(path) == "s3cret"
        return
    assert result["code"] == ExitCode.SETTINGS, result
    line = _one_line(result["err"])
    assert f"password file {path} {SAYS[case]}" in line, line
    if case == "oversized":
        assert "64 KiB" in line


@pytest.mark.parametrize("case", CASES[1:])
def test_password_file_reader(place: Path, case: str) -> None:
    """read_password_file itself, for every bad case (the unreadable one included)."""
    _skip_unless_nobody(case)
    path = _make(place, case, "pw", b"s3cret\n", MAX_PASSWORD_FILE)

    def read() -> dict[str, Any]:
        try:
            read_password_file(path)
        except SettingsError as exc:
            return {"error": exc.message, "code": int(exc.exit_code)}
        return {"error": None}

    result = _in_child(read, as_nobody=case == "unreadable")
    _bounded(result)
    assert result["code"] == ExitCode.SETTINGS
    assert result["error"].startswith(f"password file {path} {SAYS[case]}"), result


# -- --config and an included file: CONFIG ----------------------------------------------------

GOOD_CONFIG = b'{"Dhcp4": {"lease-database": {"type": "mysql", "name": "kea"}}}\n'


@pytest.mark.parametrize("case", CASES)
def test_config_file(place: Path, case: str) -> None:
    _skip_unless_nobody(case)
    path = _make(place, case, "kea.conf", GOOD_CONFIG, MAX_CONFIG_FILE)
    result = _in_child(_cli(["backends", "--config", path, "--kea-version", "2.6"]),
                       as_nobody=case == "unreadable")
    _bounded(result)
    if case == "regular":
        assert result["code"] == ExitCode.OK, result
        assert "Dhcp4.lease-database" in result["out"]
        return
    assert result["code"] == ExitCode.CONFIG, result
    line = _one_line(result["err"])
    assert line.startswith(f"kea-db: error: Kea configuration file {path} {SAYS[case]}"), line
    if case == "oversized":
        assert "16 MiB" in line


@pytest.mark.parametrize("case", CASES)
def test_included_file(place: Path, case: str) -> None:
    _skip_unless_nobody(case)
    path = _make(place, case, "lease.json", b'{"type": "mysql", "name": "kea"}\n',
                 MAX_CONFIG_FILE)
    main = place / "kea.conf"
    main.write_text('{"Dhcp4": {\n  "lease-database": <?include "' + path + '"?>\n}}\n')
    main.chmod(0o644)
    result = _in_child(_cli(["backends", "--config", str(main), "--kea-version", "2.6"]),
                       as_nobody=case == "unreadable")
    _bounded(result)
    if case == "regular":
        assert result["code"] == ExitCode.OK, result
        assert "Dhcp4.lease-database" in result["out"]
        return
    assert result["code"] == ExitCode.CONFIG, result
    line = _one_line(result["err"])
    # file:line:column of the directive, then the included file.
    assert line.startswith(f"kea-db: error: {main}:2:21: include file {path} {SAYS[case]}"), line


@pytest.mark.parametrize("case", CASES)
def test_kea_password_file(place: Path, case: str) -> None:
    """Kea's own ``password-file`` keyword (newest rules: no released Kea has it yet, so
    not through the CLI, which applies the installed Kea's rules): an entry error at the
    keyword, which commands raise as one CONFIG line."""
    _skip_unless_nobody(case)
    path = _make(place, case, "pw", b"s3cret\n", MAX_PASSWORD_FILE)
    main = place / "kea.conf"
    main.write_text('{"Dhcp4": {"lease-database": {"type": "mysql", "name": "kea",\n'
                    '  "password-file": "' + path + '"}}}\n')
    main.chmod(0o644)

    def extract() -> dict[str, Any]:
        entry = keadb_cli.kea.entries.extract(load(main))[0]
        try:
            access = entry.require_access()
        except ConfigError as exc:
            return {"error": exc.message, "code": int(exc.exit_code)}
        return {"error": None, "password": access.password}

    result = _in_child(extract, as_nobody=case == "unreadable")
    _bounded(result)
    if case == "regular":
        assert result["error"] is None and result["password"] == "s3cret", result
        return
    assert result["code"] == ExitCode.CONFIG
    assert result["error"].startswith(
        f"{main}:2:20: Dhcp4.lease-database: password-file {path} {SAYS[case]}"), result


# -- trust-anchor, cert-file, key-file: findings ----------------------------------------------


def _tls_files(place: Path, ca: trustme.CA, key: str, case: str) -> dict[str, str]:
    """The TLS options of a mysql entry: ``key`` is the case's file, the others valid."""
    client = ca.issue_cert("kea@example.org", "kea")
    contents = {
        "trust-anchor": ca.cert_pem.bytes(),
        "cert-file": b"".join(blob.bytes() for blob in client.cert_chain_pems),
        "key-file": client.private_key_pem.bytes(),
    }
    options = {"trust-anchor": str(place / "ca.pem")} if key == "trust-anchor" else {
        "cert-file": str(place / "client.crt"), "key-file": str(place / "client.key")}
    for name, path in options.items():
        if name == key:
            options[name] = _make(place, case, f"the-{name}", contents[name], MAX_TLS_FILE)
            if case == "regular" and name == "key-file":
                os.chmod(options[name], 0o600)  # a key readable by others is a warning
        else:  # readable by `nobody` in the unreadable case; a 0644 key is only a warning
            Path(path).write_bytes(contents[name])
            os.chmod(path, 0o600 if name == "key-file" and case != "unreadable" else 0o644)
    return options


def _access(options: dict[str, str]) -> DbAccess:
    return DbAccess(type="mysql", name="kea", trust_anchor=options.get("trust-anchor"),
                    cert_file=options.get("cert-file"), key_file=options.get("key-file"))


def _tls_says(key: str, case: str) -> str:
    if key == "trust-anchor" and case == "directory":  # a CA directory, for MySQL
        return "has no hash-named certificates"
    return SAYS[case]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("key", ["trust-anchor", "cert-file", "key-file"])
def test_tls_file_checks(place: Path, ca: trustme.CA, key: str, case: str) -> None:
    """The offline file checks: one error finding for the file, never an exception."""
    _skip_unless_nobody(case)
    options = _tls_files(place, ca, key, case)
    access = _access(options)

    def check() -> dict[str, Any]:
        findings = check_tls_files(access)
        return {"findings": [[f.severity.value, f.key, f.message] for f in findings]}

    result = _in_child(check, as_nobody=case == "unreadable")
    _bounded(result)
    errors = [f for f in result["findings"] if f[0] == Severity.ERROR.value]
    if case == "regular":
        assert result["findings"] == [], result
        return
    assert len(errors) == 1, result
    _, found_key, message = errors[0]
    assert found_key == key
    assert message.startswith(f"{key} {options[key]} {_tls_says(key, case)}"), message
    assert "\n" not in message
    if case == "oversized":
        assert "1 MiB" in message


TLS_CLI = ["test-tls", "--type", "mysql", "--host", "127.0.0.1", "--port", UNREACHABLE_PORT,
           "--connect-timeout", "1", "--name", "kea", "--kea-version", "3.0"]


@pytest.mark.parametrize("case", ["regular", "dev-zero", "fifo", "oversized"])
@pytest.mark.parametrize("key", ["trust-anchor", "cert-file", "key-file"])
def test_tls_files_through_test_tls(place: Path, ca: trustme.CA, key: str, case: str) -> None:
    """A FIFO or a device, which the client libraries would read themselves and block on,
    is refused before connecting (SETTINGS); other file problems are test-tls findings:
    one error line, and the connection's verdict as exit code (UNREACHABLE here: it
    outranks file findings, which give TLS_POLICY only when the session verifies)."""
    options = _tls_files(place, ca, key, case)
    args = [*TLS_CLI]
    for name, path in options.items():
        args += [f"--{name}", path]
    result = _in_child(_cli(args))
    _bounded(result)
    assert "Traceback" not in result["err"]
    if case in ("dev-zero", "fifo"):
        assert result["code"] == ExitCode.SETTINGS, result
        assert _one_line(result["err"]).startswith(
            f"kea-db: error: {key} {options[key]} {SAYS[case]}"), result["err"]
        return
    assert result["code"] == ExitCode.UNREACHABLE, result
    if case == "regular":
        assert f"{key}:" not in result["err"], result["err"]
        return
    line = _one_line(result["err"])
    assert f"policy: {key}: {key} {options[key]} {SAYS[case]}" in line, line


# -- read_bounded itself ----------------------------------------------------------------------


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, what="test file", limit=100, error=SettingsError) == b"x" * 100
    with pytest.raises(SettingsError, match=r"^test file .*/f is larger than 99 bytes"):
        read_bounded(path, what="test file", limit=99, error=SettingsError)


def test_the_read_stops_at_the_limit_whatever_the_size_says() -> None:
    """/proc files say size 0: the cap holds on what is read, not on what stat says."""
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(ConfigError, match=r"^thing /proc/self/status is larger than 64 bytes"):
        read_bounded("/proc/self/status", what="thing", limit=64, error=ConfigError)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(SettingsError, match=r"^password file .* is a socket, not a regular"):
            read_password_file(str(path))


def test_where_and_name_shape_the_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_bounded(tmp_path / "nope", what="include file", limit=10, error=ConfigError,
                     name="nope", where="kea.conf:3:7")
    assert info.value.message == "kea.conf:3:7: include file nope does not exist"


def test_a_hostile_path_is_shown_escaped(tmp_path: Path) -> None:
    path = str(tmp_path / "evil\x1b[31mred")
    with pytest.raises(SettingsError) as info:
        read_password_file(path)
    assert "\x1b" not in info.value.message and "\\x1b[31mred" in info.value.message
    with pytest.raises(SettingsError, match="NUL byte"):
        read_password_file("/tmp/a\x00b")


def test_a_binary_or_non_utf8_password_file_is_still_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingsError, match="is not UTF-8 text"):
        read_password_file(str(path))


# -- a configuration and all its includes -----------------------------------------------------


def test_includes_have_a_total_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "part.json").write_text('"' + "x" * 60 + '"')
    (tmp_path / "main.json").write_text(
        '{"a": [' + ", ".join(['<?include "part.json"?>'] * 5) + "]}")
    assert len(load(tmp_path / "main.json", cwd=tmp_path)["a"]) == 5
    monkeypatch.setattr(kea_config, "MAX_CONFIG_TOTAL", 300)
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "main.json", cwd=tmp_path)
    # main (145 bytes) and two parts (62 each) fit; the third does not.
    assert info.value.message.startswith(f"{tmp_path / 'main.json'}:1:58: the configuration "
                                         "and its included files are larger than 300 bytes")


def test_includes_have_a_count_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "main.json").write_text('{"a": [1' + '<?include "empty.json"?>' * 4 + "]}")
    assert load(tmp_path / "main.json", cwd=tmp_path)["a"] == [1]
    monkeypatch.setattr(kea_config, "MAX_CONFIG_INCLUDES", 3)
    with pytest.raises(ConfigError, match=r"main.json:1:81: more than 3 include directives"):
        load(tmp_path / "main.json", cwd=tmp_path)


# -- numbers and names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("9" * 5000, "integer 99999999999999999999...99999999 (5000 characters) does not fit"),
        ("-" + "9" * 5000, "integer -9999999999999999999...99999999 (5001 characters) does "),
        ("1" * 20, "integer 11111111111111111111 does not fit in 64 bits"),
        ("9" * 5000 + ".5", "number 99999999999999999999...999999.5 (5002 characters) is too "),
        ("+" + "1" * 5000, "number +1111111111111111111...11111111 (5001 characters) has a "),
    ],
)
def test_huge_numbers_are_one_short_config_error(token: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        loads('{"a": ' + token + "}", name="k.conf")
    assert time.monotonic() - started < SECOND
    assert info.value.message.startswith(f"k.conf:1:7: {message}"), info.value.message
    assert len(info.value.message) < 200


def test_leading_zeros_do_not_make_an_integer_large() -> None:
    config = loads('{"a": ' + "0" * 5000 + '1, "b": -' + "0" * 5000 + "7}")
    assert config["a"] == 1 and isinstance(config["a"], int)
    assert config["b"] == -7 and isinstance(config["b"], int)
    assert len(config.warnings) == 2


LABEL_64 = "a" * 64 + ".example"
NAME_254 = ".".join(["a" * 63] * 4)[:254]


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("db.example.org", None),
        ("a" * 63 + ".example", None),
        (".".join(["a" * 63] * 3) + "." + "a" * 61, None),  # 253 characters
        (".".join(["a" * 63] * 3) + "." + "a" * 61 + ".", None),  # and the root's dot
        ("192.0.2.1", None),
        ("2001:db8::1", None),
        ("fe80::1%eth0", None),
        ("/run/postgresql", None),
        ("localhost", None),
        (LABEL_64, "has a label of 64 characters"),
        (NAME_254, "is 254 characters long"),
        ("db..example", "has an empty label"),
        ("db\x00.example", "holds a control character"),
        ("a" * 64 + ":5432", "has a label of 69 characters"),
    ],
)
def test_host_names(host: str, problem: str | None) -> None:
    found = host_problem(host)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
        assert "aaaa" not in found  # the value itself is never quoted


@pytest.mark.parametrize("host", [LABEL_64, NAME_254])
def test_a_host_name_no_resolver_takes_is_a_settings_error(host: str) -> None:
    """Before: UnicodeError ("label empty or too long") from socket.getaddrinfo, exit 1."""
    result = _in_child(_cli(["check-version", "--type", "mysql", "--host", host, "--name",
                             "kea", "--expect", "1.0"]))
    assert result["code"] == ExitCode.SETTINGS, result
    line = _one_line(result["err"])
    assert line.startswith("kea-db: error: --host ") and "RFC 1035" in line, line
    _bounded(result)


def test_a_host_name_no_resolver_takes_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kea.conf"
    path.write_text('{"Dhcp4": {"lease-database": {"type": "postgresql", "name": "kea",\n'
                    '  "host": "' + LABEL_64 + '"}}}\n')
    result = _in_child(_cli(["backends", "--config", str(path), "--kea-version", "2.6"]))
    assert result["code"] == ExitCode.CONFIG, result
    line = _one_line(result["err"])
    assert line == (f"kea-db: error: {path}:2:11: Dhcp4.lease-database: 'host' has a label "
                    "of 64 characters: a host name label has at most 63 (RFC 1035), so no "
                    "resolver can look it up"), line


# -- a CA directory ---------------------------------------------------------------------------


def test_a_ca_directory_is_examined_up_to_a_cap(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        ca.cert_pem.write_to_path(str(tmp_path / f"0000000{i}.0"))
    os.mkfifo(tmp_path / "0000000f.0")  # a FIFO among them: a finding, not a hang
    access = DbAccess(type="mysql", name="kea", trust_anchor=str(tmp_path))

    def check() -> dict[str, Any]:
        return {"messages": [[f.severity.value, f.message] for f in check_tls_files(access)]}

    result = _in_child(check)
    _bounded(result)
    messages = [(Severity(severity), message) for severity, message in result["messages"]]
    assert (Severity.ERROR, f"trust-anchor {tmp_path / '0000000f.0'} is a FIFO (named pipe), "
            "not a regular file: give the path of a regular file (kea-db does not read "
            "FIFOs, devices or sockets: they can block or never end)") in messages, messages
    monkeypatch.setattr(tls_files, "MAX_CA_DIR_FILES", 3)
    monkeypatch.setattr(tls_files, "MAX_CA_DIR_ENTRIES", 4)
    messages = [(Severity(severity), message)
                for severity, message in _in_child(check)["messages"]]
    # Six entries, all hash-named: four are listed, three of those examined.
    assert messages[:2] == [
        (Severity.WARNING, f"trust-anchor {tmp_path} holds more than 4 entries; only the "
                           "first 4 listed were looked at"),
        (Severity.WARNING, f"trust-anchor {tmp_path} holds 4 hash-named certificates; only "
                           "the first 3 were checked"),
    ], messages


def test_caps_are_as_documented() -> None:
    assert kea_files.MAX_PASSWORD_FILE == 64 * 1024
    assert kea_files.MAX_CONFIG_FILE == 16 * 1024 * 1024
    assert kea_files.MAX_CONFIG_TOTAL == 64 * 1024 * 1024
    assert kea_files.MAX_TLS_FILE == 1024 * 1024
    assert kea_files.MAX_CA_DIR_FILES == 1000


# -- NUL characters, which C strings and paths cannot hold --------------------------------------


def test_an_include_name_with_a_nul_past_the_binary_probe(tmp_path: Path) -> None:
    """Before: ValueError (embedded null byte) from os.path.realpath, exit 1."""
    path = tmp_path / "kea.conf"
    path.write_bytes(b"{" + b" " * 9000 + b'"a": <?include "x\x00y"?>}')
    with pytest.raises(ConfigError) as info:
        load(path, cwd=tmp_path)
    assert info.value.message == (f"{path}:1:9007: include file name holds a NUL byte: not a "
                                  "file name")


@pytest.mark.parametrize("key", ["name", "user", "password", "trust-anchor", "cert-file",
                                 "key-file", "cipher-list"])
def test_a_nul_in_a_c_string_value_is_a_config_error(tmp_path: Path, key: str) -> None:
    path = tmp_path / "kea.conf"
    entry = {"type": "mysql", "name": "kea", key: "a\u0000b"}
    path.write_text(json.dumps({"Dhcp4": {"lease-database": entry}}))
    result = _in_child(_cli(["backends", "--config", str(path), "--kea-version", "3.0"]))
    assert result["code"] == ExitCode.CONFIG, result
    line = _one_line(result["err"])
    assert f"Dhcp4.lease-database: '{key}' holds a NUL character (\\u0000): Kea hands it to " \
           "the MySQL client library as a C string, which would end there" in line, line
    assert "a\\x00b" not in line and "a\x00b" not in line  # the value is not quoted


def test_a_nul_in_a_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"abc\x00def\n")
    with pytest.raises(SettingsError, match=r"holds a NUL byte in its first line"):
        read_password_file(str(path))
    with pytest.raises(ConfigError, match=r"^k.conf:1:2: password-file pw holds a NUL byte"):
        keadb_cli.kea.validate.read_password_file("pw", cwd=tmp_path, where="k.conf:1:2")
    path.write_bytes(b"abc\nd\x00ef\n")  # on a line that is not used: fine
    assert read_password_file(str(path)) == "abc"


def test_a_huge_type_is_quoted_short_in_the_listing(tmp_path: Path) -> None:
    path = tmp_path / "kea.conf"
    path.write_text(json.dumps({"Dhcp4": {"lease-database": {"type": "x" * 1_000_000}}}))
    result = _in_child(_cli(["check-version", "--config", str(path), "--expect", "1.0"]))
    assert result["code"] == ExitCode.CONFIG, result
    line = _one_line(result["err"])
    assert line.endswith("found Dhcp4.lease-database (" + "x" * 40 + "... (1000000 characters))")
