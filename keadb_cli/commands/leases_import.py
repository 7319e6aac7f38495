"""``kea-db leases import``: Kea's memfile CSV lease files into a SQL lease database.

The files are read as Kea's own lease file loading reads them (``LeaseFileLoader::load``
and ``Memfile_LeaseMgr::loadLeasesFromFiles``): in Kea's load order (``.completed``, or else
``.2`` then ``.1``, then the current file; files of one rank in the order given), each row
replaces the previous row of its address, and a row with a valid lifetime of 0 removes the
lease (it is dropped, and the database is left as it is for that address). An IPv4 row with
neither hardware address nor client id that is not declined is dropped, as Kea drops it.
Columns follow the file's header: a file of an older CSV schema version has fewer columns
and their defaults (state 0, no user context, pool 0). Host names and user contexts have
their commas unescaped (``&#x2c``).

Every file is parsed and checked completely before anything is written: a malformed row (a
field too many or too few, an address that is not one, a number that is not one, a user
context that is not a JSON map) or a header that is not Kea's for the family is an error
naming FILE:LINE, and nothing at all is written. The parsed rows are staged in a private
temporary SQLite database on disk, keyed by address (the newest row wins), so memory stays
bounded however large the files. Then the leases are compared with the database's rows,
in address order, in chunks of :data:`CHUNK` addresses, each in its own transaction: new
addresses are inserted, changed rows updated (through the schema's triggers, so the
statistics follow), equal rows left alone; a second import of the same files changes
nothing.

A core module: it never prints and never exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.leases import known_schema
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.errors import ExitCode, KeaDbError, QueryError, SettingsError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Schema
from keadb_cli.schema.state import access_json

if TYPE_CHECKING:
    from keadb_cli.db.backends.base import Backend
    from keadb_cli.db.session import Session

CHUNK = 1000  # addresses per transaction
STAGE_BATCH = 5000  # parsed rows staged at once
REMOVED = "valid lifetime 0 (Kea removes the lease)"
IMPORT_STATEMENT_TIMEOUT = 3600.0

# Kea's CSV columns per family (csv_lease_file4.cc, csv_lease_file6.cc), the newest schema
# version last; a file's header is a prefix of these, at least up to hostname.
COLUMNS4 = ("address", "hwaddr", "client_id", "valid_lifetime", "expire", "subnet_id",
            "fqdn_fwd", "fqdn_rev", "hostname", "state", "user_context", "pool_id")
COLUMNS6 = ("address", "duid", "valid_lifetime", "expire", "subnet_id", "pref_lifetime",
            "lease_type", "iaid", "prefix_len", "fqdn_fwd", "fqdn_rev", "hostname",
            "hwaddr", "state", "user_context", "hwtype", "hwaddr_source", "pool_id")
DEFAULTS = {"state": "0", "user_context": "", "pool_id": "0", "hwaddr": "",
            "hwtype": "", "hwaddr_source": ""}

# The SQL columns, in the importer's order, with how each is read back (see
# Backend.import_read).
SQL4 = ("address", "hex:hwaddr", "hex:client_id", "valid_lifetime", "epoch:expire",
        "subnet_id", "int:fqdn_fwd", "int:fqdn_rev", "hostname", "state", "user_context",
        "pool_id")
SQL6 = ("address6:address", "hex:duid", "valid_lifetime", "epoch:expire", "subnet_id",
        "pref_lifetime", "lease_type", "iaid", "prefix_len", "int:fqdn_fwd", "int:fqdn_rev",
        "hostname", "hex:hwaddr", "state", "user_context", "hwtype", "hwaddr_source",
        "pool_id")

U32 = 2**32 - 1


@dataclass
class ImportResult:
    access: DbAccess
    family: int
    schema: Schema
    files: list[str]
    rows: int  # lease rows read
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    plan_only: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **access_json(self.access),
            "family": self.family,
            "schema": str(self.schema),
            "files": self.files,
            "rows": self.rows,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "dropped": dict(sorted(self.dropped.items())),
            "plan": self.plan_only,
            "seconds": round(self.seconds, 3),
        }


class LeaseFileError(KeaDbError):
    """A lease file that is not Kea's CSV of the family, or a malformed row in it."""

    exit_code = ExitCode.SETTINGS


