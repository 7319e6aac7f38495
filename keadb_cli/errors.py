"""Exit codes and the exception hierarchy: the only place exit numbers exist.

Core modules raise :class:`KeaDbError` subclasses; only ``cli.py`` turns them into a
one-line message on stderr and an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
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

    # upgrade refusals and failures
    OTHER_SESSIONS = 47
    DATA_TRAP = 48
    NOT_CONFIRMED = 49
    UPGRADE_FAILED = 50

    # verify (upgrade refuses the same way)
    DRIFT = 51

    # init, upgrade (and preflight for an entry Kea writes to): the server is a standby, a
    # read-only replica, or a Galera node where a schema change is not safe
    NODE_NOT_WRITABLE = 52

    # stats check: a statistics counter differs from a recount of the leases
    STATS_MISMATCH = 53

    # copy: the target's rows differ from the source's after the copy (rolled back)
    COPY_MISMATCH = 54

    INTERRUPTED = 130


class KeaDbError(Exception):
    """Base of every error kea-db reports to the user.

    The message is one line that says what to fix. It must never contain a password.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    reason_code: str = ""  # a stable machine-readable cause ("auth-failed", "refused"...)

    def __init__(
        self, message: str, *, exit_code: ExitCode | None = None, reason_code: str = ""
    ) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        if reason_code:
            self.reason_code = reason_code

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


class InsecureAuthError(DeniedError):
    """The server asked for the password in a form anyone on the path could read (MySQL's
    ``mysql_clear_password`` or ``dialog`` without TLS, or an RSA key exchange with a key
    the server sent over cleartext). kea-db refused to send it; Kea would have sent it."""

    reason_code = "insecure-auth"


class QueryError(KeaDbError):
    """A query failed on an open session. ``code`` is SQLSTATE (PostgreSQL) or the MySQL
    error number as a string."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, *, code: str = "", reason_code: str = "") -> None:
        super().__init__(message, reason_code=reason_code)
        self.code = code


class CannotVerify(KeaDbError):
    """The expectation could not be built (privileges, an unknown schema)."""


class Refusal(Exception):
    """A command declines to act on a backend: the state seen, the exit code, why."""

    def __init__(self, verdict: str, code: ExitCode, detail: str) -> None:
        super().__init__(detail)
        self.verdict, self.code, self.detail = verdict, code, detail


# One order of results, from best to worst, for every command that reports several backends:
# the exit code of a run is that of its worst result.
SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.OK,
    ExitCode.ENCRYPTED_UNVERIFIED,
    ExitCode.TLS_POLICY,
    ExitCode.CLEARTEXT,
    ExitCode.TLS_REFUSED,
    ExitCode.HANDSHAKE_FAILED,
    ExitCode.EMPTY,
    ExitCode.BEHIND,
    ExitCode.AHEAD,
    ExitCode.FOREIGN,
    ExitCode.READONLY,
    ExitCode.NODE_NOT_WRITABLE,
    ExitCode.UNSUPPORTED_RELEASE,
    ExitCode.LOCKED,
    ExitCode.PRIVILEGES,
    ExitCode.NOT_EMPTY,
    ExitCode.NOT_CONFIRMED,
    ExitCode.OTHER_SESSIONS,
    ExitCode.DATA_TRAP,
    ExitCode.STATS_MISMATCH,
    ExitCode.COPY_MISMATCH,
    ExitCode.DRIFT,
    ExitCode.PARTIAL,
    ExitCode.INIT_FAILED,
    ExitCode.UPGRADE_FAILED,
    ExitCode.DENIED,
    ExitCode.UNREACHABLE,
)


def worst_exit(codes: Iterable[ExitCode]) -> ExitCode:
    """The exit code of a run: the worst of its results in :data:`SEVERITY` order."""
    rank = {code: i for i, code in enumerate(SEVERITY)}
    return max(codes, key=lambda c: rank.get(c, len(SEVERITY)), default=ExitCode.OK)
