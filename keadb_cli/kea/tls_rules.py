"""What Kea X.Y does with a database entry's TLS keys, without a network.

PostgreSQL before 3.1 drops the keys (libpq's defaults and ``PGSSL*`` apply); MySQL asks
for TLS when any key is set but keeps a cleartext session when the server has none; 3.1+
maps the keys onto libpq's ``sslmode`` (kea-facts.md section 4.6).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.kea.access import DbAccess

ReleaseTuple = tuple[int, int, int]

# Kea releases where the TLS keys changed meaning (kea-facts.md section 4.6).
TLS_KEYS_SINCE: ReleaseTuple = (2, 1, 2)  # trust-anchor, cert-file, key-file, cipher-list
PG_TLS_SINCE: ReleaseTuple = (3, 1, 0)  # PostgreSQL passes them to libpq; ssl-mode exists
PG_LOGS_TLS_UNTIL: ReleaseTuple = (3, 0, 0)  # 2.1.2-2.7.x logged *_PGSQL_TLS_SUPPORT
MYSQL_NEW_LOG_IDS: ReleaseTuple = (2, 7, 0)  # MYSQL_LB_NO_TLS... replaced DHCPSRV_MYSQL_NO_TLS

FILE_KEYS = ("trust-anchor", "cert-file", "key-file", "cipher-list")

_TLS_ORDER = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}


def _release_text(release: ReleaseTuple | None) -> str:
    return "Kea (newest rules)" if release is None else "Kea {}.{}.{}".format(*release)


# -- Kea parity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeaPlan:
    """What Kea X.Y does with an entry's TLS keys: the connection it would really open."""

    plan: ConnectPlan
    release: ReleaseTuple | None
    keys: tuple[str, ...]  # the TLS keys the entry sets
    ignored_keys: tuple[str, ...]  # set, but this Kea release does not use them
    cleartext_fallback: bool  # a server without TLS gives a cleartext session, not an error
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        tls = self.plan.tls
        return {
            "kea_version": None if self.release is None else "{}.{}.{}".format(*self.release),
            "keys": list(self.keys),
            "ignored_keys": list(self.ignored_keys),
            "mode": tls.mode,
            "uses_tls": tls.use,
            "requires_tls": tls.required,
            "verifies_chain": tls.verify_chain,
            "verifies_hostname": tls.verify_hostname,
            "cleartext_fallback": self.cleartext_fallback,
            "notes": list(self.notes),
        }


def tls_keys(access: DbAccess) -> tuple[str, ...]:
    """The Kea TLS keywords the entry sets, in Kea's order."""
    values = {
        "trust-anchor": access.trust_anchor,
        "cert-file": access.cert_file,
        "key-file": access.key_file,
        "cipher-list": access.cipher_list,
        "ssl-mode": access.ssl_mode,
    }
    return tuple(k for k, v in values.items() if v)


def _without_tls(access: DbAccess) -> DbAccess:
    return replace(
        access, trust_anchor=None, cert_file=None, key_file=None, cipher_list=None, ssl_mode=None
    )


