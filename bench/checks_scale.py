"""Health checks at scale: 2,000 servers, each HTTP-checked every second.

    python bench/checks_scale.py [--servers 2000] [--ports 50] [--inter 1000] [--seconds 20] [--haproxy]

A separate process (nginx, see bench/setup.sh) answers the checks on `--ports` listening sockets,
fast enough not to be the bottleneck. Every server line of the generated config points at one of
them, and each backend checks its own URI (`option httpchk GET /b<k>`), so the pair (port, URI) in
nginx's access log (`$msec $server_port $request_uri`) tells which server a check came from. After a
warm-up of two intervals, the checks that arrive during `--seconds` are analysed.

Reported:
  * CPU: utime+stime of the proxy process from /proc/PID/stat over the measured window, as a
    percentage of one core (the target: < 25 %).
  * intervals: the gaps between consecutive checks of each server, as nginx logged them (ms):
    median, p1/p99, and the share within +-10 % of `--inter` (the target: every gap within 10 %).
  * checks/s and how many servers were seen.
With `--haproxy`, the same config is run through HAProxy first, for reference.
Every process started here is stopped here, by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

def nginx_conf(d: str, ports: list[int]) -> str:
    """nginx answering 200 to everything on every port, logging `$msec $server_port $request_uri`."""
    listens = "\n".join(f"        listen 127.0.0.1:{p} backlog=4096;" for p in ports)
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 8192; }}
http {{
    log_format checks '$msec $server_port $request_uri';
    access_log {d}/access.log checks buffer=256k flush=1s;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
    server {{
{listens}
        location / {{ return 200; }}
    }}
}}
"""


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def write_config(path: str, fe_port: int, ports: list[int], servers: int, inter: int) -> None:
    per_backend = len(ports)
    lines = ["global", "    maxconn 4000", "defaults", "    mode tcp", "    timeout connect 1s",
             "    timeout client 10s", "    timeout server 10s", "frontend fe", f"    bind 127.0.0.1:{fe_port}",
             "    default_backend b0"]
    for k in range((servers + per_backend - 1) // per_backend):
        lines += [f"backend b{k}", f"    option httpchk GET /b{k}"]
        for j in range(min(per_backend, servers - k * per_backend)):
            lines.append(f"    server s{j} 127.0.0.1:{ports[j]} check inter {inter}ms")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of `pid` so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is the state, field 3 of the line
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("proxy never listened")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run(cmd: list[str], args: argparse.Namespace, workdir: str, label: str) -> dict:
    ports = free_ports(args.ports)
    fe_port = free_ports(1)[0]
    cfg = os.path.join(workdir, f"{label}.cfg")
    write_config(cfg, fe_port, ports, args.servers, args.inter)
    inter_s = args.inter / 1000
    warmup = 2 * inter_s + 1.0
    d = os.path.join(workdir, f"{label}-origin")
    os.mkdir(d)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(nginx_conf(d, ports))
    origin_log = open(os.path.join(d, "out.log"), "wb")
    origin = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d], stdout=origin_log,
                              stderr=origin_log, stdin=subprocess.DEVNULL)
    try:
        log = open(os.path.join(workdir, f"{label}.log"), "wb")
        proxy = subprocess.Popen(cmd + ["-db", "-f", cfg], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            try:
                wait_listening(fe_port, proxy)
            except RuntimeError:
                log.flush()
                sys.stderr.write(open(os.path.join(workdir, f"{label}.log")).read()[-2000:])
                raise
            time.sleep(warmup)
            c0, t0, w0 = cpu_seconds(proxy.pid), time.monotonic(), time.time()
            time.sleep(args.seconds)
            c1, t1, w1 = cpu_seconds(proxy.pid), time.monotonic(), time.time()
        finally:
            stop(proxy)
            log.close()
    finally:
        stop(origin, signal.SIGQUIT)  # graceful: flushes the buffered access log
        origin_log.close()
    if proxy.returncode not in (0, -signal.SIGTERM):
        sys.stderr.write(f"{label} exited with {proxy.returncode}\n")
    with open(os.path.join(workdir, f"{label}.log"), errors="replace") as f:
        tail = f.read()[-1500:]
    if "Traceback" in tail or "ALERT" in tail:
        sys.stderr.write(tail)
    arrivals: dict[str, list[float]] = {}
    with open(os.path.join(d, "access.log")) as f:
        for line in f:
            t, port, uri = line.split()
            if w0 <= float(t) <= w1:
                arrivals.setdefault(port + uri, []).append(float(t))
    gaps = [b - a for times in arrivals.values() for a, b in zip(times, times[1:])]
    checks = sum(len(times) for times in arrivals.values())
    within = sum(1 for g in gaps if abs(g - inter_s) <= 0.1 * inter_s)
    down = open(os.path.join(workdir, f"{label}.log"), "rb").read().count(b" is DOWN")
    return {
        "target": label,
        "servers_seen": len(arrivals),
        "checks_per_s": round(checks / (w1 - w0), 1),
        "cpu_pct_one_core": round(100 * (sum(c1) - sum(c0)) / (t1 - t0), 1),
        "user_pct": round(100 * (c1[0] - c0[0]) / (t1 - t0), 1),
        "sys_pct": round(100 * (c1[1] - c0[1]) / (t1 - t0), 1),
        "cpu_us_per_check": round(1e6 * (sum(c1) - sum(c0)) / max(1, checks), 1),
        "gap_median_ms": round(1000 * statistics.median(gaps), 1) if gaps else None,
        "gap_p1_ms": round(1000 * percentile(gaps, 1), 1) if gaps else None,
        "gap_p99_ms": round(1000 * percentile(gaps, 99), 1) if gaps else None,
        "gap_min_ms": round(1000 * min(gaps), 1) if gaps else None,
        "gap_max_ms": round(1000 * max(gaps), 1) if gaps else None,
        "gaps_within_10pct": f"{within}/{len(gaps)}",
        "servers_marked_down": down,
        "window_s": round(t1 - t0, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=2000)
    ap.add_argument("--ports", type=int, default=50, help="listening sockets of the origin (servers per backend)")
    ap.add_argument("--inter", type=int, default=1000, help="check interval, ms")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window")
    ap.add_argument("--haproxy", action="store_true", help="also run HAProxy on the same config, for reference")
    args = ap.parse_args()
    exe = os.path.join(ROOT, ".venv", "bin", "haproxy-py")
    targets = [(["haproxy"], "haproxy")] if args.haproxy else []
    targets.append(([exe] if os.path.exists(exe) else [sys.executable, "-m", "haproxy_py"], "haproxy-py"))
    results = []
    with tempfile.TemporaryDirectory(prefix="checks-scale-") as workdir:
        for cmd, label in targets:
            results.append(run(cmd, args, workdir, label))
            print(json.dumps(results[-1]), flush=True)
    ours = results[-1]
    ok = (ours["cpu_pct_one_core"] < 25 and ours["servers_seen"] == args.servers
          and ours["gaps_within_10pct"].split("/")[0] == ours["gaps_within_10pct"].split("/")[1])
    print(f"{'PASS' if ok else 'FAIL'}: {args.servers} servers every {args.inter} ms: "
          f"{ours['cpu_pct_one_core']}% of one core, gaps {ours['gap_p1_ms']}..{ours['gap_p99_ms']} ms "
          f"(min {ours['gap_min_ms']}, max {ours['gap_max_ms']}), {ours['gaps_within_10pct']} within 10%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
