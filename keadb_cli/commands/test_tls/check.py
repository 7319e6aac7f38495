"""``kea-db test-tls``: is this connection, opened the way Kea X.Y opens it, encrypted and
verified?

Three steps, each usable alone, and :func:`run` strings them together:

1. :func:`kea_plan` - what Kea X.Y really does with the entry's TLS keys on this backend
   (PostgreSQL before 3.1 drops them, so libpq's defaults apply; MySQL asks for TLS but keeps
   a cleartext session when the server has none).
2. Two independent signals: the wire probe (:func:`keadb_cli.commands.test_tls.probe.probe`: the
   protocol's TLS upgrade and a handshake, certificate chain included) and the session check
   (:func:`check_session`: log in as Kea would - with Kea's own C client library, libpq or
   libmariadb, through ctypes when it loads, else with psycopg / PyMySQL - and read what the
   server says of this session: ``pg_stat_ssl`` / ``Ssl_version`` + ``Ssl_cipher``).
3. :func:`decide` - one verdict from both signals, the Kea plan, the certificate file
   findings and the CI policy flags; disagreements between the signals are reported.

Nothing here prints or exits; client libraries and drivers are loaded only by
:func:`check_session`, ``ssl`` and ``cryptography`` only when there is TLS to look at.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from keadb_cli import errors
from keadb_cli.commands.test_tls.files import (
    DEFAULT_WARN_DAYS,
    CertInfo,
    Finding,
    Severity,
    check_tls_files,
)
from keadb_cli.commands.test_tls.probe import Reason, WireReport, probe
from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.db.session import Session, open_session
from keadb_cli.errors import (
    DeniedError,
    ExitCode,
    KeaDbError,
    QueryError,
    SettingsError,
    TlsError,
    UnreachableError,
)
from keadb_cli.kea.access import DbAccess
from keadb_cli.text import shown

ReleaseTuple = tuple[int, int, int]

# Kea releases where the TLS keys changed meaning (kea-facts.md section 4.6).
TLS_KEYS_SINCE: ReleaseTuple = (2, 1, 2)  # trust-anchor, cert-file, key-file, cipher-list
PG_TLS_SINCE: ReleaseTuple = (3, 1, 0)  # PostgreSQL passes them to libpq; ssl-mode exists
PG_LOGS_TLS_UNTIL: ReleaseTuple = (3, 0, 0)  # 2.1.2-2.7.x logged *_PGSQL_TLS_SUPPORT
MYSQL_NEW_LOG_IDS: ReleaseTuple = (2, 7, 0)  # MYSQL_LB_NO_TLS... replaced DHCPSRV_MYSQL_NO_TLS

FILE_KEYS = ("trust-anchor", "cert-file", "key-file", "cipher-list")

_TLS_ORDER = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}


class Verdict(StrEnum):
    """The answer of ``test-tls``; each has its own exit code."""

    VERIFIED = "VERIFIED"
    ENCRYPTED_UNVERIFIED = "ENCRYPTED-UNVERIFIED"
    CLEARTEXT = "CLEARTEXT"
    TLS_REFUSED = "TLS-REFUSED"
    HANDSHAKE_FAILED = "HANDSHAKE-FAILED"
    UNREACHABLE = "UNREACHABLE"
    DENIED = "DENIED"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.VERIFIED: ExitCode.OK,
    Verdict.ENCRYPTED_UNVERIFIED: ExitCode.ENCRYPTED_UNVERIFIED,
    Verdict.CLEARTEXT: ExitCode.CLEARTEXT,
    Verdict.TLS_REFUSED: ExitCode.TLS_REFUSED,
    Verdict.HANDSHAKE_FAILED: ExitCode.HANDSHAKE_FAILED,
    Verdict.UNREACHABLE: ExitCode.UNREACHABLE,
    Verdict.DENIED: ExitCode.DENIED,
}


def _release_text(release: ReleaseTuple | None) -> str:
    return "Kea (newest rules)" if release is None else "Kea {}.{}.{}".format(*release)


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """CI flags that turn warnings into failures (exit code TLS_POLICY)."""

    require_tls: bool = False  # no cleartext fallback may be possible
    require_verify: bool = False  # chain verified *and* host name matching
    require_client_cert: bool = False  # the server must have asked for and got one
    min_tls: str | None = None  # "TLSv1.2"

    def to_json(self) -> dict[str, Any]:
        return {
            "require_tls": self.require_tls,
            "require_verify": self.require_verify,
            "require_client_cert": self.require_client_cert,
            "min_tls": self.min_tls,
        }


def parse_min_tls(text: str) -> str:
    """``1.2`` / ``TLSv1.2`` / ``tls1.3`` -> ``TLSv1.2``.

    Raises:
        SettingsError: not one of 1.0, 1.1, 1.2, 1.3.
    """
    value = text.strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    names = {"1": "TLSv1", "1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}
    if value not in names:
        raise SettingsError(f"--min-tls must be 1.0, 1.1, 1.2 or 1.3, got {text!r}")
    return names[value]


# -- Kea parity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeaPlan:
    """What Kea X.Y does with an entry's TLS keys: the connection it would really open."""

    plan: ConnectPlan
    release: ReleaseTuple | None
    keys: tuple[str, ...]  # the TLS keys the entry sets
    ignored_keys: tuple[str, ...]  # set, but this Kea release does not use them
    cleartext_fallback: bool  # a server without TLS gives a cleartext session, not an error
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        tls = self.plan.tls
        return {
            "kea_version": None if self.release is None else "{}.{}.{}".format(*self.release),
            "keys": list(self.keys),
            "ignored_keys": list(self.ignored_keys),
            "mode": tls.mode,
            "uses_tls": tls.use,
            "requires_tls": tls.required,
            "verifies_chain": tls.verify_chain,
            "verifies_hostname": tls.verify_hostname,
            "cleartext_fallback": self.cleartext_fallback,
            "notes": list(self.notes),
        }


