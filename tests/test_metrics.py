"""metrics: HAProxy 2.6's exporter families over a snapshot, and promtool's opinion of them."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from haproxy_py import metrics
from haproxy_py.core import stats
from haproxy_py.core.stats import snapshot
from test_stats import build, checked, server

# HAProxy 2.6.12's exporter on the configuration below: samples per family (process family aside)
HAPROXY_SAMPLE_COUNTS = {
    "frontend_current_sessions": 4, "frontend_max_sessions": 4, "frontend_limit_sessions": 4,
    "frontend_sessions_total": 4, "frontend_bytes_in_total": 4, "frontend_bytes_out_total": 4,
    "frontend_requests_denied_total": 4, "frontend_responses_denied_total": 4, "frontend_request_errors_total": 4,
    "frontend_status": 8, "frontend_limit_session_rate": 4, "frontend_max_session_rate": 4,
    "frontend_http_responses_total": 18, "frontend_http_requests_rate_max": 3, "frontend_http_requests_total": 3,
    "frontend_http_comp_bytes_in_total": 3, "frontend_http_comp_bytes_out_total": 3,
    "frontend_http_comp_bytes_bypassed_total": 3, "frontend_http_comp_responses_total": 3,
    "frontend_connections_rate_max": 4, "frontend_connections_total": 4, "frontend_intercepted_requests_total": 3,
    "frontend_denied_connections_total": 4, "frontend_denied_sessions_total": 4,
    "frontend_failed_header_rewriting_total": 4, "frontend_http_cache_lookups_total": 3,
    "frontend_http_cache_hits_total": 3, "frontend_internal_errors_total": 4, "backend_current_queue": 3,
    "backend_max_queue": 3, "backend_current_sessions": 3, "backend_max_sessions": 3, "backend_limit_sessions": 3,
    "backend_sessions_total": 3, "backend_bytes_in_total": 3, "backend_bytes_out_total": 3,
    "backend_requests_denied_total": 3, "backend_responses_denied_total": 3, "backend_connection_errors_total": 3,
    "backend_response_errors_total": 3, "backend_retry_warnings_total": 3, "backend_redispatch_warnings_total": 3,
    "backend_status": 6, "backend_weight": 3, "backend_active_servers": 3, "backend_backup_servers": 3,
    "backend_check_up_down_total": 3, "backend_check_last_change_seconds": 3, "backend_downtime_seconds_total": 3,
    "backend_loadbalanced_total": 3, "backend_max_session_rate": 3, "backend_http_responses_total": 12,
    "backend_http_requests_total": 2, "backend_client_aborts_total": 3, "backend_server_aborts_total": 3,
    "backend_http_comp_bytes_in_total": 2, "backend_http_comp_bytes_out_total": 2,
    "backend_http_comp_bytes_bypassed_total": 2, "backend_http_comp_responses_total": 2,
    "backend_last_session_seconds": 3, "backend_queue_time_average_seconds": 3,
    "backend_connect_time_average_seconds": 3, "backend_response_time_average_seconds": 3,
    "backend_total_time_average_seconds": 3, "backend_failed_header_rewriting_total": 3,
    "backend_connection_attempts_total": 3, "backend_connection_reuses_total": 3,
    "backend_http_cache_lookups_total": 2, "backend_http_cache_hits_total": 2, "backend_max_queue_time_seconds": 3,
    "backend_max_connect_time_seconds": 3, "backend_max_response_time_seconds": 3,
    "backend_max_total_time_seconds": 3, "backend_internal_errors_total": 3, "backend_uweight": 3,
    "backend_agg_server_status": 15, "backend_agg_server_check_status": 15, "backend_agg_check_status": 48,
    "server_current_queue": 5, "server_max_queue": 5, "server_current_sessions": 5, "server_max_sessions": 5,
    "server_limit_sessions": 5, "server_sessions_total": 5, "server_bytes_in_total": 5, "server_bytes_out_total": 5,
    "server_responses_denied_total": 5, "server_connection_errors_total": 5, "server_response_errors_total": 5,
    "server_retry_warnings_total": 5, "server_redispatch_warnings_total": 5, "server_status": 25,
    "server_weight": 5, "server_check_failures_total": 5, "server_check_up_down_total": 5,
    "server_check_last_change_seconds": 5, "server_downtime_seconds_total": 5, "server_queue_limit": 5,
    "server_current_throttle": 5, "server_loadbalanced_total": 5, "server_max_session_rate": 5,
    "server_check_status": 32, "server_check_code": 2, "server_check_duration_seconds": 2,
    "server_http_responses_total": 24, "server_client_aborts_total": 5, "server_server_aborts_total": 5,
    "server_last_session_seconds": 5, "server_queue_time_average_seconds": 5,
    "server_connect_time_average_seconds": 5, "server_response_time_average_seconds": 5,
    "server_total_time_average_seconds": 5, "server_failed_header_rewriting_total": 5,
    "server_connection_attempts_total": 5, "server_connection_reuses_total": 5,
    "server_idle_connections_current": 5, "server_idle_connections_limit": 5, "server_max_queue_time_seconds": 5,
    "server_max_connect_time_seconds": 5, "server_max_response_time_seconds": 5, "server_max_total_time_seconds": 5,
    "server_internal_errors_total": 5, "server_unsafe_idle_connections_current": 5,
    "server_safe_idle_connections_current": 5, "server_used_connections_current": 5,
    "server_need_connections_current": 5, "server_uweight": 5,
}


ORACLE_CFG = """\
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:18080
    default_backend be
