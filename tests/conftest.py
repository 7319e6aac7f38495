"""Fixtures for the whole suite: throw-away servers, TLS material and fresh databases.

The servers come from ``tests/servers.py``; each distinct server configuration is started
once per session and stopped at its end. A server that cannot start fails the test when
``CI`` is set and skips it (saying why) otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from servers import (
    DatabaseServer,
    FreshDatabase,
    MariaDBServer,
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
    start_mariadb,
    start_postgres,
    stop_servers,
)

# test_servers.py runs an inner session to prove the CI fail-versus-skip rule.
pytest_plugins = ["pytester"]

S = TypeVar("S", bound=DatabaseServer)


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


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's KEA_DB_*, PG*, MYSQL_* (client) or NO_COLOR variables."""
    for name in env_names_to_scrub(os.environ):
        monkeypatch.delenv(name)


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
) -> Callable[..., MariaDBServer]:
    """``factory(tls="on", server_cert="valid", ssl_cipher=None, tls_version=None,
    extra_args=()) -> MariaDBServer``, one server per distinct configuration and session.
    Client certificates are required per user: ``create_user(..., require_x509=True)``."""

    def factory(
        tls: TlsMode = "on",
        server_cert: ServerCert = "valid",
        ssl_cipher: str | None = None,
        tls_version: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> MariaDBServer:
        args = tuple(extra_args)
        key = ("mysql", tls, server_cert, ssl_cipher, tls_version, args)
        what = f"MariaDB (tls={tls}, server_cert={server_cert})"
        return _server_cache.get(
            key,
            what,
            lambda: start_mariadb(
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
def pg_server(pg_server_factory: Callable[..., PostgresServer]) -> PostgresServer:
    """The session's PostgreSQL server with TLS on (cleartext TCP still allowed)."""
    return pg_server_factory(tls="on")


@pytest.fixture(scope="session")
def mysql_server(mysql_server_factory: Callable[..., MariaDBServer]) -> MariaDBServer:
    """The session's MariaDB server with TLS on (cleartext TCP still allowed)."""
    return mysql_server_factory(tls="on")


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
    mysql_server: MariaDBServer, fresh_db_factory: Callable[..., FreshDatabase]
) -> FreshDatabase:
    """A fresh empty database on ``mysql_server`` with a new password user granted ALL."""
    return fresh_db_factory(mysql_server)


@pytest.fixture(params=["postgresql", "mysql"])
def fresh_db(
    request: pytest.FixtureRequest, fresh_db_factory: Callable[..., FreshDatabase]
) -> FreshDatabase:
    """A fresh database on each backend in turn (select one with
    ``@pytest.mark.parametrize("fresh_db", ["mysql"], indirect=True)``)."""
    backend: Any = request.param
    fixture = {"postgresql": "pg_server", "mysql": "mysql_server"}.get(backend)
    if fixture is None:
        raise ValueError(f"fresh_db: unknown backend {backend!r}; use 'postgresql' or 'mysql'")
    server: DatabaseServer = request.getfixturevalue(fixture)
    return fresh_db_factory(server)


def pytest_report_header(config: pytest.Config) -> str:
    mode = "fail" if ci_requires_servers(os.environ) else "skip (CI unset)"
    return f"kea-db: throw-away servers from {Path(__file__).with_name('servers.py')}; " + (
        f"a server that cannot start makes its tests {mode}"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: the database tests must really run."""
    if not ci_requires_servers(os.environ):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and session.exitstatus == 0:
        session.exitstatus = 1
        if reporter is not None:
            reporter.write_line(f"kea-db: {skipped} test(s) skipped in CI: that is a failure",
                                red=True)
