"""A throw-away local PostgreSQL server for ``kea-db demo``.

It runs the installed server binaries (Debian: /usr/lib/postgresql/<N>/bin) in a temporary
directory, on a free loopback port with trust authentication, as the ``postgres`` OS user
when kea-db runs as root (PostgreSQL refuses to run as root), and removes everything it
made when it stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keadb_cli.errors import ExitCode, KeaDbError

SEARCH = ("/usr/lib/postgresql", "/usr/local/pgsql", "/opt/homebrew/opt")


class SandboxError(KeaDbError):
    exit_code = ExitCode.SETTINGS


def find_bindir() -> Path:
    """The newest PostgreSQL server bin directory with initdb and postgres.

    Raises:
        SandboxError: no server binaries, with how to get them.
    """
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    candidates: list[tuple[int, Path]] = []
    for root in SEARCH:
        base = Path(root)
        if not base.is_dir():
            continue
        for child in base.iterdir():
            bindir = child / "bin"
            if (bindir / "initdb").exists() and (bindir / "postgres").exists():
                digits = "".join(c for c in child.name if c.isdigit())
                candidates.append((int(digits or 0), bindir))
    if not candidates:
        raise SandboxError(
            "no PostgreSQL server binaries (initdb, postgres) found: install them "
            "(Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install "
            "postgresql-server)"
        )
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LocalPostgres:
    port: int
    directory: Path
    ca_file: Path  # the throw-away CA that signed the server's certificate
    superuser: str = "postgres"
    host: str = "127.0.0.1"


def _write_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost, valid for a day."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kea-db demo CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def _runner() -> list[str]:
    """How to run the server binaries: as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    if runuser is None:
        raise SandboxError("running as root and neither runuser nor setpriv is available")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise SandboxError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user: run kea-db "
            "demo as an ordinary user"
        ) from None
    if runuser.endswith("runuser"):
        return [runuser, "-u", "postgres", "--"]
    return [runuser, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise SandboxError(f"the local PostgreSQL stopped at start: {' '.join(tail)}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SandboxError(f"the local PostgreSQL did not start within {timeout:g} s")


@contextlib.contextmanager
def local_postgres(timeout: float = 60.0) -> Iterator[LocalPostgres]:
    """Start a throw-away PostgreSQL; stop it and remove its directory on exit."""
    bindir = find_bindir()
    prefix = _runner()
    directory = Path(tempfile.mkdtemp(prefix="kea-db-demo-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        data, log = directory / "data", directory / "server.log"
        ca_file, cert_file, key_file = _write_tls(directory)
        if prefix:
            os.chmod(directory, 0o755)
            for path in (directory, cert_file, key_file):
                shutil.chown(path, "postgres", "postgres")
        init = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8", "--locale", "C"],
            capture_output=True, text=True, check=False,
        )
        if init.returncode != 0:
            raise SandboxError(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        port = _free_port()
        with open(log, "wb") as log_fh:
            proc = subprocess.Popen(
                [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                 "-k", str(directory), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "ssl=on", "-c", f"ssl_cert_file={cert_file}",
                 "-c", f"ssl_key_file={key_file}"],
                stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _wait_ready(port, proc, log, timeout)
        yield LocalPostgres(port=port, directory=directory, ca_file=ca_file)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # smart shutdown would wait for clients; SIGTERM is fine here
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
