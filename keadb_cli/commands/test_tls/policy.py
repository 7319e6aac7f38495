"""The verdicts of ``kea-db test-tls``, their exit codes, and the CI policy flags."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keadb_cli.errors import ExitCode, SettingsError

_TLS_ORDER = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}

class Verdict(StrEnum):
    """The answer of ``test-tls``; each has its own exit code."""

    VERIFIED = "VERIFIED"
    ENCRYPTED_UNVERIFIED = "ENCRYPTED-UNVERIFIED"
    CLEARTEXT = "CLEARTEXT"
    TLS_REFUSED = "TLS-REFUSED"
    HANDSHAKE_FAILED = "HANDSHAKE-FAILED"
    UNREACHABLE = "UNREACHABLE"
    DENIED = "DENIED"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.VERIFIED: ExitCode.OK,
    Verdict.ENCRYPTED_UNVERIFIED: ExitCode.ENCRYPTED_UNVERIFIED,
    Verdict.CLEARTEXT: ExitCode.CLEARTEXT,
    Verdict.TLS_REFUSED: ExitCode.TLS_REFUSED,
    Verdict.HANDSHAKE_FAILED: ExitCode.HANDSHAKE_FAILED,
    Verdict.UNREACHABLE: ExitCode.UNREACHABLE,
    Verdict.DENIED: ExitCode.DENIED,
}


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """CI flags that turn warnings into failures (exit code TLS_POLICY)."""

    require_tls: bool = False  # no cleartext fallback may be possible
    require_verify: bool = False  # chain verified *and* host name matching
    require_client_cert: bool = False  # the server must have asked for and got one
    min_tls: str | None = None  # "TLSv1.2"

    def to_json(self) -> dict[str, Any]:
        return {
            "require_tls": self.require_tls,
            "require_verify": self.require_verify,
            "require_client_cert": self.require_client_cert,
            "min_tls": self.min_tls,
        }


def parse_min_tls(text: str) -> str:
    """``1.2`` / ``TLSv1.2`` / ``tls1.3`` -> ``TLSv1.2``.

    Raises:
        SettingsError: not one of 1.0, 1.1, 1.2, 1.3.
    """
    value = text.strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    names = {"1": "TLSv1", "1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}
    if value not in names:
        raise SettingsError(f"--min-tls must be 1.0, 1.1, 1.2 or 1.3, got {text!r}")
    return names[value]


# -- the verdict ------------------------------------------------------------------------------


