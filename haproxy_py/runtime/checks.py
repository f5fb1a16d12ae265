"""Health checks: one trio task per checked server, so a slow server never delays another.

Each server's task waits for its first check (spread over one interval at start-up, as HAProxy
does), then loops: start a probe, let its outcome go to the counter in `core.health`, apply the
transition to the shared `ServerState` (and through `BackendRuntime.server_changed()` to the
balancer and the queues), log it, wait for the next interval, counted from the end of the check.

Thousands of servers checked every second must stay cheap, and in trio the expensive part is a
task switch (~20 us each on the 2-core reference box, more than the probe's own system calls). So:

* HTTP and TCP connect probes are started by the server's task and then driven to their end by
  the `CheckEngine`: one trio task that waits on a private epoll for the probes' sockets and on a
  heap for timers, and completes a probe inline (read, judge, apply) when its socket is ready. The
  server's task wakes once per check, at its next check time; a slow server's probe just stays in
  flight until its own deadline, never delaying anyone else's.
* Sleeps and time limits are heap entries served by the same engine task (no `trio.sleep()`, no
  cancel scope per check); it wakes at most every few ms (`grain`) and fires everything due.
* `option tcp-check` rule lists run as plain coroutines in the server's task (they are rarer and
  have many steps); their time limit ends a socket wait through `trio.lowlevel.notify_closing()`.

Measured with bench/checks_scale.py (2,000 servers every second, 2-core VM): the CPU per check went
from ~250 us (a coroutine per probe, trio.sleep()) to ~125-145 us, about half of it the kernel's TCP
work; HAProxy 2.6 needs ~65-75 us on the same box, nearly all of it in the kernel.

Probes use raw non-blocking sockets and close with a reset, as HAProxy does, so no TIME_WAIT is
left behind. TCP_QUICKACK is off before connecting, as in HAProxy: a pure TCP check's handshake
never completes from the server's point of view (its application never accepts the connection),
and an HTTP check's last handshake ACK leaves with the request.

What is sent and how answers are judged lives in `core.probe`; the counter, intervals, timeouts
and messages in `core.health`.
"""

from __future__ import annotations

import _socket
import errno
import heapq
import ipaddress
import itertools
import math
import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from haproxy_py import log
from haproxy_py.config.model import Server
from haproxy_py.core import health, probe
from haproxy_py.core.health import CheckOutcome, Result, Transition
from haproxy_py.core.server import ServerState

if TYPE_CHECKING:
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.supervisor import Runtime

_LINGER_RESET = struct.pack("ii", 1, 0)
_RECV_SIZE = 16384  # one read of tune.bufsize: a check needs the head, at most bufsize of body
_NONBLOCK_STREAM = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)
_PASSED, _FAILED = Result.PASSED, Result.FAILED
_STATUS_RESULT = {name: st.result for name, st in health.STATUSES.items()}
_CODED = frozenset(("L7OK", "L7OKC", "L7STS"))
_IN = select.EPOLLIN | select.EPOLLONESHOT
_OUT = select.EPOLLOUT | select.EPOLLONESHOT
_Task = trio.lowlevel.Task
# the engine wakes at most this often; finer when intervals are short (see run_checks)
_MAX_GRAIN = 0.005


async def run_checks(rt: Runtime) -> None:
    """Run every checked server's checks until cancelled; returns at once when nothing is checked."""
    engine = CheckEngine()
    checkers = build_checkers(rt, engine)
    if not checkers:
        return
    g = rt.config.global_
    delays = health.first_check_delays([c.startup_interval() for c in checkers], g.max_spread_checks)
    engine.grain = min(_MAX_GRAIN, min(c.shortest_interval() for c in checkers) / 1000 / 40)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.run)
            for checker, delay in zip(checkers, delays):
                nursery.start_soon(checker.run, delay)
    finally:
        engine.close()


