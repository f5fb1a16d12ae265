"""Mutated request heads thrown at a live haproxy-py: every connection ends with valid HTTP responses
or a clean close, the process never dies, and a normal request right after is served."""

from __future__ import annotations

import os
import socket

import httptools
import pytest
from http_backends import Origin, Proxy, backend, free_port, frontend, raw_exchange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = [
    b"GET /a?b=c HTTP/1.1\r\nHost: example\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: y\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
]
# bytes that matter to HTTP framing
SPECIAL = [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b",", b"\x00", b"\x7f", b"\xff", b"0", b"9", b";",
           b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n",
           b"Connection: close\r\n", b"Host: other\r\n", b"\r\n\r\n", b"HTTP/1.1", b"HTTP/1.0", b"GET ",
           b"Content-Length: 99999999999999999999\r\n", b"Upgrade: websocket\r\n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 6))]
        elif op == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "duplicate":
            end = min(len(data), pos + draw(st.integers(1, 40)))
            data[pos:pos] = data[pos:end]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@pytest.fixture(scope="module")
def live():
    origin = Origin("s")
    port = free_port()
    cfg = ("global\n    maxconn 200\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
           "    timeout server 1s\n    timeout http-request 500ms\n\n"
           + frontend("fe", port, "be") + backend("be", [origin.addr]))
    proxy = Proxy(cfg, [port])
    yield port, proxy
    proxy.stop()
    origin.close()


def responses_are_valid(data: bytes, head_request: bool) -> bool:
    """All of `data` parses as complete HTTP/1.x responses (the last may lack the body of a HEAD)."""
    if not data:
        return True
    state = {"complete": 0, "begun": 0, "in_body": False}

    class Proto:
        def on_message_begin(self) -> None:
            state["begun"] += 1

        def on_headers_complete(self) -> None:
            state["in_body"] = True

        def on_message_complete(self) -> None:
            state["complete"] += 1
            state["in_body"] = False

    p = httptools.HttpResponseParser(Proto())
    try:
        p.feed_data(data)
    except httptools.HttpParserUpgrade:
        return True  # 101 then tunnel bytes
    except httptools.HttpParserError:
        return False
    if state["complete"] == state["begun"]:
        return True
    return head_request and state["in_body"]


def served(port: int) -> bool:
    out, _ = raw_exchange(port, b"GET /check HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", timeout=3.0)
    return out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"s\n")


@settings(max_examples=int(os.environ.get("HTTP_FUZZ_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=mutated())
def test_mutated_heads_end_cleanly_and_the_proxy_keeps_serving(live, payload):
    port, proxy = live
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    out = b""
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
    except socket.timeout:
        pytest.fail(f"connection neither answered nor closed within 3s: {payload!r} -> {out[:200]!r}")
    finally:
        s.close()
    assert responses_are_valid(out, b"HEAD" in payload), (payload, out[:300])
    assert proxy.alive(), proxy.log()
    assert "internal error" not in proxy.log(), proxy.log()[-3000:]
    assert served(port), proxy.log()[-2000:]
