"""kea-db against hostile or broken servers (tests/fakes.py), through the real CLI.

Each case: one verdict with a documented exit code and reason, no traceback, the password
never received where it could be read, every wait bounded, and bounded memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import FakeServer

from keadb_cli.db.pg_guard import MAX_SCRAM_ITERATIONS

PASSWORD = "s3cret-Kea-password"

# Runs the CLI in-process and reports its own peak resident memory on the last stderr line:
# VmHWM of its own address space (getrusage's maxrss would include the forking parent's).
_MEASURED = (
    "import os, re, sys\n"
    "from keadb_cli.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "print(f'peak-kib={hwm}', file=sys.stderr)\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
    # As the console script ends (keadb_cli.cli.main): no interpreter teardown, which a
    # libpq login thread still computing what a server demanded would not survive.
    "os._exit(code)\n"
)


def _env(libpq_dir: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    env["KEA_DB_PASSWORD"] = PASSWORD
    if libpq_dir:
        env["LD_LIBRARY_PATH"] = libpq_dir  # libpq.so.5 from there, not Debian's
    return env


def _args(server: FakeServer, *extra: str) -> list[str]:
    return ["check-version", "--type", server.flavor, "--host", server.host,
            "--port", str(server.port), "--user", "kea", "--name", "kea", "--expect", "13.0",
            "--connect-timeout", "3", "--json", *extra]


def _run(server: FakeServer, *extra: str, timeout: float = 30,
         libpq_dir: str | None = None) -> tuple[dict[str, object], int, float, int]:
    """(result, exit code, seconds, peak KiB) of check-version against ``server``."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _MEASURED, *_args(server, *extra)],
                          capture_output=True, text=True, env=_env(libpq_dir),
                          timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    peak = int(lines[-1].removeprefix("peak-kib="))
    assert len(lines) <= 2, proc.stderr  # at most one warning or error line, then the peak
    results = json.loads(proc.stdout)["results"]
    assert PASSWORD not in proc.stdout + proc.stderr
    return dict(results[0]), proc.returncode, elapsed, peak


@pytest.mark.parametrize("scenario", ["clear_password", "dialog"])
def test_mysql_cleartext_plugin_gets_no_password(scenario: str) -> None:
    with FakeServer("mysql", scenario) as server:
        result, code, _, _ = _run(server)
        assert not server.received_any(PASSWORD.encode())
        assert server.wait_for("auth-switch-sent", timeout=1)
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "insecure-auth"
    assert "Kea would send its password in clear" in str(result["detail"])
    assert code == 21


def test_mysql_rsa_key_from_the_server_is_not_used() -> None:
    with FakeServer("mysql", "caching_sha2_rsa") as server:
        result, code, _, _ = _run(server)
        assert server.recovered_passwords == []
        assert not server.received_any(PASSWORD.encode())
        assert "public-key-requested" not in server.events
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "insecure-rsa-key"
    assert code == 21


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_stalled_server_ends_within_the_deadline(flavor: str) -> None:
    with FakeServer(flavor, "accept_then_stall", trigger=b"schema_version") as server:
        result, code, elapsed, _ = _run(server, "--statement-timeout", "1")
        if flavor == "postgresql":
            assert server.wait_for("cancel-request", timeout=2)  # PQcancel reached it
        else:
            assert server.wait_for("query", count=3, timeout=2)
            assert any(q.upper().startswith(b"\x03KILL QUERY") or b"KILL QUERY" in q.upper()
                       for q in server.queries)
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "statement-timeout"
    assert code == 20
    assert elapsed < 10, elapsed


@pytest.mark.parametrize(("flavor", "scenario"), [
    ("mysql", "oversized_packet"), ("postgresql", "oversized_message"),
    ("mysql", "many_rows"), ("postgresql", "many_rows"),
])
def test_oversized_answers_are_capped(flavor: str, scenario: str) -> None:
    with FakeServer(flavor, scenario, trigger=b"schema_version", rows=1_000_000,
                    total_bytes=512 * 1024 * 1024, lifetime=20) as server:
        result, code, elapsed, peak = _run(server)
    assert result["verdict"] == "UNREACHABLE"
    if scenario == "oversized_packet":
        # libmariadb drops the connection at max_allowed_packet (16 MiB) and says only
        # "Lost connection to server during query" (2013).
        assert result["reason_code"] == "connection-lost"
    else:
        assert result["reason_code"] == "result-too-large"
    assert code == 20
    assert peak < 100 * 1024, f"peak {peak} KiB"
    assert elapsed < 15, elapsed


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_dropped_connection_is_unreachable(flavor: str) -> None:
    with FakeServer(flavor, "drop_after_login", trigger=b"schema_version") as server:
        result, code, _, _ = _run(server)
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "connection-lost"
    assert code == 20


def test_mysql_protocol_9_is_refused() -> None:
    with FakeServer("mysql", "protocol9") as server:
        result, code, _, _ = _run(server)
        assert not server.received_any(PASSWORD.encode())
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "protocol"
    assert code == 20


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_ctrl_c_cancels_on_the_server_and_exits_130(flavor: str) -> None:
    with FakeServer(flavor, "accept_then_stall", trigger=b"schema_version") as server:
        proc = subprocess.Popen([sys.executable, "-m", "keadb_cli", *_args(server)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env())
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    b"schema_version" in q for q in server.queries):
                time.sleep(0.05)
            assert any(b"schema_version" in q for q in server.queries)
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=10)
            elapsed = time.monotonic() - started
        finally:
            proc.kill()
        if flavor == "postgresql":
            assert server.wait_for("cancel-request", timeout=2)
        else:
            assert any(b"KILL QUERY" in q.upper() for q in server.queries)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    assert elapsed < 5, elapsed


