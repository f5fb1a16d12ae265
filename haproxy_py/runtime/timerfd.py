"""A timer as a file descriptor, for the loops that wait on an epoll set of their own (the check
engine, the HTTP keep-alive fast path). Raises OSError(ENOSYS) where timerfd is missing; callers
then fall back to a trio deadline."""

from __future__ import annotations

import ctypes
import errno
import math
import os


class TimerFd:
    """A CLOCK_MONOTONIC timerfd (Linux, through ctypes), for a private epoll set: the timer ends
    the wait on that set the way a ready socket does. A trio deadline would end it by cancelling
    the wait, and a cancel scope per wait plus a cancellation (an exception raised through the
    waiting frames, then caught) cost more than the wake-up itself.

    Once expired, the fd stays readable until it is armed again (`arm` clears the expiry)."""

    _CLOCK_MONOTONIC = 1
    _TFD_NONBLOCK = os.O_NONBLOCK
    _TFD_CLOEXEC = os.O_CLOEXEC

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            create, self._settime = libc.timerfd_create, libc.timerfd_settime
        except (OSError, AttributeError) as e:
            raise OSError(errno.ENOSYS, "no timerfd") from e
        self._settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        fd = create(self._CLOCK_MONOTONIC, self._TFD_NONBLOCK | self._TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd
        self._spec = (ctypes.c_long * 4)()  # struct itimerspec: no interval, then the expiry
        self._spec_ref = ctypes.byref(self._spec)

    def arm(self, seconds: float) -> None:
        """Expire in `seconds` (never for math.inf); clears a past expiry either way."""
        spec = self._spec
        if seconds == math.inf:
            spec[2] = spec[3] = 0  # disarmed
        else:
            spec[2], spec[3] = divmod(max(1, int(seconds * 1e9)), 1_000_000_000)  # 0 would disarm
        if self._settime(self.fd, 0, self._spec_ref, None) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def close(self) -> None:
        os.close(self.fd)
