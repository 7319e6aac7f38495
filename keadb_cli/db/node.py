"""The role of the server a session landed on: a primary, a PostgreSQL hot standby, a MySQL
``read_only`` replica, or a Galera node, and whether a write can work and be safe there.

The backend object reads the facts in one query right after login
(:meth:`keadb_cli.db.backends.base.Backend.read_node`); :meth:`Node.write_problem` judges
them. Where the primary is comes only from what the server tells this user (PostgreSQL's
``primary_conninfo``, a replica's source): its host and port, never anything else of it
(``primary_conninfo`` may hold a password).

Nothing here prints or exits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from keadb_cli.text import shown

PRIMARY = "primary"
STANDBY = "standby"
READ_ONLY_REPLICA = "read-only-replica"
GALERA = "galera"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Galera:
    """A Galera node's health (``wsrep_*``, global status and variables)."""

    cluster_size: int | None
    cluster_status: str  # "Primary", "non-Primary", "Disconnected"
    local_state: str  # wsrep_local_state_comment: "Synced", "Donor/Desynced", "Joining"...
    osu_method: str  # wsrep_OSU_method: "TOI", "RSU", "NBO"

    def problem(self, ddl: bool = True) -> str:
        """Why a write (with ``ddl``, a schema change) cannot work or be safe on this node,
        or "" when it can. The OSU method matters to schema changes only."""
        if self.cluster_status != "Primary":
            return (f"is not in the Primary component (wsrep_cluster_status "
                    f"{self.cluster_status or 'unknown'}): it refuses writes")
        if self.local_state != "Synced":
            return (f"is not Synced (wsrep_local_state_comment "
                    f"{self.local_state or 'unknown'})")
        if ddl and self.osu_method.upper() != "TOI":
            return (f"runs schema changes with wsrep_OSU_method {self.osu_method or 'unknown'}, "
                    "not TOI: they would not reach the other nodes in order")
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"cluster_size": self.cluster_size, "cluster_status": self.cluster_status,
                "local_state": self.local_state, "osu_method": self.osu_method}


@dataclass(frozen=True)
class Node:
    """What one server is in its topology, as far as its session can tell."""

    role: str  # PRIMARY, STANDBY, READ_ONLY_REPLICA, GALERA or UNKNOWN
    in_recovery: bool | None = None  # PostgreSQL: pg_is_in_recovery()
    read_only: bool | None = None  # MySQL/MariaDB: read_only
    super_read_only: bool | None = None  # Oracle MySQL only
    primary: str | None = None  # "host:port" of the primary or source, when the server says
    primary_from: str = ""  # where that came from ("primary_conninfo", "SHOW SLAVE STATUS")
    galera: Galera | None = None
    note: str = ""  # why a fact is unknown ("cannot read ...")

    @property
    def writable(self) -> bool:
        """Whether init and upgrade (schema changes) may run here."""
        return not self.write_problem()

    def write_problem(self, ddl: bool = True) -> str:
        """What makes a write (with ``ddl``, a schema change) impossible or unsafe on this
        node ("" when none): the node's state in words, for a message that starts with the
        server's name."""
        if self.role == STANDBY:
            return f"is a hot standby (in recovery{self._where()})"
        if self.role == READ_ONLY_REPLICA:
            flags = "super_read_only" if self.super_read_only else "read_only"
            return (f"is read-only ({flags} ON{self._where('source')}): Kea's user cannot "
                    "write there, and a user who may would split the replica from its source")
        if self.role == GALERA and self.galera is not None:
            problem = self.galera.problem(ddl)
            if problem:
                return f"is a Galera node that {problem}"
        if self.read_only:  # a Galera node with read_only set
            return "is read-only (read_only ON)"
        return ""

    def _where(self, word: str = "primary") -> str:
        if self.primary:
            return f"; {word} {self.primary} per {self.primary_from}"
        return f"; {word} unknown to this user" if self.role != GALERA else ""

    def brief(self) -> str:
        """One short phrase for the plain-text output: "standby (primary 10.0.0.1:5432)"."""
        text = self.role
        if self.primary:
            text += f" ({'primary' if self.role == STANDBY else 'source'} {self.primary})"
        if self.galera is not None:
            g = self.galera
            text += (f" ({g.cluster_status}, {g.local_state}, {g.cluster_size} nodes, "
                     f"{g.osu_method})")
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "writable": self.writable}
        if self.in_recovery is not None:
            out["in_recovery"] = self.in_recovery
        if self.read_only is not None:
            out["read_only"] = self.read_only
        if self.super_read_only is not None:
            out["super_read_only"] = self.super_read_only
        if self.role in (STANDBY, READ_ONLY_REPLICA):
            out["primary"] = self.primary
            out["primary_from"] = self.primary_from or None
        if self.galera is not None:
            out["galera"] = self.galera.to_json()
        if self.note:
            out["note"] = self.note
        return out


def refusal_text(node: Node, where: str, command: str) -> str:
    """The refusal of a command that writes, naming the node's state and the primary."""
    target = f"the primary ({node.primary})" if node.primary else "the primary"
    if node.role == GALERA and node.galera is not None and not node.read_only:
        target = "a Synced node of the Primary component, with wsrep_OSU_method TOI"
    return (f"{where} {node.write_problem()}: {command} would fail on its first write or "
            f"be unsafe. Run it against {target}.")


