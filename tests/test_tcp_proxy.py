"""End to end in mode tcp: a real haproxy-py process between real sockets on loopback."""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter

import pytest

from conftest import free_port, read_line, wait_listening

DEFAULTS = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


def config(port: int, servers: list[str], backend_extra: str = "", frontend_extra: str = "") -> str:
    lines = [DEFAULTS, "frontend fe", f"    bind 127.0.0.1:{port}", "    default_backend be", frontend_extra,
             "backend be", backend_extra]
    lines += [f"    server {s}" for s in servers]
    return "\n".join(lines) + "\n"


def test_roundrobin_alternates_and_bytes_flow_both_ways(lb, tcp_servers) -> None:
    s1, s2 = tcp_servers("s1"), tcp_servers("s2")
    port = free_port()
    lb.start(config(port, [f"s1 {s1.addr}", f"s2 {s2.addr}"]), [port])
    names = []
    for _ in range(6):
        name, s = read_line(port)
        s.close()
        names.append(name)
    assert names == ["s1", "s2", "s1", "s2", "s1", "s2"]


def test_half_close_client_still_gets_whole_answer(lb, tcp_servers) -> None:
    srv = tcp_servers("c", mode="collect")
    port = free_port()
    lb.start(config(port, [f"c {srv.addr}"]), [port])
    payload = bytes(range(256)) * 4096  # 1 MiB
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert srv.received == [payload]
    assert got.startswith(f"c got {len(payload)}\n".encode())
    assert len(got) == len(f"c got {len(payload)}\n") + 200_000


def test_no_usable_server_closes_client_at_once(lb) -> None:
    dead = free_port()
    port = free_port()
    lb.start(config(port, [f"s1 127.0.0.1:{dead}"], backend_extra="    retries 0"), [port])
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(10) == b""
    assert time.monotonic() - t0 < 1.0


def test_refused_server_is_retried_then_redispatched(lb, tcp_servers) -> None:
    live = tcp_servers("live")
    dead = free_port()
    port = free_port()
    lb.start(config(port, [f"dead 127.0.0.1:{dead}", f"live {live.addr}"],
                    backend_extra="    retries 1\n    option redispatch"), [port])
    names = Counter()
    for _ in range(4):
        name, s = read_line(port)
        s.close()
        names[name] += 1
    assert names == Counter({"live": 4})


def test_server_maxconn_queues_in_order_and_serves_later(lb, tcp_servers) -> None:
    srv = tcp_servers("h", mode="hold")
    port = free_port()
    lb.start(config(port, [f"h {srv.addr} maxconn 1"], backend_extra="    timeout queue 5s"), [port])
    first, s1 = read_line(port)
    assert first == "h"
    s2 = socket.create_connection(("127.0.0.1", port), timeout=5)
    s2.settimeout(0.5)
    try:
        s2.recv(10)
        raise AssertionError("the second connection reached the server while it was full")
    except TimeoutError:
        pass
    assert srv.max_active == 1
    s1.close()  # frees the slot (the hold server sees EOF only at release; closing our side is enough)
    srv.release.set()
    s2.settimeout(5)
    assert s2.recv(10) == b"h\n"
    assert srv.max_active == 1
    s2.close()


def test_queue_timeout_closes_waiting_client(lb, tcp_servers) -> None:
    srv = tcp_servers("h", mode="hold")
    port = free_port()
    lb.start(config(port, [f"h {srv.addr} maxconn 1"], backend_extra="    timeout queue 300ms"), [port])
    _, s1 = read_line(port)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s2:
        assert s2.recv(10) == b""
    waited = time.monotonic() - t0
    assert 0.2 < waited < 2.0
    assert srv.accepted == 1
    s1.close()


def test_frontend_maxconn_leaves_clients_in_backlog(lb, tcp_servers) -> None:
    srv = tcp_servers("e", mode="echo")
    port = free_port()
    lb.start(config(port, [f"e {srv.addr}"], frontend_extra="    maxconn 1"), [port])
    a = socket.create_connection(("127.0.0.1", port), timeout=5)
    a.sendall(b"a")
    assert a.recv(1) == b"a"
    b = socket.create_connection(("127.0.0.1", port), timeout=5)  # completes in the kernel backlog
    b.sendall(b"b")
    b.settimeout(0.5)
    try:
        b.recv(1)
        raise AssertionError("a second connection was served beyond maxconn 1")
    except TimeoutError:
        pass
    a.close()
    b.settimeout(5)
    assert b.recv(1) == b"b"
    b.close()


