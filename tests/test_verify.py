"""`kea-db verify`: a live database against the schema its schema_version records, on real
PostgreSQL, MariaDB and Oracle MySQL servers; databases built by kea-db and by Debian's
kea-admin; drift of every kind; no trace left; and upgrade refusing a drifted database."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kea_admin import kea_admin_init, kea_admin_upgrade
from servers import FreshDatabase
from test_upgrade import dbs, kea22, kea_db, read_catalog, upgrade_json

from keadb_cli.commands.verify import SessionConnection
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import ExitCode
from keadb_cli.kea.access import DbAccess
from keadb_cli.schema import catalog
from keadb_cli.schema.scripts import known_schemas

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

pytestmark = [pytest.mark.db, pytest.mark.kea]

__all__ = ["dbs"]  # the fixture, shared with test_upgrade

Make = Callable[[], FreshDatabase]


def verify(db: FreshDatabase, *args: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "verify", *args, "--json")
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["results"][0]


def init(db: FreshDatabase, release: str) -> None:
    proc = kea_db(db, "init", "--kea-version", release)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr


def sql(db: FreshDatabase, *statements: str) -> None:
    """Run statements as the database's own user (as an operator changing it would)."""
    if db.type == "postgresql":
        from test_chain_pgsql import _execute

        _execute(db, list(statements))
    else:
        from test_chain_mysql import _seed

        _seed(db, list(statements))


def scratch_left(db: FreshDatabase) -> list[Any]:
    if db.type == "postgresql":
        return db.server.sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                             "'keadb_verify_%'", database=db.name)
    return db.server.sql("SHOW DATABASES LIKE 'keadb\\_verify\\_%'")


def access(db: FreshDatabase) -> DbAccess:
    return DbAccess(type=db.type, host=db.host, port=db.port, user=db.user,
                    password=db.password, name=db.name)


def shown(result: dict[str, Any]) -> str:
    return result["detail"] + "".join(
        f"\n  {f['severity']}: {f['kind']} {f['object']}: {f['detail']}"
        for f in result["errors"] + result["warnings"])


def findings(result: dict[str, Any], severity: str) -> list[str]:
    return [f"{f['kind']} {f['object']}" for f in result[severity + "s"]]


# -- the catalog through a kea-db session -------------------------------------------------


def test_catalog_read_through_a_session_equals_the_drivers(dbs: Make) -> None:
    """verify reads catalogs through kea-db's own session (text rows): the same catalog as
    the DBAPI drivers give, on a Kea 2.2 database kea-admin built."""
    db = kea22(dbs())
    with open_session(plan_for(access(db))) as session:
        ours = catalog.read_catalog(SessionConnection(session, db.type), db.type,
                                    row_tables=())
    theirs = read_catalog(db)
    catalog.assert_same_catalog(
        catalog.Catalog(**{**theirs.__dict__, "rows": ()}), ours,
        labels=("driver", "session"))
    assert ours.counts()["tables"] > 20


# -- clean databases ----------------------------------------------------------------------


@pytest.mark.parametrize("release", ["2.2.0", "2.6.3", "3.0.4", "3.2.0"])
def test_no_false_positive_and_no_trace_on_a_kea_db_built_schema(
    release: str, dbs: Make
) -> None:
    """A regression check, not a proof of correctness: verify builds its expectation from
    the same revisions init ran, so CLEAN here holds by construction. What it does catch:
    a finding verify invents (from the server's rendering, its scratch namespace, the
    comparison), a change verify leaves in the database (catalog and rows unchanged) and a
    scratch namespace left behind. The proofs against Kea's own schema are the kea-admin
    tests below (test_a_kea_admin_built_schema_is_clean, test_upgraded_databases_are_clean)
    and the drift tests."""
    db = dbs()
    init(db, release)
    before = read_catalog(db)
    code, result = verify(db)
    assert (code, result["verdict"], result["errors"], result["warnings"]) == \
        (ExitCode.OK, "CLEAN", [], []), shown(result)
    assert result["bodies"]["kea-db"] > 0
    # Nothing written, nothing left.
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    assert scratch_left(db) == []


@pytest.mark.parametrize("release", ["2.2.0", "2.6.3", "3.0.4"])
def test_a_kea_admin_built_schema_is_clean(release: str, dbs: Make) -> None:
    """The proof that verify's expectation is Kea's schema: a database Debian's kea-admin
    of that release built (Kea's own SQL, not kea-db's) is CLEAN, with no error and no
    warning, and verify changes nothing in it."""
    db = dbs()
    kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name, release=release)
    before = read_catalog(db)
    code, result = verify(db)
    assert (code, result["verdict"], result["errors"], result["warnings"]) == \
        (ExitCode.OK, "CLEAN", [], []), shown(result)
    assert result["bodies"]["kea"] > 0  # Kea's own routine texts, recognised by hash
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    assert scratch_left(db) == []


