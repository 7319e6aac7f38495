"""Kea MySQL schema 22.2 (Kea 2.6.2, stable branch only): option data type 3 is ``int8``.

Revision ID: mysql_22_2
Revises: mysql_22_1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keadb_cli.schema import kit

revision = "mysql_22_2"
down_revision = "mysql_22_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    types = sa.table("option_def_data_type", sa.column("id"), sa.column("name"))
    op.execute(types.update().where(types.c.id == sa.literal(3)).values(name=sa.literal("int8")))

    kit.set_schema_version(22, 2)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
