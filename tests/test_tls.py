"""test-tls core (keadb_cli.commands.test_tls.check, tls_probe) against real throw-away servers.

Every combination of the issue's matrix runs the whole check (file checks, Kea's plan, the
wire probe, the driver session, the verdict) and asserts the verdict, its reason, that the
two signals agree, and that the password appears nowhere. The pure part (Kea parity, the
verdict on made-up signals) needs no server.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from servers import (
    MYSQL_FLAVORS,
    SERVER_FLAVORS,
    FreshDatabase,
    MySQLFamilyServer,
    PostgresServer,
    TlsMaterial,
)

from keadb_cli.commands.test_tls.check import (
    KeaPlan,
    Policy,
    SessionReport,
    TlsResult,
    Verdict,
    decide,
    kea_plan,
    parse_min_tls,
    run,
)
from keadb_cli.commands.test_tls.probe import Reason, WireReport, probe
from keadb_cli.errors import ExitCode
from keadb_cli.kea.access import DbAccess

R = Reason
V = Verdict

Files = Callable[[TlsMaterial], dict[str, Any]]


def _ca(m: TlsMaterial) -> dict[str, Any]:
    return {"trust_anchor": str(m.ca_cert)}


def _other_ca(m: TlsMaterial) -> dict[str, Any]:
    return {"trust_anchor": str(m.other_ca_cert)}


def _ca_dir(m: TlsMaterial) -> dict[str, Any]:
    return {"trust_anchor": str(m.ca_dir)}


def _other_ca_dir(m: TlsMaterial) -> dict[str, Any]:
    return {"trust_anchor": str(m.other_ca_dir)}


def _client(m: TlsMaterial) -> dict[str, Any]:
    return {**_ca(m), "cert_file": str(m.client_cert), "key_file": str(m.client_key)}


def _other_client(m: TlsMaterial) -> dict[str, Any]:
    return {**_ca(m), "cert_file": str(m.other_client_cert), "key_file": str(m.other_client_key)}


def _none(m: TlsMaterial) -> dict[str, Any]:
    return {}


def _with(base: Files, **extra: Any) -> Files:
    return lambda m: {**base(m), **extra}


@dataclass(frozen=True)
class Case:
    id: str
    backend: str
    server: dict[str, Any]
    files: Files
    verdict: Verdict
    reason: Reason
    release: tuple[int, int, int] | None = None
    x509_user: bool = False
    warnings: tuple[str, ...] = ()  # substrings that must appear among the warnings
    session: dict[str, Any] = field(default_factory=dict)  # expected SessionReport fields
    # (verdict, reason) on Oracle MySQL where its answer differs from MariaDB's.
    oracle: tuple[Verdict, Reason] | None = None

    def expected(self, flavor: str) -> tuple[Verdict, Reason]:
        if flavor == "mysql" and self.oracle is not None:
            return self.oracle
        return self.verdict, self.reason


OFF, ON, REQ = {"tls": "off"}, {"tls": "on"}, {"tls": "required"}
EXPIRED = {"tls": "on", "server_cert": "expired"}
WRONG_HOST = {"tls": "on", "server_cert": "wrong-host"}
ONE_CIPHER = {"tls": "on", "ssl_cipher": "ECDHE-RSA-AES256-GCM-SHA384", "tls_version": "TLSv1.2"}

CASES = [
    # -- PostgreSQL, Kea 3.1+ rules unless a release is given ----------------------------------
    Case("pg-off-trust-anchor", "postgresql", OFF, _ca, V.TLS_REFUSED, R.NO_TLS_OFFERED),
    Case(
        "pg-off-prefer",
        "postgresql",
        OFF,
        _with(_ca, ssl_mode="prefer"),
        V.CLEARTEXT,
        R.FALLBACK,
        session={"ssl": False},
    ),
    Case("pg-off-no-keys", "postgresql", OFF, _none, V.CLEARTEXT, R.NO_TLS_KEYS),
    Case("pg-off-kea-2.6", "postgresql", OFF, _ca, V.CLEARTEXT, R.KEYS_IGNORED, (2, 6, 0)),
    Case(
        "pg-on-trust-anchor",
        "postgresql",
        ON,
        _ca,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        session={"ssl": True, "client_dn": None},
    ),
    Case(
        "pg-on-no-keys",
        "postgresql",
        ON,
        _none,
        V.ENCRYPTED_UNVERIFIED,
        R.NO_TLS_KEYS,
        warnings=("fall back to cleartext",),
    ),
    Case(
        "pg-on-require",
        "postgresql",
        ON,
        lambda m: {"ssl_mode": "require"},
        V.ENCRYPTED_UNVERIFIED,
        R.NOT_VERIFIED,
    ),
    Case(
        "pg-on-kea-2.6",
        "postgresql",
        ON,
        _ca,
        V.ENCRYPTED_UNVERIFIED,
        R.KEYS_IGNORED,
        (2, 6, 0),
        warnings=("fall back to cleartext",),
    ),
    Case("pg-on-kea-3.0", "postgresql", ON, _ca, V.ENCRYPTED_UNVERIFIED, R.KEYS_IGNORED, (3, 0, 0)),
    Case("pg-on-kea-3.1", "postgresql", ON, _ca, V.VERIFIED, R.CHAIN_VERIFIED, (3, 1, 0)),
    Case("pg-required-trust-anchor", "postgresql", REQ, _ca, V.VERIFIED, R.CHAIN_VERIFIED),
    Case("pg-required-no-keys", "postgresql", REQ, _none, V.ENCRYPTED_UNVERIFIED, R.NO_TLS_KEYS),
    Case(
        "pg-required-ssl-mode-disable",
        "postgresql",
        REQ,
        lambda m: {"ssl_mode": "disable"},
        V.DENIED,
        R.SERVER_REQUIRES_TLS,
    ),
    Case("pg-other-ca", "postgresql", ON, _other_ca, V.HANDSHAKE_FAILED, R.UNKNOWN_CA),
    Case("pg-ca-directory", "postgresql", ON, _ca_dir, V.HANDSHAKE_FAILED, R.TLS_FILES),
    Case("pg-expired", "postgresql", EXPIRED, _ca, V.HANDSHAKE_FAILED, R.EXPIRED),
    Case(
        "pg-expired-kea-2.6",
        "postgresql",
        EXPIRED,
        _ca,
        V.ENCRYPTED_UNVERIFIED,
        R.KEYS_IGNORED,
        (2, 6, 0),
        warnings=("does not verify against trust-anchor", "certificate expired on"),
    ),
    Case(
        "pg-wrong-host-verify-ca",
        "postgresql",
        WRONG_HOST,
        _ca,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        warnings=("does not name 127.0.0.1",),
    ),
    Case(
        "pg-wrong-host-verify-full",
        "postgresql",
        WRONG_HOST,
        _with(_ca, ssl_mode="verify-full"),
        V.HANDSHAKE_FAILED,
        R.HOSTNAME_MISMATCH,
    ),
    Case(
        "pg-client-cert-required-given",
        "postgresql",
        ON,
        _client,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        x509_user=True,
        session={"ssl": True, "client_dn": "/O=kea-db tests/CN=kea"},
    ),
    Case(
        "pg-client-cert-required-missing",
        "postgresql",
        ON,
        _ca,
        V.HANDSHAKE_FAILED,
        R.CLIENT_CERT_MISSING,
        x509_user=True,
    ),
    Case(
        "pg-client-cert-other-ca",
        "postgresql",
        ON,
        _other_client,
        V.HANDSHAKE_FAILED,
        R.CLIENT_CERT_REJECTED,
        x509_user=True,
    ),
    Case(
        "pg-client-cert-required-kea-2.6",
        "postgresql",
        ON,
        _client,
        V.HANDSHAKE_FAILED,
        R.CLIENT_CERT_MISSING,
        (2, 6, 0),
        x509_user=True,
    ),
    Case(
        "pg-client-cert-not-required",
        "postgresql",
        ON,
        _client,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        session={"client_dn": "/O=kea-db tests/CN=kea"},
    ),
    Case(
        "pg-cipher-list-ignored",
        "postgresql",
        ON,
        _with(_ca, cipher_list="ECDHE-RSA-CHACHA20-POLY1305"),
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        warnings=("cipher-list is ignored for PostgreSQL",),
    ),
    # -- MySQL: each case runs on MariaDB and on Oracle MySQL (see MATRIX) --------------------
    Case(
        "my-off-trust-anchor",
        "mysql",
        OFF,
        _ca,
        V.CLEARTEXT,
        R.FALLBACK,
        session={"ssl": False, "fallback_used": True},
    ),
    Case("my-off-no-keys", "mysql", OFF, _none, V.CLEARTEXT, R.NO_TLS_KEYS),
    Case(
        "my-on-trust-anchor",
        "mysql",
        ON,
        _ca,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        warnings=("carry on in cleartext",),
        session={"ssl": True, "server_requires_tls": False},
    ),
    Case("my-on-no-keys", "mysql", ON, _none, V.CLEARTEXT, R.NO_TLS_KEYS),
    Case(
        "my-on-cipher-only",
        "mysql",
        ON,
        lambda m: {"cipher_list": "HIGH"},
        V.ENCRYPTED_UNVERIFIED,
        R.NOT_VERIFIED,
    ),
    Case(
        "my-required-trust-anchor",
        "mysql",
        REQ,
        _ca,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        session={"ssl": True, "server_requires_tls": True},
    ),
    # MariaDB refuses a cleartext login with "Access denied" (1045); Oracle MySQL says why
    # (3159, "Connections using insecure transport are prohibited").
    Case(
        "my-required-no-keys",
        "mysql",
        REQ,
        _none,
        V.DENIED,
        R.DENIED,
        oracle=(V.DENIED, R.SERVER_REQUIRES_TLS),
    ),
    Case("my-other-ca", "mysql", ON, _other_ca, V.HANDSHAKE_FAILED, R.UNKNOWN_CA),
    Case("my-ca-directory", "mysql", ON, _ca_dir, V.VERIFIED, R.CHAIN_VERIFIED),
    Case("my-other-ca-directory", "mysql", ON, _other_ca_dir, V.HANDSHAKE_FAILED, R.UNKNOWN_CA),
    Case("my-expired", "mysql", EXPIRED, _ca, V.HANDSHAKE_FAILED, R.EXPIRED),
    Case(
        "my-wrong-host",
        "mysql",
        WRONG_HOST,
        _ca,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        warnings=("does not name 127.0.0.1",),
    ),
    Case(
        "my-client-cert-required-given",
        "mysql",
        ON,
        _client,
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        x509_user=True,
    ),
    # REQUIRE X509 refuses with "Access denied", as a wrong password does: DENIED, with the
    # likely reason (the server asked for a certificate and none is configured).
    Case(
        "my-client-cert-required-missing",
        "mysql",
        ON,
        _ca,
        V.DENIED,
        R.CLIENT_CERT_MISSING,
        x509_user=True,
    ),
    Case(
        "my-client-cert-other-ca",
        "mysql",
        ON,
        _other_client,
        V.HANDSHAKE_FAILED,
        R.CLIENT_CERT_REJECTED,
        x509_user=True,
    ),
    Case("my-client-cert-not-required", "mysql", ON, _client, V.VERIFIED, R.CHAIN_VERIFIED),
    Case(
        "my-cipher-match",
        "mysql",
        ONE_CIPHER,
        _with(_ca, cipher_list="ECDHE-RSA-AES256-GCM-SHA384"),
        V.VERIFIED,
        R.CHAIN_VERIFIED,
        session={"version": "TLSv1.2", "cipher": "ECDHE-RSA-AES256-GCM-SHA384"},
    ),
    Case(
        "my-cipher-no-match",
        "mysql",
        ONE_CIPHER,
        _with(_ca, cipher_list="ECDHE-RSA-CHACHA20-POLY1305"),
        V.HANDSHAKE_FAILED,
        R.NO_SHARED_CIPHER,
    ),
    Case("my-kea-2.0", "mysql", ON, _ca, V.CLEARTEXT, R.KEYS_IGNORED, (2, 0, 0)),
]

# (case, server flavour): PostgreSQL cases once, MySQL cases once per MySQL flavour.
MATRIX = [
    pytest.param(c, flavor, id=c.id if flavor == "postgresql" else f"{c.id}-{flavor}")
    for c in CASES
    for flavor in (("postgresql",) if c.backend == "postgresql" else MYSQL_FLAVORS)
]


@pytest.fixture
def server_for(
    pg_server_factory: Callable[..., PostgresServer],
    mysql_server_factory: Callable[..., MySQLFamilyServer],
) -> Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer]:
    def get(flavor: str, config: dict[str, Any]) -> PostgresServer | MySQLFamilyServer:
        """A server of ``flavor``: postgresql, mariadb or mysql (Oracle MySQL)."""
        if flavor == "postgresql":
            return pg_server_factory(**config)
        return mysql_server_factory(**config, flavor=flavor)

    return get


def access_for(db: FreshDatabase, **keys: Any) -> DbAccess:
    return DbAccess(
        type=db.type,
        name=db.name,
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        connect_timeout=5,
        path="Dhcp4.lease-database",
        **keys,
    )


def assert_no_password(result: TlsResult, password: str) -> None:
    dumped = json.dumps(result.to_json())
    assert password not in dumped
    assert password not in repr(result)
    assert password not in result.reason


@pytest.mark.db
@pytest.mark.parametrize("via", ["library", "driver"])
@pytest.mark.parametrize(("case", "flavor"), MATRIX)
def test_matrix(
    case: Case,
    flavor: str,
    via: str,
    server_for: Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    server = server_for(flavor, case.server)
    db = fresh_db_factory(server, require_x509=case.x509_user)
    access = access_for(db, **case.files(tls_material))
    result = run(access, case.release, Policy(), 30, env={}, via=via)
    summary = f"{result.verdict} {result.reason_code}: {result.reason} | {result.to_json()}"
    verdict, reason = case.expected(flavor)
    assert (result.verdict, result.reason_code) == (verdict, reason), summary
    assert result.exit_code == verdict.exit_code
    assert result.agreement, result.disagreements
    for text in case.warnings:
        assert any(text in w for w in result.warnings), (text, result.warnings)
    for name, value in case.session.items():
        assert getattr(result.session, name) == value, (name, result.session)
    assert_no_password(result, db.password)
    data = result.to_json()
    assert {"verdict", "protocol", "cipher", "server_certificate", "session", "warnings"} <= set(
        data
    )
    if result.verdict in (V.VERIFIED, V.ENCRYPTED_UNVERIFIED):
        assert result.protocol and result.cipher
        assert result.protocol == result.wire.protocol == result.session.version
        assert data["server_certificate"]["subject"]


@pytest.mark.db
@pytest.mark.parametrize("backend", SERVER_FLAVORS)
def test_wire_probe_facts(
    backend: str,
    server_for: Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    db = fresh_db_factory(server_for(backend, ON))
    kea = kea_plan(access_for(db, **_client(tls_material)), None, env={})
    wire = probe(kea.plan, trust_anchor=str(tls_material.ca_cert))
    assert wire.offered is True and wire.error is None
    assert wire.protocol in ("TLSv1.2", "TLSv1.3") and wire.cipher and wire.bits
    assert wire.chain_verified is True and wire.reason is R.CHAIN_VERIFIED
    assert wire.hostname == "127.0.0.1" and wire.hostname_match is True
    assert wire.client_cert_requested is True and wire.client_cert_sent is True
    leaf = wire.chain[0]
    assert "CN=localhost" in leaf.subject and "CN=kea-db test CA" in leaf.issuer
    assert "IP:127.0.0.1" in leaf.sans and "DNS:localhost" in leaf.sans
    assert leaf.not_before < leaf.not_after
    # Against another CA: the chain is still shown, with the reason it does not verify.
    other = probe(kea.plan, trust_anchor=str(tls_material.other_ca_cert))
    assert other.chain_verified is False and other.reason is R.UNKNOWN_CA
    assert other.protocol == wire.protocol and other.chain[0].subject == leaf.subject
    # TLS 1.3: the server judges the client certificate after the handshake; the probe
    # waits for its word without sending anything.
    if wire.protocol == "TLSv1.3":
        assert wire.client_cert_accepted is True
        foreign = kea_plan(access_for(db, **_other_client(tls_material)), None, env={})
        refused = probe(foreign.plan, trust_anchor=str(tls_material.ca_cert))
        assert refused.client_cert_accepted is False and refused.failure == "handshake"
        assert refused.reason is R.CLIENT_CERT_REJECTED and "unknown CA" in (refused.error or "")
    # No trust-anchor: nothing to verify against, and nothing is claimed.
    bare = probe(kea_plan(access_for(db), None, env={}).plan)
    assert bare.chain_verified is None and bare.reason is None and bare.chain


@pytest.mark.db
@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_unreachable(backend: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    access = DbAccess(
        type=backend,
        name="kea",
        host="127.0.0.1",
        port=port,
        user="kea",
        password="s3cret-pw",
        trust_anchor="/nonexistent/ca.pem",
        connect_timeout=2,
    )
    result = run(access, None, Policy(), 30, env={})
    assert result.verdict is V.UNREACHABLE and result.reason_code is R.UNREACHABLE
    assert result.exit_code is ExitCode.UNREACHABLE
    assert result.wire.failure == "unreachable"
    assert any("does not exist" in f for f in result.failures)  # the file check still ran
    assert_no_password(result, "s3cret-pw")


@pytest.mark.db
@pytest.mark.parametrize("backend", SERVER_FLAVORS)
def test_wrong_password_is_denied(
    backend: str,
    server_for: Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    db = fresh_db_factory(server_for(backend, ON))
    access = replace(access_for(db, **_client(tls_material)), password="wrong-Pa55word")
    result = run(access, None, Policy(), 30, env={})
    assert result.verdict is V.DENIED and result.reason_code is R.DENIED
    assert result.exit_code is ExitCode.DENIED
    assert_no_password(result, "wrong-Pa55word")


@pytest.mark.db
def test_pgsslmode_applies_without_keys(
    server_for: Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
) -> None:
    db = fresh_db_factory(server_for("postgresql", OFF))
    result = run(access_for(db), None, Policy(), 30, env={"PGSSLMODE": "require"})
    assert result.verdict is V.TLS_REFUSED
    assert result.kea.plan.tls.mode == "require"


@pytest.mark.db
def test_policy_flags(
    server_for: Callable[[str, dict[str, Any]], PostgresServer | MySQLFamilyServer],
    fresh_db_factory: Callable[..., FreshDatabase],
    tls_material: TlsMaterial,
) -> None:
    # VERIFIED (verify-ca), but the certificate is for another host: --require-verify fails.
    db = fresh_db_factory(server_for("postgresql", WRONG_HOST))
    access = access_for(db, **_ca(tls_material))
    relaxed = run(access, None, Policy(), 30, env={})
    assert relaxed.verdict is V.VERIFIED and relaxed.exit_code is ExitCode.OK
    strict = run(access, None, Policy(require_verify=True), 30, env={})
    assert strict.verdict is V.VERIFIED and strict.exit_code is ExitCode.TLS_POLICY
    assert any("--require-verify" in f for f in strict.failures)

    # --require-client-cert: none configured; then one the server took (client_dn).
    db = fresh_db_factory(server_for("postgresql", ON))
    result = run(access_for(db, **_ca(tls_material)), None, Policy(require_client_cert=True), 30)
    assert result.exit_code is ExitCode.TLS_POLICY
    result = run(
        access_for(db, **_client(tls_material)), None, Policy(require_client_cert=True), 30
    )
    assert result.exit_code is ExitCode.OK, result.failures

    # --min-tls 1.3 against a TLS 1.2-only server; --require-tls where Kea may fall back.
    db = fresh_db_factory(server_for("mysql", ONE_CIPHER))
    access = access_for(db, **_ca(tls_material))
    result = run(access, None, Policy(min_tls=parse_min_tls("1.3")), 30)
    assert result.verdict is V.VERIFIED and result.exit_code is ExitCode.TLS_POLICY
    assert any("TLSv1.2, below TLSv1.3" in f for f in result.failures)
    assert run(access, None, Policy(min_tls="TLSv1.2"), 30).exit_code is ExitCode.OK
    result = run(access, None, Policy(require_tls=True), 30)
    assert result.exit_code is ExitCode.TLS_POLICY
    assert any("--require-tls" in f for f in result.failures)
    # The server insists on TLS (require_secure_transport): no fallback is possible.
    db = fresh_db_factory(server_for("mysql", REQ))
    result = run(access_for(db, **_ca(tls_material)), None, Policy(require_tls=True), 30)
    assert result.exit_code is ExitCode.OK, result.failures


# -- pure: Kea parity and the verdict on made-up signals ----------------------------------------


def pg(**kw: Any) -> DbAccess:
    return DbAccess(type="postgresql", name="kea", host="db1", user="kea", **kw)


def my(**kw: Any) -> DbAccess:
    return DbAccess(type="mysql", name="kea", host="db1", user="kea", **kw)


@pytest.mark.parametrize(
    ("access", "release", "mode", "verify", "ignored"),
    [
        (pg(trust_anchor="/ca.pem"), None, "verify-ca", True, ()),
        (pg(trust_anchor="/ca.pem"), (3, 1, 0), "verify-ca", True, ()),
        (pg(cert_file="/c.pem", key_file="/k.pem"), None, "require", False, ()),
        (pg(trust_anchor="/ca.pem", ssl_mode="verify-full"), None, "verify-full", True, ()),
        (pg(trust_anchor="/ca.pem"), (3, 0, 4), "prefer", False, ("trust-anchor",)),
        (pg(trust_anchor="/ca.pem"), (2, 2, 0), "prefer", False, ("trust-anchor",)),
        (pg(cipher_list="HIGH"), None, "require", False, ("cipher-list",)),
        (pg(), None, "prefer", False, ()),
        (my(trust_anchor="/ca.pem"), None, "verify-ca", True, ()),
        (my(trust_anchor="/ca.pem"), (2, 1, 1), "disable", False, ("trust-anchor",)),
        (my(cipher_list="HIGH", ssl_mode="require"), None, "prefer", False, ("ssl-mode",)),
    ],
)
def test_kea_plan(
    access: DbAccess,
    release: tuple[int, int, int] | None,
    mode: str,
    verify: bool,
    ignored: tuple[str, ...],
) -> None:
    kea = kea_plan(access, release, env={})
    assert kea.plan.tls.mode == mode
    assert kea.plan.tls.verify_chain is verify
    assert kea.ignored_keys == ignored
    assert kea.notes
    doc = json.loads(json.dumps(kea.to_json()))
    assert doc["mode"] == mode
    assert doc["verifies_chain"] is verify
    assert doc["ignored_keys"] == list(ignored)
    assert doc["kea_version"] == (None if release is None else "{}.{}.{}".format(*release))


def test_kea_plan_notes() -> None:
    notes = " ".join(kea_plan(pg(trust_anchor="/ca.pem"), (2, 2, 0), env={}).notes)
    assert "does not pass trust-anchor to libpq" in notes and "Debian 12" in notes
    notes = " ".join(kea_plan(pg(trust_anchor="/ca.pem"), (3, 0, 0), env={}).notes)
    assert "silently ignores" in notes
    notes = " ".join(kea_plan(my(trust_anchor="/ca.pem"), (2, 4, 0), env={}).notes)
    assert "DHCPSRV_MYSQL_NO_TLS" in notes
    notes = " ".join(kea_plan(my(trust_anchor="/ca.pem"), None, env={}).notes)
    assert "MYSQL_LB_NO_TLS" in notes and "only logs" in notes
    assert kea_plan(pg(), None, env={"PGSSLMODE": "disable"}).plan.tls.mode == "disable"


def test_kea_plan_postgresql_ca_directory(tmp_path: Any) -> None:
    kea = kea_plan(pg(trust_anchor=str(tmp_path)), None, env={})
    assert kea.plan.tls.mode == "verify-ca" and kea.plan.tls.ca_file == str(tmp_path)
    assert "cannot load a CA directory" in " ".join(kea.notes)


def test_parse_min_tls() -> None:
    assert parse_min_tls("1.2") == parse_min_tls("TLSv1.2") == "TLSv1.2"
    assert parse_min_tls("tls1.3") == "TLSv1.3"
    from keadb_cli.errors import SettingsError

    with pytest.raises(SettingsError):
        parse_min_tls("1.4")


def test_verdict_exit_codes() -> None:
    assert {v: v.exit_code for v in Verdict} == {
        V.VERIFIED: ExitCode.OK,
        V.ENCRYPTED_UNVERIFIED: ExitCode.ENCRYPTED_UNVERIFIED,
        V.CLEARTEXT: ExitCode.CLEARTEXT,
        V.TLS_REFUSED: ExitCode.TLS_REFUSED,
        V.HANDSHAKE_FAILED: ExitCode.HANDSHAKE_FAILED,
        V.UNREACHABLE: ExitCode.UNREACHABLE,
        V.DENIED: ExitCode.DENIED,
    }
    assert V("ENCRYPTED-UNVERIFIED") is V.ENCRYPTED_UNVERIFIED


def _plan(access: DbAccess) -> KeaPlan:
    return kea_plan(access, None, env={})


def test_disagreement_is_reported() -> None:
    access = my(trust_anchor="/ca.pem")
    wire = WireReport(offered=False, reason=R.NO_TLS_OFFERED)
    session = SessionReport(connected=True, ssl=True, version="TLSv1.3", cipher="X")
    result = decide(access, _plan(access), wire, session)
    assert result.verdict is V.VERIFIED  # the session decides
    assert not result.agreement
    assert "no TLS offered, yet the session is encrypted" in result.disagreements[0]

    wire = WireReport(offered=True, protocol="TLSv1.2", cipher="A", chain_verified=True)
    session = SessionReport(connected=True, ssl=True, version="TLSv1.3", cipher="B")
    result = decide(access, _plan(access), wire, session)
    assert [d.split(":")[0] for d in result.disagreements] == ["protocol", "cipher"]


def test_connection_dropped_after_asking_for_the_certificate() -> None:
    access = my(trust_anchor="/ca.pem", cert_file="/c.pem", key_file="/k.pem")
    wire = WireReport(
        offered=True, protocol="TLSv1.3", cipher="A", chain_verified=True,
        client_cert_requested=True, client_cert_sent=True,
    )  # fmt: skip
    lost = SessionReport(
        connected=False, error="Lost connection to server at 'handshake' (2013)",
        failure="unreachable",
    )  # fmt: skip
    result = decide(access, _plan(access), wire, lost)
    assert (result.verdict, result.reason_code) == (V.HANDSHAKE_FAILED, R.CLIENT_CERT_REJECTED)
    # Without a certificate of ours in play, a lost connection is just that.
    bare = my(trust_anchor="/ca.pem")
    result = decide(bare, _plan(bare), replace(wire, client_cert_sent=False), lost)
    assert result.verdict is V.UNREACHABLE


def test_unreadable_session_state_falls_back_on_the_probe() -> None:
    access = pg(trust_anchor="/ca.pem")
    wire = WireReport(offered=True, protocol="TLSv1.3", cipher="A", chain_verified=True)
    session = SessionReport(connected=True, error="permission denied", failure="query")
    result = decide(access, _plan(access), wire, session)
    assert result.verdict is V.ENCRYPTED_UNVERIFIED and result.reason_code is R.TLS_ERROR
    assert "could not be read" in result.reason


def test_result_json_shape() -> None:
    access = pg(trust_anchor="/ca.pem", password="hunter2-secret")
    wire = WireReport(offered=True, protocol="TLSv1.3", cipher="A", chain_verified=True)
    session = SessionReport(connected=True, ssl=True, version="TLSv1.3", cipher="A", bits=256)
    result = decide(access, _plan(access), wire, session)
    data = json.loads(json.dumps(result.to_json()))
    assert data["verdict"] == "VERIFIED" and data["exit_code"] == 0
    assert data["session"]["bits"] == 256 and data["server_certificate"] is None
    assert data["source"] is None and data["target"] == "postgresql kea@db1/kea"
    assert data["kea"]["mode"] == "verify-ca"
    assert "hunter2-secret" not in json.dumps(data) + repr(result)
