"""The ClientHello decoders (core.tls_hello), fed real hellos from Python's ssl cut at every byte.

What decides routing timing is the verdict on a prefix: NEED_MORE keeps a connection waiting for
its inspect-delay, NOT_TLS sends it on at once. The thresholds asserted here are HAProxy 2.6's
(src/payload.c): the hello type needs the whole handshake message, the SNI decoder is satisfied
4 bytes earlier, plain text is refused on its first byte.
"""

from __future__ import annotations

import random
import ssl

import pytest

from haproxy_py.core import tls_hello
from haproxy_py.core.tls_hello import HelloStatus

NEED = HelloStatus.NEED_MORE
NOT = HelloStatus.NOT_TLS
DONE = HelloStatus.COMPLETE


def client_hello(name: str | None, alpn: list[str] | None = None, max_version: ssl.TLSVersion | None = None
                 ) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version is not None:
        ctx.maximum_version = max_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert data[:1] == b"\x16"
    return data


HELLOS = {
    "sni": (client_hello("a.example"), b"a.example"),
    "sni_mixed_case": (client_hello("A.Example"), b"A.Example"),
    "sni_long": (client_hello("x" * 60 + ".example.org"), b"x" * 60 + b".example.org"),
    "sni_alpn": (client_hello("api.example.com", ["h2", "http/1.1"]), b"api.example.com"),
    "sni_tls12_max": (client_hello("b.example", max_version=ssl.TLSVersion.TLSv1_2), b"b.example"),
    "no_sni": (client_hello(None), None),
}


def handshake_length(hello: bytes) -> int:
    return (hello[6] << 16) + (hello[7] << 8) + hello[8]


@pytest.mark.parametrize("key", HELLOS)
def test_hello_type_needs_the_whole_handshake_at_every_cut(key: str) -> None:
    hello, _ = HELLOS[key]
    total = 9 + handshake_length(hello)
    assert total == len(hello)  # one record, one handshake message
    for n in range(len(hello) + 1):
        got = tls_hello.hello_type(hello[:n])
        if n < total:
            assert got.status is NEED, n
        else:
            assert (got.status, got.value) == (DONE, 1), n


@pytest.mark.parametrize("key", HELLOS)
def test_sni_decided_four_bytes_before_the_end_at_every_cut(key: str) -> None:
    hello, name = HELLOS[key]
    threshold = 5 + handshake_length(hello)  # HAProxy compares the body length with bytes after the record header
    for n in range(len(hello) + 1):
        got = tls_hello.server_name(hello[:n])
        if n < threshold:
            assert got.status is NEED, n
        elif name is not None:
            assert (got.status, got.value) == (DONE, name), n
        elif n == len(hello):
            assert got.status is NOT, n  # a complete hello without server_name: never waits again
        else:
            assert got.status in (NEED, NOT), n


@pytest.mark.parametrize("key", HELLOS)
def test_split_in_two_segments_anywhere_gives_the_same_answer(key: str) -> None:
    """Feeding the hello as two TCP segments cut at every boundary: first the prefix is pending,
    then the whole buffer decides exactly as if it had come at once."""
    hello, name = HELLOS[key]
    whole = (tls_hello.server_name(hello), tls_hello.hello_type(hello), tls_hello.client_version(hello))
    for cut in range(1, len(hello)):
        buf = bytearray(hello[:cut])
        first = tls_hello.hello_type(bytes(buf))
        assert first.status is NEED
        buf += hello[cut:]
        again = (tls_hello.server_name(bytes(buf)), tls_hello.hello_type(bytes(buf)),
                 tls_hello.client_version(bytes(buf)))
        assert again == whole


def test_alpn_names_in_client_order() -> None:
    hello, _ = HELLOS["sni_alpn"]
    got = tls_hello.alpn(hello)
    assert (got.status, got.value) == (DONE, (b"h2", b"http/1.1"))
    assert tls_hello.alpn(HELLOS["sni"][0]).status is NOT  # no ALPN extension
    for n in range(len(hello) - 4):
        assert tls_hello.alpn(hello[:n]).status is NEED, n


