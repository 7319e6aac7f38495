"""Kea PostgreSQL schema 22.1 (Kea 2.6.1, 2.6 stable line): option definition data types

Revision ID: pgsql_22_1
Revises: pgsql_22_0

Only on Kea's 2.6 stable line; the main line makes the same change in schema 24.0
(``pgsql_24_0``), and Kea upgrades any 22.x to 23.0.

With auditing off: option definitions with record types get data type 254 (``record``);
``option_def_data_type`` names the data types, and both families' option definitions
reference it. Type 3 is named ``int8"`` (with a stray quote, as in Kea; schema 22.2 fixes it).
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.facts import OPTION_DEF_DATA_TYPES
from keadb_cli.schema.kit_pgsql import batch, set_audit, set_schema_version

revision = "pgsql_22_1"
down_revision = "pgsql_22_0"
branch_labels = ("kea_2_6",)
depends_on = None



def upgrade() -> None:
    with batch() as ops:
        set_audit(ops, False)
        for v in (4, 6):
            option_defs = sa.table(
                f"dhcp{v}_option_def", sa.column("type"), sa.column("record_types")
            )
            ops.execute(
                option_defs.update()
                .where(option_defs.c.record_types.is_not(None))
                .values(type=sa.literal(254))
            )
        types = ops.create_table(
            "option_def_data_type",
            sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(32), nullable=False),
        )
        ops.bulk_insert(types, [{"id": i, "name": n} for i, n in OPTION_DEF_DATA_TYPES])
        for v in (4, 6):
            ops.create_foreign_key(
                f"fk_option_def_data_type{v}",
                f"dhcp{v}_option_def",
                "option_def_data_type",
                ["type"],
                ["id"],
            )
        set_audit(ops, True)
        set_schema_version(ops, 22, 1)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