def kea_plan(
    access: DbAccess, release: ReleaseTuple | None, env: dict[str, str] | None = None
) -> KeaPlan:
    """The connection Kea ``release`` (None: the newest rules) would open for ``access``.

    PostgreSQL: before 3.1 the TLS keys are not passed to libpq, so the session is whatever
    ``PGSSLMODE`` or libpq's default ``prefer`` gives; from 3.1 a trust-anchor without
    ssl-mode means verify-ca, other keys mean require; cipher-list is never used. MySQL: any
    key asks for TLS when the server offers it, the chain is verified when a CA is given,
    the host name never, and a server without TLS leaves a cleartext session (Kea logs it).

    Raises:
        SettingsError: the entry cannot be connected to at all (no name, bad port...).
    """
    env = dict(os.environ) if env is None else env
    keys = tls_keys(access)
    rel_text = _release_text(release)
    notes: list[str] = []
    ignored: tuple[str, ...] = ()
    old = release is not None and release < TLS_KEYS_SINCE
    if access.type == "postgresql":
        newest = release is None or release >= PG_TLS_SINCE
        if keys and not newest:
            ignored = keys
            plan = plan_for(_without_tls(access), env)
            notes.append(_pg_ignored_note(release, keys, plan.tls.mode))
        elif access.trust_anchor and os.path.isdir(access.trust_anchor):
            plan = plan_for(access, env, allow_ca_directory=True)
            notes.append(
                f"{rel_text} passes trust-anchor to libpq as sslrootcert, which must be a "
                "file: libpq cannot load a CA directory, so the connection fails"
            )
        else:
            plan = plan_for(access, env)
            if keys:
                notes.append(f"{rel_text}: sslmode={plan.tls.mode} ({plan.tls.reason})")
            else:
                notes.append(
                    f"no TLS key is set: Kea sends no sslmode, so libpq's "
                    f"{plan.tls.mode!r} applies ({plan.tls.reason})"
                )
        if access.cipher_list and "cipher-list" not in ignored:
            ignored = (*ignored, "cipher-list")
            notes.append("cipher-list is ignored for PostgreSQL: libpq has no cipher option")
        if plan.tls.use and plan.unix_socket:
            notes.append("libpq never uses TLS over a Unix socket (host is a directory)")
        fallback = not plan.tls.required
        if keys and fallback and plan.tls.use:
            notes.append(
                f"sslmode={plan.tls.mode}: libpq falls back to cleartext without a word when "
                "the server offers no TLS, and Kea does not check (no PQsslInUse)"
            )
    else:
        if old and keys:
            ignored = keys
            plan = plan_for(_without_tls(access), env)
            notes.append(
                f"{rel_text} predates Kea's TLS keys (2.1.2): it does not know {', '.join(keys)}"
            )
        else:
            plan = plan_for(access, env)
        if access.ssl_mode and "ssl-mode" not in ignored:
            ignored = (*ignored, "ssl-mode")
            notes.append("ssl-mode is PostgreSQL's: Kea's MySQL backend does not use it")
        fallback = True
        if plan.tls.use:
            log_id = (
                "MYSQL_LB_NO_TLS / MYSQL_HB_NO_TLS / MYSQL_CB_NO_TLS"
                if release is None or release >= MYSQL_NEW_LOG_IDS
                else "DHCPSRV_MYSQL_NO_TLS / MYSQL_CB_NO_TLS"
            )
            notes.append(
                f"{rel_text} asks for TLS (the chain is verified only when trust-anchor is "
                "set; the host name never); when the server offers no TLS the session stays "
                f"cleartext and Kea only logs {log_id}"
            )
    return KeaPlan(
        plan=plan,
        release=release,
        keys=keys,
        ignored_keys=ignored,
        cleartext_fallback=fallback,
        notes=tuple(notes),
    )


def _pg_ignored_note(release: ReleaseTuple | None, keys: tuple[str, ...], mode: str) -> str:
    rel = _release_text(release)
    listed = ", ".join(keys)
    if release is not None and release < TLS_KEYS_SINCE:
        return f"{rel} predates Kea's TLS keys (2.1.2): it does not know {listed}"
    if release is not None and release < PG_LOGS_TLS_UNTIL:
        return (
            f"{rel} does not pass {listed} to libpq: the session is libpq's sslmode={mode} "
            "(a build with PostgreSQL TLS support logs PGSQL_TLS_SUPPORT; a build without "
            "it, such as Debian 12's kea 2.2.0, logs DHCPSRV_PGSQL_NO_TLS_SUPPORT and refuses "
            "to open the database: 'Attempt to configure TLS for PostgreSQL backend (built "
            "with this feature disabled)'); PostgreSQL TLS keys work from Kea 3.1"
        )
    return (
        f"{rel} silently ignores {listed} for PostgreSQL: the session is libpq's "
        f"sslmode={mode}; PostgreSQL TLS keys work from Kea 3.1"
    )


