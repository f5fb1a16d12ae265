"""The `tune.*` keywords of the `global` section, as HAProxy 2.6.12 (Debian build) knows them.

The list is exactly the set the 2.6 binary accepts (an unknown `tune.*` is "unknown keyword", as in
HAProxy), and each keyword checks its argument the way 2.6 does, quirks included: most integer
knobs are read with C's atol(), so `tune.maxpollevents abc` is accepted as 0 while
`tune.http.maxhdr abc` is refused. Only `tune.bufsize`, `tune.maxrewrite` and `tune.http.maxhdr`
change haproxy-py's behaviour (buffer and header limits); the others are performance knobs of
HAProxy's threads, pollers, TLS, Lua or HTTP/2 and have no effect here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from haproxy_py.config.errors import StatementError

if TYPE_CHECKING:
    from haproxy_py.config.keywords import Statement

Check = Callable[["Statement", dict[str, Any]], None]

_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
INT_MAX = 2**31 - 1


def atol(text: str) -> int:
    """C atol(): leading blanks, a sign, digits; stops at the first other character (0 if none)."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    return int(m.group(1)) if m else 0


def _time_ms(text: str, what: str) -> int:
    """HAProxy parse_time_err(): digits then an optional unit; the message names `<what>`."""
    m = re.match(r"[0-9]*", text)
    assert m is not None
    rest = text[m.end():]
    if m.group(0) == "":
        raise StatementError(f"unexpected character '{text[:1]}' in argument to <{what}>.")
    for unit, factor in _TIME_UNITS.items():
        if rest.startswith(unit) and rest[len(unit):] == "":
            return int(int(m.group(0)) * factor)
    if rest == "":
        return int(m.group(0))
    bad = rest[0]
    for unit in _TIME_UNITS:
        if rest.startswith(unit):
            bad = rest[len(unit)]
            break
    raise StatementError(f"unexpected character '{bad}' in argument to <{what}>.")


def _arg(st: Statement) -> str:
    return st.args[0] if st.args else ""


def _extra(st: Statement, n: int = 1) -> None:
    if len(st.args) > n and st.args[n] != "":
        raise StatementError(f"'{st.keyword}' cannot handle unexpected argument '{st.args[n]}'.")


def _integer(field: str | None = None, positive: str | None = None, lo: int | None = None,
             hi: int | None = None, range_msg: str | None = None, missing: str | None = None,
             extra: bool = True) -> Check:
    """An atol() integer. `positive`: message when negative; lo/hi with `range_msg`."""

    def check(st: Statement, g: dict[str, Any]) -> None:
        if not st.args or st.args[0] == "":
            if missing is not None:
                raise StatementError(missing.format(kw=st.keyword))
        if extra:
            _extra(st)
        value = atol(_arg(st))
        if positive is not None and value < 0:
            raise StatementError(positive.format(kw=st.keyword))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise StatementError((range_msg or "").format(kw=st.keyword))
        if field is not None:
            g[field] = value

    return check


_MISSING = "'{kw}' expects an integer argument."
_POSITIVE_NUM = "'{kw}' expects a positive numeric value."


def _on_off(st: Statement, g: dict[str, Any]) -> None:
    _extra(st)
    if _arg(st) not in ("on", "off"):
        raise StatementError(f"'{st.keyword}' expects either 'on' or 'off' but got '{_arg(st)}'.")


def _experimental_on_off(st: Statement, g: dict[str, Any]) -> None:
    if not g.get("_experimental"):
        raise StatementError(
            f"'{st.keyword}' directive is experimental, must be allowed via a global 'expose-experimental-directives'"
        )
    _on_off(st, g)


def _idletimer(st: Statement, g: dict[str, Any]) -> None:
    _extra(st)
    if _arg(st) == "":
        raise StatementError("'tune.idletimer' expects a timer value between 0 and 65535 ms.")
    value = _time_ms(_arg(st), "tune.idletimer")
    if value > 65535:
        raise StatementError(f"timer overflow in argument <{_arg(st)}> to <tune.idletimer>, maximum value is 65535 ms.")


