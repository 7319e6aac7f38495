"""The wire probe of ``kea-db test-tls``: the server's own TLS upgrade, then a handshake.

Like ``openssl s_client -starttls postgres|mysql``: open the socket, ask for TLS the way the
protocol does (PostgreSQL SSLRequest; MySQL's handshake with the CLIENT_SSL capability),
then shake hands with the trust-anchor, client certificate and cipher-list. It never logs
in: what the authenticated session really runs on is the session check's job
(:mod:`keadb_cli.commands.test_tls.check`).

The probe reports the negotiated protocol and cipher, the server's certificate chain,
whether that chain verifies against the trust-anchor (the reason when not), whether the
host name matches, and whether the server asked for a client certificate. The protocol
pieces are in :mod:`keadb_cli.commands.test_tls.starttls`; only the standard library is
imported (``cryptography`` only when there is a certificate to describe).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.test_tls import starttls
from keadb_cli.commands.test_tls.files import CertInfo, cert_info_from_der, common_names
from keadb_cli.errors import KeaDbError, UnreachableError

if TYPE_CHECKING:
    import socket
    import ssl

    from keadb_cli.db.plan import ConnectPlan

# TLS handshake message types (RFC 8446 section 4) the probe listens for.
_CERTIFICATE_REQUEST = 13
_CERTIFICATE = 11
_NEW_SESSION_TICKET = 4
_TLS13 = 0x0304
# TLS 1.3 servers judge the client certificate after the client's handshake is done: a
# rejection (an alert) or a session ticket comes within about a round trip. Wait this many
# handshake durations for it, at least _SETTLE_MIN and at most _SETTLE_MAX seconds.
_SETTLE_FACTOR = 4.0
_SETTLE_MIN = 0.05
_SETTLE_MAX = 1.0


class Reason(StrEnum):
    """Why a TLS session is what it is; the machine-readable half of a verdict's reason."""

    # the server's certificate, as the client sees it
    UNKNOWN_CA = "unknown-ca"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    HOSTNAME_MISMATCH = "hostname-mismatch"
    # negotiation
    NO_SHARED_CIPHER = "no-shared-cipher"
    PROTOCOL_VERSION = "protocol-version"
    # the client's certificate, as the server sees it
    CLIENT_CERT_MISSING = "client-cert-missing"
    CLIENT_CERT_REJECTED = "client-cert-rejected"
    # the client's own files
    TLS_FILES = "tls-files"
    TLS_ERROR = "tls-error"
    # no handshake problem
    NO_TLS_OFFERED = "no-tls-offered"
    SERVER_REQUIRES_TLS = "server-requires-tls"
    CHAIN_VERIFIED = "chain-verified"
    NOT_VERIFIED = "not-verified"
    FALLBACK = "cleartext-fallback"
    NO_TLS_KEYS = "no-tls-keys"
    KEYS_IGNORED = "keys-ignored"
    UNIX_SOCKET = "unix-socket"
    UNREACHABLE = "unreachable"
    DENIED = "denied"


# OpenSSL X509_V_ERR_* codes -> Reason.
_VERIFY_CODES = {
    2: Reason.UNKNOWN_CA,
    9: Reason.NOT_YET_VALID,
    10: Reason.EXPIRED,
    18: Reason.UNKNOWN_CA,
    19: Reason.UNKNOWN_CA,
    20: Reason.UNKNOWN_CA,
    21: Reason.UNKNOWN_CA,
    62: Reason.HOSTNAME_MISMATCH,
    64: Reason.HOSTNAME_MISMATCH,
}

