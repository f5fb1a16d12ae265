"""Content switching end to end, table-driven, with HAProxy 2.6 as the oracle.

Every row is one frontend of one generated configuration: a client sends a payload and half-closes
(so the data is final at once and no timing is involved), `tcp-request content accept if WAIT_END`
holds the decision until then, and the row's rules pick backend `yes` or `no` (each a greeter
that answers its name). The same table runs against `/usr/sbin/haproxy` (when installed) and
against haproxy-py: the first proves the expected column is HAProxy's behaviour, the second that
haproxy-py has it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator

import pytest
from conftest import TCPServer, free_port, lb_command

HAPROXY = "/usr/sbin/haproxy"

HTTP = (b"GET /foo/bar?x=1&y=2 HTTP/1.1\r\nHost: www.Example.com\r\nCookie: a=1; b=2\r\n"
        b"X-List: a, b ,c\r\nX-Ip: 10.1.2.3\r\nContent-Length: 0\r\nX-Be: yes\r\nX-Nope: nosuch\r\n\r\n")
POST = b"POST /api HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
TEXT = b"hello world\n"


def client_hello(name: str | None, alpn: list[str] | None = None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


HELLO = client_hello("A.Example", ["h2", "http/1.1"])

# (id, frontend lines or a bare condition, payload, expected backend). "{dir}" is the files' directory.
CASES: list[tuple[str, str, bytes, str]] = [
    # path family and matchers
    ("path_beg", "{ path_beg /foo }", HTTP, "yes"),
    ("path_beg_no", "{ path_beg /bar }", HTTP, "no"),
    ("path_end", "{ path_end /bar }", HTTP, "yes"),
    ("path_sub", "{ path_sub o/b }", HTTP, "yes"),
    ("path_dir", "{ path_dir bar }", HTTP, "yes"),
    ("path_dir_partial", "{ path_dir ba }", HTTP, "no"),
    ("path_reg", "{ path_reg ^/f.o/ }", HTTP, "yes"),
    ("path_len", "{ path_len 8 }", HTTP, "yes"),
    ("path_m_len_op", "{ path -m len gt 5 }", HTTP, "yes"),
    ("path_exact_excludes_query", "{ path /foo/bar }", HTTP, "yes"),
    ("path_case_sensitive", "{ path /FOO/bar }", HTTP, "no"),
    ("path_icase", "{ path -i /FOO/bar }", HTTP, "yes"),
    # headers
    ("hdr_host_case", "{ hdr(host) www.example.com }", HTTP, "no"),
    ("hdr_host_icase", "{ hdr(host) -i www.example.com }", HTTP, "yes"),
    ("hdr_dom", "{ hdr_dom(host) -i example.com }", HTTP, "yes"),
    ("hdr_dom_partial_label", "{ hdr_dom(host) -i ample.com }", HTTP, "no"),
    ("hdr_beg", "{ hdr_beg(host) www. }", HTTP, "yes"),
    ("hdr_end_icase", "{ hdr_end(host) -i .COM }", HTTP, "yes"),
    ("hdr_cnt_comma_split", "{ hdr_cnt(x-list) eq 3 }", HTTP, "yes"),
    ("hdr_value_trimmed", "{ hdr(x-list) b }", HTTP, "yes"),
    ("fhdr_whole_line", "{ req.fhdr(x-list) -m sub b\\ ,c }", HTTP, "yes"),
    ("hdr_missing_found", "{ hdr(x-missing) -m found }", HTTP, "no"),
    ("hdr_found", "{ hdr(x-ip) -m found }", HTTP, "yes"),
    ("hdr_ip_cidr", "{ hdr_ip(x-ip) 10.0.0.0/8 }", HTTP, "yes"),
    ("hdr_val_gt", "{ hdr_val(content-length) gt 0 }", HTTP, "no"),
    ("http_content_predefined", "HTTP_CONTENT", POST, "yes"),
    ("hdr_lower_conv_str", "{ hdr(host),lower www.example.com }", HTTP, "yes"),
    ("hdr_field", "{ hdr(host),field(1,.) www }", HTTP, "yes"),
    ("hdr_word_from_end", "{ hdr(host),word(-1,.) com }", HTTP, "yes"),
    ("hdr_regsub", "{ hdr(host),lower,regsub(\\.,_,g) www_example_com }", HTTP, "yes"),
    # url, query, params, cookies, method, version
    ("url_param", "{ url_param(y) 2 }", HTTP, "yes"),
    ("url_param_absent", "{ url_param(z) -m found }", HTTP, "no"),
    ("query_beg", "{ query -m beg x=1 }", HTTP, "yes"),
    ("url_sub", "{ url_sub ?x= }", HTTP, "yes"),
    ("base", "{ base -i www.example.com/foo/bar }", HTTP, "yes"),
    ("cook", "{ req.cook(b) 2 }", HTTP, "yes"),
    ("cook_cnt", "{ req.cook_cnt(a) 1 }", HTTP, "yes"),
    ("method", "{ method GET }", HTTP, "yes"),
    ("meth_get_predefined", "METH_GET", HTTP, "yes"),
    ("meth_post_predefined", "METH_POST", HTTP, "no"),
    ("meth_post_other", "METH_POST", POST, "yes"),
    ("req_ver", "{ req.ver 1.1 }", HTTP, "yes"),
    ("http_1_0_predefined", "HTTP_1.0", POST, "yes"),
    ("http_url_slash", "HTTP_URL_SLASH", HTTP, "yes"),
    ("http_url_abs", "HTTP_URL_ABS", HTTP, "no"),
    ("http_first_req", "{ http_first_req }", HTTP, "yes"),
    ("http_predefined_text", "HTTP", TEXT, "no"),
    ("http_predefined", "HTTP", HTTP, "yes"),
    # layer 4 and internal fetches
    ("src_cidr", "{ src 127.0.0.0/8 }", TEXT, "yes"),
    ("src_other_net", "{ src 10.0.0.0/8 }", TEXT, "no"),
    ("src_dotted_mask", "{ src 127.0.0.0/255.0.0.0 }", TEXT, "yes"),
    ("localhost_predefined", "LOCALHOST", TEXT, "yes"),
    ("src_port_range", "{ src_port 1024:65535 }", TEXT, "yes"),
    ("dst_port_self", "{ dst_port {port} }", TEXT, "yes"),
    ("fe_name", "{ fe_name {fe} }", TEXT, "yes"),
    ("be_name_before_switch", "{ be_name {fe} }", TEXT, "yes"),
    ("nbsrv_yes", "{ nbsrv(yes) ge 1 }", TEXT, "yes"),
    ("nbsrv_zero", "{ nbsrv(no) 0 }", TEXT, "no"),
    ("req_len_range", "{ req.len 10:100 }", TEXT, "yes"),
    ("req_len_upper", "{ req.len :10 }", TEXT, "no"),
    ("int_dash_is_upper_bound", "{ req.len -- -20 }", TEXT, "yes"),
    ("req_len_ops", "{ req.len gt 11 } { req.len lt 13 }", TEXT, "yes"),
    ("payload_bin", "{ req.payload(0,5) -m bin 68656c6c6f }", TEXT, "yes"),
    ("payload_keyword_str", "{ payload(0,5) -m str hello }", TEXT, "yes"),
    ("payload_hex", "{ req.payload(0,5),hex 68656C6C6F }", TEXT, "yes"),
    ("payload_base64", "{ req.payload(0,5),base64 aGVsbG8= }", TEXT, "yes"),
    ("payload_crc32", f"{{ req.payload(0,5),crc32 {zlib.crc32(b'hello')} }}", TEXT, "yes"),
    ("payload_beyond", "{ req.payload(100,5) -m found }", TEXT, "no"),
    ("payload_len0_rest", "{ req.payload(6,0) -m str world\\n }", TEXT, "yes"),
    ("payload_len0_sub", "{ req.payload(6,0) -m beg world }", TEXT, "yes"),
    # logic
    ("true", "TRUE", TEXT, "yes"),
    ("false", "FALSE", TEXT, "no"),
    ("not_true", "!TRUE", TEXT, "no"),
    ("and_false", "TRUE FALSE", TEXT, "no"),
    ("or_bars", "FALSE || TRUE", TEXT, "yes"),
    ("or_word", "FALSE or TRUE", TEXT, "yes"),
    ("not_not", "!FALSE !FALSE", TEXT, "yes"),
    ("unless", "use_backend yes unless { path_beg /foo }", HTTP, "no"),
    ("named_acl_lines_ored", "acl a path_beg /nope\nacl a path_beg /foo\nuse_backend yes if a", HTTP, "yes"),
    ("named_acl_patterns_ored", "acl a path_beg /x /y /foo\nuse_backend yes if a !FALSE", HTTP, "yes"),
    # files
    ("pattern_file", "{ path -f {dir}/paths.lst }", HTTP, "yes"),
    ("pattern_file_comment_not_pattern", "{ path -f {dir}/paths.lst }", POST, "no"),
    ("pattern_file_as_map", "{ hdr(host) -i -M -f {dir}/hosts.map }", HTTP, "yes"),
    ("map_dom_default", "{ hdr(host),lower,map_dom({dir}/hosts.map,none) -m str exbackend }", HTTP, "yes"),
    ("map_beg_longest", "{ path,map_beg({dir}/paths.map) -m str long }", HTTP, "yes"),
    ("map_ip", "{ src,map_ip({dir}/nets.map) -m str lo }", TEXT, "yes"),
    ("map_str_int", "{ path,map_str_int({dir}/ints.map,0) gt 40 }", HTTP, "yes"),
    # TLS ClientHello
    ("sni_icase", "{ req.ssl_sni -i a.example }", HELLO, "yes"),
    ("sni_case", "{ req.ssl_sni a.example }", HELLO, "no"),
    ("sni_lower_end", "{ req.ssl_sni,lower -m end .example }", HELLO, "yes"),
    ("sni_dom", "{ req_ssl_sni -m dom -i example }", HELLO, "yes"),
    ("hello_type", "{ req.ssl_hello_type 1 }", HELLO, "yes"),
    ("ssl_ver_dotted", "{ req_ssl_ver 3.3 }", HELLO, "yes"),
    ("ssl_ver_ge", "{ req.ssl_ver ge 3.1 }", HELLO, "yes"),
    ("alpn", "{ req.ssl_alpn http/1.1 }", HELLO, "yes"),
    ("sni_on_text", "{ req.ssl_sni -m found }", TEXT, "no"),
    ("http_on_hello", "HTTP", HELLO, "no"),
    # variables
    ("set_var", "tcp-request content set-var(txn.p) path\nuse_backend yes if { var(txn.p) -m str /foo/bar }", HTTP, "yes"),
    ("set_var_fmt", "tcp-request content set-var-fmt(txn.h) %[hdr(host),lower]-x\n"
                    "use_backend yes if { var(txn.h) -m str www.example.com-x }", HTTP, "yes"),
    ("unset_var", "tcp-request content set-var(txn.p) path\ntcp-request content unset-var(txn.p)\n"
                  "use_backend yes if { var(txn.p) -m found }", HTTP, "no"),
    # use_backend forms
    ("dynamic_name", "use_backend %[req.hdr(x-be)]", HTTP, "yes"),
    ("dynamic_unknown_falls_to_default", "use_backend %[req.hdr(x-nope)]\nuse_backend yes", HTTP, "no"),
    ("dynamic_failed_fetch_falls_to_default", "use_backend %[req.hdr(x-missing)]\nuse_backend yes", HTTP, "no"),
    ("dynamic_map", "use_backend %[hdr(host),lower,map({dir}/be.map,no)]", HTTP, "yes"),
    ("first_matching_rule_wins", "use_backend no if TRUE\nuse_backend yes", TEXT, "no"),
    ("static_unconditional", "use_backend yes", TEXT, "yes"),
    # more converters and matchers
    ("upper", "{ hdr(host),upper WWW.EXAMPLE.COM }", HTTP, "yes"),
    ("length", "{ hdr(host),length 15 }", HTTP, "yes"),
    ("bool_conv", "{ hdr_cnt(x-list),bool }", HTTP, "yes"),
    ("not_conv", "{ hdr_cnt(x-missing),not }", HTTP, "yes"),
    ("bytes_conv", "{ req.payload(0,0),bytes(6,3) -m str wor }", TEXT, "yes"),
    ("field_count", "{ path,field(2,/,2) foo/bar }", HTTP, "yes"),
    ("field_count_zero", "{ url,field(2,?,0) x=1&y=2 }", HTTP, "yes"),
    ("word_count", r"{ req.fhdr(x-list),word(1,\ ,2) -m str a,\ b }", HTTP, "yes"),
    ("word_skips_runs", r"{ req.fhdr(x-list),word(2,\ ) -m str b }", HTTP, "yes"),
    ("regsub_backref", r"{ path,regsub(\"^/(foo)/(bar)\",\"\2-\1\") bar-foo }", HTTP, "yes"),
    ("regsub_icase_first_only", "{ path,regsub(O,0,i) /f0o/bar }", HTTP, "yes"),
    ("concat_var", "tcp-request content set-var(txn.v) str(XY)\n"
                   "use_backend yes if { path,concat(<,txn.v,>) -m str /foo/bar<XY> }", HTTP, "yes"),
    ("json_escape", r"{ req.payload(0,0),json -m end \\n }", TEXT, "yes"),
    ("m_dom_on_str", "{ req.fhdr(host) -m dom -i EXAMPLE }", HTTP, "yes"),
    ("m_dir_on_url", "{ url -m dir foo }", HTTP, "yes"),
    ("m_reg_icase", r"{ hdr(host) -m reg -i ^WWW\. }", HTTP, "yes"),
    ("m_ip_on_header", "{ req.hdr(x-ip) -m ip 10.1.0.0/16 }", HTTP, "yes"),
    ("m_int_on_str", "{ req.hdr(content-length) -m int 0 }", HTTP, "yes"),
    ("int_le", "{ req.len le 12 }", TEXT, "yes"),
    ("int_lt", "{ req.len lt 12 }", TEXT, "no"),
    ("int_several", "{ req.len eq 1 2 12 }", TEXT, "yes"),
    ("ipv6_pattern_v4_sample", "{ src ::ffff:127.0.0.0/104 }", TEXT, "yes"),
    ("url_param_no_value", "{ url_param(x) -m found }", b"GET /?x&y=1 HTTP/1.0\r\n\r\n", "no"),
    ("payload_lv", "{ req.payload_lv(0,1) -m str abc }", b"\x03abcdef", "yes"),
    ("rdp_cookie", "{ req.rdp_cookie(mstshash) -m str bob }",
     b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: mstshash=bob\r\n", "yes"),
    ("rdp_cookie_predefined", "RDP_COOKIE", b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: x=y\r\n", "yes"),
    ("wait_end_final", "{ wait_end }", TEXT, "yes"),
    ("req_content", "REQ_CONTENT", TEXT, "yes"),
    ("sni_absent", "{ req.ssl_sni -m found }", client_hello(None), "no"),
    ("backend_rules_reject", "use_backend insp", TEXT, "closed"),
    ("backend_rules_pass", "use_backend insp", HTTP, "yes"),
    # arithmetic, masks, hashes and constants
    ("arith", "{ req.len,add(3),mul(2),sub(1),div(4) 7 }", TEXT, "yes"),
    ("arith_var", "tcp-request content set-var(txn.n) int(5)\nuse_backend yes if { req.len,sub(txn.n) 7 }", TEXT,
     "yes"),
    ("mod_even", "{ req.len,mod(5),even }", TEXT, "yes"),
    ("div_by_zero", "{ req.len,div(0) gt 1000000000 }", TEXT, "yes"),
    ("ipmask", "{ src,ipmask(8) 127.0.0.0 }", TEXT, "yes"),
    ("ipv4_const", "{ ipv4(10.9.8.7),ipmask(255.255.0.0) 10.9.0.0 }", TEXT, "yes"),
    ("url_dec", r"{ path,url_dec -m str /a\ b }", b"GET /a%20b HTTP/1.0\r\n\r\n", "yes"),
    ("ltrim", "{ hdr(host),ltrim(w) -m str .Example.com }", HTTP, "yes"),
    ("sdbm", "{ str(abc),sdbm 807794786 }", TEXT, "yes"),
    ("sdbm_avalanche", "{ str(abc),sdbm(1) 659243622 }", TEXT, "yes"),
    ("djb2_avalanche", "{ str(abc),djb2(1) 2235766107 }", TEXT, "yes"),
    ("wt6", "{ str(abc),wt6 2483038440 }", TEXT, "yes"),
    ("date", "{ date gt 1000000000 }", TEXT, "yes"),
    ("env", "{ env(HOME) -m found }", TEXT, "yes"),
    # content rules
    ("reject_closes", "tcp-request content reject if { path_beg /foo }\nuse_backend yes", HTTP, "closed"),
    ("accept_stops_rules", "tcp-request content accept\ntcp-request content reject\nuse_backend yes", TEXT, "yes"),
    ("connection_reject", "tcp-request connection reject if { src 127.0.0.0/8 }\nuse_backend yes", TEXT, "closed"),
    ("connection_accept", "tcp-request connection accept if { src 127.0.0.0/8 }\nuse_backend yes", TEXT, "yes"),
]

FILES = {
    "paths.lst": "# a comment line\n\n   /foo/bar\n#/api\n/other\n",
    "hosts.map": "www.example.com exbackend\nexample.org other\n",
    "paths.map": "/ short\n/foo long\n/f medium\n",
    "nets.map": "0.0.0.0/0 any\n127.0.0.0/8 lo\n10.0.0.0/8 ten\n",
    "ints.map": "/foo/bar 42\n/x 1\n",
    "be.map": "www.example.com yes\n",
}

HEAD = """\
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s

