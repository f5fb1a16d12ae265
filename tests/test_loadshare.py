"""The connection counts that spread a burst of clients over worker processes."""

from __future__ import annotations

import os

import pytest

from haproxy_py.process.loadshare import GONE, LoadShare, busier


@pytest.mark.parametrize(("mine", "lowest", "defer"), [
    (0, 0, False), (1, 0, False), (2, 0, True),  # one connection of slack
    (9, 8, False), (10, 8, False), (11, 8, True),  # plus an eighth of the lower count
    (80, 64, True), (73, 64, False), (74, 64, True),
])
def test_busier(mine: int, lowest: int, defer: bool) -> None:
    assert busier(mine, lowest) is defer


def test_counts_are_shared_across_fork_and_a_gone_process_is_never_the_lowest() -> None:
    share = LoadShare(2)
    pid = os.fork()
    if pid == 0:  # the worker: index 1 takes three connections
        share.index = 1
        for _ in range(3):
            share.opened()
        os._exit(0)
    os.waitpid(pid, 0)
    assert share.counts() == [0, 3]
    assert not share.should_defer()  # the main holds fewer
    for _ in range(5):
        share.opened()
    assert share.should_defer()  # 5 > 3 + 1
    share.closed()
    assert not share.should_defer()  # 4 == 3 + 1
    share.leave(1)
    assert share.counts() == [4, GONE]
    assert not share.should_defer()
