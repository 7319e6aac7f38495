"""Kea PostgreSQL schema 28.0 (Kea 2.7.6): DNS TTL settings

Revision ID: pgsql_28_0
Revises: pgsql_27_0

Subnets and shared networks of both families get ``ddns_ttl_percent``, ``ddns_ttl``,
``ddns_ttl_min`` and ``ddns_ttl_max``.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_28_0"
down_revision = "pgsql_27_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        for table in ("dhcp4_shared_network", "dhcp4_subnet", "dhcp6_shared_network",
                      "dhcp6_subnet"):
            ops.add_column(
                table, sa.Column("ddns_ttl_percent", sa.Double(), server_default=sa.text("NULL"))
            )
            for column in ("ddns_ttl", "ddns_ttl_min", "ddns_ttl_max"):
                ops.add_column(
                    table, sa.Column(column, sa.BigInteger(), server_default=sa.text("NULL"))
                )
        set_schema_version(ops, 28, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
