"""The ACL engine (core.acl + core.pattern), table-driven and without sockets.

Matchers, flags, pattern files, operators and ranges are checked one ACL line at a time; then
conditions (if/unless, !, or/||, implicit AND, lines of one name ORed) and their three-valued
result while data is incomplete; then the rule lists built on them (tcp-request, use_backend)
and maps. Configurations go through the real config loader, as the runtime gets them.
"""

from __future__ import annotations

import ipaddress
import os

import attrs
import pytest

from haproxy_py.config.errors import Location
from haproxy_py.config.loader import load_text
from haproxy_py.config.model import Acl, Condition
from haproxy_py.core.acl import (
    FAIL,
    MISS,
    PASS,
    AclError,
    AclSet,
    ProxyRules,
    Verdict,
    choose_backend,
    compile_acl_line,
    run_tcp_rules,
)
from haproxy_py.core.fetch import STR, Sample, SampleContext, SampleError, compile_expr
from haproxy_py.core.pattern import PatternError, PatternSet, load_map, match_word, read_map_file, read_pattern_file

HERE = Location("test.cfg", 1)


@attrs.define
class View:
    method: bytes = b"GET"
    uri: bytes = b"/static/img/logo.PNG?v=3"
    version: bytes = b"HTTP/1.1"
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=lambda: [
        (b"host", b"www.example.com"), (b"user-agent", b"curl/8.0"), (b"x-n", b"10, 20")])


def ctx(**kw: object) -> SampleContext:
    base: dict[str, object] = dict(src=ipaddress.ip_address("10.1.2.3"), src_port=5555,
                                   dst=ipaddress.ip_address("192.168.0.1"), dst_port=80, frontend="fe",
                                   http=View())
    base.update(kw)
    return SampleContext(**base)  # type: ignore[arg-type]


def line(fetch: str, *words: str, flags: tuple[str, ...] = ()) -> int:
    acl = compile_acl_line(Acl(name="t", fetch=fetch, flags=flags, patterns=words, where=HERE))
    return acl.execute(ctx())


