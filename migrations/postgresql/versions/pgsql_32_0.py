"""Kea PostgreSQL schema 32.0 (Kea 3.1.5): lease indexes by state and subnet

Revision ID: pgsql_32_0
Revises: pgsql_31_0
"""

from __future__ import annotations

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_32_0"
down_revision = "pgsql_31_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        for v in (4, 6):
            ops.create_index(f"lease{v}_by_state", f"lease{v}", ["state", "subnet_id"])
        set_schema_version(ops, 32, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
