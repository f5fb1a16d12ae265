"""haproxy_py/log.py: the bytes each log format produces (captured from HAProxy 2.6 sending the same
message to the same targets), level filters, and delivery to real UDP and unix sockets."""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time

import pytest

from haproxy_py import log
from haproxy_py.config.model import LogTarget, Proxy
from haproxy_py.config.errors import Location

MSG = 'Server b1/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms.'
# 2026-11-21 08:53:36.350336 local time
NOW = time.mktime((2026, 11, 21, 8, 53, 36, 0, 0, -1)) + 0.350336


def iso(now: float) -> str:
    return log._iso(now)


@pytest.mark.parametrize(
    "target, level, expected",
    [
        (LogTarget("x", "local0"), log.ALERT, f"<129>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "local0"), log.EMERG, f"<128>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "local0"), log.NOTICE, f"<133>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "local1", format="rfc5424"), log.ALERT, f"<137>1 {iso(NOW)} - haproxy 42 - - {MSG}\n"),
        (LogTarget("x", "local2", format="short"), log.ALERT, f"<1>{MSG}\n"),
        (LogTarget("x", "local3", format="raw"), log.ALERT, f"{MSG}\n"),
        (LogTarget("x", "local4", format="timed"), log.ALERT, f"<1>{iso(NOW)} {MSG}\n"),
        (LogTarget("x", "local5", format="iso"), log.ALERT, f"{iso(NOW)} {MSG}\n"),
        (LogTarget("x", "local6", format="local"), log.ALERT, f"<177>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "local7", format="priority"), log.ALERT, f"<185>{MSG}\n"),
        (LogTarget("x", "daemon", level="notice"), log.ALERT, f"<25>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "mail", level="alert", min_level="emerg"), log.EMERG,
         f"<16>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        # min level clamps more severe messages down to it
        (LogTarget("x", "auth", level="notice", min_level="notice"), log.ALERT,
         f"<37>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        (LogTarget("x", "auth", level="notice", min_level="notice"), log.EMERG,
         f"<37>Nov 21 08:53:36 haproxy[42]: {MSG}\n"),
        # max level drops less severe messages
        (LogTarget("x", "daemon", level="alert"), log.NOTICE, None),
        (LogTarget("x", "daemon", level="err"), log.INFO, None),
    ],
)
def test_format_line_matches_haproxy(target: LogTarget, level: int, expected: str | None) -> None:
    got = log.format_line(target, level, MSG, now=NOW, pid=42)
    assert got == (expected.encode() if expected is not None else None)


def test_len_cuts_the_line_before_the_newline() -> None:
    # `log ... len 80 user`: 80 bytes of header and message, then the newline (81 in all)
    got = log.format_line(LogTarget("x", "user", length=80), log.ALERT, MSG, now=NOW, pid=28999)
    assert got == b"<9>Nov 21 08:53:36 haproxy[28999]: Server b1/s1 is DOWN, reason: Layer4 connecti\n"
    assert len(got) == 81


def test_day_of_month_is_space_padded() -> None:
    early = time.mktime((2026, 3, 5, 7, 8, 9, 0, 0, -1))
    assert log.format_line(LogTarget("x", "local0"), log.INFO, "m", now=early, pid=1) == (
        b"<134>Mar  5 07:08:09 haproxy[1]: m\n")


def test_iso_has_microseconds_and_offset() -> None:
    text = iso(NOW)
    assert text.startswith("2026-11-21T08:53:36.35033") and text[-6] in "+-" and text[-3] == ":"


def proxy(logs: tuple[LogTarget, ...]) -> Proxy:
    return Proxy(name="be", kind="backend", where=Location("t.cfg", 1), logs=logs)


def test_log_global_expands_to_global_targets_and_no_targets_sends_nothing() -> None:
    g = (LogTarget("127.0.0.1:1", "local0"),)
    sink = log.LogSink(g, pid=1)
    own = LogTarget("127.0.0.1:2", "local1")
    assert sink.proxy_targets(proxy((LogTarget("global"), own))) == (g[0], own)
    assert sink.proxy_targets(proxy(())) == ()
    assert sink.proxy_targets(None) == g


def test_udp_and_unix_datagrams_are_delivered() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(2)
    port = udp.getsockname()[1]
    d = tempfile.mkdtemp(prefix="hpylog-")
    path = os.path.join(d, "log.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind(path)
    unix.settimeout(2)
    try:
        g = (LogTarget(f"127.0.0.1:{port}", "local0"), LogTarget(path, "daemon", format="short"))
        sink = log.LogSink(g, pid=77, clock=lambda: NOW)
        sink.log(proxy((LogTarget("global"),)), log.EMERG, "backend be has no server available!")
        assert udp.recv(4096) == b"<128>Nov 21 08:53:36 haproxy[77]: backend be has no server available!\n"
        assert unix.recv(4096) == b"<0>backend be has no server available!\n"
        sink.close()
    finally:
        udp.close()
        unix.close()
        os.unlink(path)
        os.rmdir(d)


def test_unreachable_targets_never_raise() -> None:
    sink = log.LogSink((LogTarget("/nonexistent/dev/log", "local0"), LogTarget("ring@buf", "local0"),
                        LogTarget("no-such-host.invalid:514", "local0")))
    sink.log(None, log.ALERT, "x")  # dropped silently
    sink.close()


def test_fd_targets_write_lines() -> None:
    r, w = os.pipe()
    try:
        sink = log.LogSink((LogTarget(f"fd@{w}", "local0", format="raw"),), pid=1)
        sink.log(None, log.ALERT, "hello")
        assert os.read(r, 100) == b"hello\n"
    finally:
        os.close(r)
        os.close(w)


def test_stderr_lines_and_quiet() -> None:
    buf = io.StringIO()
    sink = log.LogSink(pid=29303, stream=buf)
    sink.warning("Server be/s1 is UP.")
    sink.alert("backend 'be' has no server available!")
    assert buf.getvalue() == ("[WARNING]  (29303) : Server be/s1 is UP.\n"
                              "[ALERT]    (29303) : backend 'be' has no server available!\n")
    quiet = io.StringIO()
    log.LogSink(pid=1, stream=quiet, stderr_enabled=False).warning("x")
    assert quiet.getvalue() == ""
