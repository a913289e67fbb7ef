"""Protocol-neutral requests and responses: what a filter reads and changes.

The HTTP/1 codec (rsp.http1) and the HTTP/2 codec produce these from their wire forms and consume them at the
other edge; nothing here knows a wire format. The fields follow RFC 9110's model of a message: control data
(method, scheme, authority, target / status), a header section of (name, value) pairs in order (names keep
the case they arrived in; compare them case-insensitively, RFC 9110 §5.1), and content.

Connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection, TE;
RFC 9110 §7.6.1, RFC 9113 §8.2.2) are never in `headers`: each codec handles them at its own edge. So a
filter cannot break a message's framing by editing headers; the codec recomputes the framing from
`body_length` and the version when it serialises a changed head (rsp.pipeline.messages is the model, the
codec's `serialise` is the one function that does it).
"""

from __future__ import annotations

from typing import Final

Header = tuple[bytes, bytes]

# `body_length` values besides a byte count: no content at all, or content whose length is not known in
# advance (HTTP/1 chunked or until-close, HTTP/2 DATA frames without content-length).
NO_BODY: Final = 0
UNKNOWN_LENGTH: Final = -1
# Fields (lower-case names) whose values never repeat: a request or trace id per message. The codecs' memos of
# fields and lines leave them out (they would only fill the memos' bounds), and HPACK sends them as literals
# without indexing (rsp.http2.hpack_codec).
UNIQUE_VALUE_NAMES: Final = frozenset((b"x-request-id", b"x-correlation-id", b"x-trace-id", b"traceparent",
                                       b"x-amzn-trace-id", b"x-b3-traceid", b"x-b3-spanid", b"request-id"))


def header_get(headers: list[Header], name: bytes) -> bytes | None:
    """The first value of field `name` (lower-case), or None. Case-insensitive, as RFC 9110 §5.1 says."""
    size = len(name)
    for key, value in headers:
        if len(key) == size and key.lower() == name:  # (the length first: most lines are another field)
            return value
    return None


def header_values(headers: list[Header], name: bytes) -> list[bytes]:
    """Every value of field `name` (lower-case), in order."""
    size = len(name)
    return [value for key, value in headers if len(key) == size and key.lower() == name]


def header_set(headers: list[Header], name: bytes, value: bytes | None) -> None:
    """Replace every line of field `name` (lower-case) with one line `value`, kept where the first line was
    and spelt as it was (a new field is appended as `name`), or remove them all when `value` is None."""
    size = len(name)
    for key, _ in headers:
        if len(key) == size and key.lower() == name:
            break
    else:  # no such field (the usual set of a new header): append it, the list otherwise as it is
        if value is not None:
            headers.append((name, value))
        return
    first = -1
    spelt = name
    kept: list[Header] = []
    for key, old in headers:
        if len(key) == size and key.lower() == name:  # (the length first: most lines are another field)
            if first < 0:
                first = len(kept)
                spelt = key
            continue
        kept.append((key, old))
    if value is not None:
        kept.insert(first if first >= 0 else len(kept), (spelt, value))
    headers[:] = kept


