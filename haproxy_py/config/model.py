"""The configuration as frozen values: what the runtime is built from, with every default resolved.

Nothing here parses text. Times are integer milliseconds (None = not set, i.e. infinite), sizes are
bytes. `Location` is kept on the objects operators refer to in messages (proxies, binds, servers,
rules) so runtime diagnostics can name file:line too.
"""

from __future__ import annotations

import attrs

from haproxy_py.config.errors import Location
from haproxy_py.core.lb.base import BalanceParams

PROXY_KINDS = ("frontend", "backend", "listen", "defaults")


@attrs.frozen
class BindAddress:
    """One listening address of a `bind` line; a port range expands to one socket per port.

    family: "ipv4" | "ipv6" | "unix" | "abns" | "fd" | "sockpair". `host` is "" for the wildcard
    address; for unix/abns it is the path or name; for fd/sockpair `fd` is set.
    """

    family: str
    host: str = ""
    port_lo: int = 0
    port_hi: int = 0
    fd: int | None = None

    def ports(self) -> range:
        return range(self.port_lo, self.port_hi + 1)

    def __str__(self) -> str:
        if self.family in ("unix", "abns"):
            return f"{self.family}@{self.host}" if self.family == "abns" else self.host
        if self.family in ("fd", "sockpair"):
            return f"{self.family}@{self.fd}"
        host = f"[{self.host}]" if self.family == "ipv6" else (self.host or "0.0.0.0")
        port = str(self.port_lo) if self.port_lo == self.port_hi else f"{self.port_lo}-{self.port_hi}"
        return f"{host}:{port}"


@attrs.frozen
class Bind:
    addresses: tuple[BindAddress, ...]
    where: Location
    name: str | None = None
    maxconn: int = 0
    backlog: int = 0
    v4v6: bool = False
    v6only: bool = False
    reuseport: bool = True
    accept_proxy: bool = False
    defer_accept: bool = False
    tfo: bool = False
    interface: str | None = None
    mode: int | None = None  # unix socket permissions
    uid: int | None = None
    gid: int | None = None


@attrs.frozen
class ServerAddress:
    """Where a server is. `port` None means "the port the client connected to" plus `port_offset`."""

    family: str  # "ipv4" | "ipv6" | "unix" | "abns"
    host: str
    port: int | None = None
    port_offset: int = 0
    hostname: str | None = None  # as written, when it had to be resolved

    def __str__(self) -> str:
        if self.family in ("unix", "abns"):
            return self.host
        host = f"[{self.host}]" if self.family == "ipv6" else self.host
        if self.port is None:
            return f"{host}:{self.port_offset:+d}" if self.port_offset else host
        return f"{host}:{self.port}"


@attrs.frozen
class Server:
    name: str
    address: ServerAddress
    where: Location
    id: int = 0  # puid: 1-based position unless `id` is given
    check: bool = False
    inter: int = 2000
    fastinter: int | None = None  # None = inter
    downinter: int | None = None  # None = inter
    rise: int = 2
    fall: int = 3
    check_port: int | None = None
    check_addr: str | None = None
    weight: int = 1
    maxconn: int = 0
    minconn: int = 0
    maxqueue: int = 0
    backup: bool = False
    disabled: bool = False
    slowstart: int = 0
    on_marked_down: str | None = None  # "shutdown-sessions"
    on_marked_up: str | None = None  # "shutdown-backup-sessions"
    on_error: str = "fail-check"
    observe: str | None = None
    error_limit: int = 10
    send_proxy: int = 0  # 0, 1 or 2
    check_send_proxy: bool = False
    agent_check: bool = False
    tracks: str | None = None


@attrs.frozen
class Timeouts:
    """Proxy timeouts in milliseconds; None = not set (infinite)."""

    client: int | None = None
    server: int | None = None
    connect: int | None = None
    queue: int | None = None
    check: int | None = None
    http_request: int | None = None
    http_keep_alive: int | None = None
    tunnel: int | None = None
    client_fin: int | None = None
    server_fin: int | None = None
    tarpit: int | None = None


@attrs.frozen
class Condition:
    """`if`/`unless` followed by ACL terms: an OR of ANDs of (negated, acl-name) terms.

    Anonymous ACLs `{ ... }` are given generated names and added to the proxy's ACL list.
    """

    negate: bool  # True for `unless`
    terms: tuple[tuple[tuple[bool, str], ...], ...]
    text: str = ""


@attrs.frozen
class Acl:
    name: str
    fetch: str  # the sample expression, e.g. "hdr(host),lower"
    flags: tuple[str, ...]
    patterns: tuple[str, ...]
    where: Location


@attrs.frozen
class Rule:
    """One `http-request`, `http-response`, `tcp-request ...` or `redirect` rule.

    `family` is e.g. "http-request", "tcp-request content"; `action` the action keyword; `args`
    the action's own words, already checked against the action table.
    """

    family: str
    action: str
    args: tuple[str, ...]
    where: Location
    cond: Condition | None = None
    param: str | None = None  # what the action word had in parentheses: "txn.x" of set-var(txn.x)


