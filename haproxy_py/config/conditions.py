"""`if`/`unless` conditions and ACL lines: words -> Condition / Acl values.

Only the structure is decided here (which ACL names, AND/OR/negation, anonymous `{ }` blocks);
what a fetch or a matcher means belongs to the ACL engine.
"""

from __future__ import annotations

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

ACL_FLAGS_WITH_ARG = frozenset({"-f", "-m", "-M", "-u"})
ACL_FLAGS = frozenset({"-i", "-n", "--"}) | ACL_FLAGS_WITH_ARG
MATCH_METHODS = frozenset({"found", "bool", "int", "ip", "bin", "len", "str", "sub", "reg", "beg", "end", "dir", "dom"})


@attrs.define
class AnonymousAcls:
    """Collects the `{ ... }` ACLs of one proxy, naming them so conditions can refer to them."""

    acls: list[Acl] = attrs.field(factory=list)

    def add(self, words: list[str], where: Location) -> str:
        name = f"{{anon#{len(self.acls) + 1}}}"
        self.acls.append(parse_acl([name, *words], where))
        return name


def split_condition(words: list[str]) -> tuple[list[str], list[str] | None]:
    """Split an action's words at `if`/`unless`: (arguments, condition words or None)."""
    for i, w in enumerate(words):
        if w in ("if", "unless"):
            return words[:i], words[i:]
    return words, None


def parse_condition(words: list[str], where: Location, anon: AnonymousAcls) -> Condition:
    """`if|unless term [term...] [or|'||' term...]`, terms being `[!]name` or `[!]{ fetch ... }`."""
    if not words or words[0] not in ("if", "unless"):
        raise StatementError("condition must start with 'if' or 'unless'")
    negate = words[0] == "unless"
    body = words[1:]
    if not body:
        raise StatementError(f"missing condition after '{words[0]}'")
    ors: list[tuple[tuple[bool, str], ...]] = []
    current: list[tuple[bool, str]] = []
    i = 0
    while i < len(body):
        w = body[i]
        if w in ("or", "||"):
            if not current:
                raise StatementError(f"missing ACL before '{w}' in condition")
            ors.append(tuple(current))
            current = []
            i += 1
            continue
        neg = False
        while w.startswith("!"):
            neg = not neg
            w = w[1:]
            if w == "":
                i += 1
                if i >= len(body):
                    raise StatementError("missing ACL after '!' in condition")
                w = body[i]
        if w == "{":
            try:
                end = body.index("}", i + 1)
            except ValueError:
                raise StatementError("missing closing '}' in condition") from None
            inner = body[i + 1 : end]
            if not inner:
                raise StatementError("empty anonymous ACL '{ }' in condition")
            current.append((neg, anon.add(inner, where)))
            i = end + 1
            continue
        if w == "}":
            raise StatementError("unexpected '}' in condition")
        current.append((neg, w))
        i += 1
    if not current:
        raise StatementError("missing ACL at the end of condition")
    ors.append(tuple(current))
    return Condition(negate=negate, terms=tuple(ors), text=" ".join(words))


def parse_acl(words: list[str], where: Location) -> Acl:
    """`name fetch[,conv...] [flags] [operator] pattern...` (words start with the ACL name)."""
    if len(words) < 2:
        raise StatementError("'acl' expects an ACL name and a sample fetch.")
    name, fetch = words[0], words[1]
    if not name.startswith("{anon#"):
        for c in name:
            if not (c.isalnum() or c in "-_.:"):
                raise StatementError(f"invalid character '{c}' in ACL name '{name}'.")
    flags: list[str] = []
    i = 2
    while i < len(words) and words[i].startswith("-"):
        f = words[i]
        if f == "--":
            i += 1
            break
        if f not in ACL_FLAGS:
            break  # e.g. a negative integer pattern
        if f in ACL_FLAGS_WITH_ARG:
            if i + 1 >= len(words):
                raise StatementError(f"missing argument after '{f}' in ACL '{name}'.")
            if f == "-m" and words[i + 1] not in MATCH_METHODS:
                raise StatementError(f"'-m' : unknown match method '{words[i + 1]}' for ACL expression '{fetch}'.")
            flags += [f, words[i + 1]]
            i += 2
        else:
            flags.append(f)
            i += 1
    return Acl(name=name, fetch=fetch, flags=tuple(flags), patterns=tuple(words[i:]), where=where)


def condition_acl_names(cond: Condition) -> list[str]:
    return [name for term in cond.terms for (_neg, name) in term]
