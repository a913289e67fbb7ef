"""HTTP/2 header lists <-> rsp.pipeline's Request and Response (RFC 9113 §8).

rsp's frame layer (rsp.http2.core) decodes header blocks and leaves the fields to this module (a malformed
request is a stream error, RFC 9113 §8.1.1), so every rule of §8.2 and §8.3 a request must follow is checked here, and a
request that breaks one raises MalformedRequest: the connection resets that stream with PROTOCOL_ERROR.
"""

from __future__ import annotations

import re
from typing import Final, cast

from rsp.errors import MalformedRequest
from rsp.pipeline.messages import NO_BODY, UNKNOWN_LENGTH, Header, Request, Response

# Connection-specific fields (RFC 9113 §8.2.2): a request carrying one is malformed, and a response never
# carries one (RFC 9110 §7.6.1 lists them; Proxy-Connection and Keep-Alive are their legacy spellings).
CONNECTION_SPECIFIC: Final = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                        b"upgrade"})
REQUEST_PSEUDO: Final = frozenset({b":method", b":scheme", b":authority", b":path"})
# A field name: lower-case token characters only (§8.2.1: upper case is malformed in HTTP/2).
_NAME_OK: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
# Names that passed _NAME_OK, so the next request's are a set lookup (clients repeat the same few dozen);
# at most MAX_NAME_MEMO names of up to MAX_MEMO_NAME_LENGTH octets, a bounded memory per process.
MAX_NAME_MEMO: Final = 1024
MAX_MEMO_NAME_LENGTH: Final = 64
_GOOD_NAMES: Final[set[bytes]] = set()
# Whole fields that passed _check_field: a client repeats most of its fields on every request (and the HPACK
# dynamic table hands back the same objects, hashes cached), so the next request's are one set lookup. At
# most MAX_FIELD_MEMO fields of up to MAX_MEMO_FIELD_SIZE octets: a bounded memory per process, and a client
# that fills it with junk only makes the checks run in full again.
MAX_FIELD_MEMO: Final = 1024
MAX_MEMO_FIELD_SIZE: Final = 256
_GOOD_FIELDS: Final[set[tuple[bytes, bytes]]] = set()
_SPACE: Final = 0x20
_TAB: Final = 0x09
_NUL: Final = 0x00
_CR: Final = 0x0D
_LF: Final = 0x0A


def _name_ok(name: bytes) -> bool:
    if name in _GOOD_NAMES:
        return True
    if not _NAME_OK.match(name):
        return False
    if len(_GOOD_NAMES) < MAX_NAME_MEMO and len(name) <= MAX_MEMO_NAME_LENGTH:
        _GOOD_NAMES.add(name)
    return True


def _value_bad(value: bytes) -> bool:
    """A field value with NUL, CR or LF, or a leading or trailing space or tab (§8.2.1).

    The octets are looked for as ints: CPython 3.11's bytes.__contains__ tries a bytes needle as an integer
    first and formats a TypeError for it (~2000 instructions a test); an int goes straight to memchr."""
    if _NUL in value or _CR in value or _LF in value:
        return True
    if not value:
        return False
    first = value[0]
    last = value[-1]
    return first in (_SPACE, _TAB) or last in (_SPACE, _TAB)


def _check_field(name: bytes, value: bytes) -> None:
    if not _name_ok(name):
        raise MalformedRequest(f"field name {name[:40]!r} is not a lower-case token (RFC 9113 §8.2.1)")
    if _value_bad(value):
        raise MalformedRequest(f"field {name!r} has a value with NUL, CR, LF or edge whitespace (§8.2.1)")
    if name in CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {name!r} (RFC 9113 §8.2.2)")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedRequest("TE other than 'trailers' (RFC 9113 §8.2.2)")


class _LastRequest:
    """The last request's decoded fields and what build_request made of them: a client repeats its requests
    (h2load's, a page's assets differ in :path only), and the same fields pass the same checks, so the next
    equal list is a comparison (the HPACK decoder hands back the dynamic table's objects: mostly identical)."""

    __slots__ = ("ended", "fields", "request", "scheme_default")

    def __init__(self) -> None:
        self.fields: list[Header] = []
        self.scheme_default = b""
        self.ended = False
        self.request: Request | None = None


