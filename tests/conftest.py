"""Shared fixtures: real haproxy-py processes on loopback and small real backends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lb_command() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "haproxy-py")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "haproxy_py"]


_GIVEN: set[int] = set()  # ports free_port() has handed out: free, but maybe not bound yet


def free_port() -> int:
    """A free port below the ephemeral range (so outgoing connections cannot take it meanwhile),
    never one it gave before: a test takes several before binding any (a port meant to stay closed
    once came out equal to the frontend's)."""
    import random

    for _ in range(500):
        port = random.randint(20000, 32000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port")


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:port, reading the kernel's table (no probe traffic)."""
    deadline = time.monotonic() + timeout
    hexport = f"{port:04X}"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"haproxy-py exited with {proc.returncode} before listening")
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                    return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


class LB:
    """One haproxy-py process started on a config text; stopped by pid at teardown."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def write(self, text: str, name: str = "haproxy.cfg") -> str:
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run(self, args: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(lb_command() + args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, text: str, ports: list[int], extra: list[str] | None = None) -> subprocess.Popen[bytes]:
        path = self.write(text)
        log = open(os.path.join(self.workdir, "lb.log"), "wb")
        proc = subprocess.Popen(lb_command() + ["-db", "-f", path, *(extra or [])], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        try:
            for p in ports:
                wait_listening(p, proc)
        except AssertionError:
            raise AssertionError(self.log())
        return proc

    def log(self) -> str:
        try:
            with open(os.path.join(self.workdir, "lb.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


@pytest.fixture
def lb() -> Iterator[LB]:
    d = tempfile.mkdtemp(prefix="hpy-")
    runner = LB(d)
    yield runner
    runner.stop()
    shutil.rmtree(d, ignore_errors=True)


class TCPServer:
    """A threaded TCP server: greets with its name, or echoes, or records; counts live connections."""

    def __init__(self, name: str, mode: str = "greet") -> None:
        self.name = name
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.active = 0
        self.max_active = 0
        self.accepted = 0
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c: socket.socket) -> None:
        with self.lock:
            self.active += 1
            self.accepted += 1
            self.max_active = max(self.max_active, self.active)
        try:
            c.settimeout(10)
            if self.mode == "greet":
                c.sendall(f"{self.name}\n".encode())
                while c.recv(65536):
                    pass
            elif self.mode == "echo":
                while data := c.recv(65536):
                    c.sendall(data)
            elif self.mode == "collect":
                # read everything until the client half-closes, then answer with the size and a tail
                chunks = []
                while data := c.recv(65536):
                    chunks.append(data)
                body = b"".join(chunks)
                self.received.append(body)
                c.sendall(f"{self.name} got {len(body)}\n".encode() + b"x" * 200_000)
                c.shutdown(socket.SHUT_WR)
            elif self.mode == "hold":
                c.sendall(f"{self.name}\n".encode())
                self.release.wait(10)
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            c.close()

    def close(self) -> None:
        self.stopped.set()
        self.release.set()
        self.sock.close()


@pytest.fixture
def tcp_servers() -> Iterator[list[TCPServer]]:
    made: list[TCPServer] = []

    class Factory(list):  # type: ignore[type-arg]
        def __call__(self, name: str, mode: str = "greet") -> TCPServer:
            s = TCPServer(name, mode)
            made.append(s)
            return s

    yield Factory()  # type: ignore[misc]
    for s in made:
        s.close()


def read_line(port: int, src: str | None = None, timeout: float = 5.0) -> tuple[str, socket.socket]:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0) if src else None)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    return data.decode().strip(), s


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def pid_listens_on(pid: int, port: int) -> bool:
    wanted = listening_inodes(port)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in wanted:
            return True
    return False


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout: float, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


class Hammer:
    """Client threads making short connections (read the greeting line, close), counting failures."""

    def __init__(self, port: int, clients: int = 4, max_seconds: float = 30.0) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._max = max_seconds
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "Hammer":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self) -> None:
        end = time.monotonic() + self._max
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                name, s = read_line(self.port, timeout=5)
                s.close()
                with self._lock:
                    if name:
                        self.ok += 1
                        self.seen.add(name)
                    else:
                        self.failures.append("empty answer")
            except OSError as e:
                with self._lock:
                    self.failures.append(repr(e))


def stats_command(path: str, line: str) -> str:
    """One command on a stats socket (one command per connection); the whole answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def stat_field(csv: str, proxy: str, name: str, field: str) -> str:
    """A field of one row of `show stat` CSV output."""
    header = csv.splitlines()[0].lstrip("# ").split(",")
    for line in csv.splitlines()[1:]:
        fields = line.split(",")
        if fields[:2] == [proxy, name]:
            return fields[header.index(field)]
    raise AssertionError(f"no {proxy}/{name} row in:\n{csv}")
