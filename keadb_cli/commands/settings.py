"""Command-line and environment settings -> access entries and the expected schema.

Precedence, for every key: command-line option, then ``KEA_DB_*`` environment variable (click
resolves these two), then the Kea configuration file. The password comes from
``KEA_DB_PASSWORD``, ``--password-file`` or a prompt, and overrides the file's password.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from keadb_cli.errors import ConfigError, SettingsError
from keadb_cli.files import MAX_PASSWORD_FILE, read_bounded
from keadb_cli.kea.access import DB_TYPES, KEYWORDS, SQL_TYPES, DbAccess
from keadb_cli.kea.hostname import host_list_problem
from keadb_cli.kea.releases import (
    InstalledKea,
    Release,
    detect_installed,
    parse_release,
    parse_schema,
)
from keadb_cli.schema.state import Target as Target
from keadb_cli.text import keep_secret


def read_password_file(path: str) -> str:
    """The password in ``path``: its first line, without the line end.

    The file is read as hostile input (see :func:`keadb_cli.files.read_bounded`): a
    regular file of at most :data:`~keadb_cli.files.MAX_PASSWORD_FILE` bytes.

    Raises:
        SettingsError: the file cannot be read, is not a regular file, is too large, is
            not UTF-8 text or its first line holds a NUL byte.
    """
    data = read_bounded(path, what="password file", limit=MAX_PASSWORD_FILE,
                        error=SettingsError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"password file {path} is not UTF-8 text") from None
    password = text.splitlines()[0] if text else ""
    if "\x00" in password:
        raise SettingsError(f"password file {path} holds a NUL byte in its first line: the "
                            "client library would cut the password short there")
    return password


def access_from_options(values: dict[str, Any]) -> DbAccess:
    """A DbAccess from option values keyed by attribute name; ``None`` means not given.

    Raises:
        SettingsError: a value Kea would not accept (type, port, timeout), or a host
            name no resolver can look up.
    """
    known = {*KEYWORDS.values(), "statement_timeout", "server_public_key"}
    given = {k: v for k, v in values.items() if k in known and v is not None}
    access = DbAccess(**given, path=None, role=None)
    if access.type is not None and access.type not in DB_TYPES:
        raise SettingsError(
            f"--type must be mysql or postgresql, got {access.type!r}"
        )
    if access.port is not None and not 0 <= access.port <= 65535:
        raise SettingsError(f"--port must be between 0 and 65535, got {access.port}")
    problem = host_list_problem(access.host) if access.host is not None else None
    if problem:
        raise SettingsError(f"--host {problem}")
    if access.statement_timeout is not None and not 0 < access.statement_timeout <= 86400:
        raise SettingsError(
            f"--statement-timeout must be between 0 and 86400 seconds, got "
            f"{access.statement_timeout:g}"
        )
    return access


def with_password(access: DbAccess, password: str | None) -> DbAccess:
    keep_secret(password)  # never shown, even inside a server's text (keadb_cli.text)
    return access if password is None else replace(access, password=password)


def require_sql_entry(access: DbAccess) -> DbAccess:
    """Check that a command-line entry names an SQL backend and a database."""
    if access.type is None:
        raise SettingsError("no backend type: give --type mysql|postgresql or --config FILE")
    if access.type not in SQL_TYPES:
        raise SettingsError(f"--type must be mysql or postgresql, got {access.type!r}")
    if not access.name:
        raise SettingsError("no database name: give --name (or KEA_DB_NAME)")
    return access


def resolve_target(
    kea_version: str | None,
    expect: str | None,
    detect: Callable[[], InstalledKea | None] = detect_installed,
) -> Target:
    """The schema to compare with: ``--expect``, else ``--kea-version``, else the installed
    Kea. Never a silent default.

    Raises:
        SettingsError: nothing says which release, or the release is unknown.
    """
    release = parse_release(kea_version) if kea_version else None
    if expect:
        source = "--expect" + (f" (with --kea-version {release})" if release else "")
        return Target(release=release, expect=parse_schema(expect), source=source)
    if release:
        return Target(release=release, expect=None, source=f"--kea-version {kea_version}")
    installed = detect()
    if installed is None:
        raise SettingsError(
            "which Kea release? give --kea-version (e.g. 2.6) or --expect MAJOR.MINOR; "
            "no installed kea-dhcp4, kea-dhcp6 or kea-admin was found"
        )
    return Target(
        release=installed.release,
        expect=None,
        source=f"installed {installed.program} {installed.release}",
    )


def require_type(db_type: str | None) -> str:
    """A backend type that must be given (``init --sql`` has no connection to ask)."""
    if db_type not in SQL_TYPES:
        raise SettingsError(
            "give --type mysql or --type postgresql" if db_type is None
            else f"--type must be mysql or postgresql, got {db_type!r}"
        )
    return db_type


@dataclass(frozen=True)
class Selection:
    """The access entries a command acts on, and the config file's warnings."""

    accesses: list[DbAccess]
    warnings: list[str]


