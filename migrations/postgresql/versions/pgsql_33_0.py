"""Kea PostgreSQL schema 33.0 (Kea 3.1.8): shared free lease queue

Revision ID: pgsql_33_0
Revises: pgsql_32_0

- The free lease queue allocator shared by several Kea servers: ``flq_pool4`` /
  ``flq_pool6`` record each pool and the address last handed out, ``free_lease4`` /
  ``free_lease6`` hold the free addresses (prefixes) of those pools. Kea calls
  ``sflqcreateflqpool4/6`` to fill a pool, ``sflqpickfreelease4/6`` to take the next free
  address, and ``sflqinsertlease4/6``, ``sflqupdatelease4/6``, ``sflqdeletelease4/6`` to change
  a lease and the queue together. IPv6 helpers: ``inettobytea`` / ``byteatoinet`` (an address
  as 16 bytes and back), ``incrementv6prefix`` (the next prefix of a length) and
  ``hextobin`` (one hex digit's value).
- ``isjsonsupported`` goes (every supported PostgreSQL has JSON): the lease triggers' functions
  count per client class unconditionally.

The bodies are kea-db's own, doing what Kea 3.1.8's functions do, defects included (marked
"as in Kea 3.1.8"): a Kea server must meet the same results and errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.dialects.postgresql import INET

from keadb_cli.schema.kit_pgsql import (
    Function,
    Serial,
    batch,
    create_functions,
    drop_function,
    replace_functions,
    set_schema_version,
)

revision = "pgsql_33_0"
down_revision = "pgsql_32_0"
branch_labels = None
depends_on = None

FAMILIES = (4, 6)

_TSTZ = sa.DateTime(timezone=True)
_NOW = sa.text("CURRENT_TIMESTAMP")


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_ts", _TSTZ, nullable=False, server_default=_NOW),
        sa.Column("modification_ts", _TSTZ, nullable=False, server_default=_NOW),
    ]


def _create_queue_tables(ops: Operations) -> None:
    ops.create_table(
        "flq_pool4",
        sa.Column("id", Serial(), primary_key=True),
        sa.Column("start_address", sa.BigInteger(), nullable=False),
        sa.Column("end_address", sa.BigInteger(), nullable=False),
        sa.Column("last_returned_address", sa.BigInteger(), nullable=False,
                  server_default=sa.text("0")),
        sa.Column("subnet_id", sa.BigInteger(), nullable=False),
        *_timestamps(),
    )
    # Unique indexes, not constraints (as in Kea): the pool functions' ON CONFLICT uses them.
    ops.create_index("flq_pool4_start_end_address", "flq_pool4",
                     ["start_address", "end_address"], unique=True)
    ops.create_index("flq_pool4_by_subnet_id", "flq_pool4", ["subnet_id"])
    ops.create_table(
        "free_lease4",
        sa.Column("address", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("modification_ts", _TSTZ, nullable=False, server_default=_NOW),
    )
    ops.create_table(
        "flq_pool6",
        sa.Column("id", Serial(), primary_key=True),
        sa.Column("start_address", INET(), nullable=False),
        sa.Column("end_address", INET(), nullable=False),
        sa.Column("lease_type", sa.SmallInteger(), nullable=False),
        sa.Column("delegated_len", sa.SmallInteger(), nullable=False),
        sa.Column("last_returned_address", INET(), nullable=False,
                  server_default=sa.text("('::')")),
        sa.Column("subnet_id", sa.BigInteger(), nullable=False),
        *_timestamps(),
    )
    ops.create_index("flq_pool6_start_end_address", "flq_pool6",
                     ["start_address", "end_address"], unique=True)
    ops.create_index("flq_pool6_by_subnet_id", "flq_pool6", ["subnet_id"])
    ops.create_table(
        "free_lease6",
        sa.Column("address", INET(), primary_key=True),
        sa.Column("bin_address", sa.LargeBinary(), nullable=False),
        sa.Column("modification_ts", _TSTZ, nullable=False, server_default=_NOW),
    )
    ops.create_index("free_lease6_bin_address", "free_lease6", ["bin_address"], unique=True)


# --- the lease triggers, without the JSON probe --------------------------------------------


def _lease_trigger_functions(v: int) -> Iterator[Function]:
    lt = ", {}.lease_type" if v == 6 else ""

    def row(r: str, *columns: str) -> str:
        return ", ".join(f"{r}.{c}" for c in columns) + lt.format(r)

    calls = {
        "ains": [
            f"lease{v}_ains_lease{v}_stat_by_client_class({row('NEW', 'state', 'user_context')})",
            f"lease{v}_ains_lease{v}_stat({row('NEW', 'state', 'subnet_id')})",
            f"lease{v}_ains_lease{v}_pool_stat({row('NEW', 'state', 'subnet_id', 'pool_id')})",
        ],
        "aupd": [
            f"lease{v}_aupd_lease{v}_stat_by_client_class("
            f"{row('OLD', 'state', 'user_context')}, {row('NEW', 'state', 'user_context')})",
            f"lease{v}_aupd_lease{v}_stat("
            f"{row('OLD', 'state', 'subnet_id')}, {row('NEW', 'state', 'subnet_id')})",
            f"lease{v}_aupd_lease{v}_pool_stat("
            f"{row('OLD', 'state', 'subnet_id', 'pool_id')}, "
            f"{row('NEW', 'state', 'subnet_id', 'pool_id')})",
        ],
        "adel": [
            f"lease{v}_adel_lease{v}_stat_by_client_class({row('OLD', 'state', 'user_context')})",
            f"lease{v}_adel_lease{v}_stat({row('OLD', 'state', 'subnet_id')})",
            f"lease{v}_adel_lease{v}_pool_stat({row('OLD', 'state', 'subnet_id', 'pool_id')})",
        ],
    }
    for suffix, performed in calls.items():
        body = "".join(f"    PERFORM {call};\n" for call in performed)
        yield Function(
            f"func_lease{v}_{suffix}", "", "trigger", f"\nBEGIN\n{body}    RETURN NULL;\nEND;\n"
        )


# --- IPv6 address helpers ------------------------------------------------------------------


def _address_functions() -> Iterator[Function]:
    # The value of one hex digit given as its character code; -1 for any other character.
    yield Function(
        "hextobin",
        "digit smallint",
        "smallint",
        """
