"""HAProxy's health-check counter, check statuses, check timing and transition messages.

Pure values in, values out: no trio, no clock, no sockets. The runtime (`runtime/checks.py`)
measures time and moves bytes, then asks this module what a result means. Every rule here is
HAProxy 2.6's (check.c `set_server_check_status`, `check_notify_*`, `srv_getinter`,
`start_check_task`; server.c `srv_append_status`), verified against the 2.6 binary where the
reference says so. Times are integer milliseconds.

The counter (reference §3.1): `health` runs from 0 to rise+fall-1 and the server is UP by checks
when `health >= rise`. A failure takes one off and collapses to 0 below `rise`; a success adds
one and jumps to rise+fall-1 on reaching `rise`. A server starts at `health = rise`: UP, but one
failure away from DOWN.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import NamedTuple

import attrs

# ----------------------------------------------------------------------------------------------
# check statuses (reference §3.6)


class Result(enum.IntEnum):
    """What a status means for the counter; values are `srv_check_result` in `show servers state`."""

    UNKNOWN = 0
    NEUTRAL = 1
    FAILED = 2
    PASSED = 3
    CONDPASS = 4


@attrs.frozen
class CheckStatus:
    """One of HAProxy's check statuses: numeric id, short name (stats), description (logs)."""

    id: int
    name: str
    description: str
    result: Result


_STATUS_ROWS = (
    (0, "UNK", "Unknown", Result.UNKNOWN),
    (1, "INI", "Initializing", Result.UNKNOWN),
    (4, "HANA", "Health analyze", Result.FAILED),
    (5, "SOCKERR", "Socket error", Result.FAILED),
    (6, "L4OK", "Layer4 check passed", Result.PASSED),
    (7, "L4TOUT", "Layer4 timeout", Result.FAILED),
    (8, "L4CON", "Layer4 connection problem", Result.FAILED),
    (9, "L6OK", "Layer6 check passed", Result.PASSED),
    (10, "L6TOUT", "Layer6 timeout", Result.FAILED),
    (11, "L6RSP", "Layer6 invalid response", Result.FAILED),
    (12, "L7TOUT", "Layer7 timeout", Result.FAILED),
    (13, "L7RSP", "Layer7 invalid response", Result.FAILED),
    (15, "L7OK", "Layer7 check passed", Result.PASSED),
    (16, "L7OKC", "Layer7 check conditionally passed", Result.CONDPASS),
    (17, "L7STS", "Layer7 wrong status", Result.FAILED),
    (18, "PROCERR", "External check error", Result.FAILED),
    (19, "PROCTOUT", "External check timeout", Result.FAILED),
    (20, "PROCOK", "External check passed", Result.PASSED),
)
STATUSES: dict[str, CheckStatus] = {name: CheckStatus(i, name, d, r) for i, name, d, r in _STATUS_ROWS}

# Statuses from this id on carry a response code in messages (HAProxy's HCHK_STATUS_L57DATA).
_L57DATA = 14


class CheckOutcome(NamedTuple):
    """What one probe found.

    `status` is a key of STATUSES; `code` the HTTP status (0 when there is none); `desc` the
    free-text info (a reason phrase, "Connection refused", "TCPCHK did not match ..."), empty
    when HAProxy prints none; `duration` in ms, -1 when unknown. (A named tuple: one is made
    for every check, thousands a second, and a tuple is the cheapest immutable value.)
    """

    status: str
    code: int = 0
    desc: str = ""
    duration: int = -1

    @property
    def result(self) -> Result:
        return STATUSES[self.status].result


# ----------------------------------------------------------------------------------------------
# the counter (reference §3.1)


def initial_health(rise: int, disabled: bool = False) -> int:
    """Health at start-up and after every reload: `rise` (UP, one failure from DOWN); 0 for a
    server that starts in maintenance (`disabled`)."""
    return 0 if disabled else rise


def is_up(health: int, rise: int) -> bool:
    """UP by checks: `health >= rise`."""
    return health >= rise


def count(health: int, rise: int, fall: int, result: Result) -> tuple[int, bool]:
    """Apply one check result to the counter: (new health, whether it moved).

    "Moved" is HAProxy's `report`: a failure counts (and `chkfail` grows) only while health > 0;
    a success counts only below full health. Neutral/unknown results change nothing.
    """
    full = rise + fall - 1
    if result == Result.FAILED:
        if health > 0:
            health -= 1
            if health < rise:
                health = 0
            return health, True
        return health, False
    if result in (Result.PASSED, Result.CONDPASS):
        if health < full:
            health += 1
            if health >= rise:
                health = full
            return health, True
        return health, False
    return health, False


