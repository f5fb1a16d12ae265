"""Health checks end to end: the real haproxy-py binary, mode tcp frontends, real sockets.

Traffic goes to `TCPServer`s that greet with their name; HTTP checks go to a separate `CheckServer`
per server (the `port` server parameter), whose answer the test changes while the proxy runs.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import LB, free_port, read_line, wait_until
from http_backends import read_head

DEFAULTS = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


def config(port: int, servers: list[str], backend_extra: str = "", global_extra: str = "",
           defaults_extra: str = "") -> str:
    lines = ["global", global_extra, DEFAULTS + defaults_extra, "frontend fe", f"    bind 127.0.0.1:{port}",
             "    default_backend be", "backend be", backend_extra]
    lines += [f"    server {s}" for s in servers]
    return "\n".join(lines) + "\n"


class CheckServer:
    """Answers HTTP checks: `status` (and `body`) may change at any time; "hang" never answers.
    Records the time and raw bytes of every check request."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.hang = False
        self.requests: list[tuple[float, bytes]] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed: list[float] = []  # how long each hung connection lived until the proxy closed it
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c: socket.socket) -> None:
        t0 = time.monotonic()
        c.settimeout(5)
        try:
            data = read_head(c)
            if b"\r\n\r\n" not in data:
                return  # closed before a whole head
            self.requests.append((t0, data))
            if self.hang:
                try:
                    while c.recv(4096):
                        pass
                except ConnectionResetError:
                    pass  # the proxy closes check connections with a reset, as HAProxy does
                self.closed.append(time.monotonic() - t0)
                return
            reason = {200: "OK", 302: "Found", 503: "Service Unavailable"}.get(self.status, "Status")
            c.sendall(f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: {len(self.body)}\r\n\r\n".encode()
                      + self.body)
        except OSError:
            pass
        finally:
            c.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def check_servers() -> Iterator[list[CheckServer]]:
    made: list[CheckServer] = []

    class Factory(list):  # type: ignore[type-arg]
        def __call__(self) -> CheckServer:
            s = CheckServer()
            made.append(s)
            return s

    yield Factory()  # type: ignore[misc]
    for s in made:
        s.close()


def names(port: int, n: int) -> list[str]:
    out = []
    for _ in range(n):
        name, s = read_line(port)
        s.close()
        out.append(name)
    return out


def wait_log(lb: LB, pattern: str, timeout: float = 5.0) -> re.Match[str]:
    rx = re.compile(pattern, re.M)
    assert wait_until(lambda: rx.search(lb.log()) is not None, timeout), lb.log()
    m = rx.search(lb.log())
    assert m is not None
    return m


def test_http_check_failure_takes_server_out_and_back(lb: LB, tcp_servers, check_servers) -> None:
    s1, s2 = tcp_servers("s1"), tcp_servers("s2")
    c1, c2 = check_servers(), check_servers()
    port = free_port()
    chk = "check inter 100ms rise 2 fall 2"
    lb.start(config(port, [f"s1 {s1.addr} {chk} port {c1.port}", f"s2 {s2.addr} {chk} port {c2.port}"],
                    "    option httpchk GET /health"), [port])
    assert wait_until(lambda: len(c1.requests) >= 2, 3)
    assert c1.requests[0][1] == b"GET /health HTTP/1.0\r\n\r\n"
    assert sorted(names(port, 4)) == ["s1", "s1", "s2", "s2"]

    c1.status = 503
    pid = lb.procs[0].pid
    wait_log(lb, rf"^\[WARNING\]  \({pid}\) : Server be/s1 is DOWN, reason: Layer7 wrong status, code: 503, "
                 r'info: "Service Unavailable", check duration: \d+ms\. 1 active and 0 backup servers left\. '
                 r"0 sessions active, 0 requeued, 0 remaining in queue\.$")
    assert names(port, 6) == ["s2"] * 6

    c1.status = 200
    wait_log(lb, rf"^\[WARNING\]  \({pid}\) : Server be/s1 is UP, reason: Layer7 check passed, code: 200, check "
                 r"duration: \d+ms\. 2 active and 0 backup servers online\. 0 sessions requeued, 0 total in queue\.$")
    assert sorted(names(port, 4)) == ["s1", "s1", "s2", "s2"]
    assert "health checks are not available" not in lb.log()


def test_backup_takes_over_then_backend_alert(lb: LB, tcp_servers, check_servers) -> None:
    s1, b1 = tcp_servers("s1"), tcp_servers("b1")
    cb = check_servers()
    dead = free_port()
    port = free_port()
    lb.start(config(port, [f"s1 {s1.addr} check inter 100ms port {dead}",
                           f"b1 {b1.addr} check inter 100ms rise 1 fall 1 port {cb.port} backup"],
                    "    option httpchk"), [port])
    wait_log(lb, r"Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check "
                 r"duration: \d+ms\. 0 active and 1 backup servers left\. Running on backup\.")
    assert names(port, 3) == ["b1"] * 3
    assert "has no server available" not in lb.log()
    cb.status = 503
    wait_log(lb, r"^\[ALERT\]    \(\d+\) : backend 'be' has no server available!$")
    assert "Backup Server be/b1 is DOWN" in lb.log()
    # no server: the client is closed at once
    with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
        assert c.recv(100) == b""


