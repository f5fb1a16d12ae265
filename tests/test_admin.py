"""runtime.admin: the stats socket CLI (as a function and over real sockets of a running
haproxy-py), the stats page answers and the exporter answer."""

from __future__ import annotations

import base64
import csv
import io
import os
import socket
import tempfile
import time

import pytest

from haproxy_py.runtime import admin
from haproxy_py.runtime.admin import CliSession, split_commands
from conftest import free_port, read_line, wait_until
from test_stats import ORACLE_CFG, build, checked, server


def cli(rt, line: str, level: str = "admin") -> str:
    return CliSession(rt, level).execute(line)


def csv_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    assert text.startswith("# pxname,svname,"), text[:100]
    rows = list(csv.reader(io.StringIO(text[2:])))
    return {(r[0], r[1]): dict(zip(rows[0], r)) for r in rows[1:] if r}


# -- the command interpreter ------------------------------------------------------------------

def test_answers_end_with_an_empty_line() -> None:
    rt = build()
    assert cli(rt, "disable server be/s3") == "\n"
    assert cli(rt, "get weight be/s2") == "5 (initial 5)\n\n"
    assert cli(rt, "show backend") == "# name\nbe\nbtcp\nlst\n\n"
    assert cli(rt, "show stat").endswith(",\n\n")


def test_chained_commands_each_get_their_answer() -> None:
    rt = build()
    assert cli(rt, "show backend;get weight be/s1") == "# name\nbe\nbtcp\nlst\n\n1 (initial 1)\n\n"
    assert split_commands(r"set server be/s\;1 state maint") == [["set", "server", "be/s;1", "state", "maint"]]


def test_errors_have_haproxys_wording() -> None:
    rt = build()
    assert cli(rt, "disable server be/nosuch") == "No such server.\n\n"
    assert cli(rt, "disable server nosuch/s1") == "No such backend.\n\n"
    assert cli(rt, "disable server be") == "Require 'backend/server'.\n\n"
    assert cli(rt, "set server be/s3 state foo") == \
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    assert cli(rt, "set weight be/s3 300") == "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    assert cli(rt, "set weight be/s3 -1%") == "Relative weight must be positive.\n\n"
    assert cli(rt, "set weight be/s3 abc") == "Empty weight string empty or preceded by garbage\n"
    assert cli(rt, "set weight be/s3 2x") == "Trailing garbage in weight string\n"
    assert cli(rt, "show servers state nosuch") == "Can't find backend.\n\n"
    assert cli(rt, "set server be/s3").startswith("usage: set server <backend>/<server> addr | agent |")


def test_unknown_commands_get_a_usage_message() -> None:
    rt = build()
    out = cli(rt, "frobnicate")
    assert out.startswith("Unknown command, but maybe one of the following ones is a better match:\n")
    assert out.endswith("  quit                                    : disconnect\n\n")
    out = cli(rt, "get wieght")
    assert "  get weight <bk>/<srv>                   : report a server's current weight\n" in out
    out = cli(rt, "help")
    assert out.startswith("The following commands are valid at this level:\n")
    assert "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server\n" in out
    assert cli(rt, "help show stat") == (
        "The following commands are valid at this level:\n"
        "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server\n"
        "  help [<command>]                        : list matching or all commands\n"
        "  prompt                                  : toggle interactive mode with prompt\n"
        "  quit                                    : disconnect\n\n")


@pytest.mark.parametrize("level", ["user", "operator"])
@pytest.mark.parametrize("command", ["disable server be/s3", "enable server be/s3", "set server be/s3 state drain",
                                     "set weight be/s3 2", "set server be/s3 weight 3", "disable health be/s1",
                                     "enable health be/s1", "shutdown sessions server be/s3"])
def test_only_admin_level_changes_state(level: str, command: str) -> None:
    rt = build()
    s3 = server(rt, "be", "s3")
    assert cli(rt, command, level) == "Permission denied\n\n"
    assert (s3.maint, s3.drain, s3.weight) == (False, False, 1)


