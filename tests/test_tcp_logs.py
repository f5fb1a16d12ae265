"""Traffic logs of mode tcp sessions, as syslog datagrams in HAProxy's tcplog format."""

from __future__ import annotations

import re
import socket

from conftest import free_port, read_line

CFG = """\
global
    log 127.0.0.1:{log_port} local0
defaults
    mode tcp
    log global
    {option}
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 {addr}
"""


def udp_listener() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s, s.getsockname()[1]


def next_line(sock: socket.socket, must_contain: str) -> str:
    for _ in range(20):
        data = sock.recv(65536).decode()
        if must_contain in data:
            return data
    raise AssertionError(f"no log datagram with {must_contain!r}")


def test_tcplog_line_for_a_session(lb, tcp_servers) -> None:
    srv = tcp_servers("s1")
    logs, log_port = udp_listener()
    port = free_port()
    lb.start(CFG.format(log_port=log_port, option="option tcplog", port=port, addr=srv.addr), [port])
    name, s = read_line(port, src="127.0.0.9")
    s.close()
    line = next_line(logs, "fe be/s1")
    # <local0.info>, haproxy[pid]:, client, frontend, backend/server, timers, bytes, state, conns, queues
    assert re.match(r"<134>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: ", line), line
    m = re.search(r"127\.0\.0\.9:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 "
                  r"(\d+)/(\d+)/(\d+) (\d+) (--) \d+/\d+/\d+/\d+/0 0/0", line)
    assert m, line
    assert int(m.group(4)) == len("s1\n")  # bytes sent to the client
    logs.close()


def test_refused_server_logs_sc_and_nosrv_timers(lb) -> None:
    logs, log_port = udp_listener()
    port = free_port()
    dead = free_port()
    cfg = CFG.format(log_port=log_port, option="option tcplog\n    retries 0", port=port, addr=f"127.0.0.1:{dead}")
    lb.start(cfg, [port])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(10) == b""
    line = next_line(logs, "fe be/s1")
    assert re.search(r"fe be/s1 \d+/-1/\d+ 0 SC ", line), line
    logs.close()


def test_without_a_format_the_connect_line_is_logged(lb, tcp_servers) -> None:
    srv = tcp_servers("s1")
    logs, log_port = udp_listener()
    port = free_port()
    lb.start(CFG.format(log_port=log_port, option="", port=port, addr=srv.addr), [port])
    _, s = read_line(port)
    s.close()
    line = next_line(logs, "Connect from")
    assert re.search(rf"Connect from 127\.0\.0\.1:\d+ to [\d.]*:{port} \(fe/TCP\)", line), line
    logs.close()


def test_idle_session_times_out_side_by_side_and_logs_cd(lb, tcp_servers) -> None:
    """HAProxy 2.6 (checked side by side): at `timeout client` the client's direction ends; the
    client is closed when `timeout server` passes too; the log shows the client timeout."""
    import time

    srv = tcp_servers("s1", mode="hold")
    logs, log_port = udp_listener()
    port = free_port()
    cfg = CFG.format(log_port=log_port, option="option tcplog", port=port, addr=srv.addr)
    lb.start(cfg.replace("timeout client 5s", "timeout client 300ms").replace("timeout server 5s",
                                                                            "timeout server 900ms"), [port])
    name, s = read_line(port)
    assert name == "s1"
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""
    assert 0.8 < time.monotonic() - t0 < 3.0
    s.close()
    line = next_line(logs, "fe be/s1")
    m = re.search(r"fe be/s1 \d+/\d+/(\d+) \d+ cD ", line)
    assert m and int(m.group(1)) >= 850, line
    logs.close()


def test_client_half_close_then_server_fin_timeout(lb, tcp_servers) -> None:
    """Once the client shut its output, the proxy shuts the server's: `timeout server-fin` then
    replaces `timeout server` (HAProxy 2.6 does the same; `client-fin` would not apply here)."""
    import time

    srv = tcp_servers("s1", mode="hold")  # greets, then neither reads nor closes
    logs, log_port = udp_listener()
    port = free_port()
    cfg = CFG.format(log_port=log_port, option="option tcplog\n    timeout server-fin 400ms\n    timeout client-fin 100ms",
                     port=port, addr=srv.addr)
    lb.start(cfg, [port])
    name, s = read_line(port)
    assert name == "s1"
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""
    assert 0.3 < time.monotonic() - t0 < 3.0  # not the 5 s of timeout server
    s.close()
    line = next_line(logs, "fe be/s1")
    assert re.search(r"fe be/s1 \d+/\d+/\d+ \d+ sD ", line), line
    logs.close()
