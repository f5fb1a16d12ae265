"""Section keyword tables: keyword -> handler, with the help text the operator documentation is made of.

Adding a directive is one decorated function. Each entry also says how haproxy-py treats a real
HAProxy keyword: `supported`, `no-effect` (accepted; it changes nothing an operator can observe
here, e.g. a performance tuning), `ignored` (accepted with a warning: HAProxy would act on it,
haproxy-py does not), `unsupported` (an alert: running without it would be wrong), or `removed`
(gone from HAProxy too, with HAProxy's own message).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from haproxy_py.config import grammar
from haproxy_py.config.conditions import (
    AnonymousAcls,
    ConditionError,
    parse_acl,
    parse_condition,
    split_condition,
)
from haproxy_py.config.errors import Diagnostic, Location, StatementError
from haproxy_py.config.lexer import expand_address_vars
from haproxy_py.config.model import (
    CheckRule,
    Condition,
    ForwardFor,
    HttpCheck,
    LogTarget,
    Rule,
    Server,
    StatsSocket,
    Timeouts,
    UseBackend,
    Bind,
)
from haproxy_py.core.lb.base import BalanceParams

# ----------------------------------------------------------------------------------------------
# parse-time state


@attrs.define
class Statement:
    """One config line being parsed: the keyword, its arguments and where it is."""

    keyword: str
    args: list[str]
    where: Location
    env: Mapping[str, str]
    diagnostics: list[Diagnostic]
    prefix: str | None = None  # "no" | "default"
    resolve: bool = True
    # `default-path` in effect: the directory relative file names are taken from (None: the cwd)
    base_dir: str | None = None

    def warn(self, message: str, server: str | None = None, form: str = "parsing") -> None:
        self.diagnostics.append(Diagnostic("WARNING", message, self.where, server, form=form))

    def plain_warn(self, message: str) -> None:
        """A warning HAProxy prints without a location (e.g. trailing characters after a time unit)."""
        self.diagnostics.append(Diagnostic("WARNING", message))

    def arg(self, i: int) -> str | None:
        return self.args[i] if i < len(self.args) else None


@attrs.define
class ProxyDraft:
    """A proxy while its section is being read. `values` are `Proxy` field values."""

    kind: str  # frontend | backend | listen | defaults
    name: str
    where: Location
    values: dict[str, Any] = attrs.field(factory=dict)
    default_server: dict[str, Any] = attrs.field(factory=dict)
    anon: AnonymousAcls = attrs.field(factory=AnonymousAcls)
    server_names: dict[str, Location] = attrs.field(factory=dict)
    # ACL names declared in this section so far. HAProxy resolves a condition's ACL names while
    # parsing the rule, against the ACLs of the section itself: ACLs written earlier in the same
    # section only, never those of the defaults section a proxy inherits from.
    own_acls: set[str] = attrs.field(factory=set)
    server_ids: dict[int, tuple[str, Location]] = attrs.field(factory=dict)  # ids given with `id`

    @property
    def label(self) -> str:
        return f"{'proxy' if self.kind == 'listen' else self.kind} '{self.name}'"

    def inherit(self, kind: str, name: str, where: Location) -> ProxyDraft:
        """A new proxy section starting as a copy of this defaults section.

        Inherited rules keep their own (inherited) ACLs so they can still be evaluated, but those
        ACL names are not visible to the new section's own rules, as in HAProxy.
        """
        values = {k: v for k, v in self.values.items() if k not in ("name", "kind", "where")}
        inherited_anon = sum(1 for a in values.get("acls", ()) if a.name.startswith("{anon#")) + len(self.anon.acls)
        draft = ProxyDraft(kind=kind, name=name, where=where, values=values, default_server=dict(self.default_server))
        draft.anon.offset = inherited_anon
        return draft

    def append(self, field: str, *items: Any) -> None:
        self.values[field] = tuple(self.values.get(field, ())) + items

    def timeouts(self) -> Timeouts:
        return self.values.get("timeouts", Timeouts())

    def balance(self) -> BalanceParams:
        return self.values.get("balance", BalanceParams())


ProxyHandler = Callable[[Statement, ProxyDraft], None]
GlobalHandler = Callable[[Statement, dict[str, Any]], None]


@attrs.frozen
class Keyword:
    """One keyword of a section. `caps` (proxies only) lists where it may appear: d f l b."""

    name: str
    syntax: str
    summary: str
    status: str = "supported"  # supported | no-effect | ignored | unsupported | removed
    caps: str = "dflb"
    handler: Callable[..., None] | None = None
    differs: str = ""
    wrong_cap_alert: bool = False  # outside `caps`: an alert rather than HAProxy's "ignored" warning
    negatable: bool = False  # options: accepts `no option X`


GLOBAL: dict[str, Keyword] = {}
PROXY: dict[str, Keyword] = {}
OPTIONS: dict[str, Keyword] = {}
SERVER_PARAMS: dict[str, Keyword] = {}
BIND_PARAMS: dict[str, Keyword] = {}
OTHER_SECTIONS = (
    "userlist", "peers", "resolvers", "mailers", "program", "http-errors", "ring", "log-forward",
    "cache", "fcgi-app", "crt-store", "traces", "acme", "dynamic-update",
)


def _register(table: dict[str, Keyword], name: str, syntax: str, summary: str, **kw: Any) -> Callable[[Any], Any]:
    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        table[name] = Keyword(name=name, syntax=syntax, summary=summary, handler=fn, **kw)
        return fn

    return deco


def _many(table: dict[str, Keyword], names: str, status: str, summary: str, caps: str = "dflb", nargs: int | None = None) -> None:
    """Register several keywords that share a treatment (no-effect, ignored, unsupported)."""
    for name in names.split():
        table[name] = Keyword(name=name, syntax=f"{name} ...", summary=summary, status=status, caps=caps)


def gkw(name: str, syntax: str, summary: str, **kw: Any) -> Callable[[GlobalHandler], GlobalHandler]:
    return _register(GLOBAL, name, syntax, summary, **kw)


def pkw(name: str, caps: str, syntax: str, summary: str, **kw: Any) -> Callable[[ProxyHandler], ProxyHandler]:
    return _register(PROXY, name, syntax, summary, caps=caps, **kw)


def _need(st: Statement, n: int, usage: str) -> None:
    if len(st.args) < n:
        raise StatementError(f"'{st.keyword}' expects {usage}.")


def _no_extra(st: Statement, n: int) -> None:
    """HAProxy's too_many_args(): only the first word after the allowed ones matters, and an empty
    word there (`""`) counts as the end of the line."""
    if len(st.args) > n and st.args[n] != "":
        raise StatementError(f"'{st.keyword}' cannot handle unexpected argument '{st.args[n]}'.")


# ----------------------------------------------------------------------------------------------
# global


def _g_flag(field: str) -> GlobalHandler:
    def handler(st: Statement, g: dict[str, Any]) -> None:
        _no_extra(st, 0)
        g[field] = True

    return handler


gkw("daemon", "daemon", "Fork into the background at start-up (like -D); -db/-d override it.")(_g_flag("daemon"))
gkw("master-worker", "master-worker", "Accepted as in HAProxy; haproxy-py runs as a standalone process.",
    differs="No master process: reloads use -sf/-st.")(_g_flag("master_worker"))
gkw("quiet", "quiet", "Do not print start-up messages (like -q).")(_g_flag("quiet"))
gkw("zero-warning", "zero-warning", "Treat every warning as fatal at start-up and with -c.")(_g_flag("zero_warning"))


def _g_int(field: str, lo: int = 0, hi: int | None = None) -> GlobalHandler:
    def handler(st: Statement, g: dict[str, Any]) -> None:
        _no_extra(st, 1)
        g[field] = grammar.parse_int(st.arg(0), st.keyword, lo, hi)

    return handler


def _g_time(field: str) -> GlobalHandler:
    def handler(st: Statement, g: dict[str, Any]) -> None:
        _need(st, 1, "a time argument")
        _no_extra(st, 1)
        g[field] = grammar.parse_time(st.args[0], st.keyword, warn=st.plain_warn)

    return handler


def _g_str(field: str) -> GlobalHandler:
    def handler(st: Statement, g: dict[str, Any]) -> None:
        _need(st, 1, "an argument")
        g[field] = " ".join(st.args) if field in ("description",) else st.args[0]

    return handler


gkw("maxconn", "maxconn <n>", "Process-wide limit of concurrent connections; excess waits in the kernel backlog.")(_g_int("maxconn", 0))
gkw("nbthread", "nbthread <n>", "Number of worker processes (haproxy-py uses processes where HAProxy uses threads).",
    differs="Workers are processes and the default is 1 (HAProxy: one thread per CPU). Each process keeps "
            "its own balancing rotation, and maxconn/maxqueue limits are split between the processes "
            "(their shares add up to the configured value). Health checks, the stats socket and reload "
            "handover run in the main process; server state changes reach every process. New connections "
            "go to the process holding the fewest, as HAProxy spreads them over its threads.")(_g_int("nbthread", 1, 4096))
gkw("ulimit-n", "ulimit-n <n>", "File descriptor limit to set at start-up; derived from maxconn when unset.")(_g_int("ulimit_n", 0))
gkw("uid", "uid <n>", "Numeric user id to switch to after binding.")(_g_int("uid", 0))
gkw("gid", "gid <n>", "Numeric group id to switch to after binding.")(_g_int("gid", 0))
gkw("spread-checks", "spread-checks <0..50>", "Random jitter, in percent, added to every check interval.")(_g_int("spread_checks", 0, 50))
gkw("pidfile", "pidfile <path>", "Write the daemon's pid to this file (daemon mode only, like -p).")(_g_str("pidfile"))
gkw("user", "user <name>", "User to switch to after binding.")(_g_str("user"))
gkw("group", "group <name>", "Group to switch to after binding.")(_g_str("group"))
gkw("chroot", "chroot <dir>", "chroot into this directory after binding.")(_g_str("chroot"))
gkw("node", "node <name>", "Node name shown on the stats page.")(_g_str("node"))
gkw("description", "description <text>", "Description shown on the stats page.")(_g_str("description"))
gkw("server-state-file", "server-state-file <file>", "File for server states (load-server-state-from-file).",
    status="ignored")(_g_str("server_state_file"))
gkw("hard-stop-after", "hard-stop-after <time>", "Maximum duration of a soft stop; then remaining sessions are closed.")(_g_time("hard_stop_after"))
gkw("grace", "grace <time>", "Delay between a soft-stop signal and unbinding.")(_g_time("grace"))
gkw("close-spread-time", "close-spread-time <time>", "Window over which idle connections are closed during a soft stop.")(_g_time("close_spread_time"))
gkw("max-spread-checks", "max-spread-checks <time>", "Upper bound of the start-up spreading of first checks.")(_g_time("max_spread_checks"))


@gkw("nbproc", "nbproc <n>", "Removed in HAProxy 2.5.", status="removed")
def _g_nbproc(st: Statement, g: dict[str, Any]) -> None:
    raise StatementError(
        "nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on "
        "multi-processor machines if available."
    )


from haproxy_py.config.tune import atol as tune_atol  # noqa: E402
from haproxy_py.config.tune import register_tune_keywords  # noqa: E402  (needs gkw/Keyword above)

register_tune_keywords(GLOBAL, Keyword)


_LOG_FACILITIES = (
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 local0 local1 local2 "
    "local3 local4 local5 local6 local7"
).split()
_LOG_LEVELS = "emerg alert crit err warning notice info debug".split()


def parse_log(st: Statement, in_proxy: bool = True) -> LogTarget | None:
    """`log <target> [len n] [format f] [sample r:s] <facility> [max [min]]` or `log global`.

    Messages are 2.6's ("log : unknown log facility 'foo'"); a host name target is accepted as
    written (HAProxy resolves it at start-up).
    """
    args = [a for a in st.args]
    while args and args[-1] == "":
        args.pop()
    if st.prefix == "no":
        if args:
            raise StatementError("log : 'no log' does not expect arguments")
        return None
    usage = "log : expects <address> and <facility> or global as arguments" if in_proxy else \
        "log : expects <address> and <facility>  as arguments"
    if st.prefix == "default" or not args:
        raise StatementError(usage)
    if args == ["global"] and in_proxy:
        return LogTarget(target="global")
    target = expand_address_vars(args.pop(0), st.env)
    length, fmt = 1024, "rfc3164"
    while args and args[0] in ("len", "format", "sample", "profile"):
        key = args.pop(0)
        value = args.pop(0) if args else ""
        if key == "len":
            if not value.isdigit() or not 80 <= int(value) <= 65535:
                raise StatementError(f"log : invalid log length '{value}', must be between 80 and 65535")
            length = int(value)
        elif key == "format":
            if value not in ("rfc3164", "rfc5424", "short", "raw", "timed", "iso", "local", "priority"):
                raise StatementError(f"log : unknown log format '{value}'")
            fmt = value
    if not args:
        raise StatementError(usage)
    facility = args.pop(0)
    if facility not in _LOG_FACILITIES:
        raise StatementError(f"log : unknown log facility '{facility}'")
    level = args.pop(0) if args else None
    if level is not None and level not in _LOG_LEVELS:
        raise StatementError(f"log : unknown optional log level '{level}'")
    min_level = args.pop(0) if args else None
    if min_level is not None and min_level not in _LOG_LEVELS:
        raise StatementError(f"log : unknown optional minimum log level '{min_level}'")
    if args:
        raise StatementError(f"log : cannot handle unexpected argument '{args[0]}'")
    _check_log_target(target)
    return LogTarget(target=target, facility=facility, level=level, min_level=min_level, length=length, format=fmt)


def _check_log_target(target: str) -> None:
    if target in ("stdout", "stderr") or target.startswith(("/", "ring@", "unix@", "fd@", "abns@")):
        return
    rest = target.split("@", 1)[1] if target.startswith(("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@")) else target
    if rest.startswith("[") and "]" in rest:
        host, port = rest[1:rest.index("]")], rest[rest.index("]") + 1:].lstrip(":")
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    else:
        host, port = rest, ""
    if port:
        if port[0] in "+-":
            raise StatementError(f"log : port offset not permitted here in '{target}'")
        if not port[0].isdigit():
            raise StatementError(f"log : invalid character '{port[0]}' in port number '{port}' in '{target}'")
        if "-" in port:
            raise StatementError(f"log : port range not permitted here in '{target}'")
    if host == "" or (not re.fullmatch(r"[A-Za-z0-9_.:-]+", host)):
        raise StatementError(f"log : invalid address: '{host}' in '{target}'")


@gkw("log", "log <target> [len <n>] [format <f>] <facility> [<level> [<minlevel>]]",
     "Send logs to stdout/stderr, a UDP syslog server, or a unix socket such as /dev/log.")
def _g_log(st: Statement, g: dict[str, Any]) -> None:
    target = parse_log(st, in_proxy=False)
    if target is None:  # no log
        g["logs"] = ()
        return
    g["logs"] = tuple(g.get("logs", ())) + (target,)


@gkw("stats", "stats socket <path|addr:port|fd@N> [mode <m>] [level user|operator|admin] [expose-fd listeners] "
     "| stats timeout <t> | stats maxconn <n>", "The runtime API socket and its limits.")
def _g_stats(st: Statement, g: dict[str, Any]) -> None:
    _need(st, 1, "'socket', 'maxconn', 'timeout', 'bind-process'")
    sub = st.args[0]
    if sub == "socket":
        if len(st.args) < 2:
            raise StatementError("'stats socket' requires a path or an address.")
        addr = expand_address_vars(st.args[1], st.env)
        params = st.args[2:]
        mode: int | None = None
        level = "operator"
        expose = False
        i = 0
        while i < len(params):
            p = params[i]
            val = params[i + 1] if i + 1 < len(params) else None
            if p == "mode":
                if val is None or any(c not in "01234567" for c in val):
                    raise StatementError("'mode' : missing or invalid mode (octal integer expected)")
                mode = int(val, 8)
                i += 2
            elif p == "level":
                if val not in ("user", "operator", "admin"):
                    raise StatementError("'level' only supports 'user', 'operator', and 'admin'")
                level = val
                i += 2
            elif p == "expose-fd":
                if val != "listeners":
                    raise StatementError("'expose-fd' only supports 'listeners'")
                expose = True
                i += 2
            elif p in ("user", "group", "uid", "gid", "name", "severity-output", "process", "thread", "maxconn",
                       "backlog", "id", "nice"):
                if val is None:
                    raise StatementError(f"'{p}' : missing value")
                i += 2
            elif p in ("accept-netscaler-cip",):
                i += 2
            elif p in ("v4v6", "v6only", "defer-accept", "transparent", "tfo"):
                i += 1
            else:
                raise StatementError(f"'stats socket' : unknown keyword '{p}'.")
        g["stats_sockets"] = tuple(g.get("stats_sockets", ())) + (
            StatsSocket(address=addr, where=st.where, mode=mode, level=level, expose_fd_listeners=expose),
        )
    elif sub == "timeout":
        _need(st, 2, "a time argument")
        g["stats_timeout"] = grammar.parse_time(st.args[1], "stats timeout", warn=st.plain_warn)
    elif sub == "maxconn":
        g["stats_maxconn"] = grammar.parse_int(st.arg(1), "stats maxconn", 1)
    elif sub == "bind-process":
        pass
    else:
        raise StatementError("'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' in 'global' section.")


@gkw("setenv", "setenv <name> <value>", "Set an environment variable for the rest of the configuration.")
def _g_setenv(st: Statement, g: dict[str, Any]) -> None:
    _need(st, 2, "a name and a value")
    g.setdefault("_env_ops", []).append(("set", st.args[0], st.args[1]))


@gkw("presetenv", "presetenv <name> <value>", "Set an environment variable unless it is already set.")
def _g_presetenv(st: Statement, g: dict[str, Any]) -> None:
    _need(st, 2, "a name and a value")
    g.setdefault("_env_ops", []).append(("preset", st.args[0], st.args[1]))


@gkw("unsetenv", "unsetenv <name>...", "Remove environment variables.")
def _g_unsetenv(st: Statement, g: dict[str, Any]) -> None:
    _need(st, 1, "at least one variable name")
    for name in st.args:
        g.setdefault("_env_ops", []).append(("unset", name, ""))


@gkw("resetenv", "resetenv [<name>...]", "Remove every environment variable except those named.")
def _g_resetenv(st: Statement, g: dict[str, Any]) -> None:
    g.setdefault("_env_ops", []).append(("reset", " ".join(st.args), ""))


_many(GLOBAL, "noreuseport", "supported", "Do not set SO_REUSEPORT on listeners (like -dR).")
GLOBAL["noreuseport"] = attrs.evolve(GLOBAL["noreuseport"], handler=_g_flag("noreuseport"), syntax="noreuseport")
_NO_EFFECT_GLOBALS = {
    "ca-base": "Directory of CA files (TLS).", "crt-base": "Directory of certificates (TLS).",
    "cpu-map": "Binds threads to CPUs.", "busy-polling": "Busy-polling of the event loop.",
    "maxpipes": "Number of kernel pipes for splicing.", "nosplice": "Disables kernel splicing.",
    "noepoll": "Disables the epoll poller.", "nopoll": "Disables the poll poller.",
    "noevports": "Disables the event ports poller.", "nokqueue": "Disables the kqueue poller.",
    "nogetaddrinfo": "Uses gethostbyname() instead of getaddrinfo().",
    "set-dumpable": "Allows core dumps after changing user.", "strict-limits": "Fails when fd limits cannot be raised.",
    "insecure-fork-wanted": "Allows external checks and Lua to fork.",
    "insecure-setuid-wanted": "Allows setuid binaries from external checks.",
    "numa-cpu-mapping": "NUMA-aware thread placement.", "profiling.tasks": "Task profiling.",
    "mworker-max-reloads": "Master-worker reload limit (no master process in haproxy-py).",
    "localpeer": "Name of this node in peers sections.", "unix-bind": "Defaults for unix socket binds.",
    "log-send-hostname": "Host name field in syslog lines.", "log-tag": "Syslog tag of global logs.",
    "ssl-default-bind-ciphers": "Default TLS setting for binds.", "ssl-default-bind-ciphersuites": "Default TLS setting for binds.",
    "ssl-default-bind-curves": "Default TLS setting for binds.", "ssl-default-bind-options": "Default TLS setting for binds.",
    "ssl-default-server-ciphers": "Default TLS setting for servers.",
    "ssl-default-server-ciphersuites": "Default TLS setting for servers.",
    "ssl-default-server-options": "Default TLS setting for servers.", "ssl-dh-param-file": "TLS DH parameters.",
    "ssl-server-verify": "Default TLS server verification.", "ssl-skip-self-issued-ca": "TLS chain building.",
    "ssl-mode-async": "Asynchronous TLS engines.", "ssl-load-extra-files": "Extra TLS files next to certificates.",
    "ssl-load-extra-del-ext": "TLS certificate file naming.", "issuers-chain-path": "TLS issuer chains.",
    "maxconnrate": "Process-wide connection rate limit (not enforced).",
    "maxsessrate": "Process-wide session rate limit (not enforced).", "maxsslconn": "TLS connection limit.",
    "maxsslrate": "TLS handshake rate limit.", "maxcomprate": "Compression rate limit.",
    "maxcompcpuusage": "Compression CPU limit.", "maxzlibmem": "Compression memory limit.",
    "pp2-never-send-local": "PROXY v2 LOCAL command for health checks.", "fd-hard-limit": "Cap on the fd limit.",
    "cluster-secret": "Secret for QUIC retry tokens.", "thread-groups": "Thread groups.",
    "thread-group": "Thread group definitions.",
    "h2-workaround-bogus-websocket-clients": "HTTP/2 websocket workaround.",
    "server-state-base": "Directory of server state files.", "lua-prepend-path": "Lua module path.",
    "external-check": "Allows external check commands.", "httpclient.resolvers.id": "Internal HTTP client DNS.",
    "httpclient.resolvers.prefer": "Internal HTTP client DNS.", "httpclient.ssl.ca-file": "Internal HTTP client TLS.",
    "httpclient.ssl.verify": "Internal HTTP client TLS.", "set-var": "Process-wide variables for rules.",
    "set-var-fmt": "Process-wide variables for rules.", "no-memory-trimming": "malloc_trim() on reload.",
    "namespace_list": "Network namespaces (only used by 'namespace' on binds and servers).",
}
for _n, _s in _NO_EFFECT_GLOBALS.items():
    GLOBAL[_n] = Keyword(_n, f"{_n} ...", _s + " Accepted; no effect in haproxy-py.", status="no-effect")
_many(GLOBAL, "h1-case-adjust h1-case-adjust-file", "ignored", "Header case adjustment is not implemented; header names are sent lower-case.")
_many(GLOBAL, "h1-accept-payload-with-any-method", "ignored",
      "Accepting a payload on GET/HEAD/DELETE HTTP/1.0 requests is not implemented.")
_many(GLOBAL, "lua-load lua-load-per-thread ssl-provider ssl-provider-path ssl-propquery",
      "unsupported", "Lua and OpenSSL providers are not available in haproxy-py.")


@gkw("expose-experimental-directives", "expose-experimental-directives",
     "Allow experimental directives (such as tune.fd.edge-triggered) in the rest of the configuration.",
     status="no-effect")
def _g_experimental(st: Statement, g: dict[str, Any]) -> None:
    g["_experimental"] = True


@gkw("default-path", "default-path current|config|parent|origin <path>",
     "Directory that relative file names (errorfile, ACL -f files) are taken from, for the rest of the file.")
def _g_default_path(st: Statement, g: dict[str, Any]) -> None:
    import os

    kind = st.arg(0) or ""
    modes = "supported modes include 'current', 'config', 'parent', and 'origin'."
    if kind == "origin":
        if len(st.args) < 2 or st.args[1] == "":
            raise StatementError("'default-path origin' expects a directory as an argument.")
        base = st.args[1]
        if not os.path.isdir(base):
            raise StatementError(f"couldn't set 'default-path' to origin '{base}': No such file or directory.")
    elif kind in ("current", "config", "parent"):
        config_dir = os.path.dirname(os.path.abspath(st.where.file))
        base = {"current": os.getcwd(), "config": config_dir, "parent": os.path.dirname(config_dir)}[kind]
    elif kind == "":
        raise StatementError(f"missing default-path mode '' for 'default-path', {modes}")
    else:
        raise StatementError(f"unsupported default-path mode '{kind}' for 'default-path', {modes}")
    g["_default_path"] = base


def resolve_path(st: Statement, path: str) -> str:
    """A file name as HAProxy opens it: relative names are taken from `default-path` if set."""
    import os

    if st.base_dir is None or os.path.isabs(path):
        return path
    return os.path.join(st.base_dir, path)



# ----------------------------------------------------------------------------------------------
# proxies: simple settings


@pkw("mode", "dflb", "mode tcp|http", "Layer 4 (tcp, default) or layer 7 (http) proxying.")
def _p_mode(st: Statement, px: ProxyDraft) -> None:
    _need(st, 1, "an argument")
    if st.args[0] not in ("tcp", "http", "health", "log"):
        raise StatementError(f"unknown proxy mode '{st.args[0]}'.")
    if st.args[0] in ("health", "log"):
        raise StatementError(f"proxy mode '{st.args[0]}' is not supported by haproxy-py.")
    px.values["mode"] = st.args[0]


def _p_int(field: str, lo: int = 0, hi: int | None = None) -> ProxyHandler:
    def handler(st: Statement, px: ProxyDraft) -> None:
        _no_extra(st, 1)
        px.values[field] = grammar.parse_int(st.arg(0), st.keyword, lo, hi)

    return handler


pkw("maxconn", "dfl", "maxconn <n>", "Concurrent connections this frontend accepts; excess waits in the kernel backlog.")(_p_int("maxconn"))
pkw("fullconn", "dlb", "fullconn <n>", "The backend's notion of full load, for dynamic minconn.")(_p_int("fullconn"))
pkw("backlog", "dfl", "backlog <n>", "Listen backlog of the frontend's sockets (default: maxconn).")(_p_int("backlog"))
pkw("retries", "dlb", "retries <n>", "Connection retries after a failed connect (default 3).")(_p_int("retries", 0))


@pkw("id", "flb", "id <n>", "Numeric proxy id shown in stats (default: declaration order).")
def _p_id(st: Statement, px: ProxyDraft) -> None:
    px.values["id"] = grammar.parse_int(st.arg(0), "id", 1)


@pkw("description", "dflb", "description <text>", "Free text shown on the stats page.")
def _p_description(st: Statement, px: ProxyDraft) -> None:
    px.values["description"] = " ".join(st.args)


@pkw("disabled", "dflb", "disabled", "The proxy is not started.")
def _p_disabled(st: Statement, px: ProxyDraft) -> None:
    px.values["disabled"] = True


@pkw("enabled", "dflb", "enabled", "Undo an inherited 'disabled'.")
def _p_enabled(st: Statement, px: ProxyDraft) -> None:
    px.values["disabled"] = False


_TIMEOUTS = {
    "client": ("client", "dfl"), "server": ("server", "dlb"), "connect": ("connect", "dlb"),
    "check": ("check", "dlb"), "queue": ("queue", "dlb"), "http-keep-alive": ("http_keep_alive", "dflb"),
    "http-request": ("http_request", "dflb"), "tunnel": ("tunnel", "dlb"), "tarpit": ("tarpit", "dflb"),
    "client-fin": ("client_fin", "dfl"), "server-fin": ("server_fin", "dlb"),
}


@pkw("timeout", "dflb", "timeout client|server|connect|check|queue|http-request|http-keep-alive|tunnel|"
     "client-fin|server-fin|tarpit <time>", "Timeouts; a bare number is milliseconds.")
def _p_timeout(st: Statement, px: ProxyDraft) -> None:
    name = st.arg(0)
    if name not in _TIMEOUTS:
        raise StatementError(
            "'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', "
            f"'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{name or ''}')"
        )
    field, caps = _TIMEOUTS[name]
    if len(st.args) < 2:
        raise StatementError(f"'timeout {name}' expects an integer value (in milliseconds)")
    if len(st.args) > 2 and st.args[2] != "":
        raise StatementError(f"'timeout {name}' : unexpected extra argument '{st.args[2]}' after value '{st.args[1]}'.")
    value = grammar.parse_time(st.args[1], f"timeout {name}", warn=st.plain_warn)
    if not _cap_ok(px.kind, caps):
        st.warn(f"'timeout {name}' will be ignored because {px.label} has no {_cap_name(caps)} capability")
        return
    px.values["timeouts"] = attrs.evolve(px.timeouts(), **{field: value})


_REMOVED_TIMEOUTS = {"srvtimeout": "timeout server", "clitimeout": "timeout client", "contimeout": "timeout connect"}


def _removed_timeout(st: Statement, px: ProxyDraft) -> None:
    raise StatementError(
        f"the '{st.keyword}' directive is not supported anymore since HAProxy 2.1. Use '{_REMOVED_TIMEOUTS[st.keyword]}'."
    )


for _old, _new in _REMOVED_TIMEOUTS.items():
    PROXY[_old] = Keyword(_old, f"{_old} <time>", f"Removed in HAProxy 2.1: use '{_new}'.", status="removed",
                          handler=_removed_timeout)

# HAProxy 2.6's own messages for keywords it removed (their wording varies from one keyword to the
# next; operators grep for them, so they are kept verbatim).
_REMOVED_REQ = {
    "reqadd": "The 'reqadd' directive is not supported anymore since HAProxy 2.1. Use 'http-request add-header' instead.",
    "reqallow": "The 'reqallow' directive is not supported anymore since HAProxy 2.1. Use 'http-request allow' instead.",
    "reqdel": "The 'reqdel' directive is not supported anymore since HAProxy 2.1. Use 'http-request del-header' instead.",
    "reqdeny": "The 'reqdeny' not supported anymore since HAProxy 2.1. Use 'http-request deny' instead.",
    "reqiallow": "The 'reqiallow' directive is not supported anymore since HAProxy 2.1. Use 'http-request allow' instead.",
    "reqidel": "The 'reqidel' directive is not supported anymore since HAProxy 2.1. Use 'http-request del-header' instead.",
    "reqideny": "The 'reqideny' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' instead.",
    "reqipass": "The 'reqipass' directive is not supported anymore since HAProxy 2.1.",
    "reqirep": "The 'reqirep' directive is not supported anymore since HAProxy 2.1. Use 'http-request replace-header' instead.",
    "reqitarpit": "The 'reqitarpit' directive is not supported anymore since HAProxy 2.1. Use 'http-request tarpit' instead.",
    "reqpass": "The 'reqpass' not supported anymore since HAProxy 2.1.",
    "reqrep": "The 'reqrep' directive is not supported anymore since HAProxy 2.1. Use 'http-request replace-path', "
              "'http-request replace-uri' or 'http-request replace-header' instead.",
    "reqtarpit": "The 'reqtarpit' directive is not supported anymore since HAProxy 2.1. Use 'http-request tarpit' instead.",
    "rspadd": "The 'rspadd' directive is not supported anymore since HAProxy 2.1. Use 'http-response add-header' instead.",
    "rspdel": "The 'rspdel' directive is not supported anymore since HAProxy 2.1. Use 'http-response del-header' .",
    "rspdeny": "The 'rspdeny' directive is not supported anymore since HAProxy 2.1. Use 'http-response deny' instead.",
    "rspidel": "The 'rspidel' directive is not supported anymore since HAProxy 2.1. Use 'http-response del-header' instead.",
    "rspideny": "The 'rspideny' directive is not supported anymore since HAProxy 2.1. Use 'http-response deny' instead.",
    "rspirep": "The 'rspirep' directive is not supported anymore since HAProxy 2.1. Use 'http-response replace-header' instead.",
    "rsprep": "The 'rsprep' directive is not supported anymore since HAProxy 2.1. Use 'http-response replace-header' instead.",
    "cliexp": "The 'cliexp' directive is not supported anymore since HAProxy 2.1. Use 'http-request replace-path', "
              "'http-request replace-uri' or 'http-request replace-header' instead.",
    "srvexp": "The 'srvexp' directive is not supported anymore since HAProxy 2.1. Use 'http-response replace-header' instead.",
    "block": "The 'block' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' which uses "
             "the exact same syntax.",
    "redisp": "keyword 'redisp' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.",
    "redispatch": "keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.",
    "appsession": "'appsession' is not supported anymore since HAProxy 1.6.",
    "grace": "the 'grace' keyword is not supported any more since HAProxy version 2.5.",
}


def _removed_req(st: Statement, px: ProxyDraft) -> None:
    raise StatementError(_REMOVED_REQ[st.keyword])


for _old, _msg in _REMOVED_REQ.items():
    PROXY[_old] = Keyword(_old, f"{_old} ...", "Removed from HAProxy. " + _msg, status="removed",
                          handler=_removed_req, caps="dflb")


@pkw("monitor-net", "dfl", "monitor-net <source>", "Removed from HAProxy (2.5): use 'http-request return'.",
     status="removed")
def _p_monitor_net(st: Statement, px: ProxyDraft) -> None:
    raise StatementError(
        f"'monitor-net' doesn't exist anymore. Please use 'http-request return status 200 if {{ src {st.arg(0) or ''} }}' instead."
    )


@pkw("bind-process", "dflb", "bind-process ...", "Deprecated in HAProxy 2.6: no effect, and a warning.",
     status="no-effect")
def _p_bind_process(st: Statement, px: ProxyDraft) -> None:
    st.warn("'bind-process' has no effect, is deprecated, and will be removed in version 2.7.")


# ----------------------------------------------------------------------------------------------
# capabilities


def _cap_ok(kind: str, caps: str) -> bool:
    return {"defaults": "d", "frontend": "f", "listen": "l", "backend": "b"}[kind] in caps


def _cap_name(caps: str) -> str:
    return "backend" if "b" in caps else "frontend"


# ----------------------------------------------------------------------------------------------
# balance / hash-type

_BALANCE_ERR = (
    "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', "
    "'hdr(name)' and 'rdp-cookie(name)' options."
)


@pkw("balance", "dlb", "balance roundrobin|static-rr|leastconn|first|source|uri [len n] [depth n] [whole] "
     "[path-only]|url_param <p> [check_post]|hdr(<name>) [use_domain_only]|random[(<draws>)]|rdp-cookie[(<name>)]|hash <expr>",
     "Load-balancing algorithm (default roundrobin).", differs="'balance hash <expr>' is not implemented (alert).")
def _p_balance(st: Statement, px: ProxyDraft) -> None:
    algo = st.arg(0) or ""
    rest = st.args[1:]
    params: dict[str, Any] = {}
    if algo in ("", "roundrobin", "static-rr", "leastconn", "first", "source"):
        name = algo or "roundrobin"  # a bare 'balance' means round robin; extra words are ignored
    elif algo == "uri":
        name = "uri"
        i = 0
        while i < len(rest):
            w = rest[i]
            if w in ("len", "depth"):
                v = rest[i + 1] if i + 1 < len(rest) else ""
                if not v.isdigit() or int(v) <= 0:
                    raise StatementError(f"balance uri : '{w}' expects a positive integer (got '{v}').")
                params["uri_len" if w == "len" else "uri_depth"] = int(v)
                i += 2
            elif w == "whole":
                params["uri_whole"] = True
                i += 1
            elif w == "path-only":
                params["uri_path_only"] = True
                i += 1
            else:
                raise StatementError(
                    f"balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{w}')."
                )
    elif algo == "url_param":
        name = "url_param"
        if not rest or rest[0] == "":
            raise StatementError("balance url_param requires an URL parameter name.")
        params["param"] = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "check_post":
                params["check_post"] = True
                i += 2 if i + 1 < len(rest) and rest[i + 1].isdigit() else 1  # obsolete max_wait argument
            else:
                raise StatementError(f"balance url_param only accepts 'check_post' modifier (got '{rest[i]}').")
    elif algo.startswith("hdr("):
        name = "hdr"
        end = algo.find(")")
        if end <= 4:
            raise StatementError("balance hdr requires an http header field name.")
        params["param"] = algo[4:end]
        for w in rest:
            if w == "use_domain_only":
                params["use_domain_only"] = True
            else:
                raise StatementError(f"balance {algo} only accepts 'use_domain_only' modifier (got '{w}').")
    elif algo == "random" or algo.startswith("random("):
        name = "random"
        if algo != "random":
            end = algo.find(")")
            if end < 0:
                raise StatementError("balance random : missing closing parenthesis.")
            m = re.match(r"[0-9]*", algo[7:end])
            assert m is not None
            if m.end() < end - 7:
                raise StatementError(f"balance random : unexpected character '{algo[7 + m.end()]}' after argument.")
            draws = int(m.group(0) or 0)
            if draws < 1:
                raise StatementError("balance random : number of draws must be at least 1.")
            params["draws"] = draws
    elif algo == "rdp-cookie" or algo.startswith("rdp-cookie("):
        name = "rdp-cookie"
        params["param"] = "mstshash"
        if algo != "rdp-cookie":
            end = algo.find(")")
            if end <= 11:
                raise StatementError("balance rdp-cookie : missing cookie name.")
            params["param"] = algo[11:end]
    elif algo == "hash":
        if not rest or rest[0] == "":
            raise StatementError("balance hash requires a sample expression.")
        raise StatementError("'balance hash <expr>' is a HAProxy algorithm that haproxy-py does not implement.")
    else:
        raise StatementError(_BALANCE_ERR)
    base = px.balance()
    px.values["balance"] = attrs.evolve(
        BalanceParams(hash_method=base.hash_method, hash_function=base.hash_function, avalanche=base.avalanche,
                      allbackups=base.allbackups),
        algorithm=name, **params,
    )


@pkw("hash-type", "dlb", "hash-type map-based|consistent [sdbm|djb2|wt6|crc32 [avalanche]]",
     "Hashing method of hash-based algorithms; consistent with no function means sdbm + avalanche.")
def _p_hash_type(st: Statement, px: ProxyDraft) -> None:
    method = st.arg(0)
    if method not in ("map-based", "consistent"):
        raise StatementError("'hash-type' only supports 'consistent' and 'map-based'.")
    function = st.arg(1) or ""
    modifier = st.arg(2) or ""
    if function == "":
        function, avalanche = "sdbm", method == "consistent"
    elif function not in ("sdbm", "djb2", "wt6", "crc32"):
        raise StatementError("'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.")
    elif modifier not in ("", "avalanche"):
        raise StatementError("'hash-type' only supports 'avalanche' as a modifier for hash functions.")
    else:
        avalanche = modifier == "avalanche"
    px.values["balance"] = attrs.evolve(px.balance(), hash_method=method, hash_function=function, avalanche=avalanche)


# ----------------------------------------------------------------------------------------------
# backend selection


@pkw("default_backend", "dfl", "default_backend <backend>", "Backend used when no use_backend rule matches.")
def _p_default_backend(st: Statement, px: ProxyDraft) -> None:
    _need(st, 1, "a backend name")
    _no_extra(st, 1)
    px.values["default_backend"] = st.args[0]
    px.values["default_backend_where"] = st.where


@pkw("use_backend", "fl", "use_backend <backend|%[expr]> [if|unless <cond>]",
     "Switch to a backend when the condition matches; first match wins.", wrong_cap_alert=False)
def _p_use_backend(st: Statement, px: ProxyDraft) -> None:
    args, cond_words = split_condition(st.args)
    if len(args) != 1:
        raise StatementError("'use_backend' expects a backend name." if not args else
                             f"'use_backend' cannot handle unexpected argument '{args[1]}'.")
    cond = _cond(st, px, cond_words, "error detected while parsing switching rule : {err}.") if cond_words else None
    if "%[" in args[0]:
        from haproxy_py.config import samples

        try:
            samples.check_log_format(args[0])
        except ConditionError as e:
            raise StatementError(f"failed to parse use_backend rule '{args[0]}' : {e.message}.", form="Parsing") from None
    px.append("use_backends", UseBackend(name=args[0], where=st.where, cond=cond))


# ----------------------------------------------------------------------------------------------
# binds and servers


@pkw("bind", "fl", "bind <addr>[:<port>[-<port2>]][,...] [params]", "A listening address (several lines allowed).",
     wrong_cap_alert=False)
def _p_bind(st: Statement, px: ProxyDraft) -> None:
    if not st.args or st.args[0] == "":
        raise StatementError("'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.")
    addresses = grammar.parse_bind_address(expand_address_vars(st.args[0], st.env), resolve=st.resolve)
    where = f"'bind {st.args[0]}' in section '{px.kind}'"
    values: dict[str, Any] = {}
    params = st.args[1:]
    i = 0
    while i < len(params) and params[i] != "":
        name = params[i]
        kw = BIND_PARAMS.get(name)
        if kw is None:
            hint = did_you_mean(name, BIND_PARAMS)
            raise StatementError(f"{where}: unknown keyword '{name}'" + (f"; did you mean '{hint}' maybe ?" if hint else "."))
        nargs = _PARAM_ARGS.get(("bind", name), 0)
        value = params[i + 1 : i + 1 + nargs]
        if len(value) < nargs or "" in value:
            raise StatementError(f"{where} : '{name}' : missing value.")
        if kw.status == "unsupported":
            raise StatementError(f"'bind' : '{name}' is a HAProxy bind option that haproxy-py does not implement ({kw.summary})")
        if kw.status == "ignored":
            st.warn(f"'bind' : option '{name}' is not implemented by haproxy-py and is ignored.")
        if kw.handler is not None:
            try:
                kw.handler(values, value)
            except StatementError as e:
                raise StatementError(f"{where} : {e.message}") from None
        i += 1 + nargs
    px.append("binds", Bind(addresses=tuple(addresses), where=st.where, **values))


def _fingerprint(word: str) -> dict[int, int]:
    """HAProxy's make_word_fingerprint(): counts of adjacent character classes in a 32x32 matrix
    (stored sparsely). Letters are 1..26, digits 27, anything else 28, and the word's start and end
    count as 28 too (so `-` looks like a word boundary)."""
    def cls(c: str) -> int:
        c = c.lower()
        if "a" <= c <= "z":
            return ord(c) - ord("a") + 1
        return 27 if "0" <= c <= "9" else 28

    fp: dict[int, int] = {}
    prev = 28
    for c in word + "\x00":
        cur = cls(c)
        fp[32 * prev + cur] = fp.get(32 * prev + cur, 0) + 1
        prev = cur
    return fp


def did_you_mean(word: str, candidates: Mapping[str, Any] | list[str]) -> str | None:
    """HAProxy's "did you mean ... maybe ?" hint (cfg_find_best_match()): the candidate with the
    smallest fingerprint distance, if it is within twice the length of both words."""
    ref = _fingerprint(word)
    best: str | None = None
    best_dist = 1 << 30
    for name in candidates:
        fp = _fingerprint(name)
        dist = sum(abs(ref.get(k, 0) - fp.get(k, 0)) for k in set(ref) | set(fp))
        if dist < best_dist:
            best, best_dist = name, dist
    if best is None or best_dist > 2 * len(word) or best_dist > 2 * len(best):
        return None
    return best


_PARAM_ARGS: dict[tuple[str, str], int] = {}


def fetch_checker(st: Statement) -> Callable[[str, list[str], list[str]], None]:
    """Validates an ACL's sample expression, flags and patterns against HAProxy 2.6's tables."""
    from haproxy_py.config import samples

    def check(fetch: str, flags: list[str], patterns: list[str]) -> None:
        samples.check_acl_expression(fetch, flags, patterns, st.base_dir)

    return check


def _cond(st: Statement, px: ProxyDraft, words: list[str], wrap: str) -> Condition:
    """Parse `if|unless ...`, resolving ACL names against those the section declared so far.

    `wrap` is HAProxy's context sentence for this rule family, with `{err}` for the inner message.
    """
    try:
        return parse_condition(words, st.where, px.anon, known=px.own_acls, check=fetch_checker(st))
    except ConditionError as e:
        raise StatementError(wrap.format(err=e.message)) from None


def _bparam(name: str, nargs: int, summary: str, status: str = "supported",
            apply: Callable[[dict[str, Any], list[str]], None] | None = None) -> None:
    BIND_PARAMS[name] = Keyword(name, f"{name}" + (" <value>" if nargs else ""), summary, status=status, handler=apply)
    _PARAM_ARGS[("bind", name)] = nargs


def _set(field: str, conv: Callable[[str], Any] = str) -> Callable[[dict[str, Any], list[str]], None]:
    def apply(values: dict[str, Any], args: list[str]) -> None:
        values[field] = conv(args[0]) if args else True

    return apply


def _int_conv(name: str) -> Callable[[str], int]:
    return lambda v: grammar.parse_int(v, name, 0)


_bparam("name", 1, "Name of the listener in stats.", apply=_set("name"))
_bparam("maxconn", 1, "Connection limit of this listener.", apply=_set("maxconn", _int_conv("maxconn")))
_bparam("backlog", 1, "Listen backlog of this listener.", apply=_set("backlog", _int_conv("backlog")))
_bparam("v4v6", 0, "Accept IPv4 too on an IPv6 socket.", apply=_set("v4v6"))
_bparam("v6only", 0, "Accept only IPv6 on an IPv6 socket.", apply=_set("v6only"))
_bparam("defer-accept", 0, "TCP_DEFER_ACCEPT on the socket.", apply=_set("defer_accept"))
_bparam("tfo", 0, "TCP fast open on the socket.", apply=_set("tfo"))
_bparam("interface", 1, "Bind to this network interface (SO_BINDTODEVICE).", apply=_set("interface"))
def _octal_mode(v: str) -> int:
    if not re.fullmatch(r"[0-7]+", v):
        raise StatementError(f"'mode' : missing or invalid mode '{v}' (octal integer expected)")
    return int(v, 8)


_bparam("mode", 1, "Permissions of a unix socket (octal).", apply=_set("mode", _octal_mode))
_bparam("uid", 1, "Owner of a unix socket.", apply=_set("uid", _int_conv("uid")))
_bparam("gid", 1, "Group of a unix socket.", apply=_set("gid", _int_conv("gid")))
_bparam("noreuseport", 0, "Do not set SO_REUSEPORT.", apply=lambda v, a: v.__setitem__("reuseport", False))
for _n in ("user", "group", "id", "nice", "process", "thread", "namespace", "tcp-ut", "mss", "severity-output",
           "level"):
    _bparam(_n, 1, "Accepted; no effect in haproxy-py.", status="no-effect")
for _n in ("expose-fd",):
    _bparam(_n, 1, "Accepted on stats sockets.", status="no-effect")
for _n in ("ciphers", "ciphersuites", "crt", "crt-list", "ca-file", "crl-file", "alpn", "npn", "curves", "ecdhe",
           "verify", "ssl-min-ver", "ssl-max-ver", "ca-ignore-err", "crt-ignore-err", "sigalgs", "client-sigalgs",
           "ca-verify-file", "ca-sign-file", "ca-sign-pass", "tls-ticket-keys"):
    _bparam(_n, 1, "TLS setting; only meaningful with 'ssl', which haproxy-py does not implement.", status="no-effect")
for _n in ("strict-sni", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "force-sslv3",
           "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13", "no-tls-tickets", "prefer-client-ciphers",
           "allow-0rtt", "generate-certificates", "no-ca-names", "quic-force-retry", "no-alpn"):
    _bparam(_n, 0, "TLS setting; only meaningful with 'ssl', which haproxy-py does not implement.", status="no-effect")
_bparam("ssl", 0, "TLS termination is not implemented: route TLS by SNI in mode tcp instead.", status="unsupported")
_bparam("accept-proxy", 0, "The PROXY protocol on accepted connections is not implemented.", status="unsupported")
_bparam("accept-netscaler-cip", 1, "NetScaler client IP insertion is not implemented.", status="unsupported")
_bparam("transparent", 0, "Transparent binding is not implemented.", status="unsupported")
_bparam("proto", 1, "Alternative multiplexers (h2) are not implemented.", status="unsupported")
_bparam("quic-cc-algo", 1, "QUIC is not implemented.", status="unsupported")


# server parameters
#
# Each parameter: (model field or None, number of arguments, converter, status, summary). A
# converter gets (value, server name) and raises StatementError with HAProxy's text; HAProxy then
# prints it after `'server be/name' : ` with one more '.' (hence the ".." some messages end with).
# Values are read the way 2.6 reads them: most integers with atoi() (`maxconn abc` is 0), and the
# quirks of its messages are kept (a bad `inter` is reported as 'agent-inter' in 2.6).

ServerConv = Callable[[str, str], Any]


def _srv_time(label: str, name: str | None = None) -> ServerConv:
    """A delay of a server keyword; `label` is the keyword 2.6 names in its error (see above)."""
    factors = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

    def conv(v: str, srv: str) -> int:
        m = re.match(r"[0-9]*", v)
        assert m is not None
        digits, rest = m.group(0), v[m.end():]
        unit = next((u for u in factors if rest.startswith(u)), "")
        tail = rest[len(unit):]
        if digits == "" or tail:
            bad = v[:1] if digits == "" else tail[:1]
            raise StatementError(f"unexpected character '{bad}' in '{label}' argument of server {srv}.")
        ms = int(digits) * factors[unit or "ms"]
        if ms > 2**31 - 1:
            raise StatementError(f"timer overflow in argument <{v}> to <{name or label}> of server {srv}, maximum "
                                 "value is 2147483647 ms (~24.8 days).")
        value = int(ms) if ms >= 1 or ms == 0 else 1
        if value == 0 and name is not None:
            raise StatementError(f"invalid value 0 for argument '{name}' of server {srv}.")
        return value

    return conv


def _srv_atoi_min(message: str, lo: int = 1) -> ServerConv:
    def conv(v: str, srv: str) -> int:
        value = tune_atol(v)
        if value < lo:
            raise StatementError(message)
        return value

    return conv


def _srv_atoi(v: str, srv: str) -> int:
    return max(tune_atol(v), 0)


def _srv_weight(v: str, srv: str) -> int:
    w = tune_atol(v)
    if not 0 <= w <= 256:
        raise StatementError(f"weight of server {srv} is not within 0 and 256 ({w}).")
    return w


def _srv_port(v: str, srv: str) -> int | None:
    port = tune_atol(v) & 0xFFFF
    return port or None


def _srv_addr(v: str, srv: str) -> str:
    """`addr <ip>[:port]` of checks (a name is accepted as written; HAProxy would resolve it)."""
    host = v
    if v.startswith("[") and "]" in v:
        host = v[1:v.index("]")]
    elif v.count(":") == 1:
        host = v.partition(":")[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host) and not re.fullmatch(r"[0-9.]+", host):
            return host
        raise StatementError(f"'addr' : invalid address: '{v}' in '{v}'") from None


def _srv_id(v: str, srv: str) -> int:
    value = tune_atol(v)
    if value <= 0:
        raise StatementError("'id' : custom id has to be > 0")
    return value


def _srv_choice(name: str, choices: tuple[str, ...], expects: str) -> ServerConv:
    def conv(v: str, srv: str) -> str:
        if v not in choices:
            raise StatementError(f"'{name}' expects {expects} but got '{v}'")
        return v

    return conv


def _srv_init_addr(v: str, srv: str) -> None:
    for method in v.split(","):
        if method not in ("libc", "last", "none"):
            try:
                ipaddress.ip_address(method)
            except ValueError:
                raise StatementError(f"'init-addr' : unknown init-addr method '{method}', supported methods are "
                                     "'libc', 'last', 'none'.") from None


def _const(value: Any) -> ServerConv:
    return lambda v, srv: value


# when the argument is missing (None: HAProxy reads an empty string and goes on)
_SERVER_MISSING = {
    "inter": "'inter' expects a delay as argument.", "fastinter": "'fastinter' expects a delay as argument.",
    "downinter": "'downinter' expects a delay as argument.", "slowstart": "'slowstart' expects a delay as argument.",
    "rise": "'rise' expects an integer argument.", "fall": "'fall' expects an integer argument.",
    "port": "'port' expects a port number as argument.", "addr": "'addr' expects <ipv4|ipv6> as argument.",
    "id": "'id' : expects an integer argument", "cookie": "'cookie' expects <value> as argument.",
    "track": "'track' expects [<proxy>/]<server> as argument.", "weight": None, "maxconn": None, "minconn": None,
    "maxqueue": None, "init-addr": None, "agent-port": None,
}

_SERVER_PARAM_SPECS: dict[str, tuple[str | None, int, ServerConv | None, str, str]] = {
    # name: (field, nargs, conv, status, summary)
    "check": ("check", 0, None, "supported", "Enable health checks."),
    "no-check": ("check", 0, _const(False), "supported", "Disable health checks (overrides default-server)."),
    "inter": ("inter", 1, _srv_time("agent-inter", "inter"), "supported", "Check interval while UP (default 2s)."),
    "fastinter": ("fastinter", 1, _srv_time("agent-inter", "fastinter"), "supported", "Check interval while changing state."),
    "downinter": ("downinter", 1, _srv_time("agent-inter", "downinter"), "supported", "Check interval while DOWN."),
    "rise": ("rise", 1, _srv_atoi_min("'rise' has to be > 0."), "supported", "Consecutive successes to go UP (default 2)."),
    "fall": ("fall", 1, _srv_atoi_min("'fall' has to be > 0."), "supported", "Consecutive failures to go DOWN (default 3)."),
    "port": ("check_port", 1, _srv_port, "supported", "Port of health checks."),
    "addr": ("check_addr", 1, _srv_addr, "supported", "Address of health checks."),
    "weight": ("weight", 1, _srv_weight, "supported", "Load-balancing weight, 0..256 (default 1)."),
    "maxconn": ("maxconn", 1, _srv_atoi, "supported", "Concurrent connections; excess is queued."),
    "minconn": ("minconn", 1, _srv_atoi, "supported", "Dynamic maxconn floor (with fullconn)."),
    "maxqueue": ("maxqueue", 1, _srv_atoi, "supported", "Longest queue for this server."),
    "backup": ("backup", 0, None, "supported", "Only used when no active server is usable."),
    "no-backup": ("backup", 0, _const(False), "supported", "Undo an inherited 'backup'."),
    "disabled": ("disabled", 0, None, "supported", "Start in maintenance."),
    "enabled": ("disabled", 0, _const(False), "supported", "Undo 'disabled'."),
    "slowstart": ("slowstart", 1, _srv_time("slowstart"), "supported", "Ramp weight up over this time after recovery."),
    "on-marked-down": ("on_marked_down", 1, _srv_choice("on-marked-down", ("shutdown-sessions",), "'shutdown-sessions'"),
                       "supported", "shutdown-sessions: close its sessions when it goes DOWN."),
    "on-marked-up": ("on_marked_up", 1, _srv_choice("on-marked-up", ("shutdown-backup-sessions",),
                                                    "'shutdown-backup-sessions'"),
                     "supported", "shutdown-backup-sessions: close backup sessions when it comes UP."),
    "on-error": ("on_error", 1, _srv_choice("on-error", ("fastinter", "fail-check", "sudden-death", "mark-down"),
                                            "one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down'"),
                 "supported", "Action when observed errors reach error-limit."),
    "observe": ("observe", 1, _srv_choice("observe", ("none", "layer4", "layer7"), "one of 'none', 'layer4', 'layer7'"),
                "supported", "Passive health: count layer4 or layer7 errors."),
    "error-limit": ("error_limit", 1, _srv_atoi_min("error-limit has to be > 0."), "supported",
                    "Observed errors before on-error."),
    "send-proxy": ("send_proxy", 0, _const(1), "supported", "Send a PROXY protocol v1 header."),
    "send-proxy-v2": ("send_proxy", 0, _const(2), "supported", "Send a PROXY protocol v2 header."),
    "no-send-proxy": ("send_proxy", 0, _const(0), "supported", "Undo send-proxy."),
    "no-send-proxy-v2": ("send_proxy", 0, _const(0), "supported", "Undo send-proxy-v2."),
    "check-send-proxy": ("check_send_proxy", 0, None, "supported", "Send the PROXY header on checks too."),
    "no-check-send-proxy": ("check_send_proxy", 0, _const(False), "supported", "Undo check-send-proxy."),
    "id": ("id", 1, _srv_id, "supported", "Numeric server id (used by 'first' and hashing)."),
    "track": ("tracks", 1, None, "ignored", "Track another server's state (not implemented: checked separately)."),
    "agent-check": ("agent_check", 0, None, "ignored", "Agent checks are not implemented."),
    "no-agent-check": ("agent_check", 0, _const(False), "supported", "Undo agent-check."),
    "agent-port": (None, 1, None, "ignored", "Agent checks are not implemented."),
    "agent-inter": (None, 1, _srv_time("agent-inter"), "ignored", "Agent checks are not implemented."),
    "agent-addr": (None, 1, None, "ignored", "Agent checks are not implemented."),
    "agent-send": (None, 1, None, "ignored", "Agent checks are not implemented."),
    "cookie": (None, 1, None, "ignored", "Cookie persistence is not implemented."),
    "non-stick": (None, 0, None, "no-effect", "Stick tables are not implemented."),
    "stick": (None, 0, None, "no-effect", "Stick tables are not implemented."),
    "resolvers": (None, 1, None, "no-effect", "Names are resolved once at start-up."),
    "resolve-prefer": (None, 1, None, "no-effect", "Names are resolved once at start-up."),
    "resolve-net": (None, 1, None, "no-effect", "Names are resolved once at start-up."),
    "resolve-opts": (None, 1, None, "no-effect", "Names are resolved once at start-up."),
    "init-addr": (None, 1, _srv_init_addr, "no-effect", "Names are resolved once at start-up."),
    "pool-max-conn": (None, 1, None, "no-effect", "Connection pool tuning."),
    "pool-low-conn": (None, 1, None, "no-effect", "Connection pool tuning."),
    "pool-purge-delay": (None, 1, None, "no-effect", "Connection pool tuning."),
    "max-reuse": (None, 1, None, "no-effect", "Connection pool tuning."),
    "tfo": (None, 0, None, "no-effect", "TCP fast open to the server."),
    "no-tfo": (None, 0, None, "no-effect", "TCP fast open to the server."),
    "tcp-ut": (None, 1, None, "no-effect", "TCP user timeout."),
    "log-proto": (None, 1, None, "no-effect", "Only for log servers (ring sections)."),
    "check-proto": (None, 1, None, "no-effect", "Multiplexer of checks; haproxy-py checks speak HTTP/1 or TCP."),
    "check-via-socks4": (None, 0, None, "unsupported", "SOCKS4 is not implemented."),
    "check-sni": (None, 1, None, "no-effect", "TLS checks are not implemented."),
    "check-alpn": (None, 1, None, "no-effect", "TLS checks are not implemented."),
    "no-check-ssl": (None, 0, None, "no-effect", "haproxy-py never speaks TLS to servers."),
    "sni": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "alpn": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "npn": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "verify": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "verifyhost": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "ca-file": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "crl-file": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "crt": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "ciphers": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "ciphersuites": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "ssl-min-ver": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "ssl-max-ver": (None, 1, None, "no-effect", "Only meaningful with 'ssl'."),
    "allow-0rtt": (None, 0, None, "no-effect", "Only meaningful with 'ssl'."),
    "no-ssl": (None, 0, None, "no-effect", "haproxy-py never speaks TLS to servers."),
    "no-ssl-reuse": (None, 0, None, "no-effect", "Only meaningful with 'ssl'."),
    "ssl-reuse": (None, 0, None, "no-effect", "Only meaningful with 'ssl'."),
    "tls-tickets": (None, 0, None, "no-effect", "Only meaningful with 'ssl'."),
    "no-tls-tickets": (None, 0, None, "no-effect", "Only meaningful with 'ssl'."),
    **{n: (None, 0, None, "no-effect", "Only meaningful with 'ssl'.") for n in (
        "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "force-sslv3", "force-tlsv10",
        "force-tlsv11", "force-tlsv12", "force-tlsv13", "no-verifyhost", "no-send-proxy-v2-ssl",
        "no-send-proxy-v2-ssl-cn")},
    "ssl": (None, 0, None, "unsupported", "TLS to servers is not implemented."),
    "check-ssl": (None, 0, None, "unsupported", "TLS health checks are not implemented."),
    "send-proxy-v2-ssl": (None, 0, None, "unsupported", "PROXY v2 TLS information is not implemented."),
    "send-proxy-v2-ssl-cn": (None, 0, None, "unsupported", "PROXY v2 TLS information is not implemented."),
    "proto": (None, 1, None, "unsupported", "Alternative multiplexers (h2, fcgi) are not implemented."),
    "source": (None, 1, None, "unsupported", "Choosing the source address is not implemented."),
    "usesrc": (None, 1, None, "unsupported", "Transparent proxying is not implemented."),
    "redir": (None, 1, None, "unsupported", "Redirect-to-server is not implemented."),
    "namespace": (None, 1, None, "unsupported", "Network namespaces are not implemented."),
    "socks4": (None, 1, None, "unsupported", "SOCKS4 is not implemented."),
    "ws": (None, 1, None, "no-effect", "WebSocket protocol hint."),
    "proxy-v2-options": (None, 1, None, "unsupported", "PROXY v2 options are not implemented."),
}
for _name, (_field, _nargs, _conv, _status, _summary) in _SERVER_PARAM_SPECS.items():
    SERVER_PARAMS[_name] = Keyword(_name, _name + (" <value>" if _nargs else ""), _summary, status=_status)


def parse_server_params(words: list[str], base: dict[str, Any], st: Statement, label: str,
                        srvname: str) -> dict[str, Any]:
    """Apply server (or default-server) parameters to a copy of `base`; errors use the server form."""
    values = dict(base)
    i = 0
    while i < len(words) and words[i] != "":
        name = words[i]
        spec = _SERVER_PARAM_SPECS.get(name)
        if spec is None:
            hint = did_you_mean(name, _SERVER_PARAM_SPECS)
            raise StatementError(
                f"unknown keyword '{name}'." if not hint else f"unknown keyword '{name}'; did you mean '{hint}' maybe ?",
                server=label,
            )
        field, nargs, conv, status, summary = spec
        args = words[i + 1 : i + 1 + nargs]
        if nargs and (not args or args[0] == ""):
            missing = _SERVER_MISSING.get(name, f"'{name}' expects an argument.")
            if missing is not None:
                raise StatementError(missing + ".", server=label)
            args = [""]
        if status == "unsupported":
            raise StatementError(
                f"'{name}' is a HAProxy server option that haproxy-py does not implement ({summary})", server=label
            )
        if status == "ignored":
            st.warn(f"'{name}' is not implemented by haproxy-py and is ignored ({summary})", server=label)
        try:
            value = conv(args[0] if args else "", srvname) if conv is not None else (args[0] if args else True)
        except StatementError as e:
            raise StatementError(e.message + ".", server=label) from None
        if field is not None:
            values[field] = value
        i += 1 + nargs
    return values


def _server_fields(values: dict[str, Any]) -> dict[str, Any]:
    allowed = set(attrs.fields_dict(Server))
    return {k: v for k, v in values.items() if k in allowed}


@pkw("server", "lb", "server <name> <addr>[:<port>] [params]", "A server of the backend.", wrong_cap_alert=True)
def _p_server(st: Statement, px: ProxyDraft) -> None:
    if len(st.args) < 2 or "" in st.args[:2]:
        raise StatementError("'server' expects <name> and <addr>[:<port>] as arguments.", form="bracket")
    name = st.args[0]
    label = f"{px.name}/{name}"
    for c in name:
        if not (c.isascii() and (c.isalnum() or c in "-_.:")):
            raise StatementError(f"character '{c}' is not permitted in server name '{name}'.", form="bracket")
    try:
        address = grammar.parse_server_address(expand_address_vars(st.args[1], st.env), resolve=st.resolve)
    except StatementError as e:
        raise StatementError(e.message, server=label) from None
    values = parse_server_params(st.args[2:], px.default_server, st, label, name)
    _add_server(st, px, name, address, values, explicit_id="id" in values)


def _add_server(st: Statement, px: ProxyDraft, name: str, address: Any, values: dict[str, Any],
                explicit_id: bool) -> None:
    """Add a server; ids not given with `id` are assigned after the section (first free ones)."""
    label = f"{px.name}/{name}"
    if name in px.server_names:
        prev = px.server_names[name]
        kind = "proxy" if px.kind == "listen" else px.kind
        raise StatementError(f"{kind} '{px.name}', another server named '{name}' was already defined at line "
                             f"{prev.line}, please use distinct names.")
    fields = _server_fields(values)
    if explicit_id:
        used = px.server_ids.get(fields["id"])
        if used is not None:
            raise StatementError(f"'id' : custom id {fields['id']} already used at {used[1].file}:{used[1].line} "
                                 f"('server {used[0]}').", server=label)
        px.server_ids[fields["id"]] = (name, st.where)
    else:
        fields["id"] = 0  # assigned when the section ends
    px.server_names[name] = st.where
    px.append("servers", Server(name=name, address=address, where=st.where, **fields))


@pkw("server-template", "lb", "server-template <prefix> <num|range> <addr>[:<port>] [params]",
     "Declare numbered servers <prefix>1..<prefix>N sharing one address and parameters.", wrong_cap_alert=True)
def _p_server_template(st: Statement, px: ProxyDraft) -> None:
    if len(st.args) < 3 or "" in st.args[:3]:
        raise StatementError("'server-template' expects <prefix> <nb | range> <addr>[:<port>] as arguments.",
                             form="bracket")
    prefix, rng = st.args[0], st.args[1]
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", rng)
    lo, hi = (int(m.group(1)), int(m.group(2))) if m and m.group(2) else (1, int(m.group(1)) if m else 0)
    if not m or lo < 1 or hi < lo:
        raise StatementError(f"Wrong server-template number or range arg '{rng}'.", form="bracket")
    for c in prefix:
        if not (c.isascii() and (c.isalnum() or c in "-_.:")):
            raise StatementError(f"character '{c}' is not permitted in server name '{prefix}'.", form="bracket")
    label = f"{px.name}/{prefix}"
    try:
        address = grammar.parse_server_address(expand_address_vars(st.args[2], st.env), resolve=st.resolve)
    except StatementError as e:
        raise StatementError(e.message, server=label) from None
    values = parse_server_params(st.args[3:], px.default_server, st, label, prefix)
    for n in range(lo, min(hi, lo + 65535) + 1):
        _add_server(st, px, f"{prefix}{n}", address, values, explicit_id=False)


@pkw("default-server", "dlb", "default-server [params]", "Defaults for the parameters of following server lines.")
def _p_default_server(st: Statement, px: ProxyDraft) -> None:
    first = st.arg(0) or ""
    if first and first not in _SERVER_PARAM_SPECS and re.search(r"[0-9:/@]", first):
        raise StatementError(f"unknown keyword '{first}'. Hint: no address was expected for this server.",
                             form="bracket")
    values = parse_server_params(st.args, px.default_server, st, f"{px.name}/default-server", "default-server")
    values.pop("id", None)  # a default id would give every server the same one
    px.default_server = values


# ----------------------------------------------------------------------------------------------
# options
#
# HAProxy 2.6 distinguishes boolean options (its cfg_opts tables: they accept `no option X`) from
# the others (`no`/`default` refused with "negation/default is not supported"). Quirk kept on
# purpose: in 2.6 `default option X` is refused for boolean and connection-mode options with
# "'option X' cannot handle unexpected argument 'X'." (only `default option redispatch` works).

_FE, _BE, _ANY = "dfl", "dlb", "dflb"
_CONN_MODES = {"httpclose": "close", "http-server-close": "server-close", "http-keep-alive": "keep-alive"}


def okw(name: str, caps: str, syntax: str, summary: str, negatable: bool = False, **kw: Any) -> Callable[[ProxyHandler], ProxyHandler]:
    return _register(OPTIONS, name, syntax, summary, caps=caps, negatable=negatable, **kw)


def _bool_option(name: str, caps: str, summary: str, status: str = "supported") -> None:
    def handler(st: Statement, px: ProxyDraft) -> None:
        opts = set(px.values.get("options", frozenset()))
        if st.prefix == "no":
            opts.discard(name)
            opts.add("no-" + name)
        else:
            opts.discard("no-" + name)
            opts.add(name)
        px.values["options"] = frozenset(opts)

    OPTIONS[name] = Keyword(name, f"[no] option {name}", summary, status=status, caps=caps, handler=handler,
                            negatable=True)


_bool_option("dontlognull", _FE, "Do not log connections that carried no data.")
_bool_option("log-health-checks", _BE, "Log every health check result change, not only state changes.")
_bool_option("allbackups", _BE, "Use all backup servers at once when no active server is usable.")
_bool_option("clitcpka", _FE, "TCP keepalive on the client side.")
_bool_option("srvtcpka", _BE, "TCP keepalive on the server side.")
_bool_option("dontlog-normal", _FE, "Log only errors and abnormal terminations.")
_bool_option("log-separate-errors", _FE, "Log errors at a higher level.")
_bool_option("prefer-last-server", _BE, "Keep a client's keep-alive requests on the same server when possible.")
_bool_option("http-ignore-probes", _FE, "Do not answer 408 to connections that sent nothing.")
_bool_option("abortonclose", _BE, "Drop queued requests whose client has gone.")
_bool_option("accept-invalid-http-request", _FE, "Relax the request parser.", status="ignored")
_bool_option("accept-invalid-http-response", _BE, "Relax the response parser.", status="ignored")
_bool_option("http-buffer-request", _ANY, "Wait for the whole request body before choosing a server.", status="ignored")
_bool_option("logasap", _FE, "Log before the end of the session.", status="ignored")
_bool_option("persist", _BE, "Keep sending to a DOWN server when persistence says so.", status="ignored")
_bool_option("http-pretend-keepalive", _BE, "Pretend keep-alive to the server with http-server-close.", status="ignored")
_bool_option("checkcache", _BE, "Block cacheable responses with Set-Cookie.", status="ignored")
_bool_option("http-use-proxy-header", _FE, "Use Proxy-Connection as Connection.", status="ignored")
_bool_option("h1-case-adjust-bogus-client", _FE, "Header case adjustment for clients.", status="ignored")
_bool_option("h1-case-adjust-bogus-server", _BE, "Header case adjustment for servers.", status="ignored")
_bool_option("disable-h2-upgrade", _FE, "Refuse HTTP/1 to HTTP/2 upgrades (haproxy-py never upgrades).", status="no-effect")
_bool_option("transparent", _BE, "Connect to the client's original destination (transparent proxying).",
             status="unsupported")
for _n, _caps in (("contstats", _FE), ("socket-stats", _FE), ("splice-auto", _ANY), ("splice-request", _ANY),
                  ("splice-response", _ANY), ("tcp-smart-accept", _FE), ("tcp-smart-connect", _BE),
                  ("http-no-delay", _ANY), ("independent-streams", _ANY), ("nolinger", _ANY),
                  ("idle-close-on-response", _FE)):
    _bool_option(_n, _caps, "Performance or accounting tuning; haproxy-py behaves the same either way.", status="no-effect")


def _conn_mode_option(name: str, summary: str) -> None:
    def handler(st: Statement, px: ProxyDraft) -> None:
        mode = _CONN_MODES[name]
        if st.prefix == "no":
            # `no option X` only clears the mode if it is the one named
            if px.values.get("http_conn_mode", "keep-alive") == mode:
                px.values["http_conn_mode"] = "keep-alive"
            return
        px.values["http_conn_mode"] = mode

    OPTIONS[name] = Keyword(name, f"[no] option {name}", summary, caps=_ANY, handler=handler, negatable=True)


_conn_mode_option("http-keep-alive", "Keep-alive on both sides (the default).")
_conn_mode_option("http-server-close", "Keep-alive with the client, close with the server after each response.")
_conn_mode_option("httpclose", "Close both sides after each response.")


@okw("tcpka", _ANY, "option tcpka", "TCP keepalive on both sides.", status="no-effect")
def _o_tcpka(st: Statement, px: ProxyDraft) -> None:
    px.values["options"] = frozenset(set(px.values.get("options", frozenset())) | {"tcpka"})


@okw("redispatch", _BE, "[no] option redispatch [<interval>]", "Let retries go to another server.", negatable=True)
def _o_redispatch(st: Statement, px: ProxyDraft) -> None:
    if st.prefix in ("no", "default"):
        px.values["redispatch"] = 0
        return
    interval = -1
    if len(st.args) > 1 and st.args[1] != "":
        interval = tune_atol(st.args[1])  # HAProxy reads it with atol(): 'abc' is 0 (disabled)
    px.values["redispatch"] = interval


@okw("forwardfor", _ANY, "option forwardfor [except <net>] [header <name>] [if-none]",
     "Add X-Forwarded-For with the client address.")
def _o_forwardfor(st: Statement, px: ProxyDraft) -> None:
    spec = ForwardFor()
    words = st.args[1:]
    i = 0
    while i < len(words) and words[i] != "":
        w = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if w == "except":
            if value == "" or not _is_network(value):
                raise StatementError("'option forwardfor except' expects <address>[/mask] as argument.")
            spec = attrs.evolve(spec, except_net=value)
            i += 2
        elif w == "header":
            if value == "":
                raise StatementError("'option forwardfor header' expects <header_name> as argument.")
            spec = attrs.evolve(spec, header=value)
            i += 2
        elif w == "if-none":
            spec = attrs.evolve(spec, if_none=True)
            i += 1
        else:
            raise StatementError("'option forwardfor' only supports optional values: 'except', 'header' and 'if-none'.")
    px.values["forwardfor"] = spec


def _is_network(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _option_no_extra(st: Statement, n: int) -> None:
    """'option X' takes `n` arguments at most (HAProxy's alertif_too_many_args_idx)."""
    if len(st.args) > n + 1 and st.args[n + 1] != "":
        raise StatementError(f"'option {st.args[0]}' cannot handle unexpected argument '{st.args[n + 1]}'.")


def _log_format_option(name: str, fmt: str, caps: str, summary: str) -> None:
    def handler(st: Statement, px: ProxyDraft) -> None:
        extra = [a for a in st.args[1:2] if a != ""]
        if name == "httplog":
            if extra and extra != ["clf"]:
                raise StatementError("keyword 'httplog' only supports option 'clf'.")
            _option_no_extra(st, 1)
        else:
            _option_no_extra(st, 0)
        px.values["log_format"] = "%{clf}" if extra == ["clf"] else fmt
        opts = set(px.values.get("options", frozenset())) - {"httplog", "tcplog", "httpslog"}
        px.values["options"] = frozenset(opts | {name})

    OPTIONS[name] = Keyword(name, f"option {name}" + (" [clf]" if name == "httplog" else ""), summary, caps=caps,
                            handler=handler)


TCPLOG_FORMAT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG_FORMAT = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
)
_log_format_option("tcplog", TCPLOG_FORMAT, _FE, "Log one line per TCP session with timers and states.")
_log_format_option("httplog", HTTPLOG_FORMAT, _FE, "Log one line per HTTP request.")


