"""The events the HTTP/1.1 parsers produce (and the forwarding helpers consume).

A message is always reported as one head, zero or more `Data`, then one `EndOfMessage`:

    RequestHead | ResponseHead,  Data*,  EndOfMessage

Interim (1xx) responses follow the same shape with no `Data`; the response parser then keeps waiting for
the final response to the same request.

Field lines are `headers: tuple[tuple[bytes, bytes], ...]` in the order received. Names keep the case the
peer sent (backends that care about case keep working); values have their surrounding optional
whitespace removed (RFC 9112 §5.1) and are otherwise the bytes received. Fields are never merged.

Events are immutable: frozen dataclasses, or `Final` attributes that mypy checks and the compiled build
enforces. `EndOfMessage` without trailers is the shared instance `END_OF_MESSAGE` and the three
body-less framings are shared constants, so a small keep-alive GET costs the head event
and the bytes of its field section; the headers tuple is built when someone reads it (see `raw`). A
parser hands out the same event again for the same head bytes (its one-head memo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, Literal

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


NO_BODY: Final = Framing("none")
CHUNKED: Final = Framing("chunked")
UNTIL_CLOSE: Final = Framing("close")


class _Head:
    """What both heads share: `raw`, `headers` split from it on first access when the parser left it None,
    and equality, hash and repr over the fields a head is compared by (`_FIELDS`; raw and forwardable
    are not compared)."""

    __slots__ = ("_headers", "raw")
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, headers: Headers | None, raw: bytes) -> None:
        self._headers = headers
        self.raw: Final = raw

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = split_raw(self.raw)
        return headers

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Head)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__name__}({fields})"


class RequestHead(_Head):
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
    raw, forwardable: set by the parser only (not compared); see below. headers=None: split from `raw`
        on first access (raw must then be a field section the parser validated).
    """

    __slots__ = ("body", "connection", "expect_continue", "forwardable", "host", "keep_alive", "method", "target",
                 "upgrade", "version")
    _FIELDS: ClassVar[tuple[str, ...]] = ("method", "target", "version", "headers", "keep_alive", "body", "upgrade",
                                          "expect_continue", "host", "connection")

    def __init__(self, method: bytes, target: bytes, version: bytes, headers: Headers | None, keep_alive: bool,
                 body: Framing, upgrade: bytes | None = None, expect_continue: bool = False, host: bytes = b"",
                 connection: tuple[bytes, ...] = (), raw: bytes = b"", forwardable: bytes | None = None) -> None:
        super().__init__(headers, raw)
        self.method: Final = method
        self.target: Final = target
        self.version: Final = version
        self.keep_alive: Final = keep_alive
        self.body: Final = body
        self.upgrade: Final = upgrade
        self.expect_continue: Final = expect_continue
        self.host: Final = host
        self.connection: Final = connection
        self.forwardable: Final = forwardable

    def rebuilt(self) -> RequestHead:
        """The same head as an eager one (headers split, no raw, no forwardable): what a head built by
        hand looks like. Tests compare forwarding from both."""
        return RequestHead(self.method, self.target, self.version, self.headers, self.keep_alive, self.body,
                           self.upgrade, self.expect_continue, self.host, self.connection)


class ResponseHead(_Head):
    """A status line and its header section, validated.

    status: 100..599. reason: the reason-phrase as sent (may be b"").
    version: b"1.0" or b"1.1".
    keep_alive: whether the server allows another request on this connection after this response.
    body: the framing of the response body, already resolved against the request method (HEAD, CONNECT)
        and the status (1xx, 204, 304) as RFC 9112 §6.3 requires.
    connection: as for RequestHead.
    raw, forwardable, headers=None: as for RequestHead.
    """

    __slots__ = ("body", "connection", "forwardable", "keep_alive", "reason", "status", "version")
    _FIELDS: ClassVar[tuple[str, ...]] = ("status", "reason", "version", "headers", "keep_alive", "body", "connection")

    def __init__(self, status: int, reason: bytes, version: bytes, headers: Headers | None, keep_alive: bool,
                 body: Framing, connection: tuple[bytes, ...] = (), raw: bytes = b"",
                 forwardable: bytes | None = None) -> None:
        super().__init__(headers, raw)
        self.status: Final = status
        self.reason: Final = reason
        self.version: Final = version
        self.keep_alive: Final = keep_alive
        self.body: Final = body
        self.connection: Final = connection
        self.forwardable: Final = forwardable

    def rebuilt(self) -> ResponseHead:
        """The same head as an eager one (see RequestHead.rebuilt)."""
        return ResponseHead(self.status, self.reason, self.version, self.headers, self.keep_alive, self.body,
                            self.connection)


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
# Both default to b"" / None, which is what a head built by hand (or `head.rebuilt()`) holds.
#
# The heads are plain classes, not dataclasses: compiled with mypyc (see native_modules.txt) a class with
# `Final` attributes is built natively and its attributes are read-only from Python, where a frozen
# dataclass's __init__ goes through object.__setattr__ once per field, several times the cost (see
# docs/performance.md).


class Data:
    """A piece of a message body, de-chunked. Piece boundaries carry no meaning. (A plain class for the
    reason the heads are: one is built per body piece.)"""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data: Final = data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Data):
            return NotImplemented
        return self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"Data(data={self.data!r})"


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message is complete. `trailers` holds the trailer section of a chunked body (RFC 9112 §7.1.2)."""

    trailers: Headers = ()


END_OF_MESSAGE: Final = EndOfMessage()

Event = RequestHead | ResponseHead | Data | EndOfMessage


# Field sections split lately, by their bytes: a client sends the same fields request after request (only the
# request line changes), and splitting a section (a regex over every line, then a scan for trailing OWS) costs
# ten times a dict lookup. The tuples are immutable, so every head with those bytes shares one. Bounded in
# entries and in the sections it keeps; emptied when full (like the other memos of rsp.http1).
_SPLIT: Final[dict[bytes, Headers]] = {}
SPLIT_MEMO_SIZE: Final = 256
SPLIT_MEMO_RAW: Final = 4096


def split_raw(raw: bytes) -> Headers:
    """The (name, value) pairs of a field section the parser validated (values without OWS)."""
    known = _SPLIT.get(raw)
    if known is not None:
        return known
    pairs: list[tuple[bytes, bytes]] = FIELD_LINE_RE.findall(raw)
    if has_trailing_ows(raw, 0, len(raw)):
        pairs = strip_values(pairs)
    headers = tuple(pairs)
    if len(raw) <= SPLIT_MEMO_RAW:
        if len(_SPLIT) >= SPLIT_MEMO_SIZE:
            _SPLIT.clear()
        _SPLIT[raw] = headers
    return headers
