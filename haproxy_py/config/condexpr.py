"""The expressions of `.if`/`.elif` blocks and of `haproxy -cc`: HAProxy 2.6's config conditions.

Grammar (HAProxy 2.6 `cfgcond.c`, reproduced with its error messages and positions because scripts
and operators rely on them): an expression is terms joined by `&&` (binds tighter) and `||`; a term
is any number of `!`, then an integer as C `strtol(.., 0)` reads it (non-zero is true; `0x10`, `+1`
and `-1` are numbers), a parenthesised expression, or a predicate `name(args)`.

Predicates in 2.6: `defined`, `feature`, `streq`, `strneq`, `version_atleast`, `version_before`,
`openssl_version_atleast`, `openssl_version_before`, `ssllib_name_startswith`. (`strstr`,
`enabled` and the `awslc_*` ones only exist in later versions: 2.6 calls them unparsable.)

Predicate arguments are split on `,`; quotes group and are removed, spaces are kept, a backslash is
an ordinary character. The whole expression is parsed even where `&&`/`||` would short-circuit, so
an error on the right-hand side is always reported.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

from haproxy_py import version as _version

_BLANKS = " \t"
# name -> (minimum, maximum) number of arguments
_PREDICATES: dict[str, tuple[int, int]] = {
    "defined": (0, 1),
    "feature": (0, 1),
    "streq": (2, 2),
    "strneq": (2, 2),
    "version_atleast": (0, 1),
    "version_before": (0, 1),
    "openssl_version_atleast": (0, 1),
    "openssl_version_before": (0, 1),
    "ssllib_name_startswith": (0, 1),
}
_IDENT = re.compile(r"[A-Za-z0-9_]+")
_STRTOL = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
MAX_RECURSION = 1024


class ConditionSyntaxError(ValueError):
    """The expression cannot be parsed (`-cc` exits with status 2, `.if` is a fatal alert).

    `message` is HAProxy's text; `position` the 1-based offset in the expression of the character
    HAProxy points at (None when it does not point anywhere); `prefix` is what `-cc` prints before
    the message ("Failed to evaluate condition: " or, for quoting errors, "Syntax Error in
    condition: ").
    """

    def __init__(self, message: str, position: int | None = None,
                 prefix: str = "Failed to evaluate condition: ") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.prefix = prefix

    def cc_alert(self) -> str:
        """The alert text `haproxy -cc` prints (after `config : `)."""
        return f"{self.prefix}{self.message}"


class _Parser:
    """Recursive descent over the expression text, mirroring the C parser's pointer moves."""

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.s = text
        self.env = env

    def fail(self, message: str, at: int) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, at + 1)

    def skip(self, i: int) -> int:
        while i < len(self.s) and self.s[i] in _BLANKS:
            i += 1
        return i

    # Each parse_* returns (status, value, position): status 1 parsed, 0 nothing to parse. Errors raise.
    def parse_expr(self, i: int, depth: int) -> tuple[int, bool, int]:
        if i >= len(self.s):
            return 0, False, i
        status, left, j = self.parse_and(i, depth - 1)
        if status == 0:
            raise self.fail(f"unparsable conditional expression '{self.s[j:]}'", j)
        j = self.skip(j)
        if not self.s.startswith("||", j):
            return 1, left, j
        k = self.skip(j + 2)
        status, right, k2 = self.parse_expr(k, depth - 1)
        if status == 0:
            return 0, False, j
        return 1, left or right, k2

    def parse_and(self, i: int, depth: int) -> tuple[int, bool, int]:
        if i >= len(self.s):
            return 0, False, i
        if depth <= 0:
            raise self.fail(f"unparsable conditional sub-expression '{self.s[i:]}'", i)
        status, left, j = self.parse_term(i, depth - 1)
        if status == 0:
            raise self.fail(f"unparsable conditional sub-expression '{self.s[i:]}'", i)
        j = self.skip(j)
        if not self.s.startswith("&&", j):
            return 1, left, j
        k = self.skip(j + 2)
        status, right, k2 = self.parse_and(k, depth - 1)
        if status == 0:
            return 0, False, j
        return 1, left and right, k2

    def parse_term(self, start: int, depth: int) -> tuple[int, bool, int]:
        i = self.skip(start)
        if i >= len(self.s):
            return 0, False, start
        if depth <= 0:
            raise self.fail(f"unparsable conditional expression '{self.s[start:]}'", start)
        neg = False
        while i < len(self.s) and self.s[i] == "!":
            neg = not neg
            i = self.skip(i + 1)
        m = _STRTOL.match(self.s, i)
        if m:
            digits = m.group(0).strip()
            value = int(digits, 0) if not re.fullmatch(r"[+-]?0[0-7]+", digits) else int(digits, 8)
            return 1, (value != 0) != neg, m.end()
        if i < len(self.s) and self.s[i] == "(":
            status, value, j = self.parse_expr(self.skip(i + 1), depth - 1)
            if status == 0:
                raise self.fail(f"unparsable conditional expression '{self.s[start:]}'", start)
            j = self.skip(j)
            if j >= len(self.s) or self.s[j] != ")":
                raise self.fail(f"expected ')' after conditional expression '{self.s[start:]}'", start)
            return 1, value != neg, self.skip(j + 1)
        ident = _IDENT.match(self.s, i)
        if ident and ident.group(0) in _PREDICATES:
            name = ident.group(0)
            args, j = self.parse_args(name, ident.end())
            return 1, _predicate(name, args, self.env) != neg, j
        raise self.fail(f"unparsable conditional expression '{self.s[start:]}'", start)

    def parse_args(self, name: str, i: int) -> tuple[list[str], int]:
        """HAProxy's make_arg_list() for string arguments: `(a,b)`; no parenthesis means no argument."""
        lo, hi = _PREDICATES[name]
        where = f" in argument 1 of predicate '{name}' used in conditional expression"
        args: list[str] = []
        if i >= len(self.s) or self.s[i] != "(":
            if lo:
                raise self.fail(f"missing arguments (got 1/{lo}), type 'string' expected{where}", i)
            return args, i
        i += 1
        while True:
            cur: list[str] = []
            quote = ""
            while i < len(self.s):
                c = self.s[i]
                if quote:
                    if c == quote:
                        quote = ""
                    else:
                        cur.append(c)
                elif c in "'\"":
                    quote = c
                elif c in ",)":
                    break
                else:
                    cur.append(c)
                i += 1
            args.append("".join(cur))
            if i >= len(self.s):
                if len(args) < lo:
                    raise self.fail(f"missing arguments (got {len(args)}/{lo}), type 'string' expected{where}", i)
                raise self.fail(f"expected ')'{where}", i)
            if self.s[i] == ")":
                if len(args) < lo:
                    raise self.fail(f"missing arguments (got {len(args)}/{lo}), type 'string' expected{where}", i)
                return args, i + 1
            # a comma
            if len(args) >= hi:
                raise self.fail(f"expected ')' before '{self.s[i:]}'{where}", i)
            i += 1


