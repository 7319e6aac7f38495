"""Kea MySQL schema 29.0 (Kea 2.7.7): lease state "registered" (address registration).

Revision ID: mysql_29_0
Revises: mysql_28_0

lease6_stat now also counts registered (4) leases: its three procedures are replaced
whole, and the lease6 triggers reinstalled unchanged. Pool and client-class statistics
keep counting as before (a registered address is not from a pool and not assigned).
"""

from __future__ import annotations

from keadb_cli.schema import kit
from keadb_cli.schema.kit import MySQLTrigger, body

revision = "mysql_29_0"
down_revision = "mysql_28_0"
branch_labels = None
depends_on = None

COUNTED = (0, 1, 4)  # assigned, declined, registered
KEYS = [("state", "TINYINT"), ("subnet_id", "INT UNSIGNED"), ("lease_type", "TINYINT")]
STAT_KEY = ["subnet_id", "lease_type", "state"]


def _params(prefix: str) -> list[str]:
    return [f"IN {prefix}_{col} {ptype}" for col, ptype in KEYS]


def _counted(prefix: str) -> str:
    return " OR ".join(f"{prefix}_state = {state}" for state in COUNTED)


def _count_down() -> str:
    match = " AND ".join(f"{col} = old_{col}" for col in STAT_KEY)
    return f"""
        IF {_counted("old")} THEN
            UPDATE lease6_stat SET leases = IF(leases > 0, leases - 1, 0)
                WHERE {match};
        END IF"""


def _count_up() -> str:
    match = " AND ".join(f"{col} = new_{col}" for col in STAT_KEY)
    values = ", ".join(f"new_{col}" for col in STAT_KEY)
    return f"""
        IF {_counted("new")} THEN
            UPDATE lease6_stat SET leases = leases + 1
                WHERE {match};
            IF ROW_COUNT() <= 0 THEN
                INSERT INTO lease6_stat ({", ".join(STAT_KEY)}, leases)
                    VALUES ({values}, 1);
            END IF;
        END IF"""


def _create_stat_routines() -> None:
    changed = " OR ".join(f"old_{col} != new_{col}" for col in STAT_KEY)
    kit.mysql_create_procedure("lease6_AINS_lease6_stat", _params("new"), body(_count_up()))
    kit.mysql_create_procedure(
        "lease6_AUPD_lease6_stat",
        _params("old") + _params("new"),
        body(
            kit.compose(
                f"""
                IF {changed} THEN
                    <<down>>;
                    <<up>>;
                END IF""",
                down=_count_down(),
                up=_count_up(),
            )
        ),
    )
    kit.mysql_create_procedure("lease6_ADEL_lease6_stat", _params("old"), body(_count_down()))


def _triggers() -> list[MySQLTrigger]:
    return kit.mysql_lease_triggers(
        "6",
        [
            ("lease6_stat", ["state", "subnet_id", "lease_type"]),
            ("lease6_pool_stat", ["state", "subnet_id", "pool_id", "lease_type"]),
        ],
        ["state", "user_context", "lease_type"],
        probe_json=True,
    )


def upgrade() -> None:
    kit.insert_rows("lease_state", ("state", "name"), [(4, "registered")])
    for suffix in ("AINS", "AUPD", "ADEL"):
        kit.drop_routine("PROCEDURE", f"lease6_{suffix}_lease6_stat")
    _create_stat_routines()
    kit.mysql_replace_triggers(_triggers())

    kit.set_schema_version(29, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
