"""Kea MySQL schema 22.0 (Kea 2.6.0): retired global parameters.

Revision ID: mysql_22_0
Revises: mysql_21_0

- lease4.expire loses the implicit default and on-update clause MariaDB may have given it
  (lease6.expire lost it in 19.0; the statement is repeated, as in Kea's step).
- The ``dhcp-ddns.*`` parameters Kea 2.6 no longer reads are deleted from both config
  backends, and ``reservation-mode`` becomes the matching ``reservations-*`` boolean; both
  unaudited.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_22_0"
down_revision = "mysql_21_0"
branch_labels = None
depends_on = None

RETIRED = (
    "dhcp-ddns.override-no-update",
    "dhcp-ddns.override-client-update",
    "dhcp-ddns.replace-client-name",
    "dhcp-ddns.generated-prefix",
    "dhcp-ddns.qualifying-suffix",
    "dhcp-ddns.hostname-char-set",
    "dhcp-ddns.hostname-char-replacement",
)
# reservation-mode value -> (new parameter, its boolean value)
RESERVATION_MODES = (
    ("global", "reservations-global", "1"),
    ("all", "reservations-in-subnet", "1"),
    ("disabled", "reservations-in-subnet", "0"),
    ("off", "reservations-in-subnet", "0"),
    ("out-of-pool", "reservations-out-of-pool", "1"),
)
BOOLEAN_TYPE = 2  # parameter_data_type "boolean"


def _params(v: str) -> sa.TableClause:
    return sa.table(
        f"dhcp{v}_global_parameter",
        sa.column("name"),
        sa.column("value"),
        sa.column("parameter_type"),
    )


def upgrade() -> None:
    for v in "46":
        op.alter_column(f"lease{v}", "expire", existing_type=my.TIMESTAMP(), nullable=True)

    kit.set_audit(False)
    for v in "46":
        params = _params(v)
        for name in RETIRED:
            op.execute(params.delete().where(params.c.name == sa.literal(name)))
    for v in "46":
        params = _params(v)
        for mode, name, value in RESERVATION_MODES:
            op.execute(
                params.update()
                .where(params.c.name == sa.literal("reservation-mode"))
                .where(params.c.value == sa.literal(mode))
                .values(
                    name=sa.literal(name),
                    value=sa.literal(value),
                    parameter_type=sa.literal(BOOLEAN_TYPE),
                )
            )
    kit.set_audit(True)

    kit.set_schema_version(22, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