@pytest.mark.parametrize("level", ["user", "operator", "admin"])
def test_reading_is_allowed_at_every_level(level: str) -> None:
    rt = build()
    assert cli(rt, "show stat", level).startswith("# pxname,svname,")
    assert cli(rt, "get weight be/s3", level) == "1 (initial 1)\n\n"
    assert cli(rt, "show info", level).startswith("Name: HAProxy\nVersion: ")
    assert cli(rt, "show cli level", level) == f"{level}\n\n"


def test_lowering_the_level_within_a_session() -> None:
    rt = build()
    s = CliSession(rt, "admin")
    assert s.execute("operator;show cli level;user;show cli level") == "\noperator\n\n\nuser\n\n"
    assert s.execute("disable server be/s3") == "Permission denied\n\n"


def test_disable_and_enable_server_change_what_the_balancer_sees() -> None:
    rt = build()
    be = rt.backends["be"]
    s1 = server(rt, "be", "s1")
    assert cli(rt, "disable server be/s1") == "\n"
    assert s1.maint and not s1.usable
    assert csv_rows(cli(rt, "show stat"))[("be", "s1")]["status"] == "MAINT"
    assert be.counters is not None
    assert cli(rt, "enable server be/s1") == "\n"
    assert not s1.maint and s1.usable
    assert cli(rt, "set server be/s1 state drain") == "\n"
    assert s1.drain and not s1.usable
    assert cli(rt, "set server be/s1 state ready") == "\n"
    assert s1.usable


def test_weights_absolute_relative_and_static_algorithms() -> None:
    rt = build()
    s2 = server(rt, "be", "s2")
    assert cli(rt, "set weight be/s2 50%") == "\n"
    assert cli(rt, "get weight be/s2") == "2 (initial 5)\n\n"
    assert cli(rt, "set server be/s2 weight 7") == "\n"
    assert s2.weight == 7
    rt = build("defaults\n    mode tcp\nbackend be\n    balance source\n    server a 127.0.0.1:1 weight 4\n")
    assert cli(rt, "set weight be/a 2") == \
        "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"
    assert cli(rt, "set weight be/a 0%") == "\n"
    assert cli(rt, "set weight be/a 100%") == "\n"
    assert cli(rt, "get weight be/a") == "4 (initial 4)\n\n"


def test_disable_health_makes_the_server_unchecked_and_up() -> None:
    rt = build()
    s2 = server(rt, "be", "s2")
    checked(s2, "L4CON", up=False, health=0, info="Connection refused")
    assert csv_rows(cli(rt, "show stat"))[("be", "s2")]["status"] == "DOWN"
    assert cli(rt, "disable health be/s2") == "\n"
    row = csv_rows(cli(rt, "show stat"))[("be", "s2")]
    assert (row["status"], row["check_status"], row["chkfail"]) == ("no check", "", "")
    assert s2.up and admin.stats.health_disabled(s2)
    assert cli(rt, "enable health be/s2") == "\n"
    assert not admin.stats.health_disabled(s2)


def test_show_servers_state_lines() -> None:
    rt = build()
    checked(server(rt, "be", "s1"), "L7OK", up=True, health=4, code=200)
    checked(server(rt, "be", "s2"), "L4CON", up=False, health=0)
    server(rt, "lst", "l1").checked = True
    out = cli(rt, "show servers state be")
    lines = out.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state")
    f = [ln.split() for ln in lines[2:] if ln]
    # be_id name id srv addr op admin uw iw lastchg status result health chkstate
    assert f[0][1:9] == ["be", "1", "s1", "127.0.0.1", "2", "0", "1", "1"]
    assert f[0][10:14] == ["15", "3", "4", "6"]
    assert f[1][3:7] == ["s2", "127.0.0.1", "0", "0"] and f[1][10:14] == ["8", "2", "0", "6"]
    assert f[2][3] == "s3" and f[2][10:14] == ["1", "0", "2", "0"]
    assert f[0][18] == "18090"
    lst = cli(rt, "show servers state lst").splitlines()[2].split()
    assert lst[5:7] == ["0", "5"] and lst[13] == "14"  # disabled in the config: maint, checks paused


