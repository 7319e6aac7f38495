"""keadb_cli.kea.validate: Kea's rules for database maps, per release."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from keadb_cli.errors import ConfigError, ExitCode
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.config import loads
from keadb_cli.kea.validate import (
    DEFAULT_PASSWORDS,
    Finding,
    check,
    known_keywords,
    read_password_file,
    to_access,
    validate,
)

Release = tuple[int, int, int]
MY: dict[str, Any] = {"type": "mysql", "name": "kea"}
PG: dict[str, Any] = {"type": "postgresql", "name": "kea"}
MEM: dict[str, Any] = {"type": "memfile"}


def errors(entry: dict[str, Any], release: Release | None = None) -> list[str]:
    return [f.message for f in validate(entry, release=release) if f.severity == "error"]


def warnings(entry: dict[str, Any], release: Release | None = None) -> list[str]:
    return [f.message for f in validate(entry, release=release) if f.severity == "warning"]


def test_good_maps() -> None:
    full_mysql = {**MY, "host": "db", "port": 3306, "user": "kea", "password": "s3cret",
                  "connect-timeout": 10, "read-timeout": 5, "write-timeout": 5,
                  "readonly": True, "trust-anchor": "ca", "cert-file": "c", "key-file": "k",
                  "cipher-list": "AES", "on-fail": "serve-retry-exit",
                  "retry-on-startup": True, "max-reconnect-tries": 3,
                  "reconnect-wait-time": 100}
    assert validate(full_mysql) == []
    full_pg = {**PG, "port": 0, "tcp-user-timeout": 10, "ssl-mode": "verify-ca",
               "trust-anchor": "ca"}
    assert validate(full_pg) == []
    assert validate({**MEM, "persist": True, "lfc-interval": 3600, "max-row-errors": 10,
                     "name": "/tmp/leases.csv"}) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("port", "3306", "'port' must be an integer, not a string"),
        ("port", 3306.0, "'port' must be an integer, not a floating-point number"),
        ("port", True, "'port' must be an integer, not a boolean"),
        ("connect-timeout", None, "'connect-timeout' must be an integer, not null"),
        ("readonly", "true", "'readonly' must be true or false, not a string"),
        ("readonly", 1, "'readonly' must be true or false, not an integer"),
        ("retry-on-startup", [], "'retry-on-startup' must be true or false, not a list"),
        ("host", 5, "'host' must be a string, not an integer"),
        ("user", {}, "'user' must be a string, not a map"),
        ("password", 1234, "'password' must be a string, not an integer"),
        ("on-fail", "retry", "'on-fail' must be one of stop-retry-exit, serve-retry-exit, "
                             "serve-retry-continue, not 'retry'"),
        ("on-fail", "STOP-RETRY-EXIT", "'on-fail' must be one of"),
        ("ssl-mode", "allow", "'ssl-mode' must be one of disable, prefer, require, verify-ca, "
                              "verify-full, not 'allow'"),
    ],
)
def test_value_types(key: str, value: Any, message: str) -> None:
    base = PG if key == "ssl-mode" else MY
    found = errors({**base, key: value})
    assert len(found) == 1 and found[0].startswith(message)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("port", -1, "'port' -1 is out of range 0..65535"),
        ("port", 65536, "'port' 65536 is out of range 0..65535"),
        ("lfc-interval", 2**32, "'lfc-interval' 4294967296 is out of range 0..4294967295"),
        ("connect-timeout", -5, "'connect-timeout' -5 is out of range 0..4294967295"),
        ("read-timeout", 2**32, "'read-timeout' 4294967296 is out of range"),
        ("write-timeout", -1, "'write-timeout' -1 is out of range"),
        ("max-row-errors", -1, "'max-row-errors' -1 is out of range"),
        ("max-reconnect-tries", -1, "'max-reconnect-tries' must not be less than 0, not -1"),
        ("reconnect-wait-time", 2**32, "'reconnect-wait-time' 4294967296 is out of range"),
    ],
)
def test_ranges(key: str, value: int, message: str) -> None:
    found = errors({**MY, key: value})
    assert len(found) == 1 and found[0].startswith(message)


def test_range_edges() -> None:
    assert errors({**MY, "port": 65535, "lfc-interval": 2**32 - 1, "max-row-errors": 0,
                   "max-reconnect-tries": 2**62, "reconnect-wait-time": 2**32 - 1}) == []


def test_backend_only_timeouts() -> None:
    assert errors({**PG, "read-timeout": 1}) == [
        "'read-timeout' is only supported by the mysql backend, not postgresql"]
    assert errors({**MEM, "write-timeout": 1}) == [
        "'write-timeout' is only supported by the mysql backend, not memfile"]
    assert errors({**MY, "tcp-user-timeout": 1}) == [
        "'tcp-user-timeout' is only supported by the postgresql backend, not mysql"]
    assert errors({**PG, "read-timeout": 0, "write-timeout": 0}) == []  # 0 means not set
    assert errors({**MY, "tcp-user-timeout": 0}) == []


def test_open_time_checks() -> None:
    assert errors({**MY, "connect-timeout": 0}) == [
        "'connect-timeout' must be 1..2147483647 when Kea opens the connection, not 0"]
    assert errors({**PG, "connect-timeout": 2**31}) == [
        "'connect-timeout' must be 1..2147483647 when Kea opens the connection, "
        "not 2147483648"]
    assert errors({**MY, "read-timeout": 2**31}) == [
        "'read-timeout' must be at most 2147483647 when Kea opens the connection, "
        "not 2147483648"]
    assert errors({**PG, "tcp-user-timeout": 2**31}) != []
    assert errors({**MEM, "connect-timeout": 0}) == []  # memfile does not connect
    assert errors({"type": "mysql"}) == [
        "missing 'name': Kea needs the MySQL database name to connect"]
    assert errors({"type": "memfile"}) == []


def test_type() -> None:
    assert errors({"name": "kea"}) == ["missing 'type': Kea requires it in every database map"]
    assert errors({"type": "MySQL", "name": "kea"}) == [
        "unknown database type 'MySQL': expected memfile, mysql or postgresql"]
    assert errors({"type": "cql", "name": "kea"}, (2, 1, 5)) == [
        "unknown database type 'cql': expected memfile, mysql or postgresql"]
    assert errors({"type": "cql", "keyspace": "kea", "contact-points": "a,b",
                   "tcp-nodelay": True, "request-timeout": 10}, (2, 0, 0)) == []
    assert errors({"type": 3}) == ["'type' must be a string, not an integer"]


def test_unknown_keywords() -> None:
    assert errors({**MY, "database": "kea"}) == [
        "unknown keyword 'database' in a database map"]
    assert errors({**MY, "comment": "x", "user-context": {}}) == [
        "unknown keyword 'comment' in a database map: Kea does not accept comments or user "
        "context in database maps",
        "unknown keyword 'user-context' in a database map: Kea does not accept comments or "
        "user context in database maps",
    ]
    assert errors({**MY, "keyspace": "kea"}) == [
        "'keyspace' is not known to the newest Kea: it was removed after Kea 2.1.4"]


@pytest.mark.parametrize(
    ("keyword", "value", "before", "first"),
    [
        ("on-fail", "stop-retry-exit", (1, 9, 5), (1, 9, 6)),
        ("trust-anchor", "ca", (2, 1, 1), (2, 1, 2)),
        ("cert-file", "c", (2, 1, 1), (2, 1, 2)),
        ("key-file", "k", (2, 1, 1), (2, 1, 2)),
        ("cipher-list", "AES", (2, 1, 1), (2, 1, 2)),
        ("read-timeout", 5, (2, 2, 0), (2, 2, 1)),  # backported to 2.2.1
        ("read-timeout", 5, (2, 3, 3), (2, 3, 4)),  # 2.3.0-2.3.3 branched before
        ("write-timeout", 5, (2, 3, 0), (2, 3, 4)),
        ("retry-on-startup", False, (2, 5, 4), (2, 5, 5)),
        ("retry-on-startup", False, (2, 4, 1), (2, 6, 0)),
        ("password-file", "/etc/kea/db-password", (3, 3, 0), (3, 3, 1)),
    ],
)
def test_keyword_history_mysql(keyword: str, value: Any, before: Release,
                               first: Release) -> None:
    entry = {**MY, keyword: value}
    got = errors(entry, before)
    assert len(got) == 1 and got[0].startswith(f"'{keyword}' is not known to Kea "
                                               "{}.{}.{}: it needs Kea".format(*before))
    assert errors(entry, first) == []
    assert errors(entry, None) == []


def test_tcp_user_timeout_history() -> None:
    assert errors({**PG, "tcp-user-timeout": 5}, (2, 2, 0)) != []
    assert errors({**PG, "tcp-user-timeout": 5}, (2, 2, 1)) == []
    assert errors({**PG, "tcp-user-timeout": 5}, (2, 4, 0)) == []


def test_ssl_mode_history() -> None:
    assert errors({**PG, "ssl-mode": "require"}, (3, 0, 4)) == [
        "'ssl-mode' is not known to Kea 3.0.4: it needs Kea 3.1.0 or later"]
    assert errors({**PG, "ssl-mode": "require"}, (3, 1, 0)) == []
    assert errors({**MY, "ssl-mode": "require"}, (2, 6, 0)) != []


def test_known_keywords() -> None:
    assert known_keywords((2, 2, 0)) == [
        "type", "user", "password", "host", "port", "name", "persist", "lfc-interval",
        "readonly", "connect-timeout", "max-reconnect-tries", "reconnect-wait-time", "on-fail",
        "max-row-errors", "trust-anchor", "cert-file", "key-file", "cipher-list"]
    newest = known_keywords()
    assert "password-file" in newest and "ssl-mode" in newest and "keyspace" not in newest
    assert "keyspace" in known_keywords((2, 1, 4))


def test_ignored_keywords_are_warnings() -> None:
    assert warnings({**PG, "cipher-list": "AES"}) == [
        "'cipher-list' is ignored by Kea for PostgreSQL"]
    assert warnings({**MY, "ssl-mode": "require"}) == ["'ssl-mode' is ignored by Kea for MySQL"]
    assert warnings({**PG, "trust-anchor": "ca", "cert-file": "c"}, (3, 0, 0)) == [
        "'trust-anchor' is accepted but not used for PostgreSQL before Kea 3.1.0 "
        "(Kea 3.0.0): libpq defaults apply",
        "'cert-file' is accepted but not used for PostgreSQL before Kea 3.1.0 (Kea 3.0.0): "
        "libpq defaults apply",
    ]
    assert warnings({**PG, "trust-anchor": "ca"}, (3, 1, 0)) == []
    assert warnings({**MY, "trust-anchor": "ca"}, (2, 2, 0)) == []
    assert warnings({**MY, "lfc-interval": 10, "persist": False}) == [
        "'persist' applies to memfile only; Kea ignores it for MySQL",
        "'lfc-interval' applies to memfile only; Kea ignores it for MySQL"]
    assert errors({**PG, "cipher-list": "AES"}) == []


@pytest.mark.parametrize("password", sorted(DEFAULT_PASSWORDS))
def test_default_passwords(password: str) -> None:
    entry = {**MY, "password": password}
    assert errors(entry, (2, 7, 5)) == []
    assert errors(entry, (2, 2, 0)) == []
    for release in ((2, 7, 6), (3, 0, 0), None):
        found = errors(entry, release)
        assert len(found) == 1 and "refuses Kea's built-in default passwords" in found[0]
    assert errors({**MEM, "password": password}) == []  # memfile does not connect
    assert errors({**MY, "password": password + "x"}) == []


def test_findings_order_and_locations() -> None:
    text = ('{"Dhcp4": {"lease-database": {\n'
            '  "type": "postgresql",\n'
            '  "port": 99999,\n'
            '  "cipher-list": "AES",\n'
            '  "bogus": 1,\n'
            '  "read-timeout": "5"\n'
            "}}}\n")
    config = loads(text, name="v.conf")
    entry = config["Dhcp4"]["lease-database"]
    found = validate(entry, config=config)
    assert [(f.severity, f.keyword, f.location) for f in found] == [
        ("error", "bogus", "v.conf:5:3"),  # grammar problems first, in file order
        ("error", "read-timeout", "v.conf:6:19"),
        ("error", "port", "v.conf:3:11"),  # then DbAccessParser's checks
        ("error", None, "v.conf:1:30"),  # then what the connection refuses: no name
        ("warning", "cipher-list", "v.conf:4:3"),
    ]
    assert str(found[0]) == "v.conf:5:3: unknown keyword 'bogus' in a database map"
    with pytest.raises(ConfigError) as info:
        check(entry, config=config, label="Dhcp4.lease-database")
    assert info.value.exit_code == ExitCode.CONFIG
    assert info.value.message == ("v.conf:5:3: Dhcp4.lease-database: unknown keyword 'bogus' "
                                  "in a database map")


def test_check_returns_warnings() -> None:
    assert check({**PG, "cipher-list": "AES"}) == [
        Finding("warning", "cipher-list", "'cipher-list' is ignored by Kea for PostgreSQL")]
    with pytest.raises(ConfigError, match=r"^'port' 70000 is out of range 0\.\.65535$"):
        check({**MY, "port": 70000})


def test_messages_never_show_passwords(tmp_path: Path) -> None:
    secret = "pa55-w0rd with spaces"
    entries = [
        {"type": "mysql", "password": secret},
        {"type": "mysql", "name": "kea", "password": secret, "password-file": "x"},
        {"type": "bogus", "password": secret, "user": secret, "host": secret},
        {"password": secret, "port": "x"},
    ]
    for entry in entries:
        for release in (None, (2, 2, 0), (3, 3, 0)):
            for finding in validate(entry, release=release):
                assert secret not in str(finding) and secret not in repr(finding)


# -- conversion ---------------------------------------------------------------------------


def test_to_access() -> None:
    entry = {"type": "mysql", "name": "kea", "host": "db", "port": 3306, "user": "kea",
             "password": "s3cret", "connect-timeout": 10, "read-timeout": 5,
             "write-timeout": 6, "readonly": True, "trust-anchor": "ca", "cert-file": "c",
             "key-file": "k", "cipher-list": "AES", "on-fail": "serve-retry-exit",
             "retry-on-startup": True, "max-reconnect-tries": 3, "reconnect-wait-time": 100,
             "lfc-interval": 10}
    access = to_access(entry, path="Dhcp4.lease-database", role="lease")
    assert access == DbAccess(
        type="mysql", name="kea", host="db", port=3306, user="kea", password="s3cret",
        connect_timeout=10, read_timeout=5, write_timeout=6, readonly=True,
        trust_anchor="ca", cert_file="c", key_file="k", cipher_list="AES",
        on_fail="serve-retry-exit", retry_on_startup=True, max_reconnect_tries=3,
        reconnect_wait_time=100, path="Dhcp4.lease-database", role="lease")
    assert "s3cret" not in repr(access)
    pg = to_access({"type": "postgresql", "ssl-mode": "require", "tcp-user-timeout": 9})
    assert (pg.ssl_mode, pg.tcp_user_timeout) == ("require", 9)
    with pytest.raises(ConfigError, match="'port' must be an integer, not a string"):
        to_access({"type": "mysql", "port": "1"})


def test_password_file_reading(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("first line \nsecond\n")
    (tmp_path / "crlf").write_bytes(b"with-cr\r\n")
    (tmp_path / "empty").write_text("")
    assert read_password_file("pw", cwd=tmp_path) == "first line "
    assert read_password_file(str(tmp_path / "pw"), cwd=Path("/")) == "first line "
    # Kea keeps everything but the newline, a carriage return too.
    assert read_password_file("crlf", cwd=tmp_path) == "with-cr\r"
    assert read_password_file("empty", cwd=tmp_path) == ""
    with pytest.raises(ConfigError, match=re.escape(
            "k.conf:1:2: password-file nope does not exist")):
        read_password_file("nope", cwd=tmp_path, where="k.conf:1:2")
    with pytest.raises(ConfigError, match="is a directory"):
        read_password_file(".", cwd=tmp_path)
    access = to_access({"type": "mysql", "password-file": "pw"}, cwd=tmp_path)
    assert access.password == "first line "
    # A default password is read as any other: refusing it is the entry's finding (Kea
    # refuses it when it connects; see test_kea_entries.test_password_file).
    (tmp_path / "default").write_text("keatest\n")
    assert to_access({"type": "mysql", "password-file": "default"},
                     cwd=tmp_path).password == "keatest"
