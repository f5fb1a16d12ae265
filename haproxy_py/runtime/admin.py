"""The stats socket runtime API, and the two HTTP answers the HTTP session delegates here.

* `serve_stats_sockets(...)`: one trio task per `stats socket` line (unix path, `ip:port`, `fd@N`,
  `abns@name`), HAProxy's CLI protocol: one line per connection (commands chained with `;`), each
  answer ending with an empty line, `prompt` for an interactive session, levels user < operator <
  admin enforced per command, `_getsocks` for `expose-fd listeners` (listener handover, `-x`).
* `prometheus_response(rt, method, uri, headers)`: `http-request use-service prometheus-exporter`.
* `stats_response(rt, proxy, method, uri, headers, body)`: `stats enable` / `stats uri` requests.

Both HTTP functions return `(status, headers, body)` with `headers` a list of (lower-case name,
value) and `body` bytes (empty for HEAD); the caller frames them (chunked or content-length) and
counts the request as intercepted. Their signatures are stable.

`CliSession.execute(line)` is the whole command interpreter, synchronous and usable without
sockets (tests call it directly).
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import socket
import stat as stat_mod
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import attrs
import trio

from haproxy_py import metrics, version
from haproxy_py.core import stats, stats_typed
from haproxy_py.core.stats import Snapshot, snapshot

if TYPE_CHECKING:
    from haproxy_py.config.model import Proxy, StatsSocket
    from haproxy_py.core.server import ServerState
    from haproxy_py.runtime.connect import BackendRuntime
    from haproxy_py.runtime.supervisor import Runtime

LEVELS = {"user": 1, "operator": 2, "admin": 3}

Response = tuple[int, list[tuple[str, str]], bytes]


# ---------------------------------------------------------------------------------------------------
# the command table: (words, usage line as HAProxy 2.6 prints it, minimum level)
# ---------------------------------------------------------------------------------------------------

@attrs.frozen
class Command:
    words: tuple[str, ...]
    usage: str
    level: int
    handler: str  # CliSession method name


def _usage(left: str, right: str) -> str:
    return f"  {left.ljust(40)}: {right}" if len(left) < 40 else f"  {left}: {right}"


COMMANDS: tuple[Command, ...] = (
    Command(("clear", "counters"), _usage("clear counters [all]", "clear max statistics counters (or all counters)"),
            2, "cmd_clear_counters"),
    Command(("disable", "health"), _usage("disable health", "disable health checks"), 3, "cmd_disable_health"),
    Command(("disable", "server"), _usage("disable server (DEPRECATED)",
                                          "disable a server for maintenance (use 'set server' instead)"),
            3, "cmd_disable_server"),
    Command(("enable", "health"), _usage("enable health", "enable health checks"), 3, "cmd_enable_health"),
    Command(("enable", "server"), _usage("enable server  (DEPRECATED)",
                                         "enable a disabled server (use 'set server' instead)"),
            3, "cmd_enable_server"),
    Command(("get", "weight"), _usage("get weight <bk>/<srv>", "report a server's current weight"), 1,
            "cmd_get_weight"),
    Command(("operator",), _usage("operator", "lower the level of the current CLI session to operator"), 1,
            "cmd_operator"),
    Command(("set", "server"), _usage("set server <bk>/<srv> [opts]",
                                      "change a server's state, weight, address or ssl"), 3, "cmd_set_server"),
    Command(("set", "weight"), _usage("set weight <bk>/<srv>  (DEPRECATED)",
                                      "change a server's weight (use 'set server' instead)"), 3, "cmd_set_weight"),
    Command(("show", "backend"), _usage("show backend", "list backends in the current running config"), 1,
            "cmd_show_backend"),
    Command(("show", "cli", "level"), _usage("show cli level", "display the level of the current CLI session"), 1,
            "cmd_show_cli_level"),
    Command(("show", "info"), _usage("show info [desc|json|typed|float]*",
                                     "report information about the running process"), 1, "cmd_show_info"),
    Command(("show", "servers", "state"), _usage("show servers state [<backend>]",
                                                 "dump volatile server information (all or for a single backend)"),
            1, "cmd_show_servers_state"),
    Command(("show", "stat"), _usage("show stat [desc|json|no-maint|typed|up]*",
                                     "report counters for each proxy and server"), 1, "cmd_show_stat"),
    Command(("show", "version"), _usage("show version", "show version of the current process"), 1,
            "cmd_show_version"),
    Command(("shutdown", "sessions", "server"), _usage("shutdown sessions server <bk>/<srv>",
                                                       "kill sessions on a server"), 3, "cmd_shutdown_sessions"),
    Command(("user",), _usage("user", "lower the level of the current CLI session to user"), 1, "cmd_user"),
)
_TRAILER = (
    _usage("help [<command>]", "list matching or all commands") + "\n"
    + _usage("prompt", "toggle interactive mode with prompt") + "\n"
    + _usage("quit", "disconnect") + "\n"
)
_MAX_MATCHES = 5


def _fingerprint(words: list[str] | tuple[str, ...]) -> list[int]:
    """HAProxy's update_word_fingerprint over several words: counts of letter-class bigrams."""
    fp = [0] * 1024
    for word in words:
        frm = 28
        for ch in word:
            c = ch.lower()
            if "a" <= c <= "z":
                to = ord(c) - ord("a") + 1
            elif "0" <= c <= "9":
                to = 27
            else:
                to = 28
            fp[32 * frm + to] += 1
            frm = to
        fp[32 * frm + 28] += 1
    return fp


