"""A raw HTTP/1.1 client for black-box tests, and the Lua config of an rsp HTTP listener.

The client writes exactly the bytes a test gives it (so the test controls framing) and reads responses
with a small strict parser that follows RFC 9112 §6.3 for the length of a response body: no body after
HEAD, 1xx, 204 and 304; chunked; Content-Length; else until the server closes. Every read is bounded by
the socket timeout, so a test never hangs on a proxy that forgets to answer.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from support.headers import HeaderLookup
from support.rsp_process import SUITE_WORKERS, with_workers

CLIENT_TIMEOUT = 10.0
RECV_SIZE = 256 * 1024
MAX_RESPONSE_HEAD = 256 * 1024
STATUS_LINE_RE = re.compile(rb"(HTTP/1\.[01]) (\d{3}) ?([^\r\n]*)")
FIELD_LINE_RE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")


class ResponseError(AssertionError):
    """The proxy's answer is missing, cut short or not valid HTTP/1.1."""


@dataclass(frozen=True)
class Response(HeaderLookup):
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    head: bytes  # exact head bytes through the empty line
    chunked: bool = False
    interim: tuple[Response, ...] = ()  # 1xx responses that came before this one (100 Continue, ...)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason!r} head={self.head[:300]!r} body={self.body[:200]!r}>"


def build_request(method: str = "GET", target: str = "/", host: str | None = "example.com",
                  headers: Iterable[tuple[str, str]] = (), body: bytes = b"", version: str = "HTTP/1.1",
                  content_length: bool | None = None) -> bytes:
    """A request's bytes. Content-Length is added when there is a body (unless `content_length` is False
    or the headers already frame it)."""
    header_list = list(headers)
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in header_list]
    framed = any(n.lower() in ("content-length", "transfer-encoding") for n, _ in header_list)
    if content_length is None:
        content_length = bool(body) and not framed
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(pieces: Sequence[bytes], trailers: Sequence[tuple[str, str]] = (), ext: str = "") -> bytes:
    """Chunked encoding of `pieces` (empty pieces are skipped: a zero-size chunk ends the body)."""
    out = bytearray()
    for piece in pieces:
        if piece:
            out += f"{len(piece):x}{ext}\r\n".encode() + piece + b"\r\n"
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}: {value}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


