"""Whole configurations: sections, defaults inheritance, prefixes, capabilities, references, `.if`
blocks, file-level errors and the messages HAProxy prints for them.

`CASES` pairs a configuration with HAProxy 2.6.12's verdict (accepted or not) and its first alert,
both taken from the binary; `test_haproxy_agrees` re-runs each one through `haproxy -c` when it is
installed, so the table cannot drift from HAProxy. The other tests check what the loaded model
contains (inheritance, server ids...), which `-c` does not show.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass

import pytest

from haproxy_py.config import loader
from haproxy_py.config.errors import ConfigError, Diagnostic, Location

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
NAME = "t.cfg"


def cfg(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, env: dict[str, str] | None = None) -> loader.LoadResult:
    return loader.load_text(cfg(text), NAME, env=env or {}, resolve=False)


def body(d: Diagnostic) -> str:
    """A diagnostic as printed, after HAProxy's `[LEVEL] (pid) : config : ` prefix."""
    return d.render(0).split(" : config : ", 1)[1]


def first_alert(text: str, env: dict[str, str] | None = None) -> str | None:
    """None if haproxy-py accepts the configuration, else its first alert as printed.

    Names are resolved as `haproxy -c` does (the table uses IP addresses, and ':' which fails).
    """
    try:
        loader.load_text(text, NAME, env=env or {}, resolve=True)
    except ConfigError as e:
        return body(e.alerts[0])
    return None


@dataclass(frozen=True)
class Case:
    why: str
    text: str
    alert: str | None  # HAProxy's first alert, None when it accepts the configuration


def accept(why: str, text: str) -> Case:
    return Case(why, text, None)


def reject(why: str, text: str, alert: str) -> Case:
    return Case(why, text, alert)


