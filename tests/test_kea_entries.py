"""keadb_cli.kea.entries: the database entries of Kea configurations, and --backend."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest

from keadb_cli.errors import ConfigError, ExitCode
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.config import load, loads
from keadb_cli.kea.entries import ConfigEntry, extract, select

DATA = Path(__file__).parent / "data" / "configs"
EXAMPLES = Path("/usr/share/doc/kea/examples")
KEA_2_2: tuple[int, int, int] = (2, 2, 0)

_MYSQL_TLS = {"type": "mysql", "name": "keatest", "host": "localhost", "port": 3306,
              "user": "keatest", "password": "keatest", "readonly": False,
              "trust-anchor": "my-ca", "cert-file": "my-cert", "key-file": "my-key",
              "cipher-list": "AES"}
_PG = {"type": "postgresql", "name": "keatest", "host": "localhost", "port": 5432,
       "user": "keatest", "password": "keatest"}
_RECONNECT = {"connect-timeout": 100, "on-fail": "stop-retry-exit", "max-reconnect-tries": 3,
              "reconnect-wait-time": 3000}
_CB = {"type": "mysql", "name": "kea", "host": "localhost", "port": 3306, "user": "kea",
       "password": "kea", "max-reconnect-tries": 3, "reconnect-wait-time": 3000}
_RESERVATIONS_MY = {"type": "mysql", "name": "keatest", "host": "localhost", "port": 3306,
                    "user": "keatest", "password": "keatest", "trust-anchor": "my-ca",
                    "cert-file": "my-cert", "key-file": "my-key", "cipher-list": "AES",
                    "max-reconnect-tries": 3, "reconnect-wait-time": 3000}
_RESERVATIONS_PG = {"type": "postgresql", "name": "keatest", "host": "localhost",
                    "user": "keatest", "password": "keatest", "max-reconnect-tries": 3,
                    "reconnect-wait-time": 3000}
MEMFILE: dict[str, Any] = {"type": "memfile"}

# What Debian's kea-doc 2.2.0 example files hold: (path, line, keywords of the entry).
EXPECTED: dict[str, list[tuple[str, int, dict[str, Any]]]] = {
    "kea4/all-keys.json": [
        ("Dhcp4.lease-database", 485, MEMFILE),
        ("Dhcp4.hosts-databases[0]", 299, _MYSQL_TLS),
        ("Dhcp4.hosts-databases[1]", 335, _PG),
        ("Dhcp4.hosts-databases[2]", 354, {"type": "mysql", "name": "keatest", "port": 9042,
                                           "user": "keatest", "password": "keatest",
                                           **_RECONNECT}),
        ("Dhcp4.config-control.config-databases[0]", 1046, {"type": "mysql", "name": "config"}),
    ],
    "kea4/all-keys-netconf.json": [
        ("Dhcp4.lease-database", 469, MEMFILE),
        ("Dhcp4.hosts-databases[0]", 299, _MYSQL_TLS),
        ("Dhcp4.hosts-databases[1]", 335, {**_PG, **_RECONNECT}),
        ("Dhcp4.config-control.config-databases[0]", 1030, {"type": "mysql", "name": "config"}),
    ],
    "kea4/backends.json": [],  # all three lease-database blocks are commented out
    "kea4/config-backend.json": [
        ("Dhcp4.lease-database", 20, MEMFILE),
        ("Dhcp4.config-control.config-databases[0]", 32, _CB),
    ],
    "kea4/mysql-reservations.json": [
        ("Dhcp4.lease-database", 18, MEMFILE),
        ("Dhcp4.hosts-database", 58, _RESERVATIONS_MY),
    ],
    "kea4/pgsql-reservations.json": [
        ("Dhcp4.lease-database", 18, MEMFILE),
        ("Dhcp4.hosts-databases[0]", 60, _RESERVATIONS_PG),
    ],
    "kea6/all-keys.json": [
        ("Dhcp6.lease-database", 428, MEMFILE),
        ("Dhcp6.hosts-databases[0]", 259, _MYSQL_TLS),
        ("Dhcp6.hosts-databases[1]", 294, _PG),
        ("Dhcp6.hosts-databases[2]", 313, {"type": "mysql", "name": "keatest", "port": 9042,
                                           "user": "keatest", "password": "keatest",
                                           **_RECONNECT}),
        ("Dhcp6.config-control.config-databases[0]", 1033, {"type": "mysql", "name": "config"}),
    ],
    "kea6/all-keys-netconf.json": [
        ("Dhcp6.lease-database", 412, MEMFILE),
        ("Dhcp6.hosts-databases[0]", 259, _MYSQL_TLS),
        ("Dhcp6.hosts-databases[1]", 294, {**_PG, **_RECONNECT}),
        ("Dhcp6.config-control.config-databases[0]", 1017, {"type": "mysql", "name": "config"}),
    ],
    "kea6/backends.json": [  # the mysql and postgresql blocks are commented out
        ("Dhcp6.lease-database", 22, MEMFILE),
    ],
    "kea6/config-backend.json": [
        ("Dhcp6.lease-database", 20, MEMFILE),
        ("Dhcp6.config-control.config-databases[0]", 32, _CB),
    ],
    "kea6/mysql-reservations.json": [
        ("Dhcp6.lease-database", 17, MEMFILE),
        ("Dhcp6.hosts-database", 45, {**_RESERVATIONS_MY, "readonly": True}),
    ],
    "kea6/pgsql-reservations.json": [
        ("Dhcp6.lease-database", 17, MEMFILE),
        ("Dhcp6.hosts-databases[0]", 47, _RESERVATIONS_PG),
    ],
}


def example(name: str, tmp_path: Path) -> Path:
    """A kea-doc example as a plain file; skip when kea-doc is not installed."""
    path = EXAMPLES / name
    if path.is_file():
        return path
    packed = path.with_name(path.name + ".gz")
    if packed.is_file():
        plain = tmp_path / path.name
        plain.write_bytes(gzip.decompress(packed.read_bytes()))
        return plain
    pytest.skip(f"Debian's kea-doc example {name} is not installed")


def role_of(path: str) -> str:
    if "lease" in path:
        return "lease"
    return "config" if "config-databases" in path else "hosts"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_kea_doc_examples(name: str, tmp_path: Path) -> None:
    path = example(name, tmp_path)
    entries = extract(load(path), release=KEA_2_2)
    got = [(e.path, int(e.location.rsplit(":", 1)[1]),
            e.access.keywords(redact=False) if e.access else {"type": e.type})
           for e in entries]
    assert got == EXPECTED[name]
    for entry in entries:
        assert entry.location == f"{path}:{entry.location.rsplit(':', 1)[1]}"
        assert entry.server == entry.path.split(".")[0]
        assert entry.role == role_of(entry.path)
        assert entry.findings == ()  # Kea 2.2.0 accepts every one of them
        assert entry.sql == (entry.type in ("mysql", "postgresql"))
        if entry.sql:
            assert entry.access is not None
            assert entry.access.path == entry.path and entry.access.role == entry.role
            assert entry.require_access() is entry.access
        else:
            assert entry.access is None
    # Nothing of the commented-out blocks (their password was "secret1").
    assert all(e.raw.get("password") != "secret1" for e in entries)


def test_commented_out_blocks_do_not_appear(tmp_path: Path) -> None:
    entries = extract(load(example("kea6/backends.json", tmp_path)))
    assert [(e.path, e.type, e.sql) for e in entries] == [
        ("Dhcp6.lease-database", "memfile", False)]
    with pytest.raises(ConfigError, match="no MySQL or PostgreSQL backend"):
        select(entries)
    assert extract(load(example("kea4/backends.json", tmp_path))) == []


def test_examples_for_the_newest_kea(tmp_path: Path) -> None:
    """Kea since 2.7.6 refuses the examples' passwords keatest and 1234 when it connects:
    the file loads, the entry fails (a finding of the connect stage, not of the file)."""
    entries = extract(load(example("kea4/all-keys.json", tmp_path)))
    by_path = {e.path: e for e in entries}
    refused = by_path["Dhcp4.hosts-databases[0]"]
    assert refused.file_errors == []
    assert [(f.keyword, f.stage) for f in refused.errors] == [("password", "connect")]
    assert refused.connect_errors == refused.errors
    assert "refuses Kea's built-in default passwords" in refused.errors[0].message
    with pytest.raises(ConfigError) as info:
        refused.require_access()
    assert info.value.exit_code == ExitCode.CONFIG
    # The error points at the password's value, and names the entry.
    assert info.value.message.startswith(f"{refused.location.rsplit(':', 1)[0]}:307:29: "
                                         "Dhcp4.hosts-databases[0]: the newest Kea refuses")
    assert by_path["Dhcp4.config-control.config-databases[0]"].findings == ()
    # The TLS keywords did not exist in Kea 2.0.
    old = extract(load(example("kea4/all-keys.json", tmp_path)), release=(2, 0, 0))
    assert [f.keyword for f in old[1].errors] == [
        "trust-anchor", "cert-file", "key-file", "cipher-list"]


def test_all_backends_sample() -> None:
    config = load(DATA / "valid" / "all-backends.json")
    entries = extract(config)
    assert [(e.path, e.role, e.server, e.type, e.sql) for e in entries] == [
        ("Dhcp4.lease-database", "lease", "Dhcp4", "memfile", False),
        ("Dhcp4.hosts-databases[0]", "hosts", "Dhcp4", "mysql", True),
        ("Dhcp4.hosts-databases[1]", "hosts", "Dhcp4", "postgresql", True),
        ("Dhcp4.config-control.config-databases[0]", "config", "Dhcp4", "mysql", True),
        ("Dhcp6.lease-database", "lease", "Dhcp6", "postgresql", True),
        ("Dhcp6.hosts-database", "hosts", "Dhcp6", "memfile", False),
    ]
    pg = entries[2].require_access()
    assert pg == DbAccess(type="postgresql", name="hosts4pg", user="kea", password="pg-secret",
                          ssl_mode="verify-full", tcp_user_timeout=30, readonly=True,
                          path="Dhcp4.hosts-databases[1]", role="hosts")
    cb = entries[3].require_access()
    assert (cb.on_fail, cb.retry_on_startup, cb.max_reconnect_tries, cb.reconnect_wait_time) \
        == ("serve-retry-continue", True, 5, 2000)
    assert entries[4].require_access().connect_timeout == 7
    assert [str(f) for f in entries[0].findings] == []
    # The deprecated hosts-database is only worth a warning for 3.3.0 and later.
    assert [f.message for f in entries[5].warnings] == [
        "'hosts-database' is deprecated: use the 'hosts-databases' list"]
    assert extract(config, release=(3, 2, 0))[5].findings == ()
    for entry in entries:
        assert "secret" not in repr(entry)


def test_memfile_require_access() -> None:
    entries = extract(load(DATA / "valid" / "all-backends.json"))
    with pytest.raises(ConfigError, match=re.escape(
            "Dhcp4.lease-database is a memfile backend: there is no database to check")):
        entries[0].require_access()


def test_select() -> None:
    entries = extract(load(DATA / "valid" / "all-backends.json"))
    paths = [e.path for e in entries]

    def picked(spec: str | None) -> list[str]:
        return [e.path for e in select(entries, spec)]

    assert picked(None) == [p for p, e in zip(paths, entries, strict=True) if e.sql]
    assert picked("lease") == ["Dhcp4.lease-database", "Dhcp6.lease-database"]
    assert picked("hosts") == ["Dhcp4.hosts-databases[0]", "Dhcp4.hosts-databases[1]",
                               "Dhcp6.hosts-database"]
    assert picked("config") == ["Dhcp4.config-control.config-databases[0]"]
    assert picked("Dhcp6") == ["Dhcp6.lease-database", "Dhcp6.hosts-database"]
    assert picked("Dhcp4.hosts-databases[1]") == ["Dhcp4.hosts-databases[1]"]
    with pytest.raises(ConfigError) as info:
        select(entries, "Dhcp4.hosts-databases[7]")
    assert info.value.exit_code == ExitCode.CONFIG
    assert info.value.message == (
        "no backend 'Dhcp4.hosts-databases[7]' in the configuration; use lease, hosts, "
        "config or one of: Dhcp4.lease-database (memfile), Dhcp4.hosts-databases[0] (mysql), "
        "Dhcp4.hosts-databases[1] (postgresql), Dhcp4.config-control.config-databases[0] "
        "(mysql), Dhcp6.lease-database (postgresql), Dhcp6.hosts-database (memfile)")
    with pytest.raises(ConfigError, match="no database entries at all"):
        select([], "lease")


def test_no_dhcp_section() -> None:
    with pytest.raises(ConfigError) as info:
        extract(load(DATA / "broken" / "no-dhcp.json"))
    assert info.value.message.endswith("no-dhcp.json:1:1: no Dhcp4 or Dhcp6 section: not a "
                                       "configuration of Kea's DHCP servers")


@pytest.mark.parametrize(
    ("text", "line_col", "message"),
    [
        ('{"Dhcp4": []}', "1:11", "Dhcp4 must be a map, not a list"),
        ('{"Dhcp4": {"lease-database": "mysql"}}', "1:30", "lease-database must be a map"),
        ('{"Dhcp4": {"hosts-databases": {}}}', "1:31", "hosts-databases must be a list"),
        ('{"Dhcp6": {"hosts-databases": [{"type": "mysql"}, 5]}}', "1:51",
         "Dhcp6.hosts-databases[1] must be a map, not a number"),
        ('{"Dhcp4": {"config-control": {"config-databases": null}}}', "1:51",
         "Dhcp4.config-control.config-databases must be a list, not null"),
        ('{"Dhcp4": {"config-control": true}}', "1:30", "config-control must be a map"),
    ],
)
def test_wrong_containers(text: str, line_col: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        extract(loads(text, name="w.conf"))
    assert info.value.message.startswith(f"w.conf:{line_col}: ")
    assert message in info.value.message


def test_hosts_database_and_hosts_databases() -> None:
    text = ('{"Dhcp4": {\n"hosts-database": {"type": "mysql", "name": "a"},\n'
            '"hosts-databases": [{"type": "mysql", "name": "b"}]}}')
    config = loads(text, name="h.conf")
    new = extract(config)
    assert [str(f) for f in new[0].errors] == [
        "h.conf:2:19: the newest Kea refuses 'hosts-database' and 'hosts-databases' together"]
    assert new[1].errors == []
    old = extract(config, release=(3, 2, 0))  # both were used, without a word
    assert old[0].findings == () and old[0].access is not None


def test_empty_lists() -> None:
    config = loads('{"Dhcp4": {"hosts-databases": [], "config-control": {}}}')
    assert extract(config) == []


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db").write_text("from-the-file\nsecond line\n")
    (tmp_path / "secrets" / "default").write_text("1234\n")
    (tmp_path / "kea.conf").write_text(
        '{"Dhcp4": {\n'
        '  "lease-database": {"type": "mysql", "name": "a", "password-file": "secrets/db"},\n'
        '  "hosts-databases": [\n'
        '    {"type": "postgresql", "name": "b", "password-file": "secrets/missing"},\n'
        '    {"type": "postgresql", "name": "c", "password-file": "secrets/default"},\n'
        '    {"type": "postgresql", "name": "d", "password-file": "secrets/db",\n'
        '     "password": "x"}\n'
        "]}}\n")
    config = load(tmp_path / "kea.conf", cwd=tmp_path)
    entries = extract(config)
    assert entries[0].require_access().password == "from-the-file"
    assert [str(f) for f in entries[1].errors] == [
        f"{tmp_path / 'kea.conf'}:4:58: password-file secrets/missing does not exist"]
    assert [f.message for f in entries[2].errors] == [
        "password-file secrets/default holds a built-in default password, which the newest "
        "Kea refuses when it connects"]
    assert [f.stage for f in entries[2].errors] == ["connect"]
    assert [f.message for f in entries[3].errors] == [
        "'password' and 'password-file' cannot both be given"]
    # No released Kea (3.3.0 and older) knows the keyword.
    old = extract(config, release=(3, 3, 0))
    assert [f.message for f in old[0].errors] == [
        "'password-file' is not known to Kea 3.3.0: it needs Kea 3.3.1 or later"]
    for entry in entries + old:
        for finding in entry.findings:
            assert "from-the-file" not in str(finding)


def test_entry_is_frozen_and_hides_raw() -> None:
    entry = extract(load(DATA / "valid" / "all-backends.json"))[1]
    assert isinstance(entry, ConfigEntry)
    with pytest.raises(AttributeError):
        entry.path = "x"  # type: ignore[misc]
    assert "hosts4-secret" not in repr(entry)


# The part of the broken-file corpus that reads fine but that Kea refuses: the whole path a
# command takes (load, extract, require_access) ends in one ConfigError with file and line.
BROKEN = [
    ("wrong-type.json", 6, 21, "'port' must be an integer, not a string"),
    ("out-of-range.json", 7, 25, "'port' 70000 is out of range 0..65535"),
    ("unknown-keyword.json", 6, 13, "unknown keyword 'comment' in a database map"),
    ("missing-type.json", 5, 17, "missing 'type': Kea requires it in every database map"),
    ("bad-ssl-mode.json", 6, 25, "'ssl-mode' must be one of disable, prefer, require, "
                                 "verify-ca, verify-full, not 'VERIFY-FULL'"),
    ("lease-database-list.json", 3, 27, "Dhcp4.lease-database must be a map, not a list"),
    ("no-dhcp.json", 1, 1, "no Dhcp4 or Dhcp6 section"),
]


@pytest.mark.parametrize(("name", "line", "col", "message"), BROKEN)
def test_broken_corpus(name: str, line: int, col: int, message: str) -> None:
    path = DATA / "broken" / name
    with pytest.raises(ConfigError) as info:
        for entry in extract(load(path, cwd=DATA)):
            entry.require_access()
    exc = info.value
    assert exc.exit_code == ExitCode.CONFIG
    assert "\n" not in exc.message
    assert exc.message.startswith(f"{path}:{line}:{col}: ")
    assert message in exc.message
