"""Sample fetches, converters and sample expressions (HAProxy's sample.c, payload.c, http_fetch.c).

A sample expression `fetch[(args)][,converter[(args)]]...` is compiled once, when the runtime is
built, into a `SampleExpr`; evaluating it reads a `SampleContext` (the connection, the request
buffer or the parsed HTTP request) and returns typed `Sample`s. Nothing here does I/O: the runtime
fills the context, and files (maps) are read at compile time only.

Three outcomes matter for content inspection, as in HAProxy:
* samples were found;
* none, and more data could change that (`may_change`: the ACL engine then waits, unless the data
  is final);
* none, and none will ever be (e.g. plain text asked for a TLS SNI).

Multi-valued fetches (headers, cookies, ALPN names) return every value when `iterate` is set (what
ACLs do) and one value otherwise (the last occurrence for headers and cookies, as HAProxy).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import random
import re
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import attrs

from haproxy_py.core import tls_hello
from haproxy_py.core.lb.hashing import djb2, full_hash, sdbm, wt6

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Sample types (HAProxy's SMP_T_*). ADDR and ANY only appear as expected input types.
BOOL = "bool"
SINT = "sint"
IPV4 = "ipv4"
IPV6 = "ipv6"
ADDR = "addr"
STR = "str"
BIN = "bin"
METH = "meth"
ANY = "any"

# Methods HAProxy knows by number (find_http_meth); others are compared as strings.
KNOWN_METHODS = frozenset({b"OPTIONS", b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"TRACE", b"CONNECT"})

DEFAULT_BUFSIZE = 16384
DEFAULT_MAXREWRITE = 1024


class SampleError(ValueError):
    """A sample expression cannot be compiled; the message says which part and why."""


@attrs.frozen(slots=True)
class Sample:
    """One typed value. bool/sint: int; ipv4/ipv6: ipaddress objects; str/bin/meth: bytes."""

    type: str
    value: Any


class Fetched(NamedTuple):
    """What a fetch found: its samples (empty: none) and whether more data may change that."""

    samples: Sequence[Sample]
    may_change: bool = False


NOTHING = Fetched(())
WAIT = Fetched((), True)
TRUE = Sample(BOOL, 1)
FALSE = Sample(BOOL, 0)


# ----------------------------------------------------------------------------------------------
# Casts between sample types (HAProxy's sample_casts table)
# ----------------------------------------------------------------------------------------------


def read_int64(data: bytes) -> int:
    """HAProxy's read_int64(): optional sign, then leading digits; anything after is ignored."""
    i = 0
    neg = False
    if data[:1] == b"-":
        neg, data = True, data[1:]
    elif data[:1] == b"+":
        data = data[1:]
    for c in data:
        if not 48 <= c <= 57:
            break
        i = i * 10 + c - 48
    return -i if neg else i


def _v6_to_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 inside a v4-mapped (::ffff:a.b.c.d) or 6to4 (2002:aabb:ccdd::) address."""
    packed = addr.packed
    if packed[:12] == b"\0" * 10 + b"\xff\xff":
        return ipaddress.IPv4Address(packed[12:])
    if packed[:2] == b"\x20\x02":
        return ipaddress.IPv4Address(packed[2:6])
    return None


def _v4_to_v6(addr: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed)


def _str_to_addr(data: bytes) -> Sample | None:
    try:
        ip = ipaddress.ip_address(data.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    return Sample(IPV4 if ip.version == 4 else IPV6, ip)


def cast(smp: Sample, to: str) -> Sample | None:
    """`smp` converted to type `to` (ADDR: either IP family; ANY: unchanged), or None if impossible."""
    t = smp.type
    if t == to or to == ANY:
        return smp
    v = smp.value
    if to == STR:
        if t in (BOOL, SINT):
            return Sample(STR, str(v).encode())
        if t in (IPV4, IPV6):
            return Sample(STR, str(v).encode())
        if t in (BIN, METH):
            return Sample(STR, v)
        return None
    if to == ADDR:
        if t in (IPV4, IPV6):
            return smp
        if t == STR:
            return _str_to_addr(v)
        if t in (SINT, BOOL):
            return Sample(IPV4, ipaddress.IPv4Address(v & 0xFFFFFFFF))
        return None
    if to in (SINT, BOOL):
        if t in (SINT, BOOL):
            return Sample(to, v if to == SINT else int(v != 0))
        if t == STR:
            if not v:
                return None
            n = read_int64(v)
            return Sample(to, n if to == SINT else int(n != 0))
        if t == IPV4 and to == SINT:
            return Sample(SINT, int(v))
        return None
    if to == BIN:
        if t in (STR, METH):
            return Sample(BIN, v)
        if t in (IPV4, IPV6):
            return Sample(BIN, v.packed)
        if t in (SINT, BOOL):
            return Sample(BIN, (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"))
        return None
    if to == IPV4:
        if t == IPV6:
            v4 = _v6_to_v4(v)
            return Sample(IPV4, v4) if v4 is not None else None
        if t == STR:
            s = _str_to_addr(v)
            return s if s is not None and s.type == IPV4 else None
        if t in (SINT, BOOL):
            return Sample(IPV4, ipaddress.IPv4Address(v & 0xFFFFFFFF))
        return None
    if to == IPV6:
        if t == IPV4:
            return Sample(IPV6, _v4_to_v6(v))
        if t == STR:
            s = _str_to_addr(v)
            if s is None:
                return None
            return s if s.type == IPV6 else Sample(IPV6, _v4_to_v6(s.value))
        return None
    if to == METH:
        if t in (STR, BIN):
            return Sample(METH, v)
        return None
    return None


def as_bytes(smp: Sample | None) -> bytes | None:
    """The sample as a string (HAProxy's cast to SMP_T_STR), or None."""
    if smp is None:
        return None
    s = cast(smp, STR)
    return None if s is None else s.value


# ----------------------------------------------------------------------------------------------
# The context samples are read from
# ----------------------------------------------------------------------------------------------


class HttpView(Protocol):
    """An HTTP message as fetches see it; the HTTP layer builds it.

    `headers` keep their order with lower-case names. A response adds `status: int` and
    `res_headers: list[tuple[bytes, bytes]]` (read with getattr: a request-only view has neither).
    `version` may be b"HTTP/1.1" or b"1.1".
    """

    method: bytes
    uri: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]


