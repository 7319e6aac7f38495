"""Check one Kea database access map the way the Kea servers do, for a given Kea release.

The rules come from Kea's grammar (``database_map_param`` in ``dhcp4_parser.yy``, shared by
``lease-database``, ``hosts-database``, ``hosts-databases[]`` and
``config-control.config-databases[]``), from ``DbAccessParser::parse`` (``dbaccess_parser.cc``)
and from what the MySQL/PostgreSQL connection code refuses when it opens the connection:

* a keyword the release does not know is an error (the grammar has no rule for it), and so
  are ``comment`` and ``user-context``, which database maps do not accept;
* each keyword has one JSON type; ``on-fail`` and ``ssl-mode`` have fixed values;
* ``type`` is required and must be ``memfile``, ``mysql`` or ``postgresql`` (also ``cql`` up
  to 2.1.4);
* ranges: ``port`` 0..65535; ``lfc-interval``, the timeouts, ``max-row-errors`` and
  ``reconnect-wait-time`` 0..4294967295; ``max-reconnect-tries`` at least 0;
* ``read-timeout``/``write-timeout`` above 0 need ``mysql``, ``tcp-user-timeout`` above 0
  needs ``postgresql``;
* when the connection opens: ``name`` is required, ``connect-timeout`` must be
  1..2147483647 and the other timeouts at most 2147483647, and since 2.7.6 the built-in
  default passwords ``keatest``, ``1234`` and ``*****`` are refused;
* kea-db's own additions: a ``host`` that is a name must fit DNS's limits (at most 253
  characters, labels of at most 63), since no resolver can look a longer one up; a string
  the client library takes as a C string (name, user, password, host, TLS files) must not
  hold a NUL character, which would cut it short. A PostgreSQL ``host`` may be libpq's
  comma-separated host list (each entry is checked alone); a list on MySQL is an error
  of the ``connect`` stage, since Kea's MySQL backend takes one host.

Warnings: a keyword Kea accepts but ignores on that backend (``cipher-list`` on PostgreSQL,
``ssl-mode`` on MySQL, the TLS file keys on PostgreSQL before 3.1.0, memfile-only keys on an
SQL backend).

``release`` is a plain ``(major, minor, patch)`` tuple; None means the newest rules, which
include ``password-file`` (on Kea's development branch after 3.3.0, documented for 3.3.1).
Messages never contain a password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keadb_cli.errors import ConfigError
from keadb_cli.files import MAX_PASSWORD_FILE, read_bounded
from keadb_cli.kea.access import KEYWORDS, ON_FAIL_VALUES, SQL_TYPES, SSL_MODES, DbAccess
from keadb_cli.kea.config import KeaConfig
from keadb_cli.kea.hostname import host_list_problem
from keadb_cli.text import shown

__all__ = [
    "DEFAULT_PASSWORDS",
    "Finding",
    "Release",
    "check",
    "is_default_password",
    "known_keywords",
    "read_password_file",
    "release_text",
    "to_access",
    "validate",
]

Release = tuple[int, int, int]
Severity = Literal["error", "warning"]
Stage = Literal["parse", "connect"]

U32 = 2**32 - 1
INT_MAX = 2**31 - 1
DEFAULT_PASSWORDS = frozenset({"keatest", "1234", "*****"})
"""Refused by Kea since 2.7.6 (``src/lib/cc/default_credentials.cc``)."""
DEFAULT_PASSWORDS_SINCE: Release = (2, 7, 6)
PG_TLS_SINCE: Release = (3, 1, 0)  # PostgreSQL TLS keys reach libpq from 3.1.0
HOSTS_DATABASE_STRICT_SINCE: Release = (3, 3, 0)  # both spellings at once refused

_Kind = Literal["string", "integer", "boolean"]


@dataclass(frozen=True)
class _Keyword:
    kind: _Kind
    low: int | None = None
    high: int | None = None
    values: tuple[str, ...] = ()  # allowed values, when the grammar fixes them
    since: Release = (1, 8, 0)
    until: Release | None = None  # last release that has it
    backports: tuple[Release, ...] = ()  # first patch release of an older series with it


_TIMEOUT_BACKPORTS: tuple[Release, ...] = ((2, 2, 1),)  # 2.2.1 has them, 2.3.0-2.3.3 not
_CQL_UNTIL: Release = (2, 1, 4)

_KEYWORDS: dict[str, _Keyword] = {
    "type": _Keyword("string"),
    "user": _Keyword("string"),
    "password": _Keyword("string"),
    "host": _Keyword("string"),
    "port": _Keyword("integer", 0, 65535),
    "name": _Keyword("string"),
    "persist": _Keyword("boolean"),
    "lfc-interval": _Keyword("integer", 0, U32),
    "readonly": _Keyword("boolean"),
    "connect-timeout": _Keyword("integer", 0, U32),
    "read-timeout": _Keyword("integer", 0, U32, since=(2, 3, 4), backports=_TIMEOUT_BACKPORTS),
    "write-timeout": _Keyword("integer", 0, U32, since=(2, 3, 4), backports=_TIMEOUT_BACKPORTS),
    "tcp-user-timeout": _Keyword(
        "integer", 0, U32, since=(2, 3, 4), backports=_TIMEOUT_BACKPORTS
    ),
    "max-reconnect-tries": _Keyword("integer", 0, None),
    "reconnect-wait-time": _Keyword("integer", 0, U32),
    "on-fail": _Keyword("string", values=ON_FAIL_VALUES, since=(1, 9, 6)),
    "retry-on-startup": _Keyword("boolean", since=(2, 5, 5)),
    "max-row-errors": _Keyword("integer", 0, U32),
    "trust-anchor": _Keyword("string", since=(2, 1, 2)),
    "cert-file": _Keyword("string", since=(2, 1, 2)),
    "key-file": _Keyword("string", since=(2, 1, 2)),
    "cipher-list": _Keyword("string", since=(2, 1, 2)),
    "ssl-mode": _Keyword("string", values=SSL_MODES, since=(3, 1, 0)),
    "password-file": _Keyword("string", since=(3, 3, 1)),
    # Cassandra, dropped in 2.1.5.
    "contact-points": _Keyword("string", until=_CQL_UNTIL),
    "keyspace": _Keyword("string", until=_CQL_UNTIL),
    "consistency": _Keyword("string", until=_CQL_UNTIL),
    "serial-consistency": _Keyword("string", until=_CQL_UNTIL),
    "request-timeout": _Keyword("integer", 0, U32, until=_CQL_UNTIL),
    "tcp-keepalive": _Keyword("integer", 0, U32, until=_CQL_UNTIL),
    "tcp-nodelay": _Keyword("boolean", until=_CQL_UNTIL),
}

# Kea's order of the range checks in DbAccessParser::parse.
_RANGE_ORDER = (
    "lfc-interval", "connect-timeout", "read-timeout", "write-timeout", "tcp-user-timeout",
    "port", "max-row-errors", "max-reconnect-tries", "reconnect-wait-time",
    "request-timeout", "tcp-keepalive",
)
_ONLY_FOR = {"read-timeout": "mysql", "write-timeout": "mysql", "tcp-user-timeout": "postgresql"}
_MEMFILE_ONLY = ("persist", "lfc-interval", "max-row-errors")
_BACKEND_NAMES = {"mysql": "MySQL", "postgresql": "PostgreSQL", "memfile": "memfile"}
# String values Kea passes to libpq / libmysqlclient as C strings (NUL-terminated); 'host'
# is one too, checked with the other host name rules.
_C_STRINGS = ("name", "user", "password", "trust-anchor", "cert-file", "key-file",
              "cipher-list")
# Values that may be quoted in a message (never user, password, password-file, host...).
_SHOWN_VALUES = frozenset({"type", "on-fail", "ssl-mode"})


@dataclass(frozen=True)
class Finding:
    """One problem with a database map. ``location`` is ``file:line:column`` or empty."""

    severity: Severity
    keyword: str | None
    message: str
    location: str = ""
    # "parse": Kea refuses the file when it reads it; "connect": Kea reads the file, and
    # refuses (or ignores) the entry only when it opens the connection.
    stage: Stage = "parse"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def release_text(release: Release | None) -> str:
    return "the newest Kea" if release is None else "Kea {}.{}.{}".format(*release)


def _available(spec: _Keyword, release: Release | None) -> bool:
    if release is None:
        return spec.until is None
    if spec.until is not None and release > spec.until:
        return False
    if release >= spec.since:
        return True
    return any(release[:2] == b[:2] and release >= b for b in spec.backports)


def known_keywords(release: Release | None = None) -> list[str]:
    """The database-map keywords ``release`` accepts (None: the newest rules)."""
    return [name for name, spec in _KEYWORDS.items() if _available(spec, release)]


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a floating-point number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__


def _type_ok(kind: _Kind, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool)


_EXPECTED_TYPE = {"string": "a string", "integer": "an integer", "boolean": "true or false"}


def validate(
    entry_map: Mapping[str, Any],
    *,
    release: Release | None = None,
    config: KeaConfig | None = None,
) -> list[Finding]:
    """Every problem Kea ``release`` would have with ``entry_map``, errors first in Kea's
    order (grammar problems in file order, then ``DbAccessParser`` checks, then what
    the connection refuses when it opens), then warnings.

    ``config`` is the :class:`KeaConfig` the map comes from, for locations.
    """
    errors: list[Finding] = []
    warnings: list[Finding] = []

    def where(key: str | None, value: bool = True) -> str:
        if config is None:
            return ""
        return config.location(entry_map, key, value=value)

    def error(key: str | None, message: str, value: bool = True) -> None:
        errors.append(Finding("error", key, message, where(key, value)))

    def warn(key: str | None, message: str) -> None:
        warnings.append(Finding("warning", key, message, where(key, False)))

    def open_error(key: str | None, message: str) -> None:
        errors.append(Finding("error", key, message, where(key, True), stage="connect"))

    rel = release_text(release)
    good: dict[str, Any] = {}  # keywords this release knows, with values of the right type
    for key, value in entry_map.items():
        spec = _KEYWORDS.get(key)
        if spec is None:
            hint = (": Kea does not accept comments or user context in database maps"
                    if key in ("comment", "user-context") else "")
            error(key, f"unknown keyword '{shown(key, 80)}' in a database map{hint}", value=False)
            continue
        if not _available(spec, release):
            if spec.until is not None and (release is None or release > spec.until):
                when = "was removed after Kea {}.{}.{}".format(*spec.until)
            else:
                when = "needs Kea {}.{}.{} or later".format(*spec.since)
            error(key, f"'{key}' is not known to {rel}: it {when}", value=False)
            continue
        if not _type_ok(spec.kind, value):
            error(key, f"'{key}' must be {_EXPECTED_TYPE[spec.kind]}, not {_type_name(value)}")
            continue
        if spec.values and value not in spec.values:
            error(key, f"'{key}' must be one of {', '.join(spec.values)}, "
                       f"not '{shown(value, 80)}'")
            continue
        good[key] = value

    # DbAccessParser: type first.
    db_type = good.get("type")
    if "type" not in entry_map:
        error(None, "missing 'type': Kea requires it in every database map")
    elif db_type is not None:
        allowed = ["memfile", "mysql", "postgresql"]
        if release is not None and release <= _CQL_UNTIL:
            allowed.append("cql")
        if db_type not in allowed:
            error("type", f"unknown database type '{shown(db_type, 80)}': expected "
                          f"{', '.join(allowed[:-1])} or {allowed[-1]}")
            db_type = None

    for key in _RANGE_ORDER:
        number = good.get(key)
        if number is None:
            continue
        spec = _KEYWORDS[key]
        low = spec.low if spec.low is not None else 0
        if number < low or (spec.high is not None and number > spec.high):
            if spec.high is None:
                error(key, f"'{key}' must not be less than {low}, not {number}")
            else:
                error(key, f"'{key}' {number} is out of range {low}..{spec.high}")
        elif key in _ONLY_FOR and number > 0 and db_type is not None \
                and db_type != _ONLY_FOR[key]:
            error(key, f"'{key}' is only supported by the {_ONLY_FOR[key]} backend, "
                       f"not {db_type}")

    if "password" in good and "password-file" in good:
        error("password-file", "'password' and 'password-file' cannot both be given")

    if db_type in SQL_TYPES:
        assert db_type is not None
        _open_checks(good, db_type, release, open_error, warn, error)
    return errors + warnings


def _open_checks(good: dict[str, Any], db_type: str, release: Release | None,
                 error: Callable[[str | None, str], None],
                 warn: Callable[[str, str], None],
                 unusable: Callable[[str | None, str], None]) -> None:
    """What the MySQL/PostgreSQL connection code refuses or ignores when it opens.

    ``error`` reports what Kea refuses only when it connects (the ``connect`` stage: Kea
    reads such a file, then fails on that entry). ``unusable`` reports kea-db's own checks
    (a host name no resolver can take, a NUL in a C string): values no client can use as
    written, which stay errors of the file, as Kea's grammar errors are."""
    backend = _BACKEND_NAMES[db_type]
    if "name" not in good:
        error(None, f"missing 'name': Kea needs the {backend} database name to connect")
    host = good.get("host")
    if isinstance(host, str) and "," in host and db_type != "postgresql":
        error("host", f"'host' is a list of {len(host.split(','))} names: Kea's {backend} "
                      "backend takes one host (host lists are libpq's, PostgreSQL only)")
    elif isinstance(host, str):
        problem = host_list_problem(host)
        if problem:
            unusable("host", f"'host' {problem}")
    for key in _C_STRINGS:
        value = good.get(key)
        if isinstance(value, str) and "\x00" in value:
            unusable(key, f"'{key}' holds a NUL character (\\u0000): Kea hands it to the "
                       f"{backend} client library as a C string, which would end there")
    timeout = good.get("connect-timeout")
    if timeout is not None and 0 <= timeout <= U32 and not 1 <= timeout <= INT_MAX:
        error("connect-timeout", f"'connect-timeout' must be 1..{INT_MAX} when Kea opens "
                                 f"the connection, not {timeout}")
    for key in ("read-timeout", "write-timeout", "tcp-user-timeout"):
        value = good.get(key)
        if value is not None and INT_MAX < value <= U32 and _ONLY_FOR[key] == db_type:
            error(key, f"'{key}' must be at most {INT_MAX} when Kea opens the connection, "
                       f"not {value}")
    password = good.get("password")
    if isinstance(password, str) and is_default_password(password, release):
        error("password", f"{release_text(release)} refuses Kea's built-in default passwords "
                          "(keatest, 1234, *****), as every release since 2.7.6 does: set "
                          "another password")

    if db_type == "postgresql":
        if "cipher-list" in good:
            warn("cipher-list", "'cipher-list' is ignored by Kea for PostgreSQL")
        if release is not None and release < PG_TLS_SINCE:
            for key in ("trust-anchor", "cert-file", "key-file"):
                if key in good:
                    warn(key, f"'{key}' is accepted but not used for PostgreSQL before "
                              f"Kea 3.1.0 ({release_text(release)}): libpq defaults apply")
    if db_type == "mysql" and "ssl-mode" in good:
        warn("ssl-mode", "'ssl-mode' is ignored by Kea for MySQL")
    for key in _MEMFILE_ONLY:
        if key in good:
            warn(key, f"'{key}' applies to memfile only; Kea ignores it for {backend}")