@okw("httpchk", _BE, "option httpchk [<method>] [<uri>] [<version>]", "HTTP health checks (default OPTIONS / HTTP/1.0).")
def _o_httpchk(st: Statement, px: ProxyDraft) -> None:
    _option_no_extra(st, 3)
    words = [w for w in st.args[1:4] if w != ""]
    chk = px.values.get("httpchk") or HttpCheck()
    if len(words) == 1:
        chk = attrs.evolve(chk, uri=words[0])
    elif len(words) >= 2:
        chk = attrs.evolve(chk, method=words[0], uri=words[1])
    if len(words) == 3:
        version = words[2]
        if "\r\n" in version:
            st.warn("'option httpchk' : hiding headers or body at the end of the version string is deprecated. "
                    "Please, consider to use 'http-check send' directive instead.")
            version, _, tail = version.partition("\r\n")
            # headers up to an empty line, then the body (both are sent, as by HAProxy 2.6)
            tail, _, body = tail.partition("\r\n\r\n") if not tail.startswith("\r\n") else ("", "", tail[2:])
            headers = []
            for line in tail.split("\r\n"):
                if ":" in line:
                    k, _, v = line.partition(":")
                    headers.append((k.strip(), v.strip()))
            chk = attrs.evolve(chk, headers=tuple(headers), body=body)
        chk = attrs.evolve(chk, version=version)
    px.values["httpchk"] = chk
    px.values["check_kind"] = "http"


