"""One task per client connection in mode http (not implemented yet: see supervisor's gate)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haproxy_py.runtime.session import FrontendRuntime
    from haproxy_py.runtime.supervisor import Runtime


async def http_session(conn: socket.socket, frontend: FrontendRuntime, rt: Runtime) -> None:
    raise NotImplementedError("mode http")
