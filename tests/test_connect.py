"""Kea keys -> connection plan, without connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from keadb_cli.db.plan import DEFAULT_MYSQL_SOCKET, plan_for
from keadb_cli.errors import SettingsError
from keadb_cli.kea.access import DbAccess


def pg(**kw: object) -> DbAccess:
    return DbAccess(type="postgresql", name="kea", user="kea", **kw)  # type: ignore[arg-type]


def my(**kw: object) -> DbAccess:
    return DbAccess(type="mysql", name="kea", user="kea", **kw)  # type: ignore[arg-type]


def test_kea_defaults() -> None:
    plan = plan_for(pg(), env={})
    assert plan.host == "localhost"
    assert plan.port == 5432
    assert plan.connect_timeout == 5.0
    assert plan.libpq_params()["connect_timeout"] == "5"
    assert plan_for(my(host="db1"), env={}).port == 3306


def test_port_zero_means_library_default() -> None:
    assert plan_for(pg(port=0), env={}).port == 5432


def test_an_unset_port_comes_from_the_client_librarys_variable() -> None:
    assert plan_for(pg(), env={"PGPORT": "5433"}).port == 5433
    assert plan_for(pg(port=0), env={"PGPORT": " 5434 "}).port == 5434
    assert plan_for(pg(port=6000), env={"PGPORT": "5433"}).port == 6000  # Kea's port wins
    assert plan_for(my(host="db1"), env={"MYSQL_TCP_PORT": "3307"}).port == 3307
    assert plan_for(my(host="db1"), env={"PGPORT": "3307"}).port == 3306
    for value, fragment in (("5432,5433", "PGPORT is a list of ports"),
                            ("x", "PGPORT must be a port number"),
                            ("70000", "PGPORT must be a port number")):
        with pytest.raises(SettingsError, match=fragment):
            plan_for(pg(), env={"PGPORT": value})


def test_postgresql_sslmode_is_always_explicit() -> None:
    params = plan_for(pg(host="db1"), env={}).libpq_params()
    assert params["sslmode"] == "prefer"
    assert plan_for(pg(host="db1"), env={"PGSSLMODE": "disable"}).tls.mode == "disable"


def test_postgresql_tls_mapping_follows_kea_3_1(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    plan = plan_for(pg(host="db1", trust_anchor=str(ca)), env={})
    assert plan.tls.mode == "verify-ca"
    assert plan.tls.verify_chain and not plan.tls.verify_hostname
    params = plan.libpq_params()
    assert params["sslrootcert"] == str(ca)
    assert params["gssencmode"] == "disable"
    assert plan_for(pg(host="db1", cert_file="c.pem", key_file="k.pem"), env={}).tls.mode == (
        "require"
    )
    full = plan_for(pg(host="db1", trust_anchor=str(ca), ssl_mode="verify-full"), env={})
    assert full.tls.verify_hostname and full.tls.required


def test_postgresql_ca_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="directory"):
        plan_for(pg(host="db1", trust_anchor=str(tmp_path)), env={})


def test_tcp_user_timeout_goes_to_libpq_in_milliseconds() -> None:
    assert plan_for(pg(tcp_user_timeout=7), env={}).libpq_params()["tcp_user_timeout"] == "7000"


def test_mysql_localhost_means_the_unix_socket() -> None:
    plan = plan_for(my(port=3307), env={})
    assert plan.unix_socket == DEFAULT_MYSQL_SOCKET
    assert plan.host is None
    assert plan_for(my(), env={"MYSQL_UNIX_PORT": "/tmp/s"}).unix_socket == "/tmp/s"
    assert plan_for(my(host="127.0.0.1"), env={}).unix_socket is None


def test_mysql_tls_keys_follow_kea(tmp_path: Path) -> None:
    assert not plan_for(my(host="db1"), env={}).tls.use
    plan = plan_for(my(host="db1", trust_anchor=str(tmp_path)), env={})
    assert plan.tls.use and not plan.tls.required
    assert plan.tls.ca_path == str(tmp_path) and plan.tls.ca_file is None
    assert plan.tls.verify_chain and not plan.tls.verify_hostname
    assert plan_for(my(host="db1", cipher_list="AES256-SHA"), env={}).tls.ciphers == "AES256-SHA"


@pytest.mark.parametrize(
    ("access", "match"),
    [
        (DbAccess(type="postgresql"), "database name"),
        (DbAccess(type="sqlite", name="x"), "type"),
        (DbAccess(type="mysql", name="x", port=70000), "port"),
        (DbAccess(type="mysql", name="x", connect_timeout=0), "connect-timeout"),
        (DbAccess(type="mysql", name="x", read_timeout=2**31), "read-timeout"),
    ],
)
def test_bad_entries_are_settings_errors(access: DbAccess, match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        plan_for(access, env={})


def test_password_never_in_repr() -> None:
    plan = plan_for(pg(password="s3cret-pw"), env={})
    assert "s3cret-pw" not in repr(plan)
    assert "s3cret-pw" not in repr(pg(password="s3cret-pw"))
    assert pg(password="s3cret-pw").keywords()["password"] == "***"


def test_postgresql_tls_files_come_from_libpqs_environment(tmp_path: Path) -> None:
    """Kea before 3.1 passes no TLS keyword to libpq: PGSSL* variables configure it."""
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "c.pem", "k.pem"))
    env = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(ca), "PGSSLCERT": str(cert),
           "PGSSLKEY": str(key)}
    plan = plan_for(pg(host="db1"), env=env)
    assert plan.tls.mode == "verify-full" and plan.tls.verify_hostname
    assert (plan.tls.ca_file, plan.tls.cert_file, plan.tls.key_file) == (str(ca), str(cert),
                                                                        str(key))
    params = plan.libpq_params()
    assert params["sslrootcert"] == str(ca) and params["sslcert"] == str(cert)
    # Kea's keys win over the environment, as libpq's keywords win over its variables.
    assert plan_for(pg(host="db1", trust_anchor="/k.pem"), env=env).tls.ca_file == "/k.pem"


def test_postgresql_require_with_a_root_certificate_verifies_the_chain(tmp_path: Path) -> None:
    ca = tmp_path / "root.crt"
    assert not plan_for(pg(host="db1"), env={"PGSSLMODE": "require"}).tls.verify_chain
    plan = plan_for(pg(host="db1"), env={"PGSSLMODE": "require", "PGSSLROOTCERT": str(ca)})
    assert plan.tls.verify_chain and not plan.tls.verify_hostname
    # libpq's default file in ~/.postgresql counts too
    (tmp_path / ".postgresql").mkdir()
    (tmp_path / ".postgresql" / "root.crt").write_text("x")
    plan = plan_for(pg(host="db1"), env={"PGSSLMODE": "require", "HOME": str(tmp_path)})
    assert plan.tls.ca_file == str(tmp_path / ".postgresql" / "root.crt")
    assert plan.tls.verify_chain


def test_postgresql_verify_without_a_root_certificate_is_a_settings_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(SettingsError, match="needs a root certificate"):
        plan_for(pg(host="db1"), env={"PGSSLMODE": "verify-ca", "HOME": str(tmp_path)})
    with pytest.raises(SettingsError, match="needs a root certificate"):
        plan_for(pg(host="db1", ssl_mode="verify-full"), env={"HOME": str(tmp_path)})
