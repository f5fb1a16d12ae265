"""mode http benchmarks: keep-alive throughput, connection rate, and latency at a fixed moderate rate.

    python bench/http_bench.py [--seconds 5] [--rounds 3] [--workers 2] [--rate 1000]

Targets, side by side, in interleaved rounds (medians reported): no proxy, HAProxy (Debian package,
its default of one thread per CPU) and haproxy-py (one process, and `nbthread --workers` worker
processes). The origin is nginx serving a 100-byte file; the load is wrk on loopback.

* keep-alive: wrk, 32 connections, requests/s and p50/p99 latency;
* close: wrk with `Connection: close`, i.e. one connection per request: connections/s;
* fixed rate: bench/rate.c at `--rate` requests/s, evenly spaced over 10 keep-alive connections
  per target (open loop, timed in C: an interpreted generator's own jitter is as large as what is
  measured): p50/p99 latency, and the p99 *added* by the proxy (target p99 minus the direct p99 of
  the same round, median over rounds). The targets run side by side and take the load in turns of
  100 ms, so that they share the machine's spells of noise (host steal here comes in spells from
  milliseconds to minutes, and measured one after the other, targets saw different ones). The
  added p50 is shown too: it is what the proxy's own work costs a request, while the added p99
  also depends on how many of the machine's stalls fell in each target's turns.

Then haproxy-py's ratios to HAProxy: keep-alive requests/s (target >= 0.5x) and added p99 latency at
the fixed rate (target <= 2x). CPU time per request of each proxy is shown too: on a small machine
the load generator and the origin compete with the proxy for the same cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import time

import common
from common import build, cpu_seconds, nginx_origin, ratio, require, target, wrk

SMALL = "/small"


def fixed_rate(ports: list[int], rate: float, seconds: int) -> list[dict[str, float]]:
    """Each port's latencies under `rate` req/s for `seconds`, the ports taking turns."""
    out = subprocess.run([build("rate"), ",".join(map(str, ports)), str(rate), str(seconds), "10", SMALL],
                         capture_output=True, text=True, timeout=seconds * len(ports) + 60)
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-len(ports):]]


def fixed_rate_round(targets: list[tuple[str, int]], origin: int, seconds: int, rate: float) -> list[dict[str, float]]:
    """The fixed-rate figures of every target, all running at once and loaded in turns."""
    with contextlib.ExitStack() as stack:
        ports = []
        for kind, workers in targets:
            ports.append(stack.enter_context(target(kind, "http", origin, _extra(kind, workers))))
        time.sleep(0.3)
        return [dict(rate_p50=fr["p50_ms"], rate_p99=fr["p99_ms"], rate_achieved=fr["rate"], rate_errors=fr["errors"])
                for fr in fixed_rate(ports, rate, seconds)]


def _extra(kind: str, workers: int) -> str:
    return f"    nbthread {workers}" if kind == "haproxy-py" and workers > 1 else ""


def measure(kind: str, workers: int, origin: int, seconds: int) -> dict[str, float]:
    """Keep-alive and close figures of one target."""
    res: dict[str, float] = {}
    with target(kind, "http", origin, _extra(kind, workers)) as port:
        time.sleep(0.3)
        pid = common.last_pid if kind != "direct" else None
        pids = _family(pid) if pid else []
        c0 = sum(cpu_seconds(p) for p in pids)
        ka = wrk(f"http://127.0.0.1:{port}{SMALL}", seconds, connections=32)
        c1 = sum(cpu_seconds(p) for p in pids)
        res.update(ka_rps=ka["rps"], ka_p50=ka["p50_ms"], ka_p99=ka["p99_ms"], ka_errors=ka["errors"])
        res["cpu_us_per_req"] = 1e6 * (c1 - c0) / (ka["rps"] * seconds) if pids and ka["rps"] else float("nan")
        cl = wrk(f"http://127.0.0.1:{port}{SMALL}", seconds, connections=32, headers=("Connection: close",))
        res.update(close_cps=cl["rps"], close_errors=cl["errors"])
    return res


