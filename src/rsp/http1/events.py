"""The events the HTTP/1.1 parsers produce (and the forwarding helpers consume).

A message is always reported as one head, zero or more `Data`, then one `EndOfMessage`:

    RequestHead | ResponseHead,  Data*,  EndOfMessage

Interim (1xx) responses follow the same shape with no `Data`; the response parser then keeps waiting for
the final response to the same request.

Field lines are `headers: tuple[tuple[bytes, bytes], ...]` in the order received. Names keep the case the
peer sent (backends that care about case keep working); values have their surrounding optional
whitespace removed (RFC 9112 §5.1) and are otherwise the bytes received. Fields are never merged.

Events are frozen and slotted. `EndOfMessage` without trailers is the shared instance `END_OF_MESSAGE`
and the three body-less framings are shared constants, so a small keep-alive GET costs the head event
and the bytes of its field section; the headers tuple is built when someone reads it (see `raw`). A
parser hands out the same event again for the same head bytes (its one-head memo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rsp.http1.fields import FIELD_LINE_RE, has_trailing_ows, strip_values

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
    raw, forwardable: set by the parser only (not __init__ arguments, not compared); see below.
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
    raw: bytes = field(default=b"", init=False, compare=False, repr=False)
    forwardable: bytes | None = field(default=None, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A status line and its header section, validated.

    status: 100..599. reason: the reason-phrase as sent (may be b"").
    version: b"1.0" or b"1.1".
    keep_alive: whether the server allows another request on this connection after this response.
    body: the framing of the response body, already resolved against the request method (HEAD, CONNECT)
        and the status (1xx, 204, 304) as RFC 9112 §6.3 requires.
    connection: as for RequestHead.
    raw, forwardable: as for RequestHead.
    """

    status: int
    reason: bytes
    version: bytes
    headers: Headers
    keep_alive: bool
    body: Framing
    connection: tuple[bytes, ...] = ()
    raw: bytes = field(default=b"", init=False, compare=False, repr=False)
    forwardable: bytes | None = field(default=None, init=False, compare=False, repr=False)


# What `raw` and `forwardable` hold (both heads). They let the hot path skip work nobody asks for:
#
# raw: the field section exactly as received (each field line with its CRLF, the empty line excluded)
#     when the parser took its fast path; `headers` is then split from it on first access (the parser
#     validated every byte already, so splitting cannot fail). b"" otherwise (headers were built eagerly).
# forwardable: the field lines the forwarding helpers may copy unchanged: `raw` without its hop-by-hop
#     lines (Connection, Keep-Alive, Transfer-Encoding, Upgrade). The parser sets it only when that copy
#     is byte for byte what rebuilding the section from `headers` would give: every line in the canonical
#     form `Name: value` (one space, no trailing whitespace), no field that forwarding rewrites (X-Forwarded-*,
#     Forwarded, Content-Length with leading zeros) or drops beyond those lines (a Connection option naming
#     another field). None otherwise: forwarding then rebuilds the section from `headers`.
# Neither is an __init__ argument, so `RequestHead(...)` and `dataclasses.replace()` give b"" / None.


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


# -- lazy headers -------------------------------------------------------------------------------------
# A head built by the parser's fast path holds headers=None in its slot and the validated field section
# in `raw`; the `headers` attribute splits it on first access and stores the tuple in the slot. Equality,
# hashing, repr and dataclasses.replace() read the attribute, so they see the same tuple an eager head
# holds. Splitting costs about as much as the rest of parsing a head, and forwarding a head whose
# `forwardable` is set never needs it.


def split_raw(raw: bytes) -> Headers:
    """The (name, value) pairs of a field section the parser validated (values without OWS)."""
    pairs: list[tuple[bytes, bytes]] = FIELD_LINE_RE.findall(raw)
    if has_trailing_ows(raw, 0, len(raw)):
        pairs = strip_values(pairs)
    return tuple(pairs)


