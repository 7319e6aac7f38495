"""Kea PostgreSQL schema 25.0 (Kea 2.7.3): prefix exclusion in IPv6 reservations

Revision ID: pgsql_25_0
Revises: pgsql_24_0
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import INET

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_25_0"
down_revision = "pgsql_24_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        ops.add_column(
            "ipv6_reservations",
            sa.Column("excluded_prefix", INET(), server_default=sa.text("NULL")),
        )
        # Kea quotes this default, which the catalog keeps as '0'::smallint.
        ops.add_column(
            "ipv6_reservations",
            sa.Column("excluded_prefix_len", sa.SmallInteger(), nullable=False, server_default="0"),
        )
        set_schema_version(ops, 25, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
