"""Sample fetches, converters, casts, expressions and templates (core.fetch), table-driven.

Every row evaluates one expression on one context; `values` lists what an ACL sees (every
occurrence) and `single` what a sample expression sees (use_backend %[...], set-var).
"""

from __future__ import annotations

import ipaddress
import zlib

import attrs
import pytest

from haproxy_py.core.fetch import (
    BIN,
    BOOL,
    IPV4,
    IPV6,
    SINT,
    STR,
    Fetched,
    Sample,
    SampleContext,
    SampleError,
    cast,
    compile_expr,
    compile_template,
    parse_raw_request,
    read_int64,
    split_args,
    split_header_list,
    uri_path,
)
from haproxy_py.core.lb.hashing import full_hash


@attrs.define
class View:
    """An HttpView as the HTTP layer would build it."""

    method: bytes = b"GET"
    uri: bytes = b"/a/b.php?x=1&y=2&x=3"
    version: bytes = b"HTTP/1.1"
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=lambda: [
        (b"host", b"Shop.Example.com:8080"),
        (b"accept", b"text/html, application/json;q=0.9, \"a,b\""),
        (b"cookie", b"sid=abc; lang=fr"),
        (b"cookie", b"sid=def"),
        (b"x-forwarded-for", b"10.0.0.1, 192.168.1.2"),
        (b"content-length", b"42"),
    ])
    status: int | None = None
    res_headers: list[tuple[bytes, bytes]] | None = None


def http_ctx(**kw: object) -> SampleContext:
    return SampleContext(http=View(**kw), frontend="fe", backend="")  # type: ignore[arg-type]


L4 = SampleContext(src=ipaddress.ip_address("192.0.2.7"), src_port=40001, dst=ipaddress.ip_address("127.0.0.1"),
                   dst_port=443, frontend="fe_tls", backend="", nbsrv=lambda name: {"be": 2}.get(name))

