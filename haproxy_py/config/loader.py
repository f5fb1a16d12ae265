"""Read haproxy.cfg files into a `Config`: sections, `.if` blocks, defaults inheritance.

Parsing goes on after an error (as HAProxy does, up to 50 alerts per file) so that one `-c` run
shows every mistake; the result is raised as one ConfigError. A configuration with an alert never
produces a Config, so a bad reload can never replace a good one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from haproxy_py.config import condexpr, keywords, validate
from haproxy_py.config.errors import ConfigError, Diagnostic, Location, StatementError
from haproxy_py.config.keywords import GLOBAL, OTHER_SECTIONS, PROXY, ProxyDraft, Statement, did_you_mean
from haproxy_py.config.lexer import tokenize
from haproxy_py.config.model import Config, Global, Proxy

MAX_ALERTS_PER_FILE = 50
_PROXY_SECTIONS = ("frontend", "backend", "listen")
_SECTIONS = ("global", "defaults", *_PROXY_SECTIONS, *OTHER_SECTIONS)


@attrs.frozen
class LoadResult:
    config: Config
    warnings: tuple[Diagnostic, ...]
    notices: tuple[Diagnostic, ...] = ()


def expand_paths(paths: Iterable[str]) -> list[str]:
    """`-f` arguments to files: a directory stands for its non-hidden `*.cfg` files in C-locale order."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith(".cfg") and not n.startswith("."))
            files += [os.path.join(p, n) for n in names if os.path.isfile(os.path.join(p, n))]
        else:
            files.append(p)
    return files


def load(paths: Iterable[str], env: Mapping[str, str] | None = None, resolve: bool = True) -> LoadResult:
    """Load configuration files. Raises ConfigError (every alert, each naming file:line)."""
    files = expand_paths(paths)
    texts: list[tuple[str, str]] = []
    diags: list[Diagnostic] = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                texts.append((f, fh.read().decode("utf-8", "surrogateescape")))
        except OSError as e:
            diags.append(Diagnostic("ALERT", f"Cannot open configuration file/directory {f} : {e.strerror}"))
    if diags:
        raise ConfigError(diags)
    return load_texts(texts, env, resolve)


def load_text(text: str, name: str = "haproxy.cfg", env: Mapping[str, str] | None = None, resolve: bool = True) -> LoadResult:
    return load_texts([(name, text)], env, resolve)


