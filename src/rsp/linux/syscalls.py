"""Linux syscalls Python 3.11 does not expose: unshare, setns, mount, umount2, prctl, fallocate's hole punching.

This module and its package are the only place rsp imports ctypes (docs/architecture.md). Every wrapper
raises `OSError` with the C errno (so callers test `exc.errno == errno.EPERM` as with any `os` call);
nothing here decides policy. The constants are the values of <linux/sched.h>, <linux/mount.h> and
<linux/prctl.h>, stable kernel ABI.
"""

from __future__ import annotations

import ctypes
import os
import socket
from typing import Final

# clone(2) / unshare(2) / setns(2) namespace flags (<linux/sched.h>).
CLONE_NEWNS: Final = 0x00020000
CLONE_NEWCGROUP: Final = 0x02000000
CLONE_NEWUTS: Final = 0x04000000
CLONE_NEWIPC: Final = 0x08000000
CLONE_NEWUSER: Final = 0x10000000
CLONE_NEWPID: Final = 0x20000000
CLONE_NEWNET: Final = 0x40000000

# mount(2) flags (<linux/mount.h>).
MS_RDONLY: Final = 1
MS_NOSUID: Final = 2
MS_NODEV: Final = 4
MS_NOEXEC: Final = 8
MS_REMOUNT: Final = 32
MS_BIND: Final = 4096
MS_REC: Final = 16384
MS_PRIVATE: Final = 1 << 18
MS_SLAVE: Final = 1 << 19
MS_SHARED: Final = 1 << 20

# umount2(2) flags.
MNT_FORCE: Final = 1
MNT_DETACH: Final = 2

# prctl(2) options (<linux/prctl.h>).
PR_SET_PDEATHSIG: Final = 1
PR_SET_CHILD_SUBREAPER: Final = 36

# The namespace kinds as /proc/PID/ns/ names them, with their setns flag.
NAMESPACE_FLAGS: Final[dict[str, int]] = {
    "mnt": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET,
}

# CDLL(None) is the process's own symbol table, which includes libc's; no library search (find_library
# runs ldconfig) and no libc file name assumed.
libc = ctypes.CDLL(None, use_errno=True)

_unshare = libc.unshare
_unshare.argtypes = [ctypes.c_int]
_unshare.restype = ctypes.c_int

_setns = libc.setns
_setns.argtypes = [ctypes.c_int, ctypes.c_int]
_setns.restype = ctypes.c_int

_mount = libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_mount.restype = ctypes.c_int

_umount2 = libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_umount2.restype = ctypes.c_int

_prctl = libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def check(result: int, what: str) -> int:
    """`result` of a libc call, or OSError with its errno when it failed (libc returns -1 and sets errno)."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _path(value: str | bytes | None) -> bytes | None:
    if value is None:
        return None
    return os.fsencode(value)


def unshare(flags: int) -> None:
    """unshare(2): move the calling process into new namespaces (CLONE_NEWPID affects its children only)."""
    check(_unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace `fd` refers to (an open /proc/PID/ns/KIND); nstype 0 accepts any kind."""
    check(_setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def mount(source: str | bytes | None, target: str | bytes, fstype: str | bytes | None = None,
          flags: int = 0, data: str | bytes | None = None) -> None:
    """mount(2). `source`, `fstype` and `data` may be None (as for a propagation change)."""
    check(_mount(_path(source), _path(target), _path(fstype), flags, _path(data)),
           f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x})")


def umount2(target: str | bytes, flags: int = 0) -> None:
    """umount2(2); MNT_DETACH detaches now and frees the mount once nothing uses it."""
    check(_umount2(_path(target), flags), f"umount2({target!r}, {flags:#x})")


def sethostname(name: str) -> None:
    """sethostname(2), in the caller's UTS namespace (the standard library has it; here for one import)."""
    socket.sethostname(name)


def set_parent_death_signal(signo: int) -> None:
    """prctl(PR_SET_PDEATHSIG): `signo` is sent to the caller when the thread that forked it exits.

    The caller must check `os.getppid()` afterwards: a parent that died before the call sends nothing.
    """
    check(_prctl(PR_SET_PDEATHSIG, signo, 0, 0, 0), f"prctl(PR_SET_PDEATHSIG, {signo})")


def set_child_subreaper(on: bool = True) -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to the caller, not to init."""
    check(_prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def enter_namespace(path: str, nstype: int = 0) -> None:
    """setns into the namespace file `path` (/proc/PID/ns/net, /run/netns/NAME, ...)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


# fallocate(2) modes (<linux/falloc.h>).
FALLOC_FL_KEEP_SIZE: Final = 1
FALLOC_FL_PUNCH_HOLE: Final = 2

_fallocate = libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_fallocate.restype = ctypes.c_int


def punch_hole(fd: int, offset: int, length: int) -> None:
    """fallocate(PUNCH_HOLE | KEEP_SIZE): free `length` bytes of the file from `offset` (they read as zeros; the
    file's size stays). tmpfs, ext4, xfs and btrfs support it; others raise OSError(EOPNOTSUPP)."""
    check(_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length),
           f"fallocate(PUNCH_HOLE, {offset}, {length})")