def _lua_timeout(st: Statement, g: dict[str, Any]) -> None:
    text = _arg(st)
    if not re.fullmatch(r"[0-9]+(us|ms|s|m|h|d)?", text):
        raise StatementError(f"{st.keyword}: invalid timeout")
    if _time_ms(text, st.keyword) > INT_MAX:
        raise StatementError(
            f"timer overflow in argument <{text}> to <{st.keyword}> (maximum value is 2147483647 ms or ~24.8 days)"
        )


def _lua_forced_yield(st: Statement, g: dict[str, Any]) -> None:
    text = _arg(st)
    if text and not re.fullmatch(r"[+-]?[0-9]+", text):
        raise StatementError("tune.lua.forced-yield: invalid number")


def _lua_maxmem(st: Statement, g: dict[str, Any]) -> None:
    text = _arg(st)
    if text == "":
        raise StatementError("'tune.lua.maxmem' expects an integer argument (Lua memory size in MB).")
    m = re.match(r"[+-]?[0-9]*", text)
    assert m is not None
    if m.end() < len(text) or m.group(0) in ("", "+", "-"):
        raise StatementError(f"tune.lua.maxmem: invalid number {text} (error at '{text[m.end():m.end() + 1]}')")


def _vars_size(st: Statement, g: dict[str, Any]) -> None:
    text = _arg(st)
    if text and not re.fullmatch(r"[+-]?[0-9]+", text):
        raise StatementError(f"{st.keyword}: '{text}' is an invalid size")


def _ssl_lifetime(st: Statement, g: dict[str, Any]) -> None:
    _extra(st)
    text = _arg(st)
    if text == "":
        raise StatementError("'tune.ssl.lifetime' expects ssl sessions <lifetime> in seconds as argument.")
    _time_ms(text, "tune.ssl.lifetime")  # raises on a bad character
    m = re.fullmatch(r"([0-9]+)(us|ms|s|m|h|d)?", text)
    assert m is not None
    seconds = int(m.group(1)) * _TIME_UNITS[m.group(2) or "s"] / 1000
    if seconds > INT_MAX:
        raise StatementError(
            f"timer overflow in argument '{text}' to <tune.ssl.lifetime> (maximum value is 2147483647 s or ~68 years)."
        )


def _flag(st: Statement, g: dict[str, Any]) -> None:
    if st.args and st.args[0] != "":
        raise StatementError(f"'{st.keyword}' cannot handle unexpected argument '{st.args[0]}'.")


def _dh_param(st: Statement, g: dict[str, Any]) -> None:
    if _arg(st) == "":
        raise StatementError("'tune.ssl.default-dh-param' expects an integer argument.")
    _extra(st)
    if 0 <= atol(_arg(st)) < 1024:  # HAProxy compares as unsigned: negative values pass
        raise StatementError("'tune.ssl.default-dh-param' expects a value >= 1024.")


def _capture_cipherlist(st: Statement, g: dict[str, Any]) -> None:
    _integer(positive=_POSITIVE_NUM, missing=_MISSING)(st, g)
    st.warn("'tune.ssl.capture-cipherlist-size' is deprecated and will be removed in version 2.7. "
            "Please use 'tune.ssl.capture-buffer-size' instead.", form="tight")


def _chksize(st: Statement, g: dict[str, Any]) -> None:
    raise StatementError("option 'tune.chksize' is not supported any more (tune.bufsize is used instead).", form="tight")


def _bufsize(st: Statement, g: dict[str, Any]) -> None:
    if _arg(st) == "":
        raise StatementError(_MISSING.format(kw=st.keyword))
    _extra(st)
    value = atol(_arg(st))
    if value <= 0:
        raise StatementError("'tune.bufsize' expects a positive integer argument.")
    if value >= 256 * 1024 * 1024:
        raise StatementError(f"global.tune.bufsize must be below 256 MB when HTTP is in use (current value = {value}).")
    g["bufsize"] = value


