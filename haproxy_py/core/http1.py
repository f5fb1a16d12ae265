"""HTTP/1.x for a proxy: framing over httptools (llhttp), header checks, re-serialisation, error pages.

Pure: bytes in, events and bytes out; no sockets, no clocks. The runtime feeds what it reads to a
`RequestReader` (one per client connection) or a `ResponseReader` (one per server connection) and
takes events out in order:

    RequestHead / ResponseHead   a complete, checked head
    bytes                        a piece of body (already de-chunked)
    EndOfMessage                 the message is complete (with its trailers, if chunked)
    Upgrade                      the parser stopped: what follows is not HTTP (101, CONNECT)
    H1Error                      the peer broke HTTP; `status` is what HAProxy answers

Errors are queued as events rather than raised so that requests parsed before a bad one (pipelining)
are still answered in order, as HAProxy does.

llhttp is strict; HAProxy 2.6 is lenient in a few documented places (reference §7.3). The request
parser turns on only the leniencies whose llhttp semantics equal HAProxy's (bare LF ending header
lines, Content-Length with chunked, spaces after a chunk size, any HTTP/x.y) and enforces HAProxy's
own rules on top (422 for non-chunked codings, CL dropped when chunked, close after). Where llhttp
cannot be made to agree (custom methods, obs-fold, control bytes in values, several equal
Content-Length values, bare LF after the request line) the raw head is normalised and parsed again
by `_recover`; this is possible when the message started at a read boundary (always true for the
first request of a connection; a pipelined head with such a feature gets 400).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

import httptools
from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade

# ----------------------------------------------------------------------------------------------
# limits

HTX_OVERHEAD = 77
"""Bytes of HAProxy's HTX bookkeeping counted against `bufsize - maxrewrite`: with the defaults a head
whose HTX size (8 + method + uri + 8 for the start line, 8 + name + value per header) exceeds
15283 bytes is refused with 400 (bisected against HAProxy 2.6.12)."""


class Limits:
    """What a head may weigh. `max_htx` is HAProxy's (bufsize - maxrewrite - HTX_OVERHEAD);
    `max_raw` bounds an incomplete head (the input buffer); `max_headers` is tune.http.maxhdr - 1
    (HAProxy 2.6 refuses the 101st header line with the default maxhdr 101)."""

    __slots__ = ("max_htx", "max_raw", "max_headers")

    def __init__(self, bufsize: int = 16384, maxrewrite: int = 1024, maxhdr: int = 101) -> None:
        self.max_htx = bufsize - maxrewrite - HTX_OVERHEAD
        self.max_raw = bufsize
        self.max_headers = maxhdr - 1


DEFAULT_LIMITS = Limits()

# ----------------------------------------------------------------------------------------------
# events


class H1Error(Exception):
    """The peer broke HTTP/1.x. `status`: 400/422 for a request (sent raw, then close), 502 for a
    response. `reason` is for logs and tests only."""

    def __init__(self, status: int, reason: str, abort: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.abort = abort  # the peer closed or reset (HAProxy's "S"/"C" states) rather than sent garbage


class EndOfMessage:
    """The end of a message; `trailers` holds a chunked message's trailer fields (lower-case names)."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.trailers = trailers


END = EndOfMessage()


class Upgrade:
    """The parser stopped after a head that switches protocols; `rest` is what followed it."""

    __slots__ = ("rest",)

    def __init__(self, rest: bytes) -> None:
        self.rest = rest


Headers = list[tuple[bytes, bytes]]


class RequestHead:
    """A parsed and checked request head, ready to forward.

    `headers` have lower-case names; the `close`/`keep-alive` tokens of Connection are already
    consumed (the proxy writes its own). `version` is 10 or 11 (HTTP/2.0 and other majors are
    forwarded as 1.1, as HAProxy does). `content_length` is None unless the body is length-delimited;
    `chunked` marks a chunked body. `close_after` is set when HAProxy would close the client
    connection after the response (Content-Length with chunked, chunked HTTP/1.0).
    """

    __slots__ = ("method", "target", "version", "headers", "content_length", "chunked", "wants_close",
                 "wants_keepalive", "upgrade", "close_after")

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = 11
        self.headers: Headers = []
        self.content_length: int | None = None
        self.chunked = False
        self.wants_close = False
        self.wants_keepalive = False
        self.upgrade = False
        self.close_after = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def client_keepalive(self) -> bool:
        """Whether the client asked to keep its connection (HTTP/1.1 default, 1.0 opt-in)."""
        if self.version >= 11:
            return not self.wants_close
        return self.wants_keepalive and not self.wants_close

    def header(self, name: str) -> bytes | None:
        """First value of header `name` (case-insensitive), for balancers and rules."""
        lname = name.lower().encode("latin-1")
        for n, v in self.headers:
            if n == lname:
                return v
        return None


