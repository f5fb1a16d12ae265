"""One task per client connection. In mode tcp: pick a backend, connect, pump both ways.

Errors of one connection end that connection only: everything a peer can cause is caught here,
so the accept loop and the other sessions never see it.
"""

from __future__ import annotations

import math
import socket

import trio

from haproxy_py.config.model import Proxy
from haproxy_py.core.lb.base import PickContext
from haproxy_py.runtime.connect import BackendRuntime, ConnectFailed, NoServer, QueueTimeout, client_ip
from haproxy_py.runtime.forward import Activity, pump

_PEER_ERRORS = (ConnectionError, BrokenPipeError, TimeoutError, OSError)


def _idle_timeout(frontend: Proxy, backend: Proxy) -> float:
    """Inactivity limit of an established TCP session: `timeout tunnel`, else client/server."""
    tunnel = backend.timeouts.tunnel
    if tunnel:
        return tunnel / 1000.0
    values = [v for v in (frontend.timeouts.client, backend.timeouts.server) if v]
    return min(values) / 1000.0 if values else math.inf


class FrontendRuntime:
    """A frontend's routing: which backend a new connection goes to."""

    def __init__(self, proxy: Proxy, backends: dict[str, BackendRuntime]) -> None:
        self.proxy = proxy
        self.default = backends.get(proxy.default_backend) if proxy.default_backend else None
        if self.default is None and proxy.is_backend:
            self.default = backends.get(proxy.name)
        # unconditional static use_backend rules: the first one wins
        for ub in proxy.use_backends:
            if ub.cond is None and not ub.dynamic:
                self.default = backends.get(ub.name, self.default)
                break

    def choose_backend(self) -> BackendRuntime | None:
        return self.default


async def tcp_session(conn: socket.socket, frontend: FrontendRuntime) -> None:
    """Serve one mode-tcp connection to the end. Never raises for peer-caused failures."""
    backend = frontend.choose_backend()
    if backend is None:
        return
    try:
        peer = conn.getpeername()
        local = conn.getsockname()
    except OSError:
        return
    ctx = PickContext(src=client_ip(peer))
    client_port = local[1] if isinstance(local, tuple) and len(local) > 1 else 0
    try:
        server_sock, server = await backend.connect(ctx, client_port)
    except (NoServer, QueueTimeout, ConnectFailed):
        return  # HAProxy closes a tcp client at once when no server can take it
    try:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        await _forward(conn, server_sock, frontend.proxy, backend.proxy)
    finally:
        server_sock.close()
        backend.release(server)


async def _forward(client: socket.socket, server: socket.socket, frontend: Proxy, backend: Proxy) -> None:
    idle = _idle_timeout(frontend, backend)
    with trio.CancelScope() as scope:
        activity = Activity(scope=scope, idle=idle)
        activity.bump()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump_then_wait, client, server, activity)
                nursery.start_soon(_pump_then_wait, server, client, activity)
        except* _PEER_ERRORS:
            pass  # a reset on either side ends the session; the sockets are closed by the caller


async def _pump_then_wait(src: socket.socket, dst: socket.socket, activity: Activity) -> None:
    try:
        await pump(src, dst, activity)
    except _PEER_ERRORS:
        # one side failed: end the whole session
        activity.scope.cancel()
