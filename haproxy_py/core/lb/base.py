"""The one interface every balancing algorithm implements (HAProxy's `lb_ops`).

The connect path asks a `Balancer` for a server and never branches on the algorithm's name.
Balancers are pure: they read `ServerState` values and keep their own structures, which are
rebuilt by `recalc()` whenever a server's usability or weight changes.
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Callable, Sequence

import attrs

from haproxy_py.core.server import ServerState


@attrs.frozen
class BalanceParams:
    """What `balance` and `hash-type` say, as the balancers need it."""

    algorithm: str = "roundrobin"
    # uri
    uri_len: int = 0
    uri_depth: int = 0
    uri_whole: bool = False
    uri_path_only: bool = False
    # url_param / hdr / rdp-cookie: the parameter, header or cookie name
    param: str | None = None
    check_post: bool = False
    use_domain_only: bool = False
    # random
    draws: int = 2
    # hash-type
    hash_method: str = "map-based"  # or "consistent"
    hash_function: str = "sdbm"  # sdbm | djb2 | wt6 | crc32 | none
    avalanche: bool = False
    allbackups: bool = False


_UNSET: object = object()


class PickContext:
    """What a balancer may look at to choose: the client address and, in HTTP, the request.

    `src` is derived from `peer` (the address tuple accept() returned) only when a balancer reads
    it, so connections to non-hashing backends never parse an address. `header` returns the first
    value of a request header (name compared case-insensitively) or None.
    """

    __slots__ = ("peer", "uri", "header", "_src")

    def __init__(
        self,
        src: ipaddress.IPv4Address | ipaddress.IPv6Address | None | object = _UNSET,
        uri: bytes | None = None,
        header: Callable[[str], bytes | None] | None = None,
        peer: object = None,
    ) -> None:
        self.peer = peer
        self.uri = uri
        self.header = header
        self._src = src

    @property
    def src(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        if self._src is _UNSET:
            self._src = _address_of(self.peer)
        return self._src  # type: ignore[return-value]


def _address_of(peer: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if isinstance(peer, tuple) and peer:
        try:
            return ipaddress.ip_address(peer[0])
        except ValueError:
            return None
    return None


class Balancer(abc.ABC):
    """Chooses a server of one backend.

    `pick` returns a usable server, or None when no usable server can take the connection now.
    Non-deterministic algorithms (roundrobin, static-rr, leastconn, first, random) prefer servers
    with a free `maxconn` slot and return None when every usable server is full, so the caller
    queues in the backend. Hashing algorithms return the hashed server even when full, so the caller
    queues on that server. `avoid` is a server not to return if another usable one exists (retries
    with redispatch). Backup servers are candidates only when no active server is usable: only the
    first one in declaration order, or all of them with `allbackups`.
    """

    deterministic: bool = False

    def __init__(self, servers: Sequence[ServerState], params: BalanceParams) -> None:
        self.servers = list(servers)
        self.params = params
        self.recalc()

    @abc.abstractmethod
    def recalc(self) -> None:
        """Rebuild after a change in any server's usability or weight."""

    @abc.abstractmethod
    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Choose the server for one connection or request."""

    def has_usable(self) -> bool:
        """True when at least one server (active or backup) may take traffic."""
        return any(s.usable for s in self.servers)