def tls_keys(access: DbAccess) -> tuple[str, ...]:
    """The Kea TLS keywords the entry sets, in Kea's order."""
    values = {
        "trust-anchor": access.trust_anchor,
        "cert-file": access.cert_file,
        "key-file": access.key_file,
        "cipher-list": access.cipher_list,
        "ssl-mode": access.ssl_mode,
    }
    return tuple(k for k, v in values.items() if v)


def _without_tls(access: DbAccess) -> DbAccess:
    return replace(
        access, trust_anchor=None, cert_file=None, key_file=None, cipher_list=None, ssl_mode=None
    )


def kea_plan(
    access: DbAccess, release: ReleaseTuple | None, env: dict[str, str] | None = None
) -> KeaPlan:
    """The connection Kea ``release`` (None: the newest rules) would open for ``access``.

    PostgreSQL: before 3.1 the TLS keys are not passed to libpq, so the session is whatever
    ``PGSSLMODE`` or libpq's default ``prefer`` gives; from 3.1 a trust-anchor without
    ssl-mode means verify-ca, other keys mean require; cipher-list is never used. MySQL: any
    key asks for TLS when the server offers it, the chain is verified when a CA is given,
    the host name never, and a server without TLS leaves a cleartext session (Kea logs it).

    Raises:
        SettingsError: the entry cannot be connected to at all (no name, bad port...).
    """
    env = dict(os.environ) if env is None else env
    keys = tls_keys(access)
    rel_text = _release_text(release)
    notes: list[str] = []
    ignored: tuple[str, ...] = ()
    old = release is not None and release < TLS_KEYS_SINCE
    if access.type == "postgresql":
        newest = release is None or release >= PG_TLS_SINCE
        if keys and not newest:
            ignored = keys
            plan = plan_for(_without_tls(access), env)
            notes.append(_pg_ignored_note(release, keys, plan.tls.mode))
        elif access.trust_anchor and os.path.isdir(access.trust_anchor):
            plan = plan_for(access, env, allow_ca_directory=True)
            notes.append(
                f"{rel_text} passes trust-anchor to libpq as sslrootcert, which must be a "
                "file: libpq cannot load a CA directory, so the connection fails"
            )
        else:
            plan = plan_for(access, env)
            if keys:
                notes.append(f"{rel_text}: sslmode={plan.tls.mode} ({plan.tls.reason})")
            else:
                notes.append(
                    f"no TLS key is set: Kea sends no sslmode, so libpq's "
                    f"{plan.tls.mode!r} applies ({plan.tls.reason})"
                )
        if access.cipher_list and "cipher-list" not in ignored:
            ignored = (*ignored, "cipher-list")
            notes.append("cipher-list is ignored for PostgreSQL: libpq has no cipher option")
        if plan.tls.use and plan.unix_socket:
            notes.append("libpq never uses TLS over a Unix socket (host is a directory)")
        fallback = not plan.tls.required
        if keys and fallback and plan.tls.use:
            notes.append(
                f"sslmode={plan.tls.mode}: libpq falls back to cleartext without a word when "
                "the server offers no TLS, and Kea does not check (no PQsslInUse)"
            )
    else:
        if old and keys:
            ignored = keys
            plan = plan_for(_without_tls(access), env)
            notes.append(
                f"{rel_text} predates Kea's TLS keys (2.1.2): it does not know {', '.join(keys)}"
            )
        else:
            plan = plan_for(access, env)
        if access.ssl_mode and "ssl-mode" not in ignored:
            ignored = (*ignored, "ssl-mode")
            notes.append("ssl-mode is PostgreSQL's: Kea's MySQL backend does not use it")
        fallback = True
        if plan.tls.use:
            log_id = (
                "MYSQL_LB_NO_TLS / MYSQL_HB_NO_TLS / MYSQL_CB_NO_TLS"
                if release is None or release >= MYSQL_NEW_LOG_IDS
                else "DHCPSRV_MYSQL_NO_TLS / MYSQL_CB_NO_TLS"
            )
            notes.append(
                f"{rel_text} asks for TLS (the chain is verified only when trust-anchor is "
                "set; the host name never); when the server offers no TLS the session stays "
                f"cleartext and Kea only logs {log_id}"
            )
    return KeaPlan(
        plan=plan,
        release=release,
        keys=keys,
        ignored_keys=ignored,
        cleartext_fallback=fallback,
        notes=tuple(notes),
    )


