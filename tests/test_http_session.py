"""mode http end to end: a real haproxy-py process with several frontends, recording origins and raw
clients. Byte strings asserted here were captured from HAProxy 2.6.12 on loopback."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
from http_backends import GLOBAL, Origin, Proxy, backend, free_port, frontend, raw_exchange, read_response

PAGE_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available "
            b"to handle this request.\n</body></html>\n")
PAGE_502 = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid "
            b"or incomplete response.\n</body></html>\n")
PAGE_504 = (b"HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond "
            b"in time.\n</body></html>\n")
RAW_408 = (b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\nConnection: close\r\n"
           b"Content-Type: text/html\r\n\r\n<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a "
           b"complete request in time.\n</body></html>\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    o = SimpleNamespace(a=Origin("a"), b=Origin("b"), solo=Origin("solo"), slow=Origin("slow"), ws=Origin("ws"))
    errorfile = tmp_path_factory.mktemp("errors") / "503.http"
    errorfile.write_bytes(b"HTTP/1.1 503 Sorry\r\nContent-Length: 5\r\nX-Custom: yes\r\n\r\nsorry")
    dead = f"127.0.0.1:{free_port()}"
    p = SimpleNamespace(**{k: free_port() for k in ("rr", "solo", "close", "sclose", "timeouts", "dead", "slow",
                                                    "rules", "switch", "ws", "probes")})
    cfg = (GLOBAL
           + frontend("fe_rr", p.rr, "be_rr")
           + frontend("fe_solo", p.solo, "be_solo", "    option forwardfor except 127.0.0.99/32\n")
           + frontend("fe_close", p.close, "be_solo", "    option httpclose\n")
           + frontend("fe_sclose", p.sclose, "be_solo", "    option http-server-close\n")
           + frontend("fe_timeouts", p.timeouts, "be_solo",
                      "    timeout http-request 300ms\n    timeout http-keep-alive 200ms\n")
           + frontend("fe_probes", p.probes, "be_solo", "    timeout http-request 200ms\n    option http-ignore-probes\n")
           + frontend("fe_dead", p.dead, "be_dead")
           + frontend("fe_slow", p.slow, "be_slow")
           + frontend("fe_rules", p.rules, "be_solo",
                      "    acl api path_beg /api\n"
                      "    http-request deny deny_status 429 if api { req.hdr(x-limit) -m found }\n"
                      "    http-request set-header X-Seen %[req.hdr(host)]\n"
                      "    http-request del-header X-Secret\n"
                      "    http-request return status 200 content-type text/plain string pong if { path /ping }\n"
                      "    http-request redirect prefix /new code 301 if { path_beg /old }\n"
                      "    http-response set-header X-Served-By haproxy-py\n"
                      "    monitor-uri /alive\n")
           + frontend("fe_switch", p.switch, "be_rr", "    use_backend be_solo if { path_beg /solo }\n")
           + frontend("fe_ws", p.ws, "be_ws", "    timeout tunnel 2s\n")
           + backend("be_rr", [o.a.addr, o.b.addr], "    balance roundrobin\n")
           + backend("be_solo", [o.solo.addr])
           + backend("be_dead", [dead], f"    retries 0\n    errorfile 503 {errorfile}\n")
           + backend("be_slow", [o.slow.addr], "    timeout server 300ms\n")
           + backend("be_ws", [o.ws.addr]))
    proxy = Proxy(cfg, list(vars(p).values()))
    yield SimpleNamespace(origins=o, ports=p, proxy=proxy)
    proxy.stop()
    for origin in vars(o).values():
        origin.close()


def request(port: int, raw: bytes, until: bytes | None = None, timeout: float = 3.0, count: int = 1
            ) -> tuple[bytes, bool]:
    return raw_exchange(port, raw, timeout=timeout, until=until, count=count)


def get(path: str = "/", extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET " + path.encode() + b" HTTP/" + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


def body_of(reply: bytes) -> bytes:
    return reply.split(b"\r\n\r\n", 1)[1]


# ----------------------------------------------------------------------------------------------
# keep-alive, balancing, reuse


def test_each_keepalive_request_is_balanced_and_server_connections_are_reused(env):
    a, b = env.origins.a, env.origins.b
    before = a.accepted + b.accepted
    s = socket.create_connection(("127.0.0.1", env.ports.rr), timeout=5)
    names = []
    for i in range(8):
        s.sendall(get(f"/ka/{i}"))
        status, _, body = read_response(s)
        assert status == 200
        names.append(body.strip())
    s.close()
    assert names == [b"a", b"b"] * 4
    # http-reuse safe: after the first request, idle server connections are reused
    assert a.accepted + b.accepted - before == 2


def test_a_server_closing_idle_connections_unannounced_costs_no_request(env):
    solo = env.origins.solo
    solo.respond = lambda req: (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", "close")
    try:
        before = len(solo.requests)
        s = socket.create_connection(("127.0.0.1", env.ports.solo), timeout=5)
        for method, body in ((b"GET", b""), (b"POST", b"xyz"), (b"GET", b""), (b"DELETE", b"")):
            time.sleep(0.05)  # let the server's close reach the parked connection (or not)
            s.sendall(method + b" /r HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            assert read_response(s)[:3:2] == (200, b"ok")
        s.close()
        # every request reached the server once: dead idle connections were detected, not used
        assert [r.method for r in solo.requests[before:]] == [b"GET", b"POST", b"GET", b"DELETE"]
    finally:
        solo.respond = None


def test_pipelined_requests_are_answered_in_order(env):
    out, closed = request(env.ports.solo, get("/p1") + get("/p2") + get("/p3", b"Connection: close\r\n"))
    assert closed and out.count(b"HTTP/1.1 200 OK") == 3
    assert [r.url for r in env.origins.solo.requests[-3:]] == [b"/p1", b"/p2", b"/p3"]


def test_head_names_are_lower_cased_and_the_client_close_is_not_forwarded(env):
    out, closed = request(env.ports.solo, b"GET /case HTTP/1.1\r\nHost: h\r\nX-Mixed-Case: Value\r\n"
                                          b"Connection: close\r\n\r\n")
    assert closed and out.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n")
    req = env.origins.solo.requests[-1]
    assert req.raw.startswith(b"GET /case HTTP/1.1\r\nhost: h\r\nx-mixed-case: Value\r\n")
    assert b"x-forwarded-for: 127.0.0.1\r\n\r\n" in req.raw and b"connection" not in req.raw


def test_http_1_0_client(env):
    out, closed = request(env.ports.solo, b"GET /ten HTTP/1.0\r\nHost: h\r\n\r\n")
    assert closed and b"\r\nconnection: close\r\n" in out
    assert env.origins.solo.requests[-1].header(b"connection") == b"keep-alive"
    out, closed = request(env.ports.solo, b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", until=b"solo\n")
    assert not closed and b"\r\nconnection: keep-alive\r\n" in out


def test_httpclose_and_http_server_close(env):
    out, closed = request(env.ports.close, get("/c"), until=b"solo\n", timeout=2)
    assert closed or b"connection: close" in out
    assert b"connection: close\r\n" in out and env.origins.solo.requests[-1].header(b"connection") == b"close"
    out, closed = request(env.ports.sclose, get("/sc"), until=b"solo\n")
    assert not closed and b"connection" not in out
    assert env.origins.solo.requests[-1].header(b"connection") == b"close"


def test_forwardfor_except(env):
    request(env.ports.solo, get("/xff", b"X-Forwarded-For: 1.2.3.4\r\nConnection: close\r\n"))
    assert env.origins.solo.requests[-1].header_all(b"x-forwarded-for") == [b"1.2.3.4", b"127.0.0.1"]
    s = socket.create_connection(("127.0.0.1", env.ports.solo), source_address=("127.0.0.99", 0), timeout=5)
    s.sendall(get("/xff2", b"Connection: close\r\n"))
    read_response(s)
    s.close()
    assert env.origins.solo.requests[-1].header(b"x-forwarded-for") is None


# ----------------------------------------------------------------------------------------------
# bodies


def test_large_bodies_stream_intact_both_ways(env):
    payload = bytes(range(256)) * 4096  # 1 MiB
    env.origins.solo.respond = lambda req: (b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(req.body)
                                            + req.body)
    try:
        s = socket.create_connection(("127.0.0.1", env.ports.solo), timeout=10)
        s.sendall(b"POST /up HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        status, _, body = read_response(s, timeout=10)
        assert status == 200 and body == payload
        chunks = [payload[i:i + 70000] for i in range(0, len(payload), 70000)]
        s.sendall(b"POST /upc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
        status, _, body = read_response(s, timeout=10)
        assert status == 200 and body == payload
        s.close()
    finally:
        env.origins.solo.respond = None


def test_chunked_response_is_rechunked_with_trailers(env):
    env.origins.solo.respond = lambda req: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n")
    try:
        out, _ = request(env.ports.solo, get("/chunked"), until=b"\r\n0\r\nx-trailer: t\r\n\r\n")
        assert out == (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                       b"x-trailer: t\r\n\r\n")
    finally:
        env.origins.solo.respond = None


def test_close_delimited_response_closes_the_client(env):
    # an HTTP/1.1 response without a length: the client gets connection: close and EOF
    env.origins.solo.respond = lambda req: b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil-close"
    try:
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", env.ports.solo), timeout=5)
        s.sendall(get("/cd"))
        # the origin keeps its connection open, so nothing ends the body yet: close it from the origin side
        time.sleep(0.2)
        env.origins.solo.respond = None
        for c in list(env.origins.solo._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert data == b"HTTP/1.1 200 OK\r\nx: y\r\nconnection: close\r\n\r\nuntil-close"
        assert time.monotonic() - t0 < 4
    finally:
        env.origins.solo.respond = None


def test_head_response_has_no_body_and_the_connection_is_kept(env):
    s = socket.create_connection(("127.0.0.1", env.ports.solo), timeout=5)
    s.sendall(b"HEAD /h HTTP/1.1\r\n\r\n" + get("/after-head"))
    data = b""
    while data.count(b"HTTP/1.1 200") < 2:
        data += s.recv(65536)
    while not data.endswith(b"solo\n"):
        data += s.recv(65536)
    s.close()
    assert data == (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nsolo\n")


def test_expect_100_continue(env):
    port = free_port()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    got = {}

    def origin():
        c, _ = lsock.accept()
        c.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(65536)
        got["head"] = data
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = data.split(b"\r\n\r\n", 1)[1]
        while len(body) < 4:
            body += c.recv(65536)
        got["body"] = body
        c.sendall(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
        c.close()

    t = threading.Thread(target=origin, daemon=True)
    t.start()
    proxy = Proxy(GLOBAL + frontend("fe", port, "be") + backend("be", [f"127.0.0.1:{lsock.getsockname()[1]}"]), [port])
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += s.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"data")
        status, _, body = read_response(s)
        assert (status, body) == (201, b"ok") and got["body"] == b"data"
        assert b"expect: 100-continue\r\n" in got["head"]
    finally:
        proxy.stop()
        lsock.close()


# ----------------------------------------------------------------------------------------------
# timeouts


def test_timeout_http_request_answers_408(env):
    t0 = time.monotonic()
    out, closed = request(env.ports.timeouts, b"GET / HTTP/1.1\r\nHost: slow")
    assert out == RAW_408 and closed and 0.25 < time.monotonic() - t0 < 2
    out, closed = request(env.ports.timeouts, b"")  # also to a connection that sent nothing
    assert out == RAW_408 and closed


def test_idle_keepalive_connection_closes_silently(env):
    t0 = time.monotonic()
    out, closed = request(env.ports.timeouts, get("/ka"))
    assert closed and out == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nsolo\n"
    assert 0.15 < time.monotonic() - t0 < 2


def test_http_ignore_probes(env):
    out, closed = request(env.ports.probes, b"")
    assert out == b"" and closed


def test_server_timeout_gives_504(env):
    env.origins.slow.respond = lambda req: "hang"
    try:
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", env.ports.slow), timeout=5)
        s.sendall(get("/504"))
        data = b""
        while not data.endswith(b"</html>\n"):
            data += s.recv(65536)
        assert data == PAGE_504 and 0.25 < time.monotonic() - t0 < 2
        env.origins.slow.respond = None
        s.sendall(get("/after-504"))  # the client connection stays usable
        assert read_response(s)[0] == 200
        s.close()
    finally:
        env.origins.slow.respond = None


# ----------------------------------------------------------------------------------------------
# errors


def test_no_server_gives_503_and_keeps_the_connection_with_errorfile(env):
    out, closed = request(env.ports.dead, get("/x") + get("/y"), until=b"sorry", count=2)
    assert out == (b"HTTP/1.1 503 Sorry\r\ncontent-length: 5\r\nx-custom: yes\r\n\r\nsorry") * 2 and not closed


def test_server_closing_without_answer_gives_502(env):
    env.origins.slow.respond = lambda req: "close"
    try:
        out, closed = request(env.ports.slow, get("/502"), until=b"</html>\n")
        assert out == PAGE_502 and not closed
    finally:
        env.origins.slow.respond = None


def test_invalid_response_gives_502(env):
    env.origins.slow.respond = lambda req: b"garbage\r\n\r\n"
    try:
        out, _ = request(env.ports.slow, get("/garbage"), until=b"</html>\n")
        assert out == PAGE_502
    finally:
        env.origins.slow.respond = None


def test_truncated_body_is_cut_not_replaced(env):
    try:
        s = socket.create_connection(("127.0.0.1", env.ports.slow), timeout=5)
        env.origins.slow.respond = lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
        s.sendall(get("/trunc"))
        time.sleep(0.1)
        for c in list(env.origins.slow._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    finally:
        env.origins.slow.respond = None


def test_malformed_request_gives_raw_400_and_reaches_no_server(env):
    n = len(env.origins.solo.requests)
    out, closed = request(env.ports.solo, b"GET /a b HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\n") and closed
    assert len(env.origins.solo.requests) == n


# ----------------------------------------------------------------------------------------------
# rules and routing


def test_rules_end_to_end(env):
    out, _ = request(env.ports.rules, get("/api/x", b"X-Limit: 1\r\n"), until=b"</html>\n")
    assert out.startswith(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\n")
    out, _ = request(env.ports.rules, get("/ping"), until=b"pong")
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\npong"
    out, _ = request(env.ports.rules, get("/old/page"), until=b"\r\n\r\n")
    assert out == b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /new/old/page\r\n\r\n"
    out, _ = request(env.ports.rules, get("/alive"), until=b"</html>\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 58\r\n")
    out, _ = request(env.ports.rules, get("/api/y", b"X-Secret: s\r\n"), until=b"solo\n")
    assert b"\r\nx-served-by: haproxy-py\r\n" in out
    req = env.origins.solo.requests[-1]
    assert req.url == b"/api/y" and req.header(b"x-seen") == b"test" and req.header(b"x-secret") is None


def test_use_backend_conditions_see_each_request(env):
    s = socket.create_connection(("127.0.0.1", env.ports.switch), timeout=5)
    names = []
    for path in ("/solo/1", "/x", "/solo/2"):
        s.sendall(get(path))
        names.append(read_response(s)[2].strip())
    s.close()
    assert names[0] == b"solo" and names[1] in (b"a", b"b") and names[2] == b"solo"


# ----------------------------------------------------------------------------------------------
# protocol switch


def test_websocket_upgrade_becomes_a_tunnel(env):
    env.origins.ws.respond = lambda req: (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                          b"Connection: Upgrade\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", env.ports.ws), timeout=5)
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nfirst")
    data = b""
    while not data.endswith(b"first"):
        data += s.recv(65536)
    assert data == (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\nfirst")
    for i in range(3):
        msg = b"frame-%d" % i
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(65536)
        assert got == msg  # the origin echoes
    s.close()


def test_refused_upgrade_continues_as_http(env):
    env.origins.ws.respond = lambda req: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno"
    try:
        out, _ = request(env.ports.ws, b"GET /u HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n" + get("/next"),
                         until=b"\r\n\r\nno", count=2)
        assert out.count(b"HTTP/1.1 200 OK") == 2
    finally:
        env.origins.ws.respond = None


def test_process_is_alive_after_all_of_this(env):
    assert env.proxy.alive(), env.proxy.log()


def test_soft_stop_closes_idle_keep_alive_connections_at_once(lb) -> None:
    import signal as _signal
    import socket as _socket
    import threading
    import time as _time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conftest import free_port as _free_port

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a: object) -> None:
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = _free_port()
    proc = lb.start(f"""\
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{origin.server_address[1]}
""", [port])
    c = _socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"ok"):
        data += c.recv(4096)
    t0 = _time.monotonic()
    proc.send_signal(_signal.SIGUSR1)
    assert proc.wait(5) == 0  # the idle keep-alive client does not hold the process for 30 s
    assert _time.monotonic() - t0 < 3
    assert c.recv(10) == b""
    c.close()
    origin.shutdown()
