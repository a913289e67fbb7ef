"""Non-blocking upstream connect with a timeout, reported through one callback.

No coroutine or Task per connection: a socket, `connect_ex`, a writer callback and one timer.
Connection refused or timed out is an expected outcome (an event), not an exception.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable

ConnectDone = Callable[[socket.socket | None, str], None]


class UpstreamConnect:
    """One connection attempt. Calls `on_done(sock, "")` on success, `on_done(None, reason)` on failure."""

    __slots__ = ("done", "fd", "loop", "on_done", "sock", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, family: int, sockaddr: tuple[object, ...],
                 timeout: float, on_done: ConnectDone) -> None:
        self.loop = loop
        self.on_done = on_done
        self.done = False
        self.timer: asyncio.TimerHandle | None = None
        # SOCK_NONBLOCK at creation: Python then treats the socket as non-blocking without an ioctl.
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        self.sock = sock
        self.fd = sock.fileno()
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(sockaddr)
        if err in (errno.EINPROGRESS, errno.EAGAIN):
            # On loopback (and often on a LAN) the handshake has finished by now: the SYN/SYN-ACK were
            # processed in this very call's softirq. Asking costs two cheap syscalls; waiting for
            # writability costs a poll handle (ioctl + epoll_ctl calls) and a loop turn (see
            # docs/performance.md, "New connections").
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                try:
                    sock.getpeername()
                except OSError:
                    loop.add_writer(self.fd, self._on_writable)
                    self.timer = loop.call_later(timeout, self._on_timeout)
                    return
            loop.call_soon(self._finish, err)
        else:
            # Immediate success or failure: report on the next loop turn so callers never re-enter.
            loop.call_soon(self._finish, err)

    def _on_writable(self) -> None:
        self.loop.remove_writer(self.fd)
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._finish(err)

    def _on_timeout(self) -> None:
        self.loop.remove_writer(self.fd)
        self.timer = None
        self._finish(errno.ETIMEDOUT, "connect timeout")

    def _finish(self, err: int, reason: str = "") -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if err == 0:
            self.on_done(self.sock, "")
            return
        self.sock.close()
        self.on_done(None, reason or os.strerror(err).lower())

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            self.loop.remove_writer(self.fd)
            if self.timer is not None:
                self.timer.cancel()
            self.sock.close()