def test_bind_failure_is_reported_like_haproxy(lb) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        path = lb.write(config(port, ["s 127.0.0.1:1"]))
        r = lb.run(["-db", "-f", path])
        assert r.returncode == 1
        assert f"for proxy fe: cannot bind socket (Address already in use) for [127.0.0.1:{port}]" in r.stderr
        assert "Some protocols failed to start their listeners! Exiting." in r.stderr
    finally:
        holder.close()


def test_soft_stop_finishes_sessions_then_exits_0(lb, tcp_servers) -> None:
    srv = tcp_servers("e", mode="echo")
    port = free_port()
    proc = lb.start(config(port, [f"e {srv.addr}"]), [port])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"1")
    assert s.recv(1) == b"1"
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("still accepting after SIGUSR1")
    s.sendall(b"2")
    assert s.recv(1) == b"2"  # the established session is still served
    assert proc.poll() is None
    s.close()
    assert proc.wait(5) == 0


def test_hard_stop_on_sigterm(lb, tcp_servers) -> None:
    srv = tcp_servers("e", mode="echo")
    port = free_port()
    proc = lb.start(config(port, [f"e {srv.addr}"]), [port])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 0
    s.settimeout(5)
    assert s.recv(1) == b""
    s.close()


def test_daemon_mode_writes_pidfile_and_serves(lb, tcp_servers) -> None:
    import os

    srv = tcp_servers("d")
    port = free_port()
    pidfile = os.path.join(lb.workdir, "hp.pid")
    path = lb.write(config(port, [f"d {srv.addr}"]))
    r = lb.run(["-D", "-p", pidfile, "-f", path])
    assert r.returncode == 0, r.stderr
    with open(pidfile) as f:
        pid = int(f.read())
    try:
        wait_listening(port, None)
        name, s = read_line(port)
        s.close()
        assert name == "d"
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and _not_zombie(pid):
        time.sleep(0.02)
    assert not _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_queued_clients_are_served_in_arrival_order(lb, tcp_servers) -> None:
    srv = tcp_servers("o", mode="echo")
    port = free_port()
    lb.start(config(port, [f"o {srv.addr} maxconn 1"], backend_extra="    timeout queue 10s"), [port])
    first = socket.create_connection(("127.0.0.1", port), timeout=5)
    first.sendall(b"0")
    assert first.recv(1) == b"0"
    waiting = []
    for i in range(1, 4):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(str(i).encode())
        waiting.append(c)
        time.sleep(0.05)  # arrival order is what is under test: space the arrivals
    first.close()
    for i, c in enumerate(waiting, start=1):
        assert c.recv(1) == str(i).encode()  # served only once everyone before it left
        c.close()
    assert srv.max_active == 1


def test_hard_stop_after_bounds_a_soft_stop(lb, tcp_servers) -> None:
    srv = tcp_servers("e", mode="echo")
    port = free_port()
    cfg = config(port, [f"e {srv.addr}"]).replace("defaults", "global\n    hard-stop-after 500ms\n\ndefaults", 1)
    proc = lb.start(cfg, [port])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"1")
    assert s.recv(1) == b"1"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(5) == 0
    assert 0.4 < time.monotonic() - t0 < 3.0
    s.settimeout(5)
    assert s.recv(1) == b""  # the lingering session was closed
    s.close()


