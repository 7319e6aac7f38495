"""Kea MySQL schema 30.0 (Kea 2.7.8): class statistics survive a bad user context on update.

Revision ID: mysql_30_0
Revises: mysql_29_0

The update procedures of lease4/lease6_stat_by_client_class are replaced whole: like the
insert and delete ones, they now carry on when a user context is not valid JSON (a NULL
class list then counts nothing) instead of failing the lease update.
"""

from __future__ import annotations

from keadb_cli.schema import kit
from keadb_cli.schema.kit import body

revision = "mysql_30_0"
down_revision = "mysql_29_0"
branch_labels = None
depends_on = None

CLASS_LIST = """'$."ISC"."client-classes"'"""
CLASS_LOCALS = ("DECLARE class_name VARCHAR(255)", "DECLARE n_classes INT", "DECLARE k INT")
# A user context that is not valid JSON must not make the lease write fail.
JSON_ERROR_HANDLERS = (
    "DECLARE CONTINUE HANDLER FOR 3141 BEGIN END",
    "DECLARE CONTINUE HANDLER FOR 4037 BEGIN END",
)


def _each_class(classes: str, action: str) -> str:
    return kit.compose(
        f"""
        SET n_classes = JSON_LENGTH({classes});
        SET k = 0;
        WHILE k < n_classes DO
            SET class_name = JSON_UNQUOTE(JSON_EXTRACT({classes}, CONCAT('$[', k, ']')));
            <<action>>;
            SET k = k + 1;
        END WHILE""",
        action=action,
    )


def _create_update_procedure(v: str) -> None:
    typed = v == "6"
    by_class = f"lease{v}_stat_by_client_class"

    def params(prefix: str) -> list[str]:
        lease_type = [f"IN {prefix}_lease_type TINYINT"] if typed else []
        return [f"IN {prefix}_state TINYINT", f"IN {prefix}_user_context TEXT", *lease_type]

    down_type = " AND lease_type = old_lease_type" if typed else ""
    up_type = " AND lease_type = new_lease_type" if typed else ""
    columns = "client_class, lease_type, leases" if typed else "client_class, leases"
    values = "class_name, new_lease_type, 1" if typed else "class_name, 1"
    type_changed = " OR old_lease_type != new_lease_type" if typed else ""
    down = _each_class(
        "old_list",
        f"""
        UPDATE {by_class} SET leases = IF(leases > 0, leases - 1, 0)
            WHERE client_class = class_name{down_type}""",
    )
    up = _each_class(
        "new_list",
        f"""
        UPDATE {by_class} SET leases = leases + 1
            WHERE client_class = class_name{up_type};
        IF ROW_COUNT() <= 0 THEN
            INSERT INTO {by_class} ({columns}) VALUES ({values});
        END IF""",
    )
    kit.mysql_create_procedure(
        f"lease{v}_AUPD_{by_class}",
        params("old") + params("new"),
        body(
            "DECLARE old_list TEXT",
            "DECLARE new_list TEXT",
            *CLASS_LOCALS,
            *JSON_ERROR_HANDLERS,
            f"SET old_list = JSON_EXTRACT(old_user_context, {CLASS_LIST})",
            f"SET new_list = JSON_EXTRACT(new_user_context, {CLASS_LIST})",
            kit.compose(
                f"""
                IF old_state != new_state OR old_list != new_list{type_changed} THEN
                    IF old_state = 0 THEN
                        <<down>>;
                    END IF;
                    IF new_state = 0 THEN
                        <<up>>;
                    END IF;
                END IF""",
                down=down,
                up=up,
            ),
        ),
    )


def upgrade() -> None:
    for v in "46":
        kit.drop_routine("PROCEDURE", f"lease{v}_AUPD_lease{v}_stat_by_client_class")
        _create_update_procedure(v)

    kit.set_schema_version(30, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
