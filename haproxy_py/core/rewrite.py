"""`http-request` / `http-response` rules, compiled once per proxy into small action objects.

Pure: an action takes the transaction (`Txn`) and the header list it acts on and either edits the
headers in place or returns a `LocalReply` (deny, return, redirect) that ends rule processing.

Conditions are core.acl's compiled conditions, wrapped so that a rule's check is one call:
`rule.cond(txn) -> bool`. Values are log-format strings compiled by core.fetch: a constant costs
nothing per request, a `%[...]` one renders against the transaction's SampleContext, which is
built only when something asks for it (`Txn.sample()`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from haproxy_py.config.errors import Location
from haproxy_py.config.model import Condition as ConfigCondition
from haproxy_py.core.acl import AclSet
from haproxy_py.core.fetch import SampleContext, SampleError, compile_template
from haproxy_py.core.http1 import (
    Headers,
    RequestHead,
    ResponseHead,
    error_response,
    has_builtin_page,
    parse_errorfile,
    reason,
)


class Unsupported(Exception):
    """A rule this version cannot carry out; the message says which and why."""


class HttpView:
    """The transaction as core.fetch's HTTP fetches read it (its `HttpView` protocol)."""

    __slots__ = ("req", "res")

    def __init__(self, req: RequestHead, res: ResponseHead | None) -> None:
        self.req = req
        self.res = res

    @property
    def method(self) -> bytes:
        return self.req.method

    @property
    def uri(self) -> bytes:
        return self.req.target

    @property
    def version(self) -> bytes:
        return b"1.1" if self.req.version == 11 else b"1.0"

    @property
    def headers(self) -> Headers:
        return self.req.headers

    @property
    def status(self) -> int | None:
        return self.res.status if self.res is not None else None

    @property
    def res_headers(self) -> Headers | None:
        return self.res.headers if self.res is not None else None

    @property
    def res_version(self) -> bytes | None:
        if self.res is None:
            return None
        return b"1.1" if self.res.version == 11 else b"1.0"


class Txn:
    """One HTTP transaction as rules see it. `make_sample` builds the fetches' SampleContext the
    first time a condition or a dynamic value needs it."""

    __slots__ = ("req", "res", "_ctx", "_make")

    def __init__(self, req: RequestHead, make_sample: Callable[[Txn], SampleContext] | None = None) -> None:
        self.req = req
        self.res: ResponseHead | None = None
        self._ctx: SampleContext | None = None
        self._make = make_sample

    def sample(self) -> SampleContext:
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = (self._make(self) if self._make is not None
                                else SampleContext(http=HttpView(self.req, self.res)))
        return ctx

    def set_response(self, res: ResponseHead) -> None:
        self.res = res
        ctx = self._ctx
        if ctx is not None and isinstance(ctx.http, HttpView):
            ctx.http.res = res


Condition = Callable[[Txn], bool]
Value = Callable[[Txn], bytes]


class LocalReply:
    """A response the proxy makes itself. `close`: the reply itself requires closing the client
    connection (an errorfile that says so, or a close-delimited body)."""

    __slots__ = ("head", "body", "close", "kind")

    def __init__(self, head: ResponseHead, body: bytes, close: bool = False, kind: str = "return") -> None:
        self.head = head
        self.body = body
        self.close = close
        self.kind = kind  # "deny" | "return" | "redirect" | "error" | "monitor"


def compile_format(fmt: str) -> bytes | Value:
    """A log-format string as constant bytes, or a callable rendering it for a transaction."""
    try:
        tpl = compile_template(fmt)
    except SampleError as e:
        raise Unsupported(str(e)) from None
    if not tpl.dynamic:
        return b"".join(p for p in tpl.parts if isinstance(p, bytes))
    return lambda txn: tpl.render(txn.sample())


def compile_condition(acls: AclSet, cond: ConfigCondition, where: Location | None) -> Condition:
    """An `if`/`unless` condition as one call on the transaction (raises core.acl.AclError)."""
    compiled = acls.condition(cond, where)
    return lambda txn: compiled.match(txn.sample()) is True