def test_prompt_mode_keeps_the_session() -> None:
    rt = build()
    s = CliSession(rt, "admin")
    assert s.execute("prompt") == "\n> "
    assert s.execute("get weight be/s1") == "1 (initial 1)\n\n> "
    assert s.execute("").startswith("Unknown command. Please enter one of the following commands only:\n")
    assert s.execute("quit") == ""
    assert s.closing


# -- HTTP answers ------------------------------------------------------------------------------

STATS_CFG = ORACLE_CFG.replace("    stats uri /stats\n", "    stats uri /stats\n    stats refresh 10s\n"
                               "    stats auth admin:secret\n    stats admin if TRUE\n    stats realm My\\ Stats\n")


def auth(user: str = "admin", password: str = "secret") -> list[tuple[str, str]]:
    return [("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())]


def test_stats_page_needs_auth_with_the_realm() -> None:
    rt = build(STATS_CFG)
    px = rt.frontends["mon"].proxy
    status, headers, body = admin.stats_response(rt, px, "GET", "/stats", [])
    assert status == 401
    assert ("www-authenticate", 'Basic realm="My Stats"') in headers
    assert body.startswith(b"<html><body><h1>401 Unauthorized</h1>")
    assert admin.stats_response(rt, px, "GET", "/stats", auth(password="wrong"))[0] == 401


def test_stats_page_csv_html_and_refresh() -> None:
    rt = build(STATS_CFG)
    px = rt.frontends["mon"].proxy
    status, headers, body = admin.stats_response(rt, px, "GET", "/stats;csv", auth())
    assert status == 200 and ("content-type", "text/plain") in headers and ("refresh", "10") in headers
    assert csv_rows(body.decode())[("fe", "FRONTEND")]["status"] == "OPEN"
    status, headers, body = admin.stats_response(rt, px, "GET", "/stats;csv;norefresh", auth())
    assert not [h for h in headers if h[0] == "refresh"]
    status, headers, body = admin.stats_response(rt, px, "GET", "/stats", auth())
    assert status == 200 and ("content-type", "text/html") in headers
    assert b"<title>Statistics Report for HAProxy</title>" in body and b'<a name="be/s1">' in body
    assert admin.stats_response(rt, px, "HEAD", "/stats", auth())[2] == b""
    status, headers, body = admin.stats_response(rt, px, "GET", "/stats;json", auth())
    assert ("content-type", "application/json") in headers and body.startswith(b"[[")


def test_stats_admin_post_applies_and_redirects() -> None:
    rt = build(STATS_CFG)
    px = rt.frontends["mon"].proxy
    be_id = rt.backends["be"].proxy.id
    body = f"s=s1&s=s2&action=maint&b=%23{be_id}".encode()
    status, headers, _ = admin.stats_response(rt, px, "POST", "/stats", auth(), body)
    assert status == 303 and ("location", "/stats;st=DONE") in headers
    assert server(rt, "be", "s1").maint and server(rt, "be", "s2").maint
    _s, headers, _b = admin.stats_response(rt, px, "POST", "/stats", auth(), f"s=x&action=ready&b=%23{be_id}".encode())
    assert ("location", "/stats;st=ERRP") in headers
    _s, _h, page = admin.stats_response(rt, px, "GET", "/stats;st=DONE", auth())
    assert b"Action processed successfully." in page


def test_stats_admin_post_denied_without_stats_admin() -> None:
    rt = build()
    px = rt.frontends["mon"].proxy
    body = f"s=s1&action=maint&b=%23{rt.backends['be'].proxy.id}".encode()
    _s, headers, _b = admin.stats_response(rt, px, "POST", "/stats", [], body)
    assert ("location", "/stats;st=DENY") in headers
    assert not server(rt, "be", "s1").maint
    assert admin.stats_response(rt, px, "POST", "/stats", [], body, admin=True)[1][-1] == \
        ("location", "/stats;st=DONE")


def test_is_stats_request_is_a_prefix_match() -> None:
    rt = build()
    px = rt.frontends["mon"].proxy
    assert admin.is_stats_request(px, "/stats") and admin.is_stats_request(px, "/stats;csv")
    assert admin.is_stats_request(px, "/stats/foo;csv")
    assert not admin.is_stats_request(px, "/stat")
    assert not admin.is_stats_request(rt.frontends["fe"].proxy, "/stats")


def test_prometheus_response() -> None:
    rt = build()
    status, headers, body = admin.prometheus_response(rt, "GET", "/metrics", [])
    assert status == 200
    assert headers == [("cache-control", "no-cache"), ("content-type", "text/plain; version=0.0.4")]
    assert b"\nhaproxy_server_status{" in body
    assert admin.prometheus_response(rt, "HEAD", "/metrics", [])[2] == b""
    status, _h, body = admin.prometheus_response(rt, "GET", "/metrics?scope=foo", [])
    assert status == 400 and b"400 Bad request" in body
    _s, _h, body = admin.prometheus_response(rt, "GET", "/metrics?scope=backend", [])
    assert b"haproxy_backend_status" in body and b"haproxy_server_" not in body


# -- a real process: the stats socket end to end (mode tcp) -------------------------------------

def socket_cmd(path: str, command: str, timeout: float = 5.0) -> str:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                break
            out += d
        return out.decode()
    finally:
        s.close()


@pytest.fixture
def running(lb, tcp_servers):
    a, b = tcp_servers("a"), tcp_servers("b")
    port, tport = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="hpy-adm-")
    paths = {lvl: os.path.join(d, f"{lvl}.sock") for lvl in ("admin", "user")}
    cfg = (f"global\n    stats socket {paths['admin']} level admin mode 600\n"
           f"    stats socket {paths['user']} level user\n    stats socket 127.0.0.1:{tport} level admin\n"
           "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
           f"listen app\n    bind 127.0.0.1:{port}\n    server a {a.addr}\n    server b {b.addr}\n")
    proc = lb.start(cfg, [port])
    yield {"port": port, "tcp": tport, "proc": proc, **paths}


def test_stats_socket_is_ready_when_the_frontends_listen(running) -> None:
    # bound before the frontends (as HAProxy does): no wait needed once the port listens
    assert socket_cmd(running["admin"], "show backend") == "# name\napp\n\n"
    assert oct(os.stat(running["admin"]).st_mode & 0o777) == "0o600"


def test_stats_socket_show_stat_and_disable_server(running) -> None:
    rows = csv_rows(socket_cmd(running["admin"], "show stat"))
    assert rows[("app", "a")]["status"] == "no check" and rows[("app", "FRONTEND")]["status"] == "OPEN"
    assert socket_cmd(running["admin"], "disable server app/a") == "\n"
    names = []
    for _ in range(4):
        name, s = read_line(running["port"])
        s.close()
        names.append(name)
    assert names == ["b"] * 4
    assert csv_rows(socket_cmd(running["admin"], "show stat"))[("app", "a")]["status"] == "MAINT"
    assert socket_cmd(running["admin"], "enable server app/a") == "\n"
    seen = set()
    for _ in range(4):
        name, s = read_line(running["port"])
        s.close()
        seen.add(name)
    assert seen == {"a", "b"}
    rows = csv_rows(socket_cmd(running["admin"], "show stat"))
    assert int(rows[("app", "a")]["stot"]) >= 1 and int(rows[("app", "FRONTEND")]["stot"]) == 8


def test_stats_socket_levels_over_the_wire(running) -> None:
    assert socket_cmd(running["user"], "disable server app/a") == "Permission denied\n\n"
    assert csv_rows(socket_cmd(running["user"], "show stat"))[("app", "a")]["status"] == "no check"


def test_stats_socket_over_tcp_and_prompt_mode(running) -> None:
    s = socket.create_connection(("127.0.0.1", running["tcp"]), timeout=5)
    try:
        def ask(line: str) -> bytes:
            s.sendall(line.encode() + b"\n")
            out = b""
            while not out.endswith(b"> "):
                d = s.recv(65536)
                if not d:
                    break
                out += d
            return out
        assert ask("prompt") == b"\n> "
        assert ask("get weight app/b") == b"1 (initial 1)\n\n> "
        assert ask("set weight app/b 3") == b"\n> "
        assert ask("get weight app/b") == b"3 (initial 1)\n\n> "
        s.sendall(b"quit\n")
        assert wait_until(lambda: s.recv(10) == b"", 2.0)
    finally:
        s.close()


def test_one_command_per_connection_without_prompt(running) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(running["admin"])
    s.sendall(b"show backend\nget weight app/a\n")
    out = b""
    while d := s.recv(65536):
        out += d
    s.close()
    assert out == b"# name\napp\n\n"


def test_unbindable_stats_socket_fails_the_start_like_haproxy(lb) -> None:
    port = free_port()
    cfg = ("global\n    stats socket /nonexistent-dir/x.sock level admin\n"
           "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"
           f"listen app\n    bind 127.0.0.1:{port}\n    server a 127.0.0.1:1\n")
    path = lb.write(cfg, "bad.cfg")
    r = lb.run(["-db", "-f", path], timeout=20)
    assert r.returncode == 1
    assert "for frontend GLOBAL: cannot bind UNIX socket (No such file or directory) [/nonexistent-dir/x.sock]" \
        in r.stderr


def test_stats_socket_file_removed_at_stop(running, lb) -> None:
    assert os.path.exists(running["admin"])
    lb.stop()
    assert wait_until(lambda: not os.path.exists(running["admin"]), 5.0)


def test_getsocks_hands_over_listeners_on_expose_fd_sockets(lb, tcp_servers) -> None:
    from haproxy_py.process.reload import fetch_listeners

    a = tcp_servers("a")
    port = free_port()
    d = tempfile.mkdtemp(prefix="hpy-x-")
    exposed, plain = os.path.join(d, "x.sock"), os.path.join(d, "p.sock")
    cfg = (f"global\n    stats socket {exposed} level admin expose-fd listeners\n"
           f"    stats socket {plain} level admin\n"
           "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
           f"listen app\n    bind 127.0.0.1:{port}\n    server a {a.addr}\n")
    lb.start(cfg, [port])
    got = fetch_listeners(exposed)
    try:
        assert list(got) == [f"ipv4:127.0.0.1:{port}"]
        sock = got[f"ipv4:127.0.0.1:{port}"]
        assert sock.getsockname() == ("127.0.0.1", port)
    finally:
        for s in got.values():
            s.close()
    with pytest.raises(OSError):
        fetch_listeners(plain, timeout=2.0)  # no expose-fd: the connection is just closed


def test_failed_start_leaves_the_running_stats_socket_alone(running, lb) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = (f"global\n    stats socket {running['admin']} level admin\n"
               "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"
               f"listen other\n    bind 127.0.0.1:{taken.getsockname()[1]}\n    server a 127.0.0.1:1\n")
        r = lb.run(["-db", "-f", lb.write(cfg, "second.cfg")], timeout=20)
    finally:
        taken.close()
    assert r.returncode == 1, r.stderr
    # the first process still owns the path (the second one bound a temporary name only)
    assert socket_cmd(running["admin"], "show backend") == "# name\napp\n\n"
    assert not [n for n in os.listdir(os.path.dirname(running["admin"])) if n.endswith(".tmp")]


def test_disable_health_stops_checks_from_marking_the_server_down(lb) -> None:
    import os
    import time as _time

    from conftest import free_port as _free_port
    from conftest import stat_field, stats_command

    dead = _free_port()
    port = _free_port()
    sock = os.path.join(lb.workdir, "h.sock")
    lb.start(f"""\
global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{dead} check inter 100ms fall 1 rise 1
""", [port])

    def cmd(line: str) -> str:
        return stats_command(sock, line)

    def status() -> str:
        return stat_field(cmd("show stat"), "be", "s1", "status")

    deadline = _time.monotonic() + 5
    while status() != "DOWN" and _time.monotonic() < deadline:
        _time.sleep(0.05)
    assert status() == "DOWN"
    cmd("disable health be/s1")
    assert not status().startswith("DOWN")
    _time.sleep(0.5)  # several check intervals: a running check loop would mark it DOWN again
    assert not status().startswith("DOWN"), status()
