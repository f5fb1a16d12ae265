"""Hashing balancers: observed HAProxy choices, fallbacks, saturation, redispatch, stability."""

from __future__ import annotations

import collections
import ipaddress
import random
from typing import Any

import pytest

from haproxy_py.core.lb.base import BalanceParams, PickContext
from haproxy_py.core.lb.hash import (
    HashExprBalancer,
    HdrBalancer,
    RdpCookieBalancer,
    SourceBalancer,
    UriBalancer,
    UrlParamBalancer,
)
from haproxy_py.core.lb.hashing import djb2, full_hash, sdbm
from haproxy_py.core.server import ServerState


def make_servers(weights: list[int], **kw: Any) -> list[ServerState]:
    return [
        ServerState(name=f"s{i}", puid=i, weight=w, initial_weight=w, **kw)
        for i, w in enumerate(weights, 1)
    ]


def name(server: ServerState | None) -> str:
    return server.name if server is not None else "-"


def headers(**values: bytes) -> PickContext:
    table = {k.lower(): v for k, v in values.items()}
    return PickContext(header=lambda name: table.get(name.lower()))


def test_uri_map_based_observed_sequence() -> None:
    b = UriBalancer(make_servers([1, 1, 1]), BalanceParams(algorithm="uri"))
    uris = [b"/uri/a", b"/uri/b", b"/uri/c", b"/uri/d", b"/uri/a?x=1", b"/uri/e"]
    assert [name(b.pick(PickContext(uri=u))) for u in uris] == ["s1", "s2", "s3", "s1", "s1", "s2"]


def test_source_observed_choice() -> None:
    b = SourceBalancer(make_servers([1, 1, 1]), BalanceParams(algorithm="source"))
    assert name(b.pick(PickContext(src=ipaddress.ip_address("127.0.0.1")))) == "s3"


def test_source_ipv6_and_avalanche() -> None:
    servers = make_servers([1, 1, 1, 1, 1])
    ip = ipaddress.ip_address("2001:db8::7")
    plain = SourceBalancer(servers, BalanceParams())
    aval = SourceBalancer(servers, BalanceParams(avalanche=True))
    key = 0x20010DB8 ^ 7
    assert plain.pick(PickContext(src=ip)) is servers[key % 5]
    assert aval.pick(PickContext(src=ip)) is servers[full_hash(key) % 5]


def test_weighted_map_lookup() -> None:
    servers = make_servers([3, 2, 1])  # map: s1 s1 s2 s1 s2 s3
    b = UriBalancer(servers, BalanceParams())
    for uri in (b"/a", b"/b", b"/c", b"/dd", b"/eee"):
        expected = ["s1", "s1", "s2", "s1", "s2", "s3"][sdbm(uri) % 6]
        assert name(b.pick(PickContext(uri=uri))) == expected


@pytest.mark.parametrize(
    ("params", "uri", "hashed"),
    [
        ({}, b"/x/y?1", b"/x/y"),
        ({"uri_whole": True}, b"/x/y?1", b"/x/y?1"),
        ({"uri_depth": 1}, b"/x/y", b"/x"),
        ({"uri_len": 3}, b"/abcdef", b"/ab"),
        ({"uri_path_only": True}, b"http://a.example/p?q", b"/p"),
        ({}, b"http://a.example/p?q", b"http://a.example/p"),
        ({"hash_function": "djb2"}, b"/x/y", None),
    ],
)
def test_uri_options_choose_the_hashed_part(
    params: dict[str, Any], uri: bytes, hashed: bytes | None
) -> None:
    servers = make_servers([1] * 7)
    b = UriBalancer(servers, BalanceParams(**params))
    h = sdbm(hashed) if hashed is not None else djb2(uri)
    assert b.pick(PickContext(uri=uri)) is servers[h % 7]


def test_url_param_hashes_the_value_and_falls_back_to_round_robin() -> None:
    servers = make_servers([1, 1, 1])
    b = UrlParamBalancer(servers, BalanceParams(algorithm="url_param", param="user"))
    for value in (b"alice", b"bob", b"carol", b""):
        expected = servers[sdbm(value) % 3]
        assert b.pick(PickContext(uri=b"/p?x=1&user=" + value + b"&y=2")) is expected
    assert [name(b.pick(PickContext(uri=b"/p?x=1"))) for _ in range(4)] == ["s1", "s2", "s3", "s1"]


def test_hdr_hashes_the_header_and_falls_back_when_absent_or_empty() -> None:
    servers = make_servers([1, 1, 1, 1])
    b = HdrBalancer(servers, BalanceParams(algorithm="hdr", param="Host"))
    assert b.pick(headers(host=b"www.example.com")) is servers[sdbm(b"www.example.com") % 4]
    assert [name(b.pick(headers(other=b"x"))) for _ in range(3)] == ["s1", "s2", "s3"]
    assert name(b.pick(headers(host=b""))) == "s4"
    assert name(b.pick(PickContext())) == "s1"
    domain = HdrBalancer(servers, BalanceParams(param="host", use_domain_only=True))
    one = domain.pick(headers(host=b"www.example.com"))
    assert one is domain.pick(headers(host=b"api.example.org")) is servers[sdbm(b"example") % 4]


