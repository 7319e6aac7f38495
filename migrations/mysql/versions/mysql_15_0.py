"""Kea MySQL schema 15.0 (Kea 2.3.6): option cancellation and offer lifetimes.

Revision ID: mysql_15_0
Revises: mysql_14_0

Options get a ``cancelled`` flag (never send the option), and DHCPv4 shared networks,
subnets and client classes an ``offer_lifetime``. The JSON probe behind the client-class
lease statistics is rewritten to test a quoted member path, the form the statistics
procedures use: the probe every fresh Kea 2.3.4+ schema carries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit
from keadb_cli.schema.kit import body

revision = "mysql_15_0"
down_revision = "mysql_14_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for v in "46":
        op.add_column(
            f"dhcp{v}_options",
            sa.Column(
                "cancelled",
                my.TINYINT(display_width=1),
                nullable=False,
                server_default=sa.text("0"),
            ),
        )
    for table in ("dhcp4_shared_network", "dhcp4_subnet", "dhcp4_client_class"):
        op.add_column(table, sa.Column("offer_lifetime", my.INTEGER(display_width=10)))

    kit.drop_routine("FUNCTION", "isJsonSupported")
    kit.mysql_create_function(
        "isJsonSupported",
        [],
        "BOOL",
        body(
            "DECLARE probe BOOL",
            "DECLARE CONTINUE HANDLER FOR SQLEXCEPTION RETURN FALSE",
            """SET probe = JSON_EXTRACT('{"json-probe": 1}', '$."json-probe"')""",
            "RETURN TRUE",
        ),
        characteristics=["DETERMINISTIC"],
    )

    kit.set_schema_version(15, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
