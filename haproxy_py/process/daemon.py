"""Going to the background, before trio.run and never after (forking a running trio is unsafe).

The launcher waits on a pipe until the daemon reports that it is ready (pidfile written, sockets
listening) or failed, so that its exit status tells an init script the truth.
"""

from __future__ import annotations

import os
import sys


class Daemon:
    """Double fork with a readiness pipe. `detach()` returns in the daemon only."""

    def __init__(self) -> None:
        self._ready_w: int | None = None

    def detach(self) -> None:
        """Fork twice; the original process waits for readiness and exits with its status."""
        r, w = os.pipe()
        pid = os.fork()
        if pid > 0:
            os.close(w)
            status = _wait_ready(r)
            os.waitpid(pid, 0)
            os._exit(status)
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.umask(0o022)
        os.chdir("/")
        self._ready_w = w

    def redirect_stdio(self) -> None:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        if devnull > 2:
            os.close(devnull)

    def forget(self) -> None:
        """In a forked worker: drop the readiness pipe without reporting (the main process does)."""
        if self._ready_w is not None:
            os.close(self._ready_w)
            self._ready_w = None

    def report(self, status: int) -> None:
        """Tell the launcher how start-up went (0 = ready); only the first report counts."""
        if self._ready_w is None:
            return
        try:
            os.write(self._ready_w, bytes([status & 0xFF]))
        finally:
            os.close(self._ready_w)
            self._ready_w = None


def _wait_ready(fd: int) -> int:
    data = b""
    try:
        while not data:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data = chunk
    finally:
        os.close(fd)
    if not data:
        sys.stderr.write("[ALERT]    : the daemon exited before it was ready.\n")
        return 1
    return data[0]