# (fetch, flags, patterns, result) -- one ACL line against the request above
MATCHERS: list[tuple[str, tuple[str, ...], tuple[str, ...], int]] = [
    # str (exact), -i
    ("path", (), ("/static/img/logo.PNG",), PASS),
    ("path", (), ("/static/img/logo.png",), FAIL),
    ("path", ("-i",), ("/STATIC/img/logo.png",), PASS),
    ("hdr(host)", (), ("nope", "www.example.com"), PASS),  # patterns of a line are ORed
    # beg / end / sub
    ("path", ("-m", "beg"), ("/static/",), PASS),
    ("path_beg", (), ("/img",), FAIL),
    ("path_end", (), (".png",), FAIL),
    ("path_end", ("-i",), (".png",), PASS),
    ("path_sub", (), ("img/lo",), PASS),
    ("url_sub", (), ("v=3",), PASS),
    ("path", ("-m", "sub"), ("zzz",), FAIL),
    # reg
    ("path_reg", (), (r"^/static/.*\.PNG$",), PASS),
    ("path_reg", (), (r"\.png$",), FAIL),
    ("path_reg", ("-i",), (r"\.png$",), PASS),
    ("hdr(user-agent)", ("-m", "reg"), ("^curl/",), PASS),
    # dir: slash-delimited component
    ("path_dir", (), ("img",), PASS),
    ("path_dir", (), ("/static/img/",), PASS),  # delimiters around the pattern are trimmed
    ("path_dir", (), ("im",), FAIL),
    ("path_dir", (), ("static/img",), PASS),
    # dom: dot/slash-delimited component
    ("hdr_dom(host)", (), ("example.com",), PASS),
    ("hdr_dom(host)", (), ("ample.com",), FAIL),
    ("hdr_dom(host)", (), ("www",), PASS),
    ("hdr_dom(host)", ("-i",), ("EXAMPLE",), PASS),
    ("hdr(host)", ("-m", "dom"), ("www.example",), PASS),
    # len
    ("path_len", (), ("20",), PASS),
    ("path_len", (), ("1:19",), FAIL),
    ("hdr(host)", ("-m", "len"), ("gt", "10"), PASS),
    # int with ranges and operators (and comma-split header values, each tried)
    ("hdr_val(x-n)", (), ("20",), PASS),
    ("hdr_val(x-n)", (), ("11:19",), FAIL),
    ("hdr_val(x-n)", (), ("15:",), PASS),
    ("hdr_val(x-n)", (), (":9",), FAIL),
    ("hdr_val(x-n)", (), ("-10",), PASS),  # '-' is a range separator: "-10" is ":10"
    ("hdr_val(x-n)", (), ("ge", "20"), PASS),
    ("hdr_val(x-n)", (), ("gt", "20"), FAIL),
    ("hdr_val(x-n)", (), ("lt", "11"), PASS),
    ("hdr_val(x-n)", (), ("le", "9"), FAIL),
    ("hdr_val(x-n)", (), ("eq", "5", "10"), PASS),
    ("hdr_val(x-n)", (), ("gt", "30", "eq", "10"), PASS),  # an operator applies until the next one
    ("src_port", (), ("5555",), PASS),
    ("dst_port", (), ("80", "443"), PASS),
    ("hdr(x-n)", ("-m", "int"), ("10",), PASS),  # strings are cast to integers
    # ip: CIDR, dotted masks, v4-mapped IPv6
    ("src", (), ("10.0.0.0/8",), PASS),
    ("src", (), ("10.1.2.3",), PASS),
    ("src", (), ("10.1.2.4",), FAIL),
    ("src", (), ("10.1.0.0/255.255.0.0",), PASS),
    ("src", (), ("10.0.0.3/255.0.0.255",), PASS),  # a non-contiguous mask
    ("src", (), ("::ffff:10.1.2.0/120",), PASS),
    ("src", (), ("2001:db8::/32",), FAIL),
    ("dst", (), ("192.168.0.0/16",), PASS),
    ("hdr(host)", ("-m", "ip"), ("0.0.0.0/0",), FAIL),  # not an address: no match
    # found / bool
    ("hdr(host)", ("-m", "found"), (), PASS),
    ("hdr(x-none)", ("-m", "found"), (), FAIL),
    ("hdr_cnt(x-n)", ("-m", "bool"), (), PASS),
    ("hdr_cnt(x-none)", ("-m", "bool"), (), FAIL),
    ("always_true", (), (), PASS),
    ("always_false", (), (), FAIL),
    # bin (hex patterns)
    ("method,lower", ("-m", "bin"), ("676574",), PASS),
    # method: known methods compare exactly; -i only helps unknown ones
    ("method", (), ("GET",), PASS),
    ("method", (), ("get",), FAIL),
    ("method", ("-i",), ("get",), FAIL),
    # converters decide the default method from their output type
    ("hdr(host),lower", (), ("www.example.com",), PASS),
    ("hdr(host),length", (), ("15",), PASS),
    ("hdr(host),field(2,.)", (), ("example",), PASS),
    # no sample at all
    ("hdr(x-none)", (), ("x",), FAIL),
    ("url_param(v)", (), ("3",), PASS),
    ("query", ("-m", "beg"), ("v=",), PASS),
]


@pytest.mark.parametrize(("fetch", "flags", "patterns", "result"), MATCHERS,
                         ids=[f"{m[0]}{''.join(m[1])}:{'|'.join(m[2])}" for m in MATCHERS])
def test_matcher_row(fetch: str, flags: tuple[str, ...], patterns: tuple[str, ...], result: int) -> None:
    assert line(fetch, *patterns, flags=flags) == result


