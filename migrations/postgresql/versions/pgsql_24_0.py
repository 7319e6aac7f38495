"""Kea PostgreSQL schema 24.0 (Kea 2.7.1): option definition data types, control socket

Revision ID: pgsql_24_0
Revises: pgsql_23_0

With auditing off:

- the global parameters ``control-socket.socket-name`` and ``control-socket.socket-type`` are
  deleted from both families (control sockets are no longer configured there);
- unless the database has ``option_def_data_type`` already (a 2.6 stable line database,
  which got it in 22.1): option definitions with record types get data type 254
  (``record``), ``option_def_data_type`` names the data types and both families' option
  definitions reference it. Type 3 is named ``int8"`` (stray quote as in Kea; 26.0 fixes it).
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.facts import OPTION_DEF_DATA_TYPES
from keadb_cli.schema.kit_pgsql import batch, only_if, set_audit, set_schema_version

revision = "pgsql_24_0"
down_revision = "pgsql_23_0"
branch_labels = None
depends_on = None



def upgrade() -> None:
    with batch() as ops:
        set_audit(ops, False)
        for v in (4, 6):
            parameters = sa.table(f"dhcp{v}_global_parameter", sa.column("name"))
            for name in ("socket-name", "socket-type"):
                ops.execute(
                    parameters.delete().where(
                        parameters.c.name == sa.literal(f"control-socket.{name}")
                    )
                )
        with only_if(ops, "to_regclass('option_def_data_type') IS NULL") as new:
            for v in (4, 6):
                option_defs = sa.table(
                    f"dhcp{v}_option_def", sa.column("type"), sa.column("record_types")
                )
                new.execute(
                    option_defs.update()
                    .where(option_defs.c.record_types.is_not(None))
                    .values(type=sa.literal(254))
                )
            types = new.create_table(
                "option_def_data_type",
                sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
                sa.Column("name", sa.String(32), nullable=False),
            )
            new.bulk_insert(types, [{"id": i, "name": n} for i, n in OPTION_DEF_DATA_TYPES])
            for v in (4, 6):
                new.create_foreign_key(
                    f"fk_option_def_data_type{v}",
                    f"dhcp{v}_option_def",
                    "option_def_data_type",
                    ["type"],
                    ["id"],
                )
        set_audit(ops, True)
        set_schema_version(ops, 24, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
