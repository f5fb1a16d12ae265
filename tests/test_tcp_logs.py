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
