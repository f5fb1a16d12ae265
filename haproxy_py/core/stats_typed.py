"""Rendering a stats snapshot in HAProxy 2.6's typed form: `show stat typed` and `show info typed`.

The typed form prints one line per field that carries a value, and with it what the plain CSV
cannot say: where the value comes from (origin), what kind of figure it is (nature), how far it
applies (scope), and its C type. For an object field:

    F.<iid>.<sid>.<pos>.<name>.<pid>:<origin><nature><scope>:<type>:<value>

(`F` frontend, `B` backend, `S` server, `L` listener), and for a process field:

    <pos>.<name>.<process>:<origin><nature><scope>:<type>:<value>

HAProxy chooses the tags and the type field by field, and for some fields by object kind (a
backend's `rate` is a gauge `MGP` where a frontend's or a server's is a rate `MRP`; `act` and `bck`
are a status `SGP` on a server but a metric `MGP` on a backend). None of that can be derived from
the values, so it is data here: `STAT_FIELDS` and `INFO_FIELDS` were recorded from HAProxy 2.6.12's
own `show stat typed desc` / `show info typed desc` / `show info typed float` answers, with the
descriptions it prints for `desc`. A (kind, field) pair HAProxy never prints takes the same field's
tags of another kind, and a field missing from the tables is typed from its Python value (tags
`???`, which is how HAProxy spells unset tags).

Positions are HAProxy's field numbers: the CSV header's `-` column (between `agg_check_status` and
the module fields `ssl_sess`...) is not a field, so module fields are numbered one less than their
CSV column. Process fields keep HAProxy's numbers, with its gap at 45 and 46 (ZlibMemUsage,
MaxZlibMemUsage, printed only by a zlib build of HAProxy and not reported here).

Tag letters: origin M metric, S status, K key, C config, P product; nature A age, a average,
C counter, D duration, G gauge, L limit, M max, N name, O output, R rate; scope P process,
S service, s system, C cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from haproxy_py.core import stats
from haproxy_py.core.stats import Row, Snapshot

KIND_LETTERS: dict[int, str] = {stats.TYPE_FRONTEND: "F", stats.TYPE_BACKEND: "B", stats.TYPE_SERVER: "S",
                                stats.TYPE_LISTENER: "L"}

# (name, "<kind>=<tags>:<type> ...", description), in HAProxy's field order (position = index)
_STAT_TABLE: tuple[tuple[str, str, str], ...] = (
    ("pxname", "F=KNS:str B=KNS:str S=KNS:str L=KNS:str",
     "Proxy name"),
    ("svname", "F=KNS:str B=KNS:str S=KNS:str L=KNS:str",
     "Server name"),
    ("qcur", "B=MGP:u32 S=MGP:u32",
     "Number of current queued connections"),
    ("qmax", "B=MMP:u32 S=MMP:u32",
     "Highest value of queued connections encountered since process started"),
    ("scur", "F=MGP:u32 B=MGP:u32 S=MGP:u32 L=MGP:u32",
     "Number of current sessions on the frontend, backend or server"),
    ("smax", "F=MMP:u32 B=MMP:u32 S=MMP:u32 L=MMP:u32",
     "Highest value of current sessions encountered since process started"),
    ("slim", "F=CLP:u32 B=CLP:u32 S=CLP:u32 L=CLP:u32",
     "Frontend/listener/server's maxconn, backend's fullconn"),
    ("stot", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of sessions since process started"),
    ("bin", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of request bytes since process started"),
    ("bout", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of response bytes since process started"),
    ("dreq", "F=MCP:u64 B=MCP:u64 L=MCP:u64",
     "Total number of denied requests since process started"),
    ("dresp", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of denied responses since process started"),
    ("ereq", "F=MCP:u64 L=MCP:u64",
     "Total number of invalid requests since process started"),
    ("econ", "B=MCP:u64 S=MCP:u64",
     "Total number of failed connections to server since the worker process started"),
    ("eresp", "B=MCP:u64 S=MCP:u64",
     "Total number of invalid responses since the worker process started"),
    ("wretr", "B=MCP:u64 S=MCP:u64",
     "Total number of server connection retries since the worker process started"),
    ("wredis", "B=MCP:u64 S=MCP:u64",
     "Total number of server redispatches due to connection failures since the worker process started"),
    ("status", "F=SGP:str B=SGP:str S=SGP:str L=SGP:str",
     "Frontend/listen status: OPEN/WAITING/FULL/STOP; backend: UP/DOWN; server: last check status"),
    ("weight", "B=MaP:u32 S=MaP:u32",
     "Server's effective weight, or sum of active servers' effective weights for a backend"),
    ("act", "B=MGP:u32 S=SGP:u32",
     "Total number of active UP servers with a non-zero weight"),
    ("bck", "B=MGP:u32 S=SGP:u32",
     "Total number of backup UP servers with a non-zero weight"),
    ("chkfail", "S=MCP:u64",
     "Total number of failed individual health checks per server/backend, since the worker process started"),
    ("chkdown", "B=MCP:u64 S=MCP:u64",
     "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker "
     "process started"),
    ("lastchg", "B=MAP:u32 S=MAP:u32",
     "How long ago the last server state changed, in seconds"),
    ("downtime", "B=MCP:u32 S=MCP:u32",
     "Total time spent in DOWN state, for server or backend"),
    ("qlimit", "S=CGS:u32",
     "Limit on the number of connections in queue, for servers only (maxqueue argument)"),
    ("pid", "F=KGP:u32 B=KGP:u32 S=KGP:u32 L=KGP:u32",
     "Relative worker process number (1)"),
    ("iid", "F=KGS:u32 B=KGS:u32 S=KGS:u32 L=KGS:u32",
     "Frontend or Backend numeric identifier ('id' setting)"),
    ("sid", "F=KGS:u32 B=KGS:u32 S=KGS:u32 L=KGS:u32",
     "Server numeric identifier ('id' setting)"),
    ("throttle", "S=MaP:u32",
     "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)"),
    ("lbtot", "B=MCP:u64 S=MCP:u64",
     "Total number of requests routed by load balancing since the worker process started (ignores queue pop and "
     "stickiness)"),
    ("tracked", "S=CNS:str",
     "Name of the other server this server tracks for its state"),
    ("type", "F=CGS:u32 B=CGS:u32 S=CGS:u32 L=CGS:u32",
     "Type of the object (Listener, Frontend, Backend, Server)"),
    ("rate", "F=MRP:u32 B=MGP:u32 S=MRP:u32",
     "Total number of sessions processed by this object over the last second (sessions for listeners/frontends, "
     "requests for backends/servers)"),
    ("rate_lim", "F=CLP:u32",
     "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)"),
    ("rate_max", "F=MMP:u32 B=MGP:u32 S=MMP:u32",
     "Highest value of sessions per second observed since the worker process started"),
    ("check_status", "S=MOP:str",
     "Status report of the server's latest health check, prefixed with '*' if a check is currently in progress"),
    ("check_code", "S=MOP:u32",
     "HTTP/SMTP/LDAP status code reported by the latest server health check"),
    ("check_duration", "S=MDP:u64",
     "Total duration of the latest server health check, in milliseconds"),
    ("hrsp_1xx", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    ("hrsp_2xx", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status 200-299 returned by this object since the worker process started"),
    ("hrsp_3xx", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status 300-399 returned by this object since the worker process started"),
    ("hrsp_4xx", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status 400-499 returned by this object since the worker process started"),
    ("hrsp_5xx", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status 500-599 returned by this object since the worker process started"),
    ("hrsp_other", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP responses with status <100, >599 returned by this object since the worker process "
     "started (error -1 included)"),
    ("hanafail", "S=MCP:u64",
     "Total number of failed checks caused by an 'on-error' directive after an 'observe' condition matched"),
    ("req_rate", "F=MRP:u32",
     "Number of HTTP requests processed over the last second on this object"),
    ("req_rate_max", "F=MMP:u32",
     "Highest value of http requests observed since the worker process started"),
    ("req_tot", "F=MCP:u64 B=MCP:u64 S=MCP:u64",
     "Total number of HTTP requests processed by this object since the worker process started"),
    ("cli_abrt", "B=MCP:u64 S=MCP:u64",
     "Total number of requests or connections aborted by the client since the worker process started"),
    ("srv_abrt", "B=MCP:u64 S=MCP:u64",
     "Total number of requests or connections aborted by the server since the worker process started"),
    ("comp_in", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes submitted to the HTTP compressor for this object since the worker process started"),
    ("comp_out", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes emitted by the HTTP compressor for this object since the worker process started"),
    ("comp_byp", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes that bypassed HTTP compression for this object since the worker process started "
     "(CPU/memory/bandwidth limitation)"),
    ("comp_rsp", "F=MCP:u64 B=MCP:u64",
     "Total number of HTTP responses that were compressed for this object since the worker process started"),
    ("lastsess", "B=MAP:s32 S=MAP:s32",
     "How long ago some traffic was seen on this object on this worker process, in seconds"),
    ("last_chk", "S=MOP:str",
     "Short description of the latest health check report for this server (see also check_desc)"),
    ("last_agt", "S=MOP:str",
     "Short description of the latest agent check report for this server (see also agent_desc)"),
    ("qtime", "B=MaP:u32 S=MaP:u32",
     "Time spent in the queue, in milliseconds, averaged over the 1024 last requests (backend/server)"),
    ("ctime", "B=MaP:u32 S=MaP:u32",
     "Time spent waiting for a connection to complete, in milliseconds, averaged over the 1024 last requests "
     "(backend/server)"),
    ("rtime", "B=MaP:u32 S=MaP:u32",
     "Time spent waiting for a server response, in milliseconds, averaged over the 1024 last requests "
     "(backend/server)"),
    ("ttime", "B=MaP:u32 S=MaP:u32",
     "Total request+response time (request+queue+connect+response+processing), in milliseconds, averaged over the"
     " 1024 last requests (backend/server)"),
    ("agent_status", "S=MOP:str",
     "Status report of the server's latest agent check, prefixed with '*' if a check is currently in progress"),
    ("agent_code", "S=MOP:u32",
     "Status code reported by the latest server agent check"),
    ("agent_duration", "S=MDP:u64",
     "Total duration of the latest server agent check, in milliseconds"),
    ("check_desc", "S=MOP:str",
     "Textual description of the latest health check report for this server"),
    ("agent_desc", "S=MOP:str",
     "Textual description of the latest agent check report for this server"),
    ("check_rise", "S=CGS:u32",
     "Number of successful health checks before declaring a server UP (server 'rise' setting)"),
    ("check_fall", "S=CGS:u32",
     "Number of failed health checks before declaring a server DOWN (server 'fall' setting)"),
    ("check_health", "S=CGS:u32",
     "Current server health check level (0..fall-1=DOWN, fall..rise-1=UP)"),
    ("agent_rise", "S=CGS:u32",
     "Number of successful agent checks before declaring a server UP (server 'rise' setting)"),
    ("agent_fall", "S=CGS:u32",
     "Number of failed agent checks before declaring a server DOWN (server 'fall' setting)"),
    ("agent_health", "S=CGS:u32",
     "Current server agent check level (0..fall-1=DOWN, fall..rise-1=UP)"),
    ("addr", "S=CGS:str L=CGS:str",
     "Server's address:port, shown only if show-legends is set, or at levels oper/admin for the CLI"),
    ("cookie", "B=CNS:str S=CNS:str",
     "Backend's cookie name or Server's cookie value, shown only if show-legends is set, or at levels oper/admin "
     "for the CLI"),
    ("mode", "F=CGS:str B=CGS:str S=CGS:str L=CGS:str",
     "'mode' setting (tcp/http/health/cli)"),
    ("algo", "B=CGS:str",
     "Backend's load balancing algorithm, shown only if show-legends is set, or at levels oper/admin for the CLI"),
    ("conn_rate", "F=MRP:u32",
     "Number of new connections accepted over the last second on the frontend for this worker process"),
    ("conn_rate_max", "F=MMP:u32",
     "Highest value of connections per second observed since the worker process started"),
    ("conn_tot", "F=MCP:u64",
     "Total number of new connections accepted on this frontend since the worker process started"),
    ("intercepted", "F=MCP:u64",
     "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker "
     "process started"),
    ("dcon", "F=MCP:u64 L=MCP:u64",
     "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since "
     "the worker process started"),
    ("dses", "F=MCP:u64 L=MCP:u64",
     "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the"
     " worker process started"),
    ("wrew", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of failed HTTP header rewrites since the worker process started"),
    ("connect", "B=MCP:u64 S=MCP:u64",
     "Total number of outgoing connection attempts on this backend/server since the worker process started"),
    ("reuse", "B=MCP:u64 S=MCP:u64",
     "Total number of reused connection on this backend/server since the worker process started"),
    ("cache_lookups", "F=MCP:u64 B=MCP:u64",
     "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process "
     "started"),
    ("cache_hits", "F=MCP:u64 B=MCP:u64",
     "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process "
     "started"),
    ("srv_icur", "S=MGP:u32",
     "Current number of idle connections available for reuse on this server"),
    ("src_ilim", "S=CLP:u32",
     "Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)"),
    ("qtime_max", "B=MMP:u32 S=MMP:u32",
     "Maximum observed time spent in the queue, in milliseconds (backend/server)"),
    ("ctime_max", "B=MMP:u32 S=MMP:u32",
     "Maximum observed time spent waiting for a connection to complete, in milliseconds (backend/server)"),
    ("rtime_max", "B=MMP:u32 S=MMP:u32",
     "Maximum observed time spent waiting for a server response, in milliseconds (backend/server)"),
    ("ttime_max", "B=MMP:u32 S=MMP:u32",
     "Maximum observed total request+response time (request+queue+connect+response+processing), in milliseconds "
     "(backend/server)"),
    ("eint", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of internal errors since process started"),
    ("idle_conn_cur", "S=MGP:u32",
     "Current number of unsafe idle connections"),
    ("safe_conn_cur", "S=MGP:u32",
     "Current number of safe idle connections"),
    ("used_conn_cur", "S=MGP:u32",
     "Current number of connections in use"),
    ("need_conn_est", "S=MGP:u32",
     "Estimated needed number of connections"),
    ("uweight", "B=MaP:u32 S=MaP:u32",
     "Server's user weight, or sum of active servers' user weights for a backend"),
    ("agg_server_status", "B=MGP:u32",
     "Backend's aggregated gauge of servers' status"),
    ("agg_server_check_status", "B=MGP:u32",
     "Backend's aggregated gauge of servers' state check status"),
    ("agg_check_status", "B=MGP:u32",
     "Backend's aggregated gauge of servers' state check status"),
    ("ssl_sess", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of ssl sessions established"),
    ("ssl_reused_sess", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of ssl sessions reused"),
    ("ssl_failed_handshake", "F=MCP:u64 B=MCP:u64 S=MCP:u64 L=MCP:u64",
     "Total number of failed handshake"),
    ("h2_headers_rcvd", "F=MCP:u64 B=MCP:u64",
     "Total number of received HEADERS frames"),
    ("h2_data_rcvd", "F=MCP:u64 B=MCP:u64",
     "Total number of received DATA frames"),
    ("h2_settings_rcvd", "F=MCP:u64 B=MCP:u64",
     "Total number of received SETTINGS frames"),
    ("h2_rst_stream_rcvd", "F=MCP:u64 B=MCP:u64",
     "Total number of received RST_STREAM frames"),
    ("h2_goaway_rcvd", "F=MCP:u64 B=MCP:u64",
     "Total number of received GOAWAY frames"),
    ("h2_detected_conn_protocol_errors", "F=MCP:u64 B=MCP:u64",
     "Total number of connection protocol errors"),
    ("h2_detected_strm_protocol_errors", "F=MCP:u64 B=MCP:u64",
     "Total number of stream protocol errors"),
    ("h2_rst_stream_resp", "F=MCP:u64 B=MCP:u64",
     "Total number of RST_STREAM sent on detected error"),
    ("h2_goaway_resp", "F=MCP:u64 B=MCP:u64",
     "Total number of GOAWAY sent on detected error"),
    ("h2_open_connections", "F=MGP:u64 B=MGP:u64",
     "Count of currently open connections"),
    ("h2_backend_open_streams", "F=MGP:u64 B=MGP:u64",
     "Count of currently open streams"),
    ("h2_total_connections", "F=MCP:u64 B=MCP:u64",
     "Total number of connections"),
    ("h2_backend_total_streams", "F=MCP:u64 B=MCP:u64",
     "Total number of streams"),
    ("h1_open_connections", "F=MGP:u64 B=MGP:u64",
     "Count of currently open connections"),
    ("h1_open_streams", "F=MGP:u64 B=MGP:u64",
     "Count of currently open streams"),
    ("h1_total_connections", "F=MCP:u64 B=MCP:u64",
     "Total number of connections"),
    ("h1_total_streams", "F=MCP:u64 B=MCP:u64",
     "Total number of streams"),
    ("h1_bytes_in", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes received"),
    ("h1_bytes_out", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes send"),
    ("h1_spliced_bytes_in", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes received using kernel splicing"),
    ("h1_spliced_bytes_out", "F=MCP:u64 B=MCP:u64",
     "Total number of bytes sendusing kernel splicing"),
)

# (position, name, "<tags>:<type>", plus " float=<tags>:<type>" where the `float` flag changes it, description)
_INFO_TABLE: tuple[tuple[int, str, str, str], ...] = (
    (0, "Name", "POS:str",
     "Product name"),
    (1, "Version", "POS:str",
     "Product version"),
    (2, "Release_date", "POS:str",
     "Date of latest source code update"),
    (3, "Nbthread", "CGS:u32",
     "Number of started threads (global.nbthread)"),
    (4, "Nbproc", "CGS:u32",
     "Number of started worker processes (historical, always 1)"),
    (5, "Process_num", "KGP:u32",
     "Relative worker process number (1)"),
    (6, "Pid", "SGP:u32",
     "This worker process identifier for the system"),
    (7, "Uptime", "MDP:str",
     "How long ago this worker process was started (days+hours+minutes+seconds)"),
    (8, "Uptime_sec", "MDP:u32 float=MDP:flt",
     "How long ago this worker process was started (seconds)"),
    (9, "Memmax_MB", "CLP:u32",
     "Worker process's hard limit on memory usage in MB (-m on command line)"),
    (10, "PoolAlloc_MB", "MGP:u32",
     "Amount of memory allocated in pools (in MB)"),
    (11, "PoolUsed_MB", "MGP:u32",
     "Amount of pool memory currently used (in MB)"),
    (12, "PoolFailed", "MCP:u32",
     "Number of failed pool allocations since this worker was started"),
    (13, "Ulimit-n", "CLP:u32",
     "Hard limit on the number of per-process file descriptors"),
    (14, "Maxsock", "CLP:u32",
     "Hard limit on the number of per-process sockets"),
    (15, "Maxconn", "CLP:u32",
     "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)"),
    (16, "Hard_maxconn", "CLP:u32",
     "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)"),
    (17, "CurrConns", "MGP:u32",
     "Current number of connections on this worker process"),
    (18, "CumConns", "MCP:u32",
     "Total number of connections on this worker process since started"),
    (19, "CumReq", "MCP:u32",
     "Total number of requests on this worker process since started"),
    (20, "MaxSslConns", "MMP:u32",
     "Hard limit on the number of per-process SSL endpoints (front+back), 0=unlimited"),
    (21, "CurrSslConns", "MGP:u32",
     "Current number of SSL endpoints on this worker process (front+back)"),
    (22, "CumSslConns", "MCP:u32",
     "Total number of SSL endpoints on this worker process since started (front+back)"),
    (23, "Maxpipes", "CLP:u32",
     "Hard limit on the number of pipes for splicing, 0=unlimited"),
    (24, "PipesUsed", "MGP:u32",
     "Current number of pipes in use in this worker process"),
    (25, "PipesFree", "MGP:u32",
     "Current number of allocated and available pipes in this worker process"),
    (26, "ConnRate", "MRP:u32 float=MRP:flt",
     "Number of front connections created on this worker process over the last second"),
    (27, "ConnRateLimit", "CLP:u32",
     "Hard limit for ConnRate (global.maxconnrate)"),
    (28, "MaxConnRate", "MMP:u32",
     "Highest ConnRate reached on this worker process since started (in connections per second)"),
    (29, "SessRate", "MRP:u32 float=MRP:flt",
     "Number of sessions created on this worker process over the last second"),
    (30, "SessRateLimit", "CLP:u32",
     "Hard limit for SessRate (global.maxsessrate)"),
    (31, "MaxSessRate", "MRP:u32",
     "Highest SessRate reached on this worker process since started (in sessions per second)"),
    (32, "SslRate", "MRP:u32 float=MRP:flt",
     "Number of SSL connections created on this worker process over the last second"),
    (33, "SslRateLimit", "CLP:u32",
     "Hard limit for SslRate (global.maxsslrate)"),
    (34, "MaxSslRate", "MMP:u32",
     "Highest SslRate reached on this worker process since started (in connections per second)"),
    (35, "SslFrontendKeyRate", "MGP:u32 float=MRP:flt",
     "Number of SSL keys created on frontends in this worker process over the last second"),
    (36, "SslFrontendMaxKeyRate", "MMP:u32",
     "Highest SslFrontendKeyRate reached on this worker process since started (in SSL keys per second)"),
    (37, "SslFrontendSessionReuse_pct", "MGP:u32 float=MRP:flt",
     "Percent of frontend SSL connections which did not require a new key"),
    (38, "SslBackendKeyRate", "MRP:u32 float=MRP:flt",
     "Number of SSL keys created on backends in this worker process over the last second"),
    (39, "SslBackendMaxKeyRate", "MMP:u32",
     "Highest SslBackendKeyRate reached on this worker process since started (in SSL keys per second)"),
    (40, "SslCacheLookups", "MCP:u32",
     "Total number of SSL session ID lookups in the SSL session cache on this worker since started"),
    (41, "SslCacheMisses", "MCP:u32",
     "Total number of SSL session ID lookups that didn't find a session in the SSL session cache on this worker "
     "since started"),
    (42, "CompressBpsIn", "MRP:u32 float=MRP:flt",
     "Number of bytes submitted to the HTTP compressor in this worker process over the last second"),
    (43, "CompressBpsOut", "MRP:u32 float=MRP:flt",
     "Number of bytes emitted by the HTTP compressor in this worker process over the last second"),
    (44, "CompressBpsRateLim", "CLP:u32",
     "Limit of CompressBpsOut beyond which HTTP compression is automatically disabled"),
    (47, "Tasks", "MGP:u32",
     "Total number of tasks in the current worker process (active + sleeping)"),
    (48, "Run_queue", "MGP:u32",
     "Total number of active tasks+tasklets in the current worker process"),
    (49, "Idle_pct", "MaP:u32",
     "Percentage of last second spent waiting in the current worker thread"),
    (50, "node", "COS:str",
     "Node name (global.node)"),
    (51, "description", "COS:str",
     "Node description (global.description)"),
    (52, "Stopping", "MGP:u32",
     "1 if the worker process is currently stopping, otherwise zero"),
    (53, "Jobs", "MGP:u32",
     "Current number of active jobs on the current worker process (frontend connections, master connections, "
     "listeners)"),
    (54, "Unstoppable Jobs", "MGP:u32",
     "Current number of unstoppable jobs on the current worker process (master connections)"),
    (55, "Listeners", "MGP:u32",
     "Current number of active listeners on the current worker process"),
    (56, "ActivePeers", "MGP:u32",
     "Current number of verified active peers connections on the current worker process"),
    (57, "ConnectedPeers", "MGP:u32",
     "Current number of peers having passed the connection step on the current worker process"),
    (58, "DroppedLogs", "MGP:u32",
     "Total number of dropped logs for current worker process since started"),
    (59, "BusyPolling", "MGP:u32",
     "1 if busy-polling is currently in use on the worker process, otherwise zero (config.busy-polling)"),
    (60, "FailedResolutions", "MGP:u32",
     "Total number of failed DNS resolutions in current worker process since started"),
    (61, "TotalBytesOut", "MGP:u64",
     "Total number of bytes emitted by current worker process since started"),
    (62, "TotalSplicdedBytesOut", "MGP:u64",
     "Total number of bytes emitted by current worker process through a kernel pipe since started"),
    (63, "BytesOutRate", "MRP:u64",
     "Number of bytes emitted by current worker process over the last second"),
    (64, "DebugCommandsIssued", "MGP:u32",
     "Number of debug commands issued on this process (anything > 0 is unsafe)"),
    (65, "CumRecvLogs", "MCP:u32",
     "Total number of log messages received by log-forwarding listeners on this worker process since started"),
    (66, "Build info", "POS:str",
     "Build info"),
    (67, "Memmax_bytes", "CLP:u32",
     "Worker process's hard limit on memory usage in byes (-m on command line)"),
    (68, "PoolAlloc_bytes", "MGP:u64",
     "Amount of memory allocated in pools (in bytes)"),
    (69, "PoolUsed_bytes", "MGP:u64",
     "Amount of pool memory currently used (in bytes)"),
    (70, "Start_time_sec", "MDP:u32 float=MDP:flt",
     "Start time in seconds"),
    (71, "Tainted", "SGP:str",
     "Experimental features used"),
)


class Typing(NamedTuple):
    """A field's three tag letters (origin, nature, scope) and its type name."""

    tags: str
    type: str


