"""Kea MySQL schema 20.0 (Kea 2.5.0): DDNS conflict resolution mode; leasequery keys.

Revision ID: mysql_20_0
Revises: mysql_19_0

The global parameter ``ddns-use-conflict-resolution`` (a boolean) becomes
``ddns-conflict-resolution-mode`` (a string) in both config backends, unaudited. The
bulk leasequery tables get foreign keys to the lease they index, deleted with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keadb_cli.schema import kit

revision = "mysql_20_0"
down_revision = "mysql_19_0"
branch_labels = None
depends_on = None

# old boolean value -> new mode
CONFLICT_MODES = (("1", "check-with-dhcid"), ("0", "no-check-with-dhcid"))
STRING_TYPE = 4  # parameter_data_type "string"


def _rename_conflict_resolution(v: str) -> None:
    params = sa.table(
        f"dhcp{v}_global_parameter",
        sa.column("name"),
        sa.column("value"),
        sa.column("parameter_type"),
    )
    for old, mode in CONFLICT_MODES:
        op.execute(
            params.update()
            .where(params.c.name == sa.literal("ddns-use-conflict-resolution"))
            .where(params.c.value == sa.literal(old))
            .values(
                name=sa.literal("ddns-conflict-resolution-mode"),
                value=sa.literal(mode),
                parameter_type=sa.literal(STRING_TYPE),
            )
        )


def upgrade() -> None:
    kit.set_audit(False)
    for v in "46":
        _rename_conflict_resolution(v)
    kit.set_audit(True)
    for kind in ("relay", "remote"):
        op.create_foreign_key(
            f"fk_lease6_{kind}_id_addr",
            f"lease6_{kind}_id",
            "lease6",
            ["lease_addr"],
            ["address"],
            ondelete="CASCADE",
            onupdate="NO ACTION",
        )

    kit.set_schema_version(20, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
