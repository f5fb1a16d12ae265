"""`random`: weighted draws on the consistent ring, power of N choices, injectable generator."""

from __future__ import annotations

import collections
import random
from typing import Any

import pytest

from haproxy_py.core.lb.base import BalanceParams, PickContext
from haproxy_py.core.lb.random import RandomBalancer
from haproxy_py.core.server import ServerState

CTX = PickContext()


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


def names(b: RandomBalancer, n: int) -> list[str]:
    return [s.name if (s := b.pick(CTX)) is not None else "-" for _ in range(n)]


def test_same_seed_same_choices() -> None:
    servers = make_servers([1, 2, 3])
    a = RandomBalancer(servers, BalanceParams(algorithm="random"), rng=random.Random(5))
    b = RandomBalancer(servers, BalanceParams(algorithm="random"), rng=random.Random(5))
    assert names(a, 50) == names(b, 50)


def test_single_draw_follows_weights() -> None:
    servers = make_servers([1, 3])
    b = RandomBalancer(servers, BalanceParams(draws=1), rng=random.Random(1))
    counts = collections.Counter(names(b, 8000))
    assert 0.15 < counts["s1"] / 8000 < 0.35
    assert counts["s1"] + counts["s2"] == 8000


def test_two_draws_prefer_the_less_loaded_server() -> None:
    servers = make_servers([1, 1])
    servers[0].served = 10
    one = collections.Counter(
        names(RandomBalancer(servers, BalanceParams(draws=1), rng=random.Random(2)), 2000)
    )
    two = collections.Counter(
        names(RandomBalancer(servers, BalanceParams(draws=2), rng=random.Random(2)), 2000)
    )
    assert two["s2"] > one["s2"]
    assert two["s2"] / 2000 > 0.65  # picked unless both draws land on s1


def test_draws_compare_load_relative_to_weight() -> None:
    servers = make_servers([4, 1])
    servers[0].served, servers[1].served = 4, 2  # 4/4 < 2/1: s1 is the less loaded
    b = RandomBalancer(servers, BalanceParams(draws=8), rng=random.Random(3))
    assert set(names(b, 200)) == {"s1"}


def test_saturated_winner_means_none() -> None:
    servers = make_servers([1, 1], maxconn=1, served=1)
    b = RandomBalancer(servers, BalanceParams(), rng=random.Random(4))
    assert names(b, 5) == ["-"] * 5
    servers[1].served = 0
    assert "s2" in names(b, 20)


@pytest.mark.parametrize(
    "state",
    [{"weight": 0}, {"drain": True}, {"maint": True}, {"up": False}],
    ids=["weight0", "drain", "maint", "down"],
)
def test_unusable_servers_are_never_picked(state: dict[str, object]) -> None:
    servers = make_servers([1, 1, 1])
    b = RandomBalancer(servers, BalanceParams(), rng=random.Random(6))
    for key, value in state.items():
        setattr(servers[0], key, value)
    b.recalc()
    assert set(names(b, 300)) == {"s2", "s3"}


@pytest.mark.parametrize("allbackups", [False, True])
def test_backups(allbackups: bool) -> None:
    servers = make_servers([1, 1, 1])
    servers[1].backup = servers[2].backup = True
    servers[0].up = False
    b = RandomBalancer(servers, BalanceParams(allbackups=allbackups), rng=random.Random(7))
    assert set(names(b, 200)) == ({"s2", "s3"} if allbackups else {"s2"})


def test_avoid() -> None:
    servers = make_servers([1, 1])
    b = RandomBalancer(servers, BalanceParams(draws=1), rng=random.Random(8))
    assert {b.pick(CTX, avoid=servers[0]) for _ in range(100)} == {servers[1]}
