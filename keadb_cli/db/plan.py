"""Kea access entry -> connection plan: the one place where Kea's keywords become
connection settings (host, socket, timeouts, TLS), mapped as Kea maps them.

A plan is data; :func:`keadb_cli.db.session.open_session` opens it with the client library
Kea links (libpq, libmariadb), or with the fallback drivers.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.db.backends import Backend, backend_for
from keadb_cli.errors import SettingsError
from keadb_cli.kea.access import DEFAULT_STATEMENT_TIMEOUT, MAX_TIMEOUT, DbAccess
from keadb_cli.text import keep_secret, shown

if TYPE_CHECKING:
    import ssl

    from keadb_cli.db.session_kit import Endpoint

# Where libmariadb looks for the server socket when host is "localhost" (Debian's default).
DEFAULT_MYSQL_SOCKET = "/run/mysqld/mysqld.sock"


@dataclass(frozen=True)
class TlsSettings:
    """What TLS the session asks for, in orthogonal terms both protocols understand.

    ``mode`` is the libpq-style name shown to the user; the booleans are what the clients
    act on.
    """

    mode: str = "disable"
    use: bool = False  # ask the server for TLS when it offers it
    required: bool = False  # fail when the server offers no TLS (else: silent cleartext)
    verify_chain: bool = False  # the server chain must verify against the CA
    verify_hostname: bool = False  # the server name must match host
    ca_file: str | None = None
    ca_path: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ciphers: str | None = None
    # Why the mode is what it is ("Kea 3.1+: trust-anchor without ssl-mode"), for output.
    reason: str = ""

    def context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for this policy (imports ssl only when TLS is used)."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = self.verify_hostname
        if self.verify_chain:
            ctx.verify_mode = ssl.CERT_REQUIRED
            if self.ca_file == "system":  # libpq's sslrootcert=system
                ctx.load_default_certs()
            else:
                ctx.load_verify_locations(cafile=self.ca_file, capath=self.ca_path)
            # MySQL and PostgreSQL servers commonly run with self-made CAs that lack the
            # extensions X509_STRICT insists on; OpenSSL's C clients accept them too.
            ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        return ctx


@dataclass(frozen=True)
class ConnectPlan:
    """Everything needed to open a session; computed once by :func:`plan_for`."""

    backend: Backend
    host: str | None  # TCP host name or address; None when ``unix_socket`` is used
    port: int
    unix_socket: str | None
    user: str
    password: str | None = field(repr=False)  # None: the library's own sources (.pgpass...)
    database: str
    connect_timeout: float
    read_timeout: float | None = None
    write_timeout: float | None = None
    tcp_user_timeout_ms: int | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT  # seconds, for every statement
    statement_timeout_given: bool = False  # set by the user (--statement-timeout...)
    # Which deadline statement_timeout is, named in the message when it ends a session.
    deadline: str = "--statement-timeout"
    pg_options: str | None = None  # PGOPTIONS from the environment, kept by libpq_params
    server_public_key: str | None = None  # MySQL: the RSA key file the user trusts
    # With a host list, once a session is open: the host that answered ("db2:5432").
    answered: str | None = None

    def for_reads(self) -> ConnectPlan:
        """This plan for a command whose session only reads: unless the user set
        ``--statement-timeout``, every statement gets the backend's read deadline
        (:meth:`keadb_cli.db.backends.base.Backend.read_deadline`) instead of the long
        default that statements changing the schema need."""
        if self.statement_timeout_given:
            return self
        seconds, source = self.backend.read_deadline(self)
        return dataclasses.replace(
            self, statement_timeout=seconds,
            deadline=f"the read deadline: {source}; set --statement-timeout to wait longer")

    @property
    def socket_dir(self) -> str | None:
        """PostgreSQL: the directory of the Unix socket (what libpq calls host)."""
        if self.unix_socket and self.backend.type == "postgresql":
            return os.path.dirname(self.unix_socket)
        return None

    @property
    def server_unproven(self) -> bool:
        """PostgreSQL over TCP without a verified server certificate: nothing proves that the
        server is the one meant, so it must not get a password in clear (libpq 16+'s
        ``require_auth=!password``; :mod:`keadb_cli.db.pg_guard` outside TLS)."""
        return self.unix_socket is None and not self.tls.verify_chain

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts the client library tries, in order: PostgreSQL's ``host`` may be a
        comma-separated list (libpq's; Kea passes it as it is, with its one ``port`` for
        every host). An empty entry or a path is libpq's Unix socket directory."""
        if self.host is None:
            return ()
        return tuple(self.host.split(",")) if self.backend.host_lists else (self.host,)

    @property
    def host_list(self) -> bool:
        """Whether ``host`` names more than one host (libpq tries each in order)."""
        return len(self.hosts) > 1

    def one_host(self, host: str) -> ConnectPlan:
        """This plan for one host of its list (the one that answered, as libpq names it:
        a name, an address, or a Unix socket directory)."""
        if self.backend.host_lists and (host.startswith("/") or not host):
            directory = host or "/var/run/postgresql"
            return dataclasses.replace(
                self, host=None, unix_socket=f"{directory.rstrip('/')}/.s.PGSQL.{self.port}")
        return dataclasses.replace(self, host=host, unix_socket=None)

    def answered_by(self, endpoint: Endpoint) -> ConnectPlan:
        """This plan once a session reached ``endpoint``: with a host list, messages name
        that host (and the list) from then on."""
        return dataclasses.replace(self, answered=str(endpoint)) if self.host_list else self

    @property
    def where(self) -> str:
        """Password-free description of the endpoint (with a host list: every host, or the
        one that answered)."""
        if self.unix_socket:
            return f"{self.unix_socket}/{self.database}"
        if self.answered:
            return f"{self.answered}/{self.database} (host list {self.host})"
        host = ",".join(f"[{h}]" if ":" in h else h for h in self.hosts) or None
        return f"{host}:{self.port}/{self.database}"

    def libpq_params(self) -> dict[str, str]:
        """libpq keywords for psycopg, mapped as Kea maps its keys."""
        timeout_ms = max(1, int(self.statement_timeout * 1000))
        options = f"-c statement_timeout={timeout_ms}"
        params = {
            "host": self.socket_dir or self.host or "localhost",
            "port": str(self.port),
            "user": self.user,
            "dbname": self.database,
            "connect_timeout": str(int(self.connect_timeout)),
            "sslmode": self.tls.mode,
            "application_name": "kea-db",
            "options": f"{self.pg_options} {options}" if self.pg_options else options,
        }
        if self.password:  # else libpq's own: PGPASSWORD, then PGPASSFILE / ~/.pgpass
            params["password"] = self.password
        if self.tcp_user_timeout_ms:
            params["tcp_user_timeout"] = str(self.tcp_user_timeout_ms)
        if self.tls.ca_file:
            params["sslrootcert"] = self.tls.ca_file
        if self.tls.cert_file:
            params["sslcert"] = self.tls.cert_file
        if self.tls.key_file:
            params["sslkey"] = self.tls.key_file
        if self.tls.use:
            params["gssencmode"] = "disable"
        return params

    def pymysql_kwargs(self) -> dict[str, Any]:
        """PyMySQL keyword arguments, with an SSLContext kea-db built itself."""
        kwargs: dict[str, Any] = {
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "connect_timeout": self.connect_timeout,
            "autocommit": True,
            "charset": "utf8mb4",
            "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
        }
        if self.unix_socket:
            kwargs["unix_socket"] = self.unix_socket
        else:
            kwargs["host"] = self.host
            kwargs["port"] = self.port
        if self.read_timeout:
            kwargs["read_timeout"] = self.read_timeout
        if self.write_timeout:
            kwargs["write_timeout"] = self.write_timeout
        if self.tls.use:
            kwargs["ssl"] = self.tls.context()
        else:
            kwargs["ssl_disabled"] = True
        return kwargs


