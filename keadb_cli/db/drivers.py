"""The fallback session path: psycopg (which ships its own libpq) and PyMySQL, used only
when Kea's client library cannot be loaded on this machine. The session says so.

The same rules hold as on the library path, as far as the drivers allow: the password is
never handed to a plugin that sends it in clear without TLS, nor RSA-encrypted to a key the
server sent over cleartext; statements have the server-side timeout and a client-side
deadline; rows are capped. (The drivers buffer a PostgreSQL result whole before kea-db
sees it, so the memory bound there is the driver's.)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from keadb_cli.db import classify
from keadb_cli.db.plan import ConnectPlan
from keadb_cli.db.session_kit import (
    GRACE,
    Budget,
    Endpoint,
    Row,
    statement_error,
    timed_out,
)
from keadb_cli.errors import (
    InsecureAuthError,
    KeaDbError,
    SettingsError,
    TlsError,
    UnreachableError,
)

_NO_TLS_AT_SERVER = ("ssl is required but the server doesn't support it", "doesn't support ssl")
_CLEARTEXT_PLUGINS = (b"mysql_clear_password", b"dialog")
_MAX_PACKET = 16 * 1024 * 1024


_REQUIRE_AUTH_SINCE = 160000  # libpq 16: require_auth


class DriverSession:
    """A psycopg or PyMySQL connection behind the :class:`~keadb_cli.db.session_kit.Session`
    interface."""

    tls_bits: int | None = None

    def __init__(self, conn: Any, plan: ConnectPlan, library: str, fallback: str) -> None:
        self._conn, self._plan = conn, plan
        self.library = library
        self.fallback: str | None = fallback
        self.closed = False
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.server = ""
        self.answered = Endpoint.of_plan(plan)
        if plan.backend.type == "postgresql":
            self.server = f"PostgreSQL {conn.info.server_version}"
            port = str(conn.info.port)  # psycopg's libpq: PQhost / PQport, as in libpq.py
            self.answered = Endpoint(conn.info.host, int(port) if port.isdigit() else None)
            self._plan = plan.answered_by(self.answered)
            rows = self.query(
                "SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl"
            )
            if rows:
                self.tls_version, self.tls_cipher = rows[0][0], rows[0][1]
        else:
            self.server = str(conn.get_server_info())
            status = dict((r[0] or "", r[1]) for r in self.query(
                "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')"))
            self.tls_version = status.get("Ssl_version") or None
            self.tls_cipher = status.get("Ssl_cipher") or None

    def query(self, sql: str) -> list[Row]:
        rows: list[Row] = []
        self._timed(sql, rows.append, streaming=False)
        return rows

    def each_row(self, sql: str, on_row: Callable[[Row], None]) -> int:
        return self._timed(sql, on_row, streaming=True)

    def _timed(self, sql: str, on_row: Callable[[Row], None], *, streaming: bool) -> int:
        if self.closed:
            raise UnreachableError(f"{self._plan.backend.display} {self._plan.where}: the "
                                   "session is closed", reason_code="connection-lost")
        fired = threading.Event()

        def cancel() -> None:
            fired.set()
            with contextlib.suppress(Exception):
                if self._plan.backend.type == "postgresql":
                    self._conn.cancel()
                else:
                    self._conn.close()

        timer = threading.Timer(self._plan.statement_timeout + GRACE, cancel)
        timer.daemon = True
        timer.start()
        try:
            return self._run(sql, on_row, streaming)
        except KeaDbError:
            if fired.is_set():
                self.close()
                raise timed_out(self._plan) from None
            raise
        except KeyboardInterrupt:
            cancel()
            self.close()
            raise
        finally:
            timer.cancel()

    def _run(self, sql: str, on_row: Callable[[Row], None], streaming: bool) -> int:
        backend = self._plan.backend.type
        budget = Budget(self._plan.backend.display, self._plan.where, streaming=streaming)
        try:
            if backend == "postgresql":
                import psycopg

                cur: Any = psycopg.ClientCursor(self._conn)  # simple protocol: scripts too
            else:
                import pymysql.cursors

                cur = self._conn.cursor(pymysql.cursors.SSCursor)
            with cur:
                if streaming and backend == "postgresql":
                    return self._hand_on(([row] for row in cur.stream(sql)), budget, on_row)
                cur.execute(sql)
                return self._hand_on(self._batches(cur), budget, on_row)
        except KeaDbError:
            self.close()
            raise
        except _HandedOn as err:  # on_row failed (a full disk): not the driver's error
            self.close()
            raise err.original from None
        except Exception as err:  # the driver's error: classified like the library's
            code = getattr(getattr(err, "diag", None), "sqlstate", None) or (
                str(err.args[0]) if err.args and isinstance(err.args[0], int) else "")
            text = str(err.args[1]) if backend == "mysql" and len(err.args) > 1 else str(err)
            if backend == "mysql" and not code:
                # PyMySQL fails without an error number only on an answer it cannot parse:
                # a length past the packet's end (AssertionError), a sequence id out of order.
                error: KeaDbError = classify.garbage_error(backend, self._plan.where,
                                                           text or type(err).__name__)
            else:
                error = statement_error(self._plan, text, code=code or "")
            if isinstance(error, UnreachableError) or self._lost():
                self.close()
            raise error from None

    @staticmethod
    def _batches(cur: Any) -> Iterator[Any]:
        while cur.description:
            batch = cur.fetchmany(1000)
            if not batch:
                return
            yield batch

    @staticmethod
    def _hand_on(batches: Iterable[Any], budget: Budget, on_row: Callable[[Row], None]) -> int:
        count = 0
        for batch in batches:
            for row in batch:
                values = tuple(None if v is None else _text(v) for v in row)
                budget.add_row(sum(len(v) for v in values if v is not None))
                try:
                    on_row(values)
                except Exception as err:
                    raise _HandedOn(err) from err
                count += 1
        return count

    def _lost(self) -> bool:
        if self._plan.backend.type == "postgresql":
            return bool(self._conn.closed)
        return not getattr(self._conn, "open", True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._conn.close()


class _HandedOn(Exception):
    """What ``on_row`` raised, kept apart from the driver's own errors."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def connect(plan: ConnectPlan, reason: str) -> DriverSession:
    """Log in with the stack's driver because ``reason`` (Kea's library is missing).

    Raises:
        UnreachableError, DeniedError, TlsError, InsecureAuthError.
    """
    if plan.backend.type == "postgresql":
        import psycopg
        from psycopg.conninfo import make_conninfo

        params = plan.libpq_params()
        if psycopg.pq.version() >= _REQUIRE_AUTH_SINCE and plan.server_unproven:
            params["require_auth"] = "!password"
        try:
            conn = psycopg.connect(make_conninfo("", **params), autocommit=True)
        except psycopg.Error as err:
            code = getattr(getattr(err, "diag", None), "sqlstate", None) or ""
            raise classify.login_error("postgresql", plan.where, str(err), code=code) from None
        library = f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version() // 10000})"
        return DriverSession(conn, plan, library, reason)
    import pymysql

    try:
        conn = _pymysql_connect(plan)
    except TlsError as err:
        if plan.tls.required or not any(h in err.message.lower() for h in _NO_TLS_AT_SERVER):
            raise
        # As libmariadb without an enforced mode: a server without TLS gives cleartext.
        conn = _pymysql_connect(replace(plan, tls=replace(plan.tls, use=False)))
    return DriverSession(conn, plan, f"PyMySQL {pymysql.__version__}", reason)


