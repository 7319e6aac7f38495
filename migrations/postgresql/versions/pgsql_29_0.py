"""Kea PostgreSQL schema 29.0 (Kea 2.7.7, 3.0.0 to 3.0.4): registered leases

Revision ID: pgsql_29_0
Revises: pgsql_28_0

Lease state 4, ``registered`` (an address the client registered, not one Kea assigned).
``lease6_stat`` counts registered leases too: its three functions are replaced whole. The
pool and client class statistics do not (a registered address is not from a pool, and the
class counts are for state 0 only); the lease triggers call the functions by name and stay.
"""

from __future__ import annotations

import sqlalchemy as sa

from keadb_cli.schema.kit_pgsql import Function, batch, replace_functions, set_schema_version

revision = "pgsql_29_0"
down_revision = "pgsql_28_0"
branch_labels = None
depends_on = None

_KEYS = ("subnet_id", "lease_type", "state")
# The states lease6_stat counts: default, declined, registered.
_COUNTED = "{p}_state = 0 OR {p}_state = 1 OR {p}_state = 4"


def _arguments(prefix: str) -> str:
    return f"{prefix}_state bigint, {prefix}_subnet_id bigint, {prefix}_lease_type smallint"


def _count(prefix: str) -> str:
    keys = ", ".join(_KEYS)
    values = ", ".join(f"{prefix}_{k}" for k in _KEYS)
    return (
        f"INSERT INTO lease6_stat AS s ({keys}, leases)\n"
        f"        VALUES ({values}, 1)\n"
        f"        ON CONFLICT ({keys}) DO UPDATE SET leases = s.leases + 1;"
    )


def _uncount(prefix: str) -> str:
    match = " AND ".join(f"{k} = {prefix}_{k}" for k in _KEYS)
    return f"UPDATE lease6_stat SET leases = greatest(leases - 1, 0)\n        WHERE {match};"


def _deeper(sql: str) -> str:
    return sql.replace("\n", "\n    ")


LEASE6_STAT_FUNCTIONS = [
    Function(
        "lease6_ains_lease6_stat",
        _arguments("new"),
        "void",
        f"""
BEGIN
    IF {_COUNTED.format(p="new")} THEN
        {_count("new")}
    END IF;
END;
""",
    ),
    Function(
        "lease6_aupd_lease6_stat",
        f"{_arguments('old')}, {_arguments('new')}",
        "void",
        f"""
BEGIN
    IF {" OR ".join(f"old_{k} <> new_{k}" for k in _KEYS)} THEN
        IF {_COUNTED.format(p="old")} THEN
            {_deeper(_uncount("old"))}
        END IF;
        IF {_COUNTED.format(p="new")} THEN
            {_deeper(_count("new"))}
        END IF;
    END IF;
END;
""",
    ),
    Function(
        "lease6_adel_lease6_stat",
        _arguments("old"),
        "void",
        f"""
BEGIN
    IF {_COUNTED.format(p="old")} THEN
        {_uncount("old")}
    END IF;
END;
""",
    ),
]


def upgrade() -> None:
    with batch() as ops:
        states = sa.table("lease_state", sa.column("state"), sa.column("name"))
        ops.execute(states.insert().values(state=sa.literal(4), name=sa.literal("registered")))
        replace_functions(ops, LEASE6_STAT_FUNCTIONS)
        set_schema_version(ops, 29, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