@attrs.define(slots=True)
class RawHttpRequest:
    """An HTTP/1 request head parsed from a raw tcp-mode buffer (HAProxy does the same: HTTP
    fetches work in mode tcp on the bytes inspected so far)."""

    method: bytes
    uri: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) +([^ \r\n]+) +HTTP/([0-9])\.([0-9])\r?$")


_PARTIAL_LINE = re.compile(
    rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*(?: +[^ \r\n]*(?: +(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.(?:[0-9]\r?)?)?)?)?)?)?)?)?)?)?"
)


def parse_raw_request(buf: bytes, limit: int) -> RawHttpRequest | Fetched:
    """The HTTP/1 request head at the start of `buf`.

    WAIT while the bytes are a valid but incomplete head (and the buffer could still grow past
    `limit`), NOTHING as soon as they cannot be an HTTP/1 request (HAProxy's h1 parser fails on
    the first bad byte, so e.g. a TLS hello is decided at once).
    """
    end = buf.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = buf.find(b"\n\n")
        sep = 2
    if end < 0:
        if len(buf) >= limit:
            return NOTHING
        first, nl, _ = buf.partition(b"\n")
        if nl:
            return WAIT if _REQUEST_LINE.match(first) else NOTHING
        return WAIT if _PARTIAL_LINE.fullmatch(first) else NOTHING
    lines = buf[: end + sep].split(b"\n")
    m = _REQUEST_LINE.match(lines[0])
    if m is None:
        return NOTHING
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            return NOTHING
        headers.append((name.lower(), value.strip(b" \t")))
    return RawHttpRequest(method=m.group(1), uri=m.group(2), version=m.group(3) + b"." + m.group(4),
                          headers=headers)


# process-wide variables (`proc.` scope) are shared by every session of the process
PROC_VARS: dict[str, Sample] = {}


@attrs.define(slots=True)
class SampleContext:
    """Everything a fetch may read about one connection / transaction.

    `payload` is the request buffer received so far (mode tcp), `final` says no more of it will
    come (inspect-delay expired, client closed, buffer full, or no inspection at all). `http` is
    the parsed request (and response) in mode http; in mode tcp HTTP fetches parse `payload`.
    `nbsrv(name)` answers the usable servers of a backend (None: no such backend). Variables are
    kept by full name ("txn.x", "sess.y"); `proc.*` ones live in `proc_vars`.
    """

    src: IPAddress | None = None
    src_port: int = 0
    dst: IPAddress | None = None
    dst_port: int = 0
    frontend: str = ""
    backend: str = ""
    payload: bytes = b""
    final: bool = True
    http: HttpView | None = None
    first_request: bool = True
    nbsrv: Callable[[str], int | None] | None = None
    vars: dict[str, Sample] = attrs.field(factory=dict)
    proc_vars: dict[str, Sample] = attrs.field(factory=lambda: PROC_VARS)
    bufsize: int = DEFAULT_BUFSIZE
    maxrewrite: int = DEFAULT_MAXREWRITE
    _raw: tuple[int, RawHttpRequest | Fetched] | None = None

    def request(self) -> HttpView | Fetched:
        """The HTTP request: the HTTP layer's view, else one parsed from the tcp buffer (cached)."""
        if self.http is not None:
            return self.http
        n = len(self.payload)
        if self._raw is None or self._raw[0] != n:
            self._raw = (n, parse_raw_request(self.payload, self.bufsize - self.maxrewrite))
        return self._raw[1]

    def get_var(self, name: str) -> Sample | None:
        return (self.proc_vars if name.startswith("proc.") else self.vars).get(name)

    def set_var(self, name: str, smp: Sample) -> None:
        (self.proc_vars if name.startswith("proc.") else self.vars)[name] = smp

    def unset_var(self, name: str) -> None:
        (self.proc_vars if name.startswith("proc.") else self.vars).pop(name, None)


# ----------------------------------------------------------------------------------------------
# Fetch table
# ----------------------------------------------------------------------------------------------

FetchFn = Callable[[SampleContext, tuple[Any, ...], bool], Fetched]


@attrs.frozen
class FetchDef:
    """A sample fetch keyword: `arg_types` is one code per argument ("int", "str"), the first
    `min_args` mandatory."""

    name: str
    fn: FetchFn
    out_type: str
    arg_types: tuple[str, ...] = ()
    min_args: int = 0


FETCHES: dict[str, FetchDef] = {}


def _fetch(names: str, out_type: str, arg_types: tuple[str, ...] = (), min_args: int = 0
           ) -> Callable[[FetchFn], FetchFn]:
    def register(fn: FetchFn) -> FetchFn:
        for name in names.split():
            FETCHES[name] = FetchDef(name, fn, out_type, arg_types, min_args)
        return fn

    return register


def _one(smp: Sample | None, may_change: bool = False) -> Fetched:
    if smp is None:
        return WAIT if may_change else NOTHING
    return Fetched((smp,), may_change)


def _addr(ip: IPAddress | None) -> Fetched:
    if ip is None:
        return NOTHING
    return Fetched((Sample(IPV4 if ip.version == 4 else IPV6, ip),))