def _value(v: bytes | Value, txn: Txn) -> bytes:
    return v if isinstance(v, bytes) else v(txn)


# ----------------------------------------------------------------------------------------------
# actions


class Action:
    """One compiled rule. `run` edits `headers` in place and returns None, or ends processing with a
    LocalReply, or returns ALLOW to stop evaluating this proxy's rules of the same family."""

    cond: Condition | None = None

    def run(self, txn: Txn, headers: Headers) -> LocalReply | object | None:  # pragma: no cover
        raise NotImplementedError


ALLOW = object()


class SetHeader(Action):
    def __init__(self, name: str, value: bytes | Value) -> None:
        self.lname = name.lower().encode("latin-1")
        self.value = value

    def run(self, txn: Txn, headers: Headers) -> None:
        v = _value(self.value, txn)  # evaluated before removal: the value may read the header
        lname = self.lname
        headers[:] = [h for h in headers if h[0] != lname]
        headers.append((lname, v))


class AddHeader(Action):
    def __init__(self, name: str, value: bytes | Value) -> None:
        self.lname = name.lower().encode("latin-1")
        self.value = value

    def run(self, txn: Txn, headers: Headers) -> None:
        headers.append((self.lname, _value(self.value, txn)))


class DelHeader(Action):
    """`del-header <name> [-m str|beg|end|sub|reg]` (names compared case-insensitively)."""

    def __init__(self, name: str, method: str = "str") -> None:
        low = name.lower().encode("latin-1")
        if method == "str":
            self.match: Callable[[bytes], bool] = lambda n: n == low
        elif method == "beg":
            self.match = lambda n: n.startswith(low)
        elif method == "end":
            self.match = lambda n: n.endswith(low)
        elif method == "sub":
            self.match = lambda n: low in n
        elif method == "reg":
            rx = re.compile(name.encode("latin-1"), re.IGNORECASE)
            self.match = lambda n: rx.search(n) is not None
        else:
            raise Unsupported(f"del-header matching method '-m {method}' is not supported")

    def run(self, txn: Txn, headers: Headers) -> None:
        match = self.match
        headers[:] = [h for h in headers if not match(h[0])]


class Allow(Action):
    def run(self, txn: Txn, headers: Headers) -> object:
        return ALLOW


class UseService(Action):
    """`http-request use-service <name>`: the HTTP session answers with the named service
    (`prometheus-exporter`: runtime.admin.prometheus_response); the reply only names it."""

    def __init__(self, name: str) -> None:
        self.cond = None
        self.name = name

    def run(self, txn: Txn, headers: Headers) -> object:
        return LocalReply(ResponseHead(), b"", kind="service:" + self.name)


class Reply(Action):
    """deny / return: a fixed or computed local response."""

    def __init__(self, kind: str, status: int, extra: list[tuple[bytes, bytes | Value]], content_type: bytes | None,
                 body: bytes | Value | None, errorfile: tuple[ResponseHead, bytes] | None,
                 page: Callable[[int], LocalReply] | None) -> None:
        self.kind = kind
        self.status = status
        self.extra = extra
        self.content_type = content_type
        self.body = body
        self.errorfile = errorfile
        self.page = page

    def run(self, txn: Txn, headers: Headers) -> LocalReply:
        if self.errorfile is not None:
            head, body = self.errorfile
            return _from_errorfile(head, body, self.kind)
        if self.body is None and self.page is not None:
            reply = self.page(self.status)
            reply.kind = self.kind
            return reply
        head = ResponseHead()
        head.status = self.status
        head.reason = reason(self.status)
        hdrs: Headers = [(n, _value(v, txn)) for n, v in self.extra]
        body = b"" if self.body is None else _value(self.body, txn)
        hdrs.append((b"content-length", b"%d" % len(body)))
        if self.content_type is not None:
            hdrs.append((b"content-type", self.content_type))
        head.headers = hdrs
        head.content_length = len(body)
        head.body = "length"
        return LocalReply(head, body, kind=self.kind)