class ResponseHead:
    """A parsed and checked response head. `body` says how its body is delimited:
    "length", "chunked", "close" (until the server closes) or "none"."""

    __slots__ = ("status", "reason", "version", "headers", "content_length", "body", "wants_close",
                 "wants_keepalive")

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.version = 11
        self.headers: Headers = []
        self.content_length: int | None = None
        self.body = "none"
        self.wants_close = False
        self.wants_keepalive = False

    @property
    def server_keepalive(self) -> bool:
        """Whether the server will keep its connection open after this response."""
        if self.body == "close":
            return False
        if self.version >= 11:
            return not self.wants_close
        return self.wants_keepalive and not self.wants_close


Event = RequestHead | ResponseHead | bytes | EndOfMessage | Upgrade | H1Error

# ----------------------------------------------------------------------------------------------
# header helpers

_CLOSE = b"close"
_KEEPALIVE = b"keep-alive"


def _split_tokens(value: bytes) -> list[bytes]:
    return [t.strip() for t in value.split(b",") if t.strip()]


def consume_connection(headers: Headers) -> tuple[bool, bool]:
    """Remove the `close` and `keep-alive` tokens of every Connection header, in place.

    Returns (close seen, keep-alive seen). Other tokens (e.g. `upgrade`, custom hop-by-hop names)
    stay, and so do the headers they name: HAProxy 2.6 forwards them (verified).
    A Connection header left without tokens is dropped.
    """
    close = keepalive = False
    at = [i for i, h in enumerate(headers) if h[0] == b"connection"]
    for i in reversed(at):  # from the last, so that deleting one leaves the others' places
        value = headers[i][1]
        low = value.lower()
        if low == _KEEPALIVE or low == _CLOSE:  # the usual single token
            if low == _CLOSE:
                close = True
            else:
                keepalive = True
            del headers[i]
            continue
        kept = []
        tokens = _split_tokens(value)
        for tok in tokens:
            low = tok.lower()
            if low == _CLOSE:
                close = True
            elif low == _KEEPALIVE:
                keepalive = True
            else:
                kept.append(tok)
        if not kept:
            del headers[i]
        elif len(kept) != len(tokens):
            headers[i] = (b"connection", b", ".join(kept))
    return close, keepalive


def remove_header(headers: Headers, lname: bytes) -> None:
    """Remove every occurrence of `lname` (already lower-case), in place."""
    headers[:] = [h for h in headers if h[0] != lname]


_OWS = (32, 9)


def _trim(value: bytes) -> bytes:
    # llhttp drops leading OWS but keeps trailing OWS; HAProxy drops both.
    if value and value[-1:] in (b" ", b"\t"):
        return value.rstrip(b" \t")
    return value


# ----------------------------------------------------------------------------------------------
# the request side

# llhttp knows a fixed list of methods; HAProxy accepts any token. A head whose method llhttp does not
# know is parsed with this stand-in (its framing rules are the same: CL or chunked) and gets its
# own method back afterwards.
_STANDIN_METHOD = b"POST"
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEAD_END_RE = re.compile(rb"\n\r?\n")
_BARE_CR_RE = re.compile(rb"\r(?!\n)")
_FOLD_RE = re.compile(rb"(\r?\n)(?=[ \t])")
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BARE_LF_RE = re.compile(rb"(?<!\r)\n")
_CL_NAME_RE = re.compile(rb"\ncontent-length:", re.IGNORECASE)
_DISGUISED_CL = b"x-haproxy-py-content-length"
_DIGITS_RE = re.compile(rb"^[0-9]+$")

_LENIENCIES = dict(
    lenient_optional_cr_before_lf=True,  # bare LF ends header lines (HAProxy accepts)
    lenient_chunked_length=True,  # CL + TE: HAProxy drops CL and closes afterwards (we enforce)
    lenient_spaces_after_chunk_size=True,  # "3 \r\n" is accepted by HAProxy
    lenient_version=True,  # HTTP/1.2, HTTP/3.0 are forwarded as HTTP/1.1 by HAProxy
)
# Only for reading the values of a head being recovered (its bare CRs and folds are already dealt
# with): control bytes in values, which HAProxy 2.6 forwards. Never used to frame a message.
_VALUE_LENIENCIES = dict(_LENIENCIES, lenient_headers=True)
# The headers that decide a request's framing; a recovered head is re-parsed with only these.
_FRAMING = (b"content-length", b"transfer-encoding", b"connection", b"upgrade")


def _new_request_parser(protocol: object, leniencies: dict = _LENIENCIES) -> httptools.HttpRequestParser:
    p = httptools.HttpRequestParser(protocol)
    p.set_dangerous_leniencies(**leniencies)
    return p


