"""Fixtures for the whole suite: throw-away servers, TLS material and fresh databases.

The servers come from ``tests/servers.py``; each distinct server configuration is started
once per session and stopped at its end. A server that cannot start fails the test when
``CI`` is set and skips it (saying why) otherwise.

MySQL comes in two flavours, MariaDB (``mariadb``, the host's) and Oracle MySQL (``mysql``,
from the sid chroot of ``tests/tools/sid_chroot.sh``). Every test that uses ``mysql_server``,
``mysql_db`` or ``mysql_flavor`` runs once per flavour (ids ``[mariadb]`` / ``[mysql]``), and
``fresh_db`` runs on ``postgresql``, ``mariadb`` and ``mysql``. A test that starts its own
server passes the flavour on: ``mysql_server_factory(tls="off", flavor=mysql_flavor)``.
Run one flavour with ``-k mariadb`` or ``-k "not mariadb"``.

``galera_cluster`` is a 3-node Galera cluster of the host's MariaDB and galera-4, started
once per session (about 10 s) when a test first asks for it; ``galera`` is the same cluster,
checked Synced before each test and restored after it (a node the test desynced or isolated
is put back); ``galera_cluster_factory(nodes, extra_args)`` starts other configurations.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import matrix
import pytest
from servers import (
    MYSQL_FLAVORS,
    SERVER_FLAVORS,
    DatabaseServer,
    FreshDatabase,
    GaleraCluster,
    MySQLFamilyServer,
    MySQLFlavor,
    PostgresServer,
    ServerCert,
    ServerStartError,
    TlsMaterial,
    TlsMode,
    ci_requires_servers,
    create_fresh_database,
    drop_fresh_database,
    env_names_to_scrub,
    make_tls_material,
    start_galera_cluster,
    start_mysql_family,
    start_postgres,
    stop_servers,
)

# test_servers.py runs an inner session to prove the CI fail-versus-skip rule.
pytest_plugins = ["pytester"]

# A shell without job control starts a background command with SIGINT ignored, and a child
# inherits that: the kea-db processes the Ctrl-C tests interrupt would then never see the
# signal (exit 20 after their deadline, not 130). The suite runs with Python's own handler,
# so every child starts with SIGINT's default, as under a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

S = TypeVar("S", bound=DatabaseServer)

FLAVOR_NAMES: dict[str, str] = {"mariadb": "MariaDB", "mysql": "Oracle MySQL"}


def _unavailable(config: pytest.Config, what: str, error: Exception) -> NoReturn:
    """Fail (CI set) or skip (CI unset, printing why) a test whose server cannot start."""
    message = f"{what} could not start: {error}"
    if ci_requires_servers(os.environ):
        pytest.fail(f"{message}\n(CI is set, so this fails instead of skipping)", pytrace=False)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nSKIPPING database test, CI unset: {message}")
    pytest.skip(f"{message} (CI unset; in CI this fails)")


class _ServerCache:
    """Servers by configuration for one session; a start failure is remembered too."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.servers: dict[Hashable, DatabaseServer] = {}
        self.failures: dict[Hashable, ServerStartError] = {}

    def get(self, key: Hashable, what: str, start: Callable[[], S]) -> S:
        if key in self.failures:
            _unavailable(self.config, what, self.failures[key])
        server = self.servers.get(key)
        if server is None or not server.is_running():
            try:
                server = start()
            except ServerStartError as exc:
                self.failures[key] = exc
                _unavailable(self.config, what, exc)
            self.servers[key] = server
        return server  # type: ignore[return-value]

    def stop_all(self) -> None:
        stop_servers(self.servers.values())
        self.servers.clear()


