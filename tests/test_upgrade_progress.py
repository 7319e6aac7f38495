"""`kea-db upgrade`'s progress lines during a long statement: on MariaDB the rows the server
reports examined, read on a second session; without that session, the upgrade as before."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kea_admin import kea_admin_init
from servers import FreshDatabase, create_fresh_database, drop_fresh_database, grant_verify_scratch

from keadb_cli.commands.upgrade import run
from keadb_cli.errors import ExitCode
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import parse_release
from keadb_cli.schema.state import Target

pytestmark = [pytest.mark.db, pytest.mark.kea]

LEASES = 150_000  # lease6 rows: mysql_19_0's quiet UPDATE outlives a few heartbeats
BEAT = 0.1  # seconds between heartbeats in these tests
_DIGITS = " CROSS JOIN ".join(
    f"(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 "
    f"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL "
    f"SELECT 9) {x}" for x in "abcdef")
_MANY_LEASE6 = (
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    "lease_type, iaid, prefix_len, state) SELECT "
    "CONCAT('2001:db8:7::', LOWER(HEX(n DIV 65536)), ':', LOWER(HEX(n % 65536))), "
    "UNHEX(LPAD(HEX(n), 8, '0')), 3600, '2031-01-01 00:00:00', 1 + n % 5, 1800, 0, n, 128, 0 "
    "FROM (SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 100000*f.d + 1 AS n "
    f"FROM {_DIGITS}) s WHERE n <= {LEASES}")
EXAMINED = re.compile(r"still running mysql_19_0 statement \d+/\d+ \(\d+ s; the server has "
                      r"examined ([\d,]+) rows \(lease6 holds about [\d,]+\)\)$")


@pytest.fixture
def kea22_many(mysql_server_factory: Any) -> Iterator[FreshDatabase]:
    """A Kea 2.2 database (Debian's kea-admin) on MariaDB with :data:`LEASES` lease6 rows."""
    server = mysql_server_factory(tls="on", flavor="mariadb")
    db = create_fresh_database(server)
    try:
        grant_verify_scratch(db)
        kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name)
        server.sql(_MANY_LEASE6, database=db.name)
        yield db
    finally:
        drop_fresh_database(db)


def _upgrade(db: FreshDatabase, monkeypatch: pytest.MonkeyPatch,
             ) -> tuple[run.UpgradeResult, list[str]]:
    monkeypatch.setattr(run, "HEARTBEAT", BEAT)
    lines: list[str] = []
    access = DbAccess(type=db.type, host=db.host, port=db.port, user=db.user,
                      password=db.password, name=db.name)
    target = Target(release=parse_release("3.0"), expect=None, source="--kea-version 3.0")
    result = run.upgrade_one(access, target, run.Options(), progress=lines.append)
    return result, lines


def test_mariadb_lines_name_the_rows_the_server_examined(
        kea22_many: FreshDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """During mysql_19_0's UPDATE of every lease6 row, a heartbeat line says how many rows
    the server has examined so far (PROCESSLIST's EXAMINED_ROWS, read on a second session):
    more than none, no more than the table holds. The second session ends with the run."""
    db = kea22_many
    result, lines = _upgrade(db, monkeypatch)
    assert (result.action, result.exit_code) == (run.Action.UPGRADED, ExitCode.OK), result.detail
    counts = [int(m.group(1).replace(",", "")) for m in map(EXAMINED.search, lines) if m]
    assert counts, "\n".join(lines)
    assert all(0 < count <= LEASES for count in counts), counts
    deadline = time.monotonic() + 10  # the server forgets a closed session soon after
    while _sessions(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(db) == 0


def _sessions(db: FreshDatabase) -> int:
    rows = db.server.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                         params=(db.user,))
    return int(rows[0][0])


def test_without_a_second_session_the_upgrade_is_unchanged(
        kea22_many: FreshDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user may hold one connection only (max_user_connections 1): the heartbeat's
    second session is refused by the server, and the upgrade runs as it would without it,
    its lines giving kea-db's estimate instead of the server's count."""
    db = kea22_many
    db.server.sql(f"ALTER USER '{db.user}'@'%' WITH MAX_USER_CONNECTIONS 1")
    result, lines = _upgrade(db, monkeypatch)
    assert (result.action, result.exit_code) == (run.Action.UPGRADED, ExitCode.OK), result.detail
    assert str(result.expected) == "30.0" and [s.revision for s in result.ran][-1] == "mysql_30_0"
    running = [line for line in lines if "still running mysql_19_0" in line]
    assert running, "\n".join(lines)  # the statement outlived a heartbeat: a session was asked
    assert not any("the server has examined" in line for line in lines), "\n".join(lines)
    assert any("the estimate: " in line for line in running), "\n".join(running)
