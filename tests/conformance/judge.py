"""A strict, deliberately plain HTTP/1.1 stream reader that judges what a proxy forwarded.

It shares no code with rsp.http1 (no regular expressions, no shared tables), so it is a second
opinion, not a copy: line splitting, byte sets and framing rules are spelled out here once more.

`judge_requests(data)` reads a backend's received byte stream and returns the complete requests and the
first problem. Problems that matter for request smuggling: invalid HTTP, Transfer-Encoding together with
Content-Length, more than one Content-Length, any transfer coding but a single `chunked`, a malformed
chunked body. `judge_responses(data, methods)` counts the complete responses a client received.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
VALUE_BYTES = frozenset([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
TARGET_BYTES = frozenset(range(0x21, 0x7F)) - {ord("#")}
HEX = frozenset(b"0123456789abcdefABCDEF")
DIGITS = frozenset(b"0123456789")


class Incomplete(Exception):
    """The stream ends inside a message."""


class Invalid(Exception):
    """The stream is not valid HTTP/1.1."""


@dataclass
class Message:
    start_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def method(self) -> bytes:
        return self.start_line.split(b" ")[0]

    @property
    def target(self) -> bytes:
        return self.start_line.split(b" ")[1]

    @property
    def status(self) -> int:
        return int(self.start_line.split(b" ")[1])


@dataclass
class Judgement:
    messages: list[Message]
    problem: str | None  # None: the stream is a clean sequence of complete messages
    incomplete: bool = False  # the problem is only that the last message is unfinished


def _all_in(data: bytes, allowed: frozenset[int]) -> bool:
    return all(byte in allowed for byte in data)


def _read_head(data: bytes, pos: int) -> tuple[bytes, list[bytes], int]:
    end = data.find(b"\r\n\r\n", pos)
    if end < 0:
        raise Incomplete()
    lines = data[pos:end].split(b"\r\n")
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise Invalid("bare CR or LF in head")
    return lines[0], lines[1:], end + 4


def _read_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    fields = []
    for line in lines:
        colon = line.find(b":")
        if colon <= 0:
            raise Invalid(f"field line without a name and colon: {line!r}")
        name = line[:colon]
        if not _all_in(name, TCHAR):
            raise Invalid(f"invalid field name {name!r}")
        value = line[colon + 1 :].strip(b" \t")
        if not _all_in(value, VALUE_BYTES):
            raise Invalid(f"invalid byte in the value of {name!r}")
        fields.append((name, value))
    return fields


def _framing(message: Message, version: bytes) -> tuple[str, int]:
    codings = message.values(b"transfer-encoding")
    lengths = message.values(b"content-length")
    if codings and lengths:
        raise Invalid("Transfer-Encoding and Content-Length together")
    if len(lengths) > 1:
        raise Invalid("more than one Content-Length")
    if codings:
        if version != b"HTTP/1.1":
            raise Invalid("Transfer-Encoding in HTTP/1.0")
        if len(codings) != 1 or codings[0].lower() != b"chunked":
            raise Invalid(f"transfer coding other than one chunked: {codings!r}")
        return "chunked", 0
    if lengths:
        if not lengths[0] or not _all_in(lengths[0], DIGITS) or len(lengths[0]) > 18:
            raise Invalid(f"invalid Content-Length {lengths[0]!r}")
        return "length", int(lengths[0])
    return "none", 0


def _read_chunked(data: bytes, pos: int) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
    body = bytearray()
    for _ in range(len(data) + 1):  # every pass consumes at least one line
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise Incomplete()
        line = data[pos:eol]
        size_text = line.split(b";", 1)[0]
        if not size_text or not _all_in(size_text, HEX) or len(size_text) > 15:
            raise Invalid(f"invalid chunk size line {line!r}")
        if b";" in line:
            for extension in line.split(b";")[1:]:
                name = extension.split(b"=", 1)[0]
                if not name or not _all_in(name, TCHAR):
                    raise Invalid(f"invalid chunk extension {line!r}")
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            trailers_end = data.find(b"\r\n", pos)
            if trailers_end == pos:
                return bytes(body), [], pos + 2
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                raise Incomplete()
            lines = data[pos:end].split(b"\r\n")
            for item in lines:
                if b"\r" in item or b"\n" in item:
                    raise Invalid("bare CR or LF in trailers")
            return bytes(body), _read_fields(lines), end + 4
        if len(data) < pos + size + 2:
            raise Incomplete()
        body += data[pos : pos + size]
        if data[pos + size : pos + size + 2] != b"\r\n":
            raise Invalid("chunk data not followed by CRLF")
        pos += size + 2
    raise Invalid("chunked body never ends")  # pragma: no cover - the loop always returns or raises


def judge_requests(data: bytes) -> Judgement:
    """Read `data` as a sequence of HTTP/1.x requests, as strictly as RFC 9112 allows."""
    messages: list[Message] = []
    pos = 0
    try:
        while pos < len(data):
            start, lines, pos = _read_head(data, pos)
            parts = start.split(b" ")
            if len(parts) != 3:
                raise Invalid(f"request line is not three parts: {start!r}")
            method, target, version = parts
            if not method or not _all_in(method, TCHAR):
                raise Invalid(f"invalid method {method!r}")
            if not target or not _all_in(target, TARGET_BYTES):
                raise Invalid(f"invalid request-target {target!r}")
            if version not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise Invalid(f"invalid version {version!r}")
            message = Message(start, _read_fields(lines))
            hosts = message.values(b"host")
            if len(hosts) > 1 or (version == b"HTTP/1.1" and not hosts):
                raise Invalid("not exactly one Host")
            kind, length = _framing(message, version)
            if kind == "length":
                if len(data) < pos + length:
                    raise Incomplete()
                message.body = data[pos : pos + length]
                pos += length
            elif kind == "chunked":
                message.body, message.trailers, pos = _read_chunked(data, pos)
            messages.append(message)
    except Incomplete:
        return Judgement(messages, "incomplete request at the end of the stream", incomplete=True)
    except Invalid as problem:
        return Judgement(messages, str(problem))
    return Judgement(messages, None)


def judge_responses(data: bytes, methods: list[bytes], closed: bool) -> Judgement:
    """Read `data` as the responses to requests with `methods`, in order; `closed`: the stream ended
    with the server closing (a close-delimited body is then complete)."""
    messages: list[Message] = []
    pos = 0
    index = 0
    try:
        while pos < len(data):
            start, lines, pos = _read_head(data, pos)
            parts = start.split(b" ", 2)
            if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise Invalid(f"invalid status line {start!r}")
            if len(parts[1]) != 3 or not _all_in(parts[1], DIGITS):
                raise Invalid(f"invalid status code {start!r}")
            message = Message(start, _read_fields(lines))
            status = message.status
            method = methods[index] if index < len(methods) else b"GET"
            if status < 200 and status != 101:
                messages.append(message)
                continue
            index += 1
            if method == b"HEAD" or status in (101, 204, 304):
                messages.append(message)
                if status == 101:
                    break
                continue
            kind, length = _framing(message, parts[0])
            if kind == "length":
                if len(data) < pos + length:
                    raise Incomplete()
                message.body = data[pos : pos + length]
                pos += length
            elif kind == "chunked":
                message.body, message.trailers, pos = _read_chunked(data, pos)
            else:
                if not closed:
                    raise Incomplete()
                message.body = data[pos:]
                pos = len(data)
            messages.append(message)
    except Incomplete:
        return Judgement(messages, "incomplete response at the end of the stream", incomplete=True)
    except Invalid as problem:
        return Judgement(messages, str(problem))
    return Judgement(messages, None)