class _HeadCollector:
    """Callbacks for the recovery parse: just the head's pieces."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: Headers = []
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.done = True


class RequestReader:
    """Incremental request parsing for one client connection.

    `feed(data)` parses what was read; `next_event()` pops the next event (None: feed more). The
    caller should feed only when no event is pending, which bounds what is buffered here to one read.
    After an Upgrade event the reader is stopped until `resume(data)` (the server refused to switch).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._max_headers = limits.max_headers
        self.events: deque[Event] = deque()
        self._parser: httptools.HttpRequestParser | None = _new_request_parser(self)
        self._head: RequestHead | None = None
        self._url = b""
        self._cost = 0
        self._trailers: Headers | None = None
        self._in_head = False  # message begun, head not complete
        self._idle = True  # between messages: the next byte starts a message
        self._idle_at_feed = True  # _idle when the current feed started
        self._begun_in_feed = 0  # messages begun during the current feed
        self._clean = True  # the current message started at the start of a feed
        self._raw: list[bytes] = []  # earlier feeds of the current head (only when clean)
        self._raw_len = 0
        self._stray = False  # bytes (only CR/LF: llhttp skips them) received since the last message
        self._collecting = False  # recovering: gathering the rest of a head before parsing it
        self._why = ""
        # a recovered head: (method, target, headers) to use instead of what the framing parse saw
        self._override: tuple[bytes, bytes, Headers] | None = None

    # -- consumer side --------------------------------------------------------------------------
    def next_event(self) -> Event | None:
        ev = self.events
        return ev.popleft() if ev else None

    @property
    def stopped(self) -> bool:
        """No more HTTP to parse (error or protocol switch)."""
        return self._parser is None

    @property
    def idle(self) -> bool:
        """Between messages with nothing partial buffered (a silent close is appropriate)."""
        return self._idle and not self._collecting and not self.events and not self._stray

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse bytes read from the client. Never raises for bad input: errors become events."""
        if self._parser is None:
            return
        if self._collecting:
            self._collect(bytes(data))
            return
        idle = self._idle_at_feed = self._idle
        self._begun_in_feed = 0
        if idle:
            self._clean = True
            if self._raw:
                self._raw.clear()
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as e:
            off = e.args[0]
            self._parser = None
            self.events.append(Upgrade(bytes(data[off:])))
            return
        except HttpParserCallbackError as e:
            ctx = e.__context__
            self._fail(ctx if isinstance(ctx, H1Error) else H1Error(400, "callback failed"))
            return
        except HttpParserError as e:
            if self._clean and (self._in_head or self._idle):
                self._start_recovery(bytes(data), str(e))
            else:
                self._fail(H1Error(400, str(e)))
            return
        if self._in_head:
            self._raw_len += len(data)
            if self._raw_len > self.limits.max_raw:
                self._fail(H1Error(400, "request head too large"))
            elif self._clean:
                self._raw.append(bytes(data))
        elif self._idle_at_feed and not self._begun_in_feed and data:
            self._stray = True  # only empty lines: HAProxy counts them as a started request

    def resume_after_refused_upgrade(self) -> None:
        """The server did not switch protocols: what followed the upgrade request is HTTP again."""
        ev = self.events[0] if self.events else None
        if self._parser is None and isinstance(ev, Upgrade):
            self.events.popleft()
            self.resume(ev.rest)

    def resume(self, data: bytes) -> None:
        """Parse HTTP again after an Upgrade the server did not accept; `data` is Upgrade.rest."""
        self._parser = _new_request_parser(self)
        self._idle = True
        self._in_head = False
        if data:
            self.feed(data)

    # -- errors and recovery ---------------------------------------------------------------------
    def _fail(self, err: H1Error) -> None:
        self._parser = None
        self._collecting = False
        self.events.append(err)

    def _start_recovery(self, data: bytes, why: str) -> None:
        self._collecting = True  # the parser object stays: the reader is not stopped yet
        self._why = why
        self._collect(data)

    def _collect(self, data: bytes) -> None:
        self._raw.append(data)
        raw = b"".join(self._raw)
        start = len(raw) - len(raw.lstrip(b"\r\n"))
        m = _HEAD_END_RE.search(raw, start)
        if m is None:
            if len(raw) > self.limits.max_raw:
                self._fail(H1Error(400, "request head too large"))
            return
        self._collecting = False
        self._raw.clear()
        self._recover(raw[start:m.end()], raw[m.end():])

    def _recover(self, head: bytes, rest: bytes) -> None:
        """Normalise a head llhttp refused where HAProxy accepts it, then parse it again.

        On the raw head: a bare CR anywhere is final (400); the method may be any token (parsed with
        a stand-in); each CR and LF of an obs-fold becomes a space (HAProxy's unfolding); bare LF
        line ends become CRLF; Content-Length headers are disguised. The values are then read with
        llhttp tolerating control bytes, equal Content-Length values merged (400 when they differ),
        and the message is framed by a strict parse of a head holding only the framing headers.
        """
        why = self._why
        if _BARE_CR_RE.search(head):
            self._fail(H1Error(400, why))
            return
        sp = head.find(b" ")
        method = head[:sp] if sp > 0 else b""
        if not _TOKEN_RE.fullmatch(method):
            self._fail(H1Error(400, why))
            return
        line_end = head.find(b"\n") + 1
        if head[line_end:line_end + 1] in (b" ", b"\t"):
            self._fail(H1Error(400, "folded request line"))  # a fold needs a header to continue
            return
        fixed = _STANDIN_METHOD + head[sp:line_end] + _FOLD_RE.sub(lambda m: b" " * len(m.group(1)), head[line_end:])
        fixed = _BARE_LF_RE.sub(b"\r\n", fixed)
        fixed = _CL_NAME_RE.sub(b"\n" + _DISGUISED_CL + b":", fixed)
        col = _HeadCollector()
        p = _new_request_parser(col, _VALUE_LENIENCIES)
        try:
            p.feed_data(fixed)
        except HttpParserUpgrade:
            pass
        except HttpParserError:
            self._fail(H1Error(400, why))
            return
        if not col.done:
            self._fail(H1Error(400, why))
            return
        lengths: set[bytes] = set()
        headers: Headers = []
        framing = [_STANDIN_METHOD, b" / HTTP/", p.get_http_version().encode(), b"\r\n"]
        for name, value in col.headers:
            if name[-1] == 32:
                self._fail(H1Error(400, "space before the colon of a header name"))
                return
            lname = name.lower()
            value = _trim(value)
            if lname == _DISGUISED_CL:
                for tok in value.split(b","):
                    tok = tok.strip(b" \t")
                    if not _DIGITS_RE.match(tok):
                        self._fail(H1Error(400, "invalid content-length"))
                        return
                    lengths.add(tok.lstrip(b"0") or b"0")
                if any(n == b"content-length" for n, _ in headers):
                    continue
                lname, value = b"content-length", b""  # the merged value, set below
            headers.append((lname, value))
        if len(lengths) > 1:
            self._fail(H1Error(400, "conflicting content-length"))
            return
        if len(headers) > self.limits.max_headers:
            self._fail(H1Error(400, "too many headers"))
            return
        if lengths:
            merged = next(iter(lengths))
            headers = [(n, merged if n == b"content-length" else v) for n, v in headers]
        for name, value in headers:
            if name in _FRAMING:
                if name in (b"connection", b"upgrade"):
                    # only their tokens matter to framing; control bytes (forwarded as they are)
                    # would make the strict framing parse fail
                    value = _CONTROL_RE.sub(b" ", value)
                framing += [name, b": ", value, b"\r\n"]
        self._override = (method, col.url, headers)
        self._parser = _new_request_parser(self)
        self._idle = True
        self._in_head = False
        self._raw_len = 0
        try:
            self._parser.feed_data(b"".join(framing) + b"\r\n")
        except HttpParserUpgrade:
            self._parser = None
            self.events.append(Upgrade(rest))
            return
        except HttpParserError as e:
            self._override = None
            ctx = e.__context__
            self._fail(ctx if isinstance(ctx, H1Error) else H1Error(400, str(e)))
            return
        self._clean = False  # anything after this head may be a pipelined message mid-feed
        if rest:
            self.feed(rest)

    # -- llhttp callbacks -----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._head = RequestHead()
        self._url = b""
        self._cost = 0
        self._raw_len = 0
        self._trailers = None
        self._in_head = True
        self._idle = False
        self._stray = False
        # only a message that starts a feed can be recovered: its raw head is known exactly
        self._clean = self._idle_at_feed and self._begun_in_feed == 0
        self._begun_in_feed += 1

    def on_url(self, url: bytes) -> None:
        if self._override is None:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:
            if self._override is not None:
                return  # the framing parse of a recovered head: its real headers are known
            if value and value[-1] in _OWS:
                value = value.rstrip(b" \t")
            self._head.headers.append((name.lower(), value))  # type: ignore[union-attr]
            self._cost += 8 + len(name) + len(value)
        else:
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name.lower(), _trim(value)))

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None and self._parser is not None
        self._in_head = False
        self._raw.clear()
        parser = self._parser
        ver = parser.get_http_version()
        if ver[0] == "0":
            raise H1Error(400, "HTTP/0.9 is not supported")
        head.version = 10 if ver == "1.0" else 11
        override = self._override
        if override is not None:
            self._override = None
            head.method, self._url, head.headers = override
            self._cost = sum(8 + len(n) + len(v) for n, v in head.headers)
        else:
            head.method = parser.get_method()
        head.target = self._url
        if len(head.headers) > self._max_headers:
            raise H1Error(400, "too many headers")
        if 8 + len(head.method) + len(self._url) + 8 + self._cost > self.limits.max_htx:
            raise H1Error(400, "request head too large")
        _check_request(head)
        if parser.should_upgrade():
            head.upgrade = True
            _check_websocket(head.headers)
        self.events.append(head)

    def on_body(self, data: bytes) -> None:
        self.events.append(data)

    def on_message_complete(self) -> None:
        trailers = self._trailers
        self.events.append(EndOfMessage(trailers) if trailers else END)
        self._idle = True
        self._head = None


def _check_request(head: RequestHead) -> None:
    """HAProxy 2.6's request rules llhttp does not enforce (reference §7.3). Raises H1Error."""
    headers = head.headers
    te: list[bytes] | None = None
    cl: bytes | None = None
    hosts: list[bytes] = []
    conn = False
    for name, value in headers:
        if name == b"host":
            hosts.append(value)
        elif name == b"transfer-encoding":
            te = (te or []) + [t.lower() for t in _split_tokens(value)]
        elif name == b"content-length":
            cl = value
        elif name == b"connection":
            conn = True
    if len(hosts) > 1:
        first = hosts[0].lower()
        if any(h.lower() != first for h in hosts[1:]):
            raise H1Error(400, "conflicting host headers")
        seen = False
        kept = []
        for h in headers:
            if h[0] == b"host":
                if seen:
                    continue
                seen = True
            kept.append(h)
        headers[:] = kept
    if te is not None:
        if not te or te[-1] != b"chunked":
            raise H1Error(400, "final transfer-coding is not chunked")
        if any(t != b"chunked" for t in te):
            raise H1Error(422, "transfer-encoding with a coding other than chunked")
        head.chunked = True
        if cl is not None:
            remove_header(headers, b"content-length")
            head.close_after = True
        if head.version < 11:
            head.close_after = True
    elif cl is not None:
        head.content_length = int(cl)
    if not head.target.startswith(b"/") and b"://" in head.target:
        _check_absolute_uri(head, hosts[0] if hosts else None)
    if conn:
        head.wants_close, head.wants_keepalive = consume_connection(headers)


def _check_websocket(headers: Headers) -> None:
    if _upgrades_to_websocket(headers):
        # HAProxy 2.6 checks the handshake key of a WebSocket upgrade (24 base64 characters)
        key = [v for n, v in headers if n == b"sec-websocket-key"]
        if len(key) != 1 or len(key[0]) != 24:
            raise H1Error(400, "websocket upgrade without a valid sec-websocket-key")


def _has_token(headers: Headers, lname: bytes, token: bytes) -> bool:
    for n, v in headers:
        if n == lname and any(t.lower() == token for t in _split_tokens(v)):
            return True
    return False


def _upgrades_to_websocket(headers: Headers) -> bool:
    return _has_token(headers, b"connection", b"upgrade") and _has_token(headers, b"upgrade", b"websocket")


_DEFAULT_PORTS = {b"http": b":80", b"https": b":443"}


def _check_absolute_uri(head: RequestHead, host: bytes | None) -> None:
    """An absolute-form target: its authority must match Host (400 otherwise), and a default port
    in it is dropped (HAProxy 2.6 forwards `http://a:80/x` as `http://a/x`)."""
    scheme, _, rest = head.target.partition(b"://")
    end = len(rest)
    for sep in (b"/", b"?", b"#"):
        i = rest.find(sep)
        if 0 <= i < end:
            end = i
    authority = rest[:end]
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default is not None and authority.endswith(default):
        authority = authority[: -len(default)]
        head.target = scheme + b"://" + authority + rest[end:]
    if host is not None:
        if default is not None and host.endswith(default):
            host = host[: -len(default)]
        if authority.lower() != host.lower():
            raise H1Error(400, "host header differs from the URI authority")


# ----------------------------------------------------------------------------------------------
# the response side


class _StopAfterHead(Exception):
    """Raised from a callback to stop llhttp after the head of a response to HEAD."""


def _new_response_parser(protocol: object) -> httptools.HttpResponseParser:
    # servers get llhttp's header leniency (obs-fold, control bytes), less the space before a colon
    p = httptools.HttpResponseParser(protocol)
    p.set_dangerous_leniencies(**_VALUE_LENIENCIES)
    return p


class ResponseReader:
    """Incremental response parsing for one server connection.

    Set `head_request` before feeding the response to a HEAD request: llhttp cannot know that such a
    response has no body, so the reader stops after its head; the connection is then reusable only
    if nothing followed the head (`reusable`).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._max_headers = limits.max_headers
        self.events: deque[Event] = deque()
        self._parser: httptools.HttpResponseParser | None = _new_response_parser(self)
        self._head: ResponseHead | None = None
        self._headers: Headers = []  # the head's, as they come
        self._trailers: Headers | None = None
        self._in_head = False
        self._raw_len = 0
        self.head_request = False
        self.reusable = True

    def next_event(self) -> Event | None:
        ev = self.events
        return ev.popleft() if ev else None

    @property
    def stopped(self) -> bool:
        return self._parser is None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse bytes read from the server. Errors become events (status 502)."""
        parser = self._parser
        if parser is None:
            if data:
                self.reusable = False  # bytes after a HEAD response's head: cannot resync
            return
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as e:
            self._parser = None
            self.events.append(Upgrade(bytes(data[e.args[0]:])))
            return
        except HttpParserCallbackError as e:
            ctx = e.__context__
            if isinstance(ctx, _StopAfterHead):
                # llhttp stopped inside `data`; the connection can be reused only if the head
                # was the last thing read (nothing we cannot account for followed it)
                self._parser = None
                m = _HEAD_END_RE.search(bytes(data))
                self.reusable = m is not None and m.end() == len(data)
                self.events.append(END)
                return
            self._fail(ctx if isinstance(ctx, H1Error) else H1Error(502, "callback failed"))
            return
        except HttpParserError as e:
            self._fail(H1Error(502, str(e)))
            return
        if self._in_head:
            self._raw_len += len(data)
            if self._raw_len > self.limits.max_raw:
                self._fail(H1Error(502, "response head too large"))

    def feed_eof(self) -> None:
        """The server closed: ends a close-delimited body, or is an error mid-message."""
        parser = self._parser
        if parser is None:
            return
        head = self._head
        if head is not None and not self._in_head and head.body == "close":
            self.events.append(END)
            self._head = None
        else:
            self.events.append(H1Error(502, "server closed before the end of the response", abort=True))
        self._parser = None

    def reset_after_head(self) -> None:
        """After a HEAD response: a fresh parser for the next response on this connection."""
        if self._parser is None and self.reusable:
            self._parser = _new_response_parser(self)
        self.head_request = False

    def _fail(self, err: H1Error) -> None:
        self._parser = None
        self.reusable = False
        self.events.append(err)

    # -- llhttp callbacks -----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._head = ResponseHead()
        self._headers = []
        self._raw_len = 0
        self._trailers = None
        self._in_head = True

    def on_status(self, reason: bytes) -> None:
        head = self._head
        assert head is not None
        head.reason = head.reason + reason if head.reason else reason

    def on_header(self, name: bytes, value: bytes) -> None:
        # called once per header line: the name and count checks wait for the end of the head
        if self._in_head:
            if value and value[-1] in _OWS:
                value = value.rstrip(b" \t")
            self._headers.append((name.lower(), value))
        else:
            if name[-1] == 32:
                raise H1Error(502, "space before the colon of a header name")
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name.lower(), _trim(value)))

    def on_headers_complete(self) -> None:
        head = self._head
        parser = self._parser
        assert head is not None and parser is not None
        self._in_head = False
        head.headers = headers = self._headers
        if len(headers) > self._max_headers:
            raise H1Error(502, "too many headers")
        head.status = parser.get_status_code()
        head.version = 10 if parser.get_http_version() == "1.0" else 11
        _check_response(head)
        if self.head_request and head.status >= 200:
            # the body llhttp would wait for does not exist: stop it after the head
            zero_length = head.content_length == 0
            head.body = "none"
            self.events.append(head)
            if not zero_length:
                raise _StopAfterHead()
            return  # llhttp completes a zero-length message itself
        self.events.append(head)

    def on_body(self, data: bytes) -> None:
        self.events.append(data)

    def on_message_complete(self) -> None:
        trailers = self._trailers
        self.events.append(EndOfMessage(trailers) if trailers else END)
        self._head = None