backend yes
    server y {yes}

backend no
    server n {no}

backend insp
    tcp-request inspect-delay 3s
    tcp-request content reject if { req.payload(0,5) -m str hello }
    server y {yes}
"""


def frontend(index: int, port: int, rules: str, directory: str) -> str:
    name = f"f{index}"
    lines = rules if ("use_backend" in rules or "\n" in rules) else f"use_backend yes if {rules}"
    lines = lines.replace("{dir}", directory).replace("{port}", str(port)).replace("{fe}", name)
    # the row's own tcp-request rules run before the final `accept if WAIT_END` (accept stops rules)
    split = lines.split("\n")
    tcp = [line for line in split if line.startswith("tcp-request")]
    rest = [line for line in split if not line.startswith("tcp-request")]
    body = "\n".join(f"    {line}" for line in [*tcp, "tcp-request content accept if WAIT_END", *rest])
    return (f"\nfrontend {name}\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 3s\n"
            f"{body}\n    default_backend no\n")


def exchange(port: int, payload: bytes) -> str:
    """Send, half-close, and return the backend's name ("closed" if the LB closed instead)."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(100):
                data += chunk
    except OSError as e:  # a reset can beat the client's own shutdown (ENOTCONN) or sends
        if isinstance(e, socket.timeout):
            raise
        return "closed"
    return data.decode().strip() or "closed"


