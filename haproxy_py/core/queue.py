"""Server `maxconn` slots and the queues in front of them, as HAProxy's pendconn logic does it.

A connection assigned to a full server waits in that server's queue; one for which every server
was full waits in the backend queue. When a slot frees, the oldest waiter of the server's own queue
or of the backend queue (whichever arrived first) gets it. Pure: no clocks, no I/O; the runtime
parks a task per waiter and wakes the one returned here.
"""

from __future__ import annotations

import itertools
from collections import deque

import attrs

from haproxy_py.core.server import ServerState


@attrs.define(eq=False)
class Waiter:
    """One queued connection. `server` is set when it waits for a given server, and once served."""

    seq: int
    server: ServerState | None = None
    granted: ServerState | None = None
    cancelled: bool = False


@attrs.define
class BackendQueue:
    """The backend FIFO plus one FIFO per server."""

    backend: deque[Waiter] = attrs.field(factory=deque)
    per_server: dict[int, deque[Waiter]] = attrs.field(factory=dict)
    _seq: itertools.count = attrs.field(factory=itertools.count)

    @property
    def length(self) -> int:
        return sum(1 for w in self.backend if not w.cancelled)

    def enqueue(self, server: ServerState | None) -> Waiter:
        """Queue for `server` (None: any server). Counts the waiter on the server for leastconn."""
        w = Waiter(seq=next(self._seq), server=server)
        if server is None:
            self.backend.append(w)
        else:
            self.per_server.setdefault(id(server), deque()).append(w)
            server.queued += 1
            server.counters.queue_max = max(server.counters.queue_max, server.queued)
        return w

    def cancel(self, w: Waiter) -> None:
        """The waiter gave up (timeout queue, client gone); it is skipped when its turn comes."""
        if w.cancelled or w.granted is not None:
            return
        w.cancelled = True
        if w.server is not None:
            w.server.queued -= 1

    def server_queue_length(self, server: ServerState) -> int:
        """Waiters for `server` itself: kept in `server.queued` as they come and go (O(1), asked on
        every connection)."""
        return server.queued

    def _head(self, q: deque[Waiter] | None) -> Waiter | None:
        while q and q[0].cancelled:
            q.popleft()
        return q[0] if q else None

    def next_for(self, server: ServerState) -> Waiter | None:
        """A slot of `server` is free: the waiter that gets it (already marked granted), or None."""
        if not server.usable and not server.up:
            return None
        own_q = self.per_server.get(id(server))
        own = self._head(own_q)
        shared = self._head(self.backend)
        if own is None and shared is None:
            return None
        if own is not None and (shared is None or own.seq < shared.seq):
            assert own_q is not None
            own_q.popleft()
            server.queued -= 1
            own.granted = server
            return own
        assert shared is not None
        self.backend.popleft()
        shared.granted = server
        return shared

    def drain_server(self, server: ServerState) -> list[Waiter]:
        """The server went down or into maintenance: its waiters go back to the backend queue."""
        q = self.per_server.pop(id(server), deque())
        moved = []
        for w in q:
            if w.cancelled:
                continue
            server.queued -= 1
            w.server = None
            moved.append(w)
        # they keep their arrival order ahead of later backend waiters
        merged = sorted([*moved, *self.backend], key=lambda w: w.seq)
        self.backend = deque(merged)
        return moved