def is_default_password(password: str, release: Release | None) -> bool:
    """True when ``release`` (None: newest) refuses ``password`` as a built-in default."""
    refused = release is None or release >= DEFAULT_PASSWORDS_SINCE
    return refused and password in DEFAULT_PASSWORDS


def check(
    entry_map: Mapping[str, Any],
    *,
    release: Release | None = None,
    config: KeaConfig | None = None,
    label: str | None = None,
) -> list[Finding]:
    """:func:`validate`, raising the first error; returns the warnings.

    Raises:
        ConfigError: the map has an error for ``release``; the message is
            ``file:line:column: [label: ]message``.
    """
    findings = validate(entry_map, release=release, config=config)
    for finding in findings:
        if finding.severity == "error":
            raise ConfigError(_error_text(finding, label))
    return findings


def _error_text(finding: Finding, label: str | None) -> str:
    message = f"{label}: {finding.message}" if label else finding.message
    return f"{finding.location}: {message}" if finding.location else message


def read_password_file(name: str, *, cwd: Path | None = None, where: str = "") -> str:
    """The password in Kea's ``password-file``: its first line, without the line end.

    Kea opens the path as given, so a relative one is relative to Kea's working
    directory (``cwd``, default this process's), like include files. The file is read as
    hostile input: a regular file of at most :data:`~keadb_cli.files.MAX_PASSWORD_FILE`
    bytes (:func:`~keadb_cli.files.read_bounded`).

    Raises:
        ConfigError: the file cannot be read, is not a regular file, is too large, or its
            first line is not UTF-8 or holds a NUL byte. The message never holds its
            content.
    """
    path = Path(name)
    if not path.is_absolute():
        path = (cwd if cwd is not None else Path.cwd()) / path
    data = read_bounded(path, what="password-file", limit=MAX_PASSWORD_FILE,
                        error=ConfigError, name=name, where=where)
    first = data.split(b"\n", 1)[0]
    prefix = f"{where}: " if where else ""
    if b"\x00" in first:
        raise ConfigError(f"{prefix}password-file {name} holds a NUL byte in its first line: "
                          "the client library would cut the password short there")
    try:
        return first.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{prefix}password-file {name} is not UTF-8 text") from None


