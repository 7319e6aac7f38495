"""What shell completion offers for option values (click's own completion, see
``_KEA_DB_COMPLETE=bash_source kea-db``): the Kea releases kea-db knows and the backend
selectors of ``--backend``. Pure functions of the typed prefix; the CLI wraps them."""

from __future__ import annotations

__all__ = ["backend_candidates", "kea_version_candidates", "type_candidates"]


def kea_version_candidates(prefix: str) -> list[tuple[str, str]]:
    """(value, help) pairs for ``--kea-version``: the series (``3.0``, which means its newest
    release) while the prefix has at most one dot, each release of a series (``3.0.4``) once
    it has two."""
    from keadb_cli.kea.releases import RELEASES

    text = prefix.strip().removeprefix("v")
    if text.count(".") >= 2:
        return [(str(r), f"MySQL {s['mysql']}, PostgreSQL {s['postgresql']}")
                for r, s in sorted(RELEASES.items()) if str(r).startswith(text)]
    newest: dict[str, str] = {}
    for release in sorted(RELEASES):
        newest[f"{release.major}.{release.minor}"] = str(release)
    return [(series, f"newest known: {last}") for series, last in newest.items()
            if series.startswith(text)]


def backend_candidates(prefix: str) -> list[tuple[str, str]]:
    """(value, help) pairs for ``--backend``: the roles and the servers (an entry's exact
    path, ``Dhcp4.hosts-databases[1]``, is typed)."""
    from keadb_cli.kea.entries import ROLES, SERVERS

    helps = {"lease": "the lease-database entry", "hosts": "every hosts-databases entry",
             "config": "every config-control config-databases entry",
             "Dhcp4": "every entry of Dhcp4", "Dhcp6": "every entry of Dhcp6"}
    return [(name, helps.get(name, "")) for name in (*ROLES, *SERVERS)
            if name.startswith(prefix)]


def type_candidates(prefix: str) -> list[tuple[str, str]]:
    """(value, help) pairs for ``--type``."""
    from keadb_cli.kea.access import SQL_TYPES

    return [(name, "") for name in SQL_TYPES if name.startswith(prefix)]
