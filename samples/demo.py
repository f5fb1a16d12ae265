"""`make run`: two small HTTP backends and haproxy-py in front of them, all in the foreground.

Each backend answers with its own name, so successive `curl http://127.0.0.1:8080/` show the
requests alternating. Ctrl-C (or SIGTERM) stops everything this script started.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = (("app1", 8081), ("app2", 8082))


def make_handler(name: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"hello from {name} (you asked for {self.path})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write(f"[{name}] {self.address_string()} {fmt % args}\n")

    return Handler


def main() -> int:
    servers = []
    for name, port in BACKENDS:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(name))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    exe = os.path.join(os.path.dirname(sys.executable), "haproxy-py")
    cmd = [exe if os.path.exists(exe) else sys.executable, *([] if os.path.exists(exe) else ["-m", "haproxy_py"]),
           "-db", "-f", os.path.join(HERE, "demo.cfg")]
    proxy = subprocess.Popen(cmd)
    print("\nhaproxy-py is listening on http://127.0.0.1:8080/ and balancing over", flush=True)
    for name, port in BACKENDS:
        print(f"  {name} on 127.0.0.1:{port}")
    print("\nTry:   for i in 1 2 3 4; do curl -s http://127.0.0.1:8080/; done")
    print("Stats: http://127.0.0.1:8404/stats    Metrics: http://127.0.0.1:8404/metrics")
    print("Stop:  Ctrl-C\n", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set() and proxy.poll() is None:
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            try:
                proxy.wait(5)
            except subprocess.TimeoutExpired:
                proxy.kill()
        for srv in servers:
            srv.shutdown()
    return proxy.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
