"""core/probe.py: the bytes a check sends and how answers are judged.

Every expected request below was recorded from HAProxy 2.6 with a server that logs the first bytes
of each connection; the `option httpchk`/`http-check` lines are the ones that produced it.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haproxy_py.config.loader import load
from haproxy_py.config.model import Proxy
from haproxy_py.core import probe
from haproxy_py.core.health import CheckOutcome


def backend(lines: str) -> Proxy:
    text = ("defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"
            "backend be\n" + "".join(f"    {ln}\n" for ln in lines.strip().splitlines())
            + "    server s1 127.0.0.1:8000 check\n")
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(text)
    try:
        cfg = load([f.name], env={}, resolve=False).config
    finally:
        os.unlink(f.name)
    px = cfg.backend("be")
    assert px is not None
    return px


def request_of(lines: str) -> bytes:
    return probe.build_plan(backend(lines)).request


@pytest.mark.parametrize(
    "lines, wire",
    [
        ("option httpchk", b"OPTIONS / HTTP/1.0\r\n\r\n"),
        ("option httpchk /only-uri", b"OPTIONS /only-uri HTTP/1.0\r\n\r\n"),
        ("option httpchk GET /x", b"GET /x HTTP/1.0\r\n\r\n"),
        ("option httpchk HEAD /heartbeat.html", b"HEAD /heartbeat.html HTTP/1.0\r\n\r\n"),
        (r"option httpchk HEAD /health HTTP/1.1\r\nHost:\ www.example.com",
         b"HEAD /health HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n"),
        (r"option httpchk GET /x HTTP/1.1\r\nHost:\ a\r\nX-Y:\ z\r\n\r\nbodytext",
         b"GET /x HTTP/1.1\r\nhost: a\r\nx-y: z\r\ncontent-length: 8\r\nconnection: close\r\n\r\nbodytext"),
        ("option httpchk\nhttp-check send meth GET uri /ready ver HTTP/1.1 hdr Host app.local hdr User-Agent hc",
         b"GET /ready HTTP/1.1\r\nhost: app.local\r\nuser-agent: hc\r\nconnection: close\r\n\r\n"),
        ("option httpchk POST /p HTTP/1.1\nhttp-check send body hello",
         b"POST /p HTTP/1.1\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"),
        ("option httpchk PUT /x HTTP/1.1", b"PUT /x HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        ("option httpchk PUT /x HTTP/1.0", b"PUT /x HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
        ("option httpchk DELETE /x HTTP/1.1", b"DELETE /x HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("option httpchk TRACE /x HTTP/1.1", b"TRACE /x HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        ("option httpchk get /x http/1.1", b"get /x HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        ("option httpchk GET /x HTTP/2.0", b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("option httpchk OPTIONS * HTTP/1.1", b"OPTIONS * HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.0\nhttp-check send body abc",
         b"GET /x HTTP/1.0\r\ncontent-length: 3\r\n\r\nabc"),
        ("option httpchk GET /x HTTP/1.0\nhttp-check send hdr X-A b", b"GET /x HTTP/1.0\r\nx-a: b\r\n\r\n"),
        ("option httpchk HEAD /x HTTP/1.1\nhttp-check send body zz",
         b"HEAD /x HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nzz"),
        # Connection headers: the value implied by the version is dropped, and none is added
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Connection keep-alive", b"GET /x HTTP/1.1\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Connection Keep-Alive", b"GET /x HTTP/1.1\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Connection close",
         b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.0\nhttp-check send hdr Connection close", b"GET /x HTTP/1.0\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.0\nhttp-check send hdr Connection keep-alive",
         b"GET /x HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"),
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Connection upgrade",
         b"GET /x HTTP/1.1\r\nconnection: upgrade\r\n\r\n"),
        # the body is framed by HAProxy: given Content-Length / Transfer-Encoding are replaced
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Content-Length 3 body abcd",
         b"GET /x HTTP/1.1\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd"),
        ("option httpchk GET /x HTTP/1.1\nhttp-check send hdr Transfer-Encoding chunked body abc",
         b"GET /x HTTP/1.1\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc"),
        ('option httpchk GET /x HTTP/1.1\nhttp-check send hdr Host a hdr X-Dup b hdr x-dup c hdr X-Multi "a, b"',
         b"GET /x HTTP/1.1\r\nhost: a\r\nx-dup: b\r\nx-dup: c\r\nx-multi: a, b\r\nconnection: close\r\n\r\n"),
        ("option httpchk GET http://h.example/x?y HTTP/1.1",
         b"GET http://h.example/x?y HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("option httpchk GET /x\nhttp-check send ver HTTP/1.1", b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n"),
    ],
)
def test_http_request_bytes_match_haproxy(lines: str, wire: bytes) -> None:
    assert request_of(lines) == wire


def test_plan_kinds() -> None:
    assert probe.build_plan(backend("balance roundrobin")).kind == "connect"
    # http-check rules without `option httpchk` are ignored by HAProxy (a plain TCP check)
    assert probe.build_plan(backend("http-check send meth GET uri /r")).kind == "connect"
    plan = probe.build_plan(backend("option tcp-check"))
    assert plan.kind == "tcp-check" and plan.steps == () and plan.implicit_connect


def test_tcp_check_steps_count_comments_and_inherit_them() -> None:
    plan = probe.build_plan(backend(r"""
