"""Health checks: each checked server's checks are independent, so a slow server never delays another.

Each server waits for its first check (spread over one interval at start-up, as HAProxy does),
then loops: start a probe, let its outcome go to the counter in `core.health`, apply the
transition to the shared `ServerState` (and through `BackendRuntime.server_changed()` to the
balancer and the queues), log it, wait for the next interval, counted from the end of the check.

Thousands of servers checked every second must stay cheap. In trio the expensive parts are task
switches and wake-ups (tens of us each on the 2-core reference box, more than a probe's own system
calls), and every bytecode of the per-check path is paid for thousands of times a second. So:

* HTTP and TCP connect probes run entirely in the `CheckEngine`: one trio task that waits on a
  private epoll for the probes' sockets and for its timer, starts a probe when the server's timer
  fires (`ServerCheck.fire`), sends the requests of a batch back to back, and completes a probe
  inline (read, judge, apply, schedule the next) when its socket is ready; the steady state (a
  passing check that changes nothing) takes no trio checkpoint at all. The server's trio task
  only owns the checks' lifetime. A slow server's probe just stays in flight until its own time
  limit, never delaying anyone else's.
* Timers are engine entries in buckets, not `trio.sleep()` or a cancel scope per check; probes
  started together share one time limit entry. The engine wakes at most every `grain` for
  timers, through a timerfd in its epoll (a trio deadline would cancel the wait, and the
  cancellation costs more than the wake-up).
* `option tcp-check` rule lists run as plain coroutines in the server's task (they are rarer and
  have many steps); their time limit ends a socket wait through `trio.lowlevel.notify_closing()`.

Measured with bench/checks_scale.py (2,000 servers every second, 2-core VM shared with other
work): the CPU per check went from ~250 us (a coroutine per probe, trio.sleep()) to ~125-160 us
(a task switch per check, a heap of timers), then to ~80-95 us, about two thirds of it the
kernel's TCP work; HAProxy 2.6 needs ~75-90 us in the same runs, nearly all of it in the kernel.

Probes use raw non-blocking sockets and close with a reset (SO_LINGER 0, or an answer left unread
in the socket), so that no TIME_WAIT is left behind. HAProxy 2.6 resets only the connections it
closes first and closes normally once the server has closed its side, which on loopback costs the
kernel more. TCP_QUICKACK is off before connecting, as in HAProxy: a pure TCP check's handshake
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
from haproxy_py.core.probe import judge_plain_head as _judge_plain_head
from haproxy_py.core.server import ServerState
from haproxy_py.runtime.timerfd import TimerFd

if TYPE_CHECKING:
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.supervisor import Runtime

_LINGER_RESET = struct.pack("ii", 1, 0)
_RECV_SIZE = 16384  # one read of tune.bufsize: a check needs the head, at most bufsize of body
_NONBLOCK_STREAM = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)
_SET_NONBLOCKING = _NONBLOCK_STREAM == socket.SOCK_STREAM  # no SOCK_NONBLOCK on this platform
_PASSED, _FAILED = Result.PASSED, Result.FAILED
_STATUS_RESULT = {name: st.result for name, st in health.STATUSES.items()}
_CODED = frozenset(("L7OK", "L7OKC", "L7STS"))
_IN = select.EPOLLIN | select.EPOLLONESHOT
_OUT = select.EPOLLOUT | select.EPOLLONESHOT
_SOL_SOCKET, _SO_LINGER, _SO_ERROR = socket.SOL_SOCKET, socket.SO_LINGER, socket.SO_ERROR
_IPPROTO_TCP, _TCP_QUICKACK = socket.IPPROTO_TCP, getattr(socket, "TCP_QUICKACK", 12)
_EINPROGRESS = errno.EINPROGRESS
_MSG_PEEK = socket.MSG_PEEK
# The engine wakes for timers at most this often, so a check starts within +-grain/2 of its time:
# +-5 ms, 0.5 % of a 1 s interval, and finer when intervals are short (1/40 of the shortest, see
# run_checks). Each wake-up costs about as much as a whole check (trio's loop, a context switch,
# cold caches): 10 ms rather than 5 ms saved ~12 us of CPU per check at 2,000 checks a second.
_MAX_GRAIN = 0.010
# times the engine looks again for ready probes before going back to sleep
_POLL_ROUNDS = 8


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

    A timer entry is a `[target, when]` list whose `target` has a `fire()` method (a server whose
    next check is due, the probes sharing a time limit, a tcp-check's limit, a parked task);
    setting `entry[0] = None` withdraws it. Entries are kept in buckets `grain / 2` wide rather
    than in one heap: a check's timers then cost an append each instead of a heap push and pop of
    lists compared element by element; only the keys of the buckets, plain ints, are in a heap.
    The task wakes when a probe socket is ready or at the earliest bucket, but at most once per
    `grain` seconds for timers, and fires every bucket due by then: an entry fires at most
    `grain / 2` early and one bucket late.

    A batch (one wake-up) fires the timers due, which starts the probes due (`ServerCheck.fire`),
    then sends their requests, then completes the probes whose answers are there. A wake-up costs
    more than a probe's own work (the trio loop, a context switch, cold caches), so the engine
    wakes as rarely as the timers and the answers allow; a check in the steady state runs
    entirely inline, without any trio checkpoint.
    """

    def __init__(self, grain: float = _MAX_GRAIN) -> None:
        self._buckets: dict[int, list[list]] = {}
        self._keys: list[int] = []  # a heap of the keys of `_buckets`
        self._epoll = select.epoll()
        self.register = self._epoll.register  # bound once: called for every probe
        self.flights: dict[int, Flight] = {}  # the probes being watched, by fd
        self.unsent: list[Flight] = []  # HTTP probes started in this batch, their request not sent yet
        self._expiry: _Expiry | None = None  # the last time limit a probe was given, shared by the next
        self._timer: TimerFd | None = None  # the run's timer (else a cancel scope's deadline)
        self._timer_at = math.nan  # the deadline the timer is set to (nan: to be set)
        self._clock: trio.abc.Clock | None = None
        self._scope: trio.CancelScope | None = None
        self._waiting = False  # the task waits for the epoll (or its deadline)
        self._armed = math.inf  # the bucket key the current wait's deadline was set for
        self._last = -math.inf
        self.now = 0.0  # trio time at the start of the engine's current (or last) batch
        self.grain = grain

    @property
    def grain(self) -> float:
        return self._grain

    @grain.setter
    def grain(self, value: float) -> None:
        entries = [e for bucket in self._buckets.values() for e in bucket]
        self._grain = value
        self._half = value / 2
        self._per_slot = 2 / value  # bucket key = int(when * _per_slot) + 1 (trio time is >= 0)
        self._buckets.clear()
        self._keys.clear()
        self._armed = math.inf
        for entry in entries:
            if entry[0] is not None:
                self._buckets.setdefault(int(entry[1] * self._per_slot) + 1, []).append(entry)
        self._keys.extend(sorted(self._buckets))  # a sorted list is a heap

    # -- timers -------------------------------------------------------------------------------
    def at(self, when: float, target: object) -> list:
        """Call `target.fire()` at `when` (trio clock); returns the entry (`entry[0] = None`
        withdraws it). `when` may be math.inf: never."""
        entry = [target, when]
        try:
            k = int(when * self._per_slot) + 1
        except OverflowError:
            return entry
        bucket = self._buckets.get(k)
        if bucket is not None:
            bucket.append(entry)
            return entry
        self._buckets[k] = [entry]
        heapq.heappush(self._keys, k)
        if k < self._armed and self._waiting:
            # a task other than the engine's asked for an earlier wake-up than the one pending
            self._armed = k
            self._wake_at(max(k / self._per_slot - self._half, self._last + self._grain))
        return entry

    def _wake_at(self, deadline: float) -> None:
        """End the engine's next (or current) wait at `deadline` at the latest."""
        if self._timer is not None:
            assert self._clock is not None
            self._timer.arm(self._clock.deadline_to_sleep_time(deadline))
            self._timer_at = deadline
        elif self._scope is not None:
            self._scope.deadline = deadline

    def expire_at(self, when: float, flight: Flight) -> None:
        """Time `flight` out at `when` unless it lands first (which sets its `expiry` to None).

        The probes started in one batch share their start and, in a backend, their limits, so
        they share one timer too."""
        group = self._expiry
        if group is None or group.when != when or group.fired:
            group = self._expiry = _Expiry(when)
            self.at(when, group)
        group.append(flight)
        flight.expiry = group

    async def sleep_until(self, when: float) -> None:
        """Park the calling task until `when` (trio clock)."""
        entry = self.at(when, _Waker(trio.lowlevel.current_task()))

        def abort(_: object) -> trio.lowlevel.Abort:
            entry[0] = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    # -- probe sockets ------------------------------------------------------------------------
    def watch(self, flight: Flight, events: int) -> None:
        """Have the engine advance `flight` once its socket has `events` (EPOLLIN or EPOLLOUT)."""
        fd = flight.fd
        if fd in self.flights:
            self._epoll.modify(fd, events)
        else:
            self.flights[fd] = flight
            self._epoll.register(fd, events)

    def forget(self, flight: Flight) -> None:
        """Stop watching (the caller then closes the socket, which leaves the epoll set)."""
        if self.flights.get(flight.fd) is flight:
            del self.flights[flight.fd]

    # -- the task -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Runs until cancelled."""
        buckets = self._buckets
        keys = self._keys
        flights = self.flights
        poll = self._epoll.poll
        epfd = self._epoll.fileno()
        current_time = trio.current_time
        heappop = heapq.heappop
        wait_readable = trio.lowlevel.wait_readable
        self._clock = trio.lowlevel.current_clock()
        from trio.testing import MockClock

        if self._timer is None and not isinstance(self._clock, MockClock):  # autojump needs trio's deadlines
            try:
                self._timer = TimerFd()
            except OSError:
                pass  # a cancel scope's deadline ends the wait instead
            else:
                self._epoll.register(self._timer.fd, select.EPOLLIN)
        timer = self._timer
        timer_fd = timer.fd if timer is not None else -1
        try:
            while True:
                self.now = now = current_time()
                self._last = now
                per_slot = self._per_slot
                due = (now + self._half) * per_slot  # buckets with key <= due are due
                while keys and keys[0] <= due:
                    for entry in buckets.pop(heappop(keys)):
                        target = entry[0]
                        if target is not None:
                            target.fire()
                if self.unsent:
                    # the requests of the probes just started, back to back (see `ServerCheck.fire`)
                    unsent, self.unsent = self.unsent, []
                    for flight in unsent:
                        flight.check._send_request(flight)
                    # a check ends (and its interval starts) no earlier than its request left
                    self.now = current_time()
                ready = poll(0)
                rounds = _POLL_ROUNDS
                while ready:
                    for fd, events in ready:
                        flight = flights.get(fd)
                        if flight is not None:
                            flight.check._flight_ready(flight, events)
                        elif fd == timer_fd:
                            self._timer_at = math.nan  # expired: to be set again, which clears it
                    rounds -= 1
                    if not rounds:
                        break
                    # answers that came in meanwhile (a server answers a batch of requests one
                    # after another): asking costs far less than being woken up again for them
                    ready = poll(0)
                    if ready:
                        self.now = current_time()
                if keys:
                    self._armed = keys[0]
                    deadline = max(keys[0] / per_slot - self._half, now + self._grain)
                else:
                    self._armed = math.inf
                    deadline = math.inf
                self._waiting = True
                if timer is not None:
                    if deadline != self._timer_at:
                        self._wake_at(deadline)
                    await wait_readable(epfd)
                else:
                    with trio.CancelScope(deadline=deadline) as self._scope:
                        await wait_readable(epfd)
                    self._scope = None
                self._waiting = False
        finally:
            self._scope = None
            self._waiting = False

    def close(self) -> None:
        """Release the epoll object and the timer (once no task uses the engine any more)."""
        self._epoll.close()
        if self._timer is not None:
            self._timer.close()
            self._timer = None


