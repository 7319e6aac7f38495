"""Kea MySQL schema 28.0 (Kea 2.7.6): DNS TTL settings for subnets and shared networks.

Revision ID: mysql_28_0
Revises: mysql_27_0
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_28_0"
down_revision = "mysql_27_0"
branch_labels = None
depends_on = None

TABLES = ("dhcp4_shared_network", "dhcp4_subnet", "dhcp6_shared_network", "dhcp6_subnet")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("ddns_ttl_percent", my.FLOAT()))
        for name in ("ddns_ttl", "ddns_ttl_min", "ddns_ttl_max"):
            op.add_column(table, sa.Column(name, my.INTEGER(display_width=10)))

    kit.set_schema_version(28, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