@okw("tcp-check", _BE, "option tcp-check", "Health checks run the tcp-check rules.")
def _o_tcp_check(st: Statement, px: ProxyDraft) -> None:
    _option_no_extra(st, 0)
    px.values["check_kind"] = "tcp-check"


for _n, _s in (("ssl-hello-chk", "SSLv3 hello checks"), ("mysql-check", "MySQL checks"), ("pgsql-check", "PostgreSQL checks"),
               ("redis-check", "Redis checks"), ("smtpchk", "SMTP checks"), ("ldap-check", "LDAP checks"),
               ("spop-check", "SPOP checks"), ("external-check", "external command checks")):
    OPTIONS[_n] = Keyword(_n, f"option {_n} ...", f"{_s} are not implemented; use 'option tcp-check' rules.",
                          status="unsupported", caps=_BE)
for _n, _s in (("originalto", "X-Original-To"), ("httpslog", "HTTPS log format"),
               ("http-restrict-req-hdr-names", "header-name restrictions")):
    OPTIONS[_n] = Keyword(_n, f"option {_n} ...", f"{_s} is not implemented.", status="unsupported", caps=_ANY)

# options HAProxy 2.6 still recognises only to refuse them, with its own words
_REMOVED_OPTIONS = {
    "forceclose": "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove it, or use "
                  "'option httpclose' if absolutely needed.",
    "http-tunnel": "option 'http-tunnel' is not supported any more since HAProxy 2.1, please just remove it, it "
                   "shouldn't be needed.",
    "http_proxy": "option 'http_proxy' is not supported any more since HAProxy 2.5. This option stopped working in "
                  "HAProxy 1.9 and usually had nasty side effects. It can be more reliably implemented with "
                  "combinations of 'http-request set-dst' and 'http-request set-uri', and even 'http-request "
                  "do-resolve' if DNS resolution is desired.",
}
for _n, _msg in _REMOVED_OPTIONS.items():
    OPTIONS[_n] = Keyword(_n, f"option {_n}", "Removed from HAProxy. " + _msg, status="removed", caps=_ANY)


