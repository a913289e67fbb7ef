"""Listening sockets and the accept loop.

Accepting is done by hand on a non-blocking socket (not `loop.create_server`) so that an accepted
connection is a plain socket that the relay (TCP mode) or a SocketStream (HTTP mode) uses directly, with no
Transport, Task or Future per connection.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Final

from rsp.errors import StartupError
from rsp.logs import get_logger
from rsp.transport.poller import Poller, Watcher, io_for

# Linux caps the backlog at net.core.somaxconn (4096 on current kernels); nginx uses 511, HAProxy
# defaults to maxconn. 4096 lets an `ab -c100` burst queue without SYN drops.
LISTEN_BACKLOG: Final = 4096
# Accept at most this many connections per readiness event so that a connection storm on one listener
# cannot starve relays of loop time (nginx's multi_accept off/on trade-off, bounded).
ACCEPT_BATCH: Final = 64

AcceptHandler = Callable[[socket.socket, tuple[object, ...]], None]


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind and listen, raising StartupError with a message a person can act on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Listen on v6 only: "::" and "0.0.0.0" are separate listeners, as in nginx (ipv6only=on).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Linux copies TCP_NODELAY from a listening socket to the sockets it accepts (inet_csk_clone_lock
        # copies the socket's flags), which saves a setsockopt per connection. Set before listen(), so no
        # connection queued before the workers start (a reload, a health probe) predates it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        what = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        shown = f"[{host}]" if ":" in host else host
        raise StartupError(f"cannot listen on {shown}:{port}: {what}", errno=exc.errno or 0) from exc
    return sock


def accepted_socket(family: int, kind: int, proto: int, fd: int) -> socket.socket:
    """The socket object of an accepted descriptor: the C type `_socket.socket`, not socket.py's subclass,
    whose __init__ and close() are interpreted Python run once per connection (~9,700 instructions per
    connection, docs/performance.md "New connections"). It has every method rsp calls on an accepted socket
    (recv_into, send, sendmsg, shutdown, getsockopt, setblocking, fileno, close); what the subclass adds
    (makefile, sendfile, enum-valued family and type, the context manager) is never used on one."""
    return _socket.socket(family, kind, proto, fd)  # type: ignore[return-value]


# Acceptor.nodelay: not known yet, inherited from the listener, or to be set on each connection.
NODELAY_UNKNOWN: Final = 0
NODELAY_INHERITED: Final = 1
NODELAY_SET_EACH: Final = 2


class Acceptor(Watcher):
    """Accepts connections from one listening socket and hands each to `handler`."""

    __slots__ = ("active", "fd", "handler", "io", "kind", "loop", "nodelay", "sock")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, handler: AcceptHandler) -> None:
        self.loop = loop
        self.io = io_for(loop)
        self.sock = sock
        self.fd = sock.fileno()
        self.handler = handler
        self.active = False
        # The accepted sockets' family, type and protocol, as plain ints (socket.socket's properties
        # convert them to enums on every read).
        self.kind = (int(sock.family), int(sock.type), sock.proto)
        # TCP_NODELAY on the listener (bind_listener sets it before listen(); set again here for a listener
        # made elsewhere): whether accepted sockets inherited it is checked on the first connection
        # (NODELAY_UNKNOWN), and if not, every connection gets its own setsockopt.
        self.nodelay = NODELAY_UNKNOWN
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.nodelay = NODELAY_SET_EACH

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self.active = True
        io = self.io
        if isinstance(io, Poller):
            io.add_exclusive_reader(self.fd, self)  # one worker woken per connection, not every worker
        else:
            io.add_reader(self.fd, self)

    def stop(self) -> None:
        """Stop accepting and close the listening socket (queued, unaccepted connections are reset)."""
        if self.active:
            self.active = False
            self.io.remove_reader(self.fd)
        self.sock.close()

    def on_readable(self) -> None:
        # The C-level accept and socket object: socket.socket.accept() is interpreted Python around them.
        accept = self.sock._accept  # type: ignore[attr-defined]
        family, kind, proto = self.kind
        handler = self.handler
        for _ in range(ACCEPT_BATCH):
            try:
                fd, addr = accept()
                conn = accepted_socket(family, kind, proto, fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # EMFILE/ENFILE/ENOBUFS: out of resources. Log and let the next readiness event retry;
                # the connection stays queued in the kernel meanwhile.
                get_logger().error("accept failed on port %s: %s", self.port, exc.strerror or exc)
                return
            conn.setblocking(False)
            if self.nodelay != NODELAY_INHERITED:
                self._set_nodelay(conn)
            handler(conn, addr)

    def _set_nodelay(self, conn: socket.socket) -> None:
        if self.nodelay == NODELAY_UNKNOWN:
            inherited = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            self.nodelay = NODELAY_INHERITED if inherited else NODELAY_SET_EACH
            if inherited:
                return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
