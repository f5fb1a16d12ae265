"""runtime/checks.py in-process: real sockets on 127.0.0.1, real time, trio servers as backends.

The process-level behaviour (traffic, log output of the real binary) is in
tests/test_checks_integration.py; here each probe kind and each effect of a transition is driven
directly through `ServerCheck`, so the tests stay short and exact.
"""

from __future__ import annotations

import io
import math
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from haproxy_py import log
from haproxy_py.config.loader import load
from haproxy_py.core.lb.base import PickContext
from haproxy_py.runtime import checks
from haproxy_py.runtime.supervisor import Runtime


def build(backend_lines: str, servers: list[str], defaults: str = "", global_: str = "") -> Runtime:
    text = (f"global\n{global_}\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
            f"    timeout server 5s\n{defaults}\nfrontend fe\n    bind 127.0.0.1:1\n    default_backend be\n"
            "backend be\n" + "".join(f"    {ln}\n" for ln in backend_lines.strip().splitlines() if ln.strip())
            + "".join(f"    server {s}\n" for s in servers))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(text)
    try:
        config = load([f.name], env={}, resolve=False).config
    finally:
        os.unlink(f.name)
    return Runtime.build(config)


@pytest.fixture
def stderr() -> io.StringIO:
    buf = io.StringIO()
    log.set_current(log.LogSink(pid=4242, stream=buf))
    yield buf
    log.set_current(None)


@pytest.fixture
async def engine(nursery: trio.Nursery) -> checks.CheckEngine:
    """The task that drives probes and timers, running for the whole test."""
    e = checks.CheckEngine(grain=0.001)
    nursery.start_soon(e.run)
    return e