def test_match_word_delimiters() -> None:
    assert match_word(b"a.b.c", b".b.", False, b".")
    assert match_word(b"a.b.c", b"a.b.c", False, b".")
    assert not match_word(b"a.bb.c", b"b", False, b".")
    assert match_word(b"A.B", b"b", True, b".")
    assert not match_word(b"abc", b"", False, b".")


def test_ssl_version_patterns_are_dotted() -> None:
    ps = PatternSet(method="int", dotted=True)
    ps.add_words(["3.1:3.3"])
    assert ps.match(Sample("sint", 0x30003)) and not ps.match(Sample("sint", 0x30004))
    with pytest.raises(PatternError, match="dotted"):
        PatternSet(method="int", dotted=True).add("x.1")


@pytest.mark.parametrize(
    ("method", "pattern", "error"),
    [
        ("int", "abc", "not a number"),
        ("int", "5:2", "not a valid integer range"),
        ("ip", "10.0.0.0/33", "not a valid"),
        ("reg", "(", "regex"),
        ("bin", "xyz", "hex"),
    ],
)
def test_bad_patterns_are_refused(method: str, pattern: str, error: str) -> None:
    with pytest.raises(PatternError, match=error):
        PatternSet(method=method, resolve=False).add(pattern)


def test_ip_patterns_resolve_names_unless_no_dns() -> None:
    ps = PatternSet(method="ip")
    ps.add("localhost")
    assert ps.match(Sample("ipv4", ipaddress.ip_address("127.0.0.1")))
    with pytest.raises(PatternError):
        PatternSet(method="ip", resolve=False).add("localhost")


# ---- files ---------------------------------------------------------------------------------------


def test_pattern_file_rules(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "p.lst")
    with open(path, "w") as f:
        f.write("# comment\n\n   /static/\n#/admin/\n  # indented hash is a pattern\n/api/ \r\n")
    assert read_pattern_file(path) == ["/static/", "# indented hash is a pattern", "/api/ "]
    assert line("path_beg", flags=("-f", path)) == PASS
    assert line("path_beg", "/nothing", flags=("-f", path)) == PASS  # file and inline patterns ORed
    with pytest.raises(AclError, match="failed to open pattern file"):
        line("path_beg", flags=("-f", os.path.join(tmp_path, "missing")))


def test_several_pattern_files_and_icase(tmp_path: os.PathLike[str]) -> None:
    a = os.path.join(tmp_path, "a")
    b = os.path.join(tmp_path, "b")
    with open(a, "w") as f:
        f.write("nope.org\n")
    with open(b, "w") as f:
        f.write("WWW.EXAMPLE.COM\n")
    assert line("hdr(host)", flags=("-f", a, "-f", b)) == FAIL
    assert line("hdr(host)", flags=("-i", "-f", a, "-f", b)) == PASS


def test_map_file_read_as_patterns_with_M(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "hosts.map")
    with open(path, "w") as f:
        f.write("www.example.com   be_www  \nother.org\tbe_other\n")
    assert read_map_file(path) == [("www.example.com", "be_www"), ("other.org", "be_other")]
    assert line("hdr(host)", flags=("-M", "-f", path)) == PASS


# ---- conditions -----------------------------------------------------------------------------------


def cfg_rules(body: str) -> ProxyRules:
    text = ("defaults\n  mode tcp\n  timeout client 1s\n  timeout connect 1s\n  timeout server 1s\n"
            "frontend fe\n  bind 127.0.0.1:1\n" + "".join(f"  {x}\n" for x in body.strip().split("\n")) +
            "  default_backend dflt\nbackend dflt\n  server s 127.0.0.1:2\nbackend other\n  server s 127.0.0.1:3\n"
            "backend be_www\n  server s 127.0.0.1:4\n")
    return ProxyRules.build(load_text(text).config.proxies[0])


def decide(rules: ProxyRules, c: SampleContext | None = None) -> str | None:
    return choose_backend(rules.switching, c or ctx(), {"dflt", "other", "be_www"}.__contains__)


