"""``kea-db copy``: Kea's leases and host reservations from one SQL database into another.

Both databases must hold the schema of one Kea release (MySQL/MariaDB and PostgreSQL have
their own schema numbers: the releases expecting each must meet). Copied, in this order:
``lease4``, ``lease6`` and its extended info tables (``lease6_relay_id``,
``lease6_remote_id``), ``hosts``, ``ipv6_reservations`` and the rows of ``dhcp4_options``
and ``dhcp6_options`` that belong to a host. Each table's columns are read from both
catalogs; the columns both have are copied (generated row ids are left to the target:
``extended_info_id``, ``reservation_id``, ``option_id``; ``host_id`` is kept, so the
reservations and options still point to their host).

Every value goes through one normal text form (:func:`normaliser`): integers (Kea's unsigned
32-bit values that PostgreSQL keeps in int4, an IAID, unwrapped), booleans as 0/1, bytes
as hexadecimal, IPv6 addresses in their compressed text, timestamps as whole seconds since
the epoch (both sessions run in UTC, so MySQL's TIMESTAMP and PostgreSQL's timestamptz mean
the same instant), text as it is. The target's literals are built from that form, and the
final comparison hashes the same form on both sides.

The source is read in one consistent snapshot, streaming (a row at a time, nothing kept
but the chunk being written). The target is written in chunks of :data:`CHUNK` rows, all
in one transaction: before it commits, the target's rows are read back and compared with
the source's (row count and count per subnet, and a checksum of the normalised rows per
table); a difference rolls everything back (COPY_MISMATCH), as does any failure, so the
target is never left half-written. The statistics tables are recounted in the same
transaction (:func:`keadb_cli.commands.stats.recount_in_transaction`): Kea's triggers count
the copied leases on MySQL; on PostgreSQL, where thousands of updates of one counter row in
one transaction slow down quadratically, they are disabled inside the transaction instead
(when the user owns the tables) and the recount writes the counters.

A target that holds leases or hosts is refused (NOT_EMPTY) unless ``merge``: then a
source lease replaces the target's lease of its address, a source host replaces the
target's hosts it would collide with (same identifier and subnet, Kea's unique keys), with
their reservations and options, and new hosts get ids above the target's. With ``merge``
the comparison checks that every subnet has at least the source's count on the target.

A core module: it never prints and never exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.leases import known_schema
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import ExitCode, KeaDbError, QueryError, SettingsError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Release, Schema, releases_for_schema
from keadb_cli.schema.state import access_json, default_port

if TYPE_CHECKING:
    from keadb_cli.commands.stats import TableReport
    from keadb_cli.db.backends.base import Backend
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Row, Session

CHUNK = 1000  # rows per INSERT statement
CHUNK_BYTES = 2 * 1024 * 1024  # ... or fewer, when their values are this large
COPY_STATEMENT_TIMEOUT = 6 * 3600.0  # one statement streams a whole table
U32 = 2**32
_MODULUS = 2**128


@dataclass(frozen=True)
class TableSpec:
    """One table the copy moves."""

    name: str
    order: str  # the source's order of rows (its key)
    where: str = ""  # which rows (host options only)
    generated: tuple[str, ...] = ()  # row ids the target generates itself
    subnets: tuple[str, ...] = ()  # columns counted per subnet
    merge_key: str = ""  # merge: the target's rows with this value are replaced
    host_column: bool = False  # holds host_id (shifted above the target's ids in a merge)


TABLES: tuple[TableSpec, ...] = (
    TableSpec("lease4", "address", subnets=("subnet_id",), merge_key="address"),
    TableSpec("lease6", "address", subnets=("subnet_id",), merge_key="address"),
    TableSpec("lease6_relay_id", "extended_info_id", generated=("extended_info_id",)),
    TableSpec("lease6_remote_id", "extended_info_id", generated=("extended_info_id",)),
    TableSpec("hosts", "host_id", subnets=("dhcp4_subnet_id", "dhcp6_subnet_id"),
              host_column=True),
    TableSpec("ipv6_reservations", "reservation_id", generated=("reservation_id",),
              host_column=True),
    TableSpec("dhcp4_options", "option_id", "host_id IS NOT NULL", ("option_id",),
              host_column=True),
    TableSpec("dhcp6_options", "option_id", "host_id IS NOT NULL", ("option_id",),
              host_column=True),
)
# Tables whose rows a merge deletes with a lease6 address it replaces.
_LEASE6_EXTENDED = ("lease6_relay_id", "lease6_remote_id")


@dataclass(frozen=True)
class Column:
    """A column of one side: its kind (int, bool, bytes, addr6, time, text), whether it is
    a signed int4 holding Kea's unsigned 32-bit values, whether it holds the 16 bytes of an
    address."""

    name: str
    kind: str
    signed32: bool = False
    binary: bool = False


Value = str | None


def normaliser(column: Column) -> Callable[[Value], Value]:
    """The function that turns a value read from ``column``'s side into the copy's normal
    text form (the same on every backend for the same Kea value)."""
    kind = column.kind
    if kind == "int":
        if column.signed32:
            return lambda v: None if v is None else str(int(v) % U32)
        return lambda v: None if v is None else str(int(v))
    if kind == "bool":
        return lambda v: None if v is None else (
            "1" if v.lower() in ("1", "t", "true") else "0")
    if kind == "bytes":
        return lambda v: None if v is None else v.lower()
    if kind == "addr6":
        return _address6
    if kind == "time":
        return lambda v: None if v is None else str(int(float(v)))
    return _same


def _same(value: Value) -> Value:
    return value


def _address6(value: Value) -> Value:
    if value is None:
        return None
    if ":" not in value and "." not in value and len(value) == 32:
        return str(ipaddress.IPv6Address(bytes.fromhex(value)))
    return str(ipaddress.ip_address(value.strip()))


def normal(column: Column, value: Value) -> Value:
    """One value in the normal form (see :func:`normaliser`)."""
    return normaliser(column)(value)


def literal_maker(backend: Backend, column: Column) -> Callable[[Value], str]:
    """The function that turns a normal-form value into an SQL literal of ``backend`` for
    ``column`` (the target's)."""
    kind = column.kind

    def null(make: Callable[[str], str]) -> Callable[[Value], str]:
        return lambda v: "NULL" if v is None else make(v)

    if kind == "int":
        if column.signed32:  # Kea's uint32 in int4, as Kea wraps it
            return null(lambda v: str(int(v) - U32 if int(v) >= 2**31 else int(v)))
        return null(lambda v: str(int(v)))
    if kind == "bool":
        true, false = backend.copy_bool(True), backend.copy_bool(False)
        return null(lambda v: true if v == "1" else false)
    if kind == "bytes":
        return null(lambda v: backend.import_bytes(bytes.fromhex(v)))
    if kind == "addr6":
        def address(v: str) -> str:
            parsed = ipaddress.ip_address(v)
            return backend.import_address6(parsed.packed, str(parsed), column.binary)
        return null(address)
    if kind == "time":
        return null(lambda v: backend.import_expire(int(v)))
    return null(backend.import_text)


def literal(backend: Backend, column: Column, value: Value) -> str:
    """One normal-form value as a literal (see :func:`literal_maker`)."""
    return literal_maker(backend, column)(value)


def row_digest(row: Sequence[str | None]) -> int:
    """A row's 128-bit digest; a table's checksum is their sum (any order of rows)."""
    text = "\x1f".join("\x00" if v is None else v for v in row)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"),
                                          digest_size=16).digest(), "big")


