"""Property tests: whatever text the loader is given, it loads or refuses it cleanly.

An operator's typo must produce HAProxy-style alerts pointing at a file and line, never a Python
traceback: a crash in the loader would take down a reload (or `-c`) with no hint of where the
mistake is. Inputs are arbitrary text and mutations (deleted, duplicated, swapped or truncated
lines, stray quotes, `${`, `%[`, braces...) of real configurations: the files in `samples/` plus a
few embedded ones covering the grammar's corners.
"""

from __future__ import annotations

import glob
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haproxy_py.config import loader
from haproxy_py.config.errors import ConfigError, Diagnostic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "fuzz.cfg"

EMBEDDED = [
    """global
    maxconn 100
    log stdout format raw local0 info
    stats socket /tmp/x.sock mode 600 level admin
    tune.bufsize 16384
    setenv PORT 8080

defaults base
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option httplog
    option forwardfor except 127.0.0.0/8
    default-server inter 2s fall 3 rise 2

frontend fe from base
    bind "127.0.0.1:${PORT}" name main
    bind [::1]:8443,:8444 v6only
    acl is_api path_beg /api
    acl host_a hdr(host) -i a.example.com
    http-request deny deny_status 429 if { src 10.0.0.0/8 } !is_api
    http-request set-header X-Test "%[req.hdr(host),lower]" if host_a
    use_backend api if is_api || host_a
    default_backend web

backend api
    balance uri whole
    hash-type consistent
    option httpchk GET /health
    http-check expect status 200
    server a1 127.0.0.1:9001 check weight 10
    server-template s 1-3 127.0.0.1:9100 check backup

backend web
    balance leastconn
    server w1 127.0.0.1:9002 maxconn 10 on-marked-down shutdown-sessions
""",
    """global
.if defined(HAPROXY_MWORKER) || version_atleast(2.4)
    daemon
.elif streq("a","b")
    nbthread 2
.else
    quiet
.endif

defaults
    mode tcp
    timeout client 10s
    timeout server 10s
    timeout connect 1s

listen sni
    bind :8443
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend be_a if { req.ssl_sni -i a.example.com }
    server s1 127.0.0.1:9443 send-proxy-v2

backend be_a
    server a 127.0.0.1:9444
""",
]

SEEDS = EMBEDDED + [open(p, encoding="utf-8", errors="surrogateescape").read()
                    for p in sorted(glob.glob(os.path.join(ROOT, "samples", "*.cfg")))]

NASTY = ['"', "'", "\\", "${", "${X", "$", "#", "{", "}", "%[", "]", "(", ")", ",", ":", "::", "*", "@",
         "\\x", "\\x4", "fd@", "unix@", "no", "default", "if", "unless", "!", "||", "or", ".if", ".endif", ".else",
         ".elif", ".notice", ".alert", "option", "server", "bind", "acl", "frontend x", "backend x", "listen x",
         "defaults", "global", "1.5s", "-1", "99999999999", "0", "\t", "\x00", "\r", "\x0c", "é", "\udcff"]

VALUES = ["abc", "9", "0777x", "1x", "1sx", "-5", "10k", "", "''", "on", "off", "127.0.0.1", "[::1]:80", "::1",
          "/tmp/s", "%[src(", "%[hdr(host),lower]", "%{+Q}ci", "%", "random(", "hdr(", "hdr(x)", "req.hdr(a,a)",
          "path,lower", "path,nope", "-m", "-f", "-i", "str", "int", "1:2", "80-90", "1.2.3.4/33", "(" * 400]
WORDS = st.one_of(st.sampled_from(NASTY), st.sampled_from(VALUES),
                  st.text(alphabet=st.characters(codec="utf-8"), max_size=12))


def _keyword_names() -> list[str]:
    from haproxy_py.config import keywords

    names = list(keywords.GLOBAL) + list(keywords.PROXY)
    names += [f"option {o}" for o in keywords.OPTIONS] + [f"no option {o}" for o in keywords.OPTIONS]
    names += [f"bind :80 {b}" for b in keywords.BIND_PARAMS] + [f"server s 127.0.0.1:1 {p}" for p in keywords.SERVER_PARAMS]
    names += [f"timeout {t}" for t in ("client", "server", "connect", "check", "tunnel", "foo")]
    names += [f"http-request {a}" for a in keywords.HTTP_REQUEST_ACTIONS] + [f"tcp-request {k}" for k in keywords.TCP_REQUEST_KINDS]
    return names


KEYWORD_LINES = st.tuples(st.sampled_from(_keyword_names()), st.lists(WORDS, max_size=4)).map(
    lambda kv: "    " + " ".join([kv[0], *kv[1]]))


def _location_of(d: Diagnostic) -> bool:
    """An alert must say where: a location, or (post-parse checks) `(file:line)` in its text."""
    return d.where is not None or re.search(rf"\({re.escape(NAME)}:\d+\)", d.message) is not None


def check_loads_or_refuses(text: str) -> None:
    """The property: a LoadResult, or a ConfigError whose alerts all name a file and line."""
    try:
        result = loader.load_text(text, NAME, env={"X": "a b"}, resolve=False)
    except ConfigError as e:
        assert e.alerts, "ConfigError without any alert"
        for d in e.diagnostics:
            d.render(1)  # rendering must not fail either
            if d.level == "ALERT":
                assert _location_of(d), f"alert without location: {d.render(1)}"
        return
    for d in (*result.warnings, *result.notices, *result.alerts):
        d.render(1)
    for d in result.alerts:  # alerts HAProxy prints without refusing the file must say where too
        assert _location_of(d), f"alert without location: {d.render(1)}"


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert_word", "replace_word", "truncate",
                                   "insert_line", "insert_line"]))
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert_word":
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(WORDS) + lines[i][pos:]
        elif op == "replace_word":
            words = lines[i].split(" ")
            k = draw(st.integers(0, len(words) - 1))
            words[k] = draw(WORDS)
            lines[i] = " ".join(words)
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif draw(st.booleans()):
            lines.insert(i, " ".join(draw(st.lists(WORDS, min_size=1, max_size=5))))
        else:
            lines.insert(i, draw(KEYWORD_LINES))
    text = "\n".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_config())
def test_mutated_configs_load_or_refuse_with_locations(text: str) -> None:
    check_loads_or_refuses(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(WORDS, max_size=8).map(" ".join), max_size=12).map("\n".join))
def test_word_soup_loads_or_refuses_with_locations(text: str) -> None:
    check_loads_or_refuses(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_loads_or_refuses_with_locations(text: str) -> None:
    check_loads_or_refuses(text)


def test_seeds_are_valid() -> None:
    """The seeds themselves load, so mutations start from meaningful configurations."""
    for text in SEEDS:
        loader.load_text(text if text.endswith("\n") else text + "\n", NAME, env={}, resolve=False)