@pkw("option", "dflb", "[no] option <name> [args]", "Proxy options; see the option table.")
def _p_option(st: Statement, px: ProxyDraft) -> None:
    name = st.arg(0) or ""
    if name == "":
        raise StatementError("'option' expects an option name.", form="tight")
    kw = OPTIONS.get(name)
    if kw is not None and kw.status == "removed":
        raise StatementError(_REMOVED_OPTIONS[name], form="tight")
    if st.prefix and (kw is None or not kw.negatable):
        raise StatementError(f"negation/default is not supported for option '{name}'.", form="tight")
    if st.prefix == "default" and name != "redispatch":
        raise StatementError(f"'option {name}' cannot handle unexpected argument '{name}'.")  # 2.6 quirk
    if kw is None:
        hint = did_you_mean(name, OPTIONS)
        raise StatementError(f"unknown option '{name}'" + (f"; did you mean '{hint}' maybe ?" if hint else "."))
    if kw.status == "unsupported":
        raise StatementError(f"'option {name}' is a HAProxy option that haproxy-py does not implement: {kw.summary}")
    if kw.negatable and name != "redispatch":
        _option_no_extra(st, 0)
    if not _cap_ok(px.kind, kw.caps):
        st.warn(f"'{name}' ignored because {px.label} has no {_cap_name(kw.caps)} capability.")
        return
    if kw.status == "ignored" and st.prefix != "no":
        st.warn(f"'option {name}' is not implemented by haproxy-py and is ignored.")
    assert kw.handler is not None
    kw.handler(st, px)