BEGIN
    IF digit BETWEEN ascii('0') AND ascii('9') THEN
        RETURN digit - ascii('0');
    ELSIF digit BETWEEN ascii('A') AND ascii('F') THEN
        RETURN digit - ascii('A') + 10;
    ELSIF digit BETWEEN ascii('a') AND ascii('f') THEN
        RETURN digit - ascii('a') + 10;
    END IF;
    RETURN -1;
END;
""",
    )
    # The 16 octets of an IPv6 address. host() prints an address whose first 16 bits are
    # zero in IPv4 notation when the next ones look like an embedded IPv4 address, so such
    # an address is printed with its first group set, which is then written as zero.
    yield Function(
        "inettobytea",
        "inet_address inet",
        "bytea",
        """
DECLARE
    first_group_zero boolean := inet_address < '0:ffff:ffff:ffff:ffff:ffff:ffff:ffff'::inet;
    halves text[];
    head text[] := '{}';
    tail text[] := '{}';
    groups text[];
    hex text;
BEGIN
    IF first_group_zero THEN
        inet_address := inet_address | 'ffff::'::inet;
    END IF;
    halves := string_to_array(host(inet_address), '::');
    IF halves[1] <> '' THEN
        head := string_to_array(halves[1], ':');
    END IF;
    IF cardinality(halves) > 1 AND halves[2] <> '' THEN
        tail := string_to_array(halves[2], ':');
    END IF;
    groups := head
        || array_fill('0'::text, ARRAY[8 - cardinality(head) - cardinality(tail)])
        || tail;
    IF first_group_zero THEN
        groups[1] := '0';
    END IF;
    SELECT string_agg(lpad(g.value, 4, '0'), '' ORDER BY g.n) INTO hex
    FROM unnest(groups) WITH ORDINALITY AS g(value, n);
    RETURN decode(hex, 'hex');
END;
""",
    )
    # 16 octets back to an address; anything else is '::'.
    yield Function(
        "byteatoinet",
        "bin_address bytea",
        "inet",
        r"""
BEGIN
    IF octet_length(bin_address) <> 16 THEN
        RETURN '::'::inet;
    END IF;
    RETURN regexp_replace(encode(bin_address, 'hex'), '(....)(?!$)', '\1:', 'g')::inet;
END;
""",
    )
    # The prefix after ``prefix`` for a prefix length: one added at bit ``prefix_len``, the
    # carry running towards the first octet and lost past it (all ones wrap to zero). A
    # length outside 1..128 returns the prefix unchanged.
    yield Function(
        "incrementv6prefix",
        "prefix bytea, prefix_len smallint",
        "bytea",
        """
