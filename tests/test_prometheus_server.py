"""A real Prometheus server (Debian package `prometheus`) scrapes a running haproxy-py.

The test starts haproxy-py with `http-request use-service prometheus-exporter` and two checked
servers, starts Prometheus on a loopback port with a temporary config and data directory, waits for
it to scrape, then makes one server fail its health checks and asks Prometheus' HTTP API for
`haproxy_server_status` and `haproxy_backend_active_servers` until it reports the server DOWN.
Everything is bounded; Prometheus is stopped by its PID. `promtool check metrics` judges the live
exposition too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from conftest import LB, free_port, lb_command, wait_until
from http_backends import read_head


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing (Debian package {package}); CI must install it")
        pytest.skip(f"{binary} not installed (apt-get install {package})")
    return path


def need_exporter() -> None:
    out = subprocess.run(lb_command() + ["-vv"], capture_output=True, text=True, timeout=20).stdout
    if "prometheus-exporter" not in out:
        pytest.skip("haproxy-py -vv does not list the prometheus-exporter service yet")


class HealthServer:
    """An HTTP/1.0 responder for checks and traffic; `stop()` closes its port (checks then fail L4CON)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)  # here, not in the thread: stop() may close it before the thread runs
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        end = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                read_head(c)
                body = f"{self.name}\n".encode()
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            finally:
                c.close()

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def haproxy_py() -> Iterator[dict]:
    need_exporter()
    s1, s2 = HealthServer("s1"), HealthServer("s2")
    port, mon = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="hpy-prom-")
    lb = LB(d)
    cfg = ("global\n    maxconn 200\n"
           "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
           f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n"
           f"frontend mon\n    bind 127.0.0.1:{mon}\n"
           "    http-request use-service prometheus-exporter if { path /metrics }\n"
           "backend be\n    option httpchk GET /\n"
           f"    server s1 127.0.0.1:{s1.port} check inter 300ms rise 1 fall 1\n"
           f"    server s2 127.0.0.1:{s2.port} check inter 300ms rise 1 fall 1\n")
    try:
        lb.start(cfg, [port, mon])
        yield {"port": port, "mon": mon, "s1": s1, "s2": s2, "dir": d}
    finally:
        lb.stop()
        s1.stop()
        s2.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def prometheus(haproxy_py) -> Iterator[str]:
    binary = need("prometheus", "prometheus")
    web = free_port()
    d = haproxy_py["dir"]
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                "scrape_configs:\n  - job_name: haproxy\n    metrics_path: /metrics\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{haproxy_py['mon']}']\n")
    log = open(os.path.join(d, "prometheus.log"), "wb")
    proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(d, 'data')}",
                             f"--web.listen-address=127.0.0.1:{web}", "--storage.tsdb.retention.time=1h",
                             "--log.level=warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{web}"
    try:
        ok = wait_until(lambda: _get(f"{base}/-/ready") is not None, 30.0, 0.2)
        if not ok:
            with open(os.path.join(d, "prometheus.log"), "rb") as f:
                pytest.fail("prometheus did not become ready:\n" + f.read().decode(errors="replace")[-3000:])
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except OSError:
        return None


def query(base: str, expr: str) -> list[dict]:
    raw = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if raw is None:
        return []
    doc = json.loads(raw)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def scalar(base: str, expr: str) -> float | None:
    res = query(base, expr)
    return float(res[0]["value"][1]) if len(res) == 1 else None


def test_prometheus_scrapes_and_sees_a_server_go_down(haproxy_py, prometheus) -> None:
    base = prometheus
    up = 'haproxy_server_status{proxy="be",server="s2",state="UP"}'
    down = 'haproxy_server_status{proxy="be",server="s2",state="DOWN"}'
    active = 'haproxy_backend_active_servers{proxy="be"}'
    assert wait_until(lambda: scalar(base, up) == 1.0 and scalar(base, active) == 2.0, 20.0, 0.5), \
        (query(base, "up"), query(base, 'haproxy_server_status{server="s2"} == 1'))
    assert scalar(base, 'up{job="haproxy"}') == 1.0
    # every state is a series of its own: five per server
    assert len(query(base, 'haproxy_server_status{proxy="be",server="s1"}')) == 5

    for _ in range(4):
        assert _get(f"http://127.0.0.1:{haproxy_py['port']}/") in (b"s1\n", b"s2\n")
    served = 'sum(haproxy_server_http_responses_total{proxy="be",code="2xx"})'
    assert wait_until(lambda: scalar(base, served) == 4.0, 10.0, 0.5), query(base, served)
    assert scalar(base, 'haproxy_backend_http_responses_total{proxy="be",code="2xx"}') == 4.0

    haproxy_py["s2"].stop()  # its checks now fail with L4CON: DOWN after one failure (fall 1)
    assert wait_until(lambda: scalar(base, down) == 1.0, 20.0, 0.5), \
        query(base, 'haproxy_server_status{server="s2"}')
    assert scalar(base, up) == 0.0
    assert wait_until(lambda: scalar(base, active) == 1.0, 10.0, 0.5), query(base, active)
    assert scalar(base, 'haproxy_server_check_status{proxy="be",server="s2",state="L4CON"}') == 1.0
    assert scalar(base, 'haproxy_server_status{proxy="be",server="s1",state="UP"}') == 1.0


def test_promtool_accepts_the_live_exposition(haproxy_py) -> None:
    promtool = need("promtool", "prometheus")
    body = _get(f"http://127.0.0.1:{haproxy_py['mon']}/metrics", timeout=5.0)
    assert body and b"# TYPE haproxy_server_status gauge" in body
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr.decode()
