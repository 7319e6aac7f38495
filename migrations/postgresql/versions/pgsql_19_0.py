"""Kea PostgreSQL schema 19.0 (Kea 2.5.0): DDNS conflict resolution mode, lease6 id tables

Revision ID: pgsql_19_0
Revises: pgsql_18_0

- The global boolean ``ddns-use-conflict-resolution`` becomes the string parameter
  ``ddns-conflict-resolution-mode`` (1: ``check-with-dhcid``, 0: ``no-check-with-dhcid``), in
  both families' global parameters, with auditing off.
- ``lease6_relay_id`` and ``lease6_remote_id`` are emptied (Kea rebuilds them from the
  leases' extended info) and their ``lease_addr`` becomes an INET referencing
  ``lease6.address``: the rows go with their lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import INET

from keadb_cli.schema.kit_pgsql import batch, set_audit, set_schema_version

revision = "pgsql_19_0"
down_revision = "pgsql_18_0"
branch_labels = None
depends_on = None

# Old boolean value -> the new mode.
_MODES = (("1", "check-with-dhcid"), ("0", "no-check-with-dhcid"))


def upgrade() -> None:
    with batch() as ops:
        set_audit(ops, False)
        for v in (4, 6):
            parameters = sa.table(
                f"dhcp{v}_global_parameter",
                sa.column("name"),
                sa.column("value"),
                sa.column("parameter_type"),
            )
            for old, mode in _MODES:
                ops.execute(
                    parameters.update()
                    .where(
                        parameters.c.name == sa.literal("ddns-use-conflict-resolution"),
                        parameters.c.value == sa.literal(old),
                    )
                    # 4: parameter_data_type "string".
                    .values(
                        name=sa.literal("ddns-conflict-resolution-mode"),
                        value=sa.literal(mode),
                        parameter_type=sa.literal(4),
                    )
                )
        for kind in ("relay", "remote"):
            table = f"lease6_{kind}_id"
            ops.execute(sa.table(table).delete())
            ops.alter_column(table, "lease_addr", type_=INET(), postgresql_using="'::'")
            ops.create_foreign_key(
                f"fk_{table}_addr",
                table,
                "lease6",
                ["lease_addr"],
                ["address"],
                ondelete="CASCADE",
                onupdate="NO ACTION",
            )
        # Kea's step leaves auditing off until its session ends; kea-db runs the next steps
        # in the same session, so it switches auditing back on here.
        set_audit(ops, True)
        set_schema_version(ops, 19, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