# name -> (check, summary); summary says what the knob does in HAProxy
TUNE_KEYWORDS: dict[str, tuple[Check, str]] = {
    "tune.bufsize": (_bufsize, "Buffer size; bounds the size of HTTP request/response heads (default 16384)."),
    "tune.maxrewrite": (_integer("maxrewrite", positive="'{kw}' expects a positive integer argument.", missing=_MISSING),
                        "Part of the buffer reserved for header rewriting (default 1024)."),
    "tune.http.maxhdr": (_integer("max_http_headers", lo=1, hi=32767, missing=_MISSING,
                                  range_msg="'{kw}' expects a numeric value between 1 and 32767"),
                         "Maximum number of headers in a request or response (default 101)."),
    "tune.buffers.limit": (_integer(missing=_MISSING), "Cap on the number of allocated buffers."),
    "tune.buffers.reserve": (_integer(missing=_MISSING), "Buffers reserved for emergencies."),
    "tune.chksize": (_chksize, "Removed: tune.bufsize is used instead."),
    "tune.comp.maxlevel": (_integer(lo=1, hi=9, missing="'{kw}' expects a numeric value between 1 and 9",
                                    range_msg="'{kw}' expects a numeric value between 1 and 9"),
                           "Maximum compression level."),
    "tune.fail-alloc": (_integer(lo=0, hi=100, range_msg="'{kw}' expects a numeric value between 0 and 100."),
                        "Debugging: percentage of allocations made to fail."),
    "tune.fd.edge-triggered": (_experimental_on_off, "Experimental edge-triggered polling."),
    "tune.h2.header-table-size": (_integer(lo=4096, hi=65536, missing="'{kw}' expects a numeric value between 4096 and 65536.",
                                           range_msg="'{kw}' expects a numeric value between 4096 and 65536."),
                                  "HTTP/2 HPACK table size."),
    "tune.h2.initial-window-size": (_integer(positive=_POSITIVE_NUM), "HTTP/2 initial window size."),
    "tune.h2.max-concurrent-streams": (_integer(positive=_POSITIVE_NUM), "HTTP/2 concurrent streams per connection."),
    "tune.h2.max-frame-size": (_integer(lo=16384, hi=16777215,
                                        missing="'{kw}' expects a numeric value between 16384 and 16777215.",
                                        range_msg="'{kw}' expects a numeric value between 16384 and 16777215."),
                               "HTTP/2 maximum frame size."),
    "tune.http.cookielen": (_integer(missing=_MISSING), "Length of captured cookies in logs."),
    "tune.http.logurilen": (_integer(missing=_MISSING), "Length of the URI kept for logs."),
    "tune.idle-pool.shared": (_on_off, "Share idle server connections between threads."),
    "tune.idletimer": (_idletimer, "Idle time before splice()/fast forwarding is considered."),
    "tune.listener.multi-queue": (_on_off, "Spread accepted connections over thread queues."),
    "tune.lua.forced-yield": (_lua_forced_yield, "Lua instructions between forced yields."),
    "tune.lua.maxmem": (_lua_maxmem, "Lua memory limit in MB."),
    "tune.lua.service-timeout": (_lua_timeout, "Lua service execution timeout."),
    "tune.lua.session-timeout": (_lua_timeout, "Lua action execution timeout."),
    "tune.lua.task-timeout": (_lua_timeout, "Lua task execution timeout."),
    "tune.maxaccept": (_integer(missing=_MISSING, hi=INT_MAX, range_msg="'{kw}' expects -1 or an integer from 0 to INT_MAX."),
                       "Connections accepted per wake-up."),
    "tune.maxpollevents": (_integer(missing=_MISSING), "Events processed per poller call."),
    "tune.pattern.cache-size": (_integer(positive="'{kw}' expects a positive numeric value",
                                         missing="'{kw}' expects a positive numeric value", extra=False),
                                "Size of the pattern match cache."),
    "tune.peers.max-updates-at-once": (_integer(lo=1, missing="'{kw}' expects an integer argument greater than 0.",
                                                range_msg="'{kw}' expects an integer argument greater than 0."),
                                       "Stick-table updates pushed at once to peers."),
    "tune.pipesize": (_integer(missing=_MISSING), "Size of splice() pipes."),
    "tune.pool-high-fd-ratio": (_integer(lo=0, hi=100, missing="'{kw}' expects an integer argument between 0 and 100.",
                                         range_msg="'{kw}' expects an integer argument between 0 and 100."),
                                "Share of fds above which idle server connections are closed."),
    "tune.pool-low-fd-ratio": (_integer(lo=0, hi=100, missing="'{kw}' expects an integer argument between 0 and 100.",
                                        range_msg="'{kw}' expects an integer argument between 0 and 100."),
                               "Share of fds above which idle server connections are not kept."),
    "tune.rcvbuf.client": (_integer(missing=_MISSING), "Kernel receive buffer on client sockets."),
    "tune.rcvbuf.server": (_integer(missing=_MISSING), "Kernel receive buffer on server sockets."),
    "tune.recv_enough": (_integer(missing=_MISSING), "Bytes considered enough to stop reading."),
    "tune.runqueue-depth": (_integer(missing=_MISSING), "Tasks run per scheduler pass."),
    "tune.sched.low-latency": (_on_off, "Scheduler latency mode."),
    "tune.sndbuf.client": (_integer(missing=_MISSING), "Kernel send buffer on client sockets."),
    "tune.sndbuf.server": (_integer(missing=_MISSING), "Kernel send buffer on server sockets."),
    "tune.ssl.cachesize": (_integer(positive=_POSITIVE_NUM, missing=_MISSING), "TLS session cache size."),
    "tune.ssl.capture-buffer-size": (_integer(positive=_POSITIVE_NUM, missing=_MISSING), "ClientHello capture size."),
    "tune.ssl.capture-cipherlist-size": (_capture_cipherlist, "Deprecated alias of tune.ssl.capture-buffer-size."),
    "tune.ssl.default-dh-param": (_dh_param, "Default DH parameter size."),
    "tune.ssl.force-private-cache": (_flag, "Per-process TLS session cache."),
    "tune.ssl.hard-maxrecord": (_integer(positive=_POSITIVE_NUM, missing=_MISSING), "Maximum TLS record size."),
    "tune.ssl.keylog": (_on_off, "TLS key logging."),
    "tune.ssl.lifetime": (_ssl_lifetime, "TLS session lifetime."),
    "tune.ssl.maxrecord": (_integer(positive=_POSITIVE_NUM, missing=_MISSING), "Initial TLS record size."),
    "tune.ssl.ssl-ctx-cache-size": (_integer(positive=_POSITIVE_NUM, missing=_MISSING), "Generated certificate cache size."),
    "tune.vars.check-max-size": (_vars_size, "Memory for check-scoped variables."),
    "tune.vars.global-max-size": (_vars_size, "Memory for process-scoped variables."),
    "tune.vars.proc-max-size": (_vars_size, "Memory for process-scoped variables."),
    "tune.vars.reqres-max-size": (_vars_size, "Memory for request/response variables."),
    "tune.vars.sess-max-size": (_vars_size, "Memory for session variables."),
    "tune.vars.txn-max-size": (_vars_size, "Memory for transaction variables."),
}
CHANGES_BEHAVIOUR = frozenset({"tune.bufsize", "tune.maxrewrite", "tune.http.maxhdr"})


def register_tune_keywords(table: dict[str, Any], keyword_cls: Any) -> None:
    """Add every 2.6 `tune.*` keyword to the global keyword table."""
    for name, (check, summary) in TUNE_KEYWORDS.items():
        if name == "tune.chksize":
            status = "removed"
        elif name in CHANGES_BEHAVIOUR:
            status = "supported"
        else:
            status = "no-effect"
        table[name] = keyword_cls(name=name, syntax=f"{name} <value>" if check is not _flag else name,
                                  summary=summary, status=status, handler=check)
