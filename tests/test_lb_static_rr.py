"""`static-rr`: the map walked in order, skipping saturated servers."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from haproxy_py.core.lb.base import BalanceParams, PickContext
from haproxy_py.core.lb.static_rr import StaticRoundRobinBalancer
from haproxy_py.core.server import ServerState

CTX = PickContext()


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


def picks(balancer: StaticRoundRobinBalancer, n: int) -> list[str]:
    return [s.name if (s := balancer.pick(CTX)) is not None else "-" for _ in range(n)]


@pytest.mark.parametrize(
    ("weights", "sequence"),
    [
        ([3, 2, 1], "s1 s1 s2 s1 s2 s3 s1 s1 s2 s1 s2 s3"),
        ([1, 1, 1], "s1 s2 s3 s1 s2 s3"),
        ([2, 1], "s1 s1 s2 s1 s1 s2"),
    ],
)
def test_observed_sequences(weights: list[int], sequence: str) -> None:
    b = StaticRoundRobinBalancer(make_servers(weights), BalanceParams(algorithm="static-rr"))
    assert " ".join(picks(b, len(sequence.split()))) == sequence


def test_proportions_over_many_cycles() -> None:
    b = StaticRoundRobinBalancer(make_servers([5, 3, 2]), BalanceParams())
    assert collections.Counter(picks(b, 100)) == {"s1": 50, "s2": 30, "s3": 20}


def test_saturated_servers_are_skipped_and_all_saturated_is_none() -> None:
    servers = make_servers([1, 1, 1], maxconn=1)
    b = StaticRoundRobinBalancer(servers, BalanceParams())
    servers[0].served = 1
    assert picks(b, 4) == ["s2", "s3", "s2", "s3"]
    servers[1].served = servers[2].served = 1
    assert b.pick(CTX) is None


def test_server_set_to_weight_zero_leaves_the_map() -> None:
    servers = make_servers([1, 1, 1])
    b = StaticRoundRobinBalancer(servers, BalanceParams())
    servers[1].weight = 0
    b.recalc()
    assert set(picks(b, 10)) == {"s1", "s3"}
    servers[1].weight = 1
    b.recalc()
    assert set(picks(b, 10)) == {"s1", "s2", "s3"}


@pytest.mark.parametrize("allbackups", [False, True])
def test_backups(allbackups: bool) -> None:
    servers = make_servers([1, 1, 1])
    servers[1].backup = servers[2].backup = True
    b = StaticRoundRobinBalancer(servers, BalanceParams(allbackups=allbackups))
    assert set(picks(b, 6)) == {"s1"}
    servers[0].maint = True
    b.recalc()
    assert set(picks(b, 6)) == ({"s2", "s3"} if allbackups else {"s2"})


def test_avoid() -> None:
    servers = make_servers([1, 1])
    b = StaticRoundRobinBalancer(servers, BalanceParams())
    assert b.pick(CTX, avoid=servers[0]) is servers[1]
    assert b.pick(CTX, avoid=servers[0]) is servers[1]
    servers[1].up = False
    b.recalc()
    assert b.pick(CTX, avoid=servers[0]) is servers[0]
