"""The process's log sink: HAProxy's stderr lines and its syslog datagrams.

Two outputs, as HAProxy has them:

* **stderr** (`[WARNING]  (pid) : msg`, `[ALERT]    (pid) : msg`): runtime events such as server
  state changes, unless `-q`. A daemon's stderr is /dev/null, so nothing shows there.
* **log targets** (`log` lines of `global`, `log global` / own `log` lines in proxies): one datagram
  per message, RFC 3164 by default (`<PRI>Mmm dd hh:mm:ss haproxy[pid]: msg\\n`), or the other
  `format`s, to UDP `ip[:port]` (514 by default), a unix datagram socket (`/dev/log`,
  `unix@path`), or `stdout`/`stderr`. Each target filters by its max level and clamps to its min
  level. Sending never blocks: a datagram that cannot leave at once is dropped, as HAProxy does.

Byte formats were captured from HAProxy 2.6 (`format rfc5424` puts `-` for the hostname without
`log-send-hostname`; `len N` cuts the line at N bytes before the final newline). Traffic logs
(`option tcplog`/`httplog`) go through the same `LogSink.log()`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from haproxy_py.config.model import Config, LogTarget, Proxy

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp",
              "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
              "local7")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _level_number(name: str | None, default: int) -> int:
    if name is None:
        return default
    try:
        return LEVELS.index(name)
    except ValueError:
        return default


def _iso(now: float) -> str:
    """`2026-11-21T08:53:36.350336+00:00`: local time with microseconds and the UTC offset."""
    tm = time.localtime(now)
    off = tm.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    usec = int((now - int(now)) * 1_000_000)
    return (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
            f".{usec:06d}{sign}{off // 3600:02d}:{off % 3600 // 60:02d}")


def format_line(target: LogTarget, level: int, message: str, *, now: float, pid: int, tag: str = "haproxy",
                hostname: str | None = None) -> bytes | None:
    """The bytes one target receives for one message, or None when its level filter drops it."""
    if level > _level_number(target.level, DEBUG):
        return None
    level = max(level, _level_number(target.min_level, EMERG))
    facility = FACILITIES.index(target.facility) if target.facility in FACILITIES else 16
    pri = facility * 8 + level
    fmt = target.format
    if fmt in ("rfc3164", "local"):
        tm = time.localtime(now)
        host = f"{hostname} " if hostname else ""
        line = (f"<{pri}>{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
                f"{host}{tag}[{pid}]: {message}")
    elif fmt == "rfc5424":
        line = f"<{pri}>1 {_iso(now)} {hostname or '-'} {tag} {pid} - - {message}"
    elif fmt == "short":
        line = f"<{level}>{message}"
    elif fmt == "timed":
        line = f"<{level}>{_iso(now)} {message}"
    elif fmt == "iso":
        line = f"{_iso(now)} {message}"
    elif fmt == "priority":
        line = f"<{pri}>{message}"
    else:  # raw
        line = message
    data = line.encode("utf-8", "replace")
    if target.length and len(data) > target.length:
        data = data[: target.length]
    return data + b"\n"


class _Destination:
    """Where one target's datagrams go: a resolved socket address, or a file descriptor."""

    def __init__(self, target: str) -> None:
        self.fd: int | None = None
        self.family: int = socket.AF_UNSPEC
        self.address: object = None
        if target in ("stdout", "stderr"):
            self.fd = 1 if target == "stdout" else 2
        elif target.startswith("fd@"):
            self.fd = int(target[3:]) if target[3:].isdigit() else None
        elif target.startswith("/") or target.startswith("unix@"):
            self.family = socket.AF_UNIX
            self.address = target[5:] if target.startswith("unix@") else target
        elif target.startswith("ring@"):
            pass  # rings are not implemented: nothing is sent
        else:
            self._resolve_inet(target)

    def _resolve_inet(self, target: str) -> None:
        for prefix in ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@"):
            if target.startswith(prefix):
                target = target[len(prefix):]
                break
        if target.startswith("["):
            host, _, rest = target[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif target.count(":") == 1:
            host, _, port = target.partition(":")
        else:
            host, port = target, ""
        try:
            infos = socket.getaddrinfo(host or "0.0.0.0", int(port) if port.isdigit() else 514, type=socket.SOCK_DGRAM)
        except (OSError, ValueError):
            return
        if infos:
            self.family, _, _, _, self.address = infos[0]


class LogSink:
    """Sends messages to stderr and to log targets.

    `global_targets` are the `global` section's `log` lines (what `log global` means in a proxy).
    `stderr_enabled` is False with `-q`. `stream` is where stderr lines go (sys.stderr by default;
    tests pass a buffer). `clock` gives wall-clock seconds.
    """

    def __init__(self, global_targets: Sequence[LogTarget] = (), *, stderr_enabled: bool = True,
                 pid: int | None = None, tag: str = "haproxy", hostname: str | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self.global_targets = tuple(global_targets)
        self.stderr_enabled = stderr_enabled
        self.pid = os.getpid() if pid is None else pid
        self.tag = tag
        self.hostname = hostname
        self._stream = stream
        self._clock = clock
        self._destinations: dict[str, _Destination] = {}
        self._sockets: dict[int, socket.socket] = {}

    # -- stderr -------------------------------------------------------------------------------
    def _print(self, severity: str, message: str) -> None:
        if not self.stderr_enabled:
            return
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(f"{f'[{severity}]'.ljust(10)} ({self.pid}) : {message}\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must not take the process down

    def warning(self, message: str) -> None:
        """`[WARNING]  (pid) : message` on stderr (HAProxy's ha_warning)."""
        self._print("WARNING", message)

    def alert(self, message: str) -> None:
        """`[ALERT]    (pid) : message` on stderr (HAProxy's ha_alert)."""
        self._print("ALERT", message)

    def notice(self, message: str) -> None:
        self._print("NOTICE", message)

    # -- log targets ----------------------------------------------------------------------------
    def proxy_targets(self, proxy: Proxy | None) -> tuple[LogTarget, ...]:
        """A proxy's targets with `log global` expanded; the global ones when `proxy` is None."""
        if proxy is None:
            return self.global_targets
        out: list[LogTarget] = []
        for t in proxy.logs:
            if t.target == "global":
                out.extend(self.global_targets)
            else:
                out.append(t)
        return tuple(out)

    def log(self, proxy: Proxy | None, level: int, message: str) -> None:
        """Send `message` at syslog `level` to the proxy's log targets (HAProxy's send_log)."""
        targets = self.proxy_targets(proxy)
        if targets:
            self.send(targets, level, message)

    def send(self, targets: Sequence[LogTarget], level: int, message: str) -> None:
        now = self._clock()
        for t in targets:
            data = format_line(t, level, message, now=now, pid=self.pid, tag=self.tag, hostname=self.hostname)
            if data is not None:
                self._deliver(t.target, data)

    def _deliver(self, target: str, data: bytes) -> None:
        dest = self._destinations.get(target)
        if dest is None:
            dest = self._destinations[target] = _Destination(target)
        try:
            if dest.fd is not None:
                os.write(dest.fd, data)
                return
            if dest.address is None:
                return
            sock = self._sockets.get(dest.family)
            if sock is None:
                sock = socket.socket(dest.family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                self._sockets[dest.family] = sock
            sock.sendto(data, dest.address)  # type: ignore[arg-type]
        except OSError:
            pass  # EAGAIN, no listener on the socket, unreachable...: dropped; logging never fails a caller

    def close(self) -> None:
        for s in self._sockets.values():
            s.close()
        self._sockets.clear()


_current: LogSink | None = None


def configure(config: Config, *, quiet: bool = False, pid: int | None = None,
              stream: TextIO | None = None) -> LogSink:
    """Install the process's sink for `config` (call after daemonizing: the pid is the worker's)."""
    global _current
    if _current is not None:
        _current.close()
    _current = LogSink(config.global_.logs, stderr_enabled=not quiet, pid=pid, stream=stream)
    return _current


def current(config: Config | None = None) -> LogSink:
    """The installed sink. When none was configured (tests, embedding), one is made for `config`
    (stderr plus its global targets) or, without a config, for stderr only."""
    global _current
    if _current is None:
        _current = LogSink(config.global_.logs if config is not None else ())
    return _current


def set_current(sink: LogSink | None) -> None:
    """Replace the process's sink (tests)."""
    global _current
    _current = sink
