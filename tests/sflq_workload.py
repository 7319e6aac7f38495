"""Steps that exercise the shared free lease queue functions (PostgreSQL schema 33.0 on).

Kea 3.1.8 and later have no Debian package to compare with, so the expected results are
golden files: tests/tools/kea_golden_catalogs.py runs these steps on a database built by the
release's own create script and stores what each step returned (or which error it raised)
next to the release's golden catalog; tests/test_chain_pgsql.py runs them on kea-db's schema
and compares. Change a step and the golden results must be rebuilt.

Every step runs, failing or not: results and errors are both part of the behaviour (several
steps fail on one schema and not on another).
"""

from __future__ import annotations

from typing import Any

from keadb_cli.schema.catalog import _json_value

# 192.0.2.1 as lease4 stores it.
A = 3221225985
T = "'2023-05-01 10:00:00+00'"

STEPS = [
    # DHCPv4: a pool with one lease in use and one expired-reclaimed.
    f"INSERT INTO lease4 (address, valid_lifetime, expire, subnet_id, state) VALUES "
    f"({A + 1}, 60, {T}, 1, 0), ({A + 2}, 60, {T}, 1, 2)",
    f"SELECT sflqcreateflqpool4({A}, {A + 9}, 1, false)",
    "SELECT address FROM free_lease4 ORDER BY address",
    "SELECT start_address, end_address, last_returned_address, subnet_id FROM flq_pool4",
    f"SELECT sflqpickfreelease4({A}, {A + 9})",
    f"SELECT sflqpickfreelease4({A}, {A + 9})",
    f"SELECT sflqpickfreelease4({A}, {A + 9})",
    "SELECT sflqpickfreelease4(1, 2)",
    f"SELECT sflqcreateflqpool4({A}, {A + 9}, 1, false)",
    f"SELECT sflqcreateflqpool4({A}, {A + 9}, 1, true)",
    "SELECT sflqcreateflqpool4(0, 5, 1, false)",
    f"SELECT sflqcreateflqpool4({A + 9}, {A}, 1, false)",
    f"SELECT sflqinsertlease4({A + 5}, '\\x01', NULL, 60, {T}, 1, false, false, 'h', 0, NULL, "
    "NULL, NULL, 0)",
    f"SELECT count(*) FROM free_lease4 WHERE address = {A + 5}",
    f"SELECT sflqupdatelease4({A + 5}, '\\x01', NULL, 60, {T}, 1, false, false, 'h', 2, NULL, "
    f"NULL, NULL, 0, {A + 5}, {T})",
    f"SELECT count(*) FROM free_lease4 WHERE address = {A + 5}",
    f"SELECT sflqupdatelease4({A + 5}, '\\x01', NULL, 60, {T}, 1, false, false, 'h', 0, NULL, "
    f"NULL, NULL, 0, {A + 5}, '2024-01-01 00:00:00+00')",
    f"SELECT sflqupdatelease4({A + 5}, '\\x01', NULL, 60, {T}, 1, false, false, 'h', 0, NULL, "
    f"NULL, NULL, 0, {A + 5}, {T})",
    f"SELECT count(*) FROM free_lease4 WHERE address = {A + 5}",
    f"SELECT sflqdeletelease4({A + 5}, '2024-01-01 00:00:00+00')",
    f"SELECT sflqdeletelease4({A + 5}, {T})",
    f"SELECT sflqdeletelease4({A + 5}, {T})",
    "SELECT address FROM free_lease4 ORDER BY address",
    # Address helpers.
    "SELECT a, inettobytea(a::inet), byteatoinet(inettobytea(a::inet)) FROM unnest(ARRAY["
    "'2001:db8::1', '::', '::1', '::ffff:1.2.3.4', '::1.2.3.4', '0:ffff::1', '1::', "
    "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8:0:1::', 'fe80::1:2:3:4', "
    "'0:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '0:fffe:ffff::']) AS a ORDER BY a",
    "SELECT byteatoinet('\\x01'), byteatoinet(NULL), inettobytea(NULL)",
    "SELECT inettobytea('192.0.2.1')",
    "SELECT n, incrementv6prefix(inettobytea(p::inet), n::smallint) "
    "FROM unnest(ARRAY['2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', "
    "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::ff']) AS p, "
    "unnest(ARRAY[0, 1, 7, 8, 9, 48, 63, 64, 120, 127, 128, 129]) AS n ORDER BY p, n",
    "SELECT incrementv6prefix('\\x0102'::bytea, 16::smallint), "
    "incrementv6prefix(NULL, 64::smallint)",
    "SELECT array_agg(hextobin(n::smallint) ORDER BY n) FROM generate_series(0, 130) AS n",
    # DHCPv6: addresses, one in use, one expired-reclaimed.
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    f"lease_type, iaid, prefix_len, state) VALUES ('2001:db8::3', '\\x01', 60, {T}, 10, 30, 0, "
    f"1, 128, 0), ('2001:db8::5', '\\x02', 60, {T}, 10, 30, 0, 2, 128, 2)",
    "SELECT sflqcreateflqpool6('2001:db8::1', '2001:db8::8', 0::smallint, 128::smallint, 10, "
    "false)",
    "SELECT address, bin_address FROM free_lease6 ORDER BY bin_address",
    "SELECT sflqpickfreelease6('2001:db8::1', '2001:db8::8')",
    "SELECT sflqpickfreelease6('2001:db8::1', '2001:db8::8')",
    "SELECT sflqpickfreelease6('2001:db8::1', '2001:db8::9')",
    "SELECT sflqcreateflqpool6('2001:db8::1', '2001:db8::8', 0::smallint, 128::smallint, 10, "
    "false)",
    "SELECT sflqcreateflqpool6('2001:db8::1', '2001:db8::8', 0::smallint, 128::smallint, 11, "
    "true)",
    "SELECT sflqcreateflqpool6('::', '2001:db8::8', 0::smallint, 128::smallint, 10, false)",
    "SELECT sflqcreateflqpool6('2001:db8::9', '2001:db8::8', 0::smallint, 128::smallint, 10, "
    "false)",
    "SELECT sflqcreateflqpool6('2001:db8::a', '2001:db8::b', 0::smallint, 0::smallint, 10, "
    "false)",
    # Prefixes: the end of the range is not the start of a prefix.
    "SELECT sflqcreateflqpool6('2001:db8:1::', '2001:db8:1:5::', 2::smallint, 63::smallint, "
    "10, false)",
    "SELECT address FROM free_lease6 WHERE address << '2001:db8:1::/48' ORDER BY address",
    # The same range with another delegated length, without recreating.
    "SELECT sflqcreateflqpool6('2001:db8:1::', '2001:db8:1:5::', 2::smallint, 64::smallint, "
    "12, false)",
    "SELECT address FROM free_lease6 WHERE address << '2001:db8:1::/48' ORDER BY address",
    "SELECT start_address, end_address, lease_type, delegated_len, last_returned_address, "
    "subnet_id FROM flq_pool6 ORDER BY start_address",
    # A range reaching the top of the address space (the increment wraps).
    "SELECT sflqcreateflqpool6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', "
    "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 0::smallint, 128::smallint, 10, false)",
    "SELECT address FROM free_lease6 WHERE address >= 'ffff::' ORDER BY address",
    "SELECT sflqinsertlease6('2001:db8::7', '\\x03', 60, " + T + ", 10, 30, 0::smallint, 3, "
    "128::smallint, false, false, 'h', NULL, NULL, NULL, 0, NULL, 0)",
    "SELECT count(*) FROM free_lease6 WHERE address = '2001:db8::7'",
    "SELECT sflqupdatelease6('2001:db8::7', '\\x03', 60, " + T + ", 10, 30, 0::smallint, 3, "
    "128::smallint, false, false, 'h', NULL, NULL, NULL, 2, NULL, 0, '2001:db8::7', " + T + ")",
    "SELECT address, bin_address FROM free_lease6 WHERE address = '2001:db8::7'",
    "SELECT sflqdeletelease6('2001:db8::7', " + T + ")",
    "SELECT sflqdeletelease6('2001:db8::6', " + T + ")",
    # IA_TA leases (lease type 1).
    "INSERT INTO lease6 (address, duid, valid_lifetime, expire, subnet_id, pref_lifetime, "
    f"lease_type, iaid, prefix_len, state) VALUES ('2001:db8::30', '\\x04', 60, {T}, 10, 30, "
    "1, 4, 128, 0)",
    "SELECT * FROM lease6_types ORDER BY lease_type",
    "SELECT * FROM lease_state ORDER BY state",
    "SELECT subnet_id, lease_type, state, leases FROM lease6_stat ORDER BY 1, 2, 3",
    "SELECT subnet_id, pool_id, state, leases FROM lease4_pool_stat ORDER BY 1, 2, 3",
]


def run(connection: Any) -> list[Any]:
    """Run every step on a psycopg connection, each in a savepoint; return per step
    ``["rows", rows]`` / ``["count", n]`` or ``["error", sqlstate, message]``, as JSON
    values (bytes as hex, date and time values masked)."""
    import psycopg

    results: list[Any] = []
    for step in STEPS:
        connection.execute("SAVEPOINT step")
        try:
            cursor = connection.execute(step)
        except psycopg.Error as exc:
            connection.execute("ROLLBACK TO SAVEPOINT step")
            results.append(["error", exc.sqlstate, exc.diag.message_primary])
            continue
        if cursor.description:
            rows = [[_json_value(v) for v in row] for row in cursor.fetchall()]
            results.append(["rows", rows])
        else:
            results.append(["count", cursor.rowcount])
    connection.commit()
    return results
