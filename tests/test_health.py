"""core/health.py against reference §3 and what HAProxy 2.6 was seen doing (the oracle runs that
produced the expected strings and figures are described next to each table)."""

from __future__ import annotations

import pytest

from haproxy_py.core import health
from haproxy_py.core.health import CheckOutcome, Result, Transition

P, F = Result.PASSED, Result.FAILED


def run(seq: str, rise: int, fall: int, *, health_: int | None = None, stopped: bool = False) -> list[tuple]:
    """Feed a string of results ('+' pass, '-' fail) through `step`, keeping HAProxy's server state;
    returns (health, figures, transition) after each check."""
    h = health.initial_health(rise) if health_ is None else health_
    out = []
    status = "INI"
    for c in seq:
        res = P if c == "+" else F
        new_status = "L7OK" if res == P else "L7STS"
        s = health.step(h, rise, fall, stopped=stopped, result=res, status_changed=new_status != status)
        status = new_status
        h = s.health
        if s.transition is Transition.DOWN:
            stopped = True
        elif s.transition is Transition.UP:
            stopped = False
        out.append((h, health.figures(h, rise, fall), s.transition.value if s.transition else None))
    return out


# ---------------------------------------------------------------------------------------------
# the counter


@pytest.mark.parametrize(
    "health_, rise, fall, result, expected",
    [
        # failures: one off; below rise collapses to 0; nothing below 0 (and not counted there)
        (5, 3, 3, F, (4, True)),
        (4, 3, 3, F, (3, True)),
        (3, 3, 3, F, (0, True)),
        (2, 3, 3, F, (0, True)),
        (1, 3, 3, F, (0, True)),
        (0, 3, 3, F, (0, False)),
        # successes: one up; reaching rise jumps to rise+fall-1; nothing above full (not counted)
        (0, 3, 3, P, (1, True)),
        (1, 3, 3, P, (2, True)),
        (2, 3, 3, P, (5, True)),
        (3, 3, 3, P, (5, True)),
        (4, 3, 3, P, (5, True)),
        (5, 3, 3, P, (5, False)),
        # rise 1 / fall 1: a single bit
        (1, 1, 1, F, (0, True)),
        (0, 1, 1, P, (1, True)),
        (1, 1, 1, P, (1, False)),
        # conditional pass counts as a pass; neutral and unknown change nothing
        (0, 2, 3, Result.CONDPASS, (1, True)),
        (2, 2, 3, Result.NEUTRAL, (2, False)),
        (2, 2, 3, Result.UNKNOWN, (2, False)),
    ],
)
def test_count_follows_haproxy_counter(health_: int, rise: int, fall: int, result: Result, expected: tuple) -> None:
    assert health.count(health_, rise, fall, result) == expected


def test_reference_trace_rise3_fall3() -> None:
    # reference §3.1 verified trace: UP ..5 -> 404s: UP 2/3 (4), UP 1/3 (3), DOWN (0)
    # -> fixed: DOWN 1/3 (1), DOWN 2/3 (2), UP (5)
    got = run("+---+++", 3, 3)
    assert got == [
        (5, "3/3 UP", None),
        (4, "2/3 UP", None),
        (3, "1/3 UP", None),
        (0, "0/3 DOWN", "down"),
        (1, "1/3 DOWN", None),
        (2, "2/3 DOWN", None),
        (5, "3/3 UP", "up"),
    ]


@pytest.mark.parametrize(
    "seq, rise, fall, expected",
    [
        # start-up: health = rise, so the very first failure takes it DOWN whatever fall is
        ("-", 2, 3, [(0, "0/2 DOWN", "down")]),
        ("-", 3, 5, [(0, "0/3 DOWN", "down")]),
        # ... and the first success gives full health, without an UP transition (it was UP)
        ("+", 2, 3, [(4, "3/3 UP", None)]),
        # fall = 1: start-up is already full health
        ("+-", 2, 1, [(2, "1/1 UP", None), (0, "0/2 DOWN", "down")]),
        # rise 1: one success is enough to come back
        ("-+", 1, 3, [(0, "0/1 DOWN", "down"), (3, "3/3 UP", "up")]),
        # from full: exactly fall failures
        ("+---", 2, 3, [(4, "3/3 UP", None), (3, "2/3 UP", None), (2, "1/3 UP", None), (0, "0/2 DOWN", "down")]),
    ],
)
def test_startup_and_edges(seq: str, rise: int, fall: int, expected: list) -> None:
    assert run(seq, rise, fall) == expected


