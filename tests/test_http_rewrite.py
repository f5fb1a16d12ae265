"""core/rewrite.py: http-request / http-response rules compiled from real config lines.

Expected bytes are HAProxy 2.6.12's (captured on loopback; tests/test_http_session.py checks them
end to end)."""

from __future__ import annotations

import pytest

from haproxy_py.config.loader import load_text
from haproxy_py.core.acl import AclSet
from haproxy_py.core.http1 import RequestHead, RequestReader, ResponseHead, response_head_bytes
from haproxy_py.core.rewrite import (
    ErrorPages,
    HttpView,
    LocalReply,
    Txn,
    Unsupported,
    compile_rules,
    run_rules,
)


def proxy(lines: str):
    text = f"defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:1\n{lines}\n"
    return load_text(text).config.proxies[-1]


def request(raw: bytes = b"GET /a/b?q=1 HTTP/1.1\r\nHost: x:8080\r\nX-Del: 1\r\nX-Keep: 2\r\n\r\n") -> RequestHead:
    r = RequestReader()
    r.feed(raw)
    head = r.next_event()
    assert isinstance(head, RequestHead)
    return head


def run(lines: str, req: RequestHead | None = None) -> tuple[RequestHead, LocalReply | None]:
    px = proxy(lines)
    pages = ErrorPages()
    rules = compile_rules(px.http_request_rules, AclSet(px.acls), pages.reply)
    req = req or request()
    reply = run_rules(rules, Txn(req), req.headers)
    return req, reply


def wire(reply: LocalReply, keep: bool = True) -> bytes:
    return response_head_bytes(reply.head, keep, 11) + reply.body


def test_set_header_replaces_every_occurrence_at_the_end():
    req, _ = run("    http-request set-header X-Keep new")
    assert req.headers[-1] == (b"x-keep", b"new")
    assert [v for n, v in req.headers if n == b"x-keep"] == [b"new"]


def test_add_header_appends_and_del_header_removes_all():
    req, _ = run("    http-request add-header X-Keep more\n    http-request del-header x-del")
    assert req.headers == [(b"host", b"x:8080"), (b"x-keep", b"2"), (b"x-keep", b"more")]


@pytest.mark.parametrize("method,name,gone", [
    ("beg", "x-d", [b"x-del"]),
    ("end", "eep", [b"x-keep"]),
    ("sub", "-", [b"x-del", b"x-keep"]),
    ("reg", "^x-(del|keep)$", [b"x-del", b"x-keep"]),
])
def test_del_header_matching_methods(method, name, gone):
    req, _ = run(f"    http-request del-header {name} -m {method}")
    assert all(n not in gone for n, _ in req.headers)


def test_values_are_log_format_strings():
    req, _ = run("    http-request set-header X-P %[path]\n    http-request set-header X-H %[req.hdr(host)]")
    assert req.header("x-p") == b"/a/b" and req.header("x-h") == b"x:8080"


def test_deny_is_the_builtin_403():
    _, reply = run("    http-request deny")
    assert reply is not None and reply.kind == "deny"
    assert wire(reply) == (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
                           b"content-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest forbidden "
                           b"by administrative rules.\n</body></html>\n")