@attrs.frozen
class UseBackend:
    name: str  # a backend name or a log-format template like "be_%[req.hdr(host)]"
    where: Location
    cond: Condition | None = None

    @property
    def dynamic(self) -> bool:
        return "%[" in self.name


@attrs.frozen
class ForwardFor:
    header: str = "X-Forwarded-For"
    except_net: str | None = None
    if_none: bool = False


@attrs.frozen
class HttpCheck:
    """`option httpchk` and `http-check send`: the request a probe sends."""

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


@attrs.frozen
class CheckRule:
    """One `http-check` or `tcp-check` rule (connect, send, expect, ...)."""

    family: str  # "http-check" | "tcp-check"
    action: str
    args: tuple[str, ...]
    where: Location


@attrs.frozen
class LogTarget:
    target: str  # "global" for `log global`
    facility: str = "local0"
    level: str | None = None
    min_level: str | None = None
    length: int = 1024
    format: str = "rfc3164"


@attrs.frozen
class Stats:
    """`stats` keywords of one proxy (the HTML page / CSV)."""

    enabled: bool = False
    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    auths: tuple[str, ...] = ()
    refresh: int | None = None
    hide_version: bool = False
    show_legends: bool = False
    admin: Condition | None = None
    admin_where: Location | None = None  # the `stats admin` line
    scopes: tuple[str, ...] = ()


@attrs.frozen
class Proxy:
    """A frontend, backend or listen section (`kind`), after `defaults` were applied."""

    name: str
    kind: str
    where: Location
    id: int = 0
    mode: str = "tcp"
    disabled: bool = False
    description: str | None = None
    binds: tuple[Bind, ...] = ()
    servers: tuple[Server, ...] = ()
    default_backend: str | None = None
    default_backend_where: Location | None = None
    use_backends: tuple[UseBackend, ...] = ()
    timeouts: Timeouts = Timeouts()
    balance: BalanceParams = BalanceParams()
    retries: int = 3
    redispatch: int = 0  # 0 off; -1 last retry; n every n-th retry
    maxconn: int = 0
    fullconn: int = 0
    backlog: int = 0
    options: frozenset[str] = frozenset()
    http_conn_mode: str = "keep-alive"  # "keep-alive" | "server-close" | "close"
    forwardfor: ForwardFor | None = None
    httpchk: HttpCheck | None = None
    check_kind: str = "tcp"  # "tcp" | "http" | "tcp-check" | other check options
    http_check_rules: tuple[CheckRule, ...] = ()
    tcp_check_rules: tuple[CheckRule, ...] = ()
    logs: tuple[LogTarget, ...] = ()
    log_format: str | None = None
    errorfiles: tuple[tuple[int, str], ...] = ()
    stats: Stats = Stats()
    acls: tuple[Acl, ...] = ()
    http_request_rules: tuple[Rule, ...] = ()
    http_response_rules: tuple[Rule, ...] = ()
    http_after_response_rules: tuple[Rule, ...] = ()
    tcp_request_rules: tuple[Rule, ...] = ()
    tcp_response_rules: tuple[Rule, ...] = ()
    inspect_delay: int | None = None
    monitor_uri: str | None = None
    monitor_fail: Condition | None = None
    monitor_fail_where: Location | None = None  # the `monitor fail` line

    @property
    def is_frontend(self) -> bool:
        return self.kind in ("frontend", "listen")

    @property
    def is_backend(self) -> bool:
        return self.kind in ("backend", "listen")


@attrs.frozen
class StatsSocket:
    address: str  # path, "ip:port" or "fd@N"
    where: Location
    mode: int | None = None
    level: str = "operator"
    expose_fd_listeners: bool = False


@attrs.frozen
class Global:
    daemon: bool = False
    master_worker: bool = False
    maxconn: int = 0  # 0 = derived from the fd limit
    pidfile: str | None = None
    user: str | None = None
    group: str | None = None
    uid: int | None = None
    gid: int | None = None
    chroot: str | None = None
    nbthread: int = 0
    ulimit_n: int = 0
    hard_stop_after: int | None = None
    grace: int = 0
    close_spread_time: int | None = None
    spread_checks: int = 0
    max_spread_checks: int | None = None
    logs: tuple[LogTarget, ...] = ()
    stats_sockets: tuple[StatsSocket, ...] = ()
    stats_timeout: int = 10000
    stats_maxconn: int = 10
    bufsize: int = 16384
    maxrewrite: int = 1024
    max_http_headers: int = 101
    quiet: bool = False
    zero_warning: bool = False
    node: str | None = None
    description: str | None = None
    server_state_file: str | None = None
    noreuseport: bool = False


@attrs.frozen
class Config:
    """A whole loaded configuration. `proxies` keeps declaration order (ids follow it)."""

    global_: Global
    proxies: tuple[Proxy, ...]
    files: tuple[str, ...] = ()

    @property
    def frontends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)

    def backend(self, name: str) -> Proxy | None:
        for p in self.proxies:
            if p.is_backend and p.name == name:
                return p
        return None

    @property
    def listener_count(self) -> int:
        return sum(len(b.addresses) for p in self.frontends if not p.disabled for b in p.binds) + len(
            self.global_.stats_sockets
        )