async def test_an_idle_connection_holds_no_buffer() -> None:
    import trio

    from haproxy_py.runtime.forward import Activity, BufferPool, pump

    pool = BufferPool()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    for sk in (a, b, c, d):
        sk.setblocking(False)
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            activity = Activity(scope=scope)
            nursery.start_soon(pump, b, c, activity, True, pool, False)
            await trio.sleep(0.05)  # the pump is parked waiting for data
            assert pool.lent == 0  # a parked pump holds no buffer
            a.send(b"x" * 100)
            with trio.fail_after(5):
                while True:
                    try:
                        assert d.recv(1000) == b"x" * 100
                        break
                    except BlockingIOError:
                        await trio.sleep(0.01)
            await trio.sleep(0.05)  # parked again
            assert pool.lent == 0  # the buffer it used went back to the pool
            nursery.cancel_scope.cancel()
    for sk in (a, b, c, d):
        sk.close()


# -- forward.tunnel: both directions of a session in one task ---------------------------------


def _pairs() -> tuple[socket.socket, socket.socket, socket.socket, socket.socket]:
    """(client peer, proxy's client side, proxy's server side, server peer), all non-blocking."""
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    for sk in (a, b, c, d):
        sk.setblocking(False)
    return a, b, c, d


async def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    import trio

    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except BlockingIOError:
            await trio.sleep(0.005)
            continue
        assert chunk, "end of stream too early"
        data += chunk
    return data


async def _recv_eof(sock: socket.socket) -> bytes:
    import trio

    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            await trio.sleep(0.005)
            continue
        if not chunk:
            return data
        data += chunk


@pytest.fixture(params=["own-task", "forwarder"])
async def forwarder(request: pytest.FixtureRequest, nursery: object) -> object:
    """Every tunnel test runs twice: the session's task moving the bytes, and a Forwarder doing it."""
    from haproxy_py.runtime.forward import Forwarder

    if request.param == "own-task":
        return None
    fw = Forwarder()
    nursery.start_soon(fw.run)  # type: ignore[attr-defined]
    return fw


async def _session(client: socket.socket, server: socket.socket, activity: object, forwarder: object,
                   pool: object = None, splice: bool = False) -> None:
    """tunnel() as a session runs it: both sockets are closed as soon as it returns."""
    from haproxy_py.runtime.forward import POOL, tunnel

    try:
        await tunnel(client, server, activity, pool or POOL, splice, forwarder)  # type: ignore[arg-type]
    finally:
        client.close()
        server.close()


async def test_tunnel_half_close_both_ways_and_counts(forwarder: object) -> None:
    import trio

    from haproxy_py.runtime.forward import Activity, BufferPool

    pool = BufferPool()
    a, b, c, d = _pairs()
    a.send(b"request")
    activity = Activity(scope=trio.CancelScope(), client=5.0, server=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_session, b, c, activity, forwarder, pool, False)
        assert await _recv_exactly(d, 7) == b"request"
        a.shutdown(socket.SHUT_WR)  # the client is done sending...
        assert await _recv_eof(d) == b""  # ...which the server sees
        d.send(b"answer")  # while the other way still flows
        assert await _recv_exactly(a, 6) == b"answer"
        assert activity.client_closed and not activity.server_closed
        d.close()
        assert await _recv_eof(a) == b""  # the server's end of stream reached the client
    assert (activity.bytes_up, activity.bytes_down, activity.termination()) == (7, 6, "--")
    assert pool.lent == 0
    a.close()


async def test_tunnel_on_finish_is_called_once_as_it_finishes(forwarder: object) -> None:
    # the session releases its server there: before its own task runs again
    import trio

    from haproxy_py.runtime.forward import POOL, Activity, tunnel

    a, b, c, d = _pairs()
    activity = Activity(scope=trio.CancelScope(), client=5.0, server=5.0)
    returned: list[bool] = []
    calls: list[bool] = []

    async def session() -> None:
        try:
            await tunnel(b, c, activity, POOL, False, forwarder, on_finish=lambda: calls.append(bool(returned)))  # type: ignore[arg-type]
            returned.append(True)
        finally:
            b.close()
            c.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(session)
        a.shutdown(socket.SHUT_WR)
        assert await _recv_eof(d) == b""
        assert calls == []  # one way is still open
        d.close()
        assert await _recv_eof(a) == b""
    assert calls == [False] and returned == [True]
    a.close()


