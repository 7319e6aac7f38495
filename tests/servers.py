"""Throw-away PostgreSQL, MariaDB and Oracle MySQL servers (and TLS material) for the tests.

A plain module: it does not import pytest, so it can be used from a REPL or a benchmark too::

    material = make_tls_material(Path(tempfile.mkdtemp()))
    pg = start_postgres(tls="required", material=material)
    try:
        print(pg.sql("SHOW ssl"))
    finally:
        pg.stop()

Each server runs in its own temporary directory, listens on a free port of 127.0.0.1 (and on
a Unix socket in that directory), and is started with durability switched off, because its
data lives only as long as the test session. The superuser (``postgres`` / ``root``) needs no
password over the socket and over 127.0.0.1 (with TLS when the mode is ``required``); every
other user needs a password (SCRAM on PostgreSQL, mysql_native_password on MariaDB,
caching_sha2_password on Oracle MySQL).

Oracle MySQL (Debian sid's ``mysql-server``, 8.4 or later) needs a newer C library than the
host's, so it runs from a Debian sid chroot that ``tests/tools/sid_chroot.sh`` builds and
caches (``$KEADB_SID_CHROOT``, default ``/var/cache/kea-db-tests/sid``); running it needs root.
Its directories live in the chroot's ``/tmp``, where the server and the host both reach them.
Other Debian releases' MariaDB and PostgreSQL run the same way from the chroots of that script
(``start_mariadb(chroot=...)``, ``start_postgres(chroot=...)``, :func:`find_chroot`);
PostgreSQL as the chroot's own ``postgres`` user.

A Galera cluster (:func:`start_galera_cluster`, ``nodes`` :class:`GaleraNode`, by default 3)
runs the host's mariadbd with galera-4 (``/usr/lib/galera/libgalera_smm.so``) on loopback
ports: each node has its own client, group communication (gmcast), IST and SST ports, and
MariaDB's compiled-in defaults plus what Galera needs (``wsrep_on``, the provider, the
``gcomm://`` address of every node, ``binlog_format=ROW``, InnoDB, ``innodb_autoinc_lock_mode=2``,
rsync SST). Node 1 bootstraps it (``--wsrep-new-cluster``), nodes 2 and 3 join it with an rsync
SST; as root the nodes run as the ``mysql`` OS user (rsync's daemon, started by root, would
switch to ``nobody``). It takes about 10 s. :meth:`GaleraNode.status` reads the ``wsrep_%``
status, :meth:`GaleraNode.wait_status` waits (bounded) for values of it,
:meth:`GaleraNode.desync` / :meth:`~GaleraNode.resync` make a node ``Donor/Desynced`` (still
in the Primary component) and back, :meth:`GaleraNode.isolate` / :meth:`~GaleraNode.rejoin`
cut it off the group (alone, ``non-Primary``; the other nodes stay Primary) and back, and
:meth:`GaleraCluster.restore` undoes both on every node.

Processes are started in their own session and are stopped by :meth:`DatabaseServer.stop`;
an ``atexit`` hook stops whatever is still running, and the kernel sends SIGTERM to a server
whose parent thread dies without cleaning up (``PR_SET_PDEATHSIG``), so start servers from the
main thread, not from a short-lived worker thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast

import psycopg
import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql as pgsql

TlsMode = Literal["off", "on", "required"]
ServerCert = Literal["valid", "expired", "wrong-host"]
BackendType = Literal["postgresql", "mysql"]

TLS_MODES: tuple[TlsMode, ...] = ("off", "on", "required")
SERVER_CERTS: tuple[ServerCert, ...] = ("valid", "expired", "wrong-host")
STARTUP_TIMEOUT = 60.0
# Where the servers' directories go (see _base_tmpdir).
SERVERS_DIR_ENV = "KEADB_TEST_SERVERS_DIR"
SHM_DIR = "/dev/shm"
SHM_MIN_FREE = 2 * 1024**3
STOP_TIMEOUT = 15.0
HOST = "127.0.0.1"
WRONG_HOST_NAME = "db.invalid"
CLIENT_CN = "kea"
# Non-superuser roles that are members of this PostgreSQL role must show a client certificate
# (the PostgreSQL counterpart of MariaDB's REQUIRE X509).
PG_X509_ROLE = "keadb_x509"

# Environment variables that change how clients or servers behave; the servers are started
# without them and the test suite removes them from each test's environment.
SCRUBBED_ENV_PREFIXES = ("KEA_DB_", "PG")
SCRUBBED_ENV_NAMES = frozenset(
    {"MYSQL_UNIX_PORT", "MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_PWD", "NO_COLOR"}
)


class ServerStartError(RuntimeError):
    """A throw-away server (or what it needs) could not be set up."""


def env_names_to_scrub(environ: Mapping[str, str]) -> list[str]:
    """The names in ``environ`` that a test must not inherit (KEA_DB_*, PG*, MYSQL_*...)."""
    return sorted(
        name
        for name in environ
        if name.startswith(SCRUBBED_ENV_PREFIXES) or name in SCRUBBED_ENV_NAMES
    )


def ci_requires_servers(environ: Mapping[str, str]) -> bool:
    """True when a server that cannot start must fail the test rather than skip it.

    Any non-empty ``CI`` other than an explicit no (``0``, ``false``, ``no``) counts as CI.
    """
    value = environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the certificates and keys made by :func:`make_tls_material` (all PEM).

    ``ca_dir`` / ``other_ca_dir`` are OpenSSL hashed directories (``<subject_hash>.0``)
    holding only ``ca_cert`` / ``other_ca_cert``.
    """

    directory: Path
    ca_cert: Path
    ca_key: Path
    ca_dir: Path
    other_ca_cert: Path
    other_ca_key: Path
    other_ca_dir: Path
    server_cert: Path  # CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the CA
    server_key: Path
    expired_server_cert: Path  # same names, validity ended yesterday
    expired_server_key: Path
    wrong_host_server_cert: Path  # CN and SAN DNS:db.invalid only
    wrong_host_server_key: Path
    client_cert: Path  # CN=kea, signed by the CA
    client_key: Path
    other_client_cert: Path  # CN=kea, signed by the other CA
    other_client_key: Path

    def server_pair(self, choice: ServerCert) -> tuple[Path, Path]:
        """(certificate, key) of the server certificate ``choice``."""
        pairs = {
            "valid": (self.server_cert, self.server_key),
            "expired": (self.expired_server_cert, self.expired_server_key),
            "wrong-host": (self.wrong_host_server_cert, self.wrong_host_server_key),
        }
        if choice not in pairs:
            raise ValueError(f"unknown server certificate {choice!r}; use one of {SERVER_CERTS}")
        return pairs[choice]


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kea-db tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _make_ca(common_name: str, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    *,
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    server: bool,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _hashed_dir(directory: Path, ca_cert: Path) -> None:
    """Lay out ``directory`` as OpenSSL's ``-CApath`` wants it: ``<subject_hash>.0``."""
    directory.mkdir(mode=0o755)
    try:
        out = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(ca_cert)],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(f"cannot compute the subject hash with openssl: {exc}") from exc
    subject_hash = out.stdout.strip()
    if not re.fullmatch(r"[0-9a-f]{8}", subject_hash):
        raise ServerStartError(f"unexpected output of openssl x509 -hash: {out.stdout!r}")
    shutil.copyfile(ca_cert, directory / f"{subject_hash}.0")
    os.chmod(directory / f"{subject_hash}.0", 0o644)


def make_tls_material(directory: Path) -> TlsMaterial:
    """Make the test CAs, server and client certificates in ``directory`` (must exist).

    Keys are written mode 0600. Servers get their own copies of what they read, so
    ``directory`` may stay private to the current user.
    """
    directory = Path(directory)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    valid: dict[str, Any] = {
        "not_before": now - dt.timedelta(days=1),
        "not_after": now + dt.timedelta(days=365),
    }
    expired: dict[str, Any] = {
        "not_before": now - dt.timedelta(days=30),
        "not_after": now - dt.timedelta(days=1),
    }

    ca_cert, ca_key = _make_ca("kea-db test CA", now)
    other_ca_cert, other_ca_key = _make_ca("kea-db unrelated test CA", now)
    leaves = {
        "server": _make_leaf(
            common_name="localhost",
            ca_cert=ca_cert,
            ca_key=ca_key,
            server=True,
            dns_names=["localhost"],
            ip_addresses=[HOST],
            **valid,
        ),
        "expired-server": _make_leaf(
            common_name="localhost",
            ca_cert=ca_cert,
            ca_key=ca_key,
            server=True,
            dns_names=["localhost"],
            ip_addresses=[HOST],
            **expired,
        ),
        "wrong-host-server": _make_leaf(
            common_name=WRONG_HOST_NAME,
            ca_cert=ca_cert,
            ca_key=ca_key,
            server=True,
            dns_names=[WRONG_HOST_NAME],
            **valid,
        ),
        "client": _make_leaf(
            common_name=CLIENT_CN, ca_cert=ca_cert, ca_key=ca_key, server=False, **valid
        ),
        "other-client": _make_leaf(
            common_name=CLIENT_CN,
            ca_cert=other_ca_cert,
            ca_key=other_ca_key,
            server=False,
            **valid,
        ),
    }
    _write_cert(directory / "ca.crt", ca_cert)
    _write_key(directory / "ca.key", ca_key)
    _write_cert(directory / "other-ca.crt", other_ca_cert)
    _write_key(directory / "other-ca.key", other_ca_key)
    for stem, (cert, key) in leaves.items():
        _write_cert(directory / f"{stem}.crt", cert)
        _write_key(directory / f"{stem}.key", key)
    _hashed_dir(directory / "ca.d", directory / "ca.crt")
    _hashed_dir(directory / "other-ca.d", directory / "other-ca.crt")
    return TlsMaterial(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        ca_dir=directory / "ca.d",
        other_ca_cert=directory / "other-ca.crt",
        other_ca_key=directory / "other-ca.key",
        other_ca_dir=directory / "other-ca.d",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        expired_server_cert=directory / "expired-server.crt",
        expired_server_key=directory / "expired-server.key",
        wrong_host_server_cert=directory / "wrong-host-server.crt",
        wrong_host_server_key=directory / "wrong-host-server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_client_cert=directory / "other-client.crt",
        other_client_key=directory / "other-client.key",
    )


