"""Offline checks of Kea's TLS files: trust-anchor, cert-file, key-file (and cipher-list).

:func:`check_tls_files` answers, before any connection is made, whether the files a Kea
database entry names can work at all: they exist and are readable, the PEM parses, the key
belongs to the certificate, the certificates are within their validity dates, and a CA
directory is one OpenSSL can use. It never raises for a bad file: every problem is a
:class:`Finding`.

``cryptography`` is imported inside the functions that need it, so importing this module
costs nothing.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from keadb_cli.errors import KeaDbError
from keadb_cli.files import (
    MAX_CA_DIR_ENTRIES,
    MAX_CA_DIR_FILES,
    MAX_TLS_FILE,
    read_bounded,
)
from keadb_cli.kea.access import DbAccess

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

DEFAULT_WARN_DAYS = 30

# OpenSSL's hashed CA directory entries: <8 hex digits>.<n> (certificates), .r<n> (CRLs).
_HASHED_CERT = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")
_HASHED_CRL = re.compile(r"^[0-9a-f]{8}\.r[0-9]+$")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One observation about a TLS file; ``key`` is the Kea keyword it concerns."""

    severity: Severity
    key: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity.value, "key": self.key, "message": self.message}


@dataclass(frozen=True)
class CertInfo:
    """What a person needs to know about one certificate."""

    subject: str
    issuer: str
    sans: tuple[str, ...]  # "DNS:db.example.org", "IP:192.0.2.1", ...
    not_before: datetime  # UTC
    not_after: datetime  # UTC

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": list(self.sans),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


def cert_info(cert: x509.Certificate) -> CertInfo:
    """Subject, issuer, subject alternative names and validity of a certificate."""
    from cryptography import x509

    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        ext = None
    except ValueError:  # a malformed extension: show the rest of the certificate anyway
        ext = None
    if ext is not None:
        sans.extend(f"DNS:{name}" for name in ext.get_values_for_type(x509.DNSName))
        sans.extend(f"IP:{addr}" for addr in ext.get_values_for_type(x509.IPAddress))
        sans.extend(f"email:{m}" for m in ext.get_values_for_type(x509.RFC822Name))
        sans.extend(f"URI:{u}" for u in ext.get_values_for_type(x509.UniformResourceIdentifier))
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=tuple(sans),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def cert_info_from_der(der: bytes) -> CertInfo:
    """:func:`cert_info` of a DER-encoded certificate.

    Raises:
        ValueError: the bytes are not a certificate.
    """
    from cryptography import x509

    _quiet_cryptography()
    return cert_info(x509.load_der_x509_certificate(der))


def common_names(der: bytes) -> tuple[str, ...]:
    """The subject's commonName values of a DER certificate (for host name matching)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def validity_findings(
    info: CertInfo, key: str, what: str, *, now: datetime, warn_days: int
) -> list[Finding]:
    """Expired / not yet valid (errors) and expiring within ``warn_days`` (a warning)."""
    if now < info.not_before:
        return [
            Finding(
                Severity.ERROR,
                key,
                f"{what} ({info.subject}) is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC",
            )
        ]
    if now > info.not_after:
        return [
            Finding(
                Severity.ERROR,
                key,
                f"{what} ({info.subject}) expired on {info.not_after:%Y-%m-%d %H:%M} UTC",
            )
        ]
    left = info.not_after - now
    if left <= timedelta(days=warn_days):
        return [
            Finding(
                Severity.WARNING,
                key,
                f"{what} ({info.subject}) expires on {info.not_after:%Y-%m-%d} "
                f"(in {left.days} days)",
            )
        ]
    return []


class _FileRefused(KeaDbError):
    """A TLS file that cannot be read; it becomes a finding, never leaves this module."""


def _read(path: str, key: str, findings: list[Finding]) -> bytes | None:
    """The file's bytes, or None with an error finding saying why not.

    A TLS file is hostile input (:func:`keadb_cli.files.read_bounded`): a regular file of
    at most :data:`~keadb_cli.files.MAX_TLS_FILE` bytes; a FIFO, a device or a huge file
    is a finding, never a wait or a memory error.
    """
    try:
        return read_bounded(path, what=key, limit=MAX_TLS_FILE, error=_FileRefused)
    except _FileRefused as err:
        findings.append(Finding(Severity.ERROR, key, err.message))
    return None


def _quiet_cryptography() -> None:
    """Certificates in the wild (old CA bundles) make cryptography warn about its future;
    that is not the operator's business here."""
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning

    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)


def _load_certs(data: bytes) -> list[x509.Certificate]:
    from cryptography import x509

    _quiet_cryptography()
    try:
        return list(x509.load_pem_x509_certificates(data))
    except ValueError:
        return []


