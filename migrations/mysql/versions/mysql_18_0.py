"""Kea MySQL schema 18.0 (Kea 2.3.8): pool statistics, longer identifiers, bulk leasequery.

Revision ID: mysql_18_0
Revises: mysql_17_0

- Client ids, host identifiers and lease4 relay/remote ids grow to 255 bytes, DUIDs to
  130; a one-byte zero DUID becomes the three-byte empty DUID Kea now writes.
- Leases record the pool they came from (``pool_id``); lease4_pool_stat and
  lease6_pool_stat count assigned and declined leases per pool, kept up to date by the
  lease triggers (replaced whole) and filled from the existing leases.
- The lease dump and upload procedures carry ``pool_id``.
- lease6 gets a binary copy of its address for prefix filters, and the tables
  lease6_relay_id / lease6_remote_id index DHCPv6 leases for bulk leasequery.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit
from keadb_cli.schema.kit import CsvColumn, MySQLTrigger, body

revision = "mysql_18_0"
down_revision = "mysql_17_0"
branch_labels = None
depends_on = None

INT_U = my.INTEGER(unsigned=True)
TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB"}


def _widen_identifiers() -> None:
    op.alter_column("lease4", "client_id", type_=my.VARBINARY(255), existing_nullable=True)
    op.alter_column(
        "hosts", "dhcp_identifier", type_=my.VARBINARY(255), existing_nullable=False
    )
    op.alter_column("lease4", "relay_id", type_=my.VARBINARY(255), existing_nullable=True)
    op.alter_column("lease4", "remote_id", type_=my.VARBINARY(255), existing_nullable=True)
    op.alter_column("lease6", "duid", type_=my.VARBINARY(130), existing_nullable=True)
    # Assigning expire its own value keeps the lease's expiry where the column is still
    # NOT NULL ... ON UPDATE current_timestamp() (built while explicit_defaults_for_timestamp
    # was OFF, MariaDB before 10.10): Kea's step resets it to now on these rows there.
    lease6 = sa.table("lease6", sa.column("duid", my.VARBINARY(130)), sa.column("expire"))
    op.execute(
        lease6.update()
        .where(lease6.c.duid == sa.func.unhex(sa.literal("00")))
        .values(duid=sa.func.unhex(sa.literal("000000")), expire=lease6.c.expire)
    )


# --- pool statistics ----------------------------------------------------------------------


class _PoolStat:
    """The pool statistics code of one lease table."""

    def __init__(self, v: str) -> None:
        self.table = f"lease{v}"
        self.stat = f"lease{v}_pool_stat"
        self.typed = v == "6"
        # Procedure parameters (and trigger arguments), in order.
        self.keys = [("state", "TINYINT"), ("subnet_id", "INT UNSIGNED"),
                     ("pool_id", "INT UNSIGNED")]
        if self.typed:
            self.keys.append(("lease_type", "TINYINT"))
        # The statistics table's key, in its column order.
        self.stat_key = ["subnet_id", "pool_id", *(["lease_type"] if self.typed else []),
                         "state"]

    def params(self, prefix: str) -> list[str]:
        return [f"IN {prefix}_{col} {ptype}" for col, ptype in self.keys]

    def count_down(self) -> str:
        match = " AND ".join(f"{col} = old_{col}" for col in self.stat_key)
        return f"""
            IF old_state = 0 OR old_state = 1 THEN
                UPDATE {self.stat} SET leases = IF(leases > 0, leases - 1, 0)
                    WHERE {match};
            END IF"""

    def count_up(self) -> str:
        match = " AND ".join(f"{col} = new_{col}" for col in self.stat_key)
        values = ", ".join(f"new_{col}" for col in self.stat_key)
        return f"""
            IF new_state = 0 OR new_state = 1 THEN
                UPDATE {self.stat} SET leases = leases + 1
                    WHERE {match};
                IF ROW_COUNT() <= 0 THEN
                    INSERT INTO {self.stat} ({", ".join(self.stat_key)}, leases)
                        VALUES ({values}, 1);
                END IF;
            END IF"""

    def changed(self) -> str:
        return " OR ".join(f"old_{col} != new_{col}" for col in self.stat_key)

    def create_table(self) -> None:
        op.create_table(
            self.stat,
            *(sa.Column(col, INT_U, nullable=False) for col in self.stat_key),
            sa.Column("leases", my.BIGINT()),
            sa.PrimaryKeyConstraint(*self.stat_key),
            **TABLE_OPTIONS,
        )

    def create_routines(self) -> None:
        t = self.table
        kit.mysql_create_procedure(
            f"{t}_AINS_{self.stat}", self.params("new"), body(self.count_up())
        )
        kit.mysql_create_procedure(
            f"{t}_AUPD_{self.stat}",
            self.params("old") + self.params("new"),
            body(
                kit.compose(
                    f"""
                    IF {self.changed()} THEN
                        <<down>>;
                        <<up>>;
                    END IF""",
                    down=self.count_down(),
                    up=self.count_up(),
                )
            ),
        )
        kit.mysql_create_procedure(
            f"{t}_ADEL_{self.stat}", self.params("old"), body(self.count_down())
        )

    def recount(self) -> None:
        """Count the leases already there, as the triggers would have."""
        columns = ", ".join(self.stat_key)
        kit.execute(
            f"INSERT INTO {self.stat} ({columns}, leases)\n"
            f"    SELECT {columns}, COUNT(*) FROM {self.table}\n"
            f"    WHERE state = 0 OR state = 1\n"
            f"    GROUP BY {columns}"
        )

    def triggers(self) -> list[MySQLTrigger]:
        """The lease table's triggers, now counting per subnet, per pool and per class."""
        typed = ["lease_type"] if self.typed else []
        return kit.mysql_lease_triggers(
            self.table[-1],
            [
                (f"{self.table}_stat", ["state", "subnet_id", *typed]),
                (self.stat, [col for col, _type in self.keys]),
            ],
            ["state", "user_context", *typed],
            probe_json=True,
        )


