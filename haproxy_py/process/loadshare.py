"""How many client connections each process holds, so that worker processes share them evenly.

With `nbthread N` every process waits on the same listening sockets. Whichever wakes first would
take a whole burst of connections in one accept batch, and on a keep-alive load those connections
stay where they landed: one process runs at a full core while another idles. HAProxy spreads
accepted connections over its threads by their load (`tune.listener.multi-queue`); processes
cannot hand a connection over cheaply, so instead a process that holds clearly more connections
than the least loaded one leaves the pending ones to the others for a moment.

The counts live in an anonymous shared mapping made before the processes fork: each process
writes only its own slot and reads the others' (a stale read costs at most one connection placed
less well).
"""

from __future__ import annotations

import mmap

DEFER_SECONDS = 0.0005
"""How long a busier process leaves pending connections to the others before looking again."""
MAX_DEFERS = 4
"""After this many looks in a row, a busier process accepts anyway: a peer that is stuck (or
saturated) must not hold clients in the backlog for more than about 2 ms."""

GONE = 1 << 62
"""The count of a process that no longer accepts."""


def busier(mine: int, lowest: int) -> bool:
    """Whether a process holding `mine` connections should leave new ones to a process holding
    `lowest`. Some slack (one connection, plus an eighth of the lower count) keeps processes of
    nearly equal load from deferring to each other in turn."""
    return mine > lowest + 1 + (lowest >> 3)


class LoadShare:
    """The processes' connection counts; `index` is this process's slot."""

    __slots__ = ("_map", "_slots", "index")

    def __init__(self, count: int) -> None:
        self._map = mmap.mmap(-1, 8 * max(count, 1))
        self._slots = memoryview(self._map).cast("q")
        self.index = 0

    def opened(self) -> None:
        self._slots[self.index] += 1

    def closed(self) -> None:
        self._slots[self.index] -= 1

    def leave(self, index: int | None = None) -> None:
        """A process no longer accepts (it stops, or has died): never the least loaded again."""
        self._slots[self.index if index is None else index] = GONE

    def counts(self) -> list[int]:
        return self._slots.tolist()

    def should_defer(self) -> bool:
        slots = self._slots
        return busier(slots[self.index], min(slots))
