"""HTTP/1.1 backends for black-box tests of rsp's HTTP mode: threaded, raw sockets, exact bytes recorded.

`HttpBackend` serves keep-alive connections. For every connection it records every byte it received
(`streams[i]`, in accept order), re-parses each request *strictly* (a forwarded request with a bare LF,
obs-fold, both Transfer-Encoding and Content-Length, several Content-Length values, a transfer coding other
than chunked or a malformed chunk is a `ForwardedRequestError`, kept in `errors`), keeps the parsed requests
in `requests`, and answers whatever `handler(request)` returns (a `Reply`). A connection that ends in the
middle of a request is not an error: its bytes are in `streams` and the fact in `incomplete`.

Replies can also hang (never answer), close without answering, answer with raw bytes (garbage, 204 heads,
chunked bodies) or turn the connection into an echo tunnel after a 101 (WebSocket).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from support.backends import BACKEND_IO_TIMEOUT, BackendServer
from support.headers import HeaderLookup

# Every request and response the tests make is far below these; a bigger head is a framing bug upstream.
MAX_HEAD = 256 * 1024
RECV_SIZE = 256 * 1024
# How long a backend keeps an idle keep-alive connection by default (rsp's pool decides when to close it;
# stop() wakes the thread at once). Long enough for any test, short enough that nothing lingers.
DEFAULT_IDLE = 30.0

TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQUEST_LINE_RE = re.compile(rb"(" + TOKEN + rb") (\S+) (HTTP/1\.[01])")
FIELD_LINE_RE = re.compile(rb"(" + TOKEN + rb"):[ \t]*(.*?)[ \t]*")
CHUNK_LINE_RE = re.compile(rb"([0-9A-Fa-f]{1,15})((?:[ \t]*;[^\r\n]*)?)")
FORBIDDEN_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ForwardedRequestError(Exception):
    """What rsp forwarded is not strictly valid HTTP/1.1 (RFC 9112)."""


class _PeerClosed(Exception):
    """The peer closed the connection (or the server is stopping) in the middle of a request."""


@dataclass(frozen=True)
class ReceivedRequest(HeaderLookup):
    conn: int  # index of the backend connection it arrived on (accept order)
    seq: int  # index of the request on that connection
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # (name as sent, value), in order
    body: bytes  # decoded (de-chunked) content
    head: bytes  # exact head bytes, through the empty line
    raw: bytes  # exact bytes of the whole message, framing included
    chunked: bool


@dataclass(frozen=True)
class Reply:
    status: int = 200
    reason: str = "OK"
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    content_length: bool = True  # add Content-Length: len(body) (unless headers has one)
    send_body: bool = True  # False for an answer to HEAD: the head says Content-Length, no body follows
    raw: bytes | None = None  # send exactly these bytes instead of building a response
    close: bool = False  # close the connection after sending
    hang: bool = False  # never answer; hold the connection until the peer closes or the server stops
    tunnel: bool = False  # after sending, echo every byte back until EOF (an upgraded connection)
    delay: float = 0.0  # wait this long before answering (interrupted by stop())

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.content_length and not any(name.lower() == "content-length" for name, _ in self.headers):
            lines.append(f"Content-Length: {len(self.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + self.body if self.send_body else head


Handler = Callable[[ReceivedRequest], Reply]


def describe(name: str) -> Handler:
    """The default handler: 200 with body `<name> <METHOD> <target> conn=<i> seq=<j> body=<len>\\n`."""

    def handler(req: ReceivedRequest) -> Reply:
        body = f"{name} {req.method} {req.target} conn={req.conn} seq={req.seq} body={len(req.body)}\n".encode()
        return Reply(headers=[("Content-Type", "text/plain"), ("X-Backend", name)], body=body,
                     send_body=req.method != "HEAD")

    return handler


class _Reader:
    """A buffered reader over one connection that also records every byte received."""

    def __init__(self, conn: socket.socket, record: bytearray, stopping: threading.Event) -> None:
        self.conn = conn
        self.buf = bytearray()
        self.record = record
        self.stopping = stopping

    def fill(self) -> bool:
        if self.stopping.is_set():
            return False
        data = self.conn.recv(RECV_SIZE)
        if not data:
            return False
        self.record += data
        self.buf += data
        return True

    def line(self, limit: int) -> bytes:
        """One line without its CRLF; a bare LF is a ForwardedRequestError."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                if end == 0 or self.buf[end - 1] != 0x0D:
                    raise ForwardedRequestError(f"bare LF in {bytes(self.buf[: end + 1])!r}")
                line = bytes(self.buf[: end - 1])
                del self.buf[: end + 1]
                if b"\r" in line:
                    raise ForwardedRequestError(f"bare CR in {line!r}")
                return line
            if len(self.buf) > limit:
                raise ForwardedRequestError(f"line longer than {limit} bytes")
            if not self.fill():
                raise _PeerClosed

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self.fill():
                raise _PeerClosed
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


