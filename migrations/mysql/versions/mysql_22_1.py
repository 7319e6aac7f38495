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
from keadb_cli.schema.facts import OPTION_DEF_DATA_TYPES, RECORD_TYPE

revision = "mysql_22_1"
down_revision = "mysql_22_0"
branch_labels = ("kea_2_6",)
depends_on = None




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
    kit.insert_rows("option_def_data_type", ("id", "name"), OPTION_DEF_DATA_TYPES)
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
