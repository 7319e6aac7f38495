"""Kea MySQL schema 27.0 (Kea 2.7.5): several client classes per subnet, network, pool.

Revision ID: mysql_27_0
Revises: mysql_26_0

``client_class`` (one class name) becomes ``client_classes`` (a JSON list) on shared
networks, subnets and pools of both config backends. Every row is converted, unaudited: a
name ``c`` becomes ``[ "c" ]`` (the name as is, between quotes), an empty or missing
one NULL.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_27_0"
down_revision = "mysql_26_0"
branch_labels = None
depends_on = None

TABLES = (
    "dhcp4_shared_network",
    "dhcp4_subnet",
    "dhcp4_pool",
    "dhcp6_shared_network",
    "dhcp6_subnet",
    "dhcp6_pool",
    "dhcp6_pd_pool",
)

AS_JSON_LIST = """CASE
    WHEN client_classes = '' OR client_classes IS NULL THEN NULL
    ELSE CONCAT('[ "', client_classes, '" ]')
END"""


def upgrade() -> None:
    kit.set_audit(False)
    for table in TABLES:
        op.alter_column(
            table,
            "client_class",
            new_column_name="client_classes",
            type_=my.LONGTEXT(),
            existing_type=my.VARCHAR(128),
            existing_nullable=True,
        )
        kit.execute(f"UPDATE {table} SET client_classes = {AS_JSON_LIST}")
    kit.set_audit(True)

    kit.set_schema_version(27, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