class HttpConn:
    """One client connection with its own read buffer (responses on a keep-alive connection share it)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = CLIENT_TIMEOUT,
                 rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError as exc:
            raise ResponseError(f"no answer within {self.timeout} s; have {bytes(self.buf[:300])!r}") from exc
        except ConnectionResetError as exc:
            raise ResponseError(f"connection reset; have {bytes(self.buf[:300])!r}") from exc
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_RESPONSE_HEAD:
                raise ResponseError("response line too long")
            if not self._fill():
                raise ResponseError(f"connection closed mid-line; have {bytes(self.buf[:300])!r}")
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise ResponseError(f"connection closed after {len(self.buf)} of {size} body bytes")
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def _head(self) -> tuple[str, int, str, list[tuple[str, str]], bytes]:
        if not self.buf and not self._fill():
            raise ResponseError("connection closed before any response byte")
        status_line = self._line()
        match = STATUS_LINE_RE.fullmatch(status_line)
        if match is None:
            raise ResponseError(f"invalid status line {status_line!r}")
        headers: list[tuple[str, str]] = []
        head = bytearray(status_line + b"\r\n")
        while line := self._line():
            head += line + b"\r\n"
            if len(head) > MAX_RESPONSE_HEAD:
                raise ResponseError("response head too large")
            field = FIELD_LINE_RE.fullmatch(line)
            if field is None or line[:1] in (b" ", b"\t"):
                raise ResponseError(f"invalid response field line {line!r}")
            headers.append((field.group(1).decode("latin-1"), field.group(2).decode("latin-1")))
        head += b"\r\n"
        version, status, reason = match.groups()
        return version.decode(), int(status), reason.decode("latin-1"), headers, bytes(head)

    def read_response(self, method: str = "GET") -> Response:
        """The next final response (1xx interim responses are collected in `.interim`; a 101 is final)."""
        interim: list[Response] = []
        for _ in range(10):
            response = self.read_one(method)
            if 100 <= response.status < 200 and response.status != 101:
                interim.append(response)
                continue
            if not interim:
                return response
            return Response(response.version, response.status, response.reason, response.headers,
                            response.body, response.head, response.chunked, tuple(interim))
        raise ResponseError("more than 10 interim responses")

    def read_one(self, method: str = "GET") -> Response:
        """The next response, interim (1xx) or final, with its body."""
        version, status, reason, headers, head = self._head()
        lengths = [v for n, v in headers if n.lower() == "content-length"]
        codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
        is_chunked = False
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            body = b""
        elif codings:
            if lengths:
                raise ResponseError(f"response has both Transfer-Encoding and Content-Length: {head!r}")
            if [c.strip().lower() for c in ",".join(codings).split(",")][-1] != "chunked":
                body = self._to_eof()
            else:
                is_chunked = True
                body = self._chunked_body()
        elif lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                raise ResponseError(f"invalid Content-Length in {head!r}")
            body = self.read_exact(int(lengths[0]))
        else:
            body = self._to_eof()
        return Response(version, status, reason, tuple(headers), body, head, is_chunked)

    def _chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            line = self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ResponseError(f"invalid chunk-size line {line!r}") from exc
            if size == 0:
                while self._line():
                    pass
                return bytes(body)
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise ResponseError("chunk data not followed by CRLF")

    def _to_eof(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def request(self, method: str = "GET", target: str = "/", host: str | None = "example.com",
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Response:
        self.send(build_request(method, target, host, headers, body))
        return self.read_response(method)

    def wait_closed(self, timeout: float) -> tuple[str, bytes]:
        """Wait for the peer to close: ("eof" | "reset" | "timeout", bytes that arrived meanwhile
        beyond what was already parsed)."""
        extra = bytearray(self.buf)
        self.buf.clear()
        if self.eof:
            return "eof", bytes(extra)
        deadline = time.monotonic() + timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self.sock.settimeout(remaining)
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    self.eof = True
                    return "eof", bytes(extra)
                extra += data
        except ConnectionResetError:
            return "reset", bytes(extra)
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return "timeout", bytes(extra)


def get(port: int, target: str = "/", host: str | None = "example.com",
        headers: Iterable[tuple[str, str]] = (), method: str = "GET", body: bytes = b"",
        timeout: float = CLIENT_TIMEOUT) -> Response:
    """One request on a new connection."""
    with HttpConn(port, timeout=timeout) as conn:
        return conn.request(method, target, host, headers, body)


def send_raw(port: int, data: bytes, method: str = "GET", timeout: float = CLIENT_TIMEOUT) -> Response:
    with HttpConn(port, timeout=timeout) as conn:
        conn.send(data)
        return conn.read_response(method)


# -- rsp configs ---------------------------------------------------------------------------------------

def lua(value: object) -> str:
    """A Python value as a Lua literal (str, bool, int, float, list/tuple, dict with identifier keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(lua(v) for v in value) + " }"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {lua(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no Lua literal for {value!r}")


def http_config(port: int, backends: Sequence[int | str], *, http: dict[str, object] | None = None,
                pools: dict[str, object] | None = None, routes: Sequence[dict[str, object]] = (),
                pool: str = "default", extra: str = "", workers: int = SUITE_WORKERS) -> str:
    """An rsp config with one HTTP listener on 127.0.0.1:`port` whose fallback pool is `pool`.

    `backends` (ports or "host:port") are the pool "default" (none: define it in `pools`); `pools`, `routes`
    and `http` are written as Lua tables; `workers` is stated (the suite's two unless a test says otherwise,
    in `workers` or in `extra`). Access logs are off unless `http` says otherwise, so that stdout stays quiet.
    """
    settings: dict[str, object] = {"access_log": "off"}
    settings.update(http or {})
    entries = [b if isinstance(b, str) else f"127.0.0.1:{b}" for b in backends]
    lines = [
        f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", pool = "{pool}" }} }}',
        f"http = {lua(settings)}",
    ]
    if entries:
        lines.append(f"backends = {lua(entries)}")
    if pools:
        lines.append(f"pools = {lua(pools)}")
    if routes:
        lines.append(f"routes = {lua(list(routes))}")
    return "\n".join(with_workers(lines, extra, workers)) + "\n"


def plain_get(port: int, path: str = "/") -> bytes:
    """The raw reply to one GET with `Connection: close`, read to the end (no parsing: tests look at the bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data