def _pg_ignored_note(release: ReleaseTuple | None, keys: tuple[str, ...], mode: str) -> str:
    rel = _release_text(release)
    listed = ", ".join(keys)
    if release is not None and release < TLS_KEYS_SINCE:
        return f"{rel} predates Kea's TLS keys (2.1.2): it does not know {listed}"
    if release is not None and release < PG_LOGS_TLS_UNTIL:
        return (
            f"{rel} does not pass {listed} to libpq: the session is libpq's sslmode={mode} "
            "(a build with PostgreSQL TLS support logs PGSQL_TLS_SUPPORT; a build without "
            "it, such as Debian 12's kea 2.2.0, logs DHCPSRV_PGSQL_NO_TLS_SUPPORT and refuses "
            "to open the database: 'Attempt to configure TLS for PostgreSQL backend (built "
            "with this feature disabled)'); PostgreSQL TLS keys work from Kea 3.1"
        )
    return (
        f"{rel} silently ignores {listed} for PostgreSQL: the session is libpq's "
        f"sslmode={mode}; PostgreSQL TLS keys work from Kea 3.1"
    )


# -- the session check ------------------------------------------------------------------------


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
    if plan.backend.type == "postgresql":
        from keadb_cli.db import libpq

        return libpq.connect(plan)
    from keadb_cli.db import libmariadb

    return libmariadb.connect(plan)


def check_session(plan: ConnectPlan, *, via: str = "auto") -> SessionReport:
    """Log in as Kea would and read the session's TLS state from the server.

    ``via``: ``"auto"`` is the session path of every command (Kea's own C client library,
    else the fallback driver); ``"library"`` and ``"driver"`` force one of them. Never
    raises: failures are in the report.
    """
    if via not in ("auto", "library", "driver"):
        raise ValueError(f"via must be auto, library or driver, got {via!r}")
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
    except KeaDbError as exc:
        report = SessionReport(connected=True, error="reading the session's TLS state "
                               f"failed: {exc.message}", failure="query")
    finally:
        session.close()
    return replace(report, library=session.library,
                   fallback_used=plan.backend.type == "mysql" and plan.tls.use
                   and not report.ssl)


def _library_name(plan: ConnectPlan, via: str) -> str:
    if via == "driver":
        return "psycopg" if plan.backend.type == "postgresql" else "PyMySQL"
    return "libpq" if plan.backend.type == "postgresql" else "libmariadb"


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


# -- the verdict ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsResult:
    """The answer for one access entry."""

    verdict: Verdict
    reason: str  # one line for people
    reason_code: Reason
    protocol: str | None
    cipher: str | None
    server_certificate: CertInfo | None
    wire: WireReport
    session: SessionReport
    kea: KeaPlan
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()  # policy flags (and file errors) that fail the run
    agreement: bool = True
    disagreements: tuple[str, ...] = ()
    target: str = ""  # password-free: "postgresql kea@db:5432/kea"
    source: str | None = None  # the Kea config path, e.g. "Dhcp4.lease-database"
    policy: Policy = field(default_factory=Policy)

    @property
    def exit_code(self) -> ExitCode:
        if self.verdict is not Verdict.VERIFIED:
            return self.verdict.exit_code
        return ExitCode.TLS_POLICY if self.failures else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": self.source,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "reason_code": self.reason_code.value,
            "exit_code": int(self.exit_code),
            "protocol": self.protocol,
            "cipher": self.cipher,
            "server_certificate": (
                self.server_certificate.to_json() if self.server_certificate else None
            ),
            "session": self.session.to_json(),
            "wire": self.wire.to_json(),
            "kea": self.kea.to_json(),
            "findings": [f.to_json() for f in self.findings],
            "warnings": list(self.warnings),
            "failures": list(self.failures),
            "agreement": self.agreement,
            "disagreements": list(self.disagreements),
            "policy": self.policy.to_json(),
        }


