"""The keep-alive fast path (runtime/http_fastpath.py): what it serves behaves as the session task
would, and what it cannot serve goes back to the task. The runtime is the real `serve()`; clients
are blocking sockets in threads; origins are real servers on loopback."""

from __future__ import annotations

import csv as csv_module
import io
import select
import socket
import struct
import threading
import time

import pytest
import trio
from http_backends import Origin, free_port, read_head, read_response, text_response
from test_http_counters import running

from haproxy_py import log
from haproxy_py.config.loader import load_text
from haproxy_py.core import stats
from haproxy_py.runtime import http_fastpath


def cfg(port: int, servers: list[str], defaults: str = "") -> str:
    lines = ["defaults", "    mode http", "    timeout connect 1s", "    timeout client 5s", "    timeout server 5s",
             defaults, "frontend fe", f"    bind 127.0.0.1:{port}", "    default_backend be", "backend be"]
    lines += [f"    server s{i} {addr}" for i, addr in enumerate(servers, 1)]
    return "\n".join(lines) + "\n"


def exchange(s: socket.socket, path: str) -> tuple[int, bytes]:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    status, _, body = read_response(s)
    return status, body


def session(port: int, paths: list[str]) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return [exchange(s, p) for p in paths]


def by_path(req) -> bytes:  # type: ignore[no-untyped-def]
    return text_response(req.url)


async def test_keepalive_requests_after_the_first_are_served_here_and_counted() -> None:
    origin = Origin("s1", respond=by_path)
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            fast = http_fastpath.current()
            assert fast is not None
            got = await trio.to_thread.run_sync(session, port, [f"/{i}" for i in range(10)])
            fe, be = rt.frontends["fe"].counters, rt.backends["be"].counters
            server = rt.backends["be"].servers[0]
            assert got == [(200, f"/{i}".encode()) for i in range(10)]
            assert fast.served == 9  # the first request of a connection never reuses (http-reuse safe)
            assert len(fast._timers) <= 2  # deadlines that move later do not pile up in the heap
            assert origin.accepted == 1
            assert fe.requests_total == 10 and be.requests_total == 10 and fe.http_responses[2] == 10
            assert server.counters.sessions_total == 10 and server.served == 0 and be.current == 0
            answered = sum(len(text_response(f"/{i}".encode())) for i in range(10))
            assert server.counters.bytes_out == answered and be.bytes_out == answered
            assert server.counters.bytes_in == sum(len(r.raw) for r in origin.requests)
    finally:
        origin.close()


async def test_an_idle_server_connection_the_server_closed_is_not_used() -> None:
    # the origin closes each connection right after answering, without saying so
    origin = Origin("s1", respond=lambda req: (text_response(req.url), "close"))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])):
            got = await trio.to_thread.run_sync(session, port, ["/a", "/b", "/c"])
    finally:
        origin.close()
    assert got == [(200, b"/a"), (200, b"/b"), (200, b"/c")]
    assert origin.accepted == 3


async def test_a_server_timeout_answers_504_and_the_connection_goes_on() -> None:
    origin = Origin("s1", respond=lambda req: "hang" if req.url == b"/slow" else text_response(req.url))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr], "    timeout server 300ms")) as rt:
            fast = http_fastpath.current()
            t0 = time.monotonic()
            got = await trio.to_thread.run_sync(session, port, ["/a", "/slow", "/b", "/c"])
            elapsed = time.monotonic() - t0
            # /slow timed out here; /b needed a new server connection (the task's job), /c did not
            assert fast is not None and fast.served == 1
            be = rt.backends["be"]
            assert be.servers[0].counters.response_errors == 1 and be.counters.current == 0
    finally:
        origin.close()
    assert [g[0] for g in got] == [200, 504, 200, 200] and got[2][1] == b"/b" and got[3][1] == b"/c"
    assert 0.25 < elapsed < 3


async def test_an_idle_client_connection_closes_silently_after_the_keepalive_timeout() -> None:
    origin = Origin("s1")
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr], "    timeout http-keep-alive 200ms")):
            def idle_then_read() -> tuple[float, bytes]:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    assert exchange(s, "/a")[0] == 200
                    assert exchange(s, "/b")[0] == 200  # now parked in the fast path
                    t0 = time.monotonic()
                    return time.monotonic() - t0 if s.recv(100) == b"" else -1.0, b""
            waited, _ = await trio.to_thread.run_sync(idle_then_read)
    finally:
        origin.close()
    assert 0.1 < waited < 2


