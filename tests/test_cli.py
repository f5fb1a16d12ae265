"""The command line behaves like haproxy's: flags, messages, exit codes."""

from __future__ import annotations

import pytest

from haproxy_py.cli import Options, UsageError, parse_args

GOOD = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:8080
"""


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-f", "a.cfg", "-f", "b"], Options(files=("a.cfg", "b"))),
        (["-c", "-q", "-f", "x"], Options(files=("x",), check=True, quiet=True)),
        (["-db", "-f", "x"], Options(files=("x",), foreground=True)),
        (["-d", "-f", "x"], Options(files=("x",), foreground=True, debug=True)),
        (["-D", "-p", "/run/p", "-f", "x"], Options(files=("x",), daemon=True, pidfile="/run/p")),
        (["-f", "x", "-sf", "12", "13", "-x", "/s"], Options(files=("x",), soft_stop_pids=(12, 13), socket_from="/s")),
        (["-f", "x", "-st"], Options(files=("x",))),
        (["-f", "x", "-st", "7", "-db"], Options(files=("x",), hard_stop_pids=(7,), foreground=True)),
        (["-cc", "defined(X)"], Options(check_cond="defined(X)")),
        (["-L", "peer1", "-N", "10", "-n", "20", "-f", "x"],
         Options(files=("x",), local_peer="peer1", default_maxconn=10, global_maxconn=20)),
        (["-dW", "-dr", "-dR", "-f", "x"], Options(files=("x",), zero_warning=True, ignore_resolve=True, no_reuseport=True)),
        (["-f", "x", "--", "y", "z"], Options(files=("x", "y", "z"))),
        (["-vv"], Options(show_version=2)),
        (["-W", "-f", "x"], Options(files=("x",), master_worker=True)),
    ],
)
def test_parse_args(argv: list[str], expected: Options) -> None:
    assert parse_args(argv) == expected


@pytest.mark.parametrize("argv", [["-Z"], ["-f"], ["-n", "abc"], ["-sf", "x1"], ["stray"]])
def test_bad_usage_is_rejected(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


def test_unknown_flag_prints_usage_and_exits_1(lb) -> None:
    r = lb.run(["-Z"])
    assert r.returncode == 1
    assert "Usage : haproxy-py" in r.stderr


def test_version_lines(lb) -> None:
    r = lb.run(["-v"])
    assert r.returncode == 0
    assert r.stdout.startswith("HAProxy version 2.6.")
    r = lb.run(["-vv"])
    assert r.returncode == 0
    assert "Feature list :" in r.stdout and "Available services :" in r.stdout


def test_check_valid_and_quiet(lb) -> None:
    path = lb.write(GOOD.format(port=18080))
    r = lb.run(["-c", "-f", path])
    assert r.returncode == 0, r.stderr
    assert "Configuration file is valid" in r.stdout
    r = lb.run(["-c", "-q", "-f", path])
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""


def test_check_without_listener_exits_2(lb) -> None:
    path = lb.write("backend be\n    server s1 127.0.0.1:80\n")
    r = lb.run(["-c", "-f", path])
    assert r.returncode == 2
    assert "will not start (no listener)" in r.stdout
    assert "missing timeouts for backend 'be'" in r.stderr


def test_check_error_names_file_line_in_haproxy_format(lb) -> None:
    path = lb.write(GOOD.format(port=18080).replace("    server s1 127.0.0.1:8080", "    sever s1 127.0.0.1:8080"))
    r = lb.run(["-c", "-f", path])
    assert r.returncode == 1
    assert f"parsing [{path}:10] : unknown keyword 'sever' in 'backend' section; did you mean 'server' maybe ?" in r.stderr
    assert "[ALERT]    (" in r.stderr
    assert "Fatal errors found in configuration." in r.stderr


def test_check_missing_file(lb) -> None:
    r = lb.run(["-c", "-f", "/nonexistent/x.cfg"])
    assert r.returncode == 1
    assert "Cannot open configuration file/directory /nonexistent/x.cfg : No such file or directory" in r.stderr


def test_directory_loads_cfg_files_in_order(lb) -> None:
    import os

    d = os.path.join(lb.workdir, "conf.d")
    os.mkdir(d)
    with open(os.path.join(d, "20-fe.cfg"), "w") as f:
        f.write("frontend fe\n    bind 127.0.0.1:18081\n    default_backend be\n")
    with open(os.path.join(d, "10-be.cfg"), "w") as f:
        f.write("defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"
                "backend be\n    server s 127.0.0.1:80\n")
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("garbage that is not loaded\n")
    r = lb.run(["-c", "-f", d])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("expr, code", [("1", 0), ("0", 1), ("version_atleast(2.4)", 0), ("version_before(2.4)", 1),
                                        ("defined(HOME) && !defined(NOPE_X)", 0), ("streq(a,b) || 0", 1),
                                        ("bogus(", 2)])
def test_cc_evaluates_conditions(lb, expr: str, code: int) -> None:
    assert lb.run(["-cc", expr]).returncode == code


def test_zero_warning_fails_on_warnings(lb) -> None:
    path = lb.write("frontend fe\n    bind 127.0.0.1:18082\n    default_backend be\nbackend be\n    server s 127.0.0.1:80\n")
    assert lb.run(["-c", "-f", path]).returncode == 0
    assert lb.run(["-c", "-dW", "-f", path]).returncode == 1


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "haproxy_py", "-v"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "HAProxy version" in r.stdout
