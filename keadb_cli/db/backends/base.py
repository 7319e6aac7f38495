"""The base of the backend objects: what every server family has, and the behaviour
they share (the lock, the checks an upgrade runs before any change).

The subclasses (:mod:`.postgresql`, :mod:`.mysql`) hold the SQL and the behaviour that
differ. Nothing here imports a driver, SQLAlchemy or alembic: the methods import what
they need when they run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from keadb_cli.errors import CannotVerify, ExitCode, KeaDbError, QueryError, Refusal

if TYPE_CHECKING:
    from keadb_cli.db.cluster import ClusterSessions
    from keadb_cli.db.node import Node, Replicas
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session
    from keadb_cli.schema.catalog import Catalog

SCRATCH_PREFIX = "keadb_verify_"
READ_DEADLINE_FACTOR = 2  # the read deadline: this many connect-timeouts


@dataclass(frozen=True)
class RunningWork:
    """How far a statement running on another session got, as the server reports it."""

    rows: int  # rows the statement has examined so far (0: none reported)
    percent: float  # the server's own progress of the statement, 0-100 (0: none reported)
    stage: int = 0  # which of ``stages`` the percent is of (0: none reported)
    stages: int = 0


@dataclass(frozen=True)
class Backend:
    type: str  # Kea's type keyword
    display: str
    default_port: int
    # Kea-admin's backend argument, and the alembic script directory name.
    admin_name: str
    # How Kea's server reads its version (the same query on both backends).
    version_sql: str
    # Does the backend have one table listing? Used to tell EMPTY from FOREIGN.
    tables_sql: str
    # Routines/functions in the schema (to catch a half-dropped schema with no tables).
    routines_sql: str
    # Start a transaction that cannot write.
    read_only_begin: str
    # Session advisory lock: take (with a timeout in seconds) and release.
    lock_sql: str
    unlock_sql: str
    # The SQLAlchemy dialect+driver name, for init.
    sqlalchemy_driver: str
    # SQLSTATE / error numbers meaning "the table does not exist".
    missing_table_codes: tuple[str, ...]
    # Does a failed DDL statement roll back (PostgreSQL) or stay (MySQL)?
    transactional_ddl: bool
    # The server-side statement timeout per server flavour, set after login ({seconds},
    # {ms}); PostgreSQL gets it with the login (libpq's options) instead.
    statement_timeout_sql: dict[str, str] = field(default_factory=dict)
    # The client library Kea links (a module of keadb_cli.db, and its soname), and the
    # stack's driver used only when that library cannot be loaded.
    library: str = ""
    library_module: str = ""
    soname: str = ""
    driver: str = ""
    # Environment variables the client library takes the password from when kea-db gives
    # none (their values are kept secret too: keadb_cli.text.keep_secret).
    password_variables: tuple[str, ...] = ()
    # The environment variable the client library takes the port from when Kea sends none
    # (Kea's ``port`` unset or 0): libpq's PGPORT, libmariadb's MYSQL_TCP_PORT.
    port_variable: str = ""
    # Whether ``host`` may be a comma-separated list the client library tries in order
    # (libpq's host list, which Kea's PostgreSQL backend passes through as it is).
    host_lists: bool = False
    # A session setting that bounds the lock wait ({ms}) and its reset, when the lock
    # statement itself takes no timeout (PostgreSQL); and the SQLSTATE of a lock wait that
    # timed out.
    lock_wait_sql: str | None = None
    lock_wait_reset_sql: str | None = None
    lock_timeout_code: str | None = None
    # The hook library a Kea DHCP server must load (hooks-libraries) to use the backend at
    # all, since Kea 2.7.4.
    kea_hook: str = ""
    # Other sessions on this database (id, user, where from, what they do), and row
    # estimates per table (name, rows as text).
    other_sessions_sql: str = ""
    row_estimates_sql: str = ""
    # Read the session setting a schema build needs changed, switch to the build setting,
    # restore (:value); None when the session needs nothing (see schema.migrate.upgrade).
    build_session: tuple[str, str, str] | None = None
    # The alembic script directory under migrations/, the revision id prefix, the dialect.
    migrations_folder: str = ""
    revision_prefix: str = ""
    alembic_dialect: str = ""
    # verify: when no scratch namespace can be built (privileges), compare with kea-db's
    # record of the schema for the server's flavour instead.
    verify_from_record: bool = False
    # preflight's fleet rules: the server's connection limit (one row, one number).
    max_connections_sql: str = ""

    # The upgrade's data traps (see :mod:`keadb_cli.schema.guards`): rows a step cannot
    # convert (table, revision, query, what is wrong, screen), the query for lease rows
    # whose user context is not JSON ({table}, {key}) and its screen, and how a lease row is
    # named (binary, text key). A screen is an SQL condition true for every row its query
    # can name ("": none): the screens of one table are counted in one scan, and a query
    # whose screen counts no row is not run. The big lease tables are read once for all
    # their traps, and a trap query that sorts the table (a GROUP BY) runs only when rows
    # could fall into it.
    address_traps: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = ()
    bad_context_sql: ClassVar[str | None] = None
    bad_context_screen: ClassVar[str] = ""
    lease_keys: ClassVar[dict[str, tuple[str, str]]] = {}
    address_type_sql: ClassVar[str] = ""

    # stats check / recount (keadb_cli/commands/stats.py): the transaction a check reads
    # in (one snapshot), the one a recount writes in, what a recount's counting reads add
    # to hold the lease rows they count, and the class counters' recount per lease table
    # ({states}: the states counted), rows of (class[, lease_type], leases).
    stats_snapshot_begin: ClassVar[str] = ""
    stats_write_begin: ClassVar[str] = ""
    stats_read_lock: ClassVar[str] = ""
    class_count_sql: ClassVar[dict[str, str]] = {}

    def host_key(self, host: str) -> str:
        """``host`` as a key naming one server or cluster: lower case, and a host list as
        its sorted members (``db1,db2`` and ``db2, db1`` reach the same cluster)."""
        host = host.lower()
        if not self.host_lists or "," not in host:
            return host
        return ",".join(sorted({part.strip() for part in host.split(",") if part.strip()}))

    def stats_lock_sql(self, tables: Sequence[Any]) -> list[str]:
        """Statements that keep Kea's lease writes (and another recount) out of a recount's
        transaction until it ends, before it reads (``tables``: the tables it rewrites)."""
        return []

    # -- deadlines ----------------------------------------------------------------------

    def read_deadline(self, plan: ConnectPlan) -> tuple[float, str]:
        """The deadline of a statement that only reads, when the user set none: seconds,
        and what it was derived from (for the message that names it).

        A read that takes milliseconds on a healthy server is given a few times what the
        connection may take to open, so a stalled server ends a check soon, yet a slow
        network (a large connect-timeout) still gets a proportionate wait.
        """
        return READ_DEADLINE_FACTOR * plan.connect_timeout, (
            f"{READ_DEADLINE_FACTOR} x connect-timeout")

    # -- the node --------------------------------------------------------------------------

    def read_node(self, session: Session) -> Node:
        """The server's role (primary, standby, read-only replica, Galera node) and what
        decides whether a write can work there, in one query right after login (outside
        any transaction). A server that refuses the query or says nothing is a node of role
        ``unknown``, whose note says why.

        Raises:
            KeaDbError: the session broke or timed out.
        """
        raise NotImplementedError

    def read_replicas(self, session: Session) -> Replicas | None:
        """On a primary: the standbys (replicas) that replay what it writes, as far as
        this user may see them; None when this server family does not list them. A
        refused read is a :class:`~keadb_cli.db.node.Replicas` whose note says why.

        Raises:
            KeaDbError: the session broke or timed out.
        """
        return None

    # -- the lock -----------------------------------------------------------------------

    def open_cluster(self, session: Session, plan: ConnectPlan, node: Node) -> ClusterSessions:
        """The sessions init's and upgrade's lock and the other-sessions check use: on a
        single server, ``session`` alone (a subclass opens a session on every other node of
        a cluster whose nodes all take writes).

        Raises:
            KeaDbError: a node of the cluster cannot be known or reached (the message
                names it and why; nothing was changed).
        """
        from keadb_cli.db.cluster import ClusterSessions

        return ClusterSessions(session)

    def take_lock(self, sessions: ClusterSessions, plan: ConnectPlan, timeout: float) -> None:
        """The session advisory lock init and upgrade take, on every member of
        ``sessions`` in their one order, within ``timeout`` seconds in all.

        Raises:
            Refusal: LOCKED, after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for address, session in sessions.ordered():
            if not self._lock_one(session, max(0.0, deadline - time.monotonic())):
                where = f"on node {address} of the cluster" if sessions.peers else \
                    "on this server"
                raise Refusal(
                    "EMPTY", ExitCode.LOCKED,
                    f"another kea-db init or upgrade holds the lock {where}; gave up after "
                    f"{timeout:g} s (--lock-timeout)",
                )

    def _lock_one(self, session: Session, timeout: float) -> bool:
        """Take the lock on one session within ``timeout`` seconds: whether it was."""
        backend = self
        lock = backend.lock_sql.format(seconds=max(0, round(timeout)))
        try:
            if backend.lock_wait_sql:  # the lock statement waits as long as the session says
                session.query(backend.lock_wait_sql.format(ms=max(1, round(timeout * 1000))))
                try:
                    session.query(lock)
                finally:
                    session.query(backend.lock_wait_reset_sql or "")
                return True
            rows = session.query(lock)
        except QueryError as err:
            if err.code != backend.lock_timeout_code:
                raise
            return False
        return bool(rows) and rows[0][0] == "1"

    # -- privileges ---------------------------------------------------------------------

    def check_privileges(self, session: Session, plan: ConnectPlan,
                         node: Node | None = None) -> None:
        """Refuse before any change when the user cannot create Kea's objects (on
        ``node``, the server's role, when known).

        Raises:
            Refusal: PRIVILEGES.
        """
        raise NotImplementedError

    def runtime_missing(self, session: Session, wanted: tuple[str, ...], writes: bool,
                        listed: Callable[[list[str]], str]) -> list[str]:
        """What the session's user lacks to use Kea's objects as Kea does at run time
        (``wanted`` of SELECT/INSERT/UPDATE/DELETE on every table; with ``writes``, the
        sequences and routines too), as "INSERT on lease4, ..." texts, names put by
        ``listed``. Read from the server's own privilege views, no side effects."""
        raise NotImplementedError

    def max_connections(self, session: Session) -> int | None:
        """The server's ``max_connections``; None when it cannot be read (no statement, no
        row, not a number). Raises only when the session itself breaks.

        Raises:
            UnreachableError: the session broke or timed out.
        """
        if not self.max_connections_sql:
            return None
        try:
            rows = session.query(self.max_connections_sql)
        except QueryError:
            return None
        value = str(rows[0][0]).strip() if rows and rows[0] else ""
        return int(value) if value.isdigit() else None

    def active_role(self, session: Session) -> str:
        """The session's active role, whose grants the run-time check cannot see; ""
        when none (or when the server's privilege functions include roles)."""
        return ""

    # -- the upgrade's checks before any change -----------------------------------------

    def other_sessions(self, sessions: ClusterSessions) -> list[str]:
        """Other sessions on the database, on every member of ``sessions`` (each line
        naming its node when there are several)."""
        found: list[str] = []
        for address, session in sessions.ordered():
            node = f"node {address}: " if sessions.peers else ""
            found.extend(f"{node}session {r[0]} of {r[1] or '?'} from {r[2]} "
                         f"({r[3] or 'no name'})" for r in session.query(self.other_sessions_sql))
        return found

    def row_estimates(self, session: Session) -> dict[str, int]:
        return {(r[0] or "").lower(): int(r[1] or 0) for r in
                session.query(self.row_estimates_sql)}

    # -- the upgrade's progress --------------------------------------------------------

    def work_probe(self, session: Session) -> str | None:
        """The query another session of the same user runs to read how far the statement
        running on ``session`` got (:meth:`running_work`), asked on ``session`` before its
        statements; None when the server reports nothing such a user can read (PostgreSQL:
        no ``pg_stat_progress_*`` view covers an UPDATE or an ALTER TABLE).

        Raises:
            QueryError, UnreachableError: as :meth:`Session.query`.
        """
        return None

    def running_work(self, watcher: Session, probe: str) -> RunningWork | None:
        """What ``probe`` (from :meth:`work_probe`), run on ``watcher``, reads: one row of
        (rows examined, percent, stage, stages); None when there is no such row or the
        server reports nothing (every value 0).

        Raises:
            QueryError, UnreachableError: as :meth:`Session.query`.
        """
        rows = watcher.query(probe)
        if not rows:
            return None
        values = [_number(v) for v in (*rows[0], None, None, None, None)[:4]]
        work = RunningWork(int(values[0]), min(values[1], 100.0), int(values[2]),
                           int(values[3]))
        return work if work.rows or work.percent else None

    def data_traps(self, session: Session, revisions: Collection[str],
                   rewritten: Collection[str], tables: Collection[str],
                   ) -> tuple[list[str], dict[str, list[str]]]:
        """The upgrade's data traps: findings for rows a step of ``revisions`` cannot
        convert (:attr:`address_traps`), and the lease rows whose user context is not JSON,
        per lease table of ``rewritten`` (tables whose rows a step UPDATEs under strict
        triggers). Each table with screens is scanned once first (see
        :attr:`address_traps`)."""
        traps = [t for t in self.address_traps if t[1] in revisions and t[0] in tables]
        contexts: dict[str, str] = {}
        if self.bad_context_sql is not None:
            for table, (binary_key, text_key) in self.lease_keys.items():
                if table not in rewritten or table not in tables:
                    continue
                kind = session.query(self.address_type_sql.format(table=table))
                key = binary_key if kind and (kind[0][0] or "").lower() in (
                    "binary", "varbinary", "int") else text_key
                contexts[table] = self.bad_context_sql.format(table=table, key=key)
        screens: dict[str, list[tuple[str, str]]] = {}  # table -> (query, condition)
        for table, _revision, sql, _what, screen in traps:
            if screen:
                screens.setdefault(table, []).append((sql, screen))
        if self.bad_context_screen:
            for table, sql in contexts.items():
                screens.setdefault(table, []).append((sql, self.bad_context_screen))
        skipped: set[str] = set()
        for table, screened in screens.items():
            counts = session.query(
                "SELECT " + ", ".join(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"
                                      for _sql, condition in screened) + f" FROM {table}")
            for (sql, _condition), count in zip(screened, counts[0] if counts else (),
                                                strict=False):
                if not int(count or 0):  # SUM over no rows is NULL; drivers give text
                    skipped.add(sql)
        addresses = []
        for table, revision, sql, what, _screen in traps:
            if sql in skipped:
                continue
            rows = [r[0] or "NULL" for r in session.query(sql)]
            if rows:
                more = " and more" if len(rows) > 10 else ""
                addresses.append(f"{table}: the address of the rows of "
                                 f"{', '.join(repr(r) for r in rows[:10])}{more} {what}: "
                                 f"{revision} cannot convert it; fix or delete those rows")
        bad: dict[str, list[str]] = {}
        for table, sql in contexts.items():
            if sql not in skipped:
                rows = [r[0] or "?" for r in session.query(sql)]
                if rows:
                    bad[table] = rows
        return addresses, bad

    def fix_user_contexts(self, session: Session, bad: dict[str, list[str]]) -> None:
        """Set the user contexts :meth:`data_traps` found to NULL."""
        raise NotImplementedError(f"{self.display} has no user-context trap")

    # -- verify and the catalog ---------------------------------------------------------

    def build_sql_mode(self, global_mode: str) -> str:
        """The session setting Kea's objects are created under, from the global one."""
        return global_mode

    def enter_build_mode(self, session: Session) -> None:
        """Switch ``session`` to the setting Kea's objects are created under (init, upgrade
        and verify's scratch build alike); nothing by default."""

    def flavour(self, session: Session) -> str:
        """The server flavour Kea's bodies are recorded under (``postgresql``,
        ``mariadb``, ``mysql``)."""
        return self.type

    def namespace(self, session: Session) -> str:
        """The schema a catalog's definitions name (PostgreSQL), else ""."""
        return ""

    def build_scratch(self, session: Session, script: str,
                      read: Callable[[], Catalog]) -> Catalog:
        """Build ``script`` (a rendered revision) in a scratch namespace of this server,
        call ``read`` there, and remove the namespace again.

        Raises:
            CannotVerify: the user may not create the namespace, or the server refused the
                script (PRIVILEGES).
            KeaDbError: the session failed.
        """
        raise NotImplementedError

    def read_catalog(self, dbapi_connection: Any,
                     row_tables: Collection[str] | None = None) -> Catalog:
        """The catalog of the connection's database (see
        :func:`keadb_cli.schema.catalog.read_table_rows` for ``row_tables``)."""
        raise NotImplementedError

    # -- purge (keadb_cli.commands.purge) ----------------------------------------------

    # The server's clock, in whole seconds since the epoch (one row, one number).
    epoch_sql: ClassVar[str] = ""

    def purge_setup(self, session: Session) -> None:
        """Make the session compare Kea's timestamps unambiguously; nothing by default."""

    def moment_sql(self, epoch: int) -> str:
        """A moment, given in seconds since the epoch, as an SQL expression comparable with
        Kea's timestamp columns."""
        raise NotImplementedError

    def old_logs_batch_sql(self, cutoff: str, limit: int) -> str:
        """A DELETE of at most ``limit`` rows of ``logs`` older than ``cutoff`` (an SQL
        expression), without a RETURNING clause (see :meth:`delete_counted`)."""
        raise NotImplementedError

    def delete_counted(self, session: Session, delete_sql: str) -> int:
        """Run one DELETE (its own transaction: sessions autocommit) and return how many
        rows it deleted."""
        raise NotImplementedError

    def lease_dump_sql(self, family: int) -> tuple[str, str]:
        """The statements that call the schema's own ``lease{family}DumpHeader`` and
        ``lease{family}DumpData`` routines, as kea-admin lease-dump calls them."""
        raise NotImplementedError

    def lease_dump_copy(self, family: int) -> str | None:
        """The ``COPY ... TO STDOUT`` of the data routine's rows, where the backend has it
        (faster than rows one by one); None elsewhere."""
        return None

    def lease_dump_copy_line(self, data: bytes) -> bytes:
        """A line of :meth:`lease_dump_copy`'s data as :meth:`lease_dump_line` writes it."""
        raise NotImplementedError

    # leases import (keadb_cli/commands/leases_import.py): SQL literals of a lease row's
    # values (no escaping needed: text and bytes travel as hex), the expressions that read
    # a stored row back in the importer's normal form, and the lease6 address.
    import_begin: ClassVar[str] = "BEGIN"
    iaid_signed: ClassVar[bool] = False  # PostgreSQL keeps Kea's uint32 IAID as int4
    import_columns_sql: ClassVar[str] = ""  # the column names of {table}

    def import_bytes(self, data: bytes) -> str:
        """The literal of a binary value."""
        raise NotImplementedError

    def import_text(self, text: str) -> str:
        """The literal of a UTF-8 text value."""
        raise NotImplementedError

    def import_expire(self, epoch: int) -> str:
        """The literal of an expiry time given as seconds since the epoch."""
        raise NotImplementedError

    def import_read(self, column: str, as_text: bool = False) -> str:
        """The expression that reads ``column`` (``hex:``, ``epoch:``, ``int:``,
        ``address6:`` or a plain name, as the importer asks) in the importer's normal text
        form (``as_text``: lease6.address is a character column)."""
        raise NotImplementedError

    def import_address6(self, packed: bytes, text: str, binary: bool,
                        as_text: bool = False) -> str:
        """The literal of a lease6 address (``binary``: MySQL's 16-byte column; ``as_text``:
        a character column, as in Kea 2.2's PostgreSQL schema)."""
        raise NotImplementedError

    # copy (keadb_cli/commands/copy.py): the columns of a table with their types, the kind
    # of value each holds, how a value is read in the copy's normal text form, and how it
    # is written back; the session setting both sides run under.
    copy_columns_sql: ClassVar[str] = ""  # (name, data type, full type) of {table}

    def copy_setup(self, session: Session) -> None:
        """Make the session read and write timestamps as instants in UTC."""
        raise NotImplementedError

    def copy_kind(self, data_type: str, column_type: str) -> tuple[str, bool, bool]:
        """The kind of a column (int, bool, bytes, addr6, time, text), whether it is a
        signed 32-bit integer holding Kea's unsigned values, whether an address column
        holds the 16 bytes."""
        raise NotImplementedError

    def copy_read(self, column: str, kind: str, binary: bool) -> str:
        """The expression that reads ``column`` of ``kind`` in the copy's text form."""
        raise NotImplementedError

    def copy_bool(self, value: bool) -> str:
        """The literal of a boolean."""
        raise NotImplementedError

    def copy_triggers_off(self, session: Session, tables: Sequence[str]) -> bool:
        """Keep Kea's statistics triggers on ``tables`` from firing for the rest of the
        session's open transaction, where that is cheaper than letting them count (the
        caller then recounts); whether they are off. Nothing by default."""
        return False

    def copy_triggers_on(self, session: Session, tables: Sequence[str]) -> None:
        """Undo :meth:`copy_triggers_off` inside the same transaction."""

    def copy_fix_sequence(self, session: Session, table: str, column: str) -> None:
        """After rows with explicit ``column`` values: the next generated value follows
        the largest one (nothing where the server does so itself)."""

    def lease_dump_line(self, row: tuple[str | None, ...]) -> str:
        """One row of a dump routine as a line of kea-admin lease-dump's file (with its
        newline): what that backend's client program prints, and what kea-admin makes of
        it."""
        raise NotImplementedError

    def quote_identifier(self, name: str) -> str:
        raise NotImplementedError

    def sql_literal(self, value: str) -> str:
        """``value`` as a string literal, spliced into a statement."""
        return "'" + value.replace("'", "''") + "'"


def scratch_name() -> str:
    return SCRATCH_PREFIX + secrets.token_hex(6)


def build_or_refuse(run: Callable[[], object]) -> None:
    try:
        run()
    except QueryError as err:
        raise CannotVerify(f"the server refused kea-db's schema in the scratch namespace "
                           f"({short(err)}): verify as a user who may create Kea's schema "
                           "(see init's privileges)", exit_code=ExitCode.PRIVILEGES) from None


def count_of(rows: list[tuple[str | None, ...]]) -> int:
    """The number a one-row, one-column answer holds (a count from the server).

    Raises:
        QueryError: the answer is not a non-negative integer.
    """
    value = (rows[0][0] or "").strip() if rows and rows[0] else ""
    if not value.isdigit():
        from keadb_cli.text import shown

        raise QueryError(f"expected a count from the server, got '{shown(value, 40)}'")
    return int(value)


def _number(value: str | None) -> float:
    """A non-negative number the server reported, or 0 for anything else."""
    try:
        number = float((value or "").strip())
    except ValueError:
        return 0.0
    return number if 0 <= number < 1e18 else 0.0


def short(err: KeaDbError) -> str:
    return " ".join(err.message.split())[:200]



LOCK_NAME = "kea-db-init"