# OpenSSL reason names of failed handshakes -> Reason.
_SSL_REASONS = {
    "NO_SHARED_CIPHER": Reason.NO_SHARED_CIPHER,
    "NO_CIPHERS_AVAILABLE": Reason.NO_SHARED_CIPHER,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": Reason.NO_SHARED_CIPHER,
    "NO_PROTOCOLS_AVAILABLE": Reason.PROTOCOL_VERSION,
    "UNSUPPORTED_PROTOCOL": Reason.PROTOCOL_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": Reason.PROTOCOL_VERSION,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": Reason.CLIENT_CERT_MISSING,
    "SSLV3_ALERT_BAD_CERTIFICATE": Reason.CLIENT_CERT_REJECTED,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": Reason.CLIENT_CERT_REJECTED,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": Reason.CLIENT_CERT_REJECTED,
    "TLSV1_ALERT_UNKNOWN_CA": Reason.CLIENT_CERT_REJECTED,
    "TLSV1_ALERT_DECRYPT_ERROR": Reason.CLIENT_CERT_REJECTED,
    "KEY_VALUES_MISMATCH": Reason.TLS_FILES,
}


def reason_for_tls_exception(exc: BaseException) -> Reason:
    """The :class:`Reason` of an ``ssl.SSLError`` (verification or handshake failure)."""
    code = getattr(exc, "verify_code", None)
    if code is not None:
        return _VERIFY_CODES.get(code, Reason.TLS_ERROR)
    name = getattr(exc, "reason", None)
    if isinstance(name, str):
        return _SSL_REASONS.get(name, Reason.TLS_ERROR)
    return Reason.TLS_ERROR


@dataclass(frozen=True)
class WireReport:
    """What the wire probe saw. ``None`` means "not observed" (never got that far)."""

    offered: bool | None = None  # the server agreed to the TLS upgrade
    protocol: str | None = None  # "TLSv1.3"
    cipher: str | None = None
    bits: int | None = None
    chain: tuple[CertInfo, ...] = ()  # as the server sent it, leaf first
    chain_verified: bool | None = None  # None: no trust-anchor to verify against
    verify_error: str | None = None  # "certificate has expired", ...
    hostname: str | None = None  # the name matched against the certificate
    hostname_match: bool | None = None  # None: nothing to match (socket, no certificate)
    client_cert_requested: bool | None = None  # None: could not be observed
    client_cert_sent: bool = False
    # TLS 1.3 only: the server judges the client's certificate after the handshake. True: no
    # alert came (a session ticket, or quiet), False: an alert (see reason), None: not seen.
    client_cert_accepted: bool | None = None
    trust_anchor: str | None = None  # what the chain was verified against
    error: str | None = None  # what stopped the probe, one line
    reason: Reason | None = None  # why it stopped, or why the chain did not verify
    failure: str | None = None  # "unreachable", "denied", "handshake", "settings", "protocol"
    notes: tuple[str, ...] = field(default=())

    @property
    def handshake_ok(self) -> bool:
        return self.protocol is not None

    @property
    def server_certificate(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None

    def to_json(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "bits": self.bits,
            "chain": [c.to_json() for c in self.chain],
            "chain_verified": self.chain_verified,
            "verify_error": self.verify_error,
            "hostname": self.hostname,
            "hostname_match": self.hostname_match,
            "client_cert_requested": self.client_cert_requested,
            "client_cert_sent": self.client_cert_sent,
            "client_cert_accepted": self.client_cert_accepted,
            "trust_anchor": self.trust_anchor,
            "error": self.error,
            "reason": self.reason.value if self.reason else None,
            "failure": self.failure,
            "notes": list(self.notes),
        }


# -- host name matching (RFC 6125 as OpenSSL and libpq apply it) ------------------------------


def _dns_match(host: str, pattern: str) -> bool:
    host, pattern = host.rstrip(".").lower(), pattern.rstrip(".").lower()
    if pattern == host:
        return True
    # A wildcard only as the whole left-most label, never matching a dot, and not for TLDs.
    if not pattern.startswith("*.") or pattern.count(".") < 2:
        return False
    head, _, rest = host.partition(".")
    return bool(head) and rest == pattern[2:]


def hostname_matches(host: str, info: CertInfo, cns: tuple[str, ...] = ()) -> bool:
    """Does ``host`` (a name or an address) match the certificate's names?

    Subject alternative names decide when there are any; only a certificate without SANs
    falls back to the subject's commonName.
    """
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
            host.strip("[]")
        )
    except ValueError:
        address = None
    dns = [s[4:] for s in info.sans if s.startswith("DNS:")]
    ips = []
    for s in info.sans:
        if s.startswith("IP:"):
            try:
                ips.append(ipaddress.ip_address(s[3:]))
            except ValueError:
                continue
    if address is not None:
        if ips or dns:
            return address in ips
        return any(cn.strip() == str(address) for cn in cns)
    if dns or ips:
        return any(_dns_match(host, name) for name in dns)
    return any(_dns_match(host, cn) for cn in cns)


