"""haproxy's command line: the same flags, messages and exit codes, so init scripts and tools work.

`main()` parses argv, loads and checks the configuration, then hands over to the process layer
(daemon, pidfile, reload) and the trio runtime. Exit codes: 0 success; 1 bad usage or bad
configuration; 2 with -c when the configuration is valid but has no listener (or -cc on a
condition that does not parse).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import attrs

from haproxy_py import version
from haproxy_py.config import condexpr
from haproxy_py.config.errors import ConfigError, Diagnostic
from haproxy_py.config.loader import LoadResult, load

USAGE = """\
Usage : haproxy-py [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <maxconn> ] [ -N <maxpconn> ]
        [ -p <pidfile> ] [ -m <max megs> ] [ -C <dir> ] [-- <cfgfile>*]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -V enters verbose mode (disables quiet mode)
        -D goes daemon ; -C changes to <dir> before loading files.
        -W master-worker mode (accepted; runs standalone).
        -Ws master-worker mode with systemd notify support.
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -cc check condition : evaluate a condition and exit
        -n sets the maximum total # of connections (uses ulimit -n)
        -m limits the usable amount of memory (in MB)
        -N sets the default, per-proxy maximum # of connections (0)
        -L set local peer name (default to hostname)
        -p writes the pid of the daemon to this file
        -dR disables SO_REUSEPORT usage
        -dr ignores server address resolution failures
        -dW fails if any warning is emitted
        -sf/-st [pid ]* finishes/terminates old pids.
        -x <unix_socket> get listening sockets from a unix socket
"""


class UsageError(Exception):
    pass


@attrs.frozen
class Options:
    """What the command line asked for."""

    files: tuple[str, ...] = ()
    check: bool = False
    check_cond: str | None = None
    quiet: bool = False
    verbose: bool = False
    show_version: int = 0  # 1 for -v, 2 for -vv
    foreground: bool = False  # -db or -d
    debug: bool = False  # -d
    daemon: bool = False  # -D
    master_worker: bool = False
    systemd: bool = False  # -Ws
    pidfile: str | None = None
    soft_stop_pids: tuple[int, ...] = ()
    hard_stop_pids: tuple[int, ...] = ()
    socket_from: str | None = None
    local_peer: str | None = None
    global_maxconn: int | None = None
    default_maxconn: int | None = None
    memory_mb: int | None = None
    chdir: str | None = None
    zero_warning: bool = False
    ignore_resolve: bool = False
    no_reuseport: bool = False
    master_cli: tuple[str, ...] = ()


_D_FLAGS_NOOP = {"-de", "-dp", "-dS", "-dG", "-dV", "-dL", "-dD", "-dF", "-dZ", "-dt"}


def parse_args(argv: Sequence[str]) -> Options:
    """Parse haproxy's flags. Raises UsageError for unknown flags or missing values."""
    opts: dict[str, object] = {}
    files: list[str] = []
    soft: list[int] = []
    hard: list[int] = []
    master_cli: list[str] = []
    args = list(argv)
    i = 0

    def value(flag: str) -> str:
        nonlocal i
        if i + 1 >= len(args):
            raise UsageError(f"option '{flag}' expects an argument")
        i += 1
        return args[i]

    def number(flag: str) -> int:
        v = value(flag)
        if not v.isdigit():
            raise UsageError(f"option '{flag}' expects a number (got '{v}')")
        return int(v)

    while i < len(args):
        a = args[i]
        if a == "--":
            files += args[i + 1 :]
            break
        if not a.startswith("-") or a == "-":
            raise UsageError(f"unexpected argument '{a}'")
        if a == "-f":
            files.append(value(a))
        elif a.startswith("-f") and len(a) > 2:
            files.append(a[2:])
        elif a == "-c":
            opts["check"] = True
        elif a == "-cc":
            opts["check_cond"] = value(a)
        elif a == "-q":
            opts["quiet"] = True
        elif a == "-V":
            opts["verbose"] = True
        elif a == "-v":
            opts["show_version"] = max(int(opts.get("show_version", 0)), 1)  # type: ignore[arg-type]
        elif a == "-vv":
            opts["show_version"] = 2
        elif a == "-d":
            opts["foreground"] = True
            opts["debug"] = True
        elif a == "-db":
            opts["foreground"] = True
        elif a == "-D":
            opts["daemon"] = True
        elif a == "-W":
            opts["master_worker"] = True
        elif a == "-Ws":
            opts["master_worker"] = True
            opts["systemd"] = True
        elif a == "-p":
            opts["pidfile"] = value(a)
        elif a in ("-sf", "-st"):
            target = soft if a == "-sf" else hard
            while i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                if not args[i].isdigit():
                    raise UsageError(f"option '{a}' expects process ids (got '{args[i]}')")
                target.append(int(args[i]))
        elif a == "-x":
            opts["socket_from"] = value(a)
        elif a == "-L":
            opts["local_peer"] = value(a)
        elif a == "-n":
            opts["global_maxconn"] = number(a)
        elif a == "-N":
            opts["default_maxconn"] = number(a)
        elif a == "-m":
            opts["memory_mb"] = number(a)
        elif a == "-C":
            opts["chdir"] = value(a)
        elif a == "-S":
            master_cli.append(value(a))
        elif a == "-dW":
            opts["zero_warning"] = True
        elif a == "-dr":
            opts["ignore_resolve"] = True
        elif a == "-dR":
            opts["no_reuseport"] = True
        elif a in _D_FLAGS_NOOP or a.startswith("-dM") or a.startswith("-dK"):
            pass
        else:
            raise UsageError(f"unknown option '{a}'")
        i += 1
    return Options(files=tuple(files), soft_stop_pids=tuple(soft), hard_stop_pids=tuple(hard),
                   master_cli=tuple(master_cli), **opts)  # type: ignore[arg-type]