@pytest.mark.parametrize(
    ("condition", "chosen"),
    [
        ("if TRUE", "other"),
        ("if FALSE", None),
        ("unless FALSE", "other"),
        ("unless TRUE", None),
        ("if !FALSE", "other"),
        ("if TRUE FALSE", None),  # implicit AND
        ("if TRUE !FALSE TRUE", "other"),
        ("if FALSE or TRUE", "other"),
        ("if FALSE || TRUE", "other"),
        ("if FALSE || FALSE or FALSE", None),
        ("if TRUE FALSE || TRUE", "other"),  # AND binds tighter than OR
        ("if FALSE || TRUE FALSE", None),
        ("if { src 10.0.0.0/8 } { dst_port 80 }", "other"),
        ("if !{ src 10.0.0.0/8 } || { dst_port 81 }", None),
        ("if LOCALHOST", None),
        ("if METH_GET", "other"),
        ("if HTTP_1.1 !HTTP_1.0", "other"),
        ("if HTTP_URL_SLASH !HTTP_URL_ABS", "other"),
        ("unless METH_POST", "other"),
    ],
)
def test_condition_logic(condition: str, chosen: str | None) -> None:
    assert decide(cfg_rules(f"use_backend other {condition}")) == chosen


def test_lines_of_one_acl_name_are_ored_wherever_they_are() -> None:
    rules = cfg_rules("acl host_ok hdr(host) nope.org\nuse_backend other if host_ok\nacl host_ok hdr(host) www.example.com")
    assert decide(rules) == "other"
    rules = cfg_rules("acl a hdr(host) nope.org\nacl a src 172.16.0.0/12\nuse_backend other if a")
    assert decide(rules) is None


def test_user_acl_shadows_a_predefined_name() -> None:
    assert decide(cfg_rules("acl TRUE always_false\nuse_backend other if TRUE")) is None


def test_unknown_acl_name_is_an_error() -> None:
    acls = AclSet([])
    with pytest.raises(AclError, match="no such ACL : 'nope'"):
        acls.condition(Condition(negate=False, terms=(((False, "nope"),),)))


# three-valued logic while data is incomplete: (condition, payload, final, expected match())
PARTIAL = [
    ("if { req.len ge 5 }", b"ab", False, None),
    ("if { req.len ge 5 }", b"ab", True, False),
    ("if { req.len ge 5 }", b"abcde", False, True),
    ("unless { req.len ge 5 }", b"ab", False, None),
    ("if !{ req.len ge 5 }", b"ab", False, None),  # negation keeps "unknown"
    ("if { req.len ge 5 } FALSE", b"ab", False, False),  # AND with a sure FALSE is FALSE
    ("if FALSE { req.len ge 5 }", b"ab", False, False),
    ("if { req.len ge 5 } || TRUE", b"ab", False, True),  # OR with a sure TRUE is TRUE
    ("if { req.len ge 5 } || FALSE", b"ab", False, None),
    ("if { req.ssl_hello_type 1 }", b"\x16\x03\x01\x02", False, None),
    ("if { req.ssl_hello_type 1 }", b"GET /", False, False),  # plain text: decided at once
    ("if { req.ssl_hello_type 1 }", b"\x16\x03\x01\x02", True, False),
    ("if WAIT_END", b"", False, None),
    ("if WAIT_END", b"", True, True),
    ("if { req.payload(0,4) -m str GET\\  }", b"GE", False, None),
    ("if { req.payload(0,4) -m str GET\\  }", b"POST", False, False),
]


@pytest.mark.parametrize(("condition", "payload", "final", "expected"), PARTIAL)
def test_incomplete_data(condition: str, payload: bytes, final: bool, expected: bool | None) -> None:
    rules = cfg_rules(f"tcp-request inspect-delay 1s\ntcp-request content accept {condition}")
    cond = rules.content[0].cond
    assert cond is not None
    c = SampleContext(payload=payload, final=final)
    assert cond.match(c) is expected
    assert (cond.execute(c) == MISS) is (expected is None)