_LAST_REQUEST: Final = _LastRequest()


def build_request(fields: list[Header], scheme_default: bytes, ended: bool) -> Request:
    """The Request for a HEADERS block's decoded fields (RFC 9113 §8.3.1). `ended`: END_STREAM was set (no
    body). Raises MalformedRequest."""
    last = _LAST_REQUEST
    made = last.request
    if made is not None and ended == last.ended and scheme_default == last.scheme_default and fields == last.fields:
        # These fields now (the HPACK decoder's memo hands back the same objects each time, which the next
        # comparison then matches by identity instead of comparing their bytes).
        last.fields = list(fields)
        # A new Request (filters may change it), with its own header list.
        return Request(made.method, made.scheme, made.authority, made.target, list(made.headers),
                       version=b"2", body_length=made.body_length)
    request = _build_request(fields, scheme_default, ended)
    last.fields = list(fields)  # (a copy: the caller's list may change)
    last.scheme_default = scheme_default
    last.ended = ended
    last.request = Request(request.method, request.scheme, request.authority, request.target,
                           list(request.headers), version=b"2", body_length=request.body_length)
    return request


def _build_request(fields: list[Header], scheme_default: bytes, ended: bool) -> Request:
    pseudo: dict[bytes, bytes] = {}
    headers: list[Header] = []
    cookies: list[bytes] = []
    host: bytes | None = None
    content_length: bytes | None = None
    for name, value in fields:
        if name[:1] == b":":
            # Pseudo-header fields come first, once each, only the request ones (§8.3).
            if headers or cookies or host is not None:
                raise MalformedRequest(f"pseudo-header {name!r} after a regular field (RFC 9113 §8.3)")
            if name not in REQUEST_PSEUDO:
                raise MalformedRequest(f"pseudo-header {name!r} is not a request one (RFC 9113 §8.3.1)")
            if name in pseudo:
                raise MalformedRequest(f"pseudo-header {name!r} twice (RFC 9113 §8.3)")
            if _value_bad(value):
                raise MalformedRequest(f"pseudo-header {name!r} has a bad value (RFC 9113 §8.2.1)")
            pseudo[name] = value
            continue
        field = (name, value)
        if field not in _GOOD_FIELDS:
            _check_field(name, value)
            if len(_GOOD_FIELDS) < MAX_FIELD_MEMO and len(name) + len(value) <= MAX_MEMO_FIELD_SIZE:
                _GOOD_FIELDS.add(field)
        if name == b"cookie":
            # Cookie may arrive split into one field per crumb (§8.2.3); HTTP/1 wants one line.
            cookies.append(value)
            continue
        if name == b"host":
            if host is not None:
                raise MalformedRequest("two Host fields (RFC 9110 §7.2)")
            host = value
        elif name == b"content-length":
            if content_length is not None and content_length != value:
                raise MalformedRequest("differing Content-Length fields (RFC 9110 §8.6)")
            content_length = value
        headers.append(field)
    method = pseudo.get(b":method")
    if not method:
        raise MalformedRequest(":method missing (RFC 9113 §8.3.1)")
    authority = pseudo.get(b":authority")
    if method == b"CONNECT":
        # CONNECT (§8.5) would tunnel bytes over a stream; rsp's pipeline has no tunnel for it.
        raise MalformedRequest("CONNECT is not supported over HTTP/2", status=501)
    scheme = pseudo.get(b":scheme")
    path = pseudo.get(b":path")
    if not scheme or not path:
        raise MalformedRequest(":scheme and :path are required (RFC 9113 §8.3.1)")
    if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
        raise MalformedRequest(":path must be origin-form, or '*' for OPTIONS (RFC 9113 §8.3.1)")
    if authority is not None and authority.find(b"@") >= 0:
        raise MalformedRequest(":authority with userinfo (RFC 9113 §8.3.1)")
    if authority is not None and host is not None and host != authority:
        # "A server SHOULD treat a request as malformed if it contains a Host header field that identifies
        # an entity that differs from the entity in the :authority pseudo-header field" (§8.3.1).
        raise MalformedRequest("Host differs from :authority (RFC 9113 §8.3.1)")
    if authority is None:
        authority = host if host is not None else b""
    elif host is None:
        # An intermediary forwarding to HTTP/1.1 creates Host from :authority (§8.3.1); first, as HTTP/1
        # clients send it (RFC 9110 §7.2).
        headers.insert(0, (b"host", authority))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    if ended:
        body_length = NO_BODY
    elif content_length is not None:
        if not content_length.isdigit():
            raise MalformedRequest("Content-Length is not a number (RFC 9110 §8.6)")
        body_length = int(content_length)
    else:
        body_length = UNKNOWN_LENGTH
    if ended and content_length is not None and content_length.isdigit() and int(content_length) != 0:
        raise MalformedRequest("Content-Length without DATA frames (RFC 9113 §8.1.1)")
    return Request(method, scheme or scheme_default, authority, path, headers, version=b"2",
                   body_length=body_length)


