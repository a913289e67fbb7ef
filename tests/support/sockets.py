"""Socket helpers shared by the in-process transport tests."""

from __future__ import annotations

import socket


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    """A connected Unix socket pair, both ends non-blocking (what the loop's watchers expect)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b
