"""Syntax checks of sample expressions (`fetch(args),conv(args),...`) in ACLs, as HAProxy 2.6 does.

HAProxy refuses a configuration whose ACL names an unknown fetch or converter, gives a fetch the
wrong number or type of arguments, or whose patterns cannot be read for the match method (`80x` is
not a number, `1.2.3.4/33` is not an address). Typos there are common, so haproxy-py checks the same
things, with 2.6's messages, against the fetch/converter tables of the 2.6 binary (samples_data).
What a fetch means at run time is the ACL engine's business, not this module's.
"""

from __future__ import annotations

import ipaddress
import os
import re

from haproxy_py.config.conditions import ConditionError
from haproxy_py.config.samples_data import ACL_KEYWORDS, CONVERTERS, FETCHES

# default match method for a plain fetch (no -m), by the type of the expression's last stage
_MATCH_BY_TYPE = {"bool": "bool", "sint": "int", "ipv4": "ip", "ipv6": "ip", "addr": "ip", "str": "str", "meth": "str"}
_INT_OPERATORS = frozenset({"eq", "ge", "gt", "le", "lt"})
_TYPE_NAMES = {"integer": "integer"}


def _parse_args(text: str, i: int, lo: int, hi: int, types: tuple[str, ...]) -> tuple[list[str], int, str | None]:
    """make_arg_list(): `(a,b)` at text[i]; returns (args, position after, error or None)."""
    args: list[str] = []
    if i >= len(text) or text[i] != "(":
        if lo:
            return args, i, f"missing arguments (got 0/{lo}), type '{types[0]}' expected"
        return args, i, None
    i += 1
    if i < len(text) and text[i] == ")":
        if lo:
            return args, i + 1, f"missing arguments (got 0/{lo}), type '{types[0]}' expected"
        return args, i + 1, None
    while True:
        if len(args) >= hi:
            return args, i, f"expected ')' before '{text[i:]}'"
        # quoted parts and backslash escapes may hold ',' and ')' (regsub("(a|b)",x))
        m = re.match(r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|\\.|[^,)'"\\])*""", text[i:])
        assert m is not None
        value = m.group(0)
        args.append(value)
        kind = types[len(args) - 1] if len(args) - 1 < len(types) else "string"
        if kind == "integer" and not re.fullmatch(r"[+-]?[0-9]+", value):
            return args, i, f"failed to parse '{value}' as type 'integer' at position {len(args)}"
        i += m.end()
        if i >= len(text):
            if len(args) < lo:
                return args, i, f"missing arguments (got {len(args)}/{lo}), type '{types[len(args)]}' expected"
            return args, i, "expected ')'"
        if text[i] == ")":
            if len(args) < lo:
                return args, i, f"missing arguments (got {len(args)}/{lo}), type '{types[len(args)]}' expected"
            return args, i + 1, None
        i += 1  # ','


def _parse_expression(text: str, start: int, acl: bool) -> tuple[int, str, str | None]:
    """Parse `fetch(args),conv(args)...` from text[start]; returns (end, output type, alias match).

    `acl`: the expression is a whole ACL word (HAProxy adds "in ACL expression '...'" to messages
    and accepts ACL keyword aliases such as `hdr_beg`); otherwise it is the inside of a log-format
    `%[...]`, which ends at `]`. Raises ConditionError with HAProxy's text.
    """
    expr = text[start:]
    m = re.match(r"[^(,]*" if acl else r"[^(,\])]*", expr)
    assert m is not None
    name = m.group(0)
    if name == "":
        raise ConditionError(f"missing fetch method in ACL expression '{expr}'" if acl else "missing fetch method")
    alias = ACL_KEYWORDS.get(name) if acl else None
    fetch = FETCHES.get(alias[0] if alias else name)
    if fetch is None:
        raise ConditionError(f"unknown fetch method '{name}' in ACL expression '{expr}'" if acl
                             else f"unknown fetch method '{name}'")
    ctx = f"ACL keyword '{name}'" if alias else f"fetch method '{name}'"
    suffix = f" in ACL expression '{expr}'" if acl and not alias else ""
    lo, hi, types, out = fetch
    _args, i, err = _parse_args(expr, m.end(), lo, hi, types)
    if err is not None:
        raise ConditionError(f"{ctx} : {err}{suffix}")
    while i < len(expr) and expr[i] == ",":
        i += 1
        cm = re.match(r"[^(,]*" if acl else r"[^(,\]]*", expr[i:])
        assert cm is not None
        conv_name = cm.group(0).strip()
        i += cm.end()
        if conv_name == "" and acl:
            continue  # an empty stage (`path,` or `path,,lower`) is ignored
        conv = CONVERTERS.get(conv_name)
        if conv is None:
            if alias:
                raise ConditionError(f"{ctx} : unknown converter '{conv_name}'.")
            raise ConditionError(f"unknown converter '{conv_name}'" + (f" in ACL expression '{expr}'" if acl else ""))
        clo, chi, ctypes, cout, _cin = conv  # samples_data rows are (min, max, arg types, out, in)
        if clo and (i >= len(expr) or expr[i] != "("):
            err = f"invalid arg 1 in converter '{conv_name}' : expected type '{ctypes[0]}' at position 1, but got nothing"
        else:
            args, i, err = _parse_args(expr, i, clo, chi, ctypes or ("string",) * chi)
            if err is not None:
                n = len(args) + 1 if err.startswith("missing") else max(len(args), 1)
                err = f"invalid arg {n} in converter '{conv_name}' : {err}"
        if err is not None:
            raise ConditionError(f"{ctx} : {err}." if alias else err + suffix)
        out = cout
    if acl and i < len(expr):
        raise ConditionError(f"missing comma after fetch keyword '{name}' in ACL expression '{expr}'")
    return start + i, out, (alias[1] if alias else None)


def check_sample_expression(expr: str) -> tuple[str, str | None]:
    """Check an ACL's `fetch(args),conv(args)...`; returns (output type, ACL keyword's match or None)."""
    _end, out, match = _parse_expression(expr, 0, acl=True)
    return out, match


# log-format variables of HAProxy 2.6 (`%ci`, `%Tw`...); `%[expr]` embeds a sample expression
LOG_FORMAT_VARIABLES = frozenset(
    "o B CC CS H HM HP HPO HQ HU HV ID ST T Ta Tc Td Th Ti Tl Tq Tr TR Ts Tt Tu Tw U ac b bc bi bp bq ci cp f fc "
    "fi fp ft hr hrl hs hsl lc ms pid r rc rt s sc si sp sq sslc sslv t tr trg trl ts tsc".split()
)


def check_log_format(text: str) -> None:
    """Check a log-format string (`%ci:%cp %[req.hdr(host),lower]`) as HAProxy's parse_logformat_string().

    Raises ConditionError with HAProxy's inner message.
    """
    i = 0
    while i < len(text):
        if text[i] != "%":
            i += 1
            continue
        i += 1
        if i >= len(text):
            raise ConditionError("truncated line after '%'")
        if text[i] == "%":
            i += 1
            continue
        arg_start = i
        if text[i] == "{":
            end = text.find("}", i)
            if end < 0:
                raise ConditionError(f"truncated line after '{text[i + 1:]}'")
            i = end + 1
            if i >= len(text) or not (text[i] == "[" or text[i].isalnum()):
                raise ConditionError(f"parse argument modifier without variable name near '%{text[arg_start:i]}'")
        if text[i] == "[":
            try:
                end, _out, _match = _parse_expression(text, i + 1, acl=False)
            except ConditionError as e:
                raise ConditionError(f"failed to parse sample expression <{text[i + 1:]}> : {e.message}") from None
            if end >= len(text):
                raise ConditionError(f"missing ']' after '{text[i + 1:end]}'")
            if text[end] != "]":
                raise ConditionError(f"expected ']' after '{text[i + 1:end]}', but found '{text[end]}'")
            i = end + 1
            continue
        m = re.match(r"[A-Za-z0-9]*", text[i:])
        assert m is not None
        name = m.group(0)
        if name not in LOG_FORMAT_VARIABLES:
            raise ConditionError(f"no such format variable '{name}'. If you wanted to emit the '%' character "
                                 "verbatim, you need to use '%%'")
        i += m.end()


def _check_int(pattern: str, dotted: bool) -> None:
    """Integer patterns: `N`, `N:M`, `N-M`, `:M`, `N:` (dotted `3.1` versions for SSL versions)."""
    number = r"[0-9]+(?:\.[0-9]+)?" if dotted else r"[0-9]+"
    if not re.fullmatch(rf"(?:{number})?[:-]?(?:{number})?", pattern) or not re.search(r"[0-9]", pattern):
        raise ConditionError(f"'{pattern}' is not a number")


def _check_ip(pattern: str) -> None:
    try:
        ipaddress.ip_network(pattern, strict=False)
        return
    except ValueError:
        pass
    addr, _, mask = pattern.partition("/")
    try:
        ipaddress.IPv4Address(addr)
        ipaddress.IPv4Network(f"0.0.0.0/{mask}")  # a dotted mask
        return
    except ValueError:
        pass
    # a host name: HAProxy resolves it (unless -n); only its syntax is checked here
    if not mask and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", addr) and not re.fullmatch(r"[0-9.]+", addr):
        return
    raise ConditionError(f"'{pattern}' is not a valid IPv4 or IPv6 address")


def check_acl_expression(fetch: str, flags: list[str], patterns: list[str], base_dir: str | None = None) -> None:
    """Check an ACL's sample expression, flags and patterns (HAProxy's parse_acl_expr())."""
    out, alias_match = check_sample_expression(fetch)
    method = None
    for k in range(0, len(flags) - 1):
        if flags[k] == "-m":
            method = flags[k + 1]
        if flags[k] == "-f" and k + 1 < len(flags):  # (-M takes no argument: it changes how -f reads)
            path = flags[k + 1]
            full = path if base_dir is None or os.path.isabs(path) else os.path.join(base_dir, path)
            if not os.access(full, os.R_OK) or os.path.isdir(full):
                raise ConditionError(f"failed to open pattern file <{path}>")
    if method is None:
        method = alias_match or _MATCH_BY_TYPE.get(out)
        if method is None:
            head = re.match(r"[^(,]*", fetch)
            raise ConditionError("matching method must be specified first (using '-m') when using a sample fetch of "
                                 f"this type ('{head.group(0) if head else fetch}').")
    name = fetch.split("(", 1)[0].split(",", 1)[0]
    dotted = ACL_KEYWORDS.get(name, ("",))[0] == "req.ssl_ver"
    for p in patterns:
        if method in ("int", "len") and p not in _INT_OPERATORS:
            _check_int(p, dotted)
        elif method == "ip":
            _check_ip(p)
