"""PostgreSQL: its SQL, and its behaviour where it differs from MySQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from keadb_cli.db.backends.base import Backend, build_or_refuse, count_of, scratch_name, short
from keadb_cli.errors import CannotVerify, ExitCode, KeaDbError, QueryError, Refusal

if TYPE_CHECKING:
    from keadb_cli.db.node import Node, Replicas
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session
    from keadb_cli.schema.catalog import Catalog


# Run-time privileges (preflight): every table and sequence of the schema, every routine.
_PG_TABLES = (
    "SELECT c.relname, c.relkind, "
    "has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'), "
    "has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), "
    "CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE') END "
    "FROM pg_class c WHERE c.relnamespace = "
    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
    "AND c.relkind IN ('r', 'p', 'S') ORDER BY c.relname"
)
_PG_ROUTINES = (
    "SELECT DISTINCT p.proname, has_function_privilege(p.oid, 'EXECUTE') FROM pg_proc p "
    "WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
    "ORDER BY 1"
)


# The node (keadb_cli.db.node): in recovery, and primary_conninfo where this user may read
# it (superuser or pg_read_all_settings; PostgreSQL 12+, before that it is in
# recovery.conf). Only its host and port are ever read out of it.
_PG_NODE = ("SELECT pg_is_in_recovery(), "
            "(SELECT setting FROM pg_settings WHERE name = 'primary_conninfo')")


# A primary's standbys (keadb_cli.db.node.Replicas). Every user sees one row per WAL sender;
# only pg_read_all_stats (pg_monitor) or a superuser sees its details (the others NULL).
_PG_STANDBYS = (
    "SELECT application_name, host(client_addr), client_port::text, state, sync_state, "
    "EXTRACT(EPOCH FROM replay_lag)::text, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text "
    "FROM pg_stat_replication ORDER BY application_name, pid"
)
HIDDEN_DETAILS = ("this user sees no state, address or lag of a standby: grant it pg_monitor "
                  "(or pg_read_all_stats) to see them")


_COPY_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_COPY_CHARACTERS = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t",
                    b"v": b"\v"}


def _unescape(match: re.Match[bytes]) -> bytes:
    return _COPY_CHARACTERS.get(match.group(1), match.group(1))


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _true(value: str | None) -> bool:
    return value in ("t", "true", "True", "1")


class PostgreSQLBackend(Backend):
    """Transactional DDL, a session-level advisory lock that waits as long as
    ``lock_timeout`` says, scratch schemas inside a rolled-back transaction."""

    # stats: the class counters as Kea's triggers count them (an empty user context is
    # no context; each array element's JSON text less its quotes).
    stats_snapshot_begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    stats_write_begin = "BEGIN"
    class_count_sql: ClassVar[dict[str, str]] = {
        table: (
            f"SELECT btrim(c.value::text, '\"'){extra}, COUNT(*) FROM {table} l, "
            "LATERAL (SELECT CASE WHEN length(l.user_context) > 0 THEN l.user_context::json "
            "END AS doc) AS u, "
            "json_array_elements(CASE WHEN json_typeof(u.doc->'ISC'->'client-classes') = "
            "'array' THEN u.doc->'ISC'->'client-classes' END) AS c(value) "
            "WHERE l.state IN ({states}) AND l.user_context LIKE '%client-classes%' "
            f"GROUP BY 1{extra_group}"
        )
        for table, extra, extra_group in (("lease4", "", ""),
                                          ("lease6", ", l.lease_type", ", 2"))
    }

    def stats_lock_sql(self, tables: Sequence[Any]) -> list[str]:
        """The lease tables in SHARE mode (no lease write until the end), then the
        rewritten tables EXCLUSIVE (no other recount), in that order: a Kea write that
        holds a lease table waits for nothing of ours."""
        names = ", ".join(t.name for t in tables)
        return ["LOCK TABLE lease4, lease6 IN SHARE MODE",
                *([f"LOCK TABLE {names} IN EXCLUSIVE MODE"] if names else [])]

    def read_node(self, session: Session) -> Node:
        from keadb_cli.db.node import PRIMARY, STANDBY, UNKNOWN, Node, conninfo_address

        try:
            rows = session.query(_PG_NODE)
        except QueryError as err:
            return Node(UNKNOWN, note=f"cannot read the role: {short(err)[:160]}")
        if not rows or len(rows[0]) < 2:
            return Node(UNKNOWN, note="the server did not say whether it is in recovery")
        recovery, conninfo = rows[0][:2]
        if not _true(recovery):
            return Node(PRIMARY, in_recovery=False)
        primary = conninfo_address(conninfo)
        note = "" if conninfo is not None else (
            "primary_conninfo is not readable by this user (it needs superuser or "
            "pg_read_all_settings; before PostgreSQL 12 it is in recovery.conf)")
        return Node(STANDBY, in_recovery=True, primary=primary,
                    primary_from="primary_conninfo" if primary else "", note=note)

    def read_replicas(self, session: Session) -> Replicas | None:
        from keadb_cli.db.node import Replica, Replicas, address

        try:
            rows = session.query(_PG_STANDBYS)
        except QueryError as err:
            return Replicas("pg_stat_replication", count=None,
                            note=f"cannot read pg_stat_replication: {short(err)[:160]}")
        standbys = []
        for name, host, port, state, sync_state, lag, behind in (r[:7] for r in rows):
            where = address(host, port if port and port != "-1" else None) if host else None
            lag_seconds = _number(lag)
            behind_bytes = _number(behind)
            standbys.append(Replica(
                name=name, address=where, state=state, sync_state=sync_state,
                replay_lag=round(lag_seconds, 3) if lag_seconds is not None else None,
                replay_bytes=int(behind_bytes) if behind_bytes is not None else None))
        hidden = any(r.hidden for r in standbys)
        return Replicas("pg_stat_replication", tuple(standbys), len(standbys),
                        note=HIDDEN_DETAILS if hidden else "")

    def runtime_missing(self, session: Session, wanted: tuple[str, ...], writes: bool,
                        listed: Callable[[list[str]], str]) -> list[str]:
        missing: dict[str, list[str]] = {}
        schema, usable = session.query(
            "SELECT current_schema(), has_schema_privilege(current_schema(), 'USAGE')")[0]
        if not _true(usable):
            return [f"USAGE on schema {schema} (nothing in it can be reached)"]
        for name, kind, *flags in session.query(_PG_TABLES):
            sequence_usage = flags[4]
            if kind == "S":
                if writes and not _true(sequence_usage):
                    missing.setdefault("USAGE", []).append(name or "")
                continue
            for privilege, flag in zip(("SELECT", "INSERT", "UPDATE", "DELETE"), flags[:4],
                                       strict=True):
                if privilege in wanted and not _true(flag):
                    missing.setdefault(privilege, []).append(name or "")
        if writes:
            for name, flag in session.query(_PG_ROUTINES):
                if not _true(flag):
                    missing.setdefault("EXECUTE", []).append(name or "")
        return [f"{p} on {listed(names)}" for p, names in missing.items()]

    def check_privileges(self, session: Session, plan: ConnectPlan,
                         node: Node | None = None) -> None:
        rows = session.query(
            "SELECT current_schema(), "
            "COALESCE(has_schema_privilege(current_schema(), 'CREATE'), false), "
            "EXISTS (SELECT 1 FROM pg_language WHERE lanname = 'plpgsql')"
        )
        schema, can_create, plpgsql = rows[0]
        if schema is None:
            raise Refusal("EMPTY", ExitCode.PRIVILEGES,
                           "no schema on the search_path to create Kea's tables in")
        if can_create != "True" and can_create != "t":
            raise Refusal(
                "EMPTY", ExitCode.PRIVILEGES,
                f"user {plan.user} may not create objects in schema {schema}: "
                f"GRANT CREATE ON SCHEMA {schema} TO {plan.user} (or make it the database owner)",
            )
        if plpgsql not in ("True", "t"):
            raise Refusal("EMPTY", ExitCode.PRIVILEGES,
                           "the plpgsql language is not installed in this database")

    def namespace(self, session: Session) -> str:
        return session.query("SELECT current_schema()")[0][0] or ""

    def build_scratch(self, session: Session, script: str,
                      read: Callable[[], Catalog]) -> Catalog:
        name = scratch_name()
        session.query("BEGIN")
        try:
            try:
                session.query(f'CREATE SCHEMA "{name}"')
            except QueryError as err:
                raise CannotVerify(
                    "verify builds the expected schema in a scratch schema it rolls back, and "
                    f"this user may not create one ({short(err)}): grant CREATE ON DATABASE to "
                    "it, or verify as the database owner", exit_code=ExitCode.PRIVILEGES) from None
            session.query(f'SET LOCAL search_path TO "{name}"')
            build_or_refuse(lambda: session.query(script))
            return read()
        finally:
            if not session.closed:
                with contextlib.suppress(KeaDbError):
                    session.query("ROLLBACK")

    def read_catalog(self, dbapi_connection: Any,
                     row_tables: Collection[str] | None = None) -> Catalog:
        from keadb_cli.schema import catalog_pgsql

        return catalog_pgsql.read(dbapi_connection, row_tables)

    # -- purge: timestamptz compares as an instant; logs has no key, so rows go by ctid

    epoch_sql: ClassVar[str] = "SELECT floor(extract(epoch FROM now()))::bigint::text"

    def moment_sql(self, epoch: int) -> str:
        return f"to_timestamp({int(epoch)})"

    def old_logs_batch_sql(self, cutoff: str, limit: int) -> str:
        return (f"DELETE FROM logs WHERE ctid IN (SELECT ctid FROM logs "
                f"WHERE timestamp < {cutoff} LIMIT {int(limit)})")

    def delete_counted(self, session: Session, delete_sql: str) -> int:
        rows = session.query(f"WITH gone AS ({delete_sql} RETURNING 1) "
                             "SELECT count(*)::text FROM gone")
        return count_of(rows)

    iaid_signed = True
    import_columns_sql = ("SELECT column_name FROM information_schema.columns WHERE "
                          "table_schema = current_schema() AND table_name = '{table}'")

    def import_bytes(self, data: bytes) -> str:
        return f"'\\x{data.hex()}'::bytea"

    def import_text(self, text: str) -> str:
        data = text.encode("utf-8", "surrogateescape")
        return f"convert_from('\\x{data.hex()}'::bytea, 'UTF8')" if data else "''"

    def import_expire(self, epoch: int) -> str:
        return f"to_timestamp({int(epoch)})"

    def import_read(self, column: str, as_text: bool = False) -> str:
        kind, _, name = column.rpartition(":")
        if kind == "hex":
            return f"encode({name}, 'hex')"
        if kind == "epoch":
            return f"extract(epoch from {name})::bigint"
        if kind == "int":
            return f"{name}::int"
        if kind == "address6" and not as_text:
            return f"host({name})"
        return name

    def import_address6(self, packed: bytes, text: str, binary: bool,
                        as_text: bool = False) -> str:
        return f"'{text}'" if as_text else f"'{text}'::inet"

    # lease6.address: inet from schema 18.0 (Kea 2.4), varchar(39) before
    address_type_sql = ("SELECT data_type FROM information_schema.columns WHERE table_schema = "
                        "current_schema() AND table_name = '{table}' AND column_name = 'address'")

    copy_columns_sql = ("SELECT column_name, data_type, udt_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = '{table}' "
                        "ORDER BY ordinal_position")

    def copy_setup(self, session: Session) -> None:
        # timestamptz is an instant already; a column without time zone is read and
        # written as UTC
        session.query("SET TIME ZONE 'UTC'")

    def copy_kind(self, data_type: str, column_type: str) -> tuple[str, bool, bool]:
        data_type = data_type.lower()
        if data_type == "boolean":
            return "bool", False, False
        if data_type in ("smallint", "integer", "bigint", "numeric"):
            # Kea keeps its uint32 values (an IAID) in int4 as they wrap
            return "int", data_type == "integer", False
        if data_type == "bytea":
            return "bytes", False, False
        if data_type in ("inet", "cidr"):
            return "addr6", False, False
        if data_type.startswith("timestamp"):
            return "time", False, False
        return "text", False, False

    def copy_read(self, column: str, kind: str, binary: bool) -> str:
        if kind == "bytes":
            return f"encode({column}, 'hex')"
        if kind == "addr6":
            return f"host({column})"
        if kind == "time":
            return f"floor(extract(epoch FROM {column}))::bigint"
        if kind == "bool":
            return f"{column}::int"
        return column

    def copy_bool(self, value: bool) -> str:
        return "TRUE" if value else "FALSE"

    def copy_triggers_off(self, session: Session, tables: Sequence[str]) -> bool:
        # Each statistics trigger updates the same few counter rows: inside one transaction
        # every update adds a row version the next one walks past, so a large copy slows
        # down quadratically. Disabled inside the transaction (a rollback restores them;
        # the lease tables are locked until it ends); the owner of the tables only.
        session.query("SAVEPOINT keadb_copy_triggers")
        try:
            for table in tables:
                session.query(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        except QueryError:
            session.query("ROLLBACK TO SAVEPOINT keadb_copy_triggers")
            return False
        session.query("RELEASE SAVEPOINT keadb_copy_triggers")
        return True

    def copy_triggers_on(self, session: Session, tables: Sequence[str]) -> None:
        for table in tables:
            session.query(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    def copy_fix_sequence(self, session: Session, table: str, column: str) -> None:
        session.query(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                      f"GREATEST(COALESCE(MAX({column}), 0), 1), MAX({column}) IS NOT NULL) "
                      f"FROM {table}")

    def lease_dump_sql(self, family: int) -> tuple[str, str]:
        return (f"SELECT * FROM lease{family}DumpHeader()",
                f"SELECT * FROM lease{family}DumpData()")

    def lease_dump_copy(self, family: int) -> str | None:
        return f"COPY (SELECT * FROM lease{family}DumpData()) TO STDOUT"

    def lease_dump_copy_line(self, data: bytes) -> bytes:
        # COPY's text format: tabs between fields, \N for NULL, and a backslash escape for
        # a backslash and for \b \f \n \r \t \v inside a value. Without a backslash the
        # line has neither escapes nor NULLs.
        if b"\\" not in data:
            return data.replace(b"\t", b",")
        # NULLs only (a backslash inside a value is doubled, so "\N" between two
        # separators is a NULL): emptied, twice for neighbours
        line = b"\t" + data.rstrip(b"\n") + b"\t"
        line = line.replace(b"\t\\N\t", b"\t\t").replace(b"\t\\N\t", b"\t\t")
        if b"\\" not in line:
            return line[1:-1].replace(b"\t", b",") + b"\n"
        fields = data.rstrip(b"\n").split(b"\t")
        return b",".join(b"" if field == b"\\N" else _COPY_ESCAPE.sub(_unescape, field)
                         for field in fields) + b"\n"

    def lease_dump_line(self, row: tuple[str | None, ...]) -> str:
        # psql's unaligned, tuples-only output with ',' between fields: values as the
        # server sends them (nothing escaped), NULL as an empty field.
        return ",".join(value or "" for value in row) + "\n"

    def quote_identifier(self, name: str) -> str:
        from keadb_cli.schema import catalog_pgsql

        return catalog_pgsql.quote(name)


POSTGRESQL = PostgreSQLBackend(
    type="postgresql",
    display="PostgreSQL",
    default_port=5432,
    admin_name="pgsql",
    version_sql="SELECT version, minor FROM schema_version",
    tables_sql=(
        "SELECT c.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
        "AND n.nspname = ANY (current_schemas(false)) ORDER BY 1"
    ),
    routines_sql=(
        "SELECT p.proname FROM pg_catalog.pg_proc p "
        "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = ANY (current_schemas(false)) ORDER BY 1"
    ),
    read_only_begin="BEGIN READ ONLY",
    lock_sql="SELECT pg_advisory_lock(hashtext('kea-db-init'))",
    unlock_sql="SELECT pg_advisory_unlock(hashtext('kea-db-init'))",
    sqlalchemy_driver="postgresql+psycopg",
    missing_table_codes=("42P01",),
    transactional_ddl=True,
    library="libpq",
    library_module="keadb_cli.db.libpq",
    soname="libpq.so.5",
    driver="psycopg",
    password_variables=("PGPASSWORD",),
    port_variable="PGPORT",
    host_lists=True,
    kea_hook="libdhcp_pgsql.so",
    max_connections_sql="SHOW max_connections",
    lock_wait_sql="SET lock_timeout = {ms}",
    lock_wait_reset_sql="SET lock_timeout = 0",
    lock_timeout_code="55P03",
    other_sessions_sql=(
        "SELECT pid::text, COALESCE(usename, ''), COALESCE(client_addr::text, 'local'), "
        "COALESCE(application_name, '') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' ORDER BY pid"
    ),
    row_estimates_sql=(
        # reltuples is what the last ANALYZE or VACUUM saw; n_live_tup follows every
        # write since (a table filled since then would otherwise count as empty).
        "SELECT c.relname, GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0)::bigint::text "
        "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
        "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = "
        "current_schema()) AND c.relkind = 'r'"
    ),
    migrations_folder="postgresql",
    revision_prefix="pgsql",
    alembic_dialect="postgresql",
)