# Session error texts (libpq, PyMySQL/OpenSSL, server messages) -> Reason, first match wins.
_SESSION_TLS_HINTS: tuple[tuple[str, Reason], ...] = (
    ("does not match host name", Reason.HOSTNAME_MISMATCH),
    ("hostname mismatch", Reason.HOSTNAME_MISMATCH),
    ("ip address mismatch", Reason.HOSTNAME_MISMATCH),
    ("certificate has expired", Reason.EXPIRED),
    ("certificate expired", Reason.EXPIRED),
    ("certificate is not yet valid", Reason.NOT_YET_VALID),
    ("unable to get local issuer", Reason.UNKNOWN_CA),
    ("self-signed certificate", Reason.UNKNOWN_CA),
    ("self signed certificate", Reason.UNKNOWN_CA),
    ("unable to get issuer", Reason.UNKNOWN_CA),
    ("certificate required", Reason.CLIENT_CERT_MISSING),
    ("alert unknown ca", Reason.CLIENT_CERT_REJECTED),
    ("alert bad certificate", Reason.CLIENT_CERT_REJECTED),
    ("alert certificate unknown", Reason.CLIENT_CERT_REJECTED),
    ("alert certificate expired", Reason.CLIENT_CERT_REJECTED),
    ("alert decrypt error", Reason.CLIENT_CERT_REJECTED),
    ("no shared cipher", Reason.NO_SHARED_CIPHER),
    ("no ciphers available", Reason.NO_SHARED_CIPHER),
    ("alert handshake failure", Reason.NO_SHARED_CIPHER),
    ("handshake failure", Reason.NO_SHARED_CIPHER),
    ("protocol version", Reason.PROTOCOL_VERSION),
    ("unsupported protocol", Reason.PROTOCOL_VERSION),
    ("root certificate file", Reason.TLS_FILES),
    ("private key file", Reason.TLS_FILES),
    ("could not load", Reason.TLS_FILES),
    ("could not read", Reason.TLS_FILES),
    ("does not match private key", Reason.TLS_FILES),
    ("cannot use the tls files", Reason.TLS_FILES),
    ("key values mismatch", Reason.TLS_FILES),
)

_DENIED_HINTS: tuple[tuple[str, Reason], ...] = (
    ("connection requires a valid client certificate", Reason.CLIENT_CERT_MISSING),
    ("certificate authentication failed", Reason.CLIENT_CERT_REJECTED),
    ("certificate validation (clientcert=", Reason.CLIENT_CERT_REJECTED),
    ("no encryption", Reason.SERVER_REQUIRES_TLS),  # pg_hba: only hostssl lines match
    ("insecure transport", Reason.SERVER_REQUIRES_TLS),  # require_secure_transport=ON
)

_REASON_TEXT = {
    Reason.UNKNOWN_CA: "the server's certificate is not signed by the trust-anchor (unknown CA)",
    Reason.EXPIRED: "the server's certificate has expired",
    Reason.NOT_YET_VALID: "the server's certificate is not valid yet",
    Reason.HOSTNAME_MISMATCH: "the server's certificate is for another host name",
    Reason.NO_SHARED_CIPHER: "no cipher shared with the server (cipher-list)",
    Reason.PROTOCOL_VERSION: "no TLS protocol version shared with the server",
    Reason.CLIENT_CERT_MISSING: "the server requires a client certificate and none was given",
    Reason.CLIENT_CERT_REJECTED: "the server rejected the client certificate",
    Reason.TLS_FILES: "the TLS files cannot be used",
    Reason.TLS_ERROR: "the TLS handshake failed",
}


def _match(text: str | None, table: tuple[tuple[str, Reason], ...]) -> Reason | None:
    lowered = (text or "").lower()
    for needle, reason in table:
        if needle in lowered:
            return reason
    return None


def _tls_rank(version: str | None) -> int:
    return _TLS_ORDER.get(version or "", -1)