# --------------------------------------------------------------------------------------------
# Process plumbing
# --------------------------------------------------------------------------------------------

_LIVE: set[DatabaseServer] = set()
_TEMPLATES: dict[str, Path] = {}
_TEMPLATE_DIRS: list[Path] = []
_LOCK = threading.RLock()
_PR_SET_PDEATHSIG = 1


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not dlopen


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: get SIGTERM when our thread dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _enter_chroot(root: str, uid: int, gid: int) -> Callable[[], None]:
    """A ``preexec_fn``: chroot to ``root``, become ``uid``/``gid`` there, then as
    :func:`_die_with_parent` (set after the change of user, which would clear it)."""

    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        _die_with_parent()

    return enter


@dataclass(frozen=True)
class _RunAs:
    """Who runs the server: the current user, or (as root) a service account; with ``root``,
    the service account of that chroot, inside it (the program paths are the chroot's)."""

    user: str | None = None
    uid: int = -1
    gid: int = -1
    root: str | None = None

    @classmethod
    def for_postgres(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServerStartError(
                "running as root, and PostgreSQL refuses root: there is no 'postgres' OS user "
                "(Debian's postgresql package creates it)"
            ) from exc
        return cls(user="postgres", uid=pw.pw_uid, gid=pw.pw_gid)

    @classmethod
    def chroot_postgres(cls, root: Path) -> _RunAs:
        """The chroot's ``postgres`` account (its own /etc/passwd); needs root."""
        if os.geteuid() != 0:
            raise ServerStartError(f"PostgreSQL runs in the chroot {root}: that needs root")
        try:
            lines = (root / "etc" / "passwd").read_text().splitlines()
        except OSError as exc:
            raise ServerStartError(f"cannot read {root}/etc/passwd: {exc}") from exc
        for line in lines:
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == "postgres":
                return cls(user="postgres", uid=int(fields[2]), gid=int(fields[3]), root=str(root))
        raise ServerStartError(
            f"no 'postgres' user in {root}/etc/passwd (the chroot's postgresql-common makes it)"
        )

    def popen_kwargs(self) -> dict[str, Any]:
        if self.root is not None:
            return {"preexec_fn": _enter_chroot(self.root, self.uid, self.gid)}
        if self.user is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, *paths: Path) -> None:
        if self.user is None:
            return
        for path in paths:
            os.chown(path, self.uid, self.gid)


def _clean_env() -> dict[str, str]:
    """The environment for server programs: none of the client variables of the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in env_names_to_scrub(os.environ) and not k.startswith("MYSQL")
    }
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def _base_tmpdir(run_as: _RunAs) -> str:
    """Where server directories go: ``$KEADB_TEST_SERVERS_DIR``, else /dev/shm when it is a
    roomy tmpfs (no disk I/O for throw-away data), else the temp dir. As root, a directory
    the service account cannot reach is replaced by /tmp."""
    base = os.environ.get(SERVERS_DIR_ENV) or tempfile.gettempdir()
    if not os.environ.get(SERVERS_DIR_ENV) and os.access(SHM_DIR, os.W_OK | os.X_OK):
        st = os.statvfs(SHM_DIR)
        if st.f_bavail * st.f_frsize >= SHM_MIN_FREE:
            base = SHM_DIR
    if run_as.user is None:
        return base
    path = Path(base).resolve()
    for part in [path, *path.parents]:
        st_dir = part.stat()
        if not st_dir.st_mode & 0o001 and st_dir.st_uid != run_as.uid:
            return "/tmp"
    return base


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _tcp_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    run_as: _RunAs,
    cwd: Path,
    timeout: float = STARTUP_TIMEOUT,
    stdin_text: str | None = None,
) -> None:
    try:
        done = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=_clean_env(),
            **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
            capture_output=True,
            text=True,
            timeout=timeout,
            **run_as.popen_kwargs(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise ServerStartError(f"{what} exited with {done.returncode}:\n{output}")


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy a data directory, keeping owners and modes (``cp -a``)."""
    try:
        subprocess.run(
            ["cp", "-a", str(src), str(dest)], check=True, capture_output=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(f"copying {src} to {dest} failed: {exc}") from exc


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_OWNER_FILE = "keadb-owner.pid"
_swept: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _sweep_stale(base: str) -> None:
    """Remove directories left by test processes that were killed (SIGKILL skips atexit).

    Only directories whose owner process and server process are both gone are removed, so
    other test sessions running on this machine are left alone.
    """
    if base in _swept:
        return
    _swept.add(base)
    for path in Path(base).glob("keadb-*"):
        owner = _pid_in(path / _OWNER_FILE)
        if owner is None or _pid_alive(owner):
            continue
        pids = [
            _pid_in(path / "data" / "postmaster.pid"),
            _pid_in(path / "mariadbd.pid"),
            _pid_in(path / "mysqld.pid"),
        ]
        if any(pid is not None and _pid_alive(pid) for pid in pids):
            continue
        _remove_dir(path)


def _make_dir(prefix: str, run_as: _RunAs, base: str | None = None) -> Path:
    """A new private temporary directory, marked with our pid, owned by the server's user
    (in ``base`` when given, else where :func:`_base_tmpdir` says)."""
    base = base or _base_tmpdir(run_as)
    with _LOCK:
        _sweep_stale(base)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    (path / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    run_as.chown(path)
    # Traversable, not listable: clients running as other OS users (Kea's) reach the socket.
    os.chmod(path, 0o711)
    return path


def stop_servers(servers: Iterable[DatabaseServer]) -> None:
    """Stop several servers, shutting them down in parallel."""
    servers = list(servers)
    for server in servers:
        with contextlib.suppress(Exception):
            server.begin_stop()
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


def stop_all() -> None:
    """Stop every server this process started and remove the data-directory templates."""
    with _LOCK:
        servers = list(_LIVE)
    stop_servers(servers)
    with _LOCK:
        for path in _TEMPLATE_DIRS:
            _remove_dir(path)
        _TEMPLATE_DIRS.clear()
        _TEMPLATES.clear()


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------
# Chroots (tests/tools/sid_chroot.sh)
# --------------------------------------------------------------------------------------------

CHROOT_CACHE = "/var/cache/kea-db-tests"


def chroot_env(name: str) -> str:
    """The variable that moves chroot ``name``: ``KEADB_<NAME>_CHROOT`` (sid_chroot.sh's)."""
    return "KEADB_" + name.upper().replace("-", "_") + "_CHROOT"


def find_chroot(name: str, programs: Sequence[str] = ()) -> Path:
    """The complete chroot ``name`` of ``tests/tools/sid_chroot.sh`` (``$KEADB_<NAME>_CHROOT``
    or ``/var/cache/kea-db-tests/<name>``) holding ``programs`` (paths inside it).

    Raises:
        ServerStartError: not built (or built without those programs), or not root.
    """
    env = chroot_env(name)
    root = Path(os.environ.get(env) or f"{CHROOT_CACHE}/{name}")
    stamp = f".keadb-{name}-chroot-complete"
    missing = [p for p in programs if not os.access(root / p.lstrip("/"), os.X_OK)]
    if not (root / stamp).is_file() or missing:
        raise ServerStartError(
            f"no complete Debian chroot {name!r} at {root} (no {stamp}"
            + (f", or no {', '.join(missing)}" if missing else "")
            + f"); build it, as root, with {SID_CHROOT_SCRIPT} {name} (set {env} for "
            "another place)"
        )
    if os.geteuid() != 0:
        raise ServerStartError(f"servers in the chroot {root} need root")
    return root


def _in_chroot(root: Path, path: Path) -> str:
    """``path`` (on the host, inside ``root``) as a program in the chroot sees it."""
    return "/" + str(Path(path).relative_to(root))


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


class DatabaseServer:
    """A running throw-away server. Subclasses fill in the backend specifics."""

    type: ClassVar[BackendType]
    # postgresql, mariadb or mysql (Oracle MySQL): one of SERVER_FLAVORS.
    flavor: ClassVar[str]
    superuser: ClassVar[str]
    # Signal for a quick clean shutdown.
    _stop_signal: ClassVar[signal.Signals]

    def __init__(
        self,
        *,
        directory: Path,
        port: int,
        socket: Path,
        log: Path,
        tls: TlsMode,
        server_cert: ServerCert,
        options: Mapping[str, Any],
    ) -> None:
        self.host = HOST
        self.port = port
        self.socket = str(socket)
        self.directory = directory
        self.log = log
        self.tls: TlsMode = tls
        self.server_cert: ServerCert = server_cert
        self.options: dict[str, Any] = dict(options)
        self.startup_seconds = 0.0
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.host}:{self.port} tls={self.tls} "
            f"cert={self.server_cert} dir={self.directory}>"
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log (stdout and stderr)."""
        return _tail(self.log, lines)

    # -- to be provided by the backends --------------------------------------------------

    def sql(
        self, query: str, database: str | None = None, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` as the superuser over the Unix socket; return all rows (or [])."""
        raise NotImplementedError

    def create_database(self, name: str) -> None:
        raise NotImplementedError

    def drop_database(self, name: str) -> None:
        raise NotImplementedError

    def create_user(
        self, name: str, password: str, *, database: str | None = None, require_x509: bool = False
    ) -> None:
        raise NotImplementedError

    def drop_user(self, name: str) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _after_start(self) -> None:
        """Set-up that needs the running server (roles...)."""

    # -- life cycle ------------------------------------------------------------------------

    def _launch(self, timeout: float) -> None:
        started = time.monotonic()
        with open(self.log, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self._command(),
                    cwd=self.directory,
                    env=_clean_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    # see the module docstring; a chroot's preexec_fn calls it itself
                    **{"preexec_fn": _die_with_parent, **self._popen_kwargs()},
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {self._command()[0]}: {exc}") from exc
        with _LOCK:
            _LIVE.add(self)
        deadline = started + timeout
        last_error: Exception | None = None
        while True:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.type} server exited with code {self.process.returncode} while "
                    f"starting (port {self.port}, {self.directory}); last log lines:\n"
                    f"{self.log_tail()}"
                )
            try:
                self.sql("SELECT 1")
                break
            except Exception as exc:  # any failure means "not yet"
                last_error = exc
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.type} server did not accept connections within {timeout:.0f} s "
                    f"(port {self.port}, {self.directory}; last error: {last_error}); "
                    f"last log lines:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        # The TCP listener exists before the server accepts on its socket.
        if not _tcp_open(self.port, self.host):
            raise ServerStartError(
                f"{self.type} server answers on its socket but not on {self.host}:{self.port}; "
                f"last log lines:\n{self.log_tail()}"
            )
        self._after_start()
        self.startup_seconds = time.monotonic() - started

    def begin_stop(self) -> None:
        """Ask the server to shut down without waiting (see :meth:`stop`)."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self._stop_signal)

    def stop(self) -> None:
        """Stop the server (cleanly, then by force) and remove its directory. Idempotent."""
        process = self.process
        if process is not None and process.poll() is None:
            self.begin_stop()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Still our child and not reaped, so its process group id cannot have been
                # reused: kill the whole group (PostgreSQL's backends included).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        with _LOCK:
            _LIVE.discard(self)
        _remove_dir(self.directory)


def _start(server_factory: Any, attempts: int = 3, timeout: float = STARTUP_TIMEOUT) -> Any:
    """Start a server, on a new port when the chosen one was taken meanwhile."""
    for attempt in range(attempts):
        server = server_factory()
        try:
            server._launch(timeout)
            return server
        except ServerStartError:
            log = server.log_tail(200)
            server.stop()
            in_use = "already in use" in log or "could not bind" in log.lower()
            if not in_use or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# ---- PostgreSQL ----------------------------------------------------------------------------


def find_postgres_bindir(chroot: Path | None = None) -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin``, else the directory of ``postgres``;
    with ``chroot``, the newest one in it (a host path under the chroot)."""
    candidates = []
    for bindir in Path(chroot or "/").joinpath("usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        if (bindir / "postgres").is_file() and re.fullmatch(r"\d+(\.\d+)?", version):
            candidates.append((tuple(int(p) for p in version.split(".")), bindir))
    if candidates:
        return max(candidates)[1]
    if chroot is not None:
        raise ServerStartError(f"no {chroot}/usr/lib/postgresql/*/bin/postgres")
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise ServerStartError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/postgres and no "
        "postgres on PATH); install Debian's postgresql package"
    )


