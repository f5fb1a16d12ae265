"""When trio is about to sleep, the fast path sleeps in its place and serves its own sockets.

Why: at a light load every keep-alive request wakes the process twice from sleep (the request,
then the server's answer). Each time trio takes the wake-up, re-arms the one-shot registration of
the fast path's epoll set, and switches to the fast path's task: about 20 µs of interpreter work
with cold caches, twice per request, on the request's critical path. An instrument hook
(`before_io_wait`) runs exactly when trio has nothing to run and is about to block; sleeping there
on an epoll set of our own, which holds trio's epoll set and the fast path's, lets the fast path's
events be served straight from the wake-up, while anything else (a new connection, a signal, a
thread's callback, a task's deadline) returns to trio before trio would have seen it.

What makes it safe:
* It only sleeps while trio has nothing to run (its run queue is empty), no task waits for trio to
  go idle (`wait_all_tasks_blocked`) and the clock does not autojump: the timeout trio computed is
  then exactly how long trio itself would have slept, and it is recomputed after each batch.
* The fast path's set is switched off in trio's set meanwhile, so trio's set being readable means
  something of trio's own is ready. Its registration is restored on the way out.
* Whenever it returns with trio's set not readable (the deadline came, or serving woke a task),
  it wakes trio's own wait up, which trio would otherwise begin with the stale timeout.
* An exception in here goes to trio, which logs it and removes the instrument: the fast path's
  task then serves as it did before this existed.

This reads a few of trio's private attributes (the runner, its epoll set, run queue and deadlines);
`install` checks each and returns None, leaving the plain task loop, if any is missing.
"""

from __future__ import annotations

import math
import select
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from haproxy_py.runtime.http_fastpath import FastPath

_MAX_TIMEOUT = 86400.0  # trio's own cap on one wait


class IdleWait(trio.abc.Instrument):
    """Installed by the fast path's loop for as long as it runs (see the module docstring)."""

    def __init__(self, fast: FastPath, runner: Any) -> None:
        self._fast = fast
        self._runner = runner
        io = runner.io_manager
        self._trio_ep = io._epoll
        self._force_wakeup = io.force_wakeup
        self._trio_fd = self._trio_ep.fileno()
        self._fast_fd = fast.epoll_fd
        self._ep = select.epoll()
        self._ep.register(self._trio_fd, select.EPOLLIN)
        self._ep.register(self._fast_fd, select.EPOLLIN)
        self.sleeps = 0  # times trio's sleep was taken over
        self.served = 0  # batches of the fast path's events served from here

    def close(self) -> None:
        self._ep.close()

    def _timeout(self) -> float:
        """How long trio would sleep now; 0: it must not sleep (or not in our place)."""
        runner = self._runner
        if runner.runq or runner.waiting_for_idle or runner.clock_autojump_threshold != math.inf:
            return 0.0
        deadline = runner.deadlines.next_deadline()
        return min(max(0.0, runner.clock.deadline_to_sleep_time(deadline)), _MAX_TIMEOUT)

    def before_io_wait(self, timeout: float) -> None:
        fast = self._fast
        if timeout <= 0 or not fast.waiting or self._timeout() <= 0:
            return
        trio_ep, fast_fd = self._trio_ep, self._fast_fd
        try:
            trio_ep.modify(fast_fd, select.EPOLLONESHOT)  # off in trio's set (trio's flags: EPOLLIN)
        except OSError:
            return
        self.sleeps += 1
        wake_trio = True
        try:
            poll, trio_fd = self._ep.poll, self._trio_fd
            while True:
                fast.set_timer()
                ready = poll(timeout, 2)
                if not ready:
                    return  # trio's deadline: trio's own wait must not start over
                theirs = False
                for fd, _ in ready:
                    if fd == trio_fd:
                        theirs = True
                    else:
                        fast.take_events()
                        self.served += 1
                if theirs:
                    wake_trio = False  # trio's set is readable: its wait returns at once
                    return
                timeout = self._timeout()
                if timeout <= 0:
                    return  # a task to run (serving woke it), or a deadline now due
        # An exception goes on to trio, which logs it and removes the instrument: the fast path's
        # task then serves as it would without it.
        finally:
            try:
                trio_ep.modify(fast_fd, select.EPOLLIN | select.EPOLLONESHOT)
            except OSError:
                pass  # (trio's set has lost it too: its own wait reports the error to the task)
            if wake_trio:
                self._force_wakeup()


def install(fast: FastPath) -> IdleWait | None:
    """Take over trio's sleeps for `fast`, if this trio is the one this was written against."""
    try:
        runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner  # noqa: SLF001
        io = runner.io_manager
        io._epoll.fileno()  # noqa: SLF001
        io.force_wakeup  # noqa: B018
        runner.runq, runner.waiting_for_idle, runner.clock_autojump_threshold  # noqa: B018
        runner.deadlines.next_deadline()
        runner.clock.deadline_to_sleep_time(math.inf)
    except (AttributeError, TypeError):
        return None
    idle = IdleWait(fast, runner)
    trio.lowlevel.add_instrument(idle)
    return idle


def uninstall(idle: IdleWait) -> None:
    try:
        trio.lowlevel.remove_instrument(idle)
    except KeyError:
        pass  # trio removed it already (it raised)
    idle.close()