class Request:
    """A request head (RFC 9110 §7.1, §9).

    method: the method token (case-sensitive). scheme: b"http" or b"https" (how the client reached us).
    authority: host[:port] (HTTP/1's Host field or absolute-form authority; HTTP/2's :authority).
    target: the origin-form path and query (b"/a?b=c"), or b"*" for OPTIONS *.
    headers: the field lines, in order, without connection-specific fields.
    version: b"1.0", b"1.1" or b"2": the client's protocol, which some decisions read (RFC 9110 §6.2).
    body_length: NO_BODY, a byte count, or UNKNOWN_LENGTH.
    changed: set by whoever edits the head (the filter helpers do): the codec then serialises it anew instead
        of reusing the bytes that arrived (the verbatim-bytes fast path, docs/performance.md). The session
        also sets it when the method, authority, target, fields or body_length differ from what they were.
    """

    __slots__ = ("authority", "body_length", "changed", "headers", "method", "scheme", "target", "version")

    def __init__(self, method: bytes, scheme: bytes, authority: bytes, target: bytes, headers: list[Header],
                 version: bytes = b"1.1", body_length: int = NO_BODY) -> None:
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.target = target
        self.headers = headers
        self.version = version
        self.body_length = body_length
        self.changed = False

    @property
    def path(self) -> bytes:
        """The target without its query."""
        return self.target.split(b"?", 1)[0]

    @property
    def query(self) -> bytes:
        """The target's query (after '?'), b"" when there is none."""
        return self.target.partition(b"?")[2]

    def get(self, name: bytes) -> bytes | None:
        return header_get(self.headers, name)

    def set(self, name: bytes, value: bytes | None) -> None:
        """Replace (or with None remove) field `name` (lower-case) and mark the request changed. Setting
        b"host" sets `authority` too: HTTP/1 sends the authority as its Host field (RFC 9112 §3.2)."""
        header_set(self.headers, name, value)
        if name == b"host" and value is not None:
            self.authority = value
        self.changed = True

    def __repr__(self) -> str:
        return (f"Request({self.method!r} {self.scheme!r}://{self.authority!r}{self.target!r} "
                f"v{self.version!r}, {len(self.headers)} fields, body {self.body_length})")


class Response:
    """A response head (RFC 9110 §15): status, reason (HTTP/1 only; b"" means the standard phrase), header
    lines without connection-specific fields, body_length as for Request. `changed` as for Request (the session
    also compares status, reason, fields and body_length with what they were and sets it itself)."""

    __slots__ = ("added", "body_length", "changed", "headers", "lines", "origin", "reason", "status")

    def __init__(self, status: int, headers: list[Header], body_length: int = UNKNOWN_LENGTH,
                 reason: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body_length = body_length
        self.reason = reason
        self.changed = False
        # The codec's own parsed head this response was made from (HTTP/1's ResponseHead), or None: while
        # `changed` is False the codec may write that head's bytes as they came instead of serialising.
        self.origin: object | None = None
        # The lines add() appended (the last ones of `headers` while nobody changed the head), else None.
        self.added: list[Header] | None = None
        # Every line of `headers` but Content-Length, already written as `name: value\r\n` each, when whoever
        # made the response has them (a cache hit: the stored response's lines): while nobody changed the head,
        # an HTTP/1 codec writes these instead of serialising `headers` (rsp.http1.serialise.serialise_prepared).
        # They never hold a connection-specific field (no Response does) nor Content-Length.
        self.lines: bytes | None = None

    def get(self, name: bytes) -> bytes | None:
        return header_get(self.headers, name)

    def set(self, name: bytes, value: bytes | None) -> None:
        header_set(self.headers, name, value)
        self.changed = True

    def add(self, name: bytes, value: bytes) -> None:
        """Append the field line `name: value` without making the head changed: the codec may then add the
        line to the bytes it writes for the unchanged head (a backend's, from the head caches) instead of
        serialising the head anew (a cache's X-Cache). For a field the response's framing and keep-alive do not
        depend on: the codec serialises anew when one of them is (rsp.http1.serialise.with_added_fields)."""
        self.headers.append((name, value))
        added = self.added
        if added is None:
            self.added = [(name, value)]
        else:
            added.append((name, value))

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.headers)} fields, body {self.body_length})"


class LocalReply:
    """An answer made by rsp itself (a filter's, an error page, a cache hit): a response head and its whole
    body. The codec adds Content-Length (from `body`; for HEAD, the body is not sent, RFC 9110 §9.3.2) and
    Date when missing."""

    __slots__ = ("body", "response")

    def __init__(self, status: int, headers: list[Header] | None = None, body: bytes = b"") -> None:
        self.response = Response(status, headers if headers is not None else [], len(body))
        self.body = body

    def __repr__(self) -> str:
        return f"LocalReply({self.response.status}, {len(self.body)} bytes)"
