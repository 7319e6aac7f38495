"""Kea MySQL schema 34.0 (Kea 3.1.8): free lease queue; JSON support taken for granted.

Revision ID: mysql_34_0
Revises: mysql_33_0

- Every supported server has JSON functions: isJsonSupported goes, and the lease triggers
  (replaced whole) always count client classes.
- The shared free lease queue (SFLQ): flq_pool4/flq_pool6 list the pools whose free
  addresses (or prefixes) Kea keeps in free_lease4/free_lease6. sflqCreateFlqPoolX fills a
  pool's queue, sflqPickFreeLeaseX hands out the next free entry round robin, and
  sflqInsert/Update/DeleteLeaseX write a lease and keep the queue in step. incrementV6Prefix
  steps a prefix, setLoopLimit sizes the recursive queries to the server's limit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit
from keadb_cli.schema.kit import MySQLTrigger, body

revision = "mysql_34_0"
down_revision = "mysql_33_0"
branch_labels = None
depends_on = None

TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB"}
INT_U = my.INTEGER(unsigned=True)
BIGINT_U = my.BIGINT(unsigned=True)
NOW = sa.text("CURRENT_TIMESTAMP")
NOW_ON_UPDATE = sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")


# --- lease triggers -------------------------------------------------------------------------


def _lease_triggers(v: str) -> list[MySQLTrigger]:
    typed = ["lease_type"] if v == "6" else []
    return kit.mysql_lease_triggers(
        v,
        [
            (f"lease{v}_stat", ["state", "subnet_id", *typed]),
            (f"lease{v}_pool_stat", ["state", "subnet_id", "pool_id", *typed]),
        ],
        ["state", "user_context", *typed],
        probe_json=False,
    )


# --- tables -----------------------------------------------------------------------------------


def _timestamps(created: bool) -> list[sa.Column[Any]]:
    # Nullability left to the server (explicit_defaults_for_timestamp), as in Kea's script.
    stamp = kit.ServerTimestamp()
    columns = [sa.Column("created_ts", stamp, server_default=NOW)] if created else []
    columns.append(sa.Column("modification_ts", stamp, server_default=NOW_ON_UPDATE))
    return columns


def _create_tables() -> None:
    op.create_table(
        "flq_pool4",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("start_address", INT_U, nullable=False),
        sa.Column("end_address", INT_U, nullable=False),
        sa.Column("last_returned_address", INT_U, server_default=sa.text("0")),
        sa.Column("subnet_id", INT_U, nullable=False),
        *_timestamps(created=True),
        sa.UniqueConstraint("start_address", "end_address", name="flq_pool4_address_range"),
        kit.MySQLKey("subnet_id", name="flq_pool4_by_subnet_id"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "free_lease4",
        sa.Column("address", INT_U, primary_key=True, autoincrement=False),
        *_timestamps(created=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "flq_pool6",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("start_address", my.VARCHAR(45), nullable=False),
        sa.Column("end_address", my.VARCHAR(45), nullable=False),
        sa.Column("lease_type", my.TINYINT()),
        sa.Column("delegated_len", my.TINYINT(unsigned=True)),
        sa.Column("last_returned_address", my.VARCHAR(45), server_default="::"),
        sa.Column("subnet_id", INT_U, nullable=False),
        *_timestamps(created=True),
        # Unnamed in Kea's schema: the server names it after its first column.
        sa.UniqueConstraint("start_address", "end_address", name="start_address"),
        kit.MySQLKey("subnet_id", name="flq_pool6_by_subnet_id"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "free_lease6",
        sa.Column("address", my.VARCHAR(45), primary_key=True),
        sa.Column("bin_address", my.BINARY(16), nullable=False),
        *_timestamps(created=False),
        sa.UniqueConstraint("bin_address", name="bin_address"),
        **TABLE_OPTIONS,
    )


# --- helpers ----------------------------------------------------------------------------------


def _create_increment_v6_prefix() -> None:
    """The next prefix of a given length after ``prefix``, carrying into the bytes before.

    The step added to the byte holding the prefix's last bit is twice the number of host
    bits left in that byte (1 when none): Kea's rule, kept as it is.
    """

    def byte_at(position: str) -> str:
        return f"CONV(HEX(SUBSTRING(new_prefix, {position}, 1)), 16, 10)"

    kit.mysql_create_function(
        "incrementV6Prefix",
        ["prefix BINARY(16)", "prefix_len INT UNSIGNED"],
        "BINARY(16)",
        body(
            "DECLARE new_prefix BINARY(16)",
            "DECLARE n_bytes INT UNSIGNED",
            "DECLARE n_bits TINYINT UNSIGNED",
            "DECLARE mask TINYINT UNSIGNED",
            "DECLARE start_idx INT UNSIGNED",
            "DECLARE tmp INT UNSIGNED",
            "DECLARE i TINYINT UNSIGNED",
            """
            IF prefix_len < 1 OR prefix_len > 128 THEN
                RETURN prefix;
            END IF""",
            "SET new_prefix = prefix",
            "SET n_bytes = (prefix_len - 1) DIV 8",
            "SET n_bits = 8 - (prefix_len - (n_bytes * 8))",
            """
            IF n_bits = 0 THEN
                SET mask = 1;
            ELSE
                SET mask = n_bits * 2;
            END IF""",
            "SET start_idx = n_bytes + 1",
            # SELECT ... INTO rather than SET, as Kea's function: a caller's affected-row
            # count includes these.
            f"SELECT {byte_at('start_idx')} + mask INTO tmp",
            """
            IF tmp < 256 THEN
                SET new_prefix = INSERT(new_prefix, start_idx, 1, UNHEX(HEX(tmp)));
                RETURN new_prefix;
            END IF""",
            "SET tmp = tmp - 256",
            "SET new_prefix = INSERT(new_prefix, start_idx, 1, UNHEX(HEX(tmp)))",
            "SET i = start_idx - 1",
            f"""
            WHILE i >= 1 DO
                SELECT {byte_at('i')} + 1 INTO tmp;
                IF tmp != 256 THEN
                    SET new_prefix = INSERT(new_prefix, i, 1, UNHEX(HEX(tmp)));
                    RETURN new_prefix;
                END IF;
                SET new_prefix = INSERT(new_prefix, i, 1, 0x00);
                SET i = i - 1;
            END WHILE""",
            "RETURN new_prefix",
        ),
        characteristics=["DETERMINISTIC"],
    )


def _create_set_loop_limit() -> None:
    """@kea_recursion_limit: how many rows one recursive query may produce, at most 1000.

    Probes MariaDB's max_recursive_iterations, then MySQL's cte_max_recursion_depth
    (through prepared statements, so that the unknown one is an ignored error), setting a
    zero limit to 1000.
    """

    def run(statement: str) -> str:
        return kit.compose(f"""
            SET @sqlv = '{statement}';
            PREPARE stmt FROM @sqlv;
            EXECUTE stmt;
            DEALLOCATE PREPARE stmt""")

    def probe(variable: str) -> str:
        return kit.compose(
            """
            <<read>>;
            IF @kea_recursion_limit = 0 THEN
                <<write>>;
                SET @kea_recursion_limit = 1000;
                LEAVE set_limit;
            END IF""",
            read=run(f"SELECT @@{variable} INTO @kea_recursion_limit"),
            write=run(f"SET @@{variable} = 1000"),
        )

    kit.mysql_create_procedure(
        "setLoopLimit",
        [],
        body(
            "DECLARE sqlv VARCHAR(512)",
            "DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END",
            """
            IF @kea_recursion_limit IS NOT NULL THEN
                LEAVE set_limit;
            END IF""",
            probe("max_recursive_iterations"),
            kit.compose(
                """
                IF @kea_recursion_limit IS NULL THEN
                    <<probe>>;
                END IF""",
                probe=probe("cte_max_recursion_depth"),
            ),
            """
            IF @kea_recursion_limit IS NULL THEN
                SET @kea_recursion_limit = 1000;
            ELSEIF @kea_recursion_limit <= 0 OR @kea_recursion_limit >= 1000 THEN
                SET @kea_recursion_limit = 1000;
            END IF""",
            label="set_limit",
        ),
    )


# --- the queues -------------------------------------------------------------------------------


def _create_flq_pool4(transaction: bool) -> None:
    """sflqCreateFlqPool4: (re)fill the queue of an IPv4 pool with its addresses that have
    no lease or an expired-reclaimed one, in batches of the recursion limit."""
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
            "START TRANSACTION" if transaction else "",
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
            "COMMIT" if transaction else "",
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
        FLQ_POOL6_PARAMS,
        body(
            *FLQ_POOL6_LOCALS,
            *FLQ_POOL6_CHECKS,
            "START TRANSACTION",
            """
            IF p_recreate = 1 THEN
                INSERT INTO flq_pool6
                    (start_address, end_address, lease_type, delegated_len, subnet_id)
                    VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len,
                            p_subnet_id)
                    ON DUPLICATE KEY UPDATE start_address = start_address;
            ELSE
                INSERT INTO flq_pool6
                    (start_address, end_address, lease_type, delegated_len, subnet_id)
                    VALUES (p_start_address, p_end_address, p_lease_type, p_delegated_len,
                            p_subnet_id);
            END IF""",
            *_fill_flq_pool6(),
            "COMMIT",
        ),
    )


def _create_pick_functions() -> None:
    kit.mysql_create_function(
        "sflqPickFreeLease4",
        ["alloc_start_address INT UNSIGNED", "alloc_end_address INT UNSIGNED"],
        "INT UNSIGNED",
        body(
            "DECLARE pool_id BIGINT(20)",
            "DECLARE last_address INT UNSIGNED",
            "DECLARE free_address INT UNSIGNED",
            "SET free_address = 0",
            """
            SELECT id, last_returned_address INTO pool_id, last_address FROM flq_pool4
                WHERE start_address = alloc_start_address AND end_address = alloc_end_address""",
            """
            IF pool_id IS NULL THEN
                RETURN free_address;
            END IF""",
            """
            IF last_address < alloc_start_address OR last_address >= alloc_end_address THEN
                SET last_address = alloc_start_address - 1;
            END IF""",
            """
            SELECT f.address INTO free_address FROM free_lease4 AS f
                WHERE f.address > last_address AND f.address <= alloc_end_address
                ORDER BY f.address ASC LIMIT 1""",
            """
            IF free_address = 0 THEN
                SELECT f.address INTO free_address FROM free_lease4 AS f
                    WHERE f.address >= alloc_start_address AND f.address <= last_address
                    ORDER BY f.address ASC LIMIT 1;
            END IF""",
            """
            IF free_address != 0 THEN
                UPDATE flq_pool4 SET last_returned_address = free_address WHERE id = pool_id;
            END IF""",
            "RETURN free_address",
        ),
        characteristics=["READS SQL DATA"],
    )
    kit.mysql_create_function(
        "sflqPickFreeLease6",
        ["alloc_start_address VARCHAR(45)", "alloc_end_address VARCHAR(45)"],
        "VARCHAR(45)",
        body(
            "DECLARE pool_id BIGINT(20)",
            "DECLARE free_address VARCHAR(45)",
            "DECLARE bin_start_address BINARY(16)",
            "DECLARE bin_end_address BINARY(16)",
            "DECLARE bin_last_address BINARY(16)",
            """
            SELECT id, INET6_ATON(last_returned_address) INTO pool_id, bin_last_address
                FROM flq_pool6
                WHERE start_address = alloc_start_address AND end_address = alloc_end_address""",
            "SET free_address = '::'",
            """
            IF pool_id IS NULL THEN
                RETURN '::';
            END IF""",
            "SET bin_start_address = INET6_ATON(alloc_start_address)",
            "SET bin_end_address = INET6_ATON(alloc_end_address)",
            # The upper bound is compared with the range's text, as in Kea's routine.
            """
            IF bin_last_address < bin_start_address
                    OR bin_last_address >= alloc_end_address THEN
                SET bin_last_address = bin_start_address;
            END IF""",
            """
            SELECT f.address INTO free_address FROM free_lease6 AS f
                WHERE f.bin_address > bin_last_address AND f.bin_address <= bin_end_address
                ORDER BY f.bin_address LIMIT 1""",
            """
            IF FOUND_ROWS() = 0 THEN
                SELECT f.address INTO free_address FROM free_lease6 AS f
                    WHERE f.bin_address >= bin_start_address
                        AND f.bin_address <= bin_last_address
                    ORDER BY f.bin_address LIMIT 1;
            END IF""",
            "UPDATE flq_pool6 SET last_returned_address = free_address WHERE id = pool_id",
            "RETURN free_address",
        ),
        characteristics=["READS SQL DATA"],
    )


# Lease columns the sflq write functions take, in order: (column, parameter type).
LEASE_COLUMNS = {
    "4": [
        ("address", "INT UNSIGNED"),
        ("hwaddr", "VARBINARY(20)"),
        ("client_id", "VARBINARY(255)"),
        ("valid_lifetime", "INT UNSIGNED"),
        ("expire", "TIMESTAMP"),
        ("subnet_id", "INT UNSIGNED"),
        ("fqdn_fwd", "TINYINT(1)"),
        ("fqdn_rev", "TINYINT(1)"),
        ("hostname", "VARCHAR(255)"),
        ("state", "INT UNSIGNED"),
        ("user_context", "TEXT"),
        ("relay_id", "VARBINARY(255)"),
        ("remote_id", "VARBINARY(255)"),
        ("pool_id", "INT UNSIGNED"),
    ],
    "6": [
        ("address", "BINARY(16)"),
        ("duid", "VARBINARY(128)"),
        ("valid_lifetime", "INT UNSIGNED"),
        ("expire", "TIMESTAMP"),
        ("subnet_id", "INT UNSIGNED"),
        ("pref_lifetime", "INT UNSIGNED"),
        ("lease_type", "TINYINT"),
        ("iaid", "INT UNSIGNED"),
        ("prefix_len", "TINYINT UNSIGNED"),
        ("fqdn_fwd", "TINYINT(1)"),
        ("fqdn_rev", "TINYINT(1)"),
        ("hostname", "VARCHAR(255)"),
        ("hwaddr", "VARBINARY(20)"),
        ("hwtype", "SMALLINT UNSIGNED"),
        ("hwaddr_source", "INT UNSIGNED"),
        ("state", "INT UNSIGNED"),
        ("user_context", "TEXT"),
        ("pool_id", "INT UNSIGNED"),
    ],
}
# What a freed address looks like in each queue, and how it is found there.
FREED = {
    "4": (
        "INSERT INTO free_lease4 (address) VALUES (p_address)\n"
        "    ON DUPLICATE KEY UPDATE address = p_address",
        "DELETE FROM free_lease4 WHERE address = p_address",
    ),
    "6": (
        "INSERT INTO free_lease6 (address, bin_address) VALUES (INET6_NTOA(p_address), p_address)\n"
        "    ON DUPLICATE KEY UPDATE bin_address = p_address",
        "DELETE FROM free_lease6 WHERE bin_address = p_address",
    ),
}


def _create_lease_functions(v: str) -> None:
    """sflqInsertLeaseX / sflqUpdateLeaseX / sflqDeleteLeaseX: the lease write, then the
    queue: an expired-reclaimed (2) lease's address is free, any other is not. Each
    returns the number of lease rows written."""
    columns = LEASE_COLUMNS[v]
    params = [f"p_{name} {ptype}" for name, ptype in columns]
    where = ["p_where_address " + columns[0][1], "p_where_expire TIMESTAMP"]
    free, taken = FREED[v]
    follow = kit.compose(
        """
        IF lease_row_count > 0 THEN
            IF p_state = 2 THEN
                <<free>>;
            ELSE
                <<taken>>;
            END IF;
        END IF""",
        free=free,
        taken=taken,
    )
    names = ", ".join(name for name, _type in columns)
    values = ", ".join(f"p_{name}" for name, _type in columns)
    assignments = ",\n    ".join(f"{name} = p_{name}" for name, _type in columns)
    for name, parameters, write in (
        ("Insert", params, f"INSERT INTO lease{v} ({names})\n    VALUES ({values})"),
        (
            "Update",
            params + where,
            f"UPDATE lease{v} SET\n    {assignments}\n"
            "WHERE address = p_where_address AND expire = p_where_expire",
        ),
    ):
        kit.mysql_create_function(
            f"sflq{name}Lease{v}",
            parameters,
            "INT",
            body(
                "DECLARE lease_row_count INT",
                write,
                "SET lease_row_count = ROW_COUNT()",
                follow,
                "RETURN lease_row_count",
            ),
            characteristics=["READS SQL DATA"],
        )
    kit.mysql_create_function(
        f"sflqDeleteLease{v}",
        [params[0], "p_expire TIMESTAMP"],
        "INT",
        body(
            "DECLARE lease_row_count INT",
            f"DELETE FROM lease{v} WHERE address = p_address AND expire = p_expire",
            "SET lease_row_count = ROW_COUNT()",
            # ROW_COUNT() here reports the SET above, as in Kea's routine.
            kit.compose(
                """
                IF ROW_COUNT() > 0 THEN
                    <<free>>;
                END IF""",
                free=free,
            ),
            "RETURN lease_row_count",
        ),
        characteristics=["READS SQL DATA"],
    )


def upgrade() -> None:
    kit.drop_routine("FUNCTION", "isJsonSupported")
    for v in "46":
        kit.mysql_replace_triggers(_lease_triggers(v))
    _create_tables()
    _create_increment_v6_prefix()
    _create_set_loop_limit()
    _create_flq_pool4(transaction=True)
    _create_pick_functions()
    _create_flq_pool6()
    for v in "46":
        _create_lease_functions(v)

    kit.set_schema_version(34, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