# ----------------------------------------------------------------------------------------------
# rules

HTTP_REQUEST_ACTIONS = {
    "add-header": 2, "set-header": 2, "del-header": 1, "deny": 0, "return": 0, "redirect": 1, "allow": 0,
    "use-service": 1, "set-var": 1, "set-var-fmt": 1, "unset-var": 0, "replace-header": 3, "replace-value": 3,
    "set-path": 1, "set-pathq": 1, "set-query": 1, "set-uri": 1, "set-method": 1, "replace-path": 2,
    "replace-pathq": 2, "replace-uri": 2, "tarpit": 0, "auth": 0, "reject": 0, "set-log-level": 1,
    "set-nice": 1, "set-tos": 1, "set-mark": 1, "capture": 1, "track-sc0": 1, "track-sc1": 1, "track-sc2": 1,
    "sc-inc-gpc0": 1, "sc-inc-gpc1": 1, "sc-set-gpt0": 1, "set-src": 1, "set-src-port": 1, "set-dst": 1,
    "set-dst-port": 1, "add-acl": 2, "del-acl": 2, "set-map": 2, "del-map": 1, "cache-use": 1,
    "early-hint": 2, "normalize-uri": 1, "silent-drop": 0, "wait-for-body": 0, "wait-for-handshake": 0,
    "strict-mode": 1, "disable-l7-retry": 0, "do-resolve": 1, "set-timeout": 2, "set-priority-class": 1,
    "set-priority-offset": 1, "send-spoe-group": 2,
}
HTTP_RESPONSE_ACTIONS = {
    "add-header": 2, "set-header": 2, "del-header": 1, "deny": 0, "return": 0, "redirect": 1, "allow": 0,
    "set-var": 1, "set-var-fmt": 1, "unset-var": 0, "replace-header": 3, "replace-value": 3, "set-status": 1,
    "set-log-level": 1, "set-nice": 1, "set-tos": 1, "set-mark": 1, "capture": 1, "track-sc0": 1, "track-sc1": 1,
    "track-sc2": 1, "sc-inc-gpc0": 1, "sc-inc-gpc1": 1, "sc-set-gpt0": 1, "add-acl": 2, "del-acl": 2,
    "set-map": 2, "del-map": 1, "cache-store": 1, "silent-drop": 0, "strict-mode": 1, "wait-for-body": 0,
    "send-spoe-group": 2, "set-timeout": 2,
}
# Actions the runtime carries out; the others are recognised and refused with a clear message.
SUPPORTED_HTTP_ACTIONS = frozenset({"add-header", "set-header", "del-header", "deny", "return", "redirect", "allow",
                                    "use-service", "set-status", "replace-header", "replace-value", "set-path",
                                    "set-query", "set-uri", "set-method", "tarpit", "auth", "reject"})
