"""One task per mode-http client connection: read a request, apply rules, forward it, answer, repeat.

```
http_session
 └─ HttpSession.run             one cancel scope per connection; a timeout lands here (408/504/close)
     └─ _serve                  requests of the connection, in order (pipelining included)
         ├─ _next_request       http-request / http-keep-alive deadlines; raw 400/422/408
         ├─ _transaction        frontend http-request rules, monitor-uri, stats page, use_backend,
         │                      backend rules, forwardfor
         │   └─ _forward        server slot + an idle connection (http-reuse safe) or a new one
         │       └─ _exchange   request head; a body streams in a second task (100-continue, early
         │           └─ _relay  responses) while the response is relayed: 502, response rules,
         │                      body, then the server connection is parked for reuse or closed
         └─ _tunnel             after 101 (or CONNECT 2xx): bytes both ways under timeout tunnel
```

Framing and header decisions are core/http1.py's, rules core/rewrite.py's; this module moves bytes
and time. Every failure of one connection ends that connection only: nothing escapes http_session.

Cost model (see bench/http_bench.py): per request two scheduler waits (client, server), two sends,
two parses. A cancel scope per wait would cost more than the wait, so timeouts are one scope per
connection whose deadline follows the phase (`_deadline`); counters are plain increments; nothing
is formatted that is not sent.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import sys
import time
import traceback
import weakref
from typing import TYPE_CHECKING, Any

import trio

from haproxy_py import logformat
from haproxy_py.config.model import Config, ForwardFor, Proxy
from haproxy_py.core import http1
from haproxy_py.core.acl import AclError, AclSet, ProxyRules, Verdict, run_tcp_rules
from haproxy_py.core.fetch import SampleContext
from haproxy_py.core.http1 import (
    EndOfMessage,
    H1Error,
    Limits,
    RequestHead,
    RequestReader,
    ResponseHead,
    ResponseReader,
    Upgrade,
    chunk,
    last_chunk,
    request_head_bytes,
    response_head_bytes,
)
from haproxy_py.core.lb.base import PickContext
from haproxy_py.core.rewrite import (
    Action,
    ErrorPages,
    HttpView,
    LocalReply,
    Txn,
    Unsupported,
    compile_condition,
    compile_rules,
    load_errorfile,
    run_rules,
)
from haproxy_py.core.server import ServerState
from haproxy_py.core.stats import ProxyCounters, count_server_response
from haproxy_py.runtime import admin, http_fastpath
from haproxy_py.logformat import LogRecord
from haproxy_py.runtime.connect import BackendRuntime, ConnectFailed, ConnectTiming, NoServer, QueueTimeout
from haproxy_py.runtime.forward import POOL, Activity, pump
from haproxy_py.runtime.session import _fill_connect

if TYPE_CHECKING:
    from haproxy_py.runtime.session import FrontendRuntime
    from haproxy_py.runtime.supervisor import Runtime

KEEPALIVE, SERVER_CLOSE, CLOSE = 0, 1, 2
_MODE_RANK = {"keep-alive": KEEPALIVE, "server-close": SERVER_CLOSE, "close": CLOSE}
IDLE_POOL_MAX = 128  # idle connections kept per server
IDLE_POOL_AGE = 5.0  # seconds an idle server connection is kept (HAProxy's pool-purge-delay)
_HEAD = b"HEAD"
_SAFE_METHODS = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE"))
_CONNECT = b"CONNECT"


def _seconds(ms: int | None) -> float:
    return math.inf if not ms else ms / 1000.0


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# ----------------------------------------------------------------------------------------------
# what one proxy needs, compiled once


class HttpProxy:
    """The HTTP side of one frontend or backend runtime: rules, pages, timeouts, counters."""

    def __init__(self, proxy: Proxy, acls: AclSet, counters: ProxyCounters) -> None:
        self.proxy = proxy
        self.counters = counters
        self.pages = ErrorPages({code: _errorfile(path) for code, path in proxy.errorfiles})
        self.req_rules: list[Action] = compile_rules(proxy.http_request_rules, acls, self.pages.reply, _errorfile)
        self.res_rules: list[Action] = compile_rules(proxy.http_response_rules, acls, self.pages.reply, _errorfile)
        self.mode = _MODE_RANK.get(proxy.http_conn_mode, KEEPALIVE)
        self.forwardfor: ForwardFor | None = proxy.forwardfor
        self.ff_header = proxy.forwardfor.header.lower().encode("latin-1") if proxy.forwardfor else b""
        self.ff_except = (ipaddress.ip_network(proxy.forwardfor.except_net, strict=False)
                          if proxy.forwardfor and proxy.forwardfor.except_net else None)
        self.monitor_uri = proxy.monitor_uri.encode("latin-1") if proxy.monitor_uri else None
        # `monitor fail if <cond>`: the monitor URI answers 503 while the condition holds
        self.monitor_fail = (compile_condition(acls, proxy.monitor_fail, proxy.where)
                             if proxy.monitor_fail is not None else None)
        self.ignore_probes = "http-ignore-probes" in proxy.options
        # requests through this proxy can be served by the keep-alive fast path (runtime/http_fastpath)
        self.fast = (not self.req_rules and not self.res_rules and not proxy.stats.enabled and self.mode == KEEPALIVE
                     and self.monitor_uri is None and self.monitor_fail is None)
        t = proxy.timeouts
        self.t_client = _seconds(t.client)
        self.t_server = _seconds(t.server)
        self.t_request = _seconds(t.http_request or t.client)
        self.t_keepalive = _seconds(t.http_keep_alive or t.http_request or t.client)
        self.t_tunnel = _seconds(t.tunnel) if t.tunnel else None
        self.t_client_fin = _seconds(t.client_fin) if t.client_fin else None
        self.t_server_fin = _seconds(t.server_fin) if t.server_fin else None
        # the longest connect.py can take (queue, then every attempt with its turn-around delay)
        connect, queue = _seconds(t.connect), _seconds(t.queue or t.connect)
        self.t_connect_budget = queue + (proxy.retries + 1) * (connect + min(connect, 1.0)) + 1.0


_CONTEXTS: dict[object, HttpProxy] = {}  # runtimes live as long as the process
_ERRORFILES: dict[str, tuple[ResponseHead, bytes]] = {}


def _errorfile(path: str) -> tuple[ResponseHead, bytes]:
    got = _ERRORFILES.get(path)
    if got is None:
        got = _ERRORFILES[path] = load_errorfile(path)
    return got


def http_context(owner: FrontendRuntime | BackendRuntime) -> HttpProxy:
    """The compiled HTTP context of a frontend or backend runtime (built on first use)."""
    ctx = _CONTEXTS.get(owner)
    if ctx is None:
        rules = getattr(owner, "rules", None)
        acls = rules.acls if isinstance(rules, ProxyRules) else AclSet(owner.proxy.acls)
        ctx = _CONTEXTS[owner] = HttpProxy(owner.proxy, acls, owner.counters)
    return ctx


def check_http_config(config: Config) -> list[str]:
    """What the HTTP path cannot honour, as HAProxy-style messages (empty: all fine).

    Compiles every proxy's http rules (conditions included) and loads every errorfile now, before
    the process daemonizes or chroots (HAProxy reads them while parsing): relative paths are taken
    from the current directory.
    """
    problems = []
    for px in config.proxies:
        if px.kind == "defaults":
            continue
        head = f"[{px.where.file}:{px.where.line}] : {px.kind} '{px.name}' : "
        for code, path in px.errorfiles:
            try:
                _errorfile(path)
            except (OSError, H1Error) as e:
                problems.append(head + f"errorfile {code} '{path}' cannot be used: "
                                f"{getattr(e, 'strerror', None) or e}.")
        if px.mode != "http":
            continue
        for rule in px.http_after_response_rules:
            problems.append(f"[{rule.where.file}:{rule.where.line}] : {px.kind} '{px.name}' : "
                            "'http-after-response' rules are not available in this version of haproxy-py.")
        if any(r.family == "tcp-request content" for r in px.tcp_request_rules):
            problems.append(head + "'tcp-request content' rules in 'mode http' are not available in this "
                            "version of haproxy-py.")
        try:
            acls = AclSet(px.acls)
        except AclError:
            continue  # reported by the ACL check
        pages = ErrorPages()
        for rule in (*px.http_request_rules, *px.http_response_rules):
            where = f"[{rule.where.file}:{rule.where.line}] : {px.kind} '{px.name}' : "
            try:
                compile_rules((rule,), acls, pages.reply, _errorfile)
            except Unsupported as e:
                problems.append(where + f"{e}.")
            except AclError as e:
                problems.append(f"{e} ({px.kind} '{px.name}')")
            except (OSError, ValueError, H1Error) as e:
                problems.append(where + f"'{rule.family} {rule.action}' : {e}.")
    return problems


# ----------------------------------------------------------------------------------------------
# idle server connections: "http-reuse safe" (the first request of a session never reuses)


class ServerConn:
    """A connection to a server, with its response parser."""

    __slots__ = ("sock", "server", "reader", "idle_since", "reused", "watcher")

    def __init__(self, sock: socket.socket, server: ServerState, limits: Limits) -> None:
        self.sock = sock
        self.server = server
        self.reader = ResponseReader(limits)
        self.idle_since = 0.0
        self.reused = False
        # the keep-alive fast path that has this socket in its epoll set (it stays there while idle)
        self.watcher: http_fastpath.FastPath | None = None

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass


def park(sc: ServerConn, now: float) -> None:
    """Keep a server connection for a later request to the same server."""
    lst = sc.server.idle_conns
    if len(lst) >= IDLE_POOL_MAX:
        sc.close()
        return
    sc.idle_since = now
    lst.append(sc)


def discard_idle(sc: ServerConn) -> None:
    """An idle connection turned out unusable (the server closed it, or sent bytes unasked)."""
    lst = sc.server.idle_conns
    if sc in lst:
        lst.remove(sc)
    sc.close()


def take_idle(server: ServerState, check: bool = True, fast: bool = False, now: float | None = None) -> ServerConn | None:
    """The most recently parked usable connection to `server`, or None; stale ones are closed.

    `check` peeks at the socket first: a live idle connection has nothing to read, EOF or stray
    bytes make it unusable. Without it, a connection the server closed meanwhile is found out by
    the exchange that uses it (which then retries on a new one). `fast`: taken by the fast path,
    which keeps the socket in its epoll set; a session task waits on it through trio instead.
    `now`: trio's clock, if the caller has read it already."""
    lst = server.idle_conns
    if not lst:
        return None
    if now is None:
        now = trio.current_time()
    while lst:
        sc = lst.pop()
        if now - sc.idle_since > IDLE_POOL_AGE:
            sc.close()
            for old in lst:  # older still
                old.close()
            lst.clear()
            return None
        if not check:
            sc.reused = True
            if sc.watcher is not None and not fast:
                sc.watcher.forget(sc)
            return sc
        try:
            sc.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            sc.reused = True
            if sc.watcher is not None and not fast:
                sc.watcher.forget(sc)
            return sc
        except OSError:
            pass
        sc.close()
    return None


