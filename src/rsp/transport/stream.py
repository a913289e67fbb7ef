"""A byte stream over a raw non-blocking socket: the part of asyncio's Transport that HTTP mode uses.

Why not uvloop's transports: compiled (native_modules.txt), the protocols call this class's methods as
native calls, where every call into a uvloop transport goes through Python's generic method lookup; reads
and writes are `recv`/`send` on the socket, with no per-read buffer juggling in between, and a new backend
connection needs no Task. Together that costs less user CPU per request than uvloop's transports (see
docs/performance.md).

The contract is asyncio's (https://docs.python.org/3/library/asyncio-protocol.html), for the methods
listed here:
- the protocol gets `data_received(bytes)` for each read, `eof_received()` once when the peer shuts its
  side (returning a true value keeps our side open: half-close), and `connection_lost(exc)` exactly once,
  from a later loop iteration, after close()/abort() or a socket error;
- `write()` sends at once when nothing is queued and queues the rest; above the high-water mark the
  protocol gets `pause_writing()`, below the low-water mark `resume_writing()`;
- `close()` sends what is queued, then closes; `abort()` drops it; `write_eof()` shuts our side after
  what is queued;
- `pause_reading()`/`resume_reading()` stop and restart reads (bounded memory, backpressure).
A bug in a protocol callback closes that stream (logged) instead of leaving a level-triggered descriptor
spinning the loop.

One implementation for both byte sources: readiness, flow control (write-buffer marks, pause/resume
reading), half-close ("close once both directions have ended") and close after flush live here, once.
rsp.transport.tls_stream.TlsStream derives from SocketStream and replaces only where bytes come from and
go to (`_receive`, `write`: through OpenSSL's memory BIOs) and what ends a direction on the wire
(`_ending`: close_notify). The hooks are native method calls when compiled (one per read, none per byte).

Two ways to hear of readiness (rsp.transport.poller): on rsp's own loop the socket is watched
edge-triggered (`on_edge`: registered once, read until a short read, EAGAIN or end of data, at most
MAX_EDGE_READS per edge, the rest deferred to the next iteration; a pause only stops reading, and a resume
defers a read if an edge came meanwhile); on any other asyncio loop it uses add_reader/add_writer,
level-triggered (`on_readable`/`on_writable`, one read per event).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import ClassVar, Final, Protocol, cast, final

from rsp.logs import get_logger
from rsp.transport.poller import EDGE_HANGUP, EDGE_READ, EDGE_WRITE, Poller, Watcher, io_for

# One read takes at most this much: a small message is one read, and a 1 MiB body is 16 reads, each
# passed on before the next (the kernel's socket buffer holds the rest meanwhile).
READ_SIZE: Final = 64 * 1024
# Reads per edge before the other sockets get their turn (the rest is read in the next iteration): 1 MiB.
MAX_EDGE_READS: Final = 16
# asyncio's default write-buffer limits (selector_events.py), used until set_write_buffer_limits().
DEFAULT_HIGH_WATER: Final = 64 * 1024
DEFAULT_LOW_WATER: Final = 16 * 1024
# sendmsg() refuses more than IOV_MAX pieces (EMSGSIZE): Linux's is 1024 (asyncio caps the same way).
MAX_IOV: Final = 1024


class StreamProtocol(Protocol):
    """What a stream calls: asyncio.Protocol's callbacks."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


# SocketStream._lost when no connection_lost call is waiting.
NOT_LOST: Final = object()
# SocketStream._held of a stream that never holds bytes back: never appended to, only cleared.
NOTHING_HELD: Final[list[bytes]] = []


