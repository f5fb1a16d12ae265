"""One task per client connection. In mode tcp: pick a backend, connect, pump both ways.

Errors of one connection end that connection only: everything a peer can cause is caught here,
so the accept loop and the other sessions never see it.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import time

import trio

from haproxy_py import logformat
from haproxy_py.config.model import Proxy
from haproxy_py.core.acl import ProxyRules, choose_backend
from haproxy_py.core.fetch import SampleContext
from haproxy_py.core.lb.base import PickContext
from haproxy_py.core.server import ServerState
from haproxy_py.core.stats import ProxyCounters
from haproxy_py.logformat import LogRecord
from haproxy_py.runtime.connect import BackendRuntime, ConnectFailed, ConnectTiming, NoServer, QueueTimeout
from haproxy_py.runtime.forward import Activity, Forwarder, send_all, tunnel
from haproxy_py.runtime.inspect import route_tcp
from haproxy_py.runtime.listeners import ConnLimit

_PEER_ERRORS = (ConnectionError, BrokenPipeError, TimeoutError, OSError)


def _seconds(ms: int | None) -> float:
    return ms / 1000.0 if ms else math.inf


SessionTimeouts = tuple[float, float, float | None, float | None, float | None]


def _timers(frontend: Proxy, backend: Proxy) -> SessionTimeouts:
    """A session's timeouts in seconds: client, server, client-fin, server-fin, tunnel."""
    ft, bt = frontend.timeouts, backend.timeouts
    return (
        _seconds(ft.client),
        _seconds(bt.server),
        _seconds(ft.client_fin) if ft.client_fin else None,
        _seconds(bt.server_fin) if bt.server_fin else None,
        _seconds(bt.tunnel) if bt.tunnel else None,
    )


class FrontendRuntime:
    """A frontend's routing: which backend a new connection goes to.

    `rules` are the frontend's compiled ACLs, tcp-request and use_backend rules (raises
    core.acl.AclError when they cannot be compiled); `backend_rules` the tcp-request rules of
    backends that have their own.
    """

    # the process-wide connection count (for logs' actconn); set by the supervisor
    global_limit: ConnLimit | None = None
    # the process's Forwarder, which moves the bytes of every tcp session; set by the supervisor
    # (without one, each session moves its own)
    forwarder: Forwarder | None = None

    def __init__(self, proxy: Proxy, backends: dict[str, BackendRuntime]) -> None:
        self.proxy = proxy
        self.counters = ProxyCounters()
        self.backends = backends
        self.default = backends.get(proxy.default_backend) if proxy.default_backend else None
        if self.default is None and proxy.is_backend:
            self.default = backends.get(proxy.name)
        self.rules = ProxyRules.build(proxy)
        self.backend_rules = {name: ProxyRules.build(be.proxy) for name, be in backends.items()
                              if be.proxy.tcp_request_rules and be.proxy is not proxy}
        # per backend proxy: the timeouts of a session, worked out once rather than per connection
        self._timers: dict[int, SessionTimeouts] = {}
        # a connection needs a SampleContext only when some rule may look at it (an unconditional
        # static use_backend does not)
        self.routes_by_content = bool(self.rules.connection or self.rules.session or self.rules.content
                                      or self.rules.dynamic_switching or self.backend_rules)

    def sample_context(self, conn: socket.socket, peer: object = None) -> SampleContext:
        """What the rules of this frontend can read about connection `conn`."""
        ctx = SampleContext(frontend=self.proxy.name, nbsrv=self._nbsrv)
        try:
            peer = conn.getpeername() if peer is None else peer
            local = conn.getsockname()
        except OSError:
            return ctx
        ctx.src, ctx.src_port = _ip_port(peer)
        ctx.dst, ctx.dst_port = _ip_port(local)
        return ctx

    def activity(self, scope: trio.CancelScope, backend: Proxy) -> Activity:
        """The timers of a session from this frontend to `backend`, driven through `scope`."""
        timers = self._timers.get(id(backend))
        if timers is None:
            timers = self._timers[id(backend)] = _timers(self.proxy, backend)
        return Activity(scope, *timers)

    def _nbsrv(self, name: str) -> int | None:
        be = self.backends.get(name)
        if be is None:
            return None
        active = sum(1 for s in be.servers if s.usable and not s.backup)
        return active or sum(1 for s in be.servers if s.usable and s.backup)

    def choose_backend(self, ctx: SampleContext | None = None) -> BackendRuntime | None:
        """The backend of the first matching use_backend rule, else the default backend.

        Without `ctx`, rules are evaluated on a context that knows only the frontend's name.
        """
        if not self.rules.switching:
            return self.default
        if ctx is None:
            ctx = SampleContext(frontend=self.proxy.name, nbsrv=self._nbsrv)
        name = choose_backend(self.rules.switching, ctx, self.backends.__contains__)
        return self.default if name is None else self.backends[name]


def _ip_port(addr: object) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, int]:
    if isinstance(addr, tuple) and len(addr) >= 2:
        try:
            return ipaddress.ip_address(addr[0]), addr[1]
        except ValueError:
            pass
    return None, 0