def _family(pid: int) -> list[int]:
    """The process and its children (haproxy-py's worker processes)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--workers", type=int, default=2, help="nbthread of the multi-process haproxy-py run")
    ap.add_argument("--rate", type=float, default=1000.0, help="requests/s of the fixed-rate latency test")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    require("nginx", "wrk", "haproxy", "cc")
    targets = [("direct", 1), ("haproxy", 1), ("haproxy-py", 1)]
    if args.workers > 1:
        targets.append(("haproxy-py", args.workers))
    names = {t: (t[0] if t[0] != "haproxy-py" else f"haproxy-py x{t[1]}") for t in targets}
    rounds: dict[str, list[dict[str, float]]] = {n: [] for n in names.values()}
    with nginx_origin({"small": 100}) as origin:
        for _ in range(args.rounds):
            for t in targets:
                rounds[names[t]].append(measure(t[0], t[1], origin, args.seconds))
            for t, fr in zip(targets, fixed_rate_round(targets, origin, args.seconds, args.rate)):
                rounds[names[t]][-1].update(fr)
    # Figures compared within a round, then the median over rounds, because the machine's speed and
    # noise drift between rounds and a ratio of medians would mix rounds: the added latency is the
    # round's p99 minus the direct p99 of the same round; the throughput ratio is the round's
    # keep-alive req/s over HAProxy's of the same round.
    for i in range(args.rounds):
        direct, ha_rps = rounds["direct"][i], rounds["haproxy"][i]["ka_rps"]
        for runs in rounds.values():
            runs[i]["rate_added_p99"] = runs[i]["rate_p99"] - direct["rate_p99"]
            runs[i]["rate_added_p50"] = runs[i]["rate_p50"] - direct["rate_p50"]
            runs[i]["ka_ratio"] = runs[i]["ka_rps"] / ha_rps if ha_rps else 0.0
    med = {n: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for n, runs in rounds.items()}
    print(f"{os.cpu_count()} CPUs; HAProxy with its defaults; wrk 32 connections; fixed rate {args.rate:.0f} req/s "
          f"over 10 connections, targets in turns of 100 ms; medians of {args.rounds} rounds of {args.seconds}s")
    print(f"{'target':<15}{'ka req/s':>10}{'ka p50':>8}{'ka p99':>8}{'cpu/req':>9}{'close c/s':>11}"
          f"{'rate p50':>10}{'rate p99':>10}{'added p99':>10}")
    for n, r in med.items():
        added = r["rate_added_p99"]
        cpu = f"{r['cpu_us_per_req']:.0f}us" if r["cpu_us_per_req"] == r["cpu_us_per_req"] else "-"
        print(f"{n:<15}{r['ka_rps']:>10.0f}{r['ka_p50']:>7.2f}ms{r['ka_p99']:>6.2f}ms{cpu:>9}{r['close_cps']:>11.0f}"
              f"{r['rate_p50']:>8.2f}ms{r['rate_p99']:>8.2f}ms{added:>8.2f}ms")
    ha = med["haproxy"]
    ha_added = ha["rate_added_p99"]
    for n in (n for n in med if n.startswith("haproxy-py")):
        r = med[n]
        added = r["rate_added_p99"]
        verdict = (ratio(added, ha_added) if ha_added > 0 and added > 0 else
                   "n/a: haproxy-py adds nothing measurable over the noise" if added <= 0 else
                   "n/a: HAProxy adds nothing measurable over the noise") + " (target <= 2x)"
        per_round = ", ".join(f"{x['ka_ratio']:.2f}" for x in rounds[n])
        # the spread shows how far the machine's noise moves the added p99 from round to round
        added_rounds = " / ".join(f"{x['rate_added_p99']:.2f} vs {h['rate_added_p99']:.2f}"
                                  for x, h in zip(rounds[n], rounds["haproxy"]))
        print(f"{n}: keep-alive req/s {r['ka_ratio']:.2f}x of HAProxy's (target >= 0.5x; rounds {per_round}); "
              f"close conn/s {ratio(r['close_cps'], ha['close_cps'])}; added p99 at {args.rate:.0f} req/s "
              f"{added:.2f}ms vs {ha_added:.2f}ms = {verdict} (rounds, ms: {added_rounds}); "
              f"p99 {ratio(r['rate_p99'], ha['rate_p99'])} of HAProxy's; added p50 "
              f"{1000 * r['rate_added_p50']:.0f}us vs {1000 * ha['rate_added_p50']:.0f}us = "
              f"{ratio(r['rate_added_p50'], ha['rate_added_p50'])}")
    errors = {n: r["ka_errors"] + r["close_errors"] + r["rate_errors"] for n, r in med.items()}
    if any(errors.values()):
        print(f"errors: {errors}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": med, "rounds": rounds}, f, indent=2)


if __name__ == "__main__":
    main()