@pytest.mark.parametrize("key", HELLOS)
def test_client_version_is_the_hellos_not_the_records(key: str) -> None:
    hello, _ = HELLOS[key]
    got = tls_hello.client_version(hello)
    assert (got.status, got.value) == (DONE, 0x30003)  # legacy_version 3.3, also for TLS 1.3
    assert hello[1:3] == b"\x03\x01"  # while the record layer says 3.1
    for n in range(len(hello)):
        assert tls_hello.client_version(hello[:n]).status is NEED, n


PLAIN = [b"GET / HTTP/1.0\r\n\r\n", b"\x00", b"SSH-2.0-OpenSSH_9.2\r\n", b"\x15\x03\x01\x00\x02\x02\x28"]


@pytest.mark.parametrize("data", PLAIN)
def test_plain_text_is_not_tls_from_its_first_byte(data: bytes) -> None:
    assert tls_hello.server_name(data[:1]).status is NOT
    assert tls_hello.server_name(data).status is NOT
    if data[0] != 0x15:  # an alert record is "SSL" for hello_type, which reports its type
        assert tls_hello.hello_type(data[:1]).status is NOT


def test_empty_buffer_always_waits() -> None:
    for fn in (tls_hello.server_name, tls_hello.hello_type, tls_hello.client_version, tls_hello.alpn):
        assert fn(b"").status is NEED


@pytest.mark.parametrize(
    ("data", "status", "value"),
    [
        (b"\x16\x02\x00\x00\x04\x01\x00\x00\x00", NOT, None),  # SSLv2 record version
        (b"\x16\x03\x01\x00\x03\x01\x00\x00\x00", NOT, None),  # record too short for a handshake header
        (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", DONE, 2),  # a ServerHello: type 2, empty body
        (b"\x16\x03\x01\x00\x04\x01\x00\x00\x05ab", NEED, None),  # body of 5 not there yet
        (b"\x17\x03\x03\x00\x04\x01\x00\x00\x00", DONE, 1),  # any SSLv3+ record type is parsed
    ],
)
def test_hello_type_table(data: bytes, status: HelloStatus, value: int | None) -> None:
    got = tls_hello.hello_type(data)
    assert (got.status, got.value) == (status, value)


def test_sni_needs_a_clienthello_message() -> None:
    hello = bytearray(HELLOS["sni"][0])
    hello[5] = 2  # handshake type ServerHello
    assert tls_hello.server_name(bytes(hello)).status is NOT
    hello = bytearray(HELLOS["sni"][0])
    hello[1] = 2  # record version below SSLv3
    assert tls_hello.server_name(bytes(hello)).status is NOT


def test_sslv2_hello_version() -> None:
    # SSLv2-format ClientHello (short header): msg 1, version 3.1, 3 bytes of ciphers, no session
    # id, a 16-byte challenge
    body = b"\x01\x03\x01" + b"\x00\x03" + b"\x00\x00" + b"\x00\x10" + b"\x00\x00\x2f" + b"C" * 16
    hello = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    got = tls_hello.client_version(hello)
    assert (got.status, got.value) == (DONE, 0x30001)
    assert tls_hello.client_version(hello[:-1]).status is NEED
    bad = hello[:2] + b"\x02" + hello[3:]  # not a hello message
    assert tls_hello.client_version(bad).status is NOT


def test_corrupted_hellos_never_raise() -> None:
    """Random byte flips and truncations: every verdict is one of the three, nothing raises."""
    rng = random.Random(26)
    base = HELLOS["sni_alpn"][0]
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = bytes(data[: rng.randint(0, len(data) + 10)])
        for fn in (tls_hello.server_name, tls_hello.hello_type, tls_hello.client_version, tls_hello.alpn):
            got = fn(cut)
            assert got.status in (NEED, NOT, DONE)
            assert (got.value is not None) == (got.status is DONE) or fn is tls_hello.alpn
