"""Kea's own C client libraries (libpq, libmariadb), called through ctypes.

The test-tls session check must open the session *as Kea opens it*. Kea links libpq and
libmariadb (or libmysqlclient) directly, so the most faithful check uses the very same
libraries with the same settings: libpq gets Kea's keywords (``sslmode``, ``sslrootcert``...);
libmariadb gets ``mysql_ssl_set(key, cert, ca, capath, cipher)`` as Kea 2.1.2-2.5 calls it
(2.6+ sets the same five values one by one with ``mysql_options``) and keeps whatever session
the library gives, a cleartext one included. Loading a shared library costs a few
milliseconds, where importing psycopg costs a hundred or more.

When a library cannot be loaded, :func:`available` says so and the caller falls back on the
Python drivers (``keadb_cli.db.drivers``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keadb_cli.errors import DeniedError, KeaDbError, TlsError, UnreachableError

if TYPE_CHECKING:
    from keadb_cli.db.plan import ConnectPlan

# Sonames first (what Kea's packages link), then whatever the linker finds.
_LIBPQ_NAMES = ("libpq.so.5", "pq")
_LIBMARIADB_NAMES = ("libmariadb.so.3", "mariadb", "libmysqlclient.so.21", "mysqlclient")

_CONNECTION_OK = 0  # ConnStatusType
_PGRES_TUPLES_OK = 2  # ExecStatusType
_MYSQL_OPT_CONNECT_TIMEOUT = 0  # enum mysql_option: the first member in every version
_CLIENT_FOUND_ROWS = 2  # Kea sets it

# MySQL client/server error numbers.
_MYSQL_DENIED = {1044, 1045, 1049, 1130, 1227, 1251, 1698, 3159, 3118}
_MYSQL_TLS = {2026}  # CR_SSL_CONNECTION_ERROR

_cache: dict[str, Any] = {}


@dataclass(frozen=True)
class LibSession:
    """What the server says of a session opened with Kea's client library."""

    library: str  # "libpq 15.20", "libmariadb 3.3.8"
    ssl: bool
    version: str | None
    cipher: str | None
    bits: int | None = None
    client_dn: str | None = None
    server_requires_tls: bool | None = None


def _load(names: tuple[str, ...]) -> Any:
    for name in names:
        if name.startswith("lib"):
            path = name
        else:  # ctypes.util is slow to import: only when the sonames are not there
            from ctypes import util

            path = util.find_library(name) or ""
        if not path:
            continue
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _libpq() -> Any:
    if "pq" not in _cache:
        lib = _load(_LIBPQ_NAMES)
        if lib is not None:
            try:
                _declare_libpq(lib)
            except AttributeError:  # too old (no PQsslInUse): let the driver do it
                lib = None
        _cache["pq"] = lib
    return _cache["pq"]


def _libmariadb() -> Any:
    if "my" not in _cache:
        lib = _load(_LIBMARIADB_NAMES)
        if lib is not None:
            try:
                _declare_libmariadb(lib)
            except AttributeError:
                lib = None
        _cache["my"] = lib
    return _cache["my"]


