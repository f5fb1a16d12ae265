"""`balance random[(<draws>)]`: a random point on the consistent-hash ring, power of N choices.

Drawing on the weighted ring (rather than a uniform server index) makes the choice proportional to
weight and keeps per-server stickiness properties identical to `hash-type consistent`. With
`draws` > 1 the least loaded of the drawn servers wins (load = served / eweight, compared by
cross-multiplication as HAProxy does), which evens out load much better than one draw.
"""

from __future__ import annotations

import random as _random
from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.consistent import HashRing
from haproxy_py.core.lb.tiers import Tier, has_free_slot, select_tier
from haproxy_py.core.server import ServerState


class RandomBalancer(Balancer):
    """HAProxy's get_server_rnd(); `rng` is injectable so tests and replays are reproducible."""

    def __init__(
        self,
        servers: Sequence[ServerState],
        params: BalanceParams,
        rng: _random.Random | None = None,
    ) -> None:
        self._rng = rng if rng is not None else _random.Random()
        self._ring = HashRing()
        self._tier = Tier()
        super().__init__(servers, params)

    def recalc(self) -> None:
        """Rebuild the ring of the current candidates (no-op when nothing changed)."""
        self._tier = select_tier(self.servers, self.params.allbackups)
        self._ring.rebuild(self._tier)

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Least loaded of `draws` random ring points; None if that server is saturated.

        Like HAProxy, a saturated winner is not replaced by another draw: returning None sends the
        request to the backend queue, which is fairer than trying until something has room.
        """
        srv = self._pick(avoid)
        if srv is not None and not srv.usable:
            self.recalc()
            srv = self._pick(avoid)
        return srv

    def _pick(self, avoid: ServerState | None) -> ServerState | None:
        servers = self._tier.servers
        if not servers:
            return None
        if len(servers) == 1:
            curr: ServerState | None = servers[0]
        else:
            curr = None
            for _ in range(max(1, self.params.draws)):
                prev: ServerState | None = curr
                curr = self._ring.lookup(self._rng.getrandbits(32), avoid)
                if curr is None:
                    break
                if (
                    prev is not None
                    and prev is not curr
                    and curr.served * prev.eweight > prev.served * curr.eweight
                ):
                    curr = prev
        if curr is not None and not has_free_slot(curr):
            return None
        return curr