class StatField(NamedTuple):
    name: str
    kinds: Mapping[str, Typing]  # object kind letter -> typing, for the kinds HAProxy prints it on
    desc: str


class InfoField(NamedTuple):
    pos: int
    name: str
    typing: Typing
    float_typing: Typing  # with `show info typed float`
    desc: str


def _parse_typing(spec: str) -> Typing:
    tags, _, type_ = spec.partition(":")
    return Typing(tags, type_)


def _stat_field(name: str, spec: str, desc: str) -> StatField:
    kinds = {kind: _parse_typing(t) for kind, _, t in (part.partition("=") for part in spec.split())}
    return StatField(name, kinds, desc)


def _info_field(pos: int, name: str, spec: str, desc: str) -> InfoField:
    plain, _, floating = spec.partition(" float=")
    typing = _parse_typing(plain)
    return InfoField(pos, name, typing, _parse_typing(floating) if floating else typing, desc)


STAT_FIELDS: dict[str, StatField] = {f[0]: _stat_field(*f) for f in _STAT_TABLE}
INFO_FIELDS: dict[str, InfoField] = {f[1]: _info_field(*f) for f in _INFO_TABLE}

# The typed position of each CSV field: its CSV column, less the `-` separator column before it.
STAT_POSITIONS: dict[str, int] = {name: pos for pos, name in enumerate(f for f in stats.FIELDS if f != "-")}