class NativeProtocol:
    """Base of rsp's compiled protocols (HTTP mode's client and backend connections). The stream calls their
    `data_received` as a native method call; any other protocol's is called as a stored bound method,
    which goes through Python's call protocol and argument parsing on every read."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError


class SocketStream(Watcher):
    """One connected, non-blocking TCP socket driven by the loop's reader/writer callbacks."""

    KIND: ClassVar[str] = "connection"  # how the log names it

    __slots__ = (
        "_buffer",
        "_buffered",
        "_closing",
        "_done",
        "_eof_pending",
        "_eof_ready",
        "_eof_received",
        "_eof_sent",
        "_fd",
        "_hangup",
        "_held",
        "_high",
        "_io",
        "_loop",
        "_lost",
        "_low",
        "_maybe_readable",
        "_native",
        "_on_data",
        "_paused",
        "_peer_ended",
        "_poller",
        "_protocol",
        "_reader",
        "_sock",
        "_watched",
        "_writer",
        "_writing_paused",
        "peer",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamProtocol,
                 peer: tuple[object, ...] = ()) -> None:
        self._loop = loop
        self._io = io_for(loop)
        # On rsp's loop the socket is watched edge-triggered (Poller.watch): registered once, and read
        # until drained on each edge. Elsewhere it uses the loop's level-triggered add_reader/add_writer.
        io = self._io
        self._poller: Poller | None = io if isinstance(io, Poller) else None
        self._maybe_readable = False  # edge mode: an edge came that we have not read to the end yet
        self._watched = False  # edge mode: registered with the poller (see start(speculative=True))
        self._hangup = False  # edge mode: the peer's end of data (or an error) was signalled
        self._sock = sock
        self._fd = sock.fileno()
        # The socket's recv and send are looked up per call, not bound once: two bound methods are 144 bytes
        # that every idle connection would hold, and an accepted socket is the C `_socket.socket`
        # (transport/listener.accepted_socket), whose methods are found in its own type at once.
        self._protocol = protocol
        # Annotated: the narrowed type of `protocol` would be an intersection with StreamProtocol, which
        # mypyc calls through Python's generic method call.
        self._native: NativeProtocol | None = protocol if isinstance(protocol, NativeProtocol) else None
        # Another protocol's data_received is bound once (a stored bound method is a direct call, and it is
        # called per read); a native one's is a native call, and binding it anyway would cost a 72-byte
        # object per connection for nothing. The rare callbacks (end of data, pause, resume, lost) are
        # looked up when they happen: bound here, they were 4 more such objects held by every idle
        # connection (docs/performance.md, "Memory per idle keep-alive connection").
        self._on_data: Callable[[bytes], None] | None = None if self._native is not None else protocol.data_received
        self.peer = peer
        # Bytes for the socket that it has not taken yet; None while there are none (nearly always: a list
        # kept per connection is 56 bytes that every idle connection would hold).
        self._buffer: list[bytes] | None = None
        # Bytes written that the stream has not encrypted yet (TLS: before its handshake, or while the socket
        # is full: rsp.transport.tls_stream); counted in _buffered.
        # A plain stream never holds any: it shares one empty list (a list per connection is 56 bytes that
        # every idle connection would keep), and TlsStream gives itself its own.
        self._held: list[bytes] = NOTHING_HELD
        self._buffered = 0
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_LOW_WATER
        self._reader = False  # reading is on (a reader callback is registered, in level mode)
        self._writer = False  # waiting to write (a writer callback is registered, in level mode)
        self._paused = False  # the protocol asked to stop reading
        self._writing_paused = False  # we told the protocol to stop writing
        self._eof_received = False  # the socket's read side has ended: nothing more is read from it
        self._peer_ended = False  # the protocol was told (eof_received): the peer's direction has ended
        self._eof_pending = False  # write_eof() asked for, sent once the buffer is empty
        # write_eof may shut the socket's write side once the buffer is empty (TLS: once close_notify is queued)
        self._eof_ready = True
        self._eof_sent = False
        self._closing = False
        self._done = False  # the socket is closed and connection_lost is scheduled
        # The argument of the protocol's connection_lost while it waits for the next iteration (NOT_LOST
        # otherwise): see _finish.
        self._lost: object = NOT_LOST

    def start(self, speculative: bool = False) -> None:
        """Tell the protocol it is connected, then start reading.

        `speculative` (an accepted socket, on rsp's poller): read at once, and register with the poller
        only when the stream must wait for the socket -- a read found nothing (EAGAIN) or took all there
        was while reading is still wanted, reading resumes, or a write must wait for room. Most clients
        send their request with the connection, and a client whose last request was read whole and whose
        response leaves in one send is never registered: no epoll_ctl for it (HAProxy reads a new
        connection before it subscribes the same way). A client that sends later costs one recv more.
        """
        self._protocol.connection_made(self)  # type: ignore[arg-type]  # the subset of Transport it uses
        if self._done:
            return
        if self._poller is not None:
            if speculative:
                self._started()
                self._reader = not (self._paused or self._closing or self._eof_received or self._done)
                if self._reader:
                    self._read(MAX_EDGE_READS)
                return
            # Registered even when closing: the queued bytes still need EPOLLOUT edges. Data already
            # waiting is reported by the first epoll_wait (registration checks the current state).
            self._watch()
        self._update_reader()
        self._started()

    @final
    def _watch(self) -> None:
        """Register with the poller (edge mode), once. Registration reports what is already there: data
        waiting raises an edge at the next epoll_wait, as does room to write."""
        poller = self._poller
        if poller is not None and not self._watched:
            self._watched = True
            poller.watch(self._fd, self)

    def _started(self) -> None:
        """After start(): what the byte source does first (TLS: its handshake)."""

    # -- asyncio.Transport, the subset HTTP mode uses -------------------------------------------------
    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "peername":
            return self.peer or default
        if name == "socket":
            return self._sock
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        return default

    def is_closing(self) -> bool:
        return self._closing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = DEFAULT_HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self._paused = True
        self._update_reader()

    def resume_reading(self) -> None:
        self._paused = False
        self._update_reader()

    def write(self, data: bytes) -> None:
        if self._closing or self._eof_pending or len(data) == 0:
            return
        self._send_or_queue(data)

    @final
    def _send_or_queue(self, data: bytes) -> None:
        """Send `data` now if nothing waits before it; queue what the socket does not take."""
        buffer = self._buffer
        if not buffer:
            sent = self._send_now(data, None)
            if sent == len(data) or sent < 0:
                return  # all sent, or the stream failed
            data = data[sent:]
            self._wait_writable()
        if buffer is None:
            self._buffer = [data]
        else:
            buffer.append(data)
        self._grew(len(data))

    @final
    def _send_now(self, data: bytes, parts: list[bytes] | None) -> int:
        """One send: `data`, or `parts` in one sendmsg when given. The bytes the socket took: all, some, or 0
        when it has no room (EAGAIN, EINTR; the caller queues what is left and waits for writability); -1
        when the send failed, which closes the stream (_fail) and leaves the caller nothing to do."""
        try:
            if parts is None:
                return self._sock.send(data)
            return self._sock.sendmsg(parts)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._fail(exc)
            return -1

    @final
    def _wait_writable(self) -> None:
        """The socket did not take everything: flush the rest on its next writable event."""
        if self._poller is None:
            self._io.add_writer(self._fd, self)
        else:
            self._watch()
        self._writer = True  # (edge mode: the socket's next EPOLLOUT edge flushes)

    @final
    def _grew(self, n: int) -> None:
        self._buffered += n
        if self._buffered > self._high and not self._writing_paused:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)

    def writelines(self, parts: list[bytes]) -> None:
        """`parts` in order. With nothing queued they leave in one sendmsg (writev): a response head and a large
        body are one system call, not two, and neither is copied to join them."""
        if self._buffer or len(parts) < 2 or len(parts) > MAX_IOV or self._closing or self._eof_pending:
            for part in parts:
                self.write(part)
            return
        sent = self._send_now(b"", parts)
        if sent < 0:
            return  # the stream failed
        rest: list[bytes] = []
        queued = 0
        for part in parts:
            if sent >= len(part):
                sent -= len(part)
                continue
            piece = part[sent:] if sent else part
            sent = 0
            if piece:
                rest.append(piece)
                queued += len(piece)
        if not rest:
            return
        self._wait_writable()
        self._buffer = rest
        self._grew(queued)

    def write_eof(self) -> None:
        if self._closing or self._eof_pending:
            return
        self._eof_pending = True
        self._ending()
        if self._eof_ready and not self._buffer:
            self._shutdown_write()

    def close(self) -> None:
        """Stop reading; close once everything queued is sent."""
        if self._closing:
            return
        self._closing = True
        self._paused = True
        self._update_reader()
        self._ending()
        if not self._buffer:
            self._finish(None)

    def _refill(self) -> None:
        """The socket took everything queued and bytes are held back (`_held`): what the byte source does
        (TLS: encrypt the next of them). A plain stream never holds any."""

    def _ending(self) -> None:
        """Our direction ends (write_eof or close): what the byte source sends first (TLS: close_notify)."""

    def abort(self) -> None:
        """Close now; what is queued is dropped."""
        self._closing = True
        self._buffer = None
        self._held.clear()
        self._buffered = 0
        self._finish(None)

    # -- readiness callbacks --------------------------------------------------------------------------
    def on_readable(self) -> None:
        """Level mode: one read per readiness event (the loop reports the socket again while data waits)."""
        self._read(1)

    def on_edge(self, events: int) -> None:
        """Edge mode (rsp's poller): read until drained, or until reading stops; flush on EPOLLOUT. Once
        closed, the deferred call that delivers connection_lost (_finish)."""
        if self._done:
            lost = self._lost
            if lost is not NOT_LOST:
                self._lost = NOT_LOST
                self._protocol.connection_lost(cast("Exception | None", lost))
            return
        if events & EDGE_READ:
            if events & EDGE_HANGUP:
                self._hangup = True
            self._maybe_readable = True
            if self._reader:
                self._read(MAX_EDGE_READS)
        if events & EDGE_WRITE and self._writer and not self._done:
            self.on_writable()

    @final
    def _read(self, limit: int) -> None:
        edge = self._poller is not None
        for _ in range(limit):
            n = self._receive()
            if n <= 0:
                return  # nothing more for now, the end of data, or a failure: each handled by _receive
            if not edge:
                return
            if n < READ_SIZE and not self._hangup:
                # A short read took all the socket had (TCP hands over what is queued, up to the size
                # asked); data that arrives later raises a new edge (once registered).
                self._maybe_readable = False
                if self._reader and not self._watched:
                    self._watch()
                return
            if not self._reader:
                return  # paused or closed by the protocol; resume_reading() picks up from here
        poller = self._poller
        if poller is not None:
            poller.defer(self)  # more to read: after the other sockets of this iteration have had a turn

    def _receive(self) -> int:
        """One read from the socket, handed to the protocol: the bytes read, 0 when there is nothing more
        for now (EAGAIN), at the end of data, or after a failure (each handled here)."""
        try:
            data = self._sock.recv(READ_SIZE)
        except OSError as exc:
            return self._read_failed(exc)
        if len(data) == 0:
            self._maybe_readable = False
            self._on_end_of_data()
            return 0
        try:
            self._deliver(data)
        except Exception as exc:  # a bug in the protocol: close this stream, keep the loop sane
            self._internal_error(exc)
            return 0
        return len(data)

    @final
    def _deliver(self, data: bytes) -> None:
        """Hand bytes read to the protocol: a native call for rsp's compiled protocols."""
        native = self._native
        if native is not None:
            native.data_received(data)
            return
        on_data = self._on_data
        assert on_data is not None  # bound whenever the protocol is not native
        on_data(data)

    @final
    def _read_failed(self, exc: OSError) -> int:
        """A read raised: nothing more for now (EAGAIN), or the connection is gone. `_receive`'s 0."""
        if isinstance(exc, (BlockingIOError, InterruptedError)):
            self._maybe_readable = False
            if self._reader and not self._watched:
                self._watch()
        else:
            self._fail(exc)
        return 0

    @final
    def _on_end_of_data(self) -> None:
        """The peer's direction has ended (TLS: close_notify, or the socket's end without one)."""
        if self._peer_ended:
            return
        self._peer_ended = True
        self._eof_received = True
        self._update_reader()
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._internal_error(exc)
            return
        if not keep_open or self._eof_sent:
            # Both directions have ended (a tunnel's half-closes, one from each side): nothing is left to
            # carry, so the connection closes and connection_lost tells the protocol.
            self.close()

    @final
    def on_writable(self) -> None:
        buffer = self._buffer
        if not buffer:
            return  # a stale event (the descriptor's number was reused within one batch of events)
        sent = self._send_now(buffer[0], buffer[:MAX_IOV] if len(buffer) > 1 else None)
        if sent <= 0:
            return  # no room yet (EAGAIN: a queued piece is never empty), or the stream failed
        self._buffered -= sent
        while sent:
            first = buffer[0]
            if sent >= len(first):
                sent -= len(first)
                del buffer[0]
            else:
                buffer[0] = first[sent:]
                sent = 0
        if not buffer and self._held:
            self._refill()  # (TLS: the next plaintext encrypted and sent now that the socket took the last)
        if self._writing_paused and self._buffered <= self._low:
            self._writing_paused = False
            self._call(self._protocol.resume_writing)
        if buffer:
            return
        if self._buffer is buffer:  # (not replaced by a callback above)
            self._buffer = None
        if self._writer:  # (a callback above may have closed the stream already)
            if self._poller is None:
                self._io.remove_writer(self._fd)
            self._writer = False
        if self._closing:
            self._finish(None)
        elif self._eof_pending and self._eof_ready:
            self._shutdown_write()

    # -- internals ------------------------------------------------------------------------------------
    @final
    def _update_reader(self) -> None:
        want = not (self._paused or self._closing or self._eof_received or self._done)
        if want != self._reader:
            poller = self._poller
            if poller is not None:
                # Edge mode needs no epoll_ctl once registered; what arrived while reading was off is read
                # next iteration (not from inside the caller, which may be another stream's callback). A
                # speculative stream not registered yet registers now, which reports what is waiting.
                if want and not self._watched:
                    self._watch()
                elif want and self._maybe_readable:
                    poller.defer(self)
            elif want:
                self._io.add_reader(self._fd, self)
            else:
                self._io.remove_reader(self._fd)
            self._reader = want

    @final
    def _shutdown_write(self) -> None:
        if self._eof_sent or self._done:
            return
        self._eof_sent = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fail(exc)
            return
        if self._peer_ended:
            self.close()  # the peer had ended its direction already: both are done

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as exc:
            self._internal_error(exc)

    def _internal_error(self, exc: Exception) -> None:
        get_logger().error("internal error on %s %s: %s: %s", self.KIND, self.peer, type(exc).__name__, exc,
                           exc_info=exc)
        self.abort()

    def _fail(self, exc: Exception) -> None:
        """A socket error (reset, broken pipe), or TLS's: the connection is gone."""
        self._closing = True
        self._buffer = None
        self._held.clear()
        self._buffered = 0
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._done:
            return
        self._done = True
        poller = self._poller
        if poller is not None:
            if self._watched:
                poller.forget(self._fd)  # closing the socket below takes it out of epoll
            self._reader = self._writer = False
        if self._reader:
            self._io.remove_reader(self._fd)
            self._reader = False
        if self._writer:
            self._io.remove_writer(self._fd)
            self._writer = False
        self._sock.close()
        # asyncio calls connection_lost later, never from inside close() or write(). On rsp's poller, at
        # the end of the iteration (Poller.call_last, then on_edge), where call_soon would have run it, but
        # without the Handle that call_soon builds and runs through interpreted Python (~9,000 instructions
        # per connection, docs/performance.md "New connections").
        if poller is not None:
            self._lost = exc
            poller.call_last(self)
        else:
            self._loop.call_soon(self._protocol.connection_lost, exc)