frontend mon
    bind 127.0.0.1:18081
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
frontend ftcp
    mode tcp
    bind 127.0.0.1:18082
    default_backend btcp
backend be
    balance roundrobin
    option httpchk GET /heartbeat.html
    server s1 127.0.0.1:18090 check inter 1s
    server s2 127.0.0.1:18091 check inter 1s maxconn 10 weight 5
    server s3 127.0.0.1:18092 backup
backend btcp
    mode tcp
    server t1 127.0.0.1:18093
listen lst
    bind 127.0.0.1:18083
    server l1 127.0.0.1:18094 check disabled
"""

# Samples HAProxy printed as NaN for that configuration (besides the two zlib process gauges)
HAPROXY_NAN = {
    "server_limit_sessions": {"s1", "s3", "t1", "l1"},
    "server_check_failures_total": {"s3", "t1"},
    "server_check_up_down_total": {"s3", "t1"},
    "server_downtime_seconds_total": {"s3", "t1"},
    "server_queue_limit": {"s1", "s2", "s3", "t1", "l1"},
    "server_current_throttle": {"s1", "s2", "s3", "t1", "l1"},
    "server_idle_connections_limit": {"s1", "s2", "s3", "t1", "l1"},
}


def oracle_rt():
    rt = build(ORACLE_CFG)
    checked(server(rt, "be", "s1"), "L7OK", up=True, health=4, code=200, duration=1)
    checked(server(rt, "be", "s2"), "L4CON", up=False, health=0, info="Connection refused")
    server(rt, "lst", "l1").checked = True
    for be in rt.backends.values():
        be.server_changed()
    return rt


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def value(parsed, name, **labels):
    got = [v for n, lab, v in parsed if n == name and all(lab.get(k) == x for k, x in labels.items())]
    assert len(got) == 1, (name, labels, got)
    return got[0]


def current_state(parsed, name, **labels):
    cur = [lab["state"] for n, lab, v in parsed
           if n == name and v == 1 and all(lab.get(k) == x for k, x in labels.items())]
    assert len(cur) == 1, cur
    return cur[0]


def test_catalogue_has_haproxy_26_families_in_order() -> None:
    names = [f"haproxy_{scope}_{short}" for scope, short, _k, _h in metrics.CATALOGUE]
    assert len(names) == 187
    assert names[0] == "haproxy_process_nbthread" and names[-1] == "haproxy_server_uweight"
    kinds = {f"haproxy_{s}_{n}": k for s, n, k, _h in metrics.CATALOGUE}
    for n in ("haproxy_server_status", "haproxy_backend_status", "haproxy_server_check_status",
              "haproxy_backend_active_servers", "haproxy_server_weight"):
        assert kinds[n] == "gauge", n
    for n in ("haproxy_server_sessions_total", "haproxy_backend_http_responses_total",
              "haproxy_process_dropped_logs_total", "haproxy_server_check_failures_total"):
        assert kinds[n] == "counter", n


def test_help_and_type_lines_are_haproxys() -> None:
    text = metrics.render(snapshot(oracle_rt())).decode()
    assert "# HELP haproxy_server_status Current status of the service, per state label value.\n" \
           "# TYPE haproxy_server_status gauge\n" in text
    assert "# HELP haproxy_backend_active_servers Total number of active UP servers with a non-zero weight\n" in text
    assert ("# HELP haproxy_frontend_http_responses_total Total number of HTTP responses with status 100-199 "
            "returned by this object since the worker process started\n"
            "# TYPE haproxy_frontend_http_responses_total counter\n") in text


def test_same_samples_per_family_as_haproxy() -> None:
    parsed = parse(metrics.render(snapshot(oracle_rt())).decode())
    counts: dict[str, int] = {}
    for name, _lab, _v in parsed:
        if not name.startswith("haproxy_process_"):
            key = name[len("haproxy_"):]
            counts[key] = counts.get(key, 0) + 1
    assert counts == HAPROXY_SAMPLE_COUNTS


def test_nan_exactly_where_haproxy_prints_nan() -> None:
    parsed = parse(metrics.render(snapshot(oracle_rt())).decode())
    nan: dict[str, set[str]] = {}
    for name, lab, v in parsed:
        if math.isnan(v) and not name.startswith("haproxy_process_"):
            nan.setdefault(name[len("haproxy_"):], set()).add(lab.get("server", lab.get("proxy")))
    assert nan == HAPROXY_NAN


def test_state_sets_one_sample_per_state() -> None:
    parsed = parse(metrics.render(snapshot(oracle_rt())).decode())
    assert current_state(parsed, "haproxy_server_status", proxy="be", server="s1") == "UP"
    assert current_state(parsed, "haproxy_server_status", proxy="be", server="s2") == "DOWN"
    assert current_state(parsed, "haproxy_server_status", proxy="lst", server="l1") == "MAINT"
    assert current_state(parsed, "haproxy_backend_status", proxy="be") == "UP"
    assert current_state(parsed, "haproxy_backend_status", proxy="lst") == "DOWN"
    assert current_state(parsed, "haproxy_frontend_status", proxy="fe") == "UP"
    assert current_state(parsed, "haproxy_server_check_status", proxy="be", server="s1") == "L7OK"
    assert current_state(parsed, "haproxy_server_check_status", proxy="be", server="s2") == "L4CON"
    states = [lab["state"] for n, lab, _v in parsed if n == "haproxy_server_status" and lab["server"] == "s1"]
    assert states == ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"]
    assert value(parsed, "haproxy_backend_active_servers", proxy="be") == 1
    assert value(parsed, "haproxy_backend_backup_servers", proxy="be") == 1
    assert value(parsed, "haproxy_server_check_code", proxy="be", server="s1") == 200
    assert value(parsed, "haproxy_server_check_code", proxy="be", server="s2") == 0
    assert value(parsed, "haproxy_server_check_duration_seconds", proxy="be", server="s1") == 0.001
    assert value(parsed, "haproxy_backend_agg_server_status", proxy="be", state="UP") == 2
    assert value(parsed, "haproxy_backend_agg_server_status", proxy="be", state="DOWN") == 1
    assert value(parsed, "haproxy_backend_agg_check_status", proxy="be", state="L4CON") == 1


def test_drain_and_nolb_states() -> None:
    rt = oracle_rt()
    server(rt, "be", "s1").drain = True
    parsed = parse(metrics.render(snapshot(rt)).decode())
    assert current_state(parsed, "haproxy_server_status", proxy="be", server="s1") == "DRAIN"


def test_http_families_only_for_http_proxies() -> None:
    parsed = parse(metrics.render(snapshot(oracle_rt())).decode())
    http_fe = {lab["proxy"] for n, lab, _v in parsed if n == "haproxy_frontend_http_requests_total"}
    assert http_fe == {"fe", "mon", "lst"}
    codes = [lab["code"] for n, lab, _v in parsed if n == "haproxy_server_http_responses_total"
             and lab["server"] == "s1"]
    assert codes == ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
    assert not [1 for n, lab, _v in parsed if n.endswith("http_responses_total") and lab.get("proxy") == "btcp"]


def test_traffic_counters_show_up() -> None:
    rt = oracle_rt()
    s1 = server(rt, "be", "s1")
    s1.counters.sessions_total = 7
    rt.frontends["fe"].counters.count_status(200)
    stats.count_server_response(s1, 200)
    parsed = parse(metrics.render(snapshot(rt)).decode())
    assert value(parsed, "haproxy_server_sessions_total", proxy="be", server="s1") == 7
    assert value(parsed, "haproxy_server_http_responses_total", proxy="be", server="s1", code="2xx") == 1
    assert value(parsed, "haproxy_frontend_http_responses_total", proxy="fe", code="2xx") == 1


@pytest.mark.parametrize(
    ("query", "scopes", "no_maint"),
    [
        ("", {"global", "frontend", "backend", "server", "listener"}, False),
        ("scope=server", {"server"}, False),
        ("scope=backend&scope=server", {"backend", "server"}, False),
        ("scope=server&scope=", set(), False),
        ("scope=*", {"global", "frontend", "backend", "server", "listener"}, False),
        ("no-maint", {"global", "frontend", "backend", "server", "listener"}, True),
        ("scope=global&no-maint", {"global"}, True),
    ],
)
def test_query_options(query: str, scopes: set[str], no_maint: bool) -> None:
    assert metrics.parse_query(query) == (frozenset(scopes), no_maint)


@pytest.mark.parametrize("query", ["scope=foo", "scope", "scope=sticktable"])
def test_bad_scope_is_an_error(query: str) -> None:
    with pytest.raises(metrics.QueryError):
        metrics.parse_query(query)


def test_scope_and_no_maint_select_objects() -> None:
    snap = snapshot(oracle_rt())
    parsed = parse(metrics.render(snap, {"server"}, no_maint=True).decode())
    assert {n.split("_")[1] for n, _l, _v in parsed} == {"server"}
    assert "l1" not in {lab["server"] for _n, lab, _v in parsed}
    assert metrics.render(snap, set()) == b""


def test_process_metrics_and_build_info() -> None:
    parsed = parse(metrics.render(snapshot(oracle_rt()), {"global"}).decode())
    assert value(parsed, "haproxy_process_nbproc") == 1
    assert value(parsed, "haproxy_process_max_connections") == 2000
    assert [lab for n, lab, v in parsed if n == "haproxy_process_build_info"][0]["version"]
    assert math.isnan(value(parsed, "haproxy_process_current_zlib_memory"))


def test_promtool_accepts_the_exposition(tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool (Debian package prometheus) is missing in CI")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    text = metrics.render(snapshot(oracle_rt()))
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    # HAProxy's own output draws one lint remark (a counter without _total); ours none
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr.decode()
    assert re.search(rb"^haproxy_server_status\{", text, re.M)
