"""`pid_file = "/run/rsp.pid"`: the master's pid, for `kill -HUP $(cat /run/rsp.pid)` and systemd's PIDFile.

Written as start begins (before the `Started` lines, so whoever sees them finds the file), by rename over the
old one so that a reader never sees half a number; removed when rsp exits (a failed start too), only if it
still names this process (a second rsp's file is not ours to remove). A leaf: imports nothing of rsp but errors.
"""

from __future__ import annotations

import contextlib
import os

from rsp.errors import StartupError
from rsp.proctitle import MASTER_PREFIX, title_of


def write_pid_file(path: str, pid: int | None = None) -> None:
    pid = os.getpid() if pid is None else pid
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StartupError(f"cannot write pid_file {path}: {exc.strerror or exc}") from exc


def read_pid_file(path: str) -> int | None:
    """The pid the file names, or None when it is missing, unreadable or not a number."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def remove_pid_file(path: str, pid: int | None = None) -> None:
    """Remove `path` if it names `pid` (this process by default)."""
    if read_pid_file(path) == (os.getpid() if pid is None else pid):
        with contextlib.suppress(OSError):
            os.unlink(path)


def running_master(path: str) -> int | None:
    """The pid in `path` if it is a live rsp master (its title says so), else None: a stale file, or a pid
    reused by another program, names no rsp."""
    pid = read_pid_file(path)
    if pid is None or pid == os.getpid():
        return None
    return pid if title_of(pid).startswith(MASTER_PREFIX) else None
