"""chroot, user and group switching, and the fd limit, applied after binding as HAProxy does."""

from __future__ import annotations

import grp
import os
import pwd
import resource

from haproxy_py.config.model import Global


class PrivilegeError(Exception):
    pass


def fd_limit_for(maxconn: int, listeners: int) -> int:
    """HAProxy's rule of thumb: two fds per connection plus listeners and a margin."""
    return 2 * maxconn + listeners + 64


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE to `wanted` if allowed (never lowers it); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted <= soft:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target) if os.geteuid() == 0 else hard))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def default_maxconn() -> int:
    """maxconn derived from the fd limit when the configuration sets none (HAProxy's figure)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, (soft - 31) // 2)


def resolve_ids(g: Global) -> tuple[int | None, int | None]:
    """The uid and gid to switch to, from names or numbers. Raises PrivilegeError."""
    uid, gid = g.uid, g.gid
    if g.user is not None:
        try:
            pw = pwd.getpwnam(g.user)
        except KeyError:
            raise PrivilegeError(f"[haproxy.main()] Cannot find user id for '{g.user}'") from None
        uid = pw.pw_uid
        if gid is None and g.group is None:
            gid = pw.pw_gid
    if g.group is not None:
        try:
            gid = grp.getgrnam(g.group).gr_gid
        except KeyError:
            raise PrivilegeError(f"[haproxy.main()] Cannot find group id for '{g.group}'") from None
    return uid, gid


def drop(g: Global) -> None:
    """chroot, then setgid/setgroups, then setuid. Raises PrivilegeError with HAProxy's wording."""
    uid, gid = resolve_ids(g)
    if g.chroot:
        try:
            os.chroot(g.chroot)
            os.chdir("/")
        except OSError as e:
            raise PrivilegeError(f"[haproxy.main()] Cannot chroot({g.chroot}) ({e.strerror}).") from None
    if gid is not None and gid != os.getegid():
        try:
            if os.geteuid() == 0:
                os.setgroups([gid])
            os.setgid(gid)
        except OSError:
            raise PrivilegeError(f"[haproxy.main()] Cannot set gid {gid}.") from None
    if uid is not None and uid != os.geteuid():
        try:
            os.setuid(uid)
        except OSError:
            raise PrivilegeError(f"[haproxy.main()] Cannot set uid {uid}.") from None
