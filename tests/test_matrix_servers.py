"""The server matrix (tests/matrix.py): each cell's server reports what the cell claims, Debian
12's kea-admin 2.2.0 can (or, where Kea's script is known to fail, cannot) initialise a
database on it, and a MariaDB 10.5 data directory survives an in-place upgrade to 10.11.

Every expected value is written here from the servers' documented defaults, never read from
the cells.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import matrix
import pytest
from kea_admin import KeaAdminError, kea_admin_init, require_kea_admin
from servers import (
    DatabaseServer,
    FreshDatabase,
    MariaDBServer,
    ServerStartError,
    ci_requires_servers,
    create_fresh_database,
    drop_fresh_database,
)

pytestmark = pytest.mark.db

IDS = matrix.CELL_IDS

# cell -> (version prefix, character_set_server, collation_server,
#          explicit_defaults_for_timestamp, log_bin)
MYSQL_EXPECTED: dict[str, tuple[str, str, str, int, int]] = {
    "mariadb10.5-defaults": ("10.5.", "latin1", "latin1_swedish_ci", 0, 0),
    "mariadb10.11-utf8mb4": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 1, 0),
    "mariadb10.11-latin1": ("10.11.", "latin1", "latin1_swedish_ci", 1, 0),
    "mariadb10.11-edft-off": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 0, 0),
    "mariadb10.11-binlog": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 1, 1),
    "mariadb10.11-ansi-quotes": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 1, 0),
    "mariadb10.11-no-backslash-escapes": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 1, 0),
    "mariadb10.11-force-pk": ("10.11.", "utf8mb4", "utf8mb4_general_ci", 1, 0),
    "mariadb11.8-defaults": ("11.8.", "utf8mb4", "utf8mb4_uca1400_ai_ci", 1, 0),
    # Oracle MySQL: the binary log is on by default.
    "mysql9.7-defaults": ("9.7.", "utf8mb4", "utf8mb4_0900_ai_ci", 1, 1),
    "mysql9.7-require-pk": ("9.7.", "utf8mb4", "utf8mb4_0900_ai_ci", 1, 1),
    "mysql9.7-edft-off": ("9.7.", "utf8mb4", "utf8mb4_0900_ai_ci", 0, 1),
}
# The sql_mode each cell adds to the compiled-in one (which has STRICT_TRANS_TABLES).
SQL_MODE_ADDED = {
    "mariadb10.11-ansi-quotes": "ANSI_QUOTES",
    "mariadb10.11-no-backslash-escapes": "NO_BACKSLASH_ESCAPES",
}
FORCE_PK_ON = {"mariadb10.11-force-pk"}
REQUIRE_PK_ON = {"mysql9.7-require-pk"}

# cell -> (server_version_num // 10000, database encoding, user owns the database)
PG_EXPECTED: dict[str, tuple[int, str, bool]] = {
    "pg13-defaults": (13, "UTF8", True),
    "pg15-utf8": (15, "UTF8", True),
    "pg15-latin1": (15, "LATIN1", True),
    "pg15-not-owner": (15, "UTF8", False),
    "pg17-defaults": (17, "UTF8", True),
    "pg18-defaults": (18, "UTF8", True),
}

# Where Kea's db-init is known to fail, and the server error that says why: a binary log
# without log_bin_trust_function_creators (ER_BINLOG_CREATE_ROUTINE_NEED_SUPER, at kea-admin's
# trigger check; Oracle MySQL logs by default, so it stops there before sql_require_primary_key
# matters), ANSI_QUOTES (a double-quoted string read as a column: ER_BAD_FIELD_ERROR), a
# required primary key (Kea creates `logs` without one: ER_REQUIRES_PRIMARY_KEY).
BINLOG_WITHOUT_TRUST = "ERROR 1419 (HY000)"
KEA_ADMIN_FAILS = {
    "mariadb10.11-binlog": BINLOG_WITHOUT_TRUST,
    "mariadb10.11-ansi-quotes": "ERROR 1054 (42S22)",
    "mariadb10.11-force-pk": "ERROR 1173 (42000)",
    "mysql9.7-defaults": BINLOG_WITHOUT_TRUST,
    "mysql9.7-require-pk": BINLOG_WITHOUT_TRUST,
    "mysql9.7-edft-off": BINLOG_WITHOUT_TRUST,
}
# Debian 12's kea-admin 2.2.0 creates these schema versions.
KEA_2_2_SCHEMA = {"mysql": (14, 0), "postgresql": (13, 0)}


def test_expectations_cover_every_cell() -> None:
    assert set(MYSQL_EXPECTED) | set(PG_EXPECTED) == set(IDS)
    assert set(MYSQL_EXPECTED).isdisjoint(PG_EXPECTED)
    assert set(IDS) >= set(KEA_ADMIN_FAILS)


@pytest.fixture
def cell_db(
    matrix_server: DatabaseServer, matrix_cell: matrix.Cell
) -> Iterator[FreshDatabase]:
    """A fresh database of the cell's kind on its server, dropped after the test."""
    db = matrix_cell.create_database(matrix_server)
    yield db
    drop_fresh_database(db)


