"""The fast path sleeping in trio's place (runtime/idle_wait.py): its own events are served from
the wake-up, and everything of trio's (deadlines, new connections, tasks it wakes, threads, idle
waiters) still happens on time. The runtime is the real `serve()`; clients are blocking sockets in
threads; the origin is a real server on loopback."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import trio
import trio.testing
from http_backends import Origin, free_port, read_response, text_response
from test_http_counters import running

from haproxy_py.runtime import http_fastpath

# a wait that kept trio's own events from it would hang trio, and its own deadlines with it
pytestmark = pytest.mark.timeout(10, method="thread")


def cfg(port: int, origin: str) -> str:
    return "\n".join([
        "defaults", "    mode http", "    timeout connect 1s", "    timeout client 5s", "    timeout server 5s",
        "frontend fe", f"    bind 127.0.0.1:{port}", "    default_backend be",
        "backend be", f"    server s1 {origin}", ""])


def get(s: socket.socket, path: str) -> tuple[int, bytes]:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    status, _, body = read_response(s)
    return status, body


def parked_connection(port: int) -> socket.socket:
    """A keep-alive connection that has had two requests: it is parked on the fast path."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert get(s, "/1")[0] == 200 and get(s, "/2")[0] == 200
    return s


@contextlib.asynccontextmanager
async def parked(respond=None, hooked: bool = True):  # type: ignore[no-untyped-def]
    """A running haproxy-py and a client connection parked on its fast path: (fast path, socket,
    port). `hooked`: the fast path sleeps in trio's place (else it could not, on this trio)."""
    origin = Origin("s1", respond=respond)
    port = free_port()
    try:
        async with running(cfg(port, origin.addr)):
            fast = http_fastpath.current()
            assert fast is not None and (fast.idle is not None) == hooked
            s = await trio.to_thread.run_sync(parked_connection, port)
            try:
                yield fast, s, port
            finally:
                s.close()
    finally:
        origin.close()


class LoopTurns(trio.abc.Instrument):
    """Counts trio's turns of its run loop (one per wait for I/O)."""

    def __init__(self) -> None:
        self.turns = 0

    def after_io_wait(self, timeout: float) -> None:
        self.turns += 1


async def test_keepalive_requests_at_a_light_load_are_served_from_trios_sleep() -> None:
    # Each request wakes the process twice (the request, then the answer). Served from trio's
    # wait, they cost trio nothing: its run loop barely turns. Served by the fast path's task,
    # each wake-up would be a turn of trio's loop (over 80 for 40 requests).
    async with parked(lambda req: text_response(req.url)) as (fast, s, _):
        served = fast.served
        loop = LoopTurns()
        trio.lowlevel.add_instrument(loop)
        got = await trio.to_thread.run_sync(lambda: [get(s, f"/r{i}") for i in range(40)])
        trio.lowlevel.remove_instrument(loop)
        assert got == [(200, f"/r{i}".encode()) for i in range(40)]
        assert fast.served - served == 40
        assert loop.turns < 20


async def test_trio_deadlines_fire_on_time_while_a_connection_is_parked() -> None:
    # If the wait taken over did not end trio's own wait at the deadline, trio would start that
    # wait over with its stale timeout: each sleep would last twice as long.
    async with parked() as (fast, s, _):
        sleeps = fast.idle.sleeps
        lengths = []
        with trio.fail_after(5):
            for _ in range(5):
                t0 = time.monotonic()
                await trio.sleep(0.2)
                lengths.append(time.monotonic() - t0)
        assert fast.idle.sleeps > sleeps  # the waits were taken over
        assert all(0.2 <= x < 0.35 for x in lengths), lengths
        assert await trio.to_thread.run_sync(get, s, "/after") == (200, b"s1\n")


async def test_a_request_handed_back_to_its_task_is_answered_at_once() -> None:
    # A POST is not for the fast path: its connection goes back to the session task, which the
    # taken-over wait must let trio run right away (trio's timeout, computed before, is "never":
    # no deadline is nearer than the timeouts of 5 s).
    async with parked(lambda req: text_response(req.method + b" " + req.body)) as (_, s, _port):

        def post() -> tuple[float, int, bytes]:
            t0 = time.monotonic()
            s.sendall(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
            status, _, body = read_response(s)
            return time.monotonic() - t0, status, body

        with trio.fail_after(4):
            took, status, body = await trio.to_thread.run_sync(post)
        assert (status, body) == (200, b"POST abc")
        assert took < 1.0
        assert await trio.to_thread.run_sync(get, s, "/after") == (200, b"GET ")


async def test_new_connections_and_thread_callbacks_are_taken_while_one_is_parked() -> None:
    async with parked() as (_, s, port):
        token = trio.lowlevel.current_trio_token()
        called = trio.Event()

        def from_thread() -> float:
            time.sleep(0.1)  # the fast path is asleep in trio's place by now
            t0 = time.monotonic()
            token.run_sync_soon(called.set)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                assert get(c, "/new") == (200, b"s1\n")
            return time.monotonic() - t0

        with trio.fail_after(4):
            took = await trio.to_thread.run_sync(from_thread)
        assert called.is_set()
        assert took < 1.0
        assert await trio.to_thread.run_sync(get, s, "/after") == (200, b"s1\n")


async def test_waiting_for_all_tasks_blocked_still_works_with_a_parked_connection() -> None:
    # trio's idle waiters need trio's own wait to run out with nothing happening: the taken-over
    # wait stands aside for them (else each of its wake-ups of trio would count as "something").
    async with parked() as (_, s, _port):
        with trio.fail_after(3):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert await trio.to_thread.run_sync(get, s, "/after") == (200, b"s1\n")


async def test_the_fast_path_works_with_trios_own_wait_when_not_installed(monkeypatch) -> None:
    # Other trio versions (private attributes missing): the loop alone serves the fast path.
    monkeypatch.setattr(http_fastpath.idle_wait, "install", lambda fast: None)
    async with parked(lambda req: text_response(req.url), hooked=False) as (fast, s, _):
        served = fast.served
        got = await trio.to_thread.run_sync(lambda: [get(s, f"/r{i}") for i in range(10)])
        assert got == [(200, f"/r{i}".encode()) for i in range(10)]
        assert fast.served - served == 10


async def test_a_failure_while_serving_from_trios_sleep_leaves_the_fast_path_to_its_task(caplog) -> None:
    # trio logs an instrument's exception and removes it; the request it was serving is still
    # ready, so the fast path's task serves it, and every later one, with trio's own wait.
    async with parked(lambda req: text_response(req.url)) as (fast, s, _):
        take_events = fast.take_events
        failed = []

        def failing_once() -> None:
            if not failed and fast.waiting:  # (from trio's sleep; the task's own calls go through)
                failed.append(True)
                raise RuntimeError("injected")
            take_events()

        fast.take_events = failing_once  # type: ignore[method-assign]
        with trio.fail_after(4):
            got = await trio.to_thread.run_sync(lambda: [get(s, f"/r{i}") for i in range(10)])
        assert failed
        assert got == [(200, f"/r{i}".encode()) for i in range(10)]
        sleeps = fast.idle.sleeps
        with trio.fail_after(4):
            got = await trio.to_thread.run_sync(lambda: [get(s, f"/s{i}") for i in range(10)])
        assert got == [(200, f"/s{i}".encode()) for i in range(10)]
        assert fast.idle.sleeps == sleeps  # removed: trio sleeps on its own again
    assert "injected" in caplog.text
