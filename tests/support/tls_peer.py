"""The far end of a TLS stream under test, used like the plain socket it wraps (tests/transport).

`TlsPeer` speaks TLS over memory BIOs on a raw non-blocking socket and offers what the stream contract
tests call on their peer socket: `send`/`sendall` (plaintext in), `recv` (plaintext out: BlockingIOError
when none is ready, b"" after close_notify or the socket's end, ConnectionResetError after a reset),
`shutdown(SHUT_WR)` (close_notify, then the socket's write side), and everything else (`close`,
`setsockopt`, `getsockname`, `fileno`) on the raw socket. `pump()` moves bytes between OpenSSL and the
socket; every call above pumps, and the harness pumps between loop iterations. Like a plain peer that does
not call recv, the TLS peer reads the socket only in `recv` (and during its handshake): a stream writing to
a peer that does not read meets a full socket buffer, on both variants.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, Final

# Ciphertext queued towards the stream beyond this makes send() raise BlockingIOError (as a full kernel
# buffer would): backpressure reaches the test.
MAX_QUEUED: Final = 256 * 1024
RECV_SIZE: Final = 1024 * 1024


class TlsPeer:
    def __init__(self, raw: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self.raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname)
        self.handshaken = False
        self._queued = bytearray()  # ciphertext the socket has not taken
        self._plain = bytearray()  # plaintext sent before the handshake finished
        self._ending = False  # shutdown(SHUT_WR) asked for
        self._write_shut = False
        self._raw_eof = False
        self._reset: OSError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def pump(self, read: bool = False) -> None:
        if self.raw.fileno() == -1:
            return
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
        if self.handshaken and self._plain:
            self.tls.write(bytes(self._plain))
            self._plain.clear()
        if self.handshaken and self._ending and not self._write_shut and not self._plain:
            try:
                self.tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
        self._queued += self._out.read()
        while self._queued and self._reset is None:
            try:
                sent = self.raw.send(self._queued)
            except BlockingIOError:
                break
            except OSError as exc:
                self._reset = exc
                break
            del self._queued[:sent]
        if self._ending and self.handshaken and not self._queued and not self._write_shut and self._reset is None:
            self._write_shut = True
            self.raw.shutdown(socket.SHUT_WR)
        while (read or not self.handshaken) and not self._raw_eof and self._reset is None:
            try:
                data = self.raw.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                self._reset = exc
                break
            if not data:
                self._raw_eof = True
                self._in.write_eof()
                break
            self._in.write(data)
        if not self.handshaken and self._in.pending:
            self.pump(read)

    def send(self, data: bytes | memoryview) -> int:
        self.pump()
        if self._reset is not None:
            raise self._reset
        if len(self._queued) > MAX_QUEUED:
            raise BlockingIOError
        if self.handshaken:
            self.tls.write(bytes(data))
        else:
            self._plain += data
        self.pump()
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def recv(self, size: int) -> bytes:
        self.pump(read=True)
        try:
            return self.tls.read(size)
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLWantReadError:
            if self._reset is not None:
                raise self._reset from None
            if self._raw_eof:
                return b""
            raise BlockingIOError from None
        except ssl.SSLEOFError:
            return b""

    def shutdown(self, how: int) -> None:
        assert how == socket.SHUT_WR
        self._ending = True
        self.pump()
