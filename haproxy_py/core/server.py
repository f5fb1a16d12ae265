"""Runtime state of one server: the only object the data plane and the control plane share.

Balancers read it, the connect path counts on it, health checks and the stats socket change it.
It holds plain values so that a snapshot of it can be copied between worker processes.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define(eq=False)
class ServerCounters:
    """Cumulative per-server figures kept for stats and metrics (HAProxy's `stot`, `bin`, ...)."""

    sessions_total: int = 0
    # server connections: attempts to open one (retries included) and idle ones reused instead
    # (HAProxy's `connect` and `reuse`)
    connect_attempts: int = 0
    reuses: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connect_errors: int = 0
    response_errors: int = 0
    retries: int = 0
    redispatches: int = 0
    queue_max: int = 0
    sessions_max: int = 0
    check_failures: int = 0  # chkfail: failed checks that counted (health was above 0)
    down_transitions: int = 0  # chkdown: UP -> DOWN transitions caused by checks
    # HTTP: responses relayed (req_tot) and their classes (hrsp_1xx.. hrsp_5xx, 0: other)
    requests_total: int = 0
    http_responses: dict[int, int] = attrs.field(factory=lambda: {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 0: 0})
    # qtime/ctime/rtime/ttime averages and maxima (core.stats.Timers)
    timers: Any = attrs.field(factory=lambda: _timers())


@attrs.define(eq=False)
class ServerState:
    """One server of one backend, as it is now.

    `weight` is the user weight (0..256) currently in force: the configured one until the stats
    socket changes it. `up` is the operational state from health checks (always True for a server
    without `check`); `maint` and `drain` are administrative states. A server takes new traffic only
    when `usable`.
    """

    name: str
    puid: int
    weight: int = 1
    initial_weight: int = 1
    backup: bool = False
    maxconn: int = 0
    maxqueue: int = 0
    maint: bool = False
    drain: bool = False
    up: bool = True
    served: int = 0
    queued: int = 0
    # `disable health` on the stats socket: checks paused, the server counts as UP
    check_disabled: bool = False
    # the worker processes' served/queued, as last reported (see core.workersync)
    remote_served: int = 0
    remote_queued: int = 0
    remote_idle: int = 0
    # open connections to this server kept for reuse, most recently parked last (HTTP keep-alive,
    # runtime/http_session.py); their number is the stats' srv_icur
    idle_conns: list[Any] = attrs.field(factory=list, repr=False)
    counters: ServerCounters = attrs.field(factory=ServerCounters)
    # Health checks (written by runtime/checks.py only; meanings in core/health.py). `checked` is
    # set for servers with `check`; the others keep the defaults and show "no check" in stats.
    checked: bool = False
    check_rise: int = 2
    check_fall: int = 3
    check_health: int = 0  # HAProxy's counter, 0 .. rise+fall-1; UP by checks when >= rise
    check_status: str = "INI"  # a key of core.health.STATUSES: L4OK, L4CON, L7OK, L7STS, ...
    check_code: int | None = None  # HTTP status of the last check, when there was one
    check_info: str = ""  # the last check's description ("Connection refused", reason phrase...)
    check_duration: int | None = None  # ms the last check took; None before the first one
    check_running: bool = False  # a check is in flight now (stats prefix its status with "* ")
    last_change: float = 0.0  # wall-clock time of the last UP/DOWN change (0: never changed)
    down_time: float = 0.0  # seconds spent DOWN before the current period (add now-last_change while DOWN)

    def leave_maintenance(self) -> None:
        """Out of maintenance (`enable server`): like HAProxy, a checked server restarts at
        health = rise (UP, one failed check from DOWN) and its checks resume; call
        `BackendRuntime.server_changed()` afterwards."""
        self.maint = False
        if self.checked:
            self.check_health = self.check_rise
        self.up = True

    @property
    def eweight(self) -> int:
        """The weight balancers use: 0 while draining."""
        return 0 if self.drain else self.weight

    @property
    def usable(self) -> bool:
        """May receive new connections from the balancer."""
        return self.up and not self.maint and self.eweight > 0

    @property
    def full(self) -> bool:
        """All `maxconn` slots are taken (never true without maxconn)."""
        return self.maxconn > 0 and self.served >= self.maxconn

    @property
    def load(self) -> int:
        """Connections this server is answerable for: served plus queued (what leastconn counts)."""
        return self.served + self.queued


def _timers() -> Any:
    from haproxy_py.core.stats import Timers  # (stats renders these counters: it imports this module)

    return Timers()
