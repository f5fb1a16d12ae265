"""Keep-alive requests served without a task switch: parked sessions driven by one epoll task.

Why: on the common keep-alive path trio's per-wait machinery (a task switch and an epoll
re-registration per wait, two waits per request) costs more than the proxying itself. So a
session whose client connection is idle between requests *parks* here, and its task sleeps on an
Event. When the next request arrives, a simple one (no body, a safe method, no rules to run, the
server picked has a free slot and an idle connection, as `http-reuse safe` allows) is forwarded and
its response relayed by callbacks of this module's single task; the session stays parked. Anything
else hands the connection back to the session task, with the request head put back in the parser's
queue, so the task carries on exactly as if it had read the request itself. Nothing is counted
before a transaction commits, so a hand-back never counts twice.

The behaviour is the session's (runtime/http_session.py): same counters, framing, header
serialisation, error pages, connection reuse and timeouts (keep-alive idle: close silently;
server: 504 before the response, cut during it; client: cut a stalled write).

The request heads and finished responses of a batch of several events are written together at its
end. Why: a send that wakes a peer asleep in its own poll costs the sender several times what one
to a peer still awake costs, and between two sends a request's Python work is long enough for the
peer to fall asleep again. Written back to back, most find it awake: about a fifth less CPU per
request under load. A lone event (a light load) is written at once, before its bookkeeping: its
server often answers before the loop polls again, which saves going back to sleep in between.

```
FastPath.run                 one task: waits on the private epoll (and the earliest deadline);
 │                           while trio has nothing else to run, runtime/idle_wait.py waits instead
 └─ take_events              what is ready, batch after batch:
     ├─ _client_readable     read, parse; a simple request goes out on an idle server connection
     ├─ _server_readable     response head and body relayed as they come; server conn parked
     ├─ _writable            a client that could not take everything at once
     ├─ _write_batch         the batch's request heads, then its finished responses
     └─ _expire              deadlines
```
"""

from __future__ import annotations

import heapq
import math
import select
import socket
import time
from typing import TYPE_CHECKING, Any

import trio

from haproxy_py.core import http1
from haproxy_py.runtime import http_session as _session
from haproxy_py.runtime import idle_wait
from haproxy_py.core.http1 import EndOfMessage, H1Error, RequestHead, ResponseHead, chunk, last_chunk
from haproxy_py.core.stats import count_server_response
from haproxy_py.runtime.forward import CHUNK
from haproxy_py.runtime.timerfd import TimerFd

if TYPE_CHECKING:
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.http_session import HttpProxy, HttpSession, ServerConn

_IN, _OUT, _HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLHUP | select.EPOLLERR
_SAFE = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE"))
_HEAD = b"HEAD"
# what a parked session is doing
IDLE, WAIT_HEAD, RELAY, CLOSING = range(4)
# what an epoll entry is: a parked client, the server side of its transaction, an idle server connection
_CLIENT, _SERVER, _IDLE_SERVER = range(3)
# how a park ends, as the session task sees it
HANDBACK, CLOSED = 1, 2
_OUT_LIMIT = 256 * 1024  # bytes waiting for a slow client before the server is no longer read
_POLL_ROUNDS = 8  # batches of events taken in a row before trio runs the other tasks
_BATCH = 64  # events taken at once: bounds how long a batch's writes wait for its end


