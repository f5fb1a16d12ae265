"""From a checked configuration to a running process.

Order matters and follows HAProxy: take the old process's sockets (reload), raise the fd limit,
bind what is left, go to the background, write the pidfile, drop privileges, tell the old
processes to finish (-sf) or terminate (-st), then run trio. Anything that can fail does so
before the old process is signalled, so a failed reload leaves the old process serving.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
from typing import TYPE_CHECKING

import trio

from haproxy_py import log
from haproxy_py.config.model import Config
from haproxy_py.process import privileges
from haproxy_py.process.daemon import Daemon
from haproxy_py.process.loadshare import LoadShare
from haproxy_py.process.notify import sd_notify
from haproxy_py.process.pidfile import write_pidfile
from haproxy_py.process.reload import fetch_from_old, make_export_socket
from haproxy_py.process.workers import Worker, fork_workers
from haproxy_py.runtime.admin import (StatsSocketError, discard_prebound_stats_sockets, prebind_stats_sockets,
                                      publish_stats_sockets)
from haproxy_py.runtime.listeners import BindError, bind_all
from haproxy_py.runtime.supervisor import block_control_signals, serve, unsupported_features

if TYPE_CHECKING:
    from haproxy_py.cli import Options, Reporter


def signal_old(pids: tuple[int, ...], signum: int) -> None:
    """Send `signum` to processes of a previous generation; gone ones are ignored."""
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def settle_memory() -> None:
    """Move everything made so far (modules, the configuration: some 55,000 objects) out of the
    garbage collector's sight. A full collection walks every tracked object, which here takes
    20-27 ms, a stall for every connection of the process; after this it walks only what was
    made since. Done before forking, it also keeps the workers from writing to the pages they
    share with the main process (copy-on-write)."""
    gc.collect()
    gc.freeze()


def run(config: Config, opts: Options, rep: Reporter) -> int:
    """Start serving; returns the process exit status."""
    problems = unsupported_features(config)
    if problems:
        for p in problems:
            rep.alert(p, "config")
        rep.alert("Fatal errors found in configuration.", "config")
        return 1

    old_pids = opts.soft_stop_pids + opts.hard_stop_pids
    inherited = {}
    if old_pids or opts.socket_from:
        try:
            inherited = fetch_from_old(old_pids, opts.socket_from)
        except OSError as e:
            rep.warning(f"Failed to get the sockets from the old process ({e}); binding new ones.")
    g = config.global_
    maxconn = opts.global_maxconn or g.maxconn or privileges.default_maxconn()
    listener_count = config.listener_count
    privileges.raise_fd_limit(g.ulimit_n or privileges.fd_limit_for(maxconn, listener_count))

    reuseport = not (opts.no_reuseport or g.noreuseport)
    try:
        prebind_stats_sockets(config)  # before the frontends listen: the CLI is up once they are
    except StatsSocketError as e:
        rep.alert(str(e))
        rep.alert("[haproxy.main()] Some protocols failed to start their listeners! Exiting.")
        return 1
    try:
        listeners = bind_all(config, reuseport=reuseport, inherited=inherited)
    except BindError as e:
        discard_prebound_stats_sockets()
        rep.alert(str(e))
        rep.alert("[haproxy.main()] Some protocols failed to start their listeners! Exiting.")
        return 1
    publish_stats_sockets()  # every listener is bound: the stats sockets take their paths

    daemon_mode = (opts.daemon or g.daemon) and not opts.foreground
    pidfile = opts.pidfile or g.pidfile
    daemon = Daemon()
    if daemon_mode:
        daemon.detach()
    try:
        # HAProxy writes the pidfile in daemon mode; -p with -db is honoured too, for tools
        if pidfile and (daemon_mode or opts.pidfile):
            write_pidfile(pidfile, os.getpid())
        privileges.drop(g)
    except OSError as e:
        rep.alert(f"[haproxy.main()] Cannot create pidfile {pidfile} ({e.strerror})")
        daemon.report(1)
        return 1
    except privileges.PrivilegeError as e:
        rep.alert(str(e))
        daemon.report(1)
        return 1
    # runtime messages (server state changes...) carry the pid of the process that serves
    log.configure(config, quiet=rep.quiet or (g.quiet and not opts.verbose))
    export = make_export_socket()
    block_control_signals()
    signal_old(opts.soft_stop_pids, signal.SIGUSR1)
    signal_old(opts.hard_stop_pids, signal.SIGTERM)

    def ready() -> None:
        sd_notify(f"MAINPID={os.getpid()}\nREADY=1")
        if daemon_mode:
            daemon.report(0)
            daemon.redirect_stdio()

    count = max(1, g.nbthread or 1)
    workers: list[Worker] = []
    share = LoadShare(count) if count > 1 else None
    settle_memory()
    if count > 1:

        def run_worker(index: int, channel: socket.socket) -> int:
            daemon.forget()  # only the main process reports readiness
            if export is not None:
                export.close()
            if daemon_mode:
                daemon.redirect_stdio()
            trio.run(lambda: serve(config, listeners, maxconn=maxconn, worker=(index, count, channel),
                                     share=share))
            return 0

        workers = fork_workers(count, run_worker)
    try:
        trio.run(lambda: serve(config, listeners, maxconn=maxconn, export_sock=export, on_ready=ready,
                               workers=workers, share=share))
    finally:
        if export is not None:
            export.close()
    return 0
