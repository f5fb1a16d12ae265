"""ACLs, conditions and the rule lists that use them (HAProxy's acl.c, tcp_rules.c, switching rules).

The configuration keeps ACLs as text (`config.model.Acl`: fetch, flags, patterns) and conditions as
names (`config.model.Condition`: an OR of ANDs of possibly negated ACL names). `AclSet` compiles a
proxy's ACL lines once (all lines of one name are ORed, whatever their position, as HAProxy links
them to one ACL) and turns each condition into a `CompiledCondition` whose `match(ctx)` answers:

* True / False: the condition holds or not (`unless` already applied);
* None: not enough data yet. Only possible while `ctx.final` is False; content inspection then
  waits for more bytes or for the inspect-delay to expire.

This three-valued logic is HAProxy's ACL_TEST_PASS / MISS / FAIL, kept as the integers 3 / 1 / 0
so that OR is `|` and AND is `&` exactly as in acl_exec_cond().
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence

import attrs

from haproxy_py.config.errors import Location
from haproxy_py.config.model import Acl, Condition, Proxy, Rule, UseBackend
from haproxy_py.core.fetch import (
    STR,
    Sample,
    SampleContext,
    SampleError,
    SampleExpr,
    Template,
    compile_expr,
    compile_template,
    split_call,
    split_top,
)
from haproxy_py.core.pattern import DEFAULT_METHOD, MATCH_METHODS, PatternError, PatternSet, load_patterns

PASS = 3
MISS = 1
FAIL = 0


def _neg(res: int) -> int:
    """Negation keeps MISS: unknown stays unknown."""
    return res if res == MISS else PASS - res


class AclError(ValueError):
    """An ACL, condition or rule cannot be compiled. `where` is the config line, when known."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"[{self.where.file}:{self.where.line}] : {self.message}" if self.where else self.message


# ACL keywords that are not plain sample fetches: keyword -> (fetch, match method, dotted versions).
# The suffix forms (path_beg, hdr_dom, ...) imply their method (HAProxy's acl_kw lists).
ACL_KEYWORDS: dict[str, tuple[str, str, bool]] = {}
_SUFFIX_METHODS = ("beg", "dir", "dom", "end", "len", "reg", "sub")
for _kw, _fetch in (("base", "base"), ("cook", "req.cook"), ("hdr", "req.hdr"), ("path", "path"),
                    ("url", "url"), ("urlp", "urlp"), ("shdr", "res.hdr"), ("scook", "res.cook")):
    ACL_KEYWORDS[_kw] = (_fetch, "str", False)
    for _m in _SUFFIX_METHODS:
        ACL_KEYWORDS[f"{_kw}_{_m}"] = (_fetch, _m, False)
ACL_KEYWORDS.update({
    "method": ("method", "meth", False),
    "req_ver": ("req.ver", "str", False),
    "resp_ver": ("res.ver", "str", False),
    "req_ssl_sni": ("req.ssl_sni", "str", False),
    "req_ssl_ver": ("req.ssl_ver", "int", True),
    "req.ssl_ver": ("req.ssl_ver", "int", True),
    "payload": ("req.payload", "bin", False),
    "payload_lv": ("req.payload_lv", "bin", False),
})

# HAProxy's built-in ACLs (acl.c acl_builtin), usable unless the proxy defines the same name.
PREDEFINED: dict[str, tuple[str, ...]] = {
    "TRUE": ("always_true",),
    "FALSE": ("always_false",),
    "LOCALHOST": ("src", "127.0.0.1/8", "::1"),
    "HTTP": ("req.proto_http",),
    "HTTP_1.0": ("req.ver", "1.0"),
    "HTTP_1.1": ("req.ver", "1.1"),
    "HTTP_2.0": ("req.ver", "2.0"),
    "METH_CONNECT": ("method", "CONNECT"),
    "METH_DELETE": ("method", "DELETE"),
    "METH_GET": ("method", "GET", "HEAD"),
    "METH_HEAD": ("method", "HEAD"),
    "METH_OPTIONS": ("method", "OPTIONS"),
    "METH_POST": ("method", "POST"),
    "METH_PUT": ("method", "PUT"),
    "METH_TRACE": ("method", "TRACE"),
    "HTTP_URL_ABS": ("url_reg", "^[^/:]*://"),
    "HTTP_URL_SLASH": ("url_beg", "/"),
    "HTTP_URL_STAR": ("url", "*"),
    "HTTP_CONTENT": ("hdr_val(content-length)", "gt", "0"),
    "RDP_COOKIE": ("req.rdp_cookie_cnt", "gt", "0"),
    "REQ_CONTENT": ("req.len", "gt", "0"),
    "WAIT_END": ("wait_end",),
}
_BUILTIN = Location("<builtin>", 0)


