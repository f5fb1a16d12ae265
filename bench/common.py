"""Shared pieces of the benchmarks: a fast origin (nginx), the load generator (wrk), and the
three targets compared side by side: no proxy, HAProxy (Debian package) and haproxy-py.

Everything runs on loopback, bounded in time, and every process started here is stopped here,
by pid. Install the tools with `bench/setup.sh` (Debian packages haproxy, nginx, wrk, and a C
compiler for the fixed-rate load generator bench/rate.c).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (run bench/setup.sh)")


def haproxy_py_cmd() -> list[str]:
    exe = os.path.join(ROOT, ".venv", "bin", "haproxy-py")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "haproxy_py"]


@contextmanager
def process(cmd: list[str], port: int | None, log: str) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        if port is not None:
            wait_port(port)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def nginx_origin(files: dict[str, int]) -> Iterator[int]:
    """nginx serving files of the given sizes from a temporary root on a loopback port."""
    d = tempfile.mkdtemp(prefix="bench-nginx-")
    for name, size in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(os.urandom(min(size, 1 << 20)) * (size // (1 << 20)) if size >= 1 << 20 else os.urandom(size))
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
    server {{ listen 127.0.0.1:{port} backlog=4096; root {d}; }}
}}
""")
    try:
        with process(["nginx", "-c", conf, "-p", d], port, os.path.join(d, "out.log")):
            yield port
    finally:
        shutil.rmtree(d, ignore_errors=True)


TARGETS = ("direct", "haproxy", "haproxy-py")
# pid of the proxy process most recently started by target(), for CPU accounting
last_pid: int | None = None


@contextmanager
def target(kind: str, mode: str, origin_port: int, extra_global: str = "") -> Iterator[int]:
    """A port that reaches the origin: directly, through HAProxy, or through haproxy-py."""
    if kind == "direct":
        yield origin_port
        return
    port = free_port()
    d = tempfile.mkdtemp(prefix="bench-lb-")
    cfg = os.path.join(d, "lb.cfg")
    with open(cfg, "w") as f:
        f.write(f"""
global
    maxconn 8000
{extra_global}
defaults
    mode {mode}
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server origin 127.0.0.1:{origin_port}
""")
    cmd = ["haproxy", "-db", "-f", cfg] if kind == "haproxy" else [*haproxy_py_cmd(), "-db", "-f", cfg]
    global last_pid
    try:
        with process(cmd, port, os.path.join(d, "lb.log")) as proc:
            last_pid = proc.pid
            yield port
    finally:
        shutil.rmtree(d, ignore_errors=True)


def wrk(url: str, seconds: int, connections: int, threads: int = 1, headers: tuple[str, ...] = ()) -> dict[str, float]:
    """Run wrk; returns requests/s, transfer bytes/s and latency percentiles in ms."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 30).stdout
    return parse_wrk(out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_wrk(out: str) -> dict[str, float]:
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    res["bytes_per_s"] = float(m.group(1)) * _BYTES.get(m.group(2), 1) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(\w+)", out, re.M)
        res[f"p{pct}_ms"] = float(m.group(1)) * _UNITS.get(m.group(2), 1) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["errors"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] += sum(float(x) for x in m.groups())
    return res


def build(name: str) -> str:
    """bench/NAME.c compiled (again only when the source changed) into bench/.build/NAME."""
    src = os.path.join(HERE, f"{name}.c")
    exe = os.path.join(HERE, ".build", name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", "-o", exe, src, "-lm"], check=True)
    return exe


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"
