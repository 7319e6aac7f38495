"""Kea MySQL schema 22.1 (Kea 2.6.1, stable branch only): option definition data types.

Revision ID: mysql_22_1
Revises: mysql_22_0

option_def_data_type lists the data types an option definition may have, and the
definitions' ``type`` column becomes a foreign key to it. Definitions with record fields
take the new record type 254 first (unaudited). The list has Kea 2.6.1's misspelt name
for type 3 (``int8"``), corrected in 22.2.

The main line (Kea 2.7) never had this step: its 23.0 -> 24.0 step makes the same table
when it is missing, so a 22.1 or 22.2 database also upgrades to the main line.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_22_1"
down_revision = "mysql_22_0"
branch_labels = ("kea_2_6",)
depends_on = None

RECORD_TYPE = 254

# Kea's option data types (9, any-address, is internal to Kea and not listed).
OPTION_DATA_TYPES = [
    (0, "empty"),
    (1, "binary"),
    (2, "boolean"),
    (3, 'int8"'),
    (4, "int16"),
    (5, "int32"),
    (6, "uint8"),
    (7, "uint16"),
    (8, "uint32"),
    (10, "ipv4-address"),
    (11, "ipv6-address"),
    (12, "ipv6-prefix"),
    (13, "psid"),
    (14, "string"),
    (15, "tuple"),
    (16, "fqdn"),
    (17, "internal"),
    (RECORD_TYPE, "record"),
]


def upgrade() -> None:
    kit.set_audit(False)
    for v in "46":
        defs = sa.table(f"dhcp{v}_option_def", sa.column("type"), sa.column("record_types"))
        op.execute(
            defs.update()
            .where(defs.c.record_types.is_not(None))
            .values(type=sa.literal(RECORD_TYPE))
        )
    op.create_table(
        "option_def_data_type",
        sa.Column("id", my.TINYINT(unsigned=True), primary_key=True, autoincrement=False),
        sa.Column("name", my.VARCHAR(32), nullable=False),
        mysql_engine="InnoDB",
    )
    kit.insert_rows("option_def_data_type", ("id", "name"), OPTION_DATA_TYPES)
    for v in "46":
        op.create_foreign_key(
            f"fk_option_def_data_type{v}",
            f"dhcp{v}_option_def",
            "option_def_data_type",
            ["type"],
            ["id"],
        )
    kit.set_audit(True)

    kit.set_schema_version(22, 1)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
