"""One table from a server's or a client library's answer to what it means for kea-db.

Every session path (libpq, libmariadb, and the psycopg / PyMySQL fallback) turns a failure
into a kea-db error through :func:`error_for`, so the same answer is classified the same way
whichever path met it. The rules are looked up in this order: the SQLSTATE (PostgreSQL) or
error number (MySQL), then the text (libpq reports connection failures as text only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keadb_cli.db.backends import backend_for
from keadb_cli.errors import (
    DeniedError,
    InsecureAuthError,
    KeaDbError,
    QueryError,
    TlsError,
    UnreachableError,
)
from keadb_cli.text import shown


class Outcome(StrEnum):
    UNREACHABLE = "unreachable"  # could not reach, lost, or no proper answer: may heal
    DENIED = "denied"  # the server refused this user, database or privilege
    TLS = "tls"  # the TLS session could not be set up
    INSECURE_AUTH = "insecure-auth"  # kea-db refused to hand over the password
    QUERY = "query"  # a statement failed on a healthy session


@dataclass(frozen=True)
class Rule:
    """``key`` is a SQLSTATE, a MySQL error number, or a lower-case text fragment."""

    backend: str  # "postgresql" or "mysql"
    kind: str  # "code" or "text"
    key: str
    outcome: Outcome
    reason: str


_U, _D, _T, _I = Outcome.UNREACHABLE, Outcome.DENIED, Outcome.TLS, Outcome.INSECURE_AUTH
_PG, _MY = "postgresql", "mysql"

RULES: tuple[Rule, ...] = (
    # -- PostgreSQL SQLSTATEs (statements; the fallback driver also has them at login)
    Rule(_PG, "code", "28P01", _D, "auth-failed"),
    Rule(_PG, "code", "28000", _D, "not-authorized"),
    Rule(_PG, "code", "3D000", _D, "unknown-database"),
    Rule(_PG, "code", "42501", _D, "no-privilege"),
    Rule(_PG, "code", "53300", _U, "too-many-connections"),
    Rule(_PG, "code", "57P03", _U, "server-starting"),
    Rule(_PG, "code", "57P01", _U, "server-shutdown"),
    Rule(_PG, "code", "57P02", _U, "server-shutdown"),
    Rule(_PG, "code", "57014", _U, "statement-timeout"),
    Rule(_PG, "code", "08006", _U, "connection-lost"),
    Rule(_PG, "code", "08003", _U, "connection-lost"),
    # -- PostgreSQL connection failures, as libpq words them (first match wins)
    Rule(_PG, "text", "too many clients", _U, "too-many-connections"),
    Rule(_PG, "text", "remaining connection slots are reserved", _U, "too-many-connections"),
    Rule(_PG, "text", "the database system is starting up", _U, "server-starting"),
    Rule(_PG, "text", "the database system is shutting down", _U, "server-shutdown"),
    Rule(_PG, "text", "the database system is in recovery mode", _U, "server-starting"),
    Rule(_PG, "text", "server requested a cleartext password", _I, "insecure-auth"),  # 16+
    Rule(_PG, "text", "password authentication failed", _D, "auth-failed"),
    Rule(_PG, "text", "no password supplied", _D, "no-password"),
    Rule(_PG, "text", "certificate authentication failed", _D, "client-cert-rejected"),
    Rule(_PG, "text", "valid client certificate", _D, "client-cert-missing"),
    Rule(_PG, "text", "no pg_hba.conf entry", _D, "hba-rejected"),
    Rule(_PG, "text", "pg_hba.conf rejects", _D, "hba-rejected"),
    Rule(_PG, "text", "authentication failed", _D, "auth-failed"),
    Rule(_PG, "text", "permission denied", _D, "no-privilege"),
    Rule(_PG, "text", "database \"", _D, "unknown-database"),  # database "x" does not exist
    Rule(_PG, "text", "role \"", _D, "auth-failed"),  # role "x" does not exist
    Rule(_PG, "text", "could not translate host name", _U, "dns"),
    Rule(_PG, "text", "connection refused", _U, "refused"),
    Rule(_PG, "text", "timeout expired", _U, "timeout"),
    Rule(_PG, "text", "no route to host", _U, "network"),
    Rule(_PG, "text", "network is unreachable", _U, "network"),
    Rule(_PG, "text", "no such file or directory", _U, "no-socket"),
    Rule(_PG, "text", "server closed the connection unexpectedly", _U, "connection-lost"),
    Rule(_PG, "text", "server does not support ssl", _T, "tls-refused"),
    Rule(_PG, "text", "certificate verify failed", _T, "tls-verify"),
    Rule(_PG, "text", "does not match host name", _T, "tls-hostname"),
    Rule(_PG, "text", "root certificate file", _T, "tls-files"),
    Rule(_PG, "text", "could not load private key", _T, "tls-files"),
    Rule(_PG, "text", "could not read certificate", _T, "tls-files"),
    Rule(_PG, "text", "ssl", _T, "tls"),
    Rule(_PG, "text", "certificate", _T, "tls"),
    Rule(_PG, "text", "expected authentication request", _U, "protocol"),
    Rule(_PG, "text", "unsupported frontend protocol", _U, "protocol"),
    # -- MySQL / MariaDB error numbers (server and client library)
    Rule(_MY, "code", "1045", _D, "auth-failed"),
    Rule(_MY, "code", "1698", _D, "auth-failed"),
    Rule(_MY, "code", "1044", _D, "no-privilege"),
    Rule(_MY, "code", "1227", _D, "no-privilege"),
    Rule(_MY, "code", "1142", _D, "no-privilege"),
    Rule(_MY, "code", "1049", _D, "unknown-database"),
    Rule(_MY, "code", "1130", _D, "host-not-allowed"),
    Rule(_MY, "code", "1129", _D, "host-blocked"),
    Rule(_MY, "code", "1251", _D, "auth-unsupported"),
    Rule(_MY, "code", "2059", _D, "auth-unsupported"),
    Rule(_MY, "code", "3118", _D, "account-locked"),  # Oracle MySQL
    Rule(_MY, "code", "4151", _D, "account-locked"),  # MariaDB
    Rule(_MY, "code", "1862", _D, "password-expired"),
    Rule(_MY, "code", "1820", _D, "password-expired"),
    Rule(_MY, "code", "3159", _D, "tls-required"),  # require_secure_transport
    Rule(_MY, "code", "1040", _U, "too-many-connections"),
    Rule(_MY, "code", "1203", _U, "too-many-connections"),
    Rule(_MY, "code", "2002", _U, "refused"),
    Rule(_MY, "code", "2003", _U, "refused"),
    Rule(_MY, "code", "2005", _U, "dns"),
    Rule(_MY, "code", "2006", _U, "connection-lost"),
    Rule(_MY, "code", "2013", _U, "connection-lost"),
    Rule(_MY, "code", "1927", _U, "connection-lost"),  # MariaDB: connection killed
    Rule(_MY, "code", "5013", _U, "connection-lost"),  # libmariadb: read error
    Rule(_MY, "code", "5014", _U, "connection-lost"),  # libmariadb: write error
    Rule(_MY, "code", "2007", _U, "protocol"),  # protocol version mismatch
    Rule(_MY, "code", "2012", _U, "protocol"),  # handshake error
    Rule(_MY, "code", "2027", _U, "protocol"),  # malformed packet
    # libmariadb's "unknown error": an answer it cannot read (a length past the end of its
    # packet, a LOAD DATA LOCAL request in answer to a query)
    Rule(_MY, "code", "2000", _U, "protocol"),
    Rule(_MY, "code", "2020", _U, "result-too-large"),  # packet over max_allowed_packet
    Rule(_MY, "code", "1969", _U, "statement-timeout"),  # MariaDB max_statement_time
    Rule(_MY, "code", "3024", _U, "statement-timeout"),  # Oracle MySQL max_execution_time
    Rule(_MY, "code", "2026", _T, "tls"),
    Rule(_MY, "code", "5010", _I, "insecure-auth"),  # plugin outside restricted_auth
)

_BY_CODE = {(r.backend, r.key): r for r in RULES if r.kind == "code"}
_BY_TEXT = tuple(r for r in RULES if r.kind == "text")


def rule_for(backend: str, *, code: str = "", text: str = "") -> Rule | None:
    """The first rule that matches the code, else the text; None when nothing does."""
    if code and (backend, code) in _BY_CODE:
        return _BY_CODE[(backend, code)]
    lowered = text.lower()
    for rule in _BY_TEXT:
        if rule.backend == backend and rule.key in lowered:
            return rule
    return None


_ERRORS: dict[Outcome, type[KeaDbError]] = {
    Outcome.UNREACHABLE: UnreachableError,
    Outcome.DENIED: DeniedError,
    Outcome.TLS: TlsError,
    Outcome.INSECURE_AUTH: InsecureAuthError,
}


def login_error(backend: str, where: str, text: str, *, code: str = "") -> KeaDbError:
    """The kea-db error for a failed login (or a session that broke): what the table says,
    else UNREACHABLE (the server did not answer as a database server should)."""
    rule = rule_for(backend, code=code, text=text)
    outcome = rule.outcome if rule else Outcome.UNREACHABLE
    if outcome is Outcome.QUERY:  # not in the table today; kept total for the type checker
        outcome = Outcome.UNREACHABLE
    suffix = f" ({code})" if code and backend == "mysql" else ""
    message = f"{_display(backend)} {where}: {shown(text)}{suffix}"
    return _ERRORS[outcome](message, reason_code=rule.reason if rule else "unexpected")


def query_error(backend: str, text: str, *, code: str = "") -> KeaDbError:
    """The kea-db error for a failed statement: a :class:`QueryError` carrying the code,
    unless the table says the session itself is gone, timed out or was refused."""
    rule = rule_for(backend, code=code)
    if rule is not None and rule.outcome is Outcome.UNREACHABLE:
        return UnreachableError(f"{_display(backend)}: {shown(text)}", reason_code=rule.reason)
    return QueryError(shown(text, limit=1000), code=code, reason_code=rule.reason if rule else "")


def garbage_error(backend: str, where: str, text: str) -> UnreachableError:
    """The server's answer could not be read at all (the library or driver failed on it
    without an error number): protocol garbage, UNREACHABLE ``protocol``."""
    return UnreachableError(
        f"{_display(backend)} {where}: the server's answer cannot be read ({shown(text)})",
        reason_code="protocol",
    )


def _display(backend: str) -> str:
    return backend_for(backend).display
