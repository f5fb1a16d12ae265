"""The root of the nursery tree: listeners, sessions and signals.

```
serve
 ├─ signals            SIGUSR1 soft stop, SIGTERM/SIGINT hard stop
 ├─ forwarder          moves the bytes of every mode-tcp session (forward.Forwarder)
 ├─ http fast path     serves the keep-alive requests of parked mode-http sessions (http_fastpath)
 └─ sessions nursery   one task per client connection
     └─ acceptors      one accept loop per listening socket (cancelled on soft stop)
```
A soft stop closes the listening sockets and returns once the last session ends (or when
`hard-stop-after` expires); a hard stop cancels everything at once.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Sequence

import attrs
import trio

from haproxy_py.config.model import Config
from haproxy_py.core import workersync
from haproxy_py.process.workers import Worker, reap, signal_workers
from haproxy_py.core.acl import AclError, ProxyRules
from haproxy_py.runtime import http_fastpath
from haproxy_py.runtime.admin import serve_stats_sockets
from haproxy_py.runtime.checks import run_checks
from haproxy_py.runtime.connect import BackendRuntime
from haproxy_py.runtime.forward import Forwarder
from haproxy_py.runtime.http_session import begin_soft_stop, check_http_config, http_session
from haproxy_py.process.reload import send_listeners
from haproxy_py.process.loadshare import LoadShare
from haproxy_py.runtime.listeners import ConnLimit, Gate, Listener, accept_loop
from haproxy_py.runtime.session import FrontendRuntime, tcp_session

DEFAULT_GLOBAL_MAXCONN = 4096


@attrs.define(eq=False)
class Runtime:
    """Everything the data plane needs for one configuration."""

    config: Config
    backends: dict[str, BackendRuntime]
    frontends: dict[str, FrontendRuntime]
    # in the main process of several: the workers' last counter reports (their gauges for stats)
    worker_reports: workersync.WorkerReports = attrs.field(factory=workersync.WorkerReports)

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
                on_ready: Callable[[], None] | None = None, workers: Sequence[Worker] = (),
                worker: tuple[int, int, socket.socket] | None = None, share: LoadShare | None = None,
                task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the proxy until a stop signal (or cancellation).

    `on_ready` is called once signals are handled, which is when a launcher may report success.
    With worker processes, the main process passes `workers` (it keeps the control plane and
    forwards signals) and each worker passes `worker=(index, count, channel)`; limits are split so
    that the processes together honour the configured ones, and `share` (made before the fork)
    spreads the connections over them.
    """
    rt = Runtime.build(config)
    index, count = (worker[0], worker[1]) if worker is not None else (0, len(workers) + 1)
    if count > 1:
        _split_limits(rt, index, count)
        maxconn = workersync.split_limit(maxconn, count, index)
    global_limit = ConnLimit(maxconn)
    if share is not None:
        share.index = index
    # moves the bytes of every mode-tcp session of this process
    forwarder = Forwarder() if any(fe.proxy.mode != "http" for fe in rt.frontends.values()) else None
    for fe in rt.frontends.values():
        fe.global_limit = global_limit
        fe.forwarder = forwarder
    fe_limits = {name: ConnLimit(workersync.split_limit(fe.proxy.maxconn, count, index))
                 for name, fe in rt.frontends.items()}
    control = StopControl(config=config, workers=list(workers))
    control.on_soft_stop.append(lambda: begin_soft_stop(rt))

    async def handle(conn: socket.socket, listener: Listener, peer: object) -> None:
        frontend = rt.frontends[listener.proxy.name]
        if listener.proxy.mode == "http":
            await http_session(conn, frontend, rt)
        else:
            await tcp_session(conn, frontend, peer, listener.port)

    async with trio.open_nursery() as outer:
        control.everything = outer.cancel_scope
        if forwarder is not None:
            outer.start_soon(forwarder.run)
        if handle_signals:
            await outer.start(_signals, control)
        if worker is not None:
            # a worker: data plane only; server states come from the main process
            outer.start_soon(_worker_channel, rt, worker[2])
        else:
            if config.global_.stats_sockets:
                await outer.start(serve_stats_sockets, rt, listeners, lambda: control.accepting.cancel_called)
            if on_ready is not None:
                on_ready()
            if export_sock is not None:
                outer.start_soon(_export_listeners, export_sock, listeners, control)
            outer.start_soon(run_checks, rt)
            for w in workers:
                outer.start_soon(_main_channel, rt, w, share)
            if workers:
                for be in rt.backends.values():
                    be.observers.append(lambda b: _broadcast(b, control.workers))
        if any(fe.proxy.mode == "http" for fe in rt.frontends.values()):
            await outer.start(http_fastpath.serve)
        async with trio.open_nursery() as sessions:
            with control.accepting:
                async with trio.open_nursery() as acceptors:
                    for lst in listeners:
                        limits = [global_limit, fe_limits[lst.proxy.name]]
                        acceptors.start_soon(accept_loop, lst, limits, handle, sessions, control.gate, share)
                    task_status.started(rt)
            if share is not None:
                share.leave()
            # soft stop: stop accepting and let go of the sockets (a successor may still hold them)
            for lst in listeners:
                lst.sock.close()
        # the sessions are over; the workers finish theirs before the process goes
        while control.workers and not reap(control.workers):
            await trio.sleep(0.05)
        if worker is not None:
            _send(worker[2], _report(rt))
        outer.cancel_scope.cancel()


