"""Backend differences, in one table keyed by Kea's ``type`` value.

Nothing else in kea-db branches on "mysql" versus "postgresql": it looks the difference up
here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # A session setting that bounds the lock wait ({ms}) and its reset, when the lock
    # statement itself takes no timeout (PostgreSQL); and the SQLSTATE of a lock wait that
    # timed out.
    lock_wait_sql: str | None = None
    lock_wait_reset_sql: str | None = None
    lock_timeout_code: str | None = None
    # The hook library a Kea DHCP server must load (hooks-libraries) to use the backend at
    # all, since Kea 2.7.4.
    kea_hook: str = ""


LOCK_NAME = "kea-db-init"

POSTGRESQL = Backend(
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
    kea_hook="libdhcp_pgsql.so",
    lock_wait_sql="SET lock_timeout = {ms}",
    lock_wait_reset_sql="SET lock_timeout = 0",
    lock_timeout_code="55P03",
)

MYSQL = Backend(
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
    kea_hook="libdhcp_mysql.so",
)

BACKENDS: dict[str, Backend] = {b.type: b for b in (MYSQL, POSTGRESQL)}


def backend_for(db_type: str) -> Backend:
    """The backend for a Kea ``type`` value; KeyError for memfile or anything unknown."""
    return BACKENDS[db_type]