DECLARE
    result bytea := prefix;
    octet smallint := (prefix_len - 1) / 8;
    value integer;
BEGIN
    IF prefix_len < 1 OR prefix_len > 128 THEN
        RETURN prefix;
    END IF;
    value := get_byte(result, octet) + (1 << (7 - (prefix_len - 1) % 8));
    LOOP
        IF value < 256 THEN
            RETURN set_byte(result, octet, value);
        END IF;
        result := set_byte(result, octet, value - 256);
        octet := octet - 1;
        IF octet < 0 THEN
            RETURN result;
        END IF;
        value := get_byte(result, octet) + 1;
    END LOOP;
END;
""",
    )


# --- pools and picks -----------------------------------------------------------------------


def _pool4_functions() -> Iterator[Function]:
    # Registers a pool (an existing one is an error unless recreating) and makes every
    # address of the range without a lease, or with an expired-reclaimed one, free.
    yield Function(
        "sflqcreateflqpool4",
        "p_start_address bigint, p_end_address bigint, p_subnet_id bigint, p_recreate boolean",
        "void",
        """
BEGIN
    IF p_start_address = 0 OR p_start_address > p_end_address THEN
        RAISE EXCEPTION 'Invalid range: % - %',
            '0.0.0.0'::inet + p_start_address, '0.0.0.0'::inet + p_end_address;
    END IF;

    IF p_recreate THEN
        INSERT INTO flq_pool4 (start_address, end_address, subnet_id, last_returned_address)
        VALUES (p_start_address, p_end_address, p_subnet_id, 0)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO flq_pool4 (start_address, end_address, subnet_id, last_returned_address)
        VALUES (p_start_address, p_end_address, p_subnet_id, 0);
    END IF;

    DELETE FROM free_lease4 WHERE address BETWEEN p_start_address AND p_end_address;
    INSERT INTO free_lease4 (address)
    SELECT a.address
    FROM generate_series(p_start_address, p_end_address) AS a(address)
    LEFT JOIN lease4 AS l ON l.address = a.address
    WHERE l.address IS NULL OR l.state = 2
    ON CONFLICT DO NOTHING;

    UPDATE flq_pool4 SET modification_ts = now()
    WHERE start_address = p_start_address AND end_address = p_end_address;
END;
""",
    )
    # The first free address after the pool's last pick, wrapping to the range's start (the
    # last pick included, so a single free address is found again); 0 when none is free or
    # the pool is unknown. The pick is recorded.
    yield Function(
        "sflqpickfreelease4",
        "p_start_address bigint, p_end_address bigint",
        "bigint",
        """
DECLARE
    pool bigint;
    last_pick bigint;
    picked bigint;
BEGIN
    SELECT p.id, p.last_returned_address INTO pool, last_pick
    FROM flq_pool4 AS p
    WHERE p.start_address = p_start_address AND p.end_address = p_end_address;
    IF pool IS NULL THEN
        RETURN 0;
    END IF;
    IF last_pick < p_start_address OR last_pick >= p_end_address THEN
        last_pick := p_start_address - 1;
    END IF;

    SELECT f.address INTO picked FROM free_lease4 AS f
    WHERE f.address > last_pick AND f.address <= p_end_address
    ORDER BY f.address LIMIT 1;
    IF picked IS NULL THEN
        SELECT f.address INTO picked FROM free_lease4 AS f
        WHERE f.address >= p_start_address AND f.address <= last_pick
        ORDER BY f.address LIMIT 1;
    END IF;
    picked := coalesce(picked, 0);

    UPDATE flq_pool4 SET last_returned_address = picked WHERE id = pool;
    RETURN picked;
