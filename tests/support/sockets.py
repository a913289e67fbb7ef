"""Socket helpers shared by the in-process transport tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    """A connected Unix socket pair, both ends non-blocking (what the loop's watchers expect)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections while the block lasts: bound and never listening, so nothing started
    meanwhile (this test's own listener, another suite's server) can take it, as it could take a port
    free_port() found free and let go."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