# ----------------------------------------------------------------------------------------------
# the session


# -- timeouts: one cancel scope per connection ------------------------------------------------
# A cancel scope around each wait costs more than the wait itself, so a session has one scope and
# moves its deadline as it goes from one phase to the next. A timeout unwinds to `run`, where the
# phase says what HAProxy does then.
P_IDLE, P_HEAD, P_CONNECT, P_BODY, P_SERVER, P_RESPONSE, P_WRITE, P_DRAIN, P_TUNNEL = range(9)
# the second character of a log line's termination state, for a session that ends in each phase
_PHASE_STATES = {P_IDLE: "R", P_HEAD: "R", P_CONNECT: "C", P_SERVER: "H"}
# the termination state of a timeout in each phase past the request head
_TIMEOUT_STATES = {P_CONNECT: "sC", P_SERVER: "sH", P_RESPONSE: "sD", P_BODY: "cD", P_WRITE: "cD", P_DRAIN: "cD",
                   P_TUNNEL: "cD"}


# Soft stop (SIGUSR1): the runtimes stopping, and the live sessions of each, so that idle keep-alive
# connections can be closed at once and busy ones told `connection: close` (reference §7.5).
_STOPPING: set[int] = set()
_LIVE: weakref.WeakSet[HttpSession] = weakref.WeakSet()


def begin_soft_stop(rt: Runtime) -> int:
    """Soft stop of runtime `rt`: its idle keep-alive connections close now, the others on their
    next response (which says `connection: close`). Returns how many idle ones were closed."""
    _STOPPING.add(id(rt))
    closed = 0
    for session in list(_LIVE):
        if session.rt is rt and session._phase == P_IDLE and session.done and session.reader.idle:
            session._scope.cancel()
            closed += 1
    return closed