def _load_key(data: bytes) -> tuple[PrivateKeyTypes | None, str]:
    """The private key in PEM ``data`` (None and a reason when there is none usable)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if b"PRIVATE KEY-----" not in data:
        return None, "no PEM private key in it"
    try:
        return serialization.load_pem_private_key(data, password=None), ""
    except TypeError:
        return None, "the private key is encrypted; Kea has no way to give a passphrase"
    except (ValueError, UnsupportedAlgorithm) as err:
        return None, f"the private key does not load: {err}"


def _public_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _ca_validity(
    key: str, path: str, infos: list[CertInfo], *, now: datetime, warn_days: int
) -> list[Finding]:
    """Validity of the CAs in a trust-anchor file or hashed directory.

    One CA: its own findings. Several (a bundle): only the CA that issued the server's chain
    matters, and the probe says whether the chain verifies, so stale members are one
    warning; it is an error only when none is valid now.
    """
    out: list[Finding] = []
    stale: list[str] = []
    usable = 0
    for info in infos:
        problems = validity_findings(info, key, "CA certificate", now=now, warn_days=warn_days)
        valid = not any(p.severity is Severity.ERROR for p in problems)
        usable += valid
        if len(infos) == 1:
            out.extend(problems)
        elif not valid:
            stale.append(info.subject)
    if stale and usable:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                f"{key} {path}: {len(stale)} of {len(infos)} CA certificates are expired or "
                f"not yet valid (e.g. {stale[0]}); they cannot verify a server",
            )
        )
    if usable == 0:
        out.append(
            Finding(Severity.ERROR, key, f"{key} {path}: no certificate in it is valid now")
        )
    return out


def _check_anchor_file(path: str, now: datetime, warn_days: int, findings: list[Finding]) -> None:
    key = "trust-anchor"
    data = _read(path, key, findings)
    if data is None:
        return
    certs = _load_certs(data)
    if not certs:
        findings.append(Finding(Severity.ERROR, key, f"{key} {path} holds no PEM certificate"))
        return
    infos = [cert_info(cert) for cert in certs]
    for cert, info in zip(certs, infos, strict=True):
        if not _is_ca(cert) and not info.self_issued:
            findings.append(
                Finding(
                    Severity.WARNING,
                    key,
                    f"{key} {path}: {info.subject} is not a CA certificate; a chain can "
                    "only verify against the CA that issued the server's certificate",
                )
            )
    findings.extend(_ca_validity(key, path, infos, now=now, warn_days=warn_days))


def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _check_anchor_dir(
    path: str, backend: str, now: datetime, warn_days: int, findings: list[Finding]
) -> None:
    key = "trust-anchor"
    if backend == "postgresql":
        # libpq passes sslrootcert to SSL_CTX_load_verify_locations as a file only.
        findings.append(
            Finding(
                Severity.ERROR,
                key,
                f"{key} {path} is a directory: MySQL uses it as a CA path, but PostgreSQL "
                "(libpq sslrootcert) needs a CA file; point trust-anchor at a PEM file",
            )
        )
        return
    try:
        names, complete = _list_dir(path)
    except PermissionError:
        findings.append(Finding(Severity.ERROR, key, f"{key} {path} is not readable by this user"))
        return
    except OSError as err:
        findings.append(
            Finding(Severity.ERROR, key, f"{key} {path} cannot be read: {err.strerror}")
        )
        return
    if not complete:
        findings.append(
            Finding(
                Severity.WARNING,
                key,
                f"{key} {path} holds more than {MAX_CA_DIR_ENTRIES} entries; only the first "
                f"{MAX_CA_DIR_ENTRIES} listed were looked at",
            )
        )
    hashed = [n for n in names if _HASHED_CERT.match(n)]
    if not hashed:
        pem = [n for n in names if n.endswith((".pem", ".crt"))]
        hint = f" ({len(pem)} .pem/.crt files are there)" if pem else ""
        findings.append(
            Finding(
                Severity.ERROR,
                key,
                f"{key} {path} has no hash-named certificates{hint}: OpenSSL looks CAs up "
                "by subject hash; run `openssl rehash` on it",
            )
        )
        return
    if len(hashed) > MAX_CA_DIR_FILES:
        findings.append(
            Finding(
                Severity.WARNING,
                key,
                f"{key} {path} holds {len(hashed)} hash-named certificates; only the first "
                f"{MAX_CA_DIR_FILES} were checked",
            )
        )
        hashed = hashed[:MAX_CA_DIR_FILES]
    infos: list[CertInfo] = []
    for name in hashed:
        full = os.path.join(path, name)
        data = _read(full, key, findings)
        if data is None:
            continue
        certs = _load_certs(data)
        if not certs:
            findings.append(Finding(Severity.ERROR, key, f"{key} {full} holds no PEM certificate"))
            continue
        infos.append(cert_info(certs[0]))
    findings.extend(_ca_validity(key, path, infos, now=now, warn_days=warn_days))
    crls = [n for n in names if _HASHED_CRL.match(n)]
    if crls:
        findings.append(
            Finding(
                Severity.INFO,
                key,
                f"{key} {path} holds {len(crls)} CRL file(s); Kea turns no CRL checking on, "
                "so they are not consulted",
            )
        )


def _list_dir(path: str) -> tuple[list[str], bool]:
    """The sorted names in a directory, at most :data:`MAX_CA_DIR_ENTRIES` of them, and
    whether that is all of them.

    Raises:
        OSError: the directory cannot be listed.
    """
    names: list[str] = []
    with os.scandir(path) as entries:
        for entry in entries:
            if len(names) >= MAX_CA_DIR_ENTRIES:
                return sorted(names), False
            names.append(entry.name)
    return sorted(names), True


def _key_mode_findings(path: str, backend: str, findings: list[Finding]) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    message = f"key-file {path} is readable by group or others (mode {mode:04o}): `chmod 600` it"
    # libpq's own rule (fe-secure-openssl.c): 0600 or less, or 0640 or less when root owns it.
    if backend == "postgresql":
        libpq_refuses = (
            mode & (stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO)
            if st.st_uid == 0
            else mode & (stat.S_IRWXG | stat.S_IRWXO)
        )
        if libpq_refuses:
            message += (
                "; libpq refuses such a key (it wants 0600, or 0640 when root owns it), "
                "so Kea 3.1+ cannot connect with it"
            )
    findings.append(Finding(Severity.WARNING, "key-file", message))


def _check_client_pair(
    access: DbAccess, now: datetime, warn_days: int, findings: list[Finding]
) -> None:
    cert_path, key_path = access.cert_file, access.key_file
    backend = access.type or ""
    leaf = None
    cert_data = None
    if cert_path:
        cert_data = _read(cert_path, "cert-file", findings)
        if cert_data is not None:
            certs = _load_certs(cert_data)
            if not certs:
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "cert-file",
                        f"cert-file {cert_path} holds no PEM certificate",
                    )
                )
            else:
                leaf = certs[0]
                findings.extend(
                    validity_findings(
                        cert_info(leaf),
                        "cert-file",
                        "client certificate",
                        now=now,
                        warn_days=warn_days,
                    )
                )
    key_obj = None
    if key_path:
        key_data = _read(key_path, "key-file", findings)
        if key_data is not None:
            key_obj, why = _load_key(key_data)
            if key_obj is None:
                findings.append(Finding(Severity.ERROR, "key-file", f"key-file {key_path}: {why}"))
            _key_mode_findings(key_path, backend, findings)
    elif cert_path and cert_data is not None:
        # Both OpenSSL-based clients fall back to reading the key from the cert file.
        key_obj, _ = _load_key(cert_data)
        if key_obj is None:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "key-file",
                    f"cert-file {cert_path} is set without key-file and holds no private "
                    "key: the client certificate cannot be used",
                )
            )
        else:
            _key_mode_findings(cert_path, backend, findings)
    if key_path and not cert_path:
        findings.append(
            Finding(
                Severity.ERROR,
                "cert-file",
                "key-file is set without cert-file: no client certificate will be sent",
            )
        )
    if leaf is not None and key_obj is not None:
        try:
            matches = _public_der(leaf.public_key()) == _public_der(key_obj.public_key())
        except Exception:  # an exotic key type cryptography cannot serialise
            matches = True
        if not matches:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "key-file",
                    f"key-file {key_path or cert_path} does not belong to the certificate "
                    f"in cert-file {cert_path}",
                )
            )


def _check_cipher_list(access: DbAccess, findings: list[Finding]) -> None:
    if not access.cipher_list:
        return
    if access.type == "postgresql":
        findings.append(
            Finding(
                Severity.WARNING,
                "cipher-list",
                "cipher-list is ignored for PostgreSQL: Kea passes it nowhere and libpq has "
                "no cipher option (the server's ssl_ciphers decides)",
            )
        )
        return
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(access.cipher_list)
    except ssl.SSLError:
        findings.append(
            Finding(
                Severity.ERROR,
                "cipher-list",
                f"cipher-list {access.cipher_list!r} matches no cipher this OpenSSL knows",
            )
        )


def check_tls_files(
    access: DbAccess, *, warn_days: int = DEFAULT_WARN_DAYS, now: datetime | None = None
) -> list[Finding]:
    """Check the TLS files of one access entry without connecting.

    Errors: a file is missing or unreadable, no PEM in it, an encrypted or foreign key, a
    certificate that is expired or not yet valid, a CA directory given to PostgreSQL.
    Warnings: a certificate expiring within ``warn_days``, a key readable by group or
    others, a cipher-list PostgreSQL ignores. Never raises for a bad file.
    """
    now = now or datetime.now(UTC)
    backend = access.type or ""
    findings: list[Finding] = []
    if access.trust_anchor:
        if os.path.isdir(access.trust_anchor):
            _check_anchor_dir(access.trust_anchor, backend, now, warn_days, findings)
        else:
            _check_anchor_file(access.trust_anchor, now, warn_days, findings)
    if access.cert_file or access.key_file:
        _check_client_pair(access, now, warn_days, findings)
    _check_cipher_list(access, findings)
    return findings
