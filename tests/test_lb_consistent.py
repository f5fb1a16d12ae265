"""The consistent-hash ring: point placement, nearest-point lookup, and what moves on removal."""

from __future__ import annotations

import collections
import random
from typing import Any

import pytest

from haproxy_py.core.lb.consistent import HashRing
from haproxy_py.core.lb.hashing import MASK32, full_hash
from haproxy_py.core.lb.tiers import Tier, select_tier
from haproxy_py.core.server import ServerState

_RNG = random.Random(1234)
KEYS = [_RNG.getrandbits(32) for _ in range(10_000)]


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


def ring_of(servers: list[ServerState]) -> HashRing:
    ring = HashRing()
    ring.rebuild(select_tier(servers, allbackups=False))
    return ring


def brute_force_nearest(servers: list[ServerState], h: int) -> ServerState:
    """Reference lookup: all points of all servers, nearest both ways, the point before on ties."""
    points = [(full_hash(s.puid * 4096 + i), s) for s in servers for i in range(s.weight * 16)]
    exact = [s for key, s in points if key == h]
    if exact:
        return exact[0]
    after = min(points, key=lambda p: (p[0] - h) & MASK32)
    before = min(points, key=lambda p: (h - p[0]) & MASK32)
    return before[1] if (h - before[0]) & MASK32 <= (after[0] - h) & MASK32 else after[1]


def test_each_server_owns_weight_times_16_points() -> None:
    servers = make_servers([1, 3, 2])
    assert len(ring_of(servers)) == 16 * 6


def test_lookup_is_the_nearest_point_both_ways() -> None:
    servers = make_servers([1, 2, 1, 3])
    ring = ring_of(servers)
    for h in KEYS[:400]:
        assert ring.lookup(h) is brute_force_nearest(servers, h)


def test_exact_point_hits_its_owner() -> None:
    servers = make_servers([1, 1, 1])
    ring = ring_of(servers)
    for s in servers:
        assert ring.lookup(full_hash(s.puid * 4096 + 5)) is s


def test_distribution_follows_weights() -> None:
    servers = make_servers([1, 2, 4])
    ring = ring_of(servers)
    counts = collections.Counter(getattr(ring.lookup(h), "name", "-") for h in KEYS)
    shares = [counts[s.name] / len(KEYS) for s in servers]
    for share, expected in zip(shares, [1 / 7, 2 / 7, 4 / 7], strict=True):
        assert abs(share - expected) < 0.35 * expected


@pytest.mark.parametrize("n", range(2, 11))
def test_removing_one_server_moves_only_its_keys(n: int) -> None:
    servers = make_servers([1] * n)
    removed = servers[n // 2]
    ring = ring_of(servers)
    before = [ring.lookup(h) for h in KEYS]
    removed.up = False
    ring.rebuild(select_tier(servers, allbackups=False))
    after = [ring.lookup(h) for h in KEYS]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if a is not b]
    assert all(b is removed for b, _ in moved), "a key of an untouched server moved"
    assert all(a is not removed for a in after)
    fraction = len(moved) / len(KEYS)
    assert 0.5 / n <= fraction <= 1.5 / n


def test_adding_a_server_back_restores_every_key() -> None:
    servers = make_servers([1, 1, 1, 1])
    ring = ring_of(servers)
    full = [ring.lookup(h) for h in KEYS[:2000]]
    servers[2].up = False
    ring.rebuild(select_tier(servers, False))
    servers[2].up = True
    ring.rebuild(select_tier(servers, False))
    assert [ring.lookup(h) for h in KEYS[:2000]] == full


def test_lookup_avoid_walks_to_another_server() -> None:
    servers = make_servers([1, 1, 1])
    ring = ring_of(servers)
    for h in KEYS[:300]:
        first = ring.lookup(h)
        other = ring.lookup(h, avoid=first)
        assert other is not None and other is not first
    single = make_servers([1])
    assert ring_of(single).lookup(42, avoid=single[0]) is single[0]


def test_empty_ring() -> None:
    ring = HashRing()
    ring.rebuild(Tier())
    assert ring.lookup(1) is None
    assert ring.next_rr() is None


def test_next_rr_is_weighted_and_skips_saturated_servers() -> None:
    servers = make_servers([1, 3], maxconn=10)
    ring = ring_of(servers)
    counts = collections.Counter(getattr(ring.next_rr(), "name", "-") for _ in range(64 * 5))
    assert counts == {"s1": 16 * 5, "s2": 48 * 5}
    servers[1].served = 10
    assert {ring.next_rr() for _ in range(40)} == {servers[0]}
    servers[0].served = 10
    assert ring.next_rr() is None


def test_equidistant_key_goes_to_the_point_before() -> None:
    servers = make_servers([1, 1, 1])
    points = sorted((full_hash(s.puid * 4096 + i), s) for s in servers for i in range(16))
    ring = ring_of(servers)
    checked = 0
    for (k1, s1), (k2, s2) in zip(points, points[1:], strict=False):
        if s1 is not s2 and (k2 - k1) % 2 == 0 and k2 - k1 > 2:
            mid = k1 + (k2 - k1) // 2
            assert ring.lookup(mid) is s1
            assert ring.lookup(mid + 1) is s2
            checked += 1
    assert checked > 0