# ---- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules_text", "payload", "final", "verdict"),
    [
        ("tcp-request content accept if { req.len gt 3 }", b"abcd", False, Verdict.ACCEPT),
        ("tcp-request content accept if { req.len gt 3 }", b"ab", False, Verdict.WAIT),
        ("tcp-request content accept if { req.len gt 3 }", b"ab", True, Verdict.ACCEPT),  # nothing decided: accept
        ("tcp-request content reject if { req.len gt 3 }", b"abcd", False, Verdict.REJECT),
        ("tcp-request content reject if { req.len gt 3 }\ntcp-request content accept", b"ab", False, Verdict.WAIT),
        ("tcp-request content accept if TRUE\ntcp-request content reject", b"", False, Verdict.ACCEPT),
        ("tcp-request content reject if FALSE\ntcp-request content reject", b"", False, Verdict.REJECT),
        ("tcp-request content reject unless { req.payload(0,1) -m bin 16 }", b"\x16", False, Verdict.ACCEPT),
        ("tcp-request content reject unless { req.payload(0,1) -m bin 16 }", b"G", False, Verdict.REJECT),
    ],
)
def test_tcp_content_rules(rules_text: str, payload: bytes, final: bool, verdict: Verdict) -> None:
    rules = cfg_rules("tcp-request inspect-delay 1s\n" + rules_text)
    assert run_tcp_rules(rules.content, SampleContext(payload=payload, final=final)) is verdict


def test_variables_set_by_rules_are_seen_by_later_rules() -> None:
    rules = cfg_rules("tcp-request inspect-delay 1s\n"
                      "tcp-request content set-var(sess.len) req.len\n"
                      "tcp-request content set-var-fmt(txn.tag) len=%[var(sess.len)]\n"
                      "tcp-request content unset-var(txn.none)\n"
                      "tcp-request content accept if { var(sess.len) -m int gt 2 }")
    c = SampleContext(payload=b"abc", final=False)
    assert run_tcp_rules(rules.content, c) is Verdict.ACCEPT
    assert c.get_var("sess.len") == Sample("sint", 3)
    assert c.get_var("txn.tag") == Sample(STR, b"len=3")


def test_set_var_ifnotexists_keeps_the_first_value() -> None:
    rules = cfg_rules("tcp-request inspect-delay 1s\n"
                      "tcp-request content set-var(txn.first,ifnotexists) req.len\n"
                      "tcp-request content accept if { req.len ge 4 }")
    c = SampleContext(payload=b"ab", final=False)
    assert run_tcp_rules(rules.content, c) is Verdict.WAIT
    c.payload = b"abcd"
    assert run_tcp_rules(rules.content, c) is Verdict.ACCEPT
    assert c.get_var("txn.first") == Sample("sint", 2)


def test_connection_rules_use_layer4_only() -> None:
    rules = cfg_rules("tcp-request connection reject if { src 10.0.0.0/8 }")
    assert run_tcp_rules(rules.connection, ctx()) is Verdict.REJECT
    assert run_tcp_rules(rules.connection, ctx(src=ipaddress.ip_address("192.0.2.1"))) is Verdict.ACCEPT


# ---- use_backend --------------------------------------------------------------------------------


def test_first_matching_use_backend_wins_and_default_is_none() -> None:
    rules = cfg_rules("use_backend be_www if { hdr(host) www.example.com }\nuse_backend other")
    assert decide(rules) == "be_www"
    assert decide(rules, ctx(http=View(headers=[]))) == "other"
    assert decide(cfg_rules("use_backend other if FALSE")) is None


def test_dynamic_use_backend_names() -> None:
    rules = cfg_rules("use_backend be_%[req.hdr(host),field(1,.)]\nuse_backend other")
    assert decide(rules) == "be_www"
    # a name that is no backend stops the rules: the default backend, not the next rule
    assert decide(rules, ctx(http=View(headers=[(b"host", b"api.example.com")]))) is None
    # a failed fetch renders "-", which is no backend either
    assert decide(rules, ctx(http=View(headers=[]))) is None