def load_entries(path: str, release: Release | None) -> tuple[list[Any], list[str]]:
    """Every database entry of a Kea configuration file, validated for ``release``, and the
    file's warnings (``file:line: ...``).

    Raises:
        ConfigError: the file is unreadable or not valid for Kea.
    """
    from keadb_cli.kea import config as kea_config
    from keadb_cli.kea import entries as kea_entries

    config = kea_config.load(path)
    entries = kea_entries.extract(config, release=release)
    warnings = list(config.warnings)
    for entry in entries:
        warnings.extend(f"{f.location}: {entry.path}: {f.message}" for f in entry.warnings)
    return entries, warnings


def select_accesses(
    values: dict[str, Any],
    password: str | None,
    *,
    config: str | None,
    backend: str | None,
    release: Release | None,
) -> Selection:
    """The SQL backends to act on: from ``--config`` (every SQL entry, or ``--backend``),
    with command-line/environment values layered over the file's, or from options alone.

    Raises:
        ConfigError: the file is invalid, or the selection names no SQL backend.
        SettingsError: an option value Kea would not accept.
    """
    cli = access_from_options(values)
    if config is None:
        if backend is not None:
            raise SettingsError("--backend selects entries of --config FILE: give --config")
        return Selection([require_sql_entry(with_password(cli, password))], [])
    from keadb_cli.kea import entries as kea_entries

    entries, warnings = load_entries(config, release)
    chosen = kea_entries.select(entries, backend)
    sql = [e for e in chosen if e.sql]
    if not sql:
        raise ConfigError(
            f"{config}: {', '.join(e.path for e in chosen)} "
            f"{'is' if len(chosen) == 1 else 'are'} memfile: nothing to check"
        )
    accesses = [with_password(cli.merged_over(e.require_access()), password) for e in sql]
    return Selection(accesses, warnings)


def release_or_installed(kea_version: str | None) -> Release | None:
    """``--kea-version``, else the installed Kea's release, else None (the newest rules)."""
    if kea_version:
        return parse_release(kea_version)
    installed = detect_installed()
    return installed.release if installed else None


def list_entries(
    config: str, backend: str | None, release: Release | None
) -> tuple[list[Any], list[str]]:
    """The entries ``backends`` lists: every entry (memfile too) or ``--backend``'s.

    Errors Kea meets only when it connects (a built-in default password since 2.7.6, a
    missing name) stay findings of their entry: the file itself is one Kea loads.

    Raises:
        ConfigError: the file is invalid (an entry has an error Kea refuses the file for),
            or nothing matches.
    """
    from keadb_cli.kea import entries as kea_entries

    entries, warnings = load_entries(config, release)
    chosen = kea_entries.select(entries, backend) if backend else entries
    for entry in chosen:
        for finding in entry.file_errors:
            where = f"{finding.location}: " if finding.location else ""
            raise ConfigError(f"{where}{entry.path}: {finding.message}")
    return chosen, warnings

