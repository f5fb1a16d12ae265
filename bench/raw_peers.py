"""Raw TCP peers for bulk benchmarks, fast enough that the proxy is the bottleneck.

    python raw_peers.py origin PORT SIZE_MB   -> every connection receives SIZE_MB via sendfile, then EOF
    python raw_peers.py sink PORT STREAMS SECONDS -> STREAMS parallel downloads, prints bytes/s

The origin sends from a file with sendfile (the kernel copies); the sink reads into one reused
buffer per thread (the GIL is released during recv), reconnecting when a stream ends.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time


def origin(port: int, size_mb: int) -> None:
    fd, path = tempfile.mkstemp(prefix="bench-origin-")
    block = os.urandom(1 << 20)
    for _ in range(size_mb):
        os.write(fd, block)
    os.close(fd)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(256)

    def serve(c: socket.socket) -> None:
        try:
            with open(path, "rb") as f:
                c.sendfile(f)
        except OSError:
            pass
        finally:
            c.close()

    try:
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    finally:
        os.unlink(path)


def sink(port: int, streams: int, seconds: float) -> None:
    total = [0] * streams
    end = time.monotonic() + seconds

    def run(i: int) -> None:
        buf = bytearray(1 << 20)
        while time.monotonic() < end:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                while time.monotonic() < end:
                    n = s.recv_into(buf)
                    if n == 0:
                        break
                    total[i] += n

    threads = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    print(sum(total) / (time.monotonic() - t0))


if __name__ == "__main__":
    if sys.argv[1] == "origin":
        origin(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sink(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