@dataclass
class Tally:
    """What one side holds of one table: rows, rows per subnet, the checksum."""

    rows: int = 0
    subnets: dict[str, int] = field(default_factory=dict)
    checksum: int = 0

    def add(self, row: Sequence[str | None], subnet_indexes: Sequence[tuple[str, int]]) -> None:
        self.rows += 1
        self.checksum = (self.checksum + row_digest(row)) % _MODULUS
        for name, index in subnet_indexes:
            value = row[index]
            if value is not None:
                key = f"{name}={value}"
                self.subnets[key] = self.subnets.get(key, 0) + 1


@dataclass
class TableResult:
    name: str
    columns: list[str]
    left_out: list[str]  # columns only one side has
    copied: int = 0
    replaced: int = 0  # merge: target rows replaced
    source: Tally = field(default_factory=Tally)
    target: Tally = field(default_factory=Tally)

    @property
    def counts_equal(self) -> bool:
        return self.source.rows == self.target.rows and self.source.subnets == \
            self.target.subnets

    @property
    def checksums_equal(self) -> bool:
        return self.source.checksum == self.target.checksum

    def covered(self) -> bool:
        """Merge: every subnet has at least the source's rows on the target."""
        return self.target.rows >= self.source.rows and all(
            self.target.subnets.get(k, 0) >= n for k, n in self.source.subnets.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "replaced": self.replaced,
            "columns": self.columns,
            "left_out": self.left_out,
            "source_rows": self.source.rows,
            "target_rows": self.target.rows,
            "subnet_counts_equal": self.counts_equal,
            "checksums_equal": self.checksums_equal,
            "source_checksum": f"{self.source.checksum:032x}",
            "target_checksum": f"{self.target.checksum:032x}",
        }