@dataclass
class _Parsed:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def _parse_fields(reader: _Reader, what: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    total = 0
    while True:
        line = reader.line(MAX_HEAD)
        total += len(line) + 2
        if total > MAX_HEAD:
            raise ForwardedRequestError(f"{what} larger than {MAX_HEAD} bytes")
        if not line:
            return fields
        if line[:1] in (b" ", b"\t"):
            raise ForwardedRequestError(f"obs-fold in {what}: {line!r}")
        match = FIELD_LINE_RE.fullmatch(line)
        if match is None:
            raise ForwardedRequestError(f"invalid field line in {what}: {line!r}")
        name, value = match.groups()
        if FORBIDDEN_IN_VALUE.search(value):
            raise ForwardedRequestError(f"control character in field value: {line!r}")
        fields.append((name.decode("latin-1"), value.decode("latin-1")))


def read_request(reader: _Reader) -> tuple[_Parsed, bytes, bytes, bool, bytes] | None:
    """Parse one request strictly. None at a clean EOF between requests; _PeerClosed in the middle."""
    start = len(reader.record) - len(reader.buf)
    if not reader.buf and not reader.fill():
        return None
    line = reader.line(MAX_HEAD)
    match = REQUEST_LINE_RE.fullmatch(line)
    if match is None:
        raise ForwardedRequestError(f"invalid request line {line!r}")
    method, target, version = (part.decode("latin-1") for part in match.groups())
    parsed = _Parsed(method, target, version, _parse_fields(reader, "header section"))
    head_end = len(reader.record) - len(reader.buf)
    lengths = [v for n, v in parsed.headers if n.lower() == "content-length"]
    codings = [v for n, v in parsed.headers if n.lower() == "transfer-encoding"]
    hosts = [v for n, v in parsed.headers if n.lower() == "host"]
    if version == "HTTP/1.1" and len(hosts) != 1:
        raise ForwardedRequestError(f"{len(hosts)} Host fields")
    if lengths and codings:
        raise ForwardedRequestError("both Content-Length and Transfer-Encoding")
    body = bytearray()
    chunked = False
    if codings:
        if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
            raise ForwardedRequestError(f"transfer coding other than chunked: {codings!r}")
        chunked = True
        while True:
            size_line = reader.line(16 * 1024)
            size_match = CHUNK_LINE_RE.fullmatch(size_line)
            if size_match is None:
                raise ForwardedRequestError(f"invalid chunk-size line {size_line!r}")
            size = int(size_match.group(1), 16)
            if size == 0:
                _parse_fields(reader, "trailer section")
                break
            body += reader.exact(size)
            if reader.exact(2) != b"\r\n":
                raise ForwardedRequestError("chunk data not followed by CRLF")
    elif lengths:
        if len(lengths) != 1 or not lengths[0].isdigit():
            raise ForwardedRequestError(f"invalid Content-Length {lengths!r}")
        body += reader.exact(int(lengths[0]))
    end = len(reader.record) - len(reader.buf)
    head = bytes(reader.record[start:head_end])
    raw = bytes(reader.record[start:end])
    return parsed, head, raw, chunked, bytes(body)


class HttpBackend(BackendServer):
    """A strict, recording, keep-alive HTTP/1.1 backend (see the module docstring).

    - `accepted`: connections accepted; `streams[i]`: every byte received on connection i
    - `requests`: every complete request, in arrival order; `incomplete`: connections that ended mid-request
    - `idle_timeout`: close a connection that stays idle this long between requests (a backend's own
      keep-alive timeout)
    - a request with `Expect: 100-continue` and a body gets `100 Continue` before the body is read
    """

    def __init__(self, handler: Handler | None = None, name: str = "backend", idle_timeout: float = DEFAULT_IDLE,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.name = name
        self.handler: Handler = handler or describe(name)
        self.idle_timeout = idle_timeout
        self.streams: list[bytearray] = []
        self.requests: list[ReceivedRequest] = []
        self.incomplete: list[int] = []
        self.continues_sent = 0
        self.closed_idle = 0
        self.got_request = threading.Event()

    # -- observation -----------------------------------------------------------------------------------
    def received_bytes(self) -> int:
        with self._lock:
            return sum(len(s) for s in self.streams)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.target for r in self.requests]

    # -- serving ---------------------------------------------------------------------------------------
    def handle(self, conn: socket.socket) -> None:
        record = bytearray()
        with self._lock:
            index = len(self.streams)
            self.streams.append(record)
        reader = _Reader(conn, record, self._stopping)
        seq = 0
        while not self.stopping:
            try:
                if not reader.buf:
                    conn.settimeout(self.idle_timeout)
                    try:
                        if not reader.fill():
                            return
                    except TimeoutError:
                        with self._lock:
                            self.closed_idle += 1
                        return
                    finally:
                        conn.settimeout(BACKEND_IO_TIMEOUT)
                request = self._read(reader, conn, index, seq)
            except _PeerClosed:
                with self._lock:
                    self.incomplete.append(index)
                return
            if request is None:
                return
            seq += 1
            reply = self.handler(request)
            if not self._answer(conn, reader, reply, request):
                return

    def _read(self, reader: _Reader, conn: socket.socket, index: int, seq: int) -> ReceivedRequest | None:
        # Look at the head before the body is awaited, so that 100 Continue can go out in between.
        while b"\r\n\r\n" not in reader.buf:
            if len(reader.buf) > MAX_HEAD:
                raise ForwardedRequestError(f"head larger than {MAX_HEAD} bytes")
            if not reader.fill():
                if reader.buf:
                    raise _PeerClosed
                return None
        head = bytes(reader.buf[: reader.buf.find(b"\r\n\r\n") + 4]).lower()
        has_body = (re.search(rb"\r\ncontent-length: *[1-9]", head) is not None
                    or b"\r\ntransfer-encoding:" in head)
        if has_body and re.search(rb"\r\nexpect: *100-continue *\r\n", head):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            with self._lock:
                self.continues_sent += 1
        result = read_request(reader)
        if result is None:
            return None
        parsed, head_bytes, raw, chunked, body = result
        request = ReceivedRequest(index, seq, parsed.method, parsed.target, parsed.version,
                                  tuple(parsed.headers), body, head_bytes, raw, chunked)
        with self._lock:
            self.requests.append(request)
        self.got_request.set()
        return request

    def _answer(self, conn: socket.socket, reader: _Reader, reply: Reply, request: ReceivedRequest) -> bool:
        """Send `reply`; False when the connection is finished."""
        if reply.delay and self._stopping.wait(reply.delay):
            return False
        if reply.hang:
            conn.settimeout(None)
            while not self.stopping and reader.fill():
                pass
            return False
        data = reply.encode()
        if data:
            conn.sendall(data)
        if reply.tunnel:
            # Bytes that arrived right behind the head belong to the tunnel.
            if reader.buf:
                conn.sendall(bytes(reader.buf))
                reader.buf.clear()
            while reader.fill():
                conn.sendall(bytes(reader.buf))
                reader.buf.clear()
            conn.shutdown(socket.SHUT_WR)
            return False
        if reply.close:
            return False
        connection = (request.header("Connection") or "").lower()
        if "close" in [t.strip() for t in connection.split(",")]:
            return False
        return not (request.version == "HTTP/1.0" and "keep-alive" not in connection)

