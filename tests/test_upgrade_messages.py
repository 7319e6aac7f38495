"""What an upgrade that failed says it left, checked against what it left.

Every message of :func:`keadb_cli.commands.upgrade.run._after_failure` is caused on a real
server and the database is then read: a run that stopped in its checks changed nothing
(no journal, schema_version as it was, the same catalog); a MySQL run that stopped in a
step left its journal and the mark on schema_version, and a second run completes it; a
PostgreSQL run left nothing.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pymysql
import pytest
from servers import FreshDatabase
from test_upgrade import _start, dbs, kea22, read_catalog, upgrade_json, version
from test_verify import sql

from keadb_cli.commands.upgrade.run import (
    AFTER_CHECKS,
    AFTER_FIX,
    AFTER_JOURNAL,
    AFTER_TRANSACTION,
    AFTER_UNKNOWN,
)
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
               done: threading.Event, *, reads: bool = False) -> None:
    """Another session locks ``table`` until ``done`` (or HOLD seconds): against reads
    too, or (``reads``) only against changes, so that reads pass and DDL waits."""
    if db.type == "postgresql":
        with psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                             dbname=db.name) as conn:
            conn.execute(f"LOCK TABLE {table} IN {'SHARE' if reads else 'ACCESS EXCLUSIVE'} "
                         "MODE")
            taken.set()
            done.wait(HOLD)
        return
    mysql = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                            database=db.name)
    try:
        with mysql.cursor() as cur:
            cur.execute(f"LOCK TABLES {table} {'READ' if reads else 'WRITE'}")
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


@pytest.mark.parametrize("dbs", ["mariadb", "mysql"], indirect=True)
def test_a_failure_while_fixing_user_contexts_says_the_schema_is_untouched(dbs: Any) -> None:
    """MySQL --fix-user-context sets non-JSON contexts to NULL before the journal begins;
    a failure there (an operator's trigger refusing the update) says the schema was not
    changed, and it was not."""
    db = kea22(dbs())
    db.server.sql("INSERT INTO lease6 (address, duid, subnet_id, lease_type, iaid, prefix_len, "
                  "state, user_context) VALUES ('2001:db8::99', UNHEX('01'), 1, 0, 9, 128, 0, '')",
                  database=db.name)
    sql(db, "CREATE TRIGGER operator_guard BEFORE UPDATE ON lease6 FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'leases are frozen'")
    before, schema = read_catalog(db), version(db)
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes", "--fix-user-context")
    assert (code, result["action"]) == (ExitCode.UPGRADE_FAILED, "refused"), result
    assert "leases are frozen" in result["detail"]
    assert result["detail"].endswith(AFTER_FIX), result["detail"]
    assert version(db) == schema
    assert _journal(db) == []
    catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))


def test_a_session_ended_inside_a_step_says_what_it_left(dbs: Any) -> None:
    """The server ends kea-db's session while a step waits on another session's lock
    (KILL / pg_terminate_backend): MySQL says the run had begun or that the journal
    records it, and the journal and the mark are there, and a second run completes it;
    PostgreSQL says nothing was changed, and nothing was."""
    db = kea22(dbs())
    before, schema = read_catalog(db), version(db)
    taken, done = threading.Event(), threading.Event()
    # dhcp4_options is altered by a later step (after 14.0 / 13.0's first steps).
    holder = threading.Thread(target=_hold_lock, args=(db, "dhcp4_options", taken, done),
                              kwargs={"reads": True})
    holder.start()
    try:
        assert taken.wait(10)
        upgrade = _start(db, "--allow-other-sessions")
        killed = _end_waiting_session(db, deadline=time.monotonic() + HOLD / 2)
        out, _err = upgrade.communicate(timeout=120)
    finally:
        done.set()
        holder.join(HOLD + 5)
    assert killed, "kea-db's session never waited on the lock"
    result = json.loads(out)["results"][0]
    assert result["action"] == "refused", result
    if db.type == "postgresql":
        assert result["detail"].endswith(AFTER_TRANSACTION), result["detail"]
        assert version(db) == schema and _journal(db) == []
        catalog.assert_same_catalog(before, read_catalog(db), labels=("before", "after"))
    else:
        assert result["detail"].endswith((AFTER_UNKNOWN, AFTER_JOURNAL)), result["detail"]
        assert len(_journal(db)) == 1
        (minor,), = db.server.sql("SELECT minor FROM schema_version", database=db.name)
        assert minor == 9999, "schema_version is not marked"
    code, result = upgrade_json(db, "--kea-version", "3.0.4", "--yes")
    assert (code, result["action"]) == (ExitCode.OK, "upgraded"), result["detail"]
    assert _journal(db) == []


def _end_waiting_session(db: FreshDatabase, deadline: float) -> bool:
    """End (as the superuser) the session of ``db``'s user that waits on a lock."""
    while time.monotonic() < deadline:
        if db.type == "postgresql":
            rows = db.server.sql(
                "SELECT pid FROM pg_stat_activity WHERE usename = %s AND datname = %s "
                "AND wait_event_type = 'Lock'", params=(db.user, db.name))
            if rows:
                db.server.sql("SELECT pg_terminate_backend(%s)", params=(rows[0][0],))
                return True
        else:
            rows = db.server.sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND DB = %s "
                "AND STATE LIKE %s", params=(db.user, db.name, "%metadata lock%"))
            if rows:
                db.server.sql(f"KILL {int(rows[0][0])}")
                return True
        time.sleep(0.05)
    return False