def _postgres_template(bindir: Path, run_as: _RunAs) -> Path:
    """An initdb'd data directory, made once per process and copied for each server (in
    the chroot's /tmp, by the chroot's initdb, when ``run_as`` is a chroot's account)."""
    with _LOCK:
        key = f"postgresql:{bindir}"
        if key in _TEMPLATES:
            return _TEMPLATES[key]
        chroot = Path(run_as.root) if run_as.root else None
        root = _make_dir(
            "keadb-pg-template-", run_as, base=str(chroot / "tmp") if chroot else None
        )
        _TEMPLATE_DIRS.append(root)
        data = root / "data"

        def path(p: Path) -> str:
            return _in_chroot(chroot, p) if chroot else str(p)

        _run(
            [
                path(bindir / "initdb"),
                "-D",
                path(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--wal-segsize=1",  # 1 MiB WAL segments: less to copy per server
            ],
            what=f"initdb ({path(bindir)}{f' in {chroot}' if chroot else ''})",
            run_as=run_as,
            cwd=root,
        )
        _TEMPLATES[key] = data
        return data


class PostgresServer(DatabaseServer):
    type = "postgresql"
    flavor = "postgresql"
    superuser = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown

    def __init__(self, *, bindir: Path, run_as: _RunAs, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bindir = bindir
        self.run_as = run_as
        self.data = self.directory / "data"

    @property
    def chroot(self) -> Path | None:
        """The chroot the server runs in (None: the host's PostgreSQL)."""
        return Path(self.run_as.root) if self.run_as.root else None

    def inside(self, path: Path | str) -> str:
        """A host path as the server sees it (under its chroot, if any)."""
        return _in_chroot(self.chroot, Path(path)) if self.chroot else str(path)

    @property
    def version(self) -> str:
        return str(self.sql("SHOW server_version")[0][0])

    def _command(self) -> list[str]:
        settings: dict[str, str] = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": self.inside(self.socket),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "shared_buffers": "16MB",
            "max_connections": "50",
            "autovacuum": "off",
            "jit": "off",
            "huge_pages": "off",
            "logging_collector": "off",
            "password_encryption": "scram-sha-256",
            "ssl": "off" if self.tls == "off" else "on",
        }
        if self.tls != "off":
            settings.update(
                ssl_cert_file="server.crt", ssl_key_file="server.key", ssl_ca_file="ca.crt"
            )
        if self.options.get("ssl_ciphers"):
            settings["ssl_ciphers"] = str(self.options["ssl_ciphers"])
        if self.chroot:
            # A chroot's /dev/shm is a plain root-owned directory: POSIX shared memory
            # (the default) would fail there; files in the data directory do not.
            settings["dynamic_shared_memory_type"] = "mmap"
        settings.update(self.options.get("settings") or {})
        cmd = [self.inside(self.bindir / "postgres"), "-D", self.inside(self.data)]
        for name, value in settings.items():
            cmd += ["-c", f"{name}={value}"]
        return cmd

    def _popen_kwargs(self) -> dict[str, Any]:
        return self.run_as.popen_kwargs()

    def hba_lines(self) -> list[str]:
        """The pg_hba.conf rules for this server's TLS mode (first match wins)."""
        net = f"{HOST}/32"
        tcp_ssl = "host" if self.tls == "off" else "hostssl"
        lines = [
            "local all postgres trust",
            "local all all scram-sha-256",
            f"{'hostssl' if self.tls == 'required' else 'host'} all postgres {net} trust",
        ]
        if self.tls == "off":
            lines.append(f"host all +{PG_X509_ROLE} {net} reject")
        else:
            lines += [
                f"hostssl all +{PG_X509_ROLE} {net} scram-sha-256 clientcert=verify-ca",
                f"hostnossl all +{PG_X509_ROLE} {net} reject",
            ]
        client_cert = " clientcert=verify-ca" if self.options.get("client_cert_required") else ""
        lines.append(f"{tcp_ssl} all all {net} scram-sha-256{client_cert}")
        if self.tls == "on" and not client_cert:
            lines.append(f"host all all {net} scram-sha-256")
        return lines

    def prepare(self, material: TlsMaterial | None) -> None:
        template = _postgres_template(self.bindir, self.run_as)
        _copy_tree(template, self.data)
        (self.data / "pg_hba.conf").write_text("\n".join(self.hba_lines()) + "\n")
        if self.tls != "off":
            assert material is not None
            cert, key = material.server_pair(self.server_cert)
            shutil.copyfile(cert, self.data / "server.crt")
            shutil.copyfile(material.ca_cert, self.data / "ca.crt")
            shutil.copyfile(key, self.data / "server.key")
            os.chmod(self.data / "server.key", 0o600)
        for path in self.data.iterdir():
            if path.name in ("pg_hba.conf", "server.crt", "server.key", "ca.crt"):
                self.run_as.chown(path)

    def reload(self, timeout: float = 10.0) -> None:
        """Re-read postgresql.conf / pg_hba.conf and wait until new sessions see it."""
        before = self.sql("SELECT pg_conf_load_time()")[0][0]
        self.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        # New backends inherit the postmaster's load time, which it sets after re-reading
        # both files, so a changed value means the new rules are in force.
        while self.sql("SELECT pg_conf_load_time()")[0][0] == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL did not reload within {timeout} s")
            time.sleep(0.02)

    def prepend_hba(self, *lines: str) -> None:
        """Put ``lines`` first in pg_hba.conf (first match wins) and reload.

        The rules stay for the rest of the server's life: make them specific to a user or
        database of the test.
        """
        hba = self.data / "pg_hba.conf"
        hba.write_text("".join(f"{line}\n" for line in lines) + hba.read_text())
        self.reload()

    def _connect(self, database: str | None) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=self.socket,
            port=self.port,
            user="postgres",
            dbname=database or "postgres",
            sslmode="disable",
            connect_timeout=10,
            autocommit=True,
        )

    def sql(
        self,
        query: str | pgsql.Composable,
        database: str | None = None,
        params: Sequence[Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        q = cast(pgsql.Composed, pgsql.SQL(cast(Any, query)) if isinstance(query, str) else query)
        with self._connect(database) as conn:
            cur = conn.execute(q, params)
            return [tuple(row) for row in cur.fetchall()] if cur.description else []

    def _after_start(self) -> None:
        self.sql(
            pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(PG_X509_ROLE)),
        )

    def create_database(self, name: str) -> None:
        self.sql(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        self.sql(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
        )

    def create_user(
        self, name: str, password: str, *, database: str | None = None, require_x509: bool = False
    ) -> None:
        """Create a login role with a SCRAM password; make it owner of ``database``."""
        ident = pgsql.Identifier(name)
        self.sql(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, password))
        if require_x509:
            self.sql(pgsql.SQL("GRANT {} TO {}").format(pgsql.Identifier(PG_X509_ROLE), ident))
        if database:
            db = pgsql.Identifier(database)
            self.sql(pgsql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, ident))
            self.sql(pgsql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db, ident))

    def drop_user(self, name: str) -> None:
        self.sql(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(name)))


