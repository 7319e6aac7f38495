"""DBAPI connections (psycopg 3, PyMySQL) opened from a ConnectPlan.

Imported only by commands that need a full driver (init, the test-tls session check, and
the wire clients' fallback), because the drivers cost 100-200 ms to import.
"""

from __future__ import annotations

from typing import Any

from keadb_cli.db.plan import ConnectPlan
from keadb_cli.errors import DeniedError, KeaDbError, QueryError, TlsError, UnreachableError

# MySQL client/server error numbers that mean "you may not", not "cannot reach".
_MYSQL_DENIED = {1044, 1045, 1049, 1130, 1227, 1251, 1698, 3159}
_PG_UNREACHABLE_HINTS = (
    "connection refused",
    "timeout expired",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
    "no such file or directory",
    "connection timed out",
    "server closed the connection",
)
_TLS_HINTS = ("ssl", "tls", "certificate")


def _redact(text: str, plan: ConnectPlan) -> str:
    if plan.password:
        text = text.replace(plan.password, "***")
    return " ".join(text.split())


def _translate_pg(err: Exception, plan: ConnectPlan) -> KeaDbError:
    message = _redact(str(err), plan)
    sqlstate = getattr(getattr(err, "diag", None), "sqlstate", None) or getattr(
        err, "sqlstate", None
    )
    lowered = message.lower()
    if sqlstate in ("28P01", "28000", "3D000", "42501") or "authentication failed" in lowered:
        return DeniedError(f"{plan.backend.display} {plan.where}: {message}")
    if "does not exist" in lowered or "no pg_hba.conf entry" in lowered:
        return DeniedError(f"{plan.backend.display} {plan.where}: {message}")
    if any(h in lowered for h in _PG_UNREACHABLE_HINTS):
        return UnreachableError(f"{plan.backend.display} {plan.where}: {message}")
    if any(h in lowered for h in _TLS_HINTS):
        return TlsError(f"{plan.backend.display} {plan.where}: {message}")
    return UnreachableError(f"{plan.backend.display} {plan.where}: {message}")


def _translate_mysql(err: Exception, plan: ConnectPlan) -> KeaDbError:
    code = err.args[0] if err.args and isinstance(err.args[0], int) else 0
    text = err.args[1] if len(err.args) > 1 else str(err)
    message = _redact(str(text), plan)
    if code in _MYSQL_DENIED:
        return DeniedError(f"{plan.backend.display} {plan.where}: {message}")
    if code == 2026 or any(h in message.lower() for h in _TLS_HINTS):
        return TlsError(f"{plan.backend.display} {plan.where}: {message}")
    return UnreachableError(f"{plan.backend.display} {plan.where}: {message}")


def connect(plan: ConnectPlan) -> Any:
    """Open a DBAPI connection for ``plan`` (autocommit off for PostgreSQL, on for MySQL).

    Raises:
        UnreachableError, DeniedError, TlsError: with the password never in the message.
    """
    if plan.backend.type == "postgresql":
        import psycopg
        from psycopg.conninfo import make_conninfo

        try:
            return psycopg.connect(make_conninfo("", **plan.libpq_params()))
        except psycopg.Error as err:
            raise _translate_pg(err, plan) from None
    import pymysql

    try:
        return pymysql.connect(**plan.pymysql_kwargs())
    except pymysql.err.MySQLError as err:
        raise _translate_mysql(err, plan) from None
    except OSError as err:  # TLS files unreadable, socket errors before the handshake
        raise UnreachableError(f"{plan.backend.display} {plan.where}: {err}") from None


class DbapiSession:
    """The wire Session interface over a DBAPI connection: the wire clients' fallback for
    what they do not implement (an authentication method).

    The connection runs in autocommit mode so that ``BEGIN READ ONLY`` / ``ROLLBACK`` are
    plain statements, as they are on the wire (PyMySQL is opened that way already).
    """

    def __init__(self, plan: ConnectPlan) -> None:
        self._plan = plan
        self._conn = connect(plan)
        if plan.backend.type == "postgresql":
            self._conn.autocommit = True
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        if plan.backend.type == "postgresql":
            rows = self.query(
                "SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl"
            )
        else:
            status = dict(
                (r[0] or "", r[1]) for r in self.query("SHOW SESSION STATUS LIKE 'Ssl_%'")
            )
            version, cipher = status.get("Ssl_version"), status.get("Ssl_cipher")
            rows = [(version, cipher)] if version else []
        if rows:
            self.tls_version, self.tls_cipher = rows[0][0], rows[0][1]

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        try:
            cur = self._conn.cursor()
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else []
        except Exception as err:  # driver errors become QueryError with a code
            code = getattr(getattr(err, "diag", None), "sqlstate", None) or (
                str(err.args[0]) if err.args and isinstance(err.args[0], int) else ""
            )
            raise QueryError(_redact(str(err), self._plan), code=code or "") from None
        return [tuple(None if v is None else str(v) for v in row) for row in rows]

    def close(self) -> None:
        self._conn.close()