def _check_response(head: ResponseHead) -> None:
    """Framing of a response as HAProxy sees it; raises H1Error(502) where HAProxy answers 502."""
    te: list[bytes] | None = None
    cl: bytes | None = None
    conn = False
    for name, value in head.headers:
        if name == b"content-length":
            cl = value
        elif name == b"connection":
            conn = True
        elif name == b"transfer-encoding":
            te = (te or []) + [t.lower() for t in _split_tokens(value)]
        elif name[-1] == 32:
            raise H1Error(502, "space before the colon of a header name")
    close, keepalive = consume_connection(head.headers) if conn else (False, False)
    head.wants_close = close
    head.wants_keepalive = keepalive
    status = head.status
    if status == 101 and not _has_token(head.headers, b"connection", b"upgrade"):
        raise H1Error(502, "101 response without connection: upgrade")
    if status < 200 or status == 204:
        # no body; HAProxy drops the framing headers of a 204 (verified) and of interim responses
        if cl is not None or te is not None:
            head.headers = [h for h in head.headers if h[0] not in (b"content-length", b"transfer-encoding")]
        head.body = "none"
        return
    if te is not None:
        if not te or te[-1] != b"chunked":
            raise H1Error(502, "response transfer-encoding is not chunked")
        if cl is not None:
            remove_header(head.headers, b"content-length")
        head.body = "chunked"
    elif cl is not None:
        head.content_length = int(cl)
        head.body = "length"
    elif status == 304:
        head.body = "none"
    else:
        head.body = "close"


