"""Traffic logs of mode-http transactions (`option httplog`, `log-format`), with HAProxy 2.6 as the oracle.

Each row runs one scenario (a client and an origin doing something) through a proxy that logs to
stdout, and compares the lines with the row's expected ones, field by field. The table runs
against `/usr/sbin/haproxy` when it is installed (proving the expected lines are HAProxy's) and
against haproxy-py. After the scenario a marker request (`GET /marker`) is sent on a new
connection: its line is the event the test waits for, and every line of the scenario comes before
it, so a row can also assert that nothing was logged.

Expected atoms: `T` any timer >= 0, `~N` a timer within [N-50, N+700] ms (timeouts), `B` a byte
count (HAProxy counts its internal message size, haproxy-py the bytes on the wire, which the
haproxy-py run checks against what the client received), anything else literally.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable

import httptools
import pytest
from http_backends import Origin, Proxy, raw_exchange, text_response

from conftest import lb_command

HAPROXY = "/usr/sbin/haproxy"
TARGETS = ["haproxy-py"] + (["haproxy"] if os.path.exists(HAPROXY) else [])
REQ = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


HEAD = """global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s

"""


def section(i: int, port: int, server: str, fe: str, be: str) -> str:
    """Row `i`'s frontend `fe<i>` and backend `be<i>` (one server, `s1`)."""
    return f"frontend fe{i}\n    bind 127.0.0.1:{port}\n{fe}    default_backend be{i}\n" \
           f"backend be{i}\n{be}    server s1 {server}\n\n"


Action = Callable[[int], bytes]


def send(payload: bytes, responses: int = 1, timeout: float = 2.0, shut: bool = False) -> Action:
    """Send `payload`; read until `responses` whole responses came, the proxy closed, or `timeout`."""
    def act(port: int) -> bytes:
        got = bytearray()
        done = [0]

        class Count:
            def on_message_complete(self) -> None:
                done[0] += 1

        parser = httptools.HttpResponseParser(Count())
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            if shut:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while done[0] < responses and time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = s.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not data:
                    break
                got += data
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError:
                    break
        return bytes(got)
    return act


