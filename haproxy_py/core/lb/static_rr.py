"""`balance static-rr`: HAProxy's map-based weighted round robin.

It walks the same server map as map-based hashing (see map_based.py), which gives 3/2/1 the
observed `s1 s1 s2 s1 s2 s3` rotation. Weights are static in HAProxy (only 0 % or 100 % can be set
at run time); a change of weight or state simply rebuilds the map, keeping the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.map_based import ServerMap
from haproxy_py.core.lb.tiers import select_tier
from haproxy_py.core.server import ServerState


class StaticRoundRobinBalancer(Balancer):
    """Weighted round robin over a precomputed map, with no limit on the number of servers."""

    def __init__(self, servers: Sequence[ServerState], params: BalanceParams) -> None:
        self._map = ServerMap(servers)
        super().__init__(servers, params)

    def recalc(self) -> None:
        """Rebuild the map from the current candidates (no-op when nothing relevant changed)."""
        self._map.rebuild(select_tier(self.servers, self.params.allbackups))

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Next map slot whose server has a free slot; None when all candidates are saturated."""
        srv = self._map.next_rr(avoid)
        if srv is not None and not srv.usable:
            self.recalc()
            srv = self._map.next_rr(avoid)
        return srv
