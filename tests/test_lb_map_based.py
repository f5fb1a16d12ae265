"""HAProxy's server map: layout, GCD reduction, hash lookup and the static round-robin walk."""

from __future__ import annotations

import collections
import random
from typing import Any

import pytest

from haproxy_py.core.lb.map_based import ServerMap, build_map, weight_divisor
from haproxy_py.core.lb.tiers import select_tier
from haproxy_py.core.server import ServerState


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


@pytest.mark.parametrize(
    ("weights", "layout"),
    [
        ([1, 1, 1], "s1 s2 s3"),
        ([3, 2, 1], "s1 s1 s2 s1 s2 s3"),
        ([2, 1], "s1 s1 s2"),
        ([1, 2], "s1 s2 s2"),  # slot 0 always goes to the first declared server
        ([6, 4, 2], "s1 s1 s2 s1 s2 s3"),  # divided by the GCD: same map as 3/2/1
        ([5], "s1"),
    ],
)
def test_map_layout_matches_haproxy(weights: list[int], layout: str) -> None:
    servers = make_servers(weights)
    table = build_map(servers, weight_divisor(servers))
    assert " ".join(s.name for s in table) == layout


def test_weight_divisor_ignores_zero_weights_and_uses_configured_weights() -> None:
    servers = make_servers([0, 4, 6, 8])
    assert weight_divisor(servers) == 2
    servers[1].weight = 0  # run-time change: the divisor stays the configured one
    assert weight_divisor(servers) == 2
    assert weight_divisor(make_servers([0, 0])) == 1


def test_map_holds_each_server_exactly_its_reduced_weight() -> None:
    rng = random.Random(7)
    for _ in range(30):
        weights = [rng.randint(1, 40) for _ in range(rng.randint(1, 6))]
        servers = make_servers(weights)
        g = weight_divisor(servers)
        table = build_map(servers, g)
        counts = collections.Counter(s.name for s in table)
        assert len(table) == sum(weights) // g
        assert all(counts[s.name] == w // g for s, w in zip(servers, weights, strict=True))
        assert table[0] is servers[0]


def test_lookup_is_hash_modulo_size() -> None:
    servers = make_servers([1, 1, 1])
    smap = ServerMap(servers)
    smap.rebuild(select_tier(servers, False))
    assert [smap.lookup(h) for h in (0, 1, 2, 3, 4, 2130706433)] == [
        servers[i] for i in (0, 1, 2, 0, 1, 2)
    ]


def test_lookup_with_avoid_moves_to_the_next_other_server() -> None:
    servers = make_servers([2, 1])
    smap = ServerMap(servers)
    smap.rebuild(select_tier(servers, False))  # s1 s1 s2
    assert smap.lookup(0, avoid=servers[0]) is servers[1]
    assert smap.lookup(2, avoid=servers[1]) is servers[0]
    only = make_servers([1])
    one = ServerMap(only)
    one.rebuild(select_tier(only, False))
    assert one.lookup(5, avoid=only[0]) is only[0]


def test_next_rr_skips_saturated_servers_and_returns_none_when_all_are() -> None:
    servers = make_servers([1, 1, 1], maxconn=1)
    smap = ServerMap(servers)
    smap.rebuild(select_tier(servers, False))
    servers[1].served = 1
    assert [smap.next_rr() for _ in range(4)] == [servers[0], servers[2], servers[0], servers[2]]
    for s in servers:
        s.served = 1
    assert smap.next_rr() is None


def test_rebuild_keeps_the_cursor_when_nothing_changed() -> None:
    servers = make_servers([1, 1, 1])
    smap = ServerMap(servers)
    smap.rebuild(select_tier(servers, False))
    assert smap.next_rr() is servers[0]
    smap.rebuild(select_tier(servers, False))
    assert smap.next_rr() is servers[1]
