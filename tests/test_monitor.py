"""monitor-uri and monitor fail: the answer upstream load balancers probe."""

from __future__ import annotations

import socket

from conftest import free_port

CFG = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    monitor-uri /health
    acl dead nbsrv(be) lt 1
    monitor fail if dead
    default_backend be
backend be
    server s1 {addr} check inter 100ms fall 1
"""


def get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def test_monitor_uri_answers_200_while_servers_are_up(lb, tcp_servers) -> None:
    srv = tcp_servers("s1")  # accepts TCP checks
    port = free_port()
    lb.start(CFG.format(port=port, addr=srv.addr), [port])
    reply = get(port, "/health")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n")


def test_monitor_fail_answers_503_when_the_condition_holds(lb) -> None:
    import time

    port = free_port()
    lb.start(CFG.format(port=port, addr=f"127.0.0.1:{free_port()}"), [port])
    deadline = time.monotonic() + 5
    reply = get(port, "/health")
    while not reply.startswith(b"HTTP/1.1 503") and time.monotonic() < deadline:
        time.sleep(0.05)  # the first check has to fail before nbsrv drops to 0
        reply = get(port, "/health")
    assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), reply
