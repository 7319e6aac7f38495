"""`kea-db stats check` and `kea-db stats recount` on real PostgreSQL and MariaDB servers.

For each Kea release with a kea-admin here (3.0.4, 2.6.3, 2.2.0), two databases are built
by `kea-db init` and seeded alike with leases of every state the schema has (IPv4
addresses, IPv6 addresses, temporary addresses and prefixes, three subnets, two pools where
the schema has them, client classes in user_context), so Kea's own triggers fill the
statistics tables. The truth of every number is Kea's: the counters the triggers wrote,
and the rows that release's `kea-admin stats-recount` leaves on the twin database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from kea_admin import kea_admin_stats_recount
from servers import FreshDatabase

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.db, pytest.mark.kea]

TABLES = {  # statistics table -> its key columns
    "lease4_stat": ("subnet_id", "state"),
    "lease6_stat": ("subnet_id", "lease_type", "state"),
    "lease4_pool_stat": ("subnet_id", "pool_id", "state"),
    "lease6_pool_stat": ("subnet_id", "pool_id", "lease_type", "state"),
    "lease4_stat_by_client_class": ("client_class",),
    "lease6_stat_by_client_class": ("client_class", "lease_type"),
}
CONTEXTS = (
    None,
    "",
    '{"ISC": {"client-classes": ["gold", "silver"]}}',
    '{"ISC": {"client-classes": ["gold"]}}',
    '{"foo": 1}',
    '{"ISC": {"client-classes": []}}',
    '{"ISC": {"client-classes": ["silver", "bronze"]}, "other": true}',
)

# The class of subnet 7's leases only: its counters end at 0.
LONELY = """'{"ISC": {"client-classes": ["lonely"]}}'"""

Rows = dict[str, dict[tuple[Any, ...], Any]]
Expected = dict[tuple[str, tuple[Any, ...]], tuple[Any, int]]  # (table, key) -> numbers


def stats(db: FreshDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    target = ["--type", db.type, "--host", db.host, "--port", str(db.port), "--user", db.user,
              "--name", db.name]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    env["KEA_DB_PASSWORD"] = db.password
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", "stats", args[0], *target,
                           *args[1:]], capture_output=True, text=True, env=env, timeout=300,
                          check=False, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def stats_json(db: FreshDatabase, *args: str) -> tuple[int, dict[str, Any]]:
    proc = stats(db, *args, "--json")
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["results"][0]


def sql(db: FreshDatabase, statements: list[str]) -> None:
    for statement in statements:
        db.server.sql(statement, database=db.name)


class Release:
    """A Kea release under test: its kea-admin, what its schema has."""

    def __init__(self, admin: str, states4: tuple[int, ...], states6: tuple[int, ...],
                 pools: bool, binary_v6: bool) -> None:
        self.admin, self.states4, self.states6 = admin, states4, states6
        self.series = admin.rsplit(".", 1)[0]
        self.pools, self.binary_v6 = pools, binary_v6

    def tables(self) -> dict[str, tuple[str, ...]]:
        return {t: k for t, k in TABLES.items() if self.pools or "pool" not in t}


RELEASES = {
    "3.0.4": Release("3.0.4", (0, 0, 1, 2, 3), (0, 0, 1, 2, 3, 4), pools=True, binary_v6=True),
    "2.6.3": Release("2.6.3", (0, 0, 1, 2), (0, 0, 1, 2), pools=True, binary_v6=True),
    "2.2.0": Release("2.2.0", (0, 0, 1, 2), (0, 0, 1, 2), pools=False, binary_v6=False),
}


def seed_statements(db_type: str, release: Release) -> list[str]:
    """Leases of every state the release has; then the only leases of subnet 7 expire, so
    the triggers leave counters at 0 there (a recount has no row for them)."""
    pg = db_type == "postgresql"
    expire = "now() + interval '1 day'" if pg else "NOW() + INTERVAL 1 DAY"

    def ctx(i: int) -> str:
        value = CONTEXTS[i % len(CONTEXTS)]
        return "NULL" if value is None else "'" + value + "'"

    def v6(address: str) -> str:
        return f"INET6_ATON('{address}')" if release.binary_v6 and not pg else f"'{address}'"

    def pool(i: int) -> str:
        return f", {i % 2 + 1}" if release.pools else ""

    duid = "'\\x0102'" if pg else "UNHEX('0102')"
    s4, s6 = release.states4, release.states6
    v4 = [f"({3221225984 + i}, 3600, {expire}, {1 + i % 3}, {s4[i % len(s4)]}{pool(i)}, "
          f"{ctx(i)})" for i in range(60)]
    v4.append(f"(3221226200, 3600, {expire}, 7, 0{pool(0)}, {LONELY})")
    v6_rows = []
    for i in range(72):
        lease_type = (0, 0, 2, 1)[i % 4]
        address = f"2001:db8:{i:x}00::" if lease_type == 2 else f"2001:db8::{i:x}"
        prefix = 56 if lease_type == 2 else 128
        v6_rows.append(f"({v6(address)}, {duid}, 3600, {expire}, {1 + i % 3}, 1800, "
                       f"{lease_type}, {i}, {prefix}, {s6[i % len(s6)]}{pool(i)}, "
                       f"{ctx(i + 3)})")
    v6_rows.append(f"({v6('2001:db8:ffff::1')}, {duid}, 3600, {expire}, 7, 1800, 0, 99, 128, "
                   f"0{pool(0)}, {LONELY})")
    pool_column = ", pool_id" if release.pools else ""
    return [
        "INSERT INTO lease4 (address, valid_lifetime, expire, subnet_id, state"
        f"{pool_column}, user_context) VALUES " + ", ".join(v4),
        "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
        f"lease_type, iaid, prefix_len, state{pool_column}, user_context) VALUES "
        + ", ".join(v6_rows),
        "UPDATE lease4 SET state = 2 WHERE subnet_id = 7",
        "UPDATE lease6 SET state = 2 WHERE subnet_id = 7",
    ]


def read_rows(db: FreshDatabase, release: Release) -> Rows:
    """Every row of every statistics table: key -> leases."""
    out: Rows = {}
    for table, keys in release.tables().items():
        rows = db.server.sql(f"SELECT {', '.join(keys)}, leases FROM {table}", database=db.name)
        out[table] = {tuple(row[:-1]): row[-1] for row in rows}
    return out


def drift(rows: Rows, release: Release) -> tuple[list[str], Expected]:
    """In every table: one counter raised by 5, one row deleted, one bogus row inserted.
    Returns the statements and what a check must then say: (table, key) -> (the table's
    number or None for no row, the recount, which is the trigger's number before)."""
    statements: list[str] = []
    expected: Expected = {}

    def where(keys: tuple[str, ...], key: tuple[Any, ...]) -> str:
        return " AND ".join(f"{k} = " + (f"'{v}'" if isinstance(v, str) else str(v))
                            for k, v in zip(keys, key, strict=True))

    for table, keys in release.tables().items():
        counted = sorted((k for k, v in rows[table].items() if v), key=repr)
        assert len(counted) >= 2, (table, rows[table])
        raised, deleted = counted[0], counted[1]
        statements.append(f"UPDATE {table} SET leases = leases + 5 WHERE {where(keys, raised)}")
        expected[(table, raised)] = (rows[table][raised] + 5, rows[table][raised])
        statements.append(f"DELETE FROM {table} WHERE {where(keys, deleted)}")
        expected[(table, deleted)] = (None, rows[table][deleted])
        bogus = tuple("ghost" if k == "client_class" else (0 if k in ("lease_type", "state")
                                                             else 999) for k in keys)
        values = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in bogus)
        statements.append(f"INSERT INTO {table} ({', '.join(keys)}, leases) "
                          f"VALUES ({values}, 7)")
        expected[(table, bogus)] = (7, 0)
    return statements, expected


