"""Kea MySQL schema 14.0 (Kea 2.2), built from an empty database.

Revision ID: mysql_14_0
Revises: (none: the first kea-db revision for MySQL)

The result matches what Kea 2.2's ``kea-admin db-init mysql`` leaves: 54 tables, their
keys and indexes, 65 foreign keys, the lookup rows, 36 stored routines and 55 triggers,
and schema_version 14.0. Written for kea-db from the facts of that schema (its catalog and
what each trigger and routine does); the tests compare the result object by object, and
by behaviour, with a database initialised by kea-admin.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql as my
from sqlalchemy.sql.schema import SchemaItem

from keadb_cli.schema import kit
from keadb_cli.schema.kit import CsvColumn, MySQLTrigger, body, foreign_key

revision = "mysql_14_0"
down_revision = None
branch_labels = None
depends_on = None

# Column types, named after what MySQL reports for them (display widths matter: they are
# part of the schema as information_schema shows it).
BIGINT = my.BIGINT()  # bigint(20)
BIGINT_U = my.BIGINT(unsigned=True)  # bigint(20) unsigned
BIGINT10_U = my.BIGINT(display_width=10, unsigned=True)
INT = my.INTEGER()  # int(11)
INT10 = my.INTEGER(display_width=10)
INT_U = my.INTEGER(unsigned=True)  # int(10) unsigned
SMALLINT_U = my.SMALLINT(unsigned=True)  # smallint(5) unsigned
TINYINT = my.TINYINT()  # tinyint(4)
TINYINT3 = my.TINYINT(display_width=3)
TINYINT_U = my.TINYINT(unsigned=True)  # tinyint(3) unsigned
TINYINT4_U = my.TINYINT(display_width=4, unsigned=True)
BOOL = my.TINYINT(display_width=1)
FLOAT = my.FLOAT()
TEXT = my.TEXT()
LONGTEXT = my.LONGTEXT()
BLOB = my.BLOB()
TIMESTAMP = my.TIMESTAMP()
# Nullability left to the server (explicit_defaults_for_timestamp), as in Kea's script.
SERVER_TIMESTAMP = kit.ServerTimestamp()
VARCHAR = my.VARCHAR
VARBINARY = my.VARBINARY

# No character set or collation: like Kea's script, tables take the database's defaults.
TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB"}


def _create_lease_tables() -> None:
    op.create_table(
        "schema_version",
        sa.Column("version", INT, primary_key=True, autoincrement=False),
        sa.Column("minor", INT),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease_state",
        sa.Column("state", INT_U, primary_key=True, autoincrement=False),
        sa.Column("name", VARCHAR(64), nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease6_types",
        sa.Column("lease_type", TINYINT, primary_key=True, autoincrement=False),
        sa.Column("name", VARCHAR(5)),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease_hwaddr_source",
        sa.Column("hwaddr_source", INT_U, primary_key=True, autoincrement=False),
        sa.Column("name", VARCHAR(40)),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease4",
        sa.Column("address", INT_U, primary_key=True, autoincrement=False),
        sa.Column("hwaddr", VARBINARY(20)),
        sa.Column("client_id", VARBINARY(128)),
        sa.Column("valid_lifetime", INT_U),
        sa.Column("expire", SERVER_TIMESTAMP),
        sa.Column("subnet_id", INT_U),
        sa.Column("fqdn_fwd", BOOL),
        sa.Column("fqdn_rev", BOOL),
        sa.Column("hostname", VARCHAR(255)),
        sa.Column("state", INT_U, server_default=sa.text("0")),
        sa.Column("user_context", TEXT),
        kit.MySQLKey("hwaddr", "subnet_id", name="lease4_by_hwaddr_subnet_id"),
        kit.MySQLKey("client_id", "subnet_id", name="lease4_by_client_id_subnet_id"),
        kit.MySQLKey("subnet_id", name="lease4_by_subnet_id"),
        kit.MySQLKey("hostname", name="lease4_by_hostname"),
        kit.MySQLKey("expire", "state", name="lease4_by_expire_state"),
        kit.MySQLKey("state", name="fk_lease4_state"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, "lease4"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease6",
        sa.Column("address", VARCHAR(39), primary_key=True, autoincrement=False),
        sa.Column("duid", VARBINARY(128)),
        sa.Column("valid_lifetime", INT_U),
        sa.Column("expire", SERVER_TIMESTAMP),
        sa.Column("subnet_id", INT_U),
        sa.Column("pref_lifetime", INT_U),
        sa.Column("lease_type", TINYINT),
        sa.Column("iaid", INT_U),
        sa.Column("prefix_len", TINYINT_U),
        sa.Column("fqdn_fwd", BOOL),
        sa.Column("fqdn_rev", BOOL),
        sa.Column("hostname", VARCHAR(255)),
        sa.Column("hwaddr", VARBINARY(20)),
        sa.Column("hwtype", SMALLINT_U),
        sa.Column("hwaddr_source", INT_U),
        sa.Column("state", INT_U, server_default=sa.text("0")),
        sa.Column("user_context", TEXT),
        kit.MySQLKey("lease_type", name="fk_lease6_type"),
        kit.MySQLKey("hwaddr_source", name="fk_lease6_hwaddr_source"),
        kit.MySQLKey("subnet_id", "lease_type", name="lease6_by_subnet_id_lease_type"),
        kit.MySQLKey("duid", "iaid", "subnet_id", name="lease6_by_duid_iaid_subnet_id"),
        kit.MySQLKey("hostname", name="lease6_by_hostname"),
        kit.MySQLKey("expire", "state", name="lease6_by_expire_state"),
        kit.MySQLKey("state", name="fk_lease6_state"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, "lease6"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease4_stat",
        sa.Column("subnet_id", INT_U, nullable=False),
        sa.Column("state", INT_U, nullable=False),
        sa.Column("leases", BIGINT),
        sa.PrimaryKeyConstraint("subnet_id", "state"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease6_stat",
        sa.Column("subnet_id", INT_U, nullable=False),
        sa.Column("lease_type", INT_U, nullable=False),
        sa.Column("state", INT_U, nullable=False),
        sa.Column("leases", BIGINT),
        sa.PrimaryKeyConstraint("subnet_id", "lease_type", "state"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease4_stat_by_client_class",
        sa.Column("client_class", VARCHAR(128), primary_key=True, autoincrement=False),
        sa.Column("leases", BIGINT_U, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "lease6_stat_by_client_class",
        sa.Column("client_class", VARCHAR(128), nullable=False),
        sa.Column("lease_type", TINYINT, nullable=False),
        sa.Column("leases", BIGINT_U, nullable=False),
        sa.PrimaryKeyConstraint("client_class", "lease_type"),
        kit.MySQLKey("lease_type", name="fk_lease6_stat_by_client_class_lease_type"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, "lease6_stat_by_client_class"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "logs",
        sa.Column("timestamp", SERVER_TIMESTAMP, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("address", VARCHAR(43)),
        sa.Column("log", TEXT, nullable=False),
        sa.Column("id", INT_U, primary_key=True),
        kit.MySQLKey("timestamp", name="timestamp_index"),
        **TABLE_OPTIONS,
    )


def _create_host_tables() -> None:
    op.create_table(
        "host_identifier_type",
        sa.Column("type", TINYINT, primary_key=True, autoincrement=False),
        sa.Column("name", VARCHAR(32)),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "dhcp_option_scope",
        sa.Column("scope_id", TINYINT_U, primary_key=True, autoincrement=False),
        sa.Column("scope_name", VARCHAR(32)),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "hosts",
        sa.Column("host_id", INT_U, primary_key=True),
        sa.Column("dhcp_identifier", VARBINARY(128), nullable=False),
        sa.Column("dhcp_identifier_type", TINYINT, nullable=False),
        sa.Column("dhcp4_subnet_id", INT_U),
        sa.Column("dhcp6_subnet_id", INT_U),
        sa.Column("ipv4_address", INT_U),
        sa.Column("hostname", VARCHAR(255)),
        sa.Column("dhcp4_client_classes", VARCHAR(255)),
        sa.Column("dhcp6_client_classes", VARCHAR(255)),
        sa.Column("dhcp4_next_server", INT_U),
        sa.Column("dhcp4_server_hostname", VARCHAR(64)),
        sa.Column("dhcp4_boot_file_name", VARCHAR(128)),
        sa.Column("user_context", TEXT),
        sa.Column("auth_key", VARCHAR(32)),
        sa.UniqueConstraint(
            "dhcp_identifier",
            "dhcp_identifier_type",
            "dhcp4_subnet_id",
            name="key_dhcp4_identifier_subnet_id",
        ),
        sa.UniqueConstraint(
            "dhcp_identifier",
            "dhcp_identifier_type",
            "dhcp6_subnet_id",
            name="key_dhcp6_identifier_subnet_id",
        ),
        kit.MySQLKey("dhcp_identifier_type", name="fk_host_identifier_type"),
        kit.MySQLKey("hostname", name="hosts_by_hostname"),
        kit.MySQLKey(
            "ipv4_address", "dhcp4_subnet_id", name="key_dhcp4_ipv4_address_subnet_id_identifier"
        ),
        *kit.foreign_key_constraints(FOREIGN_KEYS, "hosts"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "ipv6_reservations",
        sa.Column("reservation_id", INT_U, primary_key=True),
        sa.Column("address", VARCHAR(39), nullable=False),
        sa.Column("prefix_len", TINYINT_U, nullable=False, server_default=sa.text("128")),
        sa.Column("type", TINYINT4_U, nullable=False, server_default=sa.text("0")),
        sa.Column("dhcp6_iaid", INT_U),
        sa.Column("host_id", INT_U, nullable=False),
        kit.MySQLKey("host_id", name="fk_ipv6_reservations_host_idx"),
        kit.MySQLKey("address", "prefix_len", name="key_dhcp6_address_prefix_len"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, "ipv6_reservations"),
        **TABLE_OPTIONS,
    )


def _four_six(v: str, four: list[SchemaItem], six: list[SchemaItem]) -> list[SchemaItem]:
    """The family's own items: ``four`` for DHCPv4, ``six`` for DHCPv6."""
    return four if v == "4" else six