def _declare_libpq(lib: Any) -> None:
    p, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, res, args in (
        ("PQconnectdbParams", p, [ctypes.POINTER(cp), ctypes.POINTER(cp), i]),
        ("PQstatus", i, [p]),
        ("PQerrorMessage", cp, [p]),
        ("PQfinish", None, [p]),
        ("PQexec", p, [p, cp]),
        ("PQresultStatus", i, [p]),
        ("PQresultErrorMessage", cp, [p]),
        ("PQntuples", i, [p]),
        ("PQgetvalue", cp, [p, i, i]),
        ("PQgetisnull", i, [p, i, i]),
        ("PQclear", None, [p]),
        ("PQsslInUse", i, [p]),
        ("PQlibVersion", i, []),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


def _declare_libmariadb(lib: Any) -> None:
    p, cp, u, ul = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_ulong
    for name, res, args in (
        ("mysql_init", p, [p]),
        ("mysql_options", ctypes.c_int, [p, ctypes.c_int, p]),
        ("mysql_ssl_set", ctypes.c_char, [p, cp, cp, cp, cp, cp]),
        ("mysql_real_connect", p, [p, cp, cp, cp, cp, u, cp, ul]),
        ("mysql_errno", u, [p]),
        ("mysql_error", cp, [p]),
        ("mysql_get_ssl_cipher", cp, [p]),
        ("mysql_query", ctypes.c_int, [p, cp]),
        ("mysql_store_result", p, [p]),
        ("mysql_num_fields", u, [p]),
        ("mysql_fetch_row", ctypes.POINTER(cp), [p]),
        ("mysql_free_result", None, [p]),
        ("mysql_close", None, [p]),
        ("mysql_get_client_info", cp, []),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


def available(backend_type: str) -> bool:
    """Can Kea's client library for this backend be loaded here?"""
    lib = _libpq() if backend_type == "postgresql" else _libmariadb()
    return lib is not None


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _redact(text: str, plan: ConnectPlan) -> str:
    if plan.password:
        text = text.replace(plan.password, "***")
    return " ".join(text.split())


# -- PostgreSQL -------------------------------------------------------------------------------

_PG_DENIED = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "valid client certificate",
    "pg_hba.conf rejects",
)
_PG_UNAVAILABLE = ("too many", "starting up", "shutting down", "in recovery mode")
_PG_TLS = ("ssl", "tls", "certificate", "private key", "sslmode")


def _pg_error(message: str, plan: ConnectPlan) -> KeaDbError:
    text = f"{plan.backend.display} {plan.where}: {_redact(message, plan)}"
    lowered = message.lower()
    if any(h in lowered for h in _PG_UNAVAILABLE):
        return UnreachableError(text)
    if any(h in lowered for h in _PG_DENIED):
        return DeniedError(text)
    if any(h in lowered for h in _PG_TLS):
        return TlsError(text)
    return UnreachableError(text)


def pg_session(plan: ConnectPlan) -> LibSession:
    """Log in with libpq as Kea does (its keywords, sslmode explicit) and read pg_stat_ssl.

    Raises:
        UnreachableError, DeniedError, TlsError: with libpq's own words, password-free.
    """
    lib = _libpq()
    if lib is None:
        raise UnreachableError("libpq cannot be loaded")
    params = plan.libpq_params()
    keys = (ctypes.c_char_p * (len(params) + 1))(*(k.encode() for k in params), None)
    values = (ctypes.c_char_p * (len(params) + 1))(*(v.encode() for v in params.values()), None)
    conn = lib.PQconnectdbParams(keys, values, 0)
    if not conn:
        raise UnreachableError("libpq could not allocate a connection")
    try:
        if lib.PQstatus(conn) != _CONNECTION_OK:
            raise _pg_error(_text(lib.PQerrorMessage(conn)), plan)
        version = lib.PQlibVersion()
        library = f"libpq {version // 10000}.{version % 10000}"
        sql = (
            "SELECT ssl, version, cipher, bits, client_dn FROM pg_stat_ssl "
            "WHERE pid = pg_backend_pid()"
        )
        res = lib.PQexec(conn, sql.encode())
        try:
            if lib.PQresultStatus(res) != _PGRES_TUPLES_OK:
                raise KeaDbError(
                    f"reading pg_stat_ssl failed: {_text(lib.PQresultErrorMessage(res)).strip()}"
                )
            if lib.PQntuples(res) < 1:
                return LibSession(library, bool(lib.PQsslInUse(conn)), None, None)
            row = [
                None if lib.PQgetisnull(res, 0, col) else _text(lib.PQgetvalue(res, 0, col))
                for col in range(5)
            ]
        finally:
            lib.PQclear(res)
        ssl, tls_version, cipher, bits, client_dn = row
        return LibSession(
            library=library,
            ssl=ssl == "t",
            version=tls_version or None,
            cipher=cipher or None,
            bits=int(bits) if bits else None,
            client_dn=client_dn or None,
        )
    finally:
        lib.PQfinish(conn)


# -- MySQL ------------------------------------------------------------------------------------


def _mysql_error(lib: Any, handle: int, plan: ConnectPlan) -> KeaDbError:
    code = int(lib.mysql_errno(handle))
    message = _redact(_text(lib.mysql_error(handle)), plan)
    text = f"{plan.backend.display} {plan.where}: {message} ({code})"
    if code in _MYSQL_DENIED:
        return DeniedError(text)
    if code in _MYSQL_TLS:
        return TlsError(text)
    return UnreachableError(text)


def _mysql_rows(lib: Any, handle: int, sql: str, plan: ConnectPlan) -> list[list[str | None]]:
    if lib.mysql_query(handle, sql.encode()) != 0:
        raise _mysql_error(lib, handle, plan)
    res = lib.mysql_store_result(handle)
    if not res:
        return []
    try:
        width = int(lib.mysql_num_fields(res))
        rows: list[list[str | None]] = []
        while True:
            row = lib.mysql_fetch_row(res)
            if not row:
                return rows
            rows.append([None if row[i] is None else _text(row[i]) for i in range(width)])
    finally:
        lib.mysql_free_result(res)


def mysql_session(plan: ConnectPlan) -> LibSession:
    """Log in with libmariadb as Kea does (``mysql_ssl_set`` with its five keys when any is
    set, no SSL mode of its own) and read the session's ``Ssl_version`` / ``Ssl_cipher``.

    Raises:
        UnreachableError, DeniedError, TlsError: with the library's words, password-free.
    """
    lib = _libmariadb()
    if lib is None:
        raise UnreachableError("libmariadb cannot be loaded")
    handle = lib.mysql_init(None)
    if not handle:
        raise UnreachableError("libmariadb could not allocate a connection")
    try:
        timeout = ctypes.c_uint(max(1, int(plan.connect_timeout)))
        lib.mysql_options(handle, _MYSQL_OPT_CONNECT_TIMEOUT, ctypes.byref(timeout))
        tls = plan.tls
        if tls.use:

            def arg(value: str | None) -> bytes | None:
                return value.encode() if value else None

            lib.mysql_ssl_set(
                handle,
                arg(tls.key_file),
                arg(tls.cert_file),
                arg(tls.ca_file),
                arg(tls.ca_path),
                arg(tls.ciphers),
            )
        connected = lib.mysql_real_connect(
            handle,
            plan.host.encode() if plan.host else None,
            plan.user.encode(),
            plan.password.encode(),
            plan.database.encode(),
            plan.port if not plan.unix_socket else 0,
            plan.unix_socket.encode() if plan.unix_socket else None,
            _CLIENT_FOUND_ROWS,
        )
        if not connected:
            raise _mysql_error(lib, handle, plan)
        library = f"libmariadb {_text(lib.mysql_get_client_info())}"
        cipher = _text(lib.mysql_get_ssl_cipher(handle)) or None  # Kea's own check
        status = dict(
            (r[0], r[1])
            for r in _mysql_rows(
                lib,
                handle,
                "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')",
                plan,
            )
        )
        try:
            rows = _mysql_rows(lib, handle, "SELECT @@GLOBAL.require_secure_transport", plan)
            requires = bool(int(rows[0][0])) if rows and rows[0][0] is not None else None
        except (KeaDbError, ValueError):  # before MariaDB 10.5.2 / MySQL 5.7.8
            requires = None
        server_cipher = status.get("Ssl_cipher") or None
        return LibSession(
            library=library,
            ssl=bool(server_cipher or cipher),
            version=status.get("Ssl_version") or None,
            cipher=server_cipher or cipher,
            server_requires_tls=requires,
        )
    finally:
        lib.mysql_close(handle)