def usage_message(args: list[str], *, is_help: bool, level: int,
                  commands: tuple[Command, ...] | None = None) -> str:
    """HAProxy 2.6's cli_gen_usage_msg: a heading, then the usage lines of the commands that
    match the first words exactly, or (for a mistyped word) the best fuzzy matches by word
    fingerprint distance (at most 5, within 2.5x of the best), in table order; then the trailer."""
    table = COMMANDS if commands is None else commands
    length = 0
    for kw in table:
        for idx, w in enumerate(kw.words):
            if idx >= len(args) or not args[idx] or w != args[idx]:
                break
            length = max(length, idx + 1)
    if is_help:
        out = "The following commands are valid at this level:\n"
    elif not length and (not args or not args[0]):
        out = "Unknown command. Please enter one of the following commands only:\n"
    else:
        out = "Unknown command, but maybe one of the following ones is a better match:\n"
    matches: list[tuple[int, int]] = []  # (distance, table index)
    if length < len(args) and args[length]:
        rest = [a for a in args[length:5] if a]
        wsig = _fingerprint(rest)
        for i, kw in enumerate(table):
            if kw.words[:length] != tuple(args[:length]) or len(kw.words) <= length:
                continue
            kwords = kw.words[length:5]
            totlen = sum(len(a) for a in rest) + sum(len(w) for w in kwords)
            dist = sum(abs(a - b) for a, b in zip(wsig, _fingerprint(kwords)))
            if dist < 5 * totlen // 2:
                matches.append((dist, i))
        matches.sort()
        matches = matches[:_MAX_MATCHES]
    if matches:
        best = matches[0][0]
        chosen = {i for dist, i in matches if dist <= 5 * best // 2}
        out += "".join(table[i].usage + "\n" for i in sorted(chosen))
    else:
        out += "".join(kw.usage + "\n" for kw in table if kw.words[:length] == tuple(args[:length]))
    return out + _TRAILER


def _output_format(words: list[str]) -> str | None:
    """`typed` or `json`, whichever of the two comes last (HAProxy keeps the last one), or None."""
    return next((w for w in reversed(words) if w in ("typed", "json")), None)


def _atoi(word: str) -> int:
    """C's atoi(): the leading decimal number of `word`, 0 when there is none."""
    text = word.lstrip()
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in "+-":
        text = text[1:]
    digits = len(text) - len(text.lstrip("0123456789"))
    return sign * int(text[:digits]) if digits else 0


def split_commands(line: str) -> list[list[str]]:
    """One CLI line -> commands (split on unescaped `;`) -> words (split on spaces, `\\` escapes)."""
    commands: list[list[str]] = []
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            in_word = True
            i += 2
            continue
        if c in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        elif c == ";":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            commands.append(words)
            words = []
        else:
            cur.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    commands.append(words)
    return commands


class CliError(Exception):
    """A command failed: the message is HAProxy's (it usually ends with a newline)."""


# ---------------------------------------------------------------------------------------------------
# admin actions shared by the CLI and the stats page
# ---------------------------------------------------------------------------------------------------

def notify(rt: Runtime, message: str, level: str = "WARNING", proxy: Proxy | None = None,
           syslog_level: int | None = None) -> None:
    """An operator-facing state message: on stderr as HAProxy prints it (unless -q) and, when
    `proxy` is given, to its log targets."""
    from haproxy_py import log

    sink = log.current(rt.config)
    (sink.alert if level == "ALERT" else sink.warning)(message)
    if proxy is not None:
        sink.log(proxy, log.ALERT if syslog_level is None else syslog_level, message)


def _servers_left(be: BackendRuntime) -> tuple[int, int]:
    act = sum(1 for s in be.servers if s.usable and not s.backup)
    bck = sum(1 for s in be.servers if s.usable and s.backup)
    return act, bck


def _label(s: ServerState) -> str:
    return "Backup Server" if s.backup else "Server"


def _mark_change(srv: ServerState, was_down: bool, now_down: bool) -> None:
    """Keep `last_change` / `down_time` / `down_transitions` as checks do, for admin changes."""
    if was_down == now_down:
        return
    now = time.time()
    last = getattr(srv, "last_change", 0.0) or stats.START_TIME
    if was_down:
        srv.down_time = getattr(srv, "down_time", 0.0) + max(0.0, now - last)
    else:
        srv.counters.down_transitions = getattr(srv.counters, "down_transitions", 0) + 1
    srv.last_change = now


def set_admin_state(rt: Runtime, be: BackendRuntime, srv: ServerState, state: str) -> None:
    """`ready` | `drain` | `maint`, as `set server ... state` does; logs HAProxy's messages."""
    from haproxy_py import log

    name = f"{be.proxy.name}/{srv.name}"
    was_maint, was_drain = srv.maint, srv.drain
    was_down = was_maint or not srv.up
    if state == "maint":
        if was_maint:
            return
        srv.maint = True
        _mark_change(srv, was_down, True)
        be.server_changed()
        act, bck = _servers_left(be)
        notify(rt, f"{_label(srv)} {name} is going DOWN for maintenance. {act} active and {bck} backup servers "
                   f"left. {srv.served} sessions active, 0 requeued, 0 remaining in queue.", proxy=be.proxy)
        if act == 0 and bck == 0 and not was_down:
            kind = "proxy" if be.proxy.kind == "listen" else "backend"
            notify(rt, f"{kind} '{be.proxy.name}' has no server available!", "ALERT")
            log.current(rt.config).log(be.proxy, log.EMERG, f"{kind} {be.proxy.name} has no server available!")
        return
    if was_maint:
        leave = getattr(srv, "leave_maintenance", None)
        if leave is not None:
            leave()
        else:
            srv.maint = False
        _mark_change(srv, was_down, srv.maint or not srv.up)
    if state == "drain":
        srv.drain = True
        be.server_changed()
        if was_maint:
            notify(rt, f"{_label(srv)} {name} is UP/READY (leaving forced maintenance).", proxy=be.proxy,
                   syslog_level=log.NOTICE)
        if not was_drain:
            act, bck = _servers_left(be)
            notify(rt, f"{_label(srv)} {name} enters drain state. {act} active and {bck} backup servers online. "
                       f"0 sessions requeued, {be.queue.length} total in queue.", proxy=be.proxy,
                   syslog_level=log.NOTICE)
    else:  # ready
        srv.drain = False
        be.server_changed()
        if was_maint:
            notify(rt, f"{_label(srv)} {name} is {'UP' if srv.up else 'DOWN'}/READY (leaving forced maintenance).",
                   proxy=be.proxy, syslog_level=log.NOTICE)
        elif was_drain:
            notify(rt, f"{_label(srv)} {name} is UP (leaving forced drain).", proxy=be.proxy,
                   syslog_level=log.NOTICE)


def static_algorithm(be: BackendRuntime) -> bool:
    """HAProxy's !BE_LB_PROP_DYN: static-rr and map-based hashing accept only 0% or 100%."""
    b = be.proxy.balance
    if b.algorithm == "static-rr":
        return True
    hashing = b.algorithm not in ("roundrobin", "leastconn", "first", "random")
    return hashing and b.hash_method != "consistent"


def parse_weight(be: BackendRuntime, srv: ServerState, text: str) -> int:
    """HAProxy's server_parse_weight_change_request; raises CliError with its exact messages."""
    i = 0
    sign = ""
    if i < len(text) and text[i] in "+-":
        sign = text[i]
        i += 1
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    if j == i:
        raise CliError("Empty weight string empty or preceded by garbage")
    w = int(sign + text[i:j])
    rest = text[j:]
    if rest == "%":
        if w < 0:
            raise CliError("Relative weight must be positive.\n")
        w = min(w, 25600)
        w = min(srv.initial_weight * w // 100, 256)
    elif w < 0 or w > 256:
        raise CliError("Absolute weight can only be between 0 and 256 inclusive.\n")
    elif rest:
        raise CliError("Trailing garbage in weight string")
    if w and w != srv.initial_weight and static_algorithm(be):
        raise CliError("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n")
    return w


def set_weight(be: BackendRuntime, srv: ServerState, weight: int) -> None:
    srv.weight = weight
    be.server_changed()


def set_health_checks(rt: Runtime, be: BackendRuntime, srv: ServerState, enabled: bool) -> None:
    """`enable/disable health`: while disabled the server is unchecked and counts as UP."""
    stats.set_health_disabled(srv, not enabled)
    if not enabled and not srv.up:
        srv.up = True
    be.server_changed()


def shutdown_sessions(be: BackendRuntime, srv: ServerState) -> None:
    """Kill the server's sessions, if the data plane registered a way to (`BackendRuntime.shutdown_sessions`)."""
    killer: Callable[[ServerState], object] | None = getattr(be, "shutdown_sessions", None)
    if killer is not None:
        killer(srv)
        return
    killer = getattr(srv, "shutdown_sessions", None)
    if killer is not None:
        killer()


# ---------------------------------------------------------------------------------------------------
# one CLI session
# ---------------------------------------------------------------------------------------------------

class CliSession:
    """The state of one stats socket connection: its level and whether it is interactive.

    `execute(line)` runs every `;`-separated command of one input line and returns the text to
    send (each command's answer followed by an empty line; plus `> ` in prompt mode).
    `self.closing` is set by `quit` or when a non-interactive connection is done.
    """

    def __init__(self, rt: Runtime, level: str = "admin", *, maxconn: int | None = None,
                 stopping: Callable[[], bool] | None = None) -> None:
        self.rt = rt
        self.level = LEVELS.get(level, 2)
        self.interactive = False
        self.closing = False
        self.maxconn = maxconn
        self.stopping = stopping or (lambda: False)

    # -- driver ------------------------------------------------------------------------------
    def execute(self, line: str) -> str:
        out = []
        for args in split_commands(line.rstrip("\r\n")):
            if self.closing:
                break
            out.append(self.run(args))
        if self.interactive and not self.closing:
            out.append("> ")
        return "".join(out)

    def run(self, args: list[str]) -> str:
        """One command -> its answer, with the terminating empty line."""
        if args and args[0] == "quit":
            self.closing = True
            return ""
        if args and args[0] == "prompt":
            self.interactive = not self.interactive
            return "\n"
        if args and args[0] == "help":
            return usage_message(args[1:], is_help=True, level=self.level) + "\n"
        cmd = self._lookup(args)
        if cmd is None:
            return usage_message(args, is_help=False, level=self.level) + "\n"
        if self.level < cmd.level:
            return "Permission denied\n\n"
        try:
            body = getattr(self, cmd.handler)(args)
        except CliError as e:
            body = str(e)
        return body + "\n"

    @staticmethod
    def _lookup(args: list[str]) -> Command | None:
        best = None
        for c in COMMANDS:
            if tuple(args[: len(c.words)]) == c.words and (best is None or len(c.words) > len(best.words)):
                best = c
        return best

    def snapshot(self) -> Snapshot:
        return snapshot(self.rt, stopping=self.stopping())

    # -- helpers -----------------------------------------------------------------------------
    def _server(self, ref: str | None) -> tuple[BackendRuntime, ServerState]:
        if not ref or "/" not in ref:
            raise CliError("Require 'backend/server'.\n")
        bname, sname = ref.split("/", 1)
        be = self.rt.backends.get(bname)
        if be is None and bname.startswith("#"):
            be = next((b for b in self.rt.backends.values() if f"#{b.proxy.id}" == bname), None)
        if be is None:
            raise CliError("No such backend.\n")
        for s in be.servers:
            if s.name == sname or (sname.startswith("#") and f"#{s.puid}" == sname):
                return be, s
        raise CliError("No such server.\n")

    # -- commands ----------------------------------------------------------------------------
    def cmd_show_info(self, args: list[str]) -> str:
        words = args[2:]
        fmt = _output_format(words)
        if fmt == "typed":
            return stats_typed.render_info_typed(self.snapshot(), desc="desc" in words, floats="float" in words)
        info = self.snapshot().info
        if fmt == "json":
            items = [{"field": {"pos": i, "name": k}, "processNum": 1, "tags": {},
                      "value": {"type": "u32" if isinstance(v, int) else "str", "value": v}}
                     for i, (k, v) in enumerate(info.items())]
            return json.dumps(items, indent=2) + "\n"
        return "".join(f"{k}: {v}\n" for k, v in info.items())

    def cmd_show_stat(self, args: list[str]) -> str:
        """`show stat [{<iid>|<proxy>} <type> <sid>] [typed|json] [desc] [up] [no-maint]`, parsed as
        HAProxy does: when three words follow `show stat`, the first three are the object filter."""
        rest = args[2:]
        iid, types, sid, proxy = -1, -1, -1, None
        if len(rest) >= 3 and all(rest[:3]):
            if self.rt.config.backend(rest[0]) is not None or rest[0] in self.rt.frontends:
                proxy = rest[0]
            else:
                iid = _atoi(rest[0])
                if iid == 0:
                    raise CliError("No such proxy.\n")
            types, sid = _atoi(rest[1]), _atoi(rest[2])
            rest = rest[3:]
        fmt = _output_format(rest)
        snap = self.snapshot()
        filters: dict[str, Any] = dict(iid=iid, types=types, sid=sid, proxy=proxy, hide_down="up" in rest,
                                       no_maint="no-maint" in rest)
        if fmt == "typed":
            return stats_typed.render_stat_typed(snap, desc="desc" in rest, **filters)
        if fmt == "json":
            return json.dumps(stats.json_rows(snap, **filters)) + "\n"
        text = stats.render_csv(snap, **filters)
        return text[:-1]  # render_csv ends with the blank line the CLI adds itself

    def cmd_show_servers_state(self, args: list[str]) -> str:
        name = args[3] if len(args) > 3 and args[3] else None
        backends = list(self.rt.backends.values())
        if name is not None:
            backends = [b for b in backends if b.proxy.name == name]
            if not backends:
                raise CliError("Can't find backend.\n")
        out = ["1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
               "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
               "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
               "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"]
        snap = self.snapshot()
        for be in sorted(backends, key=lambda b: b.proxy.id):
            px = snap.proxy(be.proxy.name)
            rows = {r["svname"]: r for r in px.servers} if px else {}
            for s in be.servers:
                out.append(self._server_state_line(be, s, rows.get(s.name)) + "\n")
        return "".join(out)

    def _server_state_line(self, be: BackendRuntime, s: ServerState, row: dict[str, Any] | None) -> str:
        cfg = be.configs.get(id(s))
        h = stats.server_health(s, cfg)
        addr = cfg.address if cfg is not None else None
        if s.maint:
            op = 0
        elif not s.up:
            op = 0
        elif h.stopping:
            op = 3
        else:
            op = 2
        admin = 0
        if s.maint:
            admin |= 0x05 if (cfg is not None and cfg.disabled) else 0x01
        if s.drain:
            admin |= 0x08
        chk_state = 0
        if h.configured:
            chk_state |= 0x02
            if h.enabled:
                chk_state |= 0x04
                if s.maint:
                    chk_state |= 0x08
                if h.running:
                    chk_state |= 0x01
        status_id = stats.CHECK_STATUSES.get(h.status, (1, ""))[0] if h.configured else 1
        result = stats._check_result(h) if h.configured else 0
        health = h.health if h.configured else h.rise
        if s.maint and h.configured:
            health = 0 if not s.up else health
        lastchg = row["lastchg"] if row else 0
        port = addr.port if addr is not None and addr.port is not None else 0
        check_port = cfg.check_port if cfg is not None and cfg.check_port else 0
        return (f"{be.proxy.id} {be.proxy.name} {s.puid} {s.name} {addr.host if addr else '-'} {op} {admin} "
                f"{s.weight} {s.initial_weight} {lastchg} {status_id} {result} {health} {chk_state} 0 0 0 - "
                f"{port} - 0 {check_port} {cfg.check_addr if cfg is not None and cfg.check_addr else '-'} - 0")

    def cmd_show_backend(self, args: list[str]) -> str:
        return "# name\n" + "".join(f"{b.proxy.name}\n" for b in self.rt.backends.values())

    def cmd_show_cli_level(self, args: list[str]) -> str:
        return {1: "user", 2: "operator", 3: "admin"}[self.level] + "\n"

    def cmd_show_version(self, args: list[str]) -> str:
        return version.FULL_VERSION + "\n"

    def cmd_operator(self, args: list[str]) -> str:
        self.level = min(self.level, 2)
        return ""

    def cmd_user(self, args: list[str]) -> str:
        self.level = 1
        return ""

    def cmd_get_weight(self, args: list[str]) -> str:
        _be, s = self._server(args[2] if len(args) > 2 else None)
        return f"{s.weight} (initial {s.initial_weight})\n"

    def cmd_set_weight(self, args: list[str]) -> str:
        be, s = self._server(args[2] if len(args) > 2 else None)
        if len(args) < 4 or not args[3]:
            raise CliError("Require <weight> or <weight%>.\n")
        set_weight(be, s, parse_weight(be, s, args[3]))
        return ""

    def cmd_disable_server(self, args: list[str]) -> str:
        be, s = self._server(args[2] if len(args) > 2 else None)
        set_admin_state(self.rt, be, s, "maint")
        return ""

    def cmd_enable_server(self, args: list[str]) -> str:
        be, s = self._server(args[2] if len(args) > 2 else None)
        set_admin_state(self.rt, be, s, "ready")
        return ""

    def cmd_disable_health(self, args: list[str]) -> str:
        be, s = self._server(args[2] if len(args) > 2 else None)
        set_health_checks(self.rt, be, s, False)
        return ""

    def cmd_enable_health(self, args: list[str]) -> str:
        be, s = self._server(args[2] if len(args) > 2 else None)
        set_health_checks(self.rt, be, s, True)
        return ""

    def cmd_shutdown_sessions(self, args: list[str]) -> str:
        be, s = self._server(args[3] if len(args) > 3 else None)
        shutdown_sessions(be, s)
        return ""

    def cmd_clear_counters(self, args: list[str]) -> str:
        everything = len(args) > 2 and args[2] == "all"
        if everything and self.level < 3:
            raise CliError("Permission denied\n")
        objs: list[Any] = [fe.counters for fe in self.rt.frontends.values()]
        for be in self.rt.backends.values():
            objs.append(be.counters)
            objs.extend(s.counters for s in be.servers)
        for c in objs:
            for f in attrs.fields(type(c)):
                v = getattr(c, f.name)
                if everything and isinstance(v, int) and f.name not in ("current",):
                    setattr(c, f.name, 0)
                elif f.name in ("max_current", "sessions_max", "queue_max"):
                    setattr(c, f.name, 0)
                elif everything and isinstance(v, dict):
                    for k in v:
                        v[k] = 0
            for r in ("session_rate", "request_rate", "connection_rate"):
                er = getattr(c, r, None)
                if isinstance(er, stats.EventRate):
                    er.max_rate = 0
        return ""

    def cmd_set_server(self, args: list[str]) -> str:
        usage = ("usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | "
                 "check-addr | check-port | fqdn | health | ssl | state | weight\n")
        be, s = self._server(args[2] if len(args) > 2 else None)
        what = args[3] if len(args) > 3 else ""
        if what == "state":
            word = args[4] if len(args) > 4 else ""
            if word not in ("ready", "drain", "maint"):
                raise CliError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
            set_admin_state(self.rt, be, s, word)
            return ""
        if what == "weight":
            if len(args) < 5 or not args[4]:
                raise CliError("Require <weight> or <weight%>.\n")
            set_weight(be, s, parse_weight(be, s, args[4]))
            return ""
        if what == "health":
            word = args[4] if len(args) > 4 else ""
            if word not in ("up", "stopping", "down"):
                raise CliError("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n")
            cfg = be.configs.get(id(s))
            if cfg is None or not cfg.check:
                raise CliError("Health check is not enabled.\n")
            s.up = word != "down"
            be.server_changed()
            return ""
        raise CliError(usage)


# ---------------------------------------------------------------------------------------------------
# the sockets
# ---------------------------------------------------------------------------------------------------

@attrs.define(eq=False)
class BoundCli:
    spec: StatsSocket
    sock: socket.socket
    path: str | None = None  # unix socket path we created (removed at exit if still ours)
    inode: int | None = None
    tmp: str | None = None  # bound under this temporary name, not yet renamed to `path`

    def publish(self) -> None:
        """Rename the temporary unix socket over its configured path (atomic for clients)."""
        if self.tmp is None or self.path is None:
            return
        os.rename(self.tmp, self.path)
        self.tmp = None
        self.inode = os.stat(self.path).st_ino


def bind_stats_socket(spec: StatsSocket, publish: bool = True) -> BoundCli:
    """Create the listening socket of one `stats socket` line (raises OSError). A unix socket is
    bound under a temporary name and, with `publish`, renamed over its path at once."""
    addr = spec.address
    if addr.startswith("fd@"):
        sock = socket.socket(fileno=os.dup(int(addr[3:])))
        sock.setblocking(False)
        return BoundCli(spec, sock)
    if addr.startswith("abns@"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind("\0" + addr[5:])
        sock.listen(16)
        sock.setblocking(False)
        return BoundCli(spec, sock)
    for prefix, fam in (("ipv4@", socket.AF_INET), ("ipv6@", socket.AF_INET6), ("tcp@", None), ("tcp4@", socket.AF_INET),
                        ("tcp6@", socket.AF_INET6)):
        if addr.startswith(prefix):
            return _bind_inet(spec, addr[len(prefix):], fam)
    if addr.startswith("unix@"):
        addr = addr[5:]
    elif not addr.startswith("/") and ":" in addr:
        return _bind_inet(spec, addr, None)
    # unix path: bind a temporary name, then rename over the old socket (what HAProxy does, so a
    # reloading process never leaves the path missing)
    tmp = f"{addr}.{os.getpid()}.tmp"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        sock.bind(tmp)
        if spec.mode is not None:
            os.chmod(tmp, spec.mode)
        sock.listen(16)
    except OSError:
        sock.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sock.setblocking(False)
    bound = BoundCli(spec, sock, path=addr, tmp=tmp)
    if publish:
        try:
            bound.publish()
        except OSError:
            sock.close()
            _unlink_quietly(tmp)
            raise
    return bound


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _bind_inet(spec: StatsSocket, text: str, fam: int | None) -> BoundCli:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if fam is None:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), int(port)))
        sock.listen(16)
    except (OSError, ValueError):
        sock.close()
        raise
    sock.setblocking(False)
    return BoundCli(spec, sock)


