"""HAProxy 2.6's Prometheus exporter (promex) as a prometheus-client Collector over a stats snapshot.

`PromexCollector(snapshot, scopes, no_maint).collect()` yields the `haproxy_*` families with
HAProxy's names, types, HELP texts and labels, one sample per object, objects listed metric by
metric; state gauges carry one sample per possible state (`state` label, value 1 for the current
one); a value that does not apply is NaN. `render(...)` turns it into the text exposition with
prometheus_client (no client-library HTTP server: the HTTP session serves the bytes, see
`runtime.admin.prometheus_response`).

One deliberate difference: prometheus_client cannot write a `counter` whose name lacks `_total`,
so `haproxy_process_failed_resolutions` (a counter in HAProxy) is exported untyped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from haproxy_py.core.stats import PROMEX_CHECK_STATES, PROMEX_SERVER_STATES, Row, Snapshot, TYPE_SERVER

NAN = math.nan
CONTENT_TYPE = "text/plain; version=0.0.4"
SCOPES = ("global", "frontend", "backend", "server", "listener")

# (G)auge/(C)ounter, name after "haproxy_", HELP text: HAProxy 2.6's catalogue in its output order.
_CATALOGUE = """\
    G process_nbthread Number of started threads (global.nbthread)
    G process_nbproc Number of started worker processes (historical, always 1)
    G process_relative_process_id Relative worker process number (1)
    G process_uptime_seconds How long ago this worker process was started (seconds)
    C process_pool_failures_total Number of failed pool allocations since this worker was started
    G process_max_fds Hard limit on the number of per-process file descriptors
    G process_max_sockets Hard limit on the number of per-process sockets
    G process_max_connections Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)
    G process_hard_max_connections Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)
    G process_current_connections Current number of connections on this worker process
    C process_connections_total Total number of connections on this worker process since started
    C process_requests_total Total number of requests on this worker process since started
    G process_max_ssl_connections Hard limit on the number of per-process SSL endpoints (front+back), 0=unlimited
    G process_current_ssl_connections Current number of SSL endpoints on this worker process (front+back)
    C process_ssl_connections_total Total number of SSL endpoints on this worker process since started (front+back)
    G process_max_pipes Hard limit on the number of pipes for splicing, 0=unlimited
    C process_pipes_used_total Current number of pipes in use in this worker process
    C process_pipes_free_total Current number of allocated and available pipes in this worker process
    G process_current_connection_rate Number of front connections created on this worker process over the last second
    G process_limit_connection_rate Hard limit for ConnRate (global.maxconnrate)
    G process_max_connection_rate Highest ConnRate reached on this worker process since started (in connections per second)
    G process_current_session_rate Number of sessions created on this worker process over the last second
    G process_limit_session_rate Hard limit for SessRate (global.maxsessrate)
    G process_max_session_rate Highest SessRate reached on this worker process since started (in sessions per second)
    G process_current_ssl_rate Number of SSL connections created on this worker process over the last second
    G process_limit_ssl_rate Hard limit for SslRate (global.maxsslrate)
    G process_max_ssl_rate Highest SslRate reached on this worker process since started (in connections per second)
    G process_current_frontend_ssl_key_rate Number of SSL keys created on frontends in this worker process over the last second
    G process_max_frontend_ssl_key_rate Highest SslFrontendKeyRate reached on this worker process since started (in SSL keys per second)
    G process_frontend_ssl_reuse Percent of frontend SSL connections which did not require a new key
    G process_current_backend_ssl_key_rate Number of SSL keys created on backends in this worker process over the last second
    G process_max_backend_ssl_key_rate Highest SslBackendKeyRate reached on this worker process since started (in SSL keys per second)
    C process_ssl_cache_lookups_total Total number of SSL session ID lookups in the SSL session cache on this worker since started
    C process_ssl_cache_misses_total Total number of SSL session ID lookups that didn't find a session in the SSL session cache on this worker since started
    C process_http_comp_bytes_in_total Number of bytes submitted to the HTTP compressor in this worker process over the last second
    C process_http_comp_bytes_out_total Number of bytes emitted by the HTTP compressor in this worker process over the last second
    G process_limit_http_comp Limit of CompressBpsOut beyond which HTTP compression is automatically disabled
    G process_current_zlib_memory Amount of memory currently used by HTTP compression on the current worker process (in bytes)
    G process_max_zlib_memory Limit on the amount of memory used by HTTP compression above which it is automatically disabled (in bytes, see global.maxzlibmem)
    G process_current_tasks Total number of tasks in the current worker process (active + sleeping)
    G process_current_run_queue Total number of active tasks+tasklets in the current worker process
    G process_idle_time_percent Percentage of last second spent waiting in the current worker thread
    G process_stopping 1 if the worker process is currently stopping, otherwise zero
    G process_jobs Current number of active jobs on the current worker process (frontend connections, master connections, listeners)
    G process_unstoppable_jobs Current number of unstoppable jobs on the current worker process (master connections)
    G process_listeners Current number of active listeners on the current worker process
    G process_active_peers Current number of verified active peers connections on the current worker process
    G process_connected_peers Current number of peers having passed the connection step on the current worker process
    C process_dropped_logs_total Total number of dropped logs for current worker process since started
    G process_busy_polling_enabled 1 if busy-polling is currently in use on the worker process, otherwise zero (config.busy-polling)
    C process_failed_resolutions Total number of failed DNS resolutions in current worker process since started
    C process_bytes_out_total Total number of bytes emitted by current worker process since started
    C process_spliced_bytes_out_total Total number of bytes emitted by current worker process through a kernel pipe since started
    G process_bytes_out_rate Number of bytes emitted by current worker process over the last second
    C process_recv_logs_total Total number of log messages received by log-forwarding listeners on this worker process since started
    G process_build_info Build info
    G process_max_memory_bytes Worker process's hard limit on memory usage in byes (-m on command line)
    G process_pool_allocated_bytes Amount of memory allocated in pools (in bytes)
    G process_pool_used_bytes Amount of pool memory currently used (in bytes)
    G process_start_time_seconds Start time in seconds
    G frontend_current_sessions Number of current sessions on the frontend, backend or server
    G frontend_max_sessions Highest value of current sessions encountered since process started
    G frontend_limit_sessions Frontend/listener/server's maxconn, backend's fullconn
    C frontend_sessions_total Total number of sessions since process started
    C frontend_bytes_in_total Total number of request bytes since process started
    C frontend_bytes_out_total Total number of response bytes since process started
    C frontend_requests_denied_total Total number of denied requests since process started
    C frontend_responses_denied_total Total number of denied responses since process started
    C frontend_request_errors_total Total number of invalid requests since process started
    G frontend_status Current status of the service, per state label value.
    G frontend_limit_session_rate Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)
    G frontend_max_session_rate Highest value of sessions per second observed since the worker process started
    C frontend_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started
    G frontend_http_requests_rate_max Highest value of http requests observed since the worker process started
    C frontend_http_requests_total Total number of HTTP requests processed by this object since the worker process started
    C frontend_http_comp_bytes_in_total Total number of bytes submitted to the HTTP compressor for this object since the worker process started
    C frontend_http_comp_bytes_out_total Total number of bytes emitted by the HTTP compressor for this object since the worker process started
    C frontend_http_comp_bytes_bypassed_total Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)
    C frontend_http_comp_responses_total Total number of HTTP responses that were compressed for this object since the worker process started
    G frontend_connections_rate_max Highest value of connections per second observed since the worker process started
    C frontend_connections_total Total number of new connections accepted on this frontend since the worker process started
    C frontend_intercepted_requests_total Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started
    C frontend_denied_connections_total Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started
    C frontend_denied_sessions_total Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started
    C frontend_failed_header_rewriting_total Total number of failed HTTP header rewrites since the worker process started
    C frontend_http_cache_lookups_total Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started
    C frontend_http_cache_hits_total Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started
    C frontend_internal_errors_total Total number of internal errors since process started
    G backend_current_queue Number of current queued connections
    G backend_max_queue Highest value of queued connections encountered since process started
    G backend_current_sessions Number of current sessions on the frontend, backend or server
    G backend_max_sessions Highest value of current sessions encountered since process started
    G backend_limit_sessions Frontend/listener/server's maxconn, backend's fullconn
    C backend_sessions_total Total number of sessions since process started
    C backend_bytes_in_total Total number of request bytes since process started
    C backend_bytes_out_total Total number of response bytes since process started
    C backend_requests_denied_total Total number of denied requests since process started
    C backend_responses_denied_total Total number of denied responses since process started
    C backend_connection_errors_total Total number of failed connections to server since the worker process started
    C backend_response_errors_total Total number of invalid responses since the worker process started
    C backend_retry_warnings_total Total number of server connection retries since the worker process started
    C backend_redispatch_warnings_total Total number of server redispatches due to connection failures since the worker process started
    G backend_status Current status of the service, per state label value.
    G backend_weight Server's effective weight, or sum of active servers' effective weights for a backend
    G backend_active_servers Total number of active UP servers with a non-zero weight
    G backend_backup_servers Total number of backup UP servers with a non-zero weight
    C backend_check_up_down_total Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started
    G backend_check_last_change_seconds How long ago the last server state changed, in seconds
    C backend_downtime_seconds_total Total time spent in DOWN state, for server or backend
    C backend_loadbalanced_total Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)
    G backend_max_session_rate Highest value of sessions per second observed since the worker process started
    C backend_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started
    C backend_http_requests_total Total number of HTTP requests processed by this object since the worker process started
    C backend_client_aborts_total Total number of requests or connections aborted by the client since the worker process started
    C backend_server_aborts_total Total number of requests or connections aborted by the server since the worker process started
    C backend_http_comp_bytes_in_total Total number of bytes submitted to the HTTP compressor for this object since the worker process started
    C backend_http_comp_bytes_out_total Total number of bytes emitted by the HTTP compressor for this object since the worker process started
    C backend_http_comp_bytes_bypassed_total Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)
    C backend_http_comp_responses_total Total number of HTTP responses that were compressed for this object since the worker process started
    G backend_last_session_seconds How long ago some traffic was seen on this object on this worker process, in seconds
    G backend_queue_time_average_seconds Avg. queue time for last 1024 successful connections.
    G backend_connect_time_average_seconds Avg. connect time for last 1024 successful connections.
    G backend_response_time_average_seconds Avg. response time for last 1024 successful connections.
    G backend_total_time_average_seconds Avg. total time for last 1024 successful connections.
    C backend_failed_header_rewriting_total Total number of failed HTTP header rewrites since the worker process started
    C backend_connection_attempts_total Total number of outgoing connection attempts on this backend/server since the worker process started
    C backend_connection_reuses_total Total number of reused connection on this backend/server since the worker process started
    C backend_http_cache_lookups_total Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started
    C backend_http_cache_hits_total Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started
    G backend_max_queue_time_seconds Maximum observed time spent in the queue
    G backend_max_connect_time_seconds Maximum observed time spent waiting for a connection to complete
    G backend_max_response_time_seconds Maximum observed time spent waiting for a server response
    G backend_max_total_time_seconds Maximum observed total request+response time (request+queue+connect+response+processing)
    C backend_internal_errors_total Total number of internal errors since process started
    G backend_uweight Server's user weight, or sum of active servers' user weights for a backend
    G backend_agg_server_status Backend's aggregated gauge of servers' status
    G backend_agg_server_check_status Backend's aggregated gauge of servers' state check status
    G backend_agg_check_status Backend's aggregated gauge of servers' state check status
    G server_current_queue Number of current queued connections
    G server_max_queue Highest value of queued connections encountered since process started
    G server_current_sessions Number of current sessions on the frontend, backend or server
    G server_max_sessions Highest value of current sessions encountered since process started
    G server_limit_sessions Frontend/listener/server's maxconn, backend's fullconn
    C server_sessions_total Total number of sessions since process started
    C server_bytes_in_total Total number of request bytes since process started
    C server_bytes_out_total Total number of response bytes since process started
    C server_responses_denied_total Total number of denied responses since process started
    C server_connection_errors_total Total number of failed connections to server since the worker process started
    C server_response_errors_total Total number of invalid responses since the worker process started
    C server_retry_warnings_total Total number of server connection retries since the worker process started
    C server_redispatch_warnings_total Total number of server redispatches due to connection failures since the worker process started
    G server_status Current status of the service, per state label value.
    G server_weight Server's effective weight, or sum of active servers' effective weights for a backend
    C server_check_failures_total Total number of failed individual health checks per server/backend, since the worker process started
    C server_check_up_down_total Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started
    G server_check_last_change_seconds How long ago the last server state changed, in seconds
    C server_downtime_seconds_total Total time spent in DOWN state, for server or backend
    G server_queue_limit Limit on the number of connections in queue, for servers only (maxqueue argument)
    G server_current_throttle Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)
    C server_loadbalanced_total Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)
    G server_max_session_rate Highest value of sessions per second observed since the worker process started
    G server_check_status Status of last health check, per state label value.
    G server_check_code layer5-7 code, if available of the last health check.
    G server_check_duration_seconds Total duration of the latest server health check, in seconds.
    C server_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started
    C server_client_aborts_total Total number of requests or connections aborted by the client since the worker process started
    C server_server_aborts_total Total number of requests or connections aborted by the server since the worker process started
    G server_last_session_seconds How long ago some traffic was seen on this object on this worker process, in seconds
    G server_queue_time_average_seconds Avg. queue time for last 1024 successful connections.
    G server_connect_time_average_seconds Avg. connect time for last 1024 successful connections.
    G server_response_time_average_seconds Avg. response time for last 1024 successful connections.
    G server_total_time_average_seconds Avg. total time for last 1024 successful connections.
    C server_failed_header_rewriting_total Total number of failed HTTP header rewrites since the worker process started
    C server_connection_attempts_total Total number of outgoing connection attempts on this backend/server since the worker process started
    C server_connection_reuses_total Total number of reused connection on this backend/server since the worker process started
    G server_idle_connections_current Current number of idle connections available for reuse on this server
    G server_idle_connections_limit Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)
    G server_max_queue_time_seconds Maximum observed time spent in the queue
    G server_max_connect_time_seconds Maximum observed time spent waiting for a connection to complete
    G server_max_response_time_seconds Maximum observed time spent waiting for a server response
    G server_max_total_time_seconds Maximum observed total request+response time (request+queue+connect+response+processing)
    C server_internal_errors_total Total number of internal errors since process started
    G server_unsafe_idle_connections_current Current number of unsafe idle connections
    G server_safe_idle_connections_current Current number of safe idle connections
    G server_used_connections_current Current number of connections in use
    G server_need_connections_current Estimated needed number of connections
    G server_uweight Server's user weight, or sum of active servers' user weights for a backend
