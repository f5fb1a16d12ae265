"""`first`: the lowest server id with a free maxconn slot."""

from __future__ import annotations

from typing import Any

from haproxy_py.core.lb.base import BalanceParams, PickContext
from haproxy_py.core.lb.first import FirstBalancer
from haproxy_py.core.server import ServerState

CTX = PickContext()


def make_servers(n: int, **kw: Any) -> list[ServerState]:
    return [ServerState(name=f"s{i}", puid=i, **kw) for i in range(1, n + 1)]


def test_fills_servers_in_id_order_as_connections_accumulate() -> None:
    servers = make_servers(3, maxconn=2)
    b = FirstBalancer(servers, BalanceParams(algorithm="first"))
    got = []
    for _ in range(6):
        s = b.pick(CTX)
        assert s is not None
        s.served += 1
        got.append(s.name)
    assert got == ["s1", "s1", "s2", "s2", "s3", "s3"]
    assert b.pick(CTX) is None
    servers[0].served -= 1
    assert b.pick(CTX) is servers[0]


def test_without_maxconn_always_the_first() -> None:
    servers = make_servers(3, served=100)
    b = FirstBalancer(servers, BalanceParams())
    assert {b.pick(CTX) for _ in range(5)} == {servers[0]}


def test_order_is_by_id_not_declaration_and_weight_is_ignored() -> None:
    servers = make_servers(3, maxconn=1)
    servers[0].puid, servers[2].puid = 30, 1
    servers[2].weight = 1
    servers[1].weight = 200
    b = FirstBalancer(servers, BalanceParams())
    b.recalc()
    assert b.pick(CTX) is servers[2]
    servers[2].served = 1
    assert b.pick(CTX) is servers[1]


def test_queued_requests_make_a_server_count_as_full() -> None:
    servers = make_servers(2, maxconn=2)
    servers[0].queued = 1
    assert FirstBalancer(servers, BalanceParams()).pick(CTX) is servers[1]


def test_unusable_and_backup_servers() -> None:
    servers = make_servers(3, maxconn=1)
    servers[2].backup = True
    b = FirstBalancer(servers, BalanceParams())
    servers[0].drain = True
    b.recalc()
    assert b.pick(CTX) is servers[1]
    servers[1].served = 1
    assert b.pick(CTX) is None  # the backup is not used while an active server is usable
    servers[1].maint = True
    b.recalc()
    assert b.pick(CTX) is servers[2]


def test_avoid() -> None:
    servers = make_servers(2, maxconn=1)
    b = FirstBalancer(servers, BalanceParams())
    assert b.pick(CTX, avoid=servers[0]) is servers[1]
    servers[1].served = 1
    assert b.pick(CTX, avoid=servers[0]) is servers[0]
