"""What a health probe sends and how its answer is judged, without any I/O.

`build_plan(proxy)` turns a backend's `option httpchk` / `http-check` / `option tcp-check` /
`tcp-check` configuration into a `Plan`; the runtime (`runtime/checks.py`) executes it on a socket
and hands the bytes it read back to `judge_http()` or `judge_expect()`. Byte formats and messages
are HAProxy 2.6's, captured from the 2.6 binary with a recording server:

* HTTP requests: header names lower-cased, `content-length` added for a body or for methods other
  than GET/HEAD/OPTIONS/DELETE, `connection: close` appended in HTTP/1.1 unless a Connection header
  was given, no Host invented; any version other than HTTP/1.0 is sent as HTTP/1.1 (the H1 mux).
* Without `http-check expect`, a 2xx or 3xx status passes; otherwise `L7STS` with the reason phrase.
* tcp-check messages name the step (1-based over all rules, comments included).
"""

from __future__ import annotations

import re

import attrs

from haproxy_py.config.model import CheckRule, HttpCheck, Proxy
from haproxy_py.core.health import CheckOutcome

# methods for which HAProxy's H1 mux adds no `content-length: 0` to a body-less request
_BODYLESS_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "DELETE"))
# response statuses that never carry a body
_NO_BODY_STATUS = (204, 304)


# ----------------------------------------------------------------------------------------------
# expect rules


@attrs.frozen
class Expect:
    """One `http-check expect` or `tcp-check expect` rule.

    kind: status | rstatus | string | rstring | binary | rbinary | hdr | fhdr. `step` is the rule's
    1-based position among the check rules (tcp-check messages report it).
    """

    kind: str
    pattern: str
    negate: bool = False
    comment: str | None = None
    step: int = 0
    regex: re.Pattern[bytes] | None = None
    data: bytes = b""
    statuses: tuple[tuple[int, int], ...] = ()
    header_name: str = ""
    header_value: str | None = None

    @property
    def needs_body(self) -> bool:
        return self.kind in ("string", "rstring")


class PlanError(ValueError):
    """A check rule this implementation cannot run (the message says which)."""