class Redirect(Action):
    """`redirect location|prefix|scheme <x> [code] [drop-query] [append-slash] [set-cookie|clear-cookie]`.

    Output as HAProxy 2.6 writes it: content-length 0, location, cache-control for 302/303/307,
    then the cookie.
    """

    def __init__(self, kind: str, target: bytes | Value, code: int, drop_query: bool, append_slash: bool,
                 cookie: bytes | None) -> None:
        self.kind = kind
        self.target = target
        self.code = code
        self.drop_query = drop_query
        self.append_slash = append_slash
        self.cookie = cookie

    def run(self, txn: Txn, headers: Headers) -> LocalReply:
        req = txn.req
        if self.kind == "location":
            location = _value(self.target, txn)
        else:
            uri = req.target
            path, q, query = uri.partition(b"?")
            if self.append_slash and not path.endswith(b"/"):
                path += b"/"
            uri = path if self.drop_query or not q else path + b"?" + query
            if self.kind == "prefix":
                prefix = _value(self.target, txn)
                location = uri if prefix == b"/" else prefix + uri
            else:
                host = req.header("host") or b""
                location = _value(self.target, txn) + b"://" + host + uri
        head = ResponseHead()
        head.status = self.code
        head.reason = reason(self.code)
        hdrs: Headers = [(b"content-length", b"0"), (b"location", location)]
        if self.code in (302, 303, 307):
            hdrs.append((b"cache-control", b"no-cache"))
        if self.cookie is not None:
            hdrs.append((b"set-cookie", self.cookie))
        head.headers = hdrs
        head.content_length = 0
        head.body = "length"
        return LocalReply(head, b"", kind="redirect")


def _from_errorfile(head: ResponseHead, body: bytes, kind: str) -> LocalReply:
    """A fresh copy of a loaded errorfile response (the head is edited when sent)."""
    h = ResponseHead()
    h.status, h.reason, h.version = head.status, head.reason, head.version
    h.headers = list(head.headers)
    h.content_length, h.body = head.content_length, head.body
    h.wants_close, h.wants_keepalive = head.wants_close, head.wants_keepalive
    return LocalReply(h, body, close=not head.server_keepalive, kind=kind)


# ----------------------------------------------------------------------------------------------
# pages: built-in or errorfile


class ErrorPages:
    """A proxy's error responses: its `errorfile`s, else HAProxy's built-in pages."""

    def __init__(self, files: dict[int, tuple[ResponseHead, bytes]] | None = None) -> None:
        self.files = files or {}

    def reply(self, status: int) -> LocalReply:
        f = self.files.get(status)
        if f is not None:
            return _from_errorfile(f[0], f[1], "error")
        head, body = error_response(status)
        return LocalReply(head, body, kind="error")


def load_errorfile(path: str) -> tuple[ResponseHead, bytes]:
    """Read and parse an errorfile (raises OSError, or H1Error when it is not an HTTP response)."""
    with open(path, "rb") as f:
        return parse_errorfile(f.read())


# ----------------------------------------------------------------------------------------------
# compiling a proxy's rules

REQUEST_ACTIONS = frozenset({"set-header", "add-header", "del-header", "deny", "return", "redirect", "allow",
                             "use-service"})
RESPONSE_ACTIONS = frozenset({"set-header", "add-header", "del-header", "allow"})


def _opt(args: Sequence[str], i: int, what: str) -> str:
    if i >= len(args):
        raise Unsupported(f"'{what}' expects an argument")
    return args[i]


