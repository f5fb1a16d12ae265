"""Worker processes (`nbthread N`): N-1 forks that share the listening sockets with the main one.

Python needs processes, not threads, to use several cores. Workers are forked after the sockets
are bound and privileges dropped, before trio starts in any of them; each gets one end of a
SEQPACKET socketpair to the main process. A worker dies with the main process (PDEATHSIG), so no
orphan ever keeps serving an old configuration.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from collections.abc import Callable

import attrs

_PR_SET_PDEATHSIG = 1


@attrs.define(eq=False)
class Worker:
    """The main process's handle on one worker."""

    index: int
    pid: int
    channel: socket.socket
    exited: bool = False


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(0)


def fork_workers(count: int, run: Callable[[int, socket.socket], int]) -> list[Worker]:
    """Start workers 1..count-1; each runs `run(index, channel)` and exits with its result.

    Returns the handles in the main process (worker 0 is the main process itself).
    """
    workers: list[Worker] = []
    parent = os.getpid()
    for index in range(1, count):
        main_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            main_end.close()
            for w in workers:
                w.channel.close()
            _die_with_parent(parent)
            code = 1
            try:
                code = run(index, worker_end)
            finally:
                os._exit(code)
        worker_end.close()
        main_end.setblocking(False)
        workers.append(Worker(index=index, pid=pid, channel=main_end))
    return workers


def signal_workers(workers: list[Worker], signum: int) -> None:
    for w in workers:
        if not w.exited:
            try:
                os.kill(w.pid, signum)
            except ProcessLookupError:
                w.exited = True


def reap(workers: list[Worker]) -> bool:
    """Collect exited workers without blocking; True when all have exited."""
    for w in workers:
        if w.exited:
            continue
        try:
            pid, _status = os.waitpid(w.pid, os.WNOHANG)
        except ChildProcessError:
            pid = w.pid
        if pid == w.pid:
            w.exited = True
    return all(w.exited for w in workers)
