"""core.workersync: limits split across workers, server state messages, counter folding."""

from __future__ import annotations

import pytest

from haproxy_py.core import workersync as ws
from haproxy_py.core.server import ServerState
from haproxy_py.core.stats import ProxyCounters


@pytest.mark.parametrize("total, workers, shares", [
    (0, 2, [0, 0]), (1, 2, [1, 1]), (2, 2, [1, 1]), (3, 2, [2, 1]), (10, 3, [4, 3, 3]), (5, 1, [5]),
])
def test_split_limit(total: int, workers: int, shares: list[int]) -> None:
    assert [ws.split_limit(total, workers, i) for i in range(workers)] == shares


def test_server_state_round_trip() -> None:
    main = [ServerState(name="s1", puid=1), ServerState(name="s2", puid=2)]
    main[0].up = False
    main[1].weight = 7
    main[1].drain = True
    worker = [ServerState(name="s1", puid=1), ServerState(name="s2", puid=2)]
    msg = ws.decode(ws.encode_servers("be", main))
    assert msg["be"] == "be"
    assert ws.apply_servers(msg, worker) is True
    assert [(s.up, s.weight, s.drain) for s in worker] == [(False, 1, False), (True, 7, True)]
    assert ws.apply_servers(msg, worker) is False  # nothing new


def test_reports_fold_deltas_maxima_and_keep_gauges_apart() -> None:
    main_fe = ProxyCounters(sessions_total=5, bytes_in=100, max_current=3)
    main_be = ProxyCounters()
    main_srv = [ServerState(name="s1", puid=1)]
    reports = ws.WorkerReports()
    worker_fe = ProxyCounters(sessions_total=2, bytes_in=10, current=1, max_current=4)
    worker_fe.count_status(200)
    worker_srv = [ServerState(name="s1", puid=1, served=1)]
    worker_srv[0].counters.sessions_total = 2
    send = lambda: ws.decode(ws.encode_report({"fe": worker_fe}, {"be": ProxyCounters()}, {"be": worker_srv}))  # noqa: E731
    reports.receive(1, send(), {"fe": main_fe}, {"be": main_be}, {"be": main_srv})
    assert (main_fe.sessions_total, main_fe.bytes_in, main_fe.max_current) == (7, 110, 4)
    assert main_fe.current == 0 and reports.frontend_current("fe") == 1
    assert main_fe.http_responses[2] == 1
    assert main_srv[0].counters.sessions_total == 2 and main_srv[0].served == 0
    assert reports.server_gauge("be", "s1", "served") == 1
    # a second report adds only what grew since the first
    worker_fe.sessions_total += 3
    worker_fe.count_status(503)
    reports.receive(1, send(), {"fe": main_fe}, {"be": main_be}, {"be": main_srv})
    assert main_fe.sessions_total == 10
    assert main_fe.http_responses == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1, 0: 0}
    reports.forget(1)
    assert reports.frontend_current("fe") == 0
