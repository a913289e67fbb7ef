"""A TLS byte stream over a raw non-blocking socket: `SocketStream`'s interface, with OpenSSL in between.

Why memory BIOs and not `ssl.SSLSocket`: the socket stays rsp's raw non-blocking socket, read and written by
this class on the loop's readiness events exactly like `SocketStream` (edge-triggered on rsp's loop), and
OpenSSL only transforms bytes (`ssl.MemoryBIO` + `SSLObject`). An `SSLSocket` would do its own I/O and
raise SSLWantRead/SSLWantWrite from inside recv/send, which fits neither the edge-triggered poller nor
the write-buffer accounting of the streams.

The byte path:
- read: `recv_into(READ_SIZE)` -> incoming BIO -> `SSLObject.read()` until SSLWantReadError -> the protocol's
  `data_received` for each plaintext chunk (at most one TLS record, 16 KiB, each: RFC 8446 §5.1);
- write: plaintext -> `SSLObject.write()` (encrypts into the outgoing BIO, always whole: a memory BIO
  never refuses) -> `send()` of what the BIO holds; what the socket does not take waits as ciphertext
  and counts against the write-buffer marks (backpressure as in SocketStream).

The contract is SocketStream's (asyncio's), with TLS's meaning of its ends:
- writes made before the handshake finishes wait for it (a client sends its request as soon as the
  stream is made; a server never writes first);
- a handshake failure closes the stream: the protocol gets connection_lost(exc) with the SSLError;
- the peer's close_notify is end of data (eof_received); a TCP end without close_notify is treated the
  same (HTTP framing, not TLS, tells a complete message: RFC 9112 §9.8 allows "incomplete close");
- `write_eof()` sends close_notify, then shuts the socket's write side: TLS 1.3's half-close
  (RFC 8446 §6.1: each side closes its write direction with close_notify, the other may keep sending);
- `close()` sends what is queued and close_notify, then closes; `abort()` closes at once. A close
  before the handshake finished drops what waited for it (nothing was sent on this connection).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Final, Protocol

from rsp.logs import get_logger
from rsp.transport.poller import EDGE_HANGUP, EDGE_READ, EDGE_WRITE, Poller, Watcher, io_for
from rsp.transport.stream import (
    DEFAULT_HIGH_WATER,
    DEFAULT_LOW_WATER,
    MAX_EDGE_READS,
    MAX_IOV,
    READ_SIZE,
    StreamProtocol,
)

# Plaintext taken out of OpenSSL per read call: one TLS record holds at most 16 KiB (RFC 8446 §5.1), and a
# read call returns at most one record's worth, so a larger buffer would only be allocated and trimmed.
PLAINTEXT_READ: Final = 16 * 1024

_WANT_READ: Final = ssl.SSLWantReadError
_ZERO_RETURN: Final = ssl.SSLZeroReturnError

# One process-wide receive buffer: each recv_into() is written into the incoming BIO (which copies it) before
# the next one, so no bytes object is allocated per read.
_RECV_BUFFER: Final = bytearray(READ_SIZE)
_RECV_VIEW: Final = memoryview(_RECV_BUFFER)


class _Engine(Protocol):
    """The C object behind ssl.SSLObject (`_ssl._SSLSocket`): the calls made per read and write."""

    def read(self, size: int) -> bytes: ...
    def write(self, data: bytes) -> int: ...
    def pending(self) -> int: ...
    def do_handshake(self) -> None: ...


class TlsStream(Watcher):
    """One TLS connection (server or client side) over a connected, non-blocking TCP socket."""

    __slots__ = (
        "_buffered",
        "_cipher",
        "_closing",
        "_done",
        "_engine",
        "_eof_pending",
        "_eof_reported",
        "_eof_sent",
        "_fd",
        "_handshaken",
        "_hangup",
        "_high",
        "_in",
        "_io",
        "_loop",
        "_low",
        "_maybe_readable",
        "_notify_sent",
        "_on_data",
        "_out",
        "_paused",
        "_plain",
        "_poller",
        "_protocol",
        "_reader",
        "_recv_into",
        "_send",
        "_sock",
        "_socket_eof",
        "_tls",
        "_writer",
        "_writing_paused",
        "peer",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamProtocol,
                 context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None,
                 peer: tuple[object, ...] = ()) -> None:
        self._loop = loop
        io = io_for(loop)
        self._io = io
        self._poller: Poller | None = io if isinstance(io, Poller) else None
        self._maybe_readable = False
        self._hangup = False
        self._sock = sock
        self._fd = sock.fileno()
        self._send: Callable[[bytes], int] = sock.send
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls: ssl.SSLObject = context.wrap_bio(self._in, self._out, server_side=server_side,
                                                    server_hostname=server_hostname)
        # ssl.SSLObject's read/write/pending/do_handshake are pure-Python wrappers (ssl.py) around the methods
        # of the same names of its C object: called directly, each costs no interpreted frame.
        self._engine: _Engine = getattr(self._tls, "_sslobj", None) or self._tls
        self._recv_into: Callable[[memoryview], int] = sock.recv_into
        self._protocol = protocol
        self._on_data: Callable[[bytes], None] = protocol.data_received
        self.peer = peer
        self._handshaken = False
        self._plain: list[bytes] = []  # written before the handshake finished
        self._cipher: list[bytes] = []  # encrypted, not yet taken by the socket
        self._buffered = 0  # bytes in _plain and _cipher
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_LOW_WATER
        self._reader = False
        self._writer = False
        self._paused = False
        self._writing_paused = False
        self._socket_eof = False  # the TCP peer shut its side
        self._eof_reported = False  # eof_received was called
        self._eof_pending = False
        self._eof_sent = False
        self._notify_sent = False  # close_notify is in the outgoing BIO
        self._closing = False
        self._done = False

    def start(self) -> None:
        """Tell the protocol it is connected, then start the handshake (a client sends its hello now)."""
        self._protocol.connection_made(self)  # type: ignore[arg-type]  # the subset of Transport it uses
        if self._done:
            return
        if self._poller is not None:
            self._poller.watch(self._fd, self)
        self._update_reader()
        self._handshake()

    # -- asyncio.Transport, the subset HTTP mode uses -------------------------------------------------
    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "peername":
            return self.peer or default
        if name == "socket":
            return self._sock
        if name == "ssl_object":
            return self._tls
        if name == "peercert":
            return self._tls.getpeercert() if self._handshaken else default
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        return default

    @property
    def tls(self) -> ssl.SSLObject:
        return self._tls

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
        # Plaintext OpenSSL already holds raises no socket event: hand it over from the next iteration
        # (never from inside the caller, which may be the other side's callback).
        if self._handshaken and not self._closing and (self._engine.pending() or self._in.pending or self._socket_eof):
            self._loop.call_soon(self._decrypt)

    def write(self, data: bytes) -> None:
        if self._closing or self._eof_pending or len(data) == 0:
            return
        if not self._handshaken:
            self._plain.append(data)
            self._grew(len(data))
            return
        try:
            self._engine.write(data)
        except ssl.SSLError as exc:
            self._fail(exc)
            return
        self._flush()

    def writelines(self, parts: list[bytes]) -> None:
        if len(parts) > 1:
            self.write(b"".join(parts))  # one TLS record for small pieces instead of one per piece
        elif parts:
            self.write(parts[0])

    def write_eof(self) -> None:
        if self._closing or self._eof_pending:
            return
        self._eof_pending = True
        if self._handshaken:
            self._close_notify()
            if not self._cipher:
                self._shutdown_write()

    def close(self) -> None:
        """Stop reading; send what is queued and close_notify, then close."""
        if self._closing:
            return
        self._closing = True
        self._paused = True
        self._update_reader()
        if self._handshaken:
            self._close_notify()
        if not self._cipher:
            self._finish(None)

    def abort(self) -> None:
        self._closing = True
        self._plain.clear()
        self._cipher.clear()
        self._buffered = 0
        self._finish(None)

    # -- readiness callbacks --------------------------------------------------------------------------
    def on_readable(self) -> None:
        self._read(1)

    def on_edge(self, events: int) -> None:
        if events & EDGE_READ:
            if events & EDGE_HANGUP:
                self._hangup = True
            self._maybe_readable = True
            if self._reader:
                self._read(MAX_EDGE_READS)
        if events & EDGE_WRITE and self._writer and not self._done:
            self.on_writable()

    def _read(self, limit: int) -> None:
        edge = self._poller is not None
        for _ in range(limit):
            try:
                n = self._recv_into(_RECV_VIEW)
            except (BlockingIOError, InterruptedError):
                self._maybe_readable = False
                return
            except OSError as exc:
                self._fail(exc)
                return
            if n == 0:
                self._maybe_readable = False
                self._socket_eof = True
                self._update_reader()
            else:
                self._in.write(_RECV_VIEW[:n])
            if self._handshaken:
                self._decrypt()
            else:
                self._handshake()
            if self._socket_eof or not edge:
                return
            if n < READ_SIZE and not self._hangup:
                self._maybe_readable = False
                return
            if not self._reader:
                return
        poller = self._poller
        if poller is not None:
            poller.defer(self)

    def on_writable(self) -> None:
        cipher = self._cipher
        if not cipher:
            return
        try:
            sent = self._sock.sendmsg(cipher[:MAX_IOV]) if len(cipher) > 1 else self._send(cipher[0])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        self._buffered -= sent
        while sent:
            first = cipher[0]
            if sent >= len(first):
                sent -= len(first)
                del cipher[0]
            else:
                cipher[0] = first[sent:]
                sent = 0
        if self._writing_paused and self._buffered <= self._low:
            self._writing_paused = False
            self._call(self._protocol.resume_writing)
        if cipher:
            return
        if self._writer:
            if self._poller is None:
                self._io.remove_writer(self._fd)
            self._writer = False
        if self._closing:
            self._finish(None)
        elif self._eof_pending and self._notify_sent:
            self._shutdown_write()

    # -- TLS ------------------------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self._engine.do_handshake()
        except _WANT_READ:
            self._flush()
            if self._socket_eof:
                self._fail(ConnectionResetError("connection closed during the TLS handshake"))
            return
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self._flush()  # the alert, so that the peer learns why
            self._fail(exc)
            return
        self._handshaken = True
        plain = self._plain
        if plain:
            self._buffered -= sum(len(p) for p in plain)
            self._plain = []
            for part in plain:
                self._engine.write(part)
        if self._eof_pending or self._closing:
            self._close_notify()
        self._flush()
        if self._closing and not self._cipher:
            self._finish(None)
            return
        self._decrypt()

    def _decrypt(self) -> None:
        """Hand the plaintext OpenSSL can produce to the protocol, while reading is on."""
        engine = self._engine
        incoming = self._in
        while not (self._paused or self._closing or self._done):
            # Nothing new and nothing decrypted left: OpenSSL would only raise SSLWantReadError (an exception
            # per read event saved). A partial record inside OpenSSL needs new bytes to complete anyway.
            if not incoming.pending and not engine.pending():
                break
            try:
                data = engine.read(PLAINTEXT_READ)
            except _WANT_READ:
                break
            except _ZERO_RETURN:  # close_notify (RFC 8446 §6.1)
                self._end_of_data()
                break
            except (ssl.SSLError, OSError) as exc:
                self._flush()
                self._fail(exc)
                return
            if len(data) == 0:
                self._end_of_data()
                break
            try:
                self._on_data(data)
            except Exception as exc:
                self._internal_error(exc)
                return
        if self._out.pending:  # TLS 1.3 session tickets, key updates, the answer to a close_notify
            self._flush()
        if (self._socket_eof and not (self._paused or self._closing or self._done) and not incoming.pending
                and not engine.pending()):
            self._end_of_data()

    def _end_of_data(self) -> None:
        if self._eof_reported:
            return
        self._eof_reported = True
        self._socket_eof = True
        self._update_reader()
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._internal_error(exc)
            return
        if not keep_open:
            self.close()

    def _close_notify(self) -> None:
        if self._notify_sent or self._done:
            return
        self._notify_sent = True
        try:
            self._tls.unwrap()
        except (_WANT_READ, ssl.SSLError, OSError):
            pass  # the peer's close_notify is not awaited: we close (or half-close) anyway
        self._flush()

    def _flush(self) -> None:
        """Send what OpenSSL wrote to the outgoing BIO; queue what the socket does not take."""
        out = self._out
        if not out.pending or self._done:
            return
        data = out.read()
        if self._cipher:
            self._cipher.append(data)
            self._grew(len(data))
            return
        try:
            sent = self._send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        if sent == len(data):
            return
        self._cipher.append(data[sent:])
        if self._poller is None:
            self._io.add_writer(self._fd, self)
        self._writer = True
        self._grew(len(data) - sent)

    def _grew(self, n: int) -> None:
        self._buffered += n
        if self._buffered > self._high and not self._writing_paused:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)

    # -- internals ------------------------------------------------------------------------------------
    def _update_reader(self) -> None:
        want = not (self._paused or self._closing or self._socket_eof or self._done)
        if want != self._reader:
            poller = self._poller
            if poller is not None:
                if want and self._maybe_readable:
                    poller.defer(self)
            elif want:
                self._io.add_reader(self._fd, self)
            else:
                self._io.remove_reader(self._fd)
            self._reader = want

    def _shutdown_write(self) -> None:
        if self._eof_sent or self._done:
            return
        self._eof_sent = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fail(exc)

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as exc:
            self._internal_error(exc)

    def _internal_error(self, exc: Exception) -> None:
        get_logger().error("internal error on TLS connection %s: %s: %s", self.peer, type(exc).__name__, exc,
                           exc_info=exc)
        self.abort()

    def _fail(self, exc: Exception) -> None:
        self._closing = True
        self._plain.clear()
        self._cipher.clear()
        self._buffered = 0
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._done:
            return
        self._done = True
        poller = self._poller
        if poller is not None:
            poller.forget(self._fd)
            self._reader = self._writer = False
        if self._reader:
            self._io.remove_reader(self._fd)
            self._reader = False
        if self._writer:
            self._io.remove_writer(self._fd)
            self._writer = False
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)
