"""`make_balancer`: every `balance` keyword of HAProxy 2.6 maps to its class."""

from __future__ import annotations

import ipaddress

import pytest

from haproxy_py.core.lb import BALANCERS, make_balancer
from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.server import ServerState


def make_servers(n: int) -> list[ServerState]:
    return [ServerState(name=f"s{i}", puid=i) for i in range(1, n + 1)]


@pytest.mark.parametrize(
    ("algorithm", "cls_name", "deterministic"),
    [
        ("roundrobin", "RoundRobinBalancer", False),
        ("static-rr", "StaticRoundRobinBalancer", False),
        ("leastconn", "LeastConnBalancer", False),
        ("first", "FirstBalancer", False),
        ("random", "RandomBalancer", False),
        ("source", "SourceBalancer", True),
        ("uri", "UriBalancer", True),
        ("url_param", "UrlParamBalancer", True),
        ("hdr", "HdrBalancer", True),
        ("rdp-cookie", "RdpCookieBalancer", True),
        ("hash", "HashExprBalancer", True),
    ],
)
def test_each_algorithm_has_its_balancer(
    algorithm: str, cls_name: str, deterministic: bool
) -> None:
    balancer = make_balancer(make_servers(3), BalanceParams(algorithm=algorithm, param="x"))
    assert isinstance(balancer, Balancer)
    assert type(balancer).__name__ == cls_name
    assert balancer.deterministic is deterministic
    ctx = PickContext(
        src=ipaddress.ip_address("192.0.2.1"), uri=b"/?x=1", header=lambda _name: b"v"
    )
    assert balancer.pick(ctx) is not None


def test_every_registered_name_is_covered() -> None:
    assert set(BALANCERS) == {
        "roundrobin", "static-rr", "leastconn", "first", "source", "uri",
        "url_param", "hdr", "random", "rdp-cookie", "hash",
    }  # fmt: skip


def test_unknown_algorithm_is_rejected() -> None:
    with pytest.raises(ValueError, match="wrr"):
        make_balancer(make_servers(1), BalanceParams(algorithm="wrr"))


def test_default_algorithm_is_roundrobin() -> None:
    assert type(make_balancer(make_servers(2), BalanceParams())).__name__ == "RoundRobinBalancer"