POOL_STATS = (_PoolStat("4"), _PoolStat("6"))


# --- lease dump and upload -----------------------------------------------------------------


LEASE_CSV = {
    "4": [
        CsvColumn("address", "INET_NTOA({c})", "INET_ATON({c})", "VARCHAR(15)"),
        CsvColumn("hwaddr", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(20)"),
        CsvColumn("client_id", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(255)"),
        CsvColumn("valid_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("expire", kit.CSV_TIME_OUT, kit.CSV_TIME_IN, "BIGINT UNSIGNED"),
        CsvColumn("subnet_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("fqdn_fwd", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("fqdn_rev", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("hostname", kit.CSV_COMMA_OUT, kit.CSV_COMMA_IN, "VARCHAR(255)"),
        CsvColumn("state", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("user_context", kit.CSV_CONTEXT_OUT, kit.CSV_COMMA_IN, "TEXT"),
        CsvColumn("pool_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
    ],
    "6": [
        CsvColumn("address", kit.CSV_SAME, kit.CSV_SAME, "VARCHAR(39)"),
        CsvColumn("duid", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(130)"),
        CsvColumn("valid_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("expire", kit.CSV_TIME_OUT, kit.CSV_TIME_IN, "BIGINT UNSIGNED"),
        CsvColumn("subnet_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("pref_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("lease_type", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("iaid", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("prefix_len", kit.CSV_SAME, kit.CSV_SAME, "TINYINT UNSIGNED"),
        CsvColumn("fqdn_fwd", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("fqdn_rev", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("hostname", kit.CSV_COMMA_OUT, kit.CSV_COMMA_IN, "VARCHAR(255)"),
        CsvColumn("hwaddr", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(64)"),
        CsvColumn("state", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("user_context", kit.CSV_CONTEXT_OUT, kit.CSV_COMMA_IN, "TEXT"),
        CsvColumn("hwtype", kit.CSV_SAME, kit.CSV_SAME, "SMALLINT"),
        CsvColumn("hwaddr_source", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("pool_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
    ],
}


# --- bulk leasequery (DHCPv6) ---------------------------------------------------------------


def _create_leasequery_tables() -> None:
    op.add_column("lease6", sa.Column("binaddr", my.BINARY(16)))
    op.create_index("lease6_by_binaddr", "lease6", ["binaddr"])
    for kind, id_type in (("relay", my.VARBINARY(130)), ("remote", my.VARBINARY(255))):
        op.create_table(
            f"lease6_{kind}_id",
            sa.Column("extended_info_id", INT_U, primary_key=True),
            sa.Column(f"{kind}_id", id_type, nullable=False),
            sa.Column("lease_addr", my.BINARY(16), nullable=False),
            kit.MySQLKey(f"{kind}_id", "lease_addr", name=f"key_lease6_{kind}_id_by_id"),
            kit.MySQLKey("lease_addr", name=f"key_lease6_{kind}_id_by_address"),
            **TABLE_OPTIONS,
        )


def upgrade() -> None:
    _widen_identifiers()
    for v in "46":
        op.add_column(
            f"lease{v}",
            sa.Column("pool_id", INT_U, nullable=False, server_default=sa.text("0")),
        )
    for stat in POOL_STATS:
        stat.create_table()
    for stat in POOL_STATS:
        stat.create_routines()
    for stat in POOL_STATS:
        kit.mysql_replace_triggers(stat.triggers())
    for v in "46":
        for suffix in ("DumpHeader", "DumpData", "Upload"):
            kit.drop_routine("PROCEDURE", f"lease{v}{suffix}")
        kit.mysql_create_lease_csv_routines(v, LEASE_CSV[v])
    for stat in POOL_STATS:
        stat.recount()
    _create_leasequery_tables()

    kit.set_schema_version(18, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
