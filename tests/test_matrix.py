"""The server matrix: init, upgrade, verify and check-version proven against Debian's kea-admin
2.2.0 / 2.6.3 / 3.0.4 on every server and setting of ``tests/matrix.py`` (servers started
from their compiled-in defaults plus only the setting the cell names).

In every cell, on that same server:

- ``init`` of 2.2, 2.6 and 3.0 builds the catalog kea-admin's db-init builds there (what the
  server's settings make of Kea's columns included); where kea-admin's db-init fails on the
  setting, kea-db either refuses before any change naming the setting, or builds what
  kea-admin builds once the operator has lifted the setting;
- ``upgrade`` 2.2 -> 3.0 and 2.2 -> 2.6 -> 3.0 of a populated kea-admin database leaves
  kea-admin's catalog and rows, and every lease keeps its expiry;
- ``verify`` says CLEAN on what kea-admin built and upgraded, and finds induced drift;
- ``check-version`` says MATCH for the release each database was built for;
- the user-context data traps refuse exactly what stops kea-admin's upgrade.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matrix
import pytest
from kea_admin import KeaAdminError, kea_admin_init, kea_admin_upgrade
from matrix import Cell
from servers import DatabaseServer, FreshDatabase, MariaDBServer, drop_fresh_database
from test_upgrade import IGNORE, TO, kea_db, read_catalog, seed, upgrade_json

from keadb_cli.errors import ExitCode
from keadb_cli.schema import catalog, expected

pytestmark = [pytest.mark.db, pytest.mark.kea]

CELLWISE = pytest.mark.parametrize("matrix_server", matrix.CELL_IDS, indirect=True)
INIT_RELEASES = ("2.2.0", "2.6.3", "3.0.4")
SCHEMA = {"2.2.0": {"postgresql": "13.0", "mysql": "14.0"}, **TO}

# Settings on which Kea's own db-init fails or builds routines that misbehave
# (shared/docs/field.md §3, measured again by tests/test_matrix_servers.py): what kea-db
# does there ("refuses" before any change naming the setting; "builds" what kea-admin
# builds once the setting is lifted, where kea-admin fails; "differs": kea-admin builds,
# with routines that keep NO_BACKSLASH_ESCAPES's backslashes, and kea-db builds what
# kea-admin builds without it), the setting, and what the operator runs to lift it.
BINLOG = ("refuses", "log_bin_trust_function_creators",
          ("SET GLOBAL log_bin_trust_function_creators = 1",))


def _breaks(cell: Cell) -> tuple[str, str, tuple[str, ...]] | None:
    """(what kea-db does, the setting named, statements that lift it) or None."""
    if cell.id in ("mariadb10.11-binlog", "mysql9.7-defaults"):
        return BINLOG
    if cell.id == "mariadb10.11-ansi-quotes":
        return ("builds", "ANSI_QUOTES",
                ("SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, 'ANSI_QUOTES', '')",))
    if cell.id == "mariadb10.11-no-backslash-escapes":
        return ("differs", "NO_BACKSLASH_ESCAPES",
                ("SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",))
    if cell.id == "mariadb10.11-force-pk":
        return ("builds", "innodb_force_primary_key",
                ("SET GLOBAL innodb_force_primary_key = OFF",))
    if cell.id == "mysql9.7-require-pk":
        return ("builds", "sql_require_primary_key", ("SET GLOBAL sql_require_primary_key = OFF",))
    return None


# Oracle MySQL logs binary by default, and Kea's ARM tells its operators to set
# log_bin_trust_function_creators there: the cells of other settings start from that.
OPERATOR_SETUP = {
    "mysql9.7-require-pk": ("SET GLOBAL log_bin_trust_function_creators = 1",),
    "mysql9.7-edft-off": ("SET GLOBAL log_bin_trust_function_creators = 1",),
}


@contextmanager
def lifted(server: DatabaseServer, statements: tuple[str, ...]) -> Iterator[None]:
    """The setting lifted for what runs inside, as the operator would, then put back."""
    if not statements:
        yield
        return
    names = [s.split()[2] for s in statements]
    saved = [server.sql(f"SELECT @@GLOBAL.{n}")[0][0] for n in names]
    for statement in statements:
        server.sql(statement)
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            server.sql(f"SET GLOBAL {name} = %s", params=(value,))


@pytest.fixture
def cell(matrix_cell: Cell) -> Cell:
    return matrix_cell


@pytest.fixture
def server(matrix_server: DatabaseServer, matrix_cell: Cell) -> Iterator[DatabaseServer]:
    """The cell's server (shared by the session), with the operator's setup for the test
    only: tests/test_matrix_servers.py sees it as the cell names it."""
    with lifted(matrix_server, OPERATOR_SETUP.get(matrix_cell.id, ())):
        yield matrix_server


@pytest.fixture
def make(cell: Cell, server: DatabaseServer) -> Iterator[Callable[[], FreshDatabase]]:
    """A fresh database of the cell, its user with Kea's documented grants only (MySQL:
    ALL on its database, so verify compares with kea-db's record)."""
    made: list[FreshDatabase] = []

    def factory() -> FreshDatabase:
        db = cell.create_database(server)
        made.append(db)
        return db

    yield factory
    for db in reversed(made):
        drop_fresh_database(db)


