"""The SysV init script, driven for real against a temporary root of paths."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import ROOT, Hammer, free_port, lb_command, pid_alive, wait_until

SCRIPT = os.path.join(ROOT, "init", "haproxy-py")


def test_script_parses_and_has_chkconfig_and_lsb_headers() -> None:
    assert subprocess.run(["sh", "-n", SCRIPT]).returncode == 0
    with open(SCRIPT) as f:
        text = f.read()
    assert re.search(r"^# chkconfig:\s+\d+ \d+ \d+$", text, re.M)
    assert re.search(r"^# description: ", text, re.M)
    lsb = text[text.index("### BEGIN INIT INFO") : text.index("### END INIT INFO")]
    for field in ("Provides:", "Required-Start:", "Required-Stop:", "Default-Start:", "Default-Stop:",
                  "Short-Description:"):
        assert f"# {field}" in lsb


@pytest.fixture
def service(lb, tcp_servers):  # type: ignore[no-untyped-def]
    exe = lb_command()
    if len(exe) != 1:
        pytest.skip("the init script needs the installed haproxy-py command (make venv)")
    backend = tcp_servers("svc")
    port = free_port()
    cfg = lb.write(f"""\
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 {backend.addr}
""")
    env = dict(os.environ, BIN=exe[0], CONFIG=cfg, PIDFILE=os.path.join(lb.workdir, "svc.pid"),
               DEFAULTS_FILE=os.path.join(lb.workdir, "nonexistent-defaults"))

    def run(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", SCRIPT, action], env=env, capture_output=True, text=True, timeout=30)

    def pid() -> int:
        with open(env["PIDFILE"]) as f:
            return int(f.read())

    yield run, pid, port, cfg
    run("stop")


def test_start_status_reload_restart_stop(service) -> None:  # type: ignore[no-untyped-def]
    run, pid, port, cfg = service
    assert run("status").returncode == 3  # LSB: not running
    r = run("start")
    assert r.returncode == 0, r.stdout + r.stderr
    first = pid()
    assert pid_alive(first)
    assert run("status").returncode == 0
    assert run("check").returncode == 0
    with Hammer(port, clients=3) as hammer:
        assert wait_until(lambda: hammer.ok > 20, 5)
        r = run("reload")
        assert r.returncode == 0, r.stdout + r.stderr
        second = pid()
        assert second != first
        before = hammer.ok
        assert wait_until(lambda: hammer.ok > before + 20, 5)
    assert hammer.failures == [], hammer.failures[:5]
    assert wait_until(lambda: not pid_alive(first), 5)
    r = run("restart")
    assert r.returncode == 0, r.stdout + r.stderr
    third = pid()
    assert third != second and pid_alive(third)
    assert run("try-restart").returncode == 0
    fourth = pid()
    assert fourth != third
    assert run("stop").returncode == 0
    assert wait_until(lambda: not pid_alive(fourth), 5)
    assert run("status").returncode == 3
    assert run("bogus").returncode == 2


def test_reload_with_bad_config_keeps_old_process(service) -> None:  # type: ignore[no-untyped-def]
    run, pid, port, cfg = service
    assert run("start").returncode == 0
    first = pid()
    with open(cfg, "a") as f:
        f.write("    frobnicate\n")
    r = run("reload")
    assert r.returncode == 6, r.stdout + r.stderr
    assert "frobnicate" in r.stderr
    assert pid() == first and pid_alive(first)