@dataclass
class CopyResult:
    source: DbAccess
    target: DbAccess
    source_schema: Schema
    target_schema: Schema
    releases: list[Release]
    merge: bool
    tables: list[TableResult] = field(default_factory=list)
    committed: bool = False
    exit_code: ExitCode = ExitCode.OK
    detail: str = ""
    stats: list[TableReport] = field(default_factory=list)  # the recount's, per table
    triggers_off: bool = False  # Kea's statistics triggers were off while rows went in
    seconds: float = 0.0

    @property
    def subnet_counts_equal(self) -> bool:
        return all(t.counts_equal for t in self.tables)

    @property
    def checksums_equal(self) -> bool:
        return all(t.checksums_equal for t in self.tables)

    def checksum(self, side: str) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for table in self.tables:
            tally: Tally = getattr(table, side)
            digest.update(f"{table.name}:{tally.checksum:032x};".encode())
        return digest.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {**access_json(self.source), "schema": str(self.source_schema),
                       "path": self.source.path},
            "target": {**access_json(self.target), "schema": str(self.target_schema),
                       "path": self.target.path},
            "releases": [str(r) for r in self.releases],
            "merge": self.merge,
            "committed": self.committed,
            "exit_code": int(self.exit_code),
            "detail": self.detail,
            "tables": {t.name: t.to_json() for t in self.tables},
            "rows_copied": sum(t.copied for t in self.tables),
            "rows_replaced": sum(t.replaced for t in self.tables),
            "comparison": {
                "equal": self.subnet_counts_equal and self.checksums_equal,
                "subnet_counts_equal": self.subnet_counts_equal,
                "checksums_equal": self.checksums_equal,
                "source_checksum": self.checksum("source"),
                "target_checksum": self.checksum("target"),
            },
            "stats": {"triggers_disabled": self.triggers_off,
                      "tables": [t.to_json() for t in self.stats]},
            "seconds": round(self.seconds, 3),
        }


