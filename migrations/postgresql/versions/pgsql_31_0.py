"""Kea PostgreSQL schema 31.0 (Kea 3.1.1): lease6 index by hardware address

Revision ID: pgsql_31_0
Revises: pgsql_30_0
"""

from __future__ import annotations

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_31_0"
down_revision = "pgsql_30_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        ops.create_index("lease6_by_hwaddr", "lease6", ["hwaddr"])
        set_schema_version(ops, 31, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
