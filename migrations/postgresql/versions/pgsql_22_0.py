"""Kea PostgreSQL schema 22.0 (Kea 2.6.0): retired global parameters

Revision ID: pgsql_22_0
Revises: pgsql_21_0

With auditing off, in both families' global parameters:

- the ``dhcp-ddns.*`` settings that moved to the global level are deleted;
- ``reservation-mode`` becomes the boolean it stands for: ``global`` ->
  ``reservations-global`` = 1, ``all`` -> ``reservations-in-subnet`` = 1, ``disabled`` and
  ``off`` -> ``reservations-in-subnet`` = 0, ``out-of-pool`` -> ``reservations-out-of-pool`` = 1.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_audit, set_schema_version

revision = "pgsql_22_0"
down_revision = "pgsql_21_0"
branch_labels = None
depends_on = None

_RETIRED = (
    "override-no-update",
    "override-client-update",
    "replace-client-name",
    "generated-prefix",
    "qualifying-suffix",
    "hostname-char-set",
    "hostname-char-replacement",
)

# reservation-mode value -> (new parameter, its value).
_RESERVATION_MODES = (
    ("global", "reservations-global", "1"),
    ("all", "reservations-in-subnet", "1"),
    ("disabled", "reservations-in-subnet", "0"),
    ("off", "reservations-in-subnet", "0"),
    ("out-of-pool", "reservations-out-of-pool", "1"),
)


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
            for name in _RETIRED:
                ops.execute(
                    parameters.delete().where(
                        parameters.c.name == sa.literal(f"dhcp-ddns.{name}")
                    )
                )
        for v in (4, 6):
            parameters = sa.table(
                f"dhcp{v}_global_parameter",
                sa.column("name"),
                sa.column("value"),
                sa.column("parameter_type"),
            )
            for mode, name, value in _RESERVATION_MODES:
                ops.execute(
                    parameters.update()
                    .where(
                        parameters.c.name == sa.literal("reservation-mode"),
                        parameters.c.value == sa.literal(mode),
                    )
                    # 2: parameter_data_type "boolean".
                    .values(
                        name=sa.literal(name),
                        value=sa.literal(value),
                        parameter_type=sa.literal(2),
                    )
                )
        set_audit(ops, True)
        set_schema_version(ops, 22, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