async def tcp_session(conn: socket.socket, frontend: FrontendRuntime, peer: object = None,
                      local_port: int | None = None) -> None:
    """Serve one mode-tcp connection to the end. Never raises for peer-caused failures.

    `peer` is the client address accept() returned and `local_port` the listener's port; both
    are looked up on the socket when not given. Both directions are moved by this task alone
    (`forward.tunnel`); the caller closes `conn` when this returns.
    """
    frontend.counters.session_started()
    record = _new_record(frontend.proxy, peer, local_port) if frontend.proxy.logs else None
    try:
        await _tcp_session(conn, frontend, peer, local_port, record)
    finally:
        if record is not None:
            _finish_record(record, frontend)  # counts still include this session, as HAProxy's do
        frontend.counters.session_ended()


def _new_record(proxy: Proxy, peer: object, local_port: int | None) -> LogRecord:
    client = peer if isinstance(peer, tuple) else None
    log_connect_line = not proxy.log_format
    record = LogRecord(client=client, frontend=proxy.name, accept_time=time.time(),
                       frontend_addr=("", local_port or 0))
    if log_connect_line:
        logformat.log_connect(proxy, client, record.frontend_addr)
    record.Tt = int(trio.current_time() * 1000)  # start; turned into a duration at the end
    return record


def _finish_record(record: LogRecord, frontend: FrontendRuntime) -> None:
    record.Tt = int(trio.current_time() * 1000) - record.Tt
    record.feconn = frontend.counters.current
    record.actconn = frontend.global_limit.current if frontend.global_limit is not None else record.feconn
    if frontend.proxy.log_format:
        logformat.log_session(frontend.proxy, record)


async def _tcp_session(conn: socket.socket, frontend: FrontendRuntime, peer: object, local_port: int | None,
                       record: LogRecord | None = None) -> None:
    initial = b""  # bytes read while inspecting: they go to the server first, untouched
    if frontend.routes_by_content:
        route = await route_tcp(conn, frontend, frontend.sample_context(conn, peer))
        if route is None:
            if record is not None:
                record.termination = "PR"
            return  # rejected, failed while inspected, or no backend: HAProxy closes
        backend, initial = route.backend, route.initial
    else:
        backend = frontend.choose_backend()
    if backend is None:
        return
    try:
        if peer is None:
            peer = conn.getpeername()
        if local_port is None:
            local = conn.getsockname()
            local_port = local[1] if isinstance(local, tuple) and len(local) > 1 else 0
    except OSError:
        return
    ctx = PickContext(peer=peer)
    timing = ConnectTiming() if record is not None else None
    if record is not None:
        record.backend = backend.proxy.name
    backend.counters.session_started()
    try:
        try:
            server_sock, server = await backend.connect(ctx, local_port, timing=timing)
        except (NoServer, QueueTimeout, ConnectFailed) as e:
            if record is not None and timing is not None:
                _fill_connect(record, timing, getattr(e, "server", None), backend)
            return  # HAProxy closes a tcp client at once when no server can take it
        if record is not None and timing is not None:
            _fill_connect(record, timing, server, backend)
        activity: Activity | None = None
        released = False

        def release() -> None:
            # as soon as the tunnel is over: a connection arriving meanwhile must not see the
            # server still busy (leastconn, maxconn)
            nonlocal released
            if not released:
                released = True
                backend.release(server)

        try:
            if initial:
                try:
                    await send_all(server_sock, memoryview(initial))
                except _PEER_ERRORS:
                    return
            # one cancel scope carries the session's timeouts and on-marked-down shutdown-sessions
            activity = frontend.activity(trio.CancelScope(), backend.proxy)
            backend.attach(server, activity)
            try:
                await tunnel(conn, server_sock, activity, forwarder=frontend.forwarder, on_finish=release)
            finally:
                backend.detach(server, activity)
            if record is not None:
                record.termination = activity.termination()
        finally:
            server_sock.close()
            release()
            if record is not None:
                record.srv_conn = server.served
            if activity is not None:
                up, down = activity.bytes_up + len(initial), activity.bytes_down
                for counters in (frontend.counters, backend.counters, server.counters):
                    counters.bytes_in += up
                    counters.bytes_out += down
                if record is not None:
                    record.bytes_uploaded, record.bytes_read = up, down
    finally:
        backend.counters.session_ended()
        if record is not None:
            record.beconn = backend.counters.current


_CONNECT_FAILURES = {"noserver": "SC", "queue": "sQ", "connect-timeout": "sC", "connect": "SC"}


def _fill_connect(record: LogRecord, timing: ConnectTiming, server: ServerState | None,
                  backend: BackendRuntime) -> None:
    record.server = server.name if server is not None else None
    record.Tw = timing.queue_ms
    record.Tc = timing.connect_ms
    record.retries = timing.retries
    record.redispatched = timing.redispatched
    record.srv_queue = timing.server_queue
    record.backend_queue = timing.backend_queue
    if server is not None:
        record.srv_conn = server.served
    if timing.failure:
        record.termination = _CONNECT_FAILURES[timing.failure]
