"""Kea PostgreSQL schema 17.0 (Kea 2.3.8): pool statistics, lease6 relay and remote ids

Revision ID: pgsql_17_0
Revises: pgsql_16_0

- Leases record the pool they come from (``pool_id``, 0 when unknown), and
  ``lease4_pool_stat`` / ``lease6_pool_stat`` count them per subnet, pool (and lease type) and
  state, kept up to date by the lease triggers and filled here from the existing leases.
- The lease file functions (``kea-admin lease-dump`` / ``lease-upload``) carry ``pool_id``.
  The dump functions are replaced; the upload function with the new argument is a second
  overload next to the old one, which stays (as in Kea).
- DHCPv6 leases get ``binaddr`` (the address as bytes, indexed), and ``lease6_relay_id`` /
  ``lease6_remote_id`` index leases by relay and remote id (bulk lease queries).
- A one-byte DUID of zero becomes three zero bytes, the value Kea now uses for "no DUID".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

from keadb_cli.schema.kit_pgsql import (
    Function,
    LeaseFileColumn,
    Serial,
    batch,
    create_functions,
    drop_function,
    lease_file_functions,
    replace_functions,
    set_schema_version,
)

revision = "pgsql_17_0"
down_revision = "pgsql_16_0"
branch_labels = None
depends_on = None

FAMILIES = (4, 6)


def _keys(v: int) -> tuple[str, ...]:
    """lease<v>_pool_stat's key columns, in key order."""
    return ("subnet_id", "pool_id", "lease_type", "state") if v == 6 else (
        "subnet_id", "pool_id", "state"
    )


def _arguments(v: int, prefix: str) -> str:
    # The functions take the key in Kea's argument order: state, subnet, pool (, type).
    six = f", {prefix}_lease_type smallint" if v == 6 else ""
    return f"{prefix}_state bigint, {prefix}_subnet_id bigint, {prefix}_pool_id bigint{six}"


def _count(v: int, prefix: str) -> str:
    keys = ", ".join(_keys(v))
    values = ", ".join(f"{prefix}_{k}" for k in _keys(v))
    return (
        f"INSERT INTO lease{v}_pool_stat AS s ({keys}, leases)\n"
        f"        VALUES ({values}, 1)\n"
        f"        ON CONFLICT ({keys}) DO UPDATE SET leases = s.leases + 1;"
    )


def _uncount(v: int, prefix: str) -> str:
    match = " AND ".join(f"{k} = {prefix}_{k}" for k in _keys(v))
    return (
        f"UPDATE lease{v}_pool_stat SET leases = greatest(leases - 1, 0)\n"
        f"        WHERE {match};"
    )


def _pool_stat_functions(v: int) -> list[Function]:
    """lease<v>_{ains,aupd,adel}_lease<v>_pool_stat: default and declined leases per pool."""
    counted = "{p}_state = 0 OR {p}_state = 1"
    moved = " OR ".join(f"old_{k} <> new_{k}" for k in _keys(v))
    return [
        Function(
            f"lease{v}_ains_lease{v}_pool_stat",
            _arguments(v, "new"),
            "void",
            f"""
BEGIN
    IF {counted.format(p="new")} THEN
        {_count(v, "new")}
    END IF;
END;
""",
        ),
        Function(
            f"lease{v}_aupd_lease{v}_pool_stat",
            f"{_arguments(v, 'old')}, {_arguments(v, 'new')}",
            "void",
            f"""
BEGIN
    IF {moved} THEN
        IF {counted.format(p="old")} THEN
            {_uncount(v, "old").replace(chr(10), chr(10) + "    ")}
        END IF;
        IF {counted.format(p="new")} THEN
            {_count(v, "new").replace(chr(10), chr(10) + "    ")}
        END IF;
    END IF;
END;
""",
        ),
        Function(
            f"lease{v}_adel_lease{v}_pool_stat",
            _arguments(v, "old"),
            "void",
            f"""
BEGIN
    IF {counted.format(p="old")} THEN
        {_uncount(v, "old")}
    END IF;
END;
""",
        ),
    ]


def _lease_trigger_functions(v: int) -> list[Function]:
    """The lease triggers' functions, now also counting per pool."""
    lt = ", {}.lease_type" if v == 6 else ""

    def row(r: str, *columns: str) -> str:
        return ", ".join(f"{r}.{c}" for c in columns) + lt.format(r)

    calls = {
        "ains": (
            f"lease{v}_ains_lease{v}_stat_by_client_class({row('NEW', 'state', 'user_context')})",
            f"lease{v}_ains_lease{v}_stat({row('NEW', 'state', 'subnet_id')})",
            f"lease{v}_ains_lease{v}_pool_stat({row('NEW', 'state', 'subnet_id', 'pool_id')})",
        ),
        "aupd": (
            f"lease{v}_aupd_lease{v}_stat_by_client_class("
            f"{row('OLD', 'state', 'user_context')}, {row('NEW', 'state', 'user_context')})",
            f"lease{v}_aupd_lease{v}_stat("
            f"{row('OLD', 'state', 'subnet_id')}, {row('NEW', 'state', 'subnet_id')})",
            f"lease{v}_aupd_lease{v}_pool_stat("
            f"{row('OLD', 'state', 'subnet_id', 'pool_id')}, "
            f"{row('NEW', 'state', 'subnet_id', 'pool_id')})",
        ),
        "adel": (
            f"lease{v}_adel_lease{v}_stat_by_client_class({row('OLD', 'state', 'user_context')})",
            f"lease{v}_adel_lease{v}_stat({row('OLD', 'state', 'subnet_id')})",
            f"lease{v}_adel_lease{v}_pool_stat({row('OLD', 'state', 'subnet_id', 'pool_id')})",
        ),
    }
    return [
        Function(
            f"func_lease{v}_{suffix}",
            "",
            "trigger",
            f"""
BEGIN
    IF isjsonsupported() = true THEN
        PERFORM {by_class};
    END IF;
    PERFORM {by_subnet};
    PERFORM {by_pool};
    RETURN NULL;
END;
""",
        )
        for suffix, (by_class, by_subnet, by_pool) in calls.items()
    ]