class Transition(enum.Enum):
    DOWN = "down"
    UP = "up"


@attrs.frozen
class Step:
    """The effect of one check result on a server.

    `counted`: the counter moved (on a failure, `chkfail` += 1). `log_check`: with
    `option log-health-checks`, a "Health check for server ..." line is due (the counter moved
    or the status changed). `transition`: the server's operational state changes.
    """

    health: int
    counted: bool
    log_check: bool
    transition: Transition | None


def step(health: int, rise: int, fall: int, *, stopped: bool, result: Result, status_changed: bool,
         maint: bool = False) -> Step:
    """One check result, as HAProxy handles it (`set_server_check_status` then `check_notify_*`).

    `stopped` is whether the server is currently DOWN (HAProxy's next_state == STOPPED);
    `maint` whether it is in maintenance (a success never brings such a server UP).
    """
    new, counted = count(health, rise, fall, result)
    transition = None
    if result == Result.FAILED:
        if new == 0 and not stopped:
            transition = Transition.DOWN
    elif result in (Result.PASSED, Result.CONDPASS):
        if stopped and not maint and new >= rise:
            transition = Transition.UP
    return Step(health=new, counted=counted, log_check=counted or status_changed, transition=transition)


def figures(health: int, rise: int, fall: int, drain: bool = False) -> str:
    """The `x/y STATE` figures of log lines and stats: `(health-rise+1)/fall UP` when UP by
    checks, else `health/rise DOWN` (`DRAIN` instead of UP for a server of weight 0)."""
    if health >= rise:
        return f"{health - rise + 1}/{fall} {'DRAIN' if drain else 'UP'}"
    return f"{health}/{rise} DOWN"


# ----------------------------------------------------------------------------------------------
# timing (reference §3.2 - §3.4)

INTER_THRESHOLD = 1000  # SRV_CHK_INTER_THRES: shorter intervals do not dictate the start-up spread


@attrs.frozen
class Intervals:
    """A server's `inter`, `fastinter` and `downinter` in ms (None: same as inter)."""

    inter: int
    fastinter: int | None = None
    downinter: int | None = None


def next_interval(health: int, rise: int, fall: int, stopped: bool, iv: Intervals,
                  fast_forced: bool = False) -> int:
    """HAProxy's `srv_getinter`: `inter` at full health, `downinter` when fully DOWN,
    `fastinter` in between (and at start-up, where health = rise is below full unless fall = 1)."""
    if not fast_forced and health == rise + fall - 1:
        return iv.inter
    if stopped and health == 0:
        return iv.downinter or iv.inter
    return iv.fastinter or iv.inter


def spread(interval: int, percent: int, rand: Callable[[], float]) -> int:
    """`spread-checks`: the interval plus a uniform jitter in [-interval*p/100, +interval*p/100].

    `rand()` returns a float in [0, 1] (injectable for tests). Integer arithmetic as HAProxy's.
    """
    if percent <= 0:
        return interval
    rv = interval * percent // 100
    rv -= int(2 * rv * rand())
    return interval + rv


