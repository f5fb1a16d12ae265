"""Server choice, queueing, connection and retries for one backend.

The balancer picks; `core.queue` decides who waits and who is woken; this module only parks tasks
and opens sockets. It never looks at the algorithm's name.
"""

from __future__ import annotations

import contextlib
import _socket
import errno
import math
import os
import socket
from collections.abc import Callable, Iterator
from typing import Protocol

import attrs
import trio

from haproxy_py.config.model import Proxy, Server
from haproxy_py.core.lb import make_balancer
from haproxy_py.core.lb.base import Balancer, PickContext
from haproxy_py.core.queue import BackendQueue
from haproxy_py.core.server import ServerState
from haproxy_py.core.stats import ProxyCounters


class NoServer(Exception):
    """No usable server (all down, in maintenance or weight 0)."""


class QueueTimeout(Exception):
    """Waited `timeout queue` for a slot without getting one."""


class ConnectFailed(Exception):
    """Every attempt to connect failed (refused or `timeout connect`)."""

    def __init__(self, server: ServerState | None, timed_out: bool) -> None:
        super().__init__("connection to server failed")
        self.server = server
        self.timed_out = timed_out


@attrs.define
class ConnectTiming:
    """What a connect() went through, for the session's log line (times in ms, -1 = not reached)."""

    queue_ms: int = -1
    connect_ms: int = -1
    retries: int = 0
    redispatched: bool = False
    server_queue: int = 0
    backend_queue: int = 0
    failure: str = ""  # "", "noserver", "queue", "connect-timeout", "connect"


class Cancellable(Protocol):
    """A live session as `shutdown_sessions` sees it."""

    def cancel(self) -> None: ...


def _ms(value: int | None) -> float:
    return math.inf if not value else value / 1000.0


