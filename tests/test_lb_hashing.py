"""Hash functions and key extraction, checked against values computed by HAProxy's own C code.

The vectors below were produced by compiling src/hash.c's hash_sdbm/djb2/wt6/crc32 and
full_hash() from HAProxy 2.6 and running them on the same inputs.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from haproxy_py.core.lb.hashing import (
    MASK32,
    crc32,
    djb2,
    full_hash,
    gen_hash,
    hash_none,
    header_key,
    rdp_cookie_value,
    sdbm,
    source_key,
    uri_key,
    url_param_value,
    wt6,
)

# key, sdbm, djb2, wt6, crc32 (from HAProxy's C functions)
C_VECTORS: list[tuple[bytes, int, int, int, int]] = [
    (b"", 0, 5381, 4187620192, 0),
    (b"a", 97, 177670, 1900802597, 3904355907),
    (b"/uri/a", 152675055, 2114385300, 898330135, 3633547492),
    (b"www.example.com", 2718216582, 2843247409, 612436471, 785793723),
    (b"hello world", 430867652, 894552257, 1866899626, 222957957),
    (b"\xff\x80\x01 binary", 567140129, 4063884458, 4136700195, 279826057),
    (b"The quick brown fox jumps over the lazy dog", 2359783795, 885799134, 3840389189, 1095738169),
]


@pytest.mark.parametrize(("key", "h_sdbm", "h_djb2", "h_wt6", "h_crc32"), C_VECTORS)
def test_hash_functions_match_haproxy(
    key: bytes, h_sdbm: int, h_djb2: int, h_wt6: int, h_crc32: int
) -> None:
    assert sdbm(key) == h_sdbm
    assert djb2(key) == h_djb2
    assert wt6(key) == h_wt6
    assert crc32(key) == h_crc32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 2874071335),
        (1, 881230262),
        (2130706433, 2317047883),
        (4096, 1237450891),
        (4097, 2761370759),
        (8191, 1804246060),
        (0xFFFFFFFF, 2120532354),
        (123456789, 2578161185),
    ],
)
def test_full_hash_matches_haproxy(value: int, expected: int) -> None:
    assert full_hash(value) == expected


@pytest.mark.parametrize("function", ["sdbm", "djb2", "wt6", "crc32"])
def test_gen_hash_applies_avalanche_after_the_function(function: str) -> None:
    plain = gen_hash(b"/some/key", function)
    assert gen_hash(b"/some/key", function, avalanche=True) == full_hash(plain)
    assert 0 <= plain <= MASK32


def test_gen_hash_unknown_function_is_sdbm() -> None:
    assert gen_hash(b"abc", "nope") == sdbm(b"abc")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"123", 123),
        (b"+7", 7),
        (b"-1", 0xFFFFFFFF),
        (b"12abc", 12),
        (b"abc", 0),
        (b"", 0),
        (b"4294967297", 1),
        (b"99999999999999999999999", 0xFFFFFFFF),  # saturates at LLONG_MAX, low 32 bits kept
    ],
)
def test_hash_none_reads_the_key_as_a_number(key: bytes, expected: int) -> None:
    assert hash_none(key) == expected
    assert gen_hash(key, "none") == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", 2130706433),
        ("10.0.0.1", 0x0A000001),
        ("::1", 1),
        ("2001:db8::1", 0x20010DB8 ^ 1),
        ("2001:db8:1:2:3:4:5:6", 0x20010DB8 ^ 0x00010002 ^ 0x00030004 ^ 0x00050006),
    ],
)
def test_source_key_xors_big_endian_words(address: str, expected: int) -> None:
    assert source_key(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize(
    ("uri", "options", "expected"),
    [
        (b"/uri/a", {}, b"/uri/a"),
        (b"/uri/a?x=1", {}, b"/uri/a"),
        (b"/uri/a?x=1", {"whole": True}, b"/uri/a?x=1"),
        (b"/uri/a?x=1", {"length": 4}, b"/uri"),
        (b"/uri/a?x=1", {"length": 100}, b"/uri/a"),
        (b"/a/b/c/d", {"depth": 2}, b"/a/b"),
        (b"/a/b/c/d", {"depth": 1}, b"/a"),
        (b"/a/b?c/d", {"depth": 2}, b"/a/b"),
        (b"/a/b?c/d", {"depth": 2, "whole": True}, b"/a/b?c"),
        (b"/a/b?c/d", {"depth": 3, "whole": True}, b"/a/b?c/d"),
        (b"http://host:80/p/q?x=1", {}, b"http://host:80/p/q"),
        (b"http://host:80/p/q?x=1", {"path_only": True}, b"/p/q"),
        (b"http://host:80/p/q?x=1", {"path_only": True, "whole": True}, b"/p/q?x=1"),
        (b"https://host", {"path_only": True}, b""),
        (b"*", {"path_only": True}, b""),
        (b"", {}, b""),
    ],
)
def test_uri_key(uri: bytes, options: dict[str, Any], expected: bytes) -> None:
    assert uri_key(uri, **options) == expected


@pytest.mark.parametrize(
    ("uri", "name", "expected"),
    [
        (b"/x?a=1&b=2", b"b", b"2"),
        (b"/x?a=1&b=2", b"a", b"1"),
        (b"/x?b=2&b=3", b"b", b"2"),
        (b"/x?xb=1&b=3", b"b", b"3"),
        (b"/x?ab=1&b=", b"b", b""),
        (b"/x?b=v&", b"b", b"v"),
        (b"/x?a=1", b"b", None),
        (b"/x?b", b"b", None),
        (b"/x?bb=1", b"b", None),
        (b"/x?B=1", b"b", None),
        (b"/x", b"a", None),
        (b"/x?user=alice&id=42", b"user", b"alice"),
    ],
)
def test_url_param_value(uri: bytes, name: bytes, expected: bytes | None) -> None:
    assert url_param_value(uri, name) == expected


@pytest.mark.parametrize(
    ("value", "domain_only", "expected"),
    [
        (b"www.example.com", False, b"www.example.com"),
        (b"www.example.com", True, b"example"),
        (b"example.com", True, b"example"),
        (b"a.b.example.co", True, b"example"),
        (b"example.com:8080", True, b"example"),
        (b"localhost", True, b"localhost"),
        (b"", True, None),
        (b"", False, None),
        (None, False, None),
    ],
)
def test_header_key(value: bytes | None, domain_only: bool, expected: bytes | None) -> None:
    assert header_key(value, domain_only) == expected


X224 = b"\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("payload", "name", "expected"),
    [
        (X224 + b"Cookie: mstshash=alice\r\n\x01\x00", b"mstshash", b"alice"),
        (X224 + b"cookie:   MSTSHASH=bob\r\n", b"mstshash", b"bob"),
        (X224 + b"Cookie: other=carol\r\n", b"mstshash", None),
        (X224 + b"Cookie: other=carol\r\n", b"", b"carol"),
        (X224 + b"Cookie: mstshash=dave", b"mstshash", None),
        (X224 + b"Cookie: mstshash=\r\n", b"mstshash", None),
        (X224 + b"NotACookie: x=y\r\n", b"mstshash", None),
        (b"short", b"mstshash", None),
    ],
)
def test_rdp_cookie_value(payload: bytes, name: bytes, expected: bytes | None) -> None:
    assert rdp_cookie_value(payload, name) == expected
