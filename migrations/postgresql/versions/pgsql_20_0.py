"""Kea PostgreSQL schema 20.0 (Kea 2.5.5): lease6 index by subnet and address

Revision ID: pgsql_20_0
Revises: pgsql_19_0
"""

from __future__ import annotations

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_20_0"
down_revision = "pgsql_19_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        ops.create_index("lease6_by_subnet_id_address", "lease6", ["subnet_id", "address"])
        set_schema_version(ops, 20, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
