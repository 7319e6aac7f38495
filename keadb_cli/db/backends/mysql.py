"""MySQL and MariaDB: their SQL, and their behaviour where it differs from PostgreSQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar

from keadb_cli.db.backends.base import Backend, build_or_refuse, count_of, scratch_name, short
from keadb_cli.errors import CannotVerify, ExitCode, KeaDbError, QueryError, Refusal

if TYPE_CHECKING:
    from keadb_cli.db.cluster import ClusterSessions
    from keadb_cli.db.node import Node, Replicas
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session
    from keadb_cli.schema.catalog import Catalog

# The privileges Kea's schema needs on MySQL (tables, keys, triggers, routines, lookup rows).
MYSQL_PRIVILEGES = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
    "REFERENCES", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE",
)

# The current user as information_schema's privilege views spell a GRANTEE ('u'@'h').
MYSQL_GRANTEE = (
    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
)
# The privileges the current user holds on every database or on this one.
MYSQL_GRANTED_SQL = (
    f"SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES "
    f"WHERE GRANTEE = {MYSQL_GRANTEE} "
    f"UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
    f"WHERE GRANTEE = {MYSQL_GRANTEE} AND DATABASE() LIKE TABLE_SCHEMA"
)

_DELIMITER_RE = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.IGNORECASE)


def mysql_statements(script: str) -> list[str]:
    """Split a MySQL script as the mariadb client does for kea-db's rendering: statements
    end with the current delimiter at the end of a line; ``DELIMITER x`` changes it."""
    statements: list[str] = []
    delimiter = ";"
    buffer: list[str] = []
    for line in script.splitlines():
        match = _DELIMITER_RE.match(line)
        if match and not buffer:
            delimiter = match.group(1)
            continue
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        stripped = line.rstrip()
        if stripped.endswith(delimiter):
            buffer.append(stripped[: len(stripped) - len(delimiter)])
            statement = "\n".join(buffer).strip()
            if statement:
                statements.append(statement)
            buffer = []
        else:
            buffer.append(line)
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer).strip())
    return statements


# Run-time privileges (preflight): grants on single tables, and the base tables.
_MYSQL_TABLE_GRANTS = (
    f"SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
    f"WHERE GRANTEE = {MYSQL_GRANTEE} AND TABLE_SCHEMA = DATABASE()"
)
_MYSQL_TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
    "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
)


# sql_mode flags under which kea-db's SQL (and Kea's) would read as other SQL, or behave
# otherwise inside a stored routine: double-quoted strings as names (ANSI_QUOTES, ANSI),
# '||' as concatenation, backslashes kept in string literals (Kea's own script then stores
# JSON paths such as '\$[' that match nothing), a space after a function name, NOT's
# precedence, '' as NULL, MariaDB's Oracle parser. Kea's script fails under some of them
# and builds routines that misbehave under others; kea-db builds without them what Kea's
# script builds where they are off.
TEXT_MODES = frozenset({"ANSI", "ANSI_QUOTES", "PIPES_AS_CONCAT", "NO_BACKSLASH_ESCAPES",
                        "IGNORE_SPACE", "HIGH_NOT_PRECEDENCE", "EMPTY_STRING_IS_NULL",
                        "ORACLE", "SIMULTANEOUS_ASSIGNMENT"})


def build_sql_mode(global_mode: str) -> str:
    """The sql_mode kea-db creates MySQL objects under: the server's global one without
    :data:`TEXT_MODES`."""
    return ",".join(m for m in global_mode.split(",") if m and m.upper() not in TEXT_MODES)


# The node (keadb_cli.db.node): read_only and Galera's wsrep_* in one query, from the
# tables every user may read. MariaDB has no super_read_only; Oracle MySQL (and Percona
# XtraDB Cluster) has its variables in performance_schema, readable by every user.
_WSREP_VARIABLES = ("wsrep_on", "wsrep_osu_method")
_WSREP_STATUS = ("wsrep_cluster_size", "wsrep_cluster_status", "wsrep_local_state_comment")
_NODE_SQL = {
    "mariadb": (
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
        "WHERE VARIABLE_NAME IN ('READ_ONLY', 'WSREP_ON', 'WSREP_OSU_METHOD') UNION ALL "
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
        "WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS', "
        "'WSREP_LOCAL_STATE_COMMENT')"
    ),
    "mysql": (
        "SELECT 'read_only', @@GLOBAL.read_only UNION ALL "
        "SELECT 'super_read_only', @@GLOBAL.super_read_only UNION ALL "
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM performance_schema.global_variables "
        "WHERE VARIABLE_NAME IN ('wsrep_on', 'wsrep_OSU_method') UNION ALL "
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM performance_schema.global_status "
        "WHERE VARIABLE_NAME IN ('wsrep_cluster_size', 'wsrep_cluster_status', "
        "'wsrep_local_state_comment')"
    ),
}
# Without performance_schema access: the read-only flags alone.
_NODE_FLAGS_SQL = "SELECT 'read_only', @@GLOBAL.read_only UNION ALL " \
    "SELECT 'super_read_only', @@GLOBAL.super_read_only"
# A replica's source: host (column 2) and port (column 4) in both flavours' layout. It
# needs REPLICATION CLIENT / REPLICA MONITOR (or SUPER), which Kea's user rarely has.
_SOURCE_SQL = {"mariadb": "SHOW SLAVE STATUS", "mysql": "SHOW REPLICA STATUS"}
# A primary's replicas: server id (column 1), host (2, empty unless the replica sets
# report_host) and port (3). It needs REPLICATION MASTER ADMIN (MariaDB 10.5.2+) or
# REPLICATION SLAVE (MySQL), which Kea's user rarely has.
_REPLICAS_SQL = {"mariadb": "SHOW SLAVE HOSTS", "mysql": "SHOW REPLICAS"}
_REPLICAS_PRIVILEGE = {"mariadb": "REPLICATION MASTER ADMIN", "mysql": "REPLICATION SLAVE"}


# A Galera node's view of its cluster: every node's client address (host:port, comma
# separated: wsrep_node_incoming_address of each, resolved by the server when AUTO), this
# node's identity in the group, and the cluster's.
_CLUSTER_SQL = {
    "mariadb": (
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
        "WHERE VARIABLE_NAME IN ('WSREP_INCOMING_ADDRESSES', 'WSREP_GCOMM_UUID', "
        "'WSREP_CLUSTER_STATE_UUID')"
    ),
    "mysql": (
        "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM performance_schema.global_status "
        "WHERE VARIABLE_NAME IN ('wsrep_incoming_addresses', 'wsrep_gcomm_uuid', "
        "'wsrep_cluster_state_uuid')"
    ),
}
# One listed client address: host:port, or [v6]:port.
_NODE_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")
# Reads wait until this node has applied what the cluster committed before them
# (wsrep_sync_wait bit 1: SELECT), so that the state init and upgrade read again under the
# cluster-wide lock includes what a command through another node did just before.
_CAUSAL_READS_SQL = "SET SESSION wsrep_sync_wait = 1"


class MySQLBackend(Backend):
    """DDL that commits itself, GET_LOCK, scratch databases, two server flavours
    (MariaDB and Oracle MySQL), and the data traps of MySQL's upgrade steps."""

    # Rows a step cannot convert (MySQL 18 -> 19 stores IPv6 addresses as 16 bytes): text
    # that INET6_ATON cannot read, and two spellings of one address, which become one key.
    # Kea's step stops on them halfway; kea-db refuses before any change, with the rows
    # named. The screens (see Backend.address_traps) read lease6 once for all three traps:
    # two rows of lease6 can become one key only if one of them is not spelt as
    # INET6_NTOA spells its bytes (lease6's primary key up to 18.0 is the address text:
    # two rows never have the same bytes there, and a lease6 whose primary key is not the
    # address alone is screened as if every row could be), so the GROUP BY over the whole
    # table, which sorts it, runs only when such rows exist (Kea writes the canonical text).
    address_traps = tuple(
        (table, "mysql_19_0", sql.format(table=table), what,
         screen.format(table=table) if table == "lease6" else "")
        for table in ("lease6", "ipv6_reservations")
        for sql, what, screen in (
            ("SELECT address FROM {table} WHERE INET6_ATON(address) IS NULL "
             "ORDER BY 1 LIMIT 11", "is not an IPv6 address", "INET6_ATON(address) IS NULL"),
            ("SELECT MIN(address) FROM {table} GROUP BY INET6_ATON(address) "
             "HAVING COUNT(*) > 1 ORDER BY 1 LIMIT 11", "is the same address as another row's",
             "NOT (CAST(INET6_NTOA(INET6_ATON(address)) AS BINARY) <=> CAST(address AS BINARY)"
             " AND (SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM "
             "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
             "TABLE_NAME = '{table}' AND INDEX_NAME = 'PRIMARY') <=> 'address')"),
        )
    )
    # Lease rows whose user context is not JSON (see keadb_cli.schema.guards: PostgreSQL
    # has no such trap).
    bad_context_sql = ("SELECT {key} FROM {table} WHERE user_context IS NOT NULL AND "
                       "JSON_VALID(user_context) = 0 ORDER BY 1 LIMIT 11")
    bad_context_screen = "user_context IS NOT NULL AND JSON_VALID(user_context) = 0"
    # How a lease row is named in a finding: its address as text. lease6.address is text
    # up to schema 18.0 and 16 bytes after: the column's type says which (a run resumed
    # past 18 -> 19 has binary addresses under an older recorded schema). Each expression
    # has one branch, so the column's character set never meets another (latin1 tables).
    lease_keys: ClassVar[dict[str, tuple[str, str]]] = {
        "lease4": ("INET_NTOA(address)", "INET_NTOA(address)"),
        "lease6": ("INET6_NTOA(address)", "address"),
    }
    address_type_sql = ("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                        "DATABASE() AND TABLE_NAME = '{table}' AND COLUMN_NAME = 'address'")
    # stats: the class counters as Kea's triggers count them (JSON_UNQUOTE of each element
    # of ISC.client-classes; a user context that is not JSON is none).
    stats_snapshot_begin = "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT"
    stats_write_begin = "START TRANSACTION"
    stats_read_lock = " LOCK IN SHARE MODE"
    class_count_sql: ClassVar[dict[str, str]] = {
        table: (
            f"SELECT c.class{extra}, COUNT(*) FROM {table} l, JSON_TABLE(JSON_EXTRACT("
            "IF(JSON_VALID(l.user_context), l.user_context, NULL), "
            "'$.\"ISC\".\"client-classes\"'), '$[*]' COLUMNS (class VARCHAR(255) PATH '$')) "
            "AS c WHERE l.state IN ({states}) AND l.user_context LIKE '%client-classes%' "
            f"GROUP BY c.class{extra}"
        )
        for table, extra in (("lease4", ""), ("lease6", ", l.lease_type"))
    }

    def read_deadline(self, plan: ConnectPlan) -> tuple[float, str]:
        """As :meth:`Backend.read_deadline`, or the entry's read-timeout when it is set and
        larger: Kea itself waits that long for each read, so a check does not give up
        sooner than Kea would."""
        seconds, source = super().read_deadline(plan)
        if plan.read_timeout and plan.read_timeout > seconds:
            return plan.read_timeout, "read-timeout"
        return seconds, source

    def open_cluster(self, session: Session, plan: ConnectPlan, node: Node) -> ClusterSessions:
        """On a Galera node: a session on every other node of the cluster, at the client
        addresses the cluster lists (``wsrep_incoming_addresses``), with the same user,
        password and TLS. GET_LOCK and PROCESSLIST are each node's own, so the lock and
        the other-sessions check must be taken and read on every node to hold for the
        cluster.

        Raises:
            KeaDbError: NODE_NOT_WRITABLE when the cluster does not list a usable client
                address for each of its nodes, or an address leads to no node of it;
                UNREACHABLE, DENIED or a TLS code when a node cannot be logged in to.
        """
        import dataclasses

        from keadb_cli.db.cluster import ClusterSessions
        from keadb_cli.db.session import open_session
        from keadb_cli.text import shown

        if node.galera is None:
            return super().open_cluster(session, plan, node)
        where = f"{self.display} {plan.where}"
        size = node.galera.cluster_size or 0
        flavour = self.flavour(session)
        facts = self._cluster_facts(session, flavour, where)
        listed = sorted({a.strip() for a in (facts.get("wsrep_incoming_addresses") or "")
                         .split(",") if a.strip()})
        usable = [a for a in listed if _NODE_ADDRESS.fullmatch(a)]
        if not listed or len(usable) != len(listed) or len(listed) < size:
            said = shown(facts.get("wsrep_incoming_addresses") or "empty", 200)
            raise KeaDbError(
                f"{where} is a node of a Galera cluster of {size or 'unknown'} nodes whose "
                f"wsrep_incoming_addresses ({said}) "
                "does not give each node's client address: init and upgrade take their lock "
                "and look for other sessions on every node, so they must reach each; set "
                "wsrep_node_incoming_address (host:port) on every node",
                exit_code=ExitCode.NODE_NOT_WRITABLE)
        own_uuid = facts.get("wsrep_gcomm_uuid") or ""
        cluster_uuid = facts.get("wsrep_cluster_state_uuid") or ""
        own_address = ""
        peers: dict[str, Session] = {}
        try:
            for listed_address in listed:
                match = _NODE_ADDRESS.fullmatch(listed_address)
                assert match is not None
                host, port = match.group(1).strip("[]"), int(match.group(2))
                if not own_address and plan.unix_socket is None and (
                        (plan.host or "").lower(), plan.port) == (host.lower(), port):
                    own_address = listed_address
                    continue
                peer_plan = dataclasses.replace(plan, host=host, port=port, unix_socket=None)
                try:
                    peer = open_session(peer_plan)
                except KeaDbError as err:
                    raise KeaDbError(
                        f"{where} is a node of a Galera cluster; its node {listed_address} "
                        f"cannot be logged in to as {plan.user}: {err.message}. init and "
                        "upgrade take their lock and look for other sessions on every node",
                        exit_code=err.exit_code) from None
                peers[listed_address] = peer
                theirs = self._cluster_facts(peer, flavour, f"Galera node {listed_address}")
                if theirs.get("wsrep_cluster_state_uuid") != cluster_uuid:
                    raise KeaDbError(
                        f"{where}: the address {listed_address} its cluster lists leads to a "
                        "server of another cluster (wsrep_cluster_state_uuid differs)",
                        exit_code=ExitCode.NODE_NOT_WRITABLE)
                if own_uuid and theirs.get("wsrep_gcomm_uuid") == own_uuid:
                    peers.pop(listed_address).close()  # this very node
                    own_address = own_address or listed_address
            if not own_address:
                raise KeaDbError(
                    f"{where}: none of its cluster's addresses ({', '.join(listed)}) leads "
                    "to this node: kea-db cannot tell which listed node it is on",
                    exit_code=ExitCode.NODE_NOT_WRITABLE)
        except BaseException:
            ClusterSessions(session, "", peers).close()
            raise
        return ClusterSessions(session, own_address, peers)

    def _cluster_facts(self, session: Session, flavour: str, where: str) -> dict[str, str]:
        try:
            rows = session.query(_CLUSTER_SQL[flavour])
        except QueryError as err:
            raise KeaDbError(f"{where}: cannot read the Galera cluster's addresses "
                             f"({short(err)[:160]})",
                             exit_code=ExitCode.NODE_NOT_WRITABLE) from None
        return {(r[0] or ""): (r[1] or "") for r in rows if len(r) >= 2}

    def take_lock(self, sessions: ClusterSessions, plan: ConnectPlan, timeout: float) -> None:
        super().take_lock(sessions, plan, timeout)
        if sessions.own_address:  # a Galera node: read what every node committed
            sessions.own.query(_CAUSAL_READS_SQL)

    def check_privileges(self, session: Session, plan: ConnectPlan,
                         node: Node | None = None) -> None:
        roles = session.query("SELECT CURRENT_ROLE()")
        granted = {
            (r[0] or "").upper()
            for r in session.query(MYSQL_GRANTED_SQL)
        }
        missing = [p for p in MYSQL_PRIVILEGES if p not in granted]
        # Privileges that come through a role are not in these views: do not refuse then.
        # No role is NULL on MariaDB and the string NONE on Oracle MySQL.
        role = (roles[0][0] or "") if roles else ""
        if missing and role.upper() in ("", "NONE"):
            raise Refusal(
                "EMPTY", ExitCode.PRIVILEGES,
                f"user {plan.user} lacks {', '.join(missing)} on {plan.database}: "
                f"GRANT ALL ON `{plan.database}`.* TO the Kea user",
            )
        log_bin, trust = session.query("SELECT @@log_bin, @@log_bin_trust_function_creators")[0]
        if trust == "0" and "SUPER" not in granted:
            if log_bin == "1":
                raise Refusal(
                    "EMPTY", ExitCode.PRIVILEGES,
                    "binary logging is on and log_bin_trust_function_creators is off, so "
                    "creating Kea's triggers and routines needs SUPER: SET GLOBAL "
                    "log_bin_trust_function_creators = 1, or run init as a user with SUPER",
                )
            if node is not None and node.galera is not None:
                # wsrep replicates as if the binary log were on: MariaDB 10.11 refuses
                # CREATE TRIGGER (1419) there even with log_bin OFF (its routines pass).
                raise Refusal(
                    "EMPTY", ExitCode.PRIVILEGES,
                    "this Galera node checks triggers as if binary logging were on, and "
                    "log_bin_trust_function_creators is off, so creating Kea's triggers "
                    "needs SUPER: SET GLOBAL log_bin_trust_function_creators = 1 on every "
                    "node, or run kea-db as a user with SUPER",
                )

    def fix_user_contexts(self, session: Session, bad: dict[str, list[str]]) -> None:
        """Kea reads an empty user context as none: make it NULL before the steps.

        The update itself would trip the lease triggers' class counting over the old value,
        so the session's ``@json_supported`` (which those triggers consult, and which Kea's
        schemas up to 33.0 have) is 0 meanwhile: neither the old value nor NULL names a
        class, so the class counters would not change anyway."""
        session.query("SET @json_supported = 0")
        try:
            for table in bad:
                session.query(f"UPDATE {table} SET user_context = NULL WHERE "
                              "user_context IS NOT NULL AND JSON_VALID(user_context) = 0")
        finally:
            if not session.closed:
                session.query("SET @json_supported = NULL")

    def runtime_missing(self, session: Session, wanted: tuple[str, ...], writes: bool,
                        listed: Callable[[list[str]], str]) -> list[str]:
        wanted = (*wanted, "EXECUTE") if writes else wanted
        broad = {(r[0] or "").upper() for r in session.query(MYSQL_GRANTED_SQL)}
        need = [p for p in wanted if p not in broad]
        if not need:
            return []
        per_table: dict[str, set[str]] = {}
        for table, privilege in session.query(_MYSQL_TABLE_GRANTS):
            per_table.setdefault(table or "", set()).add((privilege or "").upper())
        tables = [r[0] or "" for r in session.query(_MYSQL_TABLES)]
        out = []
        for privilege in need:
            if privilege == "EXECUTE":
                out.append("EXECUTE on the database (Kea calls its routines)")
                continue
            lacking = [t for t in tables if privilege not in per_table.get(t, set())]
            if lacking:
                out.append(f"{privilege} on {listed(lacking)}")
        return out

    def active_role(self, session: Session) -> str:
        """NULL on MariaDB, the string NONE on Oracle MySQL, for no role."""
        rows = session.query("SELECT CURRENT_ROLE()")
        role = (rows[0][0] or "") if rows else ""
        return "" if role.upper() == "NONE" else role

    def flavour(self, session: Session) -> str:
        return "mariadb" if "mariadb" in session.server.lower() else "mysql"

    def work_probe(self, session: Session) -> str | None:
        """MariaDB: the statement's row in PROCESSLIST (a user sees its own sessions there
        without the PROCESS privilege), whose EXAMINED_ROWS climbs while an UPDATE runs and
        whose PROGRESS a copying ALTER TABLE reports (an in-place one reports nothing).
        Oracle MySQL reports neither to such a user: its PROCESSLIST has no such columns,
        and performance_schema's stage progress needs a grant on performance_schema and a
        consumer that is off by default."""
        if self.flavour(session) != "mariadb":
            return None
        rows = session.query("SELECT CONNECTION_ID()")
        ident = str(rows[0][0] or "").strip() if rows and rows[0] else ""
        if not ident.isdigit():
            return None
        return ("SELECT CAST(EXAMINED_ROWS AS CHAR), CAST(PROGRESS AS CHAR), "
                "CAST(STAGE AS CHAR), CAST(MAX_STAGE AS CHAR) FROM "
                f"information_schema.PROCESSLIST WHERE ID = {ident}")

    def read_node(self, session: Session) -> Node:
        from keadb_cli.db.node import (
            GALERA,
            PRIMARY,
            READ_ONLY_REPLICA,
            UNKNOWN,
            Galera,
            Node,
            on,
        )

        flavour = self.flavour(session)
        try:
            rows = session.query(_NODE_SQL[flavour])
        except QueryError as err:  # Oracle MySQL without performance_schema: the flags alone
            try:
                rows = [] if flavour == "mariadb" else session.query(_NODE_FLAGS_SQL)
            except QueryError:
                rows = []
            if not rows:
                return Node(UNKNOWN, note=f"cannot read the role: {short(err)[:160]}")
        facts = {(row[0] or "").lower(): row[1] for row in rows if len(row) >= 2}
        if "read_only" not in facts:
            return Node(UNKNOWN, note="the server did not say whether it is read_only")
        read_only = on(facts.get("read_only"))
        super_read_only = (on(facts.get("super_read_only"))
                           if "super_read_only" in facts else None)
        if on(facts.get("wsrep_on")):
            size = facts.get("wsrep_cluster_size") or ""
            galera = Galera(int(size) if size.isdigit() else None,
                            facts.get("wsrep_cluster_status") or "",
                            facts.get("wsrep_local_state_comment") or "",
                            facts.get("wsrep_osu_method") or "")
            return Node(GALERA, read_only=read_only, super_read_only=super_read_only,
                        galera=galera)
        if not (read_only or super_read_only):
            return Node(PRIMARY, read_only=read_only, super_read_only=super_read_only)
        primary, source_from, note = self._source(session, flavour)
        return Node(READ_ONLY_REPLICA, read_only=read_only, super_read_only=super_read_only,
                    primary=primary, primary_from=source_from, note=note)

    def read_replicas(self, session: Session) -> Replicas | None:
        from keadb_cli.db.node import Replica, Replicas, address

        flavour = self.flavour(session)
        statement = _REPLICAS_SQL[flavour]
        try:
            rows = session.query(statement)
        except QueryError as err:
            return Replicas(statement, count=None, word="replica", note=(
                f"{statement} refused ({short(err)[:120]}): the replicas that replay the "
                f"upgrade are unknown to this user (it needs {_REPLICAS_PRIVILEGE[flavour]})"))
        replicas = tuple(
            Replica(name=f"server_id {row[0]}",
                    address=address(row[1], row[2]) if row[1] else None)
            for row in rows if len(row) >= 3)
        return Replicas(statement, replicas, len(replicas), word="replica")

    def _source(self, session: Session, flavour: str) -> tuple[str | None, str, str]:
        """A replica's source (host:port), where it came from, and why it is unknown."""
        from keadb_cli.db.node import address

        statement = _SOURCE_SQL[flavour]
        try:
            rows = session.query(statement)
        except QueryError as err:
            return None, "", f"{statement} refused ({short(err)[:120]})"
        if not rows or len(rows[0]) < 4 or not rows[0][1]:
            return None, "", f"{statement} names no source"
        return address(rows[0][1] or "", rows[0][3]), statement, ""

    def build_sql_mode(self, global_mode: str) -> str:
        return build_sql_mode(global_mode)

    def enter_build_mode(self, session: Session) -> None:
        (mode,), = session.query("SELECT @@GLOBAL.sql_mode")
        build = build_sql_mode(str(mode or ""))
        if not re.fullmatch(r"[A-Za-z0-9_,]*", build):
            raise KeaDbError(f"the server reported an unusable sql_mode {str(mode)[:100]!r}",
                             exit_code=ExitCode.FOREIGN)
        session.query(f"SET SESSION sql_mode = '{build}'")

    def build_scratch(self, session: Session, script: str,
                      read: Callable[[], Catalog]) -> Catalog:
        (database, charset, collation), = session.query(
            "SELECT DATABASE(), DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
            "information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
        name = scratch_name()
        try:
            session.query(f"CREATE DATABASE `{name}` CHARACTER SET {_word(charset)} "
                          f"COLLATE {_word(collation)}")
        except QueryError as err:
            raise CannotVerify(
                "verify builds the expected schema in a scratch database it drops again, and "
                f"this user may not create one ({short(err)}): grant ALL ON "
                "`keadb\\_verify\\_%`.* to it, or verify as a user who may",
                exit_code=ExitCode.PRIVILEGES) from None
        try:
            session.query(f"USE `{name}`")
            self.enter_build_mode(session)  # as init builds
            statements = mysql_statements(script)
            build_or_refuse(lambda: [session.query(statement) for statement in statements])
            return read()
        finally:
            if not session.closed:
                with contextlib.suppress(KeaDbError):
                    session.query(f"DROP DATABASE IF EXISTS `{name}`")
                with contextlib.suppress(KeaDbError):
                    session.query(f"USE `{(database or '').replace('`', '``')}`")

    def read_catalog(self, dbapi_connection: Any,
                     row_tables: Collection[str] | None = None) -> Catalog:
        from keadb_cli.schema import catalog_mysql

        return catalog_mysql.read(dbapi_connection, row_tables)

    # -- purge: TIMESTAMP columns compare in the session's time zone, so it is UTC;
    # DELETE takes a LIMIT, and ROW_COUNT() says what the last one deleted

    epoch_sql: ClassVar[str] = "SELECT UNIX_TIMESTAMP()"

    def purge_setup(self, session: Session) -> None:
        session.query("SET time_zone = '+00:00'")

    def moment_sql(self, epoch: int) -> str:
        return f"FROM_UNIXTIME({int(epoch)})"

    def old_logs_batch_sql(self, cutoff: str, limit: int) -> str:
        return f"DELETE FROM logs WHERE timestamp < {cutoff} LIMIT {int(limit)}"

    def delete_counted(self, session: Session, delete_sql: str) -> int:
        session.query(delete_sql)
        return count_of(session.query("SELECT ROW_COUNT()"))

    import_begin = "START TRANSACTION"
    import_columns_sql = ("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                          "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'")

    def import_bytes(self, data: bytes) -> str:
        return f"X'{data.hex()}'"

    def import_text(self, text: str) -> str:
        data = text.encode("utf-8", "surrogateescape")
        return f"CONVERT(X'{data.hex()}' USING utf8mb4)" if data else "''"

    def import_expire(self, epoch: int) -> str:
        return f"FROM_UNIXTIME({int(epoch)})"

    def import_read(self, column: str, as_text: bool = False) -> str:
        kind, _, name = column.rpartition(":")
        if kind == "hex":
            return f"LOWER(HEX({name}))"
        if kind == "epoch":
            return f"UNIX_TIMESTAMP({name})"
        if kind == "int":
            return f"CAST({name} AS SIGNED)"
        if kind == "address6":
            return f"IF(LENGTH({name}) = 16, LOWER(HEX({name})), {name})"
        return name

    def import_address6(self, packed: bytes, text: str, binary: bool,
                        as_text: bool = False) -> str:
        return f"X'{packed.hex()}'" if binary else f"'{text}'"

    copy_columns_sql = ("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM "
                        "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
                        "TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION")

    def copy_setup(self, session: Session) -> None:
        # TIMESTAMP columns convert from and to the session's time zone
        session.query("SET time_zone = '+00:00'")

    def copy_kind(self, data_type: str, column_type: str) -> tuple[str, bool, bool]:
        data_type, column_type = data_type.lower(), column_type.lower()
        if column_type.startswith("tinyint(1)"):
            return "bool", False, False
        if data_type in ("tinyint", "smallint", "mediumint", "int", "bigint", "decimal"):
            return "int", False, False
        if column_type == "binary(16)":
            return "addr6", False, True
        if "binary" in data_type or "blob" in data_type:
            return "bytes", False, False
        if data_type in ("timestamp", "datetime"):
            return "time", False, False
        return "text", False, False

    def copy_read(self, column: str, kind: str, binary: bool) -> str:
        if kind == "bytes" or (kind == "addr6" and binary):
            return f"LOWER(HEX({column}))"
        if kind == "time":
            return f"UNIX_TIMESTAMP({column})"
        if kind == "bool":
            return f"CAST({column} AS SIGNED)"
        return column

    def copy_bool(self, value: bool) -> str:
        return "1" if value else "0"

    def lease_dump_sql(self, family: int) -> tuple[str, str]:
        return f"CALL lease{family}DumpHeader()", f"CALL lease{family}DumpData()"

    def lease_dump_line(self, row: tuple[str | None, ...]) -> str:
        # The mysql client in batch mode (-N -B) writes NULL as the word NULL, escapes a
        # backslash, NUL, tab and newline inside a value, and separates values with tabs;
        # kea-admin then turns every tab of that output into a comma.
        text = "".join(value for value in row if value is not None)
        if "\\" in text or "\0" in text or "\t" in text or "\n" in text:
            return ",".join("NULL" if value is None else value.translate(_BATCH_ESCAPES)
                            for value in row) + "\n"
        return ",".join("NULL" if value is None else value for value in row) + "\n"

    def quote_identifier(self, name: str) -> str:
        from keadb_cli.schema import catalog_mysql

        return catalog_mysql.quote(name)

    def sql_literal(self, value: str) -> str:
        # any byte, whatever sql_mode says of backslashes
        return f"CONVERT(X'{value.encode().hex()}' USING utf8mb4)"


# What the mysql client's batch mode writes for these characters inside a value.
_BATCH_ESCAPES = str.maketrans({"\\": "\\\\", "\0": "\\0", "\t": "\\t", "\n": "\\n"})


def _word(value: str | None) -> str:
    """A character set or collation name from the server, checked before it is spliced."""
    if not value or not value.replace("_", "").isalnum():
        raise KeaDbError(f"the server reported an unusable character set or collation "
                         f"{value!r}", exit_code=ExitCode.FOREIGN)
    return value


MYSQL = MySQLBackend(
    type="mysql",
    display="MySQL",
    default_port=3306,
    admin_name="mysql",
    version_sql="SELECT version, minor FROM schema_version",
    tables_sql=(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() ORDER BY 1"
    ),
    routines_sql=(
        "SELECT routine_name FROM information_schema.routines "
        "WHERE routine_schema = DATABASE() ORDER BY 1"
    ),
    read_only_begin="START TRANSACTION READ ONLY",
    lock_sql="SELECT GET_LOCK('kea-db-init', {seconds})",
    unlock_sql="SELECT RELEASE_LOCK('kea-db-init')",
    sqlalchemy_driver="mysql+pymysql",
    missing_table_codes=("1146",),
    transactional_ddl=False,
    statement_timeout_sql={
        "mariadb": "SET SESSION max_statement_time = {seconds}",
        "mysql": "SET SESSION max_execution_time = {ms}",
    },
    library="libmariadb",
    library_module="keadb_cli.db.libmariadb",
    soname="libmariadb.so.3",
    driver="PyMySQL",
    password_variables=("MYSQL_PWD",),
    port_variable="MYSQL_TCP_PORT",
    kea_hook="libdhcp_mysql.so",
    max_connections_sql="SELECT @@max_connections",
    other_sessions_sql=(
        "SELECT CAST(ID AS CHAR), USER, HOST, COMMAND FROM information_schema.PROCESSLIST "
        "WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND USER <> 'system user' ORDER BY ID"
    ),
    row_estimates_sql=(
        "SELECT TABLE_NAME, CAST(COALESCE(TABLE_ROWS, 0) AS CHAR) FROM "
        "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
    ),
    # MySQL stores the creating session's sql_mode with every routine and trigger and runs
    # them under it. kea-admin's client session has the server's global sql_mode, while
    # kea-db's own sessions may set another (Kea's STRICT_ALL_TABLES), so the revisions run
    # under the global one (less TEXT_MODES: build_sql_mode) and the caller's mode comes
    # back afterwards.
    build_session=(
        "SELECT @@SESSION.sql_mode",
        "SELECT @@GLOBAL.sql_mode",
        "SET SESSION sql_mode = :value",
    ),
    migrations_folder="mysql",
    revision_prefix="mysql",
    alembic_dialect="mysql",
    verify_from_record=True,
)