def build_checkers(rt: Runtime, engine: CheckEngine,
                   rand: Callable[[], float] = random.random) -> list[ServerCheck]:
    """One `ServerCheck` per server with `check`, in configuration order; initialises their state.

    Runs synchronously before the first check, so stats see "checked" servers from the start.
    """
    sink = log.current(rt.config)
    g = rt.config.global_
    checkers = []
    for backend in rt.backends.values():
        px = backend.proxy
        if px.disabled:
            continue
        plan: probe.Plan | None = None
        for state in backend.servers:
            cfg = backend.configs[id(state)]
            if not cfg.check:
                continue
            if plan is None:
                try:
                    plan = probe.build_plan(px)
                except probe.PlanError as e:
                    sink.alert(f"backend '{px.name}' : {e}; its servers get TCP connect checks.")
                    plan = probe.Plan(kind="connect")
            checkers.append(ServerCheck(backend, state, cfg, plan, sink, engine, spread_checks=g.spread_checks,
                                        bufsize=g.bufsize, rand=rand))
    return checkers


# ----------------------------------------------------------------------------------------------
# the engine: timers and probe readiness, in one task


class CheckEngine:
    """Timers and the readiness of in-flight probes, served by one trio task (`run`).

    Timer entries `[when, seq, target]` sit in a heap: `target` is a parked task (rescheduled), an
    object with `expire()` (a probe's or a tcp-check's time limit), or None once withdrawn. The
    task wakes when a probe socket is ready or at the earliest entry, but at most once per `grain`
    seconds for timers, firing everything due by then: a check may start up to `grain` late.
    """

    def __init__(self, grain: float = _MAX_GRAIN) -> None:
        self.grain = grain
        self._heap: list[list] = []
        self._seq = itertools.count()
        self._epoll = select.epoll()
        self._flights: dict[int, Flight] = {}
        self._scope: trio.CancelScope | None = None
        self._armed = math.inf
        self._last = -math.inf
        self.now = 0.0  # trio time at the start of the engine's current (or last) batch

    # -- timers -------------------------------------------------------------------------------
    def at(self, when: float, target: object) -> list:
        """Fire `target` at `when` (trio clock); returns the entry (`entry[2] = None` withdraws it)."""
        entry = [when, next(self._seq), target]
        heapq.heappush(self._heap, entry)
        if when < self._armed and self._scope is not None:
            self._armed = when
            self._scope.deadline = max(when, self._last + self.grain)
        return entry

    async def sleep_until(self, when: float) -> None:
        """Park the calling task until `when` (trio clock)."""
        entry = self.at(when, trio.lowlevel.current_task())

        def abort(_: object) -> trio.lowlevel.Abort:
            entry[2] = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    # -- probe sockets ------------------------------------------------------------------------
    def watch(self, flight: Flight, events: int) -> None:
        """Have the engine advance `flight` once its socket has `events` (EPOLLIN or EPOLLOUT)."""
        fd = flight.fd
        if fd in self._flights:
            self._epoll.modify(fd, events)
        else:
            self._flights[fd] = flight
            self._epoll.register(fd, events)

    def forget(self, flight: Flight) -> None:
        """Stop watching (the caller then closes the socket, which leaves the epoll set)."""
        if self._flights.get(flight.fd) is flight:
            del self._flights[flight.fd]

    # -- the task -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Runs until cancelled."""
        heap = self._heap
        flights = self._flights
        poll = self._epoll.poll
        epfd = self._epoll.fileno()
        reschedule = trio.lowlevel.reschedule
        try:
            while True:
                self.now = now = trio.current_time()
                self._last = now
                horizon = now + self.grain / 2
                while heap and heap[0][0] <= horizon:
                    target = heapq.heappop(heap)[2]
                    if target is None:
                        continue
                    if type(target) is _Task:
                        reschedule(target)
                    else:
                        target.expire()
                for fd, events in poll(0):
                    flight = flights.get(fd)
                    if flight is not None:
                        flight.check._flight_ready(flight, events)
                self._armed = heap[0][0] if heap else math.inf
                with trio.CancelScope(deadline=max(self._armed, now + self.grain)) as self._scope:
                    await trio.lowlevel.wait_readable(epfd)
                self._scope = None
        finally:
            self._scope = None

    def close(self) -> None:
        """Release the epoll object (once no task uses the engine any more)."""
        self._epoll.close()