def pick_copy_access(accesses: list[DbAccess], side: str) -> DbAccess:
    """The one database of a side (``from`` or ``to``): the only SQL entry, or the one
    database every lease and hosts entry names (config backends are left out).

    Raises:
        SettingsError: entries naming several databases (choose with --SIDE-backend), or
            only a config backend (copy moves leases and hosts).
    """
    data = [a for a in accesses if a.role != "config"]
    if not data:
        paths = ", ".join(a.path or "?" for a in accesses)
        raise SettingsError(f"--{side}-config: {paths} is a config backend, which holds no "
                            "leases or hosts to copy; choose the lease or hosts backend")
    accesses = data
    places = {_place(a) for a in accesses}
    if len(places) == 1:
        leases = [a for a in accesses if a.role == "lease"]
        return leases[0] if leases else accesses[0]
    paths = ", ".join(a.path or "?" for a in accesses)
    raise SettingsError(f"--{side}-config names several databases ({paths}): choose one with "
                        f"--{side}-backend")


def _place(access: DbAccess) -> tuple[str | None, str | None, int | None, str | None]:
    return (access.type, access.effective_host, access.port or default_port(access.type),
            access.name)


def copy_database(source: DbAccess, target: DbAccess, *, merge: bool = False,
                  env: dict[str, str] | None = None) -> CopyResult:
    """Copy the leases and host reservations of ``source`` into ``target``.

    Raises:
        SettingsError: the same database on both sides, roles that differ (a lease
            database into a hosts database), a readonly target.
        KeaDbError: connection failures; a side without a known Kea schema (EMPTY,
            FOREIGN); schemas of no common Kea release (BEHIND: upgrade the target, AHEAD);
            a target holding rows without ``merge`` (NOT_EMPTY); a failed write. Nothing
            is written in any of these cases.
    """
    if _place(source) == _place(target):
        raise SettingsError("the source and the target are the same database; nothing copied")
    if source.role and target.role and source.role != target.role:
        raise SettingsError(f"the source is a {source.role} backend ({source.path}) and the "
                            f"target a {target.role} backend ({target.path}): copy between "
                            "backends of one role; nothing copied")
    if target.readonly:
        raise KeaDbError(f"{target.path or 'the target'} is readonly for Kea (readonly: true): "
                         "copy does not write to it; nothing copied",
                         exit_code=ExitCode.READONLY)
    started = time.monotonic()
    source_plan = plan_for(_long(source), env)
    target_plan = plan_for(_long(target), env)
    source_session = open_session(source_plan)
    try:
        target_session = open_session(target_plan)
        try:
            result = _copy(source_session, source_plan, source, target_session,
                           target_plan, target, merge)
        finally:
            target_session.close()
    finally:
        source_session.close()
    result.seconds = time.monotonic() - started
    return result


def _long(access: DbAccess) -> DbAccess:
    if access.statement_timeout is None:
        return dataclasses.replace(access, statement_timeout=COPY_STATEMENT_TIMEOUT)
    return access


def common_releases(source_type: str, source_schema: Schema, target_type: str,
                    target_schema: Schema, where: str) -> list[Release]:
    """The Kea releases that expect both schemas.

    Raises:
        KeaDbError: none: BEHIND when the target's schema is older (upgrade it), else AHEAD.
    """
    ours = releases_for_schema(source_type, source_schema)
    theirs = releases_for_schema(target_type, target_schema)
    both = sorted(set(ours) & set(theirs))
    if both:
        return both
    older = max(theirs) < min(ours)

    def named(releases: list[Release]) -> str:
        first, last = releases[0], releases[-1]
        return f"Kea {first}" + (f" to {last}" if last != first else "")

    fix = ("upgrade the target (kea-db upgrade) first" if older else
           "upgrade the source first, or copy into a database of its release")
    raise KeaDbError(f"{where}: the source's schema {source_schema} ({named(ours)}) and the "
                     f"target's {target_schema} ({named(theirs)}) are not one Kea release's: "
                     f"{fix}; nothing copied",
                     exit_code=ExitCode.BEHIND if older else ExitCode.AHEAD)


