"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

The revision id names the Kea schema version this revision leaves (pgsql_<major>_<minor>);
keadb_cli.schema.migrate derives the version from it. Write schema_version in upgrade().
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keadb_cli.schema import kit_pgsql as kit
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
