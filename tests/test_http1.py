"""core/http1.py without sockets: framing over llhttp, HAProxy's checks and its byte formats.

Expected values are HAProxy 2.6.12's (observed on loopback, see tests/test_http_smuggling.py for the
same vectors end to end against both)."""

from __future__ import annotations

import pytest

from haproxy_py.core import http1
from haproxy_py.core.http1 import (
    EndOfMessage,
    H1Error,
    Limits,
    RequestHead,
    RequestReader,
    ResponseHead,
    ResponseReader,
    Upgrade,
)


def events(reader: RequestReader | ResponseReader, *feeds: bytes, eof: bool = False) -> list:
    for f in feeds:
        reader.feed(f)
    if eof:
        assert isinstance(reader, ResponseReader)
        reader.feed_eof()
    out = []
    while (ev := reader.next_event()) is not None:
        out.append(ev)
    return out


def kinds(evs: list) -> list[str]:
    names = {RequestHead: "head", ResponseHead: "head", bytes: "data", EndOfMessage: "end", Upgrade: "upgrade",
             H1Error: "error"}
    return [names[type(e)] for e in evs]


def req_events(*feeds: bytes) -> list:
    return events(RequestReader(), *feeds)


# ----------------------------------------------------------------------------------------------
# requests: framing


def test_get_is_parsed_into_a_head_and_an_end():
    evs = req_events(b"GET /a?b=1 HTTP/1.1\r\nHost: Example\r\nX-Y:  z \r\n\r\n")
    assert kinds(evs) == ["head", "end"]
    head = evs[0]
    assert (head.method, head.target, head.version) == (b"GET", b"/a?b=1", 11)
    assert head.headers == [(b"host", b"Example"), (b"x-y", b"z")]  # names lower-cased, values trimmed
    assert not head.has_body and head.client_keepalive


def test_byte_by_byte_feeding_gives_the_same_events():
    data = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    r = RequestReader()
    for i in range(len(data)):
        r.feed(data[i:i + 1])
    evs = events(r)
    assert kinds(evs)[0] == "head" and kinds(evs)[-1] == "end"
    assert b"".join(e for e in evs if type(e) is bytes) == b"abc"
    assert evs[-1].trailers == [(b"x-t", b"1")]