def load_order(files: Sequence[str]) -> list[str]:
    """The files in Kea's load order: ``.completed`` (or else ``.2``, then ``.1``), then
    the rest; files of one rank keep the order given. Kea reads no ``.2``/``.1`` of a lease
    file whose ``.completed`` exists: given, they are read first and then overridden."""

    def rank(path: str) -> int:
        for number, suffix in enumerate((".2", ".1", ".completed")):
            if path.endswith(suffix):
                return number
        return 3

    return sorted(files, key=rank)  # sorted() is stable


@dataclass(frozen=True)
class _Lease:
    key: str  # the address, normalised
    values: tuple[str | None, ...]  # in SQL6/SQL4 order, in import_read's normal form
    where: str  # FILE:LINE


def _fail(where: str, what: str) -> LeaseFileError:
    return LeaseFileError(f"{where}: {what}; nothing imported")


def _number(where: str, name: str, text: str, low: int = 0, high: int = U32) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _fail(where, f"{name} {text!r} is not a number") from None
    if not low <= value <= high:
        raise _fail(where, f"{name} {value} is out of range")
    return value


def _hex(where: str, name: str, text: str) -> str | None:
    if text in ("", "NULL"):
        return None
    digits = text.replace(":", "").lower()
    if len(digits) % 2 and ":" in text:  # Kea accepts one digit between colons
        digits = "".join(part.rjust(2, "0") for part in text.lower().split(":"))
    try:
        bytes.fromhex(digits)
    except ValueError:
        raise _fail(where, f"{name} {text!r} is not hexadecimal") from None
    return digits


def _flag(where: str, name: str, text: str) -> str:
    if text in ("0", "1"):
        return text
    if text in ("true", "false"):
        return "1" if text == "true" else "0"
    raise _fail(where, f"{name} {text!r} is not 0 or 1")


