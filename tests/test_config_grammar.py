"""Typed arguments (times, sizes, bind and server addresses) and `.if`/`-cc` conditions.

Expected values and messages are HAProxy 2.6.12's, collected by running the binary on each form
(reference §1.3, §2.2, §2.5, §8). `test_cc_matches_haproxy` re-checks the condition table against
`haproxy -cc` when HAProxy is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from haproxy_py.config import condexpr
from haproxy_py.config.errors import StatementError
from haproxy_py.config.grammar import parse_bind_address, parse_server_address, parse_size, parse_time
from haproxy_py.config.model import BindAddress, ServerAddress

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


# -- times --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("word", "ms"),
    [("5000", 5000), ("0", 0), ("10ms", 10), ("10s", 10_000), ("2m", 120_000), ("1h", 3_600_000),
     ("1d", 86_400_000), ("1500us", 1), ("1us", 1), ("0us", 0), ("2147483647", 2147483647)],
)
def test_parse_time(word: str, ms: int) -> None:
    assert parse_time(word, "timeout client") == ms


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("", "'timeout client' expects an integer value (in milliseconds)"),
        ("1.5s", "unexpected character '.' in 'timeout client'"),
        ("abc", "unexpected character 'a' in 'timeout client'"),
        ("-1", "unexpected character '-' in 'timeout client'"),
        ("10x", "unexpected character 'x' in 'timeout client'"),
        ("10S", "unexpected character 'S' in 'timeout client'"),
        ("10Ms", "unexpected character 'M' in 'timeout client'"),
        ("99999999999", "timer overflow in argument '99999999999' to 'timeout client' (maximum value is "
                        "2147483647 ms or ~24.8 days)"),
        ("3000000s", "timer overflow in argument '3000000s' to 'timeout client' (maximum value is "
                     "2147483647 ms or ~24.8 days)"),
    ],
)
def test_parse_time_errors(word: str, message: str) -> None:
    with pytest.raises(StatementError) as exc:
        parse_time(word, "timeout client")
    assert exc.value.message == message


def test_trailing_characters_after_a_unit_only_warn() -> None:
    """2.6 accepts `1sx` with an (unlocated) warning; later versions make it an error."""
    warnings: list[str] = []
    assert parse_time("1sx", "timeout client", warn=warnings.append) == 1000
    assert warnings == ["unexpected character 'x' after the timer value '1sx', only (us=microseconds,"
                        "ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be "
                        "reported as an error in next versions."]


# -- sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "size"), [("100", 100), ("1k", 1024), ("1K", 1024), ("2m", 2 * 1024**2),
                                            ("1g", 1024**3), ("0", 0)])
def test_parse_size(word: str, size: int) -> None:
    assert parse_size(word, "x") == size


@pytest.mark.parametrize("word", ["", "1.5k", "1kb", "k", "-1"])
def test_parse_size_errors(word: str) -> None:
    with pytest.raises(StatementError):
        parse_size(word, "x")


# -- bind addresses (§2.2) ------------------------------------------------------------------------

V4, V6 = "ipv4", "ipv6"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*:80", [BindAddress(V4, "", 80, 80)]),
        (":80", [BindAddress(V4, "", 80, 80)]),
        ("0.0.0.0:80", [BindAddress(V4, "0.0.0.0", 80, 80)]),
        ("127.0.0.1:80", [BindAddress(V4, "127.0.0.1", 80, 80)]),
        ("[::1]:80", [BindAddress(V6, "::1", 80, 80)]),
        ("::1:80", [BindAddress(V6, "::1", 80, 80)]),  # the port is after the last colon
        (":::80", [BindAddress(V6, "::", 80, 80)]),
        ("::ffff:1.2.3.4:80", [BindAddress(V6, "::ffff:102:304", 80, 80)]),
        ("127.0.0.1:8000-8002", [BindAddress(V4, "127.0.0.1", 8000, 8002)]),
        ("127.0.0.1:1-65535", [BindAddress(V4, "127.0.0.1", 1, 65535)]),
        (":80,:81", [BindAddress(V4, "", 80, 80), BindAddress(V4, "", 81, 81)]),
        (":80,", [BindAddress(V4, "", 80, 80)]),  # a trailing comma is harmless
        ("127.0.0.1:80x", [BindAddress(V4, "127.0.0.1", 80, 80)]),  # the port is read with atoi()
        ("/tmp/x.sock", [BindAddress("unix", "/tmp/x.sock")]),
        ("unix@/tmp/x.sock", [BindAddress("unix", "/tmp/x.sock")]),
        ("unix@", [BindAddress("unix", "")]),
        ("abns@foo", [BindAddress("abns", "foo")]),
        ("fd@3", [BindAddress("fd", fd=3)]),
        ("sockpair@4", [BindAddress("sockpair", fd=4)]),
        ("ipv4@:80", [BindAddress(V4, "", 80, 80)]),
        ("ipv6@:80", [BindAddress(V6, "::", 80, 80)]),
        ("tcp@:80", [BindAddress(V4, "", 80, 80)]),
        ("tcp6@[::1]:80", [BindAddress(V6, "::1", 80, 80)]),
    ],
)
def test_bind_address_forms(text: str, expected: list[BindAddress]) -> None:
    assert parse_bind_address(text, resolve=False) == expected


def test_bind_address_resolves_names() -> None:
    assert parse_bind_address("localhost:80") in ([BindAddress(V4, "127.0.0.1", 80, 80)],
                                                  [BindAddress(V6, "::1", 80, 80)])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1", "'bind' : missing port specification in '127.0.0.1'"),
        ("127.0.0.1:", "'bind' : missing port specification in '127.0.0.1:'"),
        ("*", "'bind' : missing port specification in '*'"),
        (":", "'bind' : missing port specification in ':'"),
        ("[::1]", "'bind' : missing port specification in '[::1]'"),
        ("[::1]80", "'bind' : missing port specification in '[::1]80'"),
        ("127.0.0.1:0", "'bind' : invalid port '0'"),
        ("127.0.0.1:65536", "'bind' : invalid port '65536'"),
        ("127.0.0.1:0-5", "'bind' : invalid port '0'"),
        ("127.0.0.1:80-", "'bind' : invalid port ''"),
        ("127.0.0.1:8002-8000", "'bind' : invalid port range '8002-8000'"),
        ("127.0.0.1:abc", "'bind' : invalid character 'a' in port number 'abc' in '127.0.0.1:abc'"),
        ("127.0.0.1:+80", "'bind' : port offset not permitted here in '127.0.0.1:+80'"),
        ("127.0.0.1:-80", "'bind' : port offset not permitted here in '127.0.0.1:-80'"),
        (",:80", "'bind' : '' resolves to an empty address (environment variable missing?)"),
        ("fd@x", "'bind' : file descriptor 'x' is not a valid integer in 'fd@x'"),
        ("fd@", "'bind' : file descriptor '' is not a valid integer in 'fd@'"),
        ("ipv4@::1:80", "'bind' : invalid address: '::1' in 'ipv4@::1:80'"),
        ("ipv6@127.0.0.1:80", "'bind' : invalid address: '127.0.0.1' in 'ipv6@127.0.0.1:80'"),
        ("[::1:80", "'bind' : invalid address: '[::1' in '[::1:80'"),
        ("udp@:80", "'bind' : dgram-type address not acceptable in 'udp@:80'"),
        ("quic4@:80", "'bind' : unsupported stream protocol for datagram family 2 address 'quic4@:80'; QUIC is "
                      "not compiled in if this is what you were looking for."),
        ("1.2.3.4.5:80", "'bind' : invalid address: '1.2.3.4.5' in '1.2.3.4.5:80'"),
        ("nosuchhost.invalid:80", "'bind' : invalid address: 'nosuchhost.invalid' in 'nosuchhost.invalid:80'"),
    ],
)
def test_bind_address_errors(text: str, message: str) -> None:
    with pytest.raises(StatementError) as exc:
        parse_bind_address(text)
    assert exc.value.message == message


# -- server addresses (§2.2, §2.5) ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ServerAddress(V4, "127.0.0.1")),  # no port: the port the client connected to
        ("127.0.0.1:80", ServerAddress(V4, "127.0.0.1", 80)),
        ("127.0.0.1:+1", ServerAddress(V4, "127.0.0.1", None, 1)),
        ("127.0.0.1:-1", ServerAddress(V4, "127.0.0.1", None, -1)),
        ("127.0.0.1:+0", ServerAddress(V4, "127.0.0.1")),
        ("127.0.0.1:0", ServerAddress(V4, "127.0.0.1")),
        ("1.2.3.4:", ServerAddress(V4, "1.2.3.4")),
        ("127.0.0.1:80x", ServerAddress(V4, "127.0.0.1", 80)),
        ("[::1]:80", ServerAddress(V6, "::1", 80)),
        ("[::1]", ServerAddress(V6, "::1")),
        ("::1:80", ServerAddress(V6, "::1", 80)),
        (":80", ServerAddress(V4, "0.0.0.0", 80)),
        ("*:80", ServerAddress(V4, "0.0.0.0", 80)),
        ("ipv4@127.0.0.1:80", ServerAddress(V4, "127.0.0.1", 80)),
        ("ipv6@::1:80", ServerAddress(V6, "::1", 80)),
        ("tcp@1.2.3.4:80", ServerAddress(V4, "1.2.3.4", 80)),
        ("/tmp/s.sock", ServerAddress("unix", "/tmp/s.sock")),
        ("unix@/tmp/s", ServerAddress("unix", "/tmp/s")),
        ("abns@x", ServerAddress("abns", "x")),
        ("app.example:8080", ServerAddress(V4, "app.example", 8080, hostname="app.example")),
    ],
)
def test_server_address_forms(text: str, expected: ServerAddress) -> None:
    assert parse_server_address(text, resolve=False) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::1", "could not resolve address ':'."),  # 2.6 takes '1' as the port of host ':'
        ("nosuchhost.invalid:80", "could not resolve address 'nosuchhost.invalid'."),
        ("127.0.0.1:65536", "invalid port '65536'"),
        ("127.0.0.1:abc", "invalid character 'a' in port number 'abc' in '127.0.0.1:abc'"),
        ("127.0.0.1:80-81", "port range not permitted here in '127.0.0.1:80-81'"),
        ("fd@3", "a file descriptor is not acceptable here in 'fd@3'"),
        ("udp@1.2.3.4:80", "dgram-type address not acceptable in 'udp@1.2.3.4:80'"),
    ],
)
def test_server_address_errors(text: str, message: str) -> None:
    with pytest.raises(StatementError) as exc:
        parse_server_address(text, resolve=True)
    assert exc.value.message == message


def test_server_address_resolves_names_when_asked() -> None:
    addr = parse_server_address("localhost:8080", resolve=True)
    assert addr.host in ("127.0.0.1", "::1") and addr.port == 8080 and addr.hostname == "localhost"


# -- conditions: `.if` and `-cc` (§1.2, §8) ------------------------------------------------------

CC_ENV = {"HOME": "/h"}

# (expression as given to -cc, True/False, or the error message -cc prints after "config : ")
CONDITIONS: list[tuple[str, bool | str]] = [
    ("", False),
    ("1", True),
    ("0", False),
    ("-1", True),
    ("+1", True),
    ("0x10", True),
    ("5", True),
    ("!1", False),
    ("! 1", False),
    ("!!1", True),
    ("1 && 0", False),
    ("1 ||0&&0", True),
    ("(0)||(1)", True),
    ("( 1 )", True),
    ("1 && (0 || 1) && !0", True),
    ("defined(HOME)", True),
    ("defined(NOPE)", False),
    ("defined()", False),
    ("defined", False),
    ("!defined(HOME)", False),
    ("defined(HOME)&&defined(HOME)", True),
    ("streq(a,a)", True),
    ("strneq(a,b)", True),
    ("streq( a,a)", False),  # blanks are part of the argument
    ("streq(a , a)", False),
    ('streq("a b","a b")', True),
    ("streq('a','a')", True),
    ('streq(a"b",ab)', True),
    ("streq(a\\b,a\\b)", True),  # a backslash is an ordinary character
    ('streq("$HOME",/h)', True),  # -cc tokenizes its argument: "$VAR" expands
    ("streq(,)", True),
    ("version_atleast(2.6)", True),
    ("version_atleast(2.6.12)", True),
    ("version_atleast(2.6.13)", False),
    ("version_atleast(3)", False),
    ("version_atleast(2.6-dev1)", True),
    ("version_atleast(abc)", True),
    ("version_atleast()", True),
    ("version_before(2.6.12)", False),
    ("version_before(2.7)", True),
    ("version_before()", False),
    ("feature()", True),
    ("feature(lua)", False),  # feature names are case-sensitive
    ("feature(NOSUCHFEATURE)", False),
    ("foo(1)", "Failed to evaluate condition: unparsable conditional expression 'foo(1)'"),
    ("strstr(abc,b)", "Failed to evaluate condition: unparsable conditional expression 'strstr(abc,b)'"),
    ("enabled(POLL)", "Failed to evaluate condition: unparsable conditional expression 'enabled(POLL)'"),
    ("1||", "Failed to evaluate condition: unparsable conditional expression '1||'"),
    ("1 ||", "Failed to evaluate condition: unparsable conditional expression '1 ||'"),
    (" ", "Failed to evaluate condition: unparsable conditional sub-expression ' '"),
    ("1abc", "Failed to evaluate condition: unexpected character 'a' at the end of conditional expression '1abc'"),
    ("defined(HOME)x", "Failed to evaluate condition: unexpected character 'x' at the end of conditional "
                       "expression 'defined(HOME)x'"),
    ("defined(A,B)", "Failed to evaluate condition: expected ')' before ',B)' in argument 1 of predicate 'defined' "
                     "used in conditional expression"),
    ("streq(a,b,c,d)", "Failed to evaluate condition: expected ')' before ',c,d)' in argument 1 of predicate "
                       "'streq' used in conditional expression"),
    ("streq(a)", "Failed to evaluate condition: missing arguments (got 1/2), type 'string' expected in argument 1 "
                 "of predicate 'streq' used in conditional expression"),
    ("streq()", "Failed to evaluate condition: missing arguments (got 1/2), type 'string' expected in argument 1 "
                "of predicate 'streq' used in conditional expression"),
    ('streq("a b",a', "Failed to evaluate condition: expected ')' in argument 1 of predicate 'streq' used in "
                      "conditional expression"),
    ("streq('a\\'b','a\\'b')", "Syntax Error in condition: Unmatched quote."),
    (" ".join(["1"] * 70), "Error in condition: Too many words."),
]


@pytest.mark.parametrize(("expr", "expected"), CONDITIONS, ids=[c[0][:40] or "<empty>" for c in CONDITIONS])
def test_cc_evaluate(expr: str, expected: bool | str) -> None:
    if isinstance(expected, bool):
        assert condexpr.evaluate(expr, CC_ENV) is expected
    else:
        with pytest.raises(condexpr.ConditionSyntaxError) as exc:
            condexpr.evaluate(expr, CC_ENV)
        assert exc.value.cc_alert() == expected


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed: -cc results are not re-checked")
@pytest.mark.parametrize(("expr", "expected"), [c for c in CONDITIONS if not c[0].startswith(("version", "feature"))],
                         ids=[c[0][:40] or "<empty>" for c in CONDITIONS if not c[0].startswith(("version", "feature"))])
def test_cc_matches_haproxy(expr: str, expected: bool | str) -> None:
    """Same answer and message as `haproxy -cc` (version/feature answers depend on the build)."""
    assert HAPROXY is not None
    run = subprocess.run([HAPROXY, "-cc", expr], capture_output=True, text=True, timeout=20,
                         env={"PATH": os.environ.get("PATH", ""), **CC_ENV})
    if isinstance(expected, bool):
        assert run.returncode == (0 if expected else 1)
    else:
        assert run.returncode == 2
        assert f"config : {expected}" in run.stderr


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("strstr(abc,b)", "unparsable conditional expression 'strstr(abc,b)'", 1),
        ("1 &&", "unparsable conditional expression '&&'", 3),
        ("1||", "unparsable conditional expression '1||'", 2),
        ("0 || foo", "unparsable conditional expression 'foo'", 6),
        ("0 && foo", "unparsable conditional expression 'foo'", 6),  # no short-circuit when parsing
        ("1 &&& 1", "unparsable conditional expression '& 1'", 5),
        ("1 & 1", "unexpected character '&' at the end of conditional expression '1 & 1'", 3),
        ("1 2", "unexpected character '2' at the end of conditional expression '1 2'", 3),
        ("1)", "unexpected character ')' at the end of conditional expression '1)'", 2),
        ("(1", "expected ')' after conditional expression '(1'", 1),
        ("((1)", "expected ')' after conditional expression '((1)'", 1),
        ("()", "unparsable conditional expression ')'", 2),
        ("!", "unparsable conditional expression '!'", 1),
        ("08", "unexpected character '8' at the end of conditional expression '08'", 2),
        ("0x", "unexpected character 'x' at the end of conditional expression '0x'", 2),
        ("defined (HOME)", "unexpected character '(' at the end of conditional expression 'defined (HOME)'", 9),
        ("definedx(HOME)", "unparsable conditional expression 'definedx(HOME)'", 1),
        ("defined(HOME", "expected ')' in argument 1 of predicate 'defined' used in conditional expression", 13),
        ("streq(a)", "missing arguments (got 1/2), type 'string' expected in argument 1 of predicate 'streq' used "
                     "in conditional expression", 8),
        ("(" * 341 + "1" + ")" * 341, "unparsable conditional sub-expression '1" + ")" * 341 + "'", 342),
    ],
)
def test_if_condition_errors_with_positions(text: str, message: str, position: int) -> None:
    """`.if` reports the message and a 1-based position in the condition, as HAProxy does."""
    with pytest.raises(condexpr.ConditionSyntaxError) as exc:
        condexpr.evaluate_text(text, CC_ENV)
    assert (exc.value.message, exc.value.position) == (message, position)


def test_340_nested_parentheses_are_fine() -> None:
    assert condexpr.evaluate_text("(" * 340 + "1" + ")" * 340, {}) is True
