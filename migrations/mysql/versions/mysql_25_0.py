"""Kea MySQL schema 25.0 (Kea 2.7.3): prefix exclusion in IPv6 reservations.

Revision ID: mysql_25_0
Revises: mysql_24_0
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_25_0"
down_revision = "mysql_24_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ipv6_reservations", sa.Column("excluded_prefix", my.BINARY(16)))
    op.add_column(
        "ipv6_reservations",
        sa.Column(
            "excluded_prefix_len",
            my.TINYINT(display_width=3, unsigned=True),
            nullable=False,
            server_default=sa.text("0"),
        ),
    )

    kit.set_schema_version(25, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
