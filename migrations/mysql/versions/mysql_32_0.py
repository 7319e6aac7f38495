"""Kea MySQL schema 32.0 (Kea 3.1.1): lease6 index by hardware address.

Revision ID: mysql_32_0
Revises: mysql_31_0
"""

from __future__ import annotations

from alembic import op

from keadb_cli.schema import kit

revision = "mysql_32_0"
down_revision = "mysql_31_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("lease6_by_hwaddr", "lease6", ["hwaddr"])

    kit.set_schema_version(32, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
