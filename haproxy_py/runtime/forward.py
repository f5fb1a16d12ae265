"""Byte pumps between two non-blocking sockets, and the inactivity timer they share.

A pump owns no memory while its connection is idle: it borrows a buffer from a shared pool when
the socket becomes readable and gives it back once the bytes are written. A flow that keeps
filling whole buffers is moved to `os.splice` through a pipe (the kernel copies, Python only
schedules), as HAProxy's splice-auto does. A busy flow yields to the scheduler after every chunk
so that one connection cannot starve the others.

Two shapes share these rules: `pump()` moves one direction in its own task (HTTP tunnels), and
`tunnel()` moves both directions of a tcp session. On short connections trio's task switches,
waits and cancel scopes cost more than the bytes moved, so a tcp session has one scope, and its
two sockets sit in the epoll set of the process's `Forwarder`: one task that serves every
session's readiness in batches, while each session's task sleeps from its first wait to its end.
(Without a Forwarder, the session's task serves a private epoll set holding its two sockets.)

Measured with bench/tcp_bench.py on the 2-core reference box (wrk, `Connection: close`):
~345-370 us of CPU per proxied connection with a task per direction, ~260-300 us this way; HAProxy
needs ~95-120 us, most of it the kernel's TCP work that both pay.
"""

from __future__ import annotations

import fcntl
import math
import os
import select
import socket
from collections.abc import Callable

import attrs
import trio

CHUNK = 64 * 1024
SPLICE_CHUNK = 256 * 1024
# consecutive full reads before a direction switches to splice
SPLICE_AFTER = 4
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
CAN_SPLICE = hasattr(os, "splice")


@attrs.define
class BufferPool:
    """Reusable receive buffers; the pool keeps at most `keep` idle ones."""

    size: int = CHUNK
    keep: int = 256
    lent: int = 0  # buffers currently held by pumps
    _free: list[bytearray] = attrs.field(factory=list)

    def get(self) -> bytearray:
        self.lent += 1
        return self._free.pop() if self._free else bytearray(self.size)

    def put(self, buf: bytearray) -> None:
        self.lent -= 1
        if len(self._free) < self.keep:
            self._free.append(buf)


@attrs.define
class PipePool:
    """Kernel pipes for splicing, reused across sessions (each is two fds)."""

    keep: int = 64
    _free: list[tuple[int, int]] = attrs.field(factory=list)

    def get(self) -> tuple[int, int]:
        if self._free:
            return self._free.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, SPLICE_CHUNK)
        except OSError:
            pass
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool) -> None:
        if empty and len(self._free) < self.keep:
            self._free.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])


@attrs.define
class EpollPool:
    """Private epoll sets for tunnels, reused: a reused set costs no epoll_create() and close(),
    and trio's own epoll still holds its fd (one MOD where a new fd costs a failed MOD and an ADD)."""

    keep: int = 256
    _free: list[select.epoll] = attrs.field(factory=list)

    def get(self) -> select.epoll:
        return self._free.pop() if self._free else select.epoll()

    def put(self, epoll: select.epoll, empty: bool) -> None:
        """`empty`: no fd is registered any more (otherwise the set is closed, not reused)."""
        if empty and len(self._free) < self.keep:
            self._free.append(epoll)
        else:
            epoll.close()


POOL = BufferPool()
PIPES = PipePool()
EPOLLS = EpollPool()


