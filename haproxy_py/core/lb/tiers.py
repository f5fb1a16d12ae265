"""Which servers a balancer may choose from, and whether one can take a connection right now.

HAProxy keeps active and backup servers apart: backups are candidates only when no active server is
usable, and then only the first usable one in declaration order unless `option allbackups`. Every
balancer applies the same rule, so it lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from haproxy_py.core.server import ServerState


@attrs.frozen
class Tier:
    """The candidate servers of one moment, in declaration order.

    `backup` tells which group they come from. Balancers that keep per-group state (fwrr,
    leastconn) need to know it; the others only look at `servers`.
    """

    servers: tuple[ServerState, ...] = ()
    backup: bool = False

    def signature(self) -> tuple[tuple[int, int], ...]:
        """What a table or ring built from this tier depends on: identity and weight of each server.

        Comparing signatures lets `recalc()` skip a rebuild when nothing relevant changed, so a
        rotation or a round-robin cursor is not reset needlessly.
        """
        return tuple((id(s), s.eweight) for s in self.servers)


def select_tier(servers: Sequence[ServerState], allbackups: bool) -> Tier:
    """Active usable servers; else the first usable backup, or all of them with `allbackups`."""
    active = tuple(s for s in servers if not s.backup and s.usable)
    if active:
        return Tier(active, backup=False)
    backups = tuple(s for s in servers if s.backup and s.usable)
    if not allbackups:
        backups = backups[:1]
    return Tier(backups, backup=True)


def has_free_slot(server: ServerState) -> bool:
    """May this server be handed one more connection without queueing (HAProxy's saturation test)?

    Without `maxconn` always. With it, the server must have a free slot *and* an empty queue: the
    requests already waiting for it must go first, so a new one is sent elsewhere (or to the
    backend queue) rather than overtaking them.
    """
    return server.maxconn <= 0 or (server.queued == 0 and server.served < server.maxconn)
