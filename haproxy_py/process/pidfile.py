"""The pidfile: written atomically (temp file + rename) so a reader never sees a partial pid."""

from __future__ import annotations

import os


def write_pidfile(path: str, pid: int) -> None:
    """Write `pid` followed by a newline to `path`, replacing it atomically. Raises OSError."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{pid}.tmp")
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_pidfile(path: str) -> list[int]:
    """Pids listed in a pidfile (one per line); [] when absent or unreadable."""
    try:
        with open(path) as f:
            return [int(w) for w in f.read().split() if w.isdigit()]
    except OSError:
        return []
