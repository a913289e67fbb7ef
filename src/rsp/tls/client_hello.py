"""Read the server name from a TLS ClientHello without terminating TLS (SNI routing), sans-IO.

`server_name(data)` looks at the bytes a client sent first and answers one of: None (not enough bytes
yet: read more and call again with everything read so far), "" (a complete ClientHello without a
server_name extension), or the host name, lower-cased. Anything else raises ClientHelloError (and only
that): not TLS at all, a malformed hello, or one larger than MAX_HELLO_BYTES.

What is parsed, and where it is specified:
- the record layer (RFC 8446 §5.1): content type 22 (handshake), a legacy version 0x03XX, a length of
  1..2^14; a ClientHello may span several records (§5.1: handshake messages MAY be fragmented across
  records), and several records may arrive in one TCP segment or one record in many segments;
- the handshake header (§4): msg_type 1 (client_hello), a 24-bit length;
- the ClientHello (§4.1.2): legacy_version, random[32], legacy_session_id<0..32>,
  cipher_suites<2..2^16-2>, legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1> (absent in a
  TLS 1.2 hello that has none: RFC 5246 §7.4.1.2);
- server_name (RFC 6066 §3): ServerNameList<1..2^16-1> of (name_type, HostName<1..2^16-1>); only
  host_name (0) is defined, "MUST NOT contain more than one name of the same name_type", and the name is
  an ASCII DNS name without a trailing dot.
"""

from __future__ import annotations

from typing import Final

from rsp.errors import ClientHelloError

# The most bytes read while looking for the server name. A ClientHello is about 0.5 KiB usually and about
# 2 KiB with a post-quantum key share (X25519MLKEM768: 1.2 KiB); 16 KiB (one full record, RFC 8446 §5.1)
# leaves room for large session tickets and bounds what a client can make us hold.
MAX_HELLO_BYTES: Final = 16 * 1024
RECORD_HEADER: Final = 5
MAX_RECORD: Final = 1 << 14  # RFC 8446 §5.1: TLSPlaintext.length MUST NOT exceed 2^14
CONTENT_HANDSHAKE: Final = 22
HANDSHAKE_CLIENT_HELLO: Final = 1
EXTENSION_SERVER_NAME: Final = 0
NAME_TYPE_HOST_NAME: Final = 0
MAX_HOST_NAME: Final = 253  # a DNS name's longest text form (RFC 1035 §2.3.4: 255 octets on the wire)


def server_name(data: bytes) -> str | None:
    """The SNI host name of the ClientHello `data` starts with (see the module docstring)."""
    handshake = _handshake_bytes(data)
    if handshake is None:
        return None
    return _parse_client_hello(handshake)


def _handshake_bytes(data: bytes) -> bytes | None:
    """The ClientHello message (header included) from the records, or None until all of it arrived."""
    if data[:1] and data[0] != CONTENT_HANDSHAKE:
        raise ClientHelloError(f"not a TLS handshake record (first byte {data[0]:#04x})")
    fragments: list[bytes] = []
    have = 0
    pos = 0
    while True:
        if len(data) - pos < RECORD_HEADER:
            if len(data) >= MAX_HELLO_BYTES:
                raise ClientHelloError(f"no complete ClientHello in the first {MAX_HELLO_BYTES} bytes")
            return None
        ctype, major, _minor = data[pos], data[pos + 1], data[pos + 2]
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        if ctype != CONTENT_HANDSHAKE:
            raise ClientHelloError(f"record type {ctype} before the ClientHello was complete")
        if major != 3:
            raise ClientHelloError(f"record version {major}.{_minor} is not TLS")
        if length == 0 or length > MAX_RECORD:
            raise ClientHelloError(f"record length {length} outside 1..{MAX_RECORD}")
        end = pos + RECORD_HEADER + length
        if end > MAX_HELLO_BYTES:
            raise ClientHelloError(f"no complete ClientHello in the first {MAX_HELLO_BYTES} bytes")
        if end > len(data):
            return None
        fragments.append(data[pos + RECORD_HEADER:end])
        have += length
        pos = end
        if have >= 4:
            head = fragments[0] if len(fragments[0]) >= 4 else b"".join(fragments)
            if head[0] != HANDSHAKE_CLIENT_HELLO:
                raise ClientHelloError(f"handshake message type {head[0]}, not client_hello")
            total = 4 + int.from_bytes(head[1:4], "big")
            if total > MAX_HELLO_BYTES:
                raise ClientHelloError(f"ClientHello of {total} bytes is over {MAX_HELLO_BYTES}")
            if have >= total:
                return b"".join(fragments)[:total]


class _Reader:
    """Length-prefixed fields of a TLS structure (RFC 8446 §3.4 vectors); a short field is an error."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise ClientHelloError(f"ClientHello truncated in {what}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def number(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, size: int, what: str, low: int, high: int) -> _Reader:
        n = self.number(size, what)
        if not low <= n <= high:
            raise ClientHelloError(f"{what} length {n} outside {low}..{high}")
        start = self.pos
        self.take(n, what)
        return _Reader(self.data, start, start + n)


def _parse_client_hello(message: bytes) -> str:
    r = _Reader(message, 4, len(message))
    r.take(2, "legacy_version")
    r.take(32, "random")
    r.vector(1, "legacy_session_id", 0, 32)
    suites = r.vector(2, "cipher_suites", 2, 0xFFFE)
    if suites.left() % 2:
        raise ClientHelloError("cipher_suites has an odd length")
    r.vector(1, "legacy_compression_methods", 1, 0xFF)
    if r.left() == 0:
        return ""  # a TLS 1.2 hello without extensions
    extensions = r.vector(2, "extensions", 0, 0xFFFF)
    if r.left():
        raise ClientHelloError("bytes after the extensions")
    found: str | None = None
    seen: set[int] = set()
    while extensions.left():
        kind = extensions.number(2, "extension type")
        body = extensions.vector(2, "extension data", 0, 0xFFFF)
        if kind in seen:  # RFC 8446 §4.2: no more than one extension of the same type
            raise ClientHelloError(f"extension {kind} appears twice")
        seen.add(kind)
        if kind == EXTENSION_SERVER_NAME:
            found = _server_name_extension(body)
    return found or ""


def _server_name_extension(body: _Reader) -> str:
    names = body.vector(2, "server_name_list", 1, 0xFFFF)
    if body.left():
        raise ClientHelloError("bytes after the server_name_list")
    host = ""
    types: set[int] = set()
    while names.left():
        name_type = names.number(1, "name_type")
        name = names.vector(2, "HostName", 1, 0xFFFF)
        if name_type in types:
            raise ClientHelloError("server_name_list holds two names of one type")
        types.add(name_type)
        if name_type == NAME_TYPE_HOST_NAME:
            host = _host_name(name.take(name.left(), "HostName"))
    return host


def _host_name(raw: bytes) -> str:
    if len(raw) > MAX_HOST_NAME:
        raise ClientHelloError(f"host name of {len(raw)} bytes")
    if not raw.isascii() or any(b <= 0x20 or b == 0x7F for b in raw):
        raise ClientHelloError("host name is not printable ASCII")
    text = raw.decode("ascii").lower()
    if text.endswith(".") or text.startswith(".") or ".." in text:
        raise ClientHelloError(f"host name {text!r} is not a DNS name (RFC 6066 §3: no trailing dot)")
    return text