class _Waker:
    """A timer target that reschedules a parked task."""

    __slots__ = ("task",)

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task

    def fire(self) -> None:
        trio.lowlevel.reschedule(self.task)


class _Expiry(list):  # type: ignore[type-arg]
    """Probes sharing a time limit (see `CheckEngine.expire_at`): a timer target."""

    __slots__ = ("when", "fired")

    def __init__(self, when: float) -> None:
        super().__init__()
        self.when = when
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        for flight in self:
            if flight.expiry is self:  # still in flight, and not given another limit since
                flight.expire()


class Flight:
    """One HTTP or TCP connect probe in progress, driven by the engine."""

    __slots__ = ("check", "sock", "fd", "start", "done", "connected", "pending", "buf", "expiry")

    def __init__(self, check: ServerCheck, sock: _socket.socket, start: float,
                 done: Callable[[CheckOutcome], None], connected: bool = False, pending: bytes = b"") -> None:
        self.check = check
        self.sock = sock
        self.fd = sock.fileno()
        self.start = start
        self.done = done  # called with the outcome (duration included) when the probe ends
        self.connected = connected
        self.pending = pending  # request bytes not sent yet
        self.buf = b""  # response bytes read so far
        self.expiry: _Expiry | None = None  # the timer holding the probe's time limit

    def expire(self) -> None:
        self.expiry = None
        self.check._flight_expired(self)


