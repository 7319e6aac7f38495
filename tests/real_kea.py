"""Machinery for running a real kea-dhcp4 on databases that kea-db built (issue 4, issue 10).

Used by ``test_real_kea.py`` (Debian 12's kea-dhcp4 2.2.0, on the host) and
``test_real_kea_releases.py`` (kea-dhcp4 2.6.x / 3.0.x, from the Debian trixie / sid chroots
of ``tools/sid_chroot.sh``). A chroot shares the host's network namespace: kea-dhcp4 in it
reaches the throw-away database servers on 127.0.0.1 and serves the test's veth.

The network: kea-dhcp4 runs in the root network namespace, where the throw-away database
servers listen on 127.0.0.1, and serves only one end of a veth pair made by the test
(``keadb-s<hex>``); the other end (``keadb-c<hex>``) lives in a network namespace made by the
test (``keadb-cli-<pid>-<hex>``), where perfdhcp runs. DHCP packets therefore only ever cross
that veth link. Running Kea in a namespace of its own would cut it off from the databases
(a namespace's 127.0.0.1 is its own), and would need a second link plus database servers
listening on it; this layout needs neither. The /24 is picked at random from 198.18.0.0/15
among those that no address (root namespace and every named namespace) or root route
overlaps, and is checked again once configured (another session may have picked it
meanwhile). The namespace is deleted at teardown, which deletes the veth pair with it;
namespaces left by killed test processes (their pid is in the name) are swept.

DHCPv6 (``dhcp6_link``, ``kea6``: Debian 12's kea-dhcp6 2.2.0, ``run_perfdhcp6``): the same
link with IPv6 left on (duplicate address detection off, so the link-local addresses are
usable at once) and a random /64 of the documentation prefix 2001:db8::/32 that no address
or root route overlaps (``nodad``) on both ends; kea-dhcp6 hands out addresses of that /64
and /64 prefixes of a /56 beside it that is never configured on any link.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from servers import (
    MYSQL_FLAVORS,
    DatabaseServer,
    FreshDatabase,
    MySQLFamilyServer,
    PostgresServer,
    TlsMaterial,
    _pid_alive,
    ci_requires_servers,
)

from keadb_cli.errors import ExitCode

KEA_DHCP4 = shutil.which("kea-dhcp4") or "/usr/sbin/kea-dhcp4"
KEA_DHCP6 = shutil.which("kea-dhcp6") or "/usr/sbin/kea-dhcp6"
PERFDHCP = shutil.which("perfdhcp") or "/usr/sbin/perfdhcp"
IP = shutil.which("ip") or "/usr/sbin/ip"

DHCP_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
# DHCPv6 links: a /64 of the documentation prefix (RFC 3849) that nothing here uses.
DHCP6_RANGE = ipaddress.IPv6Network("2001:db8::/32")
NS_PREFIX = "keadb-cli-"
NS_RE = re.compile(rf"^{NS_PREFIX}(\d+)-[0-9a-f]{{6}}$")
KEA_START_TIMEOUT = 30.0
KEA_STOP_TIMEOUT = 15.0
# perfdhcp: EXCHANGES 4-way exchanges from as many simulated clients, at RATE per second,
# never longer than PERIOD seconds, then up to 2 s for late answers.
EXCHANGES = 20
RATE = 20
PERIOD = 15
# Kea's own words for a schema it will not run on ("need version: X found version: Y" up to
# 2.5, "expected version: X, found version: Y" from 2.6.0).
MISMATCH_RE = re.compile(
    r"(MySQL|PostgreSQL) schema version mismatch: (?:need|expected) version: (\d+\.\d+),? "
    r"found version: (\d+\.\d+)"
)

_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not dlopen
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in kea-dhcp4 between fork and exec: SIGTERM when the test process dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def unavailable(message: str) -> NoReturn:
    """Fail under CI (the proof must run there), skip otherwise."""
    if ci_requires_servers(os.environ):
        pytest.fail(f"{message}\n(CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(f"{message} (CI unset; in CI this fails)")


def require_program(path: str, package: str) -> str:
    if os.path.exists(path) and os.access(path, os.X_OK):
        return path
    unavailable(f"{path} not found (Debian package {package})")


@pytest.fixture(scope="module")
def kea_tools() -> None:
    require_program(KEA_DHCP4, "kea-dhcp4-server")
    require_program(PERFDHCP, "kea-admin")
    require_program(IP, "iproute2")


# --------------------------------------------------------------------------------------------
# The DHCP link: root namespace (Kea) <-veth-> client namespace (perfdhcp)
# --------------------------------------------------------------------------------------------


def _ip(*args: str) -> str:
    try:
        done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"ip {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _ipv4_holders() -> list[tuple[str, str, ipaddress.IPv4Interface]]:
    """(namespace or "" for the root one, interface, address/prefix) of every IPv4 address."""
    found = []
    outputs = [("", _ip("-o", "-4", "addr", "show"))]
    for ns in _namespaces():
        with contextlib.suppress(RuntimeError):  # deleted meanwhile, or not ours to read
            outputs.append((ns, _ip("-n", ns, "-o", "-4", "addr", "show")))
    for ns, text in outputs:
        for line in text.splitlines():
            m = re.match(r"^\d+:\s+(\S+)\s+inet\s+(\S+)", line)
            if m:
                found.append((ns, m.group(1), ipaddress.IPv4Interface(m.group(2))))
    return found


def _ipv6_taken() -> list[ipaddress.IPv6Network]:
    """The networks of every IPv6 address (root namespace and every named one) and of every
    root IPv6 route but the default one."""
    outputs = [_ip("-o", "-6", "addr", "show"), _ip("-6", "route", "show")]
    for ns in _namespaces():
        with contextlib.suppress(RuntimeError):  # deleted meanwhile, or not ours to read
            outputs.append(_ip("-n", ns, "-o", "-6", "addr", "show"))
    taken = []
    for text in outputs:
        for m in re.finditer(r"(?:inet6\s+|^)([0-9a-f:]+/\d+)", text, re.M):
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.IPv6Network(m.group(1), strict=False))
    return taken


def _free_network6() -> ipaddress.IPv6Network:
    """A random /64 of 2001:db8::/32 that no IPv6 address or root route overlaps."""
    taken = _ipv6_taken()
    for _attempt in range(100):
        net = ipaddress.IPv6Network(
            (int(DHCP6_RANGE.network_address) | secrets.randbits(32) << 64, 64))
        if not any(net.overlaps(other) for other in taken):
            return net
    pytest.fail("no free /64 found in 2001:db8::/32 for the DHCPv6 link")


def _root_routes() -> list[ipaddress.IPv4Network]:
    nets = []
    for line in _ip("-4", "route", "show").splitlines():
        words = line.split()
        if words and words[0] != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(words[0], strict=False))
    return nets


def _free_networks() -> list[ipaddress.IPv4Network]:
    """The /24s of 198.18.0.0/15 that no address anywhere and no root route overlaps."""
    taken = [iface.network for _, _, iface in _ipv4_holders()] + _root_routes()
    return [
        net
        for net in DHCP_RANGE.subnets(new_prefix=24)
        if not any(net.overlaps(other) for other in taken)
    ]


def _sweep_stale_namespaces() -> None:
    """Delete our namespaces whose test process is gone (killed before its teardown)."""
    for ns in _namespaces():
        m = NS_RE.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", ns)


@dataclass
class DhcpLink:
    """A veth pair: ``server_if`` in the root namespace, ``client_if`` in ``namespace``."""

    namespace: str
    server_if: str
    client_if: str
    network: ipaddress.IPv4Network
    created: bool = False
    network6: ipaddress.IPv6Network | None = None  # IPv6 on the link (DHCPv6) when set

    @property
    def server_ip(self) -> ipaddress.IPv4Address:
        return self.network[1]

    @property
    def client_ip(self) -> ipaddress.IPv4Address:
        return self.network[2]

    @property
    def pool(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        return self.network[100], self.network[199]

    def setup(self) -> None:
        _ip("netns", "add", self.namespace)
        self.created = True
        _ip("link", "add", self.server_if, "type", "veth",
            "peer", "name", self.client_if, "netns", self.namespace)
        # No IPv6 chatter (router solicitations, MLD) on the link: only DHCPv4 crosses it.
        # For DHCPv6: IPv6 on, but no duplicate address detection (the link-local addresses
        # DHCPv6 runs on are usable at once).
        setting = ("disable_ipv6", "1") if self.network6 is None else ("accept_dad", "0")
        root_v6 = Path(f"/proc/sys/net/ipv6/conf/{self.server_if}/{setting[0]}")
        if root_v6.exists():
            root_v6.write_text(f"{setting[1]}\n")
            subprocess.run(
                [IP, "netns", "exec", self.namespace, "sh", "-c",
                 f'echo {setting[1]} > "/proc/sys/net/ipv6/conf/$0/{setting[0]}"',
                 self.client_if],
                check=True, capture_output=True, timeout=30,
            )
        elif self.network6 is not None:
            raise RuntimeError("no IPv6 in this kernel")
        prefix = self.network.prefixlen
        _ip("addr", "add", f"{self.server_ip}/{prefix}", "dev", self.server_if)
        _ip("-n", self.namespace, "addr", "add", f"{self.client_ip}/{prefix}",
            "dev", self.client_if)
        if self.network6 is not None:
            _ip("addr", "add", f"{self.network6[1]}/64", "dev", self.server_if, "nodad")
            _ip("-n", self.namespace, "addr", "add", f"{self.network6[2]}/64",
                "dev", self.client_if, "nodad")
        _ip("-n", self.namespace, "link", "set", "lo", "up")
        _ip("-n", self.namespace, "link", "set", self.client_if, "up")
        _ip("link", "set", self.server_if, "up")

    def holders_elsewhere(self) -> list[str]:
        """Interfaces other than ours holding an address that overlaps our network."""
        ours = {("", self.server_if), (self.namespace, self.client_if)}
        return [
            f"{ns or '(root)'}:{ifname} {iface}"
            for ns, ifname, iface in _ipv4_holders()
            if iface.network.overlaps(self.network) and (ns, ifname) not in ours
        ]

    def teardown(self) -> None:
        """Delete the namespace (and with it both veth ends); idempotent."""
        if not self.created:
            return
        # Only processes this test started (perfdhcp) can be in the namespace.
        with contextlib.suppress(RuntimeError):
            for pid in _ip("netns", "pids", self.namespace).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(RuntimeError):
            _ip("netns", "del", self.namespace)
        # Normally gone with its peer; make sure.
        if Path(f"/sys/class/net/{self.server_if}").exists():
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", self.server_if)
        self.created = False


@pytest.fixture
def dhcp_link(kea_tools: None) -> Iterator[DhcpLink]:
    """A fresh veth link on a free /24 of 198.18.0.0/15; removed after the test."""
    yield from _dhcp_link(ipv6=False)


@pytest.fixture
def dhcp6_link(kea_tools: None) -> Iterator[DhcpLink]:
    """:func:`dhcp_link` with IPv6 on: a free /64 of 2001:db8::/32 as well."""
    require_program(KEA_DHCP6, "kea-dhcp6-server")
    yield from _dhcp_link(ipv6=True)


def _dhcp_link(ipv6: bool) -> Iterator[DhcpLink]:
    try:
        _sweep_stale_namespaces()
    except RuntimeError as exc:
        unavailable(f"cannot list network namespaces: {exc}")
    rng = secrets.SystemRandom()
    link: DhcpLink | None = None
    try:
        for _attempt in range(5):
            free = _free_networks()
            if not free:
                pytest.fail("no free /24 left in 198.18.0.0/15 for the DHCP link")
            token = secrets.token_hex(3)
            link = DhcpLink(
                namespace=f"{NS_PREFIX}{os.getpid()}-{token}",
                server_if=f"keadb-s{token}",
                client_if=f"keadb-c{token}",
                network=rng.choice(free),
                network6=_free_network6() if ipv6 else None,
            )
            try:
                link.setup()
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                link.teardown()
                unavailable(f"cannot create a network namespace and veth pair: {exc}")
            if not link.holders_elsewhere():  # (the /64: one of 2**32, not checked again)
                break
            link.teardown()  # another session took the same /24 meanwhile: pick again
        else:
            pytest.fail("could not find an unused /24 in 198.18.0.0/15 in 5 attempts")
        yield link
    finally:
        if link is not None:
            link.teardown()
    assert not Path(f"/sys/class/net/{link.server_if}").exists(), "veth left behind"
    assert link.namespace not in _namespaces(), "namespace left behind"


# --------------------------------------------------------------------------------------------
# kea-db and the databases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """A kea-db-built database of Kea ``release`` (schema ``schema``) and how Kea must be
    told to reach it over TLS."""

    db: FreshDatabase
    tls: TlsMaterial
    release: str  # as kea-db's --kea-version takes it: "2.2", "2.6.3", "3.0.4"
    schema: str  # the schema version that release needs on this backend: "14.0", "30.0"

    @property
    def type(self) -> str:
        return self.db.type

    def lease_database(self) -> dict[str, Any]:
        """Kea's ``lease-database`` map."""
        entry: dict[str, Any] = {
            "type": self.db.type,
            "host": self.db.host,
            "port": self.db.port,
            "name": self.db.name,
            "user": self.db.user,
            "password": self.db.password,
            "connect-timeout": 5,
            "max-reconnect-tries": 0,
        }
        if self.db.type == "mysql":
            entry.update(self.tls_keys())
        return entry

    def tls_keys(self) -> dict[str, str]:
        return {
            "trust-anchor": str(self.tls.ca_cert),
            "cert-file": str(self.tls.client_cert),
            "key-file": str(self.tls.client_key),
        }

    def kea_env(self) -> dict[str, str]:
        """Environment for kea-dhcp4: PostgreSQL's TLS comes from libpq's variables."""
        if self.db.type != "postgresql":
            return {}
        return {
            "PGSSLMODE": "verify-full",
            "PGSSLROOTCERT": str(self.tls.ca_cert),
            "PGSSLCERT": str(self.tls.client_cert),
            "PGSSLKEY": str(self.tls.client_key),
        }

    def kea_db_tls_options(self) -> list[str]:
        """kea-db's options for the TLS session Kea has."""
        options = [f"--{key}={value}" for key, value in self.tls_keys().items()]
        if self.db.type == "postgresql":
            options.append("--ssl-mode=verify-full")
        return options

    def kea_db_overrides(self) -> list[str]:
        """What kea-db needs beyond Kea's configuration file: nothing for MySQL (the TLS keys
        are in it); for PostgreSQL the TLS that Kea takes from libpq's environment (kea-db
        reads PGSSLMODE, but not PGSSLROOTCERT, PGSSLCERT or PGSSLKEY)."""
        return self.kea_db_tls_options() if self.db.type == "postgresql" else []

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """``query`` as the superuser over the server's Unix socket, in this database."""
        return self.db.server.sql(query, database=self.db.name)


