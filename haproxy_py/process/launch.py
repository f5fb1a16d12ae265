"""From a checked configuration to a running process: bind, detach, pidfile, old pids, trio.run."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import trio

from haproxy_py.config.model import Config
from haproxy_py.process.daemon import Daemon
from haproxy_py.process.pidfile import write_pidfile
from haproxy_py.runtime.listeners import BindError, bind_all
from haproxy_py.runtime.supervisor import serve, unsupported_features

if TYPE_CHECKING:
    from haproxy_py.cli import Options, Reporter


def signal_old(pids: tuple[int, ...], signum: int) -> None:
    """Send `signum` to processes of a previous generation; gone ones are ignored."""
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            pass


def run(config: Config, opts: Options, rep: Reporter) -> int:
    """Start serving; returns the process exit status."""
    problems = unsupported_features(config)
    if problems:
        for p in problems:
            rep.alert(p, "config")
        rep.alert("Fatal errors found in configuration.", "config")
        return 1
    for px in config.backends:
        for srv in px.servers:
            if srv.check:
                rep.warning(f"config : [{srv.where.file}:{srv.where.line}] : 'server {px.name}/{srv.name}' : health "
                            "checks are not available in this version of haproxy-py; the server is considered UP.")
                break
    reuseport = not (opts.no_reuseport or config.global_.noreuseport)
    try:
        listeners = bind_all(config, reuseport=reuseport)
    except BindError as e:
        rep.alert(str(e))
        rep.alert("[haproxy.main()] Some protocols failed to start their listeners! Exiting.")
        return 1
    daemon_mode = (opts.daemon or config.global_.daemon) and not opts.foreground
    pidfile = opts.pidfile or config.global_.pidfile
    daemon = Daemon()
    if daemon_mode:
        daemon.detach()
    try:
        if pidfile and daemon_mode:
            write_pidfile(pidfile, os.getpid())
        elif pidfile and opts.pidfile:
            # haproxy writes the pidfile in daemon mode only; -p with -db is still useful to tools
            write_pidfile(pidfile, os.getpid())
    except OSError as e:
        rep.alert(f"[haproxy.main()] Cannot create pidfile {pidfile} ({e.strerror})")
        daemon.report(1)
        return 1
    signal_old(opts.soft_stop_pids, signal.SIGUSR1)
    signal_old(opts.hard_stop_pids, signal.SIGTERM)
    if daemon_mode:
        daemon.report(0)
        daemon.redirect_stdio()
    trio.run(serve, config, listeners)
    return 0


