"""What haproxy-py says it is: the HAProxy release it follows and the features it has.

Tools parse `-v`/`-vv` output for "HAProxy version X.Y" and for the feature and service lists, so
the lines keep HAProxy's shape while naming haproxy-py.
"""

from __future__ import annotations

import platform

HAPROXY_VERSION = "2.6.12"
PY_VERSION = "0.1.0"
RELEASE_DATE = "2026/11/21"
FULL_VERSION = f"{HAPROXY_VERSION}-haproxy-py-{PY_VERSION}"

# Build features as `-vv` lists them (and `feature(NAME)` tests them).
FEATURES_ENABLED = frozenset({"LINUX_SPLICE", "GETADDRINFO", "PROMEX"})
FEATURES_DISABLED = ("OPENSSL", "LUA", "QUIC", "ZLIB", "SLZ", "PCRE", "PCRE2", "SYSTEMD")
# Services for `http-request use-service`.
SERVICES: tuple[str, ...] = ("prometheus-exporter",)


def version_lines() -> list[str]:
    return [
        f"HAProxy version {FULL_VERSION} {RELEASE_DATE} - haproxy-py, a HAProxy-compatible load balancer in Python",
        "Status: development branch - not for production use yet.",
        "Known bugs: none listed",
        f"Running on: {platform.system()} {platform.release()} {platform.version()} {platform.machine()}",
    ]


def build_lines() -> list[str]:
    features = " ".join([f"+{f}" for f in sorted(FEATURES_ENABLED)] + [f"-{f}" for f in FEATURES_DISABLED])
    return version_lines() + [
        "Build options :",
        f"  PYTHON={platform.python_version()} ({platform.python_implementation()})",
        "",
        f"Feature list : {features}",
        "",
        "Available polling systems :",
        "      epoll : pref=300,  test result OK (through trio)",
        "",
        f"Available services : {' '.join(SERVICES) if SERVICES else 'none'}",
        "",
        "Available filters : none",
    ]