class Reporter:
    """Prints diagnostics the way HAProxy does: two NOTICE lines before the first one, -q silences."""

    def __init__(self, quiet: bool, pid: int | None = None) -> None:
        self.quiet = quiet
        self.pid = os.getpid() if pid is None else pid
        self._banner_done = False

    def _banner(self) -> None:
        if self._banner_done:
            return
        self._banner_done = True
        exe = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "haproxy-py"
        for msg in (f"haproxy version is {version.FULL_VERSION}", f"path to executable is {exe}"):
            print(f"{'[NOTICE]'.ljust(10)} ({self.pid}) : {msg}", file=sys.stderr)

    def diagnostic(self, d: Diagnostic) -> None:
        if self.quiet:
            return
        self._banner()
        print(d.render(self.pid), file=sys.stderr)

    def alert(self, message: str, context: str = "") -> None:
        if self.quiet:
            return
        self._banner()
        prefix = f"{context} : " if context else ""
        print(f"{'[ALERT]'.ljust(10)} ({self.pid}) : {prefix}{message}", file=sys.stderr)

    def warning(self, message: str) -> None:
        if self.quiet:
            return
        self._banner()
        print(f"{'[WARNING]'.ljust(10)} ({self.pid}) : {message}", file=sys.stderr)


def load_config(opts: Options, rep: Reporter) -> LoadResult | None:
    """Load every -f file; print diagnostics; None when the configuration has an alert."""
    env = dict(os.environ)
    env.setdefault("HAPROXY_LOCALPEER", opts.local_peer or os.uname().nodename)
    env["HAPROXY_CFGFILES"] = ";".join(opts.files)
    try:
        result = load(opts.files, env=env, resolve=not opts.ignore_resolve)
    except ConfigError as e:
        for d in e.diagnostics:
            rep.diagnostic(d)
        files = ", ".join(opts.files)
        if any(d.where is not None for d in e.alerts):
            rep.alert(f"Error(s) found in configuration file : {files}", "config")
        rep.alert("Fatal errors found in configuration.", "config")
        return None
    for d in result.notices:
        rep.diagnostic(d)
    for d in result.alerts:  # non-fatal alerts: HAProxy prints them and still runs
        rep.diagnostic(d)
    for d in result.warnings:
        rep.diagnostic(d)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        sys.stderr.write("\n".join(version.version_lines()) + "\n" + USAGE)
        return 1
    try:
        opts = parse_args(args)
    except UsageError as e:
        sys.stderr.write("\n".join(version.version_lines()) + "\n" + f"[ALERT] {e}\n" + USAGE)
        return 1
    if opts.show_version:
        print("\n".join(version.build_lines() if opts.show_version > 1 else version.version_lines()))
        return 0
    rep = Reporter(quiet=opts.quiet and not opts.verbose)
    if opts.check_cond is not None:
        try:
            return 0 if condexpr.evaluate(opts.check_cond, os.environ) else 1
        except condexpr.ConditionSyntaxError as e:
            rep.alert(e.cc_alert(), "config")
            return 2
    if opts.chdir:
        try:
            os.chdir(opts.chdir)
        except OSError as e:
            rep.alert(f"Cannot chdir to {opts.chdir} : {e.strerror}")
            return 1
    if not opts.files:
        rep.alert("No configuration file specified.")
        sys.stderr.write(USAGE)
        return 1
    result = load_config(opts, rep)
    if result is None:
        return 1
    config = result.config
    zero_warning = opts.zero_warning or config.global_.zero_warning
    if result.warnings and zero_warning:
        rep.alert("Some warnings were found and 'zero-warning' is set. Aborting.", "config")
        return 1
    if opts.check:
        if result.warnings and not rep.quiet:
            print("Warnings were found.")
        if config.listener_count == 0:
            if not rep.quiet:
                print("Configuration file has no error but will not start (no listener) => exit(2).")
            return 2
        if not rep.quiet:
            print("Configuration file is valid")
        return 0
    if config.listener_count == 0:
        rep.alert("[haproxy.main()] No enabled listener found (check for 'bind' directives) ! Exiting.")
        return 1
    from haproxy_py.process.launch import run

    return run(config, opts, rep)


if __name__ == "__main__":
    sys.exit(main())