# ----------------------------------------------------------------------------------------------
# serialisation

_CRLF = b"\r\n"
_SEP = b": "
CONN_CLOSE = (b"connection", b"close")
CONN_KEEPALIVE = (b"connection", b"keep-alive")
LAST_CHUNK = b"0\r\n\r\n"


def request_head_bytes(head: RequestHead, keepalive: bool) -> bytes:
    """The head as sent to a server. `keepalive`: whether the proxy keeps the server connection.

    Names lower-case, values untouched, HTTP/2.0 and other versions sent as HTTP/1.1; a Connection
    header is added only where the version's default differs from the decision (HAProxy's rule).
    """
    parts = [head.method, b" ", head.target, b" HTTP/1.1\r\n" if head.version == 11 else b" HTTP/1.0\r\n"]
    for name, value in head.headers:
        parts += (name, _SEP, value, _CRLF)
    if head.version == 11:
        if not keepalive:
            parts.append(b"connection: close\r\n")
    elif keepalive:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(_CRLF)
    return b"".join(parts)


def response_head_bytes(head: ResponseHead, keepalive: bool, client_version: int) -> bytes:
    """The head as sent to the client. `keepalive`: whether the client connection stays open.

    The status line keeps the server's version; HAProxy says `connection: keep-alive` when either
    side speaks HTTP/1.0 and the connection stays, `connection: close` on an HTTP/1.1 response
    when it closes.
    """
    parts = [b"HTTP/1.1 " if head.version == 11 else b"HTTP/1.0 ", _status_bytes(head.status), b" ",
             head.reason, _CRLF]
    for name, value in head.headers:
        parts += (name, _SEP, value, _CRLF)
    if keepalive:
        if head.version == 10 or client_version == 10:
            parts.append(b"connection: keep-alive\r\n")
    elif head.version == 11:
        parts.append(b"connection: close\r\n")
    parts.append(_CRLF)
    return b"".join(parts)


