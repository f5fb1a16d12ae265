"""Read haproxy.cfg files into a `Config`: sections, `.if` blocks, defaults inheritance.

Parsing goes on after an error (as HAProxy does, up to 50 fatal errors per file) so that one `-c`
run shows every mistake; the result is raised as one ConfigError. A configuration with a fatal
alert never produces a Config, so a bad reload can never replace a good one.

File-level behaviour follows HAProxy 2.6.12: a last line without a line feed is a fatal error
("Missing LF on last line"), a NUL byte stops the file ("Stray NUL character"), and an error in a
`.if`/`.elif`/`.else`/`.endif` line, or an `.alert`, stops parsing altogether.
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
MAX_NESTED_CONDS = 100
_PROXY_SECTIONS = ("frontend", "backend", "listen")
_SECTIONS = ("global", "defaults", *_PROXY_SECTIONS, *OTHER_SECTIONS)
# keywords that accept the `no`/`default` prefixes (anywhere else: HAProxy's alert, then the
# keyword is still parsed)
_PREFIXABLE = ("option", "log", "busy-polling", "set-dumpable", "strict-limits", "insecure-fork-wanted",
               "numa-cpu-mapping")
_NEGATION_ALERT = ("negation/default currently supported only for options, log, busy-polling, set-dumpable, "
                   "strict-limits, insecure-fork-wanted and numa-cpu-mapping.")


@attrs.frozen
class LoadResult:
    config: Config
    warnings: tuple[Diagnostic, ...]
    notices: tuple[Diagnostic, ...] = ()
    # alerts HAProxy prints without refusing the configuration (e.g. an address on a frontend line)
    alerts: tuple[Diagnostic, ...] = ()


class _Abort(Exception):
    """Stop parsing (HAProxy's ERR_ABORT: a bad `.if` block structure or an `.alert`).

    `check_blocks`: HAProxy leaves its read loop normally (so an open `.if` is still reported as
    non-terminated) rather than jumping to its error exit.
    """

    def __init__(self, check_blocks: bool = False) -> None:
        super().__init__()
        self.check_blocks = check_blocks


def expand_paths(paths: Iterable[str]) -> list[str]:
    """`-f` arguments to files: a directory stands for its non-hidden `*.cfg` files in C-locale order."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted((n for n in os.listdir(p) if n.endswith(".cfg") and not n.startswith(".")),
                           key=lambda n: n.encode("utf-8", "surrogateescape"))
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
    """Load one configuration given as text; `name` is the file name used in messages."""
    return load_texts([(name, text)], env, resolve)


def _split_lines(text: str) -> tuple[list[str], bool]:
    """Physical lines, and whether the last one lacks its line feed (a truncated file)."""
    if text == "":
        return [], False
    lines = text.split("\n")
    if lines[-1] == "":
        return lines[:-1], False
    return lines, True


