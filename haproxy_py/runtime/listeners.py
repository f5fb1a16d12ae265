"""Listening sockets: created before trio starts (and before daemonizing), served inside it.

Sockets are bound synchronously so that a bind failure is reported by the launching process with
HAProxy's message and exit code, and so that they can be passed to a new process on reload. The
accept loop takes a whole batch of pending connections per readiness event: one scheduler pass per
batch, not per connection. At `maxconn` it stops calling accept(): clients wait in the kernel
backlog and are served later instead of refused.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
from collections.abc import Awaitable, Callable

import attrs
import trio

from haproxy_py.config.model import Bind, BindAddress, Config, Proxy
from haproxy_py.process.loadshare import DEFER_SECONDS, MAX_DEFERS, LoadShare

ACCEPT_BATCH = 64
DEFAULT_BACKLOG = 1024


class BindError(Exception):
    """A listener could not be created; the message is HAProxy's."""


@attrs.define(eq=False)
class Listener:
    """One listening socket of one frontend."""

    proxy: Proxy
    bind: Bind
    address: str  # for messages, e.g. "127.0.0.1:8080"
    sock: socket.socket
    key: str  # identifies the address across processes (reload)
    port: int = 0  # the local port clients connect to (0 for unix sockets)

    def fileno(self) -> int:
        return self.sock.fileno()


def _listen_key(family: str, host: str, port: int) -> str:
    return f"{family}:{host}:{port}"


