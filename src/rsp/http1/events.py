"""The events the HTTP/1.1 parsers produce (and the forwarding helpers consume).

A message is always reported as one head, zero or more `Data`, then one `EndOfMessage`:

    RequestHead | ResponseHead,  Data*,  EndOfMessage

Interim (1xx) responses follow the same shape with no `Data`; the response parser then keeps waiting for
the final response to the same request.

Field lines are `headers: tuple[tuple[bytes, bytes], ...]` in the order received. Names keep the case the
peer sent (backends that care about case keep working); values have their surrounding optional
whitespace removed (RFC 9112 §5.1) and are otherwise the bytes received. Fields are never merged.

Events are frozen and slotted. `EndOfMessage` without trailers is the shared instance `END_OF_MESSAGE`
and the three body-less framings are shared constants, so a small keep-alive GET costs two allocations
beyond its head: the head event and its headers tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Headers = tuple[tuple[bytes, bytes], ...]
FramingKind = Literal["none", "length", "chunked", "close"]


@dataclass(frozen=True, slots=True)
class Framing:
    """How the body of a message is delimited on the wire (RFC 9112 §6.3).

    kind "none": no body bytes follow the head (also Content-Length: 0, HEAD/1xx/204/304 responses);
    "length": exactly `length` bytes follow (Content-Length); "chunked": the chunked coding
    (RFC 9112 §7.1), `length` is 0; "close": the body is every byte until the peer closes the
    connection (responses only), `length` is 0.
    """

    kind: FramingKind
    length: int = 0


NO_BODY = Framing("none")
CHUNKED = Framing("chunked")
UNTIL_CLOSE = Framing("close")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request line and its header section, validated.

    method: the method token as sent (methods are case-sensitive, RFC 9110 §9.1).
    target: the request-target as sent (origin-, absolute-, authority- or asterisk-form, RFC 9112 §3.2).
    version: b"1.0" or b"1.1".
    keep_alive: whether the client allows another request on this connection (RFC 9112 §9.3).
    body: the framing of the request body.
    upgrade: the Upgrade field value when the request asks to switch protocols (HTTP/1.1, the Connection
        field lists "upgrade" and an Upgrade field is present, h2c excluded), else None.
    expect_continue: the client sent `Expect: 100-continue` (RFC 9110 §10.1.1).
    host: the authority of the target URI: the authority of an absolute-form target (RFC 9112 §3.2.2),
        of a CONNECT target, else the Host field value; b"" if there is none (HTTP/1.0 without Host).
    connection: the Connection field's options, lower-cased, in order ("close", "upgrade", field names
        that are hop-by-hop for this message, RFC 9110 §7.6.1); () when the field is absent.
    """

    method: bytes
    target: bytes
    version: bytes
    headers: Headers
    keep_alive: bool
    body: Framing
    upgrade: bytes | None = None
    expect_continue: bool = False
    host: bytes = b""
    connection: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A status line and its header section, validated.

    status: 100..599. reason: the reason-phrase as sent (may be b"").
    version: b"1.0" or b"1.1".
    keep_alive: whether the server allows another request on this connection after this response.
    body: the framing of the response body, already resolved against the request method (HEAD, CONNECT)
        and the status (1xx, 204, 304) as RFC 9112 §6.3 requires.
    connection: as for RequestHead.
    """

    status: int
    reason: bytes
    version: bytes
    headers: Headers
    keep_alive: bool
    body: Framing
    connection: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of a message body, de-chunked. Piece boundaries carry no meaning."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message is complete. `trailers` holds the trailer section of a chunked body (RFC 9112 §7.1.2)."""

    trailers: Headers = ()


END_OF_MESSAGE = EndOfMessage()

Event = RequestHead | ResponseHead | Data | EndOfMessage


# Fast constructors for the parsers' hot path. A frozen dataclass __init__ goes through
# object.__setattr__ once per field (about 1.1 us for RequestHead's ten fields); writing the slots
# through their descriptors builds the identical object in half the time. The result is a normal,
# frozen instance: equality, hashing and repr are the dataclass ones.
_new = object.__new__
_REQUEST_SLOTS = [RequestHead.__dict__[name].__set__ for name in RequestHead.__dataclass_fields__]
_RESPONSE_SLOTS = [ResponseHead.__dict__[name].__set__ for name in ResponseHead.__dataclass_fields__]


def make_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: Headers,
    keep_alive: bool,
    body: Framing,
    upgrade: bytes | None,
    expect_continue: bool,
    host: bytes,
    connection: tuple[bytes, ...],
) -> RequestHead:
    """Same as RequestHead(...) with every field given, at half the cost."""
    head = _new(RequestHead)
    s = _REQUEST_SLOTS
    s[0](head, method)
    s[1](head, target)
    s[2](head, version)
    s[3](head, headers)
    s[4](head, keep_alive)
    s[5](head, body)
    s[6](head, upgrade)
    s[7](head, expect_continue)
    s[8](head, host)
    s[9](head, connection)
    return head


def make_response_head(
    status: int,
    reason: bytes,
    version: bytes,
    headers: Headers,
    keep_alive: bool,
    body: Framing,
    connection: tuple[bytes, ...],
) -> ResponseHead:
    """Same as ResponseHead(...) with every field given, at half the cost."""
    head = _new(ResponseHead)
    s = _RESPONSE_SLOTS
    s[0](head, status)
    s[1](head, reason)
    s[2](head, version)
    s[3](head, headers)
    s[4](head, keep_alive)
    s[5](head, body)
    s[6](head, connection)
    return head