def _create_config_lookup_tables() -> None:
    op.create_table(
        "modification",
        sa.Column("id", TINYINT3, primary_key=True, autoincrement=False),
        sa.Column("modification_type", VARCHAR(32), nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "parameter_data_type",
        sa.Column("id", TINYINT_U, primary_key=True, autoincrement=False),
        sa.Column("name", VARCHAR(32), nullable=False),
        **TABLE_OPTIONS,
    )


def _link_table(
    table: str, left: str, left_type: Any, keys: list[tuple[str, str]], ts_nullable: bool = False
) -> None:
    """A ``<object>_server`` table: which servers an object belongs to.

    ``keys`` are the non-unique indexes (column, name) in their order.
    """
    op.create_table(
        table,
        sa.Column(left, left_type, nullable=False),
        sa.Column("server_id", BIGINT_U, nullable=False),
        sa.Column("modification_ts", TIMESTAMP, nullable=ts_nullable),
        sa.PrimaryKeyConstraint(left, "server_id"),
        *(kit.MySQLKey(column, name=name) for column, name in keys),
        *kit.foreign_key_constraints(FOREIGN_KEYS, table),
        **TABLE_OPTIONS,
    )


def _lifetimes_v6() -> list[SchemaItem]:
    return [
        sa.Column("min_preferred_lifetime", INT10),
        sa.Column("max_preferred_lifetime", INT10),
    ]


def _network_settings_tail() -> list[SchemaItem]:
    """The columns shared networks and subnets of both families end with."""
    return [
        sa.Column("min_valid_lifetime", INT10),
        sa.Column("max_valid_lifetime", INT10),
        sa.Column("ddns_send_updates", BOOL),
        sa.Column("ddns_override_no_update", BOOL),
        sa.Column("ddns_override_client_update", BOOL),
        sa.Column("ddns_replace_client_name", TINYINT3),
        sa.Column("ddns_generated_prefix", VARCHAR(255)),
        sa.Column("ddns_qualifying_suffix", VARCHAR(255)),
        sa.Column("reservations_global", BOOL),
        sa.Column("reservations_in_subnet", BOOL),
        sa.Column("reservations_out_of_pool", BOOL),
        sa.Column("cache_threshold", FLOAT),
        sa.Column("cache_max_age", INT10),
    ]


def _tee_times() -> list[SchemaItem]:
    return [
        sa.Column("calculate_tee_times", BOOL),
        sa.Column("t1_percent", FLOAT),
        sa.Column("t2_percent", FLOAT),
    ]


def _create_config_tables(v: str) -> None:
    """The config backend tables of one family (``v``: "4" or "6")."""
    d = f"dhcp{v}"
    op.create_table(
        f"{d}_server",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("tag", VARCHAR(64), nullable=False),
        sa.Column("description", TEXT),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("tag", name=f"{d}_server_tag_UNIQUE"),
        kit.MySQLKey("modification_ts", name=f"key_{d}_server_modification_ts"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        f"{d}_audit_revision",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        sa.Column("log_message", TEXT),
        sa.Column("server_id", BIGINT10_U),
        kit.MySQLKey("modification_ts", name=f"key_{d}_audit_revision_by_modification_ts"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        f"{d}_audit",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("object_type", VARCHAR(256), nullable=False),
        sa.Column("object_id", BIGINT_U, nullable=False),
        sa.Column("modification_type", BOOL, nullable=False),
        sa.Column("revision_id", BIGINT_U, nullable=False),
        kit.MySQLKey("modification_type", name=f"fk_{d}_audit_modification_type"),
        kit.MySQLKey("revision_id", name=f"fk_{d}_audit_revision"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_audit"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        f"{d}_global_parameter",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("name", VARCHAR(128), nullable=False),
        sa.Column("value", LONGTEXT, nullable=False),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        sa.Column("parameter_type", TINYINT_U, nullable=False),
        kit.MySQLKey("modification_ts", name=f"key_{d}_global_parameter_modification_ts"),
        kit.MySQLKey("name", name=f"key_{d}_global_parameter_name"),
        kit.MySQLKey("parameter_type", name=f"fk_{d}_global_parameter_type"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_global_parameter"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_global_parameter_server",
        "parameter_id",
        BIGINT_U,
        [
            ("server_id", f"fk_{d}_global_parameter_server_server_id"),
            ("modification_ts", f"key_{d}_global_parameter_server"),
        ],
    )
    op.create_table(
        f"{d}_client_class",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("name", VARCHAR(128), nullable=False),
        sa.Column("test", TEXT),
        *_four_six(
            v,
            [
                sa.Column("next_server", INT_U),
                sa.Column("server_hostname", VARCHAR(128)),
                sa.Column("boot_file_name", VARCHAR(512)),
            ],
            [],
        ),
        sa.Column("only_if_required", TINYINT, nullable=False, server_default=sa.text("0")),
        sa.Column("valid_lifetime", INT),
        sa.Column("min_valid_lifetime", INT),
        sa.Column("max_valid_lifetime", INT),
        sa.Column("depend_on_known_directly", TINYINT, nullable=False, server_default=sa.text("0")),
        sa.Column("follow_class_name", VARCHAR(128)),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        *_four_six(v, [], [sa.Column("preferred_lifetime", INT10), *_lifetimes_v6()]),
        sa.Column("user_context", LONGTEXT),
        sa.UniqueConstraint("id", name="id_UNIQUE"),
        sa.UniqueConstraint("name", name="name_UNIQUE"),
        kit.MySQLKey("modification_ts", name=f"key_{d}_client_class_modification_ts"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        f"{d}_client_class_order",
        sa.Column("class_id", BIGINT_U, primary_key=True, autoincrement=False),
        sa.Column("order_index", BIGINT_U, nullable=False),
        sa.Column(
            "depend_on_known_indirectly", TINYINT, nullable=False, server_default=sa.text("0")
        ),
        kit.MySQLKey("order_index", name=f"key_{d}_client_class_order_index"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_client_class_order"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        f"{d}_client_class_dependency",
        sa.Column("class_id", BIGINT_U, nullable=False),
        sa.Column("dependency_id", BIGINT_U, nullable=False),
        sa.PrimaryKeyConstraint("class_id", "dependency_id"),
        kit.MySQLKey("dependency_id", name=f"{d}_client_class_dependency_id_idx"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_client_class_dependency"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_client_class_server",
        "class_id",
        BIGINT_U,
        [("server_id", f"fk_{d}_client_class_server_id")],
        ts_nullable=True,
    )
    op.create_table(
        f"{d}_option_def",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("code", SMALLINT_U, nullable=False),
        sa.Column("name", VARCHAR(128), nullable=False),
        sa.Column("space", VARCHAR(128), nullable=False),
        sa.Column("type", TINYINT_U, nullable=False),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        sa.Column("is_array", BOOL, nullable=False),
        sa.Column("encapsulate", VARCHAR(128), nullable=False),
        sa.Column("record_types", VARCHAR(512)),
        sa.Column("user_context", LONGTEXT),
        sa.Column("class_id", BIGINT_U),
        kit.MySQLKey("modification_ts", name=f"key_{d}_option_def_modification_ts"),
        kit.MySQLKey("code", "space", name=f"key_{d}_option_def_code_space"),
        kit.MySQLKey("class_id", name=f"fk_{d}_option_def_client_class_id"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_option_def"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_option_def_server",
        "option_def_id",
        BIGINT_U,
        [
            ("server_id", f"fk_{d}_option_def_server_server_id_idx"),
            ("modification_ts", f"key_{d}_option_def_server_modification_ts"),
        ],
    )
    # DHCPv4 and DHCPv6 settings of shared networks and subnets: each family's own columns
    # sit at different places (the tables grew over many schema versions).
    match_client_id = _four_six(v, [sa.Column("match_client_id", BOOL)], [])
    v6_timers = _four_six(
        v, [], [sa.Column("preferred_lifetime", INT10), sa.Column("rapid_commit", BOOL)]
    )
    authoritative = _four_six(v, [sa.Column("authoritative", BOOL)], [])
    v6_interface = _four_six(v, [], [sa.Column("interface_id", VARBINARY(128)), *_lifetimes_v6()])
    op.create_table(
        f"{d}_shared_network",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("name", VARCHAR(128), nullable=False),
        sa.Column("client_class", VARCHAR(128)),
        sa.Column("interface", VARCHAR(128)),
        *match_client_id,
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        *v6_timers,
        sa.Column("rebind_timer", INT10),
        sa.Column("relay", LONGTEXT),
        sa.Column("renew_timer", INT10),
        sa.Column("require_client_classes", LONGTEXT),
        sa.Column("user_context", LONGTEXT),
        sa.Column("valid_lifetime", INT10),
        *authoritative,
        *_tee_times(),
        *_four_six(
            v,
            [
                sa.Column("boot_file_name", VARCHAR(512)),
                sa.Column("next_server", INT_U),
                sa.Column("server_hostname", VARCHAR(512)),
            ],
            v6_interface,
        ),
        *_network_settings_tail(),
        sa.UniqueConstraint("name", name="name_UNIQUE"),
        kit.MySQLKey("modification_ts", name=f"key_{d}_shared_network_modification_ts"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_shared_network_server",
        "shared_network_id",
        BIGINT_U,
        [
            ("modification_ts", f"key_{d}_shared_network_server_modification_ts"),
            ("server_id", f"fk_{d}_shared_network_server_server_id" + ("_idx" if v == "6" else "")),
        ],
    )
    op.create_table(
        f"{d}_subnet",
        sa.Column("subnet_id", INT_U, primary_key=True, autoincrement=False),
        sa.Column("subnet_prefix", VARCHAR(32 if v == "4" else 64), nullable=False),
        *_four_six(
            v,
            [
                sa.Column("4o6_interface", VARCHAR(128)),
                sa.Column("4o6_interface_id", VARCHAR(128)),
                sa.Column("4o6_subnet", VARCHAR(64)),
                sa.Column("boot_file_name", VARCHAR(512)),
            ],
            [],
        ),
        sa.Column("client_class", VARCHAR(128)),
        sa.Column("interface", VARCHAR(128)),
        *match_client_id,
        *_four_six(
            v,
            [
                sa.Column("modification_ts", TIMESTAMP, nullable=False),
                sa.Column("next_server", INT_U),
            ],
            [
                sa.Column(
                    "modification_ts",
                    TIMESTAMP,
                    nullable=False,
                    server_default=sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"),
                ),
                *v6_timers,
            ],
        ),
        sa.Column("rebind_timer", INT10),
        sa.Column("relay", LONGTEXT),
        sa.Column("renew_timer", INT10),
        sa.Column("require_client_classes", LONGTEXT),
        *_four_six(v, [sa.Column("server_hostname", VARCHAR(512))], []),
        sa.Column("shared_network_name", VARCHAR(128)),
        sa.Column("user_context", LONGTEXT),
        sa.Column("valid_lifetime", INT10),
        *authoritative,
        *_tee_times(),
        *v6_interface,
        *_network_settings_tail(),
        *_four_six(
            v,
            [sa.UniqueConstraint("subnet_prefix", name="subnet4_subnet_prefix")],
            [
                sa.UniqueConstraint("subnet_prefix", name="subnet_prefix_UNIQUE"),
                kit.MySQLKey("subnet_prefix", name="subnet6_subnet_prefix"),
            ],
        ),
        kit.MySQLKey("shared_network_name", name=f"fk_{d}_subnet_shared_network"),
        kit.MySQLKey("modification_ts", name=f"key_{d}_subnet_modification_ts"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_subnet"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_subnet_server",
        "subnet_id",
        INT_U,
        [
            ("server_id", f"fk_{d}_subnet_server_server_id" + ("_idx" if v == "4" else "")),
            ("modification_ts", f"key_{d}_subnet_server_modification_ts"),
        ],
    )
    address = INT_U if v == "4" else VARCHAR(45)
    op.create_table(
        f"{d}_pool",
        sa.Column("id", BIGINT_U, primary_key=True),
        sa.Column("start_address", address, nullable=False),
        sa.Column("end_address", address, nullable=False),
        sa.Column("subnet_id", INT_U, nullable=False),
        sa.Column("modification_ts", TIMESTAMP, nullable=False),
        sa.Column("client_class", VARCHAR(128)),
        sa.Column("require_client_classes", LONGTEXT),
        sa.Column("user_context", LONGTEXT),
        kit.MySQLKey("modification_ts", name=f"key_{d}_pool_modification_ts"),
        kit.MySQLKey("subnet_id", name=f"fk_{d}_pool_subnet_id"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_pool"),
        **TABLE_OPTIONS,
    )
    if v == "6":
        op.create_table(
            "dhcp6_pd_pool",
            sa.Column("id", BIGINT_U, primary_key=True),
            sa.Column("prefix", VARCHAR(45), nullable=False),
            sa.Column("prefix_length", TINYINT3, nullable=False),
            sa.Column("delegated_prefix_length", TINYINT3, nullable=False),
            sa.Column("subnet_id", INT_U, nullable=False),
            sa.Column("modification_ts", TIMESTAMP, nullable=False),
            sa.Column("excluded_prefix", VARCHAR(45)),
            sa.Column("excluded_prefix_length", TINYINT3, nullable=False),
            sa.Column("client_class", VARCHAR(128)),
            sa.Column("require_client_classes", LONGTEXT),
            sa.Column("user_context", LONGTEXT),
            kit.MySQLKey("modification_ts", name="key_dhcp6_pd_pool_modification_ts"),
            kit.MySQLKey("subnet_id", name="fk_dhcp6_pd_pool_subnet_id"),
            *kit.foreign_key_constraints(FOREIGN_KEYS, "dhcp6_pd_pool"),
            **TABLE_OPTIONS,
        )
    op.create_table(
        f"{d}_options",
        sa.Column("option_id", BIGINT_U, primary_key=True),
        sa.Column("code", TINYINT_U if v == "4" else SMALLINT_U, nullable=False),
        sa.Column("value", BLOB),
        sa.Column("formatted_value", TEXT),
        sa.Column("space", VARCHAR(128)),
        sa.Column("persistent", BOOL, nullable=False, server_default=sa.text("0")),
        sa.Column("dhcp_client_class", VARCHAR(128)),
        sa.Column(f"{d}_subnet_id", INT_U),
        sa.Column("host_id", INT_U),
        sa.Column("scope_id", TINYINT_U, nullable=False),
        sa.Column("user_context", TEXT),
        sa.Column("shared_network_name", VARCHAR(128)),
        sa.Column("pool_id", BIGINT_U),
        *_four_six(v, [], [sa.Column("pd_pool_id", BIGINT_U)]),
        sa.Column(
            "modification_ts",
            TIMESTAMP,
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.UniqueConstraint("option_id", name="option_id_UNIQUE"),
        kit.MySQLKey("host_id", name="fk_options_host1_idx"),
        kit.MySQLKey("scope_id", name=f"fk_{d}_option_scope"),
        kit.MySQLKey("shared_network_name", name=f"fk_{d}_options_shared_network"),
        kit.MySQLKey(f"{d}_subnet_id", name=f"fk_{d}_options_subnet"),
        kit.MySQLKey("pool_id", name=f"fk_{d}_options_pool"),
        *_four_six(v, [], [kit.MySQLKey("pd_pool_id", name="fk_dhcp6_options_pd_pool")]),
        kit.MySQLKey("dhcp_client_class", name=f"fk_{d}_options_client_class"),
        *kit.foreign_key_constraints(FOREIGN_KEYS, f"{d}_options"),
        **TABLE_OPTIONS,
    )
    _link_table(
        f"{d}_options_server",
        "option_id",
        BIGINT_U,
        [
            ("server_id", f"fk_{d}_options_server_server_id" + ("_idx" if v == "6" else "")),
            ("modification_ts", f"key_{d}_options_server_modification_ts"),
        ],
    )


FOREIGN_KEYS = [
    # table, constraint, column(s), referenced table, referenced column(s), ON DELETE, ON UPDATE
    foreign_key("lease4", "fk_lease4_state", "state", "lease_state", "state"),
    foreign_key(
        "lease6", "fk_lease6_hwaddr_source", "hwaddr_source", "lease_hwaddr_source", "hwaddr_source"
    ),
    foreign_key("lease6", "fk_lease6_state", "state", "lease_state", "state"),
    foreign_key("lease6", "fk_lease6_type", "lease_type", "lease6_types", "lease_type"),
    foreign_key(
        "lease6_stat_by_client_class",
        "fk_lease6_stat_by_client_class_lease_type",
        "lease_type",
        "lease6_types",
        "lease_type",
    ),
    foreign_key(
        "hosts", "fk_host_identifier_type", "dhcp_identifier_type", "host_identifier_type", "type"
    ),
    foreign_key(
        "ipv6_reservations",
        "fk_ipv6_reservations_Host",
        "host_id",
        "hosts",
        "host_id",
        "CASCADE",
        "CASCADE",
    ),
]
for v in "46":
    FOREIGN_KEYS += [
        foreign_key(
            f"dhcp{v}_audit",
            f"fk_dhcp{v}_audit_modification_type",
            "modification_type",
            "modification",
            "id",
            "NO ACTION",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_audit",
            f"fk_dhcp{v}_audit_revision",
            "revision_id",
            f"dhcp{v}_audit_revision",
            "id",
            "NO ACTION",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_global_parameter",
            f"fk_dhcp{v}_global_parameter_type",
            "parameter_type",
            "parameter_data_type",
            "id",
        ),
        foreign_key(
            f"dhcp{v}_global_parameter_server",
            f"fk_dhcp{v}_global_parameter_server_parameter_id",
            "parameter_id",
            f"dhcp{v}_global_parameter",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_global_parameter_server",
            f"fk_dhcp{v}_global_parameter_server_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_option_def",
            f"fk_dhcp{v}_option_def_client_class_id",
            "class_id",
            f"dhcp{v}_client_class",
            "id",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_option_def_server",
            f"fk_dhcp{v}_option_def_server_option_def_id",
            "option_def_id",
            f"dhcp{v}_option_def",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_option_def_server",
            f"fk_dhcp{v}_option_def_server_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_shared_network_server",
            f"fk_dhcp{v}_shared_network_server_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_shared_network_server",
            f"fk_dhcp{v}_shared_network_server_shared_network_id",
            "shared_network_id",
            f"dhcp{v}_shared_network",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_subnet",
            f"fk_dhcp{v}_subnet_shared_network",
            "shared_network_name",
            f"dhcp{v}_shared_network",
            "name",
            "NO ACTION",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_subnet_server",
            f"fk_dhcp{v}_subnet_server_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_subnet_server",
            f"fk_dhcp{v}_subnet_server_subnet_id",
            "subnet_id",
            f"dhcp{v}_subnet",
            "subnet_id",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_pool",
            f"fk_dhcp{v}_pool_subnet_id",
            "subnet_id",
            f"dhcp{v}_subnet",
            "subnet_id",
            "NO ACTION",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_client_class_order",
            f"fk_dhcp{v}_client_class_order_class_id",
            "class_id",
            f"dhcp{v}_client_class",
            "id",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_client_class_dependency",
            f"dhcp{v}_client_class_class_id",
            "class_id",
            f"dhcp{v}_client_class",
            "id",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_client_class_dependency",
            f"dhcp{v}_client_class_dependency_id",
            "dependency_id",
            f"dhcp{v}_client_class",
            "id",
        ),
        foreign_key(
            f"dhcp{v}_client_class_server",
            f"fk_dhcp{v}_client_class_class_id",
            "class_id",
            f"dhcp{v}_client_class",
            "id",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_client_class_server",
            f"fk_dhcp{v}_client_class_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_option_scope",
            "scope_id",
            "dhcp_option_scope",
            "scope_id",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_options_Host",
            "host_id",
            "hosts",
            "host_id",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_options_client_class",
            "dhcp_client_class",
            f"dhcp{v}_client_class",
            "name",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_options_pool",
            "pool_id",
            f"dhcp{v}_pool",
            "id",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_options_shared_network",
            "shared_network_name",
            f"dhcp{v}_shared_network",
            "name",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_options",
            f"fk_dhcp{v}_options_subnet",
            f"dhcp{v}_subnet_id",
            f"dhcp{v}_subnet",
            "subnet_id",
            "CASCADE",
            "CASCADE",
        ),
        foreign_key(
            f"dhcp{v}_options_server",
            f"fk_dhcp{v}_options_server_option_id",
            "option_id",
            f"dhcp{v}_options",
            "option_id",
            "CASCADE",
            "NO ACTION",
        ),
        foreign_key(
            f"dhcp{v}_options_server",
            f"fk_dhcp{v}_options_server_server_id",
            "server_id",
            f"dhcp{v}_server",
            "id",
            "CASCADE",
            "NO ACTION",
        ),
    ]
# The two option tables each carry a second, older key on host_id. It comes first, as in
# Kea's schema: Oracle MySQL checks a parent's foreign keys in the order they were made, so
# deleting a host that still has options fails on this NO ACTION key before the CASCADE one
# runs, exactly as on a kea-admin database.
FOREIGN_KEYS[:0] = [
    foreign_key(
        "dhcp4_options", "fk_options_host1", "host_id", "hosts", "host_id", "NO ACTION", "NO ACTION"
    ),
    foreign_key(
        "dhcp6_options",
        "fk_options_host10",
        "host_id",
        "hosts",
        "host_id",
        "NO ACTION",
        "NO ACTION",
    ),
]
FOREIGN_KEYS += [
    foreign_key(
        "dhcp6_options",
        "fk_dhcp6_options_pd_pool",
        "pd_pool_id",
        "dhcp6_pd_pool",
        "id",
        "CASCADE",
        "CASCADE",
    ),
    foreign_key(
        "dhcp6_pd_pool",
        "fk_dhcp6_pd_pool_subnet_id",
        "subnet_id",
        "dhcp6_subnet",
        "subnet_id",
        "NO ACTION",
        "CASCADE",
    ),
]

LOOKUP_ROWS: list[tuple[str, tuple[str, str], list[tuple[int, str]]]] = [
    ("lease_state", ("state", "name"), [(0, "default"), (1, "declined"), (2, "expired-reclaimed")]),
    ("lease6_types", ("lease_type", "name"), [(0, "IA_NA"), (1, "IA_TA"), (2, "IA_PD")]),
    (
        "lease_hwaddr_source",
        ("hwaddr_source", "name"),
        [
            (0, "HWADDR_SOURCE_UNKNOWN"),
            (1, "HWADDR_SOURCE_RAW"),
            (2, "HWADDR_SOURCE_IPV6_LINK_LOCAL"),
            (4, "HWADDR_SOURCE_DUID"),
            (8, "HWADDR_SOURCE_CLIENT_ADDR_RELAY_OPTION"),
            (16, "HWADDR_SOURCE_REMOTE_ID"),
            (32, "HWADDR_SOURCE_SUBSCRIBER_ID"),
            (64, "HWADDR_SOURCE_DOCSIS_CMTS"),
            (128, "HWADDR_SOURCE_DOCSIS_MODEM"),
        ],
    ),
    (
        "host_identifier_type",
        ("type", "name"),
        [(0, "hw-address"), (1, "duid"), (2, "circuit-id"), (3, "client-id"), (4, "flex-id")],
    ),
    (
        "dhcp_option_scope",
        ("scope_id", "scope_name"),
        [
            (0, "global"),
            (1, "subnet"),
            (2, "client-class"),
            (3, "host"),
            (4, "shared-network"),
            (5, "pool"),
            (6, "pd-pool"),
        ],
    ),
    ("modification", ("id", "modification_type"), [(0, "create"), (1, "update"), (2, "delete")]),
    (
        "parameter_data_type",
        ("id", "name"),
        [(0, "integer"), (1, "real"), (2, "boolean"), (4, "string")],
    ),
]


def _insert_rows() -> None:
    for table, columns, rows in LOOKUP_ROWS:
        kit.insert_rows(table, columns, rows)
    for v in "46":
        # Server id 1 stands for "every server" in the config backend.
        servers = sa.table(
            f"dhcp{v}_server",
            sa.column("id", sa.Integer),
            sa.column("tag", sa.String),
            sa.column("description", sa.String),
            sa.column("modification_ts", sa.DateTime),
        )
        op.execute(
            servers.insert().values(
                id=1,
                tag="all",
                description="special type: all servers",
                modification_ts=sa.func.now(),
            )
        )


# --- lease statistics ------------------------------------------------------------------
#
# Each lease table keeps two counters up to date from its triggers: leases per (subnet,
# [lease type,] state) in leaseX_stat for the assigned (0) and declined (1) states, and
# assigned leases per client class named in user_context ISC.client-classes in
# leaseX_stat_by_client_class. The by-class procedures run only where the server has JSON
# functions.


class _LeaseFamily:
    """What differs between the lease4 and lease6 statistics code."""

    def __init__(self, v: str, keys: list[tuple[str, str]]) -> None:
        self.table = f"lease{v}"
        self.stat = f"lease{v}_stat"
        self.by_class = f"lease{v}_stat_by_client_class"
        # Trigger arguments (column, parameter type), in the procedures' parameter order.
        self.keys = keys
        # The statistics tables' key order.
        self.stat_key = [c for c in ("subnet_id", "lease_type", "state") if c in dict(keys)]
        self.typed = "lease_type" in dict(keys)

    def params(self, prefix: str) -> list[str]:
        return [f"IN {prefix}_{col} {ptype}" for col, ptype in self.keys]

    def class_params(self, prefix: str) -> list[str]:
        typed = [f"IN {prefix}_lease_type TINYINT"] if self.typed else []
        return [f"IN {prefix}_state TINYINT", f"IN {prefix}_user_context TEXT", *typed]

    def changed(self) -> str:
        return " OR ".join(f"old_{col} != new_{col}" for col, _type in self.keys)

    # leaseX_stat: counts of assigned (0) and declined (1) leases

    def count_down(self) -> str:
        match = " AND ".join(f"{col} = old_{col}" for col in self.stat_key)
        return f"""
            IF old_state = 0 OR old_state = 1 THEN
                UPDATE {self.stat} SET leases = IF(leases > 0, leases - 1, 0)
                    WHERE {match};
            END IF"""

    def count_up(self) -> str:
        match = " AND ".join(f"{col} = new_{col}" for col in self.stat_key)
        values = ", ".join(f"new_{col}" for col in self.stat_key)
        return f"""
            IF new_state = 0 OR new_state = 1 THEN
                UPDATE {self.stat} SET leases = leases + 1
                    WHERE {match};
                IF ROW_COUNT() <= 0 THEN
                    INSERT INTO {self.stat} ({", ".join(self.stat_key)}, leases)
                        VALUES ({values}, 1);
                END IF;
            END IF"""

    # leaseX_stat_by_client_class: assigned leases per class named in the user context

    def _each_class(self, classes: str, action: str) -> str:
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

    def class_down(self, classes: str) -> str:
        of_type = " AND lease_type = old_lease_type" if self.typed else ""
        return self._each_class(
            classes,
            f"""
            UPDATE {self.by_class} SET leases = IF(leases > 0, leases - 1, 0)
                WHERE client_class = class_name{of_type}""",
        )

    def class_up(self, classes: str) -> str:
        of_type = " AND lease_type = new_lease_type" if self.typed else ""
        columns = "client_class, lease_type, leases" if self.typed else "client_class, leases"
        values = "class_name, new_lease_type, 1" if self.typed else "class_name, 1"
        return self._each_class(
            classes,
            f"""
            UPDATE {self.by_class} SET leases = leases + 1
                WHERE client_class = class_name{of_type};
            IF ROW_COUNT() <= 0 THEN
                INSERT INTO {self.by_class} ({columns}) VALUES ({values});
            END IF""",
        )


LEASE4 = _LeaseFamily("4", [("state", "TINYINT"), ("subnet_id", "INT UNSIGNED")])
LEASE6 = _LeaseFamily(
    "6", [("state", "TINYINT"), ("subnet_id", "INT UNSIGNED"), ("lease_type", "TINYINT")]
)

CLASS_LIST = """'$."ISC"."client-classes"'"""
CLASS_LOCALS = ("DECLARE class_name VARCHAR(255)", "DECLARE n_classes INT", "DECLARE k INT")
# A user context that is not valid JSON must not make the lease write fail.
JSON_ERROR_HANDLERS = (
    "DECLARE CONTINUE HANDLER FOR 3141 BEGIN END",
    "DECLARE CONTINUE HANDLER FOR 4037 BEGIN END",
)


def _create_lease_stat_routines(fam: _LeaseFamily) -> None:
    t = fam.table
    kit.mysql_create_procedure(f"{t}_AINS_{t}_stat", fam.params("new"), body(fam.count_up()))
    kit.mysql_create_procedure(f"{t}_ADEL_{t}_stat", fam.params("old"), body(fam.count_down()))
    kit.mysql_create_procedure(
        f"{t}_AUPD_{t}_stat",
        fam.params("old") + fam.params("new"),
        body(
            kit.compose(
                f"""
                IF {fam.changed()} THEN
                    <<down>>;
                    <<up>>;
                END IF""",
                down=fam.count_down(),
                up=fam.count_up(),
            )
        ),
    )
    kit.mysql_create_procedure(
        f"{t}_AINS_{t}_stat_by_client_class",
        fam.class_params("new"),
        body(
            "DECLARE class_list TEXT",
            *CLASS_LOCALS,
            *JSON_ERROR_HANDLERS,
            kit.compose(
                f"""
                IF new_state = 0 THEN
                    SET class_list = JSON_EXTRACT(new_user_context, {CLASS_LIST});
                    <<count>>;
                END IF""",
                count=fam.class_up("class_list"),
            ),
        ),
    )
    kit.mysql_create_procedure(
        f"{t}_ADEL_{t}_stat_by_client_class",
        fam.class_params("old"),
        body(
            "DECLARE class_list TEXT",
            *CLASS_LOCALS,
            *JSON_ERROR_HANDLERS,
            kit.compose(
                f"""
                IF old_state = 0 THEN
                    SET class_list = JSON_EXTRACT(old_user_context, {CLASS_LIST});
                    <<count>>;
                END IF""",
                count=fam.class_down("class_list"),
            ),
        ),
    )
    type_changed = " OR old_lease_type != new_lease_type" if fam.typed else ""
    kit.mysql_create_procedure(
        f"{t}_AUPD_{t}_stat_by_client_class",
        fam.class_params("old") + fam.class_params("new"),
        body(
            "DECLARE old_list TEXT",
            "DECLARE new_list TEXT",
            *CLASS_LOCALS,
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
                down=fam.class_down("old_list"),
                up=fam.class_up("new_list"),
            ),
        ),
    )


def _lease_triggers(fam: _LeaseFamily) -> list[MySQLTrigger]:
    class_cols = ["state", "user_context", *(["lease_type"] if fam.typed else [])]
    return kit.mysql_lease_triggers(
        fam.table[-1],
        [(fam.stat, [col for col, _type in fam.keys])],
        class_cols,
        probe_json=True,
    )


# --- config backend audit --------------------------------------------------------------
#
# Kea's config backend opens each change with createAuditRevisionDHCPx (one row in
# dhcpX_audit_revision, id kept in @audit_revision_id); the table triggers then log one
# dhcpX_audit row per changed object. @disable_audit = 1 silences both;
# @cascade_transaction = 1 tells the option triggers that the owning object is audited
# already.


def _create_audit_routines(v: str) -> None:
    kit.mysql_create_procedure(
        f"createAuditRevisionDHCP{v}",
        [
            "IN audit_ts TIMESTAMP",
            "IN server_tag VARCHAR(256)",
            "IN audit_log_message TEXT",
            "IN cascade_transaction TINYINT(1)",
        ],
        body(
            "DECLARE tagged_server BIGINT(20)",
            f"""
            IF @disable_audit IS NULL OR @disable_audit = 0 THEN
                SELECT id INTO tagged_server FROM dhcp{v}_server WHERE tag = server_tag;
                INSERT INTO dhcp{v}_audit_revision (modification_ts, server_id, log_message)
                    VALUES (audit_ts, tagged_server, audit_log_message);
                SET @audit_revision_id = LAST_INSERT_ID();
                SET @cascade_transaction = cascade_transaction;
            END IF""",
        ),
    )
    kit.mysql_create_procedure(
        f"createAuditEntryDHCP{v}",
        [
            "IN object_type_val VARCHAR(256)",
            "IN object_id_val BIGINT(20) UNSIGNED",
            "IN modification_type_val VARCHAR(32)",
        ],
        body(
            f"""
            IF @disable_audit IS NULL OR @disable_audit = 0 THEN
                INSERT INTO dhcp{v}_audit (object_type, object_id, modification_type, revision_id)
                    VALUES (
                        object_type_val,
                        object_id_val,
                        (SELECT m.id FROM modification AS m
                            WHERE m.modification_type = modification_type_val),
                        @audit_revision_id
                    );
            END IF"""
        ),
    )

    # An option change is audited as a change of the object that owns the option: the
    # option itself at global scope, else the subnet / shared network / pool's subnet, whose
    # modification_ts is bumped so that its own update trigger logs it.
    pools = [("5", f"dhcp{v}_pool", "pool_id")]
    if v == "6":
        pools.append(("6", "dhcp6_pd_pool", "pd_pool_id"))
    branches = [
        f"""
        ELSEIF scope_id = {scope} THEN
            SELECT p.subnet_id INTO owner_subnet FROM {table} AS p WHERE p.id = {param};
            UPDATE dhcp{v}_subnet AS s SET s.modification_ts = modification_ts
                WHERE s.subnet_id = owner_subnet"""
        for scope, table, param in pools
    ]
    kit.mysql_create_procedure(
        f"createOptionAuditDHCP{v}",
        [
            "IN modification_type VARCHAR(32)",
            "IN scope_id TINYINT(3) UNSIGNED",
            "IN option_id BIGINT(20) UNSIGNED",
            "IN subnet_id INT(10) UNSIGNED",
            "IN host_id INT(10) UNSIGNED",
            "IN network_name VARCHAR(128)",
            "IN pool_id BIGINT(20)",
            *(["IN pd_pool_id BIGINT(20)"] if v == "6" else []),
            "IN modification_ts TIMESTAMP",
        ],
        body(
            "DECLARE network_id VARCHAR(128)",
            "DECLARE owner_subnet INT(10) UNSIGNED",
            kit.compose(
                f"""
            IF @cascade_transaction IS NULL OR @cascade_transaction = 0 THEN
                IF scope_id = 0 THEN
                    CALL createAuditEntryDHCP{v}('dhcp{v}_options', option_id, modification_type);
                ELSEIF scope_id = 1 THEN
                    UPDATE dhcp{v}_subnet AS s SET s.modification_ts = modification_ts
                        WHERE s.subnet_id = subnet_id;
                ELSEIF scope_id = 4 THEN
                    SELECT n.id INTO network_id FROM dhcp{v}_shared_network AS n
                        WHERE n.name = network_name LIMIT 1;
                    UPDATE dhcp{v}_shared_network AS n SET n.modification_ts = modification_ts
                        WHERE n.id = network_id;
                <<pools>>;
                END IF;
            END IF""",
                pools=";\n".join(kit.compose(branch) for branch in branches),
            ),
        ),
    )


def _audit_calls(v: str, table: str, key: str) -> dict[str, str]:
    """The audit CALL for each trigger event of one config table."""
    call = f"CALL createAuditEntryDHCP{v}('{table}', {{row}}.{key}, '{{kind}}')"
    return {
        "INSERT": call.format(row="NEW", kind="create"),
        "UPDATE": call.format(row="NEW", kind="update"),
        "DELETE": call.format(row="OLD", kind="delete"),
    }


def _config_triggers(v: str) -> list[MySQLTrigger]:
    triggers: list[MySQLTrigger] = []
    suffix = {"INSERT": "AINS", "UPDATE": "AUPD", "DELETE": "ADEL"}

    # Plain audit: one entry per insert, update and delete.
    for table in (f"dhcp{v}_global_parameter", f"dhcp{v}_option_def", f"dhcp{v}_server"):
        for event, call in _audit_calls(v, table, "id").items():
            triggers.append(
                MySQLTrigger(f"{table}_{suffix[event]}", table, "AFTER", event, (call,))
            )

    # Networks and subnets also clear what depends on them, before the row goes.
    cleanups = {
        f"dhcp{v}_shared_network": (
            "id",
            [
                f"UPDATE dhcp{v}_subnet SET shared_network_name = NULL"
                " WHERE shared_network_name = OLD.name",
                f"DELETE FROM dhcp{v}_options WHERE shared_network_name = OLD.name",
            ],
        ),
        f"dhcp{v}_subnet": (
            "subnet_id",
            [
                f"DELETE FROM dhcp{v}_pool WHERE subnet_id = OLD.subnet_id",
                *(
                    ["DELETE FROM dhcp6_pd_pool WHERE subnet_id = OLD.subnet_id"]
                    if v == "6"
                    else []
                ),
                f"DELETE FROM dhcp{v}_options WHERE dhcp{v}_subnet_id = OLD.subnet_id",
            ],
        ),
    }
    for table, (key, cleanup) in cleanups.items():
        calls = _audit_calls(v, table, key)
        triggers += [
            MySQLTrigger(f"{table}_AINS", table, "AFTER", "INSERT", (calls["INSERT"],)),
            MySQLTrigger(f"{table}_AUPD", table, "AFTER", "UPDATE", (calls["UPDATE"],)),
            MySQLTrigger(f"{table}_BDEL", table, "BEFORE", "DELETE", (calls["DELETE"], *cleanup)),
        ]

    # Options belonging to a pool go with it.
    pools = [(f"dhcp{v}_pool", 5, "pool_id")]
    if v == "6":
        pools.append(("dhcp6_pd_pool", 6, "pd_pool_id"))
    for table, scope, column in pools:
        triggers.append(
            MySQLTrigger(
                f"{table}_BDEL",
                table,
                "BEFORE",
                "DELETE",
                (f"DELETE FROM dhcp{v}_options WHERE scope_id = {scope} AND {column} = OLD.id",),
            )
        )

    # Options: audited through their owner (createOptionAuditDHCPx).
    option_cols = [
        "scope_id",
        "option_id",
        f"dhcp{v}_subnet_id",
        "host_id",
        "shared_network_name",
        "pool_id",
    ]
    if v == "6":
        option_cols.append("pd_pool_id")
    for event, kind, row, ts in (
        ("INSERT", "create", "NEW", "NEW.modification_ts"),
        ("UPDATE", "update", "NEW", "NEW.modification_ts"),
        ("DELETE", "delete", "OLD", "NOW()"),
    ):
        args = ", ".join([f"'{kind}'", *(f"{row}.{col}" for col in option_cols), ts])
        triggers.append(
            MySQLTrigger(
                f"dhcp{v}_options_{suffix[event]}",
                f"dhcp{v}_options",
                "AFTER",
                event,
                (f"CALL createOptionAuditDHCP{v}({args})",),
            )
        )

    # Client classes: keep the evaluation order table in step, then audit.
    cc = f"dhcp{v}_client_class"
    calls = _audit_calls(v, cc, "id")
    triggers += [
        MySQLTrigger(
            f"{cc}_AINS",
            cc,
            "AFTER",
            "INSERT",
            (f"CALL setClientClass{v}Order(NEW.id, NEW.follow_class_name, NULL)", calls["INSERT"]),
        ),
        MySQLTrigger(
            f"{cc}_AUPD",
            cc,
            "AFTER",
            "UPDATE",
            (
                # Read back by checkDHCPvXClientClassKnownDependencyChange.
                "SET @depend_on_known_directly = OLD.depend_on_known_directly",
                "SET @client_class_id = NEW.id",
                f"CALL setClientClass{v}Order(NEW.id, NEW.follow_class_name,"
                " OLD.follow_class_name)",
                calls["UPDATE"],
            ),
        ),
        MySQLTrigger(f"{cc}_ADEL", cc, "AFTER", "DELETE", (calls["DELETE"],)),
        MySQLTrigger(
            f"{cc}_check_dependency_BINS",
            f"{cc}_dependency",
            "BEFORE",
            "INSERT",
            (f"CALL checkDHCPv{v}ClientClassDependency(NEW.class_id, NEW.dependency_id)",),
        ),
        MySQLTrigger(
            f"{cc}_dependency_AINS",
            f"{cc}_dependency",
            "AFTER",
            "INSERT",
            (f"CALL updateDHCPv{v}ClientClassKnownDependency(NEW.class_id, NEW.dependency_id)",),
        ),
    ]
    return triggers


# --- client class ordering and dependencies --------------------------------------------
#
# dhcpX_client_class_order gives every class a position (order_index): after the class
# named in follow_class_name, else last. A class may depend only on classes placed before
# it, and only on classes available to the same servers. depend_on_known_indirectly marks
# classes depending (through others) on the built-in KNOWN/UNKNOWN classes.


def _create_client_class_routines(v: str) -> None:
    cc = f"dhcp{v}_client_class"
    order = f"{cc}_order"
    position_of = (
        f"SELECT o.order_index FROM {cc} AS c JOIN {order} AS o ON o.class_id = c.id"
        " WHERE c.{where}"
    )

    kit.mysql_create_procedure(
        f"setClientClass{v}Order",
        [
            "IN id BIGINT UNSIGNED",
            "IN follow_class_name VARCHAR(128)",
            "IN old_follow_class_name VARCHAR(128)",
        ],
        body(
            "DECLARE after_position BIGINT UNSIGNED",
            "DECLARE problem TEXT",
            f"""
            SET @depend_on_known_indirectly = (
                SELECT depend_on_known_indirectly FROM {order} WHERE class_id = id
            )""",
            f"""
            IF @depend_on_known_indirectly IS NOT NULL
                AND ((follow_class_name IS NULL AND old_follow_class_name IS NULL)
                     OR follow_class_name = old_follow_class_name) THEN
                UPDATE {order} SET depend_on_known_indirectly = 0 WHERE class_id = id;
                LEAVE place_class;
            END IF""",
            f"""
            IF follow_class_name IS NOT NULL THEN
                SET after_position = ({position_of.format(where="name = follow_class_name")});
                IF after_position IS NULL THEN
                    SET problem = CONCAT('Class ', follow_class_name, ' does not exist.');
                    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
                END IF;
                IF EXISTS (SELECT 1 FROM {order} WHERE order_index = after_position + 1) THEN
                    UPDATE {order} SET order_index = order_index + 1
                        WHERE order_index >= after_position + 1
                        ORDER BY order_index DESC;
                END IF;
            ELSE
                SET after_position = (SELECT MAX(order_index) FROM {order});
                IF after_position IS NULL THEN
                    SET after_position = 0;
                END IF;
            END IF""",
            f"""
            IF EXISTS (
                SELECT 1 FROM {cc}_dependency AS d JOIN {order} AS o ON o.class_id = d.class_id
                    WHERE d.dependency_id = id AND o.order_index < after_position + 1
                    LIMIT 1
            ) THEN
                SET problem = CONCAT('Unable to move class with id ', id,
                                     ' because it would break its dependencies');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
            END IF""",
            f"""
            REPLACE INTO {order} (class_id, order_index, depend_on_known_indirectly)
                VALUES (id, after_position + 1, 0)""",
            label="place_class",
        ),
    )

    known_changed = "Class dependency on KNOWN/UNKNOWN built-in classes must not change."

    def fail(message: str) -> str:
        return f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'"

    kit.mysql_create_procedure(
        f"checkDHCPv{v}ClientClassDependency",
        ["IN class_id BIGINT UNSIGNED", "IN dependency_id BIGINT UNSIGNED"],
        body(
            "DECLARE class_position BIGINT UNSIGNED",
            "DECLARE dependency_position BIGINT UNSIGNED",
            "DECLARE problem TEXT",
            *(
                f"IF {condition} THEN {fail(message)}; END IF"
                for condition, message in (
                    ("class_id IS NULL", "Client class id must not be NULL."),
                    ("dependency_id IS NULL", "Class dependency id must not be NULL."),
                    ("class_id = dependency_id", "Client class must not have dependency on self."),
                )
            ),
            f"SET class_position = ({position_of.format(where='id = class_id')})",
            """
            IF class_position IS NULL THEN
                SET problem = CONCAT('Client class with id ', class_id, ' does not exist.');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
            END IF""",
            f"SET dependency_position = ({position_of.format(where='id = dependency_id')})",
            """
            IF dependency_position IS NULL THEN
                SET problem = CONCAT('Client class with id ', dependency_id, ' does not exist.');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
            END IF""",
            """
            IF dependency_position > class_position THEN
                SET problem = CONCAT('Client class with id ', class_id,
                                     ' must not depend on class defined later with id ',
                                     dependency_id);
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
            END IF""",
            # Every server the class is assigned to must see the dependency too (directly,
            # or through server id 1, "all").
            f"""
            IF EXISTS (
                SELECT 1 FROM {cc}_server AS mine
                    LEFT JOIN {cc}_server AS theirs
                        ON theirs.class_id = dependency_id
                        AND (theirs.server_id = 1 OR theirs.server_id = mine.server_id)
                    WHERE mine.class_id = class_id AND theirs.server_id IS NULL
                    LIMIT 1
            ) THEN
                SET problem = CONCAT('Unmet dependencies for client class with id ', class_id);
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = problem;
            END IF""",
        ),
    )

    kit.mysql_create_procedure(
        f"updateDHCPv{v}ClientClassKnownDependency",
        ["IN client_class_id BIGINT UNSIGNED", "IN dependency_id BIGINT UNSIGNED"],
        body(
            "DECLARE inherited TINYINT",
            f"SET inherited = (SELECT depend_on_known_directly FROM {cc} WHERE id = dependency_id)",
            f"""
            IF inherited = 0 THEN
                SET inherited = (
                    SELECT depend_on_known_indirectly FROM {order} WHERE class_id = dependency_id
                );
            END IF""",
            f"""
            IF inherited <> 0 THEN
                UPDATE {order} SET depend_on_known_indirectly = 1 WHERE class_id = client_class_id;
            END IF""",
        ),
    )

    # Called by Kea before committing a class update: the KNOWN/UNKNOWN dependency of a
    # class others depend on must not change (uses the variables the update trigger set).
    kit.mysql_create_procedure(
        f"checkDHCPv{v}ClientClassKnownDependencyChange",
        [],
        body(
            "DECLARE was_known TINYINT DEFAULT 0",
            "DECLARE is_known TINYINT DEFAULT 0",
            f"""
            IF @client_class_id IS NOT NULL THEN
                IF EXISTS (
                    SELECT 1 FROM {cc}_dependency WHERE dependency_id = @client_class_id LIMIT 1
                ) THEN
                    IF @depend_on_known_directly <> 0 OR @depend_on_known_indirectly <> 0 THEN
                        SET was_known = 1;
                    END IF;
                    SET is_known = (
                        SELECT depend_on_known_directly FROM {cc} WHERE id = @client_class_id
                    );
                    IF is_known = 0 THEN
                        SET is_known = (
                            SELECT depend_on_known_indirectly FROM {order}
                                WHERE class_id = @client_class_id
                        );
                    END IF;
                    IF was_known <> is_known THEN
                        {fail(known_changed)};
                    END IF;
                END IF;
            END IF""",
        ),
    )


# --- lease limits (libdhcp_limits) -----------------------------------------------------
#
# checkLeaseXLimits(user_context) returns '' when a new lease fits the limits a client's
# user context carries (ISC.limits.client-classes[], ISC.limits.subnet), else a text
# saying which limit is reached.

# (JSON key, word used in the message, lease6 lease_type)
LIMITS: dict[str, list[tuple[str, str, int | None]]] = {
    "4": [("address-limit", "address", None)],
    "6": [("address-limit", "address", 0), ("prefix-limit", "prefix", 2)],
}


def _create_limit_function(v: str) -> None:
    by_class = f"lease{v}_stat_by_client_class"
    stat = f"lease{v}_stat"

    def type_filter(lease_type: int | None) -> str:
        return "" if lease_type is None else f" AND lease_type = {lease_type}"

    def check(count_sql: str, key: str, word: str, what: str) -> str:
        return kit.compose(f"""
            SET lim = JSON_EXTRACT({{source}}, '$."{key}"');
            IF lim IS NOT NULL THEN
                SET cnt = ({count_sql});
                IF cnt IS NULL THEN
                    SET cnt = 0;
                END IF;
                IF lim <= cnt THEN
                    RETURN CONCAT('{word} limit ', lim, ' for {what}, current lease count ', cnt);
                END IF;
            END IF""")

    class_checks = ";\n".join(
        check(
            f"SELECT leases FROM {by_class} WHERE client_class = class_name{type_filter(lt)}",
            key,
            word,
            "client class \"', class_name, '\"",
        ).replace("{source}", "class_item")
        for key, word, lt in LIMITS[v]
    )
    subnet_checks = ";\n".join(
        check(
            f"SELECT leases FROM {stat} WHERE subnet_id = subnet{type_filter(lt)} AND state = 0",
            key,
            word,
            "subnet ID ', subnet, '",
        ).replace("{source}", "subnet_limits")
        for key, word, lt in LIMITS[v]
    )
    kit.mysql_create_function(
        f"checkLease{v}Limits",
        ["user_context TEXT"],
        "TEXT",
        body(
            "DECLARE class_list TEXT",
            "DECLARE class_item TEXT",
            "DECLARE class_name VARCHAR(255)",
            "DECLARE subnet_limits TEXT",
            "DECLARE n_classes INT",
            "DECLARE k INT",
            "DECLARE subnet INT",
            "DECLARE lim INT",
            "DECLARE cnt INT",
            """SET class_list = JSON_EXTRACT(user_context, '$."ISC"."limits"."client-classes"')""",
            "SET n_classes = JSON_LENGTH(class_list)",
            "SET k = 0",
            kit.compose(
                """
                WHILE k < n_classes DO
                    SET class_item = JSON_EXTRACT(class_list, CONCAT('$[', k, ']'));
                    SET class_name = JSON_UNQUOTE(JSON_EXTRACT(class_item, '$.name'));
                    <<checks>>;
                    SET k = k + 1;
                END WHILE""",
                checks=class_checks,
            ),
            "SET subnet_limits = JSON_EXTRACT(user_context, '$.ISC.limits.subnet')",
            "SET subnet = JSON_EXTRACT(subnet_limits, '$.id')",
            subnet_checks,
            "RETURN ''",
        ),
        characteristics=["READS SQL DATA"],
    )


# --- lease dump and upload (kea-admin lease-dump / lease-upload) -----------------------
#
# One row per CSV column of Kea's memfile lease files (kit.CsvColumn).

LEASE_CSV = {
    "4": [
        CsvColumn("address", "INET_NTOA({c})", "INET_ATON({c})", "VARCHAR(15)"),
        CsvColumn("hwaddr", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(20)"),
        CsvColumn("client_id", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(128)"),
        CsvColumn("valid_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("expire", kit.CSV_TIME_OUT, kit.CSV_TIME_IN, "BIGINT UNSIGNED"),
        CsvColumn("subnet_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("fqdn_fwd", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("fqdn_rev", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("hostname", kit.CSV_COMMA_OUT, kit.CSV_COMMA_IN, "VARCHAR(255)"),
        CsvColumn("state", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("user_context", kit.CSV_CONTEXT_OUT, kit.CSV_COMMA_IN, "TEXT"),
    ],
    "6": [
        CsvColumn("address", kit.CSV_SAME, kit.CSV_SAME, "VARCHAR(39)"),
        CsvColumn("duid", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(128)"),
        CsvColumn("valid_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("expire", kit.CSV_TIME_OUT, kit.CSV_TIME_IN, "BIGINT UNSIGNED"),
        CsvColumn("subnet_id", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("pref_lifetime", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("lease_type", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("iaid", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("prefix_len", kit.CSV_SAME, kit.CSV_SAME, "TINYINT UNSIGNED"),
        CsvColumn("fqdn_fwd", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("fqdn_rev", kit.CSV_SAME, kit.CSV_SAME, "TINYINT"),
        CsvColumn("hostname", kit.CSV_COMMA_OUT, kit.CSV_COMMA_IN, "VARCHAR(255)"),
        CsvColumn("hwaddr", kit.CSV_HEX_OUT, kit.CSV_HEX_IN, "VARCHAR(64)"),
        CsvColumn("state", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
        CsvColumn("user_context", kit.CSV_CONTEXT_OUT, kit.CSV_COMMA_IN, "TEXT"),
        CsvColumn("hwtype", kit.CSV_SAME, kit.CSV_SAME, "SMALLINT"),
        CsvColumn("hwaddr_source", kit.CSV_SAME, kit.CSV_SAME, "INT UNSIGNED"),
    ],
}


def _create_helper_functions() -> None:
    # Hex digits "0a1b2c" -> "0a:1b:2c" (odd length gets a leading zero), lower case.
    kit.mysql_create_function(
        "colonSeparatedHex",
        ["hex VARCHAR(64)"],
        "VARCHAR(64)",
        body(
            "DECLARE pos INT DEFAULT 3",
            "DECLARE digits INT",
            "DECLARE pairs VARCHAR(64)",
            "SET digits = LENGTH(hex)",
            """
            IF MOD(digits, 2) = 1 THEN
                SET hex = CONCAT('0', hex);
                SET digits = digits + 1;
            END IF""",
            "SET pairs = SUBSTR(hex, 1, 2)",
            """
            WHILE pos < digits DO
                SET pairs = CONCAT(pairs, ':', SUBSTR(hex, pos, 2));
                SET pos = pos + 2;
            END WHILE""",
            "RETURN LOWER(pairs)",
        ),
        characteristics=["DETERMINISTIC"],
    )
    # 1 when the server has the JSON functions the client-class statistics need.
    kit.mysql_create_function(
        "isJsonSupported",
        [],
        "BOOL",
        body(
            "DECLARE probe BOOL",
            "DECLARE CONTINUE HANDLER FOR SQLEXCEPTION RETURN FALSE",
            """SET probe = JSON_EXTRACT('{"probe": 1}', '$.probe')""",
            "RETURN TRUE",
        ),
        characteristics=["DETERMINISTIC"],
    )


def upgrade() -> None:
    _create_lease_tables()
    _create_host_tables()
    _create_config_lookup_tables()
    for v in "46":
        _create_config_tables(v)
    _insert_rows()

    _create_helper_functions()
    for fam in (LEASE4, LEASE6):
        _create_lease_stat_routines(fam)
    for v in "46":
        _create_limit_function(v)
        kit.mysql_create_lease_csv_routines(v, LEASE_CSV[v])
        _create_audit_routines(v)
        _create_client_class_routines(v)

    kit.mysql_create_triggers(_lease_triggers(LEASE4) + _lease_triggers(LEASE6))
    kit.mysql_create_triggers(_config_triggers("4") + _config_triggers("6"))

    # Last, so that a database whose build stopped half way shows no version.
    kit.insert_rows("schema_version", ("version", "minor"), [(14, 0)])


def downgrade() -> None:
    raise NotImplementedError("Kea schemas are never downgraded")