def test_switching_rules_treat_data_as_final() -> None:
    rules = cfg_rules("use_backend other if { req.len lt 5 }")
    c = SampleContext(payload=b"ab", final=False)
    assert decide(rules, c) == "other"
    assert c.final is False  # and leave the context as they found it


# ---- maps ---------------------------------------------------------------------------------------


def write(tmp_path: os.PathLike[str], name: str, text: str) -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.parametrize(
    ("conv", "content", "value", "expected"),
    [
        ("map", "a.example be_a\nb.example be_b\n", b"b.example", b"be_b"),
        ("map", "a.example be_a\n", b"A.example", b"fallback"),  # maps are case-sensitive
        ("map_str", "a be_1\na be_2\n", b"a", b"be_1"),  # first of duplicate keys
        ("map_beg", "/ root\n/api api\n/api/v2 v2\n", b"/api/v2/users", b"v2"),  # longest prefix
        ("map_beg", "/api api\n/api/v2 v2\n", b"/apix", b"api"),
        ("map_sub", "mobile m\nbot b\n", b"googlebot-mobile", b"m"),  # file order
        ("map_end", ".com c\n.example.com e\n", b"www.example.com", b"c"),
        ("map_dom", "example.com ex\n", b"www.example.com", b"ex"),
        ("map_dom", "example.com ex\n", b"notexample.com", b"fallback"),
        ("map_reg", "^/img/.*\\.png$ png\n^/img/ img\n", b"/img/a.png", b"png"),
        ("map_ip", "0.0.0.0/0 any\n10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n", b"10.1.2.3", b"ten-one"),
        ("map_ip", "10.0.0.0/8 ten\n", b"192.0.2.1", b"fallback"),
        ("map_int", "1:10 low\n11: high\n", b"42", b"high"),
        ("map", "key   value with  spaces   \n", b"key", b"value with  spaces"),
        ("map", "# c\n\n  key v\n", b"key", b"v"),
    ],
)
def test_maps(tmp_path: os.PathLike[str], conv: str, content: str, value: bytes, expected: bytes) -> None:
    path = write(tmp_path, "m.map", content)
    expr = compile_expr(f"var(txn.in),{conv}({path},fallback)")
    c = SampleContext()
    c.set_var("txn.in", Sample(STR, value))
    assert expr.evaluate_bytes(c) == expected


def test_map_outputs_and_missing_default(tmp_path: os.PathLike[str]) -> None:
    path = write(tmp_path, "i.map", "a 42\nb 7\n")
    c = SampleContext()
    c.set_var("txn.in", Sample(STR, b"a"))
    assert compile_expr(f"var(txn.in),map_str_int({path},0)").evaluate(c) == Sample("sint", 42)
    c.set_var("txn.in", Sample(STR, b"zz"))
    assert compile_expr(f"var(txn.in),map({path})").evaluate(c) is None  # no default: no sample
    bad = write(tmp_path, "bad.map", "a notanumber\n")
    with pytest.raises(SampleError, match="not an integer"):
        compile_expr(f"var(txn.in),map_str_int({bad})")


def test_map_is_read_once_per_file_version(tmp_path: os.PathLike[str]) -> None:
    path = write(tmp_path, "c.map", "a 1\n")
    first = load_map(path, "str")
    assert load_map(path, "str") is first
    os.utime(path, ns=(1, 1))
    assert load_map(path, "str") is not first


def test_acl_errors_name_the_line() -> None:
    with pytest.raises(AclError) as e:
        compile_acl_line(Acl(name="bad", fetch="src", flags=(), patterns=("300.1.1.1/40",),
                             where=Location("x.cfg", 7)))
    assert str(e.value).startswith("[x.cfg:7] : error detected while parsing ACL 'bad'")
