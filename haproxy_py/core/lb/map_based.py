"""HAProxy's server map (src/lb_map.c): the static table behind `static-rr` and map-based hashing.

The map has one slot per unit of weight (weights divided by the GCD of the configured weights) and
is filled so that heavier servers are spread evenly and the first declared server always takes
slot 0. `static-rr` walks it with a cursor; hashing algorithms read `map[hash % size]`. Its layout
is what makes `/uri/a` land on the same server as in HAProxy, so it is reproduced exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from haproxy_py.core.lb.tiers import Tier, has_free_slot
from haproxy_py.core.server import ServerState


def weight_divisor(servers: Sequence[ServerState]) -> int:
    """GCD of the configured non-zero weights of all servers (HAProxy's `wmult` for map algorithms).

    HAProxy computes it once at start-up over every server, backups and down ones included, and
    keeps it; so do we, from `initial_weight`, so a server leaving does not reshuffle the table.
    """
    g = 0
    for s in servers:
        if s.initial_weight > 0:
            g = math.gcd(g, s.initial_weight)
    return g or 1


def build_map(tier: Sequence[ServerState], divisor: int) -> list[ServerState]:
    """Fill the map exactly like HAProxy's recalc_server_map().

    At each slot every server adds its weight to its score; the first server (declaration order)
    with the highest `(score + total) // total` takes the slot and pays `total`. Cost is
    O(slots x servers), paid only when a server changes, never per request.
    """
    weights = [(s.eweight + divisor - 1) // divisor for s in tier]
    total = sum(weights)
    if total == 0:
        return []
    if total == 1:
        # HAProxy short-cuts here (its division would overflow): the first server takes the slot.
        return [tier[0]]
    scores = [0] * len(tier)
    table: list[ServerState] = []
    n = len(tier)
    for _ in range(total):
        best = -1
        best_v = 0
        for i in range(n):
            scores[i] += weights[i]
            v = (scores[i] + total) // total
            if best < 0 or v > best_v:
                best_v = v
                best = i
        table.append(tier[best])
        scores[best] -= total
    return table


class ServerMap:
    """The map of one backend plus its round-robin cursor.

    `rebuild()` is cheap to call on every `recalc()`: it rebuilds only when the candidate set or a
    weight changed, and keeps the cursor (HAProxy only wraps it when it falls outside the map).
    """

    def __init__(self, servers: Sequence[ServerState]) -> None:
        self.divisor = weight_divisor(servers)
        self.table: list[ServerState] = []
        self.rr_idx = 0
        self._signature: tuple[tuple[int, int], ...] | None = None

    def rebuild(self, tier: Tier) -> None:
        """Recompute the table for this candidate set if it differs from the last one."""
        signature = tier.signature()
        if signature == self._signature:
            return
        self._signature = signature
        self.table = build_map(tier.servers, self.divisor)

    def lookup(self, h: int, avoid: ServerState | None = None) -> ServerState | None:
        """`map[h % size]`; with `avoid`, the next slot holding another server, if there is one.

        HAProxy's map lookup ignores the server to avoid; the Balancer contract asks to honour it,
        so a redispatch moves on to the following slots, which keeps the choice deterministic.
        """
        if not self.table:
            return None
        size = len(self.table)
        idx = h % size
        srv = self.table[idx]
        if avoid is None or srv is not avoid:
            return srv
        for step in range(1, size):
            other = self.table[(idx + step) % size]
            if other is not avoid:
                return other
        return srv

    def next_rr(self, avoid: ServerState | None = None) -> ServerState | None:
        """Walk the map from the cursor to the next server with a free slot (map_get_server_rr).

        Saturated servers are skipped; `avoid` is skipped too but remembered, and returned only when
        it is the sole server with room. None when every server of the map is saturated.
        """
        size = len(self.table)
        if size == 0:
            return None
        if self.rr_idx < 0 or self.rr_idx >= size:
            self.rr_idx = 0
        start = self.rr_idx
        idx = start
        avoided: ServerState | None = None
        avoided_idx = 0
        while True:
            srv = self.table[idx]
            idx += 1
            if has_free_slot(srv):
                avoided = srv
                avoided_idx = idx
                if srv is not avoid:
                    self.rr_idx = idx
                    return srv
            if idx == size:
                idx = 0
            if idx == start:
                break
        if avoided is not None:
            self.rr_idx = avoided_idx
        return avoided
