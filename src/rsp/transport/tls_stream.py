"""A TLS byte stream over a raw non-blocking socket: `SocketStream` with OpenSSL in between.

Why memory BIOs and not `ssl.SSLSocket`: the socket stays rsp's raw non-blocking socket, read and written by
the stream on the loop's readiness events exactly like a plain `SocketStream` (edge-triggered on rsp's loop),
and OpenSSL only transforms bytes (`ssl.MemoryBIO` + `SSLObject`). An `SSLSocket` would do its own I/O and
raise SSLWantRead/SSLWantWrite from inside recv/send, which fits neither the edge-triggered poller nor
the write-buffer accounting of the streams.

`TlsStream` derives from `SocketStream`: readiness, flow control, half-close and close after flush are
SocketStream's, once. Only the byte source and sink differ:
- read (`_receive`): `recv_into(READ_SIZE)` -> incoming BIO -> `SSLObject.read()` until SSLWantReadError ->
  the protocol's `data_received` for each plaintext chunk (at most one TLS record, 16 KiB, each: RFC 8446
  §5.1);
- write: plaintext -> `SSLObject.write()` (encrypts into the outgoing BIO) -> SocketStream's send-or-queue
  of what the BIO holds, at most WRITE_CHUNK of plaintext at a time, and only while the socket takes all
  of it: once it does not, the rest of the ciphertext waits in the stream's buffer and the plaintext after
  it waits unencrypted (`_held`) until the socket has taken that (`_refill`). A memory BIO never refuses,
  so handing OpenSSL a whole backlog made it grow (zeroed, reallocated, copied) to the backlog's size;
  both kinds of waiting bytes count against the write-buffer marks;
- the end of our direction (`_ending`, on write_eof or close): close_notify first.

The contract is SocketStream's (asyncio's), with TLS's meaning of its ends:
- writes made before the handshake finishes wait for it (a client sends its request as soon as the
  stream is made; a server never writes first);
- a handshake failure closes the stream: the protocol gets connection_lost(exc) with the SSLError;
- the peer's close_notify is end of data (eof_received); a TCP end without close_notify is treated the
  same (HTTP framing, not TLS, tells a complete message: RFC 9112 §9.8 allows "incomplete close");
- `write_eof()` sends close_notify, then shuts the socket's write side: TLS 1.3's half-close
  (RFC 8446 §6.1: each side closes its write direction with close_notify, the other may keep sending);
  once both directions have ended, the stream closes (as a plain one does);
- `close()` sends what is queued and close_notify, then closes; `abort()` closes at once. A close
  before the handshake finished drops what waited for it (nothing was sent on this connection).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import ClassVar, Final, Protocol

from rsp.transport.plain_on_tls import PLAIN, UNDECIDED, PlainHttpGuard, classify_first_bytes
from rsp.transport.stream import READ_SIZE, SocketStream, StreamProtocol

# Plaintext given to OpenSSL per write call: four full TLS records. The outgoing BIO then holds at most this
# much (plus record overhead) before it is read and sent, whatever the backlog (docs/performance.md,
# "DATA without copies").
WRITE_CHUNK: Final = 64 * 1024
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
    def write(self, data: bytes | memoryview) -> int: ...
    def pending(self) -> int: ...
    def do_handshake(self) -> None: ...


class TlsStream(SocketStream):
    """One TLS connection (server or client side) over a connected, non-blocking TCP socket."""

    KIND: ClassVar[str] = "TLS connection"

    __slots__ = ("_engine", "_first", "_handshaken", "_held_pos", "_in", "_out", "_plain_guard", "_recv_into",
                 "_tls")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamProtocol,
                 context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None,
                 peer: tuple[object, ...] = (), plain_guard: PlainHttpGuard | None = None) -> None:
        super().__init__(loop, sock, protocol, peer)
        # Plaintext not encrypted yet: writes before the handshake ends, or behind ciphertext the socket has
        # not taken (SocketStream's shared NOTHING_HELD is never used); `_held_pos` octets of the first one
        # are encrypted already.
        self._held = []
        self._held_pos = 0
        # A listener's stream: checks its first bytes for plain HTTP (rsp.transport.plain_on_tls) until
        # decided; `_first` holds them meanwhile (fewer than plain_on_tls.DECISION_BYTES).
        self._plain_guard = plain_guard
        self._first = b""
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls: ssl.SSLObject = context.wrap_bio(self._in, self._out, server_side=server_side,
                                                    server_hostname=server_hostname)
        # ssl.SSLObject's read/write/pending/do_handshake are pure-Python wrappers (ssl.py) around the methods
        # of the same names of its C object: called directly, each costs no interpreted frame.
        self._engine: _Engine = getattr(self._tls, "_sslobj", None) or self._tls
        self._recv_into: Callable[[memoryview], int] = sock.recv_into
        self._handshaken = False
        self._eof_ready = False  # write_eof shuts the socket's write side only after close_notify

    def _started(self) -> None:
        self._handshake()  # a client sends its hello now

    # -- asyncio.Transport, the subset HTTP mode uses -------------------------------------------------
    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "ssl_object":
            return self._tls
        if name == "peercert":
            return self._tls.getpeercert() if self._handshaken else default
        return super().get_extra_info(name, default)

    @property
    def tls(self) -> ssl.SSLObject:
        return self._tls

    def resume_reading(self) -> None:
        super().resume_reading()
        # Plaintext OpenSSL already holds raises no socket event: hand it over from the next iteration
        # (never from inside the caller, which may be the other side's callback).
        if self._handshaken and not self._closing and (self._engine.pending() or self._in.pending
                                                       or self._eof_received):
            self._loop.call_soon(self._decrypt)

    def write(self, data: bytes) -> None:
        if self._closing or self._eof_pending or len(data) == 0:
            return
        if not self._handshaken or self._held or self._buffer:
            self._held.append(data)  # behind what waits already (encrypted in turn: _refill)
            self._grew(len(data))
            return
        if len(data) <= WRITE_CHUNK:
            try:
                self._engine.write(data)
            except ssl.SSLError as exc:
                self._fail(exc)
                return
            self._flush()
            return
        self._held.append(data)
        self._buffered += len(data)  # (the marks are checked once the socket has taken what it can)
        self._encrypt_held()
        if self._buffered > self._high and not self._writing_paused:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)

    def writelines(self, parts: list[bytes]) -> None:
        if len(parts) > 1:
            self.write(b"".join(parts))  # one TLS record for small pieces instead of one per piece
        elif parts:
            self.write(parts[0])

    def _refill(self) -> None:
        if self._handshaken:
            self._encrypt_held()

    def _encrypt_held(self) -> None:
        """Encrypt and send the held plaintext, WRITE_CHUNK at a time, until the socket does not take all
        of a chunk (the rest waits as ciphertext, the plaintext after it stays held) or none is left; then
        the close_notify that waited for it."""
        held = self._held
        engine = self._engine
        while held and not self._buffer and not self._done:
            data = held[0]
            pos = self._held_pos
            end = min(len(data), pos + WRITE_CHUNK)
            try:
                engine.write(data if pos == 0 and end == len(data) else memoryview(data)[pos:end])
            except ssl.SSLError as exc:
                self._fail(exc)
                return
            if end == len(data):
                del held[0]
                self._held_pos = 0
            else:
                self._held_pos = end
            self._buffered -= end - pos
            self._flush()
        if not held and (self._closing or self._eof_pending):
            self._close_notify()

    def _ending(self) -> None:
        if self._handshaken:
            self._close_notify()
        # else the handshake sends it when it completes (what was written meanwhile first)

    # -- the byte source --------------------------------------------------------------------------------
    def _receive(self) -> int:
        try:
            n = self._recv_into(_RECV_VIEW)
        except OSError as exc:
            return self._read_failed(exc)
        if n == 0:
            self._maybe_readable = False
            self._eof_received = True  # the socket's end; the protocol hears of it after the plaintext before it
            self._update_reader()
        else:
            self._in.write(_RECV_VIEW[:n])
        if self._handshaken:
            self._decrypt()
        elif n and self._plain_guard is not None and self._refused_plain(n):
            pass
        else:
            self._handshake()
        return n

    def _refused_plain(self, n: int) -> bool:
        """The first bytes, before any handshake: plain HTTP gets the guard's answer (not encrypted: the
        client does not speak TLS) and the connection closes. Asked until decided; True while undecided
        too (the handshake waits: the bytes are in the BIO already)."""
        guard = self._plain_guard
        assert guard is not None
        first = self._first + bytes(_RECV_VIEW[:n])
        verdict = classify_first_bytes(first)
        if verdict == UNDECIDED and not self._eof_received:
            self._first = first
            return True
        self._plain_guard = None
        self._first = b""
        if verdict != PLAIN:
            return False
        reply = guard.refuse(self.peer)
        if reply:
            self._send_or_queue(reply)
        self.close()  # nothing was handshaken: no close_notify, the socket closes once the answer is sent
        return True

    # -- TLS ------------------------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self._engine.do_handshake()
        except _WANT_READ:
            self._flush()
            if self._eof_received:
                self._fail(ConnectionResetError("connection closed during the TLS handshake"))
            return
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self._flush()  # the alert, so that the peer learns why
            self._fail(exc)
            return
        self._handshaken = True
        self._encrypt_held()  # (after the handshake's last flight, still in the BIO: one send for both)
        if self._eof_pending or self._closing:
            self._close_notify()
        self._flush()
        if not self._buffer:
            if self._closing:
                self._finish(None)
                return
            if self._eof_pending:
                self._shutdown_write()
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
                self._on_end_of_data()
                break
            except (ssl.SSLError, OSError) as exc:
                self._flush()
                self._fail(exc)
                return
            if len(data) == 0:
                self._on_end_of_data()
                break
            try:
                self._deliver(data)
            except Exception as exc:
                self._internal_error(exc)
                return
        if self._out.pending:  # TLS 1.3 session tickets, key updates, the answer to a close_notify
            self._flush()
        if (self._eof_received and not (self._paused or self._closing or self._done) and not incoming.pending
                and not engine.pending()):
            self._on_end_of_data()  # the socket ended without close_notify, after everything before it

    def _close_notify(self) -> None:
        if self._eof_ready or self._done or self._held:
            return  # (held plaintext goes first: _encrypt_held sends close_notify after it)
        self._eof_ready = True
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
        self._send_or_queue(out.read())