def checker(rt: Runtime, name: str, engine: checks.CheckEngine) -> checks.ServerCheck:
    for c in checks.build_checkers(rt, engine, rand=lambda: 0.5):
        if c.state.name == name:
            return c
    raise KeyError(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Reply = Callable[[bytes], Awaitable[bytes | None]]


async def serve(nursery: trio.Nursery, reply: Reply | bytes | None, record: list[bytes] | None = None,
                until: bytes = b"\r\n\r\n") -> int:
    """A trio server on 127.0.0.1: reads up to `until` (or what comes first), records it, answers
    `reply` (bytes, or an async function of the request; None hangs), then closes. Returns its port."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        with trio.move_on_after(5):
            while until not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                data += chunk
        if record is not None:
            record.append(data)
        answer = reply if not callable(reply) else await reply(data)
        try:
            if answer is None:
                await trio.sleep(30)
            else:
                await stream.send_all(answer)
        except trio.BrokenResourceError:
            pass
        await stream.aclose()

    await nursery.start(trio.serve_listeners, handle, listeners)
    return listeners[0].socket.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# probes


async def test_tcp_check_refused_is_l4con_and_marks_down_at_first_failure(stderr: io.StringIO,
                                                                          engine: checks.CheckEngine) -> None:
    port = free_port()
    rt = build("", [f"s1 127.0.0.1:{port} check fall 3", "s2 127.0.0.1:9 check"])
    c = checker(rt, "s1", engine)
    outcome = await c.check_once()
    assert (outcome.status, outcome.desc) == ("L4CON", "Connection refused")
    c.apply(outcome)
    assert not c.state.up and c.state.check_health == 0  # first failure from start-up state
    assert c.state.counters.down_transitions == 1 and c.state.counters.check_failures == 1
    assert stderr.getvalue().startswith(
        '[WARNING]  (4242) : Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", '
        "check duration: ")
    assert stderr.getvalue().endswith(
        "ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n")


async def test_tcp_check_never_lets_the_server_accept(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    # HAProxy's pure TCP check: quick-ack off, reset after connect: the app never sees a connection
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.setblocking(False)
    try:
        rt = build("", [f"s1 127.0.0.1:{lsock.getsockname()[1]} check"])
        outcome = await checker(rt, "s1", engine).check_once()
        assert outcome.status == "L4OK" and outcome.desc == ""
        await trio.sleep(0.05)
        with pytest.raises(BlockingIOError):
            lsock.accept()
    finally:
        lsock.close()


async def test_http_check_sends_haproxy_bytes_and_judges_status(stderr: io.StringIO,
                                                                engine: checks.CheckEngine) -> None:
    seen: list[bytes] = []
    async with trio.open_nursery() as n:
        ok = await serve(n, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen)
        bad = await serve(n, b"HTTP/1.1 404 File not found\r\nContent-Length: 0\r\n\r\n")
        rt = build(r"option httpchk HEAD /health HTTP/1.1\r\nHost:\ www.example.com",
                   [f"s1 127.0.0.1:{ok} check", f"s2 127.0.0.1:{bad} check"])
        o1 = await checker(rt, "s1", engine).check_once()
        o2 = await checker(rt, "s2", engine).check_once()
        n.cancel_scope.cancel()
    assert seen == [b"HEAD /health HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n"]
    assert (o1.status, o1.code, o1.desc) == ("L7OK", 200, "")
    assert (o2.status, o2.code, o2.desc) == ("L7STS", 404, "File not found")


@pytest.mark.parametrize(
    "reply, rules, status, desc",
    [
        (b"garbage\r\n\r\n", "", "L7RSP", ""),
        (b"", "", "L7RSP", ""),  # closed without an answer
        (b"HTTP/1.1 302 Found\r\n\r\n", "", "L7OK", ""),
        (b"HTTP/1.1 302 Found\r\n\r\n", "http-check expect status 200", "L7STS", "Found"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", "http-check expect string world", "L7OK", ""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello earth", "http-check expect string world", "L7RSP",
         "HTTP content check did not match"),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "http-check expect rstring the.end$", "L7OK", ""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nerror", "http-check expect ! string error", "L7RSP",
         "HTTP check matched unwanted content"),
    ],
)
async def test_http_check_outcomes(stderr: io.StringIO, engine: checks.CheckEngine, reply: bytes, rules: str,
                                   status: str, desc: str) -> None:
    async with trio.open_nursery() as n:
        port = await serve(n, reply)
        rt = build(f"option httpchk GET /\n{rules}", [f"s1 127.0.0.1:{port} check"])
        outcome = await checker(rt, "s1", engine).check_once()
        n.cancel_scope.cancel()
    assert (outcome.status, outcome.desc) == (status, desc)


async def test_check_port_and_addr_are_used(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    async with trio.open_nursery() as n:
        port = await serve(n, b"HTTP/1.1 200 OK\r\n\r\n")
        dead = free_port()
        rt = build("option httpchk", [f"s1 127.0.0.9:{dead} check port {port} addr 127.0.0.1"])
        outcome = await checker(rt, "s1", engine).check_once()
        n.cancel_scope.cancel()
    assert outcome.status == "L7OK"


@pytest.mark.parametrize(
    "reply, rules, status, desc",
    [
        (b"+PONG\r\n", "tcp-check send PING\\r\\n\ntcp-check expect string +PONG", "L7OK", "(tcp-check)"),
        (b"-ERR\r\n", "tcp-check send PING\\r\\n\ntcp-check expect string +PONG", "L7RSP",
         "TCPCHK did not match content '+PONG' at step 2"),
        (b"", "tcp-check send PING\\r\\n\ntcp-check expect string +PONG", "L7RSP",
         "TCPCHK got an empty response at step 2"),
        (b"-ERR\r\n", "tcp-check connect\ntcp-check send PING\\r\\n\ntcp-check expect ! string -ERR", "L7RSP",
         "TCPCHK matched unwanted content '-ERR' at step 3"),
        (None, "tcp-check send PING\\r\\n\ntcp-check expect string +PONG", "L7TOUT",
         " at step 2 of tcp-check (expect string '+PONG')"),
        # the server answered and closed: the second request is reset (a socket error, as on 2.6;
        # the errno is ECONNRESET or EPIPE depending on whether the close arrived first)
        (b"+PONG\r\n", "tcp-check send PING\\r\\n\ntcp-check expect string +PONG\ntcp-check send PING\\r\\n\n"
                         "tcp-check expect string +PONG", "SOCKERR",
         "* at step 4 of tcp-check (expect string '+PONG')"),
        (b"x", "tcp-check connect", "L4OK", "(tcp-check)"),
        (b"x", "", "L4OK", ""),
    ],
)
async def test_tcp_check_outcomes(stderr: io.StringIO, engine: checks.CheckEngine, reply: bytes | None, rules: str,
                                  status: str, desc: str) -> None:
    async with trio.open_nursery() as n:
        port = await serve(n, reply, until=b"\n")
        rt = build(f"option tcp-check\n{rules}", [f"s1 127.0.0.1:{port} check inter 300ms"])
        outcome = await checker(rt, "s1", engine).check_once()
        n.cancel_scope.cancel()
    if desc.startswith("* "):
        assert outcome.status == status and outcome.desc.split(" at ")[0] in ("Connection reset by peer", "Broken pipe")
        assert outcome.desc.endswith(desc[1:]), outcome.desc
    else:
        assert (outcome.status, outcome.desc) == (status, desc)


async def test_tcp_check_connection_errors_name_the_step(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    dead = free_port()
    rt = build("option tcp-check\ntcp-check send PING", [f"s1 127.0.0.1:{dead} check"])
    o = await checker(rt, "s1", engine).check_once()
    assert (o.status, o.desc) == ("L4CON", "Connection refused at initial connection step of tcp-check")
    rt = build("option tcp-check\ntcp-check connect\ntcp-check send PING", [f"s1 127.0.0.1:{dead} check"])
    o = await checker(rt, "s1", engine).check_once()
    assert (o.status, o.desc) == ("L4CON", "Connection refused at step 1 of tcp-check (connect)")
    rt = build(f"option tcp-check\ntcp-check connect port {dead}", ["s1 127.0.0.1:9 check"])
    o = await checker(rt, "s1", engine).check_once()
    assert (o.status, o.desc) == ("L4CON", f"Connection refused at step 1 of tcp-check (connect port {dead})")


async def test_timeout_check_bounds_a_silent_server(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    async with trio.open_nursery() as n:
        port = await serve(n, None)
        # timeout check 100ms, timeout connect 250ms, inter 2s: ends after max(100, min(250, 2000, 1000))
        rt = build("option httpchk\ntimeout check 100ms\ntimeout connect 250ms",
                   [f"s1 127.0.0.1:{port} check inter 2s"])
        t0 = trio.current_time()
        outcome = await checker(rt, "s1", engine).check_once()
        elapsed = trio.current_time() - t0
        n.cancel_scope.cancel()
    assert outcome.status == "L7TOUT" and outcome.desc == ""
    assert 0.24 <= elapsed < 0.6 and 240 <= outcome.duration < 600


async def test_without_timeout_check_inter_bounds_the_check(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    async with trio.open_nursery() as n:
        port = await serve(n, None)
        rt = build("option httpchk", [f"s1 127.0.0.1:{port} check inter 300ms"])
        outcome = await checker(rt, "s1", engine).check_once()
        n.cancel_scope.cancel()
    assert outcome.status == "L7TOUT" and 290 <= outcome.duration < 700


# ---------------------------------------------------------------------------------------------
# effects of transitions


async def test_down_then_up_changes_traffic_and_logs(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check rise 2 fall 2", "s2 127.0.0.1:9 check", "b1 127.0.0.1:9 check backup"])
    be = rt.backends["be"]
    c = checker(rt, "s1", engine)
    fail = checks.CheckOutcome("L7STS", 503, "Service Unavailable", 1)
    ok = checks.CheckOutcome("L7OK", 200, "", 0)
    c.apply(ok)  # start-up state -> full health, no message
    assert stderr.getvalue() == ""
    c.apply(fail)
    assert c.state.up and c.state.check_health == 2
    c.apply(fail)
    assert not c.state.up
    picks = {be.balancer.pick(PickContext()).name for _ in range(6)}
    assert picks == {"s2"}
    c.apply(ok)
    assert not c.state.up  # rise 2: one success is not enough
    c.apply(ok)
    assert c.state.up and c.state.check_health == 3
    assert {be.balancer.pick(PickContext()).name for _ in range(6)} == {"s1", "s2"}
    lines = stderr.getvalue().splitlines()
    assert lines == [
        '[WARNING]  (4242) : Server be/s1 is DOWN, reason: Layer7 wrong status, code: 503, info: "Service '
        'Unavailable", check duration: 1ms. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, '
        "0 remaining in queue.",
        "[WARNING]  (4242) : Server be/s1 is UP, reason: Layer7 check passed, code: 200, check duration: 0ms. 2 "
        "active and 1 backup servers online. 0 sessions requeued, 0 total in queue.",
    ]


async def test_last_server_down_alerts_and_backup_takes_over(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check", "b1 127.0.0.1:9 check backup"])
    be = rt.backends["be"]
    fail = checks.CheckOutcome("L4CON", 0, "Connection refused", 0)
    checker(rt, "s1", engine).apply(fail)
    assert be.balancer.pick(PickContext()).name == "b1"
    assert "0 active and 1 backup servers left. Running on backup." in stderr.getvalue()
    assert "has no server available" not in stderr.getvalue()
    checker(rt, "b1", engine).apply(fail)
    assert be.balancer.pick(PickContext()) is None
    out = stderr.getvalue().splitlines()
    assert out[-2].startswith("[WARNING]  (4242) : Backup Server be/b1 is DOWN")
    assert out[-1] == "[ALERT]    (4242) : backend 'be' has no server available!"


async def test_log_health_checks_lines_and_syslog_levels(engine: checks.CheckEngine) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(2)
    buf = io.StringIO()
    try:
        port = udp.getsockname()[1]
        rt = build("option log-health-checks\nlog global", ["s1 127.0.0.1:9 check rise 1 fall 1"],
                   global_=f"    log 127.0.0.1:{port} local0")
        log.set_current(log.LogSink(rt.config.global_.logs, pid=7, stream=buf))
        c = checker(rt, "s1", engine)
        c.apply(checks.CheckOutcome("L7STS", 500, "Oops", 0))
        c.apply(checks.CheckOutcome("L7STS", 500, "Oops", 0))  # same status, health 0: nothing logged
        c.apply(checks.CheckOutcome("L7OK", 200, "", 1))
        got = [udp.recv(4096).split(b": ", 1) for _ in range(5)]
    finally:
        udp.close()
        log.set_current(None)
    assert [(p[0][:5], p[1].decode()) for p in got] == [
        (b"<133>", 'Health check for server be/s1 failed, reason: Layer7 wrong status, code: 500, info: "Oops", '
                   "check duration: 0ms, status: 0/1 DOWN.\n"),
        (b"<129>", "Server be/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, "
                   "0 remaining in queue.\n"),
        (b"<128>", "backend be has no server available!\n"),
        (b"<133>", "Health check for server be/s1 succeeded, reason: Layer7 check passed, code: 200, check "
                   "duration: 1ms, status: 1/1 UP.\n"),
        (b"<133>", "Server be/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in "
                   "queue.\n"),
    ]
    assert buf.getvalue().count("[WARNING]  (7) : Health check for server be/s1") == 2


async def test_queued_requests_move_to_a_live_server_when_theirs_goes_down(stderr: io.StringIO,
                                                                           engine: checks.CheckEngine) -> None:
    # balance source queues a client on its hashed server even when that one is full
    rt = build("balance source", ["s1 127.0.0.1:9 check maxconn 1", "s2 127.0.0.1:9 check maxconn 1"])
    be = rt.backends["be"]
    ctx = PickContext(peer=("10.0.0.1", 4000))
    got: list[str] = []
    async with trio.open_nursery() as n:
        hashed = await be.acquire(ctx)
        other = be.servers[1] if hashed is be.servers[0] else be.servers[0]

        async def waiter() -> None:
            got.append((await be.acquire(ctx)).name)

        n.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert be.queue.server_queue_length(hashed) == 1
        checker(rt, hashed.name, engine).apply(checks.CheckOutcome("L4CON", 0, "Connection refused", 0))
    # the waiter left the dead server's queue and took the free slot of the live one
    assert got == [other.name]
    assert be.queue.server_queue_length(hashed) == 0
    assert f"Server be/{hashed.name} is DOWN" in stderr.getvalue()
    assert "1 sessions active, 1 requeued, 0 remaining in queue." in stderr.getvalue()


async def test_a_server_coming_up_takes_requests_from_the_backend_queue(stderr: io.StringIO,
                                                                        engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check maxconn 1", "s2 127.0.0.1:9 check maxconn 1"])
    be = rt.backends["be"]
    s1, s2 = be.servers
    fail = checks.CheckOutcome("L4CON", 0, "Connection refused", 0)
    checker(rt, "s2", engine).apply(fail)
    got: list[str] = []
    async with trio.open_nursery() as n:
        assert (await be.acquire(PickContext())) is s1

        async def waiter() -> None:
            got.append((await be.acquire(PickContext())).name)

        n.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert be.queue.length == 1
        c2 = checker(rt, "s2", engine)
        c2.state.check_health = 1  # one success away from rise 2
        c2.apply(checks.CheckOutcome("L4OK", 0, "", 0))
    assert got == ["s2"]
    assert stderr.getvalue().splitlines()[-1].endswith(
        "2 active and 0 backup servers online. 1 sessions requeued, 0 total in queue.")


async def test_on_marked_down_shutdown_sessions_ends_live_sessions(stderr: io.StringIO,
                                                                   engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check on-marked-down shutdown-sessions", "s2 127.0.0.1:9 check"])
    be = rt.backends["be"]
    s1 = be.servers[0]
    ended: list[str] = []

    async def session(name: str, server: checks.ServerState) -> None:
        with be.session_scope(server) as scope:
            await trio.sleep(30)
        ended.append(name if scope.cancelled_caught else "timeout")

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(session, "a", s1)
            n.start_soon(session, "b", s1)
            await trio.testing.wait_all_tasks_blocked()
            s1.served = 2  # as if both held a slot
            checker(rt, "s1", engine).apply(checks.CheckOutcome("L4CON", 0, "Connection refused", 0))
    assert sorted(ended) == ["a", "b"]
    assert "2 sessions active" in stderr.getvalue()


async def test_sessions_survive_without_shutdown_sessions(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check", "s2 127.0.0.1:9 check"])
    be = rt.backends["be"]
    with be.session_scope(be.servers[0]) as scope:
        checker(rt, "s1", engine).apply(checks.CheckOutcome("L4CON", 0, "Connection refused", 0))
        assert not scope.cancel_called


async def test_on_marked_up_shutdown_backup_sessions(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    rt = build("", ["s1 127.0.0.1:9 check rise 1 on-marked-up shutdown-backup-sessions", "b1 127.0.0.1:9 check backup"])
    be = rt.backends["be"]
    s1, b1 = be.servers
    c1 = checker(rt, "s1", engine)
    c1.apply(checks.CheckOutcome("L4CON", 0, "Connection refused", 0))
    with be.session_scope(b1) as on_backup:
        c1.apply(checks.CheckOutcome("L4OK", 0, "", 0))
        assert s1.up and on_backup.cancel_called  # the active server is back: backup sessions end


# ---------------------------------------------------------------------------------------------
# scheduling


async def test_servers_in_maintenance_are_not_checked(stderr: io.StringIO, engine: checks.CheckEngine) -> None:
    seen: list[bytes] = []
    async with trio.open_nursery() as n:
        port = await serve(n, b"HTTP/1.1 200 OK\r\n\r\n", seen)
        rt = build("option httpchk", [f"s1 127.0.0.1:{port} check inter 50ms disabled"])
        c = checker(rt, "s1", engine)
        assert c.state.maint and c.state.check_health == 0
        n.start_soon(c.run, 0)
        await trio.sleep(0.3)
        assert seen == []
        c.state.leave_maintenance()
        rt.backends["be"].server_changed()
        assert c.state.check_health == 2 and c.state.up  # health = rise: UP, one failure from DOWN
        with trio.fail_after(2):
            while not seen:
                await trio.sleep(0.01)
        n.cancel_scope.cancel()


async def test_a_slow_server_does_not_delay_another_and_intervals_follow_the_state(stderr: io.StringIO,
                                                                                   engine: checks.CheckEngine) -> None:
    fast: list[float] = []
    script = [200, 200, 503, 503, 503, 503]

    async def scripted(req: bytes) -> bytes:
        fast.append(trio.current_time())
        code = script[min(len(fast), len(script)) - 1]
        return f"HTTP/1.1 {code} X\r\n\r\n".encode()

    async with trio.open_nursery() as n:
        slow_port = await serve(n, None)
        fast_port = await serve(n, scripted)
        rt = build("option httpchk", [
            f"slow 127.0.0.1:{slow_port} check inter 1s",
            f"fast 127.0.0.1:{fast_port} check inter 100ms fastinter 40ms downinter 200ms rise 2 fall 3"])
        with trio.fail_after(5):
            n.start_soon(checks.run_checks, rt)
            while len(fast) < 6:
                await trio.sleep(0.005)
        n.cancel_scope.cancel()
    gaps = [round(b - a, 3) for a, b in zip(fast, fast[1:])]
    # ok (full) -> inter, ok -> inter, fail (2/3 UP) -> fastinter, fail (1/3 UP) -> fastinter,
    # fail (DOWN) -> downinter; the slow server's hung check (up to 1 s) delays none of these
    want = [0.1, 0.1, 0.04, 0.04, 0.2]
    assert all(w - 0.005 <= g <= w + 0.04 for g, w in zip(gaps, want)), gaps


async def test_first_checks_are_spread_over_the_smallest_interval(stderr: io.StringIO,
                                                                  engine: checks.CheckEngine) -> None:
    first: dict[str, float] = {}

    def recorder(name: str) -> Reply:
        async def reply(req: bytes) -> bytes:
            first.setdefault(name, trio.current_time())
            return b"HTTP/1.1 200 OK\r\n\r\n"
        return reply

    async with trio.open_nursery() as n:
        ports = [await serve(n, recorder(f"s{i}")) for i in range(4)]
        rt = build("option httpchk", [f"s{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(ports)])
        with trio.fail_after(5):
            n.start_soon(checks.run_checks, rt)
            while len(first) < 4:
                await trio.sleep(0.01)
        n.cancel_scope.cancel()
    t0 = first["s0"]
    offsets = [first[f"s{i}"] - t0 for i in range(4)]
    for got, want in zip(offsets, (0.0, 0.25, 0.5, 0.75)):
        assert abs(got - want) < 0.08, offsets


async def test_run_loop_sends_the_request_and_resets_the_connection(stderr: io.StringIO,
                                                                    engine: checks.CheckEngine) -> None:
    # the checks started by the engine itself (requests sent once the batch is started, answers
    # peeked and left unread) put the same bytes on the wire and end with a reset, as HAProxy does
    seen: list[bytes] = []
    ends: list[str] = []

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(4096)
        seen.append(data)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        try:
            ends.append("eof" if await stream.receive_some(10) == b"" else "data")
        except trio.BrokenResourceError:
            ends.append("reset")

    async with trio.open_nursery() as n:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        await n.start(trio.serve_listeners, handle, listeners)
        rt = build("option httpchk GET /health HTTP/1.1\nhttp-check send hdr Host example.org",
                   [f"s1 127.0.0.1:{port} check inter 50ms"])
        c = checker(rt, "s1", engine)
        assert (await c.check_once())[:3] == ("L7OK", 200, "")
        n.start_soon(c.run, 0)
        with trio.fail_after(3):
            while len(ends) < 4:
                await trio.sleep(0.01)
        assert (c.state.check_status, c.state.check_code) == ("L7OK", 200)
        n.cancel_scope.cancel()
    assert set(seen) == {c.plan.request}
    assert c.plan.request == b"GET /health HTTP/1.1\r\nhost: example.org\r\nconnection: close\r\n\r\n"
    assert set(ends) == {"reset"}


class _Target:
    def __init__(self, log: list[tuple[str, float]], name: str) -> None:
        self.log = log
        self.name = name

    def fire(self) -> None:
        self.log.append((self.name, trio.current_time()))


async def test_engine_timers_fire_at_most_half_a_grain_early_and_can_be_withdrawn(nursery: trio.Nursery) -> None:
    e = checks.CheckEngine(grain=0.02)
    nursery.start_soon(e.run)
    fired: list[tuple[str, float]] = []
    now = trio.current_time()
    whens = {f"t{i}": now + 0.013 * i for i in range(1, 9)}
    for name, when in whens.items():
        e.at(when, _Target(fired, name))
    e.at(now + 0.05, _Target(fired, "withdrawn"))[0] = None
    e.at(math.inf, _Target(fired, "never"))
    await trio.sleep(0.2)
    assert sorted(name for name, _ in fired) == sorted(whens)
    for name, t in fired:
        assert t >= whens[name] - 0.01 - 0.001, (name, t - whens[name])
        assert t <= whens[name] + 0.01 + 0.1, (name, t - whens[name])  # one bucket late, plus scheduling
    e.close()


async def test_engine_grain_can_change_with_timers_pending(nursery: trio.Nursery) -> None:
    e = checks.CheckEngine(grain=0.005)
    fired: list[tuple[str, float]] = []
    now = trio.current_time()
    e.at(now + 0.03, _Target(fired, "a"))
    e.at(now + 0.01, _Target(fired, "b"))
    e.grain = 0.002
    nursery.start_soon(e.run)
    await trio.sleep(0.1)
    assert [name for name, _ in fired] == ["b", "a"]
    e.close()


async def test_engine_uses_trio_deadlines_under_a_mock_clock(autojump_clock: trio.testing.MockClock,
                                                             nursery: trio.Nursery) -> None:
    # trio's autojump only knows about trio's own deadlines: the engine must not use its timerfd
    e = checks.CheckEngine(grain=0.005)
    nursery.start_soon(e.run)
    t0 = trio.current_time()
    await e.sleep_until(t0 + 600)
    assert 600 - 0.0025 <= trio.current_time() - t0 <= 600.1
    assert e._timer is None
    e.close()


def test_probes_sharing_a_limit_expire_once_and_only_if_still_in_flight() -> None:
    e = checks.CheckEngine(grain=0.005)

    class Probe:
        expiry: object = None

        def __init__(self) -> None:
            self.expired = 0

        def expire(self) -> None:
            self.expiry = None
            self.expired += 1

    landed, waiting, moved = Probe(), Probe(), Probe()
    for p in (landed, waiting, moved):
        e.expire_at(100.0, p)  # type: ignore[arg-type]
    group = waiting.expiry
    assert landed.expiry is group and moved.expiry is group  # one timer for the three
    landed.expiry = None  # landed before the limit
    e.expire_at(101.0, moved)  # type: ignore[arg-type]  # given another limit
    group.fire()  # type: ignore[union-attr]
    assert (landed.expired, waiting.expired, moved.expired) == (0, 1, 0)
    e.expire_at(100.0, Probe())  # type: ignore[arg-type]  # a fired group is never reused
    assert e._expiry is not group
    moved.expiry.fire()  # type: ignore[union-attr]
    assert moved.expired == 1
    e.close()
