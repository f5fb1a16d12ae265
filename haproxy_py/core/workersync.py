"""What worker processes and the main process tell each other, as plain values.

With `nbthread N` the data plane runs in N processes; the control plane (health checks, the stats
socket, reload handover) runs in the main one only. Two kinds of messages cross between them:

* main -> workers: the state of a backend's servers (UP, maintenance, drain, weight), whenever a
  check or an operator changes it, so every process balances over the same servers;
* workers -> main: each worker's counters, every second, which the main folds into its own: a
  cumulative counter grows by what the worker added since its last report, a high-water mark takes
  the maximum, and a gauge (current sessions, served, queued, idle connections) is kept per worker
  and added when rendering. Every stats renderer then shows whole-process totals without knowing
  about workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from haproxy_py.core.server import ServerState
from haproxy_py.core.stats import ProxyCounters

# fields that are levels, not totals: reported per worker, never summed into the main's objects
PROXY_GAUGES = frozenset({"current", "last_session", "remote_current"})
HIGH_WATER = frozenset({"max_current", "sessions_max", "queue_max"})
SERVER_STATE_FIELDS = ("up", "maint", "drain", "weight")


def split_limit(total: int, workers: int, index: int) -> int:
    """Worker `index`'s share of a limit (maxconn, maxqueue): the shares add up to `total`, and a
    set limit never becomes 0 (= unlimited) for a worker. 0 stays 0 (unlimited)."""
    if total <= 0 or workers <= 1:
        return total
    share = total // workers + (1 if index < total % workers else 0)
    return max(share, 1)


# -- main -> workers ---------------------------------------------------------------------------

def encode_servers(backend: str, servers: Iterable[ServerState]) -> bytes:
    return json.dumps({"t": "servers", "be": backend,
                       "s": [[s.name, *(getattr(s, f) for f in SERVER_STATE_FIELDS)] for s in servers]}).encode()


def apply_servers(message: Mapping[str, Any], servers: Iterable[ServerState]) -> bool:
    """Set the servers' states from a `servers` message; True when anything changed."""
    by_name = {s.name: s for s in servers}
    changed = False
    for name, *values in message["s"]:
        st = by_name.get(name)
        if st is None:
            continue
        for field, value in zip(SERVER_STATE_FIELDS, values):
            if getattr(st, field) != value:
                setattr(st, field, value)
                changed = True
    return changed


# -- workers -> main ---------------------------------------------------------------------------

def _int_fields(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in attrs.fields(type(obj)):
        value = getattr(obj, f.name)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[f.name] = value
        elif isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
            out[f.name] = {str(k): v for k, v in value.items()}
    return out


def encode_report(frontends: Mapping[str, ProxyCounters], backends: Mapping[str, ProxyCounters],
                  servers: Mapping[str, Iterable[ServerState]]) -> bytes:
    return json.dumps({
        "t": "counters",
        "fe": {name: _int_fields(c) for name, c in frontends.items()},
        "be": {name: _int_fields(c) for name, c in backends.items()},
        "srv": {be: {s.name: {**_int_fields(s.counters), "served": s.served, "queued": s.queued,
                         "idle": len(s.idle_conns)}
                     for s in states} for be, states in servers.items()},
    }).encode()


def fold(target: object, new: Mapping[str, Any], old: Mapping[str, Any], gauges: frozenset[str] = PROXY_GAUGES) -> None:
    """Add to `target` what a worker's counters grew by between two reports (`old` -> `new`)."""
    for name, value in new.items():
        if name in gauges or not hasattr(target, name):
            continue
        current = getattr(target, name)
        if name in HIGH_WATER:
            if isinstance(current, (int, float)) and value > current:
                setattr(target, name, value)
        elif isinstance(value, dict) and isinstance(current, dict):
            before = old.get(name, {})
            for key, v in value.items():
                k: Any = int(key) if key.lstrip("-").isdigit() else key
                current[k] = current.get(k, 0) + v - before.get(key, 0)
        elif isinstance(current, int) and not isinstance(current, bool):
            setattr(target, name, current + int(value) - int(old.get(name, 0)))


@attrs.define
class WorkerReports:
    """The main process's record of every worker's last report, and the gauges they carry."""

    last: dict[int, dict[str, Any]] = attrs.field(factory=dict)

    def receive(self, worker: int, report: Mapping[str, Any], frontends: Mapping[str, ProxyCounters],
                backends: Mapping[str, ProxyCounters], servers: Mapping[str, Iterable[ServerState]]) -> None:
        """Fold a worker's report into the main's own counter objects."""
        prev = self.last.get(worker, {"fe": {}, "be": {}, "srv": {}})
        for name, values in report["fe"].items():
            if name in frontends:
                fold(frontends[name], values, prev["fe"].get(name, {}))
        for name, values in report["be"].items():
            if name in backends:
                fold(backends[name], values, prev["be"].get(name, {}))
        for be, states in servers.items():
            reported = report["srv"].get(be, {})
            for st in states:
                if st.name in reported:
                    fold(st.counters, reported[st.name], prev["srv"].get(be, {}).get(st.name, {}),
                         gauges=frozenset({"served", "queued", "idle"}))
        self.last[worker] = dict(report)
        self._set_gauges(frontends, backends, servers)

    def _set_gauges(self, frontends: Mapping[str, ProxyCounters], backends: Mapping[str, ProxyCounters],
                    servers: Mapping[str, Iterable[ServerState]]) -> None:
        for name, c in frontends.items():
            c.remote_current = self.frontend_current(name)
        for name, c in backends.items():
            c.remote_current = self.backend_current(name)
        for be, states in servers.items():
            for st in states:
                st.remote_served = self.server_gauge(be, st.name, "served")
                st.remote_queued = self.server_gauge(be, st.name, "queued")
                st.remote_idle = self.server_gauge(be, st.name, "idle")

    def forget(self, worker: int) -> None:
        self.last.pop(worker, None)

    def frontend_current(self, name: str) -> int:
        return sum(r["fe"].get(name, {}).get("current", 0) for r in self.last.values())

    def backend_current(self, name: str) -> int:
        return sum(r["be"].get(name, {}).get("current", 0) for r in self.last.values())

    def server_gauge(self, backend: str, server: str, field: str) -> int:
        return sum(r["srv"].get(backend, {}).get(server, {}).get(field, 0) for r in self.last.values())


def decode(data: bytes) -> dict[str, Any]:
    return json.loads(data)


