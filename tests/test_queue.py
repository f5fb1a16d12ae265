"""core.queue: who waits where and who gets a freed slot, as HAProxy's pendconn logic does."""

from __future__ import annotations

from haproxy_py.core.queue import BackendQueue
from haproxy_py.core.server import ServerState


def servers(n: int, maxconn: int = 1) -> list[ServerState]:
    return [ServerState(name=f"s{i + 1}", puid=i + 1, maxconn=maxconn) for i in range(n)]


def test_backend_queue_is_fifo() -> None:
    (s1,) = servers(1)
    q = BackendQueue()
    waiters = [q.enqueue(None) for _ in range(3)]
    got = [q.next_for(s1) for _ in range(3)]
    assert got == waiters
    assert all(w.granted is s1 for w in waiters)
    assert q.next_for(s1) is None


def test_oldest_of_server_queue_and_backend_queue_wins() -> None:
    s1, s2 = servers(2)
    q = BackendQueue()
    a = q.enqueue(None)
    b = q.enqueue(s1)
    c = q.enqueue(None)
    assert s1.queued == 1
    assert q.next_for(s1) is a  # arrived before b
    assert q.next_for(s1) is b
    assert s1.queued == 0
    assert q.next_for(s2) is c


def test_server_queue_waiters_only_go_to_their_server() -> None:
    s1, s2 = servers(2)
    q = BackendQueue()
    w = q.enqueue(s1)
    assert q.next_for(s2) is None
    assert q.next_for(s1) is w


def test_cancelled_waiters_are_skipped_and_uncounted() -> None:
    (s1,) = servers(1)
    q = BackendQueue()
    a = q.enqueue(s1)
    b = q.enqueue(s1)
    q.cancel(a)
    assert s1.queued == 1
    assert q.server_queue_length(s1) == 1
    assert q.next_for(s1) is b
    q.cancel(b)  # already granted: no effect
    assert s1.queued == 0


def test_length_counts_live_backend_waiters() -> None:
    q = BackendQueue()
    a = q.enqueue(None)
    q.enqueue(None)
    q.cancel(a)
    assert q.length == 1


def test_draining_a_down_server_moves_its_waiters_to_the_backend_in_order() -> None:
    s1, s2 = servers(2)
    q = BackendQueue()
    a = q.enqueue(s1)
    b = q.enqueue(None)
    c = q.enqueue(s1)
    moved = q.drain_server(s1)
    assert moved == [a, c]
    assert s1.queued == 0
    assert [q.next_for(s2) for _ in range(3)] == [a, b, c]


def test_queue_max_is_recorded() -> None:
    (s1,) = servers(1)
    q = BackendQueue()
    for _ in range(4):
        q.enqueue(s1)
    assert s1.counters.queue_max == 4
