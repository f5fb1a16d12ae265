"""What HAProxy 2.6 reads from a TLS ClientHello sitting in a raw request buffer (no TLS termination).

These are the decoders behind `req.ssl_hello_type`, `req.ssl_sni`, `req.ssl_ver` and `req.ssl_alpn`
(HAProxy's src/payload.c), transcribed check for check, because the verdict "wait for more bytes"
vs "this will never be a ClientHello" decides whether a connection sits out `tcp-request
inspect-delay` or is routed at once:

* NEED_MORE: the bytes so far are a valid prefix; a later call with more bytes may decide.
* NOT_TLS:   decided now, and more bytes cannot change it (plain text fails on its first byte;
             a hello without SNI is also "absent" for the SNI decoder, as in HAProxy).
* COMPLETE:  the value is known.

Every call parses the buffer from its start: the input is at most one buffer (16 kB) and the
runtime only calls again when new bytes arrived, exactly as HAProxy re-runs its fetches.

Quirks kept on purpose (they decide timing, and operators' configs were tuned against them):
* `hello_type` wants the whole first handshake message (9 + length bytes), whatever its type.
* `server_name` compares the handshake length with the bytes after the 5-byte record header, so it
  decides 4 bytes before the hello is complete. Where HAProxy would then read past the received
  bytes (stale buffer memory), this decoder answers NEED_MORE instead: deterministic, and the same
  as HAProxy whenever the server_name extension is in the bytes received, which is where clients
  put it.
* A handshake spread over several records is parsed as if contiguous, record headers included.
"""

from __future__ import annotations

import enum

import attrs


class HelloStatus(enum.Enum):
    NEED_MORE = "need-more"
    NOT_TLS = "not-tls"
    COMPLETE = "complete"


@attrs.frozen(slots=True)
class Parsed:
    """A decoder's verdict; `value` is set only when `status` is COMPLETE."""

    status: HelloStatus
    value: int | bytes | tuple[bytes, ...] | None = None

    @property
    def need_more(self) -> bool:
        return self.status is HelloStatus.NEED_MORE


NEED_MORE = Parsed(HelloStatus.NEED_MORE)
NOT_TLS = Parsed(HelloStatus.NOT_TLS)

# Largest record length req.ssl_ver accepts (2^14 + 2048, i.e. compressed/encrypted overhead).
_MAX_RECORD = (1 << 14) + 2048
# HAProxy's default receive limit during inspection: tune.bufsize - tune.maxrewrite.
DEFAULT_RECV_LIMIT = 16384 - 1024


class _Short(Exception):
    """An access beyond the received bytes (see the module docstring)."""


def hello_type(buf: bytes) -> Parsed:
    """`req.ssl_hello_type`: the type of the first handshake message (1 = ClientHello).

    COMPLETE only once the whole handshake message (as its 3-byte length says) has arrived.
    """
    n = len(buf)
    if n == 0:
        return NEED_MORE
    first = buf[0]
    if not (0x14 <= first <= 0x17 or first == 0xFF):
        return NOT_TLS
    if n < 9:
        return NEED_MORE
    if (buf[1] << 16) + buf[2] < 0x00030000:  # SSLv3 record format or later
        return NOT_TLS
    if (buf[3] << 8) + buf[4] < 4:  # the record must hold a handshake type and length
        return NOT_TLS
    hs_type = buf[5]
    hs_len = (buf[6] << 16) + (buf[7] << 8) + buf[8]
    if n < 9 + hs_len:
        return NEED_MORE
    return Parsed(HelloStatus.COMPLETE, hs_type)


def client_version(buf: bytes, recv_limit: int = DEFAULT_RECV_LIMIT) -> Parsed:
    """`req.ssl_ver`: the ClientHello's protocol version as (major << 16) + minor, e.g. 0x30003.

    SSLv3+ records answer the version inside the hello (not the record layer's); the SSLv2
    hello format is understood too. COMPLETE once the record (bounded by `recv_limit`, the most
    the buffer can ever hold) has arrived.
    """
    n = len(buf)
    if n == 0:
        return NEED_MORE
    first = buf[0]
    if 0x14 <= first <= 0x17 or first == 0xFF:
        if n < 11:
            return NEED_MORE
        version = (buf[1] << 16) + buf[2]
        msg_len = (buf[3] << 8) + buf[4]
        if version < 0x00030000:
            return NOT_TLS
        if msg_len < 6 or msg_len > _MAX_RECORD:
            return NOT_TLS
        left = n - 5
        version = (buf[5 + 4] << 16) + buf[5 + 5]
    else:
        # SSLv2 header: only the hello (message type 1) is recognised
        if first & 0x80:
            if n < 3:
                return NEED_MORE
            rlen = ((first & 0x7F) << 8) | buf[1]
            plen = 0
            pos = 2
        else:
            if n < 4:
                return NEED_MORE
            rlen = ((first & 0x3F) << 8) | buf[1]
            plen = buf[2]
            pos = 3
        if buf[pos] != 0x01:
            return NOT_TLS
        pos += 1
        left = n - pos
        if left < 8:
            return NEED_MORE
        version = (buf[pos] << 16) + buf[pos + 1]
        cilen = (buf[pos + 2] << 8) + buf[pos + 3]
        silen = (buf[pos + 4] << 8) + buf[pos + 5]
        chlen = (buf[pos + 6] << 8) + buf[pos + 7]
        left -= 8
        if cilen % 3 != 0 or (silen and silen != 16) or not 16 <= chlen <= 32:
            return NOT_TLS
        if rlen != 9 + cilen + silen + chlen:
            return NOT_TLS
        msg_len = cilen + silen + chlen + plen
    msg_len = min(msg_len, recv_limit)
    if left < msg_len:
        return NEED_MORE
    return Parsed(HelloStatus.COMPLETE, version)