class Flight:
    """One HTTP or TCP connect probe in progress, driven by the engine."""

    __slots__ = ("check", "sock", "fd", "start", "done", "connected", "pending", "buf", "entry")

    def __init__(self, check: ServerCheck, sock: _socket.socket, start: float,
                 done: Callable[[CheckOutcome], None]) -> None:
        self.check = check
        self.sock = sock
        self.fd = sock.fileno()
        self.start = start
        self.done = done  # called with the outcome (duration included) when the probe ends
        self.connected = False
        self.pending = b""  # request bytes not sent yet
        self.buf = b""  # response bytes read so far
        self.entry: list | None = None  # the probe's time limit in the engine's heap

    def expire(self) -> None:
        self.entry = None
        self.check._flight_expired(self)


class Deadline:
    """A tcp-check's time limit. When it passes, `expired` is set and a wait on `sock` ends (trio
    raises ClosedResourceError in the waiting task)."""

    __slots__ = ("sock", "expired", "entry")

    def __init__(self) -> None:
        self.sock: socket.socket | int | None = None  # a socket or its fd
        self.expired = False
        self.entry: list | None = None

    def expire(self) -> None:
        self.expired = True
        self.entry = None
        if self.sock is not None:
            trio.lowlevel.notify_closing(self.sock)


class Expired(Exception):
    """The check's deadline passed while it was waiting."""


async def _wait_readable(dl: Deadline, sock: socket.socket | int) -> None:
    if dl.expired:
        raise Expired()
    try:
        await trio.lowlevel.wait_readable(sock)
    except trio.ClosedResourceError:
        raise Expired() from None


async def _wait_writable(dl: Deadline, sock: socket.socket | int) -> None:
    if dl.expired:
        raise Expired()
    try:
        await trio.lowlevel.wait_writable(sock)
    except trio.ClosedResourceError:
        raise Expired() from None


def _seconds(ms: int) -> float:
    return ms / 1000.0


def _strerror(code: int) -> str:
    return os.strerror(code) if code else ""


