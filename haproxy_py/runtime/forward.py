"""Byte pumps between two non-blocking sockets, with buffers borrowed only while data moves.

A pump owns no memory while its connection is idle: it borrows a buffer from a shared pool after
the socket becomes readable and returns it once the bytes are written. Every chunk ends with a
scheduler checkpoint so one busy connection cannot starve the others.
"""

from __future__ import annotations

import socket

import attrs
import trio

CHUNK = 64 * 1024


@attrs.define
class BufferPool:
    """Reusable receive buffers; the pool keeps at most `keep` idle ones."""

    size: int = CHUNK
    keep: int = 256
    _free: list[bytearray] = attrs.field(factory=list)

    def get(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(self.size)

    def put(self, buf: bytearray) -> None:
        if len(self._free) < self.keep:
            self._free.append(buf)


POOL = BufferPool()


@attrs.define(eq=False)
class Activity:
    """The session's inactivity deadline, pushed forward by every chunk moved."""

    scope: trio.CancelScope
    idle: float  # seconds; inf = no timeout

    def bump(self) -> None:
        if self.idle != float("inf"):
            self.scope.deadline = trio.current_time() + self.idle


async def send_all(sock: socket.socket, data: memoryview) -> None:
    """Write every byte of `data`, waiting for writability as needed."""
    off = 0
    n = len(data)
    while off < n:
        try:
            off += sock.send(data[off:])
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def pump(src: socket.socket, dst: socket.socket, activity: Activity, pool: BufferPool = POOL) -> int:
    """Copy src to dst until src reaches end of stream; then half-close dst. Returns bytes copied.

    Connection errors (reset, broken pipe) propagate to the caller, which ends the session.
    """
    total = 0
    while True:
        await trio.lowlevel.wait_readable(src)
        buf = pool.get()
        try:
            try:
                n = src.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                break
            await send_all(dst, memoryview(buf)[:n])
        finally:
            pool.put(buf)
        total += n
        activity.bump()
        await trio.lowlevel.checkpoint()
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return total