class Deadline:
    """A tcp-check's time limit. When it passes, `expired` is set and a wait on `sock` ends (trio
    raises ClosedResourceError in the waiting task)."""

    __slots__ = ("sock", "expired", "entry")

    def __init__(self) -> None:
        self.sock: socket.socket | int | None = None  # a socket or its fd
        self.expired = False
        self.entry: list | None = None

    def fire(self) -> None:
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
    """Close a check connection with a reset, as HAProxy does when it closes first: no TIME_WAIT is
    left on either side, which matters when thousands of servers are checked every second."""
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
        self.http = plan.kind == "http"
        self.request = plan.request  # built once, by `probe.build_plan`
        self.needs_body = plan.needs_body
        # no expect rule: the status line alone decides, usually through `probe.judge_plain_head`
        self.plain = self.http and not plan.expects
        self.quickack_off = self.family != socket.AF_UNIX  # see `_launch`
        # HTTP probes to an address, started by `fire` itself (the usual case, kept short)
        self.batched = self.http and self.sockaddr is not None and self.quickack_off and not _SET_NONBLOCKING
        self.connected_limit = max(self.total_limit, self.after_connect)
        self.steady_delay = _seconds(cfg.inter)
        self.finished_at = 0.0  # trio time at which the last check ended
        self._flight: Flight | None = None
        self._wake: list | None = None
        self._landed_cb = self._landed  # one bound method for every check of the server
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
        """The server's task: one check per interval until cancelled.

        For HTTP and TCP connect probes the task only owns the checks' lifetime: the engine starts
        each probe when it is due (`fire`), completes it and schedules the next, all inline in its
        own task, so a check costs no task switch at all. Cancelling the task abandons the probe
        in flight and the next one.
        """
        engine = self.engine
        if self.engine_driven:
            self._wake = engine.at(trio.current_time() + _seconds(first_delay_ms), self)
            await trio.lowlevel.wait_task_rescheduled(self._abort_parked)
            return
        await engine.sleep_until(trio.current_time() + _seconds(first_delay_ms))
        while True:
            if self.state.maint or self.state.check_disabled:
                # maintenance (and `disabled`, which starts there) and `disable health` pause checks
                await engine.sleep_until(trio.current_time() + _seconds(self.next_delay()))
                continue
            self.apply(await self.check_once())
            await engine.sleep_until(self.finished_at + _seconds(self.next_delay()))

    def fire(self) -> None:
        """The next check is due (runs in the engine task, whose batch time is now).

        An HTTP probe is started here and its request sent once every probe of the batch is
        started (`_send_request`): sent back to back, the requests cost the kernel less than
        interleaved with connections, as a sleeping server is then woken once for several of
        them instead of once each, and each wake-up is a context switch (or an interrupt to the
        other CPU) that the checking process pays for.
        """
        st = self.state
        engine = self.engine
        if st.maint or st.check_disabled:
            # maintenance (and `disabled`, which starts there) and `disable health` pause checks
            self._wake = engine.at(engine.now + _seconds(self.next_delay()), self)
            return
        if not self.batched:
            got = self._launch(engine.now, self._landed_cb)
            if type(got) is not Flight:
                self._landed(got)  # type: ignore[arg-type]
            return
        start = engine.now
        st.check_running = True
        try:
            sock = _socket.socket(self.family, _NONBLOCK_STREAM)
        except OSError as e:
            return self._landed(self._now(start, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0))))
        sock.setsockopt(_IPPROTO_TCP, _TCP_QUICKACK, 0)  # see `_launch`
        err = sock.connect_ex(self.sockaddr)
        if err and err != _EINPROGRESS:
            sock.close()
            return self._landed(self._now(start, CheckOutcome("L4CON", desc=_strerror(err))))
        # connected (on loopback the handshake is over when connect() returns) until the send
        # tells otherwise; nothing arrives before the request is sent
        flight = self._flight = Flight(self, sock, start, self._landed_cb, True, self.request)
        engine.expire_at(start + self.connected_limit, flight)
        engine.flights[flight.fd] = flight
        engine.register(flight.fd, _IN)
        engine.unsent.append(flight)

    def _landed(self, outcome: CheckOutcome) -> None:
        """A probe started by `fire` ended (in the engine task): count it, schedule the next one."""
        self.apply(outcome)
        self._wake = self.engine.at(self.finished_at + _seconds(self.next_delay()), self)

    def _abort_parked(self, _: object) -> trio.lowlevel.Abort:
        if self._flight is not None:
            self._drop(self._flight)
        if self._wake is not None:
            self._wake[0] = None
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
                dl.entry[0] = None
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
        sockaddr = self.sockaddr
        if sockaddr is None:
            return self._now(start, CheckOutcome("SOCKERR"))
        try:
            sock = _socket.socket(self.family, _NONBLOCK_STREAM)
        except OSError as e:
            return self._now(start, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
        if _SET_NONBLOCKING:
            sock.setblocking(False)
        if self.quickack_off:
            # HAProxy: a pure TCP check never sends the handshake's last ACK; an HTTP check
            # ("smart connect") sends it with the request
            sock.setsockopt(_IPPROTO_TCP, _TCP_QUICKACK, 0)
        err = sock.connect_ex(sockaddr)
        if err and err != _EINPROGRESS:
            sock.close()
            return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
        engine = self.engine
        if self.http:
            request = self.request
            # On loopback the handshake is usually over when connect() returns: sending at once
            # saves asking the socket. EAGAIN means it is still in progress, an error that it failed.
            try:
                sent = sock.send(request)
            except BlockingIOError:
                flight = Flight(self, sock, start, done)
                engine.expire_at(start + self.connect_limit, flight)
                engine.watch(flight, _OUT)
                self._flight = flight
                return flight
            except OSError as e:
                err = sock.getsockopt(_SOL_SOCKET, _SO_ERROR) or e.errno or errno.ECONNREFUSED
                sock.close()
                return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
            # connected: the rest of the check gets its own limit (reference §3.4)
            flight = Flight(self, sock, start, done, True, request[sent:])
            engine.expire_at(start + self.connected_limit, flight)
            engine.watch(flight, _OUT if flight.pending else _IN)
            self._flight = flight
            return flight
        # plain TCP connect check
        if not err:
            _reset(sock)
            return self._now(start, CheckOutcome("L4OK"))
        err = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
        if err:
            sock.close()
            return self._now(start, CheckOutcome("L4CON", desc=_strerror(err)))
        try:
            sock.getpeername()  # already connected (usual on loopback)?
        except OSError:
            flight = Flight(self, sock, start, done)
            engine.expire_at(start + self.connect_limit, flight)
            engine.watch(flight, _OUT)
            self._flight = flight
            return flight
        _reset(sock)
        return self._now(start, CheckOutcome("L4OK"))

    def _send_request(self, flight: Flight) -> None:
        """Send the request of a probe started in the engine's current batch (see `fire`)."""
        request = flight.pending
        try:
            sent = flight.sock.send(request)
        except BlockingIOError:
            # the handshake is still in progress: wait for it, within the connect limit
            flight.connected = False
            flight.pending = b""  # set again once connected
            self.engine.expire_at(flight.start + self.connect_limit, flight)
            self.engine.watch(flight, _OUT)
            return
        except OSError as e:
            err = flight.sock.getsockopt(_SOL_SOCKET, _SO_ERROR) or e.errno or errno.ECONNREFUSED
            return self._land(flight, CheckOutcome("L4CON", desc=_strerror(err)))
        if sent == len(request):
            flight.pending = b""
        else:
            flight.pending = request[sent:]
            self.engine.watch(flight, _OUT)

    def _flight_ready(self, flight: Flight, events: int) -> None:
        """The engine saw the probe's socket ready: advance it (runs in the engine task)."""
        sock = flight.sock
        if flight.connected and not flight.pending and not flight.buf:
            # the usual case: the whole answer is there at once
            plain = self.plain
            try:
                # peeked when the status line may be all that matters: left unread, the answer
                # makes close() reset the connection, without setting SO_LINGER first
                data = sock.recv(_RECV_SIZE, _MSG_PEEK if plain else 0)
            except BlockingIOError:
                self.engine.watch(flight, _IN)
                return None
            except OSError as e:
                return self._land(flight, CheckOutcome("SOCKERR", desc=_strerror(e.errno or 0)))
            if plain and data:
                got = _judge_plain_head(data)
                if got is not None:
                    return self._land(flight, got, False)
                data = sock.recv(len(data))  # consumed after all, to be read on from
            if data and not self.needs_body:
                try:
                    head = probe.parse_head(data)
                except probe.InvalidResponse:
                    return self._land(flight, self._invalid_response())
                if head is not None:
                    return self._land(flight, probe.judge_http(head, b"", self.plan.expects))
            return self._read_more(flight, data)
        if not flight.connected:
            err = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
            if err:
                return self._land(flight, CheckOutcome("L4CON", desc=_strerror(err)))
            if not self.http:
                return self._land(flight, CheckOutcome("L4OK"))
            flight.connected = True
            flight.pending = self.request
            # connected: the rest of the check gets its own limit (reference §3.4)
            now = trio.current_time()
            self.engine.expire_at(max(flight.start + self.total_limit, now + self.after_connect), flight)
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
                err = flight.sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
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

    def _land(self, flight: Flight, outcome: CheckOutcome, linger_reset: bool = True) -> None:
        """The probe ended: release it (with a reset, see `_reset`; `linger_reset` False when
        unread data makes close() send one anyway), then report the outcome (with its duration).
        A check that changes nothing (see `apply`) is counted here."""
        flight.expiry = None
        engine = self.engine
        engine.flights.pop(flight.fd, None)
        sock = flight.sock
        if linger_reset:
            try:
                sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        sock.close()
        flight.buf = b""  # the flight may stay referenced by its time limit's timer until then
        self._flight = None
        st = self.state
        st.check_running = False
        self.finished_at = end = engine.now  # runs in the engine's batch
        duration = int((end - flight.start) * 1000)
        status = outcome[0]
        if (status == st.check_status and st.check_health == self.full and flight.done is self._landed_cb
                and _STATUS_RESULT[status] is _PASSED and not self.spread_checks):
            # `apply` and `_landed` in the steady state: nothing moves, nothing to log
            st.check_code = outcome[1] if status in _CODED else None
            st.check_info = outcome[2]
            st.check_duration = duration
            self._wake = engine.at(end + self.steady_delay, self)
            return
        flight.done(CheckOutcome(status, outcome[1], outcome[2], duration))

    def _drop(self, flight: Flight) -> None:
        """The task waiting for this probe was cancelled: abandon it (harmless if it had ended)."""
        flight.expiry = None
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
            dl.entry[0] = None
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
                        limit = dl.entry[1] if dl.entry is not None else math.inf
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
