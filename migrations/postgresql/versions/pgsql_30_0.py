"""Kea PostgreSQL schema 30.0 (Kea 3.1.0): option client classes required

Revision ID: pgsql_30_0
Revises: pgsql_29_0

With auditing off, options without client classes get an empty list (``[  ]``, spaced as
Kea writes it) and ``client_classes`` becomes NOT NULL in both families. DHCPv6 options get
``modification_ts`` unless they have it (every schema since 13.0 has, so this changes
nothing there; Kea's step adds it to databases that lack it).
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_audit, set_schema_version

revision = "pgsql_30_0"
down_revision = "pgsql_29_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with batch() as ops:
        set_audit(ops, False)
        for v in (4, 6):
            options = sa.table(f"dhcp{v}_options", sa.column("client_classes"))
            ops.execute(
                options.update()
                .where(options.c.client_classes.is_(None))
                .values(client_classes=sa.literal("[  ]"))
            )
            ops.alter_column(f"dhcp{v}_options", "client_classes", nullable=False)
        ops.add_column(
            "dhcp6_options",
            sa.Column(
                "modification_ts",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            ),
            if_not_exists=True,
        )
        set_audit(ops, True)
        set_schema_version(ops, 30, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
