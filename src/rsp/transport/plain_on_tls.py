"""Plain HTTP sent to a TLS port: recognise it from the first bytes, answer it as nginx does, count it.

A TLS client's first record is a handshake record: content type 22 (RFC 8446 §5.1, RFC 5246 §6.2.1). A
client that speaks plain HTTP to the port instead starts with a request line, `method SP ...` where the
method is a token (RFC 9112 §3, RFC 9110 §5.6.2). Without this check the handshake fails and the client
gets an empty reply; with it, an HTTP listener answers `400` with a short explanation and closes (nginx's
"400 The plain HTTP request was sent to HTTPS port"), a TCP listener just closes. Either way a log line
says so and `PlainHttpGuard.count` counts it.

Sans-IO: `looks_like_plain_http` reads bytes, `PlainHttpGuard.refuse` returns what to send. The stream
(rsp.transport.tls_stream) asks once per connection, on the first bytes before its handshake.
"""

from __future__ import annotations

from typing import Final

from rsp.logs import get_logger

# RFC 8446 §5.1: ContentType handshake(22): every TLS client's first record.
TLS_HANDSHAKE_RECORD: Final = 0x16

# Longest method token looked at: the registered methods are at most 17 characters (IANA HTTP Method
# Registry: "UPDATEREDIRECTREF"); a longer run of token characters is not taken for a request line.
MAX_METHOD_LENGTH: Final = 20

# tchar (RFC 9110 §5.6.2).
_TCHAR: Final = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_BODY: Final = (b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
                b"<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                b"<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n")

# The answer of an HTTP listener: plain text on the wire (the client does not speak TLS), then close
# (RFC 9112 §9.6: `Connection: close` announces it).
PLAIN_HTTP_REFUSAL: Final = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + _BODY)


def looks_like_plain_http(first: bytes) -> bool:
    """Whether the first bytes of a connection are an HTTP request line's start (a token, then a space)
    rather than a TLS record."""
    if not first or first[0] == TLS_HANDSHAKE_RECORD:
        return False
    for i, byte in enumerate(first[:MAX_METHOD_LENGTH + 1]):
        if byte == 0x20:
            return i > 0
        if byte not in _TCHAR:
            return False
    return False


class PlainHttpGuard:
    """One listener kind's policy for plain HTTP on its TLS port: what to answer (b"" = just close) and how
    many it refused in this process."""

    __slots__ = ("count", "kind", "reply")

    def __init__(self, kind: str, reply: bytes) -> None:
        self.kind = kind
        self.reply = reply
        self.count = 0

    def refuse(self, peer: tuple[object, ...], first: bytes) -> bytes | None:
        """The answer to a connection whose first bytes are `first`: None when they are not plain HTTP (the
        handshake goes on), else the bytes to send before closing (and the refusal is logged and counted)."""
        if not looks_like_plain_http(first):
            return None
        self.count += 1
        host = f"{peer[0]}:{peer[1]}" if len(peer) >= 2 else "?"
        get_logger().warning("client %s: plain HTTP request sent to a %s TLS port; %s (%d refused so far)",
                             host, self.kind, "answered 400" if self.reply else "closed", self.count)
        return self.reply


# One per listener kind, per process: HTTP listeners answer 400, TCP (passthrough-terminating) ones close.
HTTP_PLAIN_GUARD: Final = PlainHttpGuard("HTTP", PLAIN_HTTP_REFUSAL)
TCP_PLAIN_GUARD: Final = PlainHttpGuard("TCP", b"")
