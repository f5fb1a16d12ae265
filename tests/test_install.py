"""`make install` puts a working command, the init script, the unit and a sample config in place."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_make_install_into_destdir(tmp_path) -> None:
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/opt/hpy", f"PYTHON={sys.executable}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    exe = dest / "opt/hpy/bin/haproxy-py"
    init = dest / "etc/init.d/haproxy-py"
    cfg = dest / "etc/haproxy-py/haproxy.cfg"
    unit = dest / "lib/systemd/system/haproxy-py.service"
    for path in (exe, init, cfg, unit):
        assert path.exists(), path
    assert os.access(exe, os.X_OK) and os.access(init, os.X_OK)
    assert "BIN=${BIN:-/opt/hpy/bin/haproxy-py}" in init.read_text()
    assert "/opt/hpy/bin/haproxy-py" in unit.read_text()
    # the wrapper points at PREFIX; under DESTDIR the package is found through PYTHONPATH instead
    env = dict(os.environ, PYTHONPATH=str(dest / "opt/hpy/lib/haproxy-py"))
    r = subprocess.run([str(exe), "-c", "-f", str(cfg)], capture_output=True, text=True, env=env, timeout=60,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "Configuration file is valid" in r.stdout
