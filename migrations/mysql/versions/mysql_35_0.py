"""Kea MySQL schema 35.0 (Kea 3.1.9): IA_TA leases become IA_NA; free lease queue fixes.

Revision ID: mysql_35_0
Revises: mysql_34_0

- Lease type 1 (IA_TA) is retired: every lease6 row of type 1 becomes type 0 (IA_NA)
  through the lease triggers, so the type 0 statistics count them; then the type 1
  statistics rows and the type itself go, and flq_pool6.lease_type becomes a foreign key
  to lease6_types.
- sflqCreateFlqPool4/6 are replaced whole: they run in the caller's transaction, and a
  DHCPv6 pool whose delegated length changed is updated in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keadb_cli.schema import kit
from keadb_cli.schema.kit import body

revision = "mysql_35_0"
down_revision = "mysql_34_0"
branch_labels = None
depends_on = None

IA_NA = 0
IA_TA = 1


def _create_flq_pool4() -> None:
    """sflqCreateFlqPool4 without its own transaction (the caller's holds)."""
    kit.mysql_create_procedure(
        "sflqCreateFlqPool4",
        [
            "IN p_start_address INT UNSIGNED",
            "IN p_end_address INT UNSIGNED",
            "IN p_subnet_id INT UNSIGNED",
            "IN p_recreate TINYINT",
        ],
        body(
            "DECLARE loop_limit INT UNSIGNED",
            "DECLARE next_start_address INT UNSIGNED",
            "DECLARE next_end_address INT UNSIGNED",
            "DECLARE remaining INT UNSIGNED",
            "DECLARE error_msg VARCHAR(512)",
            """
            IF p_start_address = INET_ATON('0.0.0.0') OR p_start_address > p_end_address THEN
                SET error_msg = CONCAT('Invalid range: ', INET_NTOA(p_start_address),
                                       ' - ', INET_NTOA(p_end_address));
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = error_msg;
            END IF""",
            """
            IF p_recreate = 1 THEN
                INSERT INTO flq_pool4 (start_address, end_address, subnet_id)
                    VALUES (p_start_address, p_end_address, p_subnet_id)
                    ON DUPLICATE KEY UPDATE start_address = start_address;
            ELSE
                INSERT INTO flq_pool4 (start_address, end_address, subnet_id)
                    VALUES (p_start_address, p_end_address, p_subnet_id);
            END IF""",
            "DELETE FROM free_lease4 WHERE address >= p_start_address AND address <= p_end_address",
            "CALL setLoopLimit()",
            "SET loop_limit = @kea_recursion_limit - 1",
            "SET next_start_address = p_start_address",
            "SET next_end_address = p_start_address",
            """
            batches: WHILE next_start_address <= p_end_address DO
                SET remaining = p_end_address - next_start_address;
                IF remaining > loop_limit THEN
                    SET next_end_address = next_end_address + loop_limit;
                ELSE
                    SET next_end_address = next_end_address + remaining;
                END IF;
                INSERT INTO free_lease4 (address)
                    WITH RECURSIVE candidates AS (
                        SELECT next_start_address AS candidate
                        UNION ALL
                        SELECT candidate + 1 FROM candidates WHERE candidate < next_end_address
                    )
                    SELECT candidate FROM candidates
                        LEFT JOIN lease4 ON candidate = lease4.address
                        WHERE lease4.address IS NULL OR lease4.state = 2
                    ON DUPLICATE KEY UPDATE free_lease4.address = candidate;
                IF next_start_address + loop_limit <= 4294967295 THEN
                    SET next_start_address = next_start_address + loop_limit;
                ELSE
                    LEAVE batches;
                END IF;
            END WHILE batches""",
            """
            UPDATE flq_pool4 SET modification_ts = NOW()
                WHERE start_address = p_start_address AND end_address = p_end_address""",
        ),
    )


def _fill_flq_pool6() -> list[str]:
    """The part of sflqCreateFlqPool6 after the pool row: every prefix of the range that no
    lease holds (other than expired-reclaimed) goes in the queue."""
    return [
        "DELETE FROM free_lease6\n"
        "    WHERE bin_address >= bin_next_address AND bin_address <= bin_end_address",
        "DROP TEMPORARY TABLE IF EXISTS _flq6_candidates",
        """
        CREATE TEMPORARY TABLE _flq6_candidates (
            bin_address BINARY(16) NOT NULL PRIMARY KEY,
            address VARCHAR(45) NOT NULL
        ) ENGINE=InnoDB""",
        """
        prefixes: WHILE bin_next_address <= bin_end_address DO
            INSERT INTO _flq6_candidates (bin_address, address)
                VALUES (bin_next_address, INET6_NTOA(bin_next_address));
            IF bin_next_address = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF THEN
                LEAVE prefixes;
            END IF;
            SET bin_next_address = incrementV6Prefix(bin_next_address, p_delegated_len);
        END WHILE prefixes""",
        # The lease's binary address meets the candidate's text here, as in Kea's routine.
        """
        INSERT INTO free_lease6 (address, bin_address)
            SELECT c.address, c.bin_address FROM _flq6_candidates AS c
                WHERE NOT EXISTS (
                    SELECT 1 FROM lease6 AS l WHERE l.address = c.address AND l.state != 2
                )
            ON DUPLICATE KEY UPDATE free_lease6.address = c.address""",
        "DROP TEMPORARY TABLE _flq6_candidates",
        """
        UPDATE flq_pool6 SET modification_ts = NOW()
            WHERE start_address = p_start_address AND end_address = p_end_address""",
    ]


FLQ_POOL6_PARAMS = [
    "IN p_start_address VARCHAR(45)",
    "IN p_end_address VARCHAR(45)",
    "IN p_lease_type TINYINT UNSIGNED",
    "IN p_delegated_len TINYINT UNSIGNED",
    "IN p_subnet_id INT UNSIGNED",
    "IN p_recreate TINYINT",
]
FLQ_POOL6_CHECKS = [
    "SET bin_next_address = INET6_ATON(p_start_address)",
    "SET bin_end_address = INET6_ATON(p_end_address)",
    """
    IF p_start_address = '::' OR bin_next_address > bin_end_address THEN
        SET error_msg = CONCAT('Invalid range: ', p_start_address, ' - ', p_end_address);
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = error_msg;
    END IF""",
    """
    IF p_delegated_len < 1 OR p_delegated_len > 128 THEN
        SET error_msg = CONCAT('Invalid p_delegated_len: ', p_delegated_len);
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = error_msg;
    END IF""",
]
FLQ_POOL6_LOCALS = [
    "DECLARE bin_next_address BINARY(16)",
    "DECLARE bin_end_address BINARY(16)",
    "DECLARE lease_address VARCHAR(45)",
    "DECLARE error_msg VARCHAR(512)",
]


def _create_flq_pool6() -> None:
    kit.mysql_create_procedure(
        "sflqCreateFlqPool6",
        [
            "IN p_start_address VARCHAR(45)",
            "IN p_end_address VARCHAR(45)",
            "IN p_lease_type TINYINT UNSIGNED",
            "IN p_delegated_len TINYINT UNSIGNED",
            "IN p_subnet_id INT UNSIGNED",
            "IN p_recreate TINYINT",
        ],
        body(
            "DECLARE bin_next_address BINARY(16)",
            "DECLARE bin_end_address BINARY(16)",
            "DECLARE lease_address VARCHAR(45)",
            "DECLARE error_msg VARCHAR(512)",
            "DECLARE pool_changed TINYINT",
            "DECLARE x_pool_id BIGINT",
            "SET bin_next_address = INET6_ATON(p_start_address)",
            "SET bin_end_address = INET6_ATON(p_end_address)",
            """
            IF p_start_address = '::' OR bin_next_address > bin_end_address THEN
                SET error_msg = CONCAT('Invalid range: ', p_start_address, ' - ', p_end_address);
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = error_msg;
            END IF""",
            """
            IF p_delegated_len < 1 OR p_delegated_len > 128 THEN
                SET error_msg = CONCAT('Invalid p_delegated_len: ', p_delegated_len);
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = error_msg;
            END IF""",
            "SET pool_changed = 0",
            # Without recreate, an existing pool with another delegated length is updated.
            """
            IF p_recreate = 0 THEN
                SET x_pool_id = NULL;
                SELECT id INTO x_pool_id FROM flq_pool6
                    WHERE start_address = p_start_address AND end_address = p_end_address
                        AND delegated_len != p_delegated_len
                    FOR UPDATE;
                IF x_pool_id IS NOT NULL THEN
                    SET pool_changed = 1;
                END IF;
            END IF""",
            """
            IF p_recreate = 1 OR pool_changed = 1 THEN
                INSERT INTO flq_pool6
                    (start_address, end_address, lease_type, delegated_len, subnet_id)
                    VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len,
                            p_subnet_id)
                    ON DUPLICATE KEY UPDATE lease_type = p_lease_type,
                        delegated_len = p_delegated_len, subnet_id = p_subnet_id;
            ELSE
                INSERT INTO flq_pool6
                    (start_address, end_address, lease_type, delegated_len, subnet_id)
                    VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len,
                            p_subnet_id);
            END IF""",
            *_fill_flq_pool6(),
        ),
    )


def _retire_ia_ta() -> None:
    for table in ("lease6", "flq_pool6"):
        rows = sa.table(table, sa.column("lease_type"))
        op.execute(
            rows.update()
            .where(rows.c.lease_type == sa.literal(IA_TA))
            .values(lease_type=sa.literal(IA_NA))
        )
    for table in ("lease6_stat_by_client_class", "lease6_pool_stat", "lease6_stat", "lease6_types"):
        rows = sa.table(table, sa.column("lease_type"))
        op.execute(rows.delete().where(rows.c.lease_type == sa.literal(IA_TA)))
    op.create_foreign_key(
        "fk_flq_pool6_lease6_type", "flq_pool6", "lease6_types", ["lease_type"], ["lease_type"]
    )


def upgrade() -> None:
    kit.drop_routine("PROCEDURE", "sflqCreateFlqPool4")
    _create_flq_pool4()
    kit.drop_routine("PROCEDURE", "sflqCreateFlqPool6")
    _create_flq_pool6()
    _retire_ia_ta()

    kit.set_schema_version(35, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
