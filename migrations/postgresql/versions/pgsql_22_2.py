"""Kea PostgreSQL schema 22.2 (Kea 2.6.2 to 2.6.5, 2.6 stable line): data type name int8

Revision ID: pgsql_22_2
Revises: pgsql_22_1

Option definition data type 3 is named ``int8`` (22.1 stored it with a stray quote). Only on
Kea's 2.6 stable line; the main line fixes the name in schema 26.0.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_22_2"
down_revision = "pgsql_22_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        types = sa.table("option_def_data_type", sa.column("id"), sa.column("name"))
        ops.execute(
            types.update().where(types.c.id == sa.literal(3)).values(name=sa.literal("int8"))
        )
        set_schema_version(ops, 22, 2)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
