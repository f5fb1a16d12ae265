"""Runtime state of one server: the only object the data plane and the control plane share.

Balancers read it, the connect path counts on it, health checks and the stats socket change it.
It holds plain values so that a snapshot of it can be copied between worker processes.
"""

from __future__ import annotations

import attrs


@attrs.define(eq=False)
class ServerCounters:
    """Cumulative per-server figures kept for stats and metrics (HAProxy's `stot`, `bin`, ...)."""

    sessions_total: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connect_errors: int = 0
    response_errors: int = 0
    retries: int = 0
    redispatches: int = 0
    queue_max: int = 0
    sessions_max: int = 0


@attrs.define(eq=False)
class ServerState:
    """One server of one backend, as it is now.

    `weight` is the user weight (0..256) currently in force: the configured one until the stats
    socket changes it. `up` is the operational state from health checks (always True for a server
    without `check`); `maint` and `drain` are administrative states. A server takes new traffic only
    when `usable`.
    """

    name: str
    puid: int
    weight: int = 1
    initial_weight: int = 1
    backup: bool = False
    maxconn: int = 0
    maxqueue: int = 0
    maint: bool = False
    drain: bool = False
    up: bool = True
    served: int = 0
    queued: int = 0
    counters: ServerCounters = attrs.field(factory=ServerCounters)

    @property
    def eweight(self) -> int:
        """The weight balancers use: 0 while draining."""
        return 0 if self.drain else self.weight

    @property
    def usable(self) -> bool:
        """May receive new connections from the balancer."""
        return self.up and not self.maint and self.eweight > 0

    @property
    def full(self) -> bool:
        """All `maxconn` slots are taken (never true without maxconn)."""
        return self.maxconn > 0 and self.served >= self.maxconn

    @property
    def load(self) -> int:
        """Connections this server is answerable for: served plus queued (what leastconn counts)."""
        return self.served + self.queued