async def test_pipelined_requests_are_answered_in_order() -> None:
    origin = Origin("s1", respond=by_path)
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])):
            def pipeline() -> list[tuple[int, bytes]]:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    out = [exchange(s, "/0"), exchange(s, "/1")]
                    s.sendall(b"".join(f"GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for i in range(3)))
                    buf = b""
                    deadline = time.monotonic() + 5
                    while buf.count(b"HTTP/1.1 200") < 3 or not buf.endswith(b"/p2"):
                        assert time.monotonic() < deadline, buf
                        buf += s.recv(65536)
                    out += [(200, part.rsplit(b"\r\n\r\n", 1)[1]) for part in buf.split(b"HTTP/1.1 ")[1:]]
                    return out
            got = await trio.to_thread.run_sync(pipeline)
    finally:
        origin.close()
    assert got == [(200, b"/0"), (200, b"/1"), (200, b"/p0"), (200, b"/p1"), (200, b"/p2")]


async def test_a_slow_reader_gets_a_large_response_whole_then_the_next_one() -> None:
    big = bytes(range(256)) * 12_000  # about 3 MB: more than the socket buffers hold
    origin = Origin("s1", respond=lambda req: text_response(big) if req.url == b"/big" else text_response(b"ok"))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])):
            def slow_read() -> tuple[bytes, tuple[int, bytes]]:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                    assert exchange(s, "/a") == (200, b"ok")
                    s.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
                    time.sleep(0.3)  # let the proxy fill every buffer on the way
                    _, _, body = read_response(s, timeout=10)
                    return body, exchange(s, "/b")
            body, after = await trio.to_thread.run_sync(slow_read)
    finally:
        origin.close()
    assert body == big and after == (200, b"ok")


