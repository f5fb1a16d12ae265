"""Counters of frontends and backends, and `snapshot()`: every stats figure as plain rows.

The data plane bumps plain integers (`ProxyCounters` here, `core.server.ServerCounters` per server);
`snapshot(rt)` reads a running configuration once and returns HAProxy 2.6's stats objects as plain
dictionaries keyed by CSV field name (`FIELDS`, in HAProxy's order, with HAProxy's value formats),
which the CSV / HTML / Prometheus / stats-socket renderers only format. Nothing here imports trio.

Value conventions in a row: an int or str is printed as is; `None` means "not applicable" and is
printed as an empty CSV field (promex prints NaN where it exports such a field). Keys starting with
`_` are not CSV fields: they carry what the other renderers need (promex state names, ...).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from haproxy_py.config.model import Proxy, Server
    from haproxy_py.core.server import ServerState

START_TIME = time.time()  # process start, for uptime and "since last change" of untouched objects


# ---------------------------------------------------------------------------------------------------
# counters the data plane updates
# ---------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class EventRate:
    """Events over the last second, HAProxy's freq_ctr: the current second's count plus the previous
    second's, weighted by how much of it is still inside the sliding one-second window."""

    second: int = 0
    current: int = 0
    previous: int = 0
    max_rate: int = 0

    def _roll(self, now: float) -> None:
        sec = int(now)
        if sec != self.second:
            self.previous = self.current if sec == self.second + 1 else 0
            self.current = 0
            self.second = sec

    def tick(self, now: float | None = None) -> None:
        """Count one event at `now` (time.time(), read here when not given)."""
        if now is None:
            now = time.time()
        sec = int(now)
        if sec != self.second:
            self._roll(now)
        current = self.current = self.current + 1
        # the rate only grows with an event, so the maximum is checked here
        previous = self.previous
        rate = current + int(previous * (1.0 - (now - sec)) + 0.999999) if previous else current
        if rate > self.max_rate:
            self.max_rate = rate

    def untick(self) -> None:
        """Take back the last event counted (in the current second; the maximum stays)."""
        if self.current:
            self.current -= 1

    def rate(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self._roll(now)
        frac = 1.0 - (now - self.second)
        return self.current + int(self.previous * frac + 0.999999) if self.previous else self.current


@attrs.define(eq=False)
class ProxyCounters:
    """One frontend's or backend's figures. `current` is concurrent sessions (scur).

    The HTTP session counts requests (`request_seen`), responses (`count_status`) and, on backends,
    the timers of each successful connection (`record_timers`); the stats socket and checks never
    write here.
    """

    current: int = 0
    max_current: int = 0
    sessions_total: int = 0
    bytes_in: int = 0  # from clients (frontend) / sent to servers (backend)
    bytes_out: int = 0  # to clients (frontend) / received from servers (backend)
    denied_requests: int = 0
    denied_responses: int = 0
    request_errors: int = 0
    connect_errors: int = 0
    response_errors: int = 0
    retries: int = 0
    redispatches: int = 0
    requests_total: int = 0
    http_responses: dict[int, int] = attrs.field(factory=lambda: {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 0: 0})
    client_aborts: int = 0
    server_aborts: int = 0
    last_session: float = 0.0  # wall time of the last new session, 0 = never
    intercepted: int = 0  # requests answered by the proxy itself (stats, promex, redirect, return)
    connections_total: int = 0  # frontend: accepted connections (conn_tot); backend: connect attempts
    denied_connections: int = 0
    denied_sessions: int = 0
    failed_rewrites: int = 0
    internal_errors: int = 0
    loadbalanced: int = 0
    queue_max: int = 0
    # concurrent sessions of the worker processes, as last reported (see core.workersync)
    remote_current: int = 0
    session_rate: EventRate = attrs.field(factory=EventRate)
    request_rate: EventRate = attrs.field(factory=EventRate)
    connection_rate: EventRate = attrs.field(factory=EventRate)
    timers: Timers = attrs.field(factory=lambda: Timers())

    def session_started(self, now: float | None = None) -> None:
        """One more session; `now` is time.time() if the caller has read it already."""
        self.current += 1
        self.sessions_total += 1
        if self.current > self.max_current:
            self.max_current = self.current
        self.last_session = now = time.time() if now is None else now
        self.session_rate.tick(now)

    def session_ended(self) -> None:
        self.current -= 1

    def connection_accepted(self) -> None:
        self.connections_total += 1
        self.connection_rate.tick()

    def request_seen(self, now: float | None = None) -> None:
        """One HTTP request parsed (req_tot, req_rate)."""
        self.requests_total += 1
        self.request_rate.tick(now)

    def request_taken_back(self) -> None:
        """Undo a `request_seen`: the request goes to code that counts it as its own."""
        self.requests_total -= 1
        self.request_rate.untick()

    def session_taken_back(self) -> None:
        """Undo a `session_started` whose session has ended (`session_ended`) uncounted."""
        self.sessions_total -= 1
        self.session_rate.untick()

    def count_status(self, status: int) -> None:
        """Count one HTTP response by class (1xx..5xx; anything else as 'other')."""
        cls = status // 100 if 100 <= status < 600 else 0
        self.http_responses[cls] += 1

    def record_timers(self, queue_ms: int, connect_ms: int, response_ms: int, total_ms: int) -> None:
        self.timers.record(queue_ms, connect_ms, response_ms, total_ms)


@attrs.define(eq=False)
class Timers:
    """Running averages over the last 1024 successful connections (HAProxy's swrate) and maxima, ms."""

    avg: list[float] = attrs.field(factory=lambda: [0.0, 0.0, 0.0, 0.0])  # queue, connect, response, total
    max: list[int] = attrs.field(factory=lambda: [0, 0, 0, 0])
    samples: int = 0

    def record(self, queue_ms: int, connect_ms: int, response_ms: int, total_ms: int) -> None:
        """One transaction's timers; a negative one (that phase did not happen) is left out."""
        samples = self.samples = self.samples + 1
        n = samples if samples < 1024 else 1024
        avg, mx = self.avg, self.max
        for i, v in ((0, queue_ms), (1, connect_ms), (2, response_ms), (3, total_ms)):
            if v < 0:
                continue
            if v > mx[i]:
                mx[i] = v
            avg[i] += (v - avg[i]) / n


def count_server_response(st: ServerState, status: int) -> None:
    """One HTTP response relayed from server `st` (its req_tot and hrsp_<class>, kept with its
    other counters so that worker processes report them like the rest)."""
    c = st.counters
    c.requests_total += 1
    c.http_responses[status // 100 if 100 <= status < 600 else 0] += 1


# ---------------------------------------------------------------------------------------------------
# the CSV field list (HAProxy 2.6, `show stat` / `;csv`)
# ---------------------------------------------------------------------------------------------------

FIELDS: tuple[str, ...] = tuple(
    "pxname svname qcur qmax scur smax slim stot bin bout dreq dresp ereq econ eresp wretr wredis status weight act "
    "bck chkfail chkdown lastchg downtime qlimit pid iid sid throttle lbtot tracked type rate rate_lim rate_max "
    "check_status check_code check_duration hrsp_1xx hrsp_2xx hrsp_3xx hrsp_4xx hrsp_5xx hrsp_other hanafail "
    "req_rate req_rate_max req_tot cli_abrt srv_abrt comp_in comp_out comp_byp comp_rsp lastsess last_chk last_agt "
    "qtime ctime rtime ttime agent_status agent_code agent_duration check_desc agent_desc check_rise check_fall "
    "check_health agent_rise agent_fall agent_health addr cookie mode algo conn_rate conn_rate_max conn_tot "
    "intercepted dcon dses wrew connect reuse cache_lookups cache_hits srv_icur src_ilim qtime_max ctime_max "
    "rtime_max ttime_max eint idle_conn_cur safe_conn_cur used_conn_cur need_conn_est uweight agg_server_status "
    "agg_server_check_status agg_check_status - ssl_sess ssl_reused_sess ssl_failed_handshake h2_headers_rcvd "
    "h2_data_rcvd h2_settings_rcvd h2_rst_stream_rcvd h2_goaway_rcvd h2_detected_conn_protocol_errors "
    "h2_detected_strm_protocol_errors h2_rst_stream_resp h2_goaway_resp h2_open_connections "
    "h2_backend_open_streams h2_total_connections h2_backend_total_streams h1_open_connections h1_open_streams "
    "h1_total_connections h1_total_streams h1_bytes_in h1_bytes_out h1_spliced_bytes_in h1_spliced_bytes_out".split()
)
_SSL = FIELDS[FIELDS.index("ssl_sess"): FIELDS.index("h2_headers_rcvd")]
_MUX = FIELDS[FIELDS.index("h2_headers_rcvd"):]

TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER, TYPE_LISTENER = 0, 1, 2, 3

# Check status codes (reference 3.6): name -> (id, description, result)
CHECK_STATUSES: dict[str, tuple[int, str]] = {
    "UNK": (0, "Unknown"),
    "INI": (1, "Initializing"),
    "HANA": (4, "Health analyze"),
    "SOCKERR": (5, "Socket error"),
    "L4OK": (6, "Layer4 check passed"),
    "L4TOUT": (7, "Layer4 timeout"),
    "L4CON": (8, "Layer4 connection problem"),
    "L6OK": (9, "Layer6 check passed"),
    "L6TOUT": (10, "Layer6 timeout"),
    "L6RSP": (11, "Layer6 invalid response"),
    "L7TOUT": (12, "Layer7 timeout"),
    "L7RSP": (13, "Layer7 invalid response"),
    "L7OK": (15, "Layer7 check passed"),
    "L7OKC": (16, "Layer7 check conditionally passed"),
    "L7STS": (17, "Layer7 wrong status"),
    "PROCERR": (18, "External check error"),
    "PROCTOUT": (19, "External check timeout"),
    "PROCOK": (20, "External check passed"),
}
CHECK_PASSED = frozenset({"L4OK", "L6OK", "L7OK", "PROCOK"})
CHECK_CONDITIONAL = frozenset({"L7OKC"})
# promex check_status state label values, in HAProxy's order (UNK/INI are never exported)
PROMEX_CHECK_STATES: tuple[str, ...] = ("HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
                                        "L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK")
PROMEX_SERVER_STATES: tuple[str, ...] = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")


# ---------------------------------------------------------------------------------------------------
# state history: last change, downtime and DOWN transitions, where the state owner keeps none
# ---------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class StateHistory:
    """When an object last changed state and how long it has been down in total (HAProxy's
    `last_change`, `down_time`, `down_trans`). Fed by `observe()` with the current state."""

    last_change: float = START_TIME
    down_total: float = 0.0
    down_transitions: int = 0
    state: str | None = None  # "up" | "down" | "maint" | "drain" ...; None before the first look

    def observe(self, state: str, now: float, *, counts_as_down: bool) -> None:
        if self.state is None:
            self.state = state
            return
        if state == self.state:
            return
        if self._down(self.state):
            self.down_total += now - self.last_change
        elif counts_as_down:
            self.down_transitions += 1
        self.state = state
        self.last_change = now

    @staticmethod
    def _down(state: str) -> bool:
        return state in ("down", "maint")

    def downtime(self, now: float) -> int:
        extra = now - self.last_change if self.state is not None and self._down(self.state) else 0.0
        return int(self.down_total + extra)


_histories: weakref.WeakKeyDictionary[object, StateHistory] = weakref.WeakKeyDictionary()


def history_of(obj: object) -> StateHistory:
    """The state history kept for a server state or backend counters object."""
    h = _histories.get(obj)
    if h is None:
        h = _histories[obj] = StateHistory()
    return h


# ---------------------------------------------------------------------------------------------------
# reading a server's health (fields owned by the health-check code, read defensively)
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class ServerHealth:
    """What stats need from a server's checks, normalised.

    `enabled`: the server has `check` and `disable health` was not used (CHK_ST_ENABLED).
    `paused`: checks are suspended because of maintenance. `health` is HAProxy's counter
    (0..rise+fall-1); `status` a code of `CHECK_STATUSES`.
    """

    configured: bool = False
    enabled: bool = False
    paused: bool = False
    rise: int = 2
    fall: int = 3
    health: int = 0
    status: str = "INI"
    code: int | None = None
    duration_ms: int | None = None
    info: str = ""
    failures: int = 0
    down_transitions: int | None = None
    last_change: float | None = None
    downtime: float | None = None
    stopping: bool = False  # NOLB: a check passed conditionally (or `set server health stopping`)
    running: bool = False  # a check is in progress right now


def set_health_disabled(st: ServerState, disabled: bool) -> None:
    """Record `disable health` / `enable health` for a server (the check loop honours it)."""
    st.check_disabled = disabled


def health_disabled(st: ServerState) -> bool:
    """True while `disable health` is in force on this server: it is then unchecked and counts as UP."""
    return st.check_disabled


def server_health(st: ServerState, cfg: Server | None) -> ServerHealth:
    """Normalise the check state of `st` (the `check_*` fields runtime/checks.py keeps on it)."""
    configured = bool(getattr(st, "checked", False) or (cfg is not None and cfg.check))
    rise = getattr(st, "check_rise", None) or (cfg.rise if cfg is not None else 2)
    fall = getattr(st, "check_fall", None) or (cfg.fall if cfg is not None else 3)
    up = bool(getattr(st, "up", True))
    health = getattr(st, "check_health", None)
    if health is None or not getattr(st, "checked", False):
        health = (rise + fall - 1 if up else 0) if configured else rise
    status = getattr(st, "check_status", None) or "INI"
    counters = getattr(st, "counters", None)
    last_change = getattr(st, "last_change", None) or None
    return ServerHealth(
        configured=configured,
        enabled=configured and not health_disabled(st),
        paused=bool(getattr(st, "maint", False)),
        rise=rise,
        fall=fall,
        health=int(health),
        status=status,
        code=getattr(st, "check_code", None),
        duration_ms=getattr(st, "check_duration", None),
        info=str(getattr(st, "check_info", "") or ""),
        failures=int(getattr(counters, "check_failures", 0) or 0),
        down_transitions=getattr(counters, "down_transitions", None),
        last_change=last_change,
        downtime=getattr(st, "down_time", None),
        stopping=bool(getattr(st, "stopping", False)),
        running=bool(getattr(st, "check_running", False)),
    )


# ---------------------------------------------------------------------------------------------------
# the snapshot
# ---------------------------------------------------------------------------------------------------

Row = dict[str, Any]


@attrs.frozen
class ProxyStats:
    """One proxy's rows: its FRONTEND row (frontend/listen), server rows, BACKEND row (backend/listen)."""

    name: str
    id: int
    mode: str
    frontend: Row | None
    servers: tuple[Row, ...]
    backend: Row | None

    def rows(self) -> Iterator[Row]:
        if self.frontend is not None:
            yield self.frontend
        yield from self.servers
        if self.backend is not None:
            yield self.backend


@attrs.frozen
class Snapshot:
    """Everything the renderers show, read at one instant (`now`, wall-clock seconds)."""

    now: float
    info: dict[str, Any]
    proxies: tuple[ProxyStats, ...]

    def rows(self) -> Iterator[Row]:
        for px in self.proxies:
            yield from px.rows()

    def proxy(self, name: str) -> ProxyStats | None:
        for px in self.proxies:
            if px.name == name:
                return px
        return None


def _blank(pxname: str, svname: str, kind: int, iid: int, sid: int, mode: str) -> Row:
    row: Row = dict.fromkeys(FIELDS)
    row.update(pxname=pxname, svname=svname, pid=1, iid=iid, sid=sid, type=kind, mode=mode)
    row["-"] = "-"
    for f in _SSL:
        row[f] = 0
    return row


def _ms(v: float) -> int:
    return int(v + 0.5)


def _maxconn_of(rt: Any) -> int:
    m = getattr(rt, "maxconn", None)
    if m:
        return int(m)
    g = rt.config.global_
    if g.maxconn:
        return g.maxconn
    from haproxy_py.process.privileges import default_maxconn

    return default_maxconn()


def _frontend_row(px: Proxy, fe: Any, global_maxconn: int, now: float, stopping: bool) -> Row:
    c: ProxyCounters = fe.counters
    http = px.mode == "http"
    slim = px.maxconn or global_maxconn
    row = _blank(px.name, "FRONTEND", TYPE_FRONTEND, px.id, 0, px.mode)
    current = c.current + c.remote_current
    status = "STOP" if (stopping or px.disabled) else ("FULL" if slim and current >= slim else "OPEN")
    row.update(
        scur=current, smax=c.max_current, slim=slim, stot=c.sessions_total, bin=c.bytes_in, bout=c.bytes_out,
        dreq=c.denied_requests, dresp=c.denied_responses, ereq=c.request_errors, status=status,
        rate=c.session_rate.rate(now), rate_lim=0, rate_max=c.session_rate.max_rate,
        req_rate=c.request_rate.rate(now) if http else 0, req_rate_max=c.request_rate.max_rate if http else 0,
        req_tot=c.requests_total if http else 0,
        comp_in=0, comp_out=0, comp_byp=0, comp_rsp=0,
        conn_rate=c.connection_rate.rate(now), conn_rate_max=c.connection_rate.max_rate,
        conn_tot=max(c.connections_total, c.sessions_total),
        dcon=c.denied_connections, dses=c.denied_sessions, wrew=c.failed_rewrites, eint=c.internal_errors,
    )
    if http:
        _hrsp(row, c.http_responses)
        row.update(intercepted=c.intercepted, cache_lookups=0, cache_hits=0)
    for f in _MUX:
        row[f] = 0
    row["_http"] = http
    row["_up"] = status != "STOP"
    return row


def _hrsp(row: Row, resp: dict[int, int]) -> None:
    row.update(hrsp_1xx=resp.get(1, 0), hrsp_2xx=resp.get(2, 0), hrsp_3xx=resp.get(3, 0), hrsp_4xx=resp.get(4, 0),
               hrsp_5xx=resp.get(5, 0), hrsp_other=resp.get(0, 0))


def server_state_name(st: ServerState, h: ServerHealth) -> str:
    """The CSV `status` of a server, as HAProxy 2.6 words it (stats.c srv_hlt_st)."""
    if getattr(st, "maint", False):
        return "MAINT"
    full = h.rise + h.fall - 1
    up = bool(getattr(st, "up", True))
    if up and not h.stopping:
        going_down = h.enabled and h.health < full
        state = f"UP {h.health - h.rise + 1}/{h.fall}" if going_down else "UP"
        if getattr(st, "drain", False):
            return f"DRAIN {h.health - h.rise + 1}/{h.fall}" if going_down else "DRAIN"
        if state == "UP" and not h.enabled:
            return "no check"
        return state
    if up and h.stopping:
        if not h.enabled or h.health == full:
            return "NOLB"
        return f"NOLB {h.health - h.rise + 1}/{h.fall}"
    if h.enabled and h.health == 0:
        return "DOWN"
    if h.enabled:
        return f"DOWN {h.health}/{h.rise}"
    return "DOWN"


def promex_server_state(st: ServerState, h: ServerHealth) -> str:
    """The `state` label of haproxy_server_status (reference 5.2)."""
    if getattr(st, "maint", False):
        return "MAINT"
    if not getattr(st, "up", True):
        return "DOWN"
    if h.stopping:
        return "NOLB"
    if getattr(st, "drain", False):
        return "DRAIN"
    return "UP"


def _server_row(px: Proxy, be: Any, st: ServerState, now: float) -> Row:
    cfg = be.configs.get(id(st)) if hasattr(be, "configs") else None
    h = server_health(st, cfg)
    c = st.counters
    http = px.mode == "http"
    row = _blank(px.name, st.name, TYPE_SERVER, px.id, st.puid, px.mode)
    maint = bool(getattr(st, "maint", False))
    up = bool(getattr(st, "up", True))
    hist = history_of(st)
    hist.observe("maint" if maint else ("up" if up else "down"), now, counts_as_down=h.configured or maint)
    last_change = h.last_change if h.last_change is not None else hist.last_change
    down_trans = h.down_transitions if h.down_transitions is not None else hist.down_transitions
    if h.downtime is not None and h.last_change is not None:
        current_down = now - h.last_change if (maint or not up) else 0.0
        downtime = int(h.downtime + current_down)
    else:
        downtime = hist.downtime(now)
    stot = c.sessions_total
    # parked connections have served a request, which makes them "safe" to reuse in HAProxy's terms
    idle = len(st.idle_conns) + st.remote_idle
    last = getattr(c, "last_session", None)
    timers: Timers | None = getattr(c, "timers", None)
    show_check = h.enabled and not h.paused
    status_name = h.status
    row.update(
        qcur=len_queue(be, st) + st.remote_queued, qmax=c.queue_max, scur=st.served + st.remote_served,
        smax=c.sessions_max,
        slim=st.maxconn or None, stot=stot, bin=c.bytes_in, bout=c.bytes_out, dresp=getattr(c, "denied_responses", 0),
        econ=c.connect_errors, eresp=c.response_errors, wretr=c.retries, wredis=c.redispatches,
        status=server_state_name(st, h), weight=st.weight, act=0 if st.backup else 1, bck=1 if st.backup else 0,
        chkfail=h.failures if h.enabled else None, chkdown=down_trans if h.enabled else None,
        lastchg=int(now - last_change), downtime=downtime if h.enabled else None,
        qlimit=st.maxqueue or None,
        throttle=None, lbtot=getattr(c, "loadbalanced", stot), tracked=cfg.tracks if cfg is not None else None,
        rate=_rate(c, now), rate_max=_rate_max(c),
        cli_abrt=getattr(c, "client_aborts", 0), srv_abrt=getattr(c, "server_aborts", 0),
        lastsess=int(now - last) if last else (0 if stot and not hasattr(c, "last_session") else -1),
        qtime=_ms(timers.avg[0]) if timers else 0, ctime=_ms(timers.avg[1]) if timers else 0,
        rtime=_ms(timers.avg[2]) if timers else 0, ttime=_ms(timers.avg[3]) if timers else 0,
        addr=_server_addr(cfg), wrew=getattr(c, "failed_rewrites", 0),
        connect=c.connect_attempts, reuse=c.reuses,
        srv_icur=idle, qtime_max=timers.max[0] if timers else 0, ctime_max=timers.max[1] if timers else 0,
        rtime_max=timers.max[2] if timers else 0, ttime_max=timers.max[3] if timers else 0,
        eint=getattr(c, "internal_errors", 0), idle_conn_cur=0, safe_conn_cur=idle, used_conn_cur=st.served,
        need_conn_est=1 if stot else 0, uweight=st.weight,
    )
    if show_check:
        code, desc = status_name, CHECK_STATUSES.get(status_name, (0, ""))[1]
        row["check_status"] = ("* " if h.running else "") + code
        if status_name not in ("INI", "UNK"):
            if h.code is not None and status_name in ("L7OK", "L7OKC", "L7STS", "PROCOK", "PROCERR", "PROCTOUT"):
                row["check_code"] = h.code
            row["check_duration"] = h.duration_ms if h.duration_ms is not None else 0
        row.update(check_desc=desc, check_rise=h.rise, check_fall=h.fall, check_health=h.health)
        row["last_chk"] = h.info
    if http:
        _hrsp(row, c.http_responses)
        row["req_tot"] = c.requests_total
    row["_http"] = http
    row["_state"] = promex_server_state(st, h)
    row["_check_status"] = status_name if show_check and status_name in PROMEX_CHECK_STATES else None
    row["_check_configured"] = h.configured
    row["_check_enabled"] = h.enabled
    row["_backup"] = st.backup
    row["_usable"] = bool(getattr(st, "usable", True))
    row["_check_result"] = _check_result(h)
    return row


def _check_result(h: ServerHealth) -> int:
    """srv_check_result of `show servers state`: 0 unknown, 1 neutral, 2 failed, 3 passed, 4 conditional."""
    if h.status in ("INI", "UNK"):
        return 0
    if h.status in CHECK_PASSED:
        return 3
    if h.status in CHECK_CONDITIONAL:
        return 4
    return 2


def len_queue(be: Any, st: ServerState) -> int:
    q = getattr(be, "queue", None)
    if q is not None and hasattr(q, "server_queue_length"):
        return q.server_queue_length(st)
    return getattr(st, "queued", 0)


def _rate(c: Any, now: float) -> int:
    r = getattr(c, "session_rate", None)
    return r.rate(now) if isinstance(r, EventRate) else 0


def _rate_max(c: Any) -> int:
    r = getattr(c, "session_rate", None)
    return r.max_rate if isinstance(r, EventRate) else 0


def _server_addr(cfg: Server | None) -> str | None:
    if cfg is None:
        return None
    a = cfg.address
    if a.family in ("unix", "abns"):
        return a.host
    host = f"[{a.host}]" if a.family == "ipv6" else a.host
    port = a.port if a.port is not None else a.port_offset
    return f"{host}:{port}"


def backend_weights(be: Any) -> tuple[int, int, int, int]:
    """(eweight sum, uweight sum, usable active count, usable backup count) as HAProxy's
    lbprm.tot_weight / tot_uweight / srv_act / srv_bck: the backups count only when no active
    server is usable, and without `option allbackups` only the first usable backup."""
    servers = list(be.servers)
    usable = [s for s in servers if getattr(s, "usable", True)]
    act = [s for s in usable if not s.backup]
    bck = [s for s in usable if s.backup]
    if act:
        used = act
    elif bck and "allbackups" not in be.proxy.options:
        used = bck[:1]
    else:
        used = bck
    return sum(s.eweight for s in used), sum(s.weight for s in used), len(act), len(bck)


def default_fullconn(rt: Any, px: Proxy, global_maxconn: int) -> int:
    """Backend `fullconn` when not set: 10% of the maxconn of the frontends that can use it (>= 1)."""
    if px.fullconn:
        return px.fullconn
    total = 0
    for fe in rt.config.frontends:
        refs = {fe.default_backend} | {ub.name for ub in fe.use_backends}
        if fe.name == px.name or px.name in refs:
            total += fe.maxconn or global_maxconn
    return max(1, (total + 9) // 10)


def _backend_row(rt: Any, px: Proxy, be: Any, servers: list[Row], global_maxconn: int, now: float) -> Row:
    c: ProxyCounters = be.counters
    http = px.mode == "http"
    row = _blank(px.name, "BACKEND", TYPE_BACKEND, px.id, 0, px.mode)
    tot_w, tot_uw, n_act, n_bck = backend_weights(be)
    up = tot_w > 0 or not be.servers
    hist = history_of(c)
    hist.observe("up" if up else "down", now, counts_as_down=True)
    qcur = be.queue.length if hasattr(be, "queue") else 0
    c.queue_max = max(c.queue_max, qcur)
    t = c.timers
    last = c.last_session
    row.update(
        qcur=qcur, qmax=c.queue_max, scur=c.current + c.remote_current, smax=c.max_current,
        slim=default_fullconn(rt, px, global_maxconn),
        stot=c.sessions_total, bin=c.bytes_in, bout=c.bytes_out, dreq=c.denied_requests, dresp=c.denied_responses,
        econ=c.connect_errors, eresp=c.response_errors, wretr=c.retries, wredis=c.redispatches,
        status="UP" if up else "DOWN", weight=tot_w, act=n_act, bck=n_bck, chkdown=hist.down_transitions,
        lastchg=int(now - hist.last_change), downtime=hist.downtime(now),
        lbtot=c.loadbalanced or sum(s["lbtot"] or 0 for s in servers), rate=c.session_rate.rate(now),
        rate_max=c.session_rate.max_rate,
        cli_abrt=c.client_aborts, srv_abrt=c.server_aborts, comp_in=0, comp_out=0, comp_byp=0, comp_rsp=0,
        lastsess=int(now - last) if last else -1,
        qtime=_ms(t.avg[0]), ctime=_ms(t.avg[1]), rtime=_ms(t.avg[2]), ttime=_ms(t.avg[3]),
        algo=px.balance.algorithm, wrew=c.failed_rewrites,
        connect=c.connections_total or sum(s["connect"] or 0 for s in servers),
        reuse=sum(s["reuse"] or 0 for s in servers),
        qtime_max=t.max[0], ctime_max=t.max[1], rtime_max=t.max[2], ttime_max=t.max[3], eint=c.internal_errors,
        uweight=tot_uw, agg_server_status=0, agg_server_check_status=0, agg_check_status=0,
    )
    if http:
        _hrsp(row, c.http_responses)
        row.update(req_tot=c.requests_total, cache_lookups=0, cache_hits=0)
    for f in _MUX:
        row[f] = 0
    row["_http"] = http
    row["_up"] = up
    agg = dict.fromkeys(PROMEX_SERVER_STATES, 0)
    agg_chk = dict.fromkeys(PROMEX_CHECK_STATES, 0)
    for s in servers:
        agg[s["_state"]] += 1
        if s["_check_status"]:
            agg_chk[s["_check_status"]] += 1
    row["_agg_server_status"] = agg
    row["_agg_check_status"] = agg_chk
    return row


def snapshot(rt: Any, now: float | None = None, *, stopping: bool = False) -> Snapshot:
    """Read every counter and state of the running configuration `rt` (supervisor.Runtime).

    Proxies come in declaration order; a `listen` section gives a FRONTEND row, its servers and a
    BACKEND row. `now` is wall-clock seconds (time.time()).
    """
    now = time.time() if now is None else now
    gmax = _maxconn_of(rt)
    proxies = []
    for px in rt.config.proxies:
        if px.kind == "defaults":
            continue
        fe = rt.frontends.get(px.name) if px.is_frontend else None
        be = rt.backends.get(px.name) if px.is_backend else None
        fe_row = _frontend_row(px, fe, gmax, now, stopping) if fe is not None else None
        servers = [_server_row(px, be, st, now) for st in be.servers] if be is not None else []
        be_row = _backend_row(rt, px, be, servers, gmax, now) if be is not None else None
        if fe_row is None and be_row is None:
            continue
        proxies.append(ProxyStats(name=px.name, id=px.id, mode=px.mode, frontend=fe_row, servers=tuple(servers),
                                  backend=be_row))
    return Snapshot(now=now, info=process_info(rt, proxies, gmax, now, stopping), proxies=tuple(proxies))


def process_info(rt: Any, proxies: list[ProxyStats], maxconn: int, now: float, stopping: bool) -> dict[str, Any]:
    """`show info` fields (HAProxy 2.6 order and names)."""
    from haproxy_py import version

    g = rt.config.global_
    up = int(now - START_TIME)
    cur = sum(p.frontend["scur"] for p in proxies if p.frontend)
    cum = sum(p.frontend["stot"] for p in proxies if p.frontend)
    req = sum(p.frontend["req_tot"] or 0 for p in proxies if p.frontend)
    conn_rate = sum(p.frontend["conn_rate"] or 0 for p in proxies if p.frontend)
    conn_max = max([p.frontend["conn_rate_max"] or 0 for p in proxies if p.frontend] or [0])
    sess_rate = sum(p.frontend["rate"] or 0 for p in proxies if p.frontend)
    sess_max = max([p.frontend["rate_max"] or 0 for p in proxies if p.frontend] or [0])
    bytes_out = sum(p.frontend["bout"] for p in proxies if p.frontend)
    try:
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        nofile = 0
    listeners = sum(len(b.addresses) for p in rt.config.frontends if not p.disabled for b in p.binds)
    info: dict[str, Any] = {
        "Name": "HAProxy",
        "Version": version.FULL_VERSION,
        "Release_date": version.RELEASE_DATE,
        "Nbthread": 1,
        "Nbproc": 1,
        "Process_num": 1,
        "Pid": os.getpid(),
        "Uptime": format_uptime(up),
        "Uptime_sec": up,
        "Memmax_MB": 0,
        "PoolAlloc_MB": 0,
        "PoolUsed_MB": 0,
        "PoolFailed": 0,
        "Ulimit-n": nofile,
        "Maxsock": nofile,
        "Maxconn": maxconn,
        "Hard_maxconn": maxconn,
        "CurrConns": cur,
        "CumConns": cum,
        "CumReq": req,
        "MaxSslConns": 0,
        "CurrSslConns": 0,
        "CumSslConns": 0,
        "Maxpipes": 0,
        "PipesUsed": 0,
        "PipesFree": 0,
        "ConnRate": conn_rate,
        "ConnRateLimit": 0,
        "MaxConnRate": conn_max,
        "SessRate": sess_rate,
        "SessRateLimit": 0,
        "MaxSessRate": sess_max,
        "SslRate": 0,
        "SslRateLimit": 0,
        "MaxSslRate": 0,
        "SslFrontendKeyRate": 0,
        "SslFrontendMaxKeyRate": 0,
        "SslFrontendSessionReuse_pct": 0,
        "SslBackendKeyRate": 0,
        "SslBackendMaxKeyRate": 0,
        "SslCacheLookups": 0,
        "SslCacheMisses": 0,
        "CompressBpsIn": 0,
        "CompressBpsOut": 0,
        "CompressBpsRateLim": 0,
        "Tasks": 0,
        "Run_queue": 0,
        "Idle_pct": 100,
        "node": g.node or os.uname().nodename,
        "Stopping": 1 if stopping else 0,
        "Jobs": cur + listeners,
        "Unstoppable Jobs": 0,
        "Listeners": listeners,
        "ActivePeers": 0,
        "ConnectedPeers": 0,
        "DroppedLogs": 0,
        "BusyPolling": 0,
        "FailedResolutions": 0,
        "TotalBytesOut": bytes_out,
        "TotalSplicdedBytesOut": 0,
        "BytesOutRate": 0,
        "DebugCommandsIssued": 0,
        "CumRecvLogs": 0,
        "Build info": version.FULL_VERSION,
        "Memmax_bytes": 0,
        "PoolAlloc_bytes": 0,
        "PoolUsed_bytes": 0,
        "Start_time_sec": int(START_TIME),
        "Tainted": 0,
    }
    if g.description:
        info["description"] = g.description
    return info


def format_uptime(seconds: int) -> str:
    """HAProxy's `0d 0h00m19s`."""
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h}h{m:02d}m{s:02d}s"


# ---------------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------------


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    s = str(v)
    if "," in s or '"' in s or "\n" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_header() -> str:
    return "# " + ",".join(FIELDS) + ",\n"


def csv_row(row: Row, *, status_suffix: str = "") -> str:
    vals = []
    for f in FIELDS:
        v = row[f]
        if f == "status" and status_suffix and v is not None:
            v = f"{v}{status_suffix}"
        vals.append(_csv_value(v))
    return ",".join(vals) + ",\n"


def select_rows(snap: Snapshot, *, iid: int = -1, types: int = -1, sid: int = -1, proxy: str | None = None,
                hide_down: bool = False, no_maint: bool = False, scopes: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows filtered like `show stat <iid> <type> <sid>` (type: bitmask 1 FE, 2 BE, 4 SV; -1 all),
    `;up` (hide_down) and `no-maint`."""
    for px in snap.proxies:
        if iid != -1 and px.id != iid:
            continue
        if proxy is not None and px.name != proxy:
            continue
        if scopes and not any(s in px.name for s in scopes):
            continue
        for row in px.rows():
            kind = row["type"]
            bit = {TYPE_FRONTEND: 1, TYPE_BACKEND: 2, TYPE_SERVER: 4, TYPE_LISTENER: 8}[kind]
            if types != -1 and not types & bit:
                continue
            if kind == TYPE_SERVER:
                if sid != -1 and row["sid"] != sid:
                    continue
                if hide_down and row["_state"] in ("DOWN", "MAINT"):
                    continue
                if no_maint and row["_state"] == "MAINT":
                    continue
            yield row


def render_csv(snap: Snapshot, **filters: Any) -> str:
    """`show stat` / `;csv` text: the header line, one line per selected row, a blank line."""
    suffix_counts = filters.get("hide_down") or filters.get("no_maint")
    out = [csv_header()]
    for row in select_rows(snap, **filters):
        suffix = ""
        if suffix_counts and row["type"] == TYPE_BACKEND:
            px = snap.proxy(row["pxname"])
            if px is not None:
                total = len(px.servers)
                up = sum(1 for s in px.servers if s["_state"] not in ("DOWN", "MAINT"))
                suffix = f" ({up}/{total})"
        out.append(csv_row(row, status_suffix=suffix))
    out.append("\n")
    return "".join(out)


def json_rows(snap: Snapshot, **filters: Any) -> list[list[dict[str, Any]]]:
    """`;json` / `show stat json`: per object a list of {objType, proxyId, id, field:{pos,name}, value}."""
    kinds = {TYPE_FRONTEND: "Frontend", TYPE_BACKEND: "Backend", TYPE_SERVER: "Server", TYPE_LISTENER: "Listener"}
    out = []
    for row in select_rows(snap, **filters):
        items = []
        for pos, f in enumerate(FIELDS):
            v = row[f]
            if v is None or f == "-":
                continue
            if isinstance(v, int):
                value = {"type": "u64" if v >= 0 else "s64", "value": v}
            else:
                value = {"type": "str", "value": str(v)}
            items.append({"objType": kinds[row["type"]], "proxyId": row["iid"], "id": row["sid"],
                          "field": {"pos": pos, "name": f}, "processNum": 1, "tags": {}, "value": value})
        out.append(items)
    return out