def _check_timeout(keyword: str, value: int | None, *, minimum: int) -> None:
    if value is None:
        return
    if not minimum <= value <= MAX_TIMEOUT:
        raise SettingsError(
            f"{keyword} must be between {minimum} and {MAX_TIMEOUT} seconds, got {value}"
        )


def _libpq_file(given: str | None, env: dict[str, str], variable: str, default: str) -> str | None:
    """A TLS file as libpq finds it: the keyword, else its PG* variable, else the file in
    ~/.postgresql when it exists. Kea before 3.1 passes no TLS keyword, so there the
    environment is how a Kea server's PostgreSQL TLS is configured."""
    if given:
        return given
    if env.get(variable):
        return env[variable]
    home = env.get("HOME") or os.path.expanduser("~")
    candidate = os.path.join(home, ".postgresql", default)
    return candidate if os.path.isfile(candidate) else None


def _postgresql_tls(
    access: DbAccess, env: dict[str, str], *, allow_ca_directory: bool = False
) -> TlsSettings:
    """Kea 3.1+'s mapping of its TLS keys onto libpq's sslmode, always explicit; files the
    keys leave unset come from libpq's environment variables and defaults, as in libpq."""
    files = {
        "ca_file": _libpq_file(access.trust_anchor, env, "PGSSLROOTCERT", "root.crt"),
        "cert_file": _libpq_file(access.cert_file, env, "PGSSLCERT", "postgresql.crt"),
        "key_file": _libpq_file(access.key_file, env, "PGSSLKEY", "postgresql.key"),
    }
    mode = access.ssl_mode
    if mode:
        reason = "ssl-mode"
    elif access.trust_anchor:
        mode, reason = "verify-ca", "Kea 3.1+: trust-anchor without ssl-mode means verify-ca"
    elif access.cert_file or access.key_file or access.cipher_list:
        mode, reason = "require", "Kea 3.1+: TLS keys without ssl-mode mean require"
    else:
        # No TLS key: Kea sends no sslmode, so libpq's own default applies. Say so.
        mode = env.get("PGSSLMODE") or "prefer"
        reason = "no TLS keys: libpq default" + (" (PGSSLMODE)" if "PGSSLMODE" in env else "")
    if files["ca_file"] and os.path.isdir(files["ca_file"]) and not allow_ca_directory:
        raise SettingsError(
            f"trust-anchor {files['ca_file']} is a directory: PostgreSQL (libpq) needs a "
            "CA file; point trust-anchor at a PEM file"
        )
    if mode in ("verify-ca", "verify-full") and not files["ca_file"]:
        raise SettingsError(
            f"sslmode {mode} needs a root certificate: set trust-anchor (or PGSSLROOTCERT, "
            "or ~/.postgresql/root.crt), or use sslrootcert=system"
        )
    # libpq: "require" verifies the chain too when a root certificate is there.
    verify_chain = mode in ("verify-ca", "verify-full") or (
        mode == "require" and bool(files["ca_file"])
    )
    return TlsSettings(
        mode=mode,
        use=mode in ("prefer", "require", "verify-ca", "verify-full"),
        required=mode in ("require", "verify-ca", "verify-full"),
        verify_chain=verify_chain,
        verify_hostname=mode == "verify-full",
        reason=reason,
        **files,
    )


