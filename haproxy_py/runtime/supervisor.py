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
import sys

import attrs
import trio

from haproxy_py.config.model import Config
from haproxy_py.runtime.checks import run_checks
from haproxy_py.runtime.connect import BackendRuntime
from haproxy_py.runtime.http_session import http_session
from haproxy_py.runtime.listeners import ConnLimit, Listener, accept_loop
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
        if px.mode == "http":
            problems.append(f"[{px.where.file}:{px.where.line}] : {px.kind} '{px.name}' : 'mode http' proxying "
                            "is not available in this version of haproxy-py.")
        for ub in px.use_backends:
            if ub.cond is not None or ub.dynamic:
                problems.append(f"[{ub.where.file}:{ub.where.line}] : {px.kind} '{px.name}' : conditional or "
                                "dynamic 'use_backend' rules are not available in this version of haproxy-py.")
        for rule in (*px.tcp_request_rules, *px.http_request_rules, *px.http_response_rules):
            problems.append(f"[{rule.where.file}:{rule.where.line}] : {px.kind} '{px.name}' : '{rule.family} "
                            f"{rule.action}' rules are not available in this version of haproxy-py.")
    return problems


async def serve(config: Config, listeners: list[Listener], *, handle_signals: bool = True,
                task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the proxy until a stop signal (or cancellation)."""
    rt = Runtime.build(config)
    global_limit = ConnLimit(config.global_.maxconn or DEFAULT_GLOBAL_MAXCONN)
    fe_limits = {name: ConnLimit(fe.proxy.maxconn) for name, fe in rt.frontends.items()}
    accept_scope = trio.CancelScope()

    async def handle(conn: socket.socket, listener: Listener) -> None:
        frontend = rt.frontends[listener.proxy.name]
        if listener.proxy.mode == "http":
            await http_session(conn, frontend, rt)
        else:
            await tcp_session(conn, frontend)

    async with trio.open_nursery() as outer:
        if handle_signals:
            outer.start_soon(_signals, accept_scope, outer.cancel_scope, config)
        outer.start_soon(run_checks, rt)
        async with trio.open_nursery() as sessions:
            with accept_scope:
                async with trio.open_nursery() as acceptors:
                    for lst in listeners:
                        limits = [global_limit, fe_limits[lst.proxy.name]]
                        acceptors.start_soon(accept_loop, lst, limits, handle, sessions)
                    task_status.started(rt)
            # soft stop: no new connections; the kernel refuses new ones once the sockets close
            for lst in listeners:
                lst.sock.close()
        outer.cancel_scope.cancel()


async def _signals(accept_scope: trio.CancelScope, everything: trio.CancelScope, config: Config) -> None:
    with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if signum == signal.SIGUSR1:
                accept_scope.cancel()
                hard = config.global_.hard_stop_after
                if hard:
                    everything.deadline = min(everything.deadline, trio.current_time() + hard / 1000.0)
            else:
                everything.cancel()
                return
