"""The verdict of ``kea-db test-tls``: one answer from the wire probe, the session check,
the Kea plan, the certificate file findings and the CI policy flags; disagreements between
the two signals are reported."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keadb_cli.commands.test_tls.files import (
    DEFAULT_WARN_DAYS,
    CertInfo,
    Finding,
    Severity,
)
from keadb_cli.commands.test_tls.policy import _TLS_ORDER, Policy, Verdict
from keadb_cli.commands.test_tls.probe import Reason, WireReport
from keadb_cli.commands.test_tls.session import _NO_TLS_AT_SERVER, SessionReport
from keadb_cli.db.plan import ConnectPlan
from keadb_cli.errors import (
    ExitCode,
)
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.tls_rules import (
    KeaPlan,
    _release_text,
)


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
    days_left: int | None = None  # whole days until the server's certificate expires

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
                {**self.server_certificate.to_json(), "days_left": self.days_left}
                if self.server_certificate else None
            ),
            "session": self.session.to_json(),
            "node": self.session.node.to_json() if self.session.node else None,
            "answered": self.session.answered.to_json() if self.session.answered else None,
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
            draft.warnings.append(
                f"the server's certificate expires on {leaf.not_after:%Y-%m-%d} "
                f"({days_left(leaf.not_after, now)} days left, --warn-days {warn_days}): Kea "
                "fails at its next reconnect after that"
            )


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days from ``now`` until ``not_after`` (negative once expired)."""
    return math.floor((not_after - now).total_seconds() / 86400)


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
        days_left=(days_left(wire.server_certificate.not_after, now)
                   if wire.server_certificate else None),
    )


