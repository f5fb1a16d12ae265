"""logformat: tcplog / httplog / log-format lines as HAProxy 2.6 writes them."""

from __future__ import annotations

import time

import pytest

from haproxy_py import log, logformat
from haproxy_py.config.loader import load_texts
from haproxy_py.logformat import HTTPLOG_FORMAT, TCPLOG_FORMAT, LogRecord, render

T = time.mktime((2026, 11, 21, 7, 16, 38, 0, 0, -1)) + 0.878


def rec(**kw) -> LogRecord:
    base = dict(client=("127.0.0.1", 46056), accept_time=T, request_time=T, frontend="fe", backend="be",
                actconn=1, feconn=1)
    base.update(kw)
    return LogRecord(**base)


def test_httplog_line_of_a_served_request() -> None:
    r = rec(server="s1", TR=0, Tw=0, Tc=0, Tr=1, Ta=1, status=200, bytes_read=197, request_line="GET /health HTTP/1.1")
    assert render(HTTPLOG_FORMAT, r) == ('127.0.0.1:46056 [21/Nov/2026:07:16:38.878] fe be/s1 0/0/0/1/1 200 197 - - '
                                         '---- 1/1/0/0/0 0/0 "GET /health HTTP/1.1"')


def test_httplog_line_without_server() -> None:
    r = rec(client=("127.0.0.1", 46042), TR=0, Ta=0, status=503, bytes_read=217, termination="SC",
            request_line="GET / HTTP/1.1")
    assert render(HTTPLOG_FORMAT, r) == ('127.0.0.1:46042 [21/Nov/2026:07:16:38.878] fe be/<NOSRV> 0/-1/-1/-1/0 503 '
                                         '217 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"')


def test_httplog_line_of_a_bad_request_timeout() -> None:
    r = rec(client=("127.0.0.1", 34974), backend=None, TR=-1, Ta=1001, status=408, termination="cR")
    assert render(HTTPLOG_FORMAT, r) == ('127.0.0.1:34974 [21/Nov/2026:07:16:38.878] fe fe/<NOSRV> -1/-1/-1/-1/1001 '
                                         '408 0 - - cR-- 1/1/0/0/0 0/0 "<BADREQ>"')


def test_tcplog_line() -> None:
    r = rec(server="s1", Tw=0, Tc=1, Tt=5003, bytes_read=1234, beconn=1, srv_conn=1)
    assert render(TCPLOG_FORMAT, r) == ("127.0.0.1:46056 [21/Nov/2026:07:16:38.878] fe be/s1 0/1/5003 1234 -- "
                                        "1/1/1/1/0 0/0")


def test_captures_appear_in_braces_and_logasap_prefixes() -> None:
    r = rec(server="s1", status=200, request_line="GET / HTTP/1.1", captured_request_headers=("a.example", ""),
            logasap=True, Tt=12, redispatched=True, retries=1)
    line = render(HTTPLOG_FORMAT, r)
    assert ' {a.example|} "GET / HTTP/1.1"' in line and "/+1 " in line
    assert render("%Tt %B", r) == "+12 +0"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%ci:%cp %ft %b %s %ST", "127.0.0.1:46056 fe be s1 200"),
        ("%{+Q}b %{+Q}ST", '"be" 200'),
        ("%HM %HU %HP %HQ %HV", "GET /a?b=1 /a ?b=1 HTTP/1.1"),
        ("100%% %Ts", f"100% {int(T)}"),
        ("%ci  %[src]", "127.0.0.1 -"),
        ("[%t]", "[21/Nov/2026:07:16:38.878]"),
        ("%{+X}ST", "C8"),
    ],
)
def test_log_format_variables(fmt: str, expected: str) -> None:
    r = rec(server="s1", status=200, method="GET", uri="/a?b=1", version="HTTP/1.1", request_line="GET /a?b=1 HTTP/1.1")
    assert render(fmt, r) == expected


def proxy(opts: str):
    cfg = load_texts([("t.cfg", "defaults\n    mode tcp\n    log 127.0.0.1:5140 local0\nfrontend fe\n"
                                f"    bind 127.0.0.1:1\n{opts}    default_backend be\nbackend be\n"
                                "    server s 127.0.0.1:2\n")]).config
    return cfg.proxies[0]


def test_connect_line_when_no_format() -> None:
    px = proxy("")
    assert logformat.format_for(px) is None
    assert logformat.connect_line(("127.0.0.1", 5000), ("127.0.0.1", 8080), px) == \
        "Connect from 127.0.0.1:5000 to 127.0.0.1:8080 (fe/TCP)"


def test_dontlognull_and_tcplog_option() -> None:
    px = proxy("    option tcplog\n    option dontlognull\n")
    assert logformat.format_for(px) == TCPLOG_FORMAT
    empty = rec(bytes_uploaded=0)
    assert logformat.session_line(px, empty) is None
    assert logformat.session_line(px, rec(bytes_uploaded=10)) is not None
    assert logformat.session_line(proxy("    option tcplog\n"), empty) is not None


def test_lines_go_to_the_proxys_log_targets(monkeypatch) -> None:
    sent = []

    class Sink(log.LogSink):
        def send(self, targets, level, message):  # noqa: ANN001
            sent.append((tuple(t.target for t in targets), level, message))

    log.set_current(Sink(()))
    try:
        px = proxy("    option tcplog\n")
        logformat.log_session(px, rec(server="s", bytes_uploaded=3))
        logformat.log_connect(proxy(""), ("127.0.0.1", 1), ("127.0.0.1", 2))
    finally:
        log.set_current(None)
    assert sent[0][0] == ("127.0.0.1:5140",) and sent[0][1] == log.INFO
    assert sent[0][2].startswith("127.0.0.1:46056 [21/Nov/2026:07:16:38.878] fe be/s ")
    assert sent[1][2] == "Connect from 127.0.0.1:1 to 127.0.0.1:2 (fe/TCP)"
