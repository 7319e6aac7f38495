"""Kea PostgreSQL schema 27.0 (Kea 2.7.5): lists of client classes

Revision ID: pgsql_27_0
Revises: pgsql_26_0

Shared networks, subnets and pools name a list of client classes instead of one:
``client_class`` (VARCHAR) becomes ``client_classes`` (TEXT), and every stored value becomes a
JSON list of that one class (``foo`` -> ``[ "foo" ]``; empty -> NULL), with auditing off.
``texttojsonlist``, the conversion, stays in the schema (as in Kea).
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import (
    Function,
    batch,
    create_functions,
    set_audit,
    set_schema_version,
)

revision = "pgsql_27_0"
down_revision = "pgsql_26_0"
branch_labels = None
depends_on = None

_TABLES = (
    "dhcp4_shared_network",
    "dhcp4_subnet",
    "dhcp4_pool",
    "dhcp6_shared_network",
    "dhcp6_subnet",
    "dhcp6_pool",
    "dhcp6_pd_pool",
)

# One class name -> a JSON list holding it, spaced as Kea writes it; nothing -> NULL.
TEXT_TO_JSON_LIST = Function(
    "texttojsonlist",
    "orig text",
    "text",
    """
BEGIN
    IF orig IS NULL OR orig = '' THEN
        RETURN NULL;
    END IF;
    RETURN concat('[ "', orig, '" ]');
END;
""",
)


def upgrade() -> None:
    with batch() as ops:
        set_audit(ops, False)
        create_functions(ops, [TEXT_TO_JSON_LIST])
        for table in _TABLES:
            ops.alter_column(table, "client_class", new_column_name="client_classes")
            ops.alter_column(table, "client_classes", type_=sa.Text())
            rows = sa.table(table, sa.column("client_classes"))
            ops.execute(
                rows.update().values(client_classes=sa.func.texttojsonlist(rows.c.client_classes))
            )
        set_audit(ops, True)
        set_schema_version(ops, 27, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
