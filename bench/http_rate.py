"""Fixed-rate HTTP/1.1 keep-alive load with latency percentiles (a separate process, so the load
generator never shares an interpreter with what it measures).

    python bench/http_rate.py PORT RATE SECONDS [CONNECTIONS] [PATH]

Open loop: request i of a connection is due at start + i * CONNECTIONS / RATE; its latency runs from
that due time (not from when it could be sent), so a stall is counted against every request it
delays (no coordinated omission). Prints one JSON line: rate achieved, p50/p90/p99/max in ms, errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def connection(port: int, path: str, interval: float, start: float, end: float, lat: list[float],
                     errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    due = start
    try:
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
            lat.append(time.perf_counter() - due)
            due += interval
    except (OSError, asyncio.IncompleteReadError):
        errors[0] += 1
    finally:
        writer.close()


async def main(port: int, rate: float, seconds: float, conns: int, path: str) -> dict[str, float]:
    lat: list[float] = []
    errors = [0]
    interval = conns / rate
    start = time.perf_counter() + 0.2
    end = start + seconds
    # stagger the connections evenly over one interval
    await asyncio.gather(*(connection(port, path, interval, start + i * interval / conns, end, lat, errors)
                           for i in range(conns)))
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000 if lat else float("nan")

    return {"rate": len(lat) / seconds, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": lat[-1] * 1000 if lat else float("nan"), "errors": errors[0]}


if __name__ == "__main__":
    port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    path = sys.argv[5] if len(sys.argv) > 5 else "/small"
    print(json.dumps(asyncio.run(main(port, rate, seconds, conns, path))))