def kea_db(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    if password is not None:
        env["KEA_DB_PASSWORD"] = password
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def build(backend: Backend) -> None:
    """kea-db init --kea-version <release> over TLS; the schema must be the release's."""
    db = backend.db
    proc = kea_db("init", "--type", db.type, "--host", db.host, "--port", str(db.port),
                  "--user", db.user, "--name", db.name, "--kea-version", backend.release,
                  "--json", *backend.kea_db_tls_options(), password=db.password)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert (result["action"], result["schema"]) == ("initialized", backend.schema), result
    assert db.password not in proc.stdout + proc.stderr


def check_version(backend: Backend, config: Path) -> tuple[int, dict[str, Any]]:
    """kea-db check-version on Kea's own configuration file (password included)."""
    proc = kea_db("check-version", "--config", str(config), "--backend", "lease",
                  "--kea-version", backend.release, "--json", *backend.kea_db_overrides())
    assert backend.db.password not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["results"]) == 1, doc
    result: dict[str, Any] = doc["results"][0]
    assert (result["name"], result["port"]) == (backend.db.name, backend.db.port), result
    return proc.returncode, result


def make_backend(
    request: pytest.FixtureRequest,
    flavor: str,
    release: str,
    schemas: Mapping[str, str],
) -> Backend:
    """A kea-db-built database of Kea ``release`` (``schemas``: backend type -> schema
    version) on a ``flavor`` server (``postgresql``, ``mariadb`` or ``mysql``) that accepts
    TLS sessions only, owned by a user that must show the test client certificate."""
    server: DatabaseServer
    if flavor in MYSQL_FLAVORS:  # MariaDB or Oracle MySQL
        server = request.getfixturevalue("mysql_server_factory")(tls="required", flavor=flavor)
        assert isinstance(server, MySQLFamilyServer) and server.flavor == flavor
    else:
        server = request.getfixturevalue("pg_server_factory")(tls="required")
        assert isinstance(server, PostgresServer)
    fresh_db_factory: Callable[..., FreshDatabase] = request.getfixturevalue("fresh_db_factory")
    result = Backend(
        db=fresh_db_factory(server, require_x509=True),
        tls=request.getfixturevalue("tls_material"),
        release=release,
        schema=schemas[server.type],
    )
    build(result)
    return result


