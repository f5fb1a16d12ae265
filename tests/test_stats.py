"""core.stats: the snapshot rows and the CSV, against what HAProxy 2.6 printed for the same config."""

from __future__ import annotations

import csv
import io

import pytest

from haproxy_py.config.loader import load_texts
from haproxy_py.core import stats
from haproxy_py.core.stats import FIELDS, EventRate, render_csv, snapshot
from haproxy_py.runtime.supervisor import Runtime

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

# Which CSV fields HAProxy 2.6.12 filled ("x") or left empty (".") for these objects of ORACLE_CFG
# (s1 passing an HTTP check, s2 refused, s3 a backup without check, l1 `disabled`), from `show stat`.
HAPROXY_PATTERNS = {
    ("fe", "FRONTEND"): "xx..xxxxxxxxx....x........xxx...xxxx...xxxxxx.xxx..xxxx....................x.xxxxxxx..xx......x........xxxxxxxxxxxxxxxxxxxxxxxxx",
    ("ftcp", "FRONTEND"): "xx..xxxxxxxxx....x........xxx...xxxx..........xxx..xxxx....................x.xxx.xxx..........x........xxxxxxxxxxxxxxxxxxxxxxxxx",
    ("be", "s1"): "xxxxxx.xxx.x.xxxxxxxxxxxx.xxx.x.xx.xxxxxxxxxx...xxx....x..xxxx...x.xxx...x.x.......xxx..x.xxxxxxxxxx...xxxx.....................",
    ("be", "s2"): "xxxxxxxxxx.x.xxxxxxxxxxxx.xxx.x.xx.xx.xxxxxxx...xxx....xx.xxxx...x.xxx...x.x.......xxx..x.xxxxxxxxxx...xxxx.....................",
    ("be", "s3"): "xxxxxx.xxx.x.xxxxxxxx..x..xxx.x.xx.x...xxxxxx...xxx....x..xxxx...........x.x.......xxx..x.xxxxxxxxxx...xxxx.....................",
    ("be", "BACKEND"): "xxxxxxxxxxxx.xxxxxxxx.xxx.xxx.x.xx.x...xxxxxx...xxxxxxxx..xxxx.............xx......xxxxx..xxxxx....xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ("btcp", "t1"): "xxxxxx.xxx.x.xxxxxxxx..x..xxx.x.xx.x.............xx....x..xxxx...........x.x.......xxx..x.xxxxxxxxxx...xxxx.....................",
    ("btcp", "BACKEND"): "xxxxxxxxxxxx.xxxxxxxx.xxx.xxx.x.xx.x.............xxxxxxx..xxxx.............xx......xxx....xxxxx....xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ("lst", "l1"): "xxxxxx.xxx.x.xxxxxxxxxxxx.xxx.x.xx.x...xxxxxx...xxx....x..xxxx...........x.x.......xxx..x.xxxxxxxxxx...xxxx.....................",
    ("lst", "BACKEND"): "xxxxxxxxxxxx.xxxxxxxx.xxx.xxx.x.xx.x...xxxxxx...xxxxxxxx..xxxx.............xx......xxxxx..xxxxx....xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

HAPROXY_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,"
    "act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
    "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,"
    "qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,"
    "check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,"
    "rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,"
    "h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,"
    "h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,"
    "h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
)


def build(text: str = ORACLE_CFG) -> Runtime:
    return Runtime.build(load_texts([("t.cfg", text)]).config)


def server(rt: Runtime, be: str, name: str):
    return next(s for s in rt.backends[be].servers if s.name == name)


def checked(st, status: str, *, up: bool, health: int, code: int | None = None, info: str = "",
            duration: int | None = 0) -> None:
    """Put a server in the state runtime/checks.py leaves after a check."""
    st.checked = True
    st.check_rise, st.check_fall = 2, 3
    st.check_health = health
    st.check_status = status
    st.check_code = code
    st.check_info = info
    st.check_duration = duration
    st.up = up


@pytest.fixture
def oracle_rt() -> Runtime:
    rt = build()
    checked(server(rt, "be", "s1"), "L7OK", up=True, health=4, code=200, duration=1)
    checked(server(rt, "be", "s2"), "L4CON", up=False, health=0, info="Connection refused")
    l1 = server(rt, "lst", "l1")
    l1.checked = True
    rt.backends["be"].server_changed()
    rt.backends["lst"].server_changed()
    return rt


def rows_by_name(text: str) -> dict[tuple[str, str], list[str]]:
    rows = list(csv.reader(io.StringIO(text[2:])))
    return {(r[0], r[1]): r for r in rows[1:] if r}


def test_csv_header_is_haproxy_26_field_list() -> None:
    assert stats.csv_header() == HAPROXY_HEADER
    assert FIELDS.index("agg_check_status") == 102 and FIELDS[103] == "-"