def _columns(session: Session, backend: Backend, table: str) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for name, data_type, full_type in session.query(backend.copy_columns_sql.format(
            table=table)):
        kind, signed32, binary = backend.copy_kind(data_type or "", full_type or "")
        out[(name or "").lower()] = Column((name or "").lower(), kind, signed32, binary)
    return out


_PRECEDENCE = ("addr6", "bool", "time", "bytes", "int", "text")


def _pair(a: Column, b: Column) -> tuple[Column, Column]:
    """The two sides of one column, both of the kind that keeps the value (an address
    stored as text on one side and as 16 bytes or inet on the other is an address)."""
    kind = next(k for k in _PRECEDENCE if k in (a.kind, b.kind))
    return dataclasses.replace(a, kind=kind), dataclasses.replace(b, kind=kind)


@dataclass
class _Table:
    spec: TableSpec
    source: list[Column]
    target: list[Column]
    result: TableResult

    def select(self, backend: Backend, columns: list[Column], order: bool) -> str:
        reads = ", ".join(backend.copy_read(c.name, c.kind, c.binary) for c in columns)
        where = f" WHERE {self.spec.where}" if self.spec.where else ""
        by = f" ORDER BY {self.spec.order}" if order else ""
        return f"SELECT {reads} FROM {self.spec.name}{where}{by}"

    def subnet_indexes(self) -> list[tuple[str, int]]:
        names = [c.name for c in self.source]
        return [(s, names.index(s)) for s in self.spec.subnets if s in names]


def _plan_tables(source: Session, source_backend: Backend, target: Session,
                 target_backend: Backend) -> list[_Table]:
    tables = []
    present_source = {t.name: _columns(source, source_backend, t.name) for t in TABLES}
    for spec in TABLES:
        ours = present_source[spec.name]
        theirs = _columns(target, target_backend, spec.name)
        if not ours or not theirs:
            continue
        names = [n for n in ours if n in theirs and n not in spec.generated]
        left_out = sorted((set(ours) ^ set(theirs)) - set(spec.generated))
        pairs = [_pair(ours[n], theirs[n]) for n in names]
        tables.append(_Table(spec, [p[0] for p in pairs], [p[1] for p in pairs],
                             TableResult(spec.name, names, left_out)))
    return tables


def _copy(source: Session, source_plan: ConnectPlan, source_access: DbAccess,
          target: Session, target_plan: ConnectPlan, target_access: DbAccess,
          merge: bool) -> CopyResult:
    sb, tb = source_plan.backend, target_plan.backend
    source_schema = known_schema(source, source_plan, source_access, "nothing copied")
    target_schema = known_schema(target, target_plan, target_access, "nothing copied")
    releases = common_releases(sb.type, source_schema, tb.type, target_schema,
                               f"{sb.display} {source_plan.where} -> {tb.display} "
                               f"{target_plan.where}")
    result = CopyResult(source_access, target_access, source_schema, target_schema, releases,
                        merge)
    sb.copy_setup(source)
    tb.copy_setup(target)
    tables = _plan_tables(source, sb, target, tb)
    result.tables = [t.result for t in tables]
    source.query(sb.stats_snapshot_begin)  # one snapshot for every table
    try:
        target.query(tb.import_begin)
        try:
            _check_empty(target, target_plan, tables, merge)
            offset = _host_offset(target, tables) if merge else 0
            leases = [t.spec.name for t in tables if t.spec.name in ("lease4", "lease6")]
            result.triggers_off = tb.copy_triggers_off(target, leases)
            for table in tables:
                _copy_table(source, sb, target, tb, table, merge, offset)
            if result.triggers_off:
                tb.copy_triggers_on(target, leases)
            if any(t.spec.name == "hosts" for t in tables):
                tb.copy_fix_sequence(target, "hosts", "host_id")
            from keadb_cli.commands.stats import recount_in_transaction

            result.stats = recount_in_transaction(target, target_plan, target_schema)
            for table in tables:
                _tally_target(target, tb, table, offset)
            if merge:
                good = all(t.result.covered() for t in tables)
            else:
                good = result.subnet_counts_equal and result.checksums_equal
            if good:
                target.query("COMMIT")
                result.committed = True
                copied = sum(t.result.copied for t in tables)
                result.detail = (f"copied {copied} rows in one transaction; the target's "
                                 "rows match the source's (counts per subnet, checksum)"
                                 if not merge else
                                 f"merged {copied} rows in one transaction (replaced "
                                 f"{sum(t.result.replaced for t in tables)}); every "
                                 "subnet holds at least the source's rows")
            else:
                _rollback(target)
                bad = [t.result.name for t in tables if not (
                    t.result.covered() if merge else
                    t.result.counts_equal and t.result.checksums_equal)]
                result.exit_code = ExitCode.COPY_MISMATCH
                result.detail = (f"the target's rows differ from the source's in "
                                 f"{', '.join(bad)}: rolled back, nothing copied")
        except BaseException:
            _rollback(target)
            raise
    finally:
        _rollback(source)
    return result