async def test_tunnel_timeouts_close_one_direction_at_a_time(forwarder: object) -> None:
    """As in HAProxy 2.6 (checked side by side): the side that times out first stops being read
    and its peer gets the end of stream; the session ends when the other side's timer passes too,
    and the log shows the first timeout."""
    import trio

    from haproxy_py.runtime.forward import Activity

    a, b, c, d = _pairs()
    t0 = trio.current_time()
    activity = Activity(scope=trio.CancelScope(), client=0.3, server=0.8)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_session, b, c, activity, forwarder)
        assert await _recv_eof(d) == b""  # the server is told at the client timeout...
        assert 0.25 < trio.current_time() - t0 < 0.7
        assert await _recv_eof(a) == b""  # ...the client only at the server timeout
        assert 0.7 < trio.current_time() - t0 < 2.0
    assert activity.termination() == "cD"
    for sk in (a, d):
        sk.close()


# (timeouts, the side that shuts its output, pause before it does, elapsed bounds, termination,
#  the half-closed flag then set)
FIN_CASES = [
    # the client shut its output: the proxy shuts the server's, so server-fin applies
    (dict(client=5.0, server=5.0, client_fin=0.2, server_fin=0.3), "client", 0.0, (0.25, 2.0), "sD", "client_closed"),
    # the server shut its output: client-fin applies
    (dict(client=5.0, server=5.0, client_fin=0.3, server_fin=0.2), "server", 0.0, (0.25, 2.0), "cD", "server_closed"),
    # timeout tunnel replaces client and server, a -fin timeout overrides it once half-closed
    (dict(client=0.1, server=0.1, server_fin=0.3, tunnel=5.0), "client", 0.2, (0.45, 2.0), "sD", None),
]


@pytest.mark.parametrize("timeouts, shut, pause, window, termination, flag", FIN_CASES,
                         ids=["server-fin", "client-fin", "tunnel-then-fin"])
async def test_tunnel_fin_timeouts_apply_to_the_side_the_proxy_shut(forwarder: object, timeouts: dict, shut: str,
                                                                     pause: float, window: tuple[float, float],
                                                                     termination: str, flag: str | None) -> None:
    import trio

    from haproxy_py.runtime.forward import Activity

    a, b, c, d = _pairs()
    t0 = trio.current_time()
    activity = Activity(scope=trio.CancelScope(), **timeouts)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_session, b, c, activity, forwarder)
        if pause:
            await trio.sleep(pause)
            assert not activity.timed_out  # neither client nor server timeout applies
        (a if shut == "client" else d).shutdown(socket.SHUT_WR)
    assert window[0] < trio.current_time() - t0 < window[1]
    assert activity.termination() == termination
    if flag is not None:
        assert getattr(activity, flag)
    for sk in (a, d):
        sk.close()


async def test_tunnel_traffic_pushes_the_deadline(forwarder: object) -> None:
    import trio

    from haproxy_py.runtime.forward import POOL, Activity, tunnel

    a, b, c, d = _pairs()
    activity = Activity(scope=trio.CancelScope(), client=0.4, server=0.4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tunnel, b, c, activity, POOL, False, forwarder)
        for _ in range(8):  # 0.8 s in all, never 0.4 s idle
            await trio.sleep(0.1)
            a.send(b"x")
            assert await _recv_exactly(d, 1) == b"x"
        a.close()
        d.close()
    assert not activity.scope.cancelled_caught
    assert activity.termination() == "--" and activity.bytes_up == 8
    for sk in (b, c):
        sk.close()


async def test_tunnel_reset_ends_the_session_as_an_abort_of_that_side(forwarder: object) -> None:
    import struct

    import trio

    from haproxy_py.runtime.forward import POOL, Activity, tunnel

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    c = socket.create_connection(server.getsockname())
    d, _ = server.accept()
    a, b = socket.socketpair()
    for sk in (a, b, c):
        sk.setblocking(False)
    activity = Activity(scope=trio.CancelScope(), client=5.0, server=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tunnel, b, c, activity, POOL, False, forwarder)
        await trio.sleep(0.05)
        d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        d.close()  # a reset from the server
    assert activity.termination() == "SD"
    for sk in (a, b, c, server):
        sk.close()


