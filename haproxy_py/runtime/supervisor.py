"""The root of the nursery tree: listeners, sessions and signals.

```
serve
 ├─ signals            SIGUSR1 soft stop, SIGTERM/SIGINT hard stop
 └─ sessions nursery   one task per client connection
     └─ acceptors      one accept loop per listening socket (cancelled on soft stop)
```
A soft stop closes the listening sockets and returns once the last session ends (or when
`hard-stop-after` expires); a hard stop cancels everything at once.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import attrs
import trio

from haproxy_py.config.model import Config
from haproxy_py.core.acl import AclError, ProxyRules
from haproxy_py.runtime.admin import serve_stats_sockets
from haproxy_py.runtime.checks import run_checks
from haproxy_py.runtime.connect import BackendRuntime
from haproxy_py.runtime.http_session import check_http_config, http_session
from haproxy_py.process.reload import send_listeners
from haproxy_py.runtime.listeners import ConnLimit, Gate, Listener, accept_loop
from haproxy_py.runtime.session import FrontendRuntime, tcp_session

DEFAULT_GLOBAL_MAXCONN = 4096


@attrs.define(eq=False)
class Runtime:
    """Everything the data plane needs for one configuration."""

    config: Config
    backends: dict[str, BackendRuntime]
    frontends: dict[str, FrontendRuntime]

    @classmethod
    def build(cls, config: Config) -> Runtime:
        backends = {p.name: BackendRuntime.build(p) for p in config.backends}
        frontends = {p.name: FrontendRuntime(p, backends) for p in config.frontends}
        return cls(config=config, backends=backends, frontends=frontends)


def unsupported_features(config: Config) -> list[str]:
    """What the runtime cannot honour yet: starting without it would serve traffic wrongly."""
    problems = []
    for px in config.proxies:
        # ACLs, tcp-request and use_backend rules: compiled now, so that a missing map or pattern
        # file, or a pattern that cannot be parsed, stops the start with its config line
        try:
            ProxyRules.build(px)
        except AclError as e:
            problems.append(f"{e} ({px.kind} '{px.name}')")
    # mode http: rules that cannot be carried out, errorfiles (loaded now, before any chroot)
    problems += check_http_config(config)
    return problems


CONTROL_SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGTTOU, signal.SIGTTIN)


def block_control_signals() -> None:
    """Hold control signals pending until the runtime can handle them (see `_signals`).

    Without this, a SIGUSR1 from a quick successive reload that lands before trio installs its
    handlers would kill the process with the default action, dropping its sessions.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)


async def serve(config: Config, listeners: list[Listener], *, maxconn: int = DEFAULT_GLOBAL_MAXCONN,
                export_sock: socket.socket | None = None, handle_signals: bool = True,
                on_ready: Callable[[], None] | None = None,
                task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the proxy until a stop signal (or cancellation).

    `on_ready` is called once signals are handled, which is when a launcher may report success.
    """
    rt = Runtime.build(config)
    global_limit = ConnLimit(maxconn)
    for fe in rt.frontends.values():
        fe.global_limit = global_limit
    fe_limits = {name: ConnLimit(fe.proxy.maxconn) for name, fe in rt.frontends.items()}
    control = StopControl(config=config)

    sessions: trio.Nursery | None = None  # set below; sessions' helper tasks start there

    async def handle(conn: socket.socket, listener: Listener, peer: object) -> None:
        frontend = rt.frontends[listener.proxy.name]
        if listener.proxy.mode == "http":
            await http_session(conn, frontend, rt)
        else:
            await tcp_session(conn, frontend, peer, listener.port, sessions.start_soon if sessions else None)

    async with trio.open_nursery() as outer:
        control.everything = outer.cancel_scope
        if handle_signals:
            await outer.start(_signals, control)
        if config.global_.stats_sockets:
            await outer.start(serve_stats_sockets, rt, listeners, lambda: control.accepting.cancel_called)
        if on_ready is not None:
            on_ready()
        if export_sock is not None:
            outer.start_soon(_export_listeners, export_sock, listeners, control)
        outer.start_soon(run_checks, rt)
        async with trio.open_nursery() as sessions:
            with control.accepting:
                async with trio.open_nursery() as acceptors:
                    for lst in listeners:
                        limits = [global_limit, fe_limits[lst.proxy.name]]
                        acceptors.start_soon(accept_loop, lst, limits, handle, sessions, control.gate)
                    task_status.started(rt)
            # soft stop: stop accepting and let go of the sockets (a successor may still hold them)
            for lst in listeners:
                lst.sock.close()
        outer.cancel_scope.cancel()


@attrs.define(eq=False)
class StopControl:
    """The stop and pause state shared by the signal handler and the accept loops."""

    config: Config
    accepting: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    everything: trio.CancelScope | None = None
    gate: Gate = attrs.field(factory=lambda: Gate())
    handed_over: bool = False

    def soft_stop(self) -> None:
        self.accepting.cancel()
        hard = self.config.global_.hard_stop_after
        if hard and self.everything is not None:
            self.everything.deadline = min(self.everything.deadline, trio.current_time() + hard / 1000.0)

    def hard_stop(self) -> None:
        if self.everything is not None:
            self.everything.cancel()


async def _signals(control: StopControl, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(*CONTROL_SIGNALS) as signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
        task_status.started()
        async for signum in signals:
            if signum == signal.SIGUSR1:
                grace = control.config.global_.grace
                if grace and not control.handed_over:
                    await trio.sleep(grace / 1000.0)
                control.soft_stop()
            elif signum == signal.SIGTTOU:
                control.gate.close()
            elif signum == signal.SIGTTIN:
                control.gate.open()
            else:
                control.hard_stop()
                return


async def _export_listeners(sock: socket.socket, listeners: list[Listener], control: StopControl) -> None:
    """Hand the listening sockets to a successor that asks (reload without a dropped connection)."""
    pairs = [(lst.key, lst.sock) for lst in listeners]
    while True:
        await trio.lowlevel.wait_readable(sock)
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            continue
        with conn:
            conn.setblocking(False)
            request = b""
            with trio.move_on_after(2.0):
                while not request.endswith(b"\n") and len(request) < 64:
                    await trio.lowlevel.wait_readable(conn)
                    try:
                        chunk = conn.recv(64)
                    except BlockingIOError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    request += chunk
            if request.strip() != b"_getsocks" or control.accepting.cancel_called:
                continue
            # a few hundred bytes on a local socket: a short blocking send never stalls the loop
            conn.settimeout(1.0)
            try:
                send_listeners(conn, pairs)
                control.handed_over = True
            except OSError:
                pass