def admin_init(db: FreshDatabase, release: str) -> None:
    kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name, release=release)


def admin_upgrade(db: FreshDatabase, release: str) -> None:
    kea_admin_upgrade(db.type, db.host, db.port, db.user, db.password, db.name,
                      release=release)


def run_json(db: FreshDatabase, command: str, *args: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, command, *args, "--json")
    return proc.returncode, json.loads(proc.stdout)["results"][0]


def assert_same(theirs: FreshDatabase, ours: FreshDatabase, label: str) -> None:
    catalog.assert_same_catalog(read_catalog(theirs), read_catalog(ours), ignore=IGNORE,
                                labels=(label, "kea-db"))


def assert_clean(db: FreshDatabase) -> None:
    code, result = run_json(db, "verify")
    assert (code, result["verdict"]) == (ExitCode.OK, "CLEAN"), result
    assert result["errors"] == [], result["errors"]


def tables(db: FreshDatabase) -> list[str]:
    return sorted(t.name for t in read_catalog(db).tables)


# -- init -------------------------------------------------------------------------------------


@CELLWISE
@pytest.mark.parametrize("release", INIT_RELEASES)
def test_init_builds_what_kea_admin_builds(release: str, cell: Cell, server: DatabaseServer,
                                           make: Callable[[], FreshDatabase]) -> None:
    theirs, ours = make(), make()
    breaks = _breaks(cell)
    if breaks is not None:
        does, setting, lift = breaks
        if does == "differs":
            as_is = make()
            admin_init(as_is, release)
            code, result = run_json(as_is, "verify")
            assert (code, result["verdict"]) == (ExitCode.OK, "CLEAN"), result
            bodies = {w["object"] for w in result["warnings"] if setting in w["detail"]
                      and "body" in w["detail"]}
            assert bodies and all(b.startswith("routine ") for b in bodies), result["warnings"]
        else:
            with pytest.raises(KeaAdminError):
                admin_init(make(), release)
        code, result = run_json(ours, "init", "--kea-version", release)
        if does == "refuses":
            assert (code, result["action"]) == (ExitCode.PRIVILEGES, "refused"), result
            assert setting in result["detail"], result["detail"]
            assert tables(ours) == [], "a refused init must change nothing"
            with lifted(server, lift):
                code, result = run_json(ours, "init", "--kea-version", release)
        assert (code, result["action"]) == (ExitCode.OK, "initialized"), result
        with lifted(server, lift):
            admin_init(theirs, release)
    else:
        admin_init(theirs, release)
        code, result = run_json(ours, "init", "--kea-version", release)
        assert (code, result["action"]) == (ExitCode.OK, "initialized"), result
    assert_same(theirs, ours, f"kea-admin {release} db-init")
    for db in (theirs, ours):
        assert_clean(db)
        code, result = run_json(db, "check-version", "--kea-version", release)
        assert (code, result["verdict"]) == (ExitCode.OK, "MATCH"), result


# -- upgrade ----------------------------------------------------------------------------------

# Leases whose expiry an upgrade must keep: valid ones, expired ones, one far away.
EXPIRIES = ("2020-02-29 12:00:00", "2031-07-01 08:30:00", "2037-12-31 23:59:59")