# (expression, context, values (ACL: all), single (sample: one) ); values/single are python values
ROWS: list[tuple[str, SampleContext, list[object], object]] = [
    ("src", L4, [ipaddress.ip_address("192.0.2.7")], ipaddress.ip_address("192.0.2.7")),
    ("src_port", L4, [40001], 40001),
    ("dst", L4, [ipaddress.ip_address("127.0.0.1")], ipaddress.ip_address("127.0.0.1")),
    ("dst_port", L4, [443], 443),
    ("fe_name", L4, [b"fe_tls"], b"fe_tls"),
    ("be_name", L4, [b"fe_tls"], b"fe_tls"),  # before switching the backend is the frontend
    ("nbsrv(be)", L4, [2], 2),
    ("nbsrv(nosuch)", L4, [], None),
    ("always_true", L4, [1], 1),
    ("always_false", L4, [0], 0),
    ("str(abc)", L4, [b"abc"], b"abc"),
    ("int(-7)", L4, [-7], -7),
    ("method", http_ctx(), [b"GET"], b"GET"),
    ("path", http_ctx(), [b"/a/b.php"], b"/a/b.php"),
    ("path", http_ctx(uri=b"http://h.example/p/q?z"), [b"/p/q"], b"/p/q"),
    ("path", http_ctx(uri=b"http://h.example"), [], None),
    ("path", http_ctx(uri=b"*"), [], None),
    ("pathq", http_ctx(), [b"/a/b.php?x=1&y=2&x=3"], b"/a/b.php?x=1&y=2&x=3"),
    ("url", http_ctx(), [b"/a/b.php?x=1&y=2&x=3"], b"/a/b.php?x=1&y=2&x=3"),
    ("query", http_ctx(), [b"x=1&y=2&x=3"], b"x=1&y=2&x=3"),
    ("query", http_ctx(uri=b"/"), [], None),
    ("query", http_ctx(uri=b"/?"), [b""], b""),
    ("url_param(x)", http_ctx(), [b"1", b"3"], b"1"),
    ("url_param(X,,i)", http_ctx(), [b"1", b"3"], b"1"),
    ("urlp(y)", http_ctx(), [b"2"], b"2"),
    ("url_param(x,;)", http_ctx(uri=b"/p?a=1;x=9"), [b"9"], b"9"),
    ("base", http_ctx(), [b"Shop.Example.com:8080/a/b.php"], b"Shop.Example.com:8080/a/b.php"),
    ("base", http_ctx(headers=[]), [b"/a/b.php"], b"/a/b.php"),
    ("hdr(host)", http_ctx(), [b"Shop.Example.com:8080"], b"Shop.Example.com:8080"),
    ("req.hdr(Host)", http_ctx(), [b"Shop.Example.com:8080"], b"Shop.Example.com:8080"),
    ("hdr(accept)", http_ctx(), [b"text/html", b"application/json;q=0.9", b'"a,b"'], b'"a,b"'),
    ("hdr(accept,1)", http_ctx(), [b"text/html"], b"text/html"),
    ("hdr(accept,-1)", http_ctx(), [b'"a,b"'], b'"a,b"'),
    ("hdr(accept,9)", http_ctx(), [], None),
    ("req.fhdr(accept)", http_ctx(), [b"text/html, application/json;q=0.9, \"a,b\""],
     b"text/html, application/json;q=0.9, \"a,b\""),
    ("hdr(x-forwarded-for,-1)", http_ctx(), [b"192.168.1.2"], b"192.168.1.2"),
    ("hdr_cnt(accept)", http_ctx(), [3], 3),
    ("req.hdr_cnt(cookie)", http_ctx(), [2], 2),
    ("req.fhdr_cnt(x-forwarded-for)", http_ctx(), [1], 1),
    ("hdr_cnt(nosuch)", http_ctx(), [0], 0),
    ("hdr_val(content-length)", http_ctx(), [42], 42),
    ("hdr_ip(x-forwarded-for,1)", http_ctx(), [ipaddress.ip_address("10.0.0.1")], ipaddress.ip_address("10.0.0.1")),
    ("req.cook(sid)", http_ctx(), [b"abc", b"def"], b"def"),  # a sample takes the last occurrence
    ("cook(lang)", http_ctx(), [b"fr"], b"fr"),
    ("req.cook_cnt(sid)", http_ctx(), [2], 2),
    ("req.cook(none)", http_ctx(), [], None),
    ("http_first_req", http_ctx(), [1], 1),
    ("req.ver", http_ctx(), [b"1.1"], b"1.1"),
    ("req.proto_http", http_ctx(), [1], 1),
    ("status", http_ctx(status=503, res_headers=[(b"server", b"x")]), [503], 503),
    ("status", http_ctx(), [], None),
    ("res.hdr(server)", http_ctx(status=200, res_headers=[(b"server", b"nginx"), (b"server", b"b")]),
     [b"nginx", b"b"], b"b"),
    ("res.hdr_cnt(server)", http_ctx(status=200, res_headers=[(b"server", b"a, b")]), [2], 2),
    # converters
    ("hdr(host),lower", http_ctx(), [b"shop.example.com:8080"], b"shop.example.com:8080"),
    ("hdr(host),upper", http_ctx(), [b"SHOP.EXAMPLE.COM:8080"], b"SHOP.EXAMPLE.COM:8080"),
    ("hdr(host),field(1,:)", http_ctx(), [b"Shop.Example.com"], b"Shop.Example.com"),
    ("hdr(host),field(-1,.)", http_ctx(), [b"com:8080"], b"com:8080"),
    ("hdr(host),field(2,.,2)", http_ctx(), [b"Example.com:8080"], b"Example.com:8080"),
    ("hdr(host),field(2,.,0)", http_ctx(), [b"Example.com:8080"], b"Example.com:8080"),
    ("hdr(host),field(5,.)", http_ctx(), [], None),
    ("str(a..b),field(2,.)", L4, [b""], b""),
    ("str(a..b),word(2,.)", L4, [b"b"], b"b"),
    ("str(/x//y/z/),word(-2,/)", L4, [b"y"], b"y"),
    ("str(/x//y/z/),word(1,/,2)", L4, [b"x//y"], b"x//y"),
    ("str(abc),hex", L4, [b"616263"], b"616263"),
    ("str(abc),base64", L4, [b"YWJj"], b"YWJj"),
    ("str(abc),crc32", L4, [zlib.crc32(b"abc")], zlib.crc32(b"abc")),
    ("str(abc),crc32(1)", L4, [full_hash(zlib.crc32(b"abc"))], full_hash(zlib.crc32(b"abc"))),
    ("str(abc),length", L4, [3], 3),
    ("str(a.b.c),regsub(\\.,-)", L4, [b"a-b.c"], b"a-b.c"),
    ("str(a.b.c),regsub(\\.,-,g)", L4, [b"a-b-c"], b"a-b-c"),
    ("str(FooBar),regsub(o+,0,ig)", L4, [b"F0Bar"], b"F0Bar"),
    ("str(abc),regsub('(a)(b)','\\2\\1')", L4, [b"bac"], b"bac"),
    ("str(abc),regsub(b,\\x41)", L4, [b"aAc"], b"aAc"),
    ("str(x),concat(<,,>)", L4, [b"x<>"], b"x<>"),
    ("str('say \"hi\"/\\n'),json", L4, [b'say \\"hi\\"\\/\\\\n'], b'say \\"hi\\"\\/\\\\n'),
    ("str(abc),bytes(1)", L4, [b"bc"], b"bc"),
    ("str(abcdef),bytes(1,2)", L4, [b"bc"], b"bc"),
    ("int(0),bool", L4, [0], 0),
    ("int(5),not", L4, [0], 0),
    ("int(7),add(3),mul(2)", L4, [20], 20),
    ("int(-7),div(2)", L4, [-3], -3),  # truncated toward zero, as in C
    ("int(-7),mod(2)", L4, [-1], -1),
    ("int(1),div(0)", L4, [2**63 - 1], 2**63 - 1),
    ("int(1),mod(0)", L4, [0], 0),
    ("int(6),and(3),or(8),xor(1)", L4, [11], 11),
    ("int(3),neg", L4, [-3], -3),
    ("int(3),odd", L4, [1], 1),
    ("int(3),even", L4, [0], 0),
    ("str(xxabxx),ltrim(x),rtrim(x)", L4, [b"ab"], b"ab"),
    ("str(a%2Fb+c),url_dec", L4, [b"a/b+c"], b"a/b+c"),
    ("str(a+c),url_dec(1)", L4, [b"a c"], b"a c"),
    ("str(a%2),url_dec", L4, [], None),
    ("src,ipmask(24)", L4, [ipaddress.ip_address("192.0.2.0")], ipaddress.ip_address("192.0.2.0")),
    ("ipv6(2001:db8::1),ipmask(8,32)", L4, [ipaddress.ip_address("2001:db8::")], ipaddress.ip_address("2001:db8::")),
    ("str(abc),sdbm", L4, [807794786], 807794786),
    ("str(abc),djb2", L4, [193485963], 193485963),
    ("ipv4(1.2.3.4)", L4, [ipaddress.ip_address("1.2.3.4")], ipaddress.ip_address("1.2.3.4")),
]


