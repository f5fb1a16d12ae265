"""`if`/`unless` conditions and ACL lines: words -> Condition / Acl values.

Only the structure is decided here (which ACL names, AND/OR/negation, anonymous `{ }` blocks);
what a fetch or a matcher means belongs to the ACL engine. The parser is as lenient as HAProxy 2.6's
`parse_acl_cond()`: stray `or`/`||`, a dangling `!` or an empty condition are accepted, and the
only structural errors are an unclosed `{` and an unknown ACL name (checked by the caller, which
knows which ACLs the section declared so far).
"""

from __future__ import annotations

from collections.abc import Callable, Container

import attrs

from haproxy_py.config.errors import Location, StatementError
from haproxy_py.config.model import Acl, Condition

PREDEFINED_ACLS = frozenset(
    {
        "TRUE", "FALSE", "HTTP", "HTTP_1.0", "HTTP_1.1", "HTTP_2.0", "HTTP_CONTENT", "HTTP_URL_ABS",
        "HTTP_URL_SLASH", "HTTP_URL_STAR", "LOCALHOST", "METH_CONNECT", "METH_DELETE", "METH_GET",
        "METH_HEAD", "METH_OPTIONS", "METH_POST", "METH_PUT", "METH_TRACE", "RDP_COOKIE", "REQ_CONTENT",
        "WAIT_END",
    }
)

ACL_FLAGS_WITH_ARG = frozenset({"-f", "-m", "-u"})
ACL_FLAGS = frozenset({"-i", "-n", "-M", "--"}) | ACL_FLAGS_WITH_ARG  # -M: read -f files as maps
MATCH_METHODS = frozenset({"found", "bool", "int", "ip", "bin", "len", "str", "sub", "reg", "beg", "end", "dir", "dom"})

# Validates an ACL's sample expression; raises ConditionError with HAProxy's text. Set by keywords
# (which knows the fetch/converter tables) so that this module stays free of them.
FetchChecker = Callable[[str, list[str], list[str]], None]


class ConditionError(StatementError):
    """A condition or ACL could not be parsed; `message` is HAProxy's inner text (the caller adds
    the context HAProxy puts around it, which differs for every rule family)."""


@attrs.define
class AnonymousAcls:
    """Collects the `{ ... }` ACLs of one proxy, naming them so conditions can refer to them."""

    acls: list[Acl] = attrs.field(factory=list)
    # anonymous ACLs inherited from a defaults section keep their names; new ones number after them
    offset: int = 0

    def add(self, words: list[str], where: Location, check: FetchChecker | None = None) -> str:
        name = f"{{anon#{self.offset + len(self.acls) + 1}}}"
        self.acls.append(parse_acl_expression(name, words, where, check))
        return name


def split_condition(words: list[str]) -> tuple[list[str], list[str] | None]:
    """Split an action's words at `if`/`unless`: (arguments, condition words or None)."""
    for i, w in enumerate(words):
        if w in ("if", "unless"):
            return words[:i], words[i:]
    return words, None


def parse_condition(words: list[str], where: Location, anon: AnonymousAcls,
                    known: Container[str] | None = None, check: FetchChecker | None = None) -> Condition:
    """`if|unless term [term...] [or|'||' term...]`, terms being `[!]name` or `[!]{ fetch ... }`.

    `known` (when given) holds the ACL names the section declared so far; any other name (not
    predefined) is "no such ACL". Raises ConditionError.
    """
    if not words or words[0] not in ("if", "unless"):
        raise ConditionError("condition must start with 'if' or 'unless'")
    negate = words[0] == "unless"
    body = words[1:]
    ors: list[tuple[tuple[bool, str], ...]] = []
    current: list[tuple[bool, str]] = []
    neg = False
    i = 0
    while i < len(body):
        w = body[i]
        if w in ("or", "||"):
            if current:
                ors.append(tuple(current))
            current = []
            neg = False
            i += 1
            continue
        while w.startswith("!"):
            neg = not neg
            w = w[1:]
        if w == "":
            i += 1
            continue
        if w == "{":
            try:
                end = body.index("}", i + 1)
            except ValueError:
                raise ConditionError("missing closing '}' in condition") from None
            current.append((neg, anon.add(body[i + 1 : end], where, check)))
            neg = False
            i = end + 1
            continue
        if known is not None and w not in PREDEFINED_ACLS and w not in known:
            raise ConditionError(f"no such ACL : '{w}'")
        current.append((neg, w))
        neg = False
        i += 1
    if current:
        ors.append(tuple(current))
    return Condition(negate=negate, terms=tuple(ors), text=" ".join(words))


def check_acl_name(name: str) -> None:
    """ACL names: letters, digits, '-', '_', '.', ':' (HAProxy's invalid_char())."""
    for c in name:
        if not (c.isascii() and (c.isalnum() or c in "-_.:")):
            raise StatementError(f"character '{c}' is not permitted in acl name '{name}'.")


def parse_acl_expression(name: str, words: list[str], where: Location, check: FetchChecker | None = None) -> Acl:
    """`fetch[,conv...] [flags] [operator] pattern...` of ACL `name`. Raises ConditionError."""
    fetch = words[0] if words else ""
    if fetch == "":
        raise ConditionError("missing fetch method in ACL expression ''")
    flags: list[str] = []
    i = 1
    while i < len(words) and words[i].startswith("-"):
        f = words[i]
        if f == "--":
            i += 1
            break
        if f not in ACL_FLAGS:
            raise ConditionError(
                f"'{f}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
            )
        if f in ACL_FLAGS_WITH_ARG:
            value = words[i + 1] if i + 1 < len(words) else ""
            if f == "-m" and value not in MATCH_METHODS:
                raise ConditionError(f"unknown matching method '{value}' when parsing ACL expression")
            if f == "-f" and value == "":
                raise ConditionError("failed to open pattern file <>")
            flags += [f, value]
            i += 2
        else:
            flags.append(f)
            i += 1
    patterns = words[i:]
    if check is not None:
        check(fetch, flags, patterns)
    return Acl(name=name, fetch=fetch, flags=tuple(flags), patterns=tuple(patterns), where=where)


def parse_acl(words: list[str], where: Location, check: FetchChecker | None = None) -> Acl:
    """`name fetch[,conv...] [flags] [operator] pattern...` (words start with the ACL name).

    Raises StatementError with HAProxy's full message.
    """
    name = words[0] if words else ""
    if not name.startswith("{anon#"):
        check_acl_name(name)
    try:
        return parse_acl_expression(name, words[1:], where, check)
    except ConditionError as e:
        raise StatementError(f"error detected while parsing ACL '{name}' : {e.message}.") from None


def condition_acl_names(cond: Condition) -> list[str]:
    return [name for term in cond.terms for (_neg, name) in term]