"""


def _parse_catalogue() -> list[tuple[str, str, str, str]]:
    out = []
    for line in _CATALOGUE.splitlines():
        kind, name, help_text = line.strip().split(" ", 2)
        scope, short = name.split("_", 1)
        out.append((scope, short, "gauge" if kind == "G" else "counter", help_text))
    return out


CATALOGUE: list[tuple[str, str, str, str]] = _parse_catalogue()

# process metric -> `show info` field (None: NaN)
_PROCESS: dict[str, str | None] = {
    "nbthread": "Nbthread", "nbproc": "Nbproc", "relative_process_id": "Process_num", "uptime_seconds": "Uptime_sec",
    "pool_failures_total": "PoolFailed", "max_fds": "Ulimit-n", "max_sockets": "Maxsock",
    "max_connections": "Maxconn", "hard_max_connections": "Hard_maxconn", "current_connections": "CurrConns",
    "connections_total": "CumConns", "requests_total": "CumReq", "max_ssl_connections": "MaxSslConns",
    "current_ssl_connections": "CurrSslConns", "ssl_connections_total": "CumSslConns", "max_pipes": "Maxpipes",
    "pipes_used_total": "PipesUsed", "pipes_free_total": "PipesFree", "current_connection_rate": "ConnRate",
    "limit_connection_rate": "ConnRateLimit", "max_connection_rate": "MaxConnRate",
    "current_session_rate": "SessRate", "limit_session_rate": "SessRateLimit", "max_session_rate": "MaxSessRate",
    "current_ssl_rate": "SslRate", "limit_ssl_rate": "SslRateLimit", "max_ssl_rate": "MaxSslRate",
    "current_frontend_ssl_key_rate": "SslFrontendKeyRate", "max_frontend_ssl_key_rate": "SslFrontendMaxKeyRate",
    "frontend_ssl_reuse": "SslFrontendSessionReuse_pct", "current_backend_ssl_key_rate": "SslBackendKeyRate",
    "max_backend_ssl_key_rate": "SslBackendMaxKeyRate", "ssl_cache_lookups_total": "SslCacheLookups",
    "ssl_cache_misses_total": "SslCacheMisses", "http_comp_bytes_in_total": "CompressBpsIn",
    "http_comp_bytes_out_total": "CompressBpsOut", "limit_http_comp": "CompressBpsRateLim",
    "current_zlib_memory": None, "max_zlib_memory": None, "current_tasks": "Tasks",
    "current_run_queue": "Run_queue", "idle_time_percent": "Idle_pct", "stopping": "Stopping", "jobs": "Jobs",
    "unstoppable_jobs": "Unstoppable Jobs", "listeners": "Listeners", "active_peers": "ActivePeers",
    "connected_peers": "ConnectedPeers", "dropped_logs_total": "DroppedLogs", "busy_polling_enabled": "BusyPolling",
    "failed_resolutions": "FailedResolutions", "bytes_out_total": "TotalBytesOut",
    "spliced_bytes_out_total": "TotalSplicdedBytesOut", "bytes_out_rate": "BytesOutRate",
    "recv_logs_total": "CumRecvLogs", "max_memory_bytes": "Memmax_bytes", "pool_allocated_bytes": "PoolAlloc_bytes",
    "pool_used_bytes": "PoolUsed_bytes", "start_time_seconds": "Start_time_sec",
}

# frontend/backend/server metric -> CSV field (the promex "alt names" of HAProxy's stats fields)
_FIELD: dict[str, str] = {
    "current_queue": "qcur", "max_queue": "qmax", "current_sessions": "scur", "max_sessions": "smax",
    "limit_sessions": "slim", "sessions_total": "stot", "bytes_in_total": "bin", "bytes_out_total": "bout",
    "requests_denied_total": "dreq", "responses_denied_total": "dresp", "request_errors_total": "ereq",
    "connection_errors_total": "econ", "response_errors_total": "eresp", "retry_warnings_total": "wretr",
    "redispatch_warnings_total": "wredis", "weight": "weight", "active_servers": "act", "backup_servers": "bck",
    "check_failures_total": "chkfail", "check_up_down_total": "chkdown", "check_last_change_seconds": "lastchg",
    "downtime_seconds_total": "downtime", "queue_limit": "qlimit", "current_throttle": "throttle",
    "loadbalanced_total": "lbtot", "limit_session_rate": "rate_lim", "max_session_rate": "rate_max",
    "check_code": "check_code", "http_requests_rate_max": "req_rate_max", "http_requests_total": "req_tot",
    "client_aborts_total": "cli_abrt", "server_aborts_total": "srv_abrt", "http_comp_bytes_in_total": "comp_in",
    "http_comp_bytes_out_total": "comp_out", "http_comp_bytes_bypassed_total": "comp_byp",
    "http_comp_responses_total": "comp_rsp", "last_session_seconds": "lastsess",
    "connections_rate_max": "conn_rate_max", "connections_total": "conn_tot",
    "intercepted_requests_total": "intercepted", "denied_connections_total": "dcon",
    "denied_sessions_total": "dses", "failed_header_rewriting_total": "wrew",
    "connection_attempts_total": "connect", "connection_reuses_total": "reuse",
    "http_cache_lookups_total": "cache_lookups", "http_cache_hits_total": "cache_hits",
    "idle_connections_current": "srv_icur", "idle_connections_limit": "src_ilim", "internal_errors_total": "eint",
    "unsafe_idle_connections_current": "idle_conn_cur", "safe_idle_connections_current": "safe_conn_cur",
    "used_connections_current": "used_conn_cur", "need_connections_current": "need_conn_est",
    "uweight": "uweight",
}
# millisecond CSV fields exported in seconds
_MS_FIELD: dict[str, str] = {
    "queue_time_average_seconds": "qtime", "connect_time_average_seconds": "ctime",
    "response_time_average_seconds": "rtime", "total_time_average_seconds": "ttime",
    "max_queue_time_seconds": "qtime_max", "max_connect_time_seconds": "ctime_max",
    "max_response_time_seconds": "rtime_max", "max_total_time_seconds": "ttime_max",
    "check_duration_seconds": "check_duration",
}
# families exported only for proxies in mode http
_HTTP_ONLY = frozenset({
    "http_responses_total", "http_requests_rate_max", "http_requests_total", "http_comp_bytes_in_total",
    "http_comp_bytes_out_total", "http_comp_bytes_bypassed_total", "http_comp_responses_total",
    "intercepted_requests_total", "http_cache_lookups_total", "http_cache_hits_total",
})
# server families exported only when the server's check is enabled and not paused (maintenance)
_CHECKED_ONLY = frozenset({"check_status", "check_code", "check_duration_seconds"})
_CODES = (("1xx", "hrsp_1xx"), ("2xx", "hrsp_2xx"), ("3xx", "hrsp_3xx"), ("4xx", "hrsp_4xx"), ("5xx", "hrsp_5xx"),
          ("other", "hrsp_other"))


class QueryError(ValueError):
    """A bad exporter query string (HAProxy answers 400)."""


def parse_query(query: str) -> tuple[frozenset[str], bool]:
    """`scope=...` / `no-maint` options, left to right (reference 5.1) -> (scopes, no_maint).

    Raises QueryError for an unknown scope or `scope` without `=`.
    """
    scopes: set[str] = set(SCOPES)
    first_scope = True
    no_maint = False
    for part in query.split("&") if query else ():
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = unquote_plus(key)
        if key == "scope":
            if not eq:
                raise QueryError("scope without value")
            value = unquote_plus(value)
            if first_scope:
                scopes.clear()
                first_scope = False
            if value == "":
                scopes.clear()
            elif value == "*":
                scopes.update(SCOPES)
            elif value in SCOPES:
                scopes.add(value)
            else:
                raise QueryError(f"unknown scope '{value}'")
        elif key == "no-maint":
            no_maint = True
    return frozenset(scopes), no_maint


def _num(v: Any) -> float:
    if v is None or v == "":
        return NAN
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def _family(kind: str, name: str, help_text: str, labels: list[str]) -> Metric:
    if kind == "counter" and name.endswith("_total"):
        return CounterMetricFamily(name, help_text, labels=labels)
    if kind == "counter":
        return Metric(name, help_text, "unknown")
    return GaugeMetricFamily(name, help_text, labels=labels)


def _add(metric: Metric, labels: dict[str, str], value: float) -> None:
    name = metric.name + "_total" if metric.type == "counter" else metric.name
    metric.add_sample(name, labels, value)


class PromexCollector(Collector):
    """A prometheus-client Collector over one `Snapshot` (collect() may be called many times)."""

    def __init__(self, snap: Snapshot, scopes: Iterable[str] = SCOPES, no_maint: bool = False) -> None:
        self.snap = snap
        self.scopes = frozenset(scopes)
        self.no_maint = no_maint

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        fronts = [p.frontend for p in snap.proxies if p.frontend is not None]
        backs = [p.backend for p in snap.proxies if p.backend is not None]
        servers = [s for p in snap.proxies for s in p.servers
                   if not (self.no_maint and s["_state"] == "MAINT")]
        for scope, short, kind, help_text in CATALOGUE:
            full = f"haproxy_{scope}_{short}"
            if scope == "process":
                if "global" not in self.scopes:
                    continue
                yield self._process(full, short, kind, help_text)
                continue
            if scope not in self.scopes:
                continue
            rows = {"frontend": fronts, "backend": backs, "server": servers}[scope]
            m = self._objects(full, short, kind, help_text, scope, rows)
            if m is not None:
                yield m

    def _process(self, full: str, short: str, kind: str, help_text: str) -> Metric:
        if short == "build_info":
            m = GaugeMetricFamily(full, help_text, labels=["version"])
            m.add_metric([str(self.snap.info.get("Build info", ""))], 1)
            return m
        m = _family(kind, full, help_text, [])
        key = _PROCESS.get(short)
        _add(m, {}, _num(self.snap.info.get(key)) if key else NAN)
        return m

    def _objects(self, full: str, short: str, kind: str, help_text: str, scope: str,
                 rows: list[Row]) -> Metric | None:
        if short in _HTTP_ONLY:
            rows = [r for r in rows if r["_http"]]
        if scope == "server" and short in _CHECKED_ONLY:
            rows = [r for r in rows if r["check_status"] is not None]
            if short == "check_duration_seconds":  # only once a check has completed
                rows = [r for r in rows if r["check_duration"] is not None]
        if not rows:
            return None
        m = _family(kind, full, help_text, [])
        for label_set, value in _samples(scope, short, rows):
            _add(m, label_set, value)
        return m

    def describe(self) -> list[Metric]:
        return []


def _labels(row: Row) -> dict[str, str]:
    if row["type"] == TYPE_SERVER:
        return {"proxy": row["pxname"], "server": row["svname"]}
    return {"proxy": row["pxname"]}


def _samples(scope: str, short: str, rows: list[Row]) -> Iterator[tuple[dict[str, str], float]]:
    if short == "http_responses_total":
        for code, field in _CODES:  # HAProxy loops over the codes outside the objects
            for r in rows:
                yield {**_labels(r), "code": code}, _num(r[field])
        return
    for r in rows:
        base = _labels(r)
        if short == "status":
            if scope == "server":
                cur = r["_state"]
                for st in PROMEX_SERVER_STATES:
                    yield {**base, "state": st}, 1.0 if st == cur else 0.0
            else:
                for st in ("DOWN", "UP"):
                    yield {**base, "state": st}, 1.0 if (st == "UP") == bool(r["_up"]) else 0.0
        elif short == "check_status":
            cur = r["_check_status"]
            for st in PROMEX_CHECK_STATES:
                yield {**base, "state": st}, 1.0 if st == cur else 0.0
        elif short in ("agg_server_status", "agg_server_check_status"):
            for st, n in r["_agg_server_status"].items():
                yield {**base, "state": st}, float(n)
        elif short == "agg_check_status":
            for st, n in r["_agg_check_status"].items():
                yield {**base, "state": st}, float(n)
        elif short == "check_code":
            yield base, _num(r["check_code"] if r["check_code"] is not None else 0)
        elif short in _MS_FIELD:
            v = r[_MS_FIELD[short]]
            yield base, NAN if v is None else float(v) / 1000.0
        else:
            field = _FIELD.get(short)
            yield base, _num(r[field]) if field else NAN


def render(snap: Snapshot, scopes: Iterable[str] = SCOPES, no_maint: bool = False) -> bytes:
    """The text exposition (format 0.0.4) of `snap`, as HAProxy's exporter would list it."""
    return generate_latest(PromexCollector(snap, scopes, no_maint))
