"""Health checks: one task per checked server (not implemented yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haproxy_py.runtime.supervisor import Runtime


async def run_checks(rt: Runtime) -> None:
    """Run every server's checks until cancelled; returns at once when nothing is checked."""
    return
