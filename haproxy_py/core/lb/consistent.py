"""HAProxy's consistent-hash ring (src/lb_chash.c), used by `hash-type consistent` and `random`.

Each usable server owns `weight x 16` points at `full_hash(puid x 4096 + i)`. A key goes to the
nearest point, looking both ways (on a tie the point before wins). Since a server's points depend
only on its id and weight, a server going down or up only removes or adds its own points, and the
keys of the other servers stay where they were: that is the whole point of consistent hashing.
"""

from __future__ import annotations

import bisect

from haproxy_py.core.lb.hashing import MASK32, full_hash
from haproxy_py.core.lb.tiers import Tier, has_free_slot
from haproxy_py.core.server import ServerState

BE_WEIGHT_SCALE = 16
SRV_EWGHT_RANGE = 256 * BE_WEIGHT_SCALE


class HashRing:
    """The sorted ring of points of the current candidate set, plus the fallback round-robin cursor.

    Points are kept as parallel sorted lists so a lookup is one bisect. Ring points of each server
    are computed once per (puid, weight) and cached, so a rebuild after a state change only sorts.
    """

    def __init__(self) -> None:
        self._keys: list[int] = []
        self._order: list[tuple[int, int, int]] = []
        self._owners: list[ServerState] = []
        self._points: dict[int, list[int]] = {}
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._last: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def _server_points(self, puid: int, count: int) -> list[int]:
        """The first `count` point keys of server `puid`, extending the cache if the weight grew."""
        pts = self._points.setdefault(puid, [])
        while len(pts) < count:
            pts.append(full_hash(puid * SRV_EWGHT_RANGE + len(pts)))
        return pts

    def rebuild(self, tier: Tier) -> None:
        """Make the ring hold exactly the points of `tier`'s servers (no-op if unchanged).

        Ties between equal keys are ordered by declaration order then point index, a stable stand-in
        for the insertion order of HAProxy's tree (collisions are vanishingly rare anyway).
        """
        signature = tier.signature()
        if signature == self._signature:
            return
        self._signature = signature
        entries: list[tuple[int, int, int, ServerState]] = []
        for rank, srv in enumerate(tier.servers):
            count = srv.eweight * BE_WEIGHT_SCALE
            for i, key in enumerate(self._server_points(srv.puid, count)[:count]):
                entries.append((key, rank, i, srv))
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        self._keys = [e[0] for e in entries]
        self._order = [(e[0], e[1], e[2]) for e in entries]
        self._owners = [e[3] for e in entries]

    def lookup(self, h: int, avoid: ServerState | None = None) -> ServerState | None:
        """The server owning the point nearest to `h` (chash_get_server_hash).

        With `avoid`, the following points are walked until another server is met, once around
        the ring at most; if none is found the avoided server is returned.
        """
        n = len(self._keys)
        if n == 0:
            return None
        h &= MASK32
        nxt = bisect.bisect_left(self._keys, h)
        if nxt == n:
            nxt = 0
        prev = nxt - 1 if nxt > 0 else n - 1
        dp = (h - self._keys[prev]) & MASK32
        dn = (self._keys[nxt] - h) & MASK32
        idx = prev if dp <= dn else nxt
        srv = self._owners[idx]
        if avoid is not None and srv is avoid:
            for step in range(1, n):
                other = self._owners[(idx + step) % n]
                if other is not avoid:
                    return other
        return srv

    def next_rr(self, avoid: ServerState | None = None) -> ServerState | None:
        """Round robin over the ring points, for keys that are absent (chash_get_next_server).

        Walking points rather than servers gives a weighted rotation without another structure.
        Saturated servers are skipped; `avoid` only when another server has room. None when every
        server is saturated.
        """
        n = len(self._keys)
        if n == 0:
            return None
        idx = 0 if self._last is None else bisect.bisect_right(self._order, self._last) % n
        avoided_idx: int | None = None
        for _ in range(n):
            srv = self._owners[idx]
            if has_free_slot(srv):
                if srv is not avoid:
                    self._last = self._order[idx]
                    return srv
                avoided_idx = idx
            idx = (idx + 1) % n
        if avoided_idx is not None:
            self._last = self._order[avoided_idx]
            return self._owners[avoided_idx]
        return None
