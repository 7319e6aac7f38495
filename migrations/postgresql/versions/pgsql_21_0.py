"""Kea PostgreSQL schema 21.0 (Kea 2.5.8): dhcp4_server_modification_ts on dhcp4_server

Revision ID: pgsql_21_0
Revises: pgsql_20_0

The index named for ``dhcp4_server`` was built on ``dhcp6_server`` (schema 13.0); it moves to
the table its name says.
"""

from __future__ import annotations

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_21_0"
down_revision = "pgsql_20_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        ops.drop_index("dhcp4_server_modification_ts", table_name="dhcp6_server")
        ops.create_index("dhcp4_server_modification_ts", "dhcp4_server", ["modification_ts"])
        set_schema_version(ops, 21, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
