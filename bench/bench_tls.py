"""How fast is `kea-db test-tls` next to `openssl s_client -starttls`, on the same servers?

Starts a throw-away PostgreSQL and MariaDB with TLS on (tests/servers.py, test CA), makes a
database and a password user in each, then runs, interleaved, N rounds of:

- `kea-db test-tls --type postgresql|mysql --host --port --user --name --trust-anchor`
  (password from KEA_DB_PASSWORD): file checks, wire probe, driver session, verdict;
- `openssl s_client -starttls postgres|mysql -connect ... -CAfile ... -verify_return_error`
  (handshake and chain check only: it never logs in);
- `python -c pass` (the interpreter's own start, for scale);

and prints the median wall time of each and the ratio test-tls / s_client (target <= 3x).

Until the `test-tls` command is wired into the CLI, a stand-in runs the same core call
(`keadb_cli.commands.test_tls.check.run`) with `python -c`; the output says which one was timed.

Usage: python bench/bench_tls.py [--rounds 20] [--strict]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import (  # noqa: E402
    create_fresh_database,
    make_tls_material,
    start_mariadb,
    start_postgres,
    stop_all,
)

TARGET = 3.0

# The stand-in for `kea-db test-tls` before the command exists: same options, same core call.
STAND_IN = """
import os, sys
from keadb_cli.kea.access import DbAccess
from keadb_cli.commands.test_tls.check import run
t, host, port, user, name, ca = sys.argv[1:7]
access = DbAccess(type=t, host=host, port=int(port), user=user, name=name,
                  password=os.environ["KEA_DB_PASSWORD"], trust_anchor=ca)
result = run(access)
print(result.verdict.value, result.protocol, result.cipher)
sys.exit(int(result.exit_code))
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).decode(errors="replace")[-400:]
        raise SystemExit(f"{cmd[0]} {cmd[1]} failed ({proc.returncode}): {tail}")
    return elapsed


def test_tls_command(kea_db: str) -> list[str] | None:
    """``[kea-db, test-tls]`` when the command exists, else None."""
    try:
        probe = subprocess.run(
            [kea_db, "test-tls", "--help"], capture_output=True, check=False, timeout=30
        )
    except OSError:
        return None
    return [kea_db, "test-tls"] if probe.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("needs the openssl command")
    kea_db = shutil.which("kea-db", path=str(Path(sys.executable).parent)) or "kea-db"
    wired = test_tls_command(kea_db)
    material = make_tls_material(Path(tempfile.mkdtemp(prefix="keadb-bench-tls-")))
    ca = str(material.ca_cert)
    pg = start_postgres(tls="on", material=material)
    my = start_mariadb(tls="on", material=material)
    try:
        # PYTHONDONTWRITEBYTECODE off: the warm-up run leaves .pyc files behind, as pip's
        # install of the wheel would, instead of compiling kea-db's modules on every run.
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KEA_DB_", "PG", "MYSQL")) and k != "PYTHONDONTWRITEBYTECODE"
        }
        commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        for server, starttls in ((pg, "postgres"), (my, "mysql")):
            db = create_fresh_database(server)
            if wired:
                cmd = [
                    *wired,
                    "--type", db.type,
                    "--host", db.host,
                    "--port", str(db.port),
                    "--user", db.user,
                    "--name", db.name,
                    "--trust-anchor", ca,
                    # A release that uses the keys on both backends, so both verify.
                    "--kea-version", "3.2",
                ]  # fmt: skip
            else:
                cmd = [sys.executable, "-c", STAND_IN, db.type, db.host, str(db.port), db.user,
                       db.name, ca]  # fmt: skip
            commands[f"kea-db test-tls ({db.type})"] = (
                cmd,
                {**base_env, "KEA_DB_PASSWORD": db.password},
            )
            commands[f"openssl s_client -starttls {starttls}"] = (
                ["openssl", "s_client", "-starttls", starttls, "-connect",
                 f"{db.host}:{db.port}", "-CAfile", ca, "-verify_return_error", "-brief"],
                base_env,
            )  # fmt: skip
        commands["python -c pass"] = ([sys.executable, "-c", "pass"], base_env)

        for cmd, env in commands.values():  # warm the page cache and the servers
            timed(cmd, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (cmd, env) in commands.items():
                samples[name].append(timed(cmd, env))

        print(f"test-tls timed as: {'kea-db test-tls' if wired else 'stand-in (python -c)'}")
        print(f"rounds: {args.rounds} (interleaved); median wall time, min..max")
        med = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        for name, values in samples.items():
            lo, hi = min(values) * 1000, max(values) * 1000
            print(f"  {name:40s} {med[name]:8.1f} ms   ({lo:.1f}..{hi:.1f})")
        ok = True
        for backend, starttls in (("postgresql", "postgres"), ("mysql", "mysql")):
            ratio = (
                med[f"kea-db test-tls ({backend})"] / med[f"openssl s_client -starttls {starttls}"]
            )
            ok = ok and ratio <= TARGET
            verdict = "met" if ratio <= TARGET else "MISSED"
            print(
                f"{backend:10s}: test-tls / s_client = {ratio:5.2f}x  "
                f"(target <= {TARGET:g}x: {verdict})"
            )
        return 0 if ok or not args.strict else 1
    finally:
        stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