def _remove_if_ours(b: BoundCli) -> None:
    if b.tmp is not None:
        _unlink_quietly(b.tmp)
        return
    if b.path is None:
        return
    try:
        st = os.stat(b.path)
        if stat_mod.S_ISSOCK(st.st_mode) and st.st_ino == b.inode:
            os.unlink(b.path)
    except OSError:
        pass


class StatsSocketError(OSError):
    """A `stats socket` could not be bound; the message is HAProxy's."""


_prebound: list[BoundCli] = []


def _bind_error(spec: StatsSocket, e: Exception) -> StatsSocketError:
    reason = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
    kind = "UNIX" if not (":" in spec.address and not spec.address.startswith(("/", "unix@", "abns@"))) else "TCP"
    return StatsSocketError(f"Binding [{spec.where.file}:{spec.where.line}] for frontend GLOBAL: cannot bind "
                            f"{kind} socket ({reason}) [{spec.address}]")


def prebind_stats_sockets(config: Any) -> None:
    """Bind every `stats socket` now, before the frontends listen and before privileges are
    dropped (as HAProxy does); `serve_stats_sockets` then serves these sockets. Unix sockets stay
    under a temporary name until `publish_stats_sockets()`, so a start that fails later leaves a
    running predecessor's socket in place. Raises StatsSocketError (after closing what was bound)
    when one cannot be created."""
    bound = []
    for spec in config.global_.stats_sockets:
        try:
            bound.append(bind_stats_socket(spec, publish=False))
        except (OSError, ValueError) as e:
            for b in bound:
                b.sock.close()
                _remove_if_ours(b)
            raise _bind_error(spec, e) from None
    _prebound.extend(bound)


