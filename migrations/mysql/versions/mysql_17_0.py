"""Kea MySQL schema 17.0 (Kea 2.3.7): allocator choice in the config backend.

Revision ID: mysql_17_0
Revises: mysql_16_0

Subnets and shared networks name their address allocator; DHCPv6 ones also their prefix
delegation allocator.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_17_0"
down_revision = "mysql_16_0"
branch_labels = None
depends_on = None

# Table -> its new allocator columns, in the order they are added.
ALLOCATOR_COLUMNS = {
    "dhcp4_subnet": ("allocator",),
    "dhcp4_shared_network": ("allocator",),
    "dhcp6_subnet": ("allocator", "pd_allocator"),
    "dhcp6_shared_network": ("allocator", "pd_allocator"),
}


def upgrade() -> None:
    for table, columns in ALLOCATOR_COLUMNS.items():
        for column in columns:
            op.add_column(table, sa.Column(column, my.TEXT()))

    kit.set_schema_version(17, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