def set_schema_version(backend: Backend, column: str, delta: int) -> str:
    """Move ``version`` or ``minor`` by ``delta``; return the new "version.minor"."""
    assert column in ("version", "minor")
    backend.sql(f"UPDATE schema_version SET {column} = {column} + ({int(delta)})")
    rows = backend.sql("SELECT version, minor FROM schema_version")
    assert len(rows) == 1, rows
    return f"{rows[0][0]}.{rows[0][1]}"


# --------------------------------------------------------------------------------------------
# kea-dhcp4
# --------------------------------------------------------------------------------------------


@dataclass
class KeaRun:
    """One kea-dhcp4 process and its files."""

    config: Path
    log: Path  # the configured logger's file
    output: Path  # stdout + stderr (messages before the loggers are configured)
    process: subprocess.Popen[bytes]
    started: str = "DHCP4_STARTED"  # the message that says it serves (DHCP6_STARTED)

    def text(self) -> str:
        parts = []
        for path in (self.output, self.log):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_started(self, timeout: float = KEA_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.started not in self.text():
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"{self.started[:5]} server exited {code} while starting:\n"
                            f"{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"kea-dhcp4 did not start within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = KEA_START_TIMEOUT) -> int:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout)
        pytest.fail(f"kea-dhcp4 still runs after {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> int | None:
        """SIGTERM (then SIGKILL to its process group); the exit code, None if killed."""
        if self.process.poll() is not None:
            return self.process.returncode
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(KEA_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(KEA_STOP_TIMEOUT)
            return None


@dataclass
class Kea:
    """Writes Kea configurations into a private directory and runs kea-dhcp4 on them.

    With ``root`` set, kea-dhcp4 is ``chroot <root> <program>``: ``directory`` then lies in
    the chroot's /tmp, and the TLS files the configuration names are copied into the chroot
    under their host paths, so that one configuration file serves both kea-dhcp4 (in the
    chroot) and kea-db (on the host). ``hooks`` are loaded by name from Kea's hooks directory
    (Kea 2.7.4+ has its MySQL and PostgreSQL backends in ``libdhcp_mysql.so`` /
    ``libdhcp_pgsql.so``)."""

    directory: Path
    program: str = KEA_DHCP4
    root: Path | None = None
    hooks: tuple[str, ...] = ()
    runs: list[KeaRun] = field(default_factory=list)
    copied: list[Path] = field(default_factory=list)  # files and directories, in order made

    def inside(self, path: Path) -> str:
        """``path`` (a host path) as kea-dhcp4 sees it."""
        return str(path) if self.root is None else "/" + str(path.relative_to(self.root))

    def argv(self, *args: str) -> list[str]:
        prefix = [] if self.root is None else ["chroot", str(self.root)]
        return [*prefix, self.program, *args]

    def mirror(self, path: Path) -> None:
        """Copy a host file into the chroot under the same path (no-op without a chroot)."""
        if self.root is None:
            return
        target = self.root / path.relative_to("/")
        missing = [p for p in reversed(target.parents) if p.is_relative_to(self.root)
                   and not p.exists()]
        for directory in missing:
            directory.mkdir(mode=0o700)
            self.copied.append(directory)
        if not target.exists():
            shutil.copy2(path, target)
            self.copied.append(target)

    def write_config(self, backend: Backend, link: DhcpLink | None, label: str,
                     lease_database: Mapping[str, Any] | None = None) -> Path:
        """A kea-dhcp4 configuration serving ``link`` (no interface when None)."""
        network = link.network if link else ipaddress.IPv4Network("198.18.0.0/24")
        first, last = (network[100], network[199])
        for tls_file in backend.tls_keys().values():
            self.mirror(Path(tls_file))
        dhcp4: dict[str, Any] = {
            "interfaces-config": {
                "interfaces": [link.server_if] if link else [],
                "dhcp-socket-type": "raw",
            },
            "lease-database": dict(lease_database or backend.lease_database()),
            "valid-lifetime": 3600,
            "renew-timer": 900,
            "rebind-timer": 1800,
            "subnet4": [
                {"id": 1, "subnet": str(network), "pools": [{"pool": f"{first} - {last}"}]}
            ],
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "severity": "DEBUG",
                    "debuglevel": 99,
                    "output_options": [{"output": self.inside(self.directory / f"{label}.log")}],
                }
            ],
        }
        if self.hooks:
            dhcp4["hooks-libraries"] = [{"library": name} for name in self.hooks]
        path = self.directory / f"{label}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds a password
        with os.fdopen(fd, "w") as fh:
            json.dump({"Dhcp4": dhcp4}, fh, indent=2)
        return path

    def write_config6(self, backend: Backend, link: DhcpLink, label: str,
                      lease_database: Mapping[str, Any] | None = None) -> Path:
        """A kea-dhcp6 configuration serving ``link``'s /64 (addresses ::1000-::1fff,
        prefixes /64 of a /56 beside it) to clients on the link."""
        assert link.network6 is not None
        net = link.network6
        # the /56 beside the one holding the link's /64 (only ever handed out, never on a link)
        delegated = ipaddress.IPv6Network(((int(net.network_address) >> 72 ^ 1) << 72, 56))
        dhcp6: dict[str, Any] = {
            "interfaces-config": {"interfaces": [link.server_if]},
            # not kept in /var/lib/kea (the DUID file of a kea-dhcp6 the host may run)
            "server-id": {"type": "EN", "enterprise-id": 2495, "identifier": "6b65612d6462",
                          "persist": False},
            "lease-database": dict(lease_database or backend.lease_database()),
            "preferred-lifetime": 1800,
            "valid-lifetime": 3600,
            "renew-timer": 900,
            "rebind-timer": 1400,
            "subnet6": [{
                "id": 1, "subnet": str(net), "interface": link.server_if,
                "pools": [{"pool": f"{net[0x1000]} - {net[0x1fff]}"}],
                "pd-pools": [{"prefix": str(delegated.network_address), "prefix-len": 56,
                              "delegated-len": 64}],
            }],
            "loggers": [{
                "name": "kea-dhcp6", "severity": "DEBUG", "debuglevel": 99,
                "output_options": [{"output": self.inside(self.directory / f"{label}.log")}],
            }],
        }
        path = self.directory / f"{label}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds a password
        with os.fdopen(fd, "w") as fh:
            json.dump({"Dhcp6": dhcp6}, fh, indent=2)
        return path

    def env(self, backend: Backend, without: tuple[str, ...] = ()) -> dict[str, str]:
        here = self.inside(self.directory)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": here,  # no ~/.postgresql, ~/.pgpass or ~/.my.cnf of root
            "LC_ALL": "C",
            "KEA_PIDFILE_DIR": here,
            "KEA_LOCKFILE_DIR": here,
            "KEA_LOG_FILE_DIR": here,  # Kea 2.6.3+ writes log files only there
        }
        env.update(backend.kea_env())
        for name in without:
            env.pop(name, None)
        return env

    def check_config(self, config: Path, env: Mapping[str, str]) -> None:
        """``kea-dhcp4 -t``: the configuration is valid (Kea does not connect here)."""
        done = subprocess.run(self.argv("-t", self.inside(config)), capture_output=True,
                              text=True, env=dict(env), timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"kea-dhcp4 -t failed:\n{done.stdout}{done.stderr}"

    def start(self, config: Path, backend: Backend, without_env: tuple[str, ...] = ()) -> KeaRun:
        """Start kea-dhcp4 on ``config`` (after ``kea-dhcp4 -t``), without waiting."""
        env = self.env(backend, without_env)
        self.check_config(config, env)
        output = config.with_suffix(".out")
        with open(output, "wb") as out:
            process = subprocess.Popen(
                self.argv("-c", self.inside(config)),
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        run = KeaRun(config=config, log=config.with_suffix(".log"), output=output,
                     process=process,
                     started="DHCP6_STARTED" if "dhcp6" in self.program else "DHCP4_STARTED")
        self.runs.append(run)
        return run

    def stop_all(self) -> None:
        for run in self.runs:
            run.stop()

    def remove_copies(self) -> None:
        for path in reversed(self.copied):
            with contextlib.suppress(OSError):  # a directory another run still uses stays
                path.rmdir() if path.is_dir() else path.unlink()
        self.copied.clear()


@contextlib.contextmanager
def kea_runner(program: str = KEA_DHCP4, root: Path | None = None,
               hooks: tuple[str, ...] = ()) -> Iterator[Kea]:
    """A :class:`Kea` in a private temporary directory (in ``root``'s /tmp for a chroot);
    stops every run and removes the directory (configurations hold passwords) and the files
    copied into the chroot at the end."""
    directory = Path(tempfile.mkdtemp(prefix="keadb-kea-", dir=root / "tmp" if root else None))
    runner = Kea(directory=directory, program=program, root=root, hooks=hooks)
    try:
        yield runner
    finally:
        runner.stop_all()
        shutil.rmtree(directory, ignore_errors=True)
        runner.remove_copies()


@pytest.fixture
def kea(fresh_db_factory: Callable[..., FreshDatabase]) -> Iterator[Kea]:
    """Host kea-dhcp4 (Debian 12's 2.2.0); stopped after the test, before the databases go."""
    with kea_runner() as runner:
        yield runner


@pytest.fixture
def kea6(fresh_db_factory: Callable[..., FreshDatabase]) -> Iterator[Kea]:
    """Host kea-dhcp6 (Debian 12's 2.2.0); stopped after the test, before the databases go."""
    with kea_runner(KEA_DHCP6) as runner:
        yield runner


# --------------------------------------------------------------------------------------------
# perfdhcp
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    sent: int
    received: int
    drops: int
    orphans: int
    rejected: int


@dataclass(frozen=True)
class PerfResult:
    returncode: int
    output: str
    exchanges: dict[str, Exchange]  # "DISCOVER-OFFER", "REQUEST-ACK"
    leases: dict[str, list[tuple[str, str]]]  # exchange -> [(client-id hex, address)]
    prefixes: dict[str, list[tuple[str, str]]]  # exchange -> [(DUID hex, prefix)] (-6)


def parse_perfdhcp(returncode: int, output: str) -> PerfResult:
    exchanges = {}
    for m in re.finditer(r"^\*\*\*Statistics for: (\S+)\*\*\*$(.*?)(?=^\*\*\*|\Z)", output,
                         re.M | re.S):
        values = dict(re.findall(r"^(sent packets|received packets|drops|orphans|"
                                 r"rejected leases): (\d+)$", m.group(2), re.M))
        # -1: a line perfdhcp did not print (fails the comparison, output shown).
        exchanges[m.group(1)] = Exchange(
            sent=int(values.get("sent packets", -1)),
            received=int(values.get("received packets", -1)),
            drops=int(values.get("drops", -1)),
            orphans=int(values.get("orphans", -1)),
            rejected=int(values.get("rejected leases", -1)),
        )
    leases, prefixes = {}, {}
    for m in re.finditer(r"^\*\*\*Leases for (\S+)\*\*\*\nclient_id,[^\n]*\n(.*?)(?:\n\n|\Z)",
                         output, re.M | re.S):
        rows = [line.split(",") for line in m.group(2).splitlines() if line.strip()]
        leases[m.group(1)] = [(row[0].lower(), row[1]) for row in rows]
        prefixes[m.group(1)] = [(row[0].lower(), row[2]) for row in rows if len(row) > 2]
    return PerfResult(returncode=returncode, output=output, exchanges=exchanges, leases=leases,
                      prefixes=prefixes)


def run_perfdhcp(link: DhcpLink, base_mac: str) -> PerfResult:
    """EXCHANGES DORA exchanges from EXCHANGES clients, inside the client namespace."""
    argv = [
        IP, "netns", "exec", link.namespace,
        PERFDHCP, "-4", "-l", link.client_if,
        "-r", str(RATE), "-n", str(EXCHANGES), "-R", str(EXCHANGES), "-p", str(PERIOD),
        "-W", "2000000",  # microseconds to wait for late answers once all are sent
        "-b", f"mac={base_mac}",
        "-x", "l",  # print the leases offered and acknowledged
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PERIOD + 45,
                          check=False, stdin=subprocess.DEVNULL)
    return parse_perfdhcp(done.returncode, done.stdout + done.stderr)


def run_perfdhcp6(link: DhcpLink, base_mac: str) -> PerfResult:
    """EXCHANGES SARR exchanges (an address and a prefix each) from EXCHANGES clients, inside
    the client namespace; their DUIDs are DUID-LLs of MACs counted up from ``base_mac``."""
    argv = [
        IP, "netns", "exec", link.namespace,
        PERFDHCP, "-6", "-l", link.client_if, "-e", "address-and-prefix",
        "-r", str(RATE), "-n", str(EXCHANGES), "-R", str(EXCHANGES), "-p", str(PERIOD),
        "-W", "2000000", "-x", "l",
        # a DUID-LL (not perfdhcp's default DUID-LLT, whose time changes from run to run)
        "-b", "duid=00030001000000000000", "-b", f"mac={base_mac}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PERIOD + 45,
                          check=False, stdin=subprocess.DEVNULL)
    return parse_perfdhcp(done.returncode, done.stdout + done.stderr)


# --------------------------------------------------------------------------------------------
# The proofs
# --------------------------------------------------------------------------------------------


def lease_rows(backend: Backend) -> list[tuple[str, str, int, int]]:
    """(hwaddr hex, address, subnet_id, state) of every lease4 row."""
    rows = backend.sql("SELECT address, hwaddr, subnet_id, state FROM lease4")
    return [
        (bytes(hwaddr).hex(), str(ipaddress.IPv4Address(int(address))), int(subnet), int(state))
        for address, hwaddr, subnet, state in rows
    ]


def lease6_rows(backend: Backend) -> list[tuple[str, str, int, int, int, int]]:
    """(DUID hex, address or prefix, prefix length, lease type, subnet_id, state) of every
    lease6 row."""
    rows = backend.sql("SELECT duid, address, prefix_len, lease_type, subnet_id, state "
                       "FROM lease6")
    return [(bytes(duid).hex(), str(ipaddress.IPv6Address(str(address))), int(length),
             int(kind), int(subnet), int(state))
            for duid, address, length, kind, subnet, state in rows]


def assert_session_encrypted(backend: Backend, run: KeaRun) -> None:
    """Kea's own sessions use TLS (belt and braces: cleartext is refused anyway)."""
    if backend.type == "mysql":
        # Kea logs the cipher of its MySQL session (debug message DHCPSRV_MYSQL_TLS_CIPHER;
        # MYSQL_LB_TLS_CIPHER from the lease backend hook of Kea 2.7.4+).
        m = re.search(r"(?:DHCPSRV_MYSQL|MYSQL_LB)_TLS_CIPHER TLS cipher: (\S+)", run.text())
        assert m and m.group(1) not in ("", "(null)"), run.tail()
        return
    rows = backend.db.server.sql(
        "SELECT s.ssl, s.version, s.client_dn FROM pg_stat_ssl s "
        "JOIN pg_stat_activity a USING (pid) WHERE a.usename = %s AND a.datname = %s",
        params=(backend.db.user, backend.db.name),
    )
    assert rows, "kea-dhcp4 holds no session on the PostgreSQL server"
    for ssl, version, client_dn in rows:
        assert ssl is True and version and "CN=kea" in (client_dn or ""), rows


def prove_serves_dhcp(backend: Backend, dhcp_link: DhcpLink, kea: Kea) -> None:
    """kea-db check-version says MATCH on Kea's configuration; kea-dhcp4 starts on the
    database (over TLS), answers every DORA exchange perfdhcp makes from the client namespace,
    and the leases perfdhcp was acknowledged are exactly the rows of lease4."""
    config = kea.write_config(backend, dhcp_link, "serve")
    code, result = check_version(backend, config)
    assert (code, result["verdict"]) == (ExitCode.OK, "MATCH"), result
    assert result["tls"], result  # kea-db's own session was encrypted too

    run = kea.start(config, backend)
    run.wait_started()
    assert_session_encrypted(backend, run)

    base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
    perf = run_perfdhcp(dhcp_link, base_mac)
    print(f"\n[{backend.type}] perfdhcp exit {perf.returncode}: {perf.exchanges}")
    context = f"perfdhcp output:\n{perf.output}\nkea-dhcp4:\n{run.tail()}"
    assert run.process.poll() is None, context
    assert set(perf.exchanges) == {"DISCOVER-OFFER", "REQUEST-ACK"}, context
    for name, stats in perf.exchanges.items():
        assert stats == Exchange(sent=EXCHANGES, received=EXCHANGES, drops=0, orphans=0,
                                 rejected=0), f"{name}: {stats}\n{context}"
    assert perf.returncode == 0, context

    acked = perf.leases["REQUEST-ACK"]
    assert len(acked) == EXCHANGES, context
    first, last = dhcp_link.pool
    prefix = "01" + base_mac.replace(":", "")[:8]
    for client_id, address in acked:
        assert client_id.startswith(prefix), (client_id, prefix)  # hardware type 1 + MAC
        assert first <= ipaddress.IPv4Address(address) <= last, address
    expected = {(client_id[2:], address, 1, 0) for client_id, address in acked}
    assert len(expected) == EXCHANGES  # distinct clients got distinct addresses
    rows = lease_rows(backend)
    print(f"[{backend.type}] lease4 rows: {len(rows)}")
    assert sorted(rows) == sorted(expected), context

    # The schema was fit for Kea: no error while serving, and a clean stop. Tolerated:
    # frames that reached Kea's raw socket before its packet filter was attached (seen as
    # "Truncated DHCPv4 packet" while IPv6 was still on for the link).
    errors = [line for line in run.text().splitlines()
              if " ERROR " in line and not re.search(
                  r"DHCP4_BUFFER_RECEIVE_FAIL .*Truncated DHCPv4 packet", line)]
    assert not errors, "\n".join(errors)
    assert run.stop() == 0, run.tail()


# (column, delta, verdict, exit code) of a changed schema_version, and their test ids.
CHANGED_SCHEMA = [
    ("version", -1, "BEHIND", ExitCode.BEHIND),
    ("version", +1, "AHEAD", ExitCode.AHEAD),
    ("minor", +1, "AHEAD", ExitCode.AHEAD),
]
CHANGED_SCHEMA_IDS = ["major-down", "major-up", "minor-up"]


def prove_changed_schema_refused(
    backend: Backend, kea: Kea, column: str, delta: int, verdict: str, exit_code: int
) -> None:
    """With schema_version's ``column`` moved by ``delta``, kea-dhcp4 exits with its
    schema-version mismatch error, and kea-db check-version on the same configuration file
    says ``verdict`` (``exit_code``) with the versions Kea named."""
    found = set_schema_version(backend, column, delta)
    # No interface to serve: Kea opens its lease database before any socket.
    config = kea.write_config(backend, None, "changed")
    run = kea.start(config, backend)
    code = run.wait_exit()
    assert code != 0, run.tail()
    m = MISMATCH_RE.search(run.text())
    assert m, f"no schema-version mismatch message from kea-dhcp4:\n{run.tail()}"
    kea_backend, kea_needs, kea_found = m.groups()
    assert kea_backend == {"mysql": "MySQL", "postgresql": "PostgreSQL"}[backend.type]
    assert (kea_needs, kea_found) == (backend.schema, found)

    code, result = check_version(backend, config)
    assert (code, result["verdict"]) == (exit_code, verdict), result
    assert (result["expected"], result["found"]) == (kea_needs, kea_found), result