def _extensions(buf: bytes) -> tuple[Parsed | None, int, int]:
    """Walk a ClientHello up to its extension list, with HAProxy's checks.

    Returns (verdict, start, length): a verdict (NEED_MORE/NOT_TLS) when the walk stops early,
    else None and the extension list's offset and declared length in `buf`.
    """
    n = len(buf)
    if n == 0:
        return NEED_MORE, 0, 0
    if buf[0] != 0x16:
        return NOT_TLS, 0, 0
    if n < 3:
        return NEED_MORE, 0, 0
    if buf[1] < 0x03:
        return NOT_TLS, 0, 0
    if n < 5:
        return NEED_MORE, 0, 0
    # too short to hold a hello with an extension
    if (buf[3] << 8) + buf[4] < 1 + 3 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2:
        return NOT_TLS, 0, 0
    left = n - 5
    if left < 1:
        return NEED_MORE, 0, 0
    if buf[5] != 0x01:  # msg_type ClientHello
        return NOT_TLS, 0, 0
    if left < 4:
        return NEED_MORE, 0, 0
    hs_len = (buf[6] << 16) + (buf[7] << 8) + buf[8]
    if hs_len < 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2:
        return NOT_TLS, 0, 0
    if left < hs_len:  # HAProxy's test: 4 bytes short of the whole message
        return NEED_MORE, 0, 0

    def at(i: int) -> int:
        if i >= n:
            raise _Short
        return buf[i]

    try:
        p = 9  # start of the ClientHello body
        if at(p) < 0x03 or at(p + 1) < 0x01:  # TLSv1 minimum
            return NOT_TLS, 0, 0
        sid_len = at(p + 34)
        if sid_len > 32 or sid_len > hs_len - 35:
            return NOT_TLS, 0, 0
        hs_len -= 35 + sid_len
        p += 35 + sid_len
        if hs_len < 4:
            return NOT_TLS, 0, 0
        cs_len = (at(p) << 8) + at(p + 1)
        if cs_len < 2 or cs_len > hs_len:
            return NOT_TLS, 0, 0
        hs_len -= 2 + cs_len
        p += 2 + cs_len
        if hs_len < 2:
            return NOT_TLS, 0, 0
        comp_len = at(p)
        if comp_len < 1 or comp_len > hs_len:
            return NOT_TLS, 0, 0
        hs_len -= 1 + comp_len
        p += 1 + comp_len
        if hs_len < 2:
            return NOT_TLS, 0, 0
        ext_total = (at(p) << 8) + at(p + 1)
        if ext_total > hs_len - 2:
            return NOT_TLS, 0, 0
    except _Short:
        return NEED_MORE, 0, 0
    return None, p + 2, ext_total


def _find_extension(buf: bytes, wanted: int) -> tuple[Parsed | None, int, int, int]:
    """Locate extension `wanted`: (verdict, header offset, data length, list bytes left at it).

    The verdict (NEED_MORE/NOT_TLS) is set when the extension was not reached or is absent.
    """
    verdict, p, left = _extensions(buf)
    if verdict is not None:
        return verdict, 0, 0, 0
    n = len(buf)
    while left >= 4:
        if p + 4 > n:
            return NEED_MORE, 0, 0, 0
        ext_type = (buf[p] << 8) + buf[p + 1]
        ext_len = (buf[p + 2] << 8) + buf[p + 3]
        if ext_len > left - 4:
            return NOT_TLS, 0, 0, 0
        if ext_type == wanted:
            return None, p, ext_len, left
        left -= 4 + ext_len
        p += 4 + ext_len
    return NOT_TLS, 0, 0, 0


def server_name(buf: bytes) -> Parsed:
    """`req.ssl_sni`: the first host_name of the server_name extension, as sent (not lower-cased).

    A hello without the extension (or whose first name is not a host_name) is NOT_TLS: HAProxy
    reports no sample and never waits for it.
    """
    verdict, h, ext_len, left = _find_extension(buf, 0)
    if verdict is not None:
        return verdict
    if ext_len < 2:
        return NOT_TLS
    n = len(buf)
    if h + 9 > n:
        return NEED_MORE
    srv_len = (buf[h + 4] << 8) + buf[h + 5]
    # checked against the list bytes left, not against the extension's own length (as HAProxy)
    if srv_len < 4 or srv_len > left - 6:
        return NOT_TLS
    name_type = buf[h + 6]
    name_len = (buf[h + 7] << 8) + buf[h + 8]
    if name_type != 0:
        return NOT_TLS
    if h + 9 + name_len > n:
        return NEED_MORE
    return Parsed(HelloStatus.COMPLETE, bytes(buf[h + 9 : h + 9 + name_len]))


def alpn(buf: bytes) -> Parsed:
    """`req.ssl_alpn`: the protocol names of the ALPN extension, in the client's order."""
    verdict, h, ext_len, _left = _find_extension(buf, 16)
    if verdict is not None:
        return verdict
    if ext_len < 3:  # a list length and at least one name length
        return NOT_TLS
    n = len(buf)
    names: list[bytes] = []
    off = 6  # HAProxy's cursor, from the extension header: after the 2-byte list length
    while True:
        if h + off >= n:
            return NEED_MORE
        name_len = buf[h + off]
        if name_len + off - 3 > ext_len:
            return Parsed(HelloStatus.COMPLETE, tuple(names)) if names else NOT_TLS
        if h + off + 1 + name_len > n:
            return NEED_MORE
        names.append(bytes(buf[h + off + 1 : h + off + 1 + name_len]))
        if name_len + off - 3 >= ext_len:
            return Parsed(HelloStatus.COMPLETE, tuple(names))
        off += name_len + 1