@attrs.frozen(eq=False)
class AclExpr:
    """One ACL line: a sample expression and the patterns its values are matched against."""

    expr: SampleExpr
    patterns: PatternSet
    where: Location

    def execute(self, ctx: SampleContext) -> int:
        """PASS if one value matches, MISS if none does yet but may once more data arrives."""
        fetched = self.expr.fetch_raw(ctx, True)
        waiting = MISS if fetched.may_change and not ctx.final else FAIL
        if not fetched.samples:
            return waiting
        for smp in fetched.samples:
            value = self.expr.convert(smp, ctx) if self.expr.converters else smp
            if value is None:
                return waiting  # a failing converter ends this line (HAProxy moves to the next)
            if self.patterns.match(value):
                return PASS
        return waiting


@attrs.frozen(eq=False)
class CompiledAcl:
    """A named ACL: its lines, ORed."""

    name: str
    lines: tuple[AclExpr, ...]

    def execute(self, ctx: SampleContext) -> int:
        res = FAIL
        for line in self.lines:
            res |= line.execute(ctx)
            if res == PASS:
                break
        return res


@attrs.frozen(eq=False)
class CompiledCondition:
    """`if|unless` terms: an OR of ANDs of (negated, ACL)."""

    negate: bool
    terms: tuple[tuple[tuple[bool, CompiledAcl], ...], ...]
    text: str = ""

    def execute(self, ctx: SampleContext) -> int:
        """PASS/MISS/FAIL of the terms, before `unless` (HAProxy's acl_exec_cond)."""
        cond_res = FAIL
        for suite in self.terms:
            suite_res = PASS
            for negated, acl in suite:
                res = acl.execute(ctx)
                if negated:
                    res = _neg(res)
                suite_res &= res
                if suite_res == FAIL:
                    break
            cond_res |= suite_res
            if cond_res == PASS:
                break
        return cond_res

    def match(self, ctx: SampleContext) -> bool | None:
        """True/False once decided (`unless` applied); None while data may still change it."""
        res = self.execute(ctx)
        if res == MISS:
            return None
        return (res == PASS) != self.negate


def _parse_flags(acl: Acl) -> tuple[bool, list[str], str | None, bool, bool]:
    """(-i, -f files, -m method, -n, -M) of an ACL line (the config layer checked their syntax)."""
    icase, files, method, no_dns, as_map = False, [], None, False, False
    flags = list(acl.flags)
    i = 0
    while i < len(flags):
        f = flags[i]
        if f == "-i":
            icase = True
        elif f == "-n":
            no_dns = True
        elif f == "-M":
            as_map = True
        elif f in ("-f", "-m", "-u"):
            value = flags[i + 1] if i + 1 < len(flags) else ""
            i += 1
            if f == "-f":
                files.append(value)
            elif f == "-m":
                method = value
        i += 1
    return icase, files, method, no_dns, as_map


def compile_acl_line(acl: Acl) -> AclExpr:
    """Compile one `acl` line (or anonymous `{ }` ACL). Raises AclError."""
    icase, files, method, no_dns, as_map = _parse_flags(acl)
    parts = split_top(acl.fetch)
    try:
        kw_name, _ = split_call(parts[0])
    except SampleError as e:
        raise AclError(f"error detected while parsing ACL '{acl.name}' : {e}.", acl.where) from None
    kw = ACL_KEYWORDS.get(kw_name)
    text = acl.fetch
    if kw is not None:
        text = ",".join([kw[0] + parts[0][len(kw_name):], *parts[1:]])
    try:
        expr = compile_expr(text)
    except SampleError as e:
        raise AclError(f"error detected while parsing ACL '{acl.name}' : {e}.", acl.where) from None
    dotted = False
    if method is None:
        if expr.converters:  # converters: the last one's output type decides
            method = DEFAULT_METHOD[expr.out_type]
        elif kw is not None:
            method, dotted = kw[1], kw[2]
        else:
            method = DEFAULT_METHOD[expr.fetch.out_type]
    elif method not in MATCH_METHODS:
        raise AclError(f"error detected while parsing ACL '{acl.name}' : unknown matching method '{method}'.",
                       acl.where)
    try:
        patterns = load_patterns(method, acl.patterns, files, icase=icase, dotted=dotted, resolve=not no_dns,
                                 files_are_maps=as_map)
    except PatternError as e:
        raise AclError(f"error detected while parsing ACL '{acl.name}' : {e}.", acl.where) from None
    return AclExpr(expr=expr, patterns=patterns, where=acl.where)


