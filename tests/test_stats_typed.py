"""core.stats_typed and the stats socket's `show stat typed` / `show info typed`: exact lines from a
hand-made snapshot, the CLI's argument handling, a running haproxy-py, and (when installed) the
same configuration run through HAProxy 2.6, whose tags and types must be the same."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

import pytest

from conftest import LB, free_port, stats_command, wait_until
from haproxy_py.core import stats
from haproxy_py.core.stats import FIELDS, ProxyStats, Row, Snapshot
from haproxy_py.core.stats_typed import (INFO_FIELDS, STAT_FIELDS, STAT_POSITIONS, Typing, format_flt, format_value,
                                         render_info_typed, render_stat_typed, stat_typing)
from haproxy_py.runtime.admin import CliSession
from http_backends import Origin, Proxy
from test_stats import build

HAPROXY = "/usr/sbin/haproxy"


# -- the tables --------------------------------------------------------------------------------

def test_the_table_follows_the_csv_fields_without_the_separator_column() -> None:
    assert list(STAT_FIELDS) == [f for f in FIELDS if f != "-"]
    assert STAT_POSITIONS["agg_check_status"] == FIELDS.index("agg_check_status") == 102
    assert STAT_POSITIONS["ssl_sess"] == FIELDS.index("ssl_sess") - 1 == 103
    assert STAT_POSITIONS["h1_spliced_bytes_out"] == 126
    for f in STAT_FIELDS.values():
        assert f.kinds and set(f.kinds) <= set("FBSL") and f.desc, f
        for t in f.kinds.values():
            assert len(t.tags) == 3 and t.type in ("u32", "u64", "s32", "str"), (f.name, t)


def test_info_table_keeps_haproxys_numbers() -> None:
    positions = [f.pos for f in INFO_FIELDS.values()]
    assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == 71
    assert INFO_FIELDS["CompressBpsRateLim"].pos == 44 and INFO_FIELDS["Tasks"].pos == 47  # 45, 46: zlib
    assert INFO_FIELDS["Uptime_sec"].float_typing == Typing("MDP", "flt")
    assert INFO_FIELDS["SslFrontendKeyRate"].typing == Typing("MGP", "u32")
    assert INFO_FIELDS["SslFrontendKeyRate"].float_typing == Typing("MRP", "flt")
    assert INFO_FIELDS["Maxconn"].float_typing == Typing("CLP", "u32")


def test_tags_depend_on_the_object_kind() -> None:
    assert stat_typing("F", "rate", 0) == Typing("MRP", "u32")
    assert stat_typing("S", "rate", 0) == Typing("MRP", "u32")
    assert stat_typing("B", "rate", 0) == Typing("MGP", "u32")
    assert stat_typing("B", "rate_max", 0) == Typing("MGP", "u32")
    assert stat_typing("S", "act", 1) == Typing("SGP", "u32")
    assert stat_typing("B", "act", 1) == Typing("MGP", "u32")
    assert stat_typing("S", "lastsess", -1) == Typing("MAP", "s32")


def test_fallbacks() -> None:
    # a field HAProxy never prints for this kind: the same field's typing of another kind
    assert stat_typing("F", "lastsess", 3) == Typing("MAP", "s32")
    # a field HAProxy does not have: from the Python value, with HAProxy's "unknown" tags
    assert stat_typing("S", "nosuch", 3) == Typing("???", "u64")
    assert stat_typing("S", "nosuch", -3) == Typing("???", "s64")
    assert stat_typing("S", "nosuch", 1.5) == Typing("???", "flt")
    assert stat_typing("S", "nosuch", "x") == Typing("???", "str")


def test_value_formats() -> None:
    assert format_value("u32", 7) == ("u32", "7")
    assert format_value("u32", -1) == ("u32", "4294967295")
    assert format_value("u64", -1) == ("u64", "18446744073709551615")
    assert format_value("s32", -1) == ("s32", "-1")
    assert format_value("s32", 2**31) == ("s32", "-2147483648")
    assert format_value("u32", True) == ("u32", "1")
    assert format_value("u32", "UP") == ("str", "UP")
    assert format_value("str", 0) == ("str", "0")
    assert format_value("str", "a:b, c") == ("str", "a:b, c")
    assert format_value("flt", 34) == ("flt", "34")
    assert [format_flt(v) for v in (0.0, 1.428778, 1795258661.358651, 2.5, 0.0000001)] == \
        ["0", "1.428778", "1795258661.358651", "2.5", "0"]


# -- rendering a snapshot ---------------------------------------------------------------------

def _row(kind: int, pxname: str, svname: str, iid: int, sid: int, **values: object) -> Row:
    row: Row = dict.fromkeys(FIELDS)
    row.update(pxname=pxname, svname=svname, pid=1, iid=iid, sid=sid, type=kind, mode="http")
    row["-"] = "-"
    row.update(values)
    return row


def _snapshot() -> Snapshot:
    fe = _row(stats.TYPE_FRONTEND, "fe", "FRONTEND", 2, 0, scur=0, slim=9985, status="OPEN", rate=3, ssl_sess=0)
    s1 = _row(stats.TYPE_SERVER, "be", "s1", 3, 1, status="UP", weight=1, act=1, bck=0, lastsess=-1, last_chk="",
              check_desc="Layer7 check passed", addr="127.0.0.1:8080", _state="UP")
    s2 = _row(stats.TYPE_SERVER, "be", "s2", 3, 2, status="DOWN", act=0, bck=1, _state="DOWN")
    be = _row(stats.TYPE_BACKEND, "be", "BACKEND", 3, 0, status="UP", rate=5, rate_max=6, act=1, bck=1, lastsess=12)
    proxies = (ProxyStats(name="fe", id=2, mode="http", frontend=fe, servers=(), backend=None),
               ProxyStats(name="be", id=3, mode="http", frontend=None, servers=(s1, s2), backend=be))
    return Snapshot(now=stats.START_TIME + 1.25, info={}, proxies=proxies)


FE_LINES = [
    "F.2.0.0.pxname.1:KNS:str:fe",
    "F.2.0.1.svname.1:KNS:str:FRONTEND",
    "F.2.0.4.scur.1:MGP:u32:0",
    "F.2.0.6.slim.1:CLP:u32:9985",
    "F.2.0.17.status.1:SGP:str:OPEN",
    "F.2.0.26.pid.1:KGP:u32:1",
    "F.2.0.27.iid.1:KGS:u32:2",
    "F.2.0.28.sid.1:KGS:u32:0",
    "F.2.0.32.type.1:CGS:u32:0",
    "F.2.0.33.rate.1:MRP:u32:3",
    "F.2.0.75.mode.1:CGS:str:http",
    "F.2.0.103.ssl_sess.1:MCP:u64:0",
]

S1_LINES = [
    "S.3.1.0.pxname.1:KNS:str:be",
    "S.3.1.1.svname.1:KNS:str:s1",
    "S.3.1.17.status.1:SGP:str:UP",
    "S.3.1.18.weight.1:MaP:u32:1",
    "S.3.1.19.act.1:SGP:u32:1",
    "S.3.1.20.bck.1:SGP:u32:0",
    "S.3.1.26.pid.1:KGP:u32:1",
    "S.3.1.27.iid.1:KGS:u32:3",
    "S.3.1.28.sid.1:KGS:u32:1",
    "S.3.1.32.type.1:CGS:u32:2",
    "S.3.1.55.lastsess.1:MAP:s32:-1",
    "S.3.1.56.last_chk.1:MOP:str:",
    "S.3.1.65.check_desc.1:MOP:str:Layer7 check passed",
    "S.3.1.73.addr.1:CGS:str:127.0.0.1:8080",
    "S.3.1.75.mode.1:CGS:str:http",
]

BE_LINES = [
    "B.3.0.0.pxname.1:KNS:str:be",
    "B.3.0.1.svname.1:KNS:str:BACKEND",
    "B.3.0.17.status.1:SGP:str:UP",
    "B.3.0.19.act.1:MGP:u32:1",
    "B.3.0.20.bck.1:MGP:u32:1",
    "B.3.0.26.pid.1:KGP:u32:1",
    "B.3.0.27.iid.1:KGS:u32:3",
    "B.3.0.28.sid.1:KGS:u32:0",
    "B.3.0.32.type.1:CGS:u32:1",
    "B.3.0.33.rate.1:MGP:u32:5",
    "B.3.0.35.rate_max.1:MGP:u32:6",
    "B.3.0.55.lastsess.1:MAP:s32:12",
    "B.3.0.75.mode.1:CGS:str:http",
]


def test_render_exact_lines() -> None:
    text = render_stat_typed(_snapshot())
    assert text.endswith("\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    s2 = [line for line in lines if line.startswith("S.3.2.")]
    assert lines == FE_LINES + S1_LINES + s2 + BE_LINES
    assert "S.3.2.19.act.1:SGP:u32:0" in s2 and "S.3.2.20.bck.1:SGP:u32:1" in s2


def test_render_filters_and_status_suffix() -> None:
    snap = _snapshot()
    assert render_stat_typed(snap, iid=3, types=4, sid=1).splitlines() == S1_LINES
    up = render_stat_typed(snap, hide_down=True).splitlines()
    assert not any(line.startswith("S.3.2.") for line in up)
    assert "B.3.0.17.status.1:SGP:str:UP (1/2)" in up and "F.2.0.17.status.1:SGP:str:OPEN" in up
    assert render_stat_typed(snap, types=0) == ""


def test_render_with_descriptions() -> None:
    lines = render_stat_typed(_snapshot(), desc=True, types=1).splitlines()
    assert lines[0] == 'F.2.0.0.pxname.1:KNS:str:fe:"Proxy name"'
    assert lines[6] == ('F.2.0.27.iid.1:KGS:u32:2:"Frontend or Backend numeric identifier (\'id\' setting)"')
    assert len(lines) == len(FE_LINES)


def test_info_typed_exact_lines() -> None:
    info = {"Name": "HAProxy", "Uptime_sec": 1, "Tasks": 0, "node": "n1", "Tainted": 0, "description": "d",
            "SslFrontendKeyRate": 0, "Start_time_sec": int(stats.START_TIME)}
    snap = Snapshot(now=stats.START_TIME + 1.25, info=info, proxies=())
    assert render_info_typed(snap).splitlines() == [
        "0.Name.1:POS:str:HAProxy",
        "8.Uptime_sec.1:MDP:u32:1",
        "35.SslFrontendKeyRate.1:MGP:u32:0",
        "47.Tasks.1:MGP:u32:0",
        "50.node.1:COS:str:n1",
        "51.description.1:COS:str:d",
        f"70.Start_time_sec.1:MDP:u32:{int(stats.START_TIME)}",
        "71.Tainted.1:SGP:str:0",
    ]
    floats = render_info_typed(snap, floats=True, desc=True).splitlines()
    assert floats[1] == '8.Uptime_sec.1:MDP:flt:1.25:"How long ago this worker process was started (seconds)"'
    assert floats[2].startswith("35.SslFrontendKeyRate.1:MRP:flt:0:")
    assert floats[6] == f'70.Start_time_sec.1:MDP:flt:{format_flt(stats.START_TIME)}:"Start time in seconds"'
    assert floats[3] == ('47.Tasks.1:MGP:u32:0:"Total number of tasks in the current worker process '
                         '(active + sleeping)"')


# -- the CLI command --------------------------------------------------------------------------

def cli(rt, line: str) -> str:  # type: ignore[no-untyped-def]
    return CliSession(rt, "admin").execute(line)


def parse_typed(text: str) -> list[tuple[str, int, int, int, str, str, str, str]]:
    """(kind, iid, sid, pos, name, tags, type, value) per line of `show stat typed`."""
    out = []
    for line in text.splitlines():
        if not line:
            continue
        head, tags, type_, value = line.split(":", 3)
        kind, iid, sid, pos, rest = head.split(".", 4)
        name = rest.rsplit(".", 1)[0]
        out.append((kind, int(iid), int(sid), int(pos), name, tags, type_, value))
    return out


def test_cli_show_stat_typed_matches_the_csv() -> None:
    rt = build()
    typed = cli(rt, "show stat typed")
    assert typed.endswith("\n\n")
    table = list(csv.reader(io.StringIO(cli(rt, "show stat")[2:])))
    header, rows = table[0], [r for r in table[1:] if r]
    lines = parse_typed(typed)
    objects: list[tuple[str, str]] = []
    for kind, iid, sid, pos, name, tags, type_, value in lines:
        row = next(r for r in rows if int(r[header.index("iid")]) == iid and int(r[header.index("sid")]) == sid
                   and "FBS"[int(r[header.index("type")])] == kind)
        if (row[0], row[1]) not in objects:
            objects.append((row[0], row[1]))
        assert STAT_POSITIONS[name] == pos
        csv_value = row[header.index(name)]
        if csv_value != value:  # only fields set to "" (e.g. last_chk) differ: empty in the CSV too
            pytest.fail(f"{kind}.{iid}.{sid} {name}: typed {value!r}, csv {csv_value!r}")
    assert objects == [(r[0], r[1]) for r in rows]
    printed = {(k, i, s, n) for k, i, s, _, n, *_ in lines}
    for r in rows:
        key = ("FBS"[int(r[header.index("type")])], int(r[header.index("iid")]), int(r[header.index("sid")]))
        for name, value in zip(header, r):
            if value and name != "-":
                assert (*key, name) in printed, (key, name)


def test_cli_arguments_as_haproxy_reads_them() -> None:
    rt = build()
    be_iid = rt.config.backend("be").id
    only = parse_typed(cli(rt, f"show stat {be_iid} 4 -1 typed"))
    assert only and {(k, i) for k, i, *_ in only} == {("S", be_iid)}
    assert parse_typed(cli(rt, "show stat be 4 -1 typed")) == only
    # three words after `show stat` are always the object filter, as in HAProxy
    assert cli(rt, "show stat typed up desc") == "No such proxy.\n\n"
    assert cli(rt, "show stat nosuch -1 -1 typed") == "No such proxy.\n\n"
    # of `typed` and `json`, the last one wins
    assert cli(rt, "show stat json typed").startswith("F.")
    assert cli(rt, "show stat typed json").startswith("[")
    assert cli(rt, "show info json typed").startswith("0.Name.1:POS:str:HAProxy\n")
    assert cli(rt, "show info typed json").startswith("[")
    up = cli(rt, "show stat typed up")
    assert f"B.{be_iid}.0.17.status.1:SGP:str:UP (" in up
    described = cli(rt, "show info typed desc").splitlines()[0]
    assert described == '0.Name.1:POS:str:HAProxy:"Product name"'


# -- a running haproxy-py, and HAProxy on the same configuration ----------------------------------

def typed_config(sock: str, fe: int, lst: int, origin: str, closed: int) -> str:
    return (
        f"global\n    stats socket {sock} level admin\n    maxconn 500\n    node typed1\n"
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n"
        f"frontend fe\n    bind 127.0.0.1:{fe}\n    maxconn 100\n    default_backend be\n"
        "backend be\n    balance roundrobin\n    option httpchk GET /\n"
        f"    server up1 {origin} check inter 100ms maxconn 10 maxqueue 5 weight 20\n"
        f"    server down1 127.0.0.1:{closed} check inter 100ms fall 1 rise 1\n"
        f"    server bk1 {origin} check inter 100ms backup\n"
        f"    server off1 {origin} disabled\n"
        f"    server nock {origin}\n"
        f"listen lt\n    mode tcp\n    bind 127.0.0.1:{lst}\n    balance leastconn\n"
        f"    server t1 {origin} check inter 100ms\n"
        "listen stats\n    bind 127.0.0.1:{st}\n    stats enable\n    stats uri /st\n"
    )


class Deployment:
    """The typed config's ports and files, and an origin that answers every request with 200."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hpy-typed-")
        self.origin = Origin("o1")
        self.fe, self.lst, self.st, self.closed = free_port(), free_port(), free_port(), free_port()

    def config(self, name: str) -> tuple[str, str]:
        sock = os.path.join(self.dir, f"{name}.sock")
        text = typed_config(sock, self.fe, self.lst, self.origin.addr, self.closed).replace("{st}", str(self.st))
        return sock, text

    @property
    def ports(self) -> list[int]:
        return [self.fe, self.lst, self.st]

    def close(self) -> None:
        self.origin.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    d = Deployment()
    yield d
    d.close()


def exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def settle_and_query(sock: str, d: Deployment) -> tuple[str, str]:
    """Wait (bounded) until every check has a result, send some traffic, then read both answers."""
    def checks_done() -> bool:
        lines = parse_typed(stats_command(sock, "show stat typed"))
        checks = [v for *_, name, _, _, v in lines if name == "check_status"]
        down = [v for *_, name, _, _, v in lines if name == "status" and v == "DOWN"]
        return bool(checks and down) and not any(v in ("INI", "UNK") or v.startswith("* ") for v in checks)

    assert wait_until(checks_done, 15.0), stats_command(sock, "show stat")
    for _ in range(3):
        assert exchange(d.fe, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert exchange(d.st, b"GET /st;csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    exchange(d.lst, b"GET / HTTP/1.0\r\n\r\n")
    return stats_command(sock, "show stat typed"), stats_command(sock, "show info typed")


def test_running_haproxy_py_answers_show_stat_typed(lb: LB, deployment: Deployment) -> None:
    sock, text = deployment.config("lb")
    lb.start(text, deployment.ports)
    stat, info = settle_and_query(sock, deployment)
    assert stat.endswith("\n\n") and info.endswith("\n\n")
    lines = stat.splitlines()
    for expected in (
        "F.2.0.0.pxname.1:KNS:str:fe",
        "F.2.0.1.svname.1:KNS:str:FRONTEND",
        "F.2.0.6.slim.1:CLP:u32:100",
        "F.2.0.7.stot.1:MCP:u64:3",
        "F.2.0.17.status.1:SGP:str:OPEN",
        "F.2.0.40.hrsp_2xx.1:MCP:u64:3",
        "F.2.0.75.mode.1:CGS:str:http",
        "S.3.1.1.svname.1:KNS:str:up1",
        "S.3.1.6.slim.1:CLP:u32:10",
        "S.3.1.17.status.1:SGP:str:UP",
        "S.3.1.18.weight.1:MaP:u32:20",
        "S.3.1.19.act.1:SGP:u32:1",
        "S.3.1.25.qlimit.1:CGS:u32:5",
        "S.3.1.36.check_status.1:MOP:str:L7OK",
        "S.3.1.37.check_code.1:MOP:u32:200",
        f"S.3.1.73.addr.1:CGS:str:{deployment.origin.addr}",
        "S.3.2.17.status.1:SGP:str:DOWN",
        "S.3.2.36.check_status.1:MOP:str:L4CON",
        "S.3.3.20.bck.1:SGP:u32:1",
        "S.3.4.17.status.1:SGP:str:MAINT",
        "S.3.5.17.status.1:SGP:str:no check",
        "B.3.0.1.svname.1:KNS:str:BACKEND",
        "B.3.0.17.status.1:SGP:str:UP",
        "B.3.0.19.act.1:MGP:u32:2",
        "B.3.0.20.bck.1:MGP:u32:1",
        "B.3.0.76.algo.1:CGS:str:roundrobin",
        "F.4.0.75.mode.1:CGS:str:tcp",
        "S.4.1.36.check_status.1:MOP:str:L4OK",
        "F.5.0.0.pxname.1:KNS:str:stats",
    ):
        assert expected in lines, (expected, stat)
    assert any(line.startswith("B.3.0.33.rate.1:MGP:u32:") for line in lines)
    assert any(line.startswith("S.3.1.33.rate.1:MRP:u32:") for line in lines)
    assert any(line.startswith("B.3.0.103.ssl_sess.1:MCP:u64:") for line in lines)
    assert not any(".-." in line or ".104.-" in line for line in lines)
    servers = parse_typed(stats_command(sock, "show stat 3 4 2 typed"))
    assert servers and {(k, i, s) for k, i, s, *_ in servers} == {("S", 3, 2)}
    assert info.startswith("0.Name.1:POS:str:HAProxy\n")
    assert "50.node.1:COS:str:typed1" in info.splitlines()


@pytest.mark.skipif(not os.access(HAPROXY, os.X_OK), reason="HAProxy 2.6 is not installed")
def test_tags_and_types_agree_with_haproxy(lb: LB, deployment: Deployment) -> None:
    answers = {}
    sock, text = deployment.config("oracle")
    oracle = Proxy(text, deployment.ports, cmd=[HAPROXY])
    try:
        answers["haproxy"] = settle_and_query(sock, deployment)
    finally:
        oracle.stop()
    sock, text = deployment.config("lb")
    lb.start(text, deployment.ports)
    answers["haproxy-py"] = settle_and_query(sock, deployment)

    def stat_fields(text: str) -> dict[tuple[str, int, int, str], tuple[int, str, str]]:
        return {(k, i, s, n): (p, t, ty) for k, i, s, p, n, t, ty, _ in parse_typed(text)}

    def objects(text: str) -> list[tuple[str, int, int]]:
        seen: list[tuple[str, int, int]] = []
        for k, i, s, *_ in parse_typed(text):
            if (k, i, s) not in seen:
                seen.append((k, i, s))
        return seen

    h_stat, h_info = answers["haproxy"]
    l_stat, l_info = answers["haproxy-py"]
    assert objects(l_stat) == objects(h_stat)
    h, l = stat_fields(h_stat), stat_fields(l_stat)
    both = set(h) & set(l)
    assert len(both) > 0.9 * len(h)
    assert {(k[0], k[3], *h[k]) for k in both} == {(k[0], k[3], *l[k]) for k in both}

    def info_fields(text: str) -> dict[str, tuple[int, str, str]]:
        out = {}
        for line in text.splitlines():
            if line:
                head, tags, type_, _ = line.split(":", 3)
                pos, rest = head.split(".", 1)
                out[rest.rsplit(".", 1)[0]] = (int(pos), tags, type_)
        return out

    hi, li = info_fields(h_info), info_fields(l_info)
    assert set(hi) == set(li)
    assert hi == li