def seed_expiries(db: FreshDatabase) -> None:
    for n, expire in enumerate(EXPIRIES, start=1):
        if db.type == "mysql":
            db.server.sql(
                "INSERT INTO lease4 (address, hwaddr, subnet_id, valid_lifetime, expire, state)"
                f" VALUES (INET_ATON('198.51.100.{n}'), UNHEX('0102030405{n:02x}'), 7, 3600, "
                f"'{expire}', 0)", database=db.name)
            db.server.sql(
                "INSERT INTO lease6 (address, duid, subnet_id, valid_lifetime, expire, "
                "lease_type, iaid, prefix_len, state) VALUES "
                f"('2001:db8:77::{n}', UNHEX('0a0b{n:02x}'), 7, 3600, '{expire}', 0, {n}, 128, 0)",
                database=db.name)
        else:
            db.server.sql(
                "INSERT INTO lease4 (address, hwaddr, subnet_id, valid_lifetime, expire, state)"
                f" VALUES ({int(ipaddress.IPv4Address(f'198.51.100.{n}'))}, "
                f"'\\x0102030405{n:02x}', 7, 3600, '{expire}+00', 0)", database=db.name)
            db.server.sql(
                "INSERT INTO lease6 (address, duid, subnet_id, valid_lifetime, expire, "
                "lease_type, iaid, prefix_len, state) VALUES "
                f"('2001:db8:77::{n}', '\\x0a0b{n:02x}', 7, 3600, '{expire}+00', 0, {n}, 128, "
                "0)", database=db.name)


def _address(value: Any) -> str:
    if isinstance(value, int):
        return str(ipaddress.IPv4Address(value))
    if isinstance(value, (bytes, bytearray)) and len(value) == 16:
        return str(ipaddress.IPv6Address(bytes(value)))
    text = value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
    return str(ipaddress.ip_address(text.split("/")[0]))


# Cells whose tables get explicit_defaults_for_timestamp OFF's columns (field.md §2).
OFF_ERA = {"mariadb10.5-defaults", "mariadb10.11-edft-off", "mysql9.7-edft-off"}


def one_byte_duids(db: FreshDatabase) -> set[str]:
    """The lease6 rows (as :func:`expiries` names them) whose DUID is the single byte 0x00,
    which schema 18.0 rewrites to three."""
    where = "duid = UNHEX('00')" if db.type == "mysql" else "duid = '\\x00'"
    rows = db.server.sql(f"SELECT address FROM lease6 WHERE {where}", database=db.name)
    return {f"lease6 {_address(a)}" for (a,) in rows}


def expiries(db: FreshDatabase) -> dict[str, str]:
    """Every lease's expiry, by address (text, whatever the schema stores)."""
    out = {}
    for table in ("lease4", "lease6"):
        if db.type == "mysql":
            rows = db.server.sql(f"SELECT address, UNIX_TIMESTAMP(expire) FROM {table}",
                                 database=db.name)
        else:
            rows = db.server.sql(f"SELECT address, extract(epoch FROM expire)::bigint FROM "
                                 f"{table}", database=db.name)
        out.update({f"{table} {_address(a)}": str(int(e)) if e is not None else "NULL"
                    for a, e in rows})
    return out


