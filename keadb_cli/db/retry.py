"""Waiting for a database that can still change its answer: a server that is still
starting (a login refused, timed out, not yet in DNS), or a standby that has not replayed
its primary's change yet. The callers decide what may be retried; this module only says
whether time is left and sleeps between attempts, each pause twice the last, up to
:data:`MAX_RETRY`.

Nothing here prints or exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Login failures that can heal while a server starts (refused, timed out, name not yet in
# DNS, socket not there yet, starting up, busy). Never retried: DENIED, a TLS failure, bad
# settings.
HEALING = frozenset({
    "refused", "timeout", "dns", "network", "no-socket", "server-starting",
    "server-shutdown", "connection-lost", "too-many-connections", "unreachable",
})

FIRST_RETRY = 0.2  # seconds; doubled after each attempt up to MAX_RETRY
MAX_RETRY = 2.0


@dataclass
class Waiter:
    """Attempts within ``wait`` seconds (None or 0: one attempt only)."""

    wait: float | None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    attempts: int = 0
    started: float = field(init=False)
    delay: float = field(init=False, default=FIRST_RETRY)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def attempt(self) -> None:
        """Count one attempt (call it before each)."""
        self.attempts += 1

    def again(self) -> bool:
        """Sleep before one more attempt and say True, or say False when no time is
        left."""
        left = self.started + (self.wait or 0.0) - self.clock()
        if not self.wait or left <= 0:
            return False
        self.sleep(min(self.delay, left))
        self.delay = min(self.delay * 2, MAX_RETRY)
        return True

    @property
    def seconds(self) -> float:
        """How long the attempts have taken so far."""
        return self.clock() - self.started