class AclSet:
    """The ACLs one proxy's conditions can name: its own (compiled up front, so that a bad file or
    pattern is reported at start-up) and HAProxy's predefined ones (compiled on first use)."""

    def __init__(self, acls: Iterable[Acl]) -> None:
        lines: dict[str, list[AclExpr]] = {}
        for acl in acls:
            lines.setdefault(acl.name, []).append(compile_acl_line(acl))
        self._acls = {name: CompiledAcl(name, tuple(exprs)) for name, exprs in lines.items()}

    def get(self, name: str, where: Location | None = None) -> CompiledAcl:
        acl = self._acls.get(name)
        if acl is not None:
            return acl
        words = PREDEFINED.get(name)
        if words is None:
            raise AclError(f"no such ACL : '{name}'", where)
        acl = CompiledAcl(name, (compile_acl_line(Acl(name=name, fetch=words[0], flags=(), patterns=words[1:],
                                                            where=_BUILTIN)),))
        self._acls[name] = acl
        return acl

    def condition(self, cond: Condition, where: Location | None = None) -> CompiledCondition:
        terms = tuple(tuple((neg, self.get(name, where)) for neg, name in suite) for suite in cond.terms)
        return CompiledCondition(negate=cond.negate, terms=terms, text=cond.text)


# ----------------------------------------------------------------------------------------------
# tcp-request rules
# ----------------------------------------------------------------------------------------------


