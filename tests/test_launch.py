"""What the launcher does to the process before serving."""

from __future__ import annotations

import subprocess
import sys

SNIPPET = """
import gc
from haproxy_py.process.launch import settle_memory
before = len(gc.get_objects())
settle_memory()
print(before, len(gc.get_objects()), gc.get_freeze_count())
"""


def test_settle_memory_leaves_a_full_collection_almost_nothing_to_walk() -> None:
    # in a child process: freezing the test runner's own objects would outlive the test
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, timeout=60, check=True)
    before, after, frozen = map(int, out.stdout.split())
    assert before > 10_000  # modules, functions, the runtime's classes
    assert after < 100
    assert frozen >= before - 1_000