_INT_TYPES: dict[str, tuple[int, bool]] = {"u32": (32, False), "s32": (32, True), "u64": (64, False),
                                           "s64": (64, True)}
_KIND_PREFERENCE = "FBSL"


def value_typing(value: Any) -> Typing:
    """The typing of a field HAProxy's tables do not know, from its Python value."""
    if isinstance(value, int):
        return Typing("???", "u64" if value >= 0 else "s64")
    if isinstance(value, float):
        return Typing("???", "flt")
    return Typing("???", "str")


def stat_typing(kind: str, name: str, value: Any) -> Typing:
    """The tags and type of field `name` on an object of kind `kind` (F, B, S or L)."""
    field = STAT_FIELDS.get(name)
    if field is not None:
        typing = field.kinds.get(kind)
        if typing is not None:
            return typing
        for other in _KIND_PREFERENCE:
            if other in field.kinds:
                return field.kinds[other]
    return value_typing(value)


def format_flt(value: float) -> str:
    """HAProxy's `flt`: printf `%f`, then trailing zeros and a trailing dot removed."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_value(type_: str, value: Any) -> tuple[str, str]:
    """(type, text) of `value` printed as a `type_`: integers wrapped to their C width, `flt` as
    `format_flt`, `str` as is. A value that is not a number where one is expected prints as `str`."""
    if type_ in _INT_TYPES:
        try:
            number = int(value)
        except (TypeError, ValueError):
            return "str", str(value)
        bits, signed = _INT_TYPES[type_]
        number &= (1 << bits) - 1
        if signed and number >= 1 << (bits - 1):
            number -= 1 << bits
        return type_, str(number)
    if type_ == "flt":
        try:
            return "flt", format_flt(float(value))
        except (TypeError, ValueError):
            return "str", str(value)
    return "str", str(value)


def stat_lines(row: Row, *, desc: bool = False, status_suffix: str = "") -> Iterator[str]:
    """The typed lines of one stats row (no line ends). `None` values are not printed; an empty
    string is (HAProxy prints a set but empty `str`, e.g. a server's `last_chk` before any check
    detail). `status_suffix` is appended to `status` (the backend's ` (up/total)` of `up`/`no-maint`)."""
    kind = KIND_LETTERS[row["type"]]
    head = f"{kind}.{row['iid']}.{row['sid']}."
    for name, pos in STAT_POSITIONS.items():
        value = row.get(name)
        if value is None:
            continue
        if name == "status" and status_suffix:
            value = f"{value}{status_suffix}"
        typing = stat_typing(kind, name, value)
        type_, text = format_value(typing.type, value)
        line = f"{head}{pos}.{name}.{row['pid']}:{typing.tags}:{type_}:{text}"
        if desc:
            field = STAT_FIELDS.get(name)
            line += f':"{field.desc if field else ""}"'
        yield line


def _status_suffix(snap: Snapshot, row: Row, marked: bool) -> str:
    """` (up/total)` after a backend's status when `up` or `no-maint` is given, as the CSV has it."""
    if not marked or row["type"] != stats.TYPE_BACKEND:
        return ""
    px = snap.proxy(row["pxname"])
    if px is None:
        return ""
    up = sum(1 for s in px.servers if s["_state"] not in ("DOWN", "MAINT"))
    return f" ({up}/{len(px.servers)})"


def render_stat_typed(snap: Snapshot, *, desc: bool = False, **filters: Any) -> str:
    """`show stat typed`: the typed lines of the rows `stats.select_rows(snap, **filters)` picks, in
    the CSV's order, each ending with a newline (the CLI adds the final empty line)."""
    marked = bool(filters.get("hide_down") or filters.get("no_maint"))
    out = []
    for row in stats.select_rows(snap, **filters):
        for line in stat_lines(row, desc=desc, status_suffix=_status_suffix(snap, row, marked)):
            out.append(line + "\n")
    return "".join(out)


def info_values(snap: Snapshot, *, floats: bool = False) -> dict[str, Any]:
    """The `show info` values, with `float` the fractional uptime and start time HAProxy then shows."""
    info = dict(snap.info)
    if floats:
        if "Uptime_sec" in info:
            info["Uptime_sec"] = max(0.0, snap.now - stats.START_TIME)
        if "Start_time_sec" in info:
            info["Start_time_sec"] = stats.START_TIME
    return info


def render_info_typed(snap: Snapshot, *, desc: bool = False, floats: bool = False) -> str:
    """`show info typed` (`desc`: with each field's description; `float`: rates and times as `flt`),
    each line ending with a newline (the CLI adds the final empty line)."""
    info = info_values(snap, floats=floats)
    process = info.get("Process_num", 1)
    next_pos = max(f.pos for f in INFO_FIELDS.values()) + 1
    out = []
    for name, value in info.items():
        if value is None:
            continue
        field = INFO_FIELDS.get(name)
        if field is None:
            pos, typing, text_desc = next_pos, value_typing(value), ""
            next_pos += 1
        else:
            pos, typing, text_desc = field.pos, field.float_typing if floats else field.typing, field.desc
        type_, text = format_value(typing.type, value)
        line = f"{pos}.{name}.{process}:{typing.tags}:{type_}:{text}"
        if desc:
            line += f':"{text_desc}"'
        out.append((pos, line + "\n"))
    return "".join(line for _, line in sorted(out, key=lambda item: item[0]))