_STATUS_CACHE: dict[int, bytes] = {}


def _status_bytes(status: int) -> bytes:
    b = _STATUS_CACHE.get(status)
    if b is None:
        b = _STATUS_CACHE[status] = b"%d" % status
    return b


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: Headers | None) -> bytes:
    """The terminating chunk, with trailers (lower-case names, as HAProxy forwards them)."""
    if not trailers:
        return LAST_CHUNK
    return b"0\r\n" + b"".join(n + _SEP + v + _CRLF for n, v in trailers) + _CRLF


# ----------------------------------------------------------------------------------------------
# X-Forwarded-For


def add_forwarded_for(headers: Headers, lname: bytes, client_ip: bytes, if_none: bool) -> None:
    """Append `lname: client_ip` as a new last line (HAProxy keeps an incoming one as an earlier line).

    With `if_none`, nothing is added when the header is already present.
    """
    if if_none:
        for n, _ in headers:
            if n == lname:
                return
    headers.append((lname, client_ip))


# ----------------------------------------------------------------------------------------------
# reasons and HAProxy's own pages

REASONS: dict[int, bytes] = {
    100: b"Continue", 101: b"Switching Protocols", 102: b"Processing", 103: b"Early Hints",
    200: b"OK", 201: b"Created", 202: b"Accepted", 203: b"Non-Authoritative Information", 204: b"No Content",
    205: b"Reset Content", 206: b"Partial Content", 207: b"Multi-Status", 210: b"Content Different",
    226: b"IM Used", 300: b"Multiple Choices", 301: b"Moved Permanently", 302: b"Found", 303: b"See Other",
    304: b"Not Modified", 305: b"Use Proxy", 307: b"Temporary Redirect", 308: b"Permanent Redirect",
    310: b"Too many Redirects", 400: b"Bad Request", 401: b"Unauthorized", 402: b"Payment Required",
    403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed", 406: b"Not Acceptable",
    407: b"Proxy Authentication Required", 408: b"Request Time-out", 409: b"Conflict", 410: b"Gone",
    411: b"Length Required", 412: b"Precondition Failed", 413: b"Request Entity Too Large",
    414: b"Request-URI Too Long", 415: b"Unsupported Media Type", 416: b"Requested range unsatisfiable",
    417: b"Expectation failed", 418: b"I'm a teapot", 421: b"Misdirected Request", 422: b"Unprocessable entity",
    423: b"Locked", 424: b"Method failure", 425: b"Too Early", 426: b"Upgrade Required",
    428: b"Precondition Required", 429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    449: b"Retry With", 450: b"Blocked by Windows Parental Controls", 451: b"Unavailable For Legal Reasons",
    456: b"Unrecoverable Error", 499: b"client has closed connection", 500: b"Internal Server Error",
    501: b"Not Implemented", 502: b"Bad Gateway or Proxy Error", 503: b"Service Unavailable",
    504: b"Gateway Time-out", 505: b"HTTP Version not supported", 506: b"Variant also negociate",
    507: b"Insufficient storage", 508: b"Loop detected", 509: b"Bandwidth Limit Exceeded",
    510: b"Not extended", 511: b"Network authentication required",
    520: b"Web server is returning an unknown error",
}
_CLASS_REASONS = {1: b"Informational", 2: b"Success", 3: b"Redirection", 4: b"Client Error", 5: b"Server Error"}