def _py(smp: Sample | None) -> object:
    return None if smp is None else smp.value


@pytest.mark.parametrize(("expr", "ctx", "values", "single"), ROWS, ids=[r[0] for r in ROWS])
def test_fetch_row(expr: str, ctx: SampleContext, values: list[object], single: object) -> None:
    compiled = compile_expr(expr)
    fetched = compiled.fetch_raw(ctx, True)
    converted = [compiled.convert(s, ctx) for s in fetched.samples]
    assert [_py(c) for c in converted if c is not None] == values
    assert _py(compiled.evaluate(ctx)) == single


def test_json_escapes_control_and_high_bytes() -> None:
    ctx = SampleContext(payload=b"a\tb\x01\xe9\"")
    assert compile_expr("req.payload(0,0),json").evaluate_bytes(ctx) == b'a\\tb\\u0001\\u00e9\\"'
    ctx = SampleContext(payload="é€".encode())
    assert compile_expr("req.payload(0,0),json(utf8)").evaluate_bytes(ctx) == b"\\u00e9\\u20ac"
    ctx = SampleContext(payload=b"a\xffb")
    assert compile_expr("req.payload(0,0),json(utf8)").evaluate(ctx) is None  # invalid UTF-8 fails
    assert compile_expr("req.payload(0,0),json(utf8s)").evaluate_bytes(ctx) == b"ab"  # ... or is skipped


def test_arithmetic_operand_can_be_a_variable() -> None:
    ctx = SampleContext()
    expr = compile_expr("int(10),sub(txn.n)")
    assert expr.evaluate(ctx) is None  # an unset variable fails the conversion
    ctx.set_var("txn.n", Sample(STR, b"4"))
    assert expr.evaluate(ctx) == Sample(SINT, 6)


def test_concat_reads_a_variable() -> None:
    ctx = SampleContext()
    ctx.set_var("txn.v", Sample(STR, b"VV"))
    assert compile_expr("str(a),concat(<,txn.v,>)").evaluate_bytes(ctx) == b"a<VV>"
    ctx.set_var("proc.n", Sample(SINT, 7))
    assert compile_expr("str(a),concat(,proc.n)").evaluate_bytes(ctx) == b"a7"
    assert compile_expr("var(proc.n)").evaluate(SampleContext()) == Sample(SINT, 7)  # process-wide
    ctx.unset_var("proc.n")
    assert compile_expr("var(txn.none,dflt)").evaluate_bytes(ctx) == b"dflt"