@pytest.mark.parametrize(
    "seq, rise, fall, transitions, final",
    [
        # flapping while UP: one success restores full health, so fall-1 failures never take it down
        ("+--+--+--+", 2, 3, [], (4, "3/3 UP")),
        # flapping while DOWN: one failure resets to 0, so rise-1 successes never bring it up
        ("+---+-+-+-", 2, 3, ["down"], (0, "0/2 DOWN")),
        ("+---++-++", 3, 3, ["down"], (2, "2/3 DOWN")),
        # alternating single checks with rise 1 fall 1: every check is a transition
        ("-+-+", 1, 1, ["down", "up", "down", "up"], (1, "1/1 UP")),
        # down, up, down again needs the full fall count the second time
        ("+---++--", 2, 3, ["down", "up"], (2, "1/3 UP")),
        ("+---++---", 2, 3, ["down", "up", "down"], (0, "0/2 DOWN")),
        # from start-up: a failed first check, then rise successes
        ("-++", 2, 3, ["down", "up"], (4, "3/3 UP")),
        ("-+-++", 2, 3, ["down", "up"], (4, "3/3 UP")),
    ],
)
def test_flapping_sequences(seq: str, rise: int, fall: int, transitions: list, final: tuple) -> None:
    got = run(seq, rise, fall)
    assert [t for _, _, t in got if t] == transitions
    assert got[-1][:2] == final


def test_step_reports_what_to_log_and_count() -> None:
    # a failure at health 0 counts nothing but is still logged when the status changed
    s = health.step(0, 2, 3, stopped=True, result=F, status_changed=True)
    assert (s.health, s.counted, s.log_check, s.transition) == (0, False, True, None)
    s = health.step(0, 2, 3, stopped=True, result=F, status_changed=False)
    assert (s.counted, s.log_check) == (False, False)
    # success at full health with an unchanged status: nothing to log
    s = health.step(4, 2, 3, stopped=False, result=P, status_changed=False)
    assert (s.counted, s.log_check, s.transition) == (False, False, None)


def test_success_never_brings_a_server_in_maintenance_up() -> None:
    s = health.step(1, 2, 3, stopped=True, result=P, maint=True, status_changed=False)
    assert s.health == 4 and s.transition is None


def test_failure_of_an_already_down_server_is_no_transition() -> None:
    s = health.step(1, 2, 3, stopped=True, result=F, status_changed=False)
    assert s.health == 0 and s.transition is None


def test_figures_and_drain() -> None:
    assert health.figures(4, 2, 3) == "3/3 UP"
    assert health.figures(3, 2, 3, drain=True) == "2/3 DRAIN"
    assert health.figures(1, 2, 3) == "1/2 DOWN"


def test_initial_health() -> None:
    assert health.initial_health(3) == 3
    assert health.initial_health(3, disabled=True) == 0


# ---------------------------------------------------------------------------------------------
# intervals


IV = health.Intervals(inter=2000, fastinter=500, downinter=10000)


@pytest.mark.parametrize(
    "health_, stopped, iv, expected",
    [
        (4, False, IV, 2000),  # fully UP: inter
        (3, False, IV, 500),  # going down: fastinter
        (2, False, IV, 500),  # start-up (health = rise): fastinter
        (1, True, IV, 500),  # going up: fastinter
        (0, True, IV, 10000),  # fully DOWN: downinter
        (0, False, IV, 500),  # health 0 but not stopped yet (disabled at start): fastinter
        (0, True, health.Intervals(2000), 2000),  # unset downinter/fastinter fall back to inter
        (2, False, health.Intervals(2000), 2000),
    ],
)
def test_next_interval(health_: int, stopped: bool, iv: health.Intervals, expected: int) -> None:
    assert health.next_interval(health_, 2, 3, stopped, iv) == expected


def test_forced_fastinter_applies_at_full_health() -> None:
    assert health.next_interval(4, 2, 3, False, IV, fast_forced=True) == 500


def test_fall_1_starts_at_full_health_so_inter_applies() -> None:
    assert health.next_interval(health.initial_health(2), 2, 1, False, IV) == 2000


@pytest.mark.parametrize(
    "interval, percent, r, expected",
    [
        (1000, 0, 0.0, 1000),
        (1000, 10, 0.0, 1100),  # rand 0: +rv
        (1000, 10, 1.0, 900),  # rand 1: -rv
        (1000, 10, 0.5, 1000),
        (1000, 50, 0.25, 1250),
        (2000, 5, 0.75, 1950),
        (7, 10, 0.0, 7),  # rv rounds down to 0 for tiny intervals
    ],
)
def test_spread_checks_jitter(interval: int, percent: int, r: float, expected: int) -> None:
    assert health.spread(interval, percent, lambda: r) == expected