def check_trailers(fields: list[Header]) -> list[Header]:
    """A request's trailer section: no pseudo-headers (RFC 9113 §8.1), the field rules of §8.2."""
    for name, value in fields:
        if name[:1] == b":":
            raise MalformedRequest(f"pseudo-header {name!r} in trailers (RFC 9113 §8.1)")
        _check_field(name, value)
    return fields


class _LastFields:
    """The last response head's fields and status, each field's HTTP/2 field (None for a connection-specific
    one), and its HTTP/2 header list: backends repeat their heads, and the same list for the same head lets the
    HPACK encoder reuse its block (HeaderEncoder.encode). A head that differs (a new X-Request-Id) mostly differs
    in one place: a field equal to the one in its place in the last head takes that one's HTTP/2 field, which
    costs less than lower-casing its name or hashing it into a memo.

    Fields are held and moved as `object`: mypyc keeps a variable typed tuple[bytes, bytes] unboxed (a C
    struct) and makes a new tuple each time one goes back into a list. As objects, a field taken from the last
    head is the very object it was, so it costs no allocation here and the encoder's comparison by place
    (HeaderEncoder.encode) succeeds on identity."""

    __slots__ = ("converted", "headers", "out", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[object] = []
        self.converted: list[object] = []
        self.out: list[object] = []


_LAST_FIELDS: Final = _LastFields()
# The :status field of every three-digit status (RFC 9113 §8.3.2), made once (objects: see _LastFields).
_STATUS_FIELDS: Final[dict[int, object]] = {status: (b":status", b"%d" % status) for status in range(100, 1000)}


def response_fields(response: Response) -> list[Header]:
    """The header list of a response head (RFC 9113 §8.3.2): :status first, names lower-cased (§8.2.1),
    connection-specific fields left out (§8.2.2). The list may be shared: the caller only reads it."""
    last = _LAST_FIELDS
    status = response.status
    headers = response.headers
    if status == last.status and headers == last.headers:
        return cast(list[Header], last.out)
    fields = cast(list[object], headers)  # (not unboxed: see _LastFields)
    status_field = _STATUS_FIELDS.get(status)
    out: list[object] = [status_field if status_field is not None else (b":status", b"%d" % status)]
    last_headers = last.headers
    last_converted = last.converted
    known = len(last_headers)
    converted: list[object] = []
    for i in range(len(fields)):
        field = fields[i]
        h2_field: object | None
        if i < known and field == last_headers[i]:
            h2_field = last_converted[i]
        else:
            name, value = cast(Header, field)
            low = name.lower()
            h2_field = None if low in CONNECTION_SPECIFIC or low == b"te" else (low, value)
        converted.append(h2_field)
        if h2_field is not None:
            out.append(h2_field)
    last.status = status
    last.headers = list(fields)  # (a copy: the caller's list may change)
    last.converted = converted
    last.out = out
    return cast(list[Header], out)


def trailer_fields(trailers: list[Header]) -> list[Header]:
    """A response's trailers as HTTP/2 fields: lower-case, no connection-specific ones."""
    return [(name.lower(), value) for name, value in trailers if name.lower() not in CONNECTION_SPECIFIC]
