"""Typed arguments of config keywords: times, sizes, integers and addresses.

Each parser takes one word and returns a value, or raises StatementError with HAProxy's wording
(operators search for those messages). The grammars are pyparsing expressions; the failure
position they report is what names the "unexpected character" HAProxy names.
"""

from __future__ import annotations

import ipaddress
import socket

import pyparsing as pp

from haproxy_py.config.errors import StatementError
from haproxy_py.config.model import BindAddress, ServerAddress

_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

_TIME = pp.Regex(r"[0-9]+")("num") + pp.Opt(pp.one_of("us ms s m h d"))("unit") + pp.StringEnd()
_SIZE = pp.Regex(r"[0-9]+")("num") + pp.Opt(pp.one_of("k m g", caseless=True))("unit") + pp.StringEnd()
_PORT_RANGE = pp.Regex(r"[0-9]+")("lo") + pp.Opt(pp.Suppress("-") + pp.Regex(r"[0-9]+")("hi")) + pp.StringEnd()

_TIME_MAX = 2**31 - 1


def parse_time(word: str, what: str) -> int:
    """A HAProxy time (`10s`, `500`, `2m`) in milliseconds; `what` names the keyword for errors."""
    if not word or not word[0].isdigit():
        raise StatementError(f"'{what}' expects an integer value (in milliseconds)")
    try:
        res = _TIME.parse_string(word, parse_all=True)
    except pp.ParseException:
        raise StatementError(f"unexpected character '{_time_bad_char(word)}' in '{what}'") from None
    value = int(res["num"]) * _TIME_UNITS[res.get("unit", "ms") or "ms"]
    value = int(value) if value >= 1 or value == 0 else 1
    if value > _TIME_MAX:
        raise StatementError(
            f"timer overflow in argument '{word}' to '{what}' (maximum value is 2147483647 ms or ~24.8 days)"
        )
    return value


def _time_bad_char(word: str) -> str:
    """The first character HAProxy's parse_time_err() stops at: after the digits and a known unit."""
    i = 0
    while i < len(word) and word[i].isdigit():
        i += 1
    for unit in ("us", "ms", "s", "m", "h", "d"):
        if word.startswith(unit, i):
            i += len(unit)
            break
    return word[i] if i < len(word) else word[-1]


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