def test_rdp_cookie_and_hash_expr_fall_back_to_round_robin() -> None:
    for cls in (RdpCookieBalancer, HashExprBalancer):
        b = cls(make_servers([1, 1]), BalanceParams())
        assert [name(b.pick(PickContext())) for _ in range(4)] == ["s1", "s2", "s1", "s2"]


def test_absent_key_round_robin_skips_saturated_servers() -> None:
    servers = make_servers([1, 1, 1], maxconn=1)
    b = UrlParamBalancer(servers, BalanceParams(param="id"))
    servers[0].served = 1
    assert [name(b.pick(PickContext(uri=b"/"))) for _ in range(4)] == ["s2", "s3", "s2", "s3"]
    servers[1].served = servers[2].served = 1
    assert b.pick(PickContext(uri=b"/")) is None


@pytest.mark.parametrize("method", ["map-based", "consistent"])
def test_hash_returns_the_hashed_server_even_when_saturated(method: str) -> None:
    servers = make_servers([1, 1, 1], maxconn=1)
    b = UriBalancer(servers, BalanceParams(hash_method=method))
    ctx = PickContext(uri=b"/some/page")
    target = b.pick(ctx)
    assert target is not None
    target.served = 1
    assert b.pick(ctx) is target
    assert b.deterministic


@pytest.mark.parametrize("method", ["map-based", "consistent"])
def test_avoid_picks_another_usable_server(method: str) -> None:
    servers = make_servers([1, 1, 1])
    b = UriBalancer(servers, BalanceParams(hash_method=method))
    for i in range(30):
        ctx = PickContext(uri=f"/k/{i}".encode())
        first = b.pick(ctx)
        second = b.pick(ctx, avoid=first)
        assert second is not None and second is not first
        assert b.pick(ctx) is first  # avoiding once does not move the key


def test_single_usable_server_is_returned_without_a_key() -> None:
    servers = make_servers([1, 1, 1])
    servers[0].up = servers[2].up = False
    b = UrlParamBalancer(servers, BalanceParams(param="id"))
    assert b.pick(PickContext()) is servers[1]
    assert b.pick(PickContext(uri=b"/?id=9"), avoid=servers[1]) is servers[1]


def test_no_usable_server_gives_none() -> None:
    b = SourceBalancer(make_servers([1, 1], maint=True), BalanceParams())
    assert b.pick(PickContext(src=ipaddress.ip_address("10.0.0.1"))) is None


@pytest.mark.parametrize("allbackups", [False, True])
def test_backups_take_over_only_when_no_active_is_usable(allbackups: bool) -> None:
    servers = make_servers([1, 1, 1, 1])
    servers[2].backup = servers[3].backup = True
    b = UriBalancer(servers, BalanceParams(allbackups=allbackups))
    uris = [f"/{i}".encode() for i in range(40)]
    assert {name(b.pick(PickContext(uri=u))) for u in uris} == {"s1", "s2"}
    servers[0].up = servers[1].up = False
    b.recalc()
    assert {name(b.pick(PickContext(uri=u))) for u in uris} == (
        {"s3", "s4"} if allbackups else {"s3"}
    )


def test_map_based_distribution_is_roughly_even() -> None:
    rng = random.Random(3)
    for n in (2, 3, 5, 8):
        servers = make_servers([1] * n)
        b = UriBalancer(servers, BalanceParams())
        counts = collections.Counter(
            name(b.pick(PickContext(uri=f"/item/{rng.getrandbits(40):x}".encode())))
            for _ in range(8000)
        )
        assert len(counts) == n
        assert all(abs(c - 8000 / n) < 0.15 * 8000 / n for c in counts.values())


def test_consistent_source_keeps_untouched_keys_when_a_server_goes_down() -> None:
    rng = random.Random(11)
    ips = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(10_000)]
    for n in (2, 5, 10):
        servers = make_servers([1] * n)
        b = SourceBalancer(
            servers, BalanceParams(algorithm="source", hash_method="consistent", avalanche=True)
        )
        before = [b.pick(PickContext(src=ip)) for ip in ips]
        gone = servers[n - 1]
        gone.up = False
        b.recalc()
        after = [b.pick(PickContext(src=ip)) for ip in ips]
        moved = [x for x, y in zip(before, after, strict=True) if x is not y]
        assert all(x is gone for x in moved)
        assert 0.5 / n <= len(moved) / len(ips) <= 1.5 / n
        gone.up = True
        b.recalc()
        assert [b.pick(PickContext(src=ip)) for ip in ips] == before


def test_map_based_remaps_when_a_server_goes_down() -> None:
    servers = make_servers([1, 1, 1, 1])
    b = UriBalancer(servers, BalanceParams())
    uris = [f"/{i}".encode() for i in range(200)]
    servers[3].maint = True
    b.recalc()
    assert all(b.pick(PickContext(uri=u)) is servers[sdbm(u) % 3] for u in uris)


def test_unusable_server_without_recalc_is_not_returned() -> None:
    servers = make_servers([1, 1])
    b = UriBalancer(servers, BalanceParams())
    ctx = PickContext(uri=b"/x")
    target = b.pick(ctx)
    assert target is not None
    target.maint = True
    assert b.pick(ctx) is not target


def test_single_usable_server_is_returned_even_saturated_and_without_key() -> None:
    servers = make_servers([1, 1], maxconn=1)
    servers[1].maint = True
    servers[0].served = 1
    b = HdrBalancer(servers, BalanceParams(param="host"))
    assert b.pick(PickContext()) is servers[0]