TCP_REQUEST_KINDS = {
    "connection": {"accept", "reject", "expect-proxy", "expect-netscaler-cip", "capture", "track-sc0", "track-sc1",
                   "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0", "set-src", "set-src-port", "set-dst",
                   "set-dst-port", "set-mark", "set-tos", "set-var", "set-var-fmt", "unset-var", "silent-drop"},
    "session": {"accept", "reject", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1",
                "sc-set-gpt0", "set-var", "set-var-fmt", "unset-var", "silent-drop", "set-mark", "set-tos"},
    "content": {"accept", "reject", "capture", "do-resolve", "set-dst", "set-dst-port", "set-log-level",
                "set-nice", "set-priority-class", "set-priority-offset", "set-src", "set-src-port", "set-var",
                "set-var-fmt", "unset-var", "silent-drop", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0",
                "sc-inc-gpc1", "sc-set-gpt0", "send-spoe-group", "use-service", "switch-mode", "set-mark",
                "set-tos"},
}
SUPPORTED_TCP_ACTIONS = frozenset({"accept", "reject", "set-var", "set-var-fmt", "unset-var"})


def _action_param(word: str) -> str | None:
    """`set-var(txn.x)` -> `txn.x`; None when the action word has no parentheses."""
    if "(" not in word:
        return None
    inner = word.split("(", 1)[1]
    return inner[:-1] if inner.endswith(")") else inner