@attrs.define
class _Parser:
    env: dict[str, str]
    resolve: bool
    diags: list[Diagnostic] = attrs.field(factory=list)
    global_values: dict[str, Any] = attrs.field(factory=dict)
    defaults: ProxyDraft | None = None
    named_defaults: dict[str, ProxyDraft] = attrs.field(factory=dict)
    proxies: list[ProxyDraft] = attrs.field(factory=list)
    section: str | None = None
    current: ProxyDraft | None = None
    notices: list[Diagnostic] = attrs.field(factory=list)

    def alert(self, message: str, where: Location | None, server: str | None = None) -> None:
        self.diags.append(Diagnostic("ALERT", message, where, server))

    def warn(self, message: str, where: Location | None) -> None:
        self.diags.append(Diagnostic("WARNING", message, where))

    # -- one file -------------------------------------------------------------------------------
    def parse_file(self, name: str, text: str) -> None:
        self.section = None
        self.current = None
        cond_stack: list[list[bool]] = []  # [active, taken] per .if level
        start_alerts = sum(1 for d in self.diags if d.level == "ALERT")
        for lineno, raw in enumerate(text.split("\n"), start=1):
            where = Location(name, lineno)
            if sum(1 for d in self.diags if d.level == "ALERT") - start_alerts >= MAX_ALERTS_PER_FILE:
                self.alert("Too many fatal errors, aborting.", where)
                break
            env = dict(self.env)
            env.update({".FILE": name, ".LINE": str(lineno), ".SECTION": self.section or ""})
            try:
                words = tokenize(raw, env)
            except StatementError as e:
                if all(active for active, _ in cond_stack):
                    self.alert(e.message, where)
                continue
            if not words:
                continue
            if words[0].startswith("."):
                self.directive(words, where, cond_stack)
                continue
            if not all(active for active, _ in cond_stack):
                continue
            try:
                self.statement(words, where)
            except StatementError as e:
                self.alert(e.message, where, e.server)
        if cond_stack:
            self.alert("missing '.endif' at end of file.", Location(name, text.count("\n") + 1))
        self.close_section()

    def directive(self, words: list[str], where: Location, stack: list[list[bool]]) -> None:
        kw = words[0]
        outer_active = all(active for active, _ in stack[:-1]) if stack else True
        try:
            if kw == ".if":
                parent = all(active for active, _ in stack)
                value = parent and self.condition(words, where)
                stack.append([value, value])
            elif kw == ".elif":
                if not stack:
                    raise StatementError("'.elif' without matching '.if'.")
                top = stack[-1]
                value = outer_active and not top[1] and self.condition(words, where)
                top[0] = value
                top[1] = top[1] or value
            elif kw == ".else":
                if not stack:
                    raise StatementError("'.else' without matching '.if'.")
                top = stack[-1]
                top[0] = outer_active and not top[1]
                top[1] = True
            elif kw == ".endif":
                if not stack:
                    raise StatementError("'.endif' without matching '.if'.")
                stack.pop()
            elif kw in (".notice", ".warning", ".alert", ".diag"):
                if not all(active for active, _ in stack):
                    return
                if len(words) > 2:
                    raise StatementError(
                        f"Unexpected argument '{words[2]}' for '{kw}'. Use quotes if the message should contain spaces."
                    )
                msg = f"'{words[1] if len(words) > 1 else ''}'."
                if kw == ".alert":
                    self.alert(msg, where)
                elif kw == ".warning":
                    self.warn(msg, where)
                elif kw == ".notice":
                    self.notices.append(Diagnostic("NOTICE", msg, where))
            else:
                raise StatementError(f"unknown directive '{kw}'")
        except StatementError as e:
            self.alert(e.message, where)

    def condition(self, words: list[str], where: Location) -> bool:
        try:
            return condexpr.evaluate(" ".join(words[1:]), self.env)
        except condexpr.ConditionSyntaxError as e:
            raise StatementError(f"failed to parse condition in '{words[0]}': {e}") from None

    # -- sections -------------------------------------------------------------------------------
    def close_section(self) -> None:
        px = self.current
        if px is not None and px.kind != "defaults":
            if px.anon.acls:
                px.append("acls", *px.anon.acls)
                px.anon.acls.clear()
            self.proxies.append(px)
        elif px is not None and px.kind == "defaults":
            if px.anon.acls:
                px.append("acls", *px.anon.acls)
                px.anon.acls.clear()
        self.current = None

    def open_section(self, words: list[str], where: Location) -> None:
        self.close_section()
        kind = words[0]
        self.section = kind
        if kind == "global":
            if len(words) > 1:
                raise StatementError(f"'global' cannot handle unexpected argument '{words[1]}'.")
            return
        if kind in OTHER_SECTIONS:
            self.warn(f"'{kind}' sections are not implemented by haproxy-py; the section is skipped.", where)
            return
        name = words[1] if len(words) > 1 and words[1] != "from" else ""
        rest = words[2:] if name else words[1:]
        base = self.defaults
        if rest:
            if rest[0] != "from" or len(rest) != 2:
                raise StatementError(f"'{kind} {name}' : unexpected argument '{rest[0]}'; only 'from <defaults>' is allowed.")
            base = self.named_defaults.get(rest[1])
            if base is None:
                raise StatementError(f"'{kind} {name}' : defaults section '{rest[1]}' not found for 'from' keyword.")
        if kind == "defaults":
            if base is not None and rest:
                draft = base.inherit("defaults", name, where)
            else:
                draft = ProxyDraft(kind="defaults", name=name, where=where)
            self.defaults = draft
            if name:
                self.named_defaults[name] = draft
            self.current = draft
            return
        if not name:
            raise StatementError(f"'{kind}' expects <name> as argument.")
        for c in name:
            if not (c.isalnum() or c in "-_.:"):
                raise StatementError(f"character '{c}' is not permitted in '{kind}' name '{name}'.")
        for other in self.proxies:
            # 2.6 lets a frontend and a backend share a name; a listen section conflicts with both
            if other.name == name and (other.kind == kind or "listen" in (other.kind, kind)):
                raise StatementError(
                    f"{kind} '{name}' has the same name as {other.kind} '{name}' declared at "
                    f"{other.where.file}:{other.where.line}."
                )
        draft = base.inherit(kind, name, where) if base is not None else ProxyDraft(kind=kind, name=name, where=where)
        self.current = draft

    def statement(self, words: list[str], where: Location) -> None:
        prefix = None
        if words[0] in ("no", "default") and len(words) > 1:
            prefix = words[0]
            words = words[1:]
        kw = words[0]
        if kw in _SECTIONS:
            if prefix:
                raise StatementError(f"unknown keyword '{prefix}' out of section.")
            self.open_section(words, where)
            return
        if self.section is None:
            raise StatementError(f"unknown keyword '{kw}' out of section.")
        if self.section in OTHER_SECTIONS:
            return
        st = Statement(keyword=kw, args=words[1:], where=where, env=self.env, diagnostics=self.diags, prefix=prefix,
                       resolve=self.resolve)
        if self.section == "global":
            self.global_statement(st)
        elif self.current is not None:
            self.proxy_statement(st, self.current)
        # else: the section header itself was rejected; its lines were reported with it

    def _check_prefix(self, st: Statement, allowed: bool) -> None:
        if st.prefix and not allowed:
            raise StatementError(
                "negation/default currently supported only for options, log, busy-polling, set-dumpable, "
                "strict-limits, insecure-fork-wanted and numa-cpu-mapping."
            )

    def global_statement(self, st: Statement) -> None:
        kw = GLOBAL.get(st.keyword)
        if kw is None and st.keyword.startswith("tune."):
            return  # other tuning knobs: no effect here
        if kw is None:
            hint = did_you_mean(st.keyword, list(GLOBAL) + list(_SECTIONS))
            raise StatementError(
                f"unknown keyword '{st.keyword}' in 'global' section" + (f"; did you mean '{hint}' maybe ?" if hint else "")
            )
        self._check_prefix(st, st.keyword in ("log", "busy-polling", "set-dumpable", "strict-limits",
                                              "insecure-fork-wanted", "numa-cpu-mapping"))
        self.apply_status(st, kw)
        if kw.handler is not None:
            kw.handler(st, self.global_values)
            if st.keyword in ("setenv", "presetenv", "unsetenv", "resetenv"):
                self.apply_env_ops()

    def apply_env_ops(self) -> None:
        for op, name, value in self.global_values.pop("_env_ops", []):
            if op == "set":
                self.env[name] = value
            elif op == "preset":
                self.env.setdefault(name, value)
            elif op == "unset":
                self.env.pop(name, None)
            elif op == "reset":
                keep = set(name.split())
                for k in list(self.env):
                    if k not in keep:
                        del self.env[k]

    def apply_status(self, st: Statement, kw: keywords.Keyword) -> None:
        if kw.status == "unsupported":
            raise StatementError(f"'{st.keyword}' is a HAProxy keyword that haproxy-py does not implement: {kw.summary}")
        if kw.status == "ignored":
            st.warn(f"'{st.keyword}' is not implemented by haproxy-py and is ignored.")

    def proxy_statement(self, st: Statement, px: ProxyDraft) -> None:
        kw = PROXY.get(st.keyword)
        if kw is None:
            hint = did_you_mean(st.keyword, list(PROXY) + list(_SECTIONS))
            raise StatementError(
                f"unknown keyword '{st.keyword}' in '{px.kind}' section"
                + (f"; did you mean '{hint}' maybe ?" if hint else "")
            )
        self._check_prefix(st, st.keyword in ("option", "log"))
        if px.kind == "defaults" and "d" not in kw.caps:
            msg = f"'{st.keyword}' not allowed in 'defaults' section."
            raise StatementError(msg, server=None)
        if px.kind != "defaults" and not keywords._cap_ok(px.kind, kw.caps):
            need = "backend" if px.kind == "frontend" else "frontend"
            if kw.wrong_cap_alert:
                raise StatementError(f"'{st.keyword}' not allowed because {px.label} has no {need} capability.")
            # HAProxy parses the line anyway (errors still count) but ignores it
            if kw.status not in ("unsupported", "removed") and kw.handler is not None:
                scratch = px.inherit(px.kind, px.name, px.where)
                kw.handler(st, scratch)
            st.warn(f"'{st.keyword}' ignored because {px.label} has no {need} capability.")
            return
        self.apply_status(st, kw)
        if kw.handler is not None:
            kw.handler(st, px)

    # -- result ---------------------------------------------------------------------------------
    def build(self) -> tuple[Global, list[Proxy]]:
        gvals = {k: v for k, v in self.global_values.items() if not k.startswith("_")}
        known = set(attrs.fields_dict(Global))
        glob = Global(**{k: v for k, v in gvals.items() if k in known})
        proxies: list[Proxy] = []
        used_ids = {d.values["id"] for d in self.proxies if "id" in d.values}
        next_id = 1
        proxy_fields = set(attrs.fields_dict(Proxy))
        for draft in self.proxies:
            values = {k: v for k, v in draft.values.items() if k in proxy_fields}
            if "id" not in values:
                while next_id in used_ids:
                    next_id += 1
                values["id"] = next_id
                used_ids.add(next_id)
            proxies.append(Proxy(name=draft.name, kind=draft.kind, where=draft.where, **values))
        return glob, proxies


def load_texts(texts: list[tuple[str, str]], env: Mapping[str, str] | None = None, resolve: bool = True) -> LoadResult:
    parser = _Parser(env=dict(os.environ if env is None else env), resolve=resolve)
    for name, text in texts:
        parser.parse_file(name, text)
    files = tuple(name for name, _ in texts)
    if any(d.level == "ALERT" for d in parser.diags):
        raise ConfigError(parser.diags)
    glob, proxies = parser.build()
    config = Config(global_=glob, proxies=tuple(proxies), files=files)
    problems = validate.check(config)
    diags = parser.diags + problems
    if any(d.level == "ALERT" for d in diags):
        raise ConfigError(diags)
    return LoadResult(config=config, warnings=tuple(d for d in diags if d.level == "WARNING"),
                      notices=tuple(parser.notices))
