"""Kea PostgreSQL schema 15.0 (between Kea 2.3.6 and 2.3.7): DHCPv4 lease relay and remote ids

Revision ID: pgsql_15_0
Revises: pgsql_14_0

DHCPv4 leases get ``relay_id`` and ``remote_id`` columns, indexed, for the lease queries by
relay and remote id. They are not part of the lease file: the values are also in the user
context.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_15_0"
down_revision = "pgsql_14_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        for column in ("relay_id", "remote_id"):
            ops.add_column(
                "lease4", sa.Column(column, sa.LargeBinary(), server_default=sa.text("NULL"))
            )
        for column in ("relay_id", "remote_id"):
            ops.create_index(f"lease4_by_{column}", "lease4", [column])
        set_schema_version(ops, 15, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