def test_upgraded_databases_are_clean(dbs: Make) -> None:
    """kea-admin 2.2.0 built, upgraded by kea-admin 3.0.4 / by kea-db: both clean."""
    theirs, ours = kea22(dbs()), kea22(dbs())
    kea_admin_upgrade(theirs.type, theirs.host, theirs.port, theirs.user, theirs.password,
                      theirs.name, release="3.0.4")
    code, result = upgrade_json(ours, "--kea-version", "3.0.4", "--yes")
    assert code == ExitCode.OK, result
    for db in (theirs, ours):
        code, result = verify(db)
        assert (code, result["verdict"], result["errors"], result["warnings"]) == \
            (ExitCode.OK, "CLEAN", [], []), shown(result)


# -- drift ----------------------------------------------------------------------------------


def _index_on(cat: catalog.Catalog, table: str, column: str) -> str:
    return next(i.name for i in cat.table(table).indexes
                if not i.primary and not i.unique and any(column in c for c in i.columns))


def _drift(db: FreshDatabase) -> tuple[set[str], set[str]]:
    """Change a Kea database in every way verify must see; return the objects it must
    report as errors and as warnings."""
    cat = read_catalog(db)
    index = _index_on(cat, "lease4", "hwaddr")
    errors = {f"missing table lease4 index {index}",
              "changed table host_identifier_type column name",
              "missing rows lease_state row"}
    if db.type == "postgresql":
        function = next(r for r in cat.routines
                        if r.returns == "trigger" and not r.arguments)
        sql(db, f"DROP INDEX {index}",
            "ALTER TABLE host_identifier_type ALTER COLUMN name TYPE varchar(40)",
            f"CREATE OR REPLACE FUNCTION {function.name}() RETURNS trigger AS "
            "$$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql")
        errors.add(f"changed routine {function.key}")
    else:
        trigger = next(t for t in cat.triggers if t.table == "dhcp4_subnet")
        sql(db, f"DROP INDEX {index} ON lease4",
            "ALTER TABLE host_identifier_type MODIFY name VARCHAR(40)",
            f"DROP TRIGGER {trigger.name}",
            f"CREATE TRIGGER {trigger.name} {trigger.timing} {trigger.events[0]} ON "
            f"{trigger.table} FOR EACH ROW SET @keadb_test = 1")
        errors.add(f"changed trigger {trigger.name}")
    sql(db, "DELETE FROM lease_state WHERE state = 2",
        "CREATE TABLE operator_notes (id INT PRIMARY KEY, note VARCHAR(80))",
        "ALTER TABLE lease4 ADD COLUMN site_tag VARCHAR(16)",
        "CREATE INDEX operator_expire ON lease4 (expire)")
    warnings = {"extra table operator_notes", "extra table lease4 column site_tag",
                "extra table lease4 index operator_expire"}
    return errors, warnings


def test_drift_is_reported_object_by_object(dbs: Make) -> None:
    db = dbs()
    init(db, "3.0.4")
    errors, warnings = _drift(db)
    before = read_catalog(db)
    code, result = verify(db)
    assert (code, result["verdict"]) == (ExitCode.DRIFT, "DRIFT"), shown(result)
    assert set(findings(result, "error")) == errors, shown(result)
    assert set(findings(result, "warning")) == warnings, shown(result)
    changed = next(f for f in result["errors"] if f["object"].endswith("column name"))
    assert "(40)" in changed["detail"] and "(32)" in changed["detail"]
    row = next(f for f in result["errors"] if f["object"] == "rows lease_state row")
    assert json.loads(row["detail"])["state"] in (2, "2")
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    assert scratch_left(db) == []
    # The text report: errors on stdout, warnings on stderr, the same exit code.
    proc = kea_db(db, "verify")
    assert proc.returncode == ExitCode.DRIFT
    assert "DRIFT" in proc.stdout and "error: missing table lease4 index" in proc.stdout
    assert "warning: " in proc.stderr and "extra table operator_notes" in proc.stderr


def test_only_extra_objects_are_warnings_and_exit_0(dbs: Make) -> None:
    db = dbs()
    init(db, "2.6.3")
    sql(db, "CREATE TABLE operator_notes (id INT PRIMARY KEY)")
    code, result = verify(db)
    assert (code, result["verdict"]) == (ExitCode.OK, "CLEAN"), shown(result)
    assert result["errors"] == []
    assert "extra table operator_notes" in findings(result, "warning")