CASES = [
    # -- sections -------------------------------------------------------------------------------
    accept("empty file", ""),
    accept("global only", "global\n    daemon\n"),
    reject("argument after global", "global setting\n", "parsing [t.cfg:1] : 'global' cannot handle unexpected argument 'setting'."),
    reject("keyword out of section", "hello\n", "parsing [t.cfg:1]: unknown keyword 'hello' out of section."),
    reject("proxy without a name", "backend\n", "parsing [t.cfg:1] : 'backend' expects an <id> argument"),
    reject("invalid character in a proxy name", "frontend x/y\n",
           "parsing [t.cfg:1] : character '/' is not permitted in 'frontend' name 'x/y'."),
    reject("two backends with one name", "backend b\nbackend b\n",
           "Parsing [t.cfg:2]: backend 'b' has the same name as backend 'b' declared at t.cfg:1."),
    reject("listen and backend share a name", "listen b\n    bind :1\nbackend b\n",
           "Parsing [t.cfg:3]: backend 'b' has the same name as proxy 'b' declared at t.cfg:1."),
    accept("frontend and backend may share a name", "frontend b\n    bind :1\nbackend b\n"),
    accept("defaults may be redeclared", "defaults d\ndefaults d\n"),
    accept("extra words after a backend name are ignored", "backend x bar baz\n"),
    reject("unknown named defaults", "frontend x from nope\n", "parsing [t.cfg:1] : defaults section 'nope' not found for frontend 'x'."),
    reject("anonymous defaults cannot be named in from", "defaults\nfrontend x from defaults\n",
           "parsing [t.cfg:2] : defaults section 'defaults' not found for frontend 'x'."),
    reject("defaults from an unknown defaults", "defaults a from b\n", "parsing [t.cfg:1] : defaults section 'b' not found for defaults 'a'."),
    reject("extra word after from <name>", "defaults d\nbackend b from d extra\n",
           "parsing [t.cfg:2] : 'backend' cannot handle unexpected argument 'extra'."),
    reject("keywords after a refused frontend header", "frontend x bar\n    bind :1\n",
           "parsing [t.cfg:1] : please use the 'bind' keyword for listening addresses."),
    # -- keywords -------------------------------------------------------------------------------
    reject("unknown global keyword with a hint", "global\n    daemn\n",
           "parsing [t.cfg:2] : unknown keyword 'daemn' in 'global' section; did you mean 'daemon' maybe ?"),
    reject("unknown proxy keyword with a hint", "listen x\n    balanc roundrobin\n",
           "parsing [t.cfg:2] : unknown keyword 'balanc' in 'listen' section; did you mean 'balance' maybe ?"),
    reject("unknown option with a hint", "backend b\n    option httplg\n",
           "parsing [t.cfg:2] : unknown option 'httplg'; did you mean 'httplog' maybe ?"),
    reject("option removed from 2.6", "backend b\n    option http-use-htx\n",
           "parsing [t.cfg:2] : unknown option 'http-use-htx'; did you mean 'httpclose' maybe ?"),
    reject("option forceclose", "backend b\n    option forceclose\n",
           "parsing [t.cfg:2]: option 'forceclose' is not supported any more since HAProxy 2.0, please just remove "
           "it, or use 'option httpclose' if absolutely needed."),
    reject("option without a name", "backend b\n    option\n", "parsing [t.cfg:2]: 'option' expects an option name."),
    reject("extra argument to a boolean option", "backend b\n    option abortonclose x\n",
           "parsing [t.cfg:2] : 'option abortonclose' cannot handle unexpected argument 'x'."),
    reject("removed keyword reqadd", "frontend f\n    reqadd X-A:\\ b\n",
           "parsing [t.cfg:2] : The 'reqadd' directive is not supported anymore since HAProxy 2.1. Use "
           "'http-request add-header' instead."),
    reject("removed keyword redispatch", "backend b\n    redispatch\n",
           "parsing [t.cfg:2] : keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use "
           "'option redispatch'."),
    reject("removed keyword contimeout", "backend b\n    contimeout 5s\n",
           "parsing [t.cfg:2] : the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'."),
    reject("nbproc", "global\n    nbproc 2\n",
           "parsing [t.cfg:2] : nbproc is not supported any more since HAProxy 2.5. Threads will automatically be "
           "used on multi-processor machines if available."),
    reject("debug is gone from 2.6", "global\n    debug\n", "parsing [t.cfg:2] : unknown keyword 'debug' in 'global' section"),
    reject("timeout with a decimal", "defaults\n    timeout server 1.5s\n",
           "parsing [t.cfg:2] : unexpected character '.' in 'timeout server'"),
    reject("timeout with an extra word", "defaults\n    timeout connect 1000 //\n",
           "parsing [t.cfg:2] : 'timeout connect' : unexpected extra argument '//' after value '1000'."),
    reject("unknown timeout", "defaults\n    timeout foo 1\n",
           "parsing [t.cfg:2] : 'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', "
           "'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got 'foo')"),
    accept("timeout with characters after the unit only warns", "defaults\n    timeout client 1sx\n"),
    reject("unknown mode", "defaults\n    mode htp\n", "parsing [t.cfg:2] : unknown proxy mode 'htp'."),
    accept("balance alone means roundrobin", "backend b\n    balance\n"),
    accept("balance ignores extra words", "backend b\n    balance first extra\n"),
    reject("balance random(0)", "backend b\n    balance random(0)\n",
           "parsing [t.cfg:2] : balance random : number of draws must be at least 1."),
    reject("balance hdr without a name", "backend b\n    balance hdr()\n",
           "parsing [t.cfg:2] : balance hdr requires an http header field name."),
    reject("hash-type none is not in 2.6", "backend b\n    hash-type consistent none\n",
           "parsing [t.cfg:2] : 'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions."),
    reject("empty words are kept", "global\n    maxconn \"\" 10\n",
           "parsing [t.cfg:2] : 'maxconn' cannot handle unexpected argument '10'."),
    accept("an empty word counts as the end of the line", "global\n    daemon \"\" x\n"),
    # -- tune.* -----------------------------------------------------------------------------------
    accept("known tune keywords", "global\n    tune.bufsize 32768\n    tune.maxaccept 64\n    tune.ssl.cachesize 0\n"
                                  "    tune.h2.max-concurrent-streams 10\n    tune.idle-pool.shared on\n"),
    accept("atol-read tune values", "global\n    tune.maxpollevents abc\n    tune.pipesize 10k\n"),
    reject("unknown tune keyword", "global\n    tune.foo 1\n", "parsing [t.cfg:2] : unknown keyword 'tune.foo' in 'global' section"),
    reject("tune keyword of a later version", "global\n    tune.quic.socket-owner listener\n",
           "parsing [t.cfg:2] : unknown keyword 'tune.quic.socket-owner' in 'global' section"),
    reject("tune keyword typo", "global\n    tune.bufsiz 1\n",
           "parsing [t.cfg:2] : unknown keyword 'tune.bufsiz' in 'global' section; did you mean 'tune.bufsize' maybe ?"),
    reject("tune.bufsize must be positive", "global\n    tune.bufsize 0\n",
           "parsing [t.cfg:2] : 'tune.bufsize' expects a positive integer argument."),
    reject("tune.http.maxhdr range", "global\n    tune.http.maxhdr 40000\n",
           "parsing [t.cfg:2] : 'tune.http.maxhdr' expects a numeric value between 1 and 32767"),
    reject("on/off tune keywords", "global\n    tune.sched.low-latency yes\n",
           "parsing [t.cfg:2] : 'tune.sched.low-latency' expects either 'on' or 'off' but got 'yes'."),
    reject("tune.chksize was removed", "global\n    tune.chksize 1\n",
           "parsing [t.cfg:2]: option 'tune.chksize' is not supported any more (tune.bufsize is used instead)."),
    reject("experimental tune keyword", "global\n    tune.fd.edge-triggered on\n",
           "parsing [t.cfg:2] : 'tune.fd.edge-triggered' directive is experimental, must be allowed via a global "
           "'expose-experimental-directives'"),
    accept("experimental tune keyword once allowed", "global\n    expose-experimental-directives\n"
                                                     "    tune.fd.edge-triggered on\n"),
    # -- no / default prefixes (§1.5) ------------------------------------------------------------
    accept("no option on a boolean option", "defaults\n    no option dontlognull\n    no option redispatch\n"
                                            "    no option httpclose\n    no log\n"),
    accept("default option redispatch", "defaults\n    default option redispatch\n"),
    accept("no busy-polling", "global\n    no busy-polling\n    no log\n"),
    reject("no option forwardfor is fatal in 2.6", "defaults\n    no option forwardfor\n",
           "parsing [t.cfg:2]: negation/default is not supported for option 'forwardfor'."),
    reject("no option httplog is fatal in 2.6", "defaults\n    no option httplog\n",
           "parsing [t.cfg:2]: negation/default is not supported for option 'httplog'."),
    reject("no option tcpka", "defaults\n    no option tcpka\n",
           "parsing [t.cfg:2]: negation/default is not supported for option 'tcpka'."),
    reject("default option on a boolean option (2.6 quirk)", "defaults\n    default option dontlognull\n",
           "parsing [t.cfg:2] : 'option dontlognull' cannot handle unexpected argument 'dontlognull'."),
    reject("no on another keyword", "global\n    no daemon\n",
           "parsing [t.cfg:2]: negation/default currently supported only for options, log, busy-polling, "
           "set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping."),
    reject("no on a section keyword", "no global\n",
           "parsing [t.cfg:1]: negation/default currently supported only for options, log, busy-polling, "
           "set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping."),
    reject("no log takes no argument", "defaults\n    no log foo\n", "parsing [t.cfg:2] : log : 'no log' does not expect arguments"),
    # -- capabilities ---------------------------------------------------------------------------
    accept("backend keyword in a frontend only warns", "frontend f\n    bind :1\n    balance roundrobin\n"
                                                      "    timeout server 1s\n    option allbackups\n"),
    accept("frontend keyword in a backend only warns", "backend b\n    bind :1\n    maxconn 10\n"),
    reject("server in a frontend", "frontend f\n    server s 1.2.3.4\n",
           "[t.cfg:2] : parsing [t.cfg:2] : 'server' not allowed because frontend 'f' has no backend capability."),
    reject("server in defaults", "defaults\n    server s 1.2.3.4\n", "[t.cfg:2] : 'server' not allowed in 'defaults' section."),
    reject("bind in defaults", "defaults\n    bind :80\n", "parsing [t.cfg:2] : 'bind' not allowed in 'defaults' section."),
    reject("use_backend in defaults", "defaults\n    use_backend x\n",
           "parsing [t.cfg:2] : 'use_backend' not allowed in 'defaults' section."),
    accept("default_backend in defaults", "defaults\n    default_backend x\n"),
    reject("rules in anonymous defaults", "defaults\n    http-request deny\n",
           "parsing [t.cfg:2] : 'http-request' not allowed in anonymous 'defaults' section."),
    reject("acl in anonymous defaults", "defaults\n    acl a src 1.2.3.4\n",
           "parsing [t.cfg:2] : 'acl' not allowed in anonymous 'defaults' section."),
    reject("tcp-request in anonymous defaults", "defaults\n    tcp-request content reject\n",
           "parsing [t.cfg:2] : tcp-request content is not allowed in anonymous 'defaults' sections"),
    accept("rules in named defaults", "defaults d\n    http-request deny\n"),
    reject("stats admin in defaults", "defaults\n    stats admin if TRUE\n",
           "parsing [t.cfg:2]: 'stats admin' not allowed in 'defaults' section."),
    # -- backend references and modes -------------------------------------------------------------
    reject("default_backend names an unknown backend", "frontend f\n    bind :1\n    default_backend nope\n",
           "Proxy 'f': unable to find required default_backend: 'nope'. (t.cfg:3)"),
    reject("use_backend names an unknown backend", "frontend f\n    bind :1\n    use_backend nope if TRUE\n",
           "Proxy 'f': unable to find required use_backend: 'nope'. (t.cfg:3)"),
    accept("dynamic use_backend is resolved at run time", "frontend f\n    bind :1\n    use_backend be_%[req.hdr(host)]\n"),
    reject("http frontend to a tcp backend", "frontend f\n    mode http\n    bind :1\n    default_backend b\nbackend b\n",
           "http frontend 'f' (t.cfg:1) tries to use incompatible tcp backend 'b' (t.cfg:5) as its default backend "
           "(see 'mode')."),
    reject("http listen to a tcp backend", "listen l\n    mode http\n    bind :1\n    use_backend b if TRUE\nbackend b\n",
           "http proxy 'l' (t.cfg:1) tries to use incompatible tcp backend 'b' (t.cfg:5) in a 'use_backend' rule "
           "(see 'mode')."),
    accept("tcp frontend to an http backend", "frontend f\n    bind :1\n    default_backend b\nbackend b\n    mode http\n"),
    # -- ACLs and conditions ----------------------------------------------------------------------
    reject("condition naming an unknown ACL", "frontend f\n    mode http\n    bind :1\n    http-request deny if a\n",
           "parsing [t.cfg:4] : error detected while parsing an 'http-request deny' condition : no such ACL : 'a'."),
    reject("ACL declared after its use", "frontend f\n    bind :1\n    stats admin if a\n    acl a src 1.2.3.4\n",
           "parsing [t.cfg:3] : error detected while parsing a 'stats admin' rule : no such ACL : 'a'."),
    reject("ACLs of a defaults section are not visible", "defaults d\n    acl a src 1.2.3.4\n    http-request deny if a\n"
                                                        "frontend f from d\n    bind :1\n    http-request deny if a\n",
           "parsing [t.cfg:6] : error detected while parsing an 'http-request deny' condition : no such ACL : 'a'."),
    reject("use_backend condition", "frontend f\n    bind :1\n    use_backend b if a\nbackend b\n",
           "parsing [t.cfg:3] : error detected while parsing switching rule : no such ACL : 'a'."),
    reject("tcp-request condition", "frontend f\n    bind :1\n    tcp-request content reject if a\n",
           "parsing [t.cfg:3] : 'tcp-request content reject' : error detected in frontend 'f' while parsing 'if' "
           "condition : no such ACL : 'a'"),
    reject("unclosed anonymous ACL", "frontend f\n    mode http\n    bind :1\n    http-request deny if { src 1.2.3.4\n",
           "parsing [t.cfg:4] : error detected while parsing an 'http-request deny' condition : missing closing '}' in "
           "condition."),
    accept("lenient conditions", "frontend f\n    mode http\n    bind :1\n    http-request deny if\n"
                                 "    http-request deny if !\n    http-request deny if TRUE or\n"
                                 "    http-request deny if !!TRUE || ! FALSE\n"),
    reject("unknown fetch", "frontend f\n    acl a foo 1\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : unknown fetch method 'foo' in ACL expression 'foo'."),
    reject("missing fetch", "frontend f\n    acl a (arg) x\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : missing fetch method in ACL expression '(arg)'."),
    reject("unknown converter", "frontend f\n    acl a src,nope x\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : unknown converter 'nope' in ACL expression 'src,nope'."),
    reject("bad integer pattern", "frontend f\n    acl a dst_port 80x\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : '80x' is not a number."),
    reject("bad address pattern", "frontend f\n    acl a src 1.2.3.4/33\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : '1.2.3.4/33' is not a valid IPv4 or IPv6 address."),
    reject("unknown match method", "frontend f\n    acl a src -m foo 1\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : unknown matching method 'foo' when parsing ACL expression."),
    reject("unknown ACL flag", "frontend f\n    acl a src -x 1\n",
           "parsing [t.cfg:2] : error detected while parsing ACL 'a' : '-x' is not a valid ACL option. Please use '--' "
           "before any pattern beginning with a '-'."),
    reject("invalid ACL name", "frontend f\n    acl a/b src 1.2.3.4\n",
           "parsing [t.cfg:2] : character '/' is not permitted in acl name 'a/b'."),
    accept("ACL forms", "frontend f\n    acl a path_beg,lower /x\n    acl b hdr_beg(host),lower x\n"
                        "    acl c req.hdr(host),lower,upper x\n    acl d dst_port 80-90 1:2 ge 3\n"
                        "    acl e req_ssl_ver 3.0-3.1\n    acl f src 10.0.0.0/8 ::1 192.168.0.0/255.255.0.0\n"),
    reject("bad log-format expression", "frontend f\n    mode http\n    http-request add-header x %[hdr(arg))]\n",
           "parsing [t.cfg:3] : error detected in frontend 'f' while parsing 'http-request add-header' rule : expected "
           "']' after 'hdr(arg)', but found ')'."),
    reject("unknown log-format variable", "frontend f\n    mode http\n    http-request add-header x %foo\n",
           "parsing [t.cfg:3] : error detected in frontend 'f' while parsing 'http-request add-header' rule : no such "
           "format variable 'foo'. If you wanted to emit the '%' character verbatim, you need to use '%%'."),
    # -- servers ----------------------------------------------------------------------------------
    reject("server without an address", "backend b\n    server s\n",
           "[t.cfg:2] : 'server' expects <name> and <addr>[:<port>] as arguments."),
    reject("duplicate server name", "backend b\n    server s 1.2.3.4\n    server s 1.2.3.5\n",
           "parsing [t.cfg:3] : backend 'b', another server named 's' was already defined at line 2, please use distinct names."),
    reject("duplicate server id", "backend b\n    server s 1.2.3.4 id 1\n    server t 1.2.3.4 id 1\n",
           "[t.cfg:3] : 'server b/t' : 'id' : custom id 1 already used at t.cfg:2 ('server s')."),
    reject("weight out of range", "backend b\n    server s 1.2.3.4 weight 300\n",
           "[t.cfg:2] : 'server b/s' : weight of server s is not within 0 and 256 (300).."),
    reject("unknown server keyword", "backend b\n    server s 1.2.3.4 chek\n",
           "[t.cfg:2] : 'server b/s' : unknown keyword 'chek'; did you mean 'check' maybe ?"),
    reject("bad server inter (named agent-inter by 2.6)", "backend b\n    server s 1.2.3.4 inter 1x\n",
           "[t.cfg:2] : 'server b/s' : unexpected character 'x' in 'agent-inter' argument of server s.."),
    reject("rise 0", "backend b\n    server s 1.2.3.4 rise 0\n", "[t.cfg:2] : 'server b/s' : 'rise' has to be > 0.."),
    reject("bad on-error", "backend b\n    server s 1.2.3.4 on-error foo\n",
           "[t.cfg:2] : 'server b/s' : 'on-error' expects one of 'fastinter', 'fail-check', 'sudden-death' or "
           "'mark-down' but got 'foo'."),
    reject("address in default-server", "backend b\n    default-server 1.2.3.4\n",
           "[t.cfg:2] : unknown keyword '1.2.3.4'. Hint: no address was expected for this server."),
    reject("bare IPv6 server address", "backend b\n    server s ::1\n", "[t.cfg:2] : 'server b/s' : could not resolve address ':'."),
    reject("server port out of range", "backend b\n    server s 127.0.0.1:65536\n", "[t.cfg:2] : 'server b/s' : invalid port '65536'"),
    accept("atoi-read server values", "backend b\n    server s 1.2.3.4 maxconn abc weight abc port 70000\n"),
    reject("server-template zero", "backend b\n    server-template s 0 1.2.3.4\n",
           "[t.cfg:2] : Wrong server-template number or range arg '0'."),
    reject("server-template reversed range", "backend b\n    server-template s 3-1 1.2.3.4\n",
           "[t.cfg:2] : Wrong server-template number or range arg '3-1'."),
    reject("server-template name clash", "backend b\n    server-template s 2 1.2.3.4\n    server s1 1.2.3.4\n",
           "parsing [t.cfg:3] : backend 'b', another server named 's1' was already defined at line 2, please use distinct names."),
    # -- bind -------------------------------------------------------------------------------------
    reject("bind without address", "frontend f\n    bind\n",
           "parsing [t.cfg:2] : 'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments."),
    reject("bind without port", "frontend f\n    bind 127.0.0.1\n", "parsing [t.cfg:2] : 'bind' : missing port specification in '127.0.0.1'"),
    reject("unknown bind keyword", "listen x\n    bind :1 v4v7\n",
           "parsing [t.cfg:2] : 'bind :1' in section 'listen': unknown keyword 'v4v7'; did you mean 'v4v6' maybe ?"),
    reject("bind mode must be octal", "frontend f\n    bind :80 mode 9\n",
           "parsing [t.cfg:2] : 'bind :80' in section 'frontend' : 'mode' : missing or invalid mode '9' (octal integer expected)"),
    # -- log --------------------------------------------------------------------------------------
    reject("log without facility", "defaults\n    log 127.0.0.1\n",
           "parsing [t.cfg:2] : log : expects <address> and <facility> or global as arguments"),
    reject("unknown log facility", "defaults\n    log 127.0.0.1 foo\n", "parsing [t.cfg:2] : log : unknown log facility 'foo'"),
    reject("log port range", "defaults\n    log 127.0.0.1:1-2 local0\n",
           "parsing [t.cfg:2] : log : port range not permitted here in '127.0.0.1:1-2'"),
    reject("log length", "defaults\n    log 127.0.0.1 len 10 local0\n",
           "parsing [t.cfg:2] : log : invalid log length '10', must be between 80 and 65535"),
    # -- .if blocks -------------------------------------------------------------------------------
    reject("lone .endif", "global\n.endif\n", "parsing [t.cfg:2]: lone '.endif' with no matching '.if'."),
    reject("lone .else", "global\n.else\n", "parsing [t.cfg:2]: lone '.else' with no matching '.if'."),
    reject("lone .elif", "global\n.elif 1\n", "parsing [t.cfg:2]: lone '.elif' with no matching '.if'."),
    reject("non-terminated .if", "global\n.if 1\n    daemon\n.if 0\n.endif\n\n\n", "parsing [t.cfg:7]: non-terminated '.if' block."),
    reject(".else after .else", "global\n.if 1\n.else\n.else\n.endif\n", "parsing [t.cfg:4]: '.else' after '.else' is not permitted."),
    reject(".elif after .else", "global\n.if 1\n.else\n.elif 1\n.endif\n", "parsing [t.cfg:4]: '.elif' after '.else' is not permitted."),
    reject("argument after .endif", "global\n.if 1\n.endif foo\n", "parsing [t.cfg:3]: Unexpected argument 'foo' for '.endif'."),
    reject("unknown directive", "global\n.foo\n", "parsing [t.cfg:2]: unknown directive '.foo'."),
    reject("unparsable condition", "global\n.if strstr(abc,b)\n.endif\n",
           "parsing [t.cfg:2]: unparsable conditional expression 'strstr(abc,b)' in '.if' at position 1:\n"
           "  .if strstr(abc,b)\n      ^"),
    reject("condition error on .elif", "global\n.if 0\n.elif 1 2\n.endif\n",
           "parsing [t.cfg:3]: unexpected character '2' at the end of conditional expression '1 2' in '.elif' at "
           "position 3:\n  .elif 1 2\n          ^"),
    accept("untaken branches are not evaluated", "global\n.if 1\n.elif foo(\n.endif\n.if 0\n.if foo(\n.endif\n.endif\n"),
    accept("keywords in untaken branches are not parsed", "global\n.if 0\n    bogus\n.notice x y\n.foo\n.endif\n"),
    reject("quoting errors count even in untaken branches", "global\n.if 0\n    .notice \"unterminated\n.endif\n",
           "parsing [t.cfg:3]: unmatched quote at position 13:\n  .notice \"unterminated\n          ^"),
    reject(".alert", "global\n.alert \"stop here\"\n", "parsing [t.cfg:2]: 'stop here'."),
    reject(".notice with two arguments", "global\n.notice a b\n",
           "parsing [t.cfg:2]: Unexpected argument 'b' for '.notice'. Use quotes if the message should contain spaces."),
    reject("too many nested .if", "global\n" + ".if 1\n" * 101 + ".endif\n" * 101,
           "parsing [t.cfg:101]: too many nested '.if', max is 100."),
    # -- file level -------------------------------------------------------------------------------
    reject("missing LF on the last line", "global\n    daemon", "parsing [t.cfg:2]: Missing LF on last line, file might have been truncated at position 11."),
    reject("blank last line without LF", "global\n  ", "parsing [t.cfg:2]: Missing LF on last line, file might have been truncated at position 3."),
    reject("NUL byte", "global\n    daemon\x00x\n    bogus\n", "parsing [t.cfg:2]: Stray NUL character at position 11."),
    reject("65 words", "global\n    description " + " ".join(f"w{i}" for i in range(1, 70)) + "\n",
           "parsing [t.cfg:2]: too many words, truncating after word 64, position 252: <w63>."),
    reject("trailing backslash is not a continuation", "global\n    daemon \\\n    quiet\n",
           "parsing [t.cfg:2] : 'daemon' cannot handle unexpected argument '\\'."),
]