async def _read_into(sock: socket.socket, reader: Any, wait_first: bool) -> int:
    """Read once from `sock` into `reader` through a pooled buffer; bytes read, 0 at EOF or reset."""
    if wait_first:
        await trio.lowlevel.wait_readable(sock)
    buf = POOL.get()
    try:
        while True:
            try:
                n = sock.recv_into(buf)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
            except OSError:
                return 0
        if n:
            reader.feed(memoryview(buf)[:n])
        return n
    finally:
        POOL.put(buf)


class _ClientGone(Exception):
    """The client closed or reset while we needed it: end the session without answering."""


class _RetryFresh(Exception):
    """A reused server connection died before answering: retry once on a new connection."""


async def http_session(conn: socket.socket, frontend: FrontendRuntime, rt: Runtime, peer: object = None) -> None:
    """Serve one mode-http client connection to the end. Never raises (bugs are reported on stderr)."""
    counters = frontend.counters
    counters.session_started()
    session: HttpSession | None = None
    try:
        session = HttpSession(conn, frontend, rt, peer)
        if await session.accept_rules():
            await session.run()
    except (_ClientGone, OSError):
        pass
    except Exception:  # noqa: BLE001 - a bug must cost one connection, never the process
        counters.internal_errors += 1
        if session is not None:
            session._terminate("I" + _PHASE_STATES.get(session._phase, "D"))
        print(f"haproxy-py: internal error in an HTTP session:\n{traceback.format_exc()}", file=sys.stderr)
    finally:
        if session is not None:
            session.release()
            if session._rec is not None:
                session.log_unfinished()
        counters.session_ended()


