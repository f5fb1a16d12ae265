"""Every bind form the config accepts, served by a real haproxy-py process."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from conftest import free_port, lb_command, read_line, wait_listening

HEAD = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def backend(addr: str) -> str:
    return f"backend be\n    server s1 {addr}\n"


def test_several_binds_and_a_port_range(lb, tcp_servers) -> None:
    srv = tcp_servers("x")
    a, b = free_port(), free_port()
    lo = free_port()
    while any(p in (a, b) for p in range(lo, lo + 3)):
        lo = free_port()
    cfg = HEAD + f"frontend fe\n    bind 127.0.0.1:{a}\n    bind 127.0.0.1:{b},127.0.0.1:{lo}-{lo + 2}\n" \
        "    default_backend be\n" + backend(srv.addr)
    lb.start(cfg, [a, b, lo, lo + 1, lo + 2])
    for port in (a, b, lo, lo + 1, lo + 2):
        name, s = read_line(port)
        s.close()
        assert name == "x"


def test_ipv6_bind(lb, tcp_servers) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    srv = tcp_servers("six")
    port = free_port()
    lb.start(HEAD + f"frontend fe\n    bind [::1]:{port}\n    default_backend be\n" + backend(srv.addr), [])
    s = None
    for _ in range(200):
        try:
            s = socket.create_connection(("::1", port), timeout=5)
            break
        except ConnectionRefusedError:
            import time

            time.sleep(0.02)
    assert s is not None
    assert s.recv(10) == b"six\n"
    s.close()


def test_unix_socket_bind_with_mode(lb, tcp_servers) -> None:
    srv = tcp_servers("u")
    path = os.path.join(lb.workdir, "fe.sock")
    port = free_port()  # a TCP bind too, so the fixture can wait for readiness
    lb.start(HEAD + f"frontend fe\n    bind {path} mode 600\n    bind 127.0.0.1:{port}\n    default_backend be\n"
             + backend(srv.addr), [port])
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        assert s.recv(10) == b"u\n"


def test_unix_socket_server(lb, tmp_path) -> None:
    path = str(tmp_path / "srv.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(4)
    port = free_port()
    lb.start(HEAD + f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n" + backend(path), [port])
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn, _ = srv.accept()
    conn.sendall(b"via unix\n")
    assert c.recv(20) == b"via unix\n"
    c.close()
    conn.close()
    srv.close()


def test_inherited_fd_listener(lb, tcp_servers) -> None:
    srv = tcp_servers("fd")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    path = lb.write(HEAD + 'frontend fe\n    bind "fd@${LISTEN_FD}"\n    default_backend be\n' + backend(srv.addr))
    env = dict(os.environ, LISTEN_FD=str(fd))
    proc = subprocess.Popen(lb_command() + ["-db", "-f", path], pass_fds=(fd,), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listener.close()  # only the child holds it now
        wait_listening(port, proc)
        name, s = read_line(port)
        s.close()
        assert name == "fd"
    finally:
        proc.terminate()
        proc.wait(5)


def test_servers_without_port_use_the_client_port(lb, tcp_servers) -> None:
    # `server s 127.0.0.1` connects to the port the client reached, here the port range's ports
    first = free_port()
    servers = []
    for p in (first, first + 1):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.2", p))
        except OSError:
            pytest.skip("port taken")
        s.listen(4)
        servers.append(s)
    # the servers listen on the same port numbers, so readiness is read from another bind
    sentinel = free_port()
    cfg = HEAD + f"frontend fe\n    bind 127.0.0.1:{first}-{first + 1}\n    bind 127.0.0.1:{sentinel}\n" \
        "    default_backend be\n" + backend("127.0.0.2")
    lb.start(cfg, [sentinel])
    for port, srv in zip((first, first + 1), servers):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = srv.accept()
        assert conn.getsockname()[1] == port
        conn.close()
        c.close()
        srv.close()