def _one(server: DatabaseServer, query: str, database: str | None = None) -> tuple[Any, ...]:
    rows = server.sql(query, database)
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("matrix_server", IDS, indirect=True)
def test_server_reports_what_the_cell_claims(
    matrix_server: DatabaseServer, matrix_cell: matrix.Cell, cell_db: FreshDatabase
) -> None:
    cell_id = matrix_cell.id
    if cell_id in MYSQL_EXPECTED:
        prefix, charset, collation, edft, log_bin = MYSQL_EXPECTED[cell_id]
        version, got_charset, got_collation, got_edft, got_log_bin, trust, sql_mode = _one(
            matrix_server,
            "SELECT VERSION(), @@character_set_server, @@collation_server, "
            "@@explicit_defaults_for_timestamp, @@log_bin, @@log_bin_trust_function_creators, "
            "@@sql_mode",
        )
        assert str(version).startswith(prefix)
        assert (got_charset, got_collation) == (charset, collation)
        assert (got_edft, got_log_bin, trust) == (edft, log_bin, 0)
        modes = str(sql_mode).split(",")
        assert "STRICT_TRANS_TABLES" in modes
        for mode in ("ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"):
            assert (mode in modes) == (SQL_MODE_ADDED.get(cell_id) == mode), modes
        if matrix_server.flavor == "mariadb":
            assert _one(matrix_server, "SELECT @@innodb_force_primary_key") == (
                int(cell_id in FORCE_PK_ON),
            )
        else:
            assert _one(matrix_server, "SELECT @@sql_require_primary_key") == (
                int(cell_id in REQUIRE_PK_ON),
            )
        # The new database takes the server's character set (Kea's script names none).
        (db_charset,) = _one(
            matrix_server,
            "SELECT default_character_set_name FROM information_schema.schemata "
            f"WHERE schema_name = '{cell_db.name}'",
        )
        assert db_charset == charset
        return
    major, encoding, user_owns = PG_EXPECTED[cell_id]
    (version_num,) = _one(matrix_server, "SELECT current_setting('server_version_num')::int")
    assert version_num // 10000 == major
    got_encoding, owner, collate = _one(
        matrix_server,
        "SELECT pg_encoding_to_char(encoding), pg_get_userbyid(datdba), datcollate "
        f"FROM pg_database WHERE datname = '{cell_db.name}'",
    )
    assert got_encoding == encoding
    if encoding == "LATIN1":
        assert collate == "C"
    if user_owns:
        assert owner == cell_db.user
    else:
        assert owner not in (cell_db.user, "postgres")
        assert _one(
            matrix_server,
            f"SELECT has_database_privilege('{cell_db.user}', '{cell_db.name}', 'CREATE'), "
            f"has_schema_privilege('{cell_db.user}', 'public', 'CREATE'), "
            f"(SELECT rolsuper FROM pg_roles WHERE rolname = '{cell_db.user}')",
            cell_db.name,
        ) == (True, True, False)


@pytest.mark.parametrize("matrix_server", list(MYSQL_EXPECTED), indirect=True)
def test_mysql_user_has_kea_grant_only(
    matrix_server: DatabaseServer, cell_db: FreshDatabase
) -> None:
    # (Under ANSI_QUOTES the server quotes names with double quotes.)
    grants = [
        str(row[0]).replace('"', "`")
        for row in matrix_server.sql(f"SHOW GRANTS FOR '{cell_db.user}'@'%'")
    ]
    assert len(grants) == 2, grants
    assert grants[0].startswith(f"GRANT USAGE ON *.* TO `{cell_db.user}`@`%`")
    assert grants[1] == f"GRANT ALL PRIVILEGES ON `{cell_db.name}`.* TO `{cell_db.user}`@`%`"


@pytest.mark.kea
@pytest.mark.parametrize("matrix_server", IDS, indirect=True)
def test_kea_admin_2_2_db_init(
    matrix_server: DatabaseServer, matrix_cell: matrix.Cell, cell_db: FreshDatabase
) -> None:
    require_kea_admin()
    args = (cell_db.type, cell_db.host, cell_db.port, cell_db.user, cell_db.password,
            cell_db.name)
    if matrix_cell.id in KEA_ADMIN_FAILS:
        with pytest.raises(KeaAdminError) as failed:
            kea_admin_init(*args)
        assert KEA_ADMIN_FAILS[matrix_cell.id] in str(failed.value)
        return
    kea_admin_init(*args)
    assert matrix_server.sql("SELECT version, minor FROM schema_version", cell_db.name) == [
        KEA_2_2_SCHEMA[cell_db.type]
    ]


def test_mariadb_10_5_data_directory_upgraded_in_place_to_10_11() -> None:
    try:
        old = matrix.MIGRATION.before.start()
    except ServerStartError as exc:
        if ci_requires_servers(os.environ):
            pytest.fail(f"{matrix.MIGRATION.before.id} could not start: {exc}", pytrace=False)
        pytest.skip(f"{matrix.MIGRATION.before.id} could not start: {exc}")
    assert isinstance(old, MariaDBServer)
    new: MariaDBServer | None = None
    try:
        db = create_fresh_database(old)
        old.sql("CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP)", db.name)
        old.sql("INSERT INTO t (id) VALUES (1), (2)", db.name)
        assert str(_one(old, "SELECT VERSION()")[0]).startswith("10.5.")
        new = matrix.MIGRATION.upgrade(old)
        assert not old.is_running()
        assert str(_one(new, "SELECT VERSION()")[0]).startswith("10.11.")
        assert new.sql("SELECT id FROM t ORDER BY id", db.name) == [(1,), (2,)]
        # The column keeps the definition 10.5 (explicit_defaults_for_timestamp OFF) gave it.
        (is_nullable,) = _one(
            new,
            "SELECT is_nullable FROM information_schema.columns "
            f"WHERE table_schema = '{db.name}' AND table_name = 't' AND column_name = 'ts'",
        )
        assert is_nullable == "NO"
        # mariadb-upgrade ran: it records the version it upgraded to.
        assert (new.data / "mysql_upgrade_info").read_text().startswith("10.11.")
        assert _one(new, "SELECT @@explicit_defaults_for_timestamp") == (1,)
    finally:
        old.stop()
        if new is not None:
            new.stop()
