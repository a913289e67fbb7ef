"""Backend servers for black-box tests: threaded, in-process, on loopback, each with a clean stop.

Every server accepts on its own thread and serves each connection on another thread. `stop()` closes the
listener, shuts down every live connection (which wakes any thread blocked in recv/send) and joins every
thread with a bound. Exceptions a handler raises while the server is not stopping are kept in `errors`
so that a test can assert the backend saw nothing unexpected.

Line protocol used by several servers: the client sends one line (`...\\n`), the server answers and closes.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self

from support.payload import digest, payload

# Every socket operation a backend makes is bounded; a test never waits on a wedged backend thread forever.
BACKEND_IO_TIMEOUT = 30.0
# How often the accept loop looks at the stop flag.
ACCEPT_POLL = 0.1
# Bound on joining threads in stop(); handlers are woken by shutdown() so they finish at once.
JOIN_TIMEOUT = 5.0
# Enough for any request line the tests send.
MAX_LINE = 4096
# Size of each send() a payload server makes, so that `sent` shows progress while the peer stalls.
SEND_CHUNK = 64 * 1024


class BackendServer:
    """Base class: a listening socket and an accept thread; subclasses implement `handle(conn)`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self._listener.settimeout(ACCEPT_POLL)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"{type(self).__name__}-accept")

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._accept_thread.is_alive():
            self._accept_thread.join(JOIN_TIMEOUT)
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- internals -------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(BACKEND_IO_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(conn,), name=f"{type(self).__name__}-conn")
            with self._lock:
                self.accepted += 1
                self._conns.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError as exc:
            if not self._stopping.is_set() and not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                self.errors.append(exc)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


def read_line(conn: socket.socket) -> bytes:
    """Read up to and including the first b"\\n" (one byte at a time: nothing past the line is consumed)."""
    line = bytearray()
    while len(line) < MAX_LINE:
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
        if byte == b"\n":
            break
    return bytes(line)


def read_to_eof(conn: socket.socket) -> bytes:
    data = bytearray()
    while chunk := conn.recv(256 * 1024):
        data += chunk
    return bytes(data)


class EchoBackend(BackendServer):
    """Sends back every byte it receives; at EOF it half-closes its side too. `received` counts bytes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.received = 0

    def handle(self, conn: socket.socket) -> None:
        while chunk := conn.recv(64 * 1024):
            with self._lock:
                self.received += len(chunk)
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)


class SizedBackend(BackendServer):
    """Reads a line holding a decimal N, sends `payload(N)` and closes. `sent` counts bytes sent so far."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.sent = 0
        self.completed = 0

    def handle(self, conn: socket.socket) -> None:
        size = int(read_line(conn).strip())
        view = memoryview(payload(size))
        for start in range(0, size, SEND_CHUNK):
            conn.sendall(view[start : start + SEND_CHUNK])
            with self._lock:
                self.sent += min(SEND_CHUNK, size - start)
        with self._lock:
            self.completed += 1


class SlowBackend(BackendServer):
    """Reads a line, waits `delay` seconds, answers b"done:" + line and closes."""

    def __init__(self, delay: float, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.delay = delay

    def handle(self, conn: socket.socket) -> None:
        line = read_line(conn)
        if self._stopping.wait(self.delay):
            return
        conn.sendall(b"done:" + line)


# nginx's default large_client_header_buffers is 8 KiB per line: longer request lines get 414.
HEAD_LINE_LIMIT = 8 * 1024
# The most this server reads looking for the end of a head.
HEAD_READ_LIMIT = 1024 * 1024


class HttpHeadBackend(BackendServer):
    """An HTTP-ish server: reads a whole request head, records its exact bytes in `heads`, answers
    414 URI Too Long when the request line exceeds HEAD_LINE_LIMIT, else 200 with a short body; then closes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.heads: list[bytes] = []

    def handle(self, conn: socket.socket) -> None:
        head = bytearray()
        while b"\r\n\r\n" not in head and len(head) < HEAD_READ_LIMIT:
            chunk = conn.recv(64 * 1024)
            if not chunk:
                break
            head += chunk
        with self._lock:
            self.heads.append(bytes(head))
        request_line = bytes(head).split(b"\r\n", 1)[0]
        if len(request_line) > HEAD_LINE_LIMIT:
            body = b"request line too long\n"
            status = b"414 URI Too Long"
        else:
            body = b"ok\n"
            status = b"200 OK"
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )


class DrainBackend(BackendServer):
    """Reads until EOF (recording the bytes and setting `eof_seen`), then answers with
    `<sha256 hex of what it read>\\n` followed by payload(response_size), and closes."""

    def __init__(self, response_size: int, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.response_size = response_size
        self.received: list[bytes] = []
        self.eof_seen = threading.Event()

    def handle(self, conn: socket.socket) -> None:
        data = read_to_eof(conn)
        with self._lock:
            self.received.append(data)
        self.eof_seen.set()
        conn.sendall(digest(data).encode() + b"\n" + payload(self.response_size))