@dataclass
class _Draft:
    verdict: Verdict
    reason: str
    code: Reason
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _failed_session(kea: KeaPlan, wire: WireReport, session: SessionReport) -> _Draft:
    """The verdict when the driver could not open the session."""
    plan, error = kea.plan, session.error or "the session could not be opened"
    if wire.failure == "unreachable" and session.failure in ("unreachable", "tls", "settings"):
        # Nothing answers: whatever the driver tripped over first, that is the answer.
        return _Draft(Verdict.UNREACHABLE, wire.error or error, Reason.UNREACHABLE)
    if session.failure == "unreachable":
        if wire.failure == "handshake" and wire.reason is not None:
            # The driver lost the connection; the probe saw the handshake fail, and why.
            code = wire.reason
            text = _REASON_TEXT.get(code, "the TLS handshake failed")
            return _Draft(Verdict.HANDSHAKE_FAILED, f"{text} (probe: {wire.error}): {error}", code)
        dropped = _dropped_client_cert(plan, wire, error)
        if dropped is not None:
            return dropped
        if wire.failure is None and wire.offered is not None:
            # The probe got through: the driver's "unreachable" hides a TLS cause.
            hinted = _match(error, _SESSION_TLS_HINTS)
            if hinted is not None:
                return _Draft(Verdict.HANDSHAKE_FAILED, f"{_REASON_TEXT[hinted]}: {error}", hinted)
        return _Draft(Verdict.UNREACHABLE, error, Reason.UNREACHABLE)
    if session.failure == "denied":
        hinted = _match(error, _DENIED_HINTS)
        if hinted in (Reason.CLIENT_CERT_MISSING, Reason.CLIENT_CERT_REJECTED):
            return _Draft(Verdict.HANDSHAKE_FAILED, f"{_REASON_TEXT[hinted]}: {error}", hinted)
        denied = "access denied" in error.lower()
        if (
            plan.backend.type == "mysql"
            and denied
            and plan.tls.use
            and wire.offered
            and wire.client_cert_requested
            and not plan.tls.cert_file
        ):
            # REQUIRE X509 refuses with the same "Access denied" as a wrong password, so
            # this stays DENIED; the reason says which of the two is likely.
            return _Draft(
                Verdict.DENIED,
                "access denied: the server asked for a client certificate and no cert-file "
                "is set, so the account probably requires one (REQUIRE X509); otherwise the "
                f"user or password is wrong: {error}",
                Reason.CLIENT_CERT_MISSING,
            )
        if plan.backend.type == "mysql" and denied and not plan.tls.use and wire.offered:
            return _Draft(
                Verdict.DENIED,
                "access denied to a cleartext session: wrong user or password, or the server "
                "accepts this login over TLS only (require_secure_transport, REQUIRE SSL) "
                f"and no TLS key is set: {error}",
                Reason.DENIED,
            )
        if hinted is Reason.SERVER_REQUIRES_TLS:
            return _Draft(
                Verdict.DENIED,
                f"the server accepts this login over TLS only, and Kea's session is "
                f"cleartext: {error}",
                Reason.SERVER_REQUIRES_TLS,
            )
        return _Draft(Verdict.DENIED, error, Reason.DENIED)
    if session.failure == "error":  # the library or driver broke in an unforeseen way
        return _Draft(
            Verdict.UNREACHABLE, f"the session could not be checked: {error}", Reason.TLS_ERROR
        )
    # TLS (or TLS settings) failures
    lowered = error.lower()
    hinted = _match(error, _DENIED_HINTS)  # the server's refusal, reported as a TLS error
    if hinted in (Reason.CLIENT_CERT_MISSING, Reason.CLIENT_CERT_REJECTED):
        return _Draft(Verdict.HANDSHAKE_FAILED, f"{_REASON_TEXT[hinted]}: {error}", hinted)
    if any(h in lowered for h in _NO_TLS_AT_SERVER):
        return _Draft(
            Verdict.TLS_REFUSED,
            f"the server offers no TLS and Kea's connection requires it "
            f"(sslmode={plan.tls.mode}): {error}",
            Reason.NO_TLS_OFFERED,
        )
    hinted = _match(error, _SESSION_TLS_HINTS)
    if (
        (hinted is None or "certificate verify failed" in lowered)
        and wire.reason in _VERIFY_REASONS
        and wire.chain_verified is False
    ):
        hinted = wire.reason  # libpq says only "certificate verify failed"; the probe knows why
    if hinted is None and "certificate verify failed" in lowered:
        hinted = Reason.UNKNOWN_CA
    if hinted is None and wire.failure == "handshake" and wire.reason is not None:
        hinted = wire.reason
    if hinted is None:
        dropped = _dropped_client_cert(plan, wire, error)
        if dropped is not None:
            return dropped
    code = hinted or Reason.TLS_ERROR
    detail = _REASON_TEXT.get(code, "the TLS handshake failed")
    anchor = plan.tls.ca_file
    if code is Reason.TLS_FILES and anchor and os.path.isdir(anchor):
        detail = "libpq cannot use a CA directory as trust-anchor"
    return _Draft(Verdict.HANDSHAKE_FAILED, f"{detail}: {error}", code)


_LOST_HINTS = (
    "lost connection",
    "gone away",
    "closed the connection",
    "connection reset",
    "eof occurred",
)


def _dropped_client_cert(plan: ConnectPlan, wire: WireReport, error: str) -> _Draft | None:
    """The server dropped the session right after TLS, having asked for our certificate:
    how a rejected certificate looks when the alert is lost in the connection reset (TLS
    1.3 servers judge it after the handshake)."""
    lost = any(h in error.lower() for h in _LOST_HINTS)
    if not (lost and wire.handshake_ok and wire.client_cert_requested and plan.tls.cert_file):
        return None
    return _Draft(
        Verdict.HANDSHAKE_FAILED,
        "the server closed the connection right after the TLS handshake, having asked for "
        f"the client certificate: it most likely rejected it: {error}",
        Reason.CLIENT_CERT_REJECTED,
    )


