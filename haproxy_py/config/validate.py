"""Checks that need the whole configuration: backend references, modes, ACL names, timeouts.

Messages follow HAProxy's post-parse wording; where HAProxy prints no line, the proxy's own
file:line is put in the message so an operator can still find it.
"""

from __future__ import annotations

from haproxy_py.config.errors import Diagnostic, Location
from haproxy_py.config.model import Config, Proxy

_MISSING_TIMEOUTS = (
    "\n   | While not properly invalid, you will certainly encounter various problems"
    "\n   | with such a configuration. To fix this, please ensure that all following"
    "\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
)


def _label(px: Proxy) -> str:
    return "proxy" if px.kind == "listen" else px.kind


def check(config: Config) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    backends = {p.name: p for p in config.proxies if p.is_backend}
    for px in config.proxies:
        if px.is_frontend:
            out += _check_backend_refs(px, backends)
        out += _check_timeouts(px)
        if px.mode != "http":
            for field, family in (("http_request_rules", "http-request"), ("http_response_rules", "http-response"),
                                  ("http_after_response_rules", "http-after-response")):
                if getattr(px, field):
                    out.append(Diagnostic("WARNING", f"'{family}' rules ignored for {_label(px)} '{px.name}' as they "
                                                     "require HTTP mode."))
        if px.is_backend and px.mode != "http" and px.balance.algorithm in ("uri", "url_param", "hdr"):
            out.append(Diagnostic("WARNING", f"'balance {px.balance.algorithm}' needs HTTP mode; {_label(px)} "
                                             f"'{px.name}' ({px.where}) will use roundrobin."))
    return out


def _check_backend_refs(px: Proxy, backends: dict[str, Proxy]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    refs = []
    if px.default_backend is not None:
        refs.append((px.default_backend, "default_backend", "as its default backend", px.default_backend_where))
    for ub in px.use_backends:
        if not ub.dynamic:
            refs.append((ub.name, "use_backend", "in a 'use_backend' rule", ub.where))
    for name, kw, how, where in refs:
        be = backends.get(name)
        if be is None:
            loc = f" ({where})" if where else ""
            out.append(Diagnostic("ALERT", f"Proxy '{px.name}': unable to find required {kw}: '{name}'.{loc}"))
            continue
        if px.mode == "http" and be.mode != "http":
            out.append(Diagnostic(
                "ALERT",
                f"http {px.kind} '{px.name}' ({px.where}) tries to use incompatible tcp backend '{be.name}' "
                f"({be.where}) {how} (see 'mode').",
            ))
    if px.kind == "frontend" and px.default_backend is None and not px.use_backends and px.binds:
        out.append(Diagnostic("WARNING", f"{px.kind} '{px.name}' ({px.where}) has no backend: connections will be "
                                         "refused with a 503 (http) or closed (tcp)."))
    return out


def _check_timeouts(px: Proxy) -> list[Diagnostic]:
    t = px.timeouts
    missing = False
    if px.is_frontend and not t.client:
        missing = True
    if px.is_backend and (not t.connect or not t.server):
        missing = True
    if missing and not px.disabled:
        return [Diagnostic("WARNING", f"missing timeouts for {_label(px)} '{px.name}'.{_MISSING_TIMEOUTS}")]
    return []
