"""`leastconn`: fewest (served + queued) per weight, idle servers first, RR among equals."""

from __future__ import annotations

from typing import Any

import pytest

from haproxy_py.core.lb.base import BalanceParams, PickContext
from haproxy_py.core.lb.leastconn import LeastConnBalancer, leastconn_key
from haproxy_py.core.server import ServerState

CTX = PickContext()


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


def name(s: ServerState | None) -> str:
    return s.name if s is not None else "-"


def test_sequential_requests_rotate_in_declaration_order() -> None:
    b = LeastConnBalancer(make_servers([1, 1, 1]), BalanceParams(algorithm="leastconn"))
    assert [name(b.pick(CTX)) for _ in range(7)] == ["s1", "s2", "s3", "s1", "s2", "s3", "s1"]


def test_concurrent_requests_spread_then_follow_load() -> None:
    servers = make_servers([1, 1, 1])
    b = LeastConnBalancer(servers, BalanceParams())
    got = []
    for _ in range(6):
        s = b.pick(CTX)
        assert s is not None
        s.served += 1
        got.append(s.name)
    assert got == ["s1", "s2", "s3", "s1", "s2", "s3"]
    servers[1].served = 0
    assert name(b.pick(CTX)) == "s2"


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        ([(3, 0), (1, 0), (2, 0)], "s2"),
        ([(1, 0), (0, 2), (1, 1)], "s1"),  # queued connections count
        ([(2, 0), (0, 3), (0, 0)], "s3"),
    ],
)
def test_prefers_the_least_loaded(loads: list[tuple[int, int]], expected: str) -> None:
    servers = make_servers([1, 1, 1])
    for s, (served, queued) in zip(servers, loads, strict=True):
        s.served, s.queued = served, queued
    assert name(LeastConnBalancer(servers, BalanceParams()).pick(CTX)) == expected


def test_load_is_relative_to_weight() -> None:
    servers = make_servers([2, 1])
    b = LeastConnBalancer(servers, BalanceParams())
    servers[0].served, servers[1].served = 2, 1
    assert name(b.pick(CTX)) == "s1"  # (2+1)/2 < (1+1)/1
    servers[0].served = 4
    assert name(b.pick(CTX)) == "s2"  # (4+1)/2 > (1+1)/1
    servers[0].served, servers[1].served = 1, 0
    assert name(b.pick(CTX)) == "s2"  # idle servers always first


def test_key_matches_haproxy_formula() -> None:
    s = ServerState(name="s", puid=1, weight=2, served=3, queued=1)
    assert leastconn_key(s) == (4 + 1) * 4096 // 32
    assert leastconn_key(ServerState(name="t", puid=2, weight=7)) == 0


def test_ties_rotate_even_under_load() -> None:
    servers = make_servers([1, 1, 1], served=5)
    b = LeastConnBalancer(servers, BalanceParams())
    assert [name(b.pick(CTX)) for _ in range(6)] == ["s1", "s2", "s3", "s1", "s2", "s3"]


def test_saturated_servers_are_skipped_and_all_saturated_is_none() -> None:
    servers = make_servers([1, 1], maxconn=2)
    b = LeastConnBalancer(servers, BalanceParams())
    servers[0].served = 2
    servers[1].served = 1
    assert name(b.pick(CTX)) == "s2"
    servers[1].served = 2
    assert b.pick(CTX) is None


@pytest.mark.parametrize(
    "state",
    [{"weight": 0}, {"drain": True}, {"maint": True}, {"up": False}],
    ids=["weight0", "drain", "maint", "down"],
)
def test_unusable_servers_are_never_picked(state: dict[str, object]) -> None:
    servers = make_servers([1, 1])
    b = LeastConnBalancer(servers, BalanceParams())
    for key, value in state.items():
        setattr(servers[0], key, value)
    b.recalc()
    assert {name(b.pick(CTX)) for _ in range(5)} == {"s2"}


def test_backups_and_allbackups() -> None:
    servers = make_servers([1, 1, 1])
    servers[1].backup = servers[2].backup = True
    servers[0].up = False
    assert {name(LeastConnBalancer(servers, BalanceParams()).pick(CTX)) for _ in range(4)} == {"s2"}
    b = LeastConnBalancer(servers, BalanceParams(allbackups=True))
    assert [name(b.pick(CTX)) for _ in range(4)] == ["s2", "s3", "s2", "s3"]


def test_avoid_unless_it_is_the_only_one_with_room() -> None:
    servers = make_servers([1, 1], maxconn=1)
    b = LeastConnBalancer(servers, BalanceParams())
    assert b.pick(CTX, avoid=servers[0]) is servers[1]
    servers[1].served = 1
    assert b.pick(CTX, avoid=servers[0]) is servers[0]
