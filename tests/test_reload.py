"""Daemon mode, zero-drop reloads (-sf), hard reloads (-st), failed reloads, privileges."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import time

import pytest

from conftest import Hammer, free_port, pid_alive, pid_listens_on, read_line, wait_until

CFG = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend {name}
backend {name}
    server {name}_1 {addr}
{extra}"""


class Daemons:
    def __init__(self, lb) -> None:  # type: ignore[no-untyped-def]
        self.lb = lb
        self.pidfile = os.path.join(lb.workdir, "lb.pid")
        self.pids: list[int] = []

    def launch(self, text: str, *extra: str, expect: int = 0) -> int:
        path = self.lb.write(text, f"cfg{len(self.pids)}.cfg")
        r = self.lb.run(["-D", "-p", self.pidfile, "-f", path, *extra])
        assert r.returncode == expect, r.stderr
        if expect != 0:
            return -1
        with open(self.pidfile) as f:
            pid = int(f.read())
        self.pids.append(pid)
        return pid

    def cleanup(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def daemons(lb):  # type: ignore[no-untyped-def]
    d = Daemons(lb)
    yield d
    d.cleanup()


def test_soft_reload_hands_sockets_over_and_old_finishes(daemons, tcp_servers) -> None:
    old, new = tcp_servers("old", mode="echo"), tcp_servers("new")
    port = free_port()
    old_pid = daemons.launch(CFG.format(port=port, name="old", addr=old.addr, extra=""))
    assert wait_until(lambda: pid_listens_on(old_pid, port), 10)
    inflight = socket.create_connection(("127.0.0.1", port), timeout=5)
    inflight.sendall(b"ping")
    assert inflight.recv(4) == b"ping"

    new_pid = daemons.launch(CFG.format(port=port, name="new", addr=new.addr, extra=""), "-sf", str(old_pid))
    assert new_pid != old_pid
    assert wait_until(lambda: pid_listens_on(new_pid, port), 10)
    assert wait_until(lambda: not pid_listens_on(old_pid, port), 5), "old process still listens"
    assert pid_alive(old_pid), "old process died with a session in flight"
    for _ in range(3):
        name, s = read_line(port)
        s.close()
        assert name == "new"
    inflight.sendall(b"pong")
    assert inflight.recv(4) == b"pong"  # the old session is still served
    inflight.close()
    assert wait_until(lambda: not pid_alive(old_pid), 5), "old process did not exit once idle"


def test_twenty_reloads_under_load_lose_nothing(daemons, tcp_servers) -> None:
    a, b = tcp_servers("a"), tcp_servers("b")
    port = free_port()
    cfgs = [CFG.format(port=port, name=n, addr=s.addr, extra="") for n, s in (("a", a), ("b", b))]
    pid = daemons.launch(cfgs[0])
    assert wait_until(lambda: pid_listens_on(pid, port), 10)
    with Hammer(port, clients=4) as hammer:
        assert wait_until(lambda: hammer.ok > 20, 5)
        for i in range(20):
            pid = daemons.launch(cfgs[(i + 1) % 2], "-sf", str(pid))
            before = hammer.ok
            assert wait_until(lambda: hammer.ok > before + 5, 5)
    assert hammer.failures == [], hammer.failures[:5]
    assert hammer.ok > 200
    assert wait_until(lambda: sum(pid_alive(p) for p in daemons.pids) == 1, 10)
    assert pid_alive(daemons.pids[-1])
    name, s = read_line(port)
    s.close()
    assert name == "a"  # 20 reloads: the last configuration is the first one again


def test_hard_reload_terminates_old_at_once(daemons, tcp_servers) -> None:
    old, new = tcp_servers("old", mode="echo"), tcp_servers("new")
    port = free_port()
    old_pid = daemons.launch(CFG.format(port=port, name="old", addr=old.addr, extra=""))
    inflight = socket.create_connection(("127.0.0.1", port), timeout=5)
    inflight.sendall(b"x")
    assert inflight.recv(1) == b"x"
    daemons.launch(CFG.format(port=port, name="new", addr=new.addr, extra=""), "-st", str(old_pid))
    assert wait_until(lambda: not pid_alive(old_pid), 3)
    assert inflight.recv(1) == b""
    name, s = read_line(port)
    s.close()
    assert name == "new"


def test_failed_reload_leaves_old_process_serving(daemons, tcp_servers) -> None:
    old = tcp_servers("old")
    port = free_port()
    old_pid = daemons.launch(CFG.format(port=port, name="old", addr=old.addr, extra=""))
    bad = CFG.format(port=port, name="new", addr="127.0.0.1:99999", extra="")
    daemons.launch(bad, "-sf", str(old_pid), expect=1)
    with open(daemons.pidfile) as f:
        assert int(f.read()) == old_pid
    assert pid_alive(old_pid) and pid_listens_on(old_pid, port)
    name, s = read_line(port)
    s.close()
    assert name == "old"


def test_pause_and_resume_listeners_with_sigttou_sigttin(daemons, tcp_servers) -> None:
    srv = tcp_servers("p")
    port = free_port()
    pid = daemons.launch(CFG.format(port=port, name="p", addr=srv.addr, extra=""))
    os.kill(pid, signal.SIGTTOU)
    time.sleep(0.2)  # no observable event marks the pause; give the signal time to land
    s = socket.create_connection(("127.0.0.1", port), timeout=5)  # lands in the kernel backlog
    s.settimeout(0.5)
    with pytest.raises(TimeoutError):
        s.recv(10)
    os.kill(pid, signal.SIGTTIN)
    s.settimeout(5)
    assert s.recv(10) == b"p\n"
    s.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_user_nobody_serves_as_nobody(daemons, tcp_servers) -> None:
    srv = tcp_servers("n")
    port = free_port()
    pid = daemons.launch(CFG.format(port=port, name="n", addr=srv.addr, extra="") .replace(
        "defaults", "global\n    user nobody\n\ndefaults", 1))
    nobody = pwd.getpwnam("nobody")
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert all(int(u) == nobody.pw_uid for u in uids), uids
    name, s = read_line(port)
    s.close()
    assert name == "n"


def test_long_transfer_survives_a_reload_intact(daemons, tcp_servers) -> None:
    import hashlib

    srv = tcp_servers("c", mode="collect")
    port = free_port()
    old_pid = daemons.launch(CFG.format(port=port, name="c", addr=srv.addr, extra=""))
    payload = os.urandom(1 << 20) * 24  # 24 MiB, sent in pieces around the reload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload[: 8 << 20])
        daemons.launch(CFG.format(port=port, name="c", addr=srv.addr, extra=""), "-sf", str(old_pid))
        s.sendall(payload[8 << 20 :])
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(1 << 16):
            got += chunk
    assert hashlib.sha256(srv.received[0]).digest() == hashlib.sha256(payload).digest()
    assert got.startswith(f"c got {len(payload)}\n".encode())
    assert wait_until(lambda: not pid_alive(old_pid), 5)


def test_grace_keeps_accepting_for_a_while_after_sigusr1(daemons, tcp_servers) -> None:
    srv = tcp_servers("g")
    port = free_port()
    text = CFG.format(port=port, name="g", addr=srv.addr, extra="").replace("defaults", "global\n    grace 1s\n\ndefaults", 1)
    pid = daemons.launch(text)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGUSR1)
    name, s = read_line(port)  # still served during the grace period
    s.close()
    assert name == "g" and time.monotonic() - t0 < 0.9
    assert wait_until(lambda: not pid_alive(pid), 5)
    assert time.monotonic() - t0 >= 0.9


def test_systemd_readiness_is_announced_with_the_serving_pid(lb, tcp_servers) -> None:
    import subprocess

    from conftest import lb_command

    srv = tcp_servers("n")
    port = free_port()
    notify_path = os.path.join(lb.workdir, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    path = lb.write(CFG.format(port=port, name="n", addr=srv.addr, extra=""))
    proc = subprocess.Popen(lb_command() + ["-db", "-f", path], env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        message = notify.recv(4096).decode()
        assert message.split("\n") == [f"MAINPID={proc.pid}", "READY=1"]
        assert pid_listens_on(proc.pid, port)  # ready means serving
    finally:
        proc.terminate()
        proc.wait(5)
        notify.close()
