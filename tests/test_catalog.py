"""keadb_cli.schema.catalog: reading live schemas on both backends, storing and comparing them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from kea_admin import kea_admin_init
from servers import MYSQL_FLAVORS, FreshDatabase

from keadb_cli.schema.catalog import (
    TIMESTAMP_MARK,
    Catalog,
    Column,
    Constraint,
    Index,
    Routine,
    Table,
    TableRows,
    Trigger,
    assert_same_catalog,
    body_hash,
    diff,
    normalize_body,
    read_catalog,
)

# --- without a database -----------------------------------------------------------------


def test_normalize_body_drops_comments_and_layout_but_not_strings() -> None:
    body = """BEGIN
        -- a comment
        SET x = 'a  --  b';   # another
        /* block
           comment */ SET y = "q";
    END"""
    assert normalize_body(body) == "BEGIN SET x = 'a  --  b'; SET y = \"q\"; END"
    # PostgreSQL bodies keep '#' (an operator there).
    assert normalize_body("SELECT 1 # 2", hash_comments=False) == "SELECT 1 # 2"


def test_body_hash_ignores_formatting_only() -> None:
    a = "BEGIN\n  SET x = 1;\nEND"
    assert body_hash(a) == body_hash("BEGIN SET x = 1; -- why\n END")
    assert body_hash(a) != body_hash("BEGIN SET x = 2; END")
    assert body_hash(None) == ""


def _small_catalog(**changes: Any) -> Catalog:
    table = Table(
        name="lease4",
        columns=(
            Column("address", 1, "int(10) unsigned", False, None),
            Column("state", 2, "int(10) unsigned", True, "0"),
        ),
        constraints=(Constraint("PRIMARY", "PRIMARY KEY", ("address",)),),
        indexes=(Index("PRIMARY", ("address",), unique=True, primary=True, method="BTREE"),),
        options=(("engine", "InnoDB"),),
    )
    base = Catalog(
        backend="mysql",
        tables=(table,),
        triggers=(Trigger("lease4_AINS", "lease4", "AFTER", ("INSERT",), "abc"),),
        routines=(Routine("f", "FUNCTION", ("IN x int(11)",), "int(11)", "def"),),
        rows=(TableRows("lease_state", ("state", "name"), ((0, "default"),)),),
    )
    return dataclasses.replace(base, **changes)


def test_catalog_is_frozen_and_round_trips_through_json() -> None:
    catalog = _small_catalog()
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.backend = "postgresql"  # type: ignore[misc]
    assert Catalog.from_json(catalog.to_json()) == catalog
    assert hash(Catalog.from_json(catalog.to_json())) == hash(catalog)


def test_diff_is_sorted_and_readable() -> None:
    a = _small_catalog()
    table = a.tables[0]
    changed = dataclasses.replace(
        table,
        columns=(table.columns[0], dataclasses.replace(table.columns[1], default="1")),
    )
    b = _small_catalog(
        tables=(changed,),
        triggers=(),
        rows=(TableRows("lease_state", ("state", "name"), ((0, "default"), (1, "declined"))),),
    )
    assert diff(a, a) == []
    assert diff(a, b, labels=("kea", "ours")) == [
        'rows lease_state row [1, "declined"]: only in ours',
        "table lease4 column state: default: kea='0' ours='1'",
        "trigger lease4_AINS: only in kea",
    ]
    assert diff(a, b, ignore={"default"}) == [
        'rows lease_state row [1, "declined"]: only in b',
        "trigger lease4_AINS: only in a",
    ]


def test_assert_same_catalog_reports_every_difference() -> None:
    a = _small_catalog()
    assert_same_catalog(a, Catalog.from_json(a.to_json()))
    b = _small_catalog(routines=(Routine("f", "FUNCTION", ("IN x int(11)",), "int(11)", "xyz"),))
    with pytest.raises(AssertionError, match=r"(?s)1 catalog difference.*body_hash: a=def b=xyz"):
        assert_same_catalog(a, b)
    assert_same_catalog(a, b, ignore={"body_hash"})


# --- MariaDB and Oracle MySQL ---------------------------------------------------------------

MYSQL_SCHEMA = [
    "CREATE TABLE kind (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(16) NOT NULL,"
    " made TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB",
    "CREATE TABLE item (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, kind TINYINT UNSIGNED,"
    " other TINYINT UNSIGNED, label VARCHAR(64) CHARACTER SET latin1 COLLATE latin1_bin,"
    " note TEXT, changed TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE"
    " CURRENT_TIMESTAMP, PRIMARY KEY (id), UNIQUE KEY item_label (label, kind),"
    " KEY item_note (note(10)), KEY item_changed (changed DESC),"
    " CONSTRAINT fk_item_kind FOREIGN KEY (kind) REFERENCES kind (id) ON DELETE CASCADE,"
    " CONSTRAINT fk_item_other FOREIGN KEY (other) REFERENCES kind (id)"
    " ON DELETE NO ACTION ON UPDATE SET NULL) ENGINE=InnoDB COMMENT='things'",
    "INSERT INTO kind (id, name) VALUES (1, 'one'), (0, 'zero')",
    "CREATE TRIGGER item_BINS BEFORE INSERT ON item FOR EACH ROW SET NEW.note = 'x'",
    "CREATE PROCEDURE touch(IN which BIGINT UNSIGNED, OUT done INT)"
    " BEGIN UPDATE item SET note = 'y' WHERE id = which; SET done = 1; END",
    "CREATE FUNCTION twice(n INT) RETURNS INT DETERMINISTIC RETURN n * 2",
]


# How each flavour spells the same definitions in information_schema: MariaDB keeps integer
# display widths, lower-case current_timestamp() and a "NULL" default, and reports RESTRICT
# for an unspecified referential action; Oracle MySQL (8.0.19+) drops display widths, says
# CURRENT_TIMESTAMP (marked DEFAULT_GENERATED), no default, and NO ACTION.
MYSQL_SPELLING: dict[str, dict[str, Any]] = {
    "mariadb": {
        "bigint unsigned": "bigint(20) unsigned",
        "int": "int(11)",
        "now default": "current_timestamp()",
        "now on update": "on update current_timestamp()",
        "null default": "NULL",
        "unspecified rule": "RESTRICT",
    },
    "mysql": {
        "bigint unsigned": "bigint unsigned",
        "int": "int",
        "now default": "CURRENT_TIMESTAMP",
        "now on update": "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
        "null default": None,
        "unspecified rule": "NO ACTION",
    },
}


def _mysql_catalog(db: FreshDatabase, **kwargs: Any) -> Catalog:
    conn = pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, database=db.name
    )
    try:
        return read_catalog(conn, "mysql", **kwargs)
    finally:
        conn.close()


@pytest.fixture
def mysql_schema(mysql_db: FreshDatabase) -> FreshDatabase:
    for statement in MYSQL_SCHEMA:
        mysql_db.server.sql(statement, database=mysql_db.name)
    return mysql_db


@pytest.mark.db
def test_read_mysql_catalog(mysql_schema: FreshDatabase) -> None:
    spelling = MYSQL_SPELLING[mysql_schema.server.flavor]
    catalog = _mysql_catalog(mysql_schema)
    assert catalog.backend == "mysql"
    assert [t.name for t in catalog.tables] == ["item", "kind"]
    item = catalog.table("item")
    columns = {c.name: c for c in item.columns}
    assert [c.name for c in item.columns] == ["id", "kind", "other", "label", "note", "changed"]
    assert columns["id"].type == spelling["bigint unsigned"]
    assert columns["id"].extra == "auto_increment" and not columns["id"].nullable
    assert (columns["label"].charset, columns["label"].collation) == ("latin1", "latin1_bin")
    assert columns["changed"].default == spelling["now default"]
    assert columns["changed"].extra == spelling["now on update"]
    assert columns["note"].default == spelling["null default"] and columns["note"].nullable

    constraints = {c.name: c for c in item.constraints}
    assert constraints["PRIMARY"].kind == "PRIMARY KEY"
    assert constraints["item_label"] == Constraint(
        "item_label", "UNIQUE", ("label", "kind"), on_delete=None, on_update=None
    )
    assert constraints["fk_item_kind"] == Constraint(
        "fk_item_kind",
        "FOREIGN KEY",
        ("kind",),
        "kind",
        ("id",),
        "CASCADE",
        spelling["unspecified rule"],
    )
    assert (constraints["fk_item_other"].on_delete, constraints["fk_item_other"].on_update) == (
        "NO ACTION",
        "SET NULL",
    )
    indexes = {i.name: i for i in item.indexes}
    assert indexes["item_note"].columns == ("note(10)",)
    assert indexes["item_changed"].columns == ("changed DESC",)
    assert indexes["item_label"].unique and not indexes["item_note"].unique
    assert indexes["PRIMARY"].primary
    # InnoDB (MariaDB and MySQL) adds an index for a foreign key without one.
    assert indexes["fk_item_other"].columns == ("other",)
    assert dict(item.options)["comment"] == "things"
    assert dict(item.options)["engine"] == "InnoDB"

    (trigger,) = catalog.triggers
    assert (trigger.name, trigger.table, trigger.timing, trigger.events) == (
        "item_BINS",
        "item",
        "BEFORE",
        ("INSERT",),
    )
    assert trigger.body_hash == body_hash("SET NEW.note = 'x'")
    routines = {r.name: r for r in catalog.routines}
    assert routines["touch"].kind == "PROCEDURE"
    assert routines["touch"].arguments == (
        f"IN which {spelling['bigint unsigned']}",
        f"OUT done {spelling['int']}",
    )
    assert routines["twice"].returns == spelling["int"]
    assert dict(routines["twice"].options)["deterministic"] == "YES"

    (rows,) = catalog.rows
    assert rows == TableRows(
        "kind", ("id", "name", "made"), ((0, "zero", TIMESTAMP_MARK), (1, "one", TIMESTAMP_MARK))
    )
    assert catalog.counts()["foreign_keys"] == 2
    assert Catalog.from_json(catalog.to_json()) == catalog
    assert _mysql_catalog(mysql_schema, row_tables=()).rows == ()


@pytest.mark.db
def test_mysql_diff_sees_a_changed_schema(mysql_schema: FreshDatabase) -> None:
    before = _mysql_catalog(mysql_schema)
    server, name = mysql_schema.server, mysql_schema.name
    server.sql("ALTER TABLE item MODIFY note MEDIUMTEXT", database=name)
    server.sql("DROP TRIGGER item_BINS", database=name)
    server.sql(
        "CREATE TRIGGER item_BINS BEFORE INSERT ON item FOR EACH ROW SET NEW.note = 'z'",
        database=name,
    )
    server.sql("INSERT INTO kind (id, name) VALUES (2, 'two')", database=name)
    old_hash, new_hash = body_hash("SET NEW.note = 'x'"), body_hash("SET NEW.note = 'z'")
    assert diff(before, _mysql_catalog(mysql_schema)) == [
        'rows kind row [2, "two", "<timestamp>"]: only in b',
        "table item column note: type: a='text' b='mediumtext'",
        f"trigger item_BINS: body_hash: a={old_hash} b={new_hash}",
    ]


@pytest.mark.db
def test_mysql_diff_sees_an_index_comment(mysql_schema: FreshDatabase) -> None:
    """Index definitions include the comment (and, where the server has it, visibility)."""
    before = _mysql_catalog(mysql_schema)
    server, name = mysql_schema.server, mysql_schema.name
    server.sql("ALTER TABLE item DROP INDEX item_note, ADD INDEX item_note (note(10)) "
               "COMMENT 'by note'", database=name)
    changes = diff(before, _mysql_catalog(mysql_schema))
    assert len(changes) == 1 and changes[0].startswith("table item index item_note: "
                                                      "definition:"), changes
    assert "by note" in changes[0]


# --- PostgreSQL ---------------------------------------------------------------------------

PG_SCHEMA = [
    "CREATE TABLE kind (id SMALLINT PRIMARY KEY, name VARCHAR(16) NOT NULL,"
    " made TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())",
    "CREATE TABLE item (id BIGSERIAL PRIMARY KEY, kind SMALLINT REFERENCES kind (id)"
    ' ON DELETE CASCADE, other SMALLINT, label TEXT COLLATE "C", dropped INT,'
    " note TEXT DEFAULT 'n', CONSTRAINT item_label UNIQUE (label, kind),"
    " CONSTRAINT fk_item_other FOREIGN KEY (other) REFERENCES kind (id) ON UPDATE SET NULL,"
    " CONSTRAINT item_note_check CHECK (note <> ''))",
    "ALTER TABLE item DROP COLUMN dropped",
    "CREATE INDEX item_lower_label ON item (lower(label)) WHERE label IS NOT NULL",
    "INSERT INTO kind (id, name) VALUES (1, 'one'), (0, 'zero')",
    "CREATE FUNCTION item_touch() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.note := 'x'; RETURN NEW; END; $$",
    "CREATE TRIGGER item_touch BEFORE INSERT OR UPDATE ON item FOR EACH ROW"
    " EXECUTE FUNCTION item_touch()",
    "CREATE PROCEDURE touch(which BIGINT) LANGUAGE sql AS $$ UPDATE item SET note = 'y'"
    " WHERE id = which $$",
    "CREATE FUNCTION twice(n INT) RETURNS INT IMMUTABLE LANGUAGE sql AS $$ SELECT n * 2 $$",
]


@pytest.fixture
def pg_conn(pg_db: FreshDatabase) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(
        host=pg_db.host,
        port=pg_db.port,
        user=pg_db.user,
        password=pg_db.password,
        dbname=pg_db.name,
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()


@pytest.mark.db
def test_read_postgresql_catalog(pg_conn: psycopg.Connection[Any]) -> None:
    for statement in PG_SCHEMA:
        pg_conn.execute(statement)
    catalog = read_catalog(pg_conn, "postgresql")
    assert catalog.backend == "postgresql"
    assert [t.name for t in catalog.tables] == ["item", "kind"]
    item = catalog.table("item")
    assert [(c.name, c.position) for c in item.columns] == [
        ("id", 1),
        ("kind", 2),
        ("other", 3),
        ("label", 4),
        ("note", 5),
    ]
    columns = {c.name: c for c in item.columns}
    assert columns["id"].type == "bigint"
    assert columns["id"].default == "nextval('item_id_seq'::regclass)"
    assert columns["label"].collation == "C"
    assert columns["note"].default == "'n'::text"

    constraints = {c.name: c for c in item.constraints}
    fk_kind = constraints["item_kind_fkey"]
    assert (fk_kind.columns, fk_kind.ref_table, fk_kind.ref_columns) == (("kind",), "kind", ("id",))
    assert (fk_kind.on_delete, fk_kind.on_update) == ("CASCADE", "NO ACTION")
    assert constraints["fk_item_other"].on_update == "SET NULL"
    assert constraints["item_label"].kind == "UNIQUE"
    assert constraints["item_label"].columns == ("label", "kind")
    assert constraints["item_note_check"].definition == "CHECK ((note <> ''::text))"
    indexes = {i.name: i for i in item.indexes}
    assert indexes["item_pkey"].primary and indexes["item_pkey"].unique
    assert indexes["item_lower_label"].columns == ("lower(label)",)
    assert "WHERE (label IS NOT NULL)" in (indexes["item_lower_label"].definition or "")

    (trigger,) = catalog.triggers
    assert (trigger.table, trigger.timing, trigger.events) == (
        "item",
        "BEFORE",
        ("INSERT", "UPDATE"),
    )
    assert dict(trigger.options)["function"] == "item_touch()"
    assert dict(trigger.options)["level"] == "ROW"
    routines = {r.name: r for r in catalog.routines}
    assert routines["touch"].kind == "PROCEDURE"
    assert routines["touch"].arguments == ("IN which bigint",)
    assert routines["twice"].returns == "integer"
    assert dict(routines["twice"].options)["volatility"] == "i"
    assert routines["item_touch"].returns == "trigger"

    (sequence,) = catalog.sequences
    assert sequence.name == "item_id_seq"
    assert dict(sequence.options)["owned_by"] == "item.id"
    assert [r.table for r in catalog.rows] == ["kind"]
    assert catalog.rows[0].rows == ((0, "zero", TIMESTAMP_MARK), (1, "one", TIMESTAMP_MARK))
    assert Catalog.from_json(catalog.to_json()) == catalog


# --- Kea's own schemas, as kea-admin builds them -----------------------------------------


@pytest.mark.db
@pytest.mark.kea
@pytest.mark.parametrize(
    ("fresh_db", "expected"),
    [
        *(
            pytest.param(
                flavor,  # MariaDB and Oracle MySQL: the same schema
                {
                    "tables": 54,
                    "indexes": 162,
                    "foreign_keys": 65,
                    "triggers": 55,
                    "procedures": 32,
                    "functions": 4,
                    "sequences": 0,
                },
                id=flavor,
            )
            for flavor in MYSQL_FLAVORS
        ),
        pytest.param(
            "postgresql",
            {
                "tables": 55,
                "indexes": 148,
                "foreign_keys": 68,
                "triggers": 81,
                "procedures": 0,
                "functions": 108,
                "sequences": 21,
            },
            id="postgresql",
        ),
    ],
    indirect=["fresh_db"],
)
def test_kea_admin_schema_counts(fresh_db: FreshDatabase, expected: dict[str, int]) -> None:
    """The counts kea-facts.md section 2.1 measured for Kea 2.2."""
    db = fresh_db
    kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
    conn: Any
    if db.type == "mysql":
        conn = pymysql.connect(
            host=db.host, port=db.port, user=db.user, password=db.password, database=db.name
        )
    else:
        conn = psycopg.connect(
            host=db.host, port=db.port, user=db.user, password=db.password, dbname=db.name
        )
    try:
        catalog = read_catalog(conn, db.type)
        again = read_catalog(conn, db.type)
    finally:
        conn.close()
    assert catalog.counts() == expected
    assert diff(catalog, again) == []
    assert Catalog.from_json(catalog.to_json()) == catalog
    versions = [r.rows for r in catalog.rows if r.table == "schema_version"]
    assert versions == ([((14, 0),)] if db.type == "mysql" else [((13, 0),)])