def test_expect_status_and_string_rules(lb: LB, tcp_servers, check_servers) -> None:
    s1, s2 = tcp_servers("s1"), tcp_servers("s2")
    c1, c2 = check_servers(), check_servers()
    c1.status = 302
    c2.body = b"all systems go"
    port = free_port()
    chk = "check inter 100ms rise 1 fall 1"
    lb.start(config(port, [f"s1 {s1.addr} {chk} port {c1.port}", f"s2 {s2.addr} {chk} port {c2.port}"],
                    "    option httpchk GET /ready\n    http-check expect status 200\n"
                    "    http-check expect string systems"), [port])
    wait_log(lb, r'Server be/s1 is DOWN, reason: Layer7 wrong status, code: 302, info: "Found"')
    assert names(port, 4) == ["s2"] * 4
    c2.body = b"degraded"
    wait_log(lb, r'Server be/s2 is DOWN, reason: Layer7 invalid response, info: "HTTP content check did not match"')
    c1.status = 200
    c1.body = b"systems ok"
    wait_log(lb, r"Server be/s1 is UP, reason: Layer7 check passed, code: 200")
    assert names(port, 3) == ["s1"] * 3


def test_timeout_check_ends_a_silent_check(lb: LB, tcp_servers, check_servers) -> None:
    s1, s2 = tcp_servers("s1"), tcp_servers("s2")
    c1, c2 = check_servers(), check_servers()
    c1.hang = True
    port = free_port()
    chk = "check inter 3s rise 1 fall 1"
    lb.start(config(port, [f"s1 {s1.addr} {chk} port {c1.port}", f"s2 {s2.addr} {chk} port {c2.port}"],
                    "    option httpchk\n    timeout check 1200ms\n    timeout connect 3s"), [port])
    m = wait_log(lb, r"Server be/s1 is DOWN, reason: Layer7 timeout, check duration: (\d+)ms", 5)
    # at `timeout check`, well before `timeout connect` (3s) would end it: the upper bounds leave
    # room for this machine's stalls
    assert 1150 <= int(m.group(1)) < 2500
    assert wait_until(lambda: bool(c1.closed), 2)
    assert 1.1 <= c1.closed[0] < 2.6  # the proxy closed the hung check connection at the timeout
    assert names(port, 3) == ["s2"] * 3


def test_log_targets_get_rfc3164_datagrams(lb: LB, tcp_servers) -> None:
    s1 = tcp_servers("s1")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    try:
        dead = free_port()
        port = free_port()
        lb.start(config(port, [f"s1 {s1.addr}", f"s2 127.0.0.1:{dead} check inter 100ms"], "    log global",
                        global_extra=f"    log 127.0.0.1:{udp.getsockname()[1]} local0"), [port])
        pid = lb.procs[0].pid
        data = udp.recv(4096).decode()
    finally:
        udp.close()
    assert re.fullmatch(rf"<129>[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d haproxy\[{pid}\]: Server be/s2 is DOWN, "
                        r'reason: Layer4 connection problem, info: "Connection refused", check duration: \d+ms\. '
                        r"1 active and 0 backup servers left\. 0 sessions active, 0 requeued, 0 remaining in "
                        r"queue\.\n", data), data


def test_quiet_mode_prints_no_state_changes(lb: LB, tcp_servers) -> None:
    s1 = tcp_servers("s1")
    dead = free_port()
    port = free_port()
    proc = lb.start(config(port, [f"s1 {s1.addr}", f"s2 127.0.0.1:{dead} check inter 50ms"]), [port], ["-q"])
    # the dead server is out of rotation once its first check ran
    assert wait_until(lambda: names(port, 4) == ["s1"] * 4, 3)
    assert proc.poll() is None and lb.log() == ""


def test_on_marked_down_shutdown_sessions_closes_client_connections(lb: LB, tcp_servers, check_servers) -> None:
    s1 = tcp_servers("s1", mode="hold")
    s2 = tcp_servers("s2", mode="hold")
    c1, c2 = check_servers(), check_servers()
    port = free_port()
    lb.start(config(port, [f"s1 {s1.addr} check inter 100ms rise 1 fall 1 port {c1.port} "
                           "on-marked-down shutdown-sessions",
                           f"s2 {s2.addr} check inter 100ms rise 1 fall 1 port {c2.port}"],
                    "    option httpchk"), [port])
    held = {}
    for _ in range(2):
        name, sock = read_line(port)
        held[name] = sock
    assert set(held) == {"s1", "s2"}
    c1.status = c2.status = 503
    wait_log(lb, r"Server be/s1 is DOWN.* 1 sessions active")
    wait_log(lb, r"Server be/s2 is DOWN.* 1 sessions active")
    held["s1"].settimeout(3)
    assert held["s1"].recv(100) == b""  # killed with its server
    held["s2"].settimeout(0.3)
    with pytest.raises(socket.timeout):
        held["s2"].recv(100)  # s2 has no shutdown-sessions: its session lives on
    for s in held.values():
        s.close()


def test_config_check_still_valid_with_checks(lb: LB) -> None:
    port = free_port()
    path = lb.write(config(port, ["s1 127.0.0.1:9 check inter 1s fastinter 200ms downinter 5s rise 3 fall 2"],
                           "    option httpchk GET /\n    http-check expect rstatus ^2"))
    r = lb.run(["-c", "-f", path])
    assert r.returncode == 0, r.stderr