def test_content_length_body_is_delimited_exactly():
    evs = req_events(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n\r\n")
    assert kinds(evs) == ["head", "data", "end", "head", "end"]
    assert evs[0].content_length == 5 and evs[1] == b"hello" and evs[3].target == b"/next"


def test_chunk_extensions_are_dropped_and_trailers_kept():
    evs = req_events(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nT-A: 1\r\n\r\n")
    assert evs[0].chunked and evs[1] == b"abc" and evs[2].trailers == [(b"t-a", b"1")]


def test_pipelined_requests_come_out_in_order():
    evs = req_events(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nHEAD /3 HTTP/1.1\r\n\r\n")
    assert [e.target for e in evs if type(e) is RequestHead] == [b"/1", b"/2", b"/3"]


def test_a_request_pipelined_after_a_chunked_body_is_parsed():
    evs = req_events(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    assert kinds(evs) == ["head", "data", "end", "head", "end"]


def test_connection_close_and_keep_alive_tokens_are_consumed_others_kept():
    head = req_events(b"GET / HTTP/1.1\r\nConnection: foo, close\r\nFoo: bar\r\n\r\n")[0]
    assert head.headers == [(b"connection", b"foo"), (b"foo", b"bar")]
    assert not head.client_keepalive
    head = req_events(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")[0]
    assert head.headers == [] and not head.client_keepalive


@pytest.mark.parametrize("line,keep", [
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", False),
])
def test_client_keep_alive_follows_version_and_connection(line, keep):
    assert req_events(line)[0].client_keepalive is keep


def test_other_http_versions_are_forwarded_as_1_1():
    for v in (b"2.0", b"1.2", b"3.0"):
        assert req_events(b"GET / HTTP/" + v + b"\r\n\r\n")[0].version == 11


def test_expect_and_unknown_headers_are_kept_verbatim():
    head = req_events(b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 00003\r\n\r\n")[0]
    assert head.header("expect") == b"100-continue"
    assert head.header("content-length") == b"00003" and head.content_length == 3


# ----------------------------------------------------------------------------------------------
# requests: HAProxy's checks and leniencies


@pytest.mark.parametrize("data,status", [
    (b"THIS IS NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9
    (b"GET / FOO/1.1\r\n\r\n", 400),
    (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX{}: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400),  # bare CR
    (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: a\r b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n X: a\r\n\r\n", 400),  # a fold with nothing to continue
    (b"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
    (b"GET\n / HTTP/1.1\r\n\r\n", 400),
    (b"POST /p\r\n HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # a folded request line
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET http://foo/ HTTP/1.1\r\nHost: bar\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 422),
    (b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: short\r\n\r\n", 400),
])
def test_requests_haproxy_refuses(data, status):
    evs = req_events(data)
    errors = [e for e in evs if type(e) is H1Error]
    assert errors and errors[0].status == status, evs
    assert not any(type(e) is RequestHead for e in evs)


@pytest.mark.parametrize("body", [b"z\r\n\r\n", b"3\r\nabcX\r\n0\r\n\r\n", b"3\nabc\n0\n\n"])
def test_bad_chunked_framing_is_an_error_after_the_head(body):
    # (bare LF after a chunk size: HAProxy accepts it, llhttp does not - a documented difference)
    evs = req_events(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert kinds(evs)[0] == "head" and kinds(evs)[-1] == "error" and evs[-1].status == 400


def test_content_length_with_chunked_drops_the_length_and_closes_after():
    evs = req_events(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    head = evs[0]
    assert head.chunked and head.content_length is None and head.close_after
    assert head.header("content-length") is None and head.header("transfer-encoding") == b"chunked"


def test_chunked_http_1_0_request_closes_after():
    head = req_events(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")[0]
    assert head.chunked and head.close_after


@pytest.mark.parametrize("value", [b"3\r\nContent-Length: 3", b"3, 3", b"03\r\nContent-Length: 3"])
def test_equal_content_lengths_are_merged_into_one(value):
    evs = req_events(b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\nX: 1\r\n\r\nabc")
    head = evs[0]
    assert head.content_length == 3
    assert [h for h in head.headers if h[0] == b"content-length"] == [(b"content-length", b"3")]
    assert head.headers[0] == (b"host", b"x") and head.headers[-1] == (b"x", b"1")
    assert evs[1] == b"abc"


def test_identical_hosts_are_merged_case_insensitively():
    head = req_events(b"GET / HTTP/1.1\r\nHost: a\r\nhost: A\r\n\r\n")[0]
    assert head.headers == [(b"host", b"a")]


def test_any_token_is_a_method():
    for method in (b"FOO", b"get", b"PURGE", b"M-SEARCH"):
        evs = req_events(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert evs[0].method == method


def test_bare_lf_line_endings_are_accepted():
    evs = req_events(b"GET /lf HTTP/1.1\nHost: a\nX: b\n\n")
    assert evs[0].target == b"/lf" and evs[0].headers == [(b"host", b"a"), (b"x", b"b")]


def test_obs_fold_is_unfolded_as_haproxy_does():
    # each CR and LF of the fold becomes a space
    head = req_events(b"GET / HTTP/1.1\r\nX-A: b\r\n  c\r\nX-B: d\n\te\r\nX-C: f\r\n \r\n\r\n")[0]
    assert head.headers == [(b"x-a", b"b    c"), (b"x-b", b"d \te"), (b"x-c", b"f")]


def test_control_bytes_in_values_are_forwarded_as_haproxy_does():
    head = req_events(b"GET / HTTP/1.1\r\nX: a\x00b\x01\x7f\r\n\r\n")[0]
    assert head.headers == [(b"x", b"a\x00b\x01\x7f")]


def test_recovery_works_on_a_head_split_across_reads():
    r = RequestReader()
    data = b"PROPFIND /x HTTP/1.1\nHost: a\nContent-Length: 2\nContent-Length: 2\n\nokGET / HTTP/1.1\r\n\r\n"
    for i in range(0, len(data), 5):
        r.feed(data[i:i + 5])
    evs = events(r)
    assert kinds(evs) == ["head", "data", "end", "head", "end"]
    assert evs[0].method == b"PROPFIND" and evs[1] == b"ok"


def test_absolute_uri_default_port_is_dropped():
    head = req_events(b"GET http://foo.com:80/abc?x HTTP/1.1\r\nHost: foo.com\r\n\r\n")[0]
    assert head.target == b"http://foo.com/abc?x"


def test_head_size_limit_is_haproxys_to_the_byte():
    ok = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 15236 + b"\r\n\r\n"
    assert kinds(req_events(ok)) == ["head", "end"]
    too_big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 15237 + b"\r\n\r\n"
    assert req_events(too_big)[0].status == 400


def test_an_endless_head_is_refused_once_it_exceeds_the_buffer():
    r = RequestReader()
    r.feed(b"GET / HTTP/1.1\r\n")
    for _ in range(40):
        r.feed(b"X-A: " + b"b" * 500 + b"\r\n")
    evs = events(r)
    assert evs and type(evs[-1]) is H1Error and evs[-1].status == 400


def test_header_count_limit():
    def with_headers(n: int) -> bytes:
        return b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(n)) + b"\r\n"

    assert kinds(req_events(with_headers(100))) == ["head", "end"]
    assert req_events(with_headers(101))[0].status == 400
    assert kinds(events(RequestReader(Limits(maxhdr=11)), with_headers(10))) == ["head", "end"]


def test_an_error_after_a_good_request_comes_after_it():
    evs = req_events(b"GET /ok HTTP/1.1\r\n\r\nGET /a b HTTP/1.1\r\n\r\n")
    assert kinds(evs) == ["head", "end", "error"]


def test_upgrade_stops_parsing_and_can_resume():
    r = RequestReader()
    evs = events(r, b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
    assert kinds(evs) == ["head", "end", "upgrade"] and evs[0].upgrade
    assert r.stopped and evs[2].rest == b"GET /next HTTP/1.1\r\n\r\n"
    r.events.appendleft(evs[2])
    r.resume_after_refused_upgrade()
    assert [e.target for e in events(r) if type(e) is RequestHead] == [b"/next"]


def test_websocket_upgrade_with_a_valid_key_is_accepted():
    evs = req_events(b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert evs[0].upgrade


def test_control_bytes_in_connection_and_upgrade_values_are_forwarded():
    head = req_events(b"GET / HTTP/1.1\r\nConnection: foo\x02\r\nUpgrade: we\x1dsocket\r\nX: \x01\r\n\r\n")[0]
    assert head.headers == [(b"connection", b"foo\x02"), (b"upgrade", b"we\x1dsocket"), (b"x", b"\x01")]


def test_empty_lines_between_requests_are_not_idle():
    r = RequestReader()
    events(r, b"GET / HTTP/1.1\r\n\r\n")
    r.feed(b"\r\n")
    assert not r.idle and not r.events


def test_idle_only_between_messages():
    r = RequestReader()
    assert r.idle
    r.feed(b"GET / HTTP/1.1\r\n")
    assert not r.idle
    r.feed(b"\r\n")
    assert not r.idle  # events pending
    events(r)
    assert r.idle


# ----------------------------------------------------------------------------------------------
# responses


def res_events(*feeds: bytes, head_request: bool = False, eof: bool = False) -> tuple[ResponseReader, list]:
    r = ResponseReader()
    r.head_request = head_request
    return r, events(r, *feeds, eof=eof)


def test_response_with_length_and_reuse():
    r, evs = res_events(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert kinds(evs) == ["head", "data", "end"]
    assert evs[0].body == "length" and evs[0].server_keepalive and not r.stopped


def test_chunked_response_with_trailers():
    _, evs = res_events(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
    assert evs[0].body == "chunked" and evs[1] == b"hello" and evs[2].trailers == [(b"x-t", b"1")]


def test_close_delimited_response_ends_at_eof():
    r, evs = res_events(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\nhel", b"lo", eof=True)
    assert kinds(evs) == ["head", "data", "data", "end"]
    assert evs[0].body == "close" and not evs[0].server_keepalive and evs[0].version == 10


def test_eof_before_a_complete_response_is_a_server_abort():
    for data in (b"", b"HTTP/1.1 200 OK\r\nContent-Le", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"):
        _, evs = res_events(data, eof=True)
        assert type(evs[-1]) is H1Error and evs[-1].status == 502 and evs[-1].abort


@pytest.mark.parametrize("data", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    b"HTTP/1.1 99 OK\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n\r\n",
])
def test_invalid_responses_are_502(data):
    _, evs = res_events(data)
    assert type(evs[-1]) is H1Error and evs[-1].status == 502 and not evs[-1].abort


def test_bodiless_statuses():
    _, evs = res_events(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
    assert kinds(evs) == ["head", "end"] and evs[0].headers == []  # HAProxy drops a 204's length
    _, evs = res_events(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")
    assert kinds(evs) == ["head", "end"] and evs[0].headers == [(b"content-length", b"5")]


def test_interim_responses_precede_the_final_one():
    _, evs = res_events(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert [e.status for e in evs if type(e) is ResponseHead] == [100, 200]


def test_switching_protocols_hands_over_the_rest():
    r, evs = res_events(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\nraw")
    assert kinds(evs) == ["head", "end", "upgrade"] and evs[2].rest == b"raw" and r.stopped


def test_response_to_head_has_no_body_whatever_its_length():
    r, evs = res_events(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head_request=True)
    assert kinds(evs) == ["head", "end"] and evs[0].headers == [(b"content-length", b"5")]
    assert r.reusable
    r.reset_after_head()
    assert kinds(events(r, b"HTTP/1.1 204 No\r\n\r\n")) == ["head", "end"]


def test_response_to_head_followed_by_stray_bytes_is_not_reused():
    r, evs = res_events(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", head_request=True)
    assert kinds(evs) == ["head", "end"] and not r.reusable


def test_empty_reason_is_kept_empty():
    _, evs = res_events(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    assert http1.response_head_bytes(evs[0], True, 11) == b"HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n"


# ----------------------------------------------------------------------------------------------
# serialisation


def _req(version: int) -> RequestHead:
    h = RequestHead()
    h.method, h.target, h.version, h.headers = b"GET", b"/", version, [(b"host", b"x")]
    return h


@pytest.mark.parametrize("version,keep,expect", [
    (11, True, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
    (11, False, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    (10, True, b"GET / HTTP/1.0\r\nhost: x\r\nconnection: keep-alive\r\n\r\n"),
    (10, False, b"GET / HTTP/1.0\r\nhost: x\r\n\r\n"),
])
def test_request_connection_header_only_where_the_default_differs(version, keep, expect):
    assert http1.request_head_bytes(_req(version), keep) == expect


@pytest.mark.parametrize("res_version,client_version,keep,tail", [
    (11, 11, True, b""),
    (11, 11, False, b"connection: close\r\n"),
    (11, 10, True, b"connection: keep-alive\r\n"),
    (11, 10, False, b"connection: close\r\n"),
    (10, 11, True, b"connection: keep-alive\r\n"),
    (10, 11, False, b""),
])
def test_response_connection_header_matrix(res_version, client_version, keep, tail):
    h = ResponseHead()
    h.status, h.reason, h.version, h.headers = 200, b"OK", res_version, [(b"content-length", b"0")]
    start = b"HTTP/1.1 200 OK\r\n" if res_version == 11 else b"HTTP/1.0 200 OK\r\n"
    assert http1.response_head_bytes(h, keep, client_version) == start + b"content-length: 0\r\n" + tail + b"\r\n"


def test_chunk_framing():
    assert http1.chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert http1.last_chunk(None) == b"0\r\n\r\n"
    assert http1.last_chunk([(b"x-t", b"1")]) == b"0\r\nx-t: 1\r\n\r\n"


def test_forwarded_for_is_a_new_last_line():
    headers = [(b"host", b"a"), (b"x-forwarded-for", b"1.2.3.4")]
    http1.add_forwarded_for(headers, b"x-forwarded-for", b"127.0.0.1", if_none=False)
    assert headers[-2:] == [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"127.0.0.1")]
    http1.add_forwarded_for(headers, b"x-forwarded-for", b"127.0.0.9", if_none=True)
    assert len(headers) == 3


# ----------------------------------------------------------------------------------------------
# HAProxy's own pages (reference §7.2)

PAGE_LENGTHS = {200: 58, 400: 90, 401: 112, 403: 93, 404: 83, 405: 146, 407: 112, 408: 110, 410: 114, 413: 106,
                421: 104, 422: 116, 425: 80, 429: 117, 500: 97, 501: 136, 502: 107, 503: 107, 504: 92}


@pytest.mark.parametrize("status,length", sorted(PAGE_LENGTHS.items()))
def test_builtin_page_lengths(status, length):
    assert len(http1.page_body(status)) == length
    head, body = http1.error_response(status)
    assert head.headers[0] == (b"content-length", b"%d" % length) and body == http1.page_body(status)


def test_raw_400_is_byte_exact():
    assert http1.RAW_400 == (
        b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\n"
        b"Content-Type: text/html\r\n\r\n<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid "
        b"request.\n</body></html>\n")


def test_raw_422_has_no_connection_header():
    assert b"Connection" not in http1.raw_error(422) and http1.raw_error(422).startswith(
        b"HTTP/1.1 422 Unprocessable Content\r\nContent-length: 116\r\n")


def test_stream_503_is_byte_exact():
    head, body = http1.error_response(503)
    assert http1.response_head_bytes(head, True, 11) + body == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available "
        b"to handle this request.\n</body></html>\n")


def test_reasons():
    assert http1.reason(413) == b"Request Entity Too Large"
    assert http1.reason(502) == b"Bad Gateway or Proxy Error"
    assert http1.reason(299) == b"Success" and http1.reason(600) == b"Other"


def test_errorfile_without_length_is_close_delimited():
    head, body = http1.parse_errorfile(b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
                                       b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html>x</html>\n")
    assert head.body == "close" and body == b"<html>x</html>\n"
    assert head.headers == [(b"cache-control", b"no-cache"), (b"content-type", b"text/html")]


def test_errorfile_with_length():
    head, body = http1.parse_errorfile(b"HTTP/1.1 503 Sorry\r\nContent-Length: 5\r\n\r\nsorry")
    assert head.body == "length" and body == b"sorry" and head.server_keepalive


def test_errorfile_that_is_not_http_is_refused():
    with pytest.raises(H1Error):
        http1.parse_errorfile(b"<html>not a response</html>")


@pytest.mark.parametrize(("headers", "expected", "left"), [
    ([(b"host", b"h")], (False, False), [(b"host", b"h")]),
    ([(b"connection", b"keep-alive")], (False, True), []),
    ([(b"connection", b"Close")], (True, False), []),
    ([(b"a", b"1"), (b"connection", b"Upgrade, keep-alive"), (b"b", b"2"), (b"connection", b"close")], (True, True),
     [(b"a", b"1"), (b"connection", b"Upgrade"), (b"b", b"2")]),
    ([(b"connection", b"x-a, close, x-b"), (b"connection", b"x-c")], (True, False),
     [(b"connection", b"x-a, x-b"), (b"connection", b"x-c")]),
    ([(b"connection", b" , "), (b"x", b"y")], (False, False), [(b"x", b"y")]),
])
def test_connection_close_and_keep_alive_tokens_are_consumed_and_others_kept(headers, expected, left) -> None:  # type: ignore[no-untyped-def]
    assert http1.consume_connection(headers) == expected
    assert headers == left