def wait_all_listening(ports: list[int], proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until every port is in LISTEN state, reading the kernel's table once per round."""
    deadline = time.monotonic() + timeout
    wanted = {f"{p:04X}" for p in ports}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the LB exited with {proc.returncode}")
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A":
                    wanted.discard(parts[1].rsplit(":", 1)[1])
        if not wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"{len(wanted)} ports not listening after {timeout}s")


class Deployment:
    """One LB process serving every row of CASES."""

    def __init__(self, command: list[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="hpy-cs-")
        for name, text in FILES.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.yes = TCPServer("yes")
        self.no = TCPServer("no")
        self.ports: list[int] = []
        while len(self.ports) < len(CASES):  # distinct: two frontends on one port would share it
            port = free_port()
            if port not in self.ports:
                self.ports.append(port)
        cfg = HEAD.replace("{yes}", self.yes.addr).replace("{no}", self.no.addr)
        cfg += "".join(frontend(i, port, rules, self.dir) for i, (port, (_id, rules, _p, _e))
                       in enumerate(zip(self.ports, CASES)))
        path = os.path.join(self.dir, "lb.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(self.dir, "lb.log"), "wb")
        self.proc = subprocess.Popen([*command, "-db", "-f", path], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        try:
            wait_all_listening(self.ports, self.proc)
        except AssertionError:
            with open(os.path.join(self.dir, "lb.log")) as f:
                log = f.read()
            self.close()
            raise AssertionError(log) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        self.yes.close()
        self.no.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module", params=["haproxy-py", "haproxy-2.6"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    if request.param == "haproxy-2.6":
        if not os.access(HAPROXY, os.X_OK):
            pytest.skip("HAProxy (the oracle) is not installed")
        command = [HAPROXY]
    else:
        command = lb_command()
    d = Deployment(command)
    yield d
    d.close()


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_content_switching_row(deployment: Deployment, index: int) -> None:
    _id, rules, payload, expected = CASES[index]
    assert exchange(deployment.ports[index], payload) == expected