async def test_tunnel_cancel_is_a_kill(forwarder: object) -> None:
    import trio

    from haproxy_py.runtime.forward import POOL, Activity, tunnel

    a, b, c, d = _pairs()
    activity = Activity(scope=trio.CancelScope(), client=5.0, server=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tunnel, b, c, activity, POOL, False, forwarder)
        await trio.sleep(0.05)
        activity.cancel()
    assert activity.killed and activity.scope.cancelled_caught and activity.termination() == "DD"
    for sk in (a, b, c, d):
        sk.close()


async def test_tunnel_bulk_with_a_slow_reader_keeps_every_byte(forwarder: object) -> None:
    """Whole buffers switch the flow to splice, a full peer pauses reading; nothing is lost."""
    import hashlib
    import os

    import trio

    from haproxy_py.runtime.forward import CAN_SPLICE, PIPES, Activity, BufferPool, tunnel

    payload = os.urandom(3 << 20)
    pool = BufferPool()
    for splice in (False, CAN_SPLICE):
        # real TCP sockets: splice() needs them
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(2)
        a = socket.create_connection(lst.getsockname())
        b, _ = lst.accept()
        c = socket.create_connection(lst.getsockname())
        d, _ = lst.accept()
        for sk in (a, b, c, d):
            sk.setblocking(False)
        received = bytearray()

        async def feed() -> None:
            view = memoryview(payload)
            while view:
                try:
                    view = view[d.send(view[:200_000]):]
                except BlockingIOError:
                    await trio.sleep(0.001)
            d.shutdown(socket.SHUT_WR)

        async def slow_read() -> None:
            while True:
                await trio.sleep(0.002)
                try:
                    chunk = a.recv(32768)
                except BlockingIOError:
                    continue
                if not chunk:
                    return
                received.extend(chunk)

        pipes_before = len(PIPES._free)
        activity = Activity(scope=trio.CancelScope(), client=10.0, server=10.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tunnel, b, c, activity, pool, splice, forwarder)
            nursery.start_soon(feed)
            nursery.start_soon(slow_read)
            await trio.sleep(0.3)
            a.shutdown(socket.SHUT_WR)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        assert activity.bytes_down == len(payload) and activity.termination() == "--"
        assert pool.lent == 0
        assert len(PIPES._free) >= pipes_before  # a pipe used for splicing went back, empty
        for sk in (a, b, c, d, lst):
            sk.close()


async def test_tunnel_idle_holds_no_buffer(forwarder: object) -> None:
    import trio

    from haproxy_py.runtime.forward import Activity, BufferPool, tunnel

    pool = BufferPool()
    a, b, c, d = _pairs()
    async with trio.open_nursery() as nursery:
        activity = Activity(scope=trio.CancelScope())
        nursery.start_soon(tunnel, b, c, activity, pool, False, forwarder)
        await trio.sleep(0.05)
        assert pool.lent == 0
        a.send(b"x" * 100)
        assert await _recv_exactly(d, 100) == b"x" * 100
        await trio.sleep(0.05)
        assert pool.lent == 0
        nursery.cancel_scope.cancel()
    for sk in (a, b, c, d):
        sk.close()


async def test_shutdown_sessions_ends_a_tunnel_attached_to_the_server(forwarder: object) -> None:
    """on-marked-down shutdown-sessions: a tcp session registers its Activity on its server."""
    import trio

    from haproxy_py.config.loader import load_text
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.forward import Activity

    cfg = load_text("defaults\n    mode tcp\nbackend be\n    server s1 127.0.0.1:1\n    server s2 127.0.0.1:2\n")
    be = BackendRuntime.build(cfg.config.backends[0])
    s1, s2 = be.servers
    a, b, c, d = _pairs()
    activity = Activity(scope=trio.CancelScope(), client=5.0, server=5.0)
    be.attach(s1, activity)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_session, b, c, activity, forwarder)
        await trio.sleep(0.05)
        assert be.shutdown_sessions(s2) == 0
        assert be.shutdown_sessions(s1) == 1
    be.detach(s1, activity)
    assert activity.termination() == "DD"
    assert be.shutdown_sessions(s1) == 0
    a.close()
    d.close()