def two_keepalive_requests_with_pauses(port: int) -> bytes:
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        time.sleep(0.2)  # idle before the first request: Ti
        s.sendall(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        got += s.recv(1000)
        time.sleep(0.3)  # idle between the requests
        s.sendall(b"GET /b HTTP/1.1\r\n")
        time.sleep(0.1)  # a head that takes its time: TR
        s.sendall(b"host: x\r\n\r\n")
        got += s.recv(1000)
    return got


def queued_behind_a_slow_request(port: int) -> bytes:
    first: list[bytes] = []
    t = threading.Thread(target=lambda: first.append(send(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\n")(port)))
    t.start()
    time.sleep(0.1)
    got = send(b"GET /2 HTTP/1.1\r\nhost: x\r\n\r\n")(port)
    t.join(5)
    return got + (first[0] if first else b"")


def reads_a_little_then_closes(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(REQ)
        s.recv(100)
        time.sleep(0.1)
    return b""


def slow(_r: object) -> None:
    time.sleep(0.4)
    return None


# (id, origin responder (None: the default answer, "dead": no server listening), server suffix,
#  frontend lines, backend lines, more frontend lines (timeouts, options), action, expected lines)
CASES: list[tuple[str, object, str, str, str, str, Action, list[str]]] = [
    ("keepalive", None, "", "", "", "",
     send(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nhost: x\r\n\r\n", 2),
     ['fe be/s1 T/T/T/T/T 200 B - - ---- T/1/0/0/0 0/0 "GET /a HTTP/1.1"',
      'fe be/s1 T/T/T/T/T 200 B - - ---- T/1/0/0/0 0/0 "GET /b?q=1 HTTP/1.1"']),
    ("http10", None, "", "", "", "", send(b"GET /a HTTP/1.0\r\n\r\n"),
     ['fe be/s1 T/T/T/T/T 200 B - - ---- T/1/0/0/0 0/0 "GET /a HTTP/1.0"']),
    ("refused_after_retry", "dead", "", "", "    retries 1\n", "", send(REQ),
     ['fe be/s1 T/T/-1/-1/~1000 503 B - - SC-- T/1/0/0/1 0/0 "GET / HTTP/1.1"']),
    ("no_usable_server", None, " disabled", "", "", "", send(REQ),
     ['fe be/<NOSRV> T/-1/-1/-1/T 503 B - - SC-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("server_timeout", "hang", "", "", "    timeout server 300ms\n", "", send(REQ),
     ['fe be/s1 T/T/T/-1/~300 504 B - - sH-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("bad_response", b"garbage\r\n\r\n", "", "", "", "", send(REQ),
     ['fe be/s1 T/T/T/-1/T 502 B - - PH-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("server_closes", "close", "", "", "", "", send(REQ),
     ['fe be/s1 T/T/T/-1/T 502 B - - SH-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("truncated_body", (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", "close"), "", "", "", "", send(REQ),
     # (the client sees the close before the line is written: the marker's connection may count)
     ['fe be/s1 T/T/T/T/T 200 B - - SD-- T/T/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("client_aborts_download", text_response(b"x" * 5_000_000), "", "", "", "", reads_a_little_then_closes,
     ['fe be/s1 T/T/T/T/T 200 B - - CD-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("client_aborts_upload", None, "", "", "", "",
     send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc", timeout=0.5),
     # (the marker may be connected before the aborted transaction is logged)
     ['fe be/s1 T/T/T/-1/~500 -1 0 - - CD-- T/T/T/T/0 0/0 "POST / HTTP/1.1"']),
    ("bad_request", None, "", "", "", "", send(b"GET / HTTP/1.1\r\nho st: x\r\n\r\n"),
     ['fe fe/<NOSRV> -1/-1/-1/-1/T 400 0 - - PR-- T/1/0/0/0 0/0 "<BADREQ>"']),
    ("request_timeout", None, "", "", "", "    timeout http-request 300ms\n", send(b"GET / HTTP/1.1\r\n"),
     ['fe fe/<NOSRV> -1/-1/-1/-1/~300 408 0 - - cR-- T/1/0/0/0 0/0 "<BADREQ>"']),
    ("empty_connection", None, "", "", "", "", send(b"", shut=True),
     ['fe fe/<NOSRV> -1/-1/-1/-1/T 400 0 - - CR-- T/1/0/0/0 0/0 "<BADREQ>"']),
    ("empty_connection_dontlognull", None, "", "", "", "    option dontlognull\n", send(b"", shut=True), []),
    ("deny", None, "", "    http-request deny\n", "", "", send(REQ),
     ['fe fe/<NOSRV> T/-1/-1/-1/T 403 B - - PR-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("backend_deny", None, "", "", "    http-request deny deny_status 429\n", "", send(REQ),
     ['fe be/<NOSRV> T/-1/-1/-1/T 429 B - - PR-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("redirect", None, "", "    http-request redirect location /x\n", "", "", send(REQ),
     ['fe fe/<NOSRV> T/-1/-1/-1/T 302 B - - LR-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("return", None, "", "    http-request return status 200 content-type text/plain string hi\n", "", "", send(REQ),
     ['fe fe/<NOSRV> T/-1/-1/-1/T 200 B - - LR-- T/1/0/0/0 0/0 "GET / HTTP/1.1"']),
    ("stats_page", None, "", "    stats enable\n    stats uri /st\n", "", "",
     send(b"GET /st;csv HTTP/1.1\r\nhost: x\r\n\r\n"),
     ['fe fe/<STATS> T/T/T/T/T 200 B - - LR-- T/1/0/0/0 0/0 "GET /st;csv HTTP/1.1"']),
    ("prometheus_exporter", None, "", "    http-request use-service prometheus-exporter if { path /metrics }\n", "", "",
     send(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"),
     ['fe fe/<PROMEX> T/T/T/T/T 200 B - - LR-- T/1/0/0/0 0/0 "GET /metrics HTTP/1.1"']),
    ("monitor_uri_not_logged", None, "", "    monitor-uri /mon\n", "", "", send(b"GET /mon HTTP/1.1\r\nhost: x\r\n\r\n"),
     []),
    ("queued", slow, " maxconn 1", "", "", "", queued_behind_a_slow_request,
     # (bc: the queued request still counts; ac/fc: whether the other client has closed yet)
     ['fe be/s1 T/T/T/~400/~400 200 B - - ---- T/T/1/0/0 0/0 "GET /1 HTTP/1.1"',
      'fe be/s1 T/~300/T/~400/~700 200 B - - ---- T/T/0/0/0 0/1 "GET /2 HTTP/1.1"']),
    ("queue_timeout", slow, " maxconn 1", "", "    timeout queue 100ms\n", "", queued_behind_a_slow_request,
     ['fe be/<NOSRV> T/~100/-1/-1/~100 503 B - - sQ-- T/2/1/0/0 0/1 "GET /2 HTTP/1.1"',
      'fe be/s1 T/T/T/~400/~400 200 B - - ---- T/T/0/0/0 0/0 "GET /1 HTTP/1.1"']),
    ("timers", None, "", '    log-format "%f %HM %HU %HP %HQ %HV %ST %ts %Th %Ti %TR %Tq %Ta %Tt %Td"\n', "", "",
     two_keepalive_requests_with_pauses,
     ["fe GET /a /a  HTTP/1.1 200 -- 0 ~200 0 ~200 T ~200 T",  # (an empty %HQ leaves its space)
      "fe GET /b /b  HTTP/1.1 200 -- 0 ~300 ~100 ~400 ~100 ~400 T"]),
]


# rows whose action returns every byte the client received
WHOLE_RESPONSES = {"keepalive", "http10", "refused_after_retry", "no_usable_server", "server_timeout", "bad_response",
                   "server_closes", "truncated_body", "deny", "backend_deny", "redirect", "return", "stats_page",
                   "prometheus_exporter"}


def _matches(expected: str, actual: str) -> bool:
    exp, act = expected.split(" "), actual.split(" ")
    if len(exp) != len(act):
        return False
    for e, a in zip(exp, act):
        ea, aa = e.split("/"), a.split("/")
        if len(ea) != len(aa):
            return False
        for x, y in zip(ea, aa):
            if x in ("T", "B"):
                if not y.isdigit():
                    return False
            elif x.startswith("~"):
                if not y.isdigit() or not int(x[1:]) - 50 <= int(y) <= int(x[1:]) + 700:
                    return False
            elif x != y:
                return False
    return True


_PREFIX = re.compile(r"^127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] ")


def _traffic_lines(out: str) -> list[str]:
    lines = []
    for line in out.splitlines():
        m = _PREFIX.match(line)
        lines.append(line[m.end():] if m else line)
    return lines


def _expected(i: int, line: str) -> str:
    return re.sub(r"\b(fe|be)(?=[ /]|$)", lambda m: f"{m.group(1)}{i}", line)


def _origin(respond: object) -> Origin | None:
    if respond == "dead":
        return None
    if callable(respond):
        return Origin("slow", respond=respond)  # type: ignore[arg-type]
    return Origin("s1", respond=None if respond is None else (lambda r, v=respond: v))  # type: ignore[misc]


def _distinct_ports(n: int) -> list[int]:
    """`n` different free ports (asked for all at once: one at a time, the kernel may repeat one)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_all(cmd: list[str]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Every row through one proxy process, one after the other: (lines by row, bytes received)."""
    origins = [_origin(c[1]) for c in CASES]
    chosen = _distinct_ports(len(CASES) * 2)
    ports, dead = chosen[:len(CASES)], chosen[len(CASES):]  # dead: where no server listens
    cfg = HEAD + "".join(
        section(i, ports[i], o.addr + c[2] if o is not None else f"127.0.0.1:{dead[i]}", c[3] + c[5], c[4])
        for i, (c, o) in enumerate(zip(CASES, origins)))
    proxy = Proxy(cfg, ports, cmd)
    received: dict[str, int] = {}
    try:
        for i, case in enumerate(CASES):
            received[case[0]] = len(case[6](ports[i]))
            # the row's own lines first (so that the marker's connection is not counted in them)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _count(proxy.log(), f"fe{i} ") < len(case[7]):
                time.sleep(0.02)
            marker = f"GET /marker-{i} HTTP/1.1".encode()
            raw_exchange(ports[i], marker + b"\r\nhost: x\r\n\r\n", until=b"\r\n\r\n")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and f"/marker-{i} " not in proxy.log():
                time.sleep(0.02)
        out = proxy.log()
    finally:
        proxy.stop()
        for o in origins:
            if o is not None:
                o.close()
    lines: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = _PREFIX.match(line)
        body = line[m.end():] if m else line
        for i, case in enumerate(CASES):
            if body.startswith(f"fe{i} ") or f" /marker-{i} " in body:
                if f"/marker-{i} " not in body:
                    lines.setdefault(case[0], []).append(body)
                else:
                    lines.setdefault(case[0], [])
    return lines, received


def _count(out: str, prefix: str) -> int:
    return sum(1 for line in out.splitlines() if (m := _PREFIX.match(line)) and line[m.end():].startswith(prefix)
               or line.startswith(prefix))


_RESULTS: dict[str, tuple[dict[str, list[str]], dict[str, int]]] = {}


@pytest.fixture(scope="module")
def results() -> Callable[[str], tuple[dict[str, list[str]], dict[str, int]]]:
    def get(target: str) -> tuple[dict[str, list[str]], dict[str, int]]:
        if target not in _RESULTS:
            _RESULTS[target] = _run_all([HAPROXY] if target == "haproxy" else lb_command())
        return _RESULTS[target]
    return get


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_http_log_lines(case: tuple, target: str, results: Callable) -> None:
    name, *_, expected = case
    i = CASES.index(case)
    by_row, received = results(target)
    assert name in by_row, f"no marker line for {name}: {by_row}"
    got = by_row[name]
    assert len(got) == len(expected), got
    unmatched = list(got)  # in any order: lines of concurrent transactions may come either way
    for e in expected:
        e = _expected(i, e)
        found = next((g for g in unmatched if _matches(e, g)), None)
        assert found is not None, f"expected {e!r}\namong {unmatched!r}"
        unmatched.remove(found)
    if target == "haproxy-py" and name in WHOLE_RESPONSES:
        # haproxy-py's %B is what reached the client
        assert sum(int(line.split(" ")[4]) for line in got) == received[name], (got, received[name])
