"""Kea PostgreSQL schema 23.0 (Kea 2.7.0): lease state released

Revision ID: pgsql_23_0
Revises: pgsql_22_0

Lease state 3, ``released``: a lease the client released, kept for lease affinity.

The main line continues from 22.0. A database of Kea's 2.6 stable line (22.1, 22.2) takes
this step too, as Kea's own step allows any 22.x (``upgrades_from``): the stable line's
changes are ones the main line makes again in 24.0 and 26.0, and those steps leave them
alone where they are already made.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import batch, set_schema_version

revision = "pgsql_23_0"
down_revision = "pgsql_22_0"
branch_labels = None
depends_on = None
# Revisions besides down_revision a database may be at to run this step (see
# keadb_cli.schema.migrate).
upgrades_from = ("pgsql_22_1", "pgsql_22_2")


def upgrade() -> None:
    with batch() as ops:
        states = sa.table("lease_state", sa.column("state"), sa.column("name"))
        ops.execute(states.insert().values(state=sa.literal(3), name=sa.literal("released")))
        set_schema_version(ops, 23, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