def _reset(sock: socket.socket | _socket.socket) -> None:
    """Close a check connection with a reset, as HAProxy does: no TIME_WAIT is left on either side,
    which matters when thousands of servers are checked every second."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    sock.close()


# ----------------------------------------------------------------------------------------------
# one server's checks


class ServerCheck:
    """The checks of one server: its probe, its counter, and what a transition does."""

    def __init__(self, backend: BackendRuntime, state: ServerState, cfg: Server, plan: probe.Plan,
                 sink: log.LogSink, engine: CheckEngine, *, spread_checks: int = 0, bufsize: int = 16384,
                 rand: Callable[[], float] = random.random) -> None:
        self.backend = backend
        self.state = state
        self.cfg = cfg
        self.plan = plan
        self.sink = sink
        self.engine = engine
        self.spread_checks = spread_checks
        self.bufsize = bufsize
        self.rand = rand
        px = backend.proxy
        self.log_checks = "log-health-checks" in px.options
        self.intervals = health.Intervals(cfg.inter, cfg.fastinter, cfg.downinter)
        self.full = cfg.rise + cfg.fall - 1
        d = health.check_deadlines(cfg.inter, px.timeouts.check, px.timeouts.connect)
        self.connect_limit = _seconds(d.connect)
        self.total_limit = _seconds(d.total)
        self.after_connect = _seconds(d.after_connect)
        self.family, self.sockaddr = self._target(plan.addr, plan.port)
        # HTTP and plain connect probes are driven by the engine; tcp-check rules by a coroutine
        self.engine_driven = plan.kind in ("http", "connect")
        self.needs_body = plan.needs_body
        self.finished_at = 0.0  # trio time at which the last check ended
        self._flight: Flight | None = None
        self._task: trio.lowlevel.Task | None = None
        self._wake: list | None = None
        state.checked = True
        state.check_rise = cfg.rise
        state.check_fall = cfg.fall
        state.check_health = health.initial_health(cfg.rise, cfg.disabled)
        state.check_status = "INI"
        state.last_change = time.time()

    # -- addresses ----------------------------------------------------------------------------
    def _target(self, addr: str | None, port: int | None) -> tuple[int, object]:
        """(family, sockaddr) a check connects to; sockaddr None when no port is known."""
        a = self.cfg.address
        if a.family in ("unix", "abns") and addr is None and self.cfg.check_addr is None:
            return socket.AF_UNIX, ("\0" + a.host if a.family == "abns" else a.host)
        host = addr or self.cfg.check_addr or a.host
        port = port or self.cfg.check_port or a.port
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        except ValueError:
            # a name (`addr` takes one): resolved once, here, as HAProxy does at start-up; a
            # connect() given a name would resolve it, blocking, at every check
            family = socket.AF_INET6 if a.family == "ipv6" else socket.AF_INET
            if port is not None:
                try:
                    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except OSError:
                    return family, None
                family, _, _, _, sockaddr = infos[0]
                return family, sockaddr
        if port is None:
            return family, None
        return family, (host, port)

    # -- the loop -----------------------------------------------------------------------------
    def startup_interval(self) -> int:
        st = self.state
        return health.next_interval(st.check_health, self.cfg.rise, self.cfg.fall, not st.up, self.intervals)

    def shortest_interval(self) -> int:
        iv = self.intervals
        return min(x for x in (iv.inter, iv.fastinter, iv.downinter) if x)

    def next_delay(self) -> int:
        """Milliseconds until the next check, counted from the end of this one."""
        st = self.state
        if st.check_health == self.full and not self.spread_checks:
            return self.intervals.inter  # the steady state, without the general computation
        base = health.next_interval(st.check_health, self.cfg.rise, self.cfg.fall, not st.up, self.intervals)
        return health.spread(base, self.spread_checks, self.rand)

    async def run(self, first_delay_ms: int) -> None:
        """The server's task: one check per interval until cancelled."""
        engine = self.engine
        await engine.sleep_until(trio.current_time() + _seconds(first_delay_ms))
        self._task = trio.lowlevel.current_task()
        while True:
            if self.state.maint or self.state.check_disabled:
                # maintenance (and `disabled`, which starts there) and `disable health` pause checks
                await engine.sleep_until(trio.current_time() + _seconds(self.next_delay()))
                continue
            if self.engine_driven:
                # we were just woken by the engine: its loop time is now, to within its batch
                got = self._launch(engine.now, self._landed)
                if type(got) is Flight:
                    # the engine completes the probe, applies it, and wakes us for the next check
                    await trio.lowlevel.wait_task_rescheduled(self._abort_parked)
                    self._wake = None
                    continue
                assert isinstance(got, CheckOutcome)
                self.apply(got)
            else:
                self.apply(await self.check_once())
            await engine.sleep_until(self.finished_at + _seconds(self.next_delay()))

    def _landed(self, outcome: CheckOutcome) -> None:
        """A probe started by `run` ended (in the engine task): count it, schedule the next one."""
        self.apply(outcome)
        self._wake = self.engine.at(self.finished_at + _seconds(self.next_delay()), self._task)

    def _abort_parked(self, _: object) -> trio.lowlevel.Abort:
        if self._flight is not None:
            self._drop(self._flight)
        if self._wake is not None:
            self._wake[2] = None
            self._wake = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def check_once(self) -> CheckOutcome:
        """Run one probe and return its outcome (not applied); never raises for anything the
        network or the server does. The engine task (`CheckEngine.run`) must be running."""
        if self.engine_driven:
            task = trio.lowlevel.current_task()
            box: list[CheckOutcome] = []

            def done(outcome: CheckOutcome) -> None:
                box.append(outcome)
                trio.lowlevel.reschedule(task)

            got = self._launch(trio.current_time(), done)
            if type(got) is not Flight:
                assert isinstance(got, CheckOutcome)
                return got
            flight = got

            def abort(_: object) -> trio.lowlevel.Abort:
                self._drop(flight)
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            return box[0]
        st = self.state
        st.check_running = True
        start = trio.current_time()
        dl = Deadline()
        try:
            outcome = await self._tcp_check(start, dl)
        finally:
            if dl.entry is not None:
                dl.entry[2] = None
            st.check_running = False
        self.finished_at = end = trio.current_time()
        return CheckOutcome(outcome.status, outcome.code, outcome.desc, int((end - start) * 1000))

    # -- engine-driven probes (HTTP, TCP connect) ---------------------------------------------
    def _now(self, start: float, outcome: CheckOutcome) -> CheckOutcome:
        """A probe that ended without waiting."""
        self.finished_at = end = trio.current_time()
        self.state.check_running = False
        return CheckOutcome(outcome.status, outcome.code, outcome.desc, int((end - start) * 1000))

    def _launch(self, start: float, done: Callable[[CheckOutcome], None]) -> Flight | CheckOutcome:
        """Open the connection and send the request: a Flight the engine will complete (calling
        `done`), or the outcome when the probe ended at once (refused, failed...)."""
        self.state.check_running = True
        if self.sockaddr is None:
            return self._now(start, CheckOutcome("SOCKERR"))
        try:
            sock = _socket.socket(self.family, _NONBLOCK_STREAM)
        except OSError as e:
            return self._now(start, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
        if _NONBLOCK_STREAM == socket.SOCK_STREAM:
            sock.setblocking(False)  # no SOCK_NONBLOCK on this platform
        if self.family != socket.AF_UNIX:
            # HAProxy: a pure TCP check never sends the handshake's last ACK; an HTTP check
            # ("smart connect") sends it with the request
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        err = sock.connect_ex(self.sockaddr)
        if err and err != errno.EINPROGRESS:
            sock.close()
            return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
        engine = self.engine
        if self.plan.kind == "http":
            request = self.plan.request
            # On loopback the handshake is usually over when connect() returns: sending at once
            # saves asking the socket. EAGAIN means it is still in progress, an error that it failed.
            try:
                sent = sock.send(request)
            except BlockingIOError:
                flight = Flight(self, sock, start, done)
                flight.entry = engine.at(start + self.connect_limit, flight)
                engine.watch(flight, _OUT)
                self._flight = flight
                return flight
            except OSError as e:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or e.errno or errno.ECONNREFUSED
                sock.close()
                return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
            flight = Flight(self, sock, start, done)
            flight.connected = True
            # connected: the rest of the check gets its own limit (reference §3.4)
            flight.entry = engine.at(max(start + self.total_limit, start + self.after_connect), flight)
            if sent < len(request):
                flight.pending = request[sent:]
                engine.watch(flight, _OUT)
            else:
                engine.watch(flight, _IN)
            self._flight = flight
            return flight
        # plain TCP connect check
        if not err:
            _reset(sock)
            return self._now(start, CheckOutcome("L4OK"))
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
        try:
            sock.getpeername()  # already connected (usual on loopback)?
        except OSError:
            flight = Flight(self, sock, start, done)
            flight.entry = engine.at(start + self.connect_limit, flight)
            engine.watch(flight, _OUT)
            self._flight = flight
            return flight
        _reset(sock)
        return self._now(start, CheckOutcome("L4OK"))

    def _flight_ready(self, flight: Flight, events: int) -> None:
        """The engine saw the probe's socket ready: advance it (runs in the engine task)."""
        sock = flight.sock
        if flight.connected and not flight.pending and not flight.buf:
            # the usual case: the whole answer is there at once
            try:
                data = sock.recv(_RECV_SIZE)
            except BlockingIOError:
                self.engine.watch(flight, _IN)
                return None
            except OSError as e:
                return self._land(flight, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
            plan = self.plan
            if data and not self.needs_body:
                try:
                    head = probe.parse_head(data)
                except probe.InvalidResponse:
                    return self._land(flight, self._invalid_response())
                if head is not None:
                    return self._land(flight, probe.judge_http(head, b"", plan.expects))
            return self._read_more(flight, data)
        if not flight.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return self._land(flight, CheckOutcome("L4CON", desc=_strerror(err)))
            if self.plan.kind != "http":
                return self._land(flight, CheckOutcome("L4OK"))
            flight.connected = True
            flight.pending = self.plan.request
            if flight.entry is not None:
                flight.entry[2] = None
            now = trio.current_time()
            flight.entry = self.engine.at(max(flight.start + self.total_limit, now + self.after_connect), flight)
        if flight.pending:
            try:
                sent = sock.send(flight.pending)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                return self._land(flight, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
            flight.pending = flight.pending[sent:]
            self.engine.watch(flight, _OUT if flight.pending else _IN)
            return None
        try:
            data = sock.recv(_RECV_SIZE)
        except BlockingIOError:
            self.engine.watch(flight, _IN)
            return None
        except OSError as e:
            if not flight.buf:
                return self._land(flight, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
            data = b""  # judge what arrived before the reset
        return self._read_more(flight, data)

    def _read_more(self, flight: Flight, data: bytes) -> None:
        """Add `data` (b"" at the end of the stream) to the answer; judge it once complete."""
        eof = not data
        buf = flight.buf = flight.buf + data if flight.buf else data
        plan = self.plan
        try:
            head = probe.parse_head(buf)
        except probe.InvalidResponse:
            return self._land(flight, self._invalid_response())
        if head is None:
            if eof:
                # closed before a full answer: a reset that followed the close is a socket error
                err = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self._land(flight, CheckOutcome("SOCKERR", desc=_strerror(err)))
                return self._land(flight, self._invalid_response())
            self.engine.watch(flight, _IN)
            return None
        body = b""
        if self.needs_body:
            got = probe.body_complete(head, buf, eof, plan.head_only, self.bufsize)
            if got is None:
                self.engine.watch(flight, _IN)
                return None
            body = got
        return self._land(flight, probe.judge_http(head, body, plan.expects))

    def _flight_expired(self, flight: Flight) -> None:
        self._land(flight, CheckOutcome("L7TOUT" if flight.connected else "L4TOUT"))

    def _land(self, flight: Flight, outcome: CheckOutcome) -> None:
        """The probe ended: release it, then report the outcome (with its duration)."""
        entry = flight.entry
        if entry is not None:
            entry[2] = None
            flight.entry = None
        self.engine.forget(flight)
        _reset(flight.sock)
        self._flight = None
        self.state.check_running = False
        self.finished_at = end = self.engine.now  # runs in the engine's batch
        flight.done(CheckOutcome(outcome.status, outcome.code, outcome.desc, int((end - flight.start) * 1000)))

    def _drop(self, flight: Flight) -> None:
        """The task waiting for this probe was cancelled: abandon it (harmless if it had ended)."""
        if flight.entry is not None:
            flight.entry[2] = None
            flight.entry = None
        self.engine.forget(flight)
        _reset(flight.sock)  # closing twice is a no-op
        if self._flight is flight:
            self._flight = None
        self.state.check_running = False

    def _invalid_response(self) -> CheckOutcome:
        # HAProxy appends the first expect rule's comment even to an empty description
        comment = self.plan.expects[0].comment if self.plan.expects else None
        return CheckOutcome("L7RSP", desc=f" comment: {comment}" if comment else "")

    # -- tcp-check rules (a coroutine in the server's task) ------------------------------------
    async def _open(self, dl: Deadline, limit: float, family: int, sockaddr: object,
                    quickack: bool = True) -> tuple[socket.socket | None, CheckOutcome | None]:
        """Connect before `limit` (trio clock): (socket, None), or (None, L4CON/L4TOUT/SOCKERR)."""
        if sockaddr is None:
            return None, CheckOutcome("SOCKERR")
        try:
            sock = socket.socket(family, _NONBLOCK_STREAM)
        except OSError as e:
            return None, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0))
        if _NONBLOCK_STREAM == socket.SOCK_STREAM:
            sock.setblocking(False)
        dl.sock = sock
        if not quickack and family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        err = sock.connect_ex(sockaddr)  # type: ignore[arg-type]
        if err == errno.EINPROGRESS:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err:
                try:
                    sock.getpeername()
                except OSError:
                    self._set_deadline(dl, limit)
                    try:
                        await _wait_writable(dl, sock)
                    except Expired:
                        sock.close()
                        dl.sock = None
                        return None, CheckOutcome("L4TOUT")
                    except BaseException:
                        sock.close()
                        raise
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            dl.sock = None
            return None, CheckOutcome("L4CON", desc=_strerror(err))
        return sock, None

    def _set_deadline(self, dl: Deadline, when: float) -> None:
        if dl.entry is not None:
            dl.entry[2] = None
        dl.entry = self.engine.at(when, dl)

    def _connected(self, dl: Deadline, start: float) -> None:
        """Connected: the rest of the check gets its own limit (reference §3.4)."""
        self._set_deadline(dl, max(start + self.total_limit, trio.current_time() + self.after_connect))

    async def _tcp_check(self, start: float, dl: Deadline) -> CheckOutcome:
        plan = self.plan
        sock: socket.socket | None = None
        current: probe.TcpStep | None = None
        connected = False
        try:
            if plan.implicit_connect:
                # a connect with nothing after it delays its ACK, as a plain TCP check does
                sock, failed = await self._open(dl, start + self.connect_limit, self.family, self.sockaddr,
                                                quickack=bool(plan.steps))
                if sock is None:
                    assert failed is not None
                    return _with_info(failed, probe.step_info(plan, None))
                connected = True
                self._connected(dl, start)
            buf = b""
            for current in plan.steps:
                if current.action == "connect":
                    if sock is not None:
                        _reset(sock)
                        sock = None
                    family, sockaddr = self._target(current.addr, current.port)
                    if connected:
                        # a later connection of the same check: the check's own limit applies
                        if dl.expired:
                            return CheckOutcome("L4TOUT", desc=probe.step_info(plan, current))
                        limit = dl.entry[0] if dl.entry is not None else math.inf
                    else:
                        limit = start + self.connect_limit
                    sock, failed = await self._open(dl, limit, family, sockaddr,
                                                    quickack=current is not plan.steps[-1])
                    if sock is None:
                        assert failed is not None
                        return _with_info(failed, probe.step_info(plan, current))
                    if not connected:
                        connected = True
                        self._connected(dl, start)
                    buf = b""
                elif current.action == "send":
                    assert sock is not None
                    try:
                        await _send_all(dl, sock, current.data)
                    except Expired:
                        return CheckOutcome("L7TOUT", desc=probe.step_info(plan, current))
                    except OSError as e:
                        return CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0) + probe.step_info(plan, current))
                    buf = b""
                else:
                    assert sock is not None
                    try:
                        failed_outcome, buf = await self._expect(dl, sock, current, buf)
                    except Expired:
                        return CheckOutcome("L7TOUT", desc=probe.step_info(plan, current))
                    if failed_outcome is not None:
                        return failed_outcome
            if not plan.steps:
                return CheckOutcome("L4OK")  # only the implicit connect: reported as a plain TCP check
            if plan.steps[-1].action == "connect":
                return CheckOutcome("L4OK", desc="(tcp-check)")
            return CheckOutcome("L7OK", desc="(tcp-check)")
        finally:
            if sock is not None:
                _reset(sock)

    async def _expect(self, dl: Deadline, sock: socket.socket, step: probe.TcpStep,
                      buf: bytes) -> tuple[CheckOutcome | None, bytes]:
        eof = False
        while True:
            try:
                return probe.judge_expect(step, buf, eof, self.bufsize), buf
            except probe.NeedMore:
                pass
            await _wait_readable(dl, sock)
            try:
                data = sock.recv(_RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError as e:
                info = _strerror(e.errno or 0) + probe.step_info(self.plan, step)
                return CheckOutcome("SOCKERR", desc=info), buf
            if data:
                buf += data
            else:
                eof = True
                # the peer closed, and may have reset a request sent after that: HAProxy sees the reset
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return CheckOutcome("SOCKERR", desc=_strerror(err) + probe.step_info(self.plan, step)), buf

    # -- effects ------------------------------------------------------------------------------
    def apply(self, outcome: CheckOutcome) -> None:
        """Count a check result and carry out what it implies (reference §3.1, §3.7)."""
        st = self.state
        status = outcome.status
        res = _STATUS_RESULT[status]
        if res == _PASSED and status == st.check_status and st.check_health == self.full:
            # the steady state: nothing moves, nothing to log
            st.check_code = outcome.code if status in _CODED else None
            st.check_info = outcome.desc
            st.check_duration = outcome.duration if outcome.duration >= 0 else None
            return
        cfg = self.cfg
        s = health.step(st.check_health, cfg.rise, cfg.fall, stopped=not st.up, result=res,
                        status_changed=status != st.check_status, maint=st.maint)
        st.check_health = s.health
        st.check_status = status
        st.check_code = outcome.code if status in _CODED else None
        st.check_info = outcome.desc
        st.check_duration = outcome.duration if outcome.duration >= 0 else None
        if res == _FAILED and s.counted:
            st.counters.check_failures += 1
        px = self.backend.proxy
        if self.log_checks and s.log_check:
            msg = health.check_message(px.name, st.name, backup=st.backup, outcome=outcome, health=s.health,
                                       rise=cfg.rise, fall=cfg.fall, drain=st.weight == 0)
            self.sink.warning(msg)
            self.sink.log(px, log.NOTICE, msg)
        reason = None if self.log_checks else outcome
        if s.transition is Transition.DOWN:
            self.mark_down(reason)
        elif s.transition is Transition.UP:
            self.mark_up(reason)

    def _counts(self) -> tuple[int, int]:
        active = backup = 0
        for s in self.backend.servers:
            if s.usable:
                if s.backup:
                    backup += 1
                else:
                    active += 1
        return active, backup

    def mark_down(self, reason: CheckOutcome | None) -> None:
        """The server failed its checks: no new traffic, its queue goes back to the backend."""
        st = self.state
        be = self.backend
        before = sum(self._counts())
        was_draining = st.drain
        st.up = False
        st.last_change = time.time()
        st.counters.down_transitions += 1
        sessions = st.served
        requeued = be.queue.server_queue_length(st)
        if self.cfg.on_marked_down == "shutdown-sessions":
            be.shutdown_sessions(st)
        be.server_changed()
        active, backups = self._counts()
        msg = health.down_message(be.proxy.name, st.name, backup=st.backup, outcome=reason, active=active,
                                  backups=backups, sessions=sessions, requeued=requeued,
                                  remaining=be.queue.server_queue_length(st))
        self.sink.warning(msg)
        self.sink.log(be.proxy, log.NOTICE if was_draining else log.ALERT, msg)
        if before and not active and not backups:
            on_stderr, in_log = health.no_server_messages(be.proxy.kind, be.proxy.name)
            self.sink.alert(on_stderr)
            self.sink.log(be.proxy, log.EMERG, in_log)

    def mark_up(self, reason: CheckOutcome | None) -> None:
        """The server passed `rise` checks: it takes traffic again, and queued requests with it."""
        st = self.state
        be = self.backend
        st.up = True
        now = time.time()
        if st.last_change:
            st.down_time += max(0.0, now - st.last_change)
        st.last_change = now
        served = st.served
        be.server_changed()
        requeued = max(0, st.served - served)
        if self.cfg.on_marked_up == "shutdown-backup-sessions" and not st.backup:
            for other in be.servers:
                if other.backup:
                    be.shutdown_sessions(other)
        active, backups = self._counts()
        msg = health.up_message(be.proxy.name, st.name, backup=st.backup, outcome=reason, active=active,
                                backups=backups, requeued=requeued, in_queue=be.queue.server_queue_length(st))
        self.sink.warning(msg)
        self.sink.log(be.proxy, log.NOTICE, msg)


def _with_info(outcome: CheckOutcome, info: str) -> CheckOutcome:
    return CheckOutcome(outcome.status, outcome.code, outcome.desc + info, outcome.duration)


async def _send_all(dl: Deadline, sock: socket.socket | _socket.socket, data: bytes) -> None:
    """Send everything, waiting only when the socket buffer is full (a probe fits at once)."""
    try:
        n = sock.send(data) if data else 0
    except BlockingIOError:
        n = 0
    if n == len(data):
        return
    view = memoryview(data)[n:]
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            await _wait_writable(dl, sock)
            continue
        view = view[n:]