@CELLWISE
@pytest.mark.parametrize("path", [("3.0.4",), ("2.6.3", "3.0.4")], ids=["to-3.0", "via-2.6"])
def test_upgrade_leaves_kea_admins_catalog_rows_and_expiries(
        path: tuple[str, ...], cell: Cell, server: DatabaseServer,
        make: Callable[[], FreshDatabase]) -> None:
    lift = (_breaks(cell) or ("", "", ()))[2]
    theirs, ours = make(), make()
    with lifted(server, lift):
        for db in (theirs, ours):
            admin_init(db, "2.2.0")
            seed(db)
            seed_expiries(db)
    before, theirs_before = expiries(ours), expiries(theirs)
    assert len(before) >= 2 * len(EXPIRIES)
    rewritten = one_byte_duids(theirs)
    assert rewritten, "the seed has no lease6 row with a one-byte DUID"
    for release in path:
        with lifted(server, lift):
            admin_upgrade(theirs, release)
        # kea-db upgrades under the cell's setting, but where it refuses that setting
        # (test_binlog_without_trust_...) the operator has lifted it first.
        with lifted(server, lift if _breaks(cell) == BINLOG else ()):
            code, result = upgrade_json(ours, "--kea-version", release, "--yes")
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
        assert result["to"] == TO[release][ours.type]
        assert_same(theirs, ours, f"kea-admin {release} db-upgrade")
    assert expiries(ours) == before, "kea-db's upgrade changed lease expiries"
    # kea-admin keeps every other expiry; the lease6 rows whose DUID Kea's 18.0 step
    # rewrites get now() where lease6.expire is still ON UPDATE (explicit defaults OFF).
    theirs_now = expiries(theirs)
    assert {k: v for k, v in theirs_now.items() if k not in rewritten} == \
        {k: v for k, v in theirs_before.items() if k not in rewritten}
    reset = {k for k in rewritten if theirs_now[k] != theirs_before[k]}
    assert reset == (rewritten if cell.id in OFF_ERA else set()), reset
    for db in (theirs, ours):
        assert_clean(db)
        code, result = run_json(db, "check-version", "--kea-version", path[-1])
        assert (code, result["verdict"]) == (ExitCode.OK, "MATCH"), result


@pytest.mark.parametrize("matrix_server", [c.id for c in matrix.CELLS_LIST
                                           if _breaks(c) == BINLOG], indirect=True)
def test_binlog_without_trust_refuses_upgrade_before_any_change(
        cell: Cell, server: DatabaseServer, make: Callable[[], FreshDatabase]) -> None:
    """Where creating routines needs SUPER (binary log on, no trust), kea-admin's upgrade
    fails inside its steps; kea-db refuses before the first change, naming the setting."""
    db, theirs = make(), make()
    with lifted(server, BINLOG[2]):
        for target in (db, theirs):
            admin_init(target, "2.2.0")
            seed(target)
    with pytest.raises(KeaAdminError):
        admin_upgrade(theirs, "3.0.4")
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.PRIVILEGES, "refused"), result
    assert "log_bin_trust_function_creators" in result["detail"]
    assert "nothing was changed" in result["detail"] or "journal" not in result["detail"]
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))


# -- verify -----------------------------------------------------------------------------------


@CELLWISE
def test_verify_finds_drift(cell: Cell, server: DatabaseServer,
                            make: Callable[[], FreshDatabase]) -> None:
    """The same drift in every cell: one index dropped (error), one own table (warning)."""
    db = make()
    lift = (_breaks(cell) or ("", "", ()))[2]
    with lifted(server, lift):
        admin_init(db, "3.0.4")
    if db.type == "mysql":
        db.server.sql("DROP INDEX lease4_by_subnet_id ON lease4", database=db.name)
        db.server.sql("CREATE TABLE operator_notes (id INT PRIMARY KEY)", database=db.name)
    else:
        db.server.sql("DROP INDEX lease4_by_subnet_id", database=db.name)
        db.server.sql("CREATE TABLE operator_notes (id INT PRIMARY KEY)", database=db.name)
        db.server.sql(f"ALTER TABLE operator_notes OWNER TO {db.user}", database=db.name)
    code, result = run_json(db, "verify")
    assert (code, result["verdict"]) == (ExitCode.DRIFT, "DRIFT"), result
    errors = {(f["kind"], f["object"]) for f in result["errors"]}
    assert errors == {("missing", "table lease4 index lease4_by_subnet_id")}, result["errors"]
    warnings = {(f["kind"], f["object"]) for f in result["warnings"]}
    assert ("extra", "table operator_notes") in warnings, result["warnings"]


# -- data traps -------------------------------------------------------------------------------


def _empty_context_lease(db: FreshDatabase, table: str) -> None:
    binary = "UNHEX('01')" if db.type == "mysql" else "'\\x01'"
    if table == "lease4":
        address = "INET_ATON('192.0.2.99')" if db.type == "mysql" else "3221226083"
        db.server.sql("INSERT INTO lease4 (address, hwaddr, subnet_id, state, user_context) "
                      f"VALUES ({address}, {binary}, 1, 0, '')", database=db.name)
    else:
        db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, "
                      f"prefix_len, state, user_context) VALUES ('2001:db8::99', {binary}, 1, "
                      "0, 9, 128, 0, '')", database=db.name)