@_fetch("src", ADDR)
def _f_src(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _addr(ctx.src)


@_fetch("dst", ADDR)
def _f_dst(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _addr(ctx.dst)


@_fetch("src_port", SINT)
def _f_src_port(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(SINT, ctx.src_port)) if ctx.src is not None else NOTHING


@_fetch("dst_port", SINT)
def _f_dst_port(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(SINT, ctx.dst_port)) if ctx.dst is not None else NOTHING


@_fetch("fe_name", STR)
def _f_fe_name(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(STR, ctx.frontend.encode()))


@_fetch("be_name", STR)
def _f_be_name(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    # before a backend is chosen, the stream's backend is the frontend itself
    return _one(Sample(STR, (ctx.backend or ctx.frontend).encode()))


@_fetch("nbsrv", SINT, ("str",))
def _f_nbsrv(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    name = args[0] if args and args[0] else (ctx.backend or ctx.frontend)
    if ctx.nbsrv is None:
        return NOTHING
    n = ctx.nbsrv(name)
    return NOTHING if n is None else _one(Sample(SINT, n))


@_fetch("always_true", BOOL)
def _f_true(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(TRUE)


@_fetch("always_false", BOOL)
def _f_false(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(FALSE)


@_fetch("str", STR, ("str",), 1)
def _f_str(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(STR, args[0].encode("utf-8", "surrogateescape")))


@_fetch("int", SINT, ("int",), 1)
def _f_int(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(SINT, args[0]))


@_fetch("bool", BOOL, ("int",), 1)
def _f_bool(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(BOOL, int(args[0] != 0)))


@_fetch("var", ANY, ("str", "str"), 1)
def _f_var(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    smp = ctx.get_var(args[0])
    if smp is None and len(args) > 1 and args[1] is not None:
        smp = Sample(STR, args[1].encode("utf-8", "surrogateescape"))
    return _one(smp)


@_fetch("wait_end", BOOL)
def _f_wait_end(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(TRUE) if ctx.final else WAIT


@_fetch("req.len req_len", SINT)
def _f_req_len(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return Fetched((Sample(SINT, len(ctx.payload)),), True)


@_fetch("req.payload payload", BIN, ("int", "int"), 2)
def _f_payload(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    off, size = args[0], args[1]
    if size > ctx.bufsize or off + size > ctx.bufsize:
        return NOTHING  # can never be there
    buf = ctx.payload
    if off + size > len(buf):
        return WAIT
    data = buf[off : off + size] if size else buf[off:]
    return Fetched((Sample(BIN, data),), size == 0 and not ctx.final)


@_fetch("req.payload_lv payload_lv", BIN, ("int", "int", "str"), 2)
def _f_payload_lv(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    len_off, len_size = args[0], args[1]
    buf = ctx.payload
    if len_off + len_size > len(buf):
        return WAIT
    size = int.from_bytes(buf[len_off : len_off + len_size], "big")
    off = len_off + len_size
    if len(args) > 2 and args[2]:
        text = args[2]
        off = off + int(text) if text[0] in "+-" else int(text)
    if not size or size > ctx.bufsize or off + size > ctx.bufsize:
        return NOTHING
    if off + size > len(buf):
        return WAIT
    return _one(Sample(BIN, buf[off : off + size]))


def _hello(parsed: tls_hello.Parsed, out: str) -> Fetched:
    if parsed.status is tls_hello.HelloStatus.COMPLETE:
        return _one(Sample(out, parsed.value))
    return WAIT if parsed.need_more else NOTHING


@_fetch("req.ssl_sni req_ssl_sni", STR)
def _f_ssl_sni(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _hello(tls_hello.server_name(ctx.payload), STR)


@_fetch("req.ssl_hello_type req_ssl_hello_type", SINT)
def _f_ssl_hello_type(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _hello(tls_hello.hello_type(ctx.payload), SINT)


@_fetch("req.ssl_ver req_ssl_ver", SINT)
def _f_ssl_ver(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _hello(tls_hello.client_version(ctx.payload, ctx.bufsize - ctx.maxrewrite), SINT)


@_fetch("req.ssl_alpn", STR)
def _f_ssl_alpn(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    parsed = tls_hello.alpn(ctx.payload)
    if parsed.status is not tls_hello.HelloStatus.COMPLETE:
        return WAIT if parsed.need_more else NOTHING
    names = [Sample(STR, n) for n in parsed.value]  # type: ignore[union-attr]
    return Fetched(tuple(names) if it else tuple(names[:1]))


def rdp_cookie(buf: bytes, name: bytes) -> Fetched:
    """The RDP cookie `name` (any when empty) of an RDP connection request (fetch_rdp_cookie_name)."""
    n = len(buf)
    if n <= 11:
        return WAIT
    p = 11
    if n - p <= 7:
        return WAIT
    if buf[p : p + 7].lower() != b"cookie:":
        return NOTHING
    p += 7
    while p < n and buf[p] == 0x20:
        p += 1
    if name:
        if n - p <= len(name):
            return WAIT
        if buf[p + len(name)] != 0x3D or buf[p : p + len(name)].lower() != name.lower():
            return NOTHING
        p += len(name) + 1
    else:
        while p < n and buf[p] != 0x3D:
            if buf[p] in (0x0D, 0x0A):
                return NOTHING
            p += 1
        if p >= n:
            return WAIT
        p += 1
    start = p
    while p < n and buf[p] != 0x0D:
        p += 1
    if n - p < 2:
        return WAIT
    if buf[p : p + 2] != b"\r\n":
        return NOTHING
    return _one(Sample(STR, buf[start:p]))


@_fetch("req.rdp_cookie rdp_cookie req_rdp_cookie", STR, ("str",))
def _f_rdp_cookie(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return rdp_cookie(ctx.payload, args[0].encode() if args and args[0] else b"")


@_fetch("req.rdp_cookie_cnt rdp_cookie_cnt req_rdp_cookie_cnt", SINT, ("str",))
def _f_rdp_cookie_cnt(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    found = rdp_cookie(ctx.payload, args[0].encode() if args and args[0] else b"")
    if found.may_change:
        return WAIT
    return _one(Sample(SINT, 1 if found.samples else 0))


@_fetch("env", STR, ("str",), 1)
def _f_env(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    value = os.environ.get(args[0])
    return NOTHING if value is None else _one(Sample(STR, value.encode("utf-8", "surrogateescape")))


@_fetch("hostname", STR)
def _f_hostname(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(STR, socket.gethostname().encode()))


@_fetch("pid", SINT)
def _f_pid(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    return _one(Sample(SINT, os.getpid()))


@_fetch("date", SINT, ("int", "str"))
def _f_date(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    offset = args[0] if args and args[0] is not None else 0
    return _one(Sample(SINT, int(time.time()) + offset))


@_fetch("rand", SINT, ("int",))
def _f_rand(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    # HAProxy: a 32-bit random number, scaled to [0, range) when a range is given
    value = random.getrandbits(32)
    if args and args[0]:
        value = (value * args[0]) >> 32
    return _one(Sample(SINT, value))


def _ip_const(version: int) -> FetchFn:
    def fn(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
        return _one(Sample(IPV4 if version == 4 else IPV6, args[0]))

    return fn


FETCHES["ipv4"] = FetchDef("ipv4", _ip_const(4), IPV4, ("ipv4",), 1)
FETCHES["ipv6"] = FetchDef("ipv6", _ip_const(6), IPV6, ("ipv6",), 1)


# ---- HTTP -------------------------------------------------------------------------------------


@_fetch("req.proto_http req_proto_http", BOOL)
def _f_proto_http(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    return req if isinstance(req, Fetched) else _one(TRUE)


@_fetch("method", METH)
def _f_method(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    return req if isinstance(req, Fetched) else _one(Sample(METH, req.method))


def uri_path(uri: bytes) -> bytes | None:
    """The path of a request URI, query included (HAProxy's http_parse_path); None when absent
    ("*", authority form, or an absolute URI without a path)."""
    if uri[:1] == b"/":
        return uri
    if not uri or uri == b"*":
        return None
    m = re.match(rb"[A-Za-z][A-Za-z0-9+.\-]*://", uri)
    if m is None:
        return None
    slash = uri.find(b"/", m.end())
    return uri[slash:] if slash >= 0 else None


@_fetch("path", STR)
def _f_path(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    path = uri_path(req.uri)
    return NOTHING if path is None else _one(Sample(STR, path.split(b"?", 1)[0]))


@_fetch("pathq", STR)
def _f_pathq(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    path = uri_path(req.uri)
    return NOTHING if path is None else _one(Sample(STR, path))


@_fetch("url", STR)
def _f_url(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    return req if isinstance(req, Fetched) else _one(Sample(STR, req.uri))


@_fetch("query", STR)
def _f_query(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    q = req.uri.find(b"?")
    return NOTHING if q < 0 else _one(Sample(STR, req.uri[q + 1 :]))


def url_params(uri: bytes, name: bytes, delim: bytes = b"&", icase: bool = False) -> list[bytes]:
    """Values of parameter `name` in the query string (every parameter when `name` is empty)."""
    q = uri.find(b"?")
    if q < 0:
        return []
    out = []
    wanted = name.lower() if icase else name
    for part in uri[q + 1 :].split(delim):
        key, eq, value = part.partition(b"=")
        # a parameter without '=' has no value: HAProxy does not report it
        if eq and (not name or (key.lower() if icase else key) == wanted):
            out.append(value)
    return out


@_fetch("url_param urlp", STR, ("str", "str", "str"))
def _f_url_param(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    name = (args[0] or "").encode() if args else b""
    delim = args[1].encode()[:1] if len(args) > 1 and args[1] else b"&"
    icase = len(args) > 2 and args[2] == "i"
    values = url_params(req.uri, name, delim, icase)
    if not values:
        return NOTHING
    return Fetched(tuple(Sample(STR, v) for v in (values if it else values[:1])))


def header_values(headers: Sequence[tuple[bytes, bytes]], name: bytes | None, full: bool) -> list[bytes]:
    """Every value of header `name` (all headers when None), split at commas outside quotes
    unless `full`, with surrounding blanks removed."""
    out: list[bytes] = []
    for hname, value in headers:
        if name is not None and hname != name:
            continue
        if full or b"," not in value:
            out.append(value.strip(b" \t"))
        else:
            out.extend(split_header_list(value))
    return out


def split_header_list(value: bytes) -> list[bytes]:
    """`a, "b,c", d` -> [a, "b,c", d]: commas inside double quotes do not split."""
    parts = []
    start = 0
    quoted = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == 0x5C:  # backslash escapes the next character
                i += 1
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            parts.append(value[start:i].strip(b" \t"))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(b" \t"))
    return parts


def _pick(values: list[bytes], occ: int, it: bool) -> list[bytes]:
    """HAProxy's occurrence rule: >0 from the first, <0 from the last, 0 = all (ACL) or last."""
    if not values:
        return []
    if occ > 0:
        return values[occ - 1 : occ]
    if occ < 0:
        return [values[occ]] if -occ <= len(values) else []
    return values if it else values[-1:]


def _name_arg(args: tuple[Any, ...]) -> bytes | None:
    return args[0].lower().encode() if args and args[0] else None


def _occ_arg(args: tuple[Any, ...]) -> int:
    return args[1] if len(args) > 1 and args[1] is not None else 0


def _headers_fetch(full: bool, response: bool, out: str = STR) -> FetchFn:
    def fn(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
        headers = _msg_headers(ctx, response)
        if isinstance(headers, Fetched):
            return headers
        values = _pick(header_values(headers, _name_arg(args), full), _occ_arg(args), it)
        samples = []
        for v in values:
            smp = cast(Sample(STR, v), out) if out != STR else Sample(STR, v)
            if out == SINT and smp is not None:
                smp = Sample(SINT, read_int64(v))
            if smp is not None:
                samples.append(smp)
        return Fetched(tuple(samples))

    return fn


def _msg_headers(ctx: SampleContext, response: bool) -> Sequence[tuple[bytes, bytes]] | Fetched:
    if response:
        if ctx.http is None:
            return NOTHING
        res = getattr(ctx.http, "res_headers", None)
        return NOTHING if res is None else res
    req = ctx.request()
    return req if isinstance(req, Fetched) else req.headers


def _count_fetch(full: bool, response: bool) -> FetchFn:
    def fn(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
        headers = _msg_headers(ctx, response)
        if isinstance(headers, Fetched):
            return headers
        return _one(Sample(SINT, len(header_values(headers, _name_arg(args), full))))

    return fn


for _names, _fn, _out in (
    ("req.hdr hdr", _headers_fetch(False, False), STR),
    ("req.fhdr", _headers_fetch(True, False), STR),
    ("req.hdr_val hdr_val", _headers_fetch(False, False, SINT), SINT),
    ("req.hdr_ip hdr_ip", _headers_fetch(False, False, ADDR), ADDR),
    ("res.hdr shdr", _headers_fetch(False, True), STR),
    ("res.fhdr", _headers_fetch(True, True), STR),
    ("res.hdr_val shdr_val", _headers_fetch(False, True, SINT), SINT),
):
    for _n in _names.split():
        FETCHES[_n] = FetchDef(_n, _fn, _out, ("str", "int"))
for _names, _fn in (
    ("req.hdr_cnt hdr_cnt", _count_fetch(False, False)),
    ("req.fhdr_cnt", _count_fetch(True, False)),
    ("res.hdr_cnt shdr_cnt", _count_fetch(False, True)),
    ("res.fhdr_cnt", _count_fetch(True, True)),
):
    for _n in _names.split():
        FETCHES[_n] = FetchDef(_n, _fn, SINT, ("str",))


@_fetch("base", STR)
def _f_base(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    hosts = header_values(req.headers, b"host", True)
    path = uri_path(req.uri)
    if not hosts or not hosts[0]:
        return NOTHING if path is None else _one(Sample(STR, path.split(b"?", 1)[0]))
    value = hosts[0]
    if path is not None:
        p = path.split(b"?", 1)[0]
        if p[:1] == b"/":
            value += p
    return _one(Sample(STR, value))


def cookie_values(headers: Sequence[tuple[bytes, bytes]], header: bytes, name: bytes | None) -> list[bytes]:
    """Values of cookie `name` (any cookie when None) in every `header` line, in order."""
    out = []
    for hname, value in headers:
        if hname != header:
            continue
        for part in value.split(b";"):
            key, eq, val = part.strip(b" \t").partition(b"=")
            if not eq:
                continue
            if name is None or key.strip(b" \t") == name:
                out.append(val.strip(b" \t"))
    return out


def _cookie_fetch(response: bool, mode: str) -> FetchFn:
    header = b"set-cookie" if response else b"cookie"

    def fn(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
        headers = _msg_headers(ctx, response)
        if isinstance(headers, Fetched):
            return headers
        name = args[0].encode() if args and args[0] else None
        values = cookie_values(headers, header, name)
        if response and values:
            values = [v.split(b";", 1)[0] for v in values]
        if mode == "cnt":
            return _one(Sample(SINT, len(values)))
        if not values:
            return NOTHING
        chosen = values if it else values[-1:]
        if mode == "val":
            return Fetched(tuple(Sample(SINT, read_int64(v)) for v in chosen))
        return Fetched(tuple(Sample(STR, v) for v in chosen))

    return fn


for _names, _fn, _out in (
    ("req.cook cook", _cookie_fetch(False, "str"), STR),
    ("req.cook_cnt cook_cnt", _cookie_fetch(False, "cnt"), SINT),
    ("req.cook_val cook_val", _cookie_fetch(False, "val"), SINT),
    ("res.cook scook", _cookie_fetch(True, "str"), STR),
    ("res.cook_cnt scook_cnt", _cookie_fetch(True, "cnt"), SINT),
):
    for _n in _names.split():
        FETCHES[_n] = FetchDef(_n, _fn, _out, ("str",))


@_fetch("http_first_req", BOOL)
def _f_first_req(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    if isinstance(req, Fetched):
        return req
    return _one(TRUE if ctx.first_request else FALSE)


def _version(v: bytes) -> bytes:
    return v[5:] if v.startswith(b"HTTP/") else v


@_fetch("req.ver req_ver", STR)
def _f_req_ver(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    req = ctx.request()
    return req if isinstance(req, Fetched) else _one(Sample(STR, _version(req.version)))


@_fetch("res.ver resp_ver", STR)
def _f_res_ver(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    v = getattr(ctx.http, "res_version", None) if ctx.http is not None else None
    if v is None and ctx.http is not None and getattr(ctx.http, "status", None) is not None:
        v = ctx.http.version
    return NOTHING if v is None else _one(Sample(STR, _version(v)))


@_fetch("status", SINT)
def _f_status(ctx: SampleContext, args: tuple[Any, ...], it: bool) -> Fetched:
    status = getattr(ctx.http, "status", None) if ctx.http is not None else None
    return NOTHING if status is None else _one(Sample(SINT, int(status)))


# ----------------------------------------------------------------------------------------------
# Converters
# ----------------------------------------------------------------------------------------------

ConvFn = Callable[[Sample, tuple[Any, ...], SampleContext], Sample | None]
# Turns the converter's raw string arguments into what `fn` takes; raises SampleError.
ConvPrepare = Callable[[list[str]], tuple[Any, ...]]


@attrs.frozen
class ConvDef:
    name: str
    fn: ConvFn
    in_type: str
    out_type: str
    prepare: ConvPrepare


CONVERTERS: dict[str, ConvDef] = {}


def register_converter(name: str, fn: ConvFn, in_type: str, out_type: str, prepare: ConvPrepare) -> None:
    """Add a converter (the map converters register themselves this way from core.pattern)."""
    CONVERTERS[name] = ConvDef(name, fn, in_type, out_type, prepare)


def _no_args(name: str) -> ConvPrepare:
    def prepare(args: list[str]) -> tuple[Any, ...]:
        if args:
            raise SampleError(f"converter '{name}' does not take any argument")
        return ()

    return prepare


def parse_int_arg(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise SampleError(f"{what}: '{text}' is not a valid integer") from None


def _conv(name: str, in_type: str, out_type: str, prepare: ConvPrepare | None = None
          ) -> Callable[[ConvFn], ConvFn]:
    def register(fn: ConvFn) -> ConvFn:
        register_converter(name, fn, in_type, out_type, prepare or _no_args(name))
        return fn

    return register


@_conv("lower", STR, STR)
def _c_lower(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, smp.value.lower())


@_conv("upper", STR, STR)
def _c_upper(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, smp.value.upper())


@_conv("hex", BIN, STR)
def _c_hex(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, smp.value.hex().upper().encode())


@_conv("base64", BIN, STR)
def _c_base64(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, base64.b64encode(smp.value))


@_conv("length", STR, SINT)
def _c_length(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(SINT, len(smp.value))


@_conv("bool", SINT, BOOL)
def _c_bool(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(BOOL, int(smp.value != 0))


@_conv("not", SINT, BOOL)
def _c_not(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(BOOL, int(smp.value == 0))


def _prep_crc32(args: list[str]) -> tuple[Any, ...]:
    if len(args) > 1:
        raise SampleError("converter 'crc32' takes at most one argument")
    return (parse_int_arg(args[0], "crc32") if args and args[0] else 0,)


@_conv("crc32", BIN, SINT, _prep_crc32)
def _c_crc32(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    h = zlib.crc32(smp.value) & 0xFFFFFFFF
    return Sample(SINT, full_hash(h) if args[0] else h)


def _prep_bytes(args: list[str]) -> tuple[Any, ...]:
    if not 1 <= len(args) <= 2:
        raise SampleError("converter 'bytes' expects an offset and an optional length")
    return (parse_int_arg(args[0], "bytes"), parse_int_arg(args[1], "bytes") if len(args) > 1 else None)


@_conv("bytes", BIN, BIN, _prep_bytes)
def _c_bytes(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    off, length = args
    data = smp.value
    if off >= len(data):
        return Sample(BIN, b"")
    return Sample(BIN, data[off : off + length] if length is not None else data[off:])


def _prep_field(name: str) -> ConvPrepare:
    def prepare(args: list[str]) -> tuple[Any, ...]:
        if not 2 <= len(args) <= 3:
            raise SampleError(f"converter '{name}' expects an index, delimiters and an optional count")
        index = parse_int_arg(args[0], name)
        if index == 0:
            raise SampleError(f"converter '{name}': index must not be 0")
        count = parse_int_arg(args[2], name) if len(args) > 2 else 1
        if count < 0:
            raise SampleError(f"converter '{name}': count must not be negative")
        return index, args[1].encode("utf-8", "surrogateescape"), count

    return prepare


@_conv("field", STR, STR, _prep_field("field"))
def _c_field(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    """Transcribed from sample_conv_field(): `count` fields from `index` (1-based, <0 from the end;
    count 0 = up to the end)."""
    index, delims, count = args
    data: bytes = smp.value
    n = len(data)
    if index < 0:
        field = -1
        start = end = n
        while start > 0:
            if data[start - 1] in delims:
                if field == index:
                    if count == 1:
                        return Sample(STR, data[start:end])
                    if count > 1:
                        count -= 1
                else:
                    end = start - 1
                    field -= 1
            start -= 1
    else:
        field = 1
        start = end = 0
        while end < n:
            if data[end] in delims:
                if field == index:
                    if count == 1:
                        return Sample(STR, data[start:end])
                    if count > 1:
                        count -= 1
                else:
                    start = end + 1
                    field += 1
            end += 1
    if field != index:
        return None
    return Sample(STR, data[start:end])


@_conv("word", STR, STR, _prep_field("word"))
def _c_word(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    """Transcribed from sample_conv_word(): like field but runs of delimiters count as one."""
    index, delims, count = args
    data: bytes = smp.value
    n = len(data)
    word = 0
    inword = False
    if index < 0:
        start = end = n
        while start > 0:
            issep = data[start - 1] in delims
            if not inword:
                if not issep:
                    if word != index:
                        word -= 1
                        end = start
                    inword = True
            elif issep:
                if word == index:
                    if count == 1:
                        return Sample(STR, data[start:end])
                    if count > 1:
                        count -= 1
                inword = False
            start -= 1
    else:
        start = end = 0
        while end < n:
            issep = data[end] in delims
            if not inword:
                if not issep:
                    if word != index:
                        word += 1
                        start = end
                    inword = True
            elif issep:
                if word == index:
                    if count == 1:
                        return Sample(STR, data[start:end])
                    if count > 1:
                        count -= 1
                inword = False
            end += 1
    if word != index:
        return None
    return Sample(STR, data[start:end])


def expand_replacement(template: bytes, m: re.Match[bytes]) -> bytes:
    """HAProxy's exp_replace(): \\0-\\9 insert groups, \\xHH a byte, \\c the character c."""
    out = bytearray()
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c == 0x5C and i + 1 < n:
            nxt = template[i + 1]
            if 48 <= nxt <= 57:
                g = nxt - 48
                if g <= (m.re.groups or 0) and m.group(g) is not None:
                    out += m.group(g)
                i += 2
                continue
            if nxt == 0x78 and i + 3 < n:  # \xHH
                try:
                    out.append(int(template[i + 2 : i + 4], 16))
                except ValueError:
                    pass
                i += 4
                continue
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _prep_regsub(args: list[str]) -> tuple[Any, ...]:
    if not 2 <= len(args) <= 3:
        raise SampleError("converter 'regsub' expects a regex, a replacement and optional flags")
    flags = args[2] if len(args) > 2 else ""
    for f in flags:
        if f not in "ig":
            raise SampleError(f"converter 'regsub': invalid regex flag '{f}', only 'i' and 'g' are supported")
    try:
        regex = re.compile(args[0].encode("utf-8", "surrogateescape"), re.IGNORECASE if "i" in flags else 0)
    except re.error as e:
        raise SampleError(f"converter 'regsub': invalid regex '{args[0]}': {e}") from None
    return regex, args[1].encode("utf-8", "surrogateescape"), "g" in flags


@_conv("regsub", STR, STR, _prep_regsub)
def _c_regsub(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    regex, repl, glob = args
    return Sample(STR, regex.sub(lambda m: expand_replacement(repl, m), smp.value, count=0 if glob else 1))


def _prep_concat(args: list[str]) -> tuple[Any, ...]:
    if len(args) > 3:
        raise SampleError("converter 'concat' expects at most 3 arguments")
    args = args + [""] * (3 - len(args))
    return args[0].encode("utf-8", "surrogateescape"), args[1], args[2].encode("utf-8", "surrogateescape")


@_conv("concat", STR, STR, _prep_concat)
def _c_concat(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    start, var, end = args
    middle = b""
    if var:
        value = as_bytes(ctx.get_var(var))
        middle = value or b""
    return Sample(STR, smp.value + start + middle + end)


_JSON_CODES = ("ascii", "utf8", "utf8s", "utf8p", "utf8ps")
_JSON_ESC = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 0x08: b"\\b", 0x0C: b"\\f", 0x0D: b"\\r", 0x0A: b"\\n",
             0x09: b"\\t"}


def _prep_json(args: list[str]) -> tuple[Any, ...]:
    code = args[0] if args and args[0] else "ascii"
    if len(args) > 1 or code not in _JSON_CODES:
        raise SampleError(f"converter 'json': unexpected input code type '{code}'. "
                          "Allowed value are 'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'")
    return (code,)


@_conv("json", STR, STR, _prep_json)
def _c_json(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    code = args[0]
    data: bytes = smp.value
    if code == "ascii":
        chars: list[int] = list(data)
    else:
        skip = code.endswith("s")
        try:
            chars = [ord(c) for c in data.decode("utf-8", "ignore" if skip else "strict")]
        except UnicodeDecodeError:
            return None
    out = bytearray()
    for c in chars:
        esc = _JSON_ESC.get(c)
        if esc is not None:
            out += esc
        elif c < 0x20 or c > 0x7E:
            out += b"\\u%04x" % (c & 0xFFFF)
        else:
            out.append(c)
    return Sample(STR, bytes(out))


def _prep_operand(name: str) -> ConvPrepare:
    def prepare(args: list[str]) -> tuple[Any, ...]:
        if len(args) != 1 or not args[0]:
            raise SampleError(f"converter '{name}' expects an integer or a variable name")
        text = args[0]
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return (int(text), None)
        return (None, text)  # a variable, read at run time

    return prepare


def _operand(args: tuple[Any, ...], ctx: SampleContext) -> int | None:
    value, var = args
    if var is None:
        return value
    smp = ctx.get_var(var)
    cur = cast(smp, SINT) if smp is not None else None
    return None if cur is None else cur.value


_LLONG_MAX = (1 << 63) - 1


def _arith(op: Callable[[int, int], int]) -> ConvFn:
    def fn(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
        other = _operand(args, ctx)
        if other is None:
            return None
        result = op(smp.value, other)
        # HAProxy computes on signed 64-bit integers and saturates
        return Sample(SINT, max(-_LLONG_MAX - 1, min(_LLONG_MAX, result)))

    return fn


def _div(a: int, b: int) -> int:
    if b == 0:
        return _LLONG_MAX  # "the largest unsigned integer" HAProxy returns on a null divisor
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q  # C truncates toward zero


def _mod(a: int, b: int) -> int:
    if b == 0:
        return 0
    return a - b * _div(a, b)


for _name, _op in (("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
                   ("div", _div), ("mod", _mod), ("and", lambda a, b: a & b), ("or", lambda a, b: a | b),
                   ("xor", lambda a, b: a ^ b)):
    register_converter(_name, _arith(_op), SINT, SINT, _prep_operand(_name))


@_conv("neg", SINT, SINT)
def _c_neg(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(SINT, -smp.value)


@_conv("even", SINT, BOOL)
def _c_even(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(BOOL, int(smp.value % 2 == 0))


@_conv("odd", SINT, BOOL)
def _c_odd(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(BOOL, int(smp.value % 2 != 0))


def _prep_chars(name: str) -> ConvPrepare:
    def prepare(args: list[str]) -> tuple[Any, ...]:
        if len(args) != 1:
            raise SampleError(f"converter '{name}' expects the characters to remove")
        return (args[0].encode("utf-8", "surrogateescape"),)

    return prepare


@_conv("ltrim", STR, STR, _prep_chars("ltrim"))
def _c_ltrim(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, smp.value.lstrip(args[0]))


@_conv("rtrim", STR, STR, _prep_chars("rtrim"))
def _c_rtrim(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    return Sample(STR, smp.value.rstrip(args[0]))


def _prep_url_dec(args: list[str]) -> tuple[Any, ...]:
    if len(args) > 1:
        raise SampleError("converter 'url_dec' takes at most one argument")
    return (bool(parse_int_arg(args[0], "url_dec")) if args and args[0] else False,)


@_conv("url_dec", STR, STR, _prep_url_dec)
def _c_url_dec(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    data: bytes = smp.value.replace(b"+", b" ") if args[0] else smp.value
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:  # %XX; a malformed escape fails the conversion, as HAProxy's url_decode()
            hexa = data[i + 1 : i + 3]
            if len(hexa) != 2 or not all(ch in b"0123456789abcdefABCDEF" for ch in hexa):
                return None
            out.append(int(hexa, 16))
            i += 3
            continue
        out.append(c)
        i += 1
    return Sample(STR, bytes(out))


def _prep_mask(args: list[str]) -> tuple[Any, ...]:
    if not 1 <= len(args) <= 2:
        raise SampleError("converter 'ipmask' expects an IPv4 mask and an optional IPv6 mask")
    try:
        v4 = ipaddress.IPv4Network(f"0.0.0.0/{args[0]}").netmask
        v6 = ipaddress.IPv6Network(f"::/{args[1]}").netmask if len(args) > 1 and args[1] else None
    except ValueError as e:
        raise SampleError(f"converter 'ipmask': {e}") from None
    return int(v4), None if v6 is None else int(v6)


@_conv("ipmask", ADDR, ADDR, _prep_mask)
def _c_ipmask(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
    v4, v6 = args
    if smp.type == IPV4:
        return Sample(IPV4, ipaddress.IPv4Address(int(smp.value) & v4))
    if v6 is None:
        v4addr = _v6_to_v4(smp.value)  # without an IPv6 mask only v4-mapped addresses qualify
        return None if v4addr is None else Sample(IPV4, ipaddress.IPv4Address(int(v4addr) & v4))
    return Sample(IPV6, ipaddress.IPv6Address(int(smp.value) & v6))


def _prep_avalanche(name: str) -> ConvPrepare:
    def prepare(args: list[str]) -> tuple[Any, ...]:
        if len(args) > 1:
            raise SampleError(f"converter '{name}' takes at most one argument")
        return (parse_int_arg(args[0], name) if args and args[0] else 0,)

    return prepare


def _hash_conv(fn: Callable[[bytes], int]) -> ConvFn:
    def conv(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
        h = fn(smp.value) & 0xFFFFFFFF
        return Sample(SINT, full_hash(h) if args[0] else h)

    return conv


for _name, _hash in (("sdbm", sdbm), ("djb2", djb2), ("wt6", wt6)):
    register_converter(_name, _hash_conv(_hash), BIN, SINT, _prep_avalanche(_name))


# ----------------------------------------------------------------------------------------------
# Expressions
# ----------------------------------------------------------------------------------------------


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside parentheses and quotes (quotes and escapes are kept for later)."""
    parts = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth = max(depth - 1, 0)
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_call(text: str) -> tuple[str, list[str] | None]:
    """`name(a,b)` -> ("name", ["a", "b"]); `name` -> ("name", None). Raises SampleError."""
    p = text.find("(")
    if p < 0:
        return text, None
    if not text.endswith(")"):
        raise SampleError(f"missing closing ')' after arguments to '{text[:p]}'")
    return text[:p], split_args(text[p + 1 : -1])


def split_args(inner: str) -> list[str]:
    """Arguments inside parentheses: commas separate, quotes group.

    Like a shell: single quotes keep everything; inside double quotes a backslash escapes only
    `"` and `\\`; unquoted, it escapes only the characters that would otherwise end or group an
    argument (`\\ , ( ) ' "`). Any other backslash is kept, so `regsub(\\.,_)` keeps its regex.
    """
    if inner == "":
        return []
    args = []
    cur: list[str] = []
    quote = ""
    depth = 0
    i = 0
    n = len(inner)
    while i < n:
        c = inner[i]
        if c == "\\" and i + 1 < n and quote != "'":
            nxt = inner[i + 1]
            if nxt in ('"', "\\") or (not quote and nxt in ",()'"):
                cur.append(nxt)
                i += 2
                continue
            cur.append(c)
            i += 1
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c == "," and depth == 0:
            args.append("".join(cur))
            cur = []
        else:
            if c == "(":
                depth += 1
            elif c == ")":
                depth = max(depth - 1, 0)
            cur.append(c)
        i += 1
    args.append("".join(cur))
    return args


def _typed_args(fd: FetchDef, raw: list[str] | None) -> tuple[Any, ...]:
    raw = raw or []
    if len(raw) < fd.min_args:
        raise SampleError(f"fetch method '{fd.name}' expects at least {fd.min_args} argument(s)")
    if len(raw) > len(fd.arg_types):
        raise SampleError(f"fetch method '{fd.name}' expects at most {len(fd.arg_types)} argument(s)")
    out: list[Any] = []
    for kind, text in zip(fd.arg_types, raw):
        if kind == "int":
            out.append(parse_int_arg(text, f"fetch method '{fd.name}'") if text != "" else None)
        elif kind in ("ipv4", "ipv6"):
            try:
                out.append(ipaddress.IPv4Address(text) if kind == "ipv4" else ipaddress.IPv6Address(text))
            except ValueError:
                raise SampleError(f"fetch method '{fd.name}': '{text}' is not a valid {kind.upper()} address") from None
        else:
            out.append(text)
    return tuple(out)


def _missing(kind: str, name: str) -> str:
    """Say whether HAProxy 2.6 knows the keyword (then haproxy-py lacks it) or nobody does."""
    from haproxy_py.config import samples_data

    known = samples_data.FETCHES if kind == "fetch method" else samples_data.CONVERTERS
    if name in known:
        return f"{kind} '{name}' is not implemented by haproxy-py"
    return f"unknown {kind} '{name}'"


def _ensure_map_converters() -> None:
    # the map converters live with the pattern matchers they use; importing registers them
    from haproxy_py.core import pattern  # noqa: F401


@attrs.frozen(eq=False)
class SampleExpr:
    """A compiled `fetch[,conv...]` expression."""

    text: str
    fetch: FetchDef
    args: tuple[Any, ...]
    converters: tuple[tuple[ConvDef, tuple[Any, ...]], ...]

    @property
    def out_type(self) -> str:
        return self.converters[-1][0].out_type if self.converters else self.fetch.out_type

    def fetch_raw(self, ctx: SampleContext, iterate: bool) -> Fetched:
        """The fetch's own samples, before converters."""
        return self.fetch.fn(ctx, self.args, iterate)

    def convert(self, smp: Sample, ctx: SampleContext) -> Sample | None:
        """Apply the converter chain; None when one of them fails (or cannot take the type)."""
        for conv, args in self.converters:
            cur = cast(smp, conv.in_type)
            if cur is None:
                return None
            res = conv.fn(cur, args, ctx)
            if res is None:
                return None
            smp = res
        return smp

    def evaluate(self, ctx: SampleContext) -> Sample | None:
        """The expression's single value (first sample, converters applied), or None."""
        fetched = self.fetch.fn(ctx, self.args, False)
        if not fetched.samples:
            return None
        return self.convert(fetched.samples[0], ctx)

    def evaluate_bytes(self, ctx: SampleContext) -> bytes | None:
        return as_bytes(self.evaluate(ctx))


def compile_expr(text: str) -> SampleExpr:
    """Compile `fetch[(args)][,conv[(args)]]...`; raises SampleError naming the bad part."""
    _ensure_map_converters()
    parts = split_top(text)
    name, raw = split_call(parts[0])
    fd = FETCHES.get(name)
    if fd is None:
        raise SampleError(f"{_missing('fetch method', name)} in sample expression '{text}'")
    args = _typed_args(fd, raw)
    convs = []
    for part in parts[1:]:
        cname, craw = split_call(part)
        cd = CONVERTERS.get(cname)
        if cd is None:
            raise SampleError(f"{_missing('converter', cname)} in sample expression '{text}'")
        try:
            cargs = cd.prepare(craw or [])
        except SampleError as e:
            raise SampleError(f"{e} in sample expression '{text}'") from None
        convs.append((cd, cargs))
    return SampleExpr(text=text, fetch=fd, args=args, converters=tuple(convs))


# ----------------------------------------------------------------------------------------------
# Log-format templates (the `%[expr]` subset: use_backend names, set-var-fmt, headers)
# ----------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Template:
    """A log-format string: literal parts and `%[expr]` samples. A sample that cannot be fetched
    renders as "-", as in HAProxy; other `%x` variables are kept literally."""

    text: str
    parts: tuple[bytes | SampleExpr, ...]

    @property
    def dynamic(self) -> bool:
        return any(isinstance(p, SampleExpr) for p in self.parts)

    def render(self, ctx: SampleContext) -> bytes:
        out = []
        for p in self.parts:
            if isinstance(p, bytes):
                out.append(p)
            else:
                value = p.evaluate_bytes(ctx)
                out.append(b"-" if value is None else value)
        return b"".join(out)


def compile_template(text: str) -> Template:
    """Compile a log-format string; raises SampleError for a bad `%[...]`."""
    parts: list[bytes | SampleExpr] = []
    lit: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "%":
            lit.append(c)
            i += 1
            continue
        if text.startswith("%%", i):
            lit.append("%")
            i += 2
            continue
        j = i + 1
        if j < n and text[j] == "{":  # %{options}[...]: options only change quoting/encoding
            k = text.find("}", j)
            if k < 0:
                raise SampleError(f"missing '}}' in log-format '{text}'")
            j = k + 1
        if j < n and text[j] == "[":
            end = _closing_bracket(text, j)
            if end < 0:
                raise SampleError(f"missing ']' in log-format '{text}'")
            if lit:
                parts.append("".join(lit).encode("utf-8", "surrogateescape"))
                lit = []
            parts.append(compile_expr(text[j + 1 : end]))
            i = end + 1
            continue
        lit.append(c)
        i += 1
    if lit:
        parts.append("".join(lit).encode("utf-8", "surrogateescape"))
    return Template(text=text, parts=tuple(parts))


def _closing_bracket(text: str, start: int) -> int:
    depth = 0
    quote = ""
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "]" and depth <= 0:
            return i
        i += 1
    return -1