def _compile_reply(kind: str, args: Sequence[str], pages: Callable[[int], LocalReply],
                   errorfile_loader: Callable[[str], tuple[ResponseHead, bytes]]) -> Reply:
    status = 403 if kind == "deny" else 200
    extra: list[tuple[bytes, bytes | Value]] = []
    content_type: bytes | None = None
    body: bytes | Value | None = None
    errorfile = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("deny_status", "status"):
            status = int(_opt(args, i + 1, a))
            i += 2
        elif a == "content-type":
            content_type = _opt(args, i + 1, a).encode("latin-1")
            i += 2
        elif a == "string":
            body = _opt(args, i + 1, a).encode("latin-1")
            i += 2
        elif a == "lf-string":
            body = compile_format(_opt(args, i + 1, a))
            i += 2
        elif a == "file":
            with open(_opt(args, i + 1, a), "rb") as f:
                body = f.read()
            i += 2
        elif a == "errorfile":
            errorfile = errorfile_loader(_opt(args, i + 1, a))
            i += 2
        elif a == "hdr":
            name = _opt(args, i + 1, a).lower().encode("latin-1")
            extra.append((name, compile_format(_opt(args, i + 2, a))))
            i += 3
        elif a == "default-errorfiles":
            i += 1
        else:
            raise Unsupported(f"'{kind}' option '{a}' is not available in this version of haproxy-py")
    if kind == "deny" and body is None and errorfile is None and not has_builtin_page(status):
        raise Unsupported(f"no error page for status {status}")
    page = pages if kind == "deny" or "default-errorfiles" in args else None
    return Reply(kind, status, extra, content_type, body, errorfile, page)


def _compile_redirect(args: Sequence[str]) -> Redirect:
    kind = args[0]
    target = compile_format(_opt(args, 1, "redirect"))
    code = 302
    drop_query = append_slash = False
    cookie: bytes | None = None
    i = 2
    while i < len(args):
        a = args[i]
        if a == "code":
            code = int(_opt(args, i + 1, a))
            i += 2
        elif a == "drop-query":
            drop_query = True
            i += 1
        elif a == "append-slash":
            append_slash = True
            i += 1
        elif a == "set-cookie":
            cookie = _opt(args, i + 1, a).encode("latin-1") + b"; path=/;"
            i += 2
        elif a == "clear-cookie":
            name = _opt(args, i + 1, a).encode("latin-1").rstrip(b"=")
            cookie = name + b"; path=/; Max-Age=0;"
            i += 2
        else:
            raise Unsupported(f"'redirect' option '{a}' is not available in this version of haproxy-py")
    return Redirect(kind, target, code, drop_query, append_slash, cookie)


def compile_rule(family: str, action: str, args: Sequence[str], pages: Callable[[int], LocalReply],
                 errorfile_loader: Callable[[str], tuple[ResponseHead, bytes]] = load_errorfile) -> Action:
    """One rule's action (without its condition). Raises Unsupported for what is not implemented."""
    allowed = REQUEST_ACTIONS if family == "http-request" else RESPONSE_ACTIONS if family == "http-response" else ()
    if action not in allowed:
        raise Unsupported(f"'{family} {action}' rules are not available in this version of haproxy-py")
    if action == "set-header":
        return SetHeader(args[0], compile_format(args[1]))
    if action == "add-header":
        return AddHeader(args[0], compile_format(args[1]))
    if action == "del-header":
        method = "str"
        if len(args) >= 3 and args[1] == "-m":
            method = args[2]
        return DelHeader(args[0], method)
    if action == "allow":
        return Allow()
    if action == "use-service":
        return UseService(args[0])
    if action in ("deny", "return"):
        return _compile_reply(action, args, pages, errorfile_loader)
    return _compile_redirect(args)


def compile_rules(rules: Sequence, acls: AclSet, pages: Callable[[int], LocalReply],
                  errorfile_loader: Callable[[str], tuple[ResponseHead, bytes]] = load_errorfile) -> list[Action]:
    """A proxy's `http-request` or `http-response` rules (config.model.Rule), with conditions.

    Raises Unsupported, core.acl.AclError, OSError (a payload file) or H1Error (a bad errorfile).
    """
    out = []
    for rule in rules:
        action = compile_rule(rule.family, rule.action, rule.args, pages, errorfile_loader)
        if rule.cond is not None:
            action.cond = compile_condition(acls, rule.cond, rule.where)
        out.append(action)
    return out


def run_rules(rules: Sequence[Action], txn: Txn, headers: Headers) -> LocalReply | None:
    """Evaluate rules in order; the first reply ends processing, `allow` ends it without one."""
    for rule in rules:
        cond = rule.cond
        if cond is not None and not cond(txn):
            continue
        out = rule.run(txn, headers)
        if out is None:
            continue
        if out is ALLOW:
            return None
        assert isinstance(out, LocalReply)
        return out
    return None