def publish_stats_sockets() -> None:
    """Give the prebound unix sockets their configured paths (once every listener is bound)."""
    for b in _prebound:
        b.publish()


def discard_prebound_stats_sockets() -> None:
    """A start that failed after `prebind_stats_sockets`: close them and remove temporary names."""
    while _prebound:
        b = _prebound.pop()
        b.sock.close()
        _remove_if_ours(b)


def _take_prebound(spec: StatsSocket) -> BoundCli | None:
    for i, b in enumerate(_prebound):
        if b.spec is spec:
            b = _prebound.pop(i)
            b.publish()
            return b
    return None


async def serve_stats_sockets(rt: Runtime, listeners: list[Any] | None = None,
                              stopping: Callable[[], bool] | None = None, *,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve every `stats socket` of the configuration until cancelled.

    Sockets bound by `prebind_stats_sockets` are used; the others are bound here (one that cannot
    be is reported and skipped). `listeners` (the frontend Listener objects) are handed over with
    `_getsocks` on sockets with `expose-fd listeners`; `stopping()` tells whether a soft stop began.
    """
    g = rt.config.global_
    bound: list[BoundCli] = []
    for spec in g.stats_sockets:
        b = _take_prebound(spec)
        if b is None:
            try:
                b = bind_stats_socket(spec)
            except (OSError, ValueError) as e:
                notify(rt, str(_bind_error(spec, e)), "ALERT")
                continue
        bound.append(b)
    limit = trio.CapacityLimiter(max(1, g.stats_maxconn))
    try:
        async with trio.open_nursery() as nursery:
            for b in bound:
                nursery.start_soon(_accept_cli, rt, b, listeners or [], limit, stopping, nursery)
            task_status.started()
    finally:
        for b in bound:
            b.sock.close()
            _remove_if_ours(b)


async def _accept_cli(rt: Runtime, b: BoundCli, listeners: list[Any], limit: trio.CapacityLimiter,
                      stopping: Callable[[], bool] | None, nursery: trio.Nursery) -> None:
    while True:
        await trio.lowlevel.wait_readable(b.sock)
        for _ in range(16):
            try:
                conn, _peer = b.sock.accept()
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await trio.sleep(0.1)
                break
            conn.setblocking(False)
            nursery.start_soon(_cli_connection, rt, b.spec, conn, listeners, limit, stopping)


async def _cli_connection(rt: Runtime, spec: StatsSocket, conn: socket.socket, listeners: list[Any],
                          limit: trio.CapacityLimiter, stopping: Callable[[], bool] | None) -> None:
    timeout = (rt.config.global_.stats_timeout or 10000) / 1000.0
    tsock = trio.socket.from_stdlib_socket(conn)
    try:
        async with limit:
            session = CliSession(rt, spec.level, stopping=stopping)
            buf = b""
            while not session.closing:
                line = None
                with trio.move_on_after(timeout):
                    while b"\n" not in buf:
                        data = await tsock.recv(65536)
                        if not data:
                            break
                        buf += data
                        if len(buf) > 1 << 20:
                            return
                    if b"\n" in buf:
                        raw, buf = buf.split(b"\n", 1)
                        line = raw.decode("utf-8", "replace")
                    elif buf:
                        line, buf = buf.decode("utf-8", "replace"), b""
                if line is None:
                    return
                if line.strip() == "_getsocks":
                    if spec.expose_fd_listeners and session.level >= LEVELS["admin"] and listeners:
                        await _give_listeners(conn, listeners)
                    return
                out = session.execute(line)
                if out:
                    await _send_all(tsock, out.encode())
                if not session.interactive:
                    return
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        tsock.close()


async def _send_all(tsock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = await tsock.send(view)
        view = view[n:]


async def _give_listeners(conn: socket.socket, listeners: list[Any]) -> None:
    from haproxy_py.process.reload import send_listeners

    pairs = [(lst.key, lst.sock) for lst in listeners]
    dup = socket.socket(fileno=os.dup(conn.fileno()))
    dup.setblocking(True)
    dup.settimeout(2.0)
    try:
        await trio.to_thread.run_sync(send_listeners, dup, pairs)
    finally:
        dup.close()


# ---------------------------------------------------------------------------------------------------
# HTTP: prometheus-exporter service and the stats page
# ---------------------------------------------------------------------------------------------------

_BAD_REQUEST = (b"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n")
_UNAUTHORIZED = (b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this "
                 b"content.\n</body></html>\n")


def prometheus_response(rt: Runtime, method: str, uri: str, headers: list[tuple[str, str]] | Any = ()
                        ) -> Response:
    """The exporter's answer to one request: 200 with the exposition (no body for HEAD), or 400
    for a bad `scope=`. Query options: `scope=global|frontend|backend|server|listener|*`, `no-maint`."""
    query = uri.split("?", 1)[1] if "?" in uri else ""
    try:
        scopes, no_maint = metrics.parse_query(query)
    except metrics.QueryError:
        return 400, [("cache-control", "no-cache"), ("content-type", "text/html"), ("connection", "close")], \
            _BAD_REQUEST
    snap = snapshot(rt)
    hdrs = [("cache-control", "no-cache"), ("content-type", metrics.CONTENT_TYPE)]
    if method.upper() == "HEAD":
        return 200, hdrs, b""
    return 200, hdrs, metrics.render(snap, scopes, no_maint)


def is_stats_request(proxy: Proxy, uri: str) -> bool:
    """Does this request go to the stats page of `proxy` (`stats enable` + `stats uri` prefix)?"""
    return bool(proxy.stats.enabled) and uri.startswith(proxy.stats.uri)


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if hasattr(headers, "items") else headers
    for k, v in items:
        k = k.decode("latin-1") if isinstance(k, bytes) else k
        if k.lower() == name:
            return v.decode("latin-1") if isinstance(v, bytes) else v
    return None


def _authorized(proxy: Proxy, headers: Any) -> bool:
    if not proxy.stats.auths:
        return True
    value = _header(headers, "authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        creds = base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return False
    return creds in proxy.stats.auths


def _admin_allowed(proxy: Proxy, admin: bool | None) -> bool:
    if admin is not None:
        return admin
    cond = proxy.stats.admin
    if cond is None:
        return False
    # without the ACL engine only the predefined constant ACLs can be decided here
    value = any(all((name == "TRUE") != neg for neg, name in term) and
                all(name in ("TRUE", "FALSE") for _neg, name in term) for term in cond.terms)
    return value != cond.negate


def stats_response(rt: Runtime, proxy: Proxy, method: str, uri: str, headers: Any = (), body: bytes = b"", *,
                   admin: bool | None = None) -> Response:
    """The stats page's answer for a request whose URI starts with `proxy.stats.uri`.

    `admin` is the value of the proxy's `stats admin if <cond>` for this request when the caller
    evaluated it (the HTTP session has the ACL engine); None = decide here (TRUE/FALSE only).
    Handles `stats auth` (401 with the realm), `;csv`, `;json`, `;up`, `;no-maint`, `;norefresh`,
    `scope=`, and admin POST actions (answered 303 to `<uri>;st=<result>`).
    """
    from haproxy_py.core import statspage

    st = proxy.stats
    if st.auths and not _authorized(proxy, headers):
        return 401, [("content-length", str(len(_UNAUTHORIZED))), ("cache-control", "no-cache"),
                     ("content-type", "text/html"), ("www-authenticate", f'Basic realm="{st.realm}"')], _UNAUTHORIZED
    path, _, query = uri.partition("?")
    rest = path[len(st.uri):] if path.startswith(st.uri) else ""
    options = set(rest.split(";")[1:]) | {p for p in query.split(";")[1:]}
    status_code = None
    for o in list(options):
        if o.startswith("st="):
            status_code = o[3:]
    refresh_hdr = [("refresh", str(st.refresh // 1000))] if st.refresh and "norefresh" not in options else []
    m = method.upper()
    if m == "POST":
        can = _admin_allowed(proxy, admin)
        result = apply_admin_post(rt, body) if can else "DENY"
        return 303, [("cache-control", "no-cache"), ("content-type", "text/plain"), ("content-length", "0"),
                     ("location", f"{st.uri};st={result}")], b""
    if m not in ("GET", "HEAD"):
        return 400, [("cache-control", "no-cache"), ("content-type", "text/html"), ("connection", "close")], \
            _BAD_REQUEST
    scope = None
    for k, v in parse_qsl(query.split(";")[0], keep_blank_values=True):
        if k == "scope":
            scope = v
    snap = snapshot(rt)
    filters: dict[str, Any] = dict(hide_down="up" in options, no_maint="no-maint" in options,
                                   scopes=tuple(st.scopes))
    if "csv" in options:
        text = stats.render_csv(snap, **filters)
        ctype, payload = "text/plain", text.encode()
    elif "json" in options:
        ctype, payload = "application/json", json.dumps(stats.json_rows(snap, **filters)).encode()
    elif "json-schema" in options:
        ctype, payload = "application/json", b'{"$schema":"http://json-schema.org/draft-04/schema#"}'
    else:
        can_admin = _admin_allowed(proxy, admin)
        html = statspage.render_html(snap, proxy, uri_prefix=st.uri, options=options, scope=scope,
                                     admin=can_admin, status_code=status_code, pid=os.getpid())
        ctype, payload = "text/html", html.encode("utf-8", "replace")
    hdrs = [("cache-control", "no-cache"), ("content-type", ctype), *refresh_hdr]
    return 200, hdrs, b"" if m == "HEAD" else payload


def apply_admin_post(rt: Runtime, body: bytes) -> str:
    """Apply a stats page admin form (`s=<srv>...&action=<act>&b=#<iid>`) -> DONE|NONE|PART|ERRP."""
    try:
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return "ERRP"
    action = next((v for k, v in fields if k == "action"), "")
    bref = unquote(next((v for k, v in fields if k == "b"), ""))
    names = [v for k, v in fields if k == "s"]
    be = None
    if bref.startswith("#"):
        be = next((b for b in rt.backends.values() if f"#{b.proxy.id}" == bref), None)
    elif bref:
        be = rt.backends.get(bref)
    actions = {"ready", "drain", "maint", "dhlth", "ehlth", "hrunn", "hnolb", "hdown", "shutdown", "dagent",
               "eagent", "arunn", "adown"}
    if be is None or action not in actions or not names:
        return "ERRP"
    done = missing = 0
    for name in names:
        srv = next((s for s in be.servers if s.name == name), None)
        if srv is None:
            missing += 1
            continue
        if action in ("ready", "drain", "maint"):
            set_admin_state(rt, be, srv, action)
        elif action in ("dhlth", "ehlth"):
            set_health_checks(rt, be, srv, action == "ehlth")
        elif action in ("hrunn", "hnolb", "hdown"):
            srv.up = action != "hdown"
            be.server_changed()
        elif action == "shutdown":
            shutdown_sessions(be, srv)
        done += 1
    if missing and done:
        return "PART"
    if missing:
        return "ERRP"
    return "DONE"