@pytest.fixture(scope="session")
def _test_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME of the test session's own: libpq's ~/.postgresql and ~/.pgpass, the mariadb
    client's ~/.my.cnf and kea-db's render cache are never the developer's."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, _test_home: Path) -> None:
    """No test sees the developer's KEA_DB_*, PG*, MYSQL_* (client) or NO_COLOR variables,
    nor their home directory, nor a password an earlier test left in keadb_cli.text."""
    from keadb_cli.text import forget_secrets

    forget_secrets()
    for name in env_names_to_scrub(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(_test_home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """CAs, server certificates (valid, expired, wrong host) and client certificates."""
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def _server_cache(request: pytest.FixtureRequest) -> Iterator[_ServerCache]:
    cache = _ServerCache(request.config)
    yield cache
    cache.stop_all()


@pytest.fixture(scope="session")
def pg_server_factory(
    tls_material: TlsMaterial, _server_cache: _ServerCache
) -> Callable[..., PostgresServer]:
    """``factory(tls="on", server_cert="valid", client_cert_required=False, ssl_ciphers=None,
    settings=None) -> PostgresServer``, one server per distinct configuration and session."""

    def factory(
        tls: TlsMode = "on",
        server_cert: ServerCert = "valid",
        client_cert_required: bool = False,
        ssl_ciphers: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> PostgresServer:
        frozen = tuple(sorted((settings or {}).items()))
        key = ("postgresql", tls, server_cert, client_cert_required, ssl_ciphers, frozen)
        what = f"PostgreSQL (tls={tls}, server_cert={server_cert})"
        return _server_cache.get(
            key,
            what,
            lambda: start_postgres(
                tls=tls,
                material=tls_material,
                server_cert=server_cert,
                client_cert_required=client_cert_required,
                ssl_ciphers=ssl_ciphers,
                settings=dict(frozen),
            ),
        )

    return factory


@pytest.fixture(scope="session")
def mysql_server_factory(
    tls_material: TlsMaterial, _server_cache: _ServerCache
) -> Callable[..., MySQLFamilyServer]:
    """``factory(tls="on", server_cert="valid", ssl_cipher=None, tls_version=None,
    extra_args=(), flavor="mariadb") -> MariaDBServer | OracleMySQLServer``, one server per
    distinct configuration and session. ``flavor`` is ``mariadb`` or ``mysql`` (Oracle MySQL);
    pass ``mysql_flavor`` to run on both. Client certificates are required per user:
    ``create_user(..., require_x509=True)``."""

    def factory(
        tls: TlsMode = "on",
        server_cert: ServerCert = "valid",
        ssl_cipher: str | None = None,
        tls_version: str | None = None,
        extra_args: Sequence[str] = (),
        flavor: MySQLFlavor = "mariadb",
    ) -> MySQLFamilyServer:
        if flavor not in MYSQL_FLAVORS:
            raise ValueError(f"unknown MySQL flavor {flavor!r}; use one of {MYSQL_FLAVORS}")
        args = tuple(extra_args)
        key = ("mysql", flavor, tls, server_cert, ssl_cipher, tls_version, args)
        what = f"{FLAVOR_NAMES[flavor]} (tls={tls}, server_cert={server_cert})"
        return _server_cache.get(
            key,
            what,
            lambda: start_mysql_family(
                flavor,
                tls=tls,
                material=tls_material,
                server_cert=server_cert,
                ssl_cipher=ssl_cipher,
                tls_version=tls_version,
                extra_args=args,
            ),
        )

    return factory


@pytest.fixture(scope="session")
def matrix_server(request: pytest.FixtureRequest, _server_cache: _ServerCache) -> DatabaseServer:
    """The server of a cell of ``tests/matrix.py``, once per session (cells that differ in
    their database only share one). Parametrise indirectly by cell id:
    ``@pytest.mark.parametrize("matrix_server", matrix.CELL_IDS, indirect=True)``;
    ``matrix_cell`` is the cell."""
    cell_id: Any = getattr(request, "param", None)
    if cell_id is None:
        raise ValueError('matrix_server needs a cell id: parametrize("matrix_server", '
                         "[...], indirect=True)")
    cell = matrix.cell(cell_id)
    return _server_cache.get(("matrix", *cell.server_key), f"{cell.id}: {cell.source}",
                             cell.start)


@pytest.fixture
def matrix_cell(request: pytest.FixtureRequest) -> matrix.Cell:
    """The :class:`matrix.Cell` the test's ``matrix_server`` parameter names."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or "matrix_server" not in callspec.params:
        raise ValueError("matrix_cell needs the test parametrised by matrix_server")
    return matrix.cell(callspec.params["matrix_server"])


@pytest.fixture(scope="session")
def galera_cluster_factory(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., GaleraCluster]]:
    """``factory(nodes=3, extra_args=()) -> GaleraCluster``
    (:func:`servers.start_galera_cluster`), one cluster per distinct configuration and
    session, all stopped at its end."""
    clusters: dict[Hashable, GaleraCluster] = {}
    failures: dict[Hashable, ServerStartError] = {}

    def factory(nodes: int = 3, extra_args: Sequence[str] = ()) -> GaleraCluster:
        key = (nodes, tuple(extra_args))
        what = f"A {nodes}-node Galera cluster of MariaDB and galera-4"
        if key in failures:
            _unavailable(request.config, what, failures[key])
        cluster = clusters.get(key)
        if cluster is None or not cluster.is_running():
            if cluster is not None:
                cluster.stop()
            try:
                cluster = start_galera_cluster(nodes, extra_args=extra_args)
            except ServerStartError as exc:
                failures[key] = exc
                _unavailable(request.config, what, exc)
            clusters[key] = cluster
        return cluster

    try:
        yield factory
    finally:
        for cluster in clusters.values():
            cluster.stop()


@pytest.fixture(scope="session")
def galera_cluster(galera_cluster_factory: Callable[..., GaleraCluster]) -> GaleraCluster:
    """The session's 3-node Galera cluster of the host's MariaDB and galera-4; prefer
    ``galera``, which checks and restores its health around each test."""
    return galera_cluster_factory(3)


@pytest.fixture
def galera(galera_cluster: GaleraCluster) -> Iterator[GaleraCluster]:
    """``galera_cluster``, all 3 nodes Synced in the Primary component when the test starts
    and again after it: a node the test desynced or isolated is put back."""
    galera_cluster.wait_synced()
    yield galera_cluster
    galera_cluster.restore()


@pytest.fixture(scope="session", params=MYSQL_FLAVORS)
def mysql_flavor(request: pytest.FixtureRequest) -> MySQLFlavor:
    """``mariadb`` or ``mysql`` (Oracle MySQL): a test (or fixture) that uses it runs once
    per flavour. Choose for one test with
    ``@pytest.mark.parametrize("mysql_flavor", ["mysql"], indirect=True)``."""
    flavor: Any = request.param
    if flavor not in MYSQL_FLAVORS:
        raise ValueError(f"mysql_flavor: unknown flavor {flavor!r}; use one of {MYSQL_FLAVORS}")
    return cast(MySQLFlavor, flavor)


@pytest.fixture(scope="session")
def pg_server(pg_server_factory: Callable[..., PostgresServer]) -> PostgresServer:
    """The session's PostgreSQL server with TLS on (cleartext TCP still allowed)."""
    return pg_server_factory(tls="on")


@pytest.fixture(scope="session")
def mysql_server(
    mysql_server_factory: Callable[..., MySQLFamilyServer], mysql_flavor: MySQLFlavor
) -> MySQLFamilyServer:
    """The session's MariaDB or Oracle MySQL server (one per flavour) with TLS on
    (cleartext TCP still allowed)."""
    return mysql_server_factory(tls="on", flavor=mysql_flavor)


@pytest.fixture
def fresh_db_factory() -> Iterator[Callable[..., FreshDatabase]]:
    """``factory(server, *, require_x509=False) -> FreshDatabase`` on any server; every
    database and user it made is dropped after the test."""
    made: list[FreshDatabase] = []

    def factory(server: DatabaseServer, *, require_x509: bool = False) -> FreshDatabase:
        db = create_fresh_database(server, require_x509=require_x509)
        made.append(db)
        return db

    yield factory
    for db in reversed(made):
        drop_fresh_database(db)


@pytest.fixture
def pg_db(
    pg_server: PostgresServer, fresh_db_factory: Callable[..., FreshDatabase]
) -> FreshDatabase:
    """A fresh empty database on ``pg_server`` owned by a new password user."""
    return fresh_db_factory(pg_server)


@pytest.fixture
def mysql_db(
    mysql_server: MySQLFamilyServer, fresh_db_factory: Callable[..., FreshDatabase]
) -> FreshDatabase:
    """A fresh empty database on ``mysql_server`` with a new password user granted ALL."""
    return fresh_db_factory(mysql_server)


@pytest.fixture(params=SERVER_FLAVORS)
def fresh_db(
    request: pytest.FixtureRequest, fresh_db_factory: Callable[..., FreshDatabase]
) -> FreshDatabase:
    """A fresh database on each backend in turn: ``postgresql``, ``mariadb`` and ``mysql``
    (Oracle MySQL). Select some with
    ``@pytest.mark.parametrize("fresh_db", ["mariadb", "mysql"], indirect=True)``; both
    MySQL flavours have ``db.type == "mysql"`` (``db.server.flavor`` tells them apart)."""
    backend: Any = request.param
    server: DatabaseServer
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
    elif backend in MYSQL_FLAVORS:
        server = request.getfixturevalue("mysql_server_factory")(tls="on", flavor=backend)
    else:
        raise ValueError(
            f"fresh_db: unknown backend {backend!r}; use one of {', '.join(SERVER_FLAVORS)}"
        )
    return fresh_db_factory(server)


def pytest_report_header(config: pytest.Config) -> str:
    mode = "fail" if ci_requires_servers(os.environ) else "skip (CI unset)"
    flavors = ", ".join(f"{f} ({FLAVOR_NAMES[f]})" for f in MYSQL_FLAVORS)
    return f"kea-db: throw-away servers from {Path(__file__).with_name('servers.py')}; " + (
        f"a server that cannot start makes its tests {mode}; MySQL flavours: {flavors}"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped or an expected-to-fail test is a failure: every test must really run
    and pass (xfail is strict, so an unexpected pass fails anyway)."""
    if not ci_requires_servers(os.environ):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    for outcome, label in (("skipped", "skipped"), ("xfailed", "expected to fail")):
        count = len(stats.get(outcome, []))
        if count and session.exitstatus == 0:
            session.exitstatus = 1
        if count and reporter is not None:
            reporter.write_line(f"kea-db: {count} test(s) {label} in CI: that is a failure",
                                red=True)
