"""Handing listening sockets from an old process to its successor (`-sf`/`-st`, `-x`).

The old process keeps serving a small unix socket; the new one connects, sends `_getsocks`, and
receives every listening socket with SCM_RIGHTS. Both processes then hold the *same* kernel
socket, so connections waiting in its accept queue are never lost when the old one stops
accepting. Without a handover (first start, or an old process that cannot answer) the new
process binds fresh sockets with SO_REUSEPORT.

The automatic channel is an abstract-namespace socket named after the old pid; only a peer with
the same uid or root may take the sockets.
"""

from __future__ import annotations

import json
import os
import socket
import struct

MAX_FDS = 4096
REQUEST = b"_getsocks\n"


def channel_name(pid: int) -> bytes:
    """The abstract socket address a process exports its listeners on."""
    return f"\0haproxy-py-listeners-{pid}".encode()


def _peer_allowed(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == 0 or uid == os.getuid()


def send_listeners(conn: socket.socket, listeners: list[tuple[str, socket.socket]]) -> None:
    """Answer one `_getsocks` request on a connected unix socket (blocking)."""
    if not _peer_allowed(conn):
        conn.sendall(b"Permission denied\n")
        return
    keys = [key for key, _ in listeners]
    header = json.dumps({"keys": keys}).encode()
    fds = [s.fileno() for _, s in listeners]
    conn.sendall(struct.pack("!I", len(header)) + header)
    # fds in batches: SCM_RIGHTS is limited per message
    for i in range(0, len(fds), 250):
        batch = fds[i : i + 250]
        socket.send_fds(conn, [struct.pack("!I", len(batch))], batch)


def fetch_listeners(address: bytes | str, timeout: float = 3.0) -> dict[str, socket.socket]:
    """Take over the listeners of the process serving `address`. Raises OSError on any failure."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(REQUEST)
        head = _recv_exact(s, 4)
        (n,) = struct.unpack("!I", head)
        if n > 1 << 20:
            raise OSError("invalid listener header")
        keys = json.loads(_recv_exact(s, n))["keys"]
        fds: list[int] = []
        while len(fds) < len(keys):
            msg, got, _flags, _addr = socket.recv_fds(s, 4, min(250, len(keys) - len(fds)))
            if not got and not msg:
                raise OSError("listener handover ended early")
            fds += got
    result: dict[str, socket.socket] = {}
    for key, fd in zip(keys, fds):
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        result[key] = sock
    return result


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed during listener handover")
        data += chunk
    return data


def fetch_from_old(pids: tuple[int, ...], explicit: str | None) -> dict[str, socket.socket]:
    """Listeners of the previous generation: from `-x PATH`, else from the first old pid that answers."""
    if explicit:
        return fetch_listeners(explicit)
    for pid in pids:
        try:
            return fetch_listeners(channel_name(pid))
        except (OSError, ValueError, KeyError):
            continue
    return {}


def make_export_socket() -> socket.socket | None:
    """This process's handover socket (None if it cannot be created, e.g. the name is taken)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(channel_name(os.getpid()))
        s.listen(8)
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


