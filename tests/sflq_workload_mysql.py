"""Steps that exercise the shared free lease queue routines (MySQL schema 34.0 on).

Kea 3.1.8 and later have no Debian package to compare with, so the expected results are
golden files: tests/tools/kea_golden_catalogs.py runs these steps on a database built by the
release's own create script and stores what each step returned (or which error it raised)
next to the release's golden catalog (``tests/data/catalogs/<server>/<TAG>.sflq.json``);
tests/test_chain_mysql.py runs them on kea-db's schema and compares. Change a step and the
golden results must be rebuilt.

Every step runs, failing or not, in one session with autocommit (as Kea's own connections):
results and errors are both part of the behaviour.
"""

from __future__ import annotations

from typing import Any

from keadb_cli.schema.catalog import _json_value

# 192.0.2.1 as lease4 stores it.
A = 3221225985
T = "'2023-05-01 10:00:00'"
T2 = "'2024-01-01 00:00:00'"


def _lease4(name: str, state: int, *where: str) -> str:
    return (
        f"SELECT {name}({A + 5}, UNHEX('01'), NULL, 60, {T}, 1, 0, 0, 'h', {state}, NULL,"
        f" NULL, NULL, 0{''.join(', ' + w for w in where)})"
    )


def _lease6(name: str, address: str, state: int, *where: str) -> str:
    return (
        f"SELECT {name}(INET6_ATON('{address}'), UNHEX('03'), 60, {T}, 10, 30, 0, 3, 128, 0,"
        f" 0, 'h', NULL, NULL, NULL, {state}, NULL, 0{''.join(', ' + w for w in where)})"
    )


