"""Kea MySQL schema 16.0 (Kea 2.3.7, first step): DHCPv4 lease relay and remote ids.

Revision ID: mysql_16_0
Revises: mysql_15_0

lease4 gets ``relay_id`` and ``remote_id`` columns, filled by Kea from the lease's
extended info for bulk leasequery, each with an index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_16_0"
down_revision = "mysql_15_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lease4", sa.Column("relay_id", my.VARBINARY(128)))
    op.add_column("lease4", sa.Column("remote_id", my.VARBINARY(128)))
    op.create_index("lease4_by_relay_id", "lease4", ["relay_id"])
    op.create_index("lease4_by_remote_id", "lease4", ["remote_id"])

    kit.set_schema_version(16, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