class Verdict(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    WAIT = "wait"  # a condition needs more data


VAR_SCOPES = ("proc", "sess", "txn", "req", "res", "check")


def parse_var_name(text: str | None, where: Location | None = None) -> tuple[str, tuple[str, ...]]:
    """`txn.name[,ifexists...]` -> ("txn.name", conditions). Raises AclError."""
    if not text:
        raise AclError("missing variable name", where)
    name, *conds = text.split(",")
    scope = name.split(".", 1)[0]
    if "." not in name or scope not in VAR_SCOPES or not name.split(".", 1)[1]:
        raise AclError(f"invalid variable name '{name}'. Expects a scope among 'proc', 'sess', 'txn', 'req', "
                       "'res', 'check' followed by a dot and a name", where)
    return name, tuple(conds)


@attrs.frozen(eq=False)
class TcpRule:
    """A compiled `tcp-request connection|session|content` rule."""

    action: str  # accept | reject | set-var | set-var-fmt | unset-var
    cond: CompiledCondition | None
    where: Location
    var: str | None = None
    var_conds: tuple[str, ...] = ()
    expr: SampleExpr | None = None
    fmt: Template | None = None

    def apply_var(self, ctx: SampleContext) -> None:
        """Run a set-var / set-var-fmt / unset-var action (sample taken as final, as HAProxy)."""
        assert self.var is not None
        if self.action == "unset-var":
            ctx.unset_var(self.var)
            return
        exists = ctx.get_var(self.var) is not None
        if ("ifexists" in self.var_conds and not exists) or ("ifnotexists" in self.var_conds and exists):
            return
        saved, ctx.final = ctx.final, True
        try:
            if self.expr is not None:
                smp = self.expr.evaluate(ctx)
            else:
                assert self.fmt is not None
                smp = Sample(STR, self.fmt.render(ctx))
        finally:
            ctx.final = saved
        if smp is not None:
            ctx.set_var(self.var, smp)


def compile_tcp_rule(rule: Rule, acls: AclSet) -> TcpRule:
    """Compile a tcp-request rule; `rule.param` holds the variable of set-var(...). Raises AclError."""
    cond = acls.condition(rule.cond, rule.where) if rule.cond is not None else None
    action = rule.action
    if action in ("accept", "reject"):
        return TcpRule(action=action, cond=cond, where=rule.where)
    if action in ("set-var", "set-var-fmt", "unset-var"):
        var, var_conds = parse_var_name(rule.param, rule.where)
        expr = fmt = None
        try:
            if action == "set-var":
                if not rule.args:
                    raise AclError(f"'{rule.family} {action}' expects a sample expression", rule.where)
                expr = compile_expr(rule.args[0])
            elif action == "set-var-fmt":
                fmt = compile_template(rule.args[0] if rule.args else "")
        except SampleError as e:
            raise AclError(f"'{rule.family} {action}' : {e}", rule.where) from None
        return TcpRule(action=action, cond=cond, where=rule.where, var=var, var_conds=var_conds, expr=expr,
                       fmt=fmt)
    raise AclError(f"'{rule.family} {action}' is not implemented by haproxy-py", rule.where)


def run_tcp_rules(rules: Sequence[TcpRule], ctx: SampleContext) -> Verdict:
    """Evaluate rules in order (HAProxy's tcp_inspect_request / tcp_exec_l4_rules).

    The first matching accept/reject decides; variable actions run and evaluation continues; a
    condition that needs more data stops everything with WAIT (the caller re-runs all rules when
    data arrives). No decision at the end means ACCEPT.
    """
    for rule in rules:
        if rule.cond is not None:
            ok = rule.cond.match(ctx)
            if ok is None:
                return Verdict.WAIT
            if not ok:
                continue
        if rule.action == "accept":
            return Verdict.ACCEPT
        if rule.action == "reject":
            return Verdict.REJECT
        rule.apply_var(ctx)
    return Verdict.ACCEPT


# ----------------------------------------------------------------------------------------------
# use_backend
# ----------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class SwitchRule:
    """A compiled `use_backend`: a static name or a `%[...]` template, under an optional condition."""

    cond: CompiledCondition | None
    where: Location
    backend: str | None = None
    template: Template | None = None


def compile_switch_rule(ub: UseBackend, acls: AclSet) -> SwitchRule:
    cond = acls.condition(ub.cond, ub.where) if ub.cond is not None else None
    if not ub.dynamic:
        return SwitchRule(cond=cond, where=ub.where, backend=ub.name)
    try:
        return SwitchRule(cond=cond, where=ub.where, template=compile_template(ub.name))
    except SampleError as e:
        raise AclError(f"use_backend '{ub.name}' : {e}", ub.where) from None


def choose_backend(rules: Sequence[SwitchRule], ctx: SampleContext, exists: Callable[[str], bool]) -> str | None:
    """The backend the first matching rule names, or None for the default backend.

    As HAProxy's process_switching_rules(): conditions see the data as final; a dynamic name that
    names no backend stops the walk and falls back to the default (later rules are not tried).
    """
    saved, ctx.final = ctx.final, True
    try:
        for rule in rules:
            if rule.cond is not None and not rule.cond.match(ctx):
                continue
            if rule.template is None:
                return rule.backend
            name = rule.template.render(ctx).decode("utf-8", "surrogateescape")
            return name if exists(name) else None
        return None
    finally:
        ctx.final = saved


# ----------------------------------------------------------------------------------------------
# Everything one proxy needs
# ----------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class ProxyRules:
    """A proxy's compiled ACLs, tcp-request rules and use_backend rules."""

    acls: AclSet
    connection: tuple[TcpRule, ...] = ()
    session: tuple[TcpRule, ...] = ()
    content: tuple[TcpRule, ...] = ()
    switching: tuple[SwitchRule, ...] = ()
    inspect_delay: int | None = None  # ms

    @classmethod
    def build(cls, proxy: Proxy) -> ProxyRules:
        """Compile everything; raises AclError (with the config line) on the first problem."""
        acls = AclSet(proxy.acls)
        families: dict[str, list[TcpRule]] = {"connection": [], "session": [], "content": []}
        for rule in proxy.tcp_request_rules:
            kind = rule.family.split()[-1]
            families[kind].append(compile_tcp_rule(rule, acls))
        switching = tuple(compile_switch_rule(ub, acls) for ub in proxy.use_backends)
        return cls(acls=acls, connection=tuple(families["connection"]), session=tuple(families["session"]),
                   content=tuple(families["content"]), switching=switching, inspect_delay=proxy.inspect_delay)

    @property
    def dynamic_switching(self) -> bool:
        """Whether the backend choice depends on the connection (a condition or a %[...] name)."""
        return any(r.cond is not None or r.template is not None for r in self.switching)
