"""Kea PostgreSQL schema 26.0 (Kea 2.7.4): option client classes, additional classes

Revision ID: pgsql_26_0
Revises: pgsql_25_0

- Options get ``client_classes`` (the classes an option is sent to).
- Option definition data type 3 is named ``int8`` (24.0 stored it with a stray quote).
- ``require_client_classes`` becomes ``evaluate_additional_classes`` (shared networks,
  subnets, pools) and ``only_if_required`` becomes ``only_in_additional_list`` (client
  classes), as Kea 2.7.4 renamed the settings.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_26_0"
down_revision = "pgsql_25_0"
branch_labels = None
depends_on = None

_EVALUATED = (
    "dhcp4_shared_network",
    "dhcp4_subnet",
    "dhcp4_pool",
    "dhcp6_shared_network",
    "dhcp6_subnet",
    "dhcp6_pool",
    "dhcp6_pd_pool",
)


def upgrade() -> None:
    with batch() as ops:
        for v in (4, 6):
            ops.add_column(
                f"dhcp{v}_options",
                sa.Column("client_classes", sa.Text(), server_default=sa.text("NULL")),
            )
        types = sa.table("option_def_data_type", sa.column("id"), sa.column("name"))
        ops.execute(
            types.update().where(types.c.id == sa.literal(3)).values(name=sa.literal("int8"))
        )
        for table in _EVALUATED:
            ops.alter_column(
                table, "require_client_classes", new_column_name="evaluate_additional_classes"
            )
        for v in (4, 6):
            ops.alter_column(
                f"dhcp{v}_client_class",
                "only_if_required",
                new_column_name="only_in_additional_list",
            )
        set_schema_version(ops, 26, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