def _rollback(session: Session) -> None:
    if not session.closed:
        with contextlib.suppress(KeaDbError):
            session.query("ROLLBACK")


def _check_empty(target: Session, plan: ConnectPlan, tables: list[_Table],
                 merge: bool) -> None:
    if merge:
        return
    held = []
    for table in tables:
        where = f" WHERE {table.spec.where}" if table.spec.where else ""
        rows = target.query(f"SELECT 1 FROM {table.spec.name}{where} LIMIT 1")
        if rows:
            held.append(table.spec.name)
    if held:
        raise KeaDbError(f"{plan.backend.display} {plan.where}: the target holds rows in "
                         f"{', '.join(held)}: give --merge to merge into it; nothing copied",
                         exit_code=ExitCode.NOT_EMPTY)


def _host_offset(target: Session, tables: list[_Table]) -> int:
    if not any(t.spec.name == "hosts" for t in tables):
        return 0
    rows = target.query("SELECT MAX(host_id) FROM hosts")
    return int(rows[0][0] or 0) if rows else 0


class _Writer:
    """Rows for one target table, written CHUNK at a time (a merge first deletes what
    they replace)."""

    def __init__(self, target: Session, backend: Backend, table: _Table, merge: bool,
                 offset: int) -> None:
        self.target, self.backend, self.table = target, backend, table
        self.merge, self.offset = merge, offset
        names = [c.name for c in table.target]
        self.insert = f"INSERT INTO {table.spec.name} ({', '.join(names)}) VALUES "
        self.host_index = names.index("host_id") if table.spec.host_column and \
            "host_id" in names else -1
        self.key_index = names.index(table.spec.merge_key) if merge and \
            table.spec.merge_key in names else -1
        self.rows: list[list[str | None]] = []
        self.size = 0
        self.makers = [literal_maker(backend, c) for c in table.target]
        self.extended = [t for t in _LEASE6_EXTENDED if table.spec.name == "lease6" and
                         merge and _has_table(target, backend, t)]

    def add(self, row: list[str | None]) -> None:
        self.rows.append(row)
        self.size += sum(len(v) for v in row if v is not None)
        if len(self.rows) >= CHUNK or self.size >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        rows, self.rows, self.size = self.rows, [], 0
        if self.host_index >= 0 and self.offset:
            for row in rows:
                value = row[self.host_index]
                if value is not None:
                    row[self.host_index] = str(int(value) + self.offset)
        if self.merge:
            self._delete_replaced(rows)
        makers = self.makers
        values = ", ".join("(" + ", ".join([m(v) for m, v in zip(makers, row, strict=True)])
                           + ")" for row in rows)
        self.target.query(self.insert + values)
        self.table.result.copied += len(rows)

    def _delete_replaced(self, rows: list[list[str | None]]) -> None:
        spec, backend = self.table.spec, self.backend
        if self.key_index >= 0:
            column = self.table.target[self.key_index]
            keys = ", ".join(literal(backend, column, r[self.key_index]) for r in rows)
            for extended in self.extended:
                self.target.query(f"DELETE FROM {extended} WHERE lease_addr IN ({keys})")
            self.table.result.replaced += backend.delete_counted(
                self.target, f"DELETE FROM {spec.name} WHERE {spec.merge_key} IN ({keys})")
        elif spec.name == "hosts":
            self._delete_hosts(rows)

    def _delete_hosts(self, rows: list[list[str | None]]) -> None:
        """The target's hosts a source host collides with in Kea's unique keys (identifier,
        its type, and the DHCPv4 or DHCPv6 subnet; a host in neither subnet: the target's
        host of that identifier in neither), with their reservations and options."""
        names = [c.name for c in self.table.target]
        columns = dict(zip(names, self.table.target, strict=True))
        conditions = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            same = " AND ".join(
                f"{n} = {literal(self.backend, columns[n], values[n])}"
                for n in ("dhcp_identifier", "dhcp_identifier_type") if n in columns)
            subnets = [s for s in ("dhcp4_subnet_id", "dhcp6_subnet_id") if s in columns]
            for subnet in subnets:
                if values.get(subnet) is not None:
                    conditions.append(f"({same} AND {subnet} = "
                                      f"{literal(self.backend, columns[subnet], values[subnet])})")
            if all(values.get(s) is None for s in subnets):  # in no subnet: the same nowhere
                conditions.append(f"({same}" + "".join(f" AND {s} IS NULL" for s in subnets)
                                  + ")")
        if not conditions:
            return
        found = self.target.query(f"SELECT host_id FROM hosts WHERE host_id <= {self.offset} "
                                  f"AND ({' OR '.join(conditions)})")
        ids = ", ".join(str(int(r[0] or 0)) for r in found)
        if not ids:
            return
        for child in ("ipv6_reservations", "dhcp4_options", "dhcp6_options"):
            if _has_table(self.target, self.backend, child):
                self.target.query(f"DELETE FROM {child} WHERE host_id IN ({ids})")
        self.table.result.replaced += self.backend.delete_counted(
            self.target, f"DELETE FROM hosts WHERE host_id IN ({ids})")


