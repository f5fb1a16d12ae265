"""Helpers for the HTTP-mode tests: a recording origin server, raw clients, and a proxy runner that
starts either haproxy-py or (with HTTP_ORACLE=/usr/sbin/haproxy) Debian's HAProxy on the same
configuration, so the same tables can be checked against the oracle.

Everything listens on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

import httptools
from conftest import free_port, lb_command, wait_listening

ORACLE = os.environ.get("HTTP_ORACLE")  # e.g. /usr/sbin/haproxy: run the tables against HAProxy


class Recorded:
    """One request as the origin received it (names as sent, i.e. lower-case through a proxy)."""

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.method = b""
        self.url = b""
        self.version = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.raw = b""  # the bytes of this request as received (head and body)

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


Responder = Callable[[Recorded], "bytes | str | None"]


def text_response(body: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d OK\r\ncontent-length: %d\r\n%b\r\n%b" % (status, len(body), extra, body)


class Origin:
    """A threaded HTTP/1.1 origin that records every request and answers with `respond(request)`.

    `respond` returns the raw response bytes, "close" (close without answering), "hang" (never
    answer), (bytes, "close") (answer, then close the connection unannounced) or None (the default
    answer: 200 with the origin's name). Requests are split with
    httptools, so keep-alive and pipelining from the proxy work.
    """

    def __init__(self, name: str = "s1", respond: Responder | None = None) -> None:
        self.name = name
        self.respond = respond
        self.requests: list[Recorded] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                conn_id = self.accepted
                self._conns.append(c)
            threading.Thread(target=self._serve, args=(c, conn_id), daemon=True).start()

    def _serve(self, c: socket.socket, conn_id: int) -> None:
        done: list[Recorded] = []
        cur: list[Recorded] = []
        raw = bytearray()

        class Proto:
            def on_message_begin(self) -> None:
                cur.append(Recorded(conn_id))

            def on_url(self, url: bytes) -> None:
                cur[-1].url += url

            def on_header(self, name: bytes, value: bytes) -> None:
                cur[-1].headers.append((name, value))

            def on_body(self, body: bytes) -> None:
                cur[-1].body += body

            def on_message_complete(self) -> None:
                done.append(cur.pop())

        proto = Proto()
        parser = httptools.HttpRequestParser(proto)
        parser.set_dangerous_leniencies(lenient_headers=True)  # proxies may forward control bytes in values
        c.settimeout(10)
        try:
            while not self.stopped.is_set():
                try:
                    data = c.recv(65536)
                except (socket.timeout, OSError):
                    return
                if not data:
                    return
                raw += data
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade as e:
                    # record, answer, then echo whatever follows (a tunnel)
                    off = e.args[0]
                    self._finish(done, parser, raw, c)
                    if off < len(data):
                        c.sendall(data[off:])
                    while data := c.recv(65536):
                        c.sendall(data)
                    return
                except httptools.HttpParserError:
                    return
                if not self._finish(done, parser, raw, c):
                    return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _finish(self, done: list[Recorded], parser: httptools.HttpRequestParser, raw: bytearray,
                c: socket.socket) -> bool:
        while done:
            req = done.pop(0)
            req.method = parser.get_method()
            req.version = parser.get_http_version()
            req.raw = bytes(raw)
            raw.clear()
            with self.lock:
                self.requests.append(req)
            out = self.respond(req) if self.respond is not None else None
            if out is None:
                out = text_response(self.name.encode() + b"\n")
            if out == "close":
                return False
            if out == "hang":
                self.stopped.wait(30)
                return False
            if isinstance(out, tuple):  # (response, "close"): answer, then close without saying so
                c.sendall(out[0])
                return False
            assert isinstance(out, bytes)
            try:
                c.sendall(out)
            except OSError:  # the proxy gave up on this response (its client went away)
                return False
        return True


# ----------------------------------------------------------------------------------------------
# clients


def raw_exchange(port: int, payload: bytes, timeout: float = 3.0, until: bytes | None = None,
                 shut: bool = False, count: int = 1) -> tuple[bytes, bool]:
    """Send raw bytes; read until the peer closes, `until` is seen `count` times, or `timeout`.

    Returns (bytes received, whether the peer closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    closed = False
    try:
        s.sendall(payload)
        if shut:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            out += d
            if until is not None and out.count(until) >= count:
                break
    finally:
        s.close()
    return out, closed


def read_head(s: socket.socket) -> bytes:
    """Bytes read from `s` until the end of a message head (or EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = s.recv(4096)
        if not got:
            break
        data += got
    return data


def read_response(s: socket.socket, timeout: float = 5.0) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Read one response from `s` (parsed with httptools): (status, headers, body). Send the next
    request only after this returns: bytes read past this response are dropped."""
    state: dict = {"headers": [], "body": b"", "done": False}

    class Proto:
        def on_header(self, n: bytes, v: bytes) -> None:
            state["headers"].append((n, v))

        def on_body(self, b: bytes) -> None:
            state["body"] += b

        def on_message_complete(self) -> None:
            state["done"] = True

    p = httptools.HttpResponseParser(Proto())
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while not state["done"] and time.monotonic() < deadline:
        d = s.recv(65536)
        if not d:
            break
        p.feed_data(d)
    return p.get_status_code(), state["headers"], state["body"]


# ----------------------------------------------------------------------------------------------
# running the proxy


class Proxy:
    """haproxy-py (or the oracle) on a config text; stopped by pid."""

    def __init__(self, cfg: str, ports: list[int], cmd: list[str] | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="hpy-http-")
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg_path, "w") as f:
            f.write(cfg)
        self.log_path = os.path.join(self.dir, "out.log")
        self.cmd = cmd or ([ORACLE] if ORACLE else lb_command())
        self.proc = subprocess.Popen(self.cmd + ["-db", "-f", self.cfg_path], stdout=open(self.log_path, "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir)
        try:
            for p in ports:
                wait_listening(p, self.proc)
        except AssertionError:
            self.stop()
            raise AssertionError(self.log())

    @property
    def is_oracle(self) -> bool:
        return bool(ORACLE) and self.cmd == [ORACLE]

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


GLOBAL = """\
global
    maxconn 500

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
"""


def frontend(name: str, port: int, backend: str, lines: str = "") -> str:
    return f"frontend {name}\n    bind 127.0.0.1:{port}\n{lines}    default_backend {backend}\n\n"


def backend(name: str, servers: list[str], lines: str = "") -> str:
    out = f"backend {name}\n{lines}"
    for i, addr in enumerate(servers, 1):
        out += f"    server s{i} {addr}\n"
    return out + "\n"


__all__ = ["ORACLE", "Origin", "Proxy", "Recorded", "GLOBAL", "backend", "free_port", "frontend", "raw_exchange",
           "read_response", "text_response"]
