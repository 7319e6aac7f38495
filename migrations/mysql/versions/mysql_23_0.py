"""Kea MySQL schema 23.0 (Kea 2.7.0): lease state "released".

Revision ID: mysql_23_0
Revises: mysql_22_0 (also run on 22.1 and 22.2, Kea 2.6's stable branch)

Kea's step checks the major number only, so a 2.6.1+ database (22.1, 22.2) takes it too;
the main line makes the 22.1/22.2 changes itself in 24.0 and 26.0, where they are skipped
for a database that has them already.
"""

from __future__ import annotations

from keadb_cli.schema import kit

revision = "mysql_23_0"
down_revision = "mysql_22_0"
# Revisions besides down_revision a database may be at to run this one (see migrate.py).
upgrades_from = ("mysql_22_1", "mysql_22_2")
branch_labels = None
depends_on = None


def upgrade() -> None:
    kit.insert_rows("lease_state", ("state", "name"), [(3, "released")])

    kit.set_schema_version(23, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
