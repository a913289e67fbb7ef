"""HTTP/1's edge of the request pipeline: heads into protocol-neutral messages (rsp.pipeline.messages), and a
message a filter changed back into HTTP/1 bytes.

`request_of` / `response_of` make a Request / Response from a parsed head (only when a listener has filters:
an exchange without filters never builds one). `serialise_request` / `serialise_response` are the one place
a changed message becomes a head again: they recompute the framing from `body_length` (RFC 9112 §6), never
from what a filter left in the fields, and apply what rsp adds to every forwarded head (X-Forwarded-*,
Forwarded, Via, Connection), the same way `forward.forward_request` / `forward.forward_response` do for a
head nobody changed. A message nobody changed serialises to exactly the bytes those give
(tests/http1/test_serialise.py), so whether a filter touched a head decides only which function runs.

What the head caches (rsp.proxy.reply_cache) key on is the parsed head; a changed message is not a parsed
head, so it never goes through them: the session calls these functions instead (see docs/architecture.md,
"The request pipeline").
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from rsp.http1.error_pages import error_response
from rsp.http1.events import Headers, RequestHead, ResponseHead
from rsp.http1.forward import (
    _VIA_LINES,
    HOP_BY_HOP,
    VIA_PSEUDONYM,
    Reply,
    RequestContext,
    ResponseContext,
    _decimal,
    proxy_fields,
)
from rsp.http1.head_fields import RESPONSE_FIELDS
from rsp.pipeline.messages import (
    NO_BODY,
    UNIQUE_VALUE_NAMES,
    UNKNOWN_LENGTH,
    Header,
    LocalReply,
    Request,
    Response,
)

_HOST: Final = b"host"
_CONTENT_LENGTH: Final = b"content-length"
_XFF: Final = b"x-forwarded-for"
_XFP: Final = b"x-forwarded-proto"
_XFH: Final = b"x-forwarded-host"
_FORWARDED: Final = b"forwarded"
_REBUILT: Final = frozenset((_XFF, _XFP, _XFH, _FORWARDED))
# Statuses whose responses never have content (RFC 9110 §15.2, §15.3.5, §15.4.5): no framing field is
# written for them, whatever body_length says.
_NO_CONTENT: Final = frozenset((204, 304))
_PHRASES: Final = {int(s): s.phrase.encode("ascii") for s in HTTPStatus}
# rsp's own error pages as local replies (error_reply): what error_pages writes, less its Connection line (the
# codec decides it).
_ERROR_FIELDS: Final = ((b"Content-Type", b"text/html"), (b"Cache-Control", b"no-store"))


def body_length_of(kind: str, length: int) -> int:
    """A Framing (kind, length) as a `body_length`: a byte count, NO_BODY, or UNKNOWN_LENGTH."""
    if kind == "length":
        return length
    if kind == "none":
        return NO_BODY
    return UNKNOWN_LENGTH


class _LastHead:
    """The last head whose end-to-end fields were worked out, and them: a backend repeats its response heads,
    and comparing with the last one (equal fields are mostly the same objects) costs far less on a miss (a
    new X-Request-Id every time) than hashing the head for a bigger memo would."""

    __slots__ = ("connection", "headers", "kept")

    def __init__(self) -> None:
        self.headers: Headers = ()
        self.connection: tuple[bytes, ...] = ()
        self.kept: tuple[Header, ...] = ()


_LAST_HEAD: Final = _LastHead()


def _end_to_end(headers: Headers, connection: tuple[bytes, ...]) -> list[Header]:
    """The field lines without the connection-specific ones (RFC 9110 §7.6.1): the hop-by-hop fields and
    every field the Connection field names. A new list every time (the caller's to change)."""
    last = _LAST_HEAD
    if headers == last.headers and connection == last.connection and headers:
        return list(last.kept)
    drop = HOP_BY_HOP.union(connection) if connection else HOP_BY_HOP
    kept = [(name, value) for name, value in headers if name.lower() not in drop]
    last.headers = headers
    last.connection = connection
    last.kept = tuple(kept)
    return kept


# A field line of a head's `forwardable` section (canonical `Name: value`, rsp.http1.events) -> its field, or
# _DROPPED for a hop-by-hop line: backends repeat most of their lines (Server, Content-Type, ETag), so a line
# that was not in the last head is one dict lookup, its field the same objects every time (their hashes cached
# for the memos after it: rsp.http2.heads, the HPACK encoder). At most MAX_LINE_MEMO lines of up to
# MAX_MEMO_LINE octets per process; a line past the bound is split each time.
MAX_LINE_MEMO: Final = 1024
MAX_MEMO_LINE: Final = 256
_DROPPED: Final = (b"", b"")
_LINE_FIELDS: Final[dict[bytes, Header]] = {}


class _LastSection:
    """The last `forwardable` section made into fields, its lines and their fields (_DROPPED for a hop-by-hop
    one): the next head is mostly the same section, or the same lines in the same places but for a Date or an
    X-Request-Id, and comparing a line with the one in its place costs less than hashing it."""

    __slots__ = ("fields", "forwardable", "kept", "lines")

    def __init__(self) -> None:
        self.forwardable = b"\x00"  # (no section equals it)
        self.lines: list[bytes] = []
        self.fields: list[Header] = []
        self.kept: list[Header] = []


_LAST_SECTION: Final = _LastSection()


def _forwardable_fields(forwardable: bytes) -> list[Header]:
    """The end-to-end fields of a `forwardable` section: its lines (each `Name: value` and CRLF), without the
    hop-by-hop ones the parser did not cut already. A new list every time (the caller's to change)."""
    last = _LAST_SECTION
    if forwardable == last.forwardable:
        return list(last.kept)
    lines = forwardable.split(b"\r\n")
    lines.pop()  # (the empty piece after the last CRLF)
    last_lines = last.lines
    last_fields = last.fields
    known = len(last_lines)
    memo = _LINE_FIELDS
    fields: list[Header] = []
    kept: list[Header] = []
    for i, line in enumerate(lines):
        if i < known and line == last_lines[i]:
            field = last_fields[i]
        else:
            found = memo.get(line)
            if found is None:
                name, _, value = line.partition(b": ")
                low = name.lower()
                found = _DROPPED if low in HOP_BY_HOP else (name, value)
                if len(memo) < MAX_LINE_MEMO and len(line) <= MAX_MEMO_LINE and low not in UNIQUE_VALUE_NAMES:
                    memo[line] = found
            field = found
        fields.append(field)
        if field[0]:  # (not _DROPPED: compiled, a tuple is a value, so compared by its empty name)
            kept.append(field)
    last.forwardable = forwardable
    last.lines = lines
    last.fields = fields
    last.kept = kept
    return list(kept)


def origin_target(head: RequestHead) -> bytes:
    """The request target in origin-form: an absolute-form target loses its scheme and authority
    (RFC 9112 §3.2.2), as forward.forward_request writes it."""
    target = head.target
    if target[:1] == b"/" or target == b"*" or head.method == b"CONNECT":
        return target
    rest = target[target.index(b"://") + 3 + len(head.host):]
    return rest if rest[:1] == b"/" else b"/" + rest


def request_of(head: RequestHead, scheme: bytes) -> Request:
    """The neutral request for a parsed head received over `scheme` (b"http" or b"https")."""
    return Request(head.method, scheme, head.host, origin_target(head), _end_to_end(head.headers, head.connection),
                   head.version, body_length_of(head.body.kind, head.body.length))


def response_of(head: ResponseHead) -> Response:
    """The neutral response for a parsed response head: from its forwardable lines when the parser cut them
    (one memo lookup a line, no split of its raw fields), else from its fields. Its origin is `head` (the
    codec may write that head's bytes while nobody changed the response: Response.origin)."""
    forwardable = head.forwardable
    if forwardable is not None:
        headers = _forwardable_fields(forwardable)
    else:
        headers = _end_to_end(head.headers, head.connection)
    response = Response(head.status, headers, body_length_of(head.body.kind, head.body.length), head.reason)
    response.origin = head
    return response


def serialise_request(request: Request, head: RequestHead, context: RequestContext) -> bytes:
    """The HTTP/1.1 head to send to the backend for `request`, which a filter may have changed; `head` is the
    head it was made from (its version, protocol switch and Host as the client sent them) and `context` what
    forwarding reads besides (rsp.http1.forward.RequestContext). The body follows framed as `body_length`
    says: a count (Content-Length), NO_BODY (Content-Length: 0 only when a Content-Length line was there), or
    UNKNOWN_LENGTH (chunked: the session chunks the body). Host is `request.authority`, where the first Host
    line was (RFC 9112 §3.2: mandatory in HTTP/1.1). Connection-specific fields in `request.headers` are
    dropped (a filter cannot change framing through them), and X-Forwarded-* / Forwarded follow the trust
    rule of forward_request."""
    last = _LAST_REQUEST
    if (context is last.context and request.headers == last.headers and request.target == last.target
            and request.method == last.method and request.authority == last.authority
            and request.body_length == last.body_length and head.version == last.version
            and head.host == last.host and head.upgrade == last.upgrade):
        return last.out
    out = _serialise_request(request, head, context)
    last.context = context
    last.method = request.method
    last.target = request.target
    last.authority = request.authority
    last.headers = list(request.headers)  # (a copy: a filter may change the request's list)
    last.body_length = request.body_length
    last.version = head.version
    last.host = head.host
    last.upgrade = head.upgrade
    last.out = out
    return out


class _LastRequest:
    """The inputs of the last serialise_request and its bytes: the streams of one HTTP/2 connection share
    one RequestContext (rsp.proxy.h2_session) and a client repeats its requests, so the next request
    on the connection mostly serialises to the same bytes. Everything the output depends on is compared
    (the context by identity: its fields are Final)."""

    __slots__ = ("authority", "body_length", "context", "headers", "host", "method", "out", "target", "upgrade",
                 "version")

    def __init__(self) -> None:
        self.context: RequestContext | None = None
        self.method = self.target = self.authority = self.version = self.host = self.out = b""
        self.upgrade: bytes | None = None
        self.headers: list[Header] = []
        self.body_length = 0


_LAST_REQUEST: Final = _LastRequest()


def _serialise_request(request: Request, head: RequestHead, context: RequestContext) -> bytes:
    parts = [request.method, b" ", request.target, b" HTTP/1.1\r\n"]
    append = parts.append
    trusted = context.trusted
    prior_xff: list[bytes] = []
    prior_xfp = prior_xfh = b""
    prior_forwarded: list[bytes] = []
    length = request.body_length
    saw_host = saw_length = False
    for name, value in request.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            continue
        if lowered in _REBUILT:
            if trusted:
                if lowered == _XFF:
                    prior_xff.append(value)
                elif lowered == _FORWARDED:
                    prior_forwarded.append(value)
                elif lowered == _XFP:
                    prior_xfp = value
                else:
                    prior_xfh = value
            continue
        if lowered == _HOST:
            if saw_host:
                continue  # one Host (RFC 9112 §3.2)
            saw_host = True
            value = request.authority
        elif lowered == _CONTENT_LENGTH:
            if saw_length or length == UNKNOWN_LENGTH:
                continue
            saw_length = True
            value = b"%d" % length if length > 0 else b"0"
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if not saw_host:
        append(b"Host: ")
        append(request.authority or context.fallback_host)
        append(b"\r\n")
    if length > 0 and not saw_length:
        append(b"Content-Length: %d\r\n" % length)
    elif length == UNKNOWN_LENGTH:
        append(b"Transfer-Encoding: chunked\r\n")
    tunnel = context.tunnel if context.tunnel is not None else head.upgrade is not None
    if tunnel and head.upgrade is not None:
        append(b"Upgrade: ")
        append(head.upgrade)
        append(b"\r\nConnection: upgrade\r\n")
    elif context.close:
        append(b"Connection: close\r\n")
    proxy_fields(parts, context, head.host, head.version, prior_xff, prior_xfp, prior_xfh, prior_forwarded)
    return b"".join(parts)


# Fields rsp writes itself in a forwarded request head (framing, Host, the proxy fields, Via, the protocol
# switch): a line a filter adds under one of these names needs the whole head serialised anew.
_WRITTEN_BY_RSP: Final = HOP_BY_HOP | _REBUILT | frozenset((_HOST, _CONTENT_LENGTH, b"via"))


def request_with_added_fields(forwarded: bytes, added: list[Header]) -> bytes | None:
    """`forwarded` (the head forward_request made for the request as it came) with the field lines `added`
    before its end: what serialise_request gives for that request with those lines appended, but for where
    the lines stand (after rsp's X-Forwarded-* / Forwarded / Via; the order of fields with different names
    carries no meaning, RFC 9110 §5.3). None when a name is one rsp writes itself (_WRITTEN_BY_RSP): then the
    head must be serialised whole. The common change of a filter, a header added, costs no re-serialising."""
    parts = [forwarded[:-2]]
    for name, value in added:
        if name.lower() in _WRITTEN_BY_RSP:
            return None
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialise_response(response: Response, context: ResponseContext, version: bytes = b"1.1") -> Reply:
    """The HTTP/1.1 response head for `response` (changed by a filter, or made by rsp: a LocalReply) and the
    framing of its body toward the client, answering a request in `context`; `version` is the backend's
    (for Via; b"1.1" for a local reply).

    Framing from body_length (RFC 9112 §6.1-§6.3): a count is Content-Length; UNKNOWN_LENGTH is chunked for
    an HTTP/1.1 client and until-close for an HTTP/1.0 one (which then cannot keep the connection); NO_BODY
    keeps the Content-Length lines the response has, in decimal (a response to HEAD and a 304 carry the
    representation's length, RFC 9110 §8.6). 1xx, 204 and 304 get no framing field. b"" as reason is the
    standard phrase."""
    status = response.status
    length = response.body_length
    client_11 = context.request_version == b"1.1"
    framed = status >= 200 and status not in _NO_CONTENT
    chunked = framed and length == UNKNOWN_LENGTH and client_11
    until_close = framed and length == UNKNOWN_LENGTH and not client_11
    keep_alive = status < 200 or (context.request_keep_alive and not context.close and not until_close)
    reason = response.reason or _PHRASES.get(status, b"")
    parts = [b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    append = parts.append
    saw_length = False
    for name, value in response.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            continue
        if lowered == _CONTENT_LENGTH:
            if saw_length or (framed and length == UNKNOWN_LENGTH):
                continue
            saw_length = True
            value = b"%d" % length if framed and length > 0 else _decimal(value)
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if framed and length > 0 and not saw_length:
        append(b"Content-Length: %d\r\n" % length)
    if chunked:
        append(b"Transfer-Encoding: chunked\r\n")
    if context.upgrade:
        append(b"Connection: upgrade\r\n")
    elif status >= 200:
        if not keep_alive:
            append(b"Connection: close\r\n")
        elif not client_11:
            append(b"Connection: keep-alive\r\n")
    if context.via:
        append(_VIA_LINES.get(version) or b"Via: " + version + b" " + VIA_PSEUDONYM + b"\r\n")
    append(b"\r\n")
    return Reply(chunked, keep_alive, b"".join(parts), b"", b"")


def local_response(status: int, headers: list[Header], body: bytes, head_request: bool) -> Response:
    """The head of a local reply (LocalReply, an error page) with Content-Length from its body (RFC 9110
    §8.6; kept for HEAD, whose body is not sent, RFC 9110 §9.3.2). The caller sends the body unless
    `head_request`."""
    response = Response(status, headers, NO_BODY if head_request or not body else len(body))
    if status >= 200 and status not in _NO_CONTENT:
        response.set(_CONTENT_LENGTH, b"%d" % len(body))
    response.changed = False
    return response


def error_reply(status: int) -> LocalReply:
    """rsp's error page for `status` as a local reply."""
    page = error_response(status)
    body = page[page.index(b"\r\n\r\n") + 4:]
    headers: list[Header] = list(_ERROR_FIELDS)
    return LocalReply(status, headers, body)


def error_page(status: int, head_request: bool) -> tuple[Response, bytes]:
    """rsp's error page for `status` as the head and body to send (no body for HEAD), when no response
    phase runs over it (an HTTP/2 stream's exchange without filters)."""
    reply = error_reply(status)
    body = reply.body
    return local_response(status, reply.response.headers, body, head_request), b"" if head_request else body


# Fields a response's framing, keep-alive or protocol switch depends on (the declaration every head cache keys
# on, rsp.http1.head_fields, which covers the hop-by-hop ones): never added to an unchanged head's bytes.
_DECLARED_RESPONSE: Final = frozenset(RESPONSE_FIELDS.captured + RESPONSE_FIELDS.refused)


def with_added_fields(head: bytes, added: list[Header]) -> bytes | None:
    """`head`, the bytes written for an unchanged response head (ending in its blank line), with the lines a
    filter appended by Response.add before that end; None when one of them is a declared field (framing,
    keep-alive, upgrade), whose value the head's verdict and the head caches' key would have to see: the
    caller then serialises the response anew (serialise_response). The verdict `head` was written with
    reads only declared fields, so it holds for the result."""
    if len(added) == 1:  # the usual case (a cache's X-Cache): one join, no list of parts
        name, value = added[0]
        if name.lower() in _DECLARED_RESPONSE:
            return None
        return b"".join((head[:-2], name, b": ", value, b"\r\n\r\n"))
    parts = [head[:-2]]
    for name, value in added:
        if name.lower() in _DECLARED_RESPONSE:
            return None
        parts.append(name + b": " + value + b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialise_prepared(response: Response, lines: bytes, context: ResponseContext) -> Reply | None:
    """serialise_response for an unchanged response whose field lines are already written (`lines`, every field
    but Content-Length: Response.lines), with a body of a known length (a cache hit's local reply): the status
    line, `lines`, the lines Response.add appended, Content-Length and Connection, as serialise_response would
    write them for such a response (no Via: a local reply was not forwarded). None for any other response
    (no length, no content, 1xx): the caller serialises it."""
    status = response.status
    length = response.body_length
    if length <= 0 or status < 200 or status in _NO_CONTENT:
        return None
    client_11 = context.request_version == b"1.1"
    keep_alive = context.request_keep_alive and not context.close
    reason = response.reason or _PHRASES.get(status, b"")
    parts = [b"HTTP/1.1 %d " % status, reason, b"\r\n", lines]
    added = response.added
    if added is not None:
        for name, value in added:
            if name.lower() in _DECLARED_RESPONSE:
                return None
            parts.append(name + b": " + value + b"\r\n")
    parts.append(b"Content-Length: %d\r\n" % length)
    if context.upgrade:
        return None
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif not client_11:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return Reply(False, keep_alive, b"".join(parts), b"", b"")