class Parked:
    """A session parked in the fast path, and the transaction it may be running."""

    __slots__ = ("session", "fd", "event", "outcome", "state", "deadline", "heap_at", "req", "backend", "be", "sc", "server",
                 "keep", "server_keep", "chunked", "received", "t0", "t_conn", "t_resp", "pending",
                 "end_after_write", "mode", "counted_sc", "local", "n_headers", "mask", "fast", "route")

    def __init__(self, session: HttpSession, fast: FastPath) -> None:
        self.session = session
        self.fast = fast
        self.fd = session.client.fileno()
        self.event = trio.Event()
        self.outcome = 0
        self.state = IDLE
        self.deadline = math.inf
        self.heap_at = math.inf  # when this session's live entry in the timer heap fires
        self.req: RequestHead | None = None
        self.backend: BackendRuntime | None = None
        self.be: HttpProxy | None = None
        self.sc: ServerConn | None = None
        self.server = None
        self.keep = False
        self.server_keep = False
        self.chunked = False
        self.received = 0
        self.t0 = self.t_conn = self.t_resp = 0.0
        self.pending: list[bytes] = []  # bytes the client has not taken yet
        self.end_after_write = False  # close the client once `pending` is written
        self.mode = 0
        self.counted_sc: ServerConn | None = None  # whose server the bytes written are counted on
        self.local = False  # what is written is an answer of ours (counted on the frontend only)
        self.n_headers = 0  # the request's headers before forwardfor added its own
        self.mask = _IN  # the client socket's events watched
        # (backend, its HTTP context) where requests go, once known; () when the fast path cannot
        self.route: tuple[Any, ...] | None = None

    def cancel(self) -> None:
        """`shutdown sessions` of the transaction's server (on-marked-down shutdown-sessions)."""
        self.session._terminate("DH" if self.state == WAIT_HEAD else "DD")
        self.fast._close(self)


