"""A log destination that never blocks the process writing to it: a file, or stdout/stderr whatever they are.

A proxy that blocks on a log write stops serving every connection it holds; a lost log line costs less.
So each sink writes without blocking (a file never blocks in that sense; a pipe or a tty is reopened through
/proc/self/fd with its own O_NONBLOCK, so the shared descriptor's flags stay as the parent set them; a socket,
as journald's stdout is, gets MSG_DONTWAIT sends). What cannot be written at once waits in a bounded buffer,
retried on the next write; past the bound whole lines are dropped and counted, and once the sink drains a
line says how many were lost.

`reopen_all()` reopens every file sink (SIGUSR1 after logrotate moved the files away), like nginx's USR1.
"""

from __future__ import annotations

import os
import socket
import stat
import weakref
from collections.abc import Callable
from typing import Final

# What may wait for a slow sink: a few seconds of a busy proxy's access log. Past it, lines are dropped.
MAX_PENDING_BYTES: Final = 1024 * 1024
FILE_MODE: Final = 0o644

_SINKS: weakref.WeakSet[LogSink] = weakref.WeakSet()


def _dropped_notice(count: int) -> str:
    return f"rsp: {count} log line(s) dropped: the log destination was not keeping up\n"


class LogSink:
    __slots__ = ("__weakref__", "_fd", "_notice", "_pending", "_sock", "_std_fd", "dropped", "path", "reported")

    def __init__(self, path: str, std_fd: int, notice: Callable[[int], str] = _dropped_notice) -> None:
        """`path` "" writes to `std_fd` (1: stdout, 2: stderr)."""
        self.path = path
        self._std_fd = std_fd
        self._notice = notice
        self._fd = -1
        self._sock: socket.socket | None = None
        self._pending = bytearray()
        self.dropped = 0  # lines dropped so far
        self.reported = 0  # of which a notice already told
        self._open()
        _SINKS.add(self)

    def _open(self) -> None:
        if self.path:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            return
        mode = os.fstat(self._std_fd).st_mode
        if stat.S_ISSOCK(mode):
            self._sock = socket.socket(fileno=os.dup(self._std_fd))
            return
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            try:
                self._fd = os.open(f"/proc/self/fd/{self._std_fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                return
            except OSError:
                pass  # no /proc: the shared descriptor, which may block
        self._fd = os.dup(self._std_fd)

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        if len(self._pending) + len(data) > MAX_PENDING_BYTES:
            self._flush()
            if len(self._pending) + len(data) > MAX_PENDING_BYTES:
                self.dropped += max(1, text.count("\n"))
                return
        self._pending += data
        self._flush()

    def flush(self) -> None:
        """Retry what waits (the server's tick calls this through the access log)."""
        if self._pending or self.dropped > self.reported:
            self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                written = self._write(self._pending)
            except BlockingIOError:
                return
            except OSError:
                # A full disk, a closed pipe: what waits is lost, the proxy goes on.
                self.dropped += max(1, self._pending.count(b"\n"))
                self._pending.clear()
                return
            del self._pending[:written]
        if self.dropped > self.reported:
            lost = self.dropped - self.reported
            self.reported = self.dropped
            self._pending += self._notice(lost).encode()
            self._flush()

    def _write(self, data: bytearray) -> int:
        if self._sock is not None:
            return self._sock.send(data, socket.MSG_DONTWAIT)
        return os.write(self._fd, data)

    def reopen(self) -> None:
        """Open the file again by its name (after a rotation); stdout and stderr stay as they are."""
        if not self.path:
            return
        old = self._fd
        self._open()
        if old >= 0:
            os.close(old)

    def close(self) -> None:
        self._flush()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        elif self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        _SINKS.discard(self)


def reopen_all() -> list[str]:
    """Reopen every file sink of this process; returns the paths that could not be reopened, with why."""
    failed: list[str] = []
    for sink in list(_SINKS):
        try:
            sink.reopen()
        except OSError as exc:
            failed.append(f"{sink.path}: {exc.strerror or exc}")
    return failed