async def test_a_truncated_response_cuts_the_client_connection() -> None:
    origin = Origin("s1", respond=lambda req: (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", "close")
                    if req.url == b"/cut" else text_response(b"ok"))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            def cut() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    assert exchange(s, "/a") == (200, b"ok")
                    s.sendall(b"GET /cut HTTP/1.1\r\nHost: h\r\n\r\n")
                    buf = b""
                    while chunk := s.recv(65536):
                        buf += chunk
                    return buf
            got = await trio.to_thread.run_sync(cut)
            assert rt.backends["be"].servers[0].counters.response_errors == 1
            again = await trio.to_thread.run_sync(session, port, ["/x", "/y"])
    finally:
        origin.close()
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nshort")
    assert again == [(200, b"ok"), (200, b"ok")]


async def test_a_client_gone_mid_response_ends_only_its_connection() -> None:
    big = b"x" * 4_000_000
    origin = Origin("s1", respond=lambda req: text_response(big) if req.url == b"/big" else text_response(b"ok"))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            def vanish() -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    assert exchange(s, "/a") == (200, b"ok")
                    s.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
                    s.recv(1000)
            await trio.to_thread.run_sync(vanish)
            fe = rt.frontends["fe"].counters
            with trio.fail_after(5):
                while fe.current:
                    await trio.sleep(0.02)
            after = await trio.to_thread.run_sync(session, port, ["/x", "/y"])
            assert rt.backends["be"].counters.current == 0 and rt.backends["be"].servers[0].served == 0
    finally:
        origin.close()
    assert after == [(200, b"ok"), (200, b"ok")]


async def test_a_client_reset_before_its_response_is_written_leaves_the_server_connection_parked() -> None:
    # The whole response is in the proxy's socket and the client has reset before the fast path
    # runs again: writing the response fails, but the server's exchange is complete, so its
    # connection is parked for reuse rather than closed.
    go = threading.Event()
    origin = Origin("s1", respond=lambda req: (go.wait(5), text_response(req.url))[1])
    port = free_port()
    go.set()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            fast = http_fastpath.current()
            assert fast is not None
            server = rt.backends["be"].servers[0]
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            assert await trio.to_thread.run_sync(exchange, client, "/a") == (200, b"/a")
            go.clear()
            client.sendall(b"GET /gone HTTP/1.1\r\nHost: h\r\n\r\n")
            await trio.to_thread.run_sync(origin.wait_requests, 2)
            # From here the trio thread is held (no await) until both events are in the kernel:
            # the response first, then the reset, as the fast path will find them.
            [server_fd] = [fd for fd, (_, kind) in fast._by_fd.items() if kind == http_fastpath._SERVER]
            go.set()
            assert select.select([server_fd], [], [], 5)[0] == [server_fd]
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            fe = rt.frontends["fe"].counters
            with trio.fail_after(5):
                while fe.current:
                    await trio.sleep(0.02)
            assert fast.served == 1  # /gone went through the fast path
            [parked] = server.idle_conns
            assert parked.sock.fileno() >= 0 and origin.accepted == 1
            after = await trio.to_thread.run_sync(session, port, ["/b", "/c"])
            assert rt.backends["be"].counters.current == 0 and server.served == 0
    finally:
        go.set()
        origin.close()
    assert after == [(200, b"/b"), (200, b"/c")]


async def test_transactions_served_here_are_logged_like_the_others() -> None:
    logs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    logs.bind(("127.0.0.1", 0))
    logs.settimeout(5)
    origin = Origin("s1", respond=lambda req: "hang" if req.url == b"/slow" else text_response(req.url))
    port = free_port()
    text = (f"global\n    log 127.0.0.1:{logs.getsockname()[1]} local0\n"
            + cfg(port, [origin.addr], "    log global\n    option httplog\n    timeout server 300ms"))
    log.set_current(log.LogSink(load_text(text).config.global_.logs))  # what the launcher would install
    try:
        async with running(text):
            fast = http_fastpath.current()
            got = await trio.to_thread.run_sync(session, port, ["/a", "/b", "/c", "/slow"])
            lines = [(await trio.to_thread.run_sync(logs.recv, 65536)).decode() for _ in range(4)]
            assert fast is not None and fast.served == 2
    finally:
        log.set_current(None)
        origin.close()
        logs.close()
    assert [g[0] for g in got] == [200, 200, 200, 504]
    for path, line in zip(["/a", "/b", "/c"], lines):
        size = len(text_response(path.encode()))
        assert " fe be/s1 0/0/0/" in line and f" 200 {size} - - ---- " in line, line
        assert line.rstrip().endswith(f'"GET {path} HTTP/1.1"'), line
    assert " fe be/s1 0/0/0/-1/" in lines[3] and " 504 " in lines[3] and " sH-- " in lines[3], lines[3]


async def test_shutdown_sessions_of_a_server_ends_its_http_transactions() -> None:
    origin = Origin("s1", respond=lambda req: "hang" if req.url.startswith(b"/slow") else text_response(req.url))
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            backend = rt.backends["be"]
            server = backend.servers[0]

            def first_request_hangs() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"GET /slow1 HTTP/1.1\r\nHost: h\r\n\r\n")
                    return s.recv(100)

            def later_request_hangs() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    assert exchange(s, "/a") == (200, b"/a")
                    assert exchange(s, "/b") == (200, b"/b")
                    s.sendall(b"GET /slow2 HTTP/1.1\r\nHost: h\r\n\r\n")
                    return s.recv(100)

            for client in (first_request_hangs, later_request_hangs):
                async with trio.open_nursery() as nursery:
                    got: list[bytes] = []
                    nursery.start_soon(lambda: _collect(got, client))
                    with trio.fail_after(5):
                        while server.served == 0 or len(origin.requests) == 0 or \
                                not origin.requests[-1].url.startswith(b"/slow"):
                            await trio.sleep(0.01)
                    assert backend.shutdown_sessions(server) == 1, client.__name__
                assert got == [b""]  # closed, no answer
                with trio.fail_after(5):
                    while server.served:
                        await trio.sleep(0.01)
            after = await trio.to_thread.run_sync(session, port, ["/x", "/y"])
    finally:
        origin.close()
    assert after == [(200, b"/x"), (200, b"/y")]


async def test_server_connections_opened_reused_and_idle_are_counted() -> None:
    # HAProxy's `connect` and `reuse`: the first request of each client connection opens a server
    # connection (http-reuse safe); the others reuse an idle one. Figures checked against 2.6.
    origin = Origin("s1", respond=by_path)
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            for _ in range(2):
                await trio.to_thread.run_sync(session, port, ["/a", "/b", "/c", "/d"])
            csv = stats.render_csv(stats.snapshot(rt))
    finally:
        origin.close()
    rows = list(csv_module.DictReader(io.StringIO(csv.lstrip("# "))))
    for svname in ("s1", "BACKEND"):
        row = next(r for r in rows if r["pxname"] == "be" and r["svname"] == svname)
        assert (row["connect"], row["reuse"]) == ("2", "6"), row
    # both server connections stay open for reuse after the clients left (as in HAProxy 2.6)
    s1 = next(r for r in rows if r["pxname"] == "be" and r["svname"] == "s1")
    assert (s1["srv_icur"], s1["safe_conn_cur"], s1["idle_conn_cur"]) == ("2", "2", "0"), s1
    assert origin.accepted == 2