@attrs.define(eq=False)
class Activity:
    """A session's inactivity deadline, pushed forward by every chunk moved in either direction.

    HAProxy refreshes a socket's timers whenever data is read from or written to it (unless
    `option independent-streams`), and every chunk moved touches both sockets, so one deadline
    serves the session: `idle` seconds after the last byte moved. A side's timeout is `timeout
    client` / `timeout server`, both replaced by `timeout tunnel` when set, and replaced by
    `timeout client-fin` / `server-fin` once the proxy has shut its output towards that side
    (the other side reached end of stream). A side that has shut its own output has no timer.

    With `pump()`, the first expiry ends the session. `tunnel()` does as HAProxy does: it closes
    only the direction read from the side that timed out, and the other direction keeps going
    until its own side's timer passes; the first timeout is what the termination state shows.
    """

    scope: trio.CancelScope
    client: float = math.inf
    server: float = math.inf
    client_fin: float | None = None
    server_fin: float | None = None
    tunnel: float | None = None
    client_closed: bool = False  # no more bytes from the client (end of stream, or its timeout)
    server_closed: bool = False  # no more bytes from the server
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client
    idle: float = math.inf
    idle_side: str = "c"  # whose timeout `idle` is: "c" client, "s" server
    failed_side: str = ""  # "C" or "S" once a read on that side failed
    timed_out: str = ""  # "c" or "s": the first side whose timeout passed (tunnel() only)
    killed: bool = False  # ended by `cancel()` (shutdown-sessions), not by a timeout or a peer
    last: float = 0.0  # trio time of the last activity

    def __attrs_post_init__(self) -> None:
        self.recompute()

    def recompute(self, since: float | None = None) -> None:
        """Work out `idle` again (at the start, and when a side shuts its output) and apply it,
        counted from `since` (the last activity) or from now.

        Unlike `bump()`, this may also bring the deadline closer (a `*-fin` timeout shorter
        than the normal one) and sets the first deadline (a new scope's is infinite).
        """
        tunnel = self.tunnel
        if self.client_closed:
            c = math.inf
        elif self.server_closed and self.client_fin is not None:
            c = self.client_fin
        else:
            c = tunnel if tunnel is not None else self.client
        if self.server_closed:
            s = math.inf
        elif self.client_closed and self.server_fin is not None:
            s = self.server_fin
        else:
            s = tunnel if tunnel is not None else self.server
        self.idle = min(c, s)
        self.idle_side = "c" if c <= s else "s"
        if since is None:
            since = self.last = trio.current_time()
        deadline = since + self.idle
        current = self.scope.deadline
        if deadline < current or deadline - current > min(self.idle * 0.01, 0.02):
            self.scope.deadline = deadline

    def cancel(self) -> None:
        """End the session from outside (`BackendRuntime.shutdown_sessions`); logged as `DD`."""
        self.killed = True
        self.scope.cancel()

    def termination(self) -> str:
        """HAProxy's 2-char termination state of a finished tcp session (`--`, `cD`, `SD`, ...)."""
        if self.killed:
            return "DD"
        if self.timed_out:
            return f"{self.timed_out}D"
        if self.failed_side:
            return f"{self.failed_side}D"
        if self.scope.cancelled_caught:
            return f"{self.idle_side}D"
        return "--"

    def bump(self) -> None:
        """Push the deadline to now + idle.

        Moving a cancel scope's deadline re-sorts trio's timer heap, so it is skipped while the
        current deadline is less than 1% of `idle` (at most 20 ms) stale: the session still
        gets at least 99% of its inactivity allowance.
        """
        self.last = now = trio.current_time()
        if self.idle != math.inf:
            deadline = now + self.idle
            if deadline - self.scope.deadline > min(self.idle * 0.01, 0.02):
                self.scope.deadline = deadline


async def send_all(sock: socket.socket, data: memoryview) -> None:
    """Write every byte of `data`, waiting for writability as needed."""
    off = 0
    n = len(data)
    while off < n:
        try:
            off += sock.send(data[off:])
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def pump(src: socket.socket, dst: socket.socket, activity: Activity, upstream: bool,
               pool: BufferPool = POOL, splice: bool = CAN_SPLICE) -> None:
    """Copy src to dst until src reaches end of stream, then half-close dst.

    Bytes are counted on `activity` (bytes_up when `upstream`). Connection errors (reset, broken
    pipe) propagate to the caller, which ends the session.
    """
    full_reads = 0
    waited = False
    while True:
        # read first and wait only when nothing is there: a wait costs a scheduler pass
        buf: bytearray | None = pool.get()
        try:
            try:
                n = src.recv_into(buf)
            except BlockingIOError:
                pool.put(buf)
                buf = None
                await trio.lowlevel.wait_readable(src)
                waited = True
                continue
            if n == 0:
                break
            await send_all(dst, memoryview(buf)[:n])
        finally:
            if buf is not None:
                pool.put(buf)
        if upstream:
            activity.bytes_up += n
        else:
            activity.bytes_down += n
        activity.bump()
        full_reads = full_reads + 1 if n == pool.size else 0
        if splice and full_reads >= SPLICE_AFTER:
            if await _splice_pump(src, dst, activity, upstream):
                break
            full_reads = 0
        elif not waited:
            # data was ready without waiting: yield so one busy flow cannot starve the others
            await trio.lowlevel.checkpoint()
        waited = False
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


