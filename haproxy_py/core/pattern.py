"""Patterns and how samples are matched against them (HAProxy's pattern.c and map.c).

One `PatternSet` holds the patterns of one ACL line (inline, `-f` files) or the keys of one map
file, parsed for one match method (`-m str|beg|end|sub|reg|dir|dom|ip|int|len|bin|found|bool`, or
`meth` for the method fetch). `find()` answers the index of the matching pattern, which a map
turns into its value. Which entry wins when several match follows HAProxy's indexes: exact and
prefix (`str`, `beg`) and `ip` lookups are trees there, so the longest prefix wins; every other
method walks the list in file order.

Pattern and map files are read once, when the configuration is compiled: one pattern per line
(leading blanks stripped, `#` at column 0 and blank lines skipped); map lines are `key value`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from haproxy_py.core.fetch import (
    ADDR,
    ANY,
    BIN,
    IPV4,
    IPV6,
    KNOWN_METHODS,
    METH,
    SINT,
    STR,
    Sample,
    SampleContext,
    SampleError,
    cast,
    register_converter,
)

MATCH_METHODS = ("found", "bool", "int", "ip", "bin", "len", "str", "sub", "reg", "beg", "end", "dir", "dom", "meth")

# the type a sample is cast to before matching (HAProxy's pat_match_types)
EXPECT_TYPE = {
    "found": ANY, "bool": SINT, "int": SINT, "ip": ADDR, "bin": BIN, "len": STR, "str": STR, "sub": STR,
    "reg": STR, "beg": STR, "end": STR, "dir": STR, "dom": STR, "meth": METH,
}

# the default match method of a sample type (when neither `-m` nor an ACL keyword sets one)
DEFAULT_METHOD = {"bool": "bool", "sint": "int", "ipv4": "ip", "ipv6": "ip", "addr": "ip", "str": "str",
                  "bin": "bin", "meth": "meth", "any": "str"}

INT_OPERATORS = ("eq", "le", "lt", "ge", "gt")

_DIR_DELIMS = b"/?"
_DOM_DELIMS = b"/?.:"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PatternError(SampleError):
    """A pattern (or pattern/map file) cannot be used; the message is for the operator."""


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def match_word(data: bytes, pat: bytes, icase: bool, delims: bytes) -> bool:
    """HAProxy's match_word(): `pat` (delimiters trimmed) appears in `data` as a whole run
    between delimiters or the ends of the string."""
    pat = pat.strip(delims) if pat else pat
    pl = len(pat)
    if pl == 0 or pl > len(data):
        return False
    if icase:
        data, pat = data.lower(), pat.lower()
    start = 0
    n = len(data)
    while True:
        i = data.find(pat, start)
        if i < 0:
            return False
        before_ok = i == 0 or data[i - 1] in delims
        after_ok = i + pl == n or data[i + pl] in delims
        if before_ok and after_ok:
            return True
        start = i + 1


@attrs.define(eq=False)
class PatternSet:
    """The patterns of one ACL expression or one map, for one match method.

    `dotted`: int patterns are versions like "3.1" (req.ssl_ver). `resolve`: ip patterns that are
    not addresses are resolved by DNS (ACL `-n` turns it off).
    """

    method: str
    icase: bool = False
    dotted: bool = False
    resolve: bool = True
    count: int = 0
    _ranges: list[tuple[int | None, int | None, int]] = attrs.field(factory=list)
    _nets: list[tuple[IPNetwork, int]] = attrs.field(factory=list)  # kept longest prefix first
    _masked: list[tuple[int, int, int]] = attrs.field(factory=list)  # v4 non-contiguous masks
    _exact: dict[bytes, int] = attrs.field(factory=dict)
    _strings: list[tuple[bytes, int]] = attrs.field(factory=list)
    _regexes: list[tuple[re.Pattern[bytes], int]] = attrs.field(factory=list)
    _methods: list[tuple[bytes, int]] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        if self.method not in MATCH_METHODS:
            raise PatternError(f"unknown matching method '{self.method}'")

    @property
    def expect_type(self) -> str:
        return EXPECT_TYPE[self.method]

    # -- building ---------------------------------------------------------------------------------
    def add_words(self, words: Iterable[str]) -> None:
        """Add inline ACL patterns; for int/len methods `eq|le|lt|ge|gt` words apply to the
        patterns after them (HAProxy's compatibility operators)."""
        op = "eq"
        numeric = self.method in ("int", "len")
        for w in words:
            if numeric and w in INT_OPERATORS:
                op = w
                continue
            if numeric and op != "eq":
                self._add_int_op(op, w)
            else:
                self.add(w)

    def add(self, text: str) -> int:
        """Parse and add one pattern; returns its index. Raises PatternError."""
        idx = self.count
        m = self.method
        if m in ("found", "bool"):
            pass  # these methods take no pattern; HAProxy ignores any given
        elif m in ("int", "len"):
            lo, hi = self._parse_range(text)
            self._ranges.append((lo, hi, idx))
        elif m == "ip":
            self._add_ip(text, idx)
        elif m == "str":
            key = _b(text).lower() if self.icase else _b(text)
            self._exact.setdefault(key, idx)
        elif m in ("beg", "end", "sub", "dir", "dom"):
            self._strings.append((_b(text), idx))
            if m == "beg" and not self.icase:
                # a prefix tree in HAProxy: the longest matching prefix wins
                self._strings.sort(key=lambda e: -len(e[0]))
        elif m == "reg":
            try:
                rx = re.compile(_b(text), re.IGNORECASE if self.icase else 0)
            except re.error as e:
                raise PatternError(f"regex '{text}' is invalid: {e}") from None
            self._regexes.append((rx, idx))
        elif m == "bin":
            try:
                self._strings.append((bytes.fromhex(text), idx))
            except ValueError:
                raise PatternError(f"'{text}' is not a valid hex string") from None
        elif m == "meth":
            self._methods.append((_b(text), idx))
        self.count += 1
        return idx

    def _parse_number(self, text: str) -> int:
        if self.dotted:  # strl2llrc_dotted(): "3.1" -> (3 << 16) + 1
            major, _, minor = text.partition(".")
            if not major.isdigit() or (minor and not minor.isdigit()):
                raise PatternError(f"'{text}' is not a dotted number")
            return (int(major) << 16) + int(minor or 0)
        if not text.isdigit():
            raise PatternError(f"'{text}' is not a number")
        return int(text)

    def _parse_range(self, text: str) -> tuple[int | None, int | None]:
        """pat_parse_int(): `N`, `N:M`, `:M`, `N:`, with '-' as a separator too (so "-5" is
        ":5": HAProxy has no negative integer patterns)."""
        m = re.search(r"[:-]", text)
        if m is None:
            v = self._parse_number(text)
            return v, v
        lo_s, hi_s = text[: m.start()], text[m.end() :]
        try:
            lo = self._parse_number(lo_s) if lo_s else None
            hi = self._parse_number(hi_s) if hi_s else None
        except PatternError:
            raise PatternError(f"'{text}' is not a valid integer range") from None
        if (lo is None and hi is None) or (lo is not None and hi is not None and lo > hi):
            raise PatternError(f"'{text}' is not a valid integer range")
        return lo, hi

    def _add_int_op(self, op: str, text: str) -> None:
        if ":" in text:
            raise PatternError(f"'{op}' operator cannot be used with a range ('{text}')")
        v = self._parse_number(text)
        lo, hi = {"le": (None, v), "lt": (None, v - 1), "ge": (v, None), "gt": (v + 1, None)}[op]
        self._ranges.append((lo, hi, self.count))
        self.count += 1

    def _add_ip(self, text: str, idx: int) -> None:
        addr, slash, mask = text.partition("/")
        try:
            if slash and "." in mask and ":" not in addr:
                m = int(ipaddress.IPv4Address(mask))
                inv = ~m & 0xFFFFFFFF
                if inv & (inv + 1):  # not contiguous: kept in a list, as HAProxy does
                    self._masked.append((int(ipaddress.IPv4Address(addr)) & m, m, idx))
                    return
                net: IPNetwork = ipaddress.ip_network(f"{addr}/{mask}", strict=False)
            else:
                net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            if slash or not self.resolve:
                raise PatternError(f"'{text}' is not a valid IPv4 or IPv6 address") from None
            net = self._resolve(text)
        self._nets.append((net, idx))
        self._nets.sort(key=lambda e: (e[0].version, -e[0].prefixlen))

    @staticmethod
    def _resolve(name: str) -> IPNetwork:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except OSError:
            raise PatternError(f"'{name}' is not a valid IPv4 or IPv6 address") from None
        infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
        return ipaddress.ip_network(infos[0][4][0])

    # -- matching ---------------------------------------------------------------------------------
    def find(self, smp: Sample) -> int | None:
        """Index of the pattern `smp` matches (0 for found/bool), or None. `smp` is cast first."""
        m = self.method
        if m == "found":
            return 0
        cur = cast(smp, self.expect_type)
        if cur is None:
            return None
        v = cur.value
        if m == "bool":
            return 0 if v else None
        if m == "int":
            return self._in_ranges(v)
        if m == "len":
            return self._in_ranges(len(v))
        if m == "str":
            return self._exact.get(v.lower() if self.icase else v)
        if m == "ip":
            return self._find_ip(cur)
        if m == "reg":
            for rx, idx in self._regexes:
                if rx.search(v):
                    return idx
            return None
        if m == "bin":
            for pat, idx in self._strings:
                if pat == v:
                    return idx
            return None
        if m == "meth":
            return self._find_method(v)
        data = v.lower() if self.icase else v
        for pat, idx in self._strings:
            p = pat.lower() if self.icase else pat
            if m == "beg":
                ok = data.startswith(p)
            elif m == "end":
                ok = data.endswith(p)
            elif m == "sub":
                ok = p in data
            elif m == "dir":
                ok = match_word(data, p, False, _DIR_DELIMS)
            else:
                ok = match_word(data, p, False, _DOM_DELIMS)
            if ok:
                return idx
        return None

    def match(self, smp: Sample) -> bool:
        return self.find(smp) is not None

    def _in_ranges(self, v: int) -> int | None:
        for lo, hi, idx in self._ranges:
            if (lo is None or v >= lo) and (hi is None or v <= hi):
                return idx
        return None

    def _find_ip(self, smp: Sample) -> int | None:
        ip = smp.value
        candidates: list[Any] = [ip]
        if smp.type == IPV4:
            mapped = cast(smp, IPV6)
            if mapped is not None:
                candidates.append(mapped.value)
        else:
            v4 = cast(smp, IPV4)
            if v4 is not None:
                candidates.append(v4.value)
        for cand in candidates:  # the sample's own family first, as HAProxy's trees
            for net, idx in self._nets:
                if net.version == cand.version and cand in net:
                    return idx
        for cand in candidates:
            if cand.version == 4:
                n = int(cand)
                for net_i, mask, idx in self._masked:
                    if n & mask == net_i:
                        return idx
        return None

    def _find_method(self, v: bytes) -> int | None:
        known = v in KNOWN_METHODS
        for pat, idx in self._methods:
            if pat in KNOWN_METHODS:
                if pat == v:
                    return idx
            elif not known and (pat.lower() == v.lower() if self.icase else pat == v):
                return idx
        return None


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def _read_lines(path: str) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\n")
    except OSError as e:
        raise PatternError(f"failed to open pattern file <{path}>: {e.strerror}") from None


def read_pattern_file(path: str) -> list[str]:
    """One pattern per line: `#` at column 0 comments, leading blanks stripped, blank lines skipped
    (trailing blanks are part of the pattern, as in HAProxy)."""
    out = []
    for raw in _read_lines(path):
        if raw[:1] == b"#":
            continue
        line = raw.lstrip(b" \t").split(b"\r", 1)[0]
        if line:
            out.append(line.decode("utf-8", "surrogateescape"))
    return out


def read_map_file(path: str) -> list[tuple[str, str]]:
    """`key value` lines: the key is the first word, the value the rest of the line without its
    surrounding blanks (it may be empty)."""
    out = []
    for raw in _read_lines(path):
        if raw[:1] == b"#":
            continue
        line = raw.lstrip(b" \t").split(b"\r", 1)[0]
        if not line:
            continue
        m = re.match(rb"([^ \t]*)[ \t]*(.*)", line)
        assert m is not None
        key, value = m.group(1), m.group(2).rstrip(b" \t")
        out.append((key.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")))
    return out


# ----------------------------------------------------------------------------------------------
# Maps
# ----------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class MapFile:
    """A map file's keys (as a PatternSet) and the values they lead to."""

    path: str
    patterns: PatternSet
    values: list[bytes]

    def lookup(self, smp: Sample) -> bytes | None:
        idx = self.patterns.find(smp)
        return None if idx is None else self.values[idx]


_MAP_CACHE: dict[tuple[str, str, int, int], MapFile] = {}


def load_map(path: str, method: str) -> MapFile:
    """Read (once per file version) map `path` with keys matched by `method`. Raises PatternError."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise PatternError(f"failed to load map file <{path}>: {e.strerror}") from None
    key = (os.path.abspath(path), method, st.st_mtime_ns, st.st_size)
    cached = _MAP_CACHE.get(key)
    if cached is not None:
        return cached
    pats = PatternSet(method=method)
    values = []
    for n, (k, v) in enumerate(read_map_file(path), 1):
        try:
            pats.add(k)
        except PatternError as e:
            raise PatternError(f"map file <{path}> line {n}: {e}") from None
        values.append(_b(v))
    mf = MapFile(path=path, patterns=pats, values=values)
    _MAP_CACHE[key] = mf
    return mf


_MAP_MATCH = {"str": "str", "beg": "beg", "sub": "sub", "dir": "dir", "dom": "dom", "end": "end", "reg": "reg",
              "regm": "reg", "int": "int", "ip": "ip"}
_MAP_OUT = {"str": STR, "int": SINT, "ip": ADDR}


def _map_value(text: bytes, out: str, path: str) -> Sample:
    if out == STR:
        return Sample(STR, text)
    if out == SINT:
        try:
            return Sample(SINT, int(text))
        except ValueError:
            raise PatternError(f"map <{path}>: '{text.decode(errors='replace')}' is not an integer") from None
    smp = cast(Sample(STR, text), ADDR)
    if smp is None:
        raise PatternError(f"map <{path}>: '{text.decode(errors='replace')}' is not an IP address")
    return smp


def _register_map(name: str, match: str, out: str) -> None:
    out_type = _MAP_OUT[out]

    def prepare(args: list[str]) -> tuple[Any, ...]:
        if not 1 <= len(args) <= 2 or not args[0]:
            raise SampleError(f"converter '{name}' expects a map file and an optional default value")
        mf = load_map(args[0], match)
        values = [_map_value(v, out_type, args[0]) for v in mf.values]
        default = _map_value(_b(args[1]), out_type, args[0]) if len(args) > 1 else None
        return mf, values, default

    def convert(smp: Sample, args: tuple[Any, ...], ctx: SampleContext) -> Sample | None:
        mf, values, default = args
        idx = mf.patterns.find(smp)
        return default if idx is None else values[idx]

    in_type = {"int": SINT, "ip": ADDR}.get(match, STR)
    register_converter(name, convert, in_type, out_type, prepare)


def _register_maps() -> None:
    _register_map("map", "str", "str")
    for m_name, match in _MAP_MATCH.items():
        _register_map(f"map_{m_name}", match, "str")
        for o in _MAP_OUT:
            _register_map(f"map_{m_name}_{o}", match, o)


_register_maps()


def load_patterns(method: str, words: Sequence[str], files: Sequence[str], *, icase: bool = False,
                  dotted: bool = False, resolve: bool = True, files_are_maps: bool = False) -> PatternSet:
    """A PatternSet from inline words and `-f` files (`files_are_maps`: `-M`, keys only)."""
    ps = PatternSet(method=method, icase=icase, dotted=dotted, resolve=resolve)
    for path in files:
        lines = [k for k, _ in read_map_file(path)] if files_are_maps else read_pattern_file(path)
        for line in lines:
            try:
                ps.add(line)
            except PatternError as e:
                raise PatternError(f"{e} in pattern file <{path}>") from None
    ps.add_words(words)
    return ps