# -- TLS plumbing -----------------------------------------------------------------------------


def _certificate_list(data: bytes, tls13: bool) -> list[bytes]:
    """The DER certificates of a TLS Certificate handshake message (header included)."""
    body = memoryview(data)[4:]
    pos = 0
    if tls13:  # certificate_request_context
        pos = 1 + body[0]
    total = int.from_bytes(body[pos : pos + 3], "big")
    pos += 3
    end = min(pos + total, len(body))
    certs: list[bytes] = []
    while pos + 3 <= end:
        size = int.from_bytes(body[pos : pos + 3], "big")
        pos += 3
        certs.append(bytes(body[pos : pos + size]))
        pos += size
        if tls13:  # per-certificate extensions
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    if pos != end:
        raise ValueError("malformed Certificate message")
    return certs


class _Watcher:
    """Listens to handshake messages: the server's certificates and CertificateRequest."""

    def __init__(self) -> None:
        self.chain_der: list[bytes] = []
        self.client_cert_requested = False
        self.ticket = False
        self.available = False

    def attach(self, ctx: ssl.SSLContext) -> None:
        # SSLContext._msg_callback is CPython's (private, but long-standing) debugging hook;
        # without it only the leaf certificate of a successful handshake is seen.
        try:
            ctx._msg_callback = self._callback  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return
        self.available = True

    def _callback(
        self, conn: Any, direction: str, version: Any, content_type: Any, kind: Any, data: bytes
    ) -> None:
        if direction != "read" or int(content_type) != 22:  # handshake messages we read
            return
        if kind == _CERTIFICATE_REQUEST:
            self.client_cert_requested = True
        elif kind == _NEW_SESSION_TICKET:
            self.ticket = True
        elif kind == _CERTIFICATE and not self.chain_der:
            tls13 = int(version) == _TLS13
            for flavour in (tls13, not tls13):
                try:
                    self.chain_der = _certificate_list(data, flavour)
                    break
                except (ValueError, IndexError):
                    continue


def _context(
    plan: ConnectPlan, ca_file: str | None, ca_path: str | None, verify: bool
) -> ssl.SSLContext:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # matched separately: Kea's rules decide whether it matters
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca_file, capath=ca_path)
        # Self-made database CAs often lack what X509_STRICT insists on; the C clients
        # (libpq, libmariadb) do not set it either.
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    else:
        ctx.verify_mode = ssl.CERT_NONE
    tls = plan.tls
    if tls.cert_file or tls.key_file:
        ctx.load_cert_chain(tls.cert_file or tls.key_file or "", tls.key_file)
    if tls.ciphers:
        ctx.set_ciphers(tls.ciphers)
    return ctx


def _upgrade(sock: socket.socket, plan: ConnectPlan, deadline: float) -> bool:
    """Ask for TLS the protocol's way; True when the server agreed."""
    where = starttls.endpoint(plan)
    if plan.backend.type == "postgresql":
        return starttls.request_tls(sock, where=where, deadline=deadline)

    greeting = starttls.read_greeting(sock, where=where, deadline=deadline)
    if not greeting.offers_tls:
        return False
    starttls.send_ssl_request(sock, greeting, where=where, deadline=deadline)
    return True


@dataclass
class _Attempt:
    offered: bool | None = None
    protocol: str | None = None
    cipher: str | None = None
    bits: int | None = None
    chain_der: list[bytes] = field(default_factory=list)
    requested: bool | None = None
    accepted: bool | None = None  # TLS 1.3: no alert after the client's certificate
    exc: BaseException | None = None
    late: BaseException | None = None  # the alert that rejected the client certificate


