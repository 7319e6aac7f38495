"""The sessions init and upgrade hold on a database: the command's own session and, when
the server is one node of a cluster whose every node takes writes (Galera), one session on
each other node of the cluster, opened with the same plan (user, password, TLS).

The init/upgrade lock is taken on every member, always in the order of the cluster's own
address list (:meth:`ClusterSessions.ordered`): two commands started through two nodes
then wait for each other on the first node instead of each holding a part of the locks.
The other-sessions check reads every member. The backend object builds it
(:meth:`keadb_cli.db.backends.base.Backend.open_cluster`).

Nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keadb_cli.db.session import Session


@dataclass
class ClusterSessions:
    """The command's session (``own``, at ``own_address``) and the sessions on the other
    nodes of its cluster (``peers``, by the address the cluster lists); no peers on a
    single server."""

    own: Session
    own_address: str = ""  # as the cluster lists it ("" on a single server)
    peers: dict[str, Session] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return 1 + len(self.peers)

    def ordered(self) -> list[tuple[str, Session]]:
        """Every member (address, session), in one order every node's command agrees on:
        the addresses sorted as text."""
        members = {self.own_address: self.own, **self.peers}
        return sorted(members.items())

    def addresses(self) -> list[str]:
        return [address for address, _session in self.ordered()]

    def close(self) -> None:
        """Close the peers' sessions (which releases their locks); ``own`` is the
        caller's."""
        for session in self.peers.values():
            with contextlib.suppress(Exception):
                session.close()
