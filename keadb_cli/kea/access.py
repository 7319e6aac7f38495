"""One Kea database access entry, with Kea's keyword names and meaning.

A :class:`DbAccess` is what a ``lease-database``, ``hosts-databases[]`` or
``config-control.config-databases[]`` map says, or what the command line says. Values that
were not given stay ``None`` so that layering (option > environment > file) can tell "unset"
from "set to the default"; :meth:`DbAccess.effective` answers with Kea's defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SQL_TYPES = ("mysql", "postgresql")
DB_TYPES = ("memfile", "mysql", "postgresql")
ON_FAIL_VALUES = ("stop-retry-exit", "serve-retry-exit", "serve-retry-continue")
SSL_MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
TLS_KEYS = ("trust-anchor", "cert-file", "key-file", "cipher-list", "ssl-mode")

KEA_DEFAULT_HOST = "localhost"
KEA_DEFAULT_CONNECT_TIMEOUT = 5  # seconds (Kea's DatabaseConnection default)
DEFAULT_STATEMENT_TIMEOUT = 60.0  # seconds: kea-db's deadline for one statement
MAX_TIMEOUT = 2**31 - 1  # Kea rejects larger timeouts when it opens the connection
MAX_UINT32 = 2**32 - 1

# Kea keyword -> attribute name; the single mapping between the two spellings.
KEYWORDS: dict[str, str] = {
    "type": "type",
    "name": "name",
    "host": "host",
    "port": "port",
    "user": "user",
    "password": "password",
    "connect-timeout": "connect_timeout",
    "read-timeout": "read_timeout",
    "write-timeout": "write_timeout",
    "tcp-user-timeout": "tcp_user_timeout",
    "readonly": "readonly",
    "trust-anchor": "trust_anchor",
    "cert-file": "cert_file",
    "key-file": "key_file",
    "cipher-list": "cipher_list",
    "ssl-mode": "ssl_mode",
    "on-fail": "on_fail",
    "retry-on-startup": "retry_on_startup",
    "max-reconnect-tries": "max_reconnect_tries",
    "reconnect-wait-time": "reconnect_wait_time",
}


@dataclass(frozen=True)
class DbAccess:
    """A Kea database access entry. ``None`` means "not given"."""

    type: str | None = None
    name: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: int | None = None  # seconds
    read_timeout: int | None = None  # seconds, MySQL only
    write_timeout: int | None = None  # seconds, MySQL only
    tcp_user_timeout: int | None = None  # seconds, PostgreSQL only (libpq gets ms)
    readonly: bool | None = None
    trust_anchor: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cipher_list: str | None = None
    ssl_mode: str | None = None
    on_fail: str | None = None
    retry_on_startup: bool | None = None
    max_reconnect_tries: int | None = None
    reconnect_wait_time: int | None = None  # milliseconds
    # kea-db's own settings (no Kea keyword): the deadline of every statement after login.
    statement_timeout: float | None = None  # seconds
    server_public_key: str | None = None  # MySQL: RSA key file for a cleartext login
    # Where the entry came from: "Dhcp4.hosts-databases[1]" and "hosts", or None/"cli".
    path: str | None = None
    role: str | None = None

    def merged_over(self, base: DbAccess) -> DbAccess:
        """This entry's given values layered over ``base`` (self wins where set)."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(base, **changes)

    @property
    def effective_host(self) -> str:
        return self.host if self.host else KEA_DEFAULT_HOST

    @property
    def effective_connect_timeout(self) -> int:
        return self.connect_timeout if self.connect_timeout is not None else (
            KEA_DEFAULT_CONNECT_TIMEOUT
        )

    @property
    def tls_requested(self) -> bool:
        """True when any of Kea's TLS keys is set (Kea's own definition for MySQL)."""
        return any(
            v for v in (self.trust_anchor, self.cert_file, self.key_file, self.cipher_list)
        ) or bool(self.ssl_mode)

    def keywords(self, *, redact: bool = True) -> dict[str, Any]:
        """The entry as Kea keywords, only the keys that are set; password as ``***``."""
        out: dict[str, Any] = {}
        for keyword, attr in KEYWORDS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr == "password" and redact:
                value = "***"
            out[keyword] = value
        return out

    def label(self) -> str:
        """A short password-free description: ``postgresql kea@db1:5432/kea``."""
        where = self.effective_host
        if self.port:
            where += f":{self.port}"
        who = f"{self.user}@" if self.user else ""
        return f"{self.type or '?'} {who}{where}/{self.name or '?'}"
