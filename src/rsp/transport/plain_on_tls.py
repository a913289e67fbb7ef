"""Plain HTTP sent to a TLS port: recognise it from the first bytes, answer it as nginx does, count it.

A TLS client's first record is a handshake record: content type 22 (RFC 8446 §5.1, RFC 5246 §6.2.1). A
client that speaks plain HTTP to the port instead starts with a request line, `method SP ...` where the
method is a token (RFC 9112 §3, RFC 9110 §5.6.2). Without this check the handshake fails and the client
gets an empty reply; with it, an HTTP listener answers `400` with a short explanation and closes (nginx's
"400 The plain HTTP request was sent to HTTPS port"), a TCP listener just closes. Either way a log line
says so and `PlainHttpGuard.count` counts it.

Sans-IO: `classify_first_bytes` reads bytes, `PlainHttpGuard.refuse` returns what to send. The stream
(rsp.transport.tls_stream) asks on the first bytes, before its handshake, until the answer is decided.

A request line may arrive split anywhere (a client's first segment may be just `GE`). Token characters with
no space yet decide nothing, so the stream keeps what it has and waits for more, at most `DECISION_BYTES`
(a method of MAX_METHOD_LENGTH characters and its space): by then it is a request line or it is not. The
wait costs a TLS client nothing: its first byte is 0x16, decided at once. No timer of its own bounds it:
an undecided connection is one whose handshake waits for bytes, and the handshake's bound applies (HTTP:
`http.header_timeout`, running since the accept; TCP with TLS: `timeouts.idle`). At EOF what arrived
decides (not plain: the handshake fails and closes).
"""

from __future__ import annotations

from typing import Final

from rsp.logs import get_logger

# RFC 8446 §5.1: ContentType handshake(22): every TLS client's first record.
TLS_HANDSHAKE_RECORD: Final = 0x16

# Longest method token looked at: the registered methods are at most 17 characters (IANA HTTP Method
# Registry: "UPDATEREDIRECTREF"); a longer run of token characters is not taken for a request line.
MAX_METHOD_LENGTH: Final = 20
# The most first bytes the check ever needs: a method of MAX_METHOD_LENGTH and the space after it.
DECISION_BYTES: Final = MAX_METHOD_LENGTH + 1

# classify_first_bytes's answers (ints, not an Enum: the stream is compiled).
NOT_PLAIN: Final = 0  # a TLS record, or bytes that are no request line: the handshake goes on
PLAIN: Final = 1  # an HTTP request line's start: refuse
UNDECIDED: Final = 2  # token characters and no space yet, fewer than DECISION_BYTES: wait for more

# tchar (RFC 9110 §5.6.2).
_TCHAR: Final = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_BODY: Final = (b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
                b"<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                b"<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n")

# The answer of an HTTP listener: plain text on the wire (the client does not speak TLS), then close
# (RFC 9112 §9.6: `Connection: close` announces it).
PLAIN_HTTP_REFUSAL: Final = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + _BODY)


def classify_first_bytes(first: bytes) -> int:
    """PLAIN when the first bytes of a connection start an HTTP request line (a token, then a space),
    NOT_PLAIN when they cannot (a TLS record, a byte outside a token, a token longer than any method),
    UNDECIDED when they are token characters without a space yet (decided by DECISION_BYTES bytes)."""
    if not first:
        return UNDECIDED
    if first[0] == TLS_HANDSHAKE_RECORD:
        return NOT_PLAIN
    for i, byte in enumerate(first[:DECISION_BYTES]):
        if byte == 0x20:
            return PLAIN if i > 0 else NOT_PLAIN
        if byte not in _TCHAR:
            return NOT_PLAIN
    return UNDECIDED if len(first) < DECISION_BYTES else NOT_PLAIN


class PlainHttpGuard:
    """One listener kind's policy for plain HTTP on its TLS port: what to answer (b"" = just close) and how
    many it refused in this process."""

    __slots__ = ("count", "kind", "reply")

    def __init__(self, kind: str, reply: bytes) -> None:
        self.kind = kind
        self.reply = reply
        self.count = 0

    def refuse(self, peer: tuple[object, ...]) -> bytes:
        """The answer to a connection whose first bytes were classified PLAIN: the bytes to send before
        closing (b"": just close). The refusal is logged and counted."""
        self.count += 1
        host = f"{peer[0]}:{peer[1]}" if len(peer) >= 2 else "?"
        get_logger().warning("client %s: plain HTTP request sent to a %s TLS port; %s (%d refused so far)",
                             host, self.kind, "answered 400" if self.reply else "closed", self.count)
        return self.reply


# One per listener kind, per process: HTTP listeners answer 400, TCP (passthrough-terminating) ones close.
HTTP_PLAIN_GUARD: Final = PlainHttpGuard("HTTP", PLAIN_HTTP_REFUSAL)
TCP_PLAIN_GUARD: Final = PlainHttpGuard("TCP", b"")