END;
""",
    )


def fill_pool6(*, end_test: str) -> str:
    """The part of ``sflqcreateflqpool6`` that makes a range's prefixes free: prefixes are
    enumerated in batches of at most 10000 (a recursive query from the batch's first prefix,
    continuing while ``end_test`` holds for the previous prefix ``p`` and the next one
    ``n``); each one without a lease, or with an expired-reclaimed one, is queued. The loop
    ends when the prefix after a batch's last is past the range's end or wraps around."""
    return f"""
    WHILE batch_address <= p_end_address LOOP
        WITH RECURSIVE prefixes(depth, bin_address, address) AS (
            SELECT 1, batch_bin, batch_address
            UNION ALL
            SELECT p.depth + 1, n.bin_address, byteatoinet(n.bin_address)
            FROM prefixes AS p,
                LATERAL (SELECT incrementv6prefix(p.bin_address, p_delegated_len)
                         AS bin_address) AS n
            WHERE {end_test} AND p.depth < batch_size
        ),
        queued AS (
            INSERT INTO free_lease6 (address, bin_address)
            SELECT p.address, p.bin_address
            FROM prefixes AS p
            LEFT JOIN lease6 AS l ON l.address = p.address AND l.state <> 2
            WHERE l.address IS NULL
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT p.bin_address INTO STRICT last_bin
        FROM prefixes AS p ORDER BY p.depth DESC LIMIT 1;

        next_bin := incrementv6prefix(last_bin, p_delegated_len);
        IF next_bin > end_bin OR next_bin < last_bin THEN
            EXIT;
        END IF;
        batch_bin := next_bin;
        batch_address := byteatoinet(next_bin);
    END LOOP;"""


POOL6_DECLARE = """
DECLARE
    end_bin bytea := inettobytea(p_end_address);
    batch_address inet := p_start_address;
    batch_bin bytea := inettobytea(p_start_address);
    batch_size integer := 10000;
    last_bin bytea;
    next_bin bytea;"""

POOL6_CHECKS = """
    IF p_start_address = '::'::inet OR p_start_address > p_end_address THEN
        RAISE EXCEPTION 'Invalid range: % - %', host(p_start_address), host(p_end_address);
    END IF;
    IF p_delegated_len < 1 OR p_delegated_len > 128 THEN
        RAISE EXCEPTION 'Invalid p_delegated_len: %', p_delegated_len;
    END IF;"""

POOL6_ARGUMENTS = (
    "p_start_address inet, p_end_address inet, p_lease_type smallint, "
    "p_delegated_len smallint, p_subnet_id bigint, p_recreate boolean"
)

POOL6_FINISH = """
    UPDATE flq_pool6 SET modification_ts = now()
    WHERE start_address = p_start_address AND end_address = p_end_address;"""


def _pool6_functions() -> Iterator[Function]:
    # As in Kea 3.1.8: a batch continues while the previous prefix is below the range's
    # end, so when the end is not itself a prefix start, one prefix past it is queued too
    # (schema 34.0 changes this).
    yield Function(
        "sflqcreateflqpool6",
        POOL6_ARGUMENTS,
        "void",
        f"""{POOL6_DECLARE}
BEGIN{POOL6_CHECKS}

    IF p_recreate THEN
        INSERT INTO flq_pool6 (start_address, end_address, lease_type, delegated_len, subnet_id)
        VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len, p_subnet_id)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO flq_pool6 (start_address, end_address, lease_type, delegated_len, subnet_id)
        VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len, p_subnet_id);
    END IF;

    DELETE FROM free_lease6 WHERE address >= p_start_address AND address <= p_end_address;
{fill_pool6(end_test="p.address < p_end_address")}
{POOL6_FINISH}
END;
""",
    )
    # As sflqpickfreelease4, in the order of the 16-octet addresses. As in Kea 3.1.8: for
    # an unknown pool the function fails (42703, column "::" does not exist) instead of
    # returning '::', as the function returns a quoted identifier, not a string.
    yield Function(
        "sflqpickfreelease6",
        "alloc_start_address inet, alloc_end_address inet",
        "inet",
        """
DECLARE
    pool bigint;
    last_pick inet;
    picked inet;
    start_bin bytea;
    end_bin bytea;
    last_bin bytea;
BEGIN
    SELECT p.id, p.last_returned_address INTO pool, last_pick
    FROM flq_pool6 AS p
    WHERE p.start_address = alloc_start_address AND p.end_address = alloc_end_address;
    IF pool IS NULL THEN
        RETURN ("::");
    END IF;
    start_bin := inettobytea(alloc_start_address);
    end_bin := inettobytea(alloc_end_address);
    IF last_pick < alloc_start_address OR last_pick >= alloc_end_address THEN
        last_pick := alloc_start_address - 1;
    END IF;
    last_bin := inettobytea(last_pick);

    SELECT f.address INTO picked FROM free_lease6 AS f
    WHERE f.bin_address > last_bin AND f.bin_address <= end_bin
    ORDER BY f.bin_address LIMIT 1;
    IF picked IS NULL THEN
        SELECT f.address INTO picked FROM free_lease6 AS f
        WHERE f.bin_address >= start_bin AND f.bin_address <= last_bin
        ORDER BY f.bin_address LIMIT 1;
    END IF;
    picked := coalesce(picked, '::'::inet);

    UPDATE flq_pool6 SET last_returned_address = picked WHERE id = pool;
    RETURN picked;