option tcp-check
tcp-check comment "first step"
tcp-check send PING\r\n
tcp-check comment "hello step"
tcp-check expect string +PONG
tcp-check send-binary 50494e47
tcp-check expect ! rstring ^-ERR comment own
tcp-check connect port 6379
"""))
    assert [(s.step, s.action) for s in plan.steps] == [(2, "send"), (4, "expect"), (5, "send"), (6, "expect"),
                                                          (7, "connect")]
    assert plan.steps[0].comment == "first step" and plan.steps[0].data == b"PING\r\n"
    assert plan.steps[1].expect is not None and plan.steps[1].expect.comment == "hello step"
    assert plan.steps[2].data == b"PING"
    assert plan.steps[3].expect is not None and plan.steps[3].expect.negate and plan.steps[3].comment == "own"
    assert plan.steps[4].port == 6379
    assert plan.implicit_connect


# ---------------------------------------------------------------------------------------------
# HTTP responses


def head(raw: bytes) -> probe.ResponseHead:
    h = probe.parse_head(raw)
    assert h is not None
    return h


def test_parse_head_incomplete_complete_and_garbage() -> None:
    assert probe.parse_head(b"HTTP/1.1 200 OK\r\nContent-Le") is None
    h = head(b"HTTP/1.1 404 File not found\r\nContent-Length: 0\r\n\r\n")
    assert (h.code, h.reason, h.header("content-length")) == (404, "File not found", "0")
    assert head(b"HTTP/1.1 200\r\n\r\n").reason == ""
    assert head(b"HTTP/1.0 200 OK\n\nbody").body_start == len(b"HTTP/1.0 200 OK\n\n")
    with pytest.raises(probe.InvalidResponse):
        probe.parse_head(b"garbage\r\n\r\n")
    with pytest.raises(probe.InvalidResponse):
        probe.parse_head(b"+PONG\r\n")
    with pytest.raises(probe.InvalidResponse):
        probe.parse_head(b"HTTP/1.1 20 OK\r\n\r\n")
    for bad in (b"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n", b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", b"HTTP/1.1 200 OK\r\n: x\r\n\r\n"):
        with pytest.raises(probe.InvalidResponse):
            probe.parse_head(bad)
    assert head(b"HTTP/1.1 200 OK\r\nA:\r\nB: c: d\r\n\r\n").headers == (("a", ""), ("b", "c: d"))


def judged_the_long_way(raw: bytes) -> CheckOutcome | str | None:
    try:
        h = probe.parse_head(raw)
    except probe.InvalidResponse:
        return "invalid"
    return None if h is None else probe.judge_http(h, b"", ())


@pytest.mark.parametrize(
    "raw, outcome",
    [
        (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
         CheckOutcome("L7OK", 200)),
        (b"HTTP/1.0 302\r\n\r\nbody", CheckOutcome("L7OK", 302)),
        (b"HTTP/1.1 399 x\r\n\r\n", CheckOutcome("L7OK", 399)),
        (b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\n", CheckOutcome("L7STS", 503, "Service Unavailable")),
        (b"HTTP/1.1 404 \r\n\r\n", CheckOutcome("L7STS", 404, "")),
        (b"HTTP/1.1 199 Early\r\n\r\n", CheckOutcome("L7STS", 199, "Early")),
        (b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n", CheckOutcome("L7OK", 200)),
        # left to the general path: incomplete, bare LF, odd status lines, bad header lines
        (b"HTTP/1.1 200 OK\r\nContent-Le", None),
        (b"HTTP/1.1 200 OK\nA: b\n\n", None),
        (b"HTTP/1.1 200 O\rK\r\n\r\n", None),
        (b"HTTP/1.1 2000 OK\r\n\r\n", None),
        (b"HTTP/1.1 200OK\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", None),
        (b"+PONG\r\n", None),
    ],
)
def test_judge_plain_head(raw: bytes, outcome: CheckOutcome | None) -> None:
    assert probe.judge_plain_head(raw) == outcome
    if outcome is not None:
        assert judged_the_long_way(raw) == outcome


_HEAD_PIECES = [b"HTTP/1.1 ", b"HTTP/1.0 ", b"HTTP/2.0 ", b"200", b"302", b"404", b"99", b"1000", b" OK", b" ",
                b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\n", b"Name: value", b"Name : value", b"X:", b":x",
                b"\t", b"a", b"\xff", b"\x00", b"\x0b"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_HEAD_PIECES), min_size=1, max_size=12), st.booleans())
def test_judge_plain_head_never_disagrees_with_the_general_path(pieces: list[bytes], status_first: bool) -> None:
    raw = (b"HTTP/1.1 200 OK\r\n" if status_first else b"") + b"".join(pieces)
    quick = probe.judge_plain_head(raw)
    if quick is not None:
        assert judged_the_long_way(raw) == quick


def expects(*rules: str) -> tuple[probe.Expect, ...]:
    return tuple(probe.parse_expect(tuple(r.split())) for r in rules)


@pytest.mark.parametrize(
    "raw, rules, outcome",
    [
        # no expect rule: 2xx and 3xx pass, anything else is L7STS with the reason phrase
        (b"HTTP/1.1 200 OK\r\n\r\n", (), CheckOutcome("L7OK", 200)),
        (b"HTTP/1.1 302 Found\r\n\r\n", (), CheckOutcome("L7OK", 302)),
        (b"HTTP/1.1 404 File not found\r\n\r\n", (), CheckOutcome("L7STS", 404, "File not found")),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", (), CheckOutcome("L7STS", 503, "Service Unavailable")),
        (b"HTTP/1.1 101 Switching\r\n\r\n", (), CheckOutcome("L7STS", 101, "Switching")),
        # expect status / rstatus, with lists, ranges and negation
        (b"HTTP/1.1 302 Found\r\n\r\n", ("status 200",), CheckOutcome("L7STS", 302, "Found")),
        (b"HTTP/1.1 302 Found\r\n\r\n", ("status 200,302",), CheckOutcome("L7OK", 302)),
        (b"HTTP/1.1 301 Moved\r\n\r\n", ("status 200,302",), CheckOutcome("L7STS", 301, "Moved")),
        (b"HTTP/1.1 201 Created\r\n\r\n", ("status 200-299",), CheckOutcome("L7OK", 201)),
        (b"HTTP/1.1 200 OK\r\n\r\n", ("! status 200",), CheckOutcome("L7STS", 200, "OK")),
        (b"HTTP/1.1 500 Bad\r\n\r\n", ("! status 200",), CheckOutcome("L7OK", 500)),
        (b"HTTP/1.1 204 No Content\r\n\r\n", ("rstatus ^2",), CheckOutcome("L7OK", 204)),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", ("rstatus ^2",), CheckOutcome("L7STS", 404, "Not Found")),
        (b"HTTP/1.1 200\r\n\r\n", ("status 201",), CheckOutcome("L7STS", 200, "")),
    ],
)
def test_judge_status(raw: bytes, rules: tuple[str, ...], outcome: CheckOutcome) -> None:
    assert probe.judge_http(head(raw), b"", expects(*rules)) == outcome


@pytest.mark.parametrize(
    "body, rules, outcome",
    [
        (b"hello world", ("string world",), CheckOutcome("L7OK", 200)),
        (b"hello earth", ("string world",), CheckOutcome("L7RSP", 200, "HTTP content check did not match")),
        (b"hello world", ("rstring wor.d",), CheckOutcome("L7OK", 200)),
        (b"no length body here", ("rstring wor.d",), CheckOutcome("L7RSP", 200, "HTTP content check did not match")),
        (b"error", ("! string error",), CheckOutcome("L7RSP", 200, "HTTP check matched unwanted content")),
        (b"ok", ("! string error",), CheckOutcome("L7OK", 200)),
        # every rule must match; the first failure is reported
        (b"hello world", ("status 200-299", "string world"), CheckOutcome("L7OK", 200)),
        (b"hello earth", ("status 200-299", "string world"),
         CheckOutcome("L7RSP", 200, "HTTP content check did not match")),
    ],
)
def test_judge_body(body: bytes, rules: tuple[str, ...], outcome: CheckOutcome) -> None:
    assert probe.judge_http(head(b"HTTP/1.1 200 OK\r\n\r\n"), body, expects(*rules)) == outcome


def test_expect_without_status_rule_ignores_the_status() -> None:
    # `http-check expect ! string error` with a 500 answering "ok" passes (seen on 2.6)
    assert probe.judge_http(head(b"HTTP/1.1 500 Bad\r\n\r\n"), b"ok", expects("! string error")) == (
        CheckOutcome("L7OK", 500))


def test_expect_comment_is_appended() -> None:
    exp = (probe.parse_expect(("status", "200", "comment", "needs 200")),)
    assert probe.judge_http(head(b"HTTP/1.1 503 Down\r\n\r\n"), b"", exp).desc == "Down comment: needs 200"


def test_expect_header() -> None:
    h = head(b"HTTP/1.1 200 OK\r\nX-State: ready, warm\r\n\r\n")
    assert probe.judge_http(h, b"", expects("hdr name x-state value ready")).status == "L7OK"
    assert probe.judge_http(h, b"", expects("hdr name x-other")).status == "L7STS"


@pytest.mark.parametrize(
    "raw, eof, head_request, limit, expected",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", False, False, 16384, None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello+junk", False, False, 16384, b"hello"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", True, False, 16384, b"hel"),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil close", False, False, 16384, None),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil close", True, False, 16384, b"until close"),
        (b"HTTP/1.1 200 OK\r\n\r\n0123456789", False, False, 4, b"0123"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", False, False,
         16384, b"hello world"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", False, False, 16384, None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", False, True, 16384, b""),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False, False, 16384, b""),
    ],
)
def test_body_complete(raw: bytes, eof: bool, head_request: bool, limit: int, expected: bytes | None) -> None:
    assert probe.body_complete(head(raw), raw, eof, head_request, limit) == expected


# ---------------------------------------------------------------------------------------------
# tcp-check expect


def tcp_step(rule: str, step: int = 2) -> probe.TcpStep:
    exp = probe.parse_expect(tuple(rule.split()), step)
    return probe.TcpStep(step, "expect", expect=exp, comment=exp.comment)


@pytest.mark.parametrize(
    "rule, data, eof, result",
    [
        ("string +PONG", b"+PONG\r\n", False, None),
        ("string +PONG", b"+PO", False, "more"),
        ("string +PONG", b"+PO", True, "TCPCHK did not match content '+PONG' at step 2"),
        ("string +PONG", b"", True, "TCPCHK got an empty response at step 2"),
        ("string +PONG", b"", False, "more"),
        ("rstring ^\\+PO.G", b"-ERR\r\n", True, "TCPCHK did not match content (regex) at step 2"),
        ("binary 2b504f4e47", b"-ERR\r\n", True, "TCPCHK did not match content (binary) at step 2"),
        ("binary 2b504f4e47", b"+PONG", False, None),
        ("! string -ERR", b"-ERR\r\n", False, "TCPCHK matched unwanted content '-ERR' at step 2"),
        ("! rstring ^-ERR", b"-ERR\r\n", False, "TCPCHK matched unwanted content (regex) at step 2"),
        ("! binary 2b504f4e47", b"+PONG\r\n", False, "TCPCHK matched unwanted content (binary) at step 2"),
        # a negated rule that does not match waits for more data, as HAProxy does, until the end
        ("! string -ERR", b"+PONG\r\n", False, "more"),
        ("! string -ERR", b"+PONG\r\n", True, None),
        ("string +HELLO comment hello-step", b"HELLO", True,
         "TCPCHK did not match content '+HELLO' at step 2 comment: hello-step"),
    ],
)
def test_judge_tcp_expect(rule: str, data: bytes, eof: bool, result: str | None) -> None:
    step = tcp_step(rule)
    if result == "more":
        with pytest.raises(probe.NeedMore):
            probe.judge_expect(step, data, eof, 16384)
        return
    got = probe.judge_expect(step, data, eof, 16384)
    if result is None:
        assert got is None
    else:
        assert got == CheckOutcome("L7RSP", 0, result)


def test_tcp_expect_gives_up_waiting_at_the_buffer_limit() -> None:
    got = probe.judge_expect(tcp_step("string +PONG"), b"x" * 10, False, 10)
    assert got is not None and got.status == "L7RSP"


def test_step_info_wording() -> None:
    plan = probe.build_plan(backend(r"""
option tcp-check
tcp-check connect port 7
tcp-check send PING\r\n
tcp-check expect string +PONG
tcp-check expect binary 2b504f4e47
"""))
    assert probe.step_info(plan, None) == " at initial connection step of tcp-check"
    assert probe.step_info(plan, plan.steps[0]) == " at step 1 of tcp-check (connect port 7)"
    assert probe.step_info(plan, plan.steps[1]) == " at step 2 of tcp-check (send)"
    assert probe.step_info(plan, plan.steps[2]) == " at step 3 of tcp-check (expect string '+PONG')"
    assert probe.step_info(plan, plan.steps[3]) == " at step 4 of tcp-check (expect binary '+PONG')"
    http = probe.build_plan(backend("option httpchk"))
    assert probe.step_info(http, None) == ""
