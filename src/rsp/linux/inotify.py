"""inotify(7), which Python 3.11 does not expose: a non-blocking descriptor that becomes readable when a
file in a watched directory is created or written, and the names of those files.

Like rsp.linux.syscalls (whose libc handle and errno check it shares), nothing here decides policy, and
failures raise OSError with the C errno. The constants are <sys/inotify.h>'s, stable kernel ABI.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Final

from rsp.linux.syscalls import check, libc

IN_MODIFY: Final = 0x00000002
IN_CREATE: Final = 0x00000100
IN_MOVED_TO: Final = 0x00000080
IN_Q_OVERFLOW: Final = 0x00004000  # events were lost: the reader should look at everything
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC
# struct inotify_event: int wd; uint32_t mask, cookie, len; char name[len] (NUL-padded).
_EVENT: Final = struct.Struct("iIII")
# One read takes at most this much (events not read stay for the next read: the descriptor stays readable).
READ_SIZE: Final = 64 * 1024

_init1 = libc.inotify_init1
_init1.argtypes = [ctypes.c_int]
_init1.restype = ctypes.c_int
_add_watch = libc.inotify_add_watch
_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_add_watch.restype = ctypes.c_int


def watch_directory(path: str, mask: int = IN_CREATE | IN_MODIFY | IN_MOVED_TO) -> int:
    """A non-blocking, close-on-exec inotify descriptor watching `path` for `mask` (the caller closes it)."""
    fd = check(_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
    try:
        check(_add_watch(fd, os.fsencode(path), mask), f"inotify_add_watch {path}")
    except OSError:
        os.close(fd)
        raise
    return fd


def read_names(fd: int) -> tuple[set[str], bool]:
    """The names of the files the events waiting on `fd` are about, and whether events were lost (the queue
    overflowed); empty when none wait."""
    try:
        data = os.read(fd, READ_SIZE)
    except BlockingIOError:
        return set(), False
    names: set[str] = set()
    lost = False
    at = 0
    while at + _EVENT.size <= len(data):
        _, mask, _, length = _EVENT.unpack_from(data, at)
        at += _EVENT.size
        if mask & IN_Q_OVERFLOW:
            lost = True
        if length:
            names.add(data[at:at + length].rstrip(b"\0").decode("ascii", "replace"))
        at += length
    return names, lost
