"""The TCP byte relay: two sockets, two pumps, no byte lost or reordered.

Each direction is a `Pump` that reads its source socket only while nothing it read earlier is still
waiting to be written to its destination. That one rule gives the core guarantees of the original rsp fix:
- no byte is dropped when the destination is slower (EAGAIN leaves the rest in `pending`, flushed when the
  destination becomes writable, and the source is not read meanwhile: backpressure);
- user-space memory per direction is bounded by one read (`read_size`, the configured high-water mark);
  the kernel's socket buffers carry the flow while we wait, so resuming at zero pending costs no throughput;
- a side is shut down (`SHUT_WR`, propagating a half-close) or closed only after everything queued for it
  has been written.

Small reads go through one process-wide buffer with `recv_into` + `send` (no allocation unless the peer is
slow). When a read fills `SPLICE_SWITCH_BYTES` the direction switches to `os.splice` through its own pipe:
the bytes then move socket -> pipe -> socket inside the kernel, never entering Python.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Final

from rsp.logs import get_logger
from rsp.transport.poller import Io, Watcher, io_for

# A read at least this large means a bulk transfer, where splice's zero-copy path wins; below it the two
# extra fds and the pipe set-up cost more than the copy saves (splice does not help small messages: see
# docs/performance.md).
SPLICE_SWITCH_BYTES: Final = 64 * 1024
# Pipe capacity for spliced directions: the size that made 1 MiB bodies cheapest, cheaper than copying
# (see docs/performance.md); it is kernel memory, not counted in our RSS, and within the default
# pipe-max-size.
SPLICE_PIPE_SIZE: Final = 1024 * 1024
F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPLICE_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
SPLICE_AVAILABLE: Final = hasattr(os, "splice")

# Errors that mean "the peer went away": logged briefly, never raised.
PEER_GONE: Final = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT,
                              errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH})


class SharedBuffer:
    """One read buffer for every relay of a process: the loop is single-threaded, and a read is
    written out (or copied to `pending`) before the next read happens."""

    __slots__ = ("buf", "view")

    def __init__(self, size: int) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)


class Pump(Watcher):
    """One direction: read `src`, write `dst`."""

    __slots__ = ("_splice_ok", "bytes", "dst", "dst_fd", "eof", "finished", "io", "loop", "name", "pending",
                 "pipe_r", "pipe_w", "piped", "read_size", "reading", "relay", "shared", "src", "src_fd",
                 "writing")

    def __init__(self, relay: Relay, src: socket.socket, dst: socket.socket, name: str,
                 shared: SharedBuffer, read_size: int, splice_ok: bool) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.io = relay.io
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.name = name
        self.shared = shared
        self.read_size = read_size
        self.pending: memoryview | None = None
        self.pipe_r = -1
        self.pipe_w = -1
        self.piped = 0
        self.bytes = 0
        self.eof = False
        self.finished = False
        self.reading = False
        self.writing = False
        self._splice_ok = splice_ok

    # -- state helpers -------------------------------------------------------------------------------
    def has_pending(self) -> bool:
        return self.pending is not None or self.piped > 0

    def preload(self, data: bytes) -> None:
        """Bytes read from the source before the relay began (a peeked TLS ClientHello, for SNI routing):
        they are written first, and the source is read once they are."""
        self.pending = memoryview(data)
        self._wait_writable()

    def start_reading(self) -> None:
        if not self.reading and not self.eof:
            self.reading = True
            self.io.add_reader(self.src_fd, self)

    def stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.io.remove_reader(self.src_fd)

    def _wait_writable(self) -> None:
        self.stop_reading()
        if not self.writing:
            self.writing = True
            self.io.add_writer(self.dst_fd, self)

    def _stop_writing(self) -> None:
        if self.writing:
            self.writing = False
            self.io.remove_writer(self.dst_fd)

    # -- reading -------------------------------------------------------------------------------------
    def on_readable(self) -> None:
        try:
            self._readable()
        except Exception as exc:  # a bug must not leave a level-triggered fd spinning the loop
            self.relay.internal_error(exc)

    def on_writable(self) -> None:
        try:
            self._writable()
        except Exception as exc:
            self.relay.internal_error(exc)

    def _readable(self) -> None:
        if self.pipe_w >= 0:
            self._splice_in()
            return
        shared = self.shared
        try:
            n = self.src.recv_into(shared.buf, self.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.relay.failed(self, self.src, exc)
            return
        if n == 0:
            self._on_eof()
            return
        self.bytes += n
        self.relay.activity += 1
        try:
            sent = self.dst.send(shared.view[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.relay.failed(self, self.dst, exc)
            return
        if sent < n:
            # Copy out of the shared buffer: the next read of any relay reuses it.
            self.pending = memoryview(shared.view[sent:n].tobytes())
            self._wait_writable()
        elif n >= SPLICE_SWITCH_BYTES and self._splice_ok:
            self._enable_splice()

    def _on_eof(self) -> None:
        self.eof = True
        self.stop_reading()
        if not self.has_pending():
            self._finish()

    def _finish(self) -> None:
        """Everything from src reached dst: propagate the half-close (RFC 9293 §3.6 FIN)."""
        self.finished = True
        self._stop_writing()
        if not self.relay.closing:
            try:
                self.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the peer is already gone; the other direction will notice
        self.relay.direction_finished()

    # -- writing -------------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.piped:
            drained = self._splice_out()
        else:
            pending = self.pending
            if pending is None:
                drained = True
            else:
                try:
                    sent = self.dst.send(pending)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    self.relay.failed(self, self.dst, exc)
                    return
                self.relay.activity += 1
                if sent < len(pending):
                    self.pending = pending[sent:]
                    return
                self.pending = None
                drained = True
        if not drained:
            return
        self._stop_writing()
        if self.relay.closing:
            self.relay.pending_flushed()
        elif self.eof:
            self._finish()
        else:
            self.start_reading()

    # -- splice --------------------------------------------------------------------------------------
    def _enable_splice(self) -> None:
        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self._splice_ok = False
            return
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, SPLICE_PIPE_SIZE)
        except OSError:
            pass  # keep the default 64 KiB pipe: still zero-copy, just smaller steps
        self.pipe_r, self.pipe_w = r, w

    def _splice_in(self) -> None:
        try:
            n = os.splice(self.src_fd, self.pipe_w, SPLICE_PIPE_SIZE, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # socket type the kernel cannot splice: fall back to copying
                self._disable_splice()
                return
            self.relay.failed(self, self.src, exc)
            return
        if n == 0:
            self._on_eof()
            return
        self.bytes += n
        self.piped += n
        self.relay.activity += 1
        if not self._splice_out() and not self.relay.closing:
            self._wait_writable()

    def _splice_out(self) -> bool:
        """Move the pipe's bytes to dst; True when the pipe is empty. On a write error the relay starts
        closing (callers check `relay.closing`)."""
        while self.piped:
            try:
                m = os.splice(self.pipe_r, self.dst_fd, self.piped, flags=_SPLICE_FLAGS)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                self.relay.failed(self, self.dst, exc)
                return False
            self.piped -= m
            self.relay.activity += 1
        return True

    def _disable_splice(self) -> None:
        self._splice_ok = False
        self.close_pipe()

    def close_pipe(self) -> None:
        if self.pipe_r >= 0:
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            self.pipe_r = self.pipe_w = -1

    def drop_pending(self) -> None:
        self.pending = None
        self.piped = 0
        self._stop_writing()

    def stop(self) -> None:
        self.stop_reading()
        self._stop_writing()
        self.close_pipe()


class Relay:
    """A client socket and an upstream socket joined by two pumps."""

    __slots__ = ("activity", "c2u", "client", "closed", "closing", "idle_seen", "idle_ticks", "info", "io",
                 "loop", "on_closed", "peer", "reason", "u2c", "upstream")

    def __init__(self, loop: asyncio.AbstractEventLoop, client: socket.socket, upstream: socket.socket,
                 shared: SharedBuffer, read_size: int, on_closed: Callable[[Relay], None],
                 info: object = None, peer: tuple[object, ...] = ()) -> None:
        self.loop = loop
        self.io: Io = io_for(loop)
        self.peer = peer  # the client's address, for log lines after the socket is gone
        self.client = client
        self.upstream = upstream
        self.on_closed = on_closed
        self.info = info  # owner's context (e.g. the backend record), untouched here
        self.activity = 0
        self.idle_seen = 0
        self.idle_ticks = 0
        self.closing = False
        self.closed = False
        self.reason = ""
        self.c2u = Pump(self, client, upstream, "client->backend", shared, read_size, SPLICE_AVAILABLE)
        self.u2c = Pump(self, upstream, client, "backend->client", shared, read_size, SPLICE_AVAILABLE)

    def start(self, preface: bytes = b"") -> None:
        """Start both directions; `preface` (bytes already read from the client) goes to the backend first."""
        if preface:
            self.c2u.preload(preface)
        else:
            self.c2u.start_reading()
        self.u2c.start_reading()

    @property
    def bytes_in(self) -> int:
        return self.c2u.bytes

    @property
    def bytes_out(self) -> int:
        return self.u2c.bytes

    def direction_finished(self) -> None:
        if self.c2u.finished and self.u2c.finished:
            self.close("done")

    def failed(self, pump: Pump, dead: socket.socket, exc: OSError) -> None:
        """`dead` raised `exc`: stop reading everything, flush what is owed to the live side, then close."""
        if self.closing:
            if pump.dst is dead:
                pump.drop_pending()
                self.pending_flushed()
            return
        side = "client" if dead is self.client else "backend"
        what = errno.errorcode.get(exc.errno or 0, str(exc)) if exc.errno in PEER_GONE else str(exc)
        self.begin_close(f"{side} {what}", dead)

    def internal_error(self, exc: Exception) -> None:
        get_logger().error("relay error, closing the connection: %r", exc, exc_info=exc)
        self.close(f"internal error: {exc!r}")

    def begin_close(self, reason: str, dead: socket.socket | None = None) -> None:
        """Stop reading; deliver bytes already read to any side still alive; then close both."""
        if self.closing:
            return
        self.closing = True
        self.reason = reason
        for pump in (self.c2u, self.u2c):
            pump.stop_reading()
            if pump.dst is dead:
                pump.drop_pending()
        self.pending_flushed()

    def pending_flushed(self) -> None:
        if self.closing and not self.c2u.has_pending() and not self.u2c.has_pending():
            self.close(self.reason)

    def close(self, reason: str) -> None:
        """Close both sockets now. Callers have flushed what they owe; the kernel sends what it holds."""
        if self.closed:
            return
        self.closed = True
        self.closing = True
        self.reason = reason
        self.c2u.stop()
        self.u2c.stop()
        self.client.close()
        self.upstream.close()
        self.on_closed(self)
