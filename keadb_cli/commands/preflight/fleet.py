"""preflight's fleet rules: what only a tool that reads every Kea server's file can check.

Each Kea server is blind to its siblings. When several files name one database, ISC's
guidance applies to them together:

* ``unique-lease-database`` (fail; warn where Kea supports it): servers outside one HA
  relationship share a lease database. ISC: a unique database per Kea server, except within
  one HA group (KB "kea-unique-databases"); Kea 2.6.2 and later without the FLQ allocator
  support a shared lease database (KB "kea-shared-lease-database-quickstart"), so there it
  is a warning that the sharing must be deliberate.
* ``shared-lease-release`` (fail; warn when the release is unknown): a shared lease database
  needs Kea 2.6.2 or later on every sharer (KB "kea-shared-lease-database-quickstart", Kea
  #3751 and #3798).
* ``shared-lease-flq`` (fail): a subnet of a sharer allocates with ``flq``, which does not
  work on a shared lease database (ARM, "Free Lease Queue Allocator": a server never learns
  of leases its siblings reclaim).
* ``shared-flq-agreement`` (fail): sharers disagree on which subnets use ``shared-flq``
  (ARM, "Shared Free Lease Queue Allocator": the shared free lease data goes wrong).
* ``ha-lease-updates`` (warn): HA peers on one lease database still send lease updates or
  synchronise leases (ARM hooks-ha: with one database, or a replicated one, set
  ``send-lease-updates`` and ``sync-leases`` to false). Kea works, but writes every lease
  twice and reads the whole lease table from its partner at start-up.
* ``max-connections`` (fail; warn when a count rests on ``thread-pool-size`` 0): the
  connections every file may open to one database server are over its ``max_connections``.

Two files share a lease database when their lease entries of one server family (``Dhcp4``
or ``Dhcp6``: they use different lease tables) name one database: same type, host, port
(the backend's default when unset) and name. Only one Kea release is known for the whole
run (``--kea-version``); the rules say so when they need it and it was not given.

Pure functions over what preflight already read: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

from keadb_cli.commands.preflight.model import Status
from keadb_cli.errors import ExitCode
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Release

if TYPE_CHECKING:
    from keadb_cli.kea.config import KeaConfig
    from keadb_cli.kea.entries import ConfigEntry

SHARED_LEASE_DATABASE_SINCE = Release(2, 6, 2)  # KB kea-shared-lease-database-quickstart
MULTI_THREADING_DEFAULT_SINCE = Release(2, 3, 5)  # enable-multi-threading defaults to true
SHARED_FLQ_SINCE = Release(3, 1, 8)  # the 'shared-flq' allocator (ChangeLog 2459)
HA_HOOK = "libdhcp_ha.so"
_SUBNETS = {"Dhcp4": "subnet4", "Dhcp6": "subnet6"}

ServerKey = tuple[str, str, int]  # type, host, port: one database server
DatabaseKey = tuple[str, str, int, str]  # ... and the database name


@dataclass(frozen=True)
class FleetFile:
    """One Kea configuration file as preflight read it."""

    path: str
    config: KeaConfig
    entries: tuple[ConfigEntry, ...]


@dataclass(frozen=True)
class Member:
    """A file and the entry of it a fleet finding involves."""

    file: str
    path: str
    location: str = ""  # "file:line", "" when unknown

    def __str__(self) -> str:
        return f"{self.file} {self.path}"


@dataclass(frozen=True)
class FleetFinding:
    """One fleet rule broken by several files together."""

    rule: str
    status: Status
    detail: str
    members: tuple[Member, ...]
    database: str  # "postgresql db1:5432/kea" or "postgresql server db1:5432"
    code: ExitCode = ExitCode.OK
    reason_code: str = ""

    @property
    def names(self) -> str:
        """The files and entries involved, in one line."""
        return ", ".join(str(m) for m in self.members)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "status": self.status.value,
                               "database": self.database, "detail": self.detail,
                               "members": [{"file": m.file, "path": m.path,
                                            "location": m.location} for m in self.members]}
        if self.status is Status.FAIL:
            out["exit_code"] = int(self.code)
        if self.reason_code:
            out["reason_code"] = self.reason_code
        return out


def _fail(rule: str, detail: str, members: Iterable[Member], database: str) -> FleetFinding:
    return FleetFinding(rule, Status.FAIL, detail, tuple(members), database, ExitCode.CONFIG,
                        rule)


def _warn(rule: str, detail: str, members: Iterable[Member], database: str) -> FleetFinding:
    return FleetFinding(rule, Status.WARN, detail, tuple(members), database, reason_code=rule)


# -- reading the files -------------------------------------------------------------------


def _access(entry: ConfigEntry) -> DbAccess | None:
    if entry.access is not None:
        return entry.access
    raw = entry.raw
    values = {k: raw.get(k) for k in ("type", "host", "name", "user")
              if isinstance(raw.get(k), str)}
    port = raw.get("port")
    return DbAccess(port=port if isinstance(port, int) and not isinstance(port, bool) else None,
                    **values)


def server_key(access: DbAccess) -> ServerKey:
    """The database server an access entry reaches (the backend's port when unset; a
    PostgreSQL host list in any order is one server)."""
    from keadb_cli.db.backends import BACKENDS

    db_type = access.type or ""
    backend = BACKENDS.get(db_type)
    if backend is None:  # not an SQL backend: no key to share with another entry's
        return db_type, access.effective_host.lower(), access.port or 0
    return db_type, backend.host_key(access.effective_host), access.port or backend.default_port


def database_key(access: DbAccess) -> DatabaseKey:
    return (*server_key(access), access.name or "")


def _server_label(key: ServerKey) -> str:
    return f"{key[0]} server {key[1]}:{key[2]}"


def _database_label(key: DatabaseKey) -> str:
    return f"{key[0]} {key[1]}:{key[2]}/{key[3]}"


def _where(config: KeaConfig, node: Any) -> str:
    pos = config.position(node) if isinstance(node, (dict, list)) else None
    return pos.file_line if pos is not None else ""


@dataclass(frozen=True)
class _Relationship:
    """One HA relationship of one server (an element of ``high-availability``)."""

    this: str
    peers: frozenset[str]
    send_lease_updates: bool
    sync_leases: bool
    member: Member


def _relationships(file: FleetFile, server: str) -> list[_Relationship]:
    """The HA relationships the ``libdhcp_ha.so`` hook of ``server`` declares."""
    section = file.config.root.get(server)
    libraries = section.get("hooks-libraries") if isinstance(section, dict) else None
    found = []
    for i, library in enumerate(libraries if isinstance(libraries, list) else []):
        name = library.get("library") if isinstance(library, dict) else None
        if not isinstance(name, str) or name.rsplit("/", 1)[-1] != HA_HOOK:
            continue
        params = library.get("parameters")
        groups = params.get("high-availability") if isinstance(params, dict) else None
        for j, group in enumerate(groups if isinstance(groups, list) else []):
            if not isinstance(group, dict) or not isinstance(group.get("this-server-name"), str):
                continue
            peers = frozenset(p["name"] for p in group.get("peers") or []
                              if isinstance(p, dict) and isinstance(p.get("name"), str))
            path = f"{server}.hooks-libraries[{i}].parameters.high-availability[{j}]"
            found.append(_Relationship(
                group["this-server-name"], peers,
                group.get("send-lease-updates", True) is not False,
                group.get("sync-leases", True) is not False,
                Member(file.path, path, _where(file.config, group))))
    return found


def _partners(a: list[_Relationship], b: list[_Relationship]) -> list[tuple[_Relationship,
                                                                                _Relationship]]:
    """The relationships two servers are peers in (same peers, each a different one)."""
    return [(x, y) for x in a for y in b
            if x.peers == y.peers and x.this != y.this and {x.this, y.this} <= x.peers]


@dataclass(frozen=True)
class _Subnet:
    """A subnet and the allocator that applies to it (subnet, then shared network, then
    global), for addresses and, in Dhcp6, for delegated prefixes."""

    prefix: str
    member: Member
    allocators: Mapping[str, str] = field(default_factory=dict)  # "allocator" -> "flq"


def _subnets(file: FleetFile, server: str) -> list[_Subnet]:
    section = file.config.root.get(server)
    if not isinstance(section, dict):
        return []
    keys = ("allocator", "pd-allocator") if server == "Dhcp6" else ("allocator",)
    listed = _SUBNETS[server]
    places: list[tuple[str, Any, dict[str, Any]]] = [(f"{server}.{listed}",
                                                      section.get(listed), {})]
    networks = section.get("shared-networks")
    for i, network in enumerate(networks if isinstance(networks, list) else []):
        if isinstance(network, dict):
            places.append((f"{server}.shared-networks[{i}].{listed}", network.get(listed),
                           network))
    found = []
    for where, subnets, network in places:
        for i, subnet in enumerate(subnets if isinstance(subnets, list) else []):
            if not isinstance(subnet, dict) or not isinstance(subnet.get("subnet"), str):
                continue
            allocators = {}
            for key in keys:
                for scope in (subnet, network, section):
                    if isinstance(scope.get(key), str):
                        allocators[key] = scope[key]
                        break
            found.append(_Subnet(_prefix(subnet["subnet"]),
                                 Member(file.path, f"{where}[{i}]", _where(file.config, subnet)),
                                 allocators))
    return found


def _prefix(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        return text.strip()


def _threads(file: FleetFile, server: str, release: Release | None) -> tuple[int | None, bool]:
    """The server's thread pool: (threads, multi-threading on); threads None means
    ``thread-pool-size`` 0, one thread per CPU core of the Kea host."""
    section = file.config.root.get(server)
    mt = section.get("multi-threading") if isinstance(section, dict) else None
    mt = mt if isinstance(mt, dict) else {}
    enabled = mt.get("enable-multi-threading")
    if not isinstance(enabled, bool):
        enabled = release is None or release >= MULTI_THREADING_DEFAULT_SINCE
    size = mt.get("thread-pool-size", 0)
    if not enabled:
        return 1, False
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, True
    return None, True


# -- the rules -----------------------------------------------------------------------------


@dataclass
class _Sharer:
    file: FleetFile
    entry: ConfigEntry

    @property
    def member(self) -> Member:
        return Member(self.file.path, self.entry.path, self.entry.location)


def fleet_findings(files: list[FleetFile], release: Release | None,
                   limits: Mapping[ServerKey, int], auto_threads: int,
                   source: str = "") -> list[FleetFinding]:
    """Every fleet finding of ``files`` for Kea ``release`` (None: unknown), which
    ``source`` names ("--kea-version 2.6", "installed kea-dhcp4 2.6.1").

    ``limits`` holds the ``max_connections`` preflight read from each database server it
    reached; ``auto_threads`` is how many threads a ``thread-pool-size`` of 0 is counted as.
    """
    findings: list[FleetFinding] = []
    shared: dict[tuple[DatabaseKey, str], list[_Sharer]] = {}
    for file in files:
        for entry in file.entries:
            access = _access(entry) if entry.sql and entry.role == "lease" else None
            if access is not None:
                shared.setdefault((database_key(access), entry.server), []).append(
                    _Sharer(file, entry))
    for (key, server), sharers in shared.items():
        if len({s.file.path for s in sharers}) < 2:
            continue
        label = _database_label(key)
        findings.extend(_shared_lease_rules(sharers, server, label, release, source))
    findings.extend(_connection_rule(files, release, limits, auto_threads))
    return findings


def _shared_lease_rules(sharers: list[_Sharer], server: str, label: str,
                        release: Release | None, source: str) -> list[FleetFinding]:
    found: list[FleetFinding] = []
    members = [s.member for s in sharers]
    names = ", ".join(str(m) for m in members)
    ha = {s.file.path: _relationships(s.file, server) for s in sharers}
    strangers = [(a, b) for a, b in combinations(sharers, 2)
                 if a.file.path != b.file.path and not _partners(ha[a.file.path],
                                                                 ha[b.file.path])]
    subnets = {s.file.path: _subnets(s.file, server) for s in sharers}
    flq = [(subnet, key) for s in sharers for subnet in subnets[s.file.path]
           for key, value in subnet.allocators.items() if value == "flq"]
    if strangers:
        pairs = "; ".join(f"{a.file.path} and {b.file.path}" for a, b in strangers)
        involved = {p for pair in strangers for p in (pair[0].file.path, pair[1].file.path)}
        # Kea 2.6.2+ without FLQ supports a lease database shared outside HA (KB
        # kea-shared-lease-database-quickstart): then a warning that it must be deliberate.
        supported = release is not None and release >= SHARED_LEASE_DATABASE_SINCE and not flq
        report = _warn if supported else _fail
        found.append(report(
            "unique-lease-database",
            f"{names} share lease database {label}, but {pairs} are not peers of one HA "
            "relationship: ISC asks for a unique database per Kea server, shared only "
            "within one HA group (KB kea-unique-databases); "
            + ("Kea 2.6.2 and later without the FLQ allocator support it (KB "
               "kea-shared-lease-database-quickstart): make sure it is deliberate"
               if supported else "give each server its own database, or make them HA "
               "peers"),
            [m for m in members if m.file in involved], label))
    if release is None:
        found.append(_warn(
            "shared-lease-release",
            f"{names} share lease database {label}: a shared lease database needs Kea "
            f"{SHARED_LEASE_DATABASE_SINCE} or later on every server that shares it (KB "
            "kea-shared-lease-database-quickstart; Kea #3751, #3798), and kea-db cannot know "
            "which release these files run on: give --kea-version", members, label))
    elif release < SHARED_LEASE_DATABASE_SINCE:
        found.append(_fail(
            "shared-lease-release",
            f"{names} share lease database {label} with Kea {release} ({source}; kea-db "
            "checks every file against this one release): a shared lease database needs "
            f"Kea {SHARED_LEASE_DATABASE_SINCE} or later on every server that shares it (KB "
            "kea-shared-lease-database-quickstart; Kea #3751, #3798)",
            members, label))
    if flq:
        listed = ", ".join(f"{sub.member} ({sub.prefix}, {key} flq)" for sub, key in flq)
        found.append(_fail(
            "shared-lease-flq",
            f"{names} share lease database {label}, and {listed} allocate with the FLQ "
            "allocator, which does not suit a shared lease database: a server never "
            "learns of leases its siblings reclaim and cannot offer them (ARM, Free Lease "
            "Queue Allocator; KB kea-shared-lease-database-quickstart): use the random "
            "allocator", members + [sub.member for sub, _ in flq], label))
    found.extend(_shared_flq_rule(sharers, subnets, names, label))
    found.extend(_ha_updates_rule(sharers, ha, names, label))
    return found


def _shared_flq_rule(sharers: list[_Sharer], subnets: dict[str, list[_Subnet]], names: str,
                     label: str) -> list[FleetFinding]:
    """Every sharer must agree on which subnets (and, in Dhcp6, which prefix delegation
    pools) use ``shared-flq``."""
    using: dict[str, dict[tuple[str, str], _Subnet]] = {}
    for sharer in sharers:
        for subnet in subnets[sharer.file.path]:
            for key, value in subnet.allocators.items():
                if value == "shared-flq":
                    using.setdefault(sharer.file.path, {})[(subnet.prefix, key)] = subnet
    if not using:
        return []
    everything = {k for per_file in using.values() for k in per_file}
    files = list(dict.fromkeys(s.file.path for s in sharers))
    odd = []
    for prefix, key in sorted(everything):
        yes = [f for f in files if (prefix, key) in using.get(f, {})]
        no = [f for f in files if f not in yes]
        if no:
            odd.append((prefix, key, yes, no))
    if not odd:
        return []
    text = "; ".join(f"{prefix} uses shared-flq ({key}) in {', '.join(yes)} but not in "
                     f"{', '.join(no)}" for prefix, key, yes, no in odd)
    involved = [using[f][(prefix, key)].member for prefix, key, yes, _ in odd for f in yes]
    for prefix, _key, _, no in odd:
        for f in no:
            involved.extend(s.member for s in subnets[f] if s.prefix == prefix)
    members = [s.member for s in sharers] + list(dict.fromkeys(involved))
    return [_fail(
        "shared-flq-agreement",
        f"{names} share lease database {label}, and they disagree on which subnets use the "
        f"shared-flq allocator: {text}. Every server sharing a lease database must agree, "
        "or the shared free lease data goes wrong (ARM, Shared Free Lease Queue Allocator; "
        f"shared-flq needs Kea {SHARED_FLQ_SINCE} or later and is experimental)",
        members, label)]


def _ha_updates_rule(sharers: list[_Sharer], ha: dict[str, list[_Relationship]], names: str,
                     label: str) -> list[FleetFinding]:
    """HA peers on one lease database: lease updates and lease syncing should be off."""
    chatty: dict[Member, _Relationship] = {}
    for a, b in combinations(sharers, 2):
        for x, y in _partners(ha[a.file.path], ha[b.file.path]):
            for rel in (x, y):
                if rel.send_lease_updates or rel.sync_leases:
                    chatty[rel.member] = rel
    if not chatty:
        return []
    on = "; ".join(
        f"{member}: " + ", ".join(f"{k} true" for k, v in (
            ("send-lease-updates", rel.send_lease_updates), ("sync-leases", rel.sync_leases))
            if v)
        for member, rel in chatty.items())
    return [_warn(
        "ha-lease-updates",
        f"{names} are HA peers on one lease database {label}, and {on} (both default to "
        "true): with one shared or replicated database set send-lease-updates and "
        "sync-leases to false (ARM, High Availability, lease updates and database "
        "replication); else every lease is written twice and a starting server reads the "
        "whole lease table from its partner", [s.member for s in sharers] + list(chatty),
        label)]


def _connection_rule(files: list[FleetFile], release: Release | None,
                     limits: Mapping[ServerKey, int], auto_threads: int) -> list[FleetFinding]:
    """The connections every file may open to one database server, against its limit.

    A lease or hosts backend opens one connection per thread of the pool plus one for
    the main thread when multi-threading is on, else one; a configuration backend opens
    one.
    """
    counts: dict[ServerKey, list[tuple[Member, int, bool]]] = {}
    for file in files:
        for entry in file.entries:
            access = _access(entry) if entry.sql else None
            if access is None:
                continue
            threads, mt = _threads(file, entry.server, release)
            auto = threads is None
            if entry.role == "config" or not mt:
                n = 1
            else:
                n = (auto_threads if threads is None else threads) + 1
            counts.setdefault(server_key(access), []).append(
                (Member(file.path, entry.path, entry.location), n, auto and entry.role != "config"))
    found = []
    for key, uses in counts.items():
        limit = limits.get(key)
        total = sum(n for _, n, _ in uses)
        if limit is None or total <= limit:
            continue
        auto = any(a for _, _, a in uses)
        parts = ", ".join(f"{m} {n}" for m, n, _ in uses)
        text = (f"{parts}: up to {total} connections to {_server_label(key)}, whose "
                f"max_connections is {limit}. Each Kea thread holds its own connection per "
                "lease or hosts backend (servers x daemons x backends x thread-pool-size): "
                "raise max_connections or lower thread-pool-size")
        if auto:
            text += (f" (thread-pool-size 0 counted as {auto_threads} threads, the CPU cores "
                     "of the host kea-db runs on; Kea uses the cores of its own host)")
            found.append(_warn("max-connections", text, [m for m, _, _ in uses],
                               _server_label(key)))
        else:
            found.append(_fail("max-connections", text, [m for m, _, _ in uses],
                               _server_label(key)))
    return found