def _split_limits(rt: Runtime, index: int, count: int) -> None:
    """This process's share of every server's maxconn and maxqueue."""
    for be in rt.backends.values():
        for st in be.servers:
            st.maxconn = workersync.split_limit(st.maxconn, count, index)
            st.maxqueue = workersync.split_limit(st.maxqueue, count, index)


def _send(channel: socket.socket, data: bytes) -> None:
    try:
        channel.send(data)
    except OSError:
        pass  # the peer is gone or its queue is full: the next message carries the state again


def _broadcast(backend: BackendRuntime, workers: list[Worker]) -> None:
    data = workersync.encode_servers(backend.proxy.name, backend.servers)
    for w in workers:
        if not w.exited:
            _send(w.channel, data)


def _report(rt: Runtime) -> bytes:
    return workersync.encode_report(
        {name: fe.counters for name, fe in rt.frontends.items()},
        {name: be.counters for name, be in rt.backends.items()},
        {name: be.servers for name, be in rt.backends.items()},
    )


REPORT_INTERVAL = 1.0


async def _worker_channel(rt: Runtime, channel: socket.socket) -> None:
    """In a worker: apply server states sent by the main process; report counters every second."""
    channel.setblocking(False)

    async def receive() -> None:
        while True:
            await trio.lowlevel.wait_readable(channel)
            try:
                data = channel.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return  # the main process is gone; PDEATHSIG ends this one
            message = workersync.decode(data)
            be = rt.backends.get(message.get("be", ""))
            if message.get("t") == "servers" and be is not None and workersync.apply_servers(message, be.servers):
                be.server_changed()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        while True:
            _send(channel, _report(rt))
            await trio.sleep(REPORT_INTERVAL)


async def _main_channel(rt: Runtime, w: Worker, share: LoadShare | None) -> None:
    """In the main process: fold one worker's counter reports into the main's counters."""
    fe = {name: f.counters for name, f in rt.frontends.items()}
    be = {name: b.counters for name, b in rt.backends.items()}
    servers = {name: b.servers for name, b in rt.backends.items()}
    # the worker may have missed changes made before it listened: send the current states
    for b in rt.backends.values():
        _send(w.channel, workersync.encode_servers(b.proxy.name, b.servers))
    while True:
        await trio.lowlevel.wait_readable(w.channel)
        try:
            data = w.channel.recv(1 << 22)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            rt.worker_reports.forget(w.index)
            if share is not None:
                share.leave(w.index)  # it died or stopped: no connection is left to it
            return
        message = workersync.decode(data)
        if message.get("t") == "counters":
            rt.worker_reports.receive(w.index, message, fe, be, servers)


@attrs.define(eq=False)
class StopControl:
    """The stop and pause state shared by the signal handler and the accept loops."""

    config: Config
    accepting: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    everything: trio.CancelScope | None = None
    gate: Gate = attrs.field(factory=lambda: Gate())
    handed_over: bool = False
    workers: list[Worker] = attrs.field(factory=list)
    # called at soft stop (HTTP: idle keep-alive connections close, busy ones announce close)
    on_soft_stop: list[Callable[[], object]] = attrs.field(factory=list)

    def soft_stop(self) -> None:
        signal_workers(self.workers, signal.SIGUSR1)
        self.accepting.cancel()
        for callback in self.on_soft_stop:
            callback()
        hard = self.config.global_.hard_stop_after
        if hard and self.everything is not None:
            self.everything.deadline = min(self.everything.deadline, trio.current_time() + hard / 1000.0)

    def hard_stop(self) -> None:
        signal_workers(self.workers, signal.SIGTERM)
        if self.everything is not None:
            self.everything.cancel()

    def pause(self, paused: bool) -> None:
        signal_workers(self.workers, signal.SIGTTOU if paused else signal.SIGTTIN)
        if paused:
            self.gate.close()
        else:
            self.gate.open()


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
            elif signum in (signal.SIGTTOU, signal.SIGTTIN):
                control.pause(signum == signal.SIGTTOU)
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
