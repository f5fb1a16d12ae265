"""`balance leastconn`: the server with the fewest connections relative to its weight.

HAProxy 2.6 (src/lb_fwlc.c) sorts servers by `(inflight + 1) x 4096 / eweight`, where inflight is
served + queued and eweight is weight x 16, except that a server with nothing in flight sorts at 0:
idle servers always go first, and the `+ 1` ranks loaded servers by what their load would be after
taking this connection, so heavier servers win ties. Among equal keys HAProxy's tree returns the
server that was repositioned longest ago, which makes equal servers take turns (s1 s2 s3 s1 ...
when requests come one at a time).

HAProxy repositions a server in its tree each time it takes or releases a connection. Here the
counts change in `ServerState` without the balancer being told, so the key is computed at pick
time by a scan over the candidates (O(n) per pick, with no allocation); ties are broken by the
time of each server's last pick, which gives the same rotation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.tiers import select_tier
from haproxy_py.core.server import ServerState

BE_WEIGHT_SCALE = 16
SRV_EWGHT_MAX = 256 * BE_WEIGHT_SCALE


def leastconn_key(server: ServerState) -> int:
    """HAProxy's fwlc sorting key for a usable server (lower is better)."""
    inflight = server.served + server.queued
    if not inflight:
        return 0
    return (inflight + 1) * SRV_EWGHT_MAX // (server.eweight * BE_WEIGHT_SCALE)


def leastconn_has_room(server: ServerState) -> bool:
    """fwlc's saturation test: served + queued below maxconn (always true without maxconn).

    HAProxy also adds the server's maxqueue here, letting leastconn queue on a saturated server;
    the Balancer contract wants saturated servers skipped, so maxqueue is left to the caller.
    """
    return server.maxconn <= 0 or server.served + server.queued < server.maxconn


class LeastConnBalancer(Balancer):
    """Fewest (served + queued) per unit of weight; round robin among equals."""

    def __init__(self, servers: Sequence[ServerState], params: BalanceParams) -> None:
        self._clock = itertools.count(1)
        # Never-picked servers rank before any picked one, in declaration order.
        self._last_pick: dict[int, int] = {id(s): i - len(servers) for i, s in enumerate(servers)}
        self._known: dict[int, tuple[bool, int]] = {}
        self._candidates: tuple[ServerState, ...] = ()
        super().__init__(servers, params)

    def recalc(self) -> None:
        """Recompute the candidates; a server whose state or weight changed goes behind its equals.

        That is where HAProxy's fwlc reinserts it in its tree, so the tie order stays the same.
        """
        for srv in self.servers:
            state = (srv.usable, srv.eweight)
            if self._known.get(id(srv), state) != state and srv.usable:
                self._last_pick[id(srv)] = next(self._clock)
            self._known[id(srv)] = state
        self._candidates = select_tier(self.servers, self.params.allbackups).servers

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Least loaded candidate with room; `avoid` only if no other has room; else None."""
        best: ServerState | None = None
        best_rank: tuple[int, int] = (0, 0)
        avoided: ServerState | None = None
        for srv in self._candidates:
            if not leastconn_has_room(srv):
                continue
            if not srv.usable:
                self.recalc()
                return self.pick(ctx, avoid)
            rank = (leastconn_key(srv), self._last_pick[id(srv)])
            if srv is avoid:
                avoided = srv
            elif best is None or rank < best_rank:
                best, best_rank = srv, rank
        chosen = best if best is not None else avoided
        if chosen is not None:
            self._last_pick[id(chosen)] = next(self._clock)
        return chosen