_VERIFY_REASONS = (
    Reason.UNKNOWN_CA,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.HOSTNAME_MISMATCH,
)


def _cleartext(access: DbAccess, kea: KeaPlan, wire: WireReport) -> _Draft:
    plan, rel = kea.plan, _release_text(kea.release)
    if plan.backend.type == "postgresql" and plan.unix_socket:
        return _Draft(
            Verdict.CLEARTEXT,
            "the session runs over a Unix socket, where libpq never uses TLS",
            Reason.UNIX_SOCKET,
        )
    if not kea.keys:
        return _Draft(
            Verdict.CLEARTEXT,
            "no TLS key is set and the session is cleartext"
            + (" (the server offers no TLS)" if wire.offered is False else ""),
            Reason.NO_TLS_KEYS,
        )
    if plan.backend.type == "mysql":
        if not plan.tls.use:
            return _Draft(
                Verdict.CLEARTEXT,
                f"{rel} does not know the TLS keys: the session is cleartext",
                Reason.KEYS_IGNORED,
            )
        return _Draft(
            Verdict.CLEARTEXT,
            "the server offers no TLS: Kea keeps this cleartext session and only logs an "
            "error (TLS was required but is not used)",
            Reason.FALLBACK,
        )
    if kea.ignored_keys and set(kea.ignored_keys) - {"cipher-list"}:
        return _Draft(
            Verdict.CLEARTEXT,
            f"{rel} does not pass the TLS keys to libpq; with sslmode={plan.tls.mode} the "
            "session is cleartext"
            + (" (the server offers no TLS)" if wire.offered is False else ""),
            Reason.KEYS_IGNORED,
        )
    return _Draft(
        Verdict.CLEARTEXT,
        f"sslmode={plan.tls.mode}: libpq fell back to cleartext"
        + (" (the server offers no TLS)" if wire.offered is False else "")
        + " and Kea does not notice",
        Reason.FALLBACK,
    )


def _encrypted(access: DbAccess, kea: KeaPlan, wire: WireReport) -> _Draft:
    plan, rel = kea.plan, _release_text(kea.release)
    anchor = access.trust_anchor
    if plan.tls.verify_chain:
        return _Draft(
            Verdict.VERIFIED,
            f"TLS, and the server's chain verifies against trust-anchor {anchor}",
            Reason.CHAIN_VERIFIED,
        )
    if anchor and "trust-anchor" in kea.ignored_keys:
        would = (
            " (it would verify against trust-anchor with Kea 3.1+)" if wire.chain_verified else ""
        )
        return _Draft(
            Verdict.ENCRYPTED_UNVERIFIED,
            f"TLS, but {rel} does not pass trust-anchor to libpq, so nothing verifies the "
            f"server{would}",
            Reason.KEYS_IGNORED,
        )
    if not kea.keys:
        return _Draft(
            Verdict.ENCRYPTED_UNVERIFIED,
            f"TLS (libpq's sslmode={plan.tls.mode} found it), but no trust-anchor is set, so "
            "nothing verifies the server",
            Reason.NO_TLS_KEYS,
        )
    return _Draft(
        Verdict.ENCRYPTED_UNVERIFIED,
        "TLS, but no trust-anchor is set"
        + (f" (sslmode={plan.tls.mode})" if plan.backend.type == "postgresql" else "")
        + ", so nothing verifies the server",
        Reason.NOT_VERIFIED,
    )


def _compare(kea: KeaPlan, wire: WireReport, session: SessionReport) -> list[str]:
    """Where the wire probe and the session check tell different stories."""
    plan = kea.plan
    out: list[str] = []
    if session.connected and session.ssl is not None and wire.offered is not None:
        if session.ssl and not wire.offered:
            out.append("the probe saw no TLS offered, yet the session is encrypted")
        expects_tls = plan.tls.use and plan.tls.mode != "allow"
        if not session.ssl and wire.offered and expects_tls:
            out.append(
                "the server offers TLS to the probe, yet the session is cleartext"
                + (" (the driver fell back)" if session.fallback_used else "")
            )
        if session.ssl and wire.handshake_ok:
            if session.version and wire.protocol and session.version != wire.protocol:
                out.append(
                    f"protocol: the probe negotiated {wire.protocol}, the session {session.version}"
                )
            if session.cipher and wire.cipher and session.cipher != wire.cipher:
                out.append(
                    f"cipher: the probe negotiated {wire.cipher}, the session {session.cipher}"
                )
        if session.ssl and plan.tls.verify_chain and wire.chain_verified is False:
            out.append(
                f"the session verified the server's chain, the probe did not: {wire.verify_error}"
            )
        if session.ssl and plan.tls.verify_hostname and wire.hostname_match is False:
            out.append("the session checked the host name, but the probe finds no match")
        if session.ssl and not wire.handshake_ok and wire.failure == "handshake":
            out.append(f"the session has TLS, the probe's handshake failed: {wire.error}")
    if not session.connected:
        if session.failure == "unreachable" and wire.failure is None and wire.offered is not None:
            out.append("the probe reached the server, the session did not")
        lowered = (session.error or "").lower()
        if any(h in lowered for h in _NO_TLS_AT_SERVER) and wire.offered:
            out.append("the session found no TLS at the server, the probe did")
        if (
            session.failure == "tls"
            and plan.tls.verify_chain
            and "certificate verify failed" in lowered
            and wire.chain_verified
        ):
            out.append("the session's chain verification failed, the probe's succeeded")
    return out


