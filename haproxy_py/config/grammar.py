"""Typed arguments of config keywords: times, sizes, integers and addresses.

Each parser takes one word and returns a value, or raises StatementError with HAProxy's wording
(operators search for those messages). The grammars are pyparsing expressions; the failure
position they report is what names the "unexpected character" HAProxy names.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

import pyparsing as pp

from haproxy_py.config.errors import StatementError
from haproxy_py.config.model import BindAddress, ServerAddress

_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

_SIZE = pp.Regex(r"[0-9]+")("num") + pp.Opt(pp.one_of("k m g", caseless=True))("unit") + pp.StringEnd()

_TIME_MAX = 2**31 - 1


def parse_time(word: str, what: str, warn: Callable[[str], None] | None = None) -> int:
    """A HAProxy time (`10s`, `500`, `2m`) in milliseconds; `what` names the keyword for errors.

    As in HAProxy 2.6 (parse_time_err), characters after a valid unit (`1sx`) only give a warning
    (passed to `warn`, HAProxy prints it without a location); anything else is an error naming the
    first bad character.
    """
    if word == "":
        raise StatementError(f"'{what}' expects an integer value (in milliseconds)")
    i = 0
    while i < len(word) and word[i].isdigit():
        i += 1
    if i == 0:
        raise StatementError(f"unexpected character '{word[0]}' in '{what}'")
    unit = ""
    for u in ("us", "ms", "s", "m", "h", "d"):
        if word.startswith(u, i):
            unit = u
            break
    rest = word[i + len(unit):]
    if rest:
        if not unit:
            raise StatementError(f"unexpected character '{rest[0]}' in '{what}'")
        if warn is not None:
            warn(f"unexpected character '{rest[0]}' after the timer value '{word}', only "
                 "(us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will "
                 "be reported as an error in next versions.")
    value = int(word[:i]) * _TIME_UNITS[unit or "ms"]
    value = int(value) if value >= 1 or value == 0 else 1
    if value > _TIME_MAX:
        raise StatementError(
            f"timer overflow in argument '{word}' to '{what}' (maximum value is 2147483647 ms or ~24.8 days)"
        )
    return value


def parse_size(word: str, what: str) -> int:
    """A size with an optional k/m/g suffix (powers of 1024), in bytes."""
    try:
        res = _SIZE.parse_string(word, parse_all=True)
    except pp.ParseException:
        raise StatementError(f"'{what}' expects a size value (got '{word}')") from None
    return int(res["num"]) * _SIZE_UNITS[(res.get("unit", "") or "").lower()]


def parse_int(word: str | None, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """A plain decimal integer, optionally bounded (inclusive)."""
    if word is None or not (word.isdigit() or (word[:1] == "-" and word[1:].isdigit())):
        raise StatementError(f"'{what}' expects an integer argument.")
    value = int(word)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            raise StatementError(f"'{what}' expects an integer between {lo} and {hi} (got '{word}').")
        raise StatementError(f"'{what}' expects an integer {'>= ' + str(lo) if lo is not None else '<= ' + str(hi)} (got '{word}').")
    return value


_PREFIXES = ("ipv4@", "ipv6@", "unix@", "abns@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "tcp@", "tcp4@",
             "tcp6@", "quic4@", "quic6@", "uxst@", "uxdg@")


def _prefix(text: str) -> tuple[str | None, str]:
    for p in _PREFIXES:
        if text.startswith(p):
            return p[:-1], text[len(p) :]
    return None, text


def _split_host_port(part: str, rest: str, kw: str) -> tuple[str, str | None]:
    """`host:port`, `[v6]:port`, `::1:80` (the port is what follows the last colon)."""
    if rest.startswith("["):
        end = rest.find("]")
        if end >= 0:
            tail = rest[end + 1 :]
            if not tail.startswith(":"):
                raise StatementError(f"{kw}missing port specification in '{part}'")
            return rest[1:end], tail[1:]
    if ":" not in rest:
        return rest, None
    host, _, port = rest.rpartition(":")
    return host, port


def _check_port_text(port: str, part: str, kw: str) -> None:
    if port[:1] in ("+", "-"):
        raise StatementError(f"{kw}port offset not permitted here in '{part}'")
    if not port[:1].isdigit():
        raise StatementError(f"{kw}invalid character '{port[:1]}' in port number '{port}' in '{part}'")


def _atoi(text: str) -> int:
    m = re.match(r"[0-9]*", text)
    assert m is not None
    return int(m.group(0) or 0)


def _dgram_or_quic(prefix: str | None, part: str, kw: str) -> None:
    if prefix in ("udp", "udp4", "udp6", "uxdg"):
        raise StatementError(f"{kw}dgram-type address not acceptable in '{part}'")
    if prefix in ("quic4", "quic6"):
        family = 2 if prefix == "quic4" else 10
        raise StatementError(f"{kw}unsupported stream protocol for datagram family {family} address '{part}'; QUIC "
                             "is not compiled in if this is what you were looking for.")


def _host_ip(host: str, prefix: str | None, part: str, kw: str, resolve: bool) -> tuple[str, str]:
    """(family, address) of a bind host; names are resolved when `resolve` (as HAProxy does)."""
    want = {"ipv4": 4, "tcp4": 4, "ipv6": 6, "tcp6": 6}.get(prefix or "")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not resolve or host.startswith("["):
            if host.startswith("[") or host == "":
                raise StatementError(f"{kw}invalid address: '{host}' in '{part}'") from None
            return ("ipv6" if want == 6 else "ipv4"), host
        resolved = _resolve(host, want)
        if resolved is None:
            raise StatementError(f"{kw}invalid address: '{host}' in '{part}'") from None
        ip = resolved
    if want is not None and ip.version != want:
        raise StatementError(f"{kw}invalid address: '{host}' in '{part}'")
    return ("ipv6" if ip.version == 6 else "ipv4"), str(ip)


def parse_bind_address(text: str, kw: str = "bind", resolve: bool = True) -> list[BindAddress]:
    """Every form `bind` accepts in 2.6: `*:80`, `:80`, `[::1]:80`, `:::80`, `::1:80`, ranges,
    comma-separated lists, `/path`, `unix@`, `abns@`, `fd@N`, `sockpair@N`, `ipv4@`, `ipv6@`, `tcp@`.

    Errors use HAProxy's wording ("'bind' : missing port specification in '127.0.0.1'").
    """
    ctx = f"'{kw}' : "
    out: list[BindAddress] = []
    parts = text.split(",")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing comma is harmless
    for part in parts:
        if part == "":
            raise StatementError(f"{ctx}'' resolves to an empty address (environment variable missing?)")
        prefix, rest = _prefix(part)
        _dgram_or_quic(prefix, part, ctx)
        if prefix in ("fd", "sockpair"):
            if not re.fullmatch(r"[0-9]+", rest):
                raise StatementError(f"{ctx}file descriptor '{rest}' is not a valid integer in '{part}'")
            out.append(BindAddress(family=prefix, fd=int(rest)))
            continue
        if prefix in ("unix", "abns", "uxst") or (prefix is None and part.startswith("/")):
            out.append(BindAddress(family="abns" if prefix == "abns" else "unix", host=rest))
            continue
        host, port = _split_host_port(part, rest, ctx)
        if port is None or port == "":
            raise StatementError(f"{ctx}missing port specification in '{part}'")
        _check_port_text(port, part, ctx)
        lo_text, dash, hi_text = port.partition("-")
        lo = _atoi(lo_text)
        if dash and not hi_text[:1].isdigit():
            raise StatementError(f"{ctx}invalid port '{hi_text}'")
        hi = _atoi(hi_text) if dash else lo
        for value in (lo, hi):
            if not 1 <= value <= 65535:
                raise StatementError(f"{ctx}invalid port '{value}'")
        if hi < lo:
            raise StatementError(f"{ctx}invalid port range '{lo}-{hi}'")
        if host in ("", "*"):
            v6 = prefix in ("ipv6", "tcp6") or (prefix is None and ":" in rest[: rest.rfind(":")])
            out.append(BindAddress(family="ipv6" if v6 else "ipv4", host="::" if v6 else "", port_lo=lo, port_hi=hi))
            continue
        family, address = _host_ip(host, prefix, part, ctx, resolve)
        out.append(BindAddress(family=family, host=address, port_lo=lo, port_hi=hi))
    return out


def _resolve(host: str, version: int | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return None
    families = (socket.AF_INET, socket.AF_INET6) if version is None else (
        (socket.AF_INET,) if version == 4 else (socket.AF_INET6,))
    for fam in families:
        for info in infos:
            if info[0] == fam:
                return ipaddress.ip_address(info[4][0])
    return None


def parse_server_address(text: str, resolve: bool = True) -> ServerAddress:
    """`host[:port]`, `host:+N` / `host:-N` (port offset), `[v6]:port`, `unix@path`, `/path`.

    As in 2.6 the port is whatever follows the last colon, so a bare `::1` is host ':' port 1 (and
    fails to resolve): IPv6 servers need brackets or an explicit port. Host names are resolved now
    (as `haproxy -c` does); `resolve=False` keeps them unresolved.
    """
    prefix, rest = _prefix(text)
    _dgram_or_quic(prefix, text, "")
    if prefix in ("unix", "abns", "uxst") or (prefix is None and text.startswith("/")):
        return ServerAddress(family="abns" if prefix == "abns" else "unix", host=rest)
    if prefix == "fd":
        raise StatementError(f"a file descriptor is not acceptable here in '{text}'")
    if prefix == "sockpair":
        raise StatementError(f"'sockpair@' server addresses are not implemented by haproxy-py in '{text}'")
    if rest.startswith("[") and "]" in rest and not rest[rest.index("]") + 1 :].startswith(":"):
        host, port_text = rest[1 : rest.index("]")], rest[rest.index("]") + 1 :] or None
        if port_text is not None:
            raise StatementError(f"invalid address: '{rest}'")
    else:
        host, port_text = _split_host_port(text, rest, "")
    port: int | None = None
    offset = 0
    if port_text:
        sign = port_text[0] if port_text[0] in "+-" else ""
        digits = port_text[1:] if sign else port_text
        if not digits[:1].isdigit():
            bad = digits[:1]
            raise StatementError(f"invalid character '{bad}' in port number '{port_text}' in '{text}'")
        if "-" in digits:
            raise StatementError(f"port range not permitted here in '{text}'")
        value = _atoi(digits)
        if sign:
            offset = value if sign == "+" else -value
        else:
            if value > 65535:
                raise StatementError(f"invalid port '{value}'")
            port = value if value != 0 else None
    if host in ("", "*"):
        host = "::" if prefix in ("ipv6", "tcp6") else "0.0.0.0"
    want = {"ipv4": 4, "tcp4": 4, "ipv6": 6, "tcp6": 6}.get(prefix or "")
    try:
        ip = ipaddress.ip_address(host)
        if want is None or ip.version == want:
            return ServerAddress(family="ipv6" if ip.version == 6 else "ipv4", host=str(ip), port=port,
                                 port_offset=offset)
    except ValueError:
        pass
    if not resolve:
        return ServerAddress(family="ipv6" if want == 6 else "ipv4", host=host, port=port, port_offset=offset,
                             hostname=host)
    resolved = _resolve(host, want)
    if resolved is None:
        raise StatementError(f"could not resolve address '{host}'.")
    return ServerAddress(
        family="ipv6" if resolved.version == 6 else "ipv4", host=str(resolved), port=port, port_offset=offset, hostname=host
    )
