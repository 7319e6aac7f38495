"""The session check of ``kea-db test-tls``: log in as Kea would (Kea's own C client
library through :mod:`keadb_cli.db.session`, or a fallback driver) and read what the server
says of the session's TLS (``pg_stat_ssl``, MySQL's ``Ssl_version`` / ``Ssl_cipher``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keadb_cli.db.plan import ConnectPlan
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import (
    DeniedError,
    KeaDbError,
    QueryError,
    SettingsError,
    TlsError,
    UnreachableError,
)
from keadb_cli.text import shown

if TYPE_CHECKING:
    from keadb_cli.db.node import Node
    from keadb_cli.db.session_kit import Endpoint


@dataclass(frozen=True)
class SessionReport:
    """What the server says of a session opened with the driver as Kea would open it."""

    connected: bool
    ssl: bool | None = None
    version: str | None = None
    cipher: str | None = None
    bits: int | None = None
    client_dn: str | None = None  # PostgreSQL: the client certificate the server accepted
    server_requires_tls: bool | None = None  # MySQL require_secure_transport
    fallback_used: bool = False  # MySQL: TLS asked for, cleartext given (Kea only logs it)
    error: str | None = None
    failure: str | None = None  # "unreachable", "denied", "tls", "settings", "query"
    library: str | None = None  # what opened it: "libpq 15.20", "libmariadb 3.3.8", "psycopg"
    node: Node | None = None  # the server's role (primary, standby...), when it was read
    answered: Endpoint | None = None  # the host that answered (of a host list)

    def to_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "ssl": self.ssl,
            "version": self.version,
            "cipher": self.cipher,
            "bits": self.bits,
            "client_dn": self.client_dn,
            "server_requires_tls": self.server_requires_tls,
            "fallback_used": self.fallback_used,
            "error": self.error,
            "failure": self.failure,
            "library": self.library,
            "answered": self.answered.to_json() if self.answered else None,
        }


_NO_TLS_AT_SERVER = (
    "server does not support ssl",  # libpq: "... but SSL was required"
    "ssl is required but the server doesn't support it",  # PyMySQL 1.2
    "doesn't support ssl",
    "ssl connection error",  # libmariadb with TLS enforced: the server offers none
)


def _failure_of(exc: KeaDbError) -> str:
    if isinstance(exc, TlsError):
        return "tls"
    if isinstance(exc, DeniedError):
        return "denied"
    if isinstance(exc, UnreachableError):
        return "unreachable"
    if isinstance(exc, SettingsError):
        return "settings"
    return "error"


def _open(plan: ConnectPlan, via: str) -> Session:
    if via == "auto":
        return open_session(plan)
    if plan.backend.type == "mysql" and plan.tls.use:
        try:  # the TLS files, before a driver blurs their errors into "cannot connect"
            plan.tls.context()
        except (OSError, ValueError) as exc:
            from keadb_cli.commands.test_tls.starttls import tls_reason

            raise TlsError(f"cannot use the TLS files: {tls_reason(exc)}") from None
    if via == "driver":
        from keadb_cli.db import drivers

        return drivers.connect(plan, "asked for with via='driver'")
    import importlib

    session: Session = importlib.import_module(plan.backend.library_module).connect(plan)
    return session


def check_session(plan: ConnectPlan, *, via: str = "auto") -> SessionReport:
    """Log in as Kea would and read the session's TLS state from the server.

    ``via``: ``"auto"`` is the session path of every command (Kea's own C client library,
    else the fallback driver); ``"library"`` and ``"driver"`` force one of them. Never
    raises: failures are in the report.
    """
    if via not in ("auto", "library", "driver"):
        raise ValueError(f"via must be auto, library or driver, got {via!r}")
    plan = plan.for_reads()  # the session only reads what the server says of its TLS
    try:
        session = _open(plan, via)
    except KeaDbError as exc:
        return SessionReport(connected=False, error=exc.message, failure=_failure_of(exc),
                             library=_library_name(plan, via))
    except Exception as exc:  # a library surprise must not end in a traceback
        return SessionReport(connected=False, error=shown(f"{type(exc).__name__}: {exc}"),
                             failure="error", library=_library_name(plan, via))
    try:
        report = _read_tls_state(session, plan)
        with contextlib.suppress(QueryError):  # the role only informs test-tls
            report = replace(report, node=plan.backend.read_node(session))
    except KeaDbError as exc:
        report = SessionReport(connected=True, error="reading the session's TLS state "
                               f"failed: {exc.message}", failure="query")
    finally:
        session.close()
    return replace(report, library=session.library, answered=session.answered,
                   fallback_used=plan.backend.type == "mysql" and plan.tls.use
                   and not report.ssl)


def _library_name(plan: ConnectPlan, via: str) -> str:
    return plan.backend.driver if via == "driver" else plan.backend.library


def _read_tls_state(session: Session, plan: ConnectPlan) -> SessionReport:
    """What the server says of the session: pg_stat_ssl, or MySQL's Ssl_* status."""
    if plan.backend.type == "postgresql":
        rows = session.query(
            "SELECT ssl, version, cipher, bits, client_dn FROM pg_stat_ssl "
            "WHERE pid = pg_backend_pid()"
        )
        if not rows:
            return SessionReport(connected=True, ssl=session.tls_version is not None)
        ssl, version, cipher, bits, client_dn = rows[0]
        return SessionReport(
            connected=True,
            ssl=ssl in ("t", "true", "True", "1"),
            version=version or None,
            cipher=cipher or None,
            bits=int(bits) if bits and bits.isdigit() else None,
            client_dn=shown(client_dn) if client_dn else None,
        )
    status = {
        (r[0] or ""): r[1] or ""
        for r in session.query(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
    }
    requires: bool | None
    try:
        rows = session.query("SELECT @@GLOBAL.require_secure_transport")
        value = rows[0][0] if rows else None
        requires = value.upper() in ("1", "ON") if value is not None else None
    except QueryError:  # servers before require_secure_transport (MariaDB < 10.5.2)
        requires = None
    cipher = status.get("Ssl_cipher") or session.tls_cipher
    return SessionReport(
        connected=True,
        ssl=bool(cipher),
        version=status.get("Ssl_version") or session.tls_version,
        cipher=cipher,
        bits=session.tls_bits,
        server_requires_tls=requires,
    )


