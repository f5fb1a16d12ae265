"""Byte pumps between two non-blocking sockets, and the inactivity timer they share.

A pump owns no memory while its connection is idle: it borrows a buffer from a shared pool when
the socket becomes readable and gives it back once the bytes are written. A flow that keeps
filling whole buffers is moved to `os.splice` through a pipe (the kernel copies, Python only
schedules), as HAProxy's splice-auto does. Every chunk ends with a scheduler checkpoint so one
busy connection cannot starve the others.
"""

from __future__ import annotations

import fcntl
import math
import os
import socket

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


POOL = BufferPool()
PIPES = PipePool()


@attrs.define(eq=False)
class Activity:
    """A session's inactivity deadline, pushed forward by every chunk moved in either direction.

    HAProxy refreshes both sides' timers on any transfer (unless `option independent-streams`),
    so the session ends after `idle` seconds without a byte moving. Once a side has shut its
    output, the `*-fin` timeout of that side replaces its normal one.
    """

    scope: trio.CancelScope
    client: float = math.inf
    server: float = math.inf
    client_fin: float | None = None
    server_fin: float | None = None
    tunnel: float | None = None
    client_closed: bool = False
    server_closed: bool = False
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client
    idle: float = math.inf
    idle_side: str = "c"  # whose timeout `idle` is: "c" client, "s" server
    failed_side: str = ""  # "C" or "S" once a read on that side failed

    def __attrs_post_init__(self) -> None:
        self.recompute()

    def recompute(self) -> None:
        if self.tunnel is not None and not (self.client_closed or self.server_closed):
            self.idle = self.tunnel
            self.idle_side = "c"
            return
        c = self.client_fin if (self.client_closed and self.client_fin is not None) else self.client
        s = self.server_fin if (self.server_closed and self.server_fin is not None) else self.server
        if self.tunnel is not None:
            c, s = min(c, self.tunnel), min(s, self.tunnel)
        self.idle = min(c, s)
        self.idle_side = "c" if c <= s else "s"
        self.bump()

    def termination(self) -> str:
        """HAProxy's 2-char termination state of a finished tcp session (`--`, `cD`, `SD`, ...)."""
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
        if self.idle != math.inf:
            deadline = trio.current_time() + self.idle
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
