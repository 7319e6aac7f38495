"""Find the database entries of a Kea DHCP configuration and pick some of them.

Kea's DHCPv4 and DHCPv6 servers name their databases in four places, all parsed by the same
``DbAccessParser``:

* ``Dhcp4.lease-database`` (role ``lease``);
* ``Dhcp4.hosts-database`` (role ``hosts``; deprecated in favour of the list);
* ``Dhcp4.hosts-databases[i]`` (role ``hosts``);
* ``Dhcp4.config-control.config-databases[i]`` (role ``config``);

and the same under ``Dhcp6``. Each entry keeps its path, so a command can say which one it
checks. memfile entries are listed too, with ``sql`` false: there is nothing to connect to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keadb_cli.errors import ConfigError
from keadb_cli.kea.access import SQL_TYPES, DbAccess
from keadb_cli.kea.config import KeaConfig
from keadb_cli.kea.validate import (
    HOSTS_DATABASE_STRICT_SINCE,
    Finding,
    Release,
    is_default_password,
    release_text,
    to_access,
    validate,
)
from keadb_cli.text import shown

__all__ = ["ROLES", "SERVERS", "ConfigEntry", "extract", "select"]

ROLES = ("lease", "hosts", "config")
SERVERS = ("Dhcp4", "Dhcp6")


@dataclass(frozen=True)
class ConfigEntry:
    """One database map of a Kea configuration, checked for one Kea release.

    ``access`` is the entry as a :class:`DbAccess` when it is a MySQL or PostgreSQL entry
    without errors, else None (memfile entries, entries with errors). ``raw`` is the map as
    read, password included: never print it.
    """

    path: str  # "Dhcp4.hosts-databases[1]"
    role: str  # "lease", "hosts" or "config"
    server: str  # "Dhcp4" or "Dhcp6"
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    type: str | None = None  # the "type" value when it is a string
    location: str = ""  # "file:line" where the entry starts
    sql: bool = False  # type is mysql or postgresql
    access: DbAccess | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def errors(self) -> list[Finding]:
        """Every error: the file's (Kea refuses the file) and the connection's."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def file_errors(self) -> list[Finding]:
        """Errors that make Kea refuse the whole configuration file."""
        return [f for f in self.errors if f.stage == "parse"]

    @property
    def connect_errors(self) -> list[Finding]:
        """Errors Kea meets only when it opens this entry's connection (a missing name, a
        built-in default password since 2.7.6): the file loads, this entry fails."""
        return [f for f in self.errors if f.stage == "connect"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def require_access(self) -> DbAccess:
        """The entry's :class:`DbAccess`, for a command that connects.

        Raises:
            ConfigError: the entry has an error (the first one is named), or it is not a
                MySQL or PostgreSQL entry.
        """
        for finding in self.findings:
            if finding.severity == "error":
                where = f"{finding.location}: " if finding.location else ""
                raise ConfigError(f"{where}{self.path}: {finding.message}")
        if self.access is None or not self.sql:
            raise ConfigError(f"{self.location}: {self.path} is a {self.type or 'non-SQL'} "
                              "backend: there is no database to check")
        return self.access


def extract(config: KeaConfig, *, release: Release | None = None) -> list[ConfigEntry]:
    """Every database entry of the ``Dhcp4`` and ``Dhcp6`` sections, in Kea's order, each
    validated for ``release`` (None: the newest rules). A ``password-file`` is read,
    relative to ``config.cwd`` like Kea does.

    Raises:
        ConfigError: the file has neither ``Dhcp4`` nor ``Dhcp6``, or one of the places
            above holds the wrong kind of value (Kea's grammar refuses such a file).
    """
    entries: list[ConfigEntry] = []
    servers = [name for name in SERVERS if name in config.root]
    if not servers:
        raise ConfigError(f"{config.location(config.root)}: no Dhcp4 or Dhcp6 section: not a "
                          "configuration of Kea's DHCP servers")
    for server in servers:
        section = _expect(config, config.root, server, dict, "a map")
        found: list[tuple[str, str, dict[str, Any]]] = []  # role, path, map
        for key, role in (("lease-database", "lease"), ("hosts-database", "hosts")):
            if key in section:
                found.append((role, f"{server}.{key}",
                              _expect(config, section, key, dict, "a map", server)))
        lists: list[tuple[str, dict[str, Any], str, str]] = []
        if "hosts-databases" in section:
            lists.append(("hosts", section, "hosts-databases", server))
        if "config-control" in section:
            control = _expect(config, section, "config-control", dict, "a map", server)
            if "config-databases" in control:
                lists.append(("config", control, "config-databases", f"{server}.config-control"))
        for role, parent, key, parent_path in lists:
            items = _expect(config, parent, key, list, "a list", parent_path)
            for index in range(len(items)):
                found.append((role, f"{parent_path}.{key}[{index}]",
                              _expect(config, items, index, dict, "a map",
                                      f"{parent_path}.{key}")))
        for role, path, raw in found:
            extra = _section_findings(config, section, path, release)
            entries.append(_entry(config, server, role, path, raw, release, extra))
    return entries


def _expect(config: KeaConfig, parent: Any, key: str | int, kind: type, what: str,
            parent_path: str | None = None) -> Any:
    value = parent[key]
    if not isinstance(value, kind):
        name = f"{parent_path}[{key}]" if isinstance(key, int) else (
            f"{parent_path}.{key}" if parent_path else str(key))
        raise ConfigError(f"{config.location(parent, key, value=True)}: {name} must be "
                          f"{what}, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _section_findings(config: KeaConfig, section: dict[str, Any], path: str,
                      release: Release | None) -> list[Finding]:
    """What the server says about the entry as a whole (not about its keywords)."""
    if not path.endswith(".hosts-database"):
        return []
    strict = release is None or release >= HOSTS_DATABASE_STRICT_SINCE
    if not strict:
        return []
    where = config.location(section["hosts-database"])
    findings = [Finding("warning", None, "'hosts-database' is deprecated: use the "
                        "'hosts-databases' list", where)]
    if "hosts-databases" in section:
        findings.insert(0, Finding("error", None, f"{release_text(release)} refuses "
                                   "'hosts-database' and 'hosts-databases' together", where))
    return findings


def _entry(config: KeaConfig, server: str, role: str, path: str, raw: dict[str, Any],
           release: Release | None, extra: list[Finding]) -> ConfigEntry:
    # Where the map opens: known without reading the enclosing section again.
    pos = config.position(raw)
    location = pos.file_line if pos is not None else config.path
    findings = extra + validate(raw, release=release, config=config)
    db_type = raw.get("type") if isinstance(raw.get("type"), str) else None
    sql = db_type in SQL_TYPES
    access = None
    if sql and not any(f.severity == "error" and f.stage == "parse" for f in findings):
        where = config.location(raw, "password-file", value=True)
        try:
            access = to_access(raw, path=path, role=role, cwd=config.cwd, where=where)
        except ConfigError as exc:
            # Only password-file problems get here; the message has the location.
            message = exc.message.removeprefix(f"{where}: ")
            findings.append(Finding("error", "password-file", message, where))
        else:
            if "password-file" in raw and access.password is not None \
                    and is_default_password(access.password, release):
                findings.append(Finding(
                    "error", "password-file",
                    f"password-file {shown(str(raw['password-file']), 200)} holds a "
                    f"built-in default password, which {release_text(release)} refuses "
                    "when it connects",
                    where, stage="connect"))
    # Errors first (the file's, then the connection's), order kept within each.
    findings.sort(key=lambda f: (f.severity != "error", f.stage != "parse"))
    return ConfigEntry(path=path, role=role, server=server, raw=raw, type=db_type,
                       location=location, sql=sql, access=access, findings=tuple(findings))


def select(entries: Iterable[ConfigEntry], spec: str | None = None) -> list[ConfigEntry]:
    """The entries a ``--backend`` value names.

    ``spec`` is a role (``lease``, ``hosts``, ``config``: every entry of that role, memfile
    ones included), a server (``Dhcp4``: its entries), or an exact path
    (``Dhcp4.hosts-databases[1]``). None means every MySQL and PostgreSQL entry.

    Raises:
        ConfigError: nothing matches; the message lists the paths there are.
    """
    entries = list(entries)
    if spec is None:
        chosen = [e for e in entries if e.sql]
        if not chosen:
            raise ConfigError(f"no MySQL or PostgreSQL backend in the configuration; "
                              f"found {_listing(entries)}")
        return chosen
    if spec in ROLES:
        chosen = [e for e in entries if e.role == spec]
    elif spec in SERVERS:
        chosen = [e for e in entries if e.server == spec]
    else:
        chosen = [e for e in entries if e.path == spec]
    if not chosen:
        raise ConfigError(f"no backend '{shown(spec, 80)}' in the configuration; use lease, hosts, "
                          f"config or one of: {_listing(entries)}")
    return chosen


def _listing(entries: list[ConfigEntry]) -> str:
    if not entries:
        return "no database entries at all"
    return ", ".join(f"{e.path} ({shown(e.type, 40) if e.type else 'no type'})"
                     for e in entries)