class HttpSession:
    """One client connection in mode http."""

    def __init__(self, conn: socket.socket, frontend: FrontendRuntime, rt: Runtime, peer: object = None) -> None:
        self.client = conn
        self.rt = rt
        self.frontend = frontend
        self.fe = http_context(frontend)
        g = rt.config.global_
        self.bufsize, self.maxrewrite = g.bufsize, g.maxrewrite
        self.limits = Limits(g.bufsize, g.maxrewrite, g.max_http_headers)
        self.reader = RequestReader(self.limits)
        self.peer = conn.getpeername() if peer is None else peer
        self.src = self.peer[0].encode() if isinstance(self.peer, tuple) else b"unix"
        local = conn.getsockname()
        self.dst_port = local[1] if isinstance(local, tuple) else 0
        self.pick = PickContext(peer=self.peer)  # reused by every request of the connection
        self.done = 0  # transactions completed on this connection
        self.t_last = trio.current_time()  # accept, then the end of the previous transaction
        self.server_conn: ServerConn | None = None  # the current transaction's
        self._reused: ServerConn | None = None
        self._backend: BackendRuntime | None = None
        self._scope = trio.CancelScope()
        self._phase = P_IDLE
        self._current: tuple[RequestHead, HttpProxy, int] | None = None  # for a 504 after a timeout
        self._t_end = 0.0  # when the current transaction ended, if known
        self._peek_idle = True  # check an idle server connection before reusing it
        fe = self.fe
        _LIVE.add(self)
        # traffic log: one LogRecord per transaction, only when the frontend has a log format
        px = frontend.proxy
        self._log = bool(px.logs and px.log_format)
        self._rec: LogRecord | None = None
        self._t_first: float | None = None  # when the current request's first byte arrived
        self._rx = 0  # bytes read from the client, for %U
        self._rx_mark = 0  # ... up to the end of the previous transaction
        self._local = local if isinstance(local, tuple) else None
        # between requests the connection may wait in the keep-alive fast path
        self.fast_ok = fe.fast and not frontend.rules.switching
        if px.logs:
            self._wall0 = time.time() - self.t_last  # converts trio's clock to wall-clock time
            if not px.log_format:
                logformat.log_connect(px, self.peer, local)
        # a transaction object (for rules, fetches and the stats page) only where something uses it
        self._needs_txn = bool(fe.req_rules or fe.res_rules or frontend.rules.switching or fe.proxy.stats.enabled
                               or fe.monitor_fail is not None)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def release(self) -> None:
        sc = self.server_conn
        if sc is not None:
            self.server_conn = None
            sc.close()

    async def accept_rules(self) -> bool:
        """`tcp-request connection` and `session` rules, once per connection; False: rejected."""
        rules = self.frontend.rules
        if not (rules.connection or rules.session):
            return True
        ctx = self.frontend.sample_context(self.client, self.peer)
        if run_tcp_rules(rules.connection, ctx) is Verdict.REJECT:
            self.fe.counters.denied_connections += 1
            return False
        if run_tcp_rules(rules.session, ctx) is Verdict.REJECT:
            self.fe.counters.denied_sessions += 1
            return False
        return True

    def _sample(self, txn: Txn) -> SampleContext:
        """The fetches' view of this transaction (built only when a condition or value asks)."""
        ctx = self.frontend.sample_context(self.client, self.peer)
        ctx.http = HttpView(txn.req, txn.res)
        ctx.first_request = self.done == 0
        ctx.bufsize, ctx.maxrewrite = self.bufsize, self.maxrewrite
        if self._backend is not None:
            ctx.backend = self._backend.proxy.name
        return ctx

    def _deadline(self, start: float, span: float, phase: int) -> None:
        """Enter `phase`, which must end `span` seconds after `start`. Moving the scope's deadline
        re-sorts trio's timer heap, so a deadline later than the current one by under 1% of the
        span is left as it is: the wait then times out that little early at worst."""
        self._phase = phase
        when = start + span
        scope = self._scope
        current = scope.deadline
        if when < current or when - current > span * 0.01:
            scope.deadline = when

    # -- the request loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Serve requests until the connection closes; a timeout ends the scope and is answered here."""
        while True:
            self._scope = scope = trio.CancelScope()
            with scope:
                await self._serve()
                return
            if not await self._timed_out():
                return

    async def _serve(self) -> None:
        while True:
            req = await self._next_request()
            if req is None:
                return
            keep = await self._transaction(req)
            self._end_transaction()
            if not keep:
                return
            if req.upgrade:
                self.reader.resume_after_refused_upgrade()
            elif self.fast_ok and self.reader.idle:
                fast = http_fastpath.current()
                if fast is not None:
                    self._scope.deadline = math.inf  # the fast path keeps the timeouts meanwhile
                    if await fast.park(self) == http_fastpath.CLOSED:
                        return

    def fast_backend(self, backend: BackendRuntime) -> HttpProxy | None:
        """`backend`'s HTTP context if the fast path can forward to it, else None."""
        be = _CONTEXTS.get(backend) or http_context(backend)
        return be if be.fast else None

    def _end_transaction(self) -> None:
        if self._rec is not None:
            self._log_transaction()
        self.done += 1
        self.t_last = self._t_end or trio.current_time()
        self._t_end = 0.0
        self._current = None

    async def _timed_out(self) -> bool:
        """A phase's deadline passed: answer as HAProxy does; True if the connection goes on."""
        phase = self._phase
        fe = self.fe
        if phase == P_IDLE and (self.done or fe.ignore_probes):
            return False  # an idle keep-alive connection closes silently
        if phase in (P_IDLE, P_HEAD):
            fe.counters.request_errors += 1
            fe.counters.count_status(408)
            if self._log:
                self._bad_request(408, "cR")
            await self._send(http1.RAW_408)
            if self._rec is not None:
                self._log_transaction()
            return False
        current = self._current
        rec = self._rec
        if rec is not None:
            rec.termination = _TIMEOUT_STATES.get(phase, "cD")
        if phase == P_SERVER and current is not None:
            req, be, mode = current
            sc = self.server_conn
            if sc is not None:
                _response_error(sc.server, be)
            self.release()
            keep = await self._server_error(req, 504, be, mode, False)
            self._end_transaction()
            if keep and req.upgrade:
                self.reader.resume_after_refused_upgrade()
            return keep
        if phase == P_RESPONSE and current is not None and self.server_conn is not None:
            _response_error(self.server_conn.server, current[1])  # sD: what was sent stays, then close
        return False

    async def _next_request(self) -> RequestHead | None:
        """The next request head, or None when the connection must close (after answering if due)."""
        reader = self.reader
        fe = self.fe
        first = self.done == 0
        self._deadline(self.t_last, fe.t_request if first else fe.t_keepalive, P_IDLE)
        optimistic = first  # a new client usually sent its request already; a kept one has not
        log = self._log
        if reader.idle:
            self._t_first = None  # (else the fast path saw this request begin and handed it over)
        while True:
            ev = reader.next_event()
            if ev is not None:
                if type(ev) is RequestHead:
                    if ev.upgrade or not ev.has_body:
                        reader.next_event()  # its EndOfMessage, queued with the head
                    if log:
                        self._open_record(ev)
                    return ev
                if type(ev) is H1Error:
                    fe.counters.request_errors += 1
                    fe.counters.count_status(ev.status)
                    if log:
                        self._bad_request(ev.status, "PR")
                    await self._send(http1.raw_error(ev.status))
                    if self._rec is not None:
                        self._log_transaction()
                    return None
                continue  # leftovers of a message we stopped caring about
            if reader.stopped:
                return None
            if not reader.idle and self._phase == P_IDLE:
                self._deadline(self.t_last, fe.t_request, P_HEAD)
            n = await self._recv_client(optimistic)
            optimistic = False
            if n == 0:
                if not reader.idle or not (self.done or fe.ignore_probes):
                    # the client closed on a partial request, or before its first one: HAProxy
                    # answers 400 (then closes)
                    fe.counters.request_errors += 1
                    fe.counters.count_status(400)
                    if log:
                        self._bad_request(400, "CR")
                    await self._send(http1.RAW_400)
                    if self._rec is not None:
                        self._log_transaction()
                return None
            if log and self._t_first is None:
                self._t_first = trio.current_time()

    async def _recv_client(self, optimistic: bool = False) -> int:
        """Read once from the client into the request parser; bytes read, 0 at EOF or reset.

        Waits for readability first unless `optimistic` (a failed read costs a syscall, a wait a
        scheduler pass: read first only where data is likely there already)."""
        n = await _read_into(self.client, self.reader, wait_first=not optimistic)
        self._rx += n
        return n

    # -- the traffic log (option httplog, log-format): one line per transaction ------------------
    def _open_record(self, req: RequestHead | None) -> LogRecord:
        """Start the log record of the transaction whose request head (None: an invalid request)
        just arrived. As in HAProxy, a transaction's clock starts at the end of the previous one
        (or the accept): Ti is the idle time before the request's first byte, TR its head."""
        now = trio.current_time()
        t_first = self._t_first
        start = t_first if t_first is not None and t_first > self.t_last else self.t_last
        rec = LogRecord(client=self.peer if isinstance(self.peer, tuple) else None, frontend_addr=self._local,
                        accept_time=self._wall0 + self.t_last, request_time=self._wall0 + start,
                        frontend=self.fe.proxy.name, Ti=_ms(start - self.t_last))
        if req is not None:
            rec.TR = _ms(now - start)
            rec.method = method = req.method.decode("latin-1")
            rec.uri = uri = req.target.decode("latin-1")
            rec.version = version = "HTTP/1.0" if req.version == 10 else "HTTP/1.1"
            rec.request_line = f"{method} {uri} {version}"
        self._rec_start = start
        self._rec = rec
        return rec

    def _bad_request(self, status: int, termination: str) -> None:
        """The record of a request that never was (<BADREQ>): 400, 408. HAProxy counts no bytes
        for these answers (its connection layer sends them)."""
        rec = self._open_record(None)
        rec.status = status
        rec.termination = termination

    def _log_transaction(self) -> None:
        """Finish the current record (its end: the transaction's last byte) and send its line."""
        rec = self._rec
        assert rec is not None
        self._rec = None
        end = self._t_end or trio.current_time()
        rec.Ta = _ms(end - self._rec_start)
        rec.Tt = _ms(end - self.t_last)
        timers = (rec.Ti, rec.TR, rec.Tw, rec.Tc, rec.Tr)
        rec.Td = rec.Tt - sum(timers) if min(timers) >= 0 else -1
        rec.bytes_uploaded = self._rx - self._rx_mark
        self._rx_mark = self._rx
        frontend = self.frontend
        rec.feconn = frontend.counters.current
        limit = frontend.global_limit
        rec.actconn = limit.current if limit is not None else rec.feconn
        if self._backend is not None:
            rec.beconn = self._backend.counters.current
        logformat.log_session(frontend.proxy, rec)

    def log_unfinished(self) -> None:
        """The connection ended inside a transaction: log it with who ended it and when."""
        rec = self._rec
        assert rec is not None
        if rec.termination == "--":
            rec.termination = "C" + _PHASE_STATES.get(self._phase, "D")
        self._log_transaction()

    async def _send(self, data: bytes) -> None:
        """Write everything to the client, each wait within `timeout client`; raises _ClientGone."""
        sock = self.client
        try:
            off = sock.send(data)
        except BlockingIOError:
            off = 0
        except OSError:
            raise _ClientGone() from None
        if off == len(data):
            return
        phase, deadline = self._phase, self._scope.deadline
        view = memoryview(data)
        n = len(data)
        t_client = self.fe.t_client
        while off < n:
            self._deadline(trio.current_time(), t_client, P_WRITE)
            await trio.lowlevel.wait_writable(sock)
            try:
                off += sock.send(view[off:])
            except BlockingIOError:
                pass
            except OSError:
                raise _ClientGone() from None
        self._phase = phase
        self._scope.deadline = max(deadline, trio.current_time())

    # -- one transaction ------------------------------------------------------------------------
    async def _transaction(self, req: RequestHead) -> bool:
        """Answer one request; returns whether the client connection stays open."""
        fe = self.fe
        fe.counters.request_seen()
        self._backend = None
        frontend = self.frontend
        txn = Txn(req, self._sample) if self._needs_txn else None
        reply: LocalReply | None = None
        if fe.req_rules:
            reply = run_rules(fe.req_rules, txn, req.headers)
        be = fe
        backend: BackendRuntime | None = None
        if reply is None and fe.monitor_uri is not None and req.target == fe.monitor_uri:
            failing = fe.monitor_fail is not None and txn is not None and fe.monitor_fail(txn)
            head, body = http1.error_response(503 if failing else 200)
            reply = LocalReply(head, body, kind="monitor")
        if reply is not None and reply.kind.startswith("service:"):
            reply = self._service(req)
        if reply is None and fe.proxy.stats.enabled:
            reply = await self._stats_page(req, txn, fe.proxy)
        if reply is None:
            backend = frontend.choose_backend(txn.sample() if frontend.rules.switching else None)
            if backend is None:
                reply = fe.pages.reply(503)
            else:
                self._backend = backend
                if self._rec is not None:
                    self._rec.backend = backend.proxy.name
                be = _CONTEXTS.get(backend) or http_context(backend)
                be.counters.request_seen()
                if txn is None and (be.req_rules or be.res_rules or be.proxy.stats.enabled):
                    txn = Txn(req, self._sample)
                if be.proxy is not fe.proxy:
                    if be.req_rules:
                        reply = run_rules(be.req_rules, txn, req.headers)
                        if reply is not None and reply.kind.startswith("service:"):
                            reply = self._service(req)
                    if reply is None and be.proxy.stats.enabled:
                        reply = await self._stats_page(req, txn, be.proxy)
        mode = fe.mode if fe.mode > be.mode else be.mode
        if reply is not None:
            if reply.kind == "deny":
                fe.counters.denied_requests += 1
            elif reply.kind != "error":
                fe.counters.intercepted += 1
            rec = self._rec
            if rec is not None:
                if reply.kind == "monitor":
                    self._rec = None  # HAProxy does not log monitor-uri requests
                elif rec.termination == "--":
                    rec.termination = _REPLY_STATES.get(reply.kind, "LR")
            return await self._local_reply(req, reply, mode, be)
        assert backend is not None
        if fe.forwardfor is not None or be.forwardfor is not None:
            self._forwarded_for(req, be)
        return await self._forward(req, txn, backend, be, mode)

    # -- answers of runtime.admin: the prometheus-exporter service and the stats page ----------
    def _service(self, req: RequestHead) -> LocalReply:
        """`http-request use-service prometheus-exporter` (the only service there is)."""
        method, target, headers = _admin_request(req)
        self._log_service("<PROMEX>")
        return _admin_reply(req, *admin.prometheus_response(self.rt, method, target, headers))

    def _log_service(self, name: str) -> None:
        """A request answered by a service (stats page, exporter) logs it as its server, with zero
        queue, connect and response times, and the proxy that served it as its backend."""
        rec = self._rec
        if rec is not None:
            rec.server = name
            rec.backend = self._backend.proxy.name if self._backend is not None else None
            rec.Tw = rec.Tc = rec.Tr = 0

    async def _stats_page(self, req: RequestHead, txn: Txn, proxy: Proxy) -> LocalReply | None:
        """`stats enable` / `stats uri` of `proxy`: the page, its CSV/JSON, or an admin form POST."""
        method, target, headers = _admin_request(req)
        if not admin.is_stats_request(proxy, target):
            return None
        self._log_service("<STATS>")
        body = b""
        if req.has_body:
            got = await self._read_request_body()
            if got is None:
                raise _ClientGone()
            body = got
        allowed = None
        if proxy.stats.admin is not None:
            cond = compile_condition(AclSet(proxy.acls), proxy.stats.admin, proxy.stats.admin_where)
            allowed = bool(cond(txn))
        return _admin_reply(req, *admin.stats_response(self.rt, proxy, method, target, headers, body, admin=allowed))

    async def _read_request_body(self, limit: int = 1 << 20) -> bytes | None:
        """The whole request body (a stats admin form); None if the client failed or sent too much."""
        reader = self.reader
        parts: list[bytes] = []
        size = 0
        while True:
            ev = reader.next_event()
            if ev is None:
                if reader.stopped:
                    return None
                self._deadline(trio.current_time(), self.fe.t_client, P_DRAIN)
                if await self._recv_client() == 0:
                    return None
                continue
            if type(ev) is bytes:
                size += len(ev)
                if size > limit:
                    return None
                parts.append(ev)
            elif isinstance(ev, EndOfMessage):
                return b"".join(parts)
            elif type(ev) is H1Error:
                return None

    def _forwarded_for(self, req: RequestHead, be: HttpProxy) -> None:
        """`option forwardfor` on the frontend or the backend (the backend's header name wins)."""
        fe = self.fe
        if fe.ff_except is not None or be.ff_except is not None:
            try:
                ip = ipaddress.ip_address(self.src.decode())
            except ValueError:
                ip = None
            for net in (fe.ff_except, be.ff_except):
                if net is not None and ip is not None and ip.version == net.version and ip in net:
                    return
        if_none = all(f.if_none for f in (fe.forwardfor, be.forwardfor) if f is not None)
        name = be.ff_header if be.forwardfor is not None else fe.ff_header
        http1.add_forwarded_for(req.headers, name, self.src, if_none)

    def _terminate(self, state: str) -> None:
        """Record why the current transaction ends abnormally (first cause wins)."""
        rec = self._rec
        if rec is not None and rec.termination == "--":
            rec.termination = state

    def _client_keep(self, req: RequestHead, mode: int) -> bool:
        return req.client_keepalive and not req.close_after and mode != CLOSE and not (
            _STOPPING and id(self.rt) in _STOPPING)

    async def _local_reply(self, req: RequestHead, reply: LocalReply, mode: int, be: HttpProxy,
                           body_busy: bool = False) -> bool:
        """Send a response made here. `body_busy`: the request body is being forwarded elsewhere
        (an error mid-exchange), so the connection cannot be kept."""
        fe = self.fe
        status = reply.head.status
        fe.counters.count_status(status)
        if be is not fe:
            be.counters.count_status(status)
        keep = self._client_keep(req, mode) and not reply.close and not body_busy
        drain = keep and req.has_body
        if drain and _expects_continue(req):
            keep = drain = False  # the client waits for 100-continue: its body will not come
        out = response_head_bytes(reply.head, keep, req.version)
        if req.method != _HEAD and reply.body:
            out += reply.body
        rec = self._rec
        if rec is not None:
            rec.status = status
        await self._send(out)
        fe.counters.bytes_out += len(out)
        if rec is not None:
            rec.bytes_read += len(out)
        if drain:
            keep = await self._drain_request_body()
        return keep

    async def _drain_request_body(self) -> bool:
        """Read and drop the rest of the request body; False if the client failed meanwhile."""
        reader = self.reader
        while True:
            ev = reader.next_event()
            if ev is None:
                if reader.stopped:
                    return False
                self._deadline(trio.current_time(), self.fe.t_client, P_DRAIN)
                if await self._recv_client() == 0:
                    return False
                continue
            if isinstance(ev, EndOfMessage):
                return True
            if type(ev) is H1Error:
                return False

    async def _error(self, req: RequestHead, status: int, be: HttpProxy, mode: int, body_busy: bool = False) -> bool:
        """One of HAProxy's error responses (backend's errorfile, else frontend's, else built-in)."""
        pages = be.pages if status in be.pages.files or status not in self.fe.pages.files else self.fe.pages
        return await self._local_reply(req, pages.reply(status), mode, be, body_busy)

    async def _server_error(self, req: RequestHead, status: int, be: HttpProxy, mode: int, body_busy: bool) -> bool:
        """502/504 after the server failed: HAProxy replies and shuts the request side, so a request
        the client already pipelined is dropped with the connection."""
        keep = await self._error(req, status, be, mode, body_busy)
        return keep and self.reader.idle

    # -- forwarding -----------------------------------------------------------------------------
    def _idle(self, server: ServerState) -> socket.socket | None:
        sc = take_idle(server, self._peek_idle)
        if sc is None:
            return None
        self._reused = sc
        return sc.sock

    async def _forward(self, req: RequestHead, txn: Txn | None, backend: BackendRuntime, be: HttpProxy, mode: int) -> bool:
        """Get a server connection (with retries) and exchange the request on it."""
        # HAProxy closes the server side of a chunked HTTP/1.0 request (observed): no keep-alive offer
        server_keep = mode == KEEPALIVE and not (req.close_after and req.version == 10)
        pick = self.pick
        pick.uri = req.target
        pick.header = req.header
        counters = be.counters
        counters.session_started()
        t0 = trio.current_time()
        # connect.py applies the queue and connect timeouts itself: make sure ours leaves room
        self._deadline(t0, be.t_connect_budget, P_CONNECT)
        fresh_only = self.done == 0  # http-reuse safe: a session's first request gets its own connection
        # a safe request without a body is sent again if the idle connection turns out dead, so it
        # skips the liveness peek; any other request checks the connection before using it
        self._peek_idle = req.has_body or req.method not in _SAFE_METHODS
        rec = self._rec
        try:
            while True:
                self._reused = None
                timing = ConnectTiming() if rec is not None else None
                try:
                    sock, server = await backend.connect(pick, self.dst_port, None if fresh_only else self._idle,
                                                         timing)
                except (NoServer, QueueTimeout, ConnectFailed) as e:
                    if rec is not None and timing is not None:
                        _fill_connect(rec, timing, getattr(e, "server", None), backend)
                    return await self._error(req, 503, be, mode)
                if rec is not None and timing is not None:
                    _fill_connect(rec, timing, server, backend)
                    if rec.Tc < 0:
                        rec.Tc = 0  # a reused connection: no connect
                reused = self._reused
                sc = reused if reused is not None and reused.sock is sock else ServerConn(sock, server, self.limits)
                self.server_conn = sc
                try:
                    # `on-marked-down shutdown-sessions` (or `shutdown sessions server`) cancels it
                    with backend.session_scope(server):
                        return await self._exchange(req, txn, be, sc, mode, server_keep, t0)
                    # killed: the client connection goes with it, answered or not
                    self._terminate("D" + ("H" if self._phase == P_SERVER else "D"))
                    return False
                except _RetryFresh:
                    fresh_only = True
                finally:
                    if rec is not None:
                        # the server's other connections (HAProxy's cur_sess: a queued request
                        # this release hands the slot to has not connected yet)
                        rec.srv_conn = server.served - 1
                    backend.release(server)
                    if self.server_conn is sc:  # not parked: done with it
                        self.server_conn = None
                        sc.close()
        finally:
            counters.session_ended()

    async def _exchange(self, req: RequestHead, txn: Txn | None, be: HttpProxy, sc: ServerConn, mode: int,
                        server_keep: bool, t0: float) -> bool:
        """Send the request on `sc` and relay the response."""
        head = request_head_bytes(req, server_keep)
        self._current = (req, be, mode)
        t_conn = trio.current_time()
        if not req.has_body:
            try:
                await self._send_server(sc, head, be)
            except OSError:
                if sc.reused:
                    raise _RetryFresh() from None
                _response_error(sc.server, be)
                return await self._error(req, 502, be, mode)
            self._count_in(sc, be, len(head))
            return await self._relay(req, txn, be, sc, mode, server_keep, _NO_BODY, t0, t_conn)
        body = _BodyState(True)
        keep: bool | None = None
        async with trio.open_nursery() as nursery:
            body.scope = nursery.cancel_scope
            nursery.start_soon(self._pump_request_body, req, sc, head, be, body)
            keep = await self._relay(req, txn, be, sc, mode, server_keep, body, t0, t_conn)
            if not body.done and not keep:
                nursery.cancel_scope.cancel()
            # else the server answered early: as HAProxy, let the body finish (within the client
            # and server timeouts) so that the client connection can stay open
        if keep is None:
            # the request failed mid-body before any response: the transaction is abandoned
            if self._rec is not None and self._rec.termination == "--":
                self._rec.termination = "PD" if body.error else "CD"
            if body.error:
                self.fe.counters.request_errors += 1
                self.fe.counters.count_status(body.error)
                await self._send(http1.raw_error(body.error))
            return False
        return keep and body.done and not body.failed and not body.server_failed

    def _count_in(self, sc: ServerConn, be: HttpProxy, n: int) -> None:
        sc.server.counters.bytes_in += n
        be.counters.bytes_in += n
        if be is not self.fe:
            self.fe.counters.bytes_in += n

    def _count_out(self, sc: ServerConn | None, be: HttpProxy, n: int) -> None:
        if sc is not None:
            sc.server.counters.bytes_out += n
        be.counters.bytes_out += n
        if be is not self.fe:
            self.fe.counters.bytes_out += n
        if self._rec is not None:
            self._rec.bytes_read += n

    async def _send_server(self, sc: ServerConn, data: bytes, be: HttpProxy) -> None:
        """Write everything to the server, each wait within `timeout server` (raises OSError)."""
        sock = sc.sock
        try:
            off = sock.send(data)
        except BlockingIOError:
            off = 0
        if off == len(data):
            return
        phase = self._phase
        view = memoryview(data)
        n = len(data)
        while off < n:
            self._deadline(trio.current_time(), be.t_server, phase)
            await trio.lowlevel.wait_writable(sock)
            try:
                off += sock.send(view[off:])
            except BlockingIOError:
                pass

    async def _pump_request_body(self, req: RequestHead, sc: ServerConn, head: bytes, be: HttpProxy,
                                 state: _BodyState) -> None:
        """Forward the head then the body to the server as it arrives from the client.

        While it runs, the session's deadline is the inactivity of this transfer (the longer of the
        client and server timeouts); once the body is sent the wait for the response begins."""
        reader = self.reader
        chunked = req.chunked
        pending = [head]
        sent = 0
        span = max(self.fe.t_client, be.t_server)
        try:
            while True:
                ev = reader.next_event()
                if ev is None:
                    if pending:
                        data = b"".join(pending)
                        pending.clear()
                        await self._send_server(sc, data, be)
                        sent += len(data)
                    if not state.response_started:
                        self._deadline(trio.current_time(), span, P_BODY)
                    if await self._recv_client() == 0:
                        state.failed = True
                        break
                    continue
                if type(ev) is bytes:
                    pending.append(chunk(ev) if chunked else ev)
                elif isinstance(ev, EndOfMessage):
                    if chunked:
                        pending.append(last_chunk(ev.trailers))
                    data = b"".join(pending)
                    await self._send_server(sc, data, be)
                    sent += len(data)
                    state.done = True
                    if not state.response_started:
                        self._deadline(trio.current_time(), be.t_server, P_SERVER)
                    return
                else:  # a framing error mid-body: HAProxy answers 400 unless the response began
                    state.failed = True
                    state.error = ev.status if type(ev) is H1Error else 400
                    break
        except OSError:
            state.server_failed = True
            return
        finally:
            self._count_in(sc, be, sent)
        if not state.response_started and state.scope is not None:
            # the client went away mid-request: abandon the transaction (HAProxy's CD/cR)
            state.scope.cancel()

    async def _recv_server(self, sc: ServerConn) -> int:
        """Wait for and read once from the server into its parser (EOF and resets are fed too)."""
        n = await _read_into(sc.sock, sc.reader, wait_first=True)
        if n == 0:
            sc.reader.feed_eof()
        return n

    async def _relay(self, req: RequestHead, txn: Txn | None, be: HttpProxy, sc: ServerConn, mode: int, server_keep: bool,
                     body: _BodyState, t0: float, t_conn: float) -> bool:
        """Relay the response on `sc`; returns whether the client connection stays open."""
        reader = sc.reader
        reader.head_request = req.method == _HEAD
        server = sc.server
        fe = self.fe
        t_server = be.t_server
        received = 0
        # -- the head, after any interim (1xx) responses --
        while True:
            ev = reader.next_event()
            if ev is None:
                if reader.stopped:
                    _response_error(server, be)
                    self._terminate("PH")
                    return await self._error(req, 502, be, mode, not body.done)
                if body.done:
                    self._deadline(t_conn if received == 0 else trio.current_time(), t_server, P_SERVER)
                n = await self._recv_server(sc)
                if n == 0 and received == 0 and sc.reused and not req.has_body and req.method in _SAFE_METHODS:
                    # the server closed the idle connection as the request went out: a safe
                    # request is sent again on a new connection
                    raise _RetryFresh()
                received += n
                continue
            if type(ev) is ResponseHead:
                if ev.status < 200 and ev.status != 101:
                    await self._send(response_head_bytes(ev, True, 11))
                    while (e2 := reader.next_event()) is not None and not isinstance(e2, EndOfMessage):
                        pass
                    continue
                head = ev
                break
            _response_error(server, be)  # an H1Error, or END/Upgrade before any head
            if type(ev) is H1Error and ev.abort:
                self._terminate("SH")
                return await self._server_error(req, 502, be, mode, not body.done)
            self._terminate("PH")
            return await self._error(req, 502, be, mode, not body.done)
        if body is not _NO_BODY:
            body.response_started = True
        t_resp = trio.current_time()
        rec = self._rec
        if head.status == 101 and not req.upgrade:
            _response_error(server, be)
            self._terminate("PH")
            return await self._error(req, 502, be, mode, not body.done)
        if rec is not None:
            rec.Tr = _ms(t_resp - t_conn)
        rewritten = False
        if txn is not None and (be.res_rules or fe.res_rules):
            txn.set_response(head)
            rewritten = True
            if be.res_rules:
                run_rules(be.res_rules, txn, head.headers)
            if be.proxy is not fe.proxy and fe.res_rules:
                run_rules(fe.res_rules, txn, head.headers)
        status = head.status
        fe.counters.count_status(status)
        if be is not fe:
            be.counters.count_status(status)
        count_server_response(server, status)
        if rec is not None:
            rec.status = status
        tunnel = status == 101 or (req.method == _CONNECT and 200 <= status < 300)
        keep = self._client_keep(req, mode) and head.body != "close"
        out_chunked = head.body == "chunked"
        if rewritten and head.body == "length" and not _has_length(head.headers):
            # a rule removed the length: chunk for HTTP/1.1 clients, else delimit by closing
            if req.version == 11:
                head.headers.append((b"transfer-encoding", b"chunked"))
                out_chunked = True
            else:
                keep = False
        out = response_head_bytes(head, keep or tunnel, req.version)
        if tunnel:
            return await self._tunnel(sc, be, out)
        # -- the body --
        sent = 0
        parts = [out]
        try:
            while True:
                ev = reader.next_event()
                if ev is None:
                    if parts:
                        data = b"".join(parts) if len(parts) > 1 else parts[0]
                        parts.clear()
                        await self._send(data)
                        sent += len(data)
                    self._deadline(trio.current_time(), t_server, P_RESPONSE)
                    await self._recv_server(sc)
                    continue
                if type(ev) is bytes:
                    parts.append(chunk(ev) if out_chunked else ev)
                elif isinstance(ev, EndOfMessage):
                    if out_chunked:
                        parts.append(last_chunk(ev.trailers))
                    data = b"".join(parts) if len(parts) > 1 else parts[0]
                    await self._send(data)
                    sent += len(data)
                    break
                else:  # truncated or invalid body after the head was sent: cut the connection
                    self._terminate("SD")
                    if parts:
                        data = b"".join(parts)
                        await self._send(data)
                        sent += len(data)
                    _response_error(server, be)
                    return False
        finally:
            self._count_out(sc, be, sent)
        self._t_end = now = trio.current_time()
        timers = (0, int((t_conn - t0) * 1000), int((t_resp - t_conn) * 1000), int((now - t0) * 1000))
        be.counters.timers.record(*timers)
        server.counters.timers.record(*timers)
        if req.method == _HEAD:
            reader.reset_after_head()
        # (a connection that carried an upgrade request is not reused: the server may have switched
        # its parser to the new protocol even though it answered in HTTP)
        if (server_keep and head.server_keepalive and not reader.stopped and body.done and not body.failed
                and not req.upgrade):
            self.server_conn = None
            park(sc, now)
        return keep

    async def _tunnel(self, sc: ServerConn, be: HttpProxy, head_out: bytes) -> bool:
        """After 101 (or a CONNECT's 2xx): bytes both ways until both sides end; never reused."""
        self._deadline(0.0, math.inf, P_TUNNEL)  # the tunnel's own timers apply
        out = [head_out]
        while (ev := sc.reader.next_event()) is not None:  # server bytes parsed with the head
            if type(ev) is bytes:
                out.append(ev)
            elif type(ev) is Upgrade:
                out.append(ev.rest)
        data = b"".join(out)
        await self._send(data)
        self._count_out(sc, be, len(data))
        to_server = []
        while (ev := self.reader.next_event()) is not None:  # client bytes after the request head
            if type(ev) is Upgrade:
                to_server.append(ev.rest)
            elif type(ev) is bytes:
                to_server.append(ev)
        if to_server:
            await self._send_server(sc, b"".join(to_server), be)
        fe = self.fe
        with trio.CancelScope() as scope:
            activity = Activity(scope=scope, client=fe.t_client, server=be.t_server, client_fin=fe.t_client_fin,
                                server_fin=be.t_server_fin, tunnel=be.t_tunnel)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pump_then_cancel, self.client, sc.sock, activity, True)
                    nursery.start_soon(_pump_then_cancel, sc.sock, self.client, activity, False)
            except* OSError:
                pass
        self._count_in(sc, be, activity.bytes_up)
        self._count_out(sc, be, activity.bytes_down)
        return False