def create_socket(addr: BindAddress, port: int, bind: Bind, backlog: int, reuseport: bool) -> socket.socket:
    """Create, configure, bind and listen one socket (raises OSError)."""
    if addr.family in ("fd", "sockpair"):
        assert addr.fd is not None
        sock = socket.socket(fileno=os.dup(addr.fd))
        sock.setblocking(False)
        return sock
    if addr.family in ("unix", "abns"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = ("\0" + addr.host) if addr.family == "abns" else addr.host
        if addr.family == "unix":
            try:
                if os.path.exists(path) and not os.path.isdir(path):
                    os.unlink(path)
            except OSError:
                pass
        try:
            sock.bind(path)
            if addr.family == "unix" and bind.mode is not None:
                os.chmod(path, bind.mode)
            if addr.family == "unix" and (bind.uid is not None or bind.gid is not None):
                os.chown(path, bind.uid if bind.uid is not None else -1, bind.gid if bind.gid is not None else -1)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock
    fam = socket.AF_INET6 if addr.family == "ipv6" else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport and bind.reuseport and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            v6only = bind.v6only or (not bind.v4v6 and addr.host not in ("::", ""))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        # accepted sockets inherit TCP_NODELAY on Linux: one setsockopt per listener, not per client
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if bind.defer_accept and hasattr(socket, "TCP_DEFER_ACCEPT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        if bind.interface and hasattr(socket, "SO_BINDTODEVICE"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bind.interface.encode())
        host = addr.host or ("0.0.0.0" if fam == socket.AF_INET else "::")
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def bind_all(config: Config, reuseport: bool = True,
             inherited: dict[str, socket.socket] | None = None) -> list[Listener]:
    """Create every listener of every enabled frontend.

    `inherited` maps listen keys to sockets received from a previous process; those are reused
    instead of bound again. Raises BindError with HAProxy's message for the first failure, after
    closing what was already opened.
    """
    listeners: list[Listener] = []
    inherited = dict(inherited or {})
    try:
        for px in config.frontends:
            if px.disabled:
                continue
            for bind in px.binds:
                backlog = bind.backlog or px.backlog or bind.maxconn or px.maxconn or DEFAULT_BACKLOG
                for addr in bind.addresses:
                    ports = addr.ports() if addr.family in ("ipv4", "ipv6") else [0]
                    for port in ports:
                        shown = str(addr) if len(ports) == 1 else f"{addr.host or '0.0.0.0'}:{port}"
                        key = _listen_key(addr.family, addr.host if addr.family != "fd" else str(addr.fd), port)
                        sock = inherited.pop(key, None)
                        if sock is None:
                            try:
                                sock = create_socket(addr, port, bind, backlog, reuseport)
                            except OSError as e:
                                reason = os.strerror(e.errno) if e.errno else str(e)
                                raise BindError(
                                    f"Binding [{bind.where.file}:{bind.where.line}] for proxy {px.name}: cannot bind "
                                    f"socket ({reason}) for [{shown}]"
                                ) from None
                        listeners.append(Listener(proxy=px, bind=bind, address=shown, sock=sock, key=key,
                                                  port=_local_port(sock)))
    except BindError:
        for lst in listeners:
            lst.sock.close()
        raise
    for sock in inherited.values():
        sock.close()  # addresses the new configuration no longer has
    return listeners


def _local_port(sock: socket.socket) -> int:
    try:
        name = sock.getsockname()
    except OSError:
        return 0
    return name[1] if isinstance(name, tuple) and len(name) > 1 else 0


ConnectionHandler = Callable[[socket.socket, Listener, object], Awaitable[None]]


@attrs.define(eq=False)
class ConnLimit:
    """A connection counter that parks the accept loop at its limit (0 = unlimited)."""

    limit: int
    current: int = 0
    # made by the first waiter only: a release with nobody waiting costs no Event
    _freed: trio.Event | None = None

    def full(self) -> bool:
        return self.limit > 0 and self.current >= self.limit

    def take(self) -> None:
        self.current += 1

    def release(self) -> None:
        self.current -= 1
        if self._freed is not None:
            self._freed.set()
            self._freed = None

    async def wait_free(self) -> None:
        while self.full():
            if self._freed is None:
                self._freed = trio.Event()
            await self._freed.wait()


@attrs.define(eq=False)
class Gate:
    """Paused or not: SIGTTOU closes it (stop accepting), SIGTTIN opens it again."""

    is_open: bool = True
    _opened: trio.Event = attrs.field(factory=trio.Event)

    def close(self) -> None:
        self.is_open = False

    def open(self) -> None:
        self.is_open = True
        self._opened.set()
        self._opened = trio.Event()

    async def wait_open(self) -> None:
        while not self.is_open:
            await self._opened.wait()


async def accept_loop(listener: Listener, limits: list[ConnLimit], handler: ConnectionHandler,
                      nursery: trio.Nursery, gate: Gate | None = None, share: LoadShare | None = None) -> None:
    """Accept connections until cancelled, in batches, holding off at any limit.

    Each connection runs `handler(sock, listener, peer_address)` as its own task in `nursery`; a failure there
    never reaches this loop (the handler contains its own errors). With worker processes, `share`
    holds every process's connection count, and a process clearly busier than another leaves
    pending connections to it for a moment (process/loadshare.py).
    """
    sock = listener.sock
    family = int(sock.family)  # read once: the property converts to an enum on every access
    deferred = 0
    while True:
        if gate is not None:
            await gate.wait_open()
        for lim in limits:
            await lim.wait_free()
        await trio.lowlevel.wait_readable(sock)
        if gate is not None and not gate.is_open:
            continue
        if share is not None:
            if deferred < MAX_DEFERS and share.should_defer():
                deferred += 1
                await trio.sleep(DEFER_SECONDS)
                continue
            deferred = 0
        for i in range(ACCEPT_BATCH):
            if _any_full(limits):
                break
            if i and share is not None and share.should_defer():
                break  # the first is taken whatever the others hold (looked at above)
            try:
                fd, peer = sock._accept()
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await trio.sleep(0.1)  # out of resources: back off instead of spinning
                    break
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                raise
            # the C socket type: no Python-level wrapper on the per-connection path
            conn = _socket.socket(family, socket.SOCK_STREAM, 0, fd)
            conn.setblocking(False)
            for lim in limits:
                lim.take()
            if share is not None:
                share.opened()
            nursery.start_soon(_run_connection, handler, conn, listener, peer, limits, share)
        await trio.lowlevel.checkpoint()


def _any_full(limits: list[ConnLimit]) -> bool:
    for lim in limits:
        if lim.limit > 0 and lim.current >= lim.limit:
            return True
    return False


async def _run_connection(handler: ConnectionHandler, conn: socket.socket, listener: Listener, peer: object,
                          limits: list[ConnLimit], share: LoadShare | None) -> None:
    try:
        await handler(conn, listener, peer)
    finally:
        try:
            conn.close()
        finally:
            for lim in limits:
                lim.release()
            if share is not None:
                share.closed()