def _mysql_tls(
    access: DbAccess, env: dict[str, str], *, allow_ca_directory: bool = False
) -> TlsSettings:
    """Kea's MySQL TLS: asked for when any key is set; the client library verifies the
    chain when a CA is given, never the host name, and keeps a cleartext session (Kea only
    logs it) when the server offers no TLS."""
    if not (access.trust_anchor or access.cert_file or access.key_file or access.cipher_list):
        return TlsSettings(mode="disable", reason="no TLS keys")
    ca_file = ca_path = None
    if access.trust_anchor:
        if os.path.isdir(access.trust_anchor):
            ca_path = access.trust_anchor
        else:
            ca_file = access.trust_anchor
    return TlsSettings(
        mode="verify-ca" if access.trust_anchor else "prefer",
        use=True,
        required=False,
        verify_chain=bool(access.trust_anchor),
        verify_hostname=False,
        ca_file=ca_file,
        ca_path=ca_path,
        cert_file=access.cert_file,
        key_file=access.key_file,
        ciphers=access.cipher_list,
        reason="Kea's MySQL TLS keys (cleartext fallback is only logged by Kea)",
    )


def _refuse_special_files(access: DbAccess) -> None:
    """The client libraries read these files themselves: a FIFO or a device would block
    them past every timeout, so such a path is refused before connecting."""
    from keadb_cli.files import refuse_special

    for what, path, directory in (
        ("trust-anchor", access.trust_anchor, True),
        ("cert-file", access.cert_file, False),
        ("key-file", access.key_file, False),
        ("--server-public-key", access.server_public_key, False),
    ):
        problem = refuse_special(path, what=what, allow_directory=directory) if path else None
        if problem:
            raise SettingsError(problem)


def _library_port(backend: Backend, env: dict[str, str]) -> int | None:
    """The port the client library takes from its environment variable, when set.

    Raises:
        SettingsError: the variable is not one port number (a libpq port list included).
    """
    value = env.get(backend.port_variable, "").strip() if backend.port_variable else ""
    if not value:
        return None
    if "," in value:
        raise SettingsError(
            f"{backend.port_variable} is a list of ports ({shown(value, 40)}): kea-db takes "
            "one port; set port in Kea's configuration (or --port)")
    if not value.isdigit() or not 0 < int(value) <= 65535:
        raise SettingsError(f"{backend.port_variable} must be a port number between 1 and "
                            f"65535, got {shown(value, 40)}; Kea's port is unset, so the "
                            f"client library would use it")
    return int(value)


