"""Kea MySQL schema 21.0 (Kea 2.5.5): lease6 index by subnet and address.

Revision ID: mysql_21_0
Revises: mysql_20_0
"""

from __future__ import annotations

from alembic import op

from keadb_cli.schema import kit

revision = "mysql_21_0"
down_revision = "mysql_20_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("lease6_by_subnet_id_address", "lease6", ["subnet_id", "address"])

    kit.set_schema_version(21, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
