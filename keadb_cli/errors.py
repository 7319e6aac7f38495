"""Exit codes and the exception hierarchy: the only place exit numbers exist.

Core modules raise :class:`KeaDbError` subclasses; only ``cli.py`` turns them into a
one-line message on stderr and an exit code.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitCode(IntEnum):
    """Every exit status kea-db can return. Documented in README.md, each one tested."""

    OK = 0
    INTERNAL = 1  # a bug in kea-db: please report it
    USAGE = 2  # click: unknown option, missing argument
    CONFIG = 3  # a Kea configuration file is unreadable or invalid
    SETTINGS = 4  # a bad option, environment variable, password file or Kea release

    # check-version verdicts
    BEHIND = 10
    AHEAD = 11
    EMPTY = 12
    FOREIGN = 13

    # connection failures, shared by every command that connects
    UNREACHABLE = 20
    DENIED = 21

    # test-tls verdicts (VERIFIED is OK)
    ENCRYPTED_UNVERIFIED = 30
    CLEARTEXT = 31
    TLS_REFUSED = 32
    HANDSHAKE_FAILED = 33
    TLS_POLICY = 34

    # init refusals
    READONLY = 40
    NOT_EMPTY = 41
    LOCKED = 42
    PRIVILEGES = 43
    UNSUPPORTED_RELEASE = 44
    PARTIAL = 45
    INIT_FAILED = 46

    INTERRUPTED = 130


class KeaDbError(Exception):
    """Base of every error kea-db reports to the user.

    The message is one line that says what to fix. It must never contain a password.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class SettingsError(KeaDbError):
    """A command-line option, environment variable or password file is unusable."""

    exit_code = ExitCode.SETTINGS


class ConfigError(KeaDbError):
    """A Kea configuration file cannot be read or is not valid for Kea."""

    exit_code = ExitCode.CONFIG


class UnreachableError(KeaDbError):
    """The server could not be reached: refused, timed out, unknown host."""

    exit_code = ExitCode.UNREACHABLE


class DeniedError(KeaDbError):
    """The server answered but refused the session: credentials, database, privilege."""

    exit_code = ExitCode.DENIED


class TlsError(KeaDbError):
    """TLS was required for the session but could not be established."""

    exit_code = ExitCode.HANDSHAKE_FAILED


class ProtocolError(KeaDbError):
    """The server said something the wire client does not understand."""

    exit_code = ExitCode.UNREACHABLE


class UnsupportedError(KeaDbError):
    """The wire client met a feature it does not implement (an authentication method).

    The caller may fall back to the full driver.
    """

    exit_code = ExitCode.DENIED


class QueryError(KeaDbError):
    """A query failed on an open session. ``code`` is SQLSTATE (PostgreSQL) or the MySQL
    error number as a string."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code