def test_csv_rows_fill_the_same_fields_as_haproxy(oracle_rt: Runtime) -> None:
    got = rows_by_name(render_csv(snapshot(oracle_rt)))
    for key, pattern in HAPROXY_PATTERNS.items():
        row = got[key]
        mine = "".join("x" if v != "" else "." for v in row[: len(pattern)])
        diff = [FIELDS[i] for i, (a, b) in enumerate(zip(mine, pattern)) if a != b]
        assert not diff, f"{key}: fields filled differently from HAProxy: {diff}"


def test_csv_order_and_blank_line_at_end(oracle_rt: Runtime) -> None:
    text = render_csv(snapshot(oracle_rt))
    assert text.endswith(",\n\n")
    order = [tuple(r[:2]) for r in csv.reader(io.StringIO(text[2:])) if r][1:]
    assert order == [("fe", "FRONTEND"), ("mon", "FRONTEND"), ("ftcp", "FRONTEND"), ("be", "s1"), ("be", "s2"),
                     ("be", "s3"), ("be", "BACKEND"), ("btcp", "t1"), ("btcp", "BACKEND"), ("lst", "FRONTEND"),
                     ("lst", "l1"), ("lst", "BACKEND")]


def test_values_match_haproxy_for_status_weights_and_limits(oracle_rt: Runtime) -> None:
    got = rows_by_name(render_csv(snapshot(oracle_rt)))
    f = {name: i for i, name in enumerate(FIELDS)}

    def val(key, field):
        return got[key][f[field]]

    assert val(("fe", "FRONTEND"), "status") == "OPEN"
    assert val(("fe", "FRONTEND"), "slim") == "2000"
    assert [val(("be", s), "status") for s in ("s1", "s2", "s3")] == ["UP", "DOWN", "no check"]
    assert val(("lst", "l1"), "status") == "MAINT"
    assert val(("lst", "BACKEND"), "status") == "DOWN"
    assert val(("be", "BACKEND"), "status") == "UP"
    # the backend counts usable active servers only while one exists (s2 is down, s3 a backup)
    assert (val(("be", "BACKEND"), "weight"), val(("be", "BACKEND"), "act"), val(("be", "BACKEND"), "bck")) == \
        ("1", "1", "1")
    assert val(("be", "BACKEND"), "slim") == "200"  # fullconn: 10% of the referencing frontends' maxconn
    assert val(("be", "s2"), "slim") == "10"
    assert (val(("be", "s1"), "check_status"), val(("be", "s1"), "check_code")) == ("L7OK", "200")
    assert val(("be", "s1"), "check_desc") == "Layer7 check passed"
    assert (val(("be", "s2"), "check_status"), val(("be", "s2"), "last_chk")) == ("L4CON", "Connection refused")
    assert val(("be", "s2"), "check_desc") == "Layer4 connection problem"
    assert (val(("be", "s1"), "check_rise"), val(("be", "s1"), "check_fall"), val(("be", "s1"), "check_health")) \
        == ("2", "3", "4")
    assert val(("be", "s1"), "addr") == "127.0.0.1:18090"
    assert val(("be", "BACKEND"), "algo") == "roundrobin"
    assert val(("be", "s1"), "type") == "2" and val(("be", "BACKEND"), "type") == "1"
    assert val(("be", "s2"), "lastsess") == "-1"


@pytest.mark.parametrize(
    ("up", "maint", "drain", "health", "checked_", "word"),
    [
        (True, False, False, 4, True, "UP"),
        (True, False, False, 3, True, "UP 2/3"),  # going down: one failure counted
        (False, False, False, 0, True, "DOWN"),
        (False, False, False, 1, True, "DOWN 1/2"),  # going up
        (True, False, True, 4, True, "DRAIN"),
        (True, False, True, 2, True, "DRAIN 1/3"),
        (True, True, False, 4, True, "MAINT"),
        (True, False, False, 2, False, "no check"),
        (True, False, True, 2, False, "DRAIN"),
    ],
)
def test_server_status_words(up: bool, maint: bool, drain: bool, health: int, checked_: bool, word: str) -> None:
    rt = build()
    st = server(rt, "be", "s3")
    if checked_:
        checked(st, "L4OK", up=up, health=health)
    st.maint, st.drain = maint, drain
    h = stats.server_health(st, rt.backends["be"].configs[id(st)])
    assert stats.server_state_name(st, h) == word


def test_admin_state_words_seen_on_haproxy_after_weight_and_drain() -> None:
    """Reference 6.1: `set weight be/s1 50` + `set server be/s1 state drain` gives `be,s1,DRAIN,50,1,0,...`
    and the backend `DOWN,0,0,0` when that was its only server."""
    rt = build("defaults\n    mode http\nbackend be\n    server s1 127.0.0.1:1 weight 100 check\n")
    st = rt.backends["be"].servers[0]
    checked(st, "L7OK", up=True, health=4, code=200)
    st.weight = 50
    st.drain = True
    rt.backends["be"].server_changed()
    got = rows_by_name(render_csv(snapshot(rt)))
    s1 = got[("be", "s1")]
    assert s1[17:24] == ["DRAIN", "50", "1", "0", "0", "0", s1[23]]
    be = got[("be", "BACKEND")]
    assert be[17:21] == ["DOWN", "0", "0", "0"]