_ADMIN_REASONS = {200: b"OK", 303: b"See Other", 400: b"Bad request", 401: b"Unauthorized"}


def _admin_request(req: RequestHead) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    method = req.method.decode("latin-1") if isinstance(req.method, bytes) else str(req.method)
    target = req.target.decode("latin-1") if isinstance(req.target, bytes) else str(req.target)
    return method, target, req.headers


def _admin_reply(req: RequestHead, status: int, headers: list[tuple[str, str]], body: bytes) -> LocalReply:
    """A runtime.admin answer as a local reply (content-length framing; HEAD keeps its headers)."""
    head = ResponseHead()
    head.status = status
    head.reason = _ADMIN_REASONS.get(status, b"OK")
    head.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
                    if k not in ("content-length", "connection")]
    if req.method == _HEAD and status == 200:
        head.headers.append((b"transfer-encoding", b"chunked"))
        head.body = "chunked"
    else:
        head.headers.insert(0, (b"content-length", b"%d" % len(body)))
        head.content_length = len(body)
        head.body = "length"
    close = any(k == "connection" and v == "close" for k, v in headers)
    return LocalReply(head, body, close=close, kind="service")


class _BodyState:
    """Progress of a request body streamed while the response is relayed."""

    __slots__ = ("pending", "done", "failed", "error", "server_failed", "response_started", "scope")

    def __init__(self, pending: bool) -> None:
        self.pending = pending
        self.done = not pending
        self.failed = False
        self.error = 0  # the status HAProxy answers a body framing error with
        self.server_failed = False
        self.response_started = False
        self.scope: trio.CancelScope | None = None


_NO_BODY = _BodyState(False)  # shared by requests without a body: never written to
# termination states of local replies, by LocalReply.kind (any other: "LR")
_REPLY_STATES = {"deny": "PR", "error": "PR"}


def _expects_continue(req: RequestHead) -> bool:
    v = req.header("expect")
    return v is not None and v.lower() == b"100-continue"


def _response_error(server: ServerState, be: HttpProxy) -> None:
    server.counters.response_errors += 1
    be.counters.response_errors += 1


def _has_length(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, _ in headers:
        if name == b"content-length":
            return True
    return False


async def _pump_then_cancel(src: socket.socket, dst: socket.socket, activity: Activity, upstream: bool) -> None:
    try:
        await pump(src, dst, activity, upstream)
    except OSError:
        activity.scope.cancel()