def _version_key(text: str) -> tuple[int, ...]:
    """Order versions as HAProxy does: x.y.z, then -devN < -preN < -rcN < release < -N (later commits)."""
    m = re.match(r"(\d*)(?:\.(\d*))?(?:\.(\d*))?(?:-(dev|pre|rc)?(\d*))?", text)
    assert m is not None  # the pattern matches the empty string
    major, minor, patch, level, count = m.groups()
    rank = {"dev": 0, "pre": 1, "rc": 2}.get(level or "", 4 if count else 3)
    return (int(major or 0), int(minor or 0), int(patch or 0), rank, int(count or 0))


def _predicate(name: str, args: list[str], env: Mapping[str, str]) -> bool:
    arg = args[0] if args else ""
    if name == "defined":
        return bool(args) and arg in env
    if name == "feature":
        return arg == "" or arg in _version.FEATURES_ENABLED
    if name == "streq":
        return args[0] == args[1]
    if name == "strneq":
        return args[0] != args[1]
    if name == "version_atleast":
        return _version_key(_version.HAPROXY_VERSION) >= _version_key(arg)
    if name == "version_before":
        return _version_key(_version.HAPROXY_VERSION) < _version_key(arg)
    # haproxy-py has no TLS library: the OpenSSL predicates are false
    return False


def evaluate_text(text: str, env: Mapping[str, str]) -> bool:
    """Evaluate an already tokenized condition (the words after `.if`, joined by one space).

    An empty condition is false. Raises ConditionSyntaxError with HAProxy's message and position.
    """
    if text == "":
        return False
    parser = _Parser(text, env)
    # HAProxy allows 1024 levels of recursion (about 340 nested parentheses); Python's default
    # stack limit is lower than what that needs
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * MAX_RECURSION))
    try:
        status, value, end = parser.parse_expr(0, MAX_RECURSION)
    finally:
        sys.setrecursionlimit(limit)
    if status == 0:
        raise ConditionSyntaxError(f"unparsable conditional expression '{text}'", end + 1)
    end = parser.skip(end)
    if end < len(text):
        raise ConditionSyntaxError(
            f"unexpected character '{text[end]}' at the end of conditional expression '{text}'", end + 1
        )
    return value


def evaluate(expr: str, env: Mapping[str, str]) -> bool:
    """`haproxy -cc EXPR`: tokenize EXPR like a config line (quotes, `"$VAR"`), then evaluate it.

    True/False, or ConditionSyntaxError (exit status 2; print `config : ` + `e.cc_alert()`).
    """
    from haproxy_py.config.errors import StatementError
    from haproxy_py.config.lexer import MAX_WORDS, tokenize

    try:
        words = tokenize(expr, env, max_words=None)
    except StatementError as e:
        if e.message.startswith("unmatched quote"):
            raise ConditionSyntaxError("Unmatched quote.", None, "Syntax Error in condition: ") from None
        raise ConditionSyntaxError(e.message.split(":\n")[0] + ".", None, "Syntax Error in condition: ") from None
    if len(words) > MAX_WORDS:
        raise ConditionSyntaxError("Too many words.", None, "Error in condition: ")
    # blanks alone give no word, yet 2.6 reports them as an unparsable sub-expression
    return evaluate_text(" ".join(words) if words else expr, env)