def _assign_server_ids(px: ProxyDraft) -> None:
    """Servers without `id` get the first ids not taken, in declaration order (as HAProxy does)."""
    servers = px.values.get("servers", ())
    if not any(s.id == 0 for s in servers):
        return
    used = {s.id for s in servers if s.id}
    next_id = 1
    out = []
    for s in servers:
        if s.id == 0:
            while next_id in used:
                next_id += 1
            s = attrs.evolve(s, id=next_id)
            used.add(next_id)
        out.append(s)
    px.values["servers"] = tuple(out)


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
    section_name: str = ""  # what `${.SECTION}` expands to
    current: ProxyDraft | None = None
    dead_section: bool = False  # a proxy section whose header HAProxy refused: its keywords are errors
    notices: list[Diagnostic] = attrs.field(factory=list)
    base_dir: str | None = None  # `default-path`

    def alert(self, message: str, where: Location | None, server: str | None = None, form: str = "parsing",
              fatal: bool = True) -> None:
        self.diags.append(Diagnostic("ALERT", message, where, server, form=form, fatal=fatal))

    def warn(self, message: str, where: Location | None, form: str = "parsing") -> None:
        self.diags.append(Diagnostic("WARNING", message, where, form=form))

    def fatal_count(self) -> int:
        return sum(1 for d in self.diags if d.level == "ALERT" and d.fatal)

    # -- one file -------------------------------------------------------------------------------
    def parse_file(self, name: str, text: str) -> None:
        """Parse one file. Raises _Abort when HAProxy would stop reading the configuration."""
        self.section = None
        self.section_name = ""
        self.current = None
        self.dead_section = False
        self.base_dir = None
        self.global_values.pop("_default_path", None)
        cond_stack: list[list[Any]] = []  # [active, taken, seen_else] per .if level
        lines, missing_lf = _split_lines(text)
        file_errors = 0
        lineno = 0
        try:
            for lineno, raw in enumerate(lines, start=1):
                where = Location(name, lineno)
                if file_errors >= MAX_ALERTS_PER_FILE:
                    self.alert(f"too many fatal errors ({file_errors}), stopping now.", where, form="tight")
                    break
                before = self.fatal_count()
                nul = raw.find("\x00")
                self.parse_line(raw if nul < 0 else raw[:nul], where, cond_stack)
                if nul >= 0:
                    self.alert(f"Stray NUL character at position {nul + 1}.", where, form="tight")
                    break
                if missing_lf and lineno == len(lines):
                    size = len(raw.encode("utf-8", "surrogateescape"))
                    self.alert(f"Missing LF on last line, file might have been truncated at position {size + 1}.",
                               where, form="tight")
                if self.fatal_count() > before:
                    file_errors += 1
        except _Abort as abort:
            if cond_stack and abort.check_blocks:
                self.alert("non-terminated '.if' block.", Location(name, lineno), form="tight")
            self.close_section()
            raise
        if cond_stack:
            self.alert("non-terminated '.if' block.", Location(name, lineno), form="tight")
        self.close_section()

    def parse_line(self, raw: str, where: Location, cond_stack: list[list[Any]]) -> None:
        env = dict(self.env)
        env.update({".FILE": where.file, ".LINE": str(where.line), ".SECTION": self.section_name})
        try:
            words = tokenize(raw, env)
        except StatementError as e:
            # the tokenizer runs before `.if` blocks are considered: its errors count even when skipped
            self.alert(e.message, where, form="tight")
            return
        if not words:
            return
        if words[0] in (".if", ".elif", ".else", ".endif"):
            self.block_directive(words, where, cond_stack)
            return
        if not all(level[0] for level in cond_stack):
            return
        if words[0].startswith("."):
            self.message_directive(words, where)
            return
        try:
            self.statement(words, where)
        except StatementError as e:
            self.alert(e.message, where, e.server, form=e.form, fatal=e.fatal)

    def block_directive(self, words: list[str], where: Location, stack: list[list[Any]]) -> None:
        """`.if/.elif/.else/.endif`. Any error here stops parsing, as in HAProxy (ERR_ABORT)."""
        kw = words[0]
        parent_active = all(level[0] for level in stack[:-1]) if stack else True

        def abort(message: str, check_blocks: bool = False) -> None:
            self.alert(message, where, form="tight")
            raise _Abort(check_blocks)

        if kw == ".if":
            if len(stack) + 1 >= MAX_NESTED_CONDS:
                abort(f"too many nested '.if', max is {MAX_NESTED_CONDS}.")
            if not all(level[0] for level in stack):
                stack.append([False, True, False])  # inside a skipped block: not even evaluated
                return
            value = self.condition(words, where, abort)
            stack.append([value, value, False])
            return
        if not stack:
            abort(f"lone '{kw}' with no matching '.if'.")
        top = stack[-1]
        if kw == ".elif":
            if top[2]:
                abort("'.elif' after '.else' is not permitted.")
            if not parent_active or top[1]:
                top[0] = False
                return
            value = self.condition(words, where, abort)
            top[0] = value
            top[1] = value
            return
        if len(words) > 1 and words[1] != "":
            abort(f"Unexpected argument '{words[1]}' for '{kw}'.", check_blocks=True)
        if kw == ".else":
            if top[2]:
                abort("'.else' after '.else' is not permitted.")
            top[0] = parent_active and not top[1]
            top[1] = True
            top[2] = True
        else:  # .endif
            stack.pop()

    def condition(self, words: list[str], where: Location, abort: Any) -> bool:
        text = " ".join(words[1:])
        try:
            return condexpr.evaluate_text(text, self.env)
        except condexpr.ConditionSyntaxError as e:
            pos = e.position or 1
            caret = " " * (len(words[0]) + 1 + pos - 1)
            abort(f"{e.message} in '{words[0]}' at position {pos}:\n  {words[0]} {text}\n  {caret}^")
            raise AssertionError("unreachable") from None

    def message_directive(self, words: list[str], where: Location) -> None:
        """`.notice/.warning/.alert/.diag "msg"` (active blocks only); `.alert` stops parsing."""
        kw = words[0]
        if kw not in (".notice", ".warning", ".alert", ".diag"):
            self.alert(f"unknown directive '{kw}'.", where, form="tight")
            return
        if len(words) > 2 and words[2] != "":
            self.alert(f"Unexpected argument '{words[2]}' for '{kw}'. Use quotes if the message should contain "
                       "spaces.", where, form="tight")
            return
        msg = f"'{words[1] if len(words) > 1 else ''}'."
        if kw == ".alert":
            self.alert(msg, where, form="tight")
            raise _Abort
        if kw == ".warning":
            self.warn(msg, where, form="tight")
        elif kw == ".notice":
            self.notices.append(Diagnostic("NOTICE", msg, where, form="tight"))
        # .diag is only printed with -dD, which haproxy-py does not have

    # -- sections -------------------------------------------------------------------------------
    def close_section(self) -> None:
        px = self.current
        if px is not None:
            if px.anon.acls:
                px.append("acls", *px.anon.acls)
                px.anon.offset += len(px.anon.acls)
                px.anon.acls.clear()
            if px.kind != "defaults":
                _assign_server_ids(px)
                self.proxies.append(px)
        self.current = None
        self.dead_section = False

    def open_section(self, words: list[str], where: Location) -> None:
        self.close_section()
        kind = words[0]
        self.section = kind
        self.section_name = words[1] if len(words) > 1 and words[1] != "" else kind
        if kind == "global":
            if len(words) > 1 and words[1] != "":
                raise StatementError(f"'global' cannot handle unexpected argument '{words[1]}'.")
            return
        if kind in OTHER_SECTIONS:
            self.warn(f"'{kind}' sections are not implemented by haproxy-py; the section is skipped.", where)
            return
        if kind == "defaults":
            self.open_defaults(words, where)
            return
        self.dead_section = True  # until the header is accepted
        name = words[1] if len(words) > 1 else ""
        if name == "":
            raise StatementError(f"'{kind}' expects an <id> argument")
        for c in name:
            if not (c.isascii() and (c.isalnum() or c in "-_.:")):
                raise StatementError(f"character '{c}' is not permitted in '{kind}' name '{name}'.")
        base = self.defaults
        rest = [w for w in words[2:]]
        if len(rest) >= 2 and rest[0] == "from" and rest[1] != "":
            if len(rest) > 2 and rest[2] != "":
                raise StatementError(f"'{kind}' cannot handle unexpected argument '{rest[2]}'.")
            base = self.named_defaults.get(rest[1])
            if base is None:
                raise StatementError(f"defaults section '{rest[1]}' not found for {kind} '{name}'.")
        elif rest and rest[0] != "" and kind != "backend":
            # 1.x syntax `listen name addr:port`: refused, though HAProxy does not count it as fatal
            raise StatementError("please use the 'bind' keyword for listening addresses.", fatal=False)
        for other in self.proxies:
            # 2.6 lets a frontend and a backend share a name; a listen section conflicts with both
            if other.name == name and (other.kind == kind or "listen" in (other.kind, kind)):
                label = "proxy" if other.kind == "listen" else other.kind
                raise StatementError(
                    f"{'proxy' if kind == 'listen' else kind} '{name}' has the same name as {label} '{name}' "
                    f"declared at {other.where.file}:{other.where.line}.", form="Parsing",
                )
        draft = base.inherit(kind, name, where) if base is not None else ProxyDraft(kind=kind, name=name, where=where)
        self.current = draft
        self.dead_section = False

    def open_defaults(self, words: list[str], where: Location) -> None:
        name = words[1] if len(words) > 1 and words[1] != "from" else ""
        rest = words[2:] if name else words[1:]
        base: ProxyDraft | None = None
        if rest and rest[0] == "from":
            parent = rest[1] if len(rest) > 1 else ""
            if parent == "":
                raise StatementError("'defaults' : 'from' expects the name of a defaults section.")
            base = self.named_defaults.get(parent)
            if base is None:
                raise StatementError(f"defaults section '{parent}' not found for defaults '{name}'.")
        draft = base.inherit("defaults", name, where) if base is not None else ProxyDraft(kind="defaults", name=name,
                                                                                          where=where)
        self.defaults = draft
        if name:
            self.named_defaults[name] = draft
        self.current = draft

    def statement(self, words: list[str], where: Location) -> None:
        prefix = None
        if words[0] in ("no", "default"):
            prefix = words[0]
            words = words[1:] or [""]
            if words[0] not in _PREFIXABLE:
                # HAProxy reports it, then parses the keyword anyway
                self.alert(_NEGATION_ALERT, where, form="tight")
                prefix = None
        kw = words[0]
        if kw in _SECTIONS:
            self.open_section(words, where)
            return
        if self.section is None:
            raise StatementError(f"unknown keyword '{kw}' out of section.", form="tight")
        if self.section in OTHER_SECTIONS:
            return
        st = Statement(keyword=kw, args=words[1:], where=where, env=self.env, diagnostics=self.diags, prefix=prefix,
                       resolve=self.resolve, base_dir=self.global_values.get("_default_path"))
        if self.section == "global":
            self.global_statement(st)
        elif self.current is not None:
            self.proxy_statement(st, self.current)
        elif self.dead_section:
            raise StatementError("'listen' or 'defaults' expected.")

    def global_statement(self, st: Statement) -> None:
        kw = GLOBAL.get(st.keyword)
        if kw is None:
            hint = did_you_mean(st.keyword, [k for k, v in GLOBAL.items() if v.status != "removed"] + list(_SECTIONS))
            raise StatementError(
                f"unknown keyword '{st.keyword}' in 'global' section" + (f"; did you mean '{hint}' maybe ?" if hint else "")
            )
        if st.prefix == "default" and st.keyword != "log":
            # 2.6 quirk: the prefix is not removed for these booleans
            raise StatementError(f"'{st.keyword}' cannot handle unexpected argument '{st.keyword}'.")
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
            hint = did_you_mean(st.keyword, [k for k, v in PROXY.items() if v.status != "removed"] + list(_SECTIONS))
            raise StatementError(
                f"unknown keyword '{st.keyword}' in '{px.kind}' section"
                + (f"; did you mean '{hint}' maybe ?" if hint else "")
            )
        if px.kind == "defaults" and "d" not in kw.caps:
            form = "bracket" if st.keyword in ("server", "server-template") else "parsing"
            raise StatementError(f"'{st.keyword}' not allowed in 'defaults' section.", form=form)
        if px.kind != "defaults" and not keywords._cap_ok(px.kind, kw.caps):
            need = "backend" if px.kind == "frontend" else "frontend"
            if kw.wrong_cap_alert:
                raise StatementError(f"parsing [{st.where}] : '{st.keyword}' not allowed because {px.label} has no "
                                     f"{need} capability.", form="bracket")
            # HAProxy parses the line anyway (errors still count) but ignores it
            if kw.status not in ("unsupported", "removed") and kw.handler is not None:
                scratch = px.inherit(px.kind, px.name, px.where)
                scratch.own_acls = set(px.own_acls)
                kw.handler(st, scratch)
            hint = " Maybe you want 'fullconn' instead ?" if st.keyword == "maxconn" and px.kind == "backend" else ""
            st.warn(f"'{st.keyword}' ignored because {px.label} has no {need} capability.{hint}")
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
        if glob.stats_sockets:
            used_ids.add(1)  # HAProxy's internal GLOBAL proxy (the stats socket's) takes id 1 first
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
    """Load several configuration texts `(name, text)` in order, as one configuration."""
    parser = _Parser(env=dict(os.environ if env is None else env), resolve=resolve)
    for name, text in texts:
        try:
            parser.parse_file(name, text)
        except _Abort:
            break
    files = tuple(name for name, _ in texts)
    if any(d.level == "ALERT" and d.fatal for d in parser.diags):
        raise ConfigError(parser.diags)
    glob, proxies = parser.build()
    config = Config(global_=glob, proxies=tuple(proxies), files=files)
    problems = validate.check(config)
    diags = parser.diags + problems
    if any(d.level == "ALERT" and d.fatal for d in diags):
        raise ConfigError(diags)
    return LoadResult(config=config, warnings=tuple(d for d in diags if d.level == "WARNING"),
                      notices=tuple(parser.notices),
                      alerts=tuple(d for d in diags if d.level == "ALERT"))
