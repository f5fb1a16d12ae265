"""Checks that need the whole configuration: backend references, modes, ACL names, timeouts.

Messages follow HAProxy's post-parse wording; where HAProxy prints no line, the proxy's own
file:line is put in the message so an operator can still find it.
"""

from __future__ import annotations

from haproxy_py.config.errors import Diagnostic
from haproxy_py.config.model import Config, Proxy

_MISSING_TIMEOUTS = (
    "\n   | While not properly invalid, you will certainly encounter various problems"
    "\n   | with such a configuration. To fix this, please ensure that all following"
    "\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
)


def _label(px: Proxy) -> str:
    return "proxy" if px.kind == "listen" else px.kind


def check(config: Config) -> list[Diagnostic]:
    """Post-parse checks, in HAProxy's words (plus the proxy's file:line where HAProxy gives none)."""
    out: list[Diagnostic] = []
    backends = {p.name: p for p in config.proxies if p.is_backend}
    for px in config.proxies:
        if px.is_frontend:
            out += _check_backend_refs(px, backends)
            if not px.binds and not px.disabled:
                out.append(Diagnostic("WARNING", f"{_label(px)} '{px.name}' has no 'bind' directive. Please declare "
                                                 "it as a backend if this was intended."))
        out += _check_timeouts(px)
        if px.is_frontend and px.log_format is not None and not px.logs and not px.disabled:
            out.append(Diagnostic("WARNING", f"log format ignored for {_label(px)} '{px.name}' since it has no log "
                                             "address."))
        if px.mode != "http":
            for field, family in (("http_request_rules", "http-request"), ("http_response_rules", "http-response"),
                                  ("http_after_response_rules", "http-after-response")):
                if getattr(px, field):
                    out.append(Diagnostic("WARNING", f"'{family}' rules ignored for {_label(px)} '{px.name}' as they "
                                                     "require HTTP mode."))
            if px.stats.enabled:
                out.append(Diagnostic("WARNING", f"'stats' statement ignored for {_label(px)} '{px.name}' as it "
                                                 "requires HTTP mode."))
            if px.forwardfor is not None:
                out.append(Diagnostic("WARNING", f"'option forwardfor' ignored for {_label(px)} '{px.name}' as it "
                                                 "requires HTTP mode."))
        if px.is_backend and px.mode != "http" and px.balance.algorithm in ("uri", "url_param", "hdr"):
            out.append(Diagnostic("WARNING", f"Layer 7 hash not possible for {_label(px)} '{px.name}' (needs 'mode "
                                             "http'). Falling back to round robin."))
    return out


def _check_backend_refs(px: Proxy, backends: dict[str, Proxy]) -> list[Diagnostic]:
    """default_backend/use_backend must name a backend of a compatible mode (fatal in HAProxy)."""
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
                f"http {_label(px)} '{px.name}' ({px.where}) tries to use incompatible tcp backend '{be.name}' "
                f"({be.where}) {how} (see 'mode').",
            ))
    return out


def _check_timeouts(px: Proxy) -> list[Diagnostic]:
    t = px.timeouts
    missing = False
    if px.is_frontend and not t.client:
        missing = True
    if px.is_backend and px.servers and (not t.connect or not t.server):
        missing = True
    if missing and not px.disabled:
        return [Diagnostic("WARNING", f"missing timeouts for {_label(px)} '{px.name}'.{_MISSING_TIMEOUTS}")]
    return []