@attrs.define(eq=False)
class BackendRuntime:
    """A backend as the data plane sees it: server states, balancer and queue."""

    proxy: Proxy
    servers: list[ServerState]
    configs: dict[int, Server]  # id(ServerState) -> its config
    balancer: Balancer
    queue: BackendQueue = attrs.field(factory=BackendQueue)
    counters: ProxyCounters = attrs.field(factory=ProxyCounters)
    # called after every server state change (the main process tells its workers)
    observers: list[Callable[[BackendRuntime], None]] = attrs.field(factory=list)
    _events: dict[int, trio.Event] = attrs.field(factory=dict)
    _sessions: dict[int, set[Cancellable]] = attrs.field(factory=dict)
    _addresses: dict[int, tuple[object, tuple[int, tuple]]] = attrs.field(factory=dict)
    # waiters that left each queue for a slot (HAProxy's queue idx), for the logs' queue positions
    _dequeued_backend: int = 0
    _dequeued: dict[int, int] = attrs.field(factory=dict)

    @classmethod
    def build(cls, proxy: Proxy) -> BackendRuntime:
        states = []
        configs = {}
        for srv in proxy.servers:
            st = ServerState(name=srv.name, puid=srv.id, weight=srv.weight, initial_weight=srv.weight,
                             backup=srv.backup, maxconn=srv.maxconn, maxqueue=srv.maxqueue, maint=srv.disabled)
            states.append(st)
            configs[id(st)] = srv
        params = attrs.evolve(proxy.balance, allbackups="allbackups" in proxy.options)
        return cls(proxy=proxy, servers=states, configs=configs, balancer=make_balancer(states, params))

    def server_changed(self) -> None:
        """A server's usability or weight changed: rebuild the balancer and hand out free slots."""
        self.balancer.recalc()
        for s in self.servers:
            if not s.usable:
                self.queue.drain_server(s)  # its waiters go back to the backend queue
        for s in self.servers:
            self._grant_free_slots(s)
        for observer in self.observers:
            observer(self)

    # -- live sessions (for on-marked-down shutdown-sessions) ------------------------------------
    @contextlib.contextmanager
    def session_scope(self, server: ServerState) -> Iterator[trio.CancelScope]:
        """Run a session's exchange with `server` inside this scope, so that
        `shutdown_sessions(server)` can end it (health checks do when the server goes DOWN with
        `on-marked-down shutdown-sessions`)."""
        scope = trio.CancelScope()
        self.attach(server, scope)
        try:
            with scope:
                yield scope
        finally:
            self.detach(server, scope)

    def attach(self, server: ServerState, session: Cancellable) -> None:
        """Register a live session on `server` (anything with `cancel()`, e.g. a cancel scope the
        session already has), for `shutdown_sessions`; `detach` it when the session ends. Cheaper
        than `session_scope` on a path that has its own scope: no second scope, no generator."""
        live = self._sessions.get(id(server))
        if live is None:
            live = self._sessions[id(server)] = set()
        live.add(session)

    def detach(self, server: ServerState, session: Cancellable) -> None:
        live = self._sessions.get(id(server))
        if live is not None:
            live.discard(session)

    def shutdown_sessions(self, server: ServerState) -> int:
        """End every session registered on `server`; returns how many."""
        sessions = list(self._sessions.get(id(server), ()))
        for session in sessions:
            session.cancel()  # (some leave the set at once)
        return len(sessions)

    # -- slots ----------------------------------------------------------------------------------
    def _take(self, server: ServerState) -> None:
        served = server.served = server.served + 1
        c = server.counters
        c.sessions_total += 1
        if served > c.sessions_max:
            c.sessions_max = served

    def release(self, server: ServerState) -> None:
        """A session on `server` ended: its slot goes to the next waiter, if any."""
        server.served -= 1
        if server.queued or self.queue.backend:
            self._grant_free_slots(server)

    def _grant_free_slots(self, server: ServerState) -> None:
        while server.usable and not server.full:
            w = self.queue.next_for(server)
            if w is None:
                return
            self._count_dequeue(w.server)
            self._take(server)
            ev = self._events.pop(id(w), None)
            if ev is not None:
                ev.set()

    def _count_dequeue(self, queue: ServerState | None) -> None:
        """A waiter left the queue of `queue` (None: the backend's) for a slot."""
        if queue is None:
            self._dequeued_backend += 1
        else:
            self._dequeued[id(queue)] = self._dequeued.get(id(queue), 0) + 1

    def _dequeued_from(self, queue: ServerState | None) -> int:
        return self._dequeued_backend if queue is None else self._dequeued.get(id(queue), 0)

    async def acquire(self, ctx: PickContext, avoid: ServerState | None = None, *,
                      timing: ConnectTiming | None = None) -> ServerState:
        """A server with one of its slots taken for the caller; may wait in a queue.

        Raises NoServer when nothing is usable, QueueTimeout after `timeout queue` (which defaults
        to `timeout connect`). A caller that waited gets its queue position in `timing`.
        """
        server = self.balancer.pick(ctx, avoid)
        if server is None and not self.balancer.has_usable():
            raise NoServer()
        if server is not None and not server.full and self.queue.server_queue_length(server) == 0:
            self._take(server)
            return server
        if server is not None and server.maxqueue and self.queue.server_queue_length(server) >= server.maxqueue:
            server = None  # its queue is full: wait for any server instead
        waiter = self.queue.enqueue(server)
        started = (self._dequeued_from(None), self._dequeued_from(server))
        event = trio.Event()
        self._events[id(waiter)] = event
        t = self.proxy.timeouts
        try:
            with trio.move_on_after(_ms(t.queue or t.connect)):
                await event.wait()
        finally:
            self._events.pop(id(waiter), None)
            if waiter.granted is None:
                self.queue.cancel(waiter)
            if timing is not None:
                # HAProxy's srv_queue / backend_queue: 1 + the waiters that left the same queue
                # for a slot meanwhile (a waiter's own departure counts as its 1)
                queue = waiter.server  # None once in the backend's queue (it may have moved there)
                position = self._dequeued_from(queue) - started[0 if queue is None else 1]
                position += 0 if waiter.granted is not None else 1
                if queue is None:
                    timing.backend_queue = position
                else:
                    timing.server_queue = position
        if waiter.granted is None:
            raise QueueTimeout()
        return waiter.granted

    # -- connect --------------------------------------------------------------------------------
    def server_address(self, server: ServerState, client_port: int) -> tuple[int, tuple]:
        """(family, sockaddr) to connect to; a server without a port uses the client's port."""
        addr = self.configs[id(server)].address
        cached = self._addresses.get(id(server))
        if cached is not None and cached[0] is addr:
            return cached[1]
        if addr.family == "unix":
            found: tuple[int, tuple] = (socket.AF_UNIX, (addr.host,))
        else:
            fam = socket.AF_INET6 if addr.family == "ipv6" else socket.AF_INET
            if addr.port is None:
                return fam, (addr.host, client_port + addr.port_offset)
            found = (fam, (addr.host, addr.port))
        # kept while the server's address object stays the same
        self._addresses[id(server)] = (addr, found)
        return found

    async def connect(self, ctx: PickContext, client_port: int,
                      idle: Callable[[ServerState], socket.socket | None] | None = None,
                      timing: ConnectTiming | None = None) -> tuple[socket.socket, ServerState]:
        """Choose a server and connect to it, with HAProxy's retries and redispatch.

        `idle` (HTTP connection reuse) is asked for an already open connection to the chosen server
        before a new one is opened; what it returns is used as is. Raises NoServer, QueueTimeout or
        ConnectFailed. On success the caller owns the socket and must call `release(server)` when
        the session (in HTTP: the request) ends.
        """
        retries = self.proxy.retries
        connect_timeout = _ms(self.proxy.timeouts.connect)
        # the clock is read only for a log line's timers (and for a connect that has to wait)
        t0 = t1 = 0.0
        if timing is not None:
            t0 = trio.current_time()
        try:
            server = await self.acquire(ctx, timing=timing)
        except NoServer:
            if timing is not None:
                timing.failure = "noserver"
            raise
        except QueueTimeout:
            if timing is not None:
                timing.failure = "queue"
                timing.queue_ms = int((trio.current_time() - t0) * 1000)
            raise
        if timing is not None:
            t1 = trio.current_time()
            timing.queue_ms = int((t1 - t0) * 1000)
        attempt = 0
        while True:
            if idle is not None:
                reused = idle(server)
                if reused is not None:
                    server.counters.reuses += 1
                    return reused, server
            server.counters.connect_attempts += 1
            fam, addr = self.server_address(server, client_port)
            # the C socket type: no Python-level wrapper on the per-connection path
            sock = _socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            timed_out = False
            try:
                connected = _start_connect(sock, addr)
                if not connected:
                    # a bare cancel scope: fail_after's generator wrapper costs more than the wait
                    with trio.CancelScope(deadline=trio.current_time() + connect_timeout) as scope:
                        await _finish_connect(sock)
                    connected = not scope.cancelled_caught
                    timed_out = not connected
                if connected:
                    if fam != socket.AF_UNIX:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if timing is not None:
                        timing.connect_ms = int((trio.current_time() - t1) * 1000)
                        timing.retries = attempt
                    return sock, server
                sock.close()
            except OSError:
                sock.close()
            except BaseException:
                sock.close()
                self.release(server)
                raise
            server.counters.connect_errors += 1
            self.counters.connect_errors += 1
            if attempt >= retries:
                self.release(server)
                if timing is not None:
                    timing.failure = "connect-timeout" if timed_out else "connect"
                    timing.retries = attempt
                raise ConnectFailed(server, timed_out)
            attempt += 1
            server.counters.retries += 1
            self.counters.retries += 1
            if self._redispatch_now(attempt, retries):
                self.release(server)
                server.counters.redispatches += 1
                self.counters.redispatches += 1
                if timing is not None:
                    timing.redispatched = True
                server = await self.acquire(ctx, avoid=server, timing=timing)
            else:
                await trio.sleep(min(connect_timeout, 1.0))

    def _redispatch_now(self, attempt: int, retries: int) -> bool:
        r = self.proxy.redispatch
        if r == 0:
            return False
        if r < 0:  # the last retry (or n-th before last)
            return attempt == retries + 1 + r
        return attempt % r == 0


_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN)


def _start_connect(sock: socket.socket, addr: tuple) -> bool:
    """Begin a non-blocking connect: True when already established, False when in progress.

    On loopback the handshake has usually completed by the time connect() returns EINPROGRESS;
    asking getpeername() (one cheap syscall) then saves a scheduler pass. Raises OSError for a
    refusal that is already known.
    """
    # connect_ex: an error code instead of an exception for the usual EINPROGRESS
    err = sock.connect_ex(addr if len(addr) > 1 else addr[0])
    if not err:
        return True
    if err not in _IN_PROGRESS:
        raise OSError(err, os.strerror(err))
    try:
        sock.getpeername()
        return True
    except OSError:
        pass
    _raise_socket_error(sock)
    return False


def _raise_socket_error(sock: socket.socket) -> None:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def _finish_connect(sock: socket.socket) -> None:
    await trio.lowlevel.wait_writable(sock)
    _raise_socket_error(sock)