def _status_ranges(text: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise PlanError(f"invalid status code or range '{part}'")
        ranges.append((int(lo), int(hi) if hi else int(lo)))
    return tuple(ranges)


def parse_expect(args: tuple[str, ...], step: int = 0, comment: str | None = None) -> Expect:
    """`[!] <kind> <pattern> [options...]`, options (`comment`, `min-recv`, ...) before or after."""
    words = list(args)
    negate = False
    kind = ""
    pattern = ""
    opts: dict[str, str] = {}
    header_value: str | None = None
    i = 0
    while i < len(words):
        w = words[i]
        if w == "!":
            negate = True
            i += 1
        elif w in ("min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success", "on-error",
                   "status-code") and i + 1 < len(words):
            opts[w] = words[i + 1]
            i += 2
        elif not kind:
            if w.startswith("!"):
                negate, w = True, w[1:]
            kind = w
            i += 1
            if kind in ("hdr", "fhdr"):
                # hdr name [-m meth] <name> [value [-m meth] <value>]
                rest = words[i:]
                j = 0
                while j < len(rest):
                    if rest[j] == "name" and j + 1 < len(rest):
                        j += 1
                        if rest[j] == "-m" and j + 2 < len(rest):
                            j += 2
                        pattern = rest[j]
                        j += 1
                    elif rest[j] == "value" and j + 1 < len(rest):
                        j += 1
                        if rest[j] == "-m" and j + 2 < len(rest):
                            j += 2
                        header_value = rest[j]
                        j += 1
                    else:
                        break
                i += j
            elif i < len(words):
                pattern = words[i]
                i += 1
        else:
            i += 1  # unknown trailing option: ignored, as the config layer already checked the line
    comment = opts.get("comment", comment)
    if kind == "status":
        return Expect(kind, pattern, negate, comment, step, statuses=_status_ranges(pattern))
    if kind in ("rstatus", "rstring", "rbinary"):
        source = bytes.fromhex(pattern).decode("latin-1") if kind == "rbinary" and _is_hex(pattern) else pattern
        try:
            rx = re.compile(source.encode("latin-1"), re.DOTALL)
        except re.error as e:
            raise PlanError(f"invalid regex '{pattern}': {e}") from None
        return Expect(kind, pattern, negate, comment, step, regex=rx)
    if kind in ("string", "string-lf"):
        return Expect("string", pattern, negate, comment, step, data=pattern.encode("latin-1", "replace"))
    if kind in ("binary", "binary-lf"):
        if not _is_hex(pattern):
            raise PlanError(f"invalid binary pattern '{pattern}'")
        return Expect("binary", pattern, negate, comment, step, data=bytes.fromhex(pattern))
    if kind in ("hdr", "fhdr"):
        return Expect(kind, pattern, negate, comment, step, header_name=pattern.lower(), header_value=header_value)
    raise PlanError(f"'expect {kind}' is not supported")


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


# ----------------------------------------------------------------------------------------------
# plans


@attrs.frozen
class TcpStep:
    """One tcp-check rule: connect, send or expect (comments only name the next rule)."""

    step: int
    action: str  # "connect" | "send" | "expect"
    data: bytes = b""
    expect: Expect | None = None
    port: int | None = None
    addr: str | None = None
    comment: str | None = None


@attrs.frozen
class Plan:
    """How a backend checks its servers.

    kind "connect": a TCP connection is the whole check. kind "http": send `request`, judge the
    response with `expects` (none: 2xx/3xx passes). kind "tcp-check": run `steps` in order;
    `implicit_connect` when the rules do not start with a `connect` (HAProxy then reports a failed
    connection "at initial connection step"). `port`/`addr` come from a leading `http-check connect`.
    """

    kind: str
    request: bytes = b""
    head_only: bool = False
    expects: tuple[Expect, ...] = ()
    steps: tuple[TcpStep, ...] = ()
    implicit_connect: bool = True
    port: int | None = None
    addr: str | None = None

    @property
    def needs_body(self) -> bool:
        return any(e.needs_body for e in self.expects)


def http_request(chk: HttpCheck) -> bytes:
    """The exact bytes HAProxy 2.6 sends for an HTTP check."""
    method = chk.method
    version = "HTTP/1.0" if chk.version.upper() == "HTTP/1.0" else "HTTP/1.1"
    body = chk.body.encode("latin-1", "replace")
    lines = [f"{method} {chk.uri} {version}"]
    connection_given = False
    for name, value in chk.headers:
        lname = name.lower()
        if lname in ("content-length", "transfer-encoding"):
            continue  # the mux frames the body itself
        if lname == "connection":
            connection_given = True
            v = value.strip().lower()
            # the value the version already implies is dropped by the H1 mux
            if (version == "HTTP/1.1" and v == "keep-alive") or (version == "HTTP/1.0" and v == "close"):
                continue
        lines.append(f"{lname}: {value}")
    if body or method not in _BODYLESS_METHODS:
        lines.append(f"content-length: {len(body)}")
    if version == "HTTP/1.1" and not connection_given:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def _connect_options(args: tuple[str, ...]) -> tuple[int | None, str | None, str | None]:
    port: int | None = None
    addr: str | None = None
    comment: str | None = None
    i = 0
    while i < len(args):
        w = args[i]
        if w in ("port", "addr", "comment", "sni", "alpn", "proto") and i + 1 < len(args):
            if w == "port":
                if not args[i + 1].isdigit():
                    raise PlanError(f"'connect port' expects a number (got '{args[i + 1]}')")
                port = int(args[i + 1])
            elif w == "addr":
                addr = args[i + 1]
            elif w == "comment":
                comment = args[i + 1]
            i += 2
        else:
            i += 1  # default, linger, send-proxy, via-socks4, ssl...: no effect here
    return port, addr, comment


def _send_data(rule: CheckRule) -> bytes:
    text = rule.args[0] if rule.args else ""
    if rule.action in ("send-binary", "send-binary-lf"):
        if not _is_hex(text):
            raise PlanError(f"invalid binary data '{text}'")
        return bytes.fromhex(text)
    return text.encode("latin-1", "replace")


def _rule_comment(rule: CheckRule) -> str | None:
    args = rule.args
    for i, w in enumerate(args[:-1]):
        if w == "comment":
            return args[i + 1]
    return None


def build_plan(proxy: Proxy) -> Plan:
    """The check plan of a backend (`check_kind` "tcp", "http" or "tcp-check").

    Raises PlanError for a rule that cannot be honoured.
    """
    if proxy.check_kind == "http":
        chk = proxy.httpchk or HttpCheck()
        expects = []
        pending_comment: str | None = None
        port = addr = None
        for n, rule in enumerate(proxy.http_check_rules, 1):
            if rule.action == "comment":
                pending_comment = rule.args[0] if rule.args else None
                continue
            if rule.action == "expect":
                expects.append(parse_expect(rule.args, n, pending_comment))
            elif rule.action == "connect" and not expects:
                port, addr, _ = _connect_options(rule.args)
            pending_comment = None
        return Plan(kind="http", request=http_request(chk), head_only=chk.method == "HEAD", expects=tuple(expects),
                    port=port, addr=addr)
    if proxy.check_kind == "tcp-check":
        steps = []
        pending_comment = None
        for n, rule in enumerate(proxy.tcp_check_rules, 1):
            if rule.action == "comment":
                pending_comment = rule.args[0] if rule.args else None
                continue
            own = _rule_comment(rule)
            comment = own if own is not None else pending_comment
            pending_comment = None
            if rule.action == "connect":
                port, addr, c = _connect_options(rule.args)
                steps.append(TcpStep(n, "connect", port=port, addr=addr, comment=c if c is not None else comment))
            elif rule.action in ("send", "send-lf", "send-binary", "send-binary-lf"):
                steps.append(TcpStep(n, "send", data=_send_data(rule), comment=comment))
            elif rule.action == "expect":
                exp = parse_expect(rule.args, n, comment)
                steps.append(TcpStep(n, "expect", expect=exp, comment=exp.comment))
            # set-var / unset-var: no effect on what is sent here
        implicit = not steps or steps[0].action != "connect"
        return Plan(kind="tcp-check", steps=tuple(steps), implicit_connect=implicit)
    return Plan(kind="connect")


# ----------------------------------------------------------------------------------------------
# HTTP responses


class ResponseHead:
    """A response's status line and headers. Header names are parsed only when asked for (most
    checks look at the status alone): `headers` lower-cases names, keeps order and duplicates."""

    __slots__ = ("code", "reason", "body_start", "_raw", "_headers")

    def __init__(self, code: int, reason: str, body_start: int, raw_headers: list[bytes]) -> None:
        self.code = code
        self.reason = reason
        self.body_start = body_start  # offset of the body in the buffer
        self._raw = raw_headers
        self._headers: tuple[tuple[str, str], ...] | None = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        if self._headers is None:
            out = []
            for raw in self._raw:
                name, _, value = raw.partition(b":")
                out.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
            self._headers = tuple(out)
        return self._headers

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class InvalidResponse(ValueError):
    """Not an HTTP response (HAProxy: L7RSP, no info)."""


def parse_head(buf: bytes) -> ResponseHead | None:
    """Parse a response head; None while incomplete. Raises InvalidResponse for garbage.

    Accepts CRLF or bare LF line ends, as HAProxy's parser does for responses.
    """
    end = buf.find(b"\r\n\r\n")
    if end >= 0 and buf.find(b"\n\n", 0, end) < 0:
        head, body_start = buf[:end], end + 4
        lines = head.split(b"\r\n")
    else:
        end = buf.find(b"\n\r\n")
        end2 = buf.find(b"\n\n")
        if end < 0 and end2 < 0:
            if len(buf) >= 5 and not buf.startswith(b"HTTP/"):
                raise InvalidResponse("not an HTTP response")
            return None
        if end < 0 or (0 <= end2 < end):
            head, body_start = buf[:end2], end2 + 2
        else:
            head, body_start = buf[:end], end + 3
        lines = [ln.rstrip(b"\r") for ln in head.split(b"\n")]
    line = lines[0]
    # "HTTP/x.y NNN[ reason]"
    if (len(line) < 12 or line[:5] != b"HTTP/" or line[6:7] != b"." or line[8:9] != b" "
            or not line[5:6].isdigit() or not line[7:8].isdigit() or not line[9:12].isdigit()
            or (len(line) > 12 and line[12:13] != b" ")):
        raise InvalidResponse("bad status line")
    raw_headers = lines[1:]
    if raw_headers and _HEADER_LINES.fullmatch(b"\n".join(raw_headers)) is None:
        raise InvalidResponse("bad header line")
    return ResponseHead(int(line[9:12]), line[13:].decode("latin-1"), body_start, raw_headers)


# header lines: a name without blanks, a colon, a value (the check is one C call for the block)
_HEADER_LINES = re.compile(rb"[^:\s][^:\r\n]*(?<![ \t]):[^\n]*(?:\n[^:\s][^:\r\n]*(?<![ \t]):[^\n]*)*")


# A response head in its plainest form: status line, well-formed header lines, all ended by CRLF.
# Every head this matches is one `parse_head` reads the same way (CRLF branch, same status line,
# header lines its check accepts), so `judge_plain_head` can decide without building a ResponseHead.
_PLAIN_HEAD = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: ([^\r\n]*))?\r\n"
                         rb"(?:[^:\s][^:\r\n]*(?<![ \t]):[^\r\n]*\r\n)*\r\n")