def _has_table(session: Session, backend: Backend, name: str) -> bool:
    return bool(session.query(backend.copy_columns_sql.format(table=name)))


def _copy_table(source: Session, sb: Backend, target: Session, tb: Backend, table: _Table,
                merge: bool, offset: int) -> None:
    writer = _Writer(target, tb, table, merge, offset)
    columns = table.source
    tally = table.result.source
    subnets = table.subnet_indexes()

    normalisers = [normaliser(c) for c in columns]

    def on_row(row: Row) -> None:
        values = [f(v) for f, v in zip(normalisers, row, strict=True)]
        tally.add(values, subnets)
        writer.add(values)

    try:
        source.each_row(table.select(sb, columns, order=True), on_row)
        writer.flush()
    except QueryError as err:
        raise KeaDbError(f"copying {table.spec.name} failed: {err.message}; rolled back, "
                         "nothing copied", exit_code=ExitCode.FOREIGN) from None


def _tally_target(target: Session, tb: Backend, table: _Table, offset: int) -> None:
    columns = table.target
    tally = table.result.target
    subnets = table.subnet_indexes()
    names = [c.name for c in columns]
    host = names.index("host_id") if table.spec.host_column and "host_id" in names else -1

    normalisers = [normaliser(c) for c in columns]

    def on_row(row: Row) -> None:
        values = [f(v) for f, v in zip(normalisers, row, strict=True)]
        if host >= 0 and offset and values[host] is not None:
            values[host] = str(int(values[host] or 0) - offset)
        tally.add(values, subnets)

    target.each_row(table.select(tb, columns, order=False), on_row)
