"""Offline TLS file checks (keadb_cli.commands.test_tls.files): certificates made in
tmp_path, no server."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from ipaddress import ip_address
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keadb_cli.commands.test_tls.files import (
    CertInfo,
    Finding,
    Severity,
    cert_info_from_der,
    check_tls_files,
    validity_findings,
)
from keadb_cli.commands.test_tls.probe import hostname_matches
from keadb_cli.kea.access import DbAccess

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def pg(**kw: object) -> DbAccess:
    return DbAccess(type="postgresql", name="kea", **kw)  # type: ignore[arg-type]


def my(**kw: object) -> DbAccess:
    return DbAccess(type="mysql", name="kea", **kw)  # type: ignore[arg-type]


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _make_cert(
    directory: Path,
    stem: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool = False,
) -> tuple[Path, Path]:
    """A self-signed EC certificate with chosen dates (trustme does not back-date)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, stem)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(f"{stem}.example"), x509.IPAddress(ip_address("192.0.2.7"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{stem}.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = _write_private(
        directory / f"{stem}.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    """A CA file, a client certificate and its key (0600), all valid now."""
    client = ca.issue_cert("kea@example.org", "kea")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path = tmp_path / "client.crt"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    key_path = _write_private(tmp_path / "client.key", client.private_key_pem.bytes())
    return {"ca": ca_path, "cert": cert_path, "key": key_path}


def _by(findings: list[Finding], severity: Severity) -> list[Finding]:
    return [f for f in findings if f.severity is severity]


def test_good_files_have_no_findings(files: dict[str, Path]) -> None:
    for make in (pg, my):
        access = make(
            trust_anchor=str(files["ca"]), cert_file=str(files["cert"]), key_file=str(files["key"])
        )
        assert check_tls_files(access) == []


def test_no_tls_keys_no_findings() -> None:
    assert check_tls_files(pg()) == []


@pytest.mark.parametrize("key", ["trust_anchor", "cert_file", "key_file"])
def test_missing_file_is_an_error(tmp_path: Path, files: dict[str, Path], key: str) -> None:
    values = {
        "trust_anchor": str(files["ca"]),
        "cert_file": str(files["cert"]),
        "key_file": str(files["key"]),
    }
    values[key] = str(tmp_path / "nope.pem")
    findings = check_tls_files(my(**values))
    errors = _by(findings, Severity.ERROR)
    assert [f.key for f in errors] == [key.replace("_", "-")]
    assert "does not exist" in errors[0].message


def _messages_as_nobody(access: DbAccess) -> list[str]:
    """check_tls_files run by an unprivileged user: root reads every file, so a forked
    child drops to `nobody` (the modules are already imported) and reports back."""
    import json
    import pwd

    if os.geteuid() != 0:
        return [f.message for f in check_tls_files(access)]
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, check, report, leave at once
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            out = json.dumps([f.message for f in check_tls_files(access)]).encode()
            os.write(write_end, out)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    messages: list[str] = json.loads(data)
    return messages


def test_unreadable_file_is_an_error(files: dict[str, Path]) -> None:
    os.chmod(files["ca"], 0)
    messages = _messages_as_nobody(my(trust_anchor=str(files["ca"])))
    assert [m for m in messages if "not readable by this user" in m], messages


def test_not_pem_is_an_error(tmp_path: Path, files: dict[str, Path]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    findings = check_tls_files(my(trust_anchor=str(junk)))
    assert [(f.severity, f.key) for f in findings] == [(Severity.ERROR, "trust-anchor")]
    assert "no PEM certificate" in findings[0].message
    findings = check_tls_files(my(cert_file=str(junk), key_file=str(files["key"])))
    assert any("cert-file" in f.message and "no PEM" in f.message for f in findings)
    findings = check_tls_files(my(cert_file=str(files["cert"]), key_file=str(junk)))
    assert any(f.key == "key-file" and "no PEM private key" in f.message for f in findings)


def test_key_of_another_certificate(tmp_path: Path, ca: trustme.CA, files: dict[str, Path]) -> None:
    other = ca.issue_cert("other.example")
    other_key = _write_private(tmp_path / "other.key", other.private_key_pem.bytes())
    findings = check_tls_files(my(cert_file=str(files["cert"]), key_file=str(other_key)))
    errors = _by(findings, Severity.ERROR)
    assert [f.key for f in errors] == ["key-file"]
    assert "does not belong to the certificate" in errors[0].message


def test_encrypted_key_is_an_error(tmp_path: Path, files: dict[str, Path]) -> None:
    key = serialization.load_pem_private_key(files["key"].read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"not-a-secret"),
    )
    path = _write_private(tmp_path / "enc.key", encrypted)
    findings = check_tls_files(my(cert_file=str(files["cert"]), key_file=str(path)))
    assert any("encrypted" in f.message for f in _by(findings, Severity.ERROR))


def test_cert_without_key(tmp_path: Path, files: dict[str, Path]) -> None:
    findings = check_tls_files(my(cert_file=str(files["cert"])))
    assert [f.key for f in _by(findings, Severity.ERROR)] == ["key-file"]
    # A combined file (certificate + key) is what both C clients fall back to: fine.
    combined = _write_private(
        tmp_path / "combined.pem", files["cert"].read_bytes() + files["key"].read_bytes()
    )
    assert check_tls_files(my(cert_file=str(combined))) == []


def test_key_without_cert(files: dict[str, Path]) -> None:
    findings = check_tls_files(my(key_file=str(files["key"])))
    assert [f.key for f in _by(findings, Severity.ERROR)] == ["cert-file"]


@pytest.mark.parametrize(
    ("mode", "owner_root", "libpq_refuses"),
    [(0o644, False, True), (0o640, False, True), (0o640, True, False), (0o604, True, True)],
)
def test_key_readable_by_others_is_a_warning(
    files: dict[str, Path], mode: int, owner_root: bool, libpq_refuses: bool
) -> None:
    os.chmod(files["key"], mode)
    if owner_root != (os.stat(files["key"]).st_uid == 0):
        if os.geteuid() != 0:
            pytest.skip("only root can give the key file the owner this case needs")
        import pwd

        os.chown(files["key"], 0 if owner_root else pwd.getpwnam("nobody").pw_uid, -1)
    assert owner_root == (os.stat(files["key"]).st_uid == 0)
    for make, backend in ((my, "mysql"), (pg, "postgresql")):
        findings = check_tls_files(make(cert_file=str(files["cert"]), key_file=str(files["key"])))
        warnings = _by(findings, Severity.WARNING)
        assert [f.key for f in warnings] == ["key-file"]
        assert f"mode {mode:04o}" in warnings[0].message
        says_refused = "libpq refuses" in warnings[0].message
        assert says_refused == (libpq_refuses and backend == "postgresql")
        assert not _by(findings, Severity.ERROR)


def test_key_0600_no_warning(files: dict[str, Path]) -> None:
    os.chmod(files["key"], 0o600)
    assert check_tls_files(pg(cert_file=str(files["cert"]), key_file=str(files["key"]))) == []


def test_validity_dates(tmp_path: Path) -> None:
    expired, _ = _make_cert(
        tmp_path,
        "old",
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=1),
        ca=True,
    )
    future, _ = _make_cert(
        tmp_path,
        "new",
        not_before=NOW + dt.timedelta(days=2),
        not_after=NOW + dt.timedelta(days=400),
        ca=True,
    )
    soon, _ = _make_cert(
        tmp_path,
        "soon",
        not_before=NOW - dt.timedelta(days=10),
        not_after=NOW + dt.timedelta(days=12),
        ca=True,
    )
    found = check_tls_files(my(trust_anchor=str(expired)), now=NOW)
    assert any("expired on" in f.message for f in _by(found, Severity.ERROR))
    found = check_tls_files(my(trust_anchor=str(future)), now=NOW)
    assert any("not valid before" in f.message for f in _by(found, Severity.ERROR))
    found = check_tls_files(my(trust_anchor=str(soon)), now=NOW)
    assert [f.severity for f in found] == [Severity.WARNING]
    assert "expires on" in found[0].message and "in 12 days" in found[0].message
    assert check_tls_files(my(trust_anchor=str(soon)), now=NOW, warn_days=5) == []


def test_expired_client_certificate(tmp_path: Path) -> None:
    cert, key = _make_cert(
        tmp_path,
        "client",
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=3),
    )
    found = check_tls_files(pg(cert_file=str(cert), key_file=str(key)), now=NOW)
    assert [(f.severity, f.key) for f in found] == [(Severity.ERROR, "cert-file")]
    assert "client certificate" in found[0].message


def test_leaf_as_trust_anchor_is_a_warning(tmp_path: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("db.example")
    path = tmp_path / "leaf.pem"
    path.write_bytes(leaf.cert_chain_pems[0].bytes())
    found = check_tls_files(my(trust_anchor=str(path)))
    assert [f.severity for f in found] == [Severity.WARNING]
    assert "not a CA certificate" in found[0].message


def _hashed_dir(directory: Path, ca_file: Path) -> Path:
    directory.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shutil.copyfile(ca_file, directory / f"{subject_hash}.0")
    return directory


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_ca_directory(tmp_path: Path, files: dict[str, Path]) -> None:
    directory = _hashed_dir(tmp_path / "ca.d", files["ca"])
    assert check_tls_files(my(trust_anchor=str(directory))) == []
    found = check_tls_files(pg(trust_anchor=str(directory)))
    assert [(f.severity, f.key) for f in found] == [(Severity.ERROR, "trust-anchor")]
    assert "is a directory" in found[0].message and "PostgreSQL" in found[0].message


def test_ca_directory_without_hash_names(tmp_path: Path, files: dict[str, Path]) -> None:
    directory = tmp_path / "plain.d"
    directory.mkdir()
    shutil.copyfile(files["ca"], directory / "ca.pem")
    found = check_tls_files(my(trust_anchor=str(directory)))
    assert [f.severity for f in found] == [Severity.ERROR]
    assert "openssl rehash" in found[0].message and "1 .pem/.crt" in found[0].message


def test_cipher_list(files: dict[str, Path]) -> None:
    assert check_tls_files(my(cipher_list="ECDHE-RSA-AES256-GCM-SHA384")) == []
    found = check_tls_files(my(cipher_list="NO-SUCH-CIPHER"))
    assert [(f.severity, f.key) for f in found] == [(Severity.ERROR, "cipher-list")]
    found = check_tls_files(pg(cipher_list="ECDHE-RSA-AES256-GCM-SHA384"))
    assert [(f.severity, f.key) for f in found] == [(Severity.WARNING, "cipher-list")]
    assert "ignored for PostgreSQL" in found[0].message


def test_findings_serialise() -> None:
    finding = Finding(Severity.WARNING, "key-file", "mode 0644")
    assert finding.to_json() == {"severity": "warning", "key": "key-file", "message": "mode 0644"}


def test_cert_info_and_validity(tmp_path: Path) -> None:
    cert, _ = _make_cert(
        tmp_path, "db", not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9)
    )
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    info = cert_info_from_der(loaded.public_bytes(serialization.Encoding.DER))
    assert info.subject == "CN=db" and info.self_issued
    assert info.sans == ("DNS:db.example", "IP:192.0.2.7")
    data = info.to_json()
    assert data["not_after"].startswith((NOW + dt.timedelta(days=9)).date().isoformat())
    found = validity_findings(info, "x", "server certificate", now=NOW, warn_days=30)
    assert [f.severity for f in found] == [Severity.WARNING]


def _info(sans: tuple[str, ...]) -> CertInfo:
    return CertInfo("CN=x", "CN=ca", sans, NOW, NOW)


@pytest.mark.parametrize(
    ("host", "sans", "cns", "expected"),
    [
        ("db.example.org", ("DNS:db.example.org",), (), True),
        ("DB.Example.org.", ("DNS:db.example.org",), (), True),
        ("db.example.org", ("DNS:*.example.org",), (), True),
        ("a.db.example.org", ("DNS:*.example.org",), (), False),
        ("example.org", ("DNS:*.example.org",), (), False),
        ("db.org", ("DNS:*.org",), (), False),
        ("127.0.0.1", ("DNS:localhost", "IP:127.0.0.1"), (), True),
        ("127.0.0.1", ("DNS:127.0.0.1",), (), False),
        ("::1", ("IP:0:0:0:0:0:0:0:1",), (), True),
        ("db.example.org", ("IP:192.0.2.1",), ("db.example.org",), False),  # SANs win
        ("db.example.org", (), ("db.example.org",), True),  # no SANs: commonName
        ("192.0.2.1", (), ("192.0.2.1",), True),
        ("localhost", ("DNS:db.invalid",), ("localhost",), False),
    ],
)
def test_hostname_matches(
    host: str, sans: tuple[str, ...], cns: tuple[str, ...], expected: bool
) -> None:
    assert hostname_matches(host, _info(sans), cns) is expected


def test_certs_module_imports_no_cryptography() -> None:
    code = (
        "import sys, keadb_cli.commands.test_tls.files, keadb_cli.commands.test_tls.probe,"
        " keadb_cli.commands.test_tls.check;"
        "heavy = ('cryptography', 'psycopg', 'pymysql', 'ssl', 'ctypes');"
        "bad = [m for m in heavy if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
