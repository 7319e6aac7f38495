"""Kea MySQL schema 33.0 (Kea 3.1.5): lease indexes by state and subnet.

Revision ID: mysql_33_0
Revises: mysql_32_0

The new indexes start with ``state``, so they also serve the foreign keys from the lease
tables to lease_state. In Kea's schema those foreign keys had the index the server makes
for a foreign key by itself, and the server drops it now; a kea-db 14.0 schema declared
that index, so it is dropped here when it is still there. Either way the lease tables end
up as Kea's.
"""

from __future__ import annotations

from alembic import op

from keadb_cli.schema import kit
from keadb_cli.schema.kit import body

revision = "mysql_33_0"
down_revision = "mysql_32_0"
branch_labels = None
depends_on = None

HELPER = "kea_db_drop_lease_state_keys"


def upgrade() -> None:
    for v in "46":
        op.create_index(f"lease{v}_by_state", f"lease{v}", ["state", "subnet_id"])
    kit.mysql_create_procedure(
        HELPER,
        [],
        body(
            *(
                f"""
                IF EXISTS (
                    SELECT 1 FROM information_schema.statistics
                        WHERE table_schema = DATABASE() AND table_name = 'lease{v}'
                            AND index_name = 'fk_lease{v}_state'
                ) THEN
                    ALTER TABLE lease{v} DROP INDEX fk_lease{v}_state;
                END IF"""
                for v in "46"
            )
        ),
    )
    kit.execute(f"CALL {HELPER}()")
    kit.drop_routine("PROCEDURE", HELPER)

    kit.set_schema_version(33, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
