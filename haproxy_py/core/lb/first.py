"""`balance first`: fill the server with the lowest id up to its maxconn, then the next one.

Meant to keep the number of busy servers minimal (so idle ones can be powered down). Weights are
ignored, except that a weight of 0 makes a server unusable like for every algorithm.
"""

from __future__ import annotations

from haproxy_py.core.lb.base import Balancer, PickContext
from haproxy_py.core.lb.tiers import has_free_slot, select_tier
from haproxy_py.core.server import ServerState


class FirstBalancer(Balancer):
    """HAProxy's `first` (src/lb_fas.c): candidates ordered by server id (`puid`)."""

    _ordered: tuple[ServerState, ...] = ()

    def recalc(self) -> None:
        """Sort the candidates by id once here, so a pick is a plain scan from the lowest id."""
        tier = select_tier(self.servers, self.params.allbackups)
        self._ordered = tuple(sorted(tier.servers, key=lambda s: s.puid))

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Lowest id with a free slot (a server without maxconn always has one).

        `avoid` is passed over but returned if it is the only server with room; None when every
        candidate is saturated.
        """
        avoided: ServerState | None = None
        for srv in self._ordered:
            if not has_free_slot(srv):
                continue
            if not srv.usable:
                self.recalc()
                return self.pick(ctx, avoid)
            if srv is avoid:
                avoided = srv
                continue
            return srv
        return avoided