def test_spread_stays_within_bounds_for_many_draws() -> None:
    import random

    rng = random.Random(7)
    got = [health.spread(1000, 20, rng.random) for _ in range(2000)]
    assert min(got) >= 800 and max(got) <= 1200
    assert min(got) < 820 and max(got) > 1180  # the whole range is used


@pytest.mark.parametrize(
    "intervals, max_spread, expected",
    [
        # one backend of two, inter 1s: the second starts inter/2 later (conformance Surprise 10)
        ([1000, 1000], None, [0, 500]),
        # measured on 2.6: inter 2s, 2s, 2s, 1200ms, 500ms -> 0, 396, 795, 716, 956 ms
        ([2000, 2000, 2000, 1200, 500], None, [0, 400, 800, 720, 960]),
        # all intervals below 1 s: each server spreads over its own interval
        ([200, 200, 200, 200], None, [0, 50, 100, 150]),
        # max-spread-checks caps the window
        ([4000, 4000], 1000, [0, 500]),
        ([5000], None, [0]),
    ],
)
def test_first_check_delays(intervals: list[int], max_spread: int | None, expected: list[int]) -> None:
    assert health.first_check_delays(intervals, max_spread) == expected


@pytest.mark.parametrize(
    "check, connect, inter, total",
    [
        # every row measured on HAProxy 2.6 against a server that accepts and never answers
        (300, 2000, 1000, 1000),
        (300, 2000, 2000, 1000),
        (300, 2000, 500, 500),
        (300, 400, 2000, 400),
        (1200, 5000, 4000, 1200),
        (700, 5000, 4000, 1000),
        (300, None, 2000, 1000),
        (3000, 1000, 2000, 3000),
        (1500, 800, 3000, 1500),
        (100, 3000, 3000, 1000),
        (600, 700, 3000, 700),
        (2000, 5000, 4000, 2000),
        (None, 5000, 4000, 4000),  # no `timeout check`: inter bounds the whole check
        (None, 1000, 4000, 4000),
    ],
)
def test_check_deadlines_match_measurements(check: int | None, connect: int | None, inter: int, total: int) -> None:
    d = health.check_deadlines(inter, check, connect)
    assert d.total == total


@pytest.mark.parametrize(
    "check, connect, inter, connect_limit",
    [
        (None, 5000, 800, 800),  # without timeout check, inter bounds the connection too
        (3000, 600, 800, 600),  # with it: min(timeout connect, inter)
        (3000, 2000, 800, 800),
        (3000, None, 700, 700),
    ],
)
def test_connect_phase_limit(check: int | None, connect: int | None, inter: int, connect_limit: int) -> None:
    assert health.check_deadlines(inter, check, connect).connect == connect_limit


# ---------------------------------------------------------------------------------------------
# messages: every expected string below was printed by HAProxy 2.6 in the same situation


def test_status_text_variants() -> None:
    assert health.status_text(CheckOutcome("L4CON", 0, "Connection refused", 0)) == (
        ', reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms')
    assert health.status_text(CheckOutcome("L7STS", 404, "File not found", 1)) == (
        ', reason: Layer7 wrong status, code: 404, info: "File not found", check duration: 1ms')
    # no code for L7RSP / L7TOUT; no info without a description; no duration when unknown
    assert health.status_text(CheckOutcome("L7RSP", 0, "", 0)) == (
        ", reason: Layer7 invalid response, check duration: 0ms")
    assert health.status_text(CheckOutcome("L7TOUT", 0, "", 1502)) == ", reason: Layer7 timeout, check duration: 1502ms"
    assert health.status_text(CheckOutcome("L7STS", 200, "")) == ", reason: Layer7 wrong status, code: 200"
    assert health.status_text(CheckOutcome("L7OK", 0, "(tcp-check)", 0)) == (
        ', reason: Layer7 check passed, code: 0, info: "(tcp-check)", check duration: 0ms')
    # double quotes (and < >) inside the info are hex-escaped
    assert health.status_text(CheckOutcome("L7STS", 503, 'Service "Unavailable"', 0)) == (
        ', reason: Layer7 wrong status, code: 503, info: "Service <22>Unavailable<22>", check duration: 0ms')


