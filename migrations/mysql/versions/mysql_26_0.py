"""Kea MySQL schema 26.0 (Kea 2.7.4): option class tags; "additional" classes.

Revision ID: mysql_26_0
Revises: mysql_25_0

- Options get ``client_classes`` (the classes an option is sent to).
- Option data type 3 is spelt ``int8`` (a no-op on a database from 22.2).
- ``require_client_classes`` becomes ``evaluate_additional_classes`` on subnets, shared
  networks and pools, and client classes' ``only_if_required`` becomes
  ``only_in_additional_list``: renamed in place, values kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_26_0"
down_revision = "mysql_25_0"
branch_labels = None
depends_on = None

ADDITIONAL_CLASS_TABLES = (
    "dhcp4_shared_network",
    "dhcp4_subnet",
    "dhcp4_pool",
    "dhcp6_shared_network",
    "dhcp6_subnet",
    "dhcp6_pool",
    "dhcp6_pd_pool",
)


def upgrade() -> None:
    for v in "46":
        op.add_column(f"dhcp{v}_options", sa.Column("client_classes", my.LONGTEXT()))
    types = sa.table("option_def_data_type", sa.column("id"), sa.column("name"))
    op.execute(types.update().where(types.c.id == sa.literal(3)).values(name=sa.literal("int8")))
    for table in ADDITIONAL_CLASS_TABLES:
        op.alter_column(
            table,
            "require_client_classes",
            new_column_name="evaluate_additional_classes",
            existing_type=my.LONGTEXT(),
            existing_nullable=True,
        )
    for v in "46":
        op.alter_column(
            f"dhcp{v}_client_class",
            "only_if_required",
            new_column_name="only_in_additional_list",
            existing_type=my.TINYINT(),
            existing_nullable=False,
            existing_server_default=sa.text("0"),
        )

    kit.set_schema_version(26, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