def _context(where: str, text: str) -> str | None:
    text = text.replace("&#x2c", ",")
    if text in ("", "NULL"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise _fail(where, "user_context is not JSON") from None
    if not isinstance(value, dict):
        raise _fail(where, "user_context is not a JSON map")
    return text


def _optional(where: str, name: str, text: str, high: int) -> str | None:
    return None if text in ("", "NULL") else str(_number(where, name, text, 0, high))


def _parse4(where: str, f: dict[str, str]) -> tuple[bytes, tuple[str | None, ...], str]:
    try:
        address = ipaddress.IPv4Address(f["address"])
    except ValueError:
        raise _fail(where, f"address {f['address']!r} is not an IPv4 address") from None
    valid = _number(where, "valid_lifetime", f["valid_lifetime"])
    expire = _number(where, "expire", f["expire"], 0, 2**63 - 1)
    hwaddr, client_id = _hex(where, "hwaddr", f["hwaddr"]), _hex(where, "client_id",
                                                                  f["client_id"])
    state = _number(where, "state", f["state"])
    values = (str(int(address)), hwaddr, client_id, str(valid), str(expire),
              str(_number(where, "subnet_id", f["subnet_id"])),
              _flag(where, "fqdn_fwd", f["fqdn_fwd"]), _flag(where, "fqdn_rev", f["fqdn_rev"]),
              f["hostname"].replace("&#x2c", ","), str(state),
              _context(where, f["user_context"]), str(_number(where, "pool_id", f["pool_id"])))
    drop = ""
    if not hwaddr and not client_id and state != 1:
        drop = "neither hardware address nor client id (Kea drops the row)"
    return address.packed, values, drop


def _parse6(where: str, f: dict[str, str],
            iaid_signed: bool) -> tuple[bytes, tuple[str | None, ...], str]:
    try:
        address = ipaddress.IPv6Address(f["address"])
    except ValueError:
        raise _fail(where, f"address {f['address']!r} is not an IPv6 address") from None
    iaid = _number(where, "iaid", f["iaid"], -(2**31), U32)
    if iaid_signed and iaid > 2**31 - 1:
        iaid -= 2**32
    elif not iaid_signed and iaid < 0:
        iaid += 2**32
    lease_type = _number(where, "lease_type", f["lease_type"], 0, 255)
    # Kea reads prefix_len of prefixes (type 2) only; an address is a /128
    prefix_len = str(_number(where, "prefix_len", f["prefix_len"], 0, 128)
                     if lease_type == 2 else 128)
    duid = _hex(where, "duid", f["duid"])
    state = _number(where, "state", f["state"])
    values = (str(address), duid,
              str(_number(where, "valid_lifetime", f["valid_lifetime"])),
              str(_number(where, "expire", f["expire"], 0, 2**63 - 1)),
              str(_number(where, "subnet_id", f["subnet_id"])),
              str(_number(where, "pref_lifetime", f["pref_lifetime"])),
              str(lease_type), str(iaid),
              prefix_len,
              _flag(where, "fqdn_fwd", f["fqdn_fwd"]), _flag(where, "fqdn_rev", f["fqdn_rev"]),
              f["hostname"].replace("&#x2c", ","), _hex(where, "hwaddr", f["hwaddr"]),
              str(state), _context(where, f["user_context"]),
              _optional(where, "hwtype", f["hwtype"], 65535),
              _optional(where, "hwaddr_source", f["hwaddr_source"], U32),
              str(_number(where, "pool_id", f["pool_id"])))
    drop = ""
    if duid in (None, "00") and state != 1:
        drop = "an empty DUID on a lease not declined (Kea drops the row)"
    return address.packed, values, drop


class _Staging:
    """The leases of the files after Kea's loading, staged in a private temporary SQLite
    database on disk (deleted when closed): address -> the newest row, or its removal.

    Only the rows being parsed (a batch of :data:`STAGE_BATCH`) and one chunk of leases
    being written are in memory at a time, however large the files. Rows are staged in
    Kea's load order with ``INSERT OR REPLACE``, so the last row of an address wins; they
    come back in address order.
    """

    def __init__(self, family: int) -> None:
        import sqlite3  # only this command needs it

        self.family = family
        self.width = len(SQL4 if family == 4 else SQL6)
        # "": a private temporary database on disk ($SQLITE_TMPDIR, $TMPDIR, /var/tmp, /tmp)
        self.db = sqlite3.connect("", isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384",
                       "temp_store = FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        values = ", ".join(f"v{i}" for i in range(self.width))
        self.db.execute(f"CREATE TABLE final (key BLOB PRIMARY KEY, file INTEGER, "
                        f"line INTEGER, removed INTEGER, {values}) WITHOUT ROWID")
        marks = ", ".join("?" * (self.width + 4))
        self.insert = f"INSERT OR REPLACE INTO final VALUES ({marks})"
        self.select = f"SELECT key, file, line, removed, {values} FROM final ORDER BY key"
        self.files: list[str] = []
        self.rows = 0  # lease rows read
        self.skipped: dict[str, int] = {}  # rows Kea does not load, by reason
        self.pending: list[tuple[Any, ...]] = []
        self.db.execute("BEGIN")

    def stage(self, packed: bytes, file: int, line: int, removed: bool,
              values: tuple[str | None, ...]) -> None:
        self.pending.append((packed, file, line, int(removed), *values))
        if len(self.pending) >= STAGE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.db.executemany(self.insert, self.pending)
            self.pending = []

    def finish(self) -> None:
        self.flush()
        self.db.execute("COMMIT")

    def chunks(self, dropped: dict[str, int]) -> Iterator[list[_Lease]]:
        """The kept leases in chunks of :data:`CHUNK`, by address; removals are counted
        in ``dropped``."""
        make = ipaddress.IPv4Address if self.family == 4 else ipaddress.IPv6Address
        cursor = self.db.execute(self.select)
        chunk: list[_Lease] = []
        while rows := cursor.fetchmany(CHUNK):
            for row in rows:
                if row[3]:
                    dropped[REMOVED] = dropped.get(REMOVED, 0) + 1
                    continue
                chunk.append(_Lease(str(make(row[0])), tuple(row[4:]),
                                    f"{self.files[row[1]]}:{row[2]}"))
                if len(chunk) == CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        self.db.close()


def read_files(files: Sequence[str], family: int, *, iaid_signed: bool) -> _Staging:
    """Parse every file completely, in Kea's load order, into a staging database (the
    caller closes it).

    Raises:
        LeaseFileError: an unreadable file, a header that is not Kea's for ``family``, a
            malformed row (FILE:LINE).
        SettingsError: the staging database failed (no room for it, say).
    """
    import sqlite3

    known = COLUMNS4 if family == 4 else COLUMNS6
    try:
        staging = _Staging(family)
    except sqlite3.Error as err:
        raise staging_failed(err, "nothing imported") from None
    try:
        for path in load_order(files):
            staging.files.append(path)
            try:
                _read_file(path, family, known, iaid_signed, staging)
            except OSError as err:
                raise LeaseFileError(f"{path}: {err.strerror or err}; nothing "
                                     "imported") from None
        staging.finish()
    except sqlite3.Error as err:
        staging.close()
        raise staging_failed(err, "nothing imported") from None
    except BaseException:
        staging.close()
        raise
    return staging


def staging_failed(err: Exception, nothing: str) -> SettingsError:
    return SettingsError(f"the temporary staging database of the lease files failed ({err}): "
                         "give $TMPDIR (or $SQLITE_TMPDIR) room for about the files' size; "
                         f"{nothing}")


def _read_file(path: str, family: int, known: tuple[str, ...], iaid_signed: bool,
               staging: _Staging) -> None:
    index = len(staging.files) - 1
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
        minimum = known.index("hostname") + 1
        if header[:1] != ["address"] or len(header) < minimum or \
                tuple(header) != known[:len(header)]:
            other = COLUMNS6 if family == 4 else COLUMNS4
            hint = (f" (the header of an IPv{10 - family} lease file)"
                    if tuple(header) == other[:len(header)] and len(header) > 1 else "")
            raise _fail(f"{path}:1", f"not Kea's IPv{family} lease file header{hint}")
        for number, line in enumerate(fh, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            where = f"{path}:{number}"
            values = line.split(",")
            if len(values) != len(header):
                raise _fail(where, f"{len(values)} fields, the header has {len(header)}")
            fields = dict(DEFAULTS)
            fields.update(zip(header, values, strict=True))
            if family == 4:
                packed, parsed, drop = _parse4(where, fields)
            else:
                packed, parsed, drop = _parse6(where, fields, iaid_signed)
            staging.rows += 1
            if drop:  # Kea skips the row: an earlier row of the address stays
                staging.skipped[drop] = staging.skipped.get(drop, 0) + 1
            else:  # the newest row so far; valid lifetime 0: Kea removes the lease
                staging.stage(packed, index, number, fields["valid_lifetime"] == "0",
                              parsed)


def import_leases(
    access: DbAccess,
    family: int,
    files: Sequence[str],
    *,
    plan_only: bool = False,
    env: dict[str, str] | None = None,
) -> ImportResult:
    """Import ``files`` (Kea's memfile CSV of ``family``) into ``access``'s lease tables.

    Raises:
        SettingsError: a bad family or no file.
        LeaseFileError: a file or row that is not Kea's (nothing written).
        KeaDbError: connection failures; a database without a known Kea schema (EMPTY,
            FOREIGN); a failed write (that chunk rolled back).
    """
    if family not in (4, 6):
        raise SettingsError(f"the lease family is 4 or 6, not {family}")
    if not files:
        raise SettingsError("give at least one lease file")
    for path in files:
        if not os.path.isfile(path):
            raise LeaseFileError(f"{path}: not a file; nothing imported")
    if access.statement_timeout is None:
        access = dataclasses.replace(access, statement_timeout=IMPORT_STATEMENT_TIMEOUT)
    plan = plan_for(access, env)
    backend = plan.backend
    started = time.monotonic()
    import sqlite3  # only this command needs it

    staging = read_files(files, family, iaid_signed=backend.iaid_signed)
    try:
        session = open_session(plan)
        try:
            schema = known_schema(session, plan, access, "nothing imported")
            result = ImportResult(access, family, schema, list(load_order(files)),
                                  staging.rows, plan_only=plan_only)
            table = f"lease{family}"
            columns = _columns(session, backend, table)
            kind = _address_kind(session, backend) if family == 6 else ""
            sql_columns = [c for c in (SQL4 if family == 4 else SQL6)
                           if c.rpartition(":")[2] in columns]
            result.dropped.update(staging.skipped)
            try:
                for chunk in staging.chunks(result.dropped):
                    _chunk(session, backend, table, sql_columns, family, kind, chunk,
                           result)
            except sqlite3.Error as err:
                raise staging_failed(err, "earlier chunks are committed") from None
        finally:
            session.close()
    finally:
        staging.close()
    result.seconds = time.monotonic() - started
    return result


def _chunk(session: Session, backend: Backend, table: str, sql_columns: list[str],
           family: int, kind: str, chunk: list[_Lease], result: ImportResult) -> None:
    """Compare one chunk with the stored rows and write the differences in one
    transaction (``--plan``: count only, the transaction rolled back). ``kind``: the
    data type of lease6.address ("" for lease4)."""
    every = SQL4 if family == 4 else SQL6
    indexes = [every.index(c) for c in sql_columns]
    reads = ", ".join(backend.import_read(c, _as_text(kind)) for c in sql_columns)
    keys = ", ".join(_address(backend, lease, family, kind) for lease in chunk)
    session.query(backend.import_begin)
    try:
        stored: dict[str, tuple[str | None, ...]] = {}
        lock = "" if result.plan_only else " FOR UPDATE"
        for row in session.query(f"SELECT {reads} FROM {table} WHERE address IN ({keys})"
                                 f"{lock}"):
            stored[_key(row[0], family)] = tuple(row)
        inserts: list[str] = []
        for lease in chunk:
            values = tuple(lease.values[i] for i in indexes)
            old = stored.get(lease.key)
            if old is None:
                result.new += 1
                inserts.append("(" + ", ".join(_literals(backend, sql_columns, lease, family,
                                                         kind)) + ")")
            elif _same(old, values, sql_columns):
                result.unchanged += 1
            else:
                result.updated += 1
                if not result.plan_only:
                    sets = ", ".join(
                        f"{c.rpartition(':')[2]} = {v}"
                        for c, v in zip(sql_columns, _literals(backend, sql_columns, lease,
                                                               family, kind), strict=True)
                        if c.rpartition(":")[2] != "address")
                    key = _address(backend, lease, family, kind)
                    session.query(f"UPDATE {table} SET {sets} WHERE address = {key}")
        if inserts and not result.plan_only:
            names = ", ".join(c.rpartition(":")[2] for c in sql_columns)
            session.query(f"INSERT INTO {table} ({names}) VALUES {', '.join(inserts)}")
        session.query("ROLLBACK" if result.plan_only else "COMMIT")
    except QueryError as err:
        _rollback(session)
        raise KeaDbError(f"{backend.display}: writing {table} failed at the chunk from "
                         f"{chunk[0].where}: {err.message}; earlier chunks are committed",
                         exit_code=ExitCode.FOREIGN) from None
    except BaseException:
        _rollback(session)
        raise


def _rollback(session: Session) -> None:
    with contextlib.suppress(KeaDbError):
        session.query("ROLLBACK")


def _key(stored: str | None, family: int) -> str:
    text = stored or ""
    if family == 4:
        return str(ipaddress.IPv4Address(int(text)))
    if len(text) == 32 and ":" not in text:
        return str(ipaddress.IPv6Address(bytes.fromhex(text)))
    return str(ipaddress.IPv6Address(text))


def _same(old: tuple[str | None, ...], new: tuple[str | None, ...],
          columns: list[str]) -> bool:
    for column, a, b in zip(columns, old, new, strict=True):
        if column.startswith("address"):
            continue
        if column == "hostname":
            a, b = a or "", b or ""
        if a != b:
            return False
    return True


def _as_text(kind: str) -> bool:
    """A lease6.address of this data type holds the address as text (Kea 2.2's
    PostgreSQL schema: varchar; MySQL before its binary column: varchar)."""
    return kind in ("character varying", "varchar", "text", "character", "char")


def _address(backend: Backend, lease: _Lease, family: int, kind: str) -> str:
    if family == 4:
        return str(int(ipaddress.IPv4Address(lease.key)))
    address = ipaddress.IPv6Address(lease.key)
    return backend.import_address6(address.packed, str(address), "binary" in kind,
                                   as_text=_as_text(kind))


def _literals(backend: Backend, columns: list[str], lease: _Lease, family: int,
              address_kind: str) -> list[str]:
    every = SQL4 if family == 4 else SQL6
    out = []
    for column in columns:
        value = lease.values[every.index(column)]
        kind, _, name = column.rpartition(":")
        if name == "address":
            out.append(_address(backend, lease, family, address_kind))
        elif value is None:
            out.append("NULL")
        elif kind == "hex":
            out.append(backend.import_bytes(bytes.fromhex(value)))
        elif kind == "epoch":
            out.append(backend.import_expire(int(value)))
        elif kind == "int":
            out.append("TRUE" if value == "1" else "FALSE")
        elif name in ("hostname", "user_context"):
            out.append(backend.import_text(value))
        else:
            out.append(str(int(value)))
    return out


def _columns(session: Session, backend: Backend, table: str) -> set[str]:
    rows = session.query(backend.import_columns_sql.format(table=table))
    return {str(r[0]).lower() for r in rows}


def _address_kind(session: Session, backend: Backend) -> str:
    """lease6.address's data type as the server names it, lower case ("" unknown)."""
    if not backend.address_type_sql:
        return ""
    rows = session.query(backend.address_type_sql.format(table="lease6"))
    return str(rows[0][0] or "").lower() if rows else ""