def test_ascii_encode() -> None:
    assert health.ascii_encode('a"b<c>d\x01é') == "a<22>b<3C>c<3E>d<01><C3><A9>"
    assert health.ascii_encode(" at step 2 of tcp-check (expect string '+PONG')") == (
        " at step 2 of tcp-check (expect string '+PONG')")


def test_down_message_exact() -> None:
    msg = health.down_message("be", "s1", backup=False, outcome=CheckOutcome("L4CON", 0, "Connection refused", 0),
                              active=1, backups=1, sessions=0, requeued=0, remaining=0)
    assert msg == ('Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check '
                   "duration: 0ms. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining "
                   "in queue.")


def test_down_message_running_on_backup_and_backup_label() -> None:
    msg = health.down_message("b404", "s1", backup=False, outcome=CheckOutcome("L7STS", 404, "File not found", 0),
                              active=0, backups=1, sessions=0, requeued=0, remaining=0)
    assert msg == ('Server b404/s1 is DOWN, reason: Layer7 wrong status, code: 404, info: "File not found", check '
                   "duration: 0ms. 0 active and 1 backup servers left. Running on backup. 0 sessions active, "
                   "0 requeued, 0 remaining in queue.")
    msg = health.down_message("b1", "s2", backup=True, outcome=None, active=0, backups=0, sessions=2, requeued=1,
                              remaining=0)
    assert msg == ("Backup Server b1/s2 is DOWN. 0 active and 0 backup servers left. 2 sessions active, 1 requeued, "
                   "0 remaining in queue.")


def test_up_messages_exact() -> None:
    assert health.up_message("be", "s1", backup=False, outcome=CheckOutcome("L7OK", 200, "", 1), active=1,
                             backups=0, requeued=0, in_queue=0) == (
        "Server be/s1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 1 active and 0 backup "
        "servers online. 0 sessions requeued, 0 total in queue.")
    assert health.up_message("b2", "s2", backup=True, outcome=CheckOutcome("L7OK", 200, "", 0), active=0,
                             backups=1, requeued=0, in_queue=0) == (
        "Backup Server b2/s2 is UP, reason: Layer7 check passed, code: 200, check duration: 0ms. 0 active and 1 "
        "backup servers online. Running on backup. 0 sessions requeued, 0 total in queue.")
    assert health.up_message("b1", "s1", backup=False, outcome=None, active=1, backups=0, requeued=0,
                             in_queue=0) == (
        "Server b1/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")


def test_log_health_checks_messages_exact() -> None:
    ok = CheckOutcome("L7OK", 200, "", 1)
    bad = CheckOutcome("L7STS", 500, "Oops", 0)
    assert health.check_message("b1", "s1", backup=False, outcome=ok, health=5, rise=3, fall=3) == (
        "Health check for server b1/s1 succeeded, reason: Layer7 check passed, code: 200, check duration: 1ms, "
        "status: 3/3 UP.")
    assert health.check_message("b1", "s2", backup=True, outcome=bad, health=4, rise=3, fall=3) == (
        'Health check for backup server b1/s2 failed, reason: Layer7 wrong status, code: 500, info: "Oops", '
        "check duration: 0ms, status: 2/3 UP.")
    assert health.check_message("b1", "s1", backup=False, outcome=bad, health=0, rise=3, fall=3) == (
        'Health check for server b1/s1 failed, reason: Layer7 wrong status, code: 500, info: "Oops", '
        "check duration: 0ms, status: 0/3 DOWN.")
    cond = CheckOutcome("L7OKC", 404, "", 0)
    assert health.check_message("b", "s", backup=False, outcome=cond, health=4, rise=2, fall=3).startswith(
        "Health check for server b/s conditionally succeeded, reason: Layer7 check conditionally passed")


def test_no_server_messages() -> None:
    assert health.no_server_messages("backend", "be") == ("backend 'be' has no server available!",
                                                          "backend be has no server available!")
    assert health.no_server_messages("listen", "lx") == ("proxy 'lx' has no server available!",
                                                         "proxy lx has no server available!")


def test_status_table_ids_and_results() -> None:
    assert {n: (s.id, s.result) for n, s in health.STATUSES.items() if n in ("L4OK", "L4CON", "L7OK", "L7STS",
                                                                               "L7OKC", "INI")} == {
        "INI": (1, Result.UNKNOWN), "L4OK": (6, Result.PASSED), "L4CON": (8, Result.FAILED),
        "L7OK": (15, Result.PASSED), "L7OKC": (16, Result.CONDPASS), "L7STS": (17, Result.FAILED)}
