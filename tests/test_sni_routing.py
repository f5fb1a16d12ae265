"""The SNI router sample (samples/sni-router.cfg + samples/sni.map) end to end, with real TLS.

A real haproxy-py process runs the sample, moved onto loopback (bind and server addresses and the
map path rewritten, every rule kept); the servers are TLS servers holding the certificate, and
the clients are Python's ssl and curl. A completed, verified handshake proves the proxy passed
the TLS stream through untouched; the answering server's name proves the routing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT, LB, free_port
from http_backends import read_head

SAMPLE = os.path.join(ROOT, "samples", "sni-router.cfg")
SAMPLE_MAP = os.path.join(ROOT, "samples", "sni.map")
NAMES = ["app.example.com", "www.example.com", "api.example.com", "other.example.com"]
SERVERS = {"app1": "app_be", "app2": "app_be", "api1": "api_be", "api2": "api_be", "web1": "default_be",
           "web2": "default_be"}


class TLSServer:
    """A TLS server answering one HTTP/1.1 response with its name; records the SNI it was sent."""

    def __init__(self, name: str, context: ssl.SSLContext) -> None:
        self.name = name
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.handshakes_failed = 0
        self.snis: list[str | None] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.handshakes_failed += 1
            conn.close()
            return
        try:
            with self.lock:
                self.snis.append(getattr(tls, "sni", None))
            read_head(tls)
            body = f"{self.name}\n".encode()
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            tls.unwrap()
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def pki() -> Iterator[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    d = tempfile.mkdtemp(prefix="hpy-sni-")
    san = ",".join(f"DNS:{n}" for n in NAMES)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem"),
                    "-days", "2", "-subj", "/CN=app.example.com", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=30)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Router:
    def __init__(self, port: int, servers: dict[str, TLSServer], cafile: str) -> None:
        self.port = port
        self.servers = servers
        self.cafile = cafile


def sample_on_loopback(port: int, servers: dict[str, TLSServer]) -> str:
    """The sample with its addresses moved to loopback; every rule line is kept as shipped."""
    with open(SAMPLE) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^(\s*bind) :443$", rf"\1 127.0.0.1:{port}", text)
    assert n == 1
    text = text.replace("/etc/haproxy-py/sni.map", SAMPLE_MAP)
    for name, srv in servers.items():
        text, n = re.subn(rf"(?m)^(\s*server {name}) \S+", rf"\1 127.0.0.1:{srv.port}", text)
        assert n == 1, name
    return text


@pytest.fixture(scope="module")
def router(pki: str) -> Iterator[Router]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "cert.pem"), os.path.join(pki, "key.pem"))

    def remember_sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.sni = name  # type: ignore[attr-defined]

    ctx.sni_callback = remember_sni  # type: ignore[assignment]
    servers = {name: TLSServer(name, ctx) for name in SERVERS}
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="hpy-sni-lb-")
    lb = LB(workdir)
    try:
        lb.start(sample_on_loopback(port, servers), [port])
        yield Router(port, servers, os.path.join(pki, "cert.pem"))
    finally:
        lb.stop()
        for s in servers.values():
            s.close()
        shutil.rmtree(workdir, ignore_errors=True)


def https_get(router: Router, server_name: str | None, source: str | None = None, verify: bool = True) -> str:
    """A verified TLS 1.2/1.3 connection through the router; returns the answering server."""
    ctx = ssl.create_default_context(cafile=router.cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", router.port), timeout=5,
                                   source_address=(source, 0) if source else None)
    with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def backend_of(server: str) -> str:
    return SERVERS[server]


@pytest.mark.parametrize(
    ("sni", "backend"),
    [
        ("app.example.com", "app_be"),
        ("www.example.com", "app_be"),
        ("api.example.com", "api_be"),
        ("APP.Example.COM", "app_be"),  # lower-cased before the map lookup
        ("other.example.com", "default_be"),  # not in the map: the map's default
    ],
)
def test_python_tls_client_is_routed_by_sni(router: Router, sni: str, backend: str) -> None:
    server = https_get(router, sni)
    assert backend_of(server) == backend
    # the server saw the client's own ClientHello: same SNI, handshake verified end to end
    assert router.servers[server].snis[-1] == sni


def test_client_without_sni_goes_to_the_default_backend(router: Router) -> None:
    assert backend_of(https_get(router, None, verify=False)) == "default_be"


def test_plain_text_goes_to_the_default_backend_at_once(router: Router) -> None:
    before = {n: s.accepted for n, s in router.servers.items()}
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.recv(100)  # the TLS server refuses the bytes and closes
    assert time.monotonic() - t0 < 2.0  # not held for the 5 s inspect-delay
    got = [n for n, s in router.servers.items() if s.accepted > before[n]]
    assert len(got) == 1 and backend_of(got[0]) == "default_be"


def test_same_client_address_sticks_to_one_server(router: Router) -> None:
    seen: dict[str, Counter[str]] = {}
    for i in range(2, 12):
        source = f"127.0.0.{i}"
        seen[source] = Counter(https_get(router, "api.example.com", source=source) for _ in range(3))
    assert all(len(c) == 1 for c in seen.values()), seen  # balance source: one server per address
    used = {next(iter(c)) for c in seen.values()}
    assert used == {"api1", "api2"}, seen  # ... and the addresses spread over both


def test_concurrent_clients_are_routed_independently(router: Router) -> None:
    names = ["app.example.com", "api.example.com", "other.example.com"] * 8
    with ThreadPoolExecutor(max_workers=12) as pool:
        got = list(pool.map(lambda n: backend_of(https_get(router, n)), names))
    assert got == [{"app.example.com": "app_be", "api.example.com": "api_be"}.get(n, "default_be") for n in names]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(("name", "backend"), [("app.example.com", "app_be"), ("api.example.com", "api_be")])
def test_curl_resolve(router: Router, name: str, backend: str) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"{name}:{router.port}:127.0.0.1", "--cacert", router.cafile,
         f"https://{name}:{router.port}/"],
        capture_output=True, text=True, timeout=20,
    )
    assert out.returncode == 0, out.stderr
    assert backend_of(out.stdout.strip()) == backend


def test_sample_is_valid_for_haproxy_and_haproxy_py(tmp_path: os.PathLike[str]) -> None:
    with open(SAMPLE) as f:
        text = f.read().replace("/etc/haproxy-py/sni.map", SAMPLE_MAP)
    path = os.path.join(tmp_path, "sni.cfg")
    with open(path, "w") as f:
        f.write(text)
    commands = [LB(str(tmp_path)).run(["-c", "-f", path])]
    if os.access("/usr/sbin/haproxy", os.X_OK):
        commands.append(subprocess.run(["/usr/sbin/haproxy", "-c", "-f", path], capture_output=True, text=True,
                                       timeout=20))
    for res in commands:
        assert res.returncode == 0, res.stderr
        assert "Configuration file is valid" in res.stdout
