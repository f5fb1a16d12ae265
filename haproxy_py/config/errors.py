"""Diagnostics in HAProxy's words and shape, so operators' grep patterns and habits keep working."""

from __future__ import annotations

import os

import attrs


@attrs.frozen
class Location:
    """Where a statement came from; `line` is 1-based."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@attrs.frozen
class Diagnostic:
    """One ALERT/WARNING/NOTICE about the configuration.

    `context` is the prefix HAProxy puts after `config : ` for keyword-level messages
    (`parsing [f:l] : `) or server-level ones (`[f:l] : 'server be/s1' : `).
    """

    level: str  # "ALERT" | "WARNING" | "NOTICE"
    message: str
    where: Location | None = None
    server: str | None = None  # "be/s1" for server-keyword messages
    # How HAProxy writes the location, which differs by message family:
    #   "parsing"  `parsing [f:l] : msg`  (keyword handlers)
    #   "tight"    `parsing [f:l]: msg`   (tokenizer, `.if` directives, out-of-section keywords)
    #   "Parsing"  `Parsing [f:l]: msg`   (duplicate names and some post-section checks)
    #   "bracket"  `[f:l] : msg`          (server-level keywords; also used with `server`)
    form: str = "parsing"
    # An ALERT HAProxy prints without refusing the configuration (e.g. an address on a
    # `frontend` line); only fatal alerts make the load fail.
    fatal: bool = True

    def render(self, pid: int | None = None) -> str:
        pid = os.getpid() if pid is None else pid
        if self.where is None:
            body = self.message
        elif self.server is not None:
            body = f"[{self.where}] : 'server {self.server}' : {self.message}"
        elif self.form == "tight":
            body = f"parsing [{self.where}]: {self.message}"
        elif self.form == "Parsing":
            body = f"Parsing [{self.where}]: {self.message}"
        elif self.form == "bracket":
            body = f"[{self.where}] : {self.message}"
        else:
            body = f"parsing [{self.where}] : {self.message}"
        head = f"[{self.level}]".ljust(10)
        return f"{head} ({pid}) : config : {body}"


class ConfigError(Exception):
    """The configuration cannot be used; `diagnostics` holds every alert (and warning) found.

    Every alert raised while reading a file names the file and line it is about.
    """

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        alerts = [d for d in self.diagnostics if d.level == "ALERT" and d.fatal]
        alerts = alerts or [d for d in self.diagnostics if d.level == "ALERT"]
        first = alerts[0] if alerts else (self.diagnostics[0] if self.diagnostics else None)
        super().__init__(first.render(0) if first else "configuration error")

    @property
    def alerts(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == "ALERT"]


class StatementError(Exception):
    """Raised by a keyword handler or the lexer for the statement being parsed.

    The loader turns it into an ALERT located at that statement; `server` marks messages HAProxy
    prints in its server form.
    """

    def __init__(self, message: str, server: str | None = None, form: str = "parsing", fatal: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.server = server
        self.form = form
        self.fatal = fatal