async def _splice_pump(src: socket.socket, dst: socket.socket, activity: Activity, upstream: bool) -> bool:
    """Move data with os.splice while the flow stays bulky; True when src reached end of stream.

    Returns False (back to buffered copies) once reads come in small, so an interactive flow
    does not keep a pipe.
    """
    pipe = PIPES.get()
    pipe_r, pipe_w = pipe
    in_pipe = 0
    small = 0
    try:
        while True:
            await trio.lowlevel.wait_readable(src)
            try:
                n = os.splice(src.fileno(), pipe_w, SPLICE_CHUNK, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                continue
            if n == 0:
                return True
            in_pipe += n
            while in_pipe:
                try:
                    m = os.splice(pipe_r, dst.fileno(), in_pipe, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(dst)
                    continue
                in_pipe -= m
            if upstream:
                activity.bytes_up += n
            else:
                activity.bytes_down += n
            activity.bump()
            small = small + 1 if n < CHUNK else 0
            if small >= SPLICE_AFTER:
                return False
            await trio.lowlevel.checkpoint()
    finally:
        PIPES.put(pipe, empty=in_pipe == 0)


# ----------------------------------------------------------------------------------------------
# both directions of a tcp session

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_READY_IN = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
_READY_OUT = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
# rounds of ready events a tunnel serves in a row before it lets other tasks run: two covers a
# short exchange (the answer, then its end of stream) without a scheduler pass in between
ROUNDS_PER_YIELD = 2
# readiness reports a Forwarder takes per batch
FORWARDER_BATCH = 256
# a spliced read under this size counts as interactive traffic
TUNNEL_SMALL = 16 * 1024


class _Way:
    """One direction of a tunnel, and what it holds while its write waits for the peer."""

    __slots__ = ("src", "dst", "src_fd", "dst_fd", "upstream", "done", "buf", "view", "chunk", "full_reads",
                 "pipe", "in_pipe", "small")

    def __init__(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.upstream = upstream
        self.done = False  # src reached end of stream
        self.buf: bytearray | None = None  # the pool buffer of bytes not written yet
        self.view: memoryview | None = None  # its part still to write
        self.chunk = 0  # bytes of the chunk in flight, counted once all are written
        self.full_reads = 0  # consecutive reads of half a buffer or more (splice after SPLICE_AFTER)
        self.pipe: tuple[int, int] | None = None  # set while the flow is spliced
        self.in_pipe = 0  # spliced bytes not written yet
        self.small = 0  # consecutive short splices (back to buffers after SPLICE_AFTER)


def _holding(way: _Way) -> bool:
    return way.view is not None or way.in_pipe > 0


class _Tunnel:
    """The state of `tunnel()`: two ways, the epoll set and which events each socket is watched for.

    Level-triggered: on each readiness report, a way reads at most one chunk, and a way whose
    write would block stops reading (its source leaves the set) until the peer drains, as a
    blocked pump would. With a `Forwarder`, the sockets sit in its shared set and its task calls
    `on_event`; otherwise the session's task serves a private set itself (`serve`).
    """

    __slots__ = ("up", "down", "activity", "pool", "splice", "epoll", "forwarder", "client_fd", "server_fd",
                 "client_events", "server_events", "finished", "error", "task", "on_finish")

    def __init__(self, client: socket.socket, server: socket.socket, activity: Activity, pool: BufferPool,
                 splice: bool, forwarder: Forwarder | None, on_finish: Callable[[], None] | None = None) -> None:
        self.up = _Way(client, server, True)
        self.down = _Way(server, client, False)
        self.activity = activity
        self.pool = pool
        self.splice = splice
        self.forwarder = forwarder
        self.epoll = forwarder.epoll if forwarder is not None else EPOLLS.get()
        self.client_fd = self.up.src_fd
        self.server_fd = self.down.src_fd
        self.client_events = 0  # what each socket is registered for; 0 = not in the set
        self.server_events = 0
        self.finished = False  # both ways done, or one failed
        self.error: BaseException | None = None  # an unexpected error met in the forwarder's task
        self.task: trio.lowlevel.Task | None = None  # the session's task while parked
        self.on_finish = on_finish

    def start(self) -> bool:
        """Forward what the client already sent and watch both sockets; False if that failed."""
        try:
            # the client's first bytes have usually arrived by now: forward them before any wait
            self._pull(self.up)
        except OSError:
            self._fail(self.up)
            return False
        self._watch()
        return True

    def on_event(self, fd: int, ev: int) -> None:
        """`fd` is ready (`ev`): move what can be moved, then update the set."""
        if fd == self.client_fd:
            reader, writer = self.up, self.down
        else:
            reader, writer = self.down, self.up
        if ev & _READY_OUT and (writer.view is not None or writer.in_pipe):
            try:
                self._flush(writer)
            except OSError:
                self._fail(writer)
                return
        if ev & _READY_IN and not reader.done and reader.view is None and not reader.in_pipe:
            try:
                self._pull(reader)
            except OSError:
                self._fail(reader)
                return
        if self.up.done and self.down.done:
            self._finish()
        else:
            self._watch()

    def _finish(self) -> None:
        self.finished = True
        if self.on_finish is not None:
            self.on_finish()
        if self.task is not None:
            trio.lowlevel.reschedule(self.task)
            self.task = None

    async def park(self) -> None:
        """Sleep until the forwarder finishes the tunnel (or the scope is cancelled)."""
        if self.finished:
            await trio.lowlevel.checkpoint()
        else:
            self.task = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self.task = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        if self.error is not None:
            raise self.error

    async def serve(self, fresh: bool) -> None:
        """Serve a private set until the tunnel is finished (cancellation ends it too)."""
        poll = self.epoll.poll
        epfd = self.epoll.fileno()
        rounds = 0
        # when bytes just went to the server, its answer cannot be there yet: wait at once
        events = () if fresh and (self.activity.bytes_up or self.up.view is not None) else poll(0, 2)
        while not self.finished:
            if not events:
                await trio.lowlevel.wait_readable(epfd)
                rounds = 0
                events = poll(0, 2)
                continue
            if rounds >= ROUNDS_PER_YIELD:
                await trio.lowlevel.checkpoint()
                rounds = 0
            rounds += 1
            for fd, ev in events:
                if self.finished:
                    break
                self.on_event(fd, ev)
            if self.finished:
                return
            if self._moved_a_lot():
                rounds = ROUNDS_PER_YIELD
            events = poll(0, 2)

    def expire(self) -> bool:
        """A side's timeout passed. As in HAProxy, the direction read from that side ends (its
        end of stream goes to the other side) and the other direction keeps going under a new
        deadline; False when nothing is left to serve. Bytes still waiting for a peer end it too.
        """
        activity = self.activity
        side = activity.idle_side
        if not activity.timed_out:
            activity.timed_out = side
        way, other = (self.up, self.down) if side == "c" else (self.down, self.up)
        if way.done or other.done or _holding(way) or _holding(other):
            return False
        way.done = True
        try:
            way.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if way.upstream:
            activity.client_closed = True
            fin = activity.server_fin
        else:
            activity.server_closed = True
            fin = activity.client_fin
        activity.scope = trio.CancelScope()
        # the other side's timer keeps counting from the last activity, but a `-fin` timeout
        # that takes over now starts now (as HAProxy's does)
        activity.recompute(since=activity.last if fin is None else None)
        self._watch()
        return True

    def _moved_a_lot(self) -> bool:
        """Whether a way is bulky (whole buffers or splicing): it then yields after every round."""
        return bool(self.up.full_reads or self.down.full_reads or self.up.pipe or self.down.pipe)

    def _watch(self) -> None:
        """Bring the epoll set in line with what each way waits for (a syscall only on change)."""
        up, down = self.up, self.down
        client = ((_EPOLLIN if not up.done and up.view is None and not up.in_pipe else 0)
                  | (_EPOLLOUT if down.view is not None or down.in_pipe else 0))
        server = ((_EPOLLIN if not down.done and down.view is None and not down.in_pipe else 0)
                  | (_EPOLLOUT if up.view is not None or up.in_pipe else 0))
        if client != self.client_events:
            self._set(self.client_fd, self.client_events, client)
            self.client_events = client
        if server != self.server_events:
            self._set(self.server_fd, self.server_events, server)
            self.server_events = server

    def _set(self, fd: int, old: int, new: int) -> None:
        # a socket watched for nothing leaves the set: epoll would keep reporting its hang-up
        if not old:
            self.epoll.register(fd, new)
            if self.forwarder is not None:
                self.forwarder.tunnels[fd] = self
        elif not new:
            self.epoll.unregister(fd)
            if self.forwarder is not None:
                self.forwarder.tunnels.pop(fd, None)
        else:
            self.epoll.modify(fd, new)

    def _fail(self, way: _Way) -> None:
        # one side failed: the session ends, reported as an abort of the side that way reads
        self.activity.failed_side = "C" if way.upstream else "S"
        self._finish()

    def _pull(self, way: _Way) -> None:
        """Read one chunk from the way's source and write what the peer takes now."""
        if way.pipe is not None:
            self._splice_in(way)
            return
        pool = self.pool
        buf = pool.get()
        try:
            n = way.src.recv_into(buf)
        except BlockingIOError:
            pool.put(buf)
            return
        except BaseException:
            pool.put(buf)
            raise
        if n == 0:
            pool.put(buf)
            self._end_of_stream(way)
            return
        view = memoryview(buf)[:n]
        try:
            sent = way.dst.send(view)
        except BlockingIOError:
            sent = 0
        except BaseException:
            pool.put(buf)
            raise
        if sent < n:
            way.buf, way.view, way.chunk = buf, view[sent:], n
            return
        pool.put(buf)
        self._moved(way, n)

    def _flush(self, way: _Way) -> None:
        """Write more of what the way holds, now that its peer can take some."""
        if way.in_pipe:
            self._splice_out(way)
            return
        view = way.view
        assert view is not None and way.buf is not None
        try:
            sent = way.dst.send(view)
        except BlockingIOError:
            return
        if sent < len(view):
            way.view = view[sent:]
            return
        self.pool.put(way.buf)
        way.buf = way.view = None
        self._moved(way, way.chunk)

    def _splice_in(self, way: _Way) -> None:
        assert way.pipe is not None
        try:
            n = os.splice(way.src_fd, way.pipe[1], SPLICE_CHUNK, flags=_SPLICE_FLAGS)
        except BlockingIOError:
            return
        if n == 0:
            PIPES.put(way.pipe, empty=True)
            way.pipe = None
            self._end_of_stream(way)
            return
        way.in_pipe = way.chunk = n
        self._splice_out(way)

    def _splice_out(self, way: _Way) -> None:
        assert way.pipe is not None
        pipe_r = way.pipe[0]
        while way.in_pipe:
            try:
                way.in_pipe -= os.splice(pipe_r, way.dst_fd, way.in_pipe, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                return
        self._moved(way, way.chunk)

    def _moved(self, way: _Way, n: int) -> None:
        """A whole chunk was written: count it, push the deadline, adapt buffers/splice."""
        activity = self.activity
        if way.upstream:
            activity.bytes_up += n
        else:
            activity.bytes_down += n
        activity.bump()
        # Served as soon as it is readable, a bulk flow often finds less than a whole buffer
        # waiting, so "bulky" means at least half a buffer per read, and only reads under
        # TUNNEL_SMALL (interactive traffic) take a flow back from splice to buffers.
        if way.pipe is None:
            if n >= self.pool.size // 2:
                way.full_reads += 1
                if self.splice and way.full_reads >= SPLICE_AFTER:
                    way.pipe = PIPES.get()
                    way.full_reads = way.small = 0
            else:
                way.full_reads = 0
        else:
            way.small = way.small + 1 if n < TUNNEL_SMALL else 0
            if way.small >= SPLICE_AFTER:
                # an interactive flow again: it does not keep a pipe
                PIPES.put(way.pipe, empty=True)
                way.pipe = None

    def _end_of_stream(self, way: _Way) -> None:
        way.done = True
        other = self.down if way.upstream else self.up
        if other.done:
            return  # the session is over: the caller's close() sends the FIN, no shutdown() first
        try:
            way.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # that side shut its output: its -fin timeout now applies
        activity = self.activity
        if way.upstream:
            activity.client_closed = True
        else:
            activity.server_closed = True
        activity.recompute()

    def release(self) -> None:
        """Leave the epoll set (a private one goes back to its pool) and give back the buffers and
        pipes still held."""
        empty = True
        for fd, events in ((self.client_fd, self.client_events), (self.server_fd, self.server_events)):
            if events:
                try:
                    self._set(fd, events, 0)
                except (OSError, ValueError):  # ValueError: a stopping Forwarder closed its set
                    empty = False
        self.client_events = self.server_events = 0
        if self.forwarder is None:
            EPOLLS.put(self.epoll, empty)
        for way in (self.up, self.down):
            if way.buf is not None:
                self.pool.put(way.buf)
                way.buf = way.view = None
            if way.pipe is not None:
                PIPES.put(way.pipe, empty=not way.in_pipe)
                way.pipe = None


class Forwarder:
    """Every tunnel's sockets in one epoll set, served by one task per process (`run`).

    A tunnel's session task then sleeps from the first wait to the end of the session, and the
    readiness of many sessions costs one trio wait per batch instead of one per session and
    event; nor does a session need an epoll of its own (an fd: sessions would need three fds each
    where HAProxy's fd budget counts two). Each batch serves every ready socket once, then yields.
    """

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.tunnels: dict[int, _Tunnel] = {}  # registered fd -> its tunnel

    async def run(self) -> None:
        """Runs until cancelled (the process is stopping); the epoll set is closed then."""
        poll = self.epoll.poll
        epfd = self.epoll.fileno()
        tunnels = self.tunnels
        try:
            events = poll(0, FORWARDER_BATCH)
            while True:
                if not events:
                    await trio.lowlevel.wait_readable(epfd)
                    events = poll(0, FORWARDER_BATCH)
                    continue
                for fd, ev in events:
                    t = tunnels.get(fd)
                    if t is None or t.finished:
                        continue
                    try:
                        t.on_event(fd, ev)
                    except Exception as exc:
                        # a bug, not a peer: the session's task raises it (as if met there)
                        t.error = exc
                        t._finish()
                events = poll(0, FORWARDER_BATCH)
                if events:
                    # let the sessions woken (and everyone else) run before the next batch; a
                    # report that went stale meanwhile is harmless (a read or write that would
                    # block waits for the next one)
                    await trio.lowlevel.checkpoint()
        finally:
            self.epoll.close()


async def tunnel(client: socket.socket, server: socket.socket, activity: Activity, pool: BufferPool = POOL,
                 splice: bool = CAN_SPLICE, forwarder: Forwarder | None = None,
                 on_finish: Callable[[], None] | None = None) -> None:
    """Copy both ways between `client` and `server` until both reached end of stream.

    Each end of stream half-closes the other socket (its `-fin` timeout then applies), except the
    last one: the caller closes both sockets as soon as this returns, and that close sends the FIN.
    A failed read or write ends the tunnel with `activity.failed_side` set; nothing is raised for
    it. The tunnel runs inside `activity.scope`, which the caller must not have entered: its
    deadline is the inactivity timeout, and after a timeout that leaves one direction open the
    tunnel goes on in a new scope (`activity.scope` is replaced). `activity.cancel()`
    (shutdown-sessions) and outer cancellation (stops) end it. With a running `forwarder`, its
    task moves the bytes and this task sleeps meanwhile; without one, this task does it.
    `on_finish` is called as the tunnel finishes (in the forwarder's task, before this one wakes
    up), for what must not wait for the next scheduling round.
    """
    t = _Tunnel(client, server, activity, pool, splice, forwarder, on_finish)
    try:
        if not t.start():
            return
        fresh = True
        while True:
            with activity.scope:
                if forwarder is not None:
                    await t.park()
                else:
                    await t.serve(fresh)
            if not activity.scope.cancelled_caught or activity.killed or t.finished or not t.expire():
                return
            fresh = False
    finally:
        t.release()
