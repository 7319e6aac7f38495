"""Kea MySQL schema 19.0 (Kea 2.4): IPv6 addresses stored as 16 binary bytes.

Revision ID: mysql_19_0
Revises: mysql_18_0

lease6.address and ipv6_reservations.address change from text to BINARY(16). Every row
is converted with INET6_ATON through a binary column, so that the address keeps its place
as the first column (and lease6's primary key): an address the server cannot parse stops
the step, as it stops Kea's. lease6, the big table, is converted in one pass and one
rebuild. The lease6 dump and upload procedures convert
between the binary column and the text of the CSV file.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit
from keadb_cli.schema.kit import CsvColumn

revision = "mysql_19_0"
down_revision = "mysql_18_0"
branch_labels = None
depends_on = None

BINARY16 = my.BINARY(16)
TEXT_ADDRESS = my.VARCHAR(39)


def _copy(table: str, target: str, source: str) -> None:
    kit.execute(f"UPDATE {table} SET {target} = {source}")


def _convert_lease6() -> None:
    # One pass over the rows and one table rebuild (Kea's step makes three passes and
    # rebuilds the table five times): the binary address goes into the spare binaddr
    # column, then a single ALTER TABLE puts it first, in the text address's place, as
    # the primary key. An address INET6_ATON cannot parse is NULL there, and the NOT NULL
    # of the key stops the step, as it stops Kea's; the table ends the same.
    #
    # Assigning expire its own value keeps the row's expiry: on a table built while
    # explicit_defaults_for_timestamp was OFF (MariaDB before 10.10), expire is still
    # NOT NULL ... ON UPDATE current_timestamp() here, and any other change of the row
    # would set every lease's expiry to now (Kea 2.4's step did that; Kea ChangeLog 2235).
    kit.execute("UPDATE lease6 SET binaddr = INET6_ATON(address), expire = expire")
    kit.execute(
        "ALTER TABLE lease6 CHANGE expire expire TIMESTAMP NULL, "
        "DROP INDEX lease6_by_binaddr, DROP PRIMARY KEY, DROP COLUMN address, "
        "CHANGE binaddr address BINARY(16) NOT NULL FIRST, ADD PRIMARY KEY (address)"
    )


def _convert_reservations() -> None:
    op.add_column("ipv6_reservations", sa.Column("binaddr", BINARY16))
    _copy("ipv6_reservations", "binaddr", "INET6_ATON(address)")
    op.alter_column("ipv6_reservations", "address", existing_type=TEXT_ADDRESS, nullable=True)
    _copy("ipv6_reservations", "address", "NULL")
    op.alter_column("ipv6_reservations", "address", type_=BINARY16, existing_nullable=True)
    _copy("ipv6_reservations", "address", "binaddr")
    op.alter_column("ipv6_reservations", "address", existing_type=BINARY16, nullable=False)
    op.drop_column("ipv6_reservations", "binaddr")



LEASE6_CSV = [
    CsvColumn("address", "INET6_NTOA({c})", "INET6_ATON({c})", "VARCHAR(39)"),
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
]


def upgrade() -> None:
    _convert_lease6()
    _convert_reservations()
    for suffix in ("DumpHeader", "DumpData", "Upload"):
        kit.drop_routine("PROCEDURE", f"lease6{suffix}")
    kit.mysql_create_lease_csv_routines("6", LEASE6_CSV)

    kit.set_schema_version(19, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