def _action_name(word: str) -> str:
    """`set-var(txn.x)` -> `set-var`; `lua.foo` -> `lua`."""
    if "(" in word:
        return word.split("(", 1)[0]
    if word.startswith("lua."):
        return "lua"
    return word


def _http_rule(family: str, actions: dict[str, int], caps: str, summary: str) -> None:
    def handler(st: Statement, px: ProxyDraft) -> None:
        if px.kind == "defaults" and not px.name:
            raise StatementError(f"'{family}' not allowed in anonymous 'defaults' section.")
        words, cond_words = split_condition(st.args)
        if not words:
            raise StatementError(f"'{family}' expects an action.")
        action = _action_name(words[0])
        if action not in actions:
            raise StatementError(f"'{family}' expects {', '.join(repr(a) for a in sorted(actions))} but got '{words[0]}'.")
        if action not in SUPPORTED_HTTP_ACTIONS:
            raise StatementError(f"'{family} {action}' is a HAProxy action that haproxy-py does not implement.")
        if len(words) - 1 < actions[action]:
            raise StatementError(f"'{family} {action}' expects at least {actions[action]} argument(s).")
        _check_http_action(family, action, words[1:])
        _check_rule_log_formats(px, family, action, words[1:])
        cond = (_cond(st, px, cond_words, f"error detected while parsing an '{family} {action}' condition : {{err}}.")
                if cond_words else None)
        field = {"http-request": "http_request_rules", "http-response": "http_response_rules",
                 "http-after-response": "http_after_response_rules"}[family]
        px.append(field, Rule(family=family, action=action, args=tuple(words[1:]), where=st.where, cond=cond,
                              param=_action_param(words[0])))

    PROXY[family] = Keyword(family, f"{family} <action> [args] [if|unless <cond>]", summary, caps=caps, handler=handler)


# where an action's arguments are log-format strings (HAProxy parses them when reading the rule)
_LF_ARG_INDEX = {"add-header": 1, "set-header": 1, "set-path": 0, "set-pathq": 0, "set-query": 0, "set-uri": 0,
                 "set-method": 0, "replace-header": 2, "replace-value": 2, "replace-path": 1, "replace-pathq": 1,
                 "replace-uri": 1, "early-hint": 1}


def _check_rule_log_formats(px: ProxyDraft, family: str, action: str, args: list[str]) -> None:
    from haproxy_py.config import samples

    formats: list[str] = []
    k = _LF_ARG_INDEX.get(action)
    if k is not None and k < len(args):
        formats.append(args[k])
    if action == "redirect" and len(args) > 1 and args[0] in ("location", "prefix"):
        formats.append(args[1])
    if action == "return":
        formats += [args[j + 1] for j in range(len(args) - 1) if args[j] == "lf-string"]
    for fmt in formats:
        try:
            samples.check_log_format(fmt)
        except ConditionError as e:
            raise StatementError(f"error detected in {px.label} while parsing '{family} {action}' rule : {e.message}.") from None


def _check_http_action(family: str, action: str, args: list[str]) -> None:
    if action == "return":
        has_payload = any(a in ("string", "lf-string", "file", "lf-file") for a in args)
        if has_payload and "content-type" not in args:
            raise StatementError(f"'{family} return' : a content-type must be specified when a payload is given.")
    if action == "use-service" and args[0] != "prometheus-exporter":
        raise StatementError(f"'{family} use-service' : unknown service '{args[0]}'.")
    if action == "redirect" and args[0] not in ("location", "prefix", "scheme"):
        raise StatementError(f"'{family} redirect' expects 'location', 'prefix' or 'scheme' (got '{args[0]}').")
    if action == "deny" and "deny_status" in args:
        i = args.index("deny_status")
        v = args[i + 1] if i + 1 < len(args) else ""
        if not v.isdigit() or not 200 <= int(v) <= 599:
            raise StatementError(f"'{family} deny' : status code must be between 200 and 599 (got '{v}').")


_http_rule("http-request", HTTP_REQUEST_ACTIONS, "dflb", "Act on HTTP requests (set-header, deny, return, redirect...).")
_http_rule("http-response", HTTP_RESPONSE_ACTIONS, "dflb", "Act on HTTP responses (set-header, del-header...).")
_http_rule("http-after-response", HTTP_RESPONSE_ACTIONS, "dflb", "Act on every response, HAProxy's own included.")


@pkw("tcp-request", "dflb", "tcp-request connection|session|content <action> [if|unless <cond>] | "
     "tcp-request inspect-delay <time>", "Layer 4 rules: accept/reject connections, inspect content.")
def _p_tcp_request(st: Statement, px: ProxyDraft) -> None:
    kind = st.arg(0)
    if kind == "inspect-delay":
        _need(st, 2, "a time argument")
        px.values["inspect_delay"] = grammar.parse_time(st.args[1], "tcp-request inspect-delay", warn=st.plain_warn)
        return
    if kind not in TCP_REQUEST_KINDS:
        raise StatementError(
            f"'tcp-request' expects 'inspect-delay', 'connection', 'session' or 'content' (got '{kind or ''}')."
        )
    if px.kind == "defaults" and not px.name:
        raise StatementError(f"tcp-request {kind} is not allowed in anonymous 'defaults' sections")
    words, cond_words = split_condition(st.args[1:])
    if not words:
        raise StatementError(f"'tcp-request {kind}' expects an action.")
    action = _action_name(words[0])
    if action not in TCP_REQUEST_KINDS[kind]:
        raise StatementError(
            f"'tcp-request {kind}' expects {', '.join(repr(a) for a in sorted(TCP_REQUEST_KINDS[kind]))} "
            f"but got '{words[0]}'."
        )
    if action not in SUPPORTED_TCP_ACTIONS:
        raise StatementError(f"'tcp-request {kind} {action}' is a HAProxy action that haproxy-py does not implement.")
    cond = (_cond(st, px, cond_words, f"'tcp-request {kind} {action}' : error detected in {px.label} while parsing "
                                       f"'{cond_words[0]}' condition : {{err}}") if cond_words else None)
    px.append("tcp_request_rules", Rule(family=f"tcp-request {kind}", action=action, args=tuple(words[1:]),
                                        where=st.where, cond=cond, param=_action_param(words[0])))


@pkw("tcp-response", "dlb", "tcp-response content accept|reject|close [if|unless <cond>] | tcp-response inspect-delay <t>",
     "Layer 4 response rules.", status="unsupported")
def _p_tcp_response(st: Statement, px: ProxyDraft) -> None:
    raise StatementError("'tcp-response' is a HAProxy keyword that haproxy-py does not implement.")


@pkw("acl", "dflb", "acl <name> <fetch>[,<conv>...] [flags] [operator] <pattern>...",
     "Named condition; several lines with one name are ORed.")
def _p_acl(st: Statement, px: ProxyDraft) -> None:
    if px.kind == "defaults" and not px.name:
        raise StatementError("'acl' not allowed in anonymous 'defaults' section.")
    if not st.args or st.args[0] == "":
        raise StatementError("'acl' expects an ACL name and a sample fetch.")
    acl = parse_acl(st.args, st.where, fetch_checker(st))
    px.append("acls", acl)
    px.own_acls.add(acl.name)


@pkw("redirect", "flb", "redirect location|prefix|scheme <to> [code <n>] [drop-query] [append-slash] [if|unless <cond>]",
     "HTTP redirect (same as 'http-request redirect').")