END;
""",
    )


# --- lease changes that keep the queue in step ---------------------------------------------

# Lease columns the queue functions write, in argument order: (column, argument type).
_LEASE4 = [
    ("address", "bigint"), ("hwaddr", "bytea"), ("client_id", "bytea"),
    ("valid_lifetime", "bigint"), ("expire", "timestamp with time zone"),
    ("subnet_id", "bigint"), ("fqdn_fwd", "boolean"), ("fqdn_rev", "boolean"),
    ("hostname", "varchar"), ("state", "bigint"), ("user_context", "text"),
    ("relay_id", "bytea"), ("remote_id", "bytea"), ("pool_id", "bigint"),
]
_LEASE6 = [
    ("address", "inet"), ("duid", "bytea"), ("valid_lifetime", "bigint"),
    ("expire", "timestamp with time zone"), ("subnet_id", "bigint"),
    ("pref_lifetime", "bigint"), ("lease_type", "smallint"), ("iaid", "integer"),
    ("prefix_len", "smallint"), ("fqdn_fwd", "boolean"), ("fqdn_rev", "boolean"),
    ("hostname", "varchar"), ("hwaddr", "bytea"), ("hwtype", "smallint"),
    ("hwaddr_source", "smallint"), ("state", "bigint"), ("user_context", "text"),
    ("pool_id", "bigint"),
]


def _free(v: int) -> str:
    """SQL queuing p_address (no error when it is queued already)."""
    if v == 4:
        return "INSERT INTO free_lease4 (address) VALUES (p_address) ON CONFLICT DO NOTHING;"
    return (
        "INSERT INTO free_lease6 (address, bin_address)\n"
        "            VALUES (p_address, inettobytea(p_address)) ON CONFLICT DO NOTHING;"
    )


def _lease_functions(v: int) -> Iterator[Function]:
    columns = _LEASE4 if v == 4 else _LEASE6
    arguments = ", ".join(f"p_{name} {kind}" for name, kind in columns)
    names = [name for name, _kind in columns]
    # An expired-reclaimed lease (state 2) frees its address; any other takes it.
    follow_state = f"""
    IF changed > 0 THEN
        IF p_state = 2 THEN
            {_free(v)}
        ELSE
            DELETE FROM free_lease{v} WHERE address = p_address;
        END IF;
    END IF;
    RETURN changed;"""
    values = ", ".join(f"p_{n}" for n in names)
    yield Function(
        f"sflqinsertlease{v}",
        arguments,
        "integer",
        f"""
DECLARE
    changed integer;
BEGIN
    INSERT INTO lease{v} ({", ".join(names)})
    VALUES ({values});
    GET DIAGNOSTICS changed = ROW_COUNT;{follow_state}
END;
""",
    )
    assignments = ", ".join(f"{n} = p_{n}" for n in names)
    yield Function(
        f"sflqupdatelease{v}",
        f"{arguments}, p_where_address {columns[0][1]}, "
        "p_where_expire timestamp with time zone",
        "integer",
        f"""
DECLARE
    changed integer;
BEGIN
    UPDATE lease{v} SET {assignments}
    WHERE address = p_where_address AND expire = p_where_expire;
    GET DIAGNOSTICS changed = ROW_COUNT;{follow_state}
END;
""",
    )
    # Only a lease that was there (with that expiry) frees its address.
    yield Function(
        f"sflqdeletelease{v}",
        f"p_address {columns[0][1]}, p_expire timestamp with time zone",
        "integer",
        f"""
DECLARE
    changed integer;
BEGIN
    DELETE FROM lease{v} WHERE address = p_address AND expire = p_expire;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed > 0 THEN
        {_free(v)}
    END IF;
    RETURN changed;
END;
""",
    )


def upgrade() -> None:
    with batch() as ops:
        drop_function(ops, "isjsonsupported")
        for v in FAMILIES:
            replace_functions(ops, _lease_trigger_functions(v))
        _create_queue_tables(ops)
        create_functions(ops, _pool4_functions())
        create_functions(ops, _address_functions())
        create_functions(ops, _pool6_functions())
        for v in FAMILIES:
            create_functions(ops, _lease_functions(v))
        set_schema_version(ops, 33, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
