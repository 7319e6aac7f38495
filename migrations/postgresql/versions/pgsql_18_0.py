"""Kea PostgreSQL schema 18.0 (Kea 2.4.0): IPv6 addresses as INET

Revision ID: pgsql_18_0
Revises: pgsql_17_0

``lease6.address`` and ``ipv6_reservations.address`` become INET (every stored text address is
converted); ``lease6.binaddr``, which held the address as bytes, and its index go. The lease
file functions print and read the DHCPv6 address as text.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import INET

from keadb_cli.schema.kit_pgsql import (
    LeaseFileColumn,
    batch,
    lease_file_functions,
    replace_functions,
    set_schema_version,
)

revision = "pgsql_18_0"
down_revision = "pgsql_17_0"
branch_labels = None
depends_on = None

_HEX = ("colonseparatedhex(encode({}, 'hex'))", "decode(replace({}, ':', ''), 'hex')")
_EPOCH = ("extract(epoch FROM {})::bigint", "to_timestamp({})")
_BOOL = ("{}::integer", "{}::boolean")
_ESCAPED = ("replace({}, ',', '&#x2c')", "replace({}, '&#x2c', ',')")


def _column(name: str, dump_type: str, upload_type: str,
            conversion: tuple[str, str] = ("{}", "{}")) -> LeaseFileColumn:
    return LeaseFileColumn(name, dump_type, upload_type, *conversion)


LEASE6_FILE = [
    # The address column is INET now: host() prints it without a prefix length.
    _column("address", "varchar", "varchar", ("host({})", "{}::inet")),
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


def upgrade() -> None:
    with batch() as ops:
        ops.drop_index("lease6_by_binaddr", table_name="lease6")
        ops.drop_column("lease6", "binaddr")
        ops.alter_column("lease6", "address", type_=INET(), postgresql_using="address::inet")
        ops.alter_column(
            "ipv6_reservations", "address", type_=INET(), postgresql_using="address::inet"
        )
        # Same arguments and result: replaced in place (the header is unchanged).
        _header, dump, upload = lease_file_functions(6, LEASE6_FILE)
        replace_functions(ops, [dump, upload])
        set_schema_version(ops, 18, 0)


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")