@CELLWISE
@pytest.mark.parametrize("table", ["lease4", "lease6"])
def test_user_context_traps_refuse_what_stops_kea_admin(
        table: str, cell: Cell, server: DatabaseServer,
        make: Callable[[], FreshDatabase]) -> None:
    """A lease with an empty user context, as `kea-admin lease-upload` writes it: kea-db
    refuses exactly where kea-admin 3.0.4's upgrade stops on it (MySQL lease6, whose
    18 -> 19 step rewrites every row through Kea's triggers), and upgrades where kea-admin
    does (lease4 on MySQL, both on PostgreSQL)."""
    lift = (_breaks(cell) or ("", "", ()))[2]
    theirs, ours = make(), make()
    with lifted(server, lift):
        for db in (theirs, ours):
            admin_init(db, "2.2.0")
            _empty_context_lease(db, table)
    kea_admin_failed = False
    with lifted(server, lift):
        try:
            admin_upgrade(theirs, "3.0.4")
        except KeaAdminError:
            kea_admin_failed = True
    before = read_catalog(ours)
    code, result = upgrade_json(ours, "--kea-version", "3.0.4", "--yes")
    if _breaks(cell) == BINLOG:
        assert code == ExitCode.PRIVILEGES, result
        with lifted(server, lift):
            code, result = upgrade_json(ours, "--kea-version", "3.0.4", "--yes")
    if kea_admin_failed:
        assert (code, result["action"]) == (ExitCode.DATA_TRAP, "refused"), result
        assert any("user_context" in f and table in f for f in result["findings"]), result
        assert "nothing was changed" in result["detail"] or "journal" not in result["detail"]
        catalog.assert_same_catalog(before, read_catalog(ours), labels=("before", "after"))
    else:
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result
        assert_same(theirs, ours, "kea-admin 3.0.4 db-upgrade")
    # What was measured: only MySQL's lease6 stops kea-admin.
    assert kea_admin_failed == (cell.type == "mysql" and table == "lease6")


# -- a server upgraded in place -----------------------------------------------------------------


def test_mariadb_10_5_data_directory_started_by_10_11() -> None:
    """Kea 2.2 databases built by kea-admin on MariaDB 10.5 (latin1, explicit defaults
    off), the data directory then started by MariaDB 10.11: verify says CLEAN (the OFF-era
    columns are warnings, not drift), and kea-db's upgrade leaves what kea-admin's does,
    every expiry kept."""
    old_cell = matrix.MIGRATION.before
    old = old_cell.start()
    assert isinstance(old, MariaDBServer)
    try:
        dbs = [old_cell.create_database(old) for _ in range(2)]
        for db in dbs:
            admin_init(db, "2.2.0")
            seed(db)
            seed_expiries(db)
        new = matrix.MIGRATION.upgrade(old)
    except BaseException:
        old.stop()
        raise
    try:
        theirs, ours = (dataclasses.replace(db, server=new, port=new.port, socket=new.socket)
                        for db in dbs)
        before = expiries(ours)
        code, result = run_json(ours, "verify")
        assert (code, result["verdict"]) == (ExitCode.OK, "CLEAN"), result
        assert any("explicit_defaults_for_timestamp was OFF" in w["detail"]
                   for w in result["warnings"]), result["warnings"]
        admin_upgrade(theirs, "3.0.4")
        code, result = upgrade_json(ours, "--kea-version", "3.0.4", "--yes")
        assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
        assert_same(theirs, ours, "kea-admin 3.0.4 db-upgrade")
        assert expiries(ours) == before
        for db in (theirs, ours):
            code, result = run_json(db, "verify")
            assert (code, result["verdict"]) == (ExitCode.OK, "CLEAN"), result
    finally:
        new.stop()