def _mysql_socket(host: str, _port: int, env: dict[str, str]) -> str | None:
    """libmariadb (and libmysqlclient) take "localhost" as the Unix socket; port unused."""
    return (env.get("MYSQL_UNIX_PORT") or DEFAULT_MYSQL_SOCKET) if host == "localhost" else None


def _pg_socket(host: str, port: int, _env: dict[str, str]) -> str | None:
    """libpq takes a host that is a path as the directory of the Unix socket."""
    return f"{host.rstrip('/')}/.s.PGSQL.{port}" if host.startswith("/") else None


# Per backend: how Kea's TLS keys map onto the library, and where its Unix socket is.
_TLS_RULES: dict[str, Callable[..., TlsSettings]] = {
    "mysql": _mysql_tls,
    "postgresql": _postgresql_tls,
}
_SOCKETS: dict[str, Callable[[str, int, dict[str, str]], str | None]] = {
    "mysql": _mysql_socket,
    "postgresql": _pg_socket,
}


def plan_for(
    access: DbAccess, env: dict[str, str] | None = None, *, allow_ca_directory: bool = False
) -> ConnectPlan:
    """The connection plan for an access entry, mapped exactly as Kea maps its keys.

    ``allow_ca_directory`` keeps a PostgreSQL trust-anchor directory in the plan (as Kea 3.1+
    hands it to libpq, which then fails) instead of refusing it: test-tls shows that failure.

    Raises:
        SettingsError: the entry cannot be connected to as given (no name, bad timeout...).
    """
    env = dict(os.environ) if env is None else env
    if access.type not in ("mysql", "postgresql"):
        raise SettingsError(f"type must be mysql or postgresql, got {access.type!r}")
    backend = backend_for(access.type)
    # The password this session may send, so that no output shows it (keadb_cli.text):
    # kea-db's own, else the one the client library takes from the environment.
    keep_secret(access.password)
    for variable in backend.password_variables:
        keep_secret(env.get(variable))
    if not access.name:
        raise SettingsError(f"no database name for the {backend.display} backend: set name")
    if access.port is not None and not 0 <= access.port <= 65535:
        raise SettingsError(f"port must be between 0 and 65535, got {access.port}")
    _check_timeout("connect-timeout", access.connect_timeout, minimum=1)
    _check_timeout("read-timeout", access.read_timeout, minimum=0)
    _check_timeout("write-timeout", access.write_timeout, minimum=0)
    _check_timeout("tcp-user-timeout", access.tcp_user_timeout, minimum=0)
    _refuse_special_files(access)
    # Kea: unset or 0 sends no port, so the library's default applies: its environment
    # variable, else the backend's port.
    port = access.port or _library_port(backend, env) or backend.default_port
    host: str | None = access.effective_host
    listed = host is not None and "," in host
    if listed and not backend.host_lists:
        raise SettingsError(
            f"host is a list of {len((host or '').split(','))} names: Kea's "
            f"{backend.display} backend takes one host (host lists are libpq's, PostgreSQL "
            "only)")
    tls = _TLS_RULES[backend.type](access, env, allow_ca_directory=allow_ca_directory)
    # A host list goes to libpq as it is, Unix socket directories in it included.
    unix_socket = None if listed else _SOCKETS[backend.type](host or "", port, env)
    return ConnectPlan(
        backend=backend,
        host=host if unix_socket is None else None,
        port=port,
        unix_socket=unix_socket,
        user=access.user or "",
        password=access.password or None,
        database=access.name,
        connect_timeout=float(access.effective_connect_timeout),
        read_timeout=float(access.read_timeout) if access.read_timeout else None,
        write_timeout=float(access.write_timeout) if access.write_timeout else None,
        tcp_user_timeout_ms=access.tcp_user_timeout * 1000 if access.tcp_user_timeout else None,
        tls=tls,
        statement_timeout=access.statement_timeout or DEFAULT_STATEMENT_TIMEOUT,
        statement_timeout_given=access.statement_timeout is not None,
        pg_options=env.get("PGOPTIONS") or None,
        server_public_key=access.server_public_key,
    )
