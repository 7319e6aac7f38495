"""`kea-db purge` on real PostgreSQL and MariaDB: a Kea 3.0 database built by kea-db init,
audit entries written the way Kea's config backend writes them (a revision routine, then a
change whose trigger records the entry), forensic log rows of several ages. Only rows older
than the age go, each object's newest entry stays, --plan counts what is then deleted, a
second run deletes nothing, an age under one day and a database that is not Kea's are
refused with nothing deleted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from servers import FreshDatabase
from test_upgrade import kea_db

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.db]

AUDIT_DAYS, LOGS_DAYS = 30, 30


def run_sql(db: FreshDatabase, statements: list[str]) -> list[list[tuple[Any, ...]]]:
    """Each statement in one session as the database's own user (as a Kea server writes:
    the revision routine leaves the revision id in a session variable); every result."""
    results: list[list[tuple[Any, ...]]] = []
    if db.type == "postgresql":
        with psycopg.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                             dbname=db.name, autocommit=True) as conn:
            for statement in statements:
                cur = conn.execute(statement)
                results.append([tuple(r) for r in cur.fetchall()] if cur.description else [])
        return results
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                results.append([tuple(r) for r in cur.fetchall()] if cur.description else [])
    finally:
        conn.close()
    return results


def ago(db: FreshDatabase, days: int) -> str:
    if db.type == "postgresql":
        return f"now() - interval '{days} days'"
    return f"NOW() - INTERVAL {days} DAY"


def revision(db: FreshDatabase, family: str, days: int, message: str) -> str:
    """What Kea's config backend calls before a change: a revision at its time (here
    ``days`` ago)."""
    routine = f"createAuditRevision{family.upper()}"
    if db.type == "postgresql":
        return f"SELECT {routine}({ago(db, days)}, 'all', '{message}', false)"
    return f"CALL {routine}({ago(db, days)}, 'all', '{message}', 0)"


def param(db: FreshDatabase, family: str, name: str, value: str) -> str:
    ts = "" if db.type == "postgresql" else ", modification_ts"
    now = "" if db.type == "postgresql" else ", NOW()"
    return (f"INSERT INTO {family}_global_parameter (name, value, parameter_type{ts}) "
            f"VALUES ('{name}', '{value}', 0{now})")


def seed(db: FreshDatabase) -> None:
    """DHCPv4: r1 (100 days ago) creates A and B, r2 (90) updates A, r3 (80) deletes B, r4
    (5) updates A, r5 (written now, backdated to 100 days afterwards) changes nothing.
    DHCPv6: s1 (100) creates C, s2 (60) updates C. Logs 400, 40, 31, 29 and 2 days old."""
    v4, v6 = "dhcp4", "dhcp6"
    run_sql(db, [
        revision(db, v4, 100, "r1"), param(db, v4, "a", "1"), param(db, v4, "b", "1"),
        revision(db, v4, 90, "r2"),
        f"UPDATE {v4}_global_parameter SET value = '2' WHERE name = 'a'",
        revision(db, v4, 80, "r3"), f"DELETE FROM {v4}_global_parameter WHERE name = 'b'",
        revision(db, v4, 5, "r4"),
        f"UPDATE {v4}_global_parameter SET value = '3' WHERE name = 'a'",
        revision(db, v4, 0, "r5"),
        f"UPDATE {v4}_audit_revision SET modification_ts = {ago(db, 100)} "
        "WHERE log_message = 'r5'",
        revision(db, v6, 100, "s1"), param(db, v6, "c", "1"),
        revision(db, v6, 60, "s2"),
        f"UPDATE {v6}_global_parameter SET value = '2' WHERE name = 'c'",
        *(f"INSERT INTO logs (timestamp, address, log) VALUES ({ago(db, d)}, '192.0.2.{d}', "
          f"'lease {d}')" for d in (400, 40, 31, 29, 2)),
    ])


def audit_left(db: FreshDatabase, family: str) -> list[tuple[str, str]]:
    """(revision message, modification type) of every audit row left."""
    rows = run_sql(db, [
        f"SELECT r.log_message, m.modification_type FROM {family}_audit a "
        f"JOIN {family}_audit_revision r ON r.id = a.revision_id "
        "JOIN modification m ON m.id = a.modification_type ORDER BY a.id"])[0]
    return [(str(r[0]), str(r[1])) for r in rows]


def left(db: FreshDatabase) -> dict[str, Any]:
    return {
        "dhcp4_audit": audit_left(db, "dhcp4"),
        "dhcp6_audit": audit_left(db, "dhcp6"),
        "dhcp4_audit_revision": sorted(str(r[0]) for r in run_sql(
            db, ["SELECT log_message FROM dhcp4_audit_revision"])[0]),
        "dhcp6_audit_revision": sorted(str(r[0]) for r in run_sql(
            db, ["SELECT log_message FROM dhcp6_audit_revision"])[0]),
        "logs": sorted(str(r[0]) for r in run_sql(db, ["SELECT log FROM logs"])[0]),
    }


def purge(db: FreshDatabase, *args: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "purge", *args, "--json")
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def tables(doc: dict[str, Any], key: str) -> dict[str, tuple[int, int]]:
    """table -> (rows ``key`` (to_delete / deleted), kept_newest)."""
    return {t["table"]: (t[key], t["kept_newest"]) for t in doc["results"][0]["tables"]}


# By hand from seed(): (rows that go, old rows kept as an object's newest entry).
EXPECTED = {
    "dhcp4_audit": (3, 1),  # A create, B create, A update (r2) go; B delete (r3) is B's newest
    "dhcp4_audit_revision": (3, 1),  # r1, r2, r5 go; r3 holds B's newest
    "dhcp6_audit": (1, 1),  # C create goes; C update (s2) is C's newest
    "dhcp6_audit_revision": (1, 1),
    "logs": (3, 0),  # 400, 40, 31 days
}


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_purge(fresh_db: FreshDatabase, fresh_db_factory: Callable[..., FreshDatabase],
               tmp_path: Path) -> None:
    db = fresh_db
    proc = kea_db(db, "init", "--kea-version", "3.0")
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    seed(db)
    before = left(db)
    assert before["dhcp4_audit"] == [("r1", "create"), ("r1", "create"), ("r2", "update"),
                                     ("r3", "delete"), ("r4", "update")]
    assert before["dhcp6_audit"] == [("s1", "create"), ("s2", "update")]
    ages = ("--audit-older-than", str(AUDIT_DAYS), "--logs-older-than", str(LOGS_DAYS))

    # under one day: refused before connecting, nothing deleted
    for option in ("--audit-older-than", "--logs-older-than"):
        bad = kea_db(db, "purge", option, "0.9")
        assert bad.returncode == ExitCode.USAGE, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "one day" in bad.stderr
    assert left(db) == before

    code, plan = purge(db, *ages, "--plan")
    assert code == ExitCode.OK, plan
    assert plan["results"][0]["verdict"] == "PLAN"
    assert tables(plan, "to_delete") == EXPECTED
    assert left(db) == before

    code, done = purge(db, *ages, "--batch-size", "2")
    assert code == ExitCode.OK, done
    assert done["results"][0]["verdict"] == "PURGED"
    assert tables(done, "deleted") == tables(plan, "to_delete")
    batches = {t["table"]: t["batches"] for t in done["results"][0]["tables"]}
    assert batches["dhcp4_audit"] == 2 and batches["logs"] == 2  # 3 rows, 2 per batch

    after = left(db)
    assert after["dhcp4_audit"] == [("r3", "delete"), ("r4", "update")]
    assert after["dhcp6_audit"] == [("s2", "update")]
    assert after["dhcp4_audit_revision"] == ["r3", "r4"]
    assert after["dhcp6_audit_revision"] == ["s2"]
    assert after["logs"] == ["lease 2", "lease 29"]

    # again: nothing left to delete; the newest entries are still counted as kept
    code, again = purge(db, *ages)
    assert code == ExitCode.OK
    assert {t: d for t, (d, _) in tables(again, "deleted").items()} == dict.fromkeys(
        EXPECTED, 0)
    assert left(db) == after

    # from a Kea configuration file whose lease and config-backend entries name this one
    # database: it is purged once
    entry = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
             "password": db.password, "name": db.name}
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {
        "lease-database": entry, "config-control": {"config-databases": [entry]}}}))
    proc = kea_db(None, "purge", "--config", str(conf), *ages, "--plan", "--json")
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    from_config = json.loads(proc.stdout)
    assert [r["path"] for r in from_config["results"]] == ["Dhcp4.lease-database"]
    assert tables(from_config, "to_delete") == {t: (0, k) for t, (_, k) in EXPECTED.items()}
    assert db.password not in proc.stdout + proc.stderr

    # a database that is not Kea's: refused, its rows untouched
    other = fresh_db_factory(db.server)
    stamp = "timestamp" if db.type == "postgresql" else "`timestamp`"
    run_sql(other, [f"CREATE TABLE logs ({stamp} TIMESTAMP NULL, log TEXT)",
                    f"INSERT INTO logs VALUES ({ago(other, 400)}, 'old')"])
    code, foreign = purge(other, "--logs-older-than", "1")
    assert code == ExitCode.FOREIGN, foreign
    assert foreign["results"][0]["verdict"] == "FOREIGN"
    assert run_sql(other, ["SELECT COUNT(*) FROM logs"])[0][0][0] == 1


@pytest.mark.parametrize("args", [
    (), ("--audit-older-than", "0"), ("--logs-older-than", "-1"),
    ("--logs-older-than", "nan"), ("--audit-older-than", "inf"),
    ("--logs-older-than", "36526"), ("--audit-older-than", "1", "--batch-size", "0"),
])
def test_refused_options_are_one_line_usage_errors(
        args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any connection (the port is closed: a connection would be
    UNREACHABLE)."""
    from keadb_cli.cli.main import main

    code = main(["purge", *args, "--type", "postgresql", "--host", "127.0.0.1",
                 "--port", "1", "--user", "u", "--name", "n"])
    out, err = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("kea-db: error:")