# -- parsing what the server says ----------------------------------------------------------

# One ``key = value`` of a libpq connection string, read from where the previous ended (a
# value is quoted with backslash escapes, or runs to white space): never resynchronised
# inside a quoted value, where "host=x" may be part of a password.
_KV = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|((?:[^\s'\\]|\\.)*))")


def conninfo_address(conninfo: str | None) -> str | None:
    """``host:port`` of a libpq connection string (``key=value`` pairs or a URI), or None.

    Only host, hostaddr and port are read; nothing else of it (a password) is kept.
    """
    if not conninfo:
        return None
    text = conninfo.strip()
    host, port = "", ""
    if text.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(text)
            host = unquote(parts.hostname or "")
            port = str(parts.port or "")
        except ValueError:
            return None
    else:
        values: dict[str, str] = {}
        position = 0
        while position < len(text):
            match = _KV.match(text, position)
            if match is None or match.end() == position:
                return None  # not a connection string libpq reads
            position = match.end()
            if position < len(text) and not text[position].isspace():
                return None
            key = match.group(1).lower()
            if key in ("host", "hostaddr", "port"):
                raw = match.group(2) if match.group(2) is not None else match.group(3)
                values[key] = re.sub(r"\\(.)", r"\1", raw)
        host = values.get("host") or values.get("hostaddr", "")
        port = values.get("port", "")
    if not host:
        return None
    return address(host, port or "5432")


def address(host: str, port: str | int | None) -> str:
    """``host:port`` as shown (``[v6]:port`` for an IPv6 address), printable."""
    host_text = shown(host, 100)
    if ":" in host_text and not host_text.startswith("["):
        host_text = f"[{host_text}]"
    return f"{host_text}:{shown(str(port), 10)}" if port else host_text


def on(value: str | None) -> bool:
    """A server's boolean setting as text ("ON", "1", "t", "true")."""
    return (value or "").strip().lower() in ("on", "1", "t", "true", "yes")


# -- a primary's standbys ------------------------------------------------------------------

SYNCHRONOUS = ("sync", "quorum")  # pg_stat_replication.sync_state of a synchronous standby


@dataclass(frozen=True)
class Replica:
    """One standby or replica a primary streams to, as far as this user may see it: a
    user without pg_monitor (pg_read_all_stats) sees the row with its details NULL."""

    name: str | None = None  # PostgreSQL: application_name; MySQL: the server id
    address: str | None = None  # the client's host:port
    state: str | None = None  # "streaming", "catchup"...
    sync_state: str | None = None  # "async", "sync", "quorum", "potential"
    replay_lag: float | None = None  # seconds (pg_stat_replication.replay_lag)
    replay_bytes: int | None = None  # WAL the standby has not replayed yet

    @property
    def synchronous(self) -> bool:
        return (self.sync_state or "").lower() in SYNCHRONOUS

    @property
    def hidden(self) -> bool:
        """The row is there but its details are not shown to this user."""
        return self.state is None and self.address is None

    def brief(self) -> str:
        """"walreceiver (127.0.0.1:40112, streaming, sync, replay lag 0.002 s)"."""
        facts = [f for f in (self.address, self.state, self.sync_state) if f]
        if self.replay_lag is not None:
            facts.append(f"replay lag {self.replay_lag:g} s")
        if self.replay_bytes is not None:
            facts.append(f"{self.replay_bytes} bytes to replay")
        name = shown(self.name, 64) if self.name else "(no name shown)"
        return f"{name} ({', '.join(facts)})" if facts else name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "state": self.state,
                "sync_state": self.sync_state, "synchronous": self.synchronous,
                "replay_lag_seconds": self.replay_lag, "replay_bytes": self.replay_bytes}


@dataclass(frozen=True)
class Replicas:
    """The standbys (replicas) a primary streams to, read from ``source``; ``count`` is
    None when they could not be read at all (``note`` says why)."""

    source: str  # "pg_stat_replication", "SHOW SLAVE HOSTS"
    rows: tuple[Replica, ...] = ()
    count: int | None = 0
    note: str = ""
    word: str = "standby"  # what the server family calls them ("standby", "replica")

    @property
    def synchronous(self) -> tuple[Replica, ...]:
        return tuple(r for r in self.rows if r.synchronous)

    def findings(self, command: str = "upgrade") -> list[str]:
        """What --plan says of them: none when the primary streams to none (or they
        cannot be read; the JSON's note says why)."""
        if not self.count:
            return []
        listed = "; ".join(r.brief() for r in self.rows)
        out = [f"{self.count} {self.word}(s) per {self.source} will replay the {command}: "
               f"{listed}"]
        hidden = sum(1 for r in self.rows if r.hidden)
        if hidden and self.note:
            out.append(f"{hidden} of them without details: {self.note}")
        for replica in self.synchronous:
            out.append(f"{self.word} {shown(replica.name or '?', 64)} is synchronous "
                       f"(sync_state {replica.sync_state}): every commit of the {command} "
                       "waits for it to confirm, so the steps last as long as it lags")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "count": self.count,
                "synchronous": len(self.synchronous),
                "rows": [r.to_json() for r in self.rows], "note": self.note or None}