async def _collect(out: list[bytes], fn) -> None:  # type: ignore[no-untyped-def]
    out.append(await trio.to_thread.run_sync(fn))


async def test_server_and_backend_response_times_are_averaged() -> None:
    def slow(req) -> bytes:  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        return text_response(b"ok")

    origin = Origin("s1", respond=slow)
    port = free_port()
    try:
        async with running(cfg(port, [origin.addr])) as rt:
            got = await trio.to_thread.run_sync(session, port, ["/a", "/b", "/c"])
            csv = stats.render_csv(stats.snapshot(rt))
    finally:
        origin.close()
    assert [g[0] for g in got] == [200, 200, 200]
    rows = list(csv_module.DictReader(io.StringIO(csv.lstrip("# "))))
    for svname in ("s1", "BACKEND"):
        row = next(r for r in rows if r["pxname"] == "be" and r["svname"] == svname)
        assert 40 <= int(row["rtime"]) < 1000 and int(row["ttime"]) >= int(row["rtime"]), row
        assert int(row["rtime_max"]) >= 40, row


async def _origin_exchange(lsock: socket.socket, client: socket.socket, path: str) -> socket.socket:
    """`client` asks for `path`, which reaches the origin on a new connection: returns it."""
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    conn, _ = await trio.to_thread.run_sync(lsock.accept)
    conn.settimeout(5)
    assert (await trio.to_thread.run_sync(read_head, conn)).startswith(f"GET {path} ".encode())
    conn.sendall(text_response(path.encode()))
    assert (await trio.to_thread.run_sync(read_response, client))[::2] == (200, path.encode())
    return conn


def _reset(conn: socket.socket, proxy_side: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    assert select.select([proxy_side], [], [], 5)[0] == [proxy_side]  # the reset has arrived


@pytest.mark.parametrize("alone", [True, False], ids=["request-alone", "batch-of-two-events"])
async def test_an_idle_server_connection_reset_before_its_request_goes_out_costs_no_request(alone: bool) -> None:
    # The origin resets its idle connection; the next request takes it (nothing was read from it
    # since) and its send fails: the request goes out again on a new connection, answered and
    # counted once. Alone, the request's head is sent at once; with another client's event in the
    # same batch, at the batch's end.
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(5)
    port = free_port()
    clients: list[socket.socket] = []
    try:
        async with running(cfg(port, [f"127.0.0.1:{lsock.getsockname()[1]}"])) as rt:
            fast = http_fastpath.current()
            assert fast is not None
            server = rt.backends["be"].servers[0]
            other = None
            if not alone:  # a second parked client, whose server connection dies too
                other = socket.create_connection(("127.0.0.1", port), timeout=5)
                clients.append(other)
                conn_x = await _origin_exchange(lsock, other, "/x")
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            clients.append(client)
            conn1 = await _origin_exchange(lsock, client, "/a")
            with trio.fail_after(5):
                while len(server.idle_conns) < (1 if alone else 2) or len(fast._by_fd) < (1 if alone else 2):
                    await trio.sleep(0.01)
            _reset(conn1, server.idle_conns[-1].sock)  # the one the next request takes
            if other is not None:
                _reset(conn_x, server.idle_conns[0].sock)
                # held from here (no await) until both clients' events are in the kernel
                other_fd = next(fd for fd, (p, kind) in fast._by_fd.items()
                                if kind == http_fastpath._CLIENT and p.session.client.getpeername() == other.getsockname())
                other.close()
                assert select.select([other_fd], [], [], 5)[0] == [other_fd]
            client.sendall(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
            conn2, _ = await trio.to_thread.run_sync(lsock.accept)
            conn2.settimeout(5)
            assert (await trio.to_thread.run_sync(read_head, conn2)).startswith(b"GET /b ")
            conn2.sendall(text_response(b"/b"))
            assert (await trio.to_thread.run_sync(read_response, client))[::2] == (200, b"/b")
            fe, be = rt.frontends["fe"].counters, rt.backends["be"].counters
            n = 2 if alone else 3
            assert fe.requests_total == n and be.requests_total == n and fe.http_responses[2] == n
            assert be.sessions_total == n
            if alone:  # (in the batch, the task's own retry on the second dead connection adds one)
                assert server.counters.sessions_total == n
            with trio.fail_after(5):
                while be.current:
                    await trio.sleep(0.01)
            conn2.close()
    finally:
        for c in clients:
            c.close()
        lsock.close()
