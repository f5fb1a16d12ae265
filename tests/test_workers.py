"""`nbthread N`: N processes share the listeners; the main one keeps the control plane."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter

from conftest import Hammer, free_port, pid_alive, read_line, stat_field, stats_command, wait_until

CFG = """\
global
    nbthread 2
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 {a}
    server s2 {b}
"""


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().split(") ", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def command(sock: str, line: str) -> str:
    return stats_command(sock, line)


def stot(sock: str, proxy: str, name: str) -> int:
    return int(stat_field(stats_command(sock, "show stat"), proxy, name, "stot"))


def test_two_workers_serve_report_and_follow_admin_changes(lb, tcp_servers) -> None:
    a, b = tcp_servers("a"), tcp_servers("b")
    port = free_port()
    sock = os.path.join(lb.workdir, "admin.sock")
    proc = lb.start(CFG.format(sock=sock, port=port, a=a.addr, b=b.addr), [port])
    assert wait_until(lambda: len(children(proc.pid)) == 1, 5), "no worker process"
    with Hammer(port, clients=4) as hammer:
        assert wait_until(lambda: hammer.ok >= 200, 20)
    assert hammer.failures == []
    served = hammer.ok
    # the worker's sessions are folded into the main process's counters within a report interval
    assert wait_until(lambda: stot(sock, "fe", "FRONTEND") == served, 5), (stot(sock, "fe", "FRONTEND"), served)
    assert a.accepted + b.accepted == served
    assert a.accepted > 20 and b.accepted > 20
    # an admin change made in the main process reaches the worker too
    assert command(sock, "disable server be/s1").strip() == ""
    time.sleep(0.2)  # the state message crosses a socketpair; nothing to await from outside
    before = a.accepted
    names = Counter()
    for _ in range(40):
        name, s = read_line(port)
        s.close()
        names[name] += 1
    assert names == Counter({"b": 40})
    assert a.accepted == before


def test_stop_signals_reach_every_worker(lb, tcp_servers) -> None:
    a, b = tcp_servers("a", mode="echo"), tcp_servers("b", mode="echo")
    port = free_port()
    sock = os.path.join(lb.workdir, "admin.sock")
    proc = lb.start(CFG.format(sock=sock, port=port, a=a.addr, b=b.addr), [port])
    assert wait_until(lambda: len(children(proc.pid)) == 1, 5)
    (worker,) = children(proc.pid)
    open_sessions = []
    for _ in range(6):  # in whichever process accepts them
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        open_sessions.append(s)
    proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    # the main process stays while any session is open: its own, or a worker's it waits for
    assert proc.poll() is None
    for s in open_sessions:
        s.sendall(b"y")
        assert s.recv(1) == b"y"
        s.close()
    assert proc.wait(5) == 0
    assert wait_until(lambda: not pid_alive(worker), 5)


def _sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def test_a_burst_of_connections_is_shared_between_processes(lb, tcp_servers) -> None:
    """40 clients connecting at once end up spread over both processes, not in whichever woke first."""
    a = tcp_servers("a", mode="echo")
    port = free_port()
    sock = os.path.join(lb.workdir, "admin.sock")
    proc = lb.start(CFG.format(sock=sock, port=port, a=a.addr, b=a.addr), [port])
    assert wait_until(lambda: len(children(proc.pid)) == 1, 5)
    (worker,) = children(proc.pid)
    pids = (proc.pid, worker)
    before = {pid: _sockets(pid) for pid in pids}
    clients = [socket.socket() for _ in range(40)]
    try:
        for c in clients:
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
        for c in clients:
            c.setblocking(True)
            c.settimeout(5)
            c.sendall(b"x")
        for c in clients:
            assert c.recv(1) == b"x"
        # each proxied session holds two sockets (client and server) in the process that accepted it
        held = {pid: (_sockets(pid) - before[pid]) // 2 for pid in pids}
        assert sum(held.values()) == 40, held
        assert min(held.values()) >= 10, held  # all in one process (36/4 seen) without the share
    finally:
        for c in clients:
            c.close()


# the same proxy in mode http, with one server
HTTP_CFG = CFG.replace("mode tcp", "mode http").replace("    server s2 {b}\n", "")


def test_server_http_counters_of_every_process_reach_the_stats(lb) -> None:
    """req_tot and hrsp_2xx of a server count the responses the worker relayed too."""
    from http_backends import Origin, read_response

    origin = Origin("s1")
    port = free_port()
    sock = os.path.join(lb.workdir, "admin.sock")
    try:
        proc = lb.start(HTTP_CFG.format(sock=sock, port=port, a=origin.addr), [port])
        assert wait_until(lambda: len(children(proc.pid)) == 1, 5)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
        for _ in range(5):  # keep-alive requests on connections spread over both processes
            for c in clients:
                c.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
                assert read_response(c)[0] == 200
        for c in clients:
            c.close()

        def server_row(field: str) -> int:
            return int(stat_field(stats_command(sock, "show stat"), "be", "s1", field) or 0)

        # the worker's part arrives with its next report (every second)
        assert wait_until(lambda: server_row("req_tot") == 40, 5), server_row("req_tot")
        assert server_row("hrsp_2xx") == 40
        # each client connection's first request opened a server connection, the others reused one
        assert (server_row("connect"), server_row("reuse")) == (8, 32)
        assert wait_until(lambda: server_row("srv_icur") == 8, 5), server_row("srv_icur")
    finally:
        origin.close()
