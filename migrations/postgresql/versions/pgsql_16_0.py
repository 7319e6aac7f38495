"""Kea PostgreSQL schema 16.0 (Kea 2.3.7): allocator settings

Revision ID: pgsql_16_0
Revises: pgsql_15_0

Subnets and shared networks get an ``allocator`` (iterative, random, flq), and the DHCPv6
ones a ``pd_allocator`` for prefix delegation.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_16_0"
down_revision = "pgsql_15_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        for table in ("dhcp4_subnet", "dhcp4_shared_network"):
            ops.add_column(
                table, sa.Column("allocator", sa.Text(), server_default=sa.text("NULL"))
            )
        for table in ("dhcp6_subnet", "dhcp6_shared_network"):
            for column in ("allocator", "pd_allocator"):
                ops.add_column(
                    table, sa.Column(column, sa.Text(), server_default=sa.text("NULL"))
                )
        set_schema_version(ops, 16, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