# the outcome of every 2xx and 3xx status, by its three digits
_PLAIN_OK = {str(code).encode(): CheckOutcome("L7OK", code) for code in range(200, 400)}


def judge_plain_head(buf: bytes) -> CheckOutcome | None:
    """`judge_http(parse_head(buf), b"", ())` for the usual answer to a check without expect rules,
    at a fraction of the cost (thousands of checks a second each judge one); None when `buf` does
    not start with a plainly formed, complete head, and the general path must decide."""
    m = _PLAIN_HEAD.match(buf)
    if m is None:
        return None
    code = m.group(1)
    got = _PLAIN_OK.get(code)
    if got is not None:
        return got
    reason = m.group(2)
    return CheckOutcome("L7STS", int(code), reason.decode("latin-1") if reason is not None else "")


def body_complete(head: ResponseHead, buf: bytes, eof: bool, head_request: bool, limit: int) -> bytes | None:
    """The response body once it is all there (or `limit` bytes of it); None to read more."""
    raw = buf[head.body_start:]
    if head_request or head.code in _NO_BODY_STATUS or 100 <= head.code < 200:
        return b""
    te = head.header("transfer-encoding")
    if te is not None and "chunked" in te.lower():
        body, done = _dechunk(raw)
        if done or eof or len(body) >= limit:
            return body[:limit]
        return None
    cl = head.header("content-length")
    if cl is not None and cl.strip().isdigit():
        n = int(cl.strip())
        if len(raw) >= n or eof or len(raw) >= limit:
            return raw[: min(n, limit)]
        return None
    if eof or len(raw) >= limit:
        return raw[:limit]
    return None


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    out = bytearray()
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size_txt = raw[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            return bytes(out), True  # malformed: judge what we have
        if size == 0:
            return bytes(out), True
        start = eol + 2
        if len(raw) < start + size:
            out += raw[start:]
            return bytes(out), False
        out += raw[start:start + size]
        pos = start + size + 2


def judge_http(head: ResponseHead, body: bytes, expects: tuple[Expect, ...]) -> CheckOutcome:
    """The status of an HTTP check from its response (duration left for the caller to fill)."""
    if not expects:
        if 200 <= head.code < 400:
            return CheckOutcome("L7OK", head.code)
        return CheckOutcome("L7STS", head.code, head.reason)
    for exp in expects:
        failed = _http_expect_fails(exp, head, body)
        if failed is not None:
            if exp.comment:
                failed = failed._replace(desc=f"{failed.desc} comment: {exp.comment}")
            return failed
    return CheckOutcome("L7OK", head.code)


def _http_expect_fails(exp: Expect, head: ResponseHead, body: bytes) -> CheckOutcome | None:
    if exp.kind in ("status", "rstatus"):
        if exp.kind == "status":
            match = any(lo <= head.code <= hi for lo, hi in exp.statuses)
        else:
            assert exp.regex is not None
            match = exp.regex.search(str(head.code).encode()) is not None
        if match != exp.negate:
            return None
        return CheckOutcome("L7STS", head.code, head.reason)
    if exp.kind in ("string", "rstring"):
        if exp.kind == "string":
            match = exp.data in body
        else:
            assert exp.regex is not None
            match = exp.regex.search(body) is not None
        if match != exp.negate:
            return None
        desc = "HTTP check matched unwanted content" if match else "HTTP content check did not match"
        return CheckOutcome("L7RSP", head.code, desc)
    # hdr / fhdr: a header with this name (and, if given, this exact value among its values)
    values = [v for k, v in head.headers if k == exp.header_name]
    if exp.header_value is None:
        match = bool(values)
    elif exp.kind == "hdr":
        match = any(part.strip() == exp.header_value for v in values for part in v.split(","))
    else:
        match = exp.header_value in values
    if match != exp.negate:
        return None
    desc = "HTTP header matched unwanted content" if match else "HTTP header did not match"
    return CheckOutcome("L7STS", head.code, desc)


# ----------------------------------------------------------------------------------------------
# tcp-check


def judge_expect(step: TcpStep, buf: bytes, eof: bool, limit: int) -> CheckOutcome | None:
    """A tcp-check expect on the bytes received since the last send.

    None: the rule passed. A CheckOutcome: it failed (L7RSP with HAProxy's message). Raises
    NeedMore while undecided: as HAProxy, a mismatch waits for more data until the server closes
    or `limit` bytes arrived (even for a negated rule).
    """
    exp = step.expect
    assert exp is not None
    if not buf:
        if not eof:
            raise NeedMore()
        return CheckOutcome("L7RSP", desc=_with_comment(f"TCPCHK got an empty response at step {step.step}",
                                                         exp.comment, quoted=True))
    if exp.kind in ("string", "binary"):
        match = exp.data in buf
    elif exp.kind in ("rstring", "rbinary"):
        assert exp.regex is not None
        match = exp.regex.search(buf) is not None
    else:
        raise PlanError(f"'tcp-check expect {exp.kind}' is not supported")
    if not match and not eof and len(buf) < limit:
        raise NeedMore()
    if match != exp.negate:
        return None
    head = "TCPCHK matched unwanted content" if match else "TCPCHK did not match content"
    if exp.kind == "string":
        what = f" '{exp.pattern}'"
    elif exp.kind == "binary":
        what = " (binary)"
    elif exp.kind == "rstring":
        what = " (regex)"
    else:
        what = " (binary regex)"
    return CheckOutcome("L7RSP", desc=_with_comment(f"{head}{what} at step {step.step}", exp.comment))


class NeedMore(Exception):
    """The expect rule cannot decide yet: read more."""


def _with_comment(text: str, comment: str | None, quoted: bool = False) -> str:
    if not comment:
        return text
    return f"{text} comment: '{comment}'" if quoted else f"{text} comment: {comment}"


def step_info(plan: Plan, step: TcpStep | None) -> str:
    """HAProxy's suffix for connection errors and timeouts of a tcp-check: where it happened."""
    if plan.kind != "tcp-check":
        return ""
    if step is None:
        return " at initial connection step of tcp-check"
    text = f" at step {step.step} of tcp-check"
    if step.action == "connect":
        text += f" (connect port {step.port})" if step.port else " (connect)"
    elif step.action == "expect":
        exp = step.expect
        assert exp is not None
        if exp.kind == "string":
            text += f" (expect string '{exp.pattern}')"
        elif exp.kind == "binary":
            text += f" (expect binary '{exp.data.decode('latin-1')}')"
        elif exp.kind == "rstring":
            text += " (expect regex)"
        elif exp.kind == "rbinary":
            text += " (expect binary regex)"
    elif step.action == "send":
        text += " (send)"
    if step.comment:
        text += f" comment: '{step.comment}'"
    return text
