"""systemd's readiness protocol (Type=notify): a datagram to $NOTIFY_SOCKET, if there is one."""

from __future__ import annotations

import os
import socket


def sd_notify(message: str) -> bool:
    """Send e.g. "READY=1" or "MAINPID=123\\nREADY=1"; False when not run under systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
        return True
    except OSError:
        return False