class _LazyHeaders:
    """Data descriptor replacing the `headers` slot descriptor of both head classes."""

    __slots__ = ("_get", "_set")

    def __init__(self, member: Any) -> None:
        self._get = member.__get__
        self._set = member.__set__

    def __get__(self, head: Any, owner: Any = None) -> Any:
        if head is None:
            return self
        headers = self._get(head)
        if headers is None:
            headers = split_raw(head.raw)
            self._set(head, headers)
        return headers

    def __set__(self, head: Any, value: Any) -> None:
        self._set(head, value)


_REQUEST_SLOTS = {name: RequestHead.__dict__[name] for name in RequestHead.__dataclass_fields__}
_RESPONSE_SLOTS = {name: ResponseHead.__dict__[name] for name in ResponseHead.__dataclass_fields__}
setattr(RequestHead, "headers", _LazyHeaders(_REQUEST_SLOTS["headers"]))  # noqa: B010 - class attribute
setattr(ResponseHead, "headers", _LazyHeaders(_RESPONSE_SLOTS["headers"]))  # noqa: B010


# -- fast constructors --------------------------------------------------------------------------------
# A frozen dataclass __init__ goes through object.__setattr__ once per field: about 1.2 us for
# RequestHead's twelve fields on the machine of rsp/http1/README.md. The parsers build heads instead as
# an instance of a plain class with the same slots in the same order (plain attribute stores, which the
# interpreter specialises) and then switch the instance's class to the frozen one, which Python allows
# between classes of identical layout: 0.3 us for the same object. Equality, hashing and repr are the
# dataclass ones; the switch raises TypeError (at import, below) if the layouts ever differ.
_new = object.__new__


class _RequestHeadInit:
    __slots__ = tuple(RequestHead.__dataclass_fields__)


class _ResponseHeadInit:
    __slots__ = tuple(ResponseHead.__dataclass_fields__)


def make_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: Headers | None,
    keep_alive: bool,
    body: Framing,
    upgrade: bytes | None,
    expect_continue: bool,
    host: bytes,
    connection: tuple[bytes, ...],
    raw: bytes = b"",
    forwardable: bytes | None = None,
) -> RequestHead:
    """Same as RequestHead(...) with every field given, at a quarter of the cost. headers=None: split
    from `raw` on first access (raw must then be a field section the parser validated)."""
    head: Any = _new(_RequestHeadInit)
    head.method = method
    head.target = target
    head.version = version
    head.headers = headers
    head.keep_alive = keep_alive
    head.body = body
    head.upgrade = upgrade
    head.expect_continue = expect_continue
    head.host = host
    head.connection = connection
    head.raw = raw
    head.forwardable = forwardable
    head.__class__ = RequestHead
    return head  # type: ignore[no-any-return]


def make_response_head(
    status: int,
    reason: bytes,
    version: bytes,
    headers: Headers | None,
    keep_alive: bool,
    body: Framing,
    connection: tuple[bytes, ...],
    raw: bytes = b"",
    forwardable: bytes | None = None,
) -> ResponseHead:
    """Same as ResponseHead(...) with every field given, at a quarter of the cost; headers as above."""
    head: Any = _new(_ResponseHeadInit)
    head.status = status
    head.reason = reason
    head.version = version
    head.headers = headers
    head.keep_alive = keep_alive
    head.body = body
    head.connection = connection
    head.raw = raw
    head.forwardable = forwardable
    head.__class__ = ResponseHead
    return head  # type: ignore[no-any-return]


_set_data = Data.__dict__["data"].__set__


def make_data(data: bytes) -> Data:
    """Same as Data(data) without the frozen __init__ (about 60 % of the cost)."""
    event = _new(Data)
    _set_data(event, data)
    return event


# Fail at import, not at the first request, if a layout ever stops matching.
make_request_head(b"GET", b"/", b"1.1", (), True, NO_BODY, None, False, b"", ())
make_response_head(200, b"", b"1.1", (), True, NO_BODY, ())
