"""Content inspection of a client's first bytes (`tcp-request inspect-delay` + content rules).

The decisions are core.acl's; this module only moves bytes and time, as HAProxy's
tcp_inspect_request() analyser is driven by its stream:

* the rules run at once on what is already there, then again each time bytes arrive;
* a rule whose condition lacks data (`MISS`) makes the whole list wait;
* the data become final when the client half-closes, the buffer is full (bufsize - maxrewrite),
  there is no inspect-delay, or the delay expires; the last run then decides, and a list that
  decides nothing accepts;
* `timeout client` still applies while waiting: a silent client is dropped when it fires first.

Every byte read here must reach the server first, untouched: `ClientBuffer.data` is handed to the
session, which writes it before it starts pumping.
"""

from __future__ import annotations

import enum
import math
import socket
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from haproxy_py.core.acl import TcpRule, Verdict, run_tcp_rules
from haproxy_py.core.fetch import DEFAULT_BUFSIZE, DEFAULT_MAXREWRITE, SampleContext

if TYPE_CHECKING:
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.session import FrontendRuntime


class Outcome(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"  # a reject rule matched: close the client
    ABORT = "abort"  # the client failed (reset) or timed out while being inspected


@attrs.define(eq=False)
class ClientBuffer:
    """The bytes read from the client before any server is chosen.

    `limit` is how much inspection may hold (HAProxy: tune.bufsize - tune.maxrewrite); `eof` is
    set once the client half-closed, `failed` on a reset.
    """

    sock: socket.socket
    data: bytearray = attrs.field(factory=bytearray)
    limit: int = DEFAULT_BUFSIZE - DEFAULT_MAXREWRITE
    eof: bool = False
    failed: bool = False

    @property
    def full(self) -> bool:
        return len(self.data) >= self.limit

    def read_available(self) -> bool:
        """Take what the kernel already has, without waiting; True if anything changed."""
        if self.eof or self.failed or self.full:
            return False
        try:
            chunk = self.sock.recv(self.limit - len(self.data))
        except BlockingIOError:
            return False
        except OSError:
            self.failed = True
            return True
        if not chunk:
            self.eof = True
        else:
            self.data += chunk
        return True

    async def read_until(self, deadline: float) -> bool:
        """Wait for bytes (or end of stream) until `deadline` (trio time); False on timeout."""
        with trio.move_on_at(deadline):
            while True:
                await trio.lowlevel.wait_readable(self.sock)
                if self.read_available():
                    return True
        return False


async def inspect(buf: ClientBuffer, rules: Sequence[TcpRule], ctx: SampleContext, delay_ms: int | None,
                  client_timeout: float = math.inf) -> Outcome:
    """Run tcp-request content `rules` over the client's bytes until they decide.

    `ctx.payload` and `ctx.final` are updated on every run. `client_timeout` (seconds) is the
    longest wait for the next bytes.
    """
    if not rules:
        return Outcome.ACCEPT
    now = trio.current_time()
    rules_deadline = now + delay_ms / 1000.0 if delay_ms else None
    expired = False
    buf.read_available()
    while True:
        if buf.failed:
            return Outcome.ABORT
        ctx.payload = bytes(buf.data)
        ctx.final = buf.eof or buf.full or rules_deadline is None or expired
        verdict = run_tcp_rules(rules, ctx)
        if verdict is Verdict.ACCEPT:
            return Outcome.ACCEPT
        if verdict is Verdict.REJECT:
            return Outcome.REJECT
        # WAIT: only possible while the data is not final, hence with a deadline
        assert rules_deadline is not None
        client_deadline = trio.current_time() + client_timeout
        if await buf.read_until(min(rules_deadline, client_deadline)):
            continue
        if trio.current_time() >= rules_deadline:
            expired = True
        else:
            return Outcome.ABORT  # timeout client fired first


_NO_LINGER = struct.pack("ii", 1, 0)


def reset_on_close(conn: socket.socket) -> None:
    """Make the coming close() send a RST instead of a FIN, as HAProxy does for rejections."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
    except OSError:
        pass


def _seconds(ms: int | None) -> float:
    return ms / 1000.0 if ms else math.inf


@attrs.frozen
class Route:
    """Where a tcp connection goes, and the bytes already read that must be sent there first."""

    backend: BackendRuntime
    initial: bytes


async def route_tcp(conn: socket.socket, frontend: FrontendRuntime, ctx: SampleContext) -> Route | None:
    """Everything between accept and connect, for a mode-tcp connection.

    tcp-request connection and session rules, the frontend's content inspection, use_backend /
    default_backend, then the chosen backend's own content rules (a `backend` section may inspect
    too). None: the connection was rejected, failed, or has no backend; the caller closes it.
    """
    rules = frontend.rules
    ctx.final = True
    if run_tcp_rules(rules.connection, ctx) is Verdict.REJECT:
        reset_on_close(conn)  # HAProxy: "a no-linger now to close with a single RST"
        return None
    if run_tcp_rules(rules.session, ctx) is Verdict.REJECT:
        return None
    buf = ClientBuffer(conn, limit=ctx.bufsize - ctx.maxrewrite)
    client_timeout = _seconds(frontend.proxy.timeouts.client)
    if rules.content:
        outcome = await inspect(buf, rules.content, ctx, rules.inspect_delay, client_timeout)
        if outcome is not Outcome.ACCEPT:
            if outcome is Outcome.REJECT:
                frontend.counters.denied_requests += 1
                reset_on_close(conn)  # a killed connection (HAProxy's sc_must_kill_conn)
            return None
    elif rules.dynamic_switching:
        # no inspection: the rules see whatever already arrived (HAProxy reads before switching)
        buf.read_available()
        if buf.failed:
            return None
    ctx.payload = bytes(buf.data)
    ctx.final = True
    backend = frontend.choose_backend(ctx)
    if backend is None:
        return None
    ctx.backend = backend.proxy.name
    be_rules = frontend.backend_rules.get(backend.proxy.name)
    if be_rules is not None and be_rules.content:
        outcome = await inspect(buf, be_rules.content, ctx, be_rules.inspect_delay, client_timeout)
        if outcome is not Outcome.ACCEPT:
            if outcome is Outcome.REJECT:
                backend.counters.denied_requests += 1
                reset_on_close(conn)
            return None
    return Route(backend=backend, initial=bytes(buf.data))