# ---- payload fetches and "may change" -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "payload", "final", "samples", "may_change"),
    [
        ("req.len", b"", False, [0], True),
        ("req.len", b"abc", True, [3], True),  # always "may change": the ACL engine ignores it once final
        ("req.payload(0,3)", b"ab", False, [], True),
        ("req.payload(0,3)", b"abcd", False, [b"abc"], False),
        ("req.payload(1,0)", b"abcd", False, [b"bcd"], True),  # "the rest": more may come
        ("req.payload(1,0)", b"abcd", True, [b"bcd"], False),
        ("req.payload(0,20000)", b"abc", False, [], False),  # larger than a buffer: never
        ("req.payload_lv(0,1)", b"\x02abc", False, [b"ab"], False),
        ("req.payload_lv(0,1)", b"\x05ab", False, [], True),
        ("req.payload_lv(0,2,+1)", b"\x00\x02xab", False, [b"ab"], False),
        ("wait_end", b"", False, [], True),
        ("wait_end", b"", True, [1], False),
        ("req.ssl_sni", b"GET", False, [], False),
        ("req.ssl_hello_type", b"\x16\x03", False, [], True),
        ("req.proto_http", b"GET / HT", False, [], True),
        ("req.proto_http", b"\x16\x03\x01", False, [], False),
        ("req.proto_http", b"GET / HTTP/1.0\r\n\r\n", False, [1], False),
        ("path", b"GET /x?y HTTP/1.1\r\nHost: a\r\n\r\n", False, [b"/x"], False),
        ("hdr(host)", b"GET /x HTTP/1.1\r\nHost: a\r\n", False, [], True),
        ("req.rdp_cookie", b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: mstshash=bob\r\n", False, [b"bob"],
         False),
        ("req.rdp_cookie_cnt", b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: x=y", False, [], True),
        ("req.rdp_cookie_cnt", b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Hello world!", False, [0], False),
    ],
)
def test_payload_fetches(expr: str, payload: bytes, final: bool, samples: list[object], may_change: bool) -> None:
    ctx = SampleContext(payload=payload, final=final)
    fetched = compile_expr(expr).fetch_raw(ctx, True)
    assert [s.value for s in fetched.samples] == samples
    assert fetched.may_change is may_change


@pytest.mark.parametrize(
    ("buf", "verdict"),
    [
        (b"", "wait"),
        (b"G", "wait"),
        (b"GET /index.html HT", "wait"),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\n", "wait"),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", "request"),
        (b"GET /index.html HTTP/1.1\nHost: x\n\n", "request"),
        (b"\x16\x03\x01", "no"),
        (b"GET  /x HTTP/1.1\r\n", "wait"),
        (b"GET /x FTP/1.1\r\n", "no"),
        (b"G@T /x HTTP/1.1\r\n\r\n", "no"),
        (b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n", "no"),
    ],
)
def test_raw_request_parser(buf: bytes, verdict: str) -> None:
    got = parse_raw_request(buf, 15360)
    if verdict == "request":
        assert not isinstance(got, Fetched)
        assert (got.method, got.uri, got.version, got.headers) == (b"GET", b"/index.html", b"1.1", [(b"host", b"x")])
    else:
        assert isinstance(got, Fetched) and got.may_change is (verdict == "wait")


def test_raw_request_gives_up_when_the_buffer_is_full() -> None:
    assert parse_raw_request(b"GET /" + b"a" * 100, 50) == Fetched((), False)


# ---- casts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("smp", "to", "value"),
    [
        (Sample(STR, b"42abc"), SINT, 42),
        (Sample(STR, b"-7"), SINT, -7),
        (Sample(STR, b"abc"), SINT, 0),
        (Sample(STR, b""), SINT, None),
        (Sample(SINT, 12), STR, b"12"),
        (Sample(BOOL, 1), STR, b"1"),
        (Sample(STR, b"10.1.2.3"), IPV4, ipaddress.ip_address("10.1.2.3")),
        (Sample(STR, b"10.1.2"), IPV4, None),
        (Sample(STR, b"::1"), IPV6, ipaddress.ip_address("::1")),
        (Sample(IPV4, ipaddress.ip_address("1.2.3.4")), IPV6, ipaddress.ip_address("::ffff:1.2.3.4")),
        (Sample(IPV6, ipaddress.ip_address("::ffff:1.2.3.4")), IPV4, ipaddress.ip_address("1.2.3.4")),
        (Sample(IPV6, ipaddress.ip_address("2002:102:304::1")), IPV4, ipaddress.ip_address("1.2.3.4")),
        (Sample(IPV6, ipaddress.ip_address("2001:db8::1")), IPV4, None),
        (Sample(IPV4, ipaddress.ip_address("0.0.1.2")), SINT, 258),
        (Sample(SINT, 258), IPV4, ipaddress.ip_address("0.0.1.2")),
        (Sample(IPV4, ipaddress.ip_address("1.2.3.4")), STR, b"1.2.3.4"),
        (Sample(IPV4, ipaddress.ip_address("1.2.3.4")), BIN, b"\x01\x02\x03\x04"),
        (Sample(SINT, 1), BIN, b"\x00" * 7 + b"\x01"),
    ],
)
def test_casts(smp: Sample, to: str, value: object) -> None:
    got = cast(smp, to)
    assert (None if got is None else got.value) == value