def reason(status: int) -> bytes:
    """HAProxy 2.6's reason phrase for a status it writes itself (http_get_reason)."""
    r = REASONS.get(status)
    if r is not None:
        return r
    return _CLASS_REASONS.get(status // 100, b"Other")


# (reason in the page's status line and <h1>, message line) — HAProxy 2.6.12's built-in pages
_PAGES: dict[int, tuple[bytes, bytes]] = {
    200: (b"OK", b"Service ready."),
    400: (b"Bad request", b"Your browser sent an invalid request."),
    401: (b"Unauthorized", b"You need a valid user and password to access this content."),
    403: (b"Forbidden", b"Request forbidden by administrative rules."),
    404: (b"Not Found", b"The resource could not be found."),
    405: (b"Method Not Allowed", b"A request was made of a resource using a request method not supported by that resource"),
    407: (b"Unauthorized", b"You need a valid user and password to access this content."),
    408: (b"Request Time-out", b"Your browser didn't send a complete request in time."),
    410: (b"Gone", b"The resource is no longer available and will not be available again."),
    413: (b"Payload Too Large", b"The request entity exceeds the maximum allowed."),
    421: (b"Misdirected Request", b"Request sent to a non-authoritative server."),
    422: (b"Unprocessable Content", b"The server cannot process the contained instructions."),
    425: (b"Too Early", b"Your browser sent early data."),
    429: (b"Too Many Requests", b"You have sent too many requests in a given amount of time."),
    500: (b"Internal Server Error", b"An internal server error occurred."),
    501: (b"Not Implemented", b".The server does not support the functionality required to fulfill the request."),
    502: (b"Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"Service Unavailable", b"No server is available to handle this request."),
    504: (b"Gateway Time-out", b"The server didn't respond in time."),
}


def has_builtin_page(status: int) -> bool:
    return status in _PAGES


def page_body(status: int) -> bytes:
    """The HTML body of HAProxy's built-in page for `status` (KeyError if it has none)."""
    rsn, msg = _PAGES[status]
    return b"<html><body><h1>%d %b</h1>\n%b\n</body></html>\n" % (status, rsn, msg)


def error_response(status: int) -> tuple[ResponseHead, bytes]:
    """A built-in page as the stream sends it (403, 502, 503, 504, deny ...): lower-case names, no
    Connection header of its own; the caller serialises it with the connection decision."""
    body = page_body(status)
    head = ResponseHead()
    head.status = status
    head.reason = _PAGES[status][0]
    head.headers = [(b"content-length", b"%d" % len(body)), (b"cache-control", b"no-cache"),
                    (b"content-type", b"text/html")]
    head.content_length = len(body)
    head.body = "length"
    return head, body


def raw_error(status: int) -> bytes:
    """An error the HTTP/1 layer writes before a stream exists (400, 408, 422, 501), byte for byte.

    Mixed-case names; only 400 and 408 carry `Connection: close`; the connection is closed after it.
    """
    body = page_body(status)
    rsn = _PAGES[status][0]
    conn = b"Connection: close\r\n" if status in (400, 408) else b""
    return (b"HTTP/1.1 %d %b\r\nContent-length: %d\r\nCache-Control: no-cache\r\n%bContent-Type: text/html\r\n\r\n"
            % (status, rsn, len(body), conn)) + body


RAW_400 = raw_error(400)
RAW_408 = raw_error(408)


def parse_errorfile(data: bytes) -> tuple[ResponseHead, bytes]:
    """An `errorfile`'s raw HTTP response, parsed the way HAProxy loads it at startup.

    HAProxy re-encodes the message (names lower-cased, Connection tokens consumed) and honours the
    file's own framing: without Content-Length the body runs to the end of the file and the response
    is close-delimited. Raises H1Error(500) when the file is not an HTTP response.
    """
    reader = ResponseReader(Limits(bufsize=1 << 20, maxhdr=1 << 10))
    reader.feed(data)
    reader.feed_eof()
    head = reader.next_event()
    if not isinstance(head, ResponseHead):
        raise H1Error(500, "errorfile is not a valid HTTP response")
    parts = []
    while (ev := reader.next_event()) is not None:
        if isinstance(ev, bytes):
            parts.append(ev)
    return head, b"".join(parts)
