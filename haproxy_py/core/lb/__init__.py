"""Load-balancing algorithms; `make_balancer` is the only entry point the connect path needs."""

from __future__ import annotations

from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.first import FirstBalancer
from haproxy_py.core.lb.hash import (
    HashExprBalancer,
    HdrBalancer,
    RdpCookieBalancer,
    SourceBalancer,
    UriBalancer,
    UrlParamBalancer,
)
from haproxy_py.core.lb.leastconn import LeastConnBalancer
from haproxy_py.core.lb.random import RandomBalancer
from haproxy_py.core.lb.roundrobin import RoundRobinBalancer
from haproxy_py.core.lb.static_rr import StaticRoundRobinBalancer
from haproxy_py.core.server import ServerState

BALANCERS: dict[str, type[Balancer]] = {
    "roundrobin": RoundRobinBalancer,
    "static-rr": StaticRoundRobinBalancer,
    "leastconn": LeastConnBalancer,
    "first": FirstBalancer,
    "source": SourceBalancer,
    "uri": UriBalancer,
    "url_param": UrlParamBalancer,
    "hdr": HdrBalancer,
    "random": RandomBalancer,
    "rdp-cookie": RdpCookieBalancer,
    "hash": HashExprBalancer,
}


def make_balancer(servers: Sequence[ServerState], params: BalanceParams) -> Balancer:
    """The balancer for `params.algorithm`; ValueError for a name HAProxy 2.6 does not know."""
    try:
        cls = BALANCERS[params.algorithm]
    except KeyError:
        raise ValueError(f"unknown load-balancing algorithm {params.algorithm!r}") from None
    return cls(servers, params)


__all__ = ["BALANCERS", "Balancer", "BalanceParams", "PickContext", "make_balancer"]