def first_check_delays(intervals: Sequence[int], max_spread: int | None = None) -> list[int]:
    """Delay of each checked server's first check after start-up, in config order.

    HAProxy's `start_checks`: M is the smallest start-up interval among servers whose interval is
    at least 1 s; the server at position k of N waits max(M, its own interval) * k / N (capped by
    `max-spread-checks`). The first server is checked at once.
    """
    n = len(intervals)
    mininter = min((i for i in intervals if i >= INTER_THRESHOLD), default=0)
    delays = []
    for pos, own in enumerate(intervals):
        m = max(mininter, own)
        if max_spread and m > max_spread:
            m = max_spread
        delays.append(m * pos // n)
    return delays


# The part of a check after the connection is established never ends sooner than this, whatever
# `timeout check` says, unless `inter` or `timeout connect` is shorter (measured on 2.6: conformance
# Surprise 12; e.g. `timeout check 300ms`, `timeout connect 2s`, `inter 2s` -> 1.0 s).
_MIN_CHECK_WINDOW = 1000


@attrs.frozen
class CheckDeadlines:
    """How long one check may take, in ms from its start.

    `connect`: the limit for the TCP connection to be established. `total`: the limit for the whole
    check. `after_connect`: the minimum time the rest of the check gets once connected
    (0 = no minimum beyond `total`).
    """

    connect: int
    total: int
    after_connect: int = 0


def check_deadlines(inter: int, timeout_check: int | None, timeout_connect: int | None) -> CheckDeadlines:
    """The time limits of one check (reference §3.4 and Surprise 12).

    Without `timeout check`, `inter` bounds the whole check. With it, the connection gets
    min(`timeout connect`, `inter`) and the check ends after max(`timeout check`,
    min(`timeout connect`, `inter`, 1 s)), as HAProxy 2.6 was measured to do.
    """
    if not timeout_check:
        return CheckDeadlines(connect=inter, total=inter)
    connect = min(inter, timeout_connect) if timeout_connect else inter
    floor = min(x for x in (timeout_connect, inter, _MIN_CHECK_WINDOW) if x)
    return CheckDeadlines(connect=connect, total=max(timeout_check, floor), after_connect=timeout_check)


# ----------------------------------------------------------------------------------------------
# messages (reference §3.7)


def ascii_encode(text: str, quote: str = '"') -> str:
    """HAProxy's `chunk_asciiencode`: non-printable and non-ASCII bytes, `<`, `>` and the quote
    character become `<XX>` (two upper-case hex digits)."""
    out = []
    for b in text.encode("utf-8", "surrogateescape"):
        c = chr(b)
        if b < 0x20 or b >= 0x7F or c in "<>" or c == quote:
            out.append(f"<{b:02X}>")
        else:
            out.append(c)
    return "".join(out)


def status_text(outcome: CheckOutcome) -> str:
    """`, reason: ..., code: ..., info: "...", check duration: Nms` (`srv_append_status`).

    `code` only for L7OK/L7OKC/L7STS and external statuses; `info` only when there is a
    description; the duration only when known.
    """
    st = STATUSES[outcome.status]
    parts = [f", reason: {st.description}"]
    if st.id >= _L57DATA:
        parts.append(f", code: {outcome.code}")
    if outcome.desc:
        parts.append(f', info: "{ascii_encode(outcome.desc)}"')
    if outcome.duration >= 0:
        parts.append(f", check duration: {outcome.duration}ms")
    return "".join(parts)


def _server_label(backend: str, server: str, backup: bool) -> str:
    return f"{'Backup ' if backup else ''}Server {backend}/{server}"


def _on_backup(active: int, backup: int) -> str:
    return " Running on backup." if backup and not active else ""


def down_message(backend: str, server: str, *, backup: bool, outcome: CheckOutcome | None, active: int,
                 backups: int, sessions: int, requeued: int, remaining: int) -> str:
    """`Server be/s1 is DOWN, reason: .... 1 active and 0 backup servers left. ...` (no reason
    when `outcome` is None, as with `option log-health-checks`)."""
    reason = status_text(outcome) if outcome is not None else ""
    return (f"{_server_label(backend, server, backup)} is DOWN{reason}. {active} active and {backups} backup "
            f"servers left.{_on_backup(active, backups)} {sessions} sessions active, {requeued} requeued, "
            f"{remaining} remaining in queue.")


def up_message(backend: str, server: str, *, backup: bool, outcome: CheckOutcome | None, active: int,
               backups: int, requeued: int, in_queue: int) -> str:
    """`Server be/s1 is UP, reason: .... 1 active and 0 backup servers online. ...`."""
    reason = status_text(outcome) if outcome is not None else ""
    return (f"{_server_label(backend, server, backup)} is UP{reason}. {active} active and {backups} backup "
            f"servers online.{_on_backup(active, backups)} {requeued} sessions requeued, {in_queue} total in queue.")


def check_message(backend: str, server: str, *, backup: bool, outcome: CheckOutcome, health: int, rise: int,
                  fall: int, drain: bool = False) -> str:
    """`option log-health-checks`: `Health check for server be/s1 succeeded, reason: ..., status: 3/3 UP.`"""
    res = outcome.result
    verb = ("conditionally " if res == Result.CONDPASS else "") + (
        "succeeded" if res >= Result.PASSED else "failed")
    return (f"Health check for {'backup ' if backup else ''}server {backend}/{server} {verb}"
            f"{status_text(outcome)}, status: {figures(health, rise, fall, drain)}.")


def no_server_messages(proxy_kind: str, backend: str) -> tuple[str, str]:
    """The backend-emptied alert: (stderr text, log text). A `listen` section says `proxy`."""
    word = "proxy" if proxy_kind == "listen" else "backend"
    return f"{word} '{backend}' has no server available!", f"{word} {backend} has no server available!"