def nonzero(rows: Rows) -> Rows:
    """The rows without the counters at 0 (which a recount has no row for)."""
    return {t: {k: v for k, v in r.items() if v} for t, r in rows.items()}


# Every release on PostgreSQL and MariaDB; Oracle MySQL (a slower server) with 3.0.4.
CASES = [*((backend, release) for release in RELEASES for backend in ("postgresql", "mariadb")),
         ("mysql", "3.0.4")]


@pytest.mark.parametrize(("fresh_db", "release"), CASES, indirect=["fresh_db"])
def test_stats_check_and_recount_match_kea(
    fresh_db: FreshDatabase, fresh_db_factory: Callable[..., FreshDatabase], release: str
) -> None:
    kea = RELEASES[release]
    tables = kea.tables()
    ours, theirs = fresh_db, fresh_db_factory(fresh_db.server)
    for db in (ours, theirs):
        proc = subprocess.run(
            [sys.executable, "-m", "keadb_cli", "init", "--type", db.type, "--host", db.host,
             "--port", str(db.port), "--user", db.user, "--name", db.name,
             "--kea-version", kea.series],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("KEA_DB_")},
                 "KEA_DB_PASSWORD": db.password})
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        sql(db, seed_statements(db.type, kea))
    triggered = read_rows(ours, kea)
    assert triggered == read_rows(theirs, kea)
    # The seed reaches every table, every counted state, and leaves counters at 0.
    assert {k[-1] for k in triggered["lease6_stat"]} == {0, 1, 4} & {0, 1, *kea.states6}
    assert {k[-1] for k in triggered["lease4_stat"]} == {0, 1}
    assert {k[0] for k in triggered["lease4_stat_by_client_class"]} == {"gold", "silver",
                                                                         "bronze", "lonely"}
    assert 0 in triggered["lease4_stat"].values()
    assert 0 in triggered["lease6_stat_by_client_class"].values()

    # (1) The triggers keep the tables consistent.
    code, result = stats_json(ours, "check")
    assert (code, result["verdict"]) == (ExitCode.OK, "CONSISTENT"), result
    assert sorted(t["table"] for t in result["tables"]) == sorted(tables)
    assert result["differences"] == []

    # (2) Drift in every table, named with both numbers.
    statements, expected = drift(triggered, kea)
    for db in (ours, theirs):
        sql(db, statements)
    drifted = read_rows(ours, kea)
    code, result = stats_json(ours, "check")
    assert (code, result["verdict"]) == (ExitCode.STATS_MISMATCH, "MISMATCH"), result
    found = {(d["table"], tuple(d[k] for k in tables[d["table"]])): (d["stored"], d["recount"])
             for d in result["differences"]}
    assert found == expected
    text = stats(ours, "check")
    assert text.returncode == ExitCode.STATS_MISMATCH
    lines = text.stdout.splitlines()
    for (table, key), (stored, counted) in expected.items():
        subnet = f"subnet {key[0]} " if tables[table][0] == "subnet_id" else f"'{key[0]}'"
        shown = "no row" if stored is None else str(stored)
        assert [line for line in lines if f"{table} " in line and subnet in line
                and f"table {shown}, recount {counted}" in line], (table, key, text.stdout)

    # (4) --plan changes nothing, and says what recount then changes.
    code, planned = stats_json(ours, "recount", "--plan")
    assert (code, planned["verdict"]) == (ExitCode.OK, "PLANNED"), planned
    assert read_rows(ours, kea) == drifted

    # (3) recount leaves exactly the rows the release's kea-admin stats-recount leaves.
    code, done = stats_json(ours, "recount")
    assert (code, done["verdict"]) == (ExitCode.OK, "RECOUNTED"), done
    kea_admin_stats_recount(theirs.type, theirs.host, theirs.port, theirs.user,
                            theirs.password, theirs.name, release=kea.admin)
    after = read_rows(ours, kea)
    assert after == read_rows(theirs, kea)
    assert after != drifted  # it did rewrite something
    assert nonzero(triggered)["lease4_stat"] == after["lease4_stat"]

    plan_counts = {t["table"]: (t["added"], t["changed"], t["removed"])
                   for t in planned["tables"] if "added" in t}
    real = {}
    for table in plan_counts:
        old, new = drifted[table], after[table]
        real[table] = (len(set(new) - set(old)),
                       sum(1 for k in set(old) & set(new) if old[k] != new[k]),
                       len(set(old) - set(new)))
    assert plan_counts == real
    assert set(plan_counts) == {t for t in tables if "class" not in t}
    # The class counters kea-admin leaves alone stay drifted, and check still says so.
    code, result = stats_json(ours, "check")
    assert code == ExitCode.STATS_MISMATCH
    assert {d["table"] for d in result["differences"]} == {"lease4_stat_by_client_class",
                                                           "lease6_stat_by_client_class"}
    # Nothing left to do: a second recount changes no row.
    code, again = stats_json(ours, "recount")
    assert (code, again["verdict"]) == (ExitCode.OK, "UNCHANGED"), again
    assert read_rows(ours, kea) == after

    # A schema no release has: which recount applies is unknown, so recount refuses.
    sql(ours, ["UPDATE schema_version SET minor = 7",
               "DELETE FROM lease4_stat WHERE subnet_id = 1"])
    proc = stats(ours, "recount")
    assert proc.returncode == ExitCode.UNSUPPORTED_RELEASE, proc.stdout + proc.stderr
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert ".7 is not the schema of any Kea release" in proc.stderr
    assert read_rows(ours, kea)["lease4_stat"] == {
        k: v for k, v in after["lease4_stat"].items() if k[0] != 1}


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_stats_refuses_what_is_not_a_kea_schema(fresh_db: FreshDatabase) -> None:
    code, result = stats_json(fresh_db, "check")
    assert (code, result["verdict"]) == (ExitCode.EMPTY, "EMPTY"), result
    fresh_db.server.sql("CREATE TABLE lease4_stat (subnet_id int, state int, leases int)",
                        database=fresh_db.name)
    fresh_db.server.sql(f'ALTER TABLE lease4_stat OWNER TO "{fresh_db.user}"',
                        database=fresh_db.name)
    # A readonly entry: recount refuses before it connects; --plan only reads.
    proc = stats(fresh_db, "recount", "--readonly")
    assert proc.returncode == ExitCode.READONLY, proc.stdout + proc.stderr
    assert "readonly" in proc.stderr and proc.stdout == ""
    for args in (("check",), ("recount",), ("recount", "--plan"),
                 ("recount", "--plan", "--readonly")):
        proc = stats(fresh_db, *args)
        assert proc.returncode == ExitCode.FOREIGN, proc.stdout + proc.stderr
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("kea-db: error: "), proc.stderr
        assert "FOREIGN" in lines[0] and "not a Kea schema" in lines[0]