def _p_redirect(st: Statement, px: ProxyDraft) -> None:
    words, cond_words = split_condition(st.args)
    if len(words) < 2 or words[0] not in ("location", "prefix", "scheme"):
        raise StatementError("'redirect' expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query' or 'append-slash'.")
    cond = (_cond(st, px, cond_words, f"error detected in {px.label} while parsing redirect rule : error in condition: {{err}}.")
            if cond_words else None)
    px.append("http_request_rules", Rule(family="http-request", action="redirect", args=tuple(words), where=st.where, cond=cond))


@pkw("monitor-uri", "dfl", "monitor-uri <uri>", "Answer 200 to this URI without forwarding (for upstream health checks).")
def _p_monitor_uri(st: Statement, px: ProxyDraft) -> None:
    _need(st, 1, "an URI")
    px.values["monitor_uri"] = st.args[0]


@pkw("monitor", "fl", "monitor fail if|unless <cond>", "Make monitor-uri answer 503 when the condition matches.")
def _p_monitor(st: Statement, px: ProxyDraft) -> None:
    if st.arg(0) != "fail" or len(st.args) < 3:
        raise StatementError("'monitor' expects 'fail' and either 'if' or 'unless' followed by a condition.")
    px.values["monitor_fail"] = _cond(st, px, st.args[1:], "error detected while parsing a 'monitor fail' condition : {err}.")
    px.values["monitor_fail_where"] = st.where


# ----------------------------------------------------------------------------------------------
# checks

HTTP_CHECK_ACTIONS = ("comment", "connect", "disable-on-404", "expect", "send", "send-state", "set-var", "set-var-fmt",
                      "unset-var")
TCP_CHECK_ACTIONS = ("comment", "connect", "send", "send-binary", "send-lf", "send-binary-lf", "expect", "set-var",
                     "set-var-fmt", "unset-var")
HTTP_EXPECT = ("status", "rstatus", "string", "rstring", "hdr", "fhdr", "string-lf", "min-recv", "comment")
TCP_EXPECT = ("string", "rstring", "binary", "rbinary", "string-lf", "binary-lf", "min-recv", "comment")


@pkw("http-check", "dlb", "http-check send [meth <m>] [uri <u>] [ver <v>] [hdr <n> <v>]* [body <s>] | "
     "http-check expect [!] status|rstatus|string|rstring <pattern> | http-check connect|disable-on-404|comment",
     "HTTP health-check rules.")
def _p_http_check(st: Statement, px: ProxyDraft) -> None:
    action = _action_name(st.arg(0) or "")
    if action not in HTTP_CHECK_ACTIONS:
        raise StatementError(
            "'http-check' only supports 'comment', 'connect', 'disable-on-404', 'expect', 'send', 'send-state', "
            f"'set-var(*)', 'set-var-fmt(*)' and 'unset-var(*)'. but got '{st.arg(0) or ''}'"
        )
    args = st.args[1:]
    if action == "expect":
        _check_expect("http-check", args, HTTP_EXPECT)
    if action == "send":
        chk = px.values.get("httpchk") or HttpCheck()
        i = 0
        headers = list(chk.headers)
        while i < len(args):
            key = args[i]
            if key in ("meth", "uri", "ver", "body", "uri-lf", "body-lf") and i + 1 < len(args):
                field = {"meth": "method", "uri": "uri", "ver": "version", "body": "body", "uri-lf": "uri",
                         "body-lf": "body"}[key]
                chk = attrs.evolve(chk, **{field: args[i + 1]})
                i += 2
            elif key == "hdr" and i + 2 < len(args):
                headers.append((args[i + 1], args[i + 2]))
                i += 3
            elif key == "comment" and i + 1 < len(args):
                i += 2
            else:
                raise StatementError(f"'http-check send' : unknown or incomplete parameter '{key}'.")
        px.values["httpchk"] = attrs.evolve(chk, headers=tuple(headers))
    px.append("http_check_rules", CheckRule(family="http-check", action=action, args=tuple(args), where=st.where))


def _check_expect(family: str, args: list[str], kinds: tuple[str, ...]) -> None:
    words = list(args)
    if words and words[0] == "!":
        words = words[1:]
    while words and words[0] in ("min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success",
                                 "on-error", "status-code"):
        words = words[2:]
    if words and words[0] == "!":
        words = words[1:]
    kind = words[0] if words else ""
    if kind.startswith("!"):
        kind = kind[1:]
    if kind not in kinds:
        raise StatementError(
            f"'{family} expect' : 'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', "
            f"'[!]rstatus', [!]hdr, [!]fhdr or comment but got '{kind}' as argument.."
        )
    if len(words) < 2 and kind not in ("min-recv",):
        raise StatementError(f"'{family} expect {kind}' expects <pattern> as an argument.")


@pkw("tcp-check", "dlb", "tcp-check connect|send|send-binary|expect|comment ...", "TCP health-check rules.")
def _p_tcp_check(st: Statement, px: ProxyDraft) -> None:
    action = _action_name(st.arg(0) or "")
    if action not in TCP_CHECK_ACTIONS:
        raise StatementError(
            "'tcp-check' only supports 'comment', 'connect', 'send', 'send-binary', 'expect', 'set-var-fmt(*)', "
            f"'set-var(*)', 'unset-var(*)'. but got '{st.arg(0) or ''}'"
        )
    if action == "expect":
        _check_expect("tcp-check", st.args[1:], TCP_EXPECT)
    px.append("tcp_check_rules", CheckRule(family="tcp-check", action=action, args=tuple(st.args[1:]), where=st.where))


# ----------------------------------------------------------------------------------------------
# logs, errors, stats

_ERRORFILE_CODES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 425, 429, 500, 501, 502, 503, 504)


@pkw("errorfile", "dflb", "errorfile <code> <file>", "Replace HAProxy's response for this status with a raw file.")
def _p_errorfile(st: Statement, px: ProxyDraft) -> None:
    if len(st.args) != 2:
        raise StatementError("'errorfile' expects <status_code> and <file> as arguments.")
    code = st.args[0]
    if not code.isdigit() or int(code) not in _ERRORFILE_CODES:
        raise StatementError(f"status code '{code}' not handled.")
    path = resolve_path(st, st.args[1])
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        raise StatementError(f"error opening file '{st.args[1]}' : {e.strerror}.") from None
    px.append("errorfiles", (int(code), path))


@pkw("log", "dflb", "log global | log <target> [len <n>] [format <f>] <facility> [<level> [<minlevel>]] | no log",
     "Log targets of this proxy.")
def _p_log(st: Statement, px: ProxyDraft) -> None:
    target = parse_log(st)
    if target is None:  # no log
        px.values["logs"] = ()
        return
    px.append("logs", target)


@pkw("log-format", "dfl", "log-format <format>", "Custom log line format (common variables).")
def _p_log_format(st: Statement, px: ProxyDraft) -> None:
    _need(st, 1, "an argument")
    if len(st.args) > 1:
        raise StatementError("'log-format' expects only one argument, possibly quoted.")
    from haproxy_py.config import samples

    try:
        samples.check_log_format(st.args[0])
    except ConditionError as e:
        raise StatementError(f"failed to parse log-format : {e.message}.", form="Parsing") from None
    px.values["log_format"] = st.args[0]


@pkw("stats", "dflb", "stats enable|uri <prefix>|realm <r>|auth <user:pass>|refresh <t>|admin if <cond>|hide-version|"
     "show-legends|show-node|show-desc|scope <px>", "The HTML stats page and CSV of this proxy.")
def _p_stats(st: Statement, px: ProxyDraft) -> None:
    from haproxy_py.config.model import Stats

    sub = st.arg(0)
    stats: Stats = px.values.get("stats", Stats())
    if sub == "enable":
        stats = attrs.evolve(stats, enabled=True)
    elif sub == "uri":
        _need(st, 2, "an URI prefix")
        stats = attrs.evolve(stats, enabled=True, uri=st.args[1])
    elif sub == "realm":
        _need(st, 2, "a realm")
        stats = attrs.evolve(stats, enabled=True, realm=" ".join(st.args[1:]))
    elif sub == "auth":
        if len(st.args) < 2 or ":" not in st.args[1]:
            raise StatementError("'stats auth' expects <user>:<password> in argument.")
        stats = attrs.evolve(stats, enabled=True, auths=stats.auths + (st.args[1],))
    elif sub == "refresh":
        _need(st, 2, "a time argument")
        stats = attrs.evolve(stats, enabled=True, refresh=grammar.parse_time(st.args[1], "stats refresh", warn=st.plain_warn))
    elif sub == "admin":
        if px.kind == "defaults":
            raise StatementError("'stats admin' not allowed in 'defaults' section.", form="tight")
        cond = _cond(st, px, st.args[1:], "error detected while parsing a 'stats admin' rule : {err}.")
        stats = attrs.evolve(stats, admin=cond, admin_where=st.where)
    elif sub == "hide-version":
        stats = attrs.evolve(stats, enabled=True, hide_version=True)
    elif sub == "show-legends":
        stats = attrs.evolve(stats, enabled=True, show_legends=True)
    elif sub == "scope":
        _need(st, 2, "a proxy name")
        stats = attrs.evolve(stats, enabled=True, scopes=stats.scopes + (st.args[1],))
    elif sub in ("show-node", "show-desc", "show-modules", "bind-process", "http-request"):
        stats = attrs.evolve(stats, enabled=True)
    elif sub == "socket" or sub == "timeout" or sub == "maxconn":
        raise StatementError(f"'stats {sub}' is only allowed in 'global' section.")
    else:
        raise StatementError(
            f"unknown stats parameter '{sub or ''}', expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', "
            "'hide-version', 'show-node', 'show-desc' or 'show-legends'."
        )
    px.values["stats"] = stats


_many(PROXY, "log-tag max-keep-alive-queue load-server-state-from-file server-state-file-name email-alert "
      "error-log-format http-reuse persist", "no-effect",
      "Accepted for compatibility; haproxy-py's behaviour does not depend on it.")
_many(PROXY, "clitcpka-cnt clitcpka-idle clitcpka-intvl", "no-effect", "Client-side TCP keepalive tuning.", caps="dfl")
_many(PROXY, "srvtcpka-cnt srvtcpka-idle srvtcpka-intvl", "no-effect", "Server-side TCP keepalive tuning.", caps="dlb")
_many(PROXY, "max-session-srv-conns", "no-effect", "Idle server connections kept per client session.", caps="dfl")
_many(PROXY, "dynamic-cookie-key", "unsupported", "Cookie persistence is not implemented.", caps="dlb")
_many(PROXY, "usesrc", "unsupported", "Transparent proxying (with 'source') is not implemented.", caps="dlb")
for _n, _summary, _caps in (
    ("cookie", "Cookie-based persistence is not implemented.", "dlb"),
    ("stick-table", "Stick tables are not implemented.", "dflb"),
    ("stick", "Stickiness rules (stick tables) are not implemented.", "dlb"),
    ("capture", "Header and cookie captures are not implemented.", "fl"),
    ("declare", "Capture slots ('declare capture') are not implemented.", "fl"),
    ("compression", "HTTP compression is not implemented.", "dflb"),
    ("filter", "Filters (compression, SPOE, cache, trace, bandwidth limits) are not implemented.", "flb"),
    ("dispatch", "The 'dispatch' server-less backend address is not implemented.", "lb"),
    ("source", "Choosing the source address of server connections is not implemented.", "dlb"),
    ("rate-limit", "Session rate limiting is not implemented.", "dfl"),
    ("unique-id-format", "Unique request ids are not implemented.", "dfl"),
    ("unique-id-header", "Unique request ids are not implemented.", "dfl"),
    ("errorloc", "Redirecting errors to URLs is not implemented; use 'errorfile'.", "dflb"),
    ("errorloc302", "Redirecting errors to URLs is not implemented; use 'errorfile'.", "dflb"),
    ("errorloc303", "Redirecting errors to URLs is not implemented; use 'errorfile'.", "dflb"),
    ("errorfiles", "'http-errors' sections are not implemented; use 'errorfile'.", "dflb"),
    ("http-error", "'http-error' rules are not implemented; use 'errorfile'.", "dflb"),
    ("force-persist", "Persistence (cookies, stick tables) is not implemented.", "dflb"),
    ("ignore-persist", "Persistence (cookies, stick tables) is not implemented.", "dflb"),
    ("use-server", "Forcing a server with 'use-server' rules is not implemented.", "lb"),
    ("retry-on", "Layer 7 retries are not implemented (connection failures are retried).", "dlb"),
    ("hash-balance-factor", "Bounded-load consistent hashing is not implemented.", "dlb"),
    ("use-fcgi-app", "FastCGI applications are not implemented.", "lb"),
    ("log-format-sd", "RFC5424 structured-data log fields are not implemented.", "dfl"),
    ("http-send-name-header", "Sending the server name in a request header is not implemented.", "dlb"),
    ("external-check", "External command health checks are not implemented.", "dlb"),
    ("transparent", "Transparent proxying is not implemented.", "dlb"),
):
    PROXY[_n] = Keyword(_n, f"{_n} ...", _summary, status="unsupported", caps=_caps)