# -- releases no Debian package ships: Kea's catalogs, compared on this server ------------------

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "catalogs"
GOLDEN_RELEASES = ("3.1.8", "3.2.0")
# Kea's TIMESTAMP columns without NULL / NOT NULL at 3.2 (field.md §3): what an
# explicit_defaults_for_timestamp OFF server makes NOT NULL.
IMPLICIT_TIMESTAMPS_3_2 = {
    "table logs column timestamp",
    "table flq_pool4 column created_ts", "table flq_pool4 column modification_ts",
    "table flq_pool6 column created_ts", "table flq_pool6 column modification_ts",
    "table free_lease4 column modification_ts", "table free_lease6 column modification_ts",
}


def comparable(cat: catalog.Catalog) -> dict[str, dict[str, str]]:
    """A catalog as the same schema reads on any server of its flavour: MySQL's default
    character sets and collations named as such (keadb_cli.schema.expected), bodies and
    the sql_mode they were created under left out (Kea's text and kea-db's differ)."""
    flat = catalog._flatten(cat)
    if cat.backend == "mysql":
        flat = expected.normalise(flat)
    for attrs in flat.values():
        for attr in ("body_hash", "sql_mode"):
            attrs.pop(attr, None)
    return flat


@CELLWISE
@pytest.mark.parametrize("release", GOLDEN_RELEASES)
def test_init_builds_kea_s_catalog_of_a_release_without_a_package(
        release: str, cell: Cell, server: DatabaseServer,
        make: Callable[[], FreshDatabase]) -> None:
    """Kea 3.1/3.2's create script has no Debian package: its catalog, recorded on the
    reference server of the flavour (tests/data/catalogs), and kea-db's init on this one,
    both read as any server of the flavour reads them. Where explicit_defaults_for_timestamp
    is OFF, exactly Kea's implicit TIMESTAMP columns (and the first NOT NULL one of each
    table) differ, as the setting makes them."""
    from keadb_cli.commands.verify import _timestamp_setting

    db = make()
    lift = _breaks(cell)[2] if _breaks(cell) == BINLOG else ()
    with lifted(server, lift):
        code, result = run_json(db, "init", "--kea-version", release)
    assert (code, result["action"]) == (ExitCode.OK, "initialized"), result
    golden = GOLDEN_DIR / cell.flavor / f"Kea-{release}.json"
    want = comparable(catalog.Catalog.from_json(golden.read_text(encoding="utf-8")))
    have = comparable(read_catalog(db))
    assert sorted(want) == sorted(have)
    differ = {key for key in want if want[key] != have[key]}
    if cell.id in OFF_ERA:
        assert all(_timestamp_setting(want[k], have[k]) for k in differ), \
            {k: (want[k], have[k]) for k in differ if not _timestamp_setting(want[k], have[k])}
        if release == "3.2.0":
            assert differ >= IMPLICIT_TIMESTAMPS_3_2, IMPLICIT_TIMESTAMPS_3_2 - differ
    else:
        assert differ == set(), {k: (want[k], have[k]) for k in sorted(differ)[:10]}


# -- preflight -------------------------------------------------------------------------------


@CELLWISE
def test_preflight_gives_kea_s_verdicts(cell: Cell, server: DatabaseServer,
                                       make: Callable[[], FreshDatabase],
                                       tmp_path: Path) -> None:
    """A Kea 3.0 database kea-admin built (Kea's grants only): every check passes for 3.0;
    a Kea 2.2 one is BEHIND for 3.0 and MATCH for 2.2."""
    from test_preflight import run, statuses, write

    current, old = make(), make()
    lift = (_breaks(cell) or ("", "", ()))[2]
    with lifted(server, lift):
        admin_init(current, "3.0.4")
        admin_init(old, "2.2.0")
    for db, release, schema, code in ((current, "3.0.4", "pass", ExitCode.OK),
                                      (old, "3.0.4", "fail", ExitCode.BEHIND),
                                      (old, "2.2.0", "pass", ExitCode.OK)):
        entry = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
                 "password": db.password, "name": db.name}
        config = write(tmp_path / f"kea-{db.name}-{release}.json", "Dhcp4", entry)
        proc = run("preflight", "--config", str(config), "--kea-version", release, "--json")
        doc = json.loads(proc.stdout)
        got = statuses(doc, "Dhcp4.lease-database")
        assert (got["config"], got["login"], got["schema"], got["privileges"]) == \
            ("pass", "pass", schema, "pass"), (release, doc)
        assert proc.returncode == code, (release, proc.returncode, doc)
