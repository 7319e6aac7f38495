"""Kea PostgreSQL schema 14.0 (Kea 2.3.6): option cancellation and offer lifetimes

Revision ID: pgsql_14_0
Revises: pgsql_13_0

Options get a ``cancelled`` flag (never send the option); DHCPv4 shared networks, subnets and
client classes get an ``offer_lifetime``.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_14_0"
down_revision = "pgsql_13_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        for v in (4, 6):
            ops.add_column(
                f"dhcp{v}_options",
                sa.Column("cancelled", sa.Boolean(), nullable=False, server_default=sa.false()),
            )
        for table in ("dhcp4_shared_network", "dhcp4_subnet", "dhcp4_client_class"):
            ops.add_column(
                table, sa.Column("offer_lifetime", sa.BigInteger(), server_default=sa.text("NULL"))
            )
        set_schema_version(ops, 14, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