def test_backup_weight_counts_only_without_usable_active() -> None:
    rt = build("defaults\n    mode tcp\nbackend be\n    server a 127.0.0.1:1 weight 3\n"
               "    server b1 127.0.0.1:2 backup weight 2\n    server b2 127.0.0.1:3 backup weight 4\n")
    be = rt.backends["be"]
    assert stats.backend_weights(be) == (3, 3, 1, 2)
    be.servers[0].maint = True
    assert stats.backend_weights(be) == (2, 2, 0, 2)  # first backup only, no allbackups


def test_up_and_no_maint_filters_and_backend_counts(oracle_rt: Runtime) -> None:
    text = render_csv(snapshot(oracle_rt), hide_down=True)
    names = [tuple(r[:2]) for r in csv.reader(io.StringIO(text[2:])) if r][1:]
    assert ("be", "s2") not in names and ("lst", "l1") not in names
    assert rows_by_name(text)[("be", "BACKEND")][17] == "UP (2/3)"
    text = render_csv(snapshot(oracle_rt), no_maint=True)
    names = [tuple(r[:2]) for r in csv.reader(io.StringIO(text[2:])) if r][1:]
    assert ("be", "s2") in names and ("lst", "l1") not in names


def test_show_stat_selection_by_proxy_type_and_server_id(oracle_rt: Runtime) -> None:
    snap = snapshot(oracle_rt)
    be_id = oracle_rt.backends["be"].proxy.id
    rows = list(stats.select_rows(snap, iid=be_id, types=4, sid=-1))
    assert [r["svname"] for r in rows] == ["s1", "s2", "s3"]
    rows = list(stats.select_rows(snap, types=2))
    assert [r["pxname"] for r in rows] == ["be", "btcp", "lst"]
    rows = list(stats.select_rows(snap, iid=be_id, types=4, sid=2))
    assert [r["svname"] for r in rows] == ["s2"]


def test_csv_quotes_values_with_commas() -> None:
    assert stats._csv_value('a,b"c') == '"a,b""c"'
    assert stats._csv_value(None) == ""


def test_counters_feed_the_rows() -> None:
    rt = build(ORACLE_CFG)
    fe = rt.frontends["fe"].counters
    for _ in range(3):
        fe.connection_accepted()
        fe.session_started()
        fe.request_seen()
    fe.session_ended()
    fe.count_status(200)
    fe.count_status(503)
    fe.count_status(99)
    row = snapshot(rt).proxy("fe").frontend
    assert (row["scur"], row["smax"], row["stot"], row["req_tot"], row["conn_tot"]) == (2, 3, 3, 3, 3)
    assert (row["hrsp_2xx"], row["hrsp_5xx"], row["hrsp_other"]) == (1, 1, 1)
    assert row["rate"] == 3 and row["rate_max"] == 3


def test_event_rate_slides_over_one_second() -> None:
    r = EventRate()
    for _ in range(10):
        r.tick(100.0)
    assert r.rate(100.5) == 10
    assert r.rate(101.5) == 5  # half of the previous second is still in the window
    assert r.rate(103.0) == 0
    assert r.max_rate == 10


def test_downtime_and_last_change_follow_state_history() -> None:
    h = stats.StateHistory(last_change=0.0)
    h.observe("up", 0.0, counts_as_down=True)
    h.observe("down", 10.0, counts_as_down=True)
    h.observe("up", 25.0, counts_as_down=True)
    assert (h.down_transitions, h.downtime(30.0), h.last_change) == (1, 15, 25.0)
    h.observe("maint", 40.0, counts_as_down=True)
    assert h.downtime(50.0) == 25


def test_uptime_format() -> None:
    assert stats.format_uptime(19) == "0d 0h00m19s"
    assert stats.format_uptime(90061) == "1d 1h01m01s"


def test_show_info_names_in_haproxy_order(oracle_rt: Runtime) -> None:
    info = snapshot(oracle_rt).info
    keys = list(info)
    assert keys[:9] == ["Name", "Version", "Release_date", "Nbthread", "Nbproc", "Process_num", "Pid", "Uptime",
                        "Uptime_sec"]
    assert keys.index("Maxconn") < keys.index("CurrConns") < keys.index("Stopping") < keys.index("Tainted")
    assert info["Name"] == "HAProxy" and info["Maxconn"] == 2000


def test_server_http_responses_are_counted_per_class() -> None:
    rt = build()
    s1 = server(rt, "be", "s1")
    for status in (200, 204, 302, 404, 503, 99):
        stats.count_server_response(s1, status)
    row = next(r for r in snapshot(rt).proxy("be").servers if r["svname"] == "s1")
    assert [row[f] for f in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "req_tot")] \
        == [0, 2, 1, 1, 1, 1, 6]
