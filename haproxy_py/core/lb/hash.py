"""Hashing balancers: `source`, `uri`, `url_param`, `hdr`, `rdp-cookie` and `hash`.

They share everything but the key: the candidate set, the lookup (map-based `map[hash % size]` or
the consistent ring, from `hash-type`), the round-robin fallback when the key is absent, and the
shortcut that returns the only usable server without hashing. They are deterministic: the hashed
server is returned even when it is saturated, so the caller queues on that server and the client
keeps its affinity.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.consistent import HashRing
from haproxy_py.core.lb.hashing import (
    full_hash,
    gen_hash,
    header_key,
    rdp_cookie_value,
    source_key,
    uri_key,
    url_param_value,
)
from haproxy_py.core.lb.map_based import ServerMap
from haproxy_py.core.lb.tiers import Tier, select_tier
from haproxy_py.core.server import ServerState


class HashBalancer(Balancer):
    """Common machinery; subclasses only say how to turn a request into a 32-bit hash."""

    deterministic = True

    def __init__(self, servers: Sequence[ServerState], params: BalanceParams) -> None:
        self._consistent = params.hash_method == "consistent"
        self._map = ServerMap(servers)
        self._ring = HashRing()
        self._tier = Tier()
        super().__init__(servers, params)

    def recalc(self) -> None:
        """Rebuild the map or ring for the current candidates (no-op when nothing changed)."""
        self._tier = select_tier(self.servers, self.params.allbackups)
        if self._consistent:
            self._ring.rebuild(self._tier)
        else:
            self._map.rebuild(self._tier)

    @abc.abstractmethod
    def key_hash(self, ctx: PickContext) -> int | None:
        """The 32-bit hash of this request's key, or None when the key is absent."""

    def hash_bytes(self, data: bytes) -> int:
        """Hash with the `hash-type` function and the optional avalanche."""
        return gen_hash(data, self.params.hash_function, self.params.avalanche)

    def lookup(self, h: int, avoid: ServerState | None = None) -> ServerState | None:
        """The server a hash value maps to with the current candidates."""
        return self._ring.lookup(h, avoid) if self._consistent else self._map.lookup(h, avoid)

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """The hashed server (even if saturated); round robin when the key is absent."""
        srv = self._pick(ctx, avoid)
        if srv is not None and not srv.usable:
            self.recalc()
            srv = self._pick(ctx, avoid)
        return srv

    def _pick(self, ctx: PickContext, avoid: ServerState | None) -> ServerState | None:
        servers = self._tier.servers
        if not servers:
            return None
        if len(servers) == 1:
            return servers[0]
        h = self.key_hash(ctx)
        if h is None:
            return self._ring.next_rr(avoid) if self._consistent else self._map.next_rr(avoid)
        return self.lookup(h, avoid)


class SourceBalancer(HashBalancer):
    """`balance source`: the client address, XORed by 32-bit words; the hash function is ignored."""

    def key_hash(self, ctx: PickContext) -> int | None:
        if ctx.src is None:
            return None
        h = source_key(ctx.src)
        return full_hash(h) if self.params.avalanche else h


class UriBalancer(HashBalancer):
    """`balance uri [len n] [depth n] [whole] [path-only]`."""

    def key_hash(self, ctx: PickContext) -> int | None:
        if ctx.uri is None:
            return None
        p = self.params
        key = uri_key(
            ctx.uri,
            length=p.uri_len,
            depth=p.uri_depth,
            whole=p.uri_whole,
            path_only=p.uri_path_only,
        )
        return self.hash_bytes(key)


class UrlParamBalancer(HashBalancer):
    """`balance url_param <name>`: the value of a query-string parameter (`check_post` ignored)."""

    def key_hash(self, ctx: PickContext) -> int | None:
        if ctx.uri is None or not self.params.param:
            return None
        value = url_param_value(ctx.uri, self.params.param.encode("latin-1"))
        return None if value is None else self.hash_bytes(value)


class HdrBalancer(HashBalancer):
    """`balance hdr(<name>) [use_domain_only]`: a request header; absent or empty means RR."""

    def key_hash(self, ctx: PickContext) -> int | None:
        if ctx.header is None or not self.params.param:
            return None
        key = header_key(ctx.header(self.params.param), self.params.use_domain_only)
        return None if key is None else self.hash_bytes(key)


class RdpCookieBalancer(HashBalancer):
    """`balance rdp-cookie[(<name>)]`: the RDP cookie (`mstshash` by default) of the first packet.

    PickContext carries no request payload yet, so the key is read from a `payload` attribute
    only if the context has one; without it this balancer is HAProxy's round-robin fallback.
    """

    def key_hash(self, ctx: PickContext) -> int | None:
        payload: bytes | None = getattr(ctx, "payload", None)
        if not payload:
            return None
        value = rdp_cookie_value(payload, (self.params.param or "mstshash").encode("latin-1"))
        return None if value is None else self.hash_bytes(value)


class HashExprBalancer(HashBalancer):
    """`balance hash <expr>`: the sample expression is not evaluated here (PickContext has no
    sample), so this is always the round-robin fallback HAProxy uses when the sample is absent.
    """

    def key_hash(self, ctx: PickContext) -> int | None:
        return None
