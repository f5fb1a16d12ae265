"""The stats page of a running haproxy-py, rendered by headless Chromium (Debian `chromium`).

A screenshot taken by the test must show the backend's table (HAProxy's table header colour and
the server rows) and the row of a server that failed its checks in HAProxy's DOWN colour (#ff9090,
class `active_down`), the UP one in the UP colour (#c0ffc0). The DOWN colour also exists in the
legend as a small cell, so the test looks for screen lines where that colour covers more than half
the page width, as only a table row (cells separated by thin borders) does.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import urllib.request
import zlib

import pytest

from conftest import LB, free_port, wait_until
from test_prometheus_server import HealthServer, need, need_exporter

DOWN = (0xFF, 0x90, 0x90)  # .active_down
UP = (0xC0, 0xFF, 0xC0)  # .active_up
TITLE = (0x20, 0xD0, 0xD0)  # .titre: the table header rows
PXNAME = (0xB0, 0x00, 0x40)  # th.pxname: the proxy name cell


def read_png(path: str) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB/RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        rgb = bytes(line) if bpp == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3)
        rows.append(rgb)
    return width, height, rows


def coverage(row: bytes, colour: tuple[int, int, int]) -> int:
    """How many pixels of this screen line have exactly `colour`."""
    target = bytes(colour)
    return sum(1 for x in range(0, len(row), 3) if row[x:x + 3] == target)


def rows_with(rows: list[bytes], colour: tuple[int, int, int], min_pixels: int) -> list[int]:
    return [y for y, r in enumerate(rows) if coverage(r, colour) >= min_pixels]


@pytest.fixture
def stats_page():
    need_exporter()  # the HTTP services (stats page and exporter) arrive together
    s1, s2 = HealthServer("s1"), HealthServer("s2")
    s2.stop()  # s2 never answers its checks: DOWN
    port, mon = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="hpy-page-")
    lb = LB(d)
    cfg = ("defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
           f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n"
           f"frontend mon\n    bind 127.0.0.1:{mon}\n    stats enable\n    stats uri /stats\n"
           "backend be\n    option httpchk GET /\n"
           f"    server s1 127.0.0.1:{s1.port} check inter 300ms rise 1 fall 1\n"
           f"    server s2 127.0.0.1:{s2.port} check inter 300ms rise 1 fall 1\n")
    try:
        lb.start(cfg, [port, mon])
        yield {"url": f"http://127.0.0.1:{mon}/stats", "dir": d}
    finally:
        lb.stop()
        s1.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_stats_page_screenshot_shows_backend_table_and_down_row_colour(stats_page) -> None:
    chromium = need("chromium", "chromium")
    url = stats_page["url"]

    def page() -> bytes:
        try:
            with urllib.request.urlopen(url + ";csv", timeout=2) as r:
                return r.read()
        except OSError:
            return b""

    # wait until the checks have run: s2 DOWN, s1 UP (both checked)
    assert wait_until(lambda: b"\nbe,s2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN," in page() and b"be,s1," in page(), 10.0, 0.2), \
        page().decode()[:2000]
    shot = os.path.join(stats_page["dir"], "stats.png")
    profile = tempfile.mkdtemp(prefix="hpy-chromium-")
    try:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={profile}", "--hide-scrollbars", "--force-device-scale-factor=1",
                            "--window-size=1400,900", f"--screenshot={shot}", url],
                           capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert os.path.exists(shot), (r.returncode, r.stderr.decode(errors="replace")[-2000:])
    width, height, rows = read_png(shot)
    assert (width, height) == (1400, 900)
    wide = width // 2  # a table row spans the page width; a legend cell is a few pixels wide
    title_rows = rows_with(rows, TITLE, wide)
    pxname_rows = rows_with(rows, PXNAME, 40)
    down_rows = rows_with(rows, DOWN, wide)
    up_rows = rows_with(rows, UP, wide)
    assert title_rows, "no table header (class titre) in the screenshot"
    assert pxname_rows, "no proxy name header in the screenshot"
    assert up_rows, "the UP server's row is not in HAProxy's UP colour"
    assert down_rows, "the DOWN server's row is not in HAProxy's DOWN colour"
    # s2 is listed after s1 under the backend's header rows
    assert min(title_rows) < min(up_rows) < min(down_rows)
    assert min(down_rows) > min(pxname_rows)