STEPS = [
    # DHCPv4: a pool with one lease in use and one expired-reclaimed.
    "INSERT INTO lease4 (address, valid_lifetime, expire, subnet_id, state) VALUES"
    f" ({A + 1}, 60, {T}, 1, 0), ({A + 2}, 60, {T}, 1, 2)",
    f"CALL sflqCreateFlqPool4({A}, {A + 9}, 1, 0)",
    "SELECT address FROM free_lease4 ORDER BY address",
    "SELECT start_address, end_address, last_returned_address, subnet_id FROM flq_pool4",
    f"SELECT sflqPickFreeLease4({A}, {A + 9})",
    f"SELECT sflqPickFreeLease4({A}, {A + 9})",
    f"SELECT sflqPickFreeLease4({A}, {A + 9})",
    "SELECT sflqPickFreeLease4(1, 2)",
    f"CALL sflqCreateFlqPool4({A}, {A + 9}, 1, 0)",
    f"CALL sflqCreateFlqPool4({A}, {A + 9}, 1, 1)",
    "CALL sflqCreateFlqPool4(0, 5, 1, 0)",
    f"CALL sflqCreateFlqPool4({A + 9}, {A}, 1, 0)",
    f"CALL sflqCreateFlqPool4({A + 20}, {A + 2519}, 2, 0)",
    f"SELECT COUNT(*), MIN(address), MAX(address) FROM free_lease4 WHERE address >= {A + 20}",
    "SELECT @kea_recursion_limit",
    _lease4("sflqInsertLease4", 0),
    f"SELECT COUNT(*) FROM free_lease4 WHERE address = {A + 5}",
    _lease4("sflqUpdateLease4", 2, str(A + 5), T),
    f"SELECT COUNT(*) FROM free_lease4 WHERE address = {A + 5}",
    _lease4("sflqUpdateLease4", 0, str(A + 5), T2),
    _lease4("sflqUpdateLease4", 0, str(A + 5), T),
    f"SELECT COUNT(*) FROM free_lease4 WHERE address = {A + 5}",
    f"SELECT sflqDeleteLease4({A + 5}, {T2})",
    f"SELECT sflqDeleteLease4({A + 5}, {T})",
    f"SELECT sflqDeleteLease4({A + 5}, {T})",
    f"SELECT address FROM free_lease4 WHERE address < {A + 20} ORDER BY address",
    # Prefix increments, at every interesting length.
    "SELECT p, n, HEX(incrementV6Prefix(INET6_ATON(p), n)) FROM"
    " (SELECT '2001:db8::' AS p UNION ALL SELECT '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'"
    " UNION ALL SELECT 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' UNION ALL SELECT '::ff') AS ps,"
    " (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL"
    " SELECT 9 UNION ALL SELECT 48 UNION ALL SELECT 63 UNION ALL SELECT 64 UNION ALL"
    " SELECT 120 UNION ALL SELECT 127 UNION ALL SELECT 128 UNION ALL SELECT 129) AS ns"
    " ORDER BY p, n",
    "SELECT HEX(incrementV6Prefix(NULL, 64)), HEX(incrementV6Prefix(UNHEX('0102'), 16))",
    # DHCPv6: addresses, one in use, one expired-reclaimed.
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime,"
    " lease_type, iaid, prefix_len, state) VALUES"
    f" (INET6_ATON('2001:db8::3'), UNHEX('01'), 60, {T}, 10, 30, 0, 1, 128, 0),"
    f" (INET6_ATON('2001:db8::5'), UNHEX('02'), 60, {T}, 10, 30, 0, 2, 128, 2)",
    "CALL sflqCreateFlqPool6('2001:db8::1', '2001:db8::8', 0, 128, 10, 0)",
    "SELECT address, bin_address FROM free_lease6 ORDER BY bin_address",
    "SELECT sflqPickFreeLease6('2001:db8::1', '2001:db8::8')",
    "SELECT sflqPickFreeLease6('2001:db8::1', '2001:db8::8')",
    "SELECT sflqPickFreeLease6('2001:db8::1', '2001:db8::9')",
    "CALL sflqCreateFlqPool6('2001:db8::1', '2001:db8::8', 0, 128, 10, 0)",
    "CALL sflqCreateFlqPool6('2001:db8::1', '2001:db8::8', 0, 128, 11, 1)",
    "CALL sflqCreateFlqPool6('::', '2001:db8::8', 0, 128, 10, 0)",
    "CALL sflqCreateFlqPool6('2001:db8::9', '2001:db8::8', 0, 128, 10, 0)",
    "CALL sflqCreateFlqPool6('2001:db8::a', '2001:db8::b', 0, 0, 10, 0)",
    # Prefixes: the end of the range is not the start of a prefix.
    "CALL sflqCreateFlqPool6('2001:db8:1::', '2001:db8:1:5::', 2, 63, 10, 0)",
    "SELECT address FROM free_lease6 WHERE address LIKE '2001:db8:1:%' ORDER BY bin_address",
    # The same range with another delegated length, without recreating.
    "CALL sflqCreateFlqPool6('2001:db8:1::', '2001:db8:1:5::', 2, 64, 12, 0)",
    "SELECT address FROM free_lease6 WHERE address LIKE '2001:db8:1:%' ORDER BY bin_address",
    "SELECT start_address, end_address, lease_type, delegated_len, last_returned_address,"
    " subnet_id FROM flq_pool6 ORDER BY start_address",
    # A range reaching the top of the address space.
    "CALL sflqCreateFlqPool6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe',"
    " 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 0, 128, 10, 0)",
    "SELECT address FROM free_lease6 WHERE address LIKE 'ffff:%' ORDER BY bin_address",
    _lease6("sflqInsertLease6", "2001:db8::7", 0),
    "SELECT COUNT(*) FROM free_lease6 WHERE address = '2001:db8::7'",
    _lease6("sflqUpdateLease6", "2001:db8::7", 2, "INET6_ATON('2001:db8::7')", T),
    "SELECT address, bin_address FROM free_lease6 WHERE address = '2001:db8::7'",
    f"SELECT sflqDeleteLease6(INET6_ATON('2001:db8::7'), {T})",
    f"SELECT sflqDeleteLease6(INET6_ATON('2001:db8::6'), {T})",
    "SELECT address FROM free_lease6 ORDER BY bin_address",
    # IA_TA (lease type 1): a type 35.0 no longer has.
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime,"
    f" lease_type, iaid, prefix_len, state) VALUES (INET6_ATON('2001:db8::30'), UNHEX('04'),"
    f" 60, {T}, 10, 30, 1, 4, 128, 0)",
    "CALL sflqCreateFlqPool6('2001:db8::40', '2001:db8::41', 1, 128, 10, 0)",
    "SELECT subnet_id, lease_type, state, leases FROM lease6_stat ORDER BY 1, 2, 3",
    "SELECT subnet_id, pool_id, lease_type, state, leases FROM lease6_pool_stat"
    " ORDER BY 1, 2, 3, 4",
]


def run(connection: Any) -> list[Any]:
    """Run every step on a PyMySQL connection (autocommit); one result per step:
    ``["rows", rows]`` / ``["count", n]`` or ``["error", code, message]``, as JSON values
    (bytes as hex, date and time values masked)."""
    import pymysql

    results: list[Any] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT DATABASE()")
        (database,) = cursor.fetchone()
        for step in STEPS:
            try:
                cursor.execute(step)
            except pymysql.MySQLError as exc:
                # Messages name the database; each test database has its own name.
                message = str(exc.args[1]).replace(f"`{database}`", "`<db>`")
                results.append(["error", exc.args[0], message])
                continue
            if cursor.description:
                rows = [[_json_value(v) for v in row] for row in cursor.fetchall()]
                results.append(["rows", rows])
            else:
                results.append(["count", cursor.rowcount])
            while cursor.nextset():
                pass
    return results
