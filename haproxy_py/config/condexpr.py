"""The expressions of `.if`/`.elif` blocks and of `haproxy -cc`: HAProxy's config conditions.

`defined(VAR)`, `feature(NAME)`, `streq(a,b)`, `strneq(a,b)`, `strstr(a,b)`, `version_atleast(v)`,
`version_before(v)`, integers (non-zero is true), `!`, `&&`, `||` and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from haproxy_py import version as _version

_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z_][A-Za-z0-9_]*)\(((?:[^()\\]|\\.)*)\)|(-?[0-9]+)|(\S+))")


class ConditionSyntaxError(ValueError):
    """The expression cannot be parsed (exit status 2 for -cc)."""


def _split_args(text: str) -> list[str]:
    args: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "\"'":
            quote = c
        elif c == ",":
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    args.append("".join(cur).strip())
    return args


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)
    if not parts:
        raise ConditionSyntaxError(f"invalid version '{text}'")
    return tuple(int(p) for p in parts[:3])


def evaluate(expr: str, env: Mapping[str, str]) -> bool:
    """True/False for a condition; raises ConditionSyntaxError when it does not parse."""
    tokens: list[tuple[str, str, list[str]]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionSyntaxError(f"unparsable condition at '{text[pos:]}'")
        op, fn, fargs, num, other = m.groups()
        if op:
            tokens.append(("op", op, []))
        elif fn:
            tokens.append(("fn", fn, _split_args(fargs) if fargs.strip() else []))
        elif num is not None:
            tokens.append(("num", num, []))
        elif other is not None:
            raise ConditionSyntaxError(f"unparsable term '{other}'")
        pos = m.end()
    if not tokens:
        return False
    idx = 0

    def peek() -> tuple[str, str, list[str]] | None:
        return tokens[idx] if idx < len(tokens) else None

    def take() -> tuple[str, str, list[str]]:
        nonlocal idx
        if idx >= len(tokens):
            raise ConditionSyntaxError("unexpected end of condition")
        idx += 1
        return tokens[idx - 1]

    def term() -> bool:
        kind, value, args = take()
        if kind == "op" and value == "!":
            return not term()
        if kind == "op" and value == "(":
            result = or_expr()
            if take()[1] != ")":
                raise ConditionSyntaxError("missing closing parenthesis")
            return result
        if kind == "num":
            return int(value) != 0
        if kind == "fn":
            return _function(value, args, env)
        raise ConditionSyntaxError(f"unexpected '{value}'")

    def and_expr() -> bool:
        result = term()
        while (t := peek()) is not None and t[1] == "&&":
            take()
            rhs = term()
            result = result and rhs
        return result

    def or_expr() -> bool:
        result = and_expr()
        while (t := peek()) is not None and t[1] == "||":
            take()
            rhs = and_expr()
            result = result or rhs
        return result

    result = or_expr()
    if idx != len(tokens):
        raise ConditionSyntaxError(f"unexpected '{tokens[idx][1]}' after condition")
    return result


def _function(name: str, args: list[str], env: Mapping[str, str]) -> bool:
    def need(n: int) -> None:
        if len(args) != n:
            raise ConditionSyntaxError(f"'{name}' expects {n} argument(s)")

    if name == "defined":
        need(1)
        return args[0] in env
    if name == "feature":
        need(1)
        return args[0].upper() in _version.FEATURES_ENABLED
    if name == "streq":
        need(2)
        return args[0] == args[1]
    if name == "strneq":
        need(2)
        return args[0] != args[1]
    if name == "strstr":
        need(2)
        return args[1] in args[0]
    if name == "version_atleast":
        need(1)
        return _version_tuple(_version.HAPROXY_VERSION) >= _version_tuple(args[0])
    if name == "version_before":
        need(1)
        return _version_tuple(_version.HAPROXY_VERSION) < _version_tuple(args[0])
    if name in ("enabled", "openssl_version_atleast", "openssl_version_before", "ssllib_name_startswith",
                "awslc_api_atleast", "awslc_api_before"):
        return False
    raise ConditionSyntaxError(f"unknown term '{name}'")
