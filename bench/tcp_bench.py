"""mode tcp benchmarks: bulk throughput (with a latency probe) and connection rate.

    python bench/tcp_bench.py [--seconds 5]

Prints, for no proxy, HAProxy and haproxy-py: bulk MB/s of 4 parallel downloads (a sendfile
origin and a recv_into sink, so the proxy is the bottleneck) with the p50/p99 latency of small
requests made through the same proxy on another connection meanwhile (one busy connection must not
starve the others), and new connections per second (wrk, `Connection: close`, against nginx) with
the proxy's CPU time per connection (its worker processes included); then haproxy-py's ratios to
HAProxy. Medians over interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import socket
import statistics
import threading
import time

import common
from common import HERE, TARGETS, cpu_seconds, free_port, nginx_origin, process, ratio, require, target, wrk


def latency_probe(port: int, stop: threading.Event, samples: list[float]) -> None:
    """Keep-alive GET /small on its own connection, one at a time, timing each round trip."""
    req = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            t0 = time.perf_counter()
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += s.recv(4096)
            samples.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def bulk_rate(port: int, seconds: int, streams: int = 4) -> float:
    """Bytes/s of `streams` parallel downloads through `port`, measured by a separate sink process."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "raw_peers.py"), "sink", str(port), str(streams),
                          str(seconds)], capture_output=True, text=True, timeout=seconds + 60)
    return float(out.stdout.strip() or 0)


def process_tree_cpu(pid: int | None) -> float:
    """CPU seconds used so far by `pid` and its children (haproxy-py's worker processes)."""
    if pid is None:
        return 0.0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def measure(kind: str, origin: int, raw_origin: int, seconds: int, workers: int) -> dict[str, float]:
    extra = f"    nbthread {workers}" if kind == "haproxy-py" and workers > 1 else ""
    with target(kind, "tcp", raw_origin, extra) as port, target(kind, "tcp", origin, extra) as http_port:
        proxy_pid = common.last_pid if kind != "direct" else None
        stop = threading.Event()
        samples: list[float] = []
        probe = threading.Thread(target=latency_probe, args=(http_port, stop, samples), daemon=True)
        probe.start()
        bulk = bulk_rate(port, seconds)
        stop.set()
        probe.join(10)
        cpu0 = process_tree_cpu(proxy_pid)
        rate = wrk(f"http://127.0.0.1:{http_port}/small", seconds, connections=32, headers=("Connection: close",))
        cpu = process_tree_cpu(proxy_pid) - cpu0
    return {
        "bulk_MBps": bulk / 1e6,
        "probe_p50_ms": pct(samples, 50),
        "probe_p99_ms": pct(samples, 99),
        "conn_per_s": rate["rps"],
        # the proxy's CPU per proxied connection: steadier than conn/s on a machine shared with others
        "cpu_us_per_conn": cpu / (rate["rps"] * seconds) * 1e6 if proxy_pid and rate["rps"] else float("nan"),
        "errors": rate["errors"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--workers", type=int, default=2,
                    help="nbthread for haproxy-py (HAProxy runs with its default: one thread per CPU)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    require("nginx", "wrk", "haproxy")
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in TARGETS}
    raw_port = free_port()
    with nginx_origin({"small": 100}) as origin, process(
        [sys.executable, os.path.join(HERE, "raw_peers.py"), "origin", str(raw_port), "256"], raw_port,
        os.devnull,
    ):
        for _ in range(args.rounds):
            for kind in TARGETS:
                rounds[kind].append(measure(kind, origin, raw_port, args.seconds, args.workers))
    results = {k: {f: statistics.median(r[f] for r in runs) for f in runs[0]} for k, runs in rounds.items()}
    print(f"haproxy-py with nbthread {args.workers}; HAProxy with its defaults ({os.cpu_count()} threads)")
    print(f"{'target':<12}{'bulk MB/s':>12}{'probe p50 ms':>14}{'probe p99 ms':>14}{'conn/s':>10}"
          f"{'CPU us/conn':>13}{'errors':>8}")
    for kind, r in results.items():
        print(f"{kind:<12}{r['bulk_MBps']:>12.0f}{r['probe_p50_ms']:>14.2f}{r['probe_p99_ms']:>14.2f}"
              f"{r['conn_per_s']:>10.0f}{r['cpu_us_per_conn']:>13.0f}{r['errors']:>8.0f}")
    hp, py, direct = results["haproxy"], results["haproxy-py"], results["direct"]
    print()
    print(f"haproxy-py / haproxy: bulk {ratio(py['bulk_MBps'], hp['bulk_MBps'])} (target >= 1.2x), "
          f"probe p99 {ratio(py['probe_p99_ms'], hp['probe_p99_ms'])} (target <= 2x), "
          f"conn/s {ratio(py['conn_per_s'], hp['conn_per_s'])} (target >= 0.5x), "
          f"CPU per connection {ratio(py['cpu_us_per_conn'], hp['cpu_us_per_conn'])}")
    print(f"haproxy-py / direct:  bulk {ratio(py['bulk_MBps'], direct['bulk_MBps'])}, "
          f"conn/s {ratio(py['conn_per_s'], direct['conn_per_s'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