def _live_warnings(
    access: DbAccess,
    kea: KeaPlan,
    wire: WireReport,
    session: SessionReport,
    draft: _Draft,
    policy: Policy,
    warn_days: int,
    now: datetime,
) -> None:
    plan = kea.plan
    encrypted = bool(session.connected and session.ssl)

    # The host name, reported on its own (Kea checks it only with ssl-mode verify-full).
    if encrypted and wire.hostname_match is False:
        names = ", ".join(wire.chain[0].sans) if wire.chain else "?"
        text = f"the server's certificate does not name {wire.hostname} ({names or 'no SANs'})" + (
            "" if plan.tls.verify_hostname else "; Kea does not check host names here"
        )
        draft.warnings.append(text)
        if policy.require_verify:
            draft.failures.append(f"--require-verify: {text}")
    if policy.require_verify and draft.verdict is not Verdict.VERIFIED:
        draft.failures.append(f"--require-verify: the verdict is {draft.verdict.value}")

    # Silent cleartext fallback: possible today even though this session is encrypted.
    if encrypted and kea.cleartext_fallback and not session.server_requires_tls:
        if plan.backend.type == "mysql":
            text = (
                "if the server stopped offering TLS, Kea would carry on in cleartext and only "
                "log it (make the server insist: require_secure_transport=ON or REQUIRE SSL)"
            )
        else:
            text = (
                f"sslmode={plan.tls.mode}: if the server stopped offering TLS, libpq would fall "
                "back to cleartext without a word (set ssl-mode, Kea 3.1+, or hostssl rules)"
            )
        draft.warnings.append(text)
        if policy.require_tls:
            draft.failures.append(f"--require-tls: {text}")
    if policy.require_tls and not encrypted:
        draft.failures.append(f"--require-tls: the verdict is {draft.verdict.value}")

    # Client certificates.
    sent = bool(plan.tls.cert_file)
    if encrypted and sent and wire.client_cert_requested is False:
        draft.warnings.append(
            "cert-file is set, but the server did not ask for a client certificate: it is not used"
        )
    accepted = (
        encrypted
        and sent
        and (
            session.client_dn is not None
            if plan.backend.type == "postgresql"
            else wire.client_cert_requested is not False
        )
    )
    if policy.require_client_cert and not accepted:
        why = (
            "no cert-file is used for this session"
            if not sent
            else "the server did not take the client certificate"
        )
        draft.failures.append(f"--require-client-cert: {why}")

    # Protocol versions.
    negotiated = session.version if encrypted else None
    if negotiated and _tls_rank(negotiated) < _TLS_ORDER["TLSv1.2"]:
        draft.warnings.append(f"{negotiated} is deprecated (RFC 8996): use TLS 1.2 or newer")
    if policy.min_tls and encrypted and _tls_rank(negotiated) < _tls_rank(policy.min_tls):
        draft.failures.append(f"--min-tls: the session uses {negotiated}, below {policy.min_tls}")

    # The server's certificate, whatever Kea verifies.
    leaf = wire.server_certificate
    if leaf is not None:
        if wire.chain_verified is False and encrypted and not plan.tls.verify_chain:
            draft.warnings.append(
                f"the server's chain does not verify against trust-anchor "
                f"{wire.trust_anchor}: {wire.verify_error} (Kea does not check it here)"
            )
        if now > leaf.not_after and encrypted:
            draft.warnings.append(f"the server's certificate expired on {leaf.not_after:%Y-%m-%d}")
        elif leaf.not_after - now <= timedelta(days=warn_days) and now <= leaf.not_after:
            draft.warnings.append(f"the server's certificate expires on {leaf.not_after:%Y-%m-%d}")


