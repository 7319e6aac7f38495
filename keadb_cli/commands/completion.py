"""What shell completion offers for option values (click's own completion, see
``_KEA_DB_COMPLETE=bash_source kea-db``): the Kea releases kea-db knows and the backend
selectors of ``--backend`` (with the entry paths of the ``--config`` files given before
it). Functions of the typed prefix; the CLI wraps them."""

from __future__ import annotations

from collections.abc import Sequence

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


def backend_candidates(prefix: str, configs: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(value, help) pairs for ``--backend``: the roles and the servers, and, when
    ``--config`` files were given before it, their entry paths
    (``Dhcp4.hosts-databases[1]``, each once) with a password-free label. A file that
    cannot be read offers no paths: completion never fails."""
    from keadb_cli.kea.entries import ROLES, SERVERS

    helps = {"lease": "the lease-database entry", "hosts": "every hosts-databases entry",
             "config": "every config-control config-databases entry",
             "Dhcp4": "every entry of Dhcp4", "Dhcp6": "every entry of Dhcp6"}
    pairs = [(name, helps.get(name, "")) for name in (*ROLES, *SERVERS)]
    for config in configs:
        pairs.extend(p for p in _entry_paths(config) if p[0] not in {q[0] for q in pairs})
    return [(name, text) for name, text in pairs if name.startswith(prefix)]


def _entry_paths(config: str) -> list[tuple[str, str]]:
    from keadb_cli.errors import KeaDbError
    from keadb_cli.kea import config as kea_config
    from keadb_cli.kea import entries as kea_entries
    from keadb_cli.text import shown

    try:
        entries = kea_entries.extract(kea_config.load(config))
    except (KeaDbError, OSError, ValueError, RecursionError):
        return []
    return [(entry.path, shown(entry.access.label() if entry.access is not None
                               else f"{entry.type}: the entry has an error" if entry.sql
                               else entry.type or "not usable", 80))
            for entry in entries]


def type_candidates(prefix: str) -> list[tuple[str, str]]:
    """(value, help) pairs for ``--type``."""
    from keadb_cli.kea.access import SQL_TYPES

    return [(name, "") for name in SQL_TYPES if name.startswith(prefix)]