def test_what_is_not_a_kea_schema_is_refused(dbs: Make) -> None:
    empty = dbs()
    code, result = verify(empty)
    assert (code, result["verdict"]) == (ExitCode.EMPTY, "EMPTY")
    foreign = dbs()
    sql(foreign, "CREATE TABLE something (id INT)")
    code, result = verify(foreign)
    assert (code, result["verdict"]) == (ExitCode.FOREIGN, "FOREIGN")


# -- upgrade verifies first -------------------------------------------------------------


def test_upgrade_refuses_a_drifted_database_before_any_change(dbs: Make) -> None:
    db = kea22(dbs())
    if db.type == "postgresql":
        sql(db, "ALTER TABLE host_identifier_type ALTER COLUMN name TYPE varchar(40)")
    else:
        sql(db, "ALTER TABLE host_identifier_type MODIFY name VARCHAR(40)")
    before = read_catalog(db)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.DRIFT, "refused"), result["detail"]
    assert [f["object"] for f in result["verify"]["errors"]] == [
        "table host_identifier_type column name"]
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--plan")
    assert code == ExitCode.OK
    assert any("verify error: changed table host_identifier_type column name" in f
               for f in result["findings"])
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes", "--skip-verify")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert "verify skipped (--skip-verify)" in result["findings"]


def test_upgrade_keeps_the_operators_own_objects(dbs: Make) -> None:
    db = kea22(dbs())
    sql(db, "CREATE TABLE operator_notes (id INT PRIMARY KEY)")
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert [f["object"] for f in result["verify"]["warnings"]] == ["table operator_notes"]
    code, after = verify(db)
    assert code == ExitCode.OK and "extra table operator_notes" in findings(after, "warning")


@pytest.fixture
def kea_grant_only(mysql_server_factory: Any, mysql_flavor: str) -> Iterator[FreshDatabase]:
    """A MySQL database whose user has Kea's documented grant only (ALL on its database):
    no scratch database for verify."""
    from servers import create_fresh_database, drop_fresh_database

    server = mysql_server_factory(tls="on", flavor=mysql_flavor)
    db = create_fresh_database(server)
    server.warm_auth_cache(db.user, db.password)
    yield db
    drop_fresh_database(db)


def test_with_kea_s_grant_verify_compares_with_the_record(kea_grant_only: FreshDatabase) -> None:
    """Kea's documented grant does not allow a scratch database: verify compares with
    kea-db's record of the schema instead (JSON `expected`), finds a database kea-admin
    built CLEAN and drift as drift, and upgrade verifies the same way."""
    db = kea22(kea_grant_only)
    code, result = verify(db)
    assert (code, result["verdict"], result["expected"]) == (ExitCode.OK, "CLEAN", "record"), \
        shown(result)
    assert result["bodies"]["kea"] > 50
    assert scratch_left(db) == []
    (kept,) = db.server.sql("SELECT type, name FROM host_identifier_type WHERE type = 4",
                            database=db.name)
    sql(db, "ALTER TABLE lease4 MODIFY hostname VARCHAR(200)",
        "DELETE FROM host_identifier_type WHERE type = 4",
        "CREATE TABLE operator_notes (id INT PRIMARY KEY)")
    code, result = verify(db)
    assert (code, result["verdict"], result["expected"]) == (ExitCode.DRIFT, "DRIFT", "record")
    assert set(findings(result, "error")) == {"changed table lease4 column hostname",
                                              "missing rows host_identifier_type row"}, \
        shown(result)
    assert findings(result, "warning") == ["extra table operator_notes"], shown(result)
    sql(db, "ALTER TABLE lease4 MODIFY hostname VARCHAR(255)",
        f"INSERT INTO host_identifier_type VALUES ({kept[0]}, '{kept[1]}')")
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert result["verify"]["errors"] == []
    code, result = verify(db)
    assert (code, result["verdict"], result["expected"]) == (ExitCode.OK, "CLEAN", "record"), \
        shown(result)


def test_the_record_is_what_the_revisions_build(mysql_server: Any) -> None:
    """keadb_cli/schema/expected_mysql.json is what tests/tools/expected_catalogs.py builds
    now, on this flavour's server: every version's objects and lookup rows."""
    import expected_catalogs
    from servers import create_fresh_database, drop_fresh_database

    from keadb_cli.schema import expected

    db = create_fresh_database(mysql_server)
    try:
        mysql_server.warm_auth_cache(db.user, db.password)
        built = expected.merge(expected_catalogs.build_states(db),
                               expected_catalogs.server_family(mysql_server))
    finally:
        drop_fresh_database(db)
    recorded = json.loads(expected_catalogs.OUT.read_text(encoding="utf-8"))
    assert recorded["format"] == expected.FORMAT
    want = recorded["flavours"][mysql_server.flavor]
    assert json.loads(json.dumps(built)) == want
    known = {f"{a}.{b}" for a, b in known_schemas("mysql")}
    assert set(want["versions"]) == known