def decide(
    access: DbAccess,
    kea: KeaPlan,
    wire: WireReport,
    session: SessionReport,
    *,
    policy: Policy | None = None,
    findings: tuple[Finding, ...] | list[Finding] = (),
    warn_days: int = DEFAULT_WARN_DAYS,
    now: datetime | None = None,
) -> TlsResult:
    """One verdict from the two signals, Kea's plan, the file findings and the policy.

    The session decides the verdict (it is what Kea would get); the probe explains it
    (which CA, which certificate, why a handshake failed) and is checked against it.
    """
    policy = policy or Policy()
    now = now or datetime.now(UTC)
    if not session.connected and session.failure != "query":
        draft = _failed_session(kea, wire, session)
    elif session.ssl:
        draft = _encrypted(access, kea, wire)
    elif session.ssl is False:
        draft = _cleartext(access, kea, wire)
    else:  # logged in, but the TLS state could not be read: fall back on the probe
        draft = _Draft(
            Verdict.ENCRYPTED_UNVERIFIED if wire.handshake_ok else Verdict.CLEARTEXT,
            f"the session's TLS state could not be read ({session.error}); the probe "
            + ("negotiated TLS" if wire.handshake_ok else "saw no TLS"),
            Reason.TLS_ERROR,
        )
    _live_warnings(access, kea, wire, session, draft, policy, warn_days, now)
    for finding in findings:
        text = f"{finding.key}: {finding.message}"
        if finding.severity is Severity.ERROR:
            draft.failures.append(text)
        elif finding.severity is Severity.WARNING:
            draft.warnings.append(text)
    disagreements = _compare(kea, wire, session)
    encrypted = bool(session.connected and session.ssl)
    return TlsResult(
        verdict=draft.verdict,
        reason=draft.reason,
        reason_code=draft.code,
        protocol=(session.version or wire.protocol) if encrypted else None,
        cipher=(session.cipher or wire.cipher) if encrypted else None,
        server_certificate=wire.server_certificate,
        wire=wire,
        session=session,
        kea=kea,
        findings=tuple(findings),
        warnings=tuple(dict.fromkeys(draft.warnings)),
        failures=tuple(dict.fromkeys(draft.failures)),
        agreement=not disagreements,
        disagreements=tuple(disagreements),
        target=access.label(),
        source=access.path,
        policy=policy,
    )


def _session_into(box: list[SessionReport], plan: ConnectPlan, via: str) -> None:
    try:
        box.append(check_session(plan, via=via))
    except Exception as exc:  # check_session reports its failures; this is a bug
        box.append(
            SessionReport(
                connected=False, error=f"the session check failed: {exc}", failure="error"
            )
        )


def _probe_into(box: list[WireReport], plan: ConnectPlan, trust_anchor: str | None) -> None:
    try:
        box.append(probe(plan, trust_anchor=trust_anchor))
    except Exception as exc:  # a bug in the probe must not hide the session's answer
        box.append(WireReport(error=f"the wire probe failed: {exc}", failure="error"))


def run(
    access: DbAccess,
    release: ReleaseTuple | None = None,
    policy: Policy | None = None,
    warn_days: int = DEFAULT_WARN_DAYS,
    *,
    env: dict[str, str] | None = None,
    via: str = "auto",
) -> TlsResult:
    """test-tls for one SQL access entry: file checks, Kea's plan, both signals, a verdict.

    ``release`` is the Kea release whose rules apply (None: the newest); ``env`` supplies
    ``PGSSLMODE`` (default: ``os.environ``); ``via`` picks the session check's client (see
    :func:`check_session`). The probe and the session run in two threads.

    Raises:
        SettingsError: the entry cannot be tried at all (not an SQL backend, no name...).
    """
    if access.type not in ("mysql", "postgresql"):
        raise SettingsError(f"test-tls needs a mysql or postgresql entry, got {access.type!r}")
    kea = kea_plan(access, release, env)
    # Both signals wait on the network (and the C client library releases the GIL while it
    # connects), so they run side by side while this thread checks the files.
    wires: list[WireReport] = []
    sessions: list[SessionReport] = []
    workers = [
        threading.Thread(target=_session_into, args=(sessions, kea.plan, via), daemon=True),
        threading.Thread(
            target=_probe_into, args=(wires, kea.plan, access.trust_anchor), daemon=True
        ),
    ]
    for worker in workers:
        worker.start()
    findings = check_tls_files(access, warn_days=warn_days)
    for worker in workers:
        worker.join()
    wire, session = wires[0], sessions[0]
    return decide(access, kea, wire, session, policy=policy, findings=findings, warn_days=warn_days)


# From the worst: the exit code of a run over several backends is that of its worst result.
def worst_exit(results: list[TlsResult]) -> ExitCode:
    """The run's exit code: the worst result in the order every command uses."""
    return errors.worst_exit(r.exit_code for r in results)


def run_all(
    accesses: list[DbAccess],
    release: ReleaseTuple | None,
    policy: Policy,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> list[TlsResult]:
    """test-tls for every access entry, in order."""
    return [run(a, release, policy, warn_days) for a in accesses]