def test_read_int64() -> None:
    assert [read_int64(x) for x in (b"12", b"+3x", b"-", b"x", b"007")] == [12, 3, 0, 0, 7]


# ---- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "args"),
    [
        ("", []),
        ("a,b", ["a", "b"]),
        ("a,", ["a", ""]),
        ("'x,y',z", ["x,y", "z"]),
        ('"(a|b)",\\2', ["(a|b)", "\\2"]),
        ("\\,,\\)", [",", ")"]),
        ("\\.,_", ["\\.", "_"]),
        ("(a),b", ["(a)", "b"]),
        ("'\\n'", ["\\n"]),
    ],
)
def test_split_args(inner: str, args: list[str]) -> None:
    assert split_args(inner) == args


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nosuch", "unknown fetch method 'nosuch'"),
        ("path,nosuch", "unknown converter 'nosuch'"),
        ("req.payload(0)", "expects at least 2"),
        ("req.payload(a,1)", "'a' is not a valid integer"),
        ("src,lower(1)", "does not take any argument"),
        ("path,regsub([,x)", "invalid regex"),
        ("path,regsub(a,b,x)", "invalid regex flag 'x'"),
        ("path,field(0,.)", "index must not be 0"),
        ("path,json(latin1)", "unexpected input code"),
        ("path,map(/nonexistent/file.map)", "failed to load map file"),
        ("hdr(host", "missing closing ')'"),
        ("ssl_fc", "fetch method 'ssl_fc' is not implemented by haproxy-py"),
        ("path,add(x.y.z,1)", "expects an integer or a variable name"),
        ("ipv4(1.2.3)", "not a valid IPV4 address"),
    ],
)
def test_compile_errors(text: str, error: str) -> None:
    with pytest.raises(SampleError, match=error.replace("(", r"\(").replace(")", r"\)")):
        compile_expr(text)


def test_header_list_split_respects_quotes() -> None:
    assert split_header_list(b'a, "b,\\"c" ,d,,') == [b"a", b'"b,\\"c"', b"d", b"", b""]


@pytest.mark.parametrize(
    ("uri", "path"),
    [(b"/x?y", b"/x?y"), (b"https://h:1/p", b"/p"), (b"h:443", None), (b"*", None), (b"", None),
     (b"ftp+x://h/a", b"/a")],
)
def test_uri_path(uri: bytes, path: bytes | None) -> None:
    assert uri_path(uri) == path


# ---- templates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("be_%[req.hdr(host),lower,field(1,:)]", b"be_shop.example.com"),
        ("%[hdr(nosuch)]", b"-"),
        ("100%%", b"100%"),
        ("%{+Q}[method]-x", b"GET-x"),
        ("static", b"static"),
        ("%[str(a]b)]", b"a]b"),
        ("%ci", b"%ci"),
    ],
)
def test_templates(text: str, rendered: bytes) -> None:
    assert compile_template(text).render(http_ctx()) == rendered


def test_template_errors() -> None:
    with pytest.raises(SampleError, match="missing ']'"):
        compile_template("%[path")
    with pytest.raises(SampleError, match="unknown fetch"):
        compile_template("%[nope]")
    assert not compile_template("plain").dynamic
    assert compile_template("a%[path]").dynamic