def test_deny_with_status_and_payload():
    _, reply = run("    http-request deny deny_status 429")
    assert wire(reply).startswith(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\n")
    _, reply = run("    http-request deny content-type text/plain string nope hdr X-Y z")
    assert wire(reply) == (b"HTTP/1.1 403 Forbidden\r\nx-y: z\r\ncontent-length: 4\r\ncontent-type: text/plain"
                           b"\r\n\r\nnope")


def test_return_defaults_and_payload():
    _, reply = run("    http-request return")
    assert wire(reply) == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    _, reply = run("    http-request return status 502")
    assert wire(reply) == b"HTTP/1.1 502 Bad Gateway or Proxy Error\r\ncontent-length: 0\r\n\r\n"
    _, reply = run("    http-request return status 200 content-type text/plain string hello hdr X-A b")
    assert wire(reply) == (b"HTTP/1.1 200 OK\r\nx-a: b\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\n"
                           b"hello")


def test_return_file(tmp_path):
    f = tmp_path / "body.txt"
    f.write_bytes(b"hello file\n")
    _, reply = run(f"    http-request return status 404 content-type text/plain file {f}")
    assert wire(reply) == (b"HTTP/1.1 404 Not Found\r\ncontent-length: 11\r\ncontent-type: text/plain\r\n\r\n"
                           b"hello file\n")


@pytest.mark.parametrize("rule,location,extra", [
    ("redirect location /foo", b"/foo", b"cache-control: no-cache\r\n"),
    ("redirect location /foo code 301", b"/foo", b""),
    ("redirect location /foo code 308", b"/foo", b""),
    ("redirect prefix /pre code 301", b"/pre/a/b?q=1", b""),
    ("redirect prefix / code 303", b"/a/b?q=1", b"cache-control: no-cache\r\n"),
    ("redirect prefix /p/ code 307 drop-query", b"/p//a/b", b"cache-control: no-cache\r\n"),
    ("redirect prefix /p drop-query append-slash", b"/p/a/b/", b"cache-control: no-cache\r\n"),
    ("redirect scheme https", b"https://x:8080/a/b?q=1", b"cache-control: no-cache\r\n"),
    ("redirect location /loc append-slash drop-query", b"/loc", b"cache-control: no-cache\r\n"),
])
def test_redirects(rule, location, extra):
    _, reply = run(f"    http-request {rule}")
    code = int(rule.split("code ")[1].split()[0]) if "code " in rule else 302
    assert reply.head.status == code
    assert wire(reply).split(b"\r\n", 1)[1] == b"content-length: 0\r\nlocation: " + location + b"\r\n" + extra + b"\r\n"


def test_redirect_cookie_last_one_wins():
    _, reply = run("    http-request redirect location /x set-cookie FOO=bar clear-cookie BAZ")
    assert reply.head.headers[-1] == (b"set-cookie", b"BAZ; path=/; Max-Age=0;")


def test_the_first_reply_ends_processing_and_allow_stops_quietly():
    req, reply = run("    http-request add-header X-A 1\n    http-request deny\n    http-request add-header X-B 2")
    assert reply.kind == "deny" and req.header("x-a") == b"1" and req.header("x-b") is None
    req, reply = run("    http-request allow\n    http-request deny")
    assert reply is None


def test_conditions_decide_per_request():
    lines = ("    acl api path_beg /api\n    http-request deny if api\n"
             "    http-request set-header X-Ver 1.0 if { req.ver 1.0 }\n"
             "    http-request set-header X-Not-Api yes unless api")
    _, reply = run(lines, request(b"GET /api/x HTTP/1.1\r\n\r\n"))
    assert reply is not None and reply.kind == "deny"
    req, reply = run(lines, request(b"GET /web HTTP/1.0\r\n\r\n"))
    assert reply is None and req.header("x-ver") == b"1.0" and req.header("x-not-api") == b"yes"


def test_response_rules_see_the_response():
    px = proxy("    http-response set-header X-Status %[status]\n    http-response del-header server\n"
               "    http-response add-header X-Err 1 if { status ge 500 }")
    rules = compile_rules(px.http_response_rules, AclSet(px.acls), ErrorPages().reply)
    for status, err in ((200, None), (503, b"1")):
        res = ResponseHead()
        res.status, res.headers = status, [(b"server", b"x"), (b"content-length", b"0")]
        txn = Txn(request())
        txn.set_response(res)
        run_rules(rules, txn, res.headers)
        assert res.headers[0] == (b"content-length", b"0")
        assert [v for n, v in res.headers if n == b"x-status"] == [b"%d" % status]
        assert [v for n, v in res.headers if n == b"x-err"] == ([err] if err else [])


def test_unsupported_actions_are_refused_by_name():
    px = proxy("    http-request set-path /x")
    with pytest.raises(Unsupported, match="set-path"):
        compile_rules(px.http_request_rules, AclSet(px.acls), ErrorPages().reply)


def test_http_view_gives_fetches_both_messages():
    req = request()
    view = HttpView(req, None)
    assert (view.method, view.uri, view.version, view.status, view.res_headers) == (b"GET", b"/a/b?q=1", b"1.1",
                                                                                   None, None)