# -- Kea's own bodies -----------------------------------------------------------------------


def test_kea_bodies_are_recognised_by_schema() -> None:
    """The rules of kea_body, on the recorded facts: a 2.2 MySQL body of isJsonSupported()
    that kea-admin's upgrades keep (recorded at 14.0, 22.2 and 30.0)."""
    from keadb_cli.commands.verify import _kea_bodies, kea_body
    from keadb_cli.kea.releases import Schema

    key = "routine function isJsonSupported()"
    bodies = _kea_bodies()["mariadb"][key]
    kept = next(h for h, versions in bodies.items() if {"14.0", "30.0"} <= set(versions))
    assert kea_body("mariadb", key, kept, Schema(14, 0)) == "yes"
    assert kea_body("mariadb", key, kept, Schema(18, 0)) == "yes"  # between two records
    later = kea_body("mariadb", key, kept, Schema(35, 0))
    assert later is not None and later != "yes" and "30.0" in later
    assert kea_body("mariadb", key, "0" * 64, Schema(14, 0)) is None
    assert kea_body("mariadb", "routine function nothing()", kept, Schema(14, 0)) is None
    # A schema no release expects (MySQL 16.0, PostgreSQL 15.0): the neighbours' bodies
    # count. (No recorded body changes next to those two; the rule on a record of two.)
    record = {"mysql": {"routine function r()": {"aa": ["14.0", "15.0"]},
                        "routine function s()": {"bb": ["17.0"]}}}
    assert kea_body("mysql", "routine function s()", "bb", Schema(16, 0), record) == "yes"
    assert kea_body("mysql", "routine function r()", "aa", Schema(16, 0), record) == "yes"
    assert kea_body("mysql", "routine function r()", "aa", Schema(18, 0), record) == \
        "14.0, 15.0"
    assert kea_body("mysql", "routine function s()", "bb", Schema(15, 0), record) == "17.0"


# -- what explicit_defaults_for_timestamp made of a column ------------------------------------


def _column(nullable: bool, default: str | None, extra: str = "",
            ctype: str = "timestamp") -> dict[str, str]:
    """A column's attributes as verify's comparison sees them (the catalog's reprs)."""
    return {"type": repr(ctype), "nullable": repr(nullable), "default": repr(default),
            "extra": repr(extra), "charset": "None", "collation": "None", "comment": "''"}


def test_columns_built_under_another_explicit_defaults_setting_are_warnings() -> None:
    """MariaDB before 10.10 (explicit_defaults_for_timestamp OFF) made Kea's implicit
    TIMESTAMP columns NOT NULL and gave a table's first one DEFAULT/ON UPDATE
    current_timestamp(); a server upgraded in place keeps them. Only that difference, of a
    TIMESTAMP column, is the setting's; anything else stays drift."""
    from keadb_cli.commands.verify import _timestamp_setting

    now = "current_timestamp()"
    on_update = "on update current_timestamp()"
    # lease4.expire: TIMESTAMP (implicit), built under OFF, expected under ON, and back.
    said = _timestamp_setting(_column(True, None), _column(False, now, on_update))
    assert said is not None and "was OFF" in said and "nullable is False" in said
    said = _timestamp_setting(_column(False, now, on_update), _column(True, None))
    assert said is not None and "was ON" in said
    # logs.timestamp: TIMESTAMP DEFAULT CURRENT_TIMESTAMP: only nullability.
    assert _timestamp_setting(_column(True, now), _column(False, now)) is not None
    # modification_ts: TIMESTAMP NOT NULL, under OFF with the default and on-update.
    assert _timestamp_setting(_column(False, None), _column(False, now, on_update)) is not None
    # Not the setting's: another type, a changed type, a default no setting gives, a
    # difference outside nullability/default/extra.
    assert _timestamp_setting(_column(True, None, ctype="datetime"),
                              _column(False, now, on_update, ctype="datetime")) is None
    assert _timestamp_setting(_column(True, None), _column(False, now, on_update,
                                                           ctype="datetime")) is None
    assert _timestamp_setting(_column(True, None), _column(False, "'2020-01-01 00:00:00'")) \
        is None
    other = _column(False, now, on_update)
    other["comment"] = "'x'"
    assert _timestamp_setting(_column(True, None), other) is None
    assert _timestamp_setting(_column(True, None), _column(True, None)) is None