def _split_host_port(text: str) -> tuple[str, str | None, str]:
    """Split `host:port`, `[v6]:port`, `::1:80` (port after the last colon); returns family too."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise StatementError(f"invalid address: '{text}'")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise StatementError(f"invalid address: '{text}'")
        return host, (rest[1:] if rest else None), "ipv6"
    if text.count(":") == 0:
        return text, None, "ipv4"
    host, _, port = text.rpartition(":")
    family = "ipv6" if ":" in host else "ipv4"
    return host, port, family


def _prefix(text: str) -> tuple[str | None, str]:
    for p in ("ipv4@", "ipv6@", "unix@", "abns@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "tcp@", "tcp4@", "tcp6@"):
        if text.startswith(p):
            return p[:-1], text[len(p) :]
    return None, text


def parse_bind_address(text: str, kw: str = "bind") -> list[BindAddress]:
    """Every form `bind` accepts: `*:80`, `:80`, `[::1]:80`, `:::80`, ranges, lists, unix, fd@."""
    out: list[BindAddress] = []
    for part in text.split(","):
        if part == "":
            raise StatementError(f"'{kw}' : missing address in '{text}'")
        prefix, rest = _prefix(part)
        if prefix in ("fd", "sockpair"):
            if not rest.isdigit():
                raise StatementError(f"'{kw}' : invalid file descriptor '{rest}' in '{part}'")
            out.append(BindAddress(family=prefix, fd=int(rest)))
            continue
        if prefix in ("unix", "abns") or (prefix is None and part.startswith("/")):
            if not rest:
                raise StatementError(f"'{kw}' : missing path in '{part}'")
            out.append(BindAddress(family=prefix or "unix", host=rest))
            continue
        host, port, family = _split_host_port(rest)
        if prefix in ("ipv4", "tcp4", "udp4"):
            family = "ipv4"
        elif prefix in ("ipv6", "tcp6", "udp6"):
            family = "ipv6"
        if port is None or port == "":
            raise StatementError(f"'{kw}' : missing port specification in '{part}'")
        try:
            res = _PORT_RANGE.parse_string(port, parse_all=True)
        except pp.ParseException:
            raise StatementError(f"'{kw}' : invalid port '{port}'") from None
        lo = int(res["lo"])
        hi = int(res.get("hi", lo))
        if not 1 <= lo <= 65535:
            raise StatementError(f"'{kw}' : invalid port '{lo}'")
        if not 1 <= hi <= 65535:
            raise StatementError(f"'{kw}' : invalid port '{hi}'")
        if hi < lo:
            raise StatementError(f"'{kw}' : invalid port range '{port}'")
        if host in ("", "*"):
            host = "" if family == "ipv4" else host
            if family == "ipv6" and host in ("", "*"):
                host = "::"
            out.append(BindAddress(family=family, host="" if family == "ipv4" else host, port_lo=lo, port_hi=hi))
            continue
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            resolved = _resolve(host)
            if resolved is None:
                raise StatementError(f"'{kw}' : invalid address: '{host}' in '{part}'") from None
            ip = resolved
        fam = "ipv6" if ip.version == 6 else "ipv4"
        out.append(BindAddress(family=fam, host=str(ip), port_lo=lo, port_hi=hi))
    return out


def _resolve(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for fam in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == fam:
                return ipaddress.ip_address(info[4][0])
    return None


def parse_server_address(text: str, resolve: bool = True) -> ServerAddress:
    """`host[:port]`, `host:+N` / `host:-N` (port offset), `[v6]:port`, `unix@path`, `/path`.

    Host names are resolved now (as `haproxy -c` does); `resolve=False` keeps them unresolved.
    """
    prefix, rest = _prefix(text)
    if prefix in ("unix", "abns") or (prefix is None and text.startswith("/")):
        return ServerAddress(family=prefix or "unix", host=rest)
    if prefix in ("fd", "sockpair"):
        raise StatementError(f"invalid address: '{text}'")
    host, port_text, family = _split_host_port(rest)
    if family == "ipv6" and not text.startswith("[") and port_text is not None:
        # "::1" alone is an address without a port; "::1:80" has one only if host parses as v6
        try:
            ipaddress.IPv6Address(rest)
            host, port_text = rest, None
        except ValueError:
            pass
    port: int | None = None
    offset = 0
    if port_text is not None and port_text != "":
        sign = port_text[0] if port_text[0] in "+-" else ""
        digits = port_text[1:] if sign else port_text
        for c in digits:
            if not c.isdigit():
                raise StatementError(f"invalid character '{c}' in port number '{port_text}' in '{text}'\n")
        if digits == "":
            raise StatementError(f"invalid port '{port_text}'")
        value = int(digits)
        if sign:
            offset = value if sign == "+" else -value
        else:
            if not 0 <= value <= 65535:
                raise StatementError(f"invalid port '{port_text}'")
            port = value if value != 0 else None
    if host in ("", "*"):
        host = "0.0.0.0"
    try:
        ip = ipaddress.ip_address(host)
        return ServerAddress(family="ipv6" if ip.version == 6 else "ipv4", host=str(ip), port=port, port_offset=offset)
    except ValueError:
        pass
    if not resolve:
        return ServerAddress(family="ipv4", host=host, port=port, port_offset=offset, hostname=host)
    resolved = _resolve(host)
    if resolved is None:
        raise StatementError(f"could not resolve address '{host}'.")
    return ServerAddress(
        family="ipv6" if resolved.version == 6 else "ipv4", host=str(resolved), port=port, port_offset=offset, hostname=host
    )