class FastPath:
    """The process's fast path (one per trio run); `run()` must be running for sessions to park."""

    def __init__(self) -> None:
        self._ep = select.epoll()
        self._by_fd: dict[int, tuple[Any, int]] = {}  # fd -> (Parked or idle ServerConn, _CLIENT...)
        self._timers: list[tuple[float, int, Parked]] = []
        self._seq = 0
        self.running = False
        self._scope: trio.CancelScope | None = None
        self._armed = math.inf
        self._timer: TimerFd | None = None  # ends the wait at the earliest deadline (else a scope does)
        self._timer_at = math.nan  # the deadline the timer is set for
        self._clock: Any = None
        self.waiting = False  # run() is waiting on the epoll set
        self._timer_fd = -1
        self.idle: idle_wait.IdleWait | None = None  # trio's sleeps taken over, while this runs
        self.now = 0.0  # trio's clock, read once per batch of events
        self.wall = 0.0  # and the wall clock (for the rate counters)
        self._buf = bytearray(CHUNK)  # every read lands here: the parsers copy what they keep
        self._view = memoryview(self._buf)
        self.served = 0  # transactions completed here
        # written at the end of the batch: (session, its server connection, request head) ...
        self._heads: list[tuple[Parked, ServerConn, bytes]] = []
        self._done: list[Parked] = []  # ... and sessions whose whole response is in `pending`
        self._gather = False  # the current batch has several events: gather its writes

    # -- the session side ----------------------------------------------------------------------
    async def park(self, session: HttpSession) -> int:
        """Serve `session`'s connection from here until it needs its task back (HANDBACK: its
        reader holds the next request) or has ended (CLOSED)."""
        p = Parked(session, self)
        self._by_fd[p.fd] = (p, _CLIENT)
        self._ep.register(p.fd, _IN)
        self._idle(p, session.t_last)
        try:
            await p.event.wait()
        finally:
            if not p.outcome:  # cancelled (soft stop of an idle connection, or the process stops)
                self._abort(p)
        return p.outcome

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Wait for the parked sockets and the earliest deadline, and act on them."""
        self.running = True
        epfd = self._ep.fileno()
        wait_readable = trio.lowlevel.wait_readable
        self._clock = trio.lowlevel.current_clock()
        from trio.testing import MockClock

        if not isinstance(self._clock, MockClock):  # autojump needs trio's deadlines
            try:
                self._timer = TimerFd()
            except OSError:
                pass  # a cancel scope's deadline ends the wait instead
            else:
                self._ep.register(self._timer.fd, _IN)
                self._timer_fd = self._timer.fd
                self.idle = idle_wait.install(self)
        timer = self._timer
        try:
            while True:
                if timer is not None:
                    self.set_timer()
                    self.waiting = True
                    await wait_readable(epfd)
                    self.waiting = False
                else:
                    with trio.CancelScope(deadline=self._earliest()) as self._scope:
                        await wait_readable(epfd)
                    self._scope = None
                self.take_events()
        finally:
            self.running = False
            self.waiting = False
            if self.idle is not None:
                idle_wait.uninstall(self.idle)
                self.idle = None
            for p, kind in list(self._by_fd.values()):
                if kind == _CLIENT:
                    self._close(p)
                elif kind == _IDLE_SERVER:
                    p.watcher = None  # the epoll set goes with this run; the socket may stay idle
            self._ep.close()
            if self._timer is not None:
                self._timer.close()
                self._timer = None

    @property
    def epoll_fd(self) -> int:
        return self._ep.fileno()

    def _earliest(self) -> float:
        timers = self._timers
        deadline = self._armed = timers[0][0] if timers else math.inf
        return deadline

    def set_timer(self) -> None:
        """Before a wait: the timer set for the earliest deadline."""
        deadline = self._earliest()
        if deadline != self._timer_at:
            self._wake_at(deadline)

    def take_events(self) -> None:
        """Act on what is ready, batch after batch while there is something (at most a few)."""
        poll = self._ep.poll
        by_fd = self._by_fd
        timers = self._timers
        current_time = trio.current_time
        timer_fd = self._timer_fd
        for _ in range(_POLL_ROUNDS):
            self.now = current_time()
            self.wall = time.time()
            ready = poll(0, _BATCH)
            self._gather = len(ready) > 1
            for fd, ev in ready:
                entry = by_fd.get(fd)
                if entry is None:
                    if fd == timer_fd:
                        self._timer_at = math.nan  # expired: set again, which clears it
                    continue
                p, kind = entry
                try:
                    if kind == _SERVER:
                        self._server_readable(p)
                    elif kind == _IDLE_SERVER:
                        _session.discard_idle(p)  # an idle server connection closed or spoke
                    elif ev & _OUT and p.pending:
                        self._writable(p)
                    elif ev & _HUP and p.state != IDLE:
                        self._close(p)  # the client went away in the middle of a transaction
                    else:
                        self._client_readable(p)
                except Exception:  # noqa: BLE001 - one connection's bug ends that connection only
                    if kind == _IDLE_SERVER:
                        p.close()
                    else:
                        self._close(p)
            if self._heads or self._done:
                self._write_batch()
            if timers and timers[0][0] <= self.now:
                self._expire()
            if not ready:
                break
            # requests and answers that came in meanwhile: asking costs far less than
            # going back to sleep to be woken up for them

    def _wake_at(self, deadline: float) -> None:
        """End the loop's next (or current) wait at `deadline` at the latest."""
        if self._timer is not None:
            self._timer.arm(self._clock.deadline_to_sleep_time(deadline))
            self._timer_at = deadline
        elif self._scope is not None:
            self._scope.deadline = deadline

    def _arm(self, p: Parked, when: float) -> None:
        """Set `p`'s deadline. Deadlines mostly move later (each phase starts a new span), and
        then the heap is left alone: the entry already there fires first and is pushed again for
        the real deadline. So a session has at most a couple of heap entries, whatever its rate."""
        p.deadline = when
        if when >= p.heap_at:
            return
        p.heap_at = when
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, p))
        if when < self._armed:
            self._armed = when
            if self.waiting or self._scope is not None:
                self._wake_at(when)  # (a session parking while the loop waits)

    def _expire(self) -> None:
        now = trio.current_time()
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, p = heapq.heappop(timers)
            if when != p.heap_at or p.outcome:
                continue  # superseded by an earlier entry, or gone
            p.heap_at = math.inf
            if p.deadline > now:
                self._arm(p, p.deadline)  # moved later since: wait again
                continue
            if p.state == IDLE:
                self._close(p)  # an idle keep-alive connection closes silently
            elif p.state == WAIT_HEAD:
                self._server_failed(p, 504, "sH", timeout=True)
            else:  # a stalled transfer (server silent mid-body, or client not reading)
                sc = p.sc
                if sc is not None and p.state == RELAY and not p.pending:
                    _session._response_error(sc.server, p.be)
                    p.session._terminate("sD")
                else:
                    p.session._terminate("cD")
                self._close(p)

    # -- states ----------------------------------------------------------------------------------
    def _idle(self, p: Parked, since: float) -> None:
        s = p.session
        p.state = IDLE
        s._phase = _session.P_IDLE  # for the soft stop
        self._arm(p, since + s.fe.t_keepalive)

    def _hand_back(self, p: Parked) -> None:
        self._unregister(p)
        p.outcome = HANDBACK
        p.event.set()

    def _close(self, p: Parked) -> None:
        """End the client connection: the session task wakes up and cleans up."""
        if p.outcome:
            return
        self._drop_server(p)
        self._unregister(p)
        p.outcome = CLOSED
        p.event.set()

    def _abort(self, p: Parked) -> None:
        self._drop_server(p)
        self._unregister(p)
        p.outcome = CLOSED

    def _unregister(self, p: Parked) -> None:
        if self._by_fd.pop(p.fd, None) is not None:
            try:
                self._ep.unregister(p.fd)
            except (OSError, ValueError):
                pass

    def _set_mask(self, p: Parked, mask: int) -> None:
        if p.mask != mask:
            p.mask = mask
            self._ep.modify(p.fd, mask)

    def forget(self, sc: ServerConn) -> None:
        """Stop watching a server connection (it closes, or a session task takes it)."""
        sc.watcher = None
        fd = sc.sock.fileno()
        if fd >= 0 and self._by_fd.pop(fd, None) is not None:
            try:
                self._ep.unregister(fd)
            except (OSError, ValueError):
                pass

    def _drop_server(self, p: Parked) -> None:
        """The transaction's server side ends without parking its connection."""
        sc = p.sc
        if sc is None:
            return
        p.sc = None
        sc.close()
        self._release(p)

    def _release(self, p: Parked) -> None:
        backend = p.backend
        if backend is not None and p.server is not None:
            rec = p.session._rec
            if rec is not None:
                rec.srv_conn = p.server.served - 1
            backend.detach(p.server, p)
            backend.release(p.server)
            backend.counters.session_ended()
            p.server = None

    # -- the client side ---------------------------------------------------------------------------
    def _client_readable(self, p: Parked) -> None:
        s = p.session
        if p.state != IDLE:
            # a pipelined request while a transaction runs: read once this one is over
            self._set_mask(p, _OUT if p.pending else 0)
            return
        reader = s.reader
        n = self._read(s.client, reader)
        if n < 0:
            return
        s._rx += n
        if n and s._log:
            s._t_first = self.now  # the request's first byte (the record's Ti/TR)
        if n == 0 or reader.stopped:
            self._hand_back(p)  # the task answers (400 on a partial request) or closes
            return
        ev = reader.next_event()
        if type(ev) is not RequestHead or not self._start(p, ev):
            if ev is not None:
                reader.events.appendleft(ev)
            self._hand_back(p)

    def _start(self, p: Parked, req: RequestHead) -> bool:
        """Forward `req` on an idle server connection if it is simple enough; False: not here."""
        s = p.session
        if req.chunked or req.content_length or req.upgrade or req.method not in _SAFE or not s.fast_ok:
            return False
        reader = s.reader
        events = reader.events
        if events and type(events[0]) is EndOfMessage:
            events.popleft()
        else:
            return False
        route = p.route
        if route is None:
            backend = s.frontend.default
            be = s.fast_backend(backend) if backend is not None else None
            route = p.route = (backend, be) if be is not None else ()
        if not route:
            events.appendleft(EndOfMessage())
            return False
        backend, be = route
        # Picking advances round-robin balancers, and a request handed back is picked again by
        # the task: so pick only when whichever server comes out has an idle connection.
        for srv in backend.servers:
            if not srv.idle_conns and srv.usable and not srv.backup:
                events.appendleft(EndOfMessage())
                return False
        pick = s.pick
        pick.uri = req.target
        pick.header = req.header
        server = backend.balancer.pick(pick, None)
        if server is None or server.full or server.queued:
            events.appendleft(EndOfMessage())
            return False
        sc = _session.take_idle(server, False, fast=True, now=self.now)
        if sc is None:
            events.appendleft(EndOfMessage())
            return False
        mode = be.mode if be.mode > s.fe.mode else s.fe.mode
        server_keep = not (req.close_after and req.version == 10)
        fe = s.fe
        n_headers = len(req.headers)
        if fe.forwardfor is not None or be.forwardfor is not None:
            s._forwarded_for(req, be)
        head = http1.request_head_bytes(req, server_keep)
        if self._gather:
            self._heads.append((p, sc, head))  # sent at the end of the batch (_write_batch)
            n = 0
        else:
            n = self._send_head(sc, head)
        backend._take(server)
        server.counters.reuses += 1
        backend.attach(server, p)  # for `shutdown sessions` (on-marked-down shutdown-sessions)
        wall = self.wall
        backend.counters.session_started(wall)
        fe.counters.request_seen(wall)
        be.counters.request_seen(wall)
        s._backend = backend
        now = self.now
        p.req, p.backend, p.be, p.sc, p.server, p.mode = req, backend, be, sc, server, mode
        p.server_keep, p.received, p.t0 = server_keep, 0, now
        p.t_conn = now
        p.pending = []
        p.end_after_write = False
        p.counted_sc = sc
        p.local = False
        p.n_headers = n_headers
        if s._log:
            rec = s._open_record(req)
            rec.backend, rec.server = backend.proxy.name, server.name
            rec.Tw = rec.Tc = 0  # no queue, a connection already open
        s.server_conn = sc
        s._current = (req, be, mode)
        sc.reader.head_request = req.method == _HEAD
        fd = sc.sock.fileno()
        self._by_fd[fd] = (p, _SERVER)
        if sc.watcher is None:
            sc.watcher = self
            self._ep.register(fd, _IN)
        p.state = WAIT_HEAD
        s._phase = _session.P_SERVER
        self._arm(p, now + be.t_server)
        if not self._gather:
            self._head_sent(p, sc, len(head), n)
        return True

    @staticmethod
    def _send_head(sc: ServerConn, head: bytes) -> int:
        try:
            return sc.sock.send(head)
        except OSError:
            return -1

    def _head_sent(self, p: Parked, sc: ServerConn, size: int, n: int) -> None:
        """After the transaction's bookkeeping: `n` bytes of its `size`-byte head were sent."""
        if n == size:
            p.session._count_in(sc, p.be, n)
        elif n <= 0:
            self._retry(p)  # a dead idle connection: the task sends it again on a new one
        else:
            self._close(p)  # a head too big for an empty socket buffer: not a live connection

    # -- the server side ---------------------------------------------------------------------------
    def _server_readable(self, p: Parked) -> None:
        sc = p.sc
        if sc is None:
            return
        reader = sc.reader
        n = self._read(sc.sock, reader)
        if n < 0:
            return
        if n == 0:
            reader.feed_eof()
        if p.state == WAIT_HEAD:
            if n == 0 and p.received == 0 and sc.reused:
                # the server closed the idle connection as the request went out: the task sends
                # this (safe) request again, on a new connection
                self._retry(p)
                return
            p.received += n
            self._response_head(p)
        elif p.state == RELAY:
            self._arm(p, self.now + p.be.t_server)
            self._relay_body(p)

    def _retry(self, p: Parked) -> None:
        """The request's idle connection was dead: the task sends it again on a new one, and
        counts it as its own (what `_start` counted is taken back)."""
        s = p.session
        req = p.req
        backend = p.backend
        s.fe.counters.request_taken_back()
        p.be.counters.request_taken_back()
        p.server.counters.sessions_total -= 1
        self._drop_server(p)  # (its session_ended)
        backend.counters.session_taken_back()
        s.server_conn = None
        s._current = None
        del req.headers[p.n_headers:]  # the task adds its forwardfor header itself
        s._rec = None  # and its own log record
        s.reader.events.appendleft(EndOfMessage())
        s.reader.events.appendleft(req)
        p.state = IDLE
        self._hand_back(p)

    def _response_head(self, p: Parked) -> None:
        s = p.session
        sc = p.sc
        reader = sc.reader
        server = sc.server
        be = p.be
        while True:
            ev = reader.next_event()
            if ev is None:
                if reader.stopped:
                    _session._response_error(server, be)
                    self._server_failed(p, 502, "PH")
                return
            if type(ev) is ResponseHead:
                if ev.status < 200 and ev.status != 101:
                    self._write(p, http1.response_head_bytes(ev, True, 11))
                    while (e2 := reader.next_event()) is not None and not isinstance(e2, EndOfMessage):
                        pass
                    continue
                head = ev
                break
            _session._response_error(server, be)
            self._server_failed(p, 502, "SH" if type(ev) is H1Error and ev.abort else "PH")
            return
        if head.status == 101:
            _session._response_error(server, be)
            self._server_failed(p, 502, "PH")
            return
        req = p.req
        fe = s.fe
        status = head.status
        fe.counters.count_status(status)
        if be is not fe:
            be.counters.count_status(status)
        count_server_response(server, status)
        p.t_resp = self.now
        rec = s._rec
        if rec is not None:
            rec.status = status
            rec.Tr = int((p.t_resp - p.t_conn) * 1000)
        p.keep = s._client_keep(req, p.mode) and head.body != "close"
        p.chunked = head.body == "chunked"
        p.pending = [http1.response_head_bytes(head, p.keep, req.version)]
        p.state = RELAY
        s._phase = _session.P_RESPONSE
        p.server_keep = p.server_keep and head.server_keepalive
        self._arm(p, p.t_resp + be.t_server)
        self._relay_body(p)

    def _relay_body(self, p: Parked) -> None:
        sc = p.sc
        reader = sc.reader
        parts = p.pending
        chunked = p.chunked
        while True:
            ev = reader.next_event()
            if ev is None:
                self._flush(p)
                return
            if type(ev) is bytes:
                parts.append(chunk(ev) if chunked else ev)
            elif isinstance(ev, EndOfMessage):
                if chunked:
                    parts.append(last_chunk(ev.trailers))
                self._finish(p)
                return
            else:  # truncated or invalid body after the head was sent: cut the connection
                p.session._terminate("SD")
                _session._response_error(sc.server, p.be)
                p.end_after_write = True
                self._drop_server(p)
                self._flush(p)
                if not p.pending:
                    self._close(p)
                return

    def _finish(self, p: Parked) -> None:
        """The whole response is read: write it (now, or at the end of a batch of several events),
        park the server connection and end the transaction. The server side is detached first, so
        a client that fails the write does not take it down."""
        s = p.session
        sc = p.sc
        p.sc = None
        if self._gather:
            self._done.append(p)  # written at the end of the batch (_write_batch)
        else:
            self._flush(p)
        req = p.req
        be = p.be
        now = self.now
        t_conn, t_resp = p.t_conn, p.t_resp
        connect_ms, response_ms, total_ms = int((t_conn - p.t0) * 1000), int((t_resp - t_conn) * 1000), int((now - p.t0) * 1000)
        be.counters.timers.record(0, connect_ms, response_ms, total_ms)
        sc.server.counters.timers.record(0, connect_ms, response_ms, total_ms)
        reader = sc.reader
        if req.method == _HEAD:
            reader.reset_after_head()
        s.server_conn = None
        if p.server_keep and not reader.stopped:
            self._by_fd[sc.sock.fileno()] = (sc, _IDLE_SERVER)  # watched while idle: a close is seen at once
            _session.park(sc, now)
        else:
            sc.close()
        self._release(p)
        s._current = None
        s._t_end = now
        rec = s._rec
        if rec is not None and p.pending:
            rec.bytes_read += sum(map(len, p.pending))  # on its way: the line counts it
        s._end_transaction()
        self.served += 1
        p.req = None
        if not p.keep:
            p.end_after_write = True
        if not p.pending and not p.outcome:
            self._next(p)  # written already

    def _write_batch(self) -> None:
        """Send the batch's request heads (their servers start working), then write its responses."""
        heads = self._heads
        if heads:
            self._heads = []
            for p, sc, head in heads:
                if p.sc is sc:  # (else the transaction ended meanwhile: client gone)
                    self._head_sent(p, sc, len(head), self._send_head(sc, head))
        done = self._done
        if done:
            self._done = []
            for p in done:
                if not p.outcome:
                    self._writable(p)

    def _next(self, p: Parked) -> None:
        """The transaction is over and written: idle again (or the next request is already here)."""
        s = p.session
        if p.end_after_write:
            self._close(p)
            return
        self._set_mask(p, _IN)
        if s.reader.events or not s.reader.idle:
            self._hand_back(p)  # pipelined or partial: the task takes it from here
            return
        self._idle(p, s.t_last)

    # -- writing to the client --------------------------------------------------------------------
    def _write(self, p: Parked, data: bytes) -> None:
        p.pending.append(data)
        self._flush(p)

    def _flush(self, p: Parked) -> None:
        pending = p.pending
        if not pending:
            return
        data = b"".join(pending) if len(pending) > 1 else pending[0]
        s = p.session
        try:
            n = s.client.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._client_gone(p)
            return
        if n:
            if p.local:
                s.fe.counters.bytes_out += n
            else:
                s._count_out(p.counted_sc, p.be, n)
        if n == len(data):
            pending.clear()
            return
        pending[:] = [data[n:]]
        # wait until the client takes more; stop reading the server meanwhile
        self._set_mask(p, _OUT)
        sc = p.sc
        if sc is not None and len(data) - n > _OUT_LIMIT:
            self._ep.modify(sc.sock.fileno(), 0)
        self._arm(p, self.now + s.fe.t_client)

    def _writable(self, p: Parked) -> None:
        self._flush(p)
        if p.pending or p.outcome:
            return
        sc = p.sc
        if sc is not None:
            self._ep.modify(sc.sock.fileno(), _IN)
            self._set_mask(p, 0)  # the client is read again once the transaction is over
            self._arm(p, self.now + p.be.t_server)
            return
        if p.req is None:
            self._next(p)
        else:
            self._close(p)

    def _client_gone(self, p: Parked) -> None:
        self._close(p)

    # -- errors before the response ------------------------------------------------------------------
    def _server_failed(self, p: Parked, status: int, termination: str, timeout: bool = False) -> None:
        """502/504 before any response byte: HAProxy's error page, then the connection goes on if
        the client asked for keep-alive (and nothing else was pipelined)."""
        s = p.session
        req = p.req
        be = p.be
        s._terminate(termination)
        if s._rec is not None:
            s._rec.status = status
        if timeout:
            _session._response_error(p.sc.server, be)
        self._drop_server(p)
        s.server_conn = None
        fe = s.fe
        pages = be.pages if status in be.pages.files or status not in fe.pages.files else fe.pages
        reply = pages.reply(status)
        fe.counters.count_status(status)
        if be is not fe:
            be.counters.count_status(status)
        keep = s._client_keep(req, p.mode) and not reply.close and s.reader.idle
        out = http1.response_head_bytes(reply.head, keep, req.version)
        if req.method != _HEAD and reply.body:
            out += reply.body
        s._current = None
        if s._rec is not None:
            s._rec.bytes_read += len(out)
        s._end_transaction()
        p.req = None
        p.state = CLOSING if not keep else RELAY
        p.end_after_write = not keep
        p.local = True
        p.pending.append(out)
        self._flush(p)
        if not p.pending and not p.outcome:
            self._next(p)


    def _read(self, sock: socket.socket, reader: Any) -> int:
        """Read once into `reader`: bytes read, 0 at EOF or reset, -1 when nothing is there after all."""
        try:
            n = sock.recv_into(self._buf)
        except BlockingIOError:
            return -1
        except OSError:
            return 0
        if n:
            reader.feed(self._view[:n])
        return n


_CURRENT: dict[object, FastPath] = {}


def current() -> FastPath | None:
    """The fast path of this trio run, if one is running."""
    fp = _CURRENT.get(trio.lowlevel.current_root_task())
    return fp if fp is not None and fp.running else None


async def serve(task_status: trio.TaskStatus[FastPath] = trio.TASK_STATUS_IGNORED) -> None:
    """Run this process's fast path (in the supervisor's nursery) until cancelled."""
    fp = FastPath()
    root = trio.lowlevel.current_root_task()
    _CURRENT[root] = fp
    fp.running = True
    task_status.started(fp)
    try:
        await fp.run()
    finally:
        _CURRENT.pop(root, None)