def _settle(tls_sock: ssl.SSLSocket, watcher: _Watcher, wait: float) -> BaseException | None:
    """After a TLS 1.3 handshake, wait briefly for the server's word on our certificate:
    a session ticket (accepted) or an alert (rejected: returned). Sends nothing."""
    import select
    import ssl
    import time

    end = time.monotonic() + wait
    tls_sock.setblocking(False)
    while not watcher.ticket:
        try:
            tls_sock.recv(1)
            return None  # application data: the server is past the TLS stage
        except ssl.SSLWantReadError:
            left = end - time.monotonic()
            if left <= 0 or not select.select([tls_sock], [], [], left)[0]:
                return None
        except (ssl.SSLError, OSError) as exc:
            return exc
    return None


def _attempt(
    plan: ConnectPlan, ca_file: str | None, ca_path: str | None, *, verify: bool
) -> _Attempt:
    """One connection: upgrade, handshake, close. Kea-db errors propagate (unreachable...)."""
    result = _Attempt()
    deadline = starttls.deadline_for(plan)
    sock = starttls.open_socket(plan, deadline=deadline)
    try:
        result.offered = _upgrade(sock, plan, deadline)
        if not result.offered:
            return result
        # Like the C clients: the TLS files are read only once the server agreed to TLS.
        ctx = _context(plan, ca_file, ca_path, verify)
        watcher = _Watcher()
        watcher.attach(ctx)
        sni = plan.host if plan.host and not _is_address(plan.host) else None
        sock.settimeout(starttls.remaining(deadline))
        started = time.monotonic()
        try:
            tls_sock = ctx.wrap_socket(sock, server_hostname=sni)
        except OSError as exc:
            result.exc = exc
        else:
            sock = tls_sock
            took = time.monotonic() - started
            result.protocol = tls_sock.version()
            described = tls_sock.cipher()
            if described:
                result.cipher, result.bits = described[0], described[2]
            if not watcher.chain_der:
                leaf = tls_sock.getpeercert(binary_form=True)
                if leaf:
                    watcher.chain_der = [leaf]
            sent = bool(plan.tls.cert_file or plan.tls.key_file)
            if result.protocol == "TLSv1.3" and sent and watcher.client_cert_requested:
                wait = min(max(_SETTLE_FACTOR * took, _SETTLE_MIN), _SETTLE_MAX)
                left = starttls.remaining(deadline)
                result.late = _settle(tls_sock, watcher, min(wait, left or wait))
                result.accepted = result.late is None
        result.chain_der = watcher.chain_der
        result.requested = watcher.client_cert_requested if watcher.available else None
        return result
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _describe(chain_der: list[bytes]) -> tuple[CertInfo, ...]:
    out: list[CertInfo] = []
    for der in chain_der:
        try:
            out.append(cert_info_from_der(der))
        except ValueError:
            continue
    return tuple(out)


def probe(plan: ConnectPlan, *, trust_anchor: str | None = None) -> WireReport:
    """Probe the server of ``plan`` at the wire level; never raises for what it finds.

    The handshake uses ``plan.tls``'s client certificate and cipher-list (what Kea sends).
    The chain is verified against ``trust_anchor`` (a CA file or hashed CA directory; by
    default the plan's own), whatever the plan's mode says, so that the report can say
    whether the chain *would* verify; host names are matched separately. When the chain
    does not verify, a second handshake without verification learns protocol and cipher.

    Raises:
        Nothing for server-side problems: they are in the report's ``error`` / ``reason``.
    """
    anchor = trust_anchor if trust_anchor is not None else plan.tls.ca_file or plan.tls.ca_path
    ca_file = ca_path = None
    if anchor:
        import os

        if os.path.isdir(anchor):
            ca_path = anchor
        else:
            ca_file = anchor
    base = WireReport(
        trust_anchor=anchor or None,
        client_cert_sent=bool(plan.tls.cert_file or plan.tls.key_file),
    )
    if plan.unix_socket and plan.backend.type == "postgresql":
        # libpq never asks for TLS on a Unix socket, and neither does the server offer it.
        return replace(
            base,
            offered=False,
            reason=Reason.UNIX_SOCKET,
            notes=("Unix socket: libpq never uses TLS over it",),
        )
    try:
        first = _attempt(plan, ca_file, ca_path, verify=bool(anchor))
    except KeaDbError as exc:
        return _failed(base, exc)
    except OSError as exc:  # TLS files unreadable or unusable: certs.py tells which and why
        return replace(
            base,
            error=f"cannot use the TLS files: {starttls.tls_reason(exc)}",
            reason=Reason.TLS_FILES,
            failure="settings",
        )
    except ValueError as exc:  # set_ciphers(): no cipher matches
        return replace(base, error=str(exc), reason=Reason.TLS_FILES, failure="settings")
    return _report(plan, base, first, ca_file, ca_path, anchor)


