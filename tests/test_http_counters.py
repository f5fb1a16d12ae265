"""The HTTP session in-process: what it counts for the stats (per frontend, backend and server), and
soft stop. Clients are blocking sockets run in threads; the runtime is the real `serve()`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from http_backends import Origin, free_port, raw_exchange, read_response

from haproxy_py.config.loader import load_text
from haproxy_py.runtime import http_session
from haproxy_py.runtime.listeners import bind_all
from haproxy_py.runtime.supervisor import Runtime, serve


@asynccontextmanager
async def running(cfg_text: str) -> AsyncIterator[Runtime]:
    config = load_text(cfg_text).config
    listeners = bind_all(config)
    async with trio.open_nursery() as nursery:
        rt = await nursery.start(lambda task_status: serve(config, listeners, handle_signals=False,
                                                             task_status=task_status))
        yield rt
        nursery.cancel_scope.cancel()


def cfg(port: int, servers: list[str], frontend: str = "") -> str:
    lines = ["defaults", "    mode http", "    timeout connect 1s", "    timeout client 5s", "    timeout server 5s",
             "frontend fe", f"    bind 127.0.0.1:{port}", frontend, "    default_backend be", "backend be",
             "    retries 0"]
    lines += [f"    server s{i} {addr}" for i, addr in enumerate(servers, 1)]
    return "\n".join(lines) + "\n"


def keepalive_requests(port: int, paths: list[str]) -> list[int]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    out = []
    for p in paths:
        s.sendall(f"GET {p} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        out.append(read_response(s)[0])
    s.close()
    return out


async def test_requests_responses_bytes_and_errors_are_counted():
    origin = Origin("s1", respond=lambda req: "close" if req.url == b"/boom" else None)
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr], "    http-request deny if { path /no }")) as rt:
            statuses = await trio.to_thread.run_sync(keepalive_requests, port, ["/a", "/b", "/no", "/c", "/boom"])
            bad, _ = await trio.to_thread.run_sync(raw_exchange, port, b"GET /x y HTTP/1.1\r\n\r\n")
            fe, be = rt.frontends["fe"].counters, rt.backends["be"].counters
            server = rt.backends["be"].servers[0]
    finally:
        origin.close()
    assert statuses == [200, 200, 403, 200, 502] and bad.startswith(b"HTTP/1.1 400")
    assert fe.requests_total == 5 and be.requests_total == 4  # the denied one never reached a backend
    assert fe.http_responses[2] == 3 and fe.http_responses[4] == 2 and fe.http_responses[5] == 1
    assert fe.denied_requests == 1 and fe.request_errors == 1
    assert be.http_responses[2] == 3 and be.http_responses[5] == 1
    # /boom went out on a reused connection that closed before answering: a GET is sent again on
    # a new connection (one more server session), then answered 502
    assert be.sessions_total == 4 and server.counters.sessions_total == 5
    assert be.response_errors == 1 and server.counters.response_errors == 1
    sent = sum(len(r.raw) for r in origin.requests)
    assert server.counters.bytes_in == sent and be.bytes_in == sent and fe.bytes_in == sent
    answered = 3 * len(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ns1\n")
    assert server.counters.bytes_out == answered and be.bytes_out == answered
    assert fe.bytes_out > answered  # the frontend also sent the 403 and the 502 pages
    assert server.counters.requests_total == 3 and server.counters.http_responses[2] == 3
    assert fe.current == 0 and be.current == 0


async def test_soft_stop_closes_idle_connections_and_tells_busy_ones():
    origin = Origin("s1")
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            idle = socket.create_connection(("127.0.0.1", port), timeout=5)
            busy = socket.create_connection(("127.0.0.1", port), timeout=5)
            for s in (idle, busy):
                s.sendall(b"GET /1 HTTP/1.1\r\n\r\n")
                assert (await trio.to_thread.run_sync(read_response, s))[0] == 200
            busy.sendall(b"GET /2 HTTP/1.1\r")  # a request on its way: not idle
            await trio.sleep(0.1)
            assert http_session.begin_soft_stop(rt) == 1
            assert await trio.to_thread.run_sync(idle.recv, 1) == b""  # closed without a word
            busy.sendall(b"\n\r\n")
            status, headers, _ = await trio.to_thread.run_sync(read_response, busy)
            assert status == 200 and (b"connection", b"close") in [(n.lower(), v) for n, v in headers]
            assert await trio.to_thread.run_sync(busy.recv, 1) == b""
            idle.close()
            busy.close()
    finally:
        http_session._STOPPING.discard(id(rt))
        origin.close()