def to_access(
    entry_map: Mapping[str, Any],
    *,
    path: str | None = None,
    role: str | None = None,
    cwd: Path | None = None,
    where: str = "",
) -> DbAccess:
    """A :class:`DbAccess` from a map that :func:`validate` passed.

    Keys without a :class:`DbAccess` field (memfile and Cassandra keys) are left out. A
    ``password-file`` is read (see :func:`read_password_file`) into ``password``.

    Raises:
        ConfigError: a value has the wrong type (the map was not validated), or the
            password file cannot be read. (A default password in the file is a finding of
            :func:`keadb_cli.kea.entries.extract`, not an error here.)
    """
    values: dict[str, Any] = {}
    for keyword, attr in KEYWORDS.items():
        if keyword not in entry_map:
            continue
        value = entry_map[keyword]
        spec = _KEYWORDS[keyword]
        if not _type_ok(spec.kind, value):
            raise ConfigError(f"{where + ': ' if where else ''}'{keyword}' must be "
                              f"{_EXPECTED_TYPE[spec.kind]}, not {_type_name(value)}")
        values[attr] = value
    password_file = entry_map.get("password-file")
    if isinstance(password_file, str) and "password" not in values:
        values["password"] = read_password_file(password_file, cwd=cwd, where=where)
    return DbAccess(path=path, role=role, **values)