def _failed(base: WireReport, exc: KeaDbError) -> WireReport:
    failure = "unreachable" if isinstance(exc, UnreachableError) else "protocol"
    from keadb_cli.errors import DeniedError

    if isinstance(exc, DeniedError):
        failure = "denied"
    return replace(
        base,
        error=exc.message,
        reason=Reason.DENIED if failure == "denied" else Reason.UNREACHABLE,
        failure=failure,
    )


def _report(
    plan: ConnectPlan,
    base: WireReport,
    first: _Attempt,
    ca_file: str | None,
    ca_path: str | None,
    anchor: str | None,
) -> WireReport:
    report = replace(base, offered=first.offered)
    if not first.offered:
        return replace(report, reason=Reason.NO_TLS_OFFERED)
    chain_der = first.chain_der
    protocol, cipher, bits, requested = first.protocol, first.cipher, first.bits, first.requested
    accepted, late = first.accepted, first.late
    verified: bool | None = True if anchor and first.exc is None else None
    verify_error = None
    error = reason = failure = None
    notes: list[str] = []
    if first.exc is not None:
        exc = first.exc
        code = getattr(exc, "verify_code", None)
        if code is not None:  # the chain does not verify: learn the rest without verifying
            verified = False
            verify_error = str(getattr(exc, "verify_message", "") or exc)
            reason = reason_for_tls_exception(exc)
            try:
                second = _attempt(plan, None, None, verify=False)
            except (KeaDbError, OSError, ValueError) as again:
                notes.append(f"second handshake without verification failed: {again}")
            else:
                if second.exc is None:
                    protocol, cipher, bits = second.protocol, second.cipher, second.bits
                    requested = second.requested if second.requested is not None else requested
                    accepted, late = second.accepted, second.late
                    chain_der = chain_der or second.chain_der
                else:
                    error = f"TLS handshake failed: {starttls.tls_reason(second.exc)}"
                    reason = reason_for_tls_exception(second.exc)
                    failure = "handshake"
        else:
            error = f"TLS handshake failed: {starttls.tls_reason(exc)}"
            reason = reason_for_tls_exception(exc)
            failure = "handshake"
    elif anchor:
        reason = Reason.CHAIN_VERIFIED
    if late is not None:
        why = reason_for_tls_exception(late)
        if why not in (Reason.CLIENT_CERT_MISSING, Reason.CLIENT_CERT_REJECTED):
            why = (
                Reason.CLIENT_CERT_REJECTED
                if base.client_cert_sent
                else (Reason.CLIENT_CERT_MISSING)
            )
        reason, failure = why, "handshake"
        error = (
            "the server ended the session right after the handshake, when it judged the "
            f"client certificate: {starttls.tls_reason(late)}"
        )
    chain = _describe(chain_der)
    host = plan.host
    match: bool | None = None
    if chain and host:
        try:
            cns = common_names(chain_der[0])
        except ValueError:
            cns = ()
        match = hostname_matches(host, chain[0], cns)
    return replace(
        report,
        protocol=protocol,
        cipher=cipher,
        bits=bits,
        chain=chain,
        chain_verified=verified,
        verify_error=verify_error,
        hostname=host,
        hostname_match=match,
        client_cert_requested=requested,
        client_cert_accepted=accepted,
        error=error,
        reason=reason,
        failure=failure,
        notes=tuple(notes),
    )
