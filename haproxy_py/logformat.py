"""Traffic log lines: `option tcplog`, `option httplog`, `log-format`, the "Connect from" line.

Pure: a session hands a `LogRecord` (what happened, with HAProxy's timers in milliseconds, -1 for a
phase never reached) and gets the text of its log line back; `emit()` sends it through the
process's log sink (`haproxy_py.log`). Format strings are parsed once per proxy (`compile_format`
is cached) into literal text, separators and variables, and rendered as HAProxy does:
consecutive separators collapse into one space and a variable that expands to nothing (`%hr`
without captures) leaves no extra space.

Common variables supported (HAProxy 2.6 names): %ci %cp %fi %fp %bi %bp %si %sp %t %tr %trg %trl %T
%Tl %Ts %ms %ft %f %fn %b %s %Th %Ti %TR %Tq %Tw %Tc %Tr %Ta %Tt %Td %B %U %ST %ts %tsc %ac %fc %bc %sc
%rc %rt %sq %bq %hr %hs %hrl %hsl %r %HM %HU %HP %HPO %HQ %HV %CC %CS %ID %pid %H %lc %o (flags
`%{+Q}`, `%{-Q}`, `%{+X}`, `%{+E}`); a sample expression `%[...]` renders as `-`.

Termination states (first char, second char) are listed in TERMINATION_CAUSES / PHASES.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from haproxy_py.config.model import Proxy

TCPLOG_FORMAT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG_FORMAT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq "
                  "%hr %hs %{+Q}r")
CLF_FORMAT = ('%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc '
              "%bc %sc %rc %sq %bq %CC %CS %hrl %hsl")

# first character of the termination state: why the session ended
TERMINATION_CAUSES = {
    "-": "normal end", "C": "client aborted", "S": "server aborted or refused", "P": "proxy (deny, invalid)",
    "L": "local (return, redirect, stats, service)", "R": "resource exhausted", "I": "internal error",
    "D": "killed because the server went DOWN", "U": "killed for a backup server coming UP",
    "K": "killed by an administrator", "c": "client timeout", "s": "server timeout",
}
# second character: the phase it ended in
PHASES = {
    "-": "normal", "R": "waiting for the request", "Q": "queued", "C": "connecting", "H": "waiting for the headers",
    "D": "data transfer", "L": "last data", "T": "tarpit",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@attrs.define
class LogRecord:
    """What one session (tcp) or one request (http) did, as the log variables need it.

    Times are wall-clock seconds (`accept_time`: connection accepted; `request_time`: first byte of
    the request). Timers are ms, -1 when the phase was never reached. `termination` is the 2-char
    state ("--", "SC", "cR"...); `cookies` the 2 persistence-cookie chars ("--" when none).
    """

    client: tuple[str, int] | None = None
    frontend_addr: tuple[str, int] | None = None
    backend_addr: tuple[str, int] | None = None  # our source address toward the server
    server_addr: tuple[str, int] | None = None
    accept_time: float = 0.0
    request_time: float | None = None
    frontend: str = "-"
    frontend_ssl: bool = False
    backend: str | None = None
    server: str | None = None
    Th: int = 0  # handshake
    Ti: int = 0  # idle before the request
    TR: int = -1  # receiving the request head
    Tw: int = -1  # queues
    Tc: int = -1  # connect
    Tr: int = -1  # server response head
    Ta: int = -1  # active time of the request (http) ...
    Tt: int = -1  # total session time
    Td: int = -1  # data transfer
    bytes_read: int = 0  # %B: to the client
    bytes_uploaded: int = 0  # %U: from the client
    status: int = -1
    termination: str = "--"
    cookies: str = "--"
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False
    srv_queue: int = 0
    backend_queue: int = 0
    request_line: str | None = None  # None: no request (<BADREQ>)
    method: str | None = None
    uri: str | None = None
    version: str | None = None
    captured_request_headers: tuple[str, ...] = ()
    captured_response_headers: tuple[str, ...] = ()
    captured_request_cookie: str | None = None
    captured_response_cookie: str | None = None
    unique_id: str | None = None
    logasap: bool = False


# ---------------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------------

@attrs.frozen
class Token:
    kind: str  # "text" | "sep" | "var"
    value: str
    flags: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=256)
def compile_format(fmt: str) -> tuple[Token, ...]:
    """Split a log-format string into text, separators and variables (with their %{...} flags)."""
    tokens: list[Token] = []
    text: list[str] = []
    i = 0

    def flush() -> None:
        if text:
            tokens.append(Token("text", "".join(text)))
            text.clear()

    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt):
            text.append(fmt[i + 1])
            i += 2
            continue
        if c == " ":
            flush()
            if not tokens or tokens[-1].kind != "sep":
                tokens.append(Token("sep", " "))
            i += 1
            continue
        if c != "%":
            text.append(c)
            i += 1
            continue
        if fmt.startswith("%%", i):
            text.append("%")
            i += 2
            continue
        flush()
        i += 1
        flags: set[str] = set()
        if i < len(fmt) and fmt[i] == "{":
            end = fmt.find("}", i)
            if end < 0:
                break
            for f in fmt[i + 1:end].split(","):
                f = f.strip()
                if f.startswith("+"):
                    flags.add(f[1:])
                elif f.startswith("-"):
                    flags.discard(f[1:])
                    flags.add("no" + f[1:])
            i = end + 1
        if i < len(fmt) and fmt[i] == "[":
            end = fmt.find("]", i)
            end = len(fmt) - 1 if end < 0 else end
            tokens.append(Token("var", "[" + fmt[i + 1:end] + "]", frozenset(flags)))
            i = end + 1
            continue
        j = i
        while j < len(fmt) and (fmt[j].isalnum() or fmt[j] == "_"):
            j += 1
        name = fmt[i:j]
        tokens.append(Token("var", name, frozenset(flags)))
        i = j
    flush()
    return tuple(tokens)


# ---------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------

def _date(t: float, *, ms: bool = True, gmt: bool = False, with_zone: bool = False) -> str:
    tm = time.gmtime(t) if gmt else time.localtime(t)
    s = f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    if ms:
        s += f".{int((t - int(t)) * 1000):03d}"
    if with_zone:
        off = 0 if gmt else (tm.tm_gmtoff or 0)
        sign = "+" if off >= 0 else "-"
        off = abs(off)
        s += f" {sign}{off // 3600:02d}{off % 3600 // 60:02d}"
    return s


def _ip(addr: tuple[str, int] | None) -> str:
    if addr is None:
        return "-"
    if not isinstance(addr, tuple):
        return "unix"
    return str(addr[0])


def _port(addr: tuple[str, int] | None) -> str:
    if addr is None:
        return "-"
    if not isinstance(addr, tuple):
        return "unix"
    return str(addr[1]) if len(addr) > 1 else "-"


def _quote(s: str) -> str:
    return '"' + s + '"'


def _escape(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\' or ord(ch) < 32 or ord(ch) > 126:
            out.append("\\" + ch if ch in '"\\' else f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _captures(values: Sequence[str]) -> str:
    if not values:
        return ""
    return "{" + "|".join(values) + "}"


def _value(name: str, r: LogRecord) -> tuple[str | None, bool]:
    """(text, is_string): None means "nothing" (the variable disappears). Strings get quoted by +Q."""
    req_t = r.request_time if r.request_time is not None else r.accept_time
    if name == "ci":
        return _ip(r.client), True
    if name == "cp":
        return _port(r.client), False
    if name == "fi":
        return _ip(r.frontend_addr), True
    if name == "fp":
        return _port(r.frontend_addr), False
    if name == "bi":
        return _ip(r.backend_addr), True
    if name == "bp":
        return _port(r.backend_addr), False
    if name == "si":
        return _ip(r.server_addr), True
    if name == "sp":
        return _port(r.server_addr), False
    if name == "t":
        return _date(r.accept_time), True
    if name == "tr":
        return _date(req_t), True
    if name == "trg":
        return _date(req_t, ms=False, gmt=True, with_zone=True), True
    if name == "trl":
        return _date(req_t, ms=False, with_zone=True), True
    if name == "T":
        return _date(r.accept_time, ms=False, gmt=True, with_zone=True), True
    if name == "Tl":
        return _date(r.accept_time, ms=False, with_zone=True), True
    if name == "Ts":
        return str(int(r.accept_time)), False
    if name == "ms":
        return f"{int((r.accept_time - int(r.accept_time)) * 1000):03d}", False
    if name in ("ft", "f", "fn"):
        return r.frontend + ("~" if name == "ft" and r.frontend_ssl else ""), True
    if name == "b":
        return r.backend if r.backend is not None else r.frontend, True
    if name == "s":
        return r.server if r.server is not None else "<NOSRV>", True
    if name in ("Th", "Ti", "TR", "Tw", "Tc", "Tr", "Ta", "Td"):
        return str(getattr(r, name)), False
    if name == "Tq":
        parts = (r.Th, r.Ti, r.TR)
        return (str(sum(parts)) if all(p >= 0 for p in parts) else "-1"), False
    if name == "Tt":
        return ("+" if r.logasap else "") + str(r.Tt), False
    if name == "B":
        return ("+" if r.logasap else "") + str(r.bytes_read), False
    if name == "U":
        return str(r.bytes_uploaded), False
    if name == "ST":
        return str(r.status), False
    if name == "ts":
        return r.termination[:2], True
    if name == "tsc":
        return (r.termination[:2] + r.cookies[:2]), True
    if name == "ac":
        return str(r.actconn), False
    if name == "fc":
        return str(r.feconn), False
    if name == "bc":
        return str(r.beconn), False
    if name == "sc":
        return str(r.srv_conn), False
    if name == "rc":
        return ("+" if r.redispatched else "") + str(r.retries), False
    if name == "rt":
        return "0", False
    if name == "sq":
        return str(r.srv_queue), False
    if name == "bq":
        return str(r.backend_queue), False
    if name == "hr":
        return _captures(r.captured_request_headers) or None, True
    if name == "hs":
        return _captures(r.captured_response_headers) or None, True
    if name == "hrl":
        return " ".join(r.captured_request_headers) or None, True
    if name == "hsl":
        return " ".join(r.captured_response_headers) or None, True
    if name == "r":
        return (r.request_line if r.request_line is not None else "<BADREQ>"), True
    if name == "HM":
        return r.method or "-", True
    if name in ("HU", "HP", "HPO", "HQ"):
        uri = r.uri or ""
        if name == "HU":
            return uri or "-", True
        path, q, query = uri.partition("?")
        if name == "HQ":
            return (q + query) if q else "", True
        return path or "-", True
    if name == "HV":
        return r.version or "-", True
    if name == "CC":
        return r.captured_request_cookie or "-", True
    if name == "CS":
        return r.captured_response_cookie or "-", True
    if name == "ID":
        return r.unique_id or "-", True
    if name == "pid":
        return str(os.getpid()), False
    if name == "H":
        return socket.gethostname(), True
    if name == "lc":
        return "0", False
    if name == "o":
        return "", True
    if name.startswith("["):
        return "-", True
    return None, False


def render(fmt: str, record: LogRecord) -> str:
    """One log line (without newline) for `record` in log-format `fmt`."""
    out: list[str] = []
    last_is_space = True  # no leading space
    for tok in compile_format(fmt):
        if tok.kind == "sep":
            if not last_is_space:
                out.append(" ")
                last_is_space = True
            continue
        if tok.kind == "text":
            out.append(tok.value)
            last_is_space = False
            continue
        text, is_string = _value(tok.value, record)
        if text is None:
            continue
        if "E" in tok.flags:
            text = _escape(text)
        if "X" in tok.flags and text.lstrip("+-").isdigit():
            text = f"{int(text):X}"
        if "Q" in tok.flags and is_string:
            text = _quote(text)
        out.append(text)
        last_is_space = False
    return "".join(out).rstrip(" ")


def format_for(proxy: Proxy) -> str | None:
    """The log-format a frontend uses (`log-format`, `option tcplog` / `httplog`), or None."""
    return proxy.log_format or None


def connect_line(client: tuple[str, int] | Any, local: tuple[str, int] | Any, proxy: Proxy) -> str:
    """The line HAProxy logs at accept time when neither tcplog/httplog nor log-format is set."""
    return (f"Connect from {_ip(client)}:{_port(client)} to {_ip(local)}:{_port(local)} "
            f"({proxy.name}/{proxy.mode.upper()})")


def should_log(proxy: Proxy, record: LogRecord) -> bool:
    """`option dontlognull` drops sessions that carried no request data; `dontlog-normal` drops
    sessions that ended normally."""
    opts = proxy.options
    if "dontlognull" in opts and record.bytes_uploaded == 0 and record.request_line is None:
        return False
    if "dontlog-normal" in opts and record.termination[:1] in ("-", "L") and (record.status < 500):
        return False
    return True


def session_line(proxy: Proxy, record: LogRecord) -> str | None:
    """The finished session's log line for `proxy`, or None when nothing is to be logged."""
    fmt = format_for(proxy)
    if not fmt or not should_log(proxy, record):
        return None
    return render(fmt, record)


def emit(proxy: Proxy, line: str, *, error: bool = False) -> None:
    """Send one traffic log line to the proxy's log targets (info; err with log-separate-errors)."""
    from haproxy_py import log

    level = log.ERR if error and "log-separate-errors" in proxy.options else log.INFO
    log.current().log(proxy, level, line)


def log_session(proxy: Proxy, record: LogRecord) -> None:
    """At session end: render and send the line if this proxy logs sessions (call from the session)."""
    if not proxy.logs:
        return
    line = session_line(proxy, record)
    if line is not None:
        emit(proxy, line, error=record.termination[:1] not in ("-", "L"))


def log_connect(proxy: Proxy, client: Any, local: Any) -> None:
    """At accept time: the "Connect from" line, for proxies with log targets and no log format."""
    if proxy.logs and not format_for(proxy):
        emit(proxy, connect_line(client, local, proxy))
