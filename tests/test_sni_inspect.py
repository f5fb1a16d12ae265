"""Content inspection in time (runtime.inspect) on real sockets with trio's virtual clock.

`tcp-request inspect-delay` is seconds long; the autojump clock lets these tests wait it out in
no real time, and assert *when* (virtual time) each decision is taken.
"""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
import trio
import trio.testing

from haproxy_py.config.loader import load_text
from haproxy_py.core.acl import ProxyRules
from haproxy_py.core.fetch import SampleContext
from haproxy_py.runtime.inspect import ClientBuffer, Outcome, inspect


def client_hello(name: str | None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


HELLO = client_hello("a.example")
SNI_RULES = "tcp-request content accept if { req_ssl_hello_type 1 }"


def content_rules(text: str) -> ProxyRules:
    cfg = ("defaults\n  mode tcp\n  timeout client 1s\n  timeout connect 1s\n  timeout server 1s\n"
           "frontend fe\n  bind 127.0.0.1:1\n  tcp-request inspect-delay 5s\n"
           + "".join(f"  {x}\n" for x in text.split("\n")) + "  default_backend be\nbackend be\n  server s 127.0.0.1:2\n")
    return ProxyRules.build(load_text(cfg).config.proxies[0])


@pytest.fixture
def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


async def run(sock: socket.socket, rules: ProxyRules, *, client_timeout: float = 60.0, limit: int = 15360,
              delay_ms: int | None = 5000) -> tuple[Outcome, ClientBuffer, SampleContext, float]:
    buf = ClientBuffer(sock, limit=limit)
    ctx = SampleContext(frontend="fe")
    outcome = await inspect(buf, rules.content, ctx, delay_ms, client_timeout)
    return outcome, buf, ctx, trio.current_time()


async def test_hello_in_segments_is_decided_when_complete(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    rules = content_rules(SNI_RULES)

    async def send() -> None:
        for part, at in ((HELLO[:7], 0.0), (HELLO[7:60], 1.0), (HELLO[60:], 2.5)):
            await trio.sleep_until(at)
            client.sendall(part)

    async with trio.open_nursery() as n:
        n.start_soon(send)
        outcome, buf, ctx, t = await run(server, rules)
    assert outcome is Outcome.ACCEPT
    assert t == pytest.approx(2.5)
    assert bytes(buf.data) == HELLO  # every byte kept, in order, for the server
    assert ctx.final is False  # decided on complete data, not on the delay


async def test_incomplete_hello_waits_out_the_delay(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(HELLO[:20])
    outcome, buf, ctx, t = await run(server, content_rules(SNI_RULES))
    assert outcome is Outcome.ACCEPT  # no rule decided: accept once the data is final
    assert t == pytest.approx(5.0)
    assert ctx.final is True and bytes(buf.data) == HELLO[:20]


async def test_plain_text_is_decided_at_once(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    outcome, buf, ctx, t = await run(server, content_rules(SNI_RULES))
    assert (outcome, t) == (Outcome.ACCEPT, 0.0)
    assert ctx.final is False


async def test_nothing_sent_waits_the_delay(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, _client = pair
    outcome, buf, _ctx, t = await run(server, content_rules(SNI_RULES))
    assert (outcome, t, bytes(buf.data)) == (Outcome.ACCEPT, pytest.approx(5.0), b"")


async def test_client_timeout_shorter_than_delay_aborts(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(HELLO[:20])
    outcome, _buf, _ctx, t = await run(server, content_rules(SNI_RULES), client_timeout=2.0)
    assert (outcome, t) == (Outcome.ABORT, pytest.approx(2.0))


async def test_client_timeout_restarts_with_each_segment(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair

    async def send() -> None:
        for i, at in enumerate((0.0, 1.5, 3.0)):
            await trio.sleep_until(at)
            client.sendall(HELLO[i * 10 : i * 10 + 10])

    async with trio.open_nursery() as n:
        n.start_soon(send)
        outcome, _buf, _ctx, t = await run(server, content_rules(SNI_RULES), client_timeout=1.8)
    assert (outcome, t) == (Outcome.ABORT, pytest.approx(4.8))  # 1.8 s after the last segment


async def test_client_half_close_makes_the_data_final(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair

    async def send() -> None:
        client.sendall(HELLO[:30])
        await trio.sleep(1.0)
        client.shutdown(socket.SHUT_WR)

    async with trio.open_nursery() as n:
        n.start_soon(send)
        outcome, buf, ctx, t = await run(server, content_rules(SNI_RULES))
    assert (outcome, t) == (Outcome.ACCEPT, pytest.approx(1.0))
    assert buf.eof and ctx.final and bytes(buf.data) == HELLO[:30]


async def test_client_reset_aborts(autojump_clock: trio.testing.MockClock) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    try:
        client.sendall(HELLO[:10])
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST
        outcome, buf, _ctx, t = await run(server, content_rules(SNI_RULES))
        assert (outcome, t) == (Outcome.ABORT, 0.0)
        assert buf.failed
    finally:
        server.close()


async def test_reject_rule(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(b"SSH-2.0-OpenSSH\r\n")
    rules = content_rules("tcp-request content reject unless { req.payload(0,1) -m bin 16 }\n" + SNI_RULES)
    outcome, _buf, _ctx, t = await run(server, rules)
    assert (outcome, t) == (Outcome.REJECT, 0.0)


async def test_full_buffer_is_final(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    # a record announcing a 1000-byte handshake: never complete within a 100-byte limit
    client.sendall(b"\x16\x03\x01\x03\xec\x01\x00\x03\xe8" + b"x" * 200)
    outcome, buf, ctx, t = await run(server, content_rules(SNI_RULES), limit=100)
    assert (outcome, t, len(buf.data), ctx.final) == (Outcome.ACCEPT, 0.0, 100, True)
    assert server.recv(1000) == b"x" * 109  # the rest stays in the socket for the pump


async def test_no_inspect_delay_decides_on_what_is_there(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(HELLO[:20])
    outcome, _buf, ctx, t = await run(server, content_rules(SNI_RULES), delay_ms=None)
    assert (outcome, t, ctx.final) == (Outcome.ACCEPT, 0.0, True)


async def test_no_rules_reads_nothing(pair, autojump_clock: trio.testing.MockClock) -> None:
    server, client = pair
    client.sendall(b"abc")
    buf = ClientBuffer(server)
    assert await inspect(buf, (), SampleContext(), 5000) is Outcome.ACCEPT
    assert bytes(buf.data) == b""
