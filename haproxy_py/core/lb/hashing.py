"""Hash functions and key extraction of HAProxy's hashing balancers (src/hash.c, src/backend.c).

Everything here is a pure function of bytes to a 32-bit unsigned integer (or to the bytes that get
hashed), written to give bit-for-bit the values HAProxy 2.6 computes, because the server a key lands
on is user-visible: a client that reached `s3` through HAProxy must reach `s3` here too.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable

MASK32 = 0xFFFFFFFF


def sdbm(data: bytes) -> int:
    """HAProxy's default hash: `h = c + (h << 6) + (h << 16) - h`, 32-bit unsigned."""
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & MASK32
    return h


def djb2(data: bytes) -> int:
    """Bernstein's hash, `h = h * 33 + c` from 5381."""
    h = 5381
    for c in data:
        h = (h * 33 + c) & MASK32
    return h


def wt6(data: bytes) -> int:
    """Willy Tarreau's wt6 hash (rotations whose widths depend on the data so far).

    A rotation by 0 is written `(h << 0) | (h >> 32)` in C, which x86 computes as `h | h == h`;
    Python's `h >> 32 == 0` gives the same `h`, so no special case is needed.
    """
    h0 = 0xA53C965A
    h1 = 0x5CA6953A
    step0 = 6
    step1 = 18
    for t in data:
        h0 = ~(h0 ^ t) & MASK32
        h1 = ~(h1 + t) & MASK32
        t = ((h1 << step0) | (h1 >> (32 - step0))) & MASK32
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & MASK32
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return (h0 ^ h1) & MASK32


def crc32(data: bytes) -> int:
    """HAProxy's hash_crc32 is the plain reflected CRC-32 (poly 0xedb88320), i.e. zlib's."""
    return zlib.crc32(data) & MASK32


def hash_none(data: bytes) -> int:
    """`hash-type ... none`: the key is taken as a decimal number (HAProxy's read_int64).

    An optional sign, then digits up to the first non-digit; saturates at the 64-bit limits like
    read_uint64/read_int64, then keeps the low 32 bits as the C `unsigned int` assignment does.
    """
    pos = 0
    neg = False
    if data[:1] == b"-":
        neg = True
        pos = 1
    elif data[:1] == b"+":
        pos = 1
    value = 0
    u64_max = (1 << 64) - 1
    while pos < len(data) and 0x30 <= data[pos] <= 0x39:
        value = value * 10 + (data[pos] - 0x30)
        if value > u64_max:
            value = u64_max
        pos += 1
    if neg:
        signed = -(1 << 63) if value > (1 << 63) else -value
    else:
        signed = (1 << 63) - 1 if value > (1 << 63) - 1 else value
    return signed & MASK32


HASH_FUNCTIONS: dict[str, Callable[[bytes], int]] = {
    "sdbm": sdbm,
    "djb2": djb2,
    "wt6": wt6,
    "crc32": crc32,
    "none": hash_none,
}


def full_hash(a: int) -> int:
    """HAProxy's `full_hash()`: Bob Jenkins' 6-step integer avalanche, then `* 3221225473`.

    Used for `avalanche` and to place consistent-hash ring points; the final multiplication spreads
    consecutive inputs (puid * 4096 + i) all around the 32-bit ring.
    """
    a &= MASK32
    a = ((a + 0x7ED55D16) + (a << 12)) & MASK32
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK32
    a = ((a + 0x165667B1) + (a << 5)) & MASK32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK32
    a = ((a + 0xFD7046C5) + (a << 3)) & MASK32
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & MASK32
    return (a * 3221225473) & MASK32


def gen_hash(data: bytes, function: str = "sdbm", avalanche: bool = False) -> int:
    """Hash `data` with the `hash-type` function, then the optional avalanche (HAProxy's gen_hash).

    An unknown name falls back to sdbm, as HAProxy's `default:` branch does.
    """
    h = HASH_FUNCTIONS.get(function, sdbm)(data)
    return full_hash(h) if avalanche else h


def source_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """`balance source` key before avalanche: the address XORed as big-endian 32-bit words.

    IPv4 is the address itself (127.0.0.1 -> 2130706433); IPv6 XORs its four words. The hash
    function name is deliberately ignored, as in HAProxy's get_server_sh().
    """
    packed = ip.packed
    h = 0
    for off in range(0, len(packed) - 3, 4):
        h ^= int.from_bytes(packed[off : off + 4], "big")
    return h


