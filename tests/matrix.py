"""The server matrix: which servers operators run, with which settings, as data.

Each :class:`Cell` is one server (Debian's packages: the host's, or a chroot's of
``tests/tools/sid_chroot.sh``) started with its compiled-in defaults plus only the settings the
cell names, and one way to make Kea's database on it. ``conftest.py``'s ``matrix_server``
fixture starts a cell's server once per session (cells that differ only in their database
share it)::

    @pytest.mark.parametrize("matrix_server", matrix.CELL_IDS, indirect=True)
    def test_x(matrix_server, matrix_cell): db = matrix_cell.create_database(matrix_server)

Versions are what each Debian release ships (bullseye, bookworm: the host, trixie, sid).
``MIGRATION`` is not started fresh: a test starts its ``before`` cell, fills it, and calls
:func:`servers.upgrade_in_place`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from servers import (
    BackendType,
    DatabaseServer,
    FreshDatabase,
    MariaDBServer,
    PostgresServer,
    create_fresh_database,
    create_fresh_latin1_database,
    create_fresh_not_owner_database,
    find_chroot,
    mariadb_default_sql_mode,
    start_mariadb,
    start_oracle_mysql,
    start_postgres,
    upgrade_in_place,
)

Flavor = Literal["mariadb", "mysql", "postgresql"]
# host: Debian 12's own packages; else the chroot of that name (sid_chroot.sh).
Origin = Literal["host", "bullseye", "trixie", "sid"]
DatabaseKind = Literal["default", "latin1", "not-owner"]

# Debian's character set (its mariadb.conf.d/50-server.cnf).
UTF8MB4 = ("--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci")

_DATABASE_SETTINGS: dict[DatabaseKind, tuple[str, ...]] = {
    "default": (),
    "latin1": ("CREATE DATABASE ... ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
               "TEMPLATE template0",),
    "not-owner": ("database owned by another role; the user has GRANT ALL PRIVILEGES ON "
                  "DATABASE and GRANT ALL ON SCHEMA public only",),
}


@dataclass(frozen=True)
class Cell:
    """One server of the matrix and how Kea's database is made on it.

    ``server_args`` and ``sql_mode_add`` are the server settings the cell names (beyond the
    compiled-in defaults and the small non-durable InnoDB/perf options every test server
    has); ``database`` says how the database and user are made.
    """

    id: str
    type: BackendType
    flavor: Flavor
    origin: Origin
    version: str  # the major (or major.minor) the origin ships
    server_args: tuple[str, ...] = ()
    sql_mode_add: str | None = None  # appended to the server's compiled-in sql_mode
    database: DatabaseKind = "default"

    @property
    def source(self) -> str:
        """Where the server comes from, e.g. ``MariaDB 10.5 from the bullseye chroot``."""
        name = {"mariadb": "MariaDB", "mysql": "Oracle MySQL", "postgresql": "PostgreSQL"}
        where = "the host (Debian 12)" if self.origin == "host" else f"the {self.origin} chroot"
        return f"{name[self.flavor]} {self.version} from {where}"

    @property
    def settings(self) -> tuple[str, ...]:
        """Every setting the cell names, as text (empty: compiled-in defaults)."""
        mode = (f"--sql-mode=<compiled-in sql_mode>,{self.sql_mode_add}",)
        return (
            *self.server_args,
            *(mode if self.sql_mode_add else ()),
            *_DATABASE_SETTINGS[self.database],
        )

    @property
    def server_key(self) -> tuple[object, ...]:
        """Cells with equal keys share one server (they differ in their database only)."""
        return (self.flavor, self.origin, self.version, self.server_args, self.sql_mode_add)

    def start(self) -> DatabaseServer:
        """Start the cell's server (TLS off, 127.0.0.1:<free port>); the caller caches it.

        Raises:
            servers.ServerStartError: the server (or its chroot) is not available.
        """
        if self.flavor == "postgresql":
            if self.origin == "host":
                return start_postgres()
            program = f"/usr/lib/postgresql/{self.version}/bin/postgres"
            return start_postgres(chroot=find_chroot(self.origin, [program]))
        if self.flavor == "mysql":
            return start_oracle_mysql(compiled_defaults=True, extra_args=self.server_args)
        chroot = None
        if self.origin != "host":
            chroot = find_chroot(self.origin, ["/usr/sbin/mariadbd"])
        args = list(self.server_args)
        if self.sql_mode_add:
            args.append(f"--sql-mode={mariadb_default_sql_mode(chroot)},{self.sql_mode_add}")
        return start_mariadb(compiled_defaults=True, chroot=chroot, extra_args=args)

    def create_database(self, server: DatabaseServer) -> FreshDatabase:
        """A new empty database and password user on ``server`` (drop it with
        ``servers.drop_fresh_database``). MySQL: the user has exactly Kea's documented
        ``GRANT ALL ON <db>.*`` (Oracle MySQL's authentication cache warmed)."""
        if self.database == "default":
            return create_fresh_database(server)
        if not isinstance(server, PostgresServer):
            raise TypeError(f"{self.id}: a {self.database} database needs PostgreSQL")
        if self.database == "latin1":
            return create_fresh_latin1_database(server)
        return create_fresh_not_owner_database(server)


def _mariadb(id: str, origin: Origin, version: str, *args: str, mode: str | None = None) -> Cell:
    return Cell(id, "mysql", "mariadb", origin, version, tuple(args), sql_mode_add=mode)


def _mysql(id: str, *args: str) -> Cell:
    return Cell(id, "mysql", "mysql", "sid", "9.7", tuple(args))


def _pg(id: str, origin: Origin, version: str, database: DatabaseKind = "default") -> Cell:
    return Cell(id, "postgresql", "postgresql", origin, version, database=database)


CELLS_LIST: tuple[Cell, ...] = (
    _mariadb("mariadb10.5-defaults", "bullseye", "10.5"),
    _mariadb("mariadb10.11-utf8mb4", "host", "10.11", *UTF8MB4),
    _mariadb("mariadb10.11-latin1", "host", "10.11"),
    _mariadb("mariadb10.11-edft-off", "host", "10.11", *UTF8MB4,
             "--explicit-defaults-for-timestamp=OFF"),
    # log_bin_trust_function_creators left at its default (OFF).
    _mariadb("mariadb10.11-binlog", "host", "10.11", *UTF8MB4, "--log-bin=mariadb-bin",
             "--server-id=1"),
    _mariadb("mariadb10.11-ansi-quotes", "host", "10.11", *UTF8MB4, mode="ANSI_QUOTES"),
    _mariadb("mariadb10.11-no-backslash-escapes", "host", "10.11", *UTF8MB4,
             mode="NO_BACKSLASH_ESCAPES"),
    _mariadb("mariadb10.11-force-pk", "host", "10.11", *UTF8MB4, "--innodb-force-primary-key=ON"),
    _mariadb("mariadb11.8-defaults", "trixie", "11.8"),
    # Oracle MySQL's defaults include the binary log (ROW): every cell has it.
    _mysql("mysql9.7-defaults"),
    _mysql("mysql9.7-require-pk", "--sql-require-primary-key=ON"),
    _mysql("mysql9.7-edft-off", "--explicit-defaults-for-timestamp=OFF"),
    _pg("pg13-defaults", "bullseye", "13"),
    _pg("pg15-utf8", "host", "15"),
    _pg("pg15-latin1", "host", "15", "latin1"),
    _pg("pg15-not-owner", "host", "15", "not-owner"),
    _pg("pg17-defaults", "trixie", "17"),
    _pg("pg18-defaults", "sid", "18"),
)
CELLS: dict[str, Cell] = {c.id: c for c in CELLS_LIST}
CELL_IDS: tuple[str, ...] = tuple(CELLS)


def cell(cell_id: str) -> Cell:
    """The cell ``cell_id``; ValueError names the known ones."""
    try:
        return CELLS[cell_id]
    except KeyError:
        raise ValueError(
            f"unknown matrix cell {cell_id!r}; known: {', '.join(CELL_IDS)}"
        ) from None


@dataclass(frozen=True)
class MigrationCell:
    """A server produced by a test: ``before``'s server, filled, then upgraded in place by
    the host's MariaDB (:func:`upgrade`)."""

    id: str
    before: Cell
    after: str  # the server that takes the data directory over

    def upgrade(self, old: MariaDBServer) -> MariaDBServer:
        """:func:`servers.upgrade_in_place`: stop ``old``, start the host's MariaDB
        (compiled-in defaults) on a copy of its data directory, run mariadb-upgrade."""
        return upgrade_in_place(old)


MIGRATION = MigrationCell(
    "mariadb10.5-to-10.11", CELLS["mariadb10.5-defaults"], "MariaDB 10.11 from the host"
)
