"""What an upgrade that failed says it left, checked against what it left.

Every message of :func:`keadb_cli.commands.upgrade.run._after_failure` is caused on a real
server and the database is then read: a run that stopped in its checks changed nothing
(no journal, schema_version as it was, the same catalog); a MySQL run that stopped in a
step left its journal and the mark on schema_version, and a second run completes it; a
PostgreSQL run left nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pymysql
import pytest
from servers import FreshDatabase
from test_upgrade import dbs, kea22, read_catalog, upgrade_json, version
from test_verify import sql

from keadb_cli.commands.upgrade.run import AFTER_CHECKS, AFTER_JOURNAL, AFTER_TRANSACTION
from keadb_cli.errors import ExitCode
from keadb_cli.schema import catalog

pytestmark = [pytest.mark.db, pytest.mark.kea]

__all__ = ["dbs"]  # the fixture, shared with test_upgrade

HOLD = 30.0  # seconds the blocking session holds its lock at the most


def _journal(db: FreshDatabase) -> list[Any]:
    if db.type == "postgresql":
        return db.server.sql("SELECT tablename FROM pg_tables WHERE tablename = "
                             "'keadb_upgrade_journal'", database=db.name)
    return db.server.sql("SHOW TABLES LIKE 'keadb\\_upgrade\\_journal'", database=db.name)


def _hold_lock(db: FreshDatabase, table: str, taken: threading.Event,
               done: threading.Event) -> None:
    """Another session locks ``table`` against reads until ``done`` (or HOLD seconds)."""
    if db.type == "postgresql":
        with psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                             dbname=db.name) as conn:
            conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            taken.set()
            done.wait(HOLD)
        return
    mysql = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                            database=db.name)
    try:
        with mysql.cursor() as cur:
            cur.execute(f"LOCK TABLES {table} WRITE")
            taken.set()
            done.wait(HOLD)
            cur.execute("UNLOCK TABLES")
    finally:
        mysql.close()


def test_a_failure_in_the_checks_says_nothing_changed(dbs: Any) -> None:
    """A read of the checks (verify's read of the lookup rows) that the server ends
    (statement timeout behind another session's lock): nothing was changed, and nothing
    was."""
    db = kea22(dbs())
    before, schema = read_catalog(db), version(db)
    taken, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, "lease_state", taken, done))
    holder.start()
    try:
        assert taken.wait(10)
        code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes",
                                    "--allow-other-sessions", "--statement-timeout", "2")
    finally:
        done.set()
        holder.join(HOLD + 5)
    assert result["action"] == "refused", result
    assert code in (ExitCode.UPGRADE_FAILED, ExitCode.UNREACHABLE), result
    assert result["detail"].endswith(AFTER_CHECKS), result["detail"]
    assert "journal" not in result["detail"]
    assert result["steps"] == []
    assert version(db) == schema
    assert _journal(db) == []
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))


def test_a_failure_in_a_step_says_what_it_left(dbs: Any) -> None:
    """A step that fails (a table of the operator's where 18.0 / 17.0 creates
    lease4_pool_stat): MySQL says the journal records it and schema_version is marked, and
    both are so, and a second run after the cause is removed completes the upgrade;
    PostgreSQL says nothing was changed, and the database is as it was."""
    db = kea22(dbs())
    sql(db, "CREATE TABLE lease4_pool_stat (operator_column INT PRIMARY KEY)")
    before, schema = read_catalog(db), version(db)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.UPGRADE_FAILED, "refused"), result
    if db.type == "postgresql":
        assert result["detail"].endswith(AFTER_TRANSACTION), result["detail"]
        assert version(db) == schema
        assert _journal(db) == []
        catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    else:
        assert result["detail"].endswith(AFTER_JOURNAL), result["detail"]
        assert len(_journal(db)) == 1
        (minor,), = db.server.sql("SELECT minor FROM schema_version", database=db.name)
        assert minor == 9999, "schema_version is not marked"
    sql(db, "DROP TABLE lease4_pool_stat")
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert _journal(db) == []