def uri_path_only(uri: bytes) -> bytes:
    """The path of a request target (HAProxy's http_parse_path), for `uri path-only`.

    Origin form is returned as is; for absolute form the scheme and authority are dropped so that
    HTTP/1 and HTTP/2 requests hash the same; `*` or a target without a path gives b"".
    The result still carries the query string: `uri` stops at `?` itself unless `whole`.
    """
    if not uri or uri[:1] == b"*":
        return b""
    if uri[:1] == b"/":
        return uri
    sep = uri.find(b"://")
    if sep < 0:
        return b""
    slash = uri.find(b"/", sep + 3)
    return uri[slash:] if slash >= 0 else b""


def uri_key(
    uri: bytes, *, length: int = 0, depth: int = 0, whole: bool = False, path_only: bool = False
) -> bytes:
    """The part of the URI `balance uri` hashes (HAProxy's get_server_uh()).

    At most `length` bytes (0 = no limit), stopping before `?` unless `whole`, and before the
    (depth+1)-th slash when `depth` > 0 (so depth 2 of `/a/b/c` hashes `/a/b`).
    """
    if path_only:
        uri = uri_path_only(uri)
    if length > 0:
        uri = uri[:length]
    stop_slash = depth + 1 if depth > 0 else 0
    slashes = 0
    end = 0
    for c in uri:
        if c == 0x2F:  # '/'
            slashes += 1
            if slashes == stop_slash:
                break
        elif c == 0x3F and not whole:  # '?'
            break
        end += 1
    return uri[:end]


def url_param_value(uri: bytes, name: bytes) -> bytes | None:
    """Value of query parameter `name` (case-sensitive), or None when absent (get_server_ph).

    Parameters are `&`-separated after the first `?`; the value runs to the next `&` or the end and
    may be empty (it then hashes as b""). Scanning stops like HAProxy's: a parameter is only
    recognised when at least one byte follows its `=`-less name.
    """
    qpos = uri.find(b"?")
    if qpos < 0:
        return None
    params = uri[qpos + 1 :]
    plen = len(name)
    pos = 0
    while len(params) - pos > plen:
        if params[pos + plen] == 0x3D and params[pos : pos + plen] == name:  # '='
            start = pos + plen + 1
            amp = params.find(b"&", start)
            return params[start:] if amp < 0 else params[start:amp]
        amp = params.find(b"&", pos)
        if amp < 0:
            return None
        pos = amp + 1
    return None


def header_key(value: bytes | None, use_domain_only: bool = False) -> bytes | None:
    """What `balance hdr(name)` hashes, or None to fall back to round robin (absent or empty value).

    With `use_domain_only` only the label before the last dot is kept (`www.example.com` ->
    `example`, `example.com` -> `example`, `localhost` -> `localhost`), walking backwards exactly
    like HAProxy's get_server_hh().
    """
    if not value:
        return None
    if not use_domain_only:
        return value
    n = len(value)
    p = n  # HAProxy starts one past the end; that byte is never a '.' of the value
    end = n
    remaining = n
    dohash = False
    while remaining:
        if dohash:
            if value[p - 1] == 0x2E:
                break
        elif p < n and value[p] == 0x2E:
            end = p
            dohash = True
        p -= 1
        remaining -= 1
    return value[p:end]


def rdp_cookie_value(payload: bytes, name: bytes = b"mstshash") -> bytes | None:
    """The RDP cookie of an X.224 connection request (HAProxy's fetch_rdp_cookie_name), or None.

    The request carries `Cookie: <name>=<value>\\r\\n` after an 11-byte header; the name compares
    case-insensitively, an empty `name` accepts any cookie. An empty value counts as absent.
    """
    data = payload[11:]
    if len(payload) <= 11 or len(data) <= 7:
        return None
    if data[:7].lower() != b"cookie:":
        return None
    pos = 7
    while pos < len(data) and data[pos] == 0x20:
        pos += 1
    if name:
        if len(data) - pos <= len(name):
            return None
        if data[pos + len(name)] != 0x3D or data[pos : pos + len(name)].lower() != name.lower():
            return None
        pos += len(name) + 1
    else:
        while pos < len(data) and data[pos] != 0x3D:
            if data[pos] in (0x0D, 0x0A):
                return None
            pos += 1
        if pos >= len(data):
            return None
        pos += 1
    start = pos
    while pos < len(data) and data[pos] != 0x0D:
        pos += 1
    if len(data) - pos < 2 or data[pos : pos + 2] != b"\r\n":
        return None
    return data[start:pos] or None