# -- PostgreSQL logins kea-db watches on the wire (keadb_cli/db/pg_guard.py) ----------------


@pytest.fixture(scope="module", params=["debian", "newest"])
def libpq_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """"debian": the system's libpq.so.5 (15 on Debian 12, no require_auth); "newest": the
    libpq psycopg-binary bundles, as libpq.so.5 in a directory for LD_LIBRARY_PATH. Each is
    checked to be what it claims, so the test runs against both or fails."""
    if request.param == "debian":
        directory = ""
    else:
        import psycopg_binary

        libs = Path(psycopg_binary.__file__).resolve().parent.parent / "psycopg_binary.libs"
        bundled = sorted(libs.glob("libpq-*.so.5*"))
        assert bundled, f"no libpq in {libs}"
        target = tmp_path_factory.mktemp("libpq")
        for item in libs.iterdir():  # its own libssl etc., found through $ORIGIN
            (target / item.name).symlink_to(item)
        (target / "libpq.so.5").symlink_to(bundled[-1])
        directory = str(target)
    probe = subprocess.run(
        [sys.executable, "-c", "from keadb_cli.db import libpq; "
         "print(libpq.load('libpq.so.5').PQlibVersion())"],
        capture_output=True, text=True, env=_env(directory), timeout=30, check=True)
    version = int(probe.stdout)
    if request.param == "debian":
        assert version < 160000, version  # the case the guard exists for
    else:
        assert version >= 160000, version  # one that has require_auth
    return directory


def test_pg_cleartext_request_gets_no_password(libpq_dir: str) -> None:
    with FakeServer("postgresql", "cleartext_password") as server:
        result, code, _, _ = _run(server, libpq_dir=libpq_dir)
        assert server.wait_for("password-requested", timeout=1)
        assert server.recovered_passwords == []
        assert server.auth_replies == []
        assert not server.received_any(PASSWORD.encode())
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "insecure-auth"
    assert "password in clear" in str(result["detail"])
    assert code == 21


def test_pg_md5_request_still_gets_its_digest(libpq_dir: str) -> None:
    with FakeServer("postgresql", "md5_password") as server:
        result, code, _, _ = _run(server, libpq_dir=libpq_dir)
        assert len(server.auth_replies) == 1
        assert server.auth_replies[0].startswith(b"md5")
        assert not server.received_any(PASSWORD.encode())
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "auth-failed"
    assert code == 21


def test_pg_scram_without_server_proof_is_not_trusted(libpq_dir: str) -> None:
    with FakeServer("postgresql", "scram_without_final") as server:
        result, code, _, _ = _run(server, libpq_dir=libpq_dir)
        assert server.wait_for("ok-without-proof", timeout=1)
        assert server.queries == []  # nothing was asked of a server that proved nothing
        assert not server.received_any(PASSWORD.encode())
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "scram-incomplete"
    assert "never proved" in str(result["detail"])
    assert code == 21


def test_pg_scram_iteration_demand_is_refused_before_any_work(libpq_dir: str) -> None:
    with FakeServer("postgresql", "scram_costly") as server:
        result, code, elapsed, _ = _run(server, libpq_dir=libpq_dir)
        assert server.wait_for("sasl-server-first", timeout=1)
        assert len(server.auth_replies) == 1  # the client's first message, never its proof
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "scram-iterations"
    assert "1,000,000,000 SCRAM iterations" in str(result["detail"])
    assert f"{MAX_SCRAM_ITERATIONS:,}" in str(result["detail"])
    assert code == 21
    assert elapsed < 3 + 2, elapsed  # within --connect-timeout 3, plus the interpreter


def test_pg_scram_iteration_demand_inside_tls_ends_at_the_connect_timeout(
        libpq_dir: str) -> None:
    """Inside TLS kea-db cannot read the demand: libpq starts computing it, and kea-db
    stops waiting for that login step at connect-timeout."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeServer("postgresql", "scram_costly", tls=context) as server:
        result, code, elapsed, _ = _run(server, "--ssl-mode", "require", libpq_dir=libpq_dir)
        assert server.wait_for("tls", timeout=1)
        assert server.wait_for("sasl-server-first", timeout=1)
    assert result["verdict"] == "UNREACHABLE"
    assert result["reason_code"] == "timeout"
    assert "connect-timeout" in str(result["detail"])
    assert code == 20
    assert elapsed < 3 + 2, elapsed


def test_pg_login_refused_before_authentication_is_denied(libpq_dir: str) -> None:
    """libpq reports a failed login as text only; kea-db reads the ErrorResponse's SQLSTATE
    (28000) on the wire, and the password the server echoes is not shown."""
    with FakeServer("postgresql", "echo_password_error", echo=PASSWORD.encode()) as server:
        result, code, _, _ = _run(server, libpq_dir=libpq_dir)
        assert server.wait_for("echo-sent", timeout=1)
    assert result["verdict"] == "DENIED"
    assert result["reason_code"] == "not-authorized"
    assert "login refused" in str(result["detail"])
    assert code == 21
