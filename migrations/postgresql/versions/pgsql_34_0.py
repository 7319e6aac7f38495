"""Kea PostgreSQL schema 34.0 (Kea 3.1.9, 3.2.0): IA_TA retired, prefix pools refilled

Revision ID: pgsql_34_0
Revises: pgsql_33_0

- ``sflqcreateflqpool6`` is replaced whole: a pool registered again with another delegated
  length (without recreating) is refilled as a recreated one is; recreating updates the
  pool's lease type, delegated length and subnet; and a range's prefixes stop at its end.
- Lease type 1 (IA_TA) goes: leases and queue pools of that type become type 0 (IA_NA) and
  its statistics rows are deleted, then its ``lease6_types`` row; ``flq_pool6.lease_type``
  references ``lease6_types``.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import Function, batch, replace_functions, set_schema_version

revision = "pgsql_34_0"
down_revision = "pgsql_33_0"
branch_labels = None
depends_on = None

# The queue function's shared parts are revision data of 33.0; 34.0 keeps its own copy so
# that neither released revision can change the other.
_DECLARE = """
DECLARE
    end_bin bytea := inettobytea(p_end_address);
    batch_address inet := p_start_address;
    batch_bin bytea := inettobytea(p_start_address);
    batch_size integer := 10000;
    last_bin bytea;
    next_bin bytea;
    changed_pool bigint;
    refill boolean := false;"""

_CHECKS = """
    IF p_start_address = '::'::inet OR p_start_address > p_end_address THEN
        RAISE EXCEPTION 'Invalid range: % - %', host(p_start_address), host(p_end_address);
    END IF;
    IF p_delegated_len < 1 OR p_delegated_len > 128 THEN
        RAISE EXCEPTION 'Invalid p_delegated_len: %', p_delegated_len;
    END IF;"""

# Prefixes of the range in batches of at most 10000 (a recursive query from the batch's first
# prefix while the next one is above the previous and below the range's end), each without a
# lease, or with an expired-reclaimed one, queued; the loop ends when the prefix after a
# batch's last is past the end or wraps around.
_FILL = """
    WHILE batch_address <= p_end_address LOOP
        WITH RECURSIVE prefixes(depth, bin_address, address) AS (
            SELECT 1, batch_bin, batch_address
            UNION ALL
            SELECT p.depth + 1, n.bin_address, byteatoinet(n.bin_address)
            FROM prefixes AS p,
                LATERAL (SELECT incrementv6prefix(p.bin_address, p_delegated_len)
                         AS bin_address) AS n
            WHERE n.bin_address > p.bin_address AND n.bin_address < end_bin
                AND p.depth < batch_size
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

CREATE_FLQ_POOL6 = Function(
    "sflqcreateflqpool6",
    "p_start_address inet, p_end_address inet, p_lease_type smallint, "
    "p_delegated_len smallint, p_subnet_id bigint, p_recreate boolean",
    "void",
    f"""{_DECLARE}
BEGIN{_CHECKS}

    -- Registering a known range with another delegated length refills it (its row is
    -- locked until the end of the transaction).
    IF NOT p_recreate THEN
        SELECT f.id INTO changed_pool FROM flq_pool6 AS f
        WHERE f.start_address = p_start_address AND f.end_address = p_end_address
            AND f.delegated_len <> p_delegated_len
        FOR UPDATE;
        refill := changed_pool IS NOT NULL;
    END IF;

    IF p_recreate OR refill THEN
        INSERT INTO flq_pool6 (start_address, end_address, lease_type, delegated_len, subnet_id)
        VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len, p_subnet_id)
        ON CONFLICT (start_address, end_address) DO UPDATE
        SET lease_type = p_lease_type, delegated_len = p_delegated_len,
            subnet_id = p_subnet_id;
    ELSE
        INSERT INTO flq_pool6 (start_address, end_address, lease_type, delegated_len, subnet_id)
        VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len, p_subnet_id);
    END IF;

    DELETE FROM free_lease6 WHERE address >= p_start_address AND address <= p_end_address;
{_FILL}

    UPDATE flq_pool6 SET modification_ts = now()
    WHERE start_address = p_start_address AND end_address = p_end_address;
END;
""",
)


def upgrade() -> None:
    with batch() as ops:
        replace_functions(ops, [CREATE_FLQ_POOL6])
        # The lease triggers move the statistics of converted leases to type 0 first.
        for table in ("lease6", "flq_pool6"):
            rows = sa.table(table, sa.column("lease_type"))
            ops.execute(
                rows.update().where(rows.c.lease_type == sa.literal(1)).values(
                    lease_type=sa.literal(0)
                )
            )
        for table in ("lease6_stat_by_client_class", "lease6_pool_stat", "lease6_stat",
                      "lease6_types"):
            rows = sa.table(table, sa.column("lease_type"))
            ops.execute(rows.delete().where(rows.c.lease_type == sa.literal(1)))
        ops.create_foreign_key(
            "fk_flq_pool6_lease6_type", "flq_pool6", "lease6_types", ["lease_type"], ["lease_type"]
        )
        set_schema_version(ops, 34, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