def _pymysql_connect(plan: ConnectPlan) -> Any:
    import pymysql

    class GuardedConnection(pymysql.connections.Connection):
        """Refuses to send the password where a reader on the path would get it."""

        def _process_auth(self, plugin_name: bytes, auth_packet: Any, *rest: Any) -> Any:
            if plugin_name in _CLEARTEXT_PLUGINS and not getattr(self, "_secure", False):
                raise InsecureAuthError(
                    f"MySQL {plan.where}: Kea would send its password in clear to this "
                    f"server: it asks for {plugin_name.decode(errors='replace')} over a "
                    "connection without TLS; kea-db refused to send it. Use TLS or the "
                    "Unix socket")
            return super()._process_auth(  # type: ignore[misc]
                plugin_name, auth_packet, *rest)

    kwargs: dict[str, Any] = {
        "user": plan.user,
        "password": plan.password or "",
        "database": plan.database,
        "connect_timeout": plan.connect_timeout,
        "read_timeout": plan.read_timeout or plan.statement_timeout + GRACE,
        "write_timeout": plan.write_timeout or plan.statement_timeout + GRACE,
        "autocommit": True,
        "charset": "utf8mb4",
        "local_infile": False,
        "max_allowed_packet": _MAX_PACKET,
        "client_flag": 2,  # CLIENT_FOUND_ROWS, as Kea
    }
    if plan.unix_socket:
        kwargs["unix_socket"] = plan.unix_socket
    else:
        kwargs["host"], kwargs["port"] = plan.host, plan.port
    if plan.tls.use:
        kwargs["ssl"] = plan.tls.context()
    else:
        kwargs["ssl_disabled"] = True
    if plan.server_public_key:
        from keadb_cli.files import MAX_TLS_FILE, read_bounded

        kwargs["server_public_key"] = read_bounded(
            plan.server_public_key, what="--server-public-key", limit=MAX_TLS_FILE,
            error=SettingsError)
    elif not plan.unix_socket and not plan.tls.required:
        kwargs["server_public_key"] = b"not a key: no RSA exchange over cleartext"
    try:
        return GuardedConnection(**kwargs)
    except KeaDbError:
        raise
    except ValueError:  # PyMySQL could not use our non-key: the RSA exchange was wanted
        raise InsecureAuthError(
            f"MySQL {plan.where}: the server wants the password RSA-encrypted with a key it "
            "sends over a connection without TLS; kea-db refused. Use TLS, or give the "
            "server's public key (--server-public-key)", reason_code="insecure-rsa-key",
        ) from None
    except pymysql.err.MySQLError as err:
        code = err.args[0] if err.args and isinstance(err.args[0], int) else 0
        text = str(err.args[1]) if len(err.args) > 1 else str(err)
        if code == 2026 or "ssl" in text.lower():
            raise TlsError(f"MySQL {plan.where}: {text}", reason_code="tls") from None
        raise classify.login_error("mysql", plan.where, text, code=str(code)) from None
    except OSError as err:
        raise UnreachableError(f"MySQL {plan.where}: {err}", reason_code="unreachable") from None
