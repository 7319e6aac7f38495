"""Kea MySQL schema 31.0 (Kea 3.1.0): every option has a class list.

Revision ID: mysql_31_0
Revises: mysql_30_0

Options' ``client_classes`` becomes NOT NULL; options without one get the empty list
``[  ]`` first (unaudited), written as Kea writes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my

from keadb_cli.schema import kit

revision = "mysql_31_0"
down_revision = "mysql_30_0"
branch_labels = None
depends_on = None

EMPTY_LIST = "[  ]"


def upgrade() -> None:
    kit.set_audit(False)
    for v in "46":
        options = sa.table(f"dhcp{v}_options", sa.column("client_classes"))
        op.execute(
            options.update()
            .where(options.c.client_classes.is_(None))
            .values(client_classes=sa.literal(EMPTY_LIST))
        )
        op.alter_column(
            f"dhcp{v}_options", "client_classes", existing_type=my.LONGTEXT(), nullable=False
        )
    kit.set_audit(True)

    kit.set_schema_version(31, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
