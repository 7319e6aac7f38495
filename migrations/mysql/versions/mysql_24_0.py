"""Kea MySQL schema 24.0 (Kea 2.7.1): option definition data types; retired parameters.

Revision ID: mysql_24_0
Revises: mysql_23_0

- ``control-socket.socket-name`` / ``socket-type`` global parameters are deleted from both
  config backends (unaudited).
- The 2.6 stable branch's 22.1 step, made here for the main line: option definitions with
  record fields take type 254, option_def_data_type lists the data types (with the 22.1
  spelling ``int8"``, corrected in 26.0) and the definitions' ``type`` becomes a foreign key
  to it. A database that came from 22.1/22.2 has all this already and is left as it is;
  the server decides (a temporary procedure), so the offline script does the same. The
  procedure can run again after an interruption: each of its parts is guarded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my
from sqlalchemy.schema import AddConstraint, CreateTable

from keadb_cli.schema import kit
from keadb_cli.schema.facts import OPTION_DEF_DATA_TYPES, RECORD_TYPE
from keadb_cli.schema.kit import body

revision = "mysql_24_0"
down_revision = "mysql_23_0"
branch_labels = None
depends_on = None

RETIRED = ("control-socket.socket-name", "control-socket.socket-type")
HELPER = "kea_db_add_option_def_data_types"


def _create_table() -> str:
    """The data type table, as a MySQL statement."""
    types = sa.Table(
        "option_def_data_type",
        sa.MetaData(),
        sa.Column("id", my.TINYINT(unsigned=True), primary_key=True, autoincrement=False),
        sa.Column("name", my.VARCHAR(32), nullable=False),
        mysql_engine="InnoDB",
    )
    return str(CreateTable(types).compile(dialect=my.dialect())).strip()


def _add_key(v: str) -> str:
    """``dhcp{v}_option_def.type`` as a foreign key to the data types."""
    meta = sa.MetaData()
    types = sa.Table("option_def_data_type", meta, sa.Column("id", my.TINYINT(), primary_key=True))
    defs = sa.Table(f"dhcp{v}_option_def", meta, sa.Column("type", my.TINYINT()))
    key = sa.ForeignKeyConstraint(["type"], [types.c.id], name=f"fk_option_def_data_type{v}")
    defs.append_constraint(key)
    return str(AddConstraint(key).compile(dialect=my.dialect())).strip()


def upgrade() -> None:
    kit.set_audit(False)
    for v in "46":
        params = sa.table(f"dhcp{v}_global_parameter", sa.column("name"))
        for name in RETIRED:
            op.execute(params.delete().where(params.c.name == sa.literal(name)))
    kit.set_audit(True)

    retype = [
        f"UPDATE dhcp{v}_option_def SET type = {RECORD_TYPE} WHERE record_types IS NOT NULL"
        for v in "46"
    ]
    values = ", ".join(f"({number}, '{name}')" for number, name in OPTION_DEF_DATA_TYPES)
    # Each part is guarded on its own, so that the procedure can run again after it was cut
    # short (kea-db upgrade resumes a MySQL step by running it again): the retyping goes
    # with the table's creation, the rows are added where missing, each key where absent.
    keys = [
        kit.compose(
            f"""
            IF NOT EXISTS (
                SELECT 1 FROM information_schema.referential_constraints
                    WHERE constraint_schema = DATABASE() AND table_name = 'dhcp{v}_option_def'
                        AND referenced_table_name = 'option_def_data_type'
            ) THEN
                <<work>>;
            END IF""",
            work=_add_key(v),
        )
        for v in "46"
    ]
    kit.mysql_create_procedure(
        HELPER,
        [],
        body(
            kit.compose(
                """
                IF NOT EXISTS (
                    SELECT 1 FROM information_schema.tables
                        WHERE table_schema = DATABASE() AND table_name = 'option_def_data_type'
                ) THEN
                    SET @disable_audit = 1;
                    <<work>>;
                    SET @disable_audit = 0;
                END IF""",
                work=";\n".join([*retype, _create_table()]),
            ),
            f"INSERT IGNORE INTO option_def_data_type (id, name) VALUES {values}",
            *keys,
        ),
    )
    kit.execute(f"CALL {HELPER}()")
    kit.drop_routine("PROCEDURE", HELPER)

    kit.set_schema_version(24, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