@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_verdict_and_first_alert(case: Case) -> None:
    assert first_alert(case.text) == case.alert


def _haproxy_first_alert(text: str, tmp: str) -> tuple[int, str | None]:
    path = os.path.join(tmp, NAME)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8", "surrogateescape"))
    assert HAPROXY is not None
    run = subprocess.run([HAPROXY, "-c", "-f", NAME], capture_output=True, cwd=tmp, timeout=30,
                         env={"PATH": os.environ.get("PATH", "")})
    lines = run.stderr.decode("utf-8", "replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("[ALERT]") and "Error(s) found" not in line and "Fatal errors found" not in line:
            msg = [line.split(" : config : ", 1)[1]]
            for cont in lines[i + 1:]:
                if cont.startswith(("[", "Configuration", "Warnings")):
                    break
                msg.append(cont)
            return run.returncode, "\n".join(msg)
    return run.returncode, None


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed: the table is not re-checked")
@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_haproxy_agrees(case: Case, tmp_path: pathlib.Path) -> None:
    code, alert = _haproxy_first_alert(case.text, str(tmp_path))
    if case.alert is None:
        assert code in (0, 2) and alert is None
    else:
        assert code == 1
        # post-parse messages: haproxy-py appends the proxy's file:line, HAProxy gives none
        assert alert is not None and case.alert.startswith(alert)
        if not re.search(r" \(t\.cfg:\d+\)$", case.alert):
            assert case.alert == alert


# -- what the model contains ----------------------------------------------------------------------

def test_last_defaults_wins_and_anonymous_defaults_reset() -> None:
    result = load("""
        defaults
            mode http
            timeout client 5s
            retries 5
        defaults
            timeout client 7s
        frontend f
            bind :1
    """)
    fe = result.config.proxies[0]
    assert (fe.mode, fe.timeouts.client, fe.retries) == ("tcp", 7000, 3)


def test_named_defaults_chain_and_from() -> None:
    result = load("""
        defaults A
            mode http
            timeout client 5s
            timeout connect 1s
        defaults B from A
            timeout client 9s
        defaults
            mode tcp
        frontend x from B
            bind :1
        backend y
    """)
    x, y = result.config.proxies
    assert (x.mode, x.timeouts.client, x.timeouts.connect) == ("http", 9000, 1000)
    assert (y.mode, y.timeouts.client) == ("tcp", None)


def test_proxy_values_override_defaults_copy() -> None:
    result = load("""
        defaults
            timeout server 10s
            option allbackups
            log 127.0.0.1 local0
        backend b
            timeout server 20s
            no option allbackups
            no log
    """)
    be = result.config.proxies[0]
    assert be.timeouts.server == 20000 and be.logs == ()
    assert "allbackups" not in be.options and "no-allbackups" in be.options


def test_no_option_http_server_close_only_clears_itself() -> None:
    result = load("""
        defaults
            option httpclose
        backend a
            no option http-server-close
        backend b
            no option httpclose
        backend c
            option http-server-close
    """)
    assert [p.http_conn_mode for p in result.config.proxies] == ["close", "keep-alive", "server-close"]


def test_no_option_redispatch_overrides_defaults() -> None:
    result = load("""
        defaults
            option redispatch
        backend a
        backend b
            no option redispatch
        backend c
            option redispatch 2
    """)
    assert [p.redispatch for p in result.config.proxies] == [-1, 0, 2]


def test_default_server_then_server_parameters() -> None:
    result = load("""
        defaults
            default-server inter 3s fall 5
        backend b
            default-server rise 4
            server s1 127.0.0.1:1 check
            server s2 127.0.0.1:2 check fall 2 no-check
    """)
    s1, s2 = result.config.proxies[0].servers
    assert (s1.inter, s1.fall, s1.rise, s1.check) == (3000, 5, 4, True)
    assert (s2.fall, s2.check) == (2, False)


def test_server_ids_fill_the_gaps_left_by_explicit_ids() -> None:
    result = load("""
        backend b
            server a 127.0.0.1:1
            server b 127.0.0.1:2 id 1
            server c 127.0.0.1:3
    """)
    assert [(s.name, s.id) for s in result.config.proxies[0].servers] == [("a", 2), ("b", 1), ("c", 3)]


def test_server_template_declares_numbered_servers() -> None:
    result = load("""
        backend b
            server-template web 3 127.0.0.1:8080 check
            server-template api 5-6 127.0.0.1:9000
    """)
    servers = result.config.proxies[0].servers
    assert [s.name for s in servers] == ["web1", "web2", "web3", "api5", "api6"]
    assert [s.id for s in servers] == [1, 2, 3, 4, 5]
    assert all(s.check for s in servers[:3]) and not servers[3].check


def test_server_address_forms_in_a_backend() -> None:
    result = load("""
        backend b
            server a 10.0.0.1
            server b 10.0.0.1:+10
            server c [::1]:80
            server d /tmp/app.sock
    """)
    assert [str(s.address) for s in result.config.proxies[0].servers] == ["10.0.0.1", "10.0.0.1:+10", "[::1]:80",
                                                                          "/tmp/app.sock"]


def test_proxy_ids_follow_declaration_order() -> None:
    result = load("""
        frontend f
            bind :1
        backend b
            id 1
        listen l
            bind :2
    """)
    assert [(p.name, p.id) for p in result.config.proxies] == [("f", 2), ("b", 1), ("l", 3)]


def test_a_global_stats_socket_takes_proxy_id_1() -> None:
    # HAProxy 2.6's `show stat` iid: fe 2, be 3, li 4 with `stats socket` in global; 1, 2, 3 without
    result = load("""
        global
            stats socket /tmp/haproxy-py-test.sock
        frontend fe
            bind :1
        backend be
        listen li
            bind :2
    """)
    assert [(p.name, p.id) for p in result.config.proxies] == [("fe", 2), ("be", 3), ("li", 4)]


def test_env_in_addresses_and_setenv() -> None:
    result = load("""
        global
            setenv BACK 127.0.0.1:9000
        frontend f
            bind "127.0.0.1:${PORT}"
            bind 127.0.0.1:$PORT2
        backend b
            server s "${BACK}"
    """, env={"PORT": "8080", "PORT2": "8081"})
    fe, be = result.config.proxies
    assert [b.addresses[0].port_lo for b in fe.binds] == [8080, 8081]
    assert str(be.servers[0].address) == "127.0.0.1:9000"


def test_if_blocks_select_lines() -> None:
    result = load("""
        global
        .if defined(FLAG)
            maxconn 100
        .elif streq("$MODE",fast)
            maxconn 200
        .else
            maxconn 300
        .endif
        .if version_atleast(2.4) && !feature(NOSUCH)
            nbthread 2
        .endif
    """, env={"MODE": "fast"})
    assert (result.config.global_.maxconn, result.config.global_.nbthread) == (200, 2)


def test_notices_and_warnings_of_directives() -> None:
    result = load("""
        global
        .notice "line ${.LINE} of ${.FILE}"
        .warning "careful"
    """)
    assert [body(d) for d in result.notices] == ["parsing [t.cfg:2]: 'line 2 of t.cfg'."]
    assert "parsing [t.cfg:3]: 'careful'." in [body(d) for d in result.warnings]


def test_alert_stops_parsing() -> None:
    with pytest.raises(ConfigError) as exc:
        load("""
            global
            .alert "stop"
                bogus
        """)
    assert [body(d) for d in exc.value.alerts] == ["parsing [t.cfg:2]: 'stop'."]


def test_keywords_after_a_refused_frontend_header_are_errors() -> None:
    with pytest.raises(ConfigError) as exc:
        loader.load_text("frontend x bar\n    bind :1\n", NAME, env={}, resolve=False)
    assert [(body(d), d.fatal) for d in exc.value.alerts] == [
        ("parsing [t.cfg:1] : please use the 'bind' keyword for listening addresses.", False),
        ("parsing [t.cfg:2] : 'listen' or 'defaults' expected.", True),
    ]


def test_address_on_a_frontend_line_is_a_non_fatal_alert() -> None:
    """2.6 prints an alert for `frontend name addr` yet accepts the file if nothing else follows."""
    result = loader.load_text("frontend x bar\n", NAME, env={}, resolve=False)
    assert [body(d) for d in result.alerts] == ["parsing [t.cfg:1] : please use the 'bind' keyword for listening addresses."]
    assert result.config.proxies == ()


def test_parsing_stops_after_50_fatal_errors() -> None:
    with pytest.raises(ConfigError) as exc:
        loader.load_text("global\n" + "foo\n" * 60, NAME, env={}, resolve=False)
    alerts = [body(d) for d in exc.value.alerts]
    assert len(alerts) == 51
    assert alerts[-1] == "parsing [t.cfg:52]: too many fatal errors (50), stopping now."


def test_every_file_starts_outside_any_section(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a.cfg", tmp_path / "b.cfg"
    first.write_text("global\n    daemon\n")
    second.write_text("    maxconn 10\n")
    with pytest.raises(ConfigError) as exc:
        loader.load([str(first), str(second)], env={}, resolve=False)
    assert body(exc.value.alerts[0]) == f"parsing [{second}:1]: unknown keyword 'maxconn' out of section."


def test_directory_loads_cfg_files_in_order(tmp_path: pathlib.Path) -> None:
    (tmp_path / "b.cfg").write_text("backend b2\n")
    (tmp_path / "a.cfg").write_text("backend b1\n")
    (tmp_path / ".hidden.cfg").write_text("bogus\n")
    (tmp_path / "c.txt").write_text("bogus\n")
    result = loader.load([str(tmp_path)], env={}, resolve=False)
    assert [p.name for p in result.config.proxies] == ["b1", "b2"]


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as exc:
        loader.load(["/nonexistent.cfg"], env={})
    assert body(exc.value.alerts[0]) == "Cannot open configuration file/directory /nonexistent.cfg : No such file or directory"


def test_default_path_config_makes_files_relative_to_the_config(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "503.http").write_text("HTTP/1.0 503 Service Unavailable\r\n\r\n")
    (conf / "main.cfg").write_text("global\n    default-path config\ndefaults\n    errorfile 503 503.http\n"
                                   "backend b\n")
    result = loader.load([str(conf / "main.cfg")], env={}, resolve=False)
    assert result.config.proxies[0].errorfiles == ((503, str(conf / "503.http")),)


def test_alerts_name_file_and_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load("""
            global
                maxconn x
            frontend f
                bind :1
                default_backend nowhere
            backend b
                server s1 127.0.0.1:80 weight 999
        """)
    for d in exc.value.alerts:
        assert d.where == Location(NAME, 2) or d.where == Location(NAME, 7)
    assert len(exc.value.alerts) == 2  # post-parse checks only run on a configuration that parsed


def test_warnings_of_a_valid_configuration() -> None:
    result = load("""
        frontend f
            bind :1
            http-request deny
            option httplog
            balance roundrobin
        backend b
            balance uri
            server s 127.0.0.1:1
    """)
    assert sorted(body(d) for d in result.warnings) == sorted([
        "parsing [t.cfg:5] : 'balance' ignored because frontend 'f' has no backend capability.",
        "'http-request' rules ignored for frontend 'f' as they require HTTP mode.",
        "log format ignored for frontend 'f' since it has no log address.",
        "Layer 7 hash not possible for backend 'b' (needs 'mode http'). Falling back to round robin.",
        "missing timeouts for frontend 'f'.\n   | While not properly invalid, you will certainly encounter various "
        "problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are "
        "set to a non-zero value: 'client', 'connect', 'server'.",
        "missing timeouts for backend 'b'.\n   | While not properly invalid, you will certainly encounter various "
        "problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are "
        "set to a non-zero value: 'client', 'connect', 'server'.",
    ])
