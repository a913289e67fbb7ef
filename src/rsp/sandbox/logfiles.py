"""An app's stdout and stderr, captured to a file bounded in size.

rsp reads the app's output pipe on its event loop and appends to `NAME.log`; when the file reaches
`max_bytes` it becomes `NAME.log.1` (replacing the previous one) and a new file starts, so an app never uses
more than twice `max_bytes` of disk, like logrotate's `size` with `rotate 1`.
"""

from __future__ import annotations

import os
from typing import Final

# One read of the pipe: its default capacity on Linux.
READ_SIZE: Final = 65536
# What is kept in memory of an app's latest output, for the lines rsp logs when it exits early.
RECENT_BYTES: Final = 4096


class RotatingLog:
    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.recent = bytearray()  # the last RECENT_BYTES written, for tail() without reading the file
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            return  # closed at stop: output still in the pipe afterwards is dropped
        self.recent += data[-RECENT_BYTES:]
        del self.recent[:-RECENT_BYTES]
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self.rotate()
                continue
            chunk = data[:room]
            os.write(self._fd, chunk)
            self._size += len(chunk)
            data = data[len(chunk):]

    def rotate(self) -> None:
        os.close(self._fd)
        os.replace(self.path, self.path + ".1")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def tail(self, lines: int) -> list[str]:
        """The last `lines` non-empty lines written (from memory: the last RECENT_BYTES), as text."""
        text = self.recent.decode("utf-8", "replace")
        return [line for line in text.splitlines() if line.strip()][-lines:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_log(path: str) -> bytes:
    """The retained output: the rotated file, then the current one."""
    out = b""
    for name in (path + ".1", path):
        try:
            with open(name, "rb") as f:
                out += f.read()
        except FileNotFoundError:
            pass
    return out