def start_postgres(
    *,
    tls: TlsMode = "off",
    material: TlsMaterial | None = None,
    server_cert: ServerCert = "valid",
    client_cert_required: bool = False,
    ssl_ciphers: str | None = None,
    settings: Mapping[str, str] | None = None,
    chroot: Path | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> PostgresServer:
    """Start a throw-away PostgreSQL server on 127.0.0.1:<free port>.

    :param tls: ``off`` (ssl=off), ``on`` (TLS offered, cleartext allowed), ``required``
        (TCP only through ``hostssl`` rules, so cleartext TCP is refused).
    :param material: needed unless ``tls`` is ``off``.
    :param server_cert: which server certificate of ``material`` to present.
    :param client_cert_required: every non-superuser TCP login must show a client
        certificate signed by the test CA (``clientcert=verify-ca``); implies TLS for them.
    :param ssl_ciphers: the server's ``ssl_ciphers`` (TLS 1.2 and below).
    :param settings: extra ``-c name=value`` settings (they win over the defaults).
    :param chroot: run that chroot's PostgreSQL (its newest ``/usr/lib/postgresql/N``, as
        its own ``postgres`` user; see :func:`find_chroot`), the directories in its ``/tmp``.
    """
    _check_tls_args(tls, material, server_cert)
    if client_cert_required and tls == "off":
        raise ValueError("client_cert_required needs tls='on' or 'required'")
    bindir = find_postgres_bindir(chroot)
    run_as = _RunAs.chroot_postgres(chroot) if chroot else _RunAs.for_postgres()
    options = {
        "client_cert_required": client_cert_required,
        "ssl_ciphers": ssl_ciphers,
        "settings": dict(settings or {}),
    }

    def make() -> PostgresServer:
        directory = _make_dir("keadb-pg-", run_as, base=str(chroot / "tmp") if chroot else None)
        server = PostgresServer(
            directory=directory,
            port=_free_port(),
            socket=directory,
            log=directory / "server.log",
            tls=tls,
            server_cert=server_cert,
            options=options,
            bindir=bindir,
            run_as=run_as,
        )
        try:
            server.prepare(material)
        except BaseException:
            server.stop()
            raise
        return server

    return cast(PostgresServer, _start(make, timeout=timeout))


class PostgresStandby(PostgresServer):
    """A hot standby: it takes no CREATE ROLE (the primary's roles reach it by replay)."""

    def _after_start(self) -> None:
        pass


def start_postgres_standby(
    primary: PostgresServer, *, listen: str = HOST, port: int | None = None,
    conninfo_password: str = "",
) -> PostgresStandby:
    """A hot standby of ``primary``, made with ``pg_basebackup -R`` over TCP as postgres: its
    ``primary_conninfo`` names the primary's host and port (and ``conninfo_password``, when
    given). ``primary`` must let postgres replicate from 127.0.0.1 (``prepend_hba``) and run
    with ``wal_level=replica`` and WAL senders.

    ``listen`` is the standby's ``listen_addresses`` (another loopback address, such as
    127.0.0.2, lets it share the primary's port: the two are then one libpq host list apart);
    ``port`` defaults to a free one. The standby's ``host`` is ``listen``.
    """
    conninfo = f"host={primary.host} port={primary.port} user=postgres"
    if conninfo_password:
        conninfo += f" password={conninfo_password}"

    def make() -> PostgresStandby:
        directory = _make_dir("keadb-pg-", primary.run_as)
        options = dict(primary.options)
        options["settings"] = {**options.get("settings", {}), "listen_addresses": listen}
        standby = PostgresStandby(
            directory=directory, port=port or _free_port(), socket=directory,
            log=directory / "server.log", tls="off", server_cert="valid",
            options=options, bindir=primary.bindir, run_as=primary.run_as)
        standby.host = listen
        proc = subprocess.run(
            [str(primary.bindir / "pg_basebackup"), "-D", str(standby.data), "-R",
             "-X", "stream", "-c", "fast", "-d", conninfo],
            env=_clean_env(), capture_output=True, text=True, timeout=120,
            check=False, **primary.run_as.popen_kwargs())
        if proc.returncode != 0:
            standby.stop()
            raise ServerStartError(f"pg_basebackup failed: {proc.stderr[-2000:]}")
        return standby

    return cast(PostgresStandby, _start(make))


# ---- MariaDB -------------------------------------------------------------------------------

# Shared by mariadb-install-db and mariadbd: a small, non-durable InnoDB (the schema does
# not depend on these)...
_MARIADB_INNODB = (
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-use-native-aio=0",
    "--skip-name-resolve",
)
# ... and Debian's character set (its /etc/mysql/mariadb.conf.d/50-server.cnf), left out with
# compiled_defaults=True: MariaDB 10.5-11.4 then come up latin1, 11.6+ utf8mb4_uca1400_ai_ci.
MARIADB_DEBIAN_CHARSET = (
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
)
_MARIADB_COMMON = (*_MARIADB_INNODB, *MARIADB_DEBIAN_CHARSET)
# Inside a chroot of tests/tools/sid_chroot.sh.
_CHROOT_MARIADBD = "/usr/sbin/mariadbd"


def _find_program(names: Iterable[str], dirs: Iterable[str]) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for d in dirs:
            if os.access(Path(d) / name, os.X_OK):
                return str(Path(d) / name)
    raise ServerStartError(
        f"none of {', '.join(names)} found; install Debian's mariadb-server package"
    )


def _mariadb_template(
    run_as_root: bool, chroot: Path | None = None, compiled_defaults: bool = False
) -> Path:
    """A data directory made by the installer of the host's MariaDB (or of ``chroot``'s,
    run inside it), with the same character set options as its servers; made once per
    process and copied for each server."""
    with _LOCK:
        key = "mysql" if chroot is None and not compiled_defaults else (
            f"mariadb:{chroot}:{compiled_defaults}"
        )
        if key in _TEMPLATES:
            return _TEMPLATES[key]
        prefix: list[str] = []
        if chroot is None:
            installer = _find_program(
                ["mariadb-install-db", "mysql_install_db"], ["/usr/bin", "/usr/sbin"]
            )
        else:
            names = ("/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db")
            found = [n for n in names if os.access(chroot / n.lstrip("/"), os.X_OK)]
            if not found:
                raise ServerStartError(f"none of {', '.join(names)} in the chroot {chroot}")
            installer = found[0]
            prefix = ["chroot", str(chroot)]
        root = _make_dir(
            "keadb-mariadb-template-", _RunAs(), base=str(chroot / "tmp") if chroot else None
        )
        _TEMPLATE_DIRS.append(root)
        data = root / "data"

        def path(p: Path) -> str:
            return _in_chroot(chroot, p) if chroot else str(p)

        cmd = [
            *prefix,
            installer,
            "--no-defaults",
            f"--datadir={path(data)}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *(_MARIADB_INNODB if compiled_defaults else _MARIADB_COMMON),
        ]
        if run_as_root:
            cmd.append("--user=root")
        # mariadb-install-db also makes root@<this host name>, unusable with
        # --skip-name-resolve (and warned about at every start). It bootstraps with the
        # grant tables off, so DROP USER is not possible: delete the rows.
        host = pymysql.converters.escape_string(socket.gethostname())
        extra = root / "extra.sql"
        extra.write_text(
            f"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host = '{host}';\n"
            f"DELETE FROM mysql.proxies_priv WHERE Host = '{host}' OR Proxied_host = '{host}';\n"
        )
        where = f" in {chroot}" if chroot else ""
        # MariaDB 10.5's installer has no --extra-file: bootstrap the server with it after.
        help_text = subprocess.run(
            [*prefix, installer, "--help"], capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL, check=False, env=_clean_env(),
        ).stdout
        has_extra_file = "--extra-file" in help_text.replace("--defaults-extra-file", "")
        if has_extra_file:
            cmd.append(f"--extra-file={path(extra)}")
        _run(cmd, what=f"{installer}{where}", run_as=_RunAs(), cwd=root)
        if not has_extra_file:
            mariadbd = _CHROOT_MARIADBD if chroot else _find_program(
                ["mariadbd", "mysqld"], ["/usr/sbin", "/usr/bin"]
            )
            _run(
                [*prefix, mariadbd, "--no-defaults", "--bootstrap", f"--datadir={path(data)}",
                 *(["--user=root"] if run_as_root else []),
                 *(_MARIADB_INNODB if compiled_defaults else _MARIADB_COMMON)],
                what=f"{mariadbd} --bootstrap{where} (root@host name rows)",
                run_as=_RunAs(),
                cwd=root,
                stdin_text=extra.read_text(),
            )
        _TEMPLATES[key] = data
        return data


MySQLFlavor = Literal["mariadb", "mysql"]
MYSQL_FLAVORS: tuple[MySQLFlavor, ...] = ("mariadb", "mysql")
# Every kind of server: PostgreSQL and the MySQL flavours (ids of parametrised tests).
SERVER_FLAVORS: tuple[str, ...] = ("postgresql", *MYSQL_FLAVORS)


class MySQLFamilyServer(DatabaseServer):
    """What MariaDB and Oracle MySQL servers share: the superuser's SQL over the socket,
    databases and users. ``type`` is ``mysql`` for both; ``flavor`` tells them apart."""

    type = "mysql"
    superuser = "root"
    flavor: ClassVar[MySQLFlavor]
    _stop_signal = signal.SIGTERM
    # Seconds :meth:`sql` waits for each answer (None: for ever).
    _read_timeout: ClassVar[float | None] = None

    @property
    def version(self) -> str:
        return str(self.sql("SELECT VERSION()")[0][0])

    def sql(
        self, query: str, database: str | None = None, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        conn = pymysql.connect(
            unix_socket=self.socket,
            user="root",
            password="",
            database=database,
            autocommit=True,
            connect_timeout=10,
            read_timeout=self._read_timeout,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return [tuple(row) for row in cur.fetchall()] if cur.description else []
        finally:
            conn.close()

    @staticmethod
    def _ident(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE {self._ident(name)}")

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {self._ident(name)}")

    def create_user(
        self, name: str, password: str, *, database: str | None = None, require_x509: bool = False
    ) -> None:
        """Create ``name@'%'`` with ALL on ``database``.

        The password uses the server's default plugin: mysql_native_password on MariaDB
        10.11, caching_sha2_password on Oracle MySQL.
        """
        require = " REQUIRE X509" if require_x509 else ""
        self.sql(f"CREATE USER %s@'%%' IDENTIFIED BY %s{require}", params=(name, password))
        if database:
            self.sql(
                f"GRANT ALL PRIVILEGES ON {self._ident(database)}.* TO %s@'%%'", params=(name,)
            )
        if not require_x509:
            self.warm_auth_cache(name, password)

    def _install_tls(self, material: TlsMaterial | None) -> None:
        """The server's certificate, key and CA into its directory (TLS on or required)."""
        if self.tls == "off":
            return
        assert material is not None
        cert, key = material.server_pair(self.server_cert)
        shutil.copyfile(cert, self.directory / "server.crt")
        shutil.copyfile(material.ca_cert, self.directory / "ca.crt")
        shutil.copyfile(key, self.directory / "server.key")
        os.chmod(self.directory / "server.key", 0o600)

    def set_password(self, name: str, password: str) -> None:
        """ALTER USER ... IDENTIFIED BY (which empties Oracle MySQL's cache for the user)."""
        self.sql("ALTER USER %s@'%%' IDENTIFIED BY %s", params=(name, password))
        self.warm_auth_cache(name, password)

    def warm_auth_cache(self, name: str, password: str) -> None:
        """Oracle MySQL (caching_sha2_password): one login over the Unix socket, a secure
        channel, puts the user in the server's cache, so that later logins over TCP without
        TLS take the fast path, as they do on a server that has seen the user before.
        Without it such a login needs an RSA key exchange, which kea-db refuses (proven on
        a cold cache in tests/test_sessions.py). MariaDB's plugin has no cache."""
        if self.flavor != "mysql":
            return
        # As UTF-8 bytes, as the C client sends it (PyMySQL would encode a str as latin-1).
        conn = pymysql.connect(unix_socket=self.socket, user=name,
                               password=password.encode(), connect_timeout=10)
        conn.close()

    def drop_user(self, name: str) -> None:
        self.sql("DROP USER IF EXISTS %s@'%%'", params=(name,))


class MariaDBServer(MySQLFamilyServer):
    """The host's mariadbd, or (``chroot`` set) a chroot's, run as ``chroot <dir>
    /usr/sbin/mariadbd`` as root with its directories in the chroot's ``/tmp``."""

    flavor = "mariadb"

    def __init__(self, *, mariadbd: str, chroot: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mariadbd = mariadbd
        self.chroot = chroot
        self.data = self.directory / "data"

    def inside(self, path: Path | str) -> str:
        """A host path as the server sees it (under its chroot, if any)."""
        return _in_chroot(self.chroot, Path(path)) if self.chroot else str(path)

    def _command(self) -> list[str]:
        compiled_defaults = bool(self.options.get("compiled_defaults"))
        cmd = [
            *(["chroot", str(self.chroot)] if self.chroot else []),
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.inside(self.data)}",
            f"--socket={self.inside(self.socket)}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            "--skip-networking=0",
            f"--pid-file={self.inside(self.directory / 'mariadbd.pid')}",
            f"--tmpdir={self.inside(self.directory / 'tmp')}",
            "--skip-performance-schema",
            "--skip-log-bin",
            "--max-connections=100",
            "--innodb-temp-data-file-path=ibtmp1:1M:autoextend",
            *(_MARIADB_INNODB if compiled_defaults else _MARIADB_COMMON),
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        if self.tls == "off":
            cmd.append("--skip-ssl")
        else:
            cmd += [
                f"--ssl-ca={self.inside(self.directory / 'ca.crt')}",
                f"--ssl-cert={self.inside(self.directory / 'server.crt')}",
                f"--ssl-key={self.inside(self.directory / 'server.key')}",
            ]
            if self.tls == "required":
                cmd.append("--require-secure-transport=ON")
            if self.options.get("ssl_cipher"):
                cmd.append(f"--ssl-cipher={self.options['ssl_cipher']}")
            if self.options.get("tls_version"):
                cmd.append(f"--tls-version={self.options['tls_version']}")
        cmd += list(self.options.get("extra_args") or ())
        return cmd

    def prepare(self, material: TlsMaterial | None) -> None:
        if len(self.socket.encode()) > _SOCKET_PATH_MAX:
            raise ServerStartError(f"socket path {self.socket} is too long for a Unix socket")
        source = self.options.get("datadir")
        if source is None:
            source = _mariadb_template(
                os.geteuid() == 0, self.chroot, bool(self.options.get("compiled_defaults"))
            )
        _copy_tree(Path(source), self.data)
        (self.directory / "tmp").mkdir()
        self._install_tls(material)


def start_mariadb(
    *,
    tls: TlsMode = "off",
    material: TlsMaterial | None = None,
    server_cert: ServerCert = "valid",
    ssl_cipher: str | None = None,
    tls_version: str | None = None,
    extra_args: Sequence[str] = (),
    chroot: Path | None = None,
    compiled_defaults: bool = False,
    datadir: Path | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> MariaDBServer:
    """Start a throw-away MariaDB server on 127.0.0.1:<free port>.

    :param tls: ``off`` (``--skip-ssl``: have_ssl=DISABLED), ``on`` (ssl_ca/ssl_cert/ssl_key
        set), ``required`` (plus ``require_secure_transport=ON``; the socket still counts as
        secure).
    :param material: needed unless ``tls`` is ``off``.
    :param server_cert: which server certificate of ``material`` to present.
    :param ssl_cipher: the server's ``--ssl-cipher`` list.
    :param tls_version: the server's ``--tls-version`` (e.g. ``TLSv1.2``).
    :param extra_args: more ``mariadbd`` options (appended last, so they win; paths in them
        are the chroot's when ``chroot`` is set).
    :param chroot: run that chroot's ``/usr/sbin/mariadbd`` (:func:`find_chroot`; its data
        directory made by its own installer, in its ``/tmp``).
    :param compiled_defaults: leave out Debian's ``--character-set-server=utf8mb4
        --collation-server=utf8mb4_general_ci`` (kept by default): the server's compiled-in
        character set and collation.
    :param datadir: copy this (stopped) data directory instead of a fresh one: the server
        starts on another server's data, as an in-place upgrade does.

    Client certificates are required per user: ``create_user(..., require_x509=True)``.
    """
    _check_tls_args(tls, material, server_cert)
    if tls == "off" and (ssl_cipher or tls_version):
        raise ValueError("ssl_cipher / tls_version need tls='on' or 'required'")
    if chroot is None:
        mariadbd = _find_program(["mariadbd", "mysqld"], ["/usr/sbin", "/usr/bin"])
    else:
        if not os.access(chroot / _CHROOT_MARIADBD.lstrip("/"), os.X_OK):
            raise ServerStartError(f"no {_CHROOT_MARIADBD} in the chroot {chroot}")
        mariadbd = _CHROOT_MARIADBD
    options = {
        "ssl_cipher": ssl_cipher,
        "tls_version": tls_version,
        "extra_args": extra_args,
        "compiled_defaults": compiled_defaults,
        "datadir": datadir,
    }

    def make() -> MariaDBServer:
        return _new_mysql_family(MariaDBServer, options, prefix="keadb-mariadb-",
                                 socket_name="mariadbd.sock", mariadbd=mariadbd,
                                 chroot=chroot, tls=tls, server_cert=server_cert,
                                 material=material)

    return cast(MariaDBServer, _start(make, timeout=timeout))


M = TypeVar("M", bound=MySQLFamilyServer)


def _new_mysql_family(
    cls: type[M],
    options: Mapping[str, Any],
    *,
    prefix: str,
    socket_name: str,
    chroot: Path | None = None,
    tls: TlsMode = "off",
    server_cert: ServerCert = "valid",
    material: TlsMaterial | None = None,
    **extra: Any,
) -> M:
    """A prepared, not yet started ``cls`` server in a new directory named ``prefix``...
    (under the chroot's /tmp when there is one), on a new free port (``extra`` goes to its
    constructor)."""
    directory = _make_dir(prefix, _RunAs(), base=str(chroot / "tmp") if chroot else None)
    server = cls(
        directory=directory,
        port=_free_port(),
        socket=directory / socket_name,
        log=directory / "server.log",
        tls=tls,
        server_cert=server_cert,
        options=options,
        chroot=chroot,
        **extra,
    )
    try:
        server.prepare(material)
    except BaseException:
        server.stop()
        raise
    return server


_MARIADB_UPGRADE_TIMEOUT = 120.0
_DEFAULT_SQL_MODES: dict[str, str] = {}


def mariadb_default_sql_mode(chroot: Path | None = None) -> str:
    """The compiled-in ``sql_mode`` of the host's mariadbd (or ``chroot``'s), as its
    ``--verbose --help`` prints it."""
    key = str(chroot)
    with _LOCK:
        if key in _DEFAULT_SQL_MODES:
            return _DEFAULT_SQL_MODES[key]
    if chroot is None:
        cmd = [_find_program(["mariadbd", "mysqld"], ["/usr/sbin", "/usr/bin"])]
    else:
        cmd = ["chroot", str(chroot), _CHROOT_MARIADBD]
    cmd += ["--no-defaults", "--user=root", "--verbose", "--help"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, env=_clean_env(),
            stdin=subprocess.DEVNULL, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(f"{' '.join(cmd)} failed: {exc}") from exc
    found = re.search(r"^sql-mode\s+(\S+)$", done.stdout, re.MULTILINE)
    if not found:
        raise ServerStartError(f"no sql-mode line in the output of {' '.join(cmd)}")
    with _LOCK:
        _DEFAULT_SQL_MODES[key] = found.group(1)
    return found.group(1)


def upgrade_in_place(
    old: MariaDBServer, *, extra_args: Sequence[str] = (), timeout: float = STARTUP_TIMEOUT
) -> MariaDBServer:
    """Stop ``old`` cleanly and start the host's MariaDB (compiled-in defaults, TLS off) on
    a copy of its data directory, then run the host's ``mariadb-upgrade`` against it, as an
    operator upgrading a server in place would. ``old`` is stopped (and its directory
    removed) whatever happens.

    Raises:
        ServerStartError: ``old`` did not shut down cleanly, the new server did not start, or
            mariadb-upgrade failed (the new server is then stopped).
    """
    process = old.process
    if process is None or process.poll() is not None:
        raise ServerStartError(f"{old!r} is not running: nothing to upgrade")
    try:
        old.begin_stop()
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(
                f"{old!r} did not shut down within {STOP_TIMEOUT:.0f} s"
            ) from exc
        if code != 0:
            raise ServerStartError(
                f"{old!r} exited with {code} at shutdown; last log lines:\n{old.log_tail()}"
            )
        new = start_mariadb(
            compiled_defaults=True, datadir=old.data, extra_args=extra_args, timeout=timeout
        )
    finally:
        old.stop()
    upgrader = _find_program(["mariadb-upgrade", "mysql_upgrade"], ["/usr/bin", "/usr/sbin"])
    try:
        _run(
            [upgrader, "--no-defaults", f"--socket={new.socket}", "--user=root"],
            what=f"{upgrader} (after the in-place upgrade)",
            run_as=_RunAs(),
            cwd=new.directory,
            timeout=_MARIADB_UPGRADE_TIMEOUT,
        )
    except BaseException:
        new.stop()
        raise
    return new


# ---- Galera: a cluster of the host's mariadbd with galera-4 ----------------------------------

GALERA_PROVIDERS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/galera-4/libgalera_smm.so")
GALERA_SYNC_TIMEOUT = 60.0
# Galera's failure detection, quicker than its defaults (suspect a silent peer after 5 s,
# evict it after 15 s, install a view within 7.5 s), so that an isolated node finds itself
# alone within about 4 s; shorter (suspect 2 s, install 2 s) made rejoining flap between
# views for up to 20 s. A small gcache (default 128M per node, in /dev/shm).
_GALERA_PROVIDER_OPTIONS = (
    "gcache.size=16M",
    "evs.suspect_timeout=PT3S",
    "evs.inactive_timeout=PT4S",
    "evs.install_timeout=PT4S",
)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports of 127.0.0.1 (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((HOST, 0))
            ports.append(int(s.getsockname()[1]))
        return ports


class GaleraNode(MariaDBServer):
    """One mariadbd of a :class:`GaleraCluster`: MariaDB's compiled-in defaults plus what
    Galera needs (``wsrep_on``, the provider, ROW binlog format, InnoDB, interleaved
    auto-increment locks) and its own loopback ports for group communication
    (``gmcast_port``), incremental (``ist_port``) and full state transfer (``sst_port``)."""

    # A starting node that is not (yet) in a Primary component accepts connections on its
    # socket and never sends the handshake.
    _read_timeout = 30.0
    # As root, the node runs as this OS user (started as it: mariadbd runs a joiner's SST
    # script before it switches to its --user), so that the SST script's rsync daemon runs
    # as that user too; started by root, rsync's daemon switches to 'nobody', which cannot
    # write to the data directory.
    os_user: ClassVar[str] = "mysql"

    def __init__(self, *, name: str, provider: str, cluster_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.provider = provider
        self.cluster_name = cluster_name
        self.gmcast_port, self.ist_port, self.sst_port = _free_ports(3)
        # Set by the cluster before the node starts: the gmcast ports of the gcomm://
        # address, and whether this node bootstraps the cluster.
        self.peers: list[int] = []
        self.bootstrap = False

    def _command(self) -> list[str]:
        addresses = ",".join(f"{HOST}:{port}" for port in self.peers)
        provider_options = ";".join((
            f"gmcast.listen_addr=tcp://{HOST}:{self.gmcast_port}",
            f"ist.recv_addr={HOST}:{self.ist_port}",
            *_GALERA_PROVIDER_OPTIONS,
        ))
        # Before the caller's extra_args (MariaDBServer._command puts them last, so they win).
        wsrep = [
            "--wsrep-on=ON",
            f"--wsrep-provider={self.provider}",
            f"--wsrep-cluster-name={self.cluster_name}",
            f"--wsrep-cluster-address=gcomm://{addresses}",
            f"--wsrep-node-name={self.name}",
            f"--wsrep-node-address={HOST}",
            # The client address the cluster lists for this node (wsrep_incoming_addresses),
            # which kea-db's cluster-wide lock logs in to: said, not guessed (AUTO).
            f"--wsrep-node-incoming-address={HOST}:{self.port}",
            f"--wsrep-provider-options={provider_options}",
            f"--wsrep-sst-receive-address={HOST}:{self.sst_port}",
            "--wsrep-sst-method=rsync",
            "--binlog-format=ROW",
            "--default-storage-engine=InnoDB",
            "--innodb-autoinc-lock-mode=2",
            *(["--wsrep-new-cluster"] if self.bootstrap else []),
        ]
        cmd = super()._command()
        extra = len(self.options.get("extra_args") or ())
        return cmd[: len(cmd) - extra] + wsrep + cmd[len(cmd) - extra :]

    def _run_as(self) -> _RunAs:
        if os.geteuid() != 0:
            return _RunAs()
        try:
            pw = pwd.getpwnam(self.os_user)
        except KeyError as exc:
            raise ServerStartError(
                f"running as root: a Galera node runs as the OS user {self.os_user!r}, which "
                "does not exist (Debian's mariadb-server package creates it)"
            ) from exc
        return _RunAs(user=self.os_user, uid=pw.pw_uid, gid=pw.pw_gid)

    def _popen_kwargs(self) -> dict[str, Any]:
        return self._run_as().popen_kwargs()

    def prepare(self, material: TlsMaterial | None) -> None:
        super().prepare(material)
        run_as = self._run_as()
        for parent, _dirs, files in os.walk(self.directory):
            run_as.chown(Path(parent), *(Path(parent) / f for f in files))

    def status(self) -> dict[str, str]:
        """The node's ``wsrep_%`` status variables (``SHOW GLOBAL STATUS``), as text."""
        return {str(k): str(v) for k, v in self.sql("SHOW GLOBAL STATUS LIKE 'wsrep\\_%'")}

    def wait_status(self, timeout: float = GALERA_SYNC_TIMEOUT, **expected: str) -> dict[str, str]:
        """Poll :meth:`status` until each ``wsrep_<name>`` reads as ``expected``; return it:
        ``node.wait_status(cluster_size="3", local_state_comment="Synced")``.

        Raises:
            ServerStartError: not so within ``timeout`` seconds (with the last values).
        """
        deadline = time.monotonic() + timeout
        while True:
            status: dict[str, str] = {}
            with contextlib.suppress(pymysql.Error):
                status = self.status()
            wrong = {k: status.get(f"wsrep_{k}") for k, v in expected.items()
                     if status.get(f"wsrep_{k}") != v}
            if not wrong:
                return status
            if not self.is_running() or time.monotonic() > deadline:
                raise ServerStartError(
                    f"Galera node {self.name} (port {self.port}): wanted {expected}, still "
                    f"{wrong} after {timeout:.0f} s; last log lines:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def desync(self) -> dict[str, str]:
        """``SET GLOBAL wsrep_desync=ON``: the node stays in the Primary component but leaves
        flow control (``Donor/Desynced``, as during a backup); returns the status."""
        self.sql("SET GLOBAL wsrep_desync=ON")
        return self.wait_status(local_state_comment="Donor/Desynced")

    def resync(self) -> dict[str, str]:
        """Undo :meth:`desync` and wait until the node is ``Synced`` again."""
        self.sql("SET GLOBAL wsrep_desync=OFF")
        return self.wait_status(local_state_comment="Synced")

    def isolate(self) -> dict[str, str]:
        """Cut the node off the group (``gmcast.isolate=1``): it ends alone in a non-Primary
        component, while the others (a majority) stay Primary; returns its status."""
        self.sql("SET GLOBAL wsrep_provider_options='gmcast.isolate=1'")
        return self.wait_status(cluster_status="non-Primary")

    def rejoin(self, cluster_size: int) -> dict[str, str]:
        """Undo :meth:`isolate` and wait until the node is Synced in the Primary component of
        ``cluster_size`` nodes."""
        self.sql("SET GLOBAL wsrep_provider_options='gmcast.isolate=0'")
        return self.wait_status(cluster_status="Primary", cluster_size=str(cluster_size),
                                local_state_comment="Synced")


def find_galera_provider() -> str:
    """galera-4's ``libgalera_smm.so`` (Debian's galera-4 package)."""
    for path in GALERA_PROVIDERS:
        if os.access(path, os.R_OK):
            return path
    raise ServerStartError(
        f"no Galera provider ({', '.join(GALERA_PROVIDERS)}); install Debian's galera-4"
    )


@dataclass
class GaleraCluster:
    """The nodes of :func:`start_galera_cluster`; ``nodes[0]`` bootstrapped it."""

    name: str
    nodes: list[GaleraNode]
    startup_seconds: float = 0.0

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.nodes)

    def wait_synced(self, timeout: float = GALERA_SYNC_TIMEOUT) -> None:
        """Wait until every node is Synced in one Primary component of all the nodes."""
        for node in self.nodes:
            node.wait_status(timeout, cluster_size=str(len(self.nodes)),
                             cluster_status="Primary", local_state_comment="Synced")

    def restore(self, timeout: float = GALERA_SYNC_TIMEOUT) -> None:
        """Undo :meth:`GaleraNode.desync` and :meth:`GaleraNode.isolate` on every node and
        wait until all are Synced again (a no-op on a healthy cluster)."""
        for node in self.nodes:
            node.sql("SET GLOBAL wsrep_desync=OFF")
            node.sql("SET GLOBAL wsrep_provider_options='gmcast.isolate=0'")
        self.wait_synced(timeout)

    def stop(self) -> None:
        """Stop every node (in parallel) and remove their directories. Idempotent."""
        stop_servers(self.nodes)


def start_galera_cluster(
    nodes: int = 3, *, extra_args: Sequence[str] = (), timeout: float = GALERA_SYNC_TIMEOUT
) -> GaleraCluster:
    """Start a Galera cluster of ``nodes`` :class:`GaleraNode` (the host's mariadbd and
    galera-4) on loopback ports. Each starts on a copy of the data directory MariaDB's
    installer made; the first bootstraps the cluster (``--wsrep-new-cluster``), the others
    join it one after the other, each with a full state transfer from a Synced node (rsync
    SST: the data directories are small, a few seconds each). Returns when every node is
    Synced in the Primary component of ``nodes`` nodes; on any failure stops whatever it
    started and raises :class:`ServerStartError`.

    :param extra_args: more ``mariadbd`` options for every node (last, so they win).
    """
    started = time.monotonic()
    provider = find_galera_provider()
    if shutil.which("rsync") is None:
        raise ServerStartError("Galera's rsync SST needs rsync; install Debian's rsync")
    mariadbd = _find_program(["mariadbd", "mysqld"], ["/usr/sbin", "/usr/bin"])
    options = {"extra_args": tuple(extra_args), "compiled_defaults": True}
    cluster = GaleraCluster(name=f"keadb-{secrets.token_hex(4)}", nodes=[])
    # Every node's gcomm:// address lists every node's gmcast port, chosen up front; a
    # node retried on new ports (_start: a port was taken) is announced by the others.
    gmcast = _free_ports(nodes)
    tried: set[int] = set()

    def make(index: int) -> GaleraNode:
        node = _new_mysql_family(GaleraNode, options, prefix="keadb-mariadb-",
                                 socket_name="mariadbd.sock", mariadbd=mariadbd,
                                 name=f"node{index + 1}", provider=provider,
                                 cluster_name=cluster.name)
        if index not in tried:
            tried.add(index)
            node.gmcast_port = gmcast[index]
        gmcast[index] = node.gmcast_port
        node.bootstrap = index == 0
        node.peers = gmcast
        return node

    try:
        for index in range(nodes):
            node = cast(GaleraNode, _start(lambda i=index: make(i), timeout=timeout))
            cluster.nodes.append(node)
        cluster.wait_synced(timeout)
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - started
    return cluster


# ---- Oracle MySQL, from a Debian sid chroot -------------------------------------------------

# The chroot that tests/tools/sid_chroot.sh builds; its stamp file is written last.
SID_CHROOT_ENV = "KEADB_SID_CHROOT"
DEFAULT_SID_CHROOT = "/var/cache/kea-db-tests/sid"
SID_CHROOT_STAMP = ".keadb-sid-chroot-complete"
SID_CHROOT_SCRIPT = Path(__file__).resolve().parent / "tools" / "sid_chroot.sh"
_MYSQLD = "/usr/sbin/mysqld"  # inside the chroot
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL

# Shared by --initialize-insecure and the servers: a small, non-durable InnoDB. (With 8 MB
# of redo log, --initialize logs that its redo log writer waits for space.)
_ORACLE_MYSQL_COMMON = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-redo-log-capacity=32M",
    "--innodb-log-buffer-size=8M",
    "--innodb-flush-log-at-trx-commit=0",
    # No fsync at all (a value meant for testing): kea-admin db-init, all DDL, took a median
    # 5.3 s instead of 8.9 s with the default O_DIRECT (the chroot's /tmp is on disk).
    "--innodb-flush-method=nosync",
    "--innodb-doublewrite=OFF",
    "--innodb-use-native-aio=0",
    "--skip-name-resolve",
    "--skip-log-bin",
    "--mysqlx=OFF",  # the X plugin would listen on 33060 on every address
    "--performance-schema=OFF",
)

# mysqld --initialize-insecure makes root@localhost (socket) only: add the TCP superusers
# MariaDB's installer makes, with no password either (the default plugin,
# caching_sha2_password, whose empty password needs neither TLS nor RSA).
_ORACLE_MYSQL_INIT_SQL = "".join(
    f"CREATE USER 'root'@'{host}' IDENTIFIED BY '';\n"
    f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'{host}' WITH GRANT OPTION;\n"
    f"GRANT PROXY ON ''@'' TO 'root'@'{host}' WITH GRANT OPTION;\n"
    for host in ("127.0.0.1", "::1")
)


def find_sid_chroot() -> Path:
    """The complete sid chroot with Oracle MySQL (``$KEADB_SID_CHROOT`` or the default)."""
    root = Path(os.environ.get(SID_CHROOT_ENV) or DEFAULT_SID_CHROOT)
    if not (root / SID_CHROOT_STAMP).is_file() or not os.access(
        root / _MYSQLD.lstrip("/"), os.X_OK
    ):
        raise ServerStartError(
            f"no complete Debian sid chroot with Oracle MySQL at {root} (no "
            f"{SID_CHROOT_STAMP} or {_MYSQLD}); build it, as root, with {SID_CHROOT_SCRIPT} "
            f"(set {SID_CHROOT_ENV} for another place)"
        )
    if os.geteuid() != 0:
        raise ServerStartError(f"Oracle MySQL runs in the chroot {root}: that needs root")
    return root


def _oracle_mysql_template(root: Path) -> Path:
    """An initialised data directory in the chroot, made once per process and copied."""
    with _LOCK:
        key = f"oracle-mysql:{root}"
        if key in _TEMPLATES:
            return _TEMPLATES[key]
        base = _make_dir("keadb-mysql-template-", _RunAs(), base=str(root / "tmp"))
        _TEMPLATE_DIRS.append(base)
        data = base / "data"
        init = base / "init.sql"
        init.write_text(_ORACLE_MYSQL_INIT_SQL)
        _run(
            [
                "chroot",
                str(root),
                _MYSQLD,
                "--no-defaults",
                "--initialize-insecure",
                "--user=root",
                f"--datadir={_in_chroot(root, data)}",
                f"--init-file={_in_chroot(root, init)}",
                *_ORACLE_MYSQL_COMMON,
            ],
            what="mysqld --initialize-insecure (Oracle MySQL, in the sid chroot)",
            run_as=_RunAs(),
            cwd=base,
        )
        # Each copy makes its own server UUID.
        (data / "auto.cnf").unlink(missing_ok=True)
        _TEMPLATES[key] = data
        return data


class OracleMySQLServer(MySQLFamilyServer):
    """Oracle MySQL's mysqld, run as ``chroot <sid chroot> /usr/sbin/mysqld`` as root.

    ``directory``, ``socket`` and ``log`` are host paths (inside the chroot's ``/tmp``);
    :meth:`inside` gives the path the server sees.
    """

    flavor = "mysql"

    def __init__(self, *, chroot: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chroot = chroot
        self.data = self.directory / "data"

    def inside(self, path: Path | str) -> str:
        """A host path under the chroot as the server sees it."""
        return _in_chroot(self.chroot, Path(path))

    def _command(self) -> list[str]:
        d = self.inside(self.directory)
        cmd = [
            "chroot",
            str(self.chroot),
            _MYSQLD,
            "--no-defaults",
            "--user=root",  # mysqld refuses to run as root without it
            f"--datadir={d}/data",
            f"--socket={self.inside(self.socket)}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            f"--pid-file={d}/mysqld.pid",
            f"--tmpdir={d}/tmp",
            "--max-connections=100",
            *_ORACLE_MYSQL_COMMON,
        ]
        if self.options.get("compiled_defaults"):
            cmd.remove("--skip-log-bin")  # MySQL's default: binary log on (ROW)
        if self.tls == "off":
            # --ssl / --skip-ssl are gone (8.4): an empty TLS version list disables TLS (the
            # server logs a warning that it could not set up TLS). No auto-generated
            # certificates either.
            cmd += ["--tls-version=", "--auto-generate-certs=OFF"]
        else:
            cmd += [
                f"--ssl-ca={d}/ca.crt",
                f"--ssl-cert={d}/server.crt",
                f"--ssl-key={d}/server.key",
            ]
            if self.tls == "required":
                cmd.append("--require-secure-transport=ON")
            if self.options.get("ssl_cipher"):
                cmd.append(f"--ssl-cipher={self.options['ssl_cipher']}")
            if self.options.get("tls_version"):
                cmd.append(f"--tls-version={self.options['tls_version']}")
        cmd += list(self.options.get("extra_args") or ())
        return cmd

    def prepare(self, material: TlsMaterial | None) -> None:
        if len(self.socket.encode()) > _SOCKET_PATH_MAX:
            raise ServerStartError(
                f"socket path {self.socket} is too long for a Unix socket; put the chroot "
                f"somewhere shorter ({SID_CHROOT_ENV})"
            )
        _copy_tree(_oracle_mysql_template(self.chroot), self.data)
        (self.directory / "tmp").mkdir()
        self._install_tls(material)


def start_oracle_mysql(
    *,
    tls: TlsMode = "off",
    material: TlsMaterial | None = None,
    server_cert: ServerCert = "valid",
    ssl_cipher: str | None = None,
    tls_version: str | None = None,
    extra_args: Sequence[str] = (),
    compiled_defaults: bool = False,
    timeout: float = STARTUP_TIMEOUT,
) -> OracleMySQLServer:
    """Start a throw-away Oracle MySQL server (sid chroot) on 127.0.0.1:<free port>.

    The same interface and TLS modes as :func:`start_mariadb`:

    :param tls: ``off`` (``--tls-version=''``: no TLS at all), ``on`` (ssl_ca/ssl_cert/ssl_key
        set), ``required`` (plus ``require_secure_transport=ON``; the socket still counts as
        secure).
    :param material: needed unless ``tls`` is ``off``.
    :param server_cert: which server certificate of ``material`` to present.
    :param ssl_cipher: the server's ``--ssl-cipher`` list (TLS 1.2).
    :param tls_version: the server's ``--tls-version`` (e.g. ``TLSv1.2``).
    :param extra_args: more ``mysqld`` options (appended last, so they win; paths in them are
        the chroot's).
    :param compiled_defaults: leave out ``--skip-log-bin`` (kept by default): the binary log
        is on, as MySQL's default is. (The character set is always the compiled-in one.)

    Users are created with MySQL's default plugin, caching_sha2_password. Needs root and the
    chroot of ``tests/tools/sid_chroot.sh`` (:func:`find_sid_chroot`).
    """
    _check_tls_args(tls, material, server_cert)
    if tls == "off" and (ssl_cipher or tls_version):
        raise ValueError("ssl_cipher / tls_version need tls='on' or 'required'")
    root = find_sid_chroot()
    options = {
        "ssl_cipher": ssl_cipher,
        "tls_version": tls_version,
        "extra_args": extra_args,
        "compiled_defaults": compiled_defaults,
    }

    def make() -> OracleMySQLServer:
        return _new_mysql_family(OracleMySQLServer, options, prefix="keadb-mysql-",
                                 socket_name="mysqld.sock", chroot=root, tls=tls,
                                 server_cert=server_cert, material=material)

    return cast(OracleMySQLServer, _start(make, timeout=timeout))


def start_mysql_family(flavor: MySQLFlavor, **kwargs: Any) -> MySQLFamilyServer:
    """:func:`start_mariadb` (``flavor="mariadb"``) or :func:`start_oracle_mysql`
    (``"mysql"``) with the same keyword arguments."""
    if flavor == "mariadb":
        return start_mariadb(**kwargs)
    if flavor == "mysql":
        return start_oracle_mysql(**kwargs)
    raise ValueError(f"unknown MySQL flavor {flavor!r}; use one of {MYSQL_FLAVORS}")


def _check_tls_args(tls: str, material: TlsMaterial | None, server_cert: str) -> None:
    if tls not in TLS_MODES:
        raise ValueError(f"unknown tls mode {tls!r}; use one of {TLS_MODES}")
    if server_cert not in SERVER_CERTS:
        raise ValueError(f"unknown server certificate {server_cert!r}; use one of {SERVER_CERTS}")
    if tls != "off" and material is None:
        raise ValueError(f"tls={tls!r} needs TLS material (make_tls_material)")


# --------------------------------------------------------------------------------------------
# Fresh databases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreshDatabase:
    """An empty database and a password user that owns it (all privileges on it); with
    ``owner`` set (PostgreSQL), another role owns it and the user has grants only."""

    server: DatabaseServer
    name: str
    user: str
    password: str
    host: str
    port: int
    type: BackendType
    socket: str
    require_x509: bool = False
    owner: str | None = None


def add_sleeping_version_view(db: FreshDatabase) -> None:
    """``schema_version`` in ``db`` as a view with Kea's columns whose every read sleeps 30 s
    (a server that accepts the login, then stalls on the first read)."""
    if db.type == "postgresql":
        db.server.sql("CREATE VIEW schema_version AS SELECT 13 AS version, 0 AS minor "
                      "FROM pg_sleep(30)", database=db.name)
        db.server.sql(f'GRANT SELECT ON schema_version TO "{db.user}"', database=db.name)
    else:
        db.server.sql(f"CREATE VIEW `{db.name}`.schema_version AS SELECT 13 AS version, "
                      "0 AS minor FROM (SELECT SLEEP(30) AS s) AS t")


def create_fresh_database(server: DatabaseServer, *, require_x509: bool = False) -> FreshDatabase:
    """A new empty database ``keadb_<hex>`` and user ``kea_<hex>`` with a random password."""
    token = secrets.token_hex(6)
    name, user, password = f"keadb_{token}", f"kea_{token}", secrets.token_urlsafe(18)
    server.create_database(name)
    try:
        server.create_user(user, password, database=name, require_x509=require_x509)
    except BaseException:
        server.drop_database(name)
        raise
    return _fresh_record(server, name, user, password, require_x509=require_x509)


def _fresh_record(server: DatabaseServer, name: str, user: str, password: str,
                  **extra: Any) -> FreshDatabase:
    """The :class:`FreshDatabase` of a database and user just made on ``server``."""
    return FreshDatabase(server=server, name=name, user=user, password=password,
                         host=server.host, port=server.port, type=server.type,
                         socket=server.socket, **extra)


def grant_verify_scratch(db: FreshDatabase) -> None:
    """MySQL: what `kea-db verify` (and upgrade, which verifies first) needs beyond Kea's
    own database: the scratch databases ``keadb_verify_*`` it builds the expected schema
    in and drops. Nothing to do on PostgreSQL (the database's owner may create schemas)."""
    if db.type == "mysql":
        db.server.sql(f"GRANT ALL ON `keadb\\_verify\\_%`.* TO '{db.user}'@'%'")


def drop_fresh_database(db: FreshDatabase) -> None:
    """Drop the database and its user (and owner role; nothing to do when the server is
    gone)."""
    if not db.server.is_running():
        return
    db.server.drop_database(db.name)
    db.server.drop_user(db.user)
    if db.owner:
        db.server.drop_user(db.owner)


def _fresh_pg(
    server: PostgresServer, *, encoding: str | None, user_owns: bool
) -> FreshDatabase:
    token = secrets.token_hex(6)
    name, user, password = f"keadb_{token}", f"kea_{token}", secrets.token_urlsafe(18)
    owner = None if user_owns else f"keadb_owner_{token}"
    db, ident = pgsql.Identifier(name), pgsql.Identifier(user)
    if owner:
        server.sql(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(owner)))
    create = pgsql.SQL("CREATE DATABASE {}").format(db)
    if encoding:
        create += pgsql.SQL(
            " ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        ).format(pgsql.Literal(encoding))
    if owner:
        create += pgsql.SQL(" OWNER {}").format(pgsql.Identifier(owner))
    try:
        server.sql(create)
        if user_owns:
            server.create_user(user, password, database=name)
        else:
            # Kea's ARM: GRANT ALL PRIVILEGES ON DATABASE, and (PostgreSQL 15+, which took
            # CREATE on public from PUBLIC) GRANT ALL ON SCHEMA public, run by a superuser
            # connected to that database.
            server.create_user(user, password)
            server.sql(pgsql.SQL("GRANT ALL PRIVILEGES ON DATABASE {} TO {}").format(db, ident))
            server.sql(pgsql.SQL("GRANT ALL ON SCHEMA public TO {}").format(ident), name)
    except BaseException:
        server.drop_database(name)
        server.drop_user(user)
        if owner:
            server.drop_user(owner)
        raise
    return _fresh_record(server, name, user, password, owner=owner)


def create_fresh_latin1_database(server: PostgresServer) -> FreshDatabase:
    """As :func:`create_fresh_database`, the database ``ENCODING 'LATIN1' LC_COLLATE 'C'
    LC_CTYPE 'C' TEMPLATE template0``."""
    return _fresh_pg(server, encoding="LATIN1", user_owns=True)


def create_fresh_not_owner_database(server: PostgresServer) -> FreshDatabase:
    """A new database owned by a new NOLOGIN role (``db.owner``); the password user has
    Kea's documented grants only: ALL PRIVILEGES on the database, ALL on schema public."""
    return _fresh_pg(server, encoding=None, user_owns=False)