_HEX = ("colonseparatedhex(encode({}, 'hex'))", "decode(replace({}, ':', ''), 'hex')")
_EPOCH = ("extract(epoch FROM {})::bigint", "to_timestamp({})")
_BOOL = ("{}::integer", "{}::boolean")
_ESCAPED = ("replace({}, ',', '&#x2c')", "replace({}, '&#x2c', ',')")


def _column(name: str, dump_type: str, upload_type: str,
            conversion: tuple[str, str] = ("{}", "{}")) -> LeaseFileColumn:
    return LeaseFileColumn(name, dump_type, upload_type, *conversion)


LEASE4_FILE = [
    _column("address", "inet", "varchar", ("'0.0.0.0'::inet + {}", "{}::inet - '0.0.0.0'::inet")),
    _column("hwaddr", "varchar", "varchar", _HEX),
    _column("client_id", "varchar", "varchar", _HEX),
    _column("valid_lifetime", "bigint", "bigint"),
    _column("expire", "bigint", "bigint", _EPOCH),
    _column("subnet_id", "bigint", "bigint"),
    _column("fqdn_fwd", "integer", "integer", _BOOL),
    _column("fqdn_rev", "integer", "integer", _BOOL),
    _column("hostname", "varchar", "varchar", _ESCAPED),
    _column("state", "bigint", "bigint"),
    _column("user_context", "varchar", "varchar", _ESCAPED),
    _column("pool_id", "bigint", "bigint"),
]

LEASE6_FILE = [
    _column("address", "varchar", "varchar"),
    _column("duid", "varchar", "varchar", _HEX),
    _column("valid_lifetime", "bigint", "bigint"),
    _column("expire", "bigint", "bigint", _EPOCH),
    _column("subnet_id", "bigint", "bigint"),
    _column("pref_lifetime", "bigint", "bigint"),
    _column("lease_type", "smallint", "integer"),
    _column("iaid", "integer", "integer"),
    _column("prefix_len", "smallint", "integer"),
    _column("fqdn_fwd", "integer", "integer", _BOOL),
    _column("fqdn_rev", "integer", "integer", _BOOL),
    _column("hostname", "varchar", "varchar", _ESCAPED),
    _column("hwaddr", "varchar", "varchar", _HEX),
    _column("state", "bigint", "bigint"),
    _column("user_context", "varchar", "varchar", _ESCAPED),
    _column("hwtype", "smallint", "integer"),
    _column("hwaddr_source", "smallint", "integer"),
    _column("pool_id", "bigint", "bigint"),
]


def _lease_file(ops: Operations) -> None:
    for v, columns in ((4, LEASE4_FILE), (6, LEASE6_FILE)):
        header, dump, upload = lease_file_functions(v, columns)
        # The result type changes: drop and create. The old upload overload stays.
        drop_function(ops, header.name)
        drop_function(ops, dump.name)
        create_functions(ops, [header, dump])
        create_functions(ops, [upload])


def _recount_pools(ops: Operations) -> None:
    for v in FAMILIES:
        keys = ", ".join(_keys(v))
        ops.execute(
            sa.text(
                f"INSERT INTO lease{v}_pool_stat ({keys}, leases) "
                f"SELECT {keys}, count(*) FROM lease{v} WHERE state = 0 OR state = 1 "
                f"GROUP BY {keys}"
            )
        )


def _bulk_query_tables(ops: Operations) -> None:
    ops.add_column("lease6", sa.Column("binaddr", sa.LargeBinary(), server_default=sa.text("NULL")))
    ops.create_index("lease6_by_binaddr", "lease6", ["binaddr"])
    for kind in ("relay", "remote"):
        table = f"lease6_{kind}_id"
        ops.create_table(
            table,
            sa.Column("extended_info_id", Serial(), primary_key=True),
            sa.Column(f"{kind}_id", sa.LargeBinary(), nullable=False),
            sa.Column("lease_addr", sa.LargeBinary(), nullable=False),
        )
        ops.create_index(f"{table}_by_id", table, [f"{kind}_id", "lease_addr"])
        ops.create_index(f"{table}_by_address", table, ["lease_addr"])


def upgrade() -> None:
    with batch() as ops:
        ops.execute(
            sa.text(
                "UPDATE lease6 SET duid = decode('000000', 'hex') WHERE duid = decode('00', 'hex')"
            )
        )
        for v in FAMILIES:
            ops.add_column(
                f"lease{v}",
                sa.Column("pool_id", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
            )
        for v in FAMILIES:
            lease_type = (
                [sa.Column("lease_type", sa.SmallInteger(), primary_key=True, autoincrement=False)]
                if v == 6
                else []
            )
            ops.create_table(
                f"lease{v}_pool_stat",
                sa.Column("subnet_id", sa.BigInteger(), primary_key=True, autoincrement=False),
                sa.Column("pool_id", sa.BigInteger(), primary_key=True, autoincrement=False),
                *lease_type,
                sa.Column("state", sa.BigInteger(), primary_key=True, autoincrement=False),
                sa.Column("leases", sa.BigInteger()),
            )
        for v in FAMILIES:
            create_functions(ops, _pool_stat_functions(v))
        for v in FAMILIES:
            replace_functions(ops, _lease_trigger_functions(v))
        _lease_file(ops)
        _recount_pools(ops)
        _bulk_query_tables(ops)
        set_schema_version(ops, 17, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
