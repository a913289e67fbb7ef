"""Request heads: the memos, the fast path, the general path (RFC 9112 §3, §5), then the shared verdict."""

from __future__ import annotations

from typing import Final, final

from rsp.errors import ProtocolError
from rsp.http1.events import END_OF_MESSAGE, NO_BODY, Event, Framing, Headers, RequestHead
from rsp.http1.fast_path import REQUEST_GROUP, SECTION, fast_path, forwardable_section
from rsp.http1.framing import CLOSED, HEAD, PAUSED, MessageParser
from rsp.http1.grammar import (
    CONNECT,
    CRLF,
    END_OF_HEAD,
    REQUEST_LINE_RE,
    SLASH,
    TARGET_RE,
    V10,
    V11,
    bad_request_line,
)
from rsp.http1.head_fields import (
    REQUEST_FIELDS,
    HeadFields,
    fields_table,
)
from rsp.http1.limits import (
    MAX_HEADER_COUNT,
    MAX_HEADER_SECTION,
    MAX_REQUEST_LINE,
    MAX_SHARED_HEAD,
    MAX_SHARED_HEADS,
)
from rsp.http1.memo import starts_with
from rsp.http1.verdict import request_verdict

_Field = bytes | None  # a field value the general path found, or None

# Where the fast path's values sit in match.groups() (named groups, numbered by the expression).
_METHOD: Final = REQUEST_GROUP["method"]
_TARGET: Final = REQUEST_GROUP["target"]
_MINOR: Final = REQUEST_GROUP["minor"]
_SECTION: Final = REQUEST_GROUP[SECTION]
_HOST: Final = REQUEST_GROUP["host"]
_CONTENT_LENGTH: Final = REQUEST_GROUP["content_length"]
_TRANSFER_ENCODING: Final = REQUEST_GROUP["transfer_encoding"]
_CONNECTION: Final = REQUEST_GROUP["connection"]
_KEEP_ALIVE: Final = REQUEST_GROUP["keep_alive"]
_UPGRADE: Final = REQUEST_GROUP["upgrade"]
_EXPECT: Final = REQUEST_GROUP["expect"]
# The fast path's request line is `method SP target SP HTTP/1.x CRLF`: its length without method and
# target, with and without the CRLF, and the length of what follows the target without the CRLF.
_LINE_AROUND: Final = len(b"  HTTP/1.1\r\n")
_LINE_WITHOUT_CRLF: Final = len(b"  HTTP/1.1")
_AFTER_TARGET: Final = len(b" HTTP/1.1")
_TABLE: Final = fields_table(REQUEST_FIELDS)
# Placeholder for the memos (never returned: they start empty).
_NO_REQUEST: Final = RequestHead(b"", b"", b"", (), False, NO_BODY)


@final
class SharedHeads:
    """Request heads shared by the parsers of one proxy's connections (one per listener per worker): the
    first head of a new connection, by its bytes, with its event.

    A parser's own memos serve a keep-alive client that repeats its head; a new connection has none, so
    its first head always went through the fast path's expression (~13,000 instructions of a ~65,000
    instruction new-connection request, docs/performance.md). Many new connections send a head some
    earlier connection sent byte for byte (a load generator, health checks, an API client that does not
    keep its connections). The key is the whole head, every byte of it, as for the parser's exact memo:
    the declared fields are in it, so the rule of docs/architecture.md ("Caches of parsed and forwarded
    heads") holds. What else decides the event is the parsers' settings (limits, declaration), so a
    SharedHeads is made for one set of settings and only parsers made with the same ones use it
    (`fits`). Events are immutable: one is handed to any number of connections.

    Bounded (MAX_SHARED_HEADS heads of at most MAX_SHARED_HEAD bytes), emptied when full: heads that are
    never repeated cost one dict insertion each and cannot grow it.
    """

    __slots__ = ("compiled", "declared", "heads", "max_header_count", "max_header_section", "max_request_line")

    def __init__(self, *, max_request_line: int = MAX_REQUEST_LINE, max_header_section: int = MAX_HEADER_SECTION,
                 max_header_count: int = MAX_HEADER_COUNT, declared: HeadFields = REQUEST_FIELDS) -> None:
        self.max_request_line: Final = max_request_line
        self.max_header_section: Final = max_header_section
        self.max_header_count: Final = max_header_count
        self.declared: Final = declared
        self.heads: dict[bytes, RequestHead] = {}
        # The fast path of these settings, handed to each parser made with them (no cache lookup per parser).
        self.compiled: Final = fast_path(True, declared, max_header_count)

    def fits(self, max_request_line: int, max_header_section: int, max_header_count: int,
             declared: HeadFields) -> bool:
        """Whether a parser with these settings gives the events this memo holds."""
        return (max_request_line == self.max_request_line and max_header_section == self.max_header_section
                and max_header_count == self.max_header_count and declared is self.declared)

    def remember(self, head_bytes: bytes, head: RequestHead) -> None:
        heads = self.heads
        if len(heads) >= MAX_SHARED_HEADS:
            heads.clear()
        heads[head_bytes] = head


def _state_after(head: RequestHead) -> int:
    """The parser's state after the head `head` and its body: paused after a request that may switch
    protocols, closed after one that ends the connection, else the next head."""
    if head.upgrade is not None or head.method == CONNECT:
        return PAUSED
    return HEAD if head.keep_alive else CLOSED


class RequestParser(MessageParser):
    """Parses the requests a client sends on one connection.

    Errors carry 400, except: request line too long 414, header section too large or too many fields
    431, unsupported transfer coding 501, HTTP version other than 1.0 / 1.1 505.
    memos=False turns the parser's memos off (for the differential tests); `declared` may extend the
    declaration of the fields that decide a request (rsp.http1.head_fields); `shared` is a memo of heads
    shared with other connections (SharedHeads), made for the same settings.
    """

    __slots__ = ("_last_after", "_last_event", "_last_head", "_near_after", "_near_event",
                 "_near_prefix", "_near_state", "_shared", "_valid_host")

    def __init__(
        self,
        *,
        max_request_line: int = MAX_REQUEST_LINE,
        max_header_section: int = MAX_HEADER_SECTION,
        max_header_count: int = MAX_HEADER_COUNT,
        memos: bool = True,
        declared: HeadFields = REQUEST_FIELDS,
        shared: SharedHeads | None = None,
    ) -> None:
        if shared is not None and not shared.fits(max_request_line, max_header_section, max_header_count, declared):
            raise ValueError("a shared head memo serves only parsers with the settings it was made for")
        super().__init__(400, max_request_line, max_header_section, max_header_count, memos, declared, REQUEST_FIELDS,
                         shared.compiled if shared is not None else None)
        # The heads shared with other connections' parsers (SharedHeads): looked up and filled only for a
        # connection's first head, when this parser has no memo of its own. Off with the other memos.
        self._shared = shared if memos else None
        # The last Host value validated: a keep-alive client repeats it, a comparison is cheaper than the
        # regular expression.
        self._valid_host: bytes | None = None
        # The exact memo: the last head parsed, its event and the state after it (see MessageParser.__init__).
        self._last_head = b""
        self._last_event = _NO_REQUEST
        self._last_after = HEAD
        # The target memo (see _near_target): the last origin-form head from the fast path as
        # `METHOD SP`, its event, everything after its target (version, field section, empty line), and
        # the state after it. _near_after is b"" when not armed.
        self._near_prefix = b""
        self._near_event = _NO_REQUEST
        self._near_after = b""
        self._near_state = HEAD

    def forget_memos(self) -> None:
        """Drop the memos of the last head (kept for a client that repeats it): the next head is parsed in
        full. The proxy calls this for a connection that has been idle for a while (rsp.proxy.http_proxy),
        where the memos were most of the memory it held."""
        self._last_head = b""
        self._last_event = _NO_REQUEST
        self._near_prefix = b""
        self._near_event = _NO_REQUEST
        self._near_after = b""
        self._valid_host = None

    def _eof(self, events: list[Event]) -> None:
        more = self._more
        if self._state == HEAD and not (self._buf.strip(b"\r\n") or (more is not None and any(more))):
            return
        raise ProtocolError("connection closed in the middle of a request", 400)

    def _check_start_line(self, buf: bytes, pos: int, line_end: int) -> None:
        match = REQUEST_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            bad_request_line(buf[pos:line_end])
        version = match.group(3)
        if version != V11 and version != V10:
            raise ProtocolError("HTTP version not supported", 505)

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        last = self._last_head
        if last and starts_with(buf, last, pos):  # the previous head again: the same bytes, the same event
            head = self._last_event
            events.append(head)
            self._request_body(head.body, events, self._last_after)
            return pos + len(last)
        if self._near_after:
            near = self._near_target(buf, pos, events)
            if near >= 0:
                return near
        shared = self._shared if not last else None
        if shared is not None:
            # The connection's first head (or its first since the memos were forgotten): another
            # connection may have sent these very bytes. The head ends at the first empty line.
            stop = buf.find(END_OF_HEAD, pos, pos + MAX_SHARED_HEAD)
            if stop >= 0:
                stop += len(END_OF_HEAD)
                key = buf[pos:stop]
                known = shared.heads.get(key)
                if known is not None:
                    after = _state_after(known)
                    self._last_head = key
                    self._last_event = known
                    self._last_after = after
                    events.append(known)
                    self._request_body(known.body, events, after)
                    return stop
        match = self._fast.match(buf, pos)
        if match is not None:
            groups = match.groups()
            method: bytes = groups[_METHOD]
            target: bytes = groups[_TARGET]
            raw: bytes = groups[_SECTION]
            end = match.end()
            if end - pos > self._short_head and (
                len(raw) > self.max_header_section
                or len(method) + len(target) + _LINE_WITHOUT_CRLF > self.max_start_line
            ):
                match = None  # the general path reports the limit
        if match is not None:
            version = V11 if groups[_MINOR] == b"1" else V10
            host: _Field = groups[_HOST]
            content_length: _Field = groups[_CONTENT_LENGTH]
            transfer_encoding: _Field = groups[_TRANSFER_ENCODING]
            connection: _Field = groups[_CONNECTION]
            upgrade: _Field = groups[_UPGRADE]
            expect: _Field = groups[_EXPECT]
            headers: Headers | None = None
            if host is None:
                forwardable: bytes | None = None  # forwarding adds a Host
            else:
                forwardable = forwardable_section(
                    raw, pos + len(method) + len(target) + _LINE_AROUND, match, connection, _CONNECTION + 1,
                    groups[_KEEP_ALIVE] is None and transfer_encoding is None and upgrade is None, self._cut,
                )
        else:
            general = self._general_fields(buf, pos)
            if general is None:
                return pos
            (
                method, target, version, headers, host, content_length, transfer_encoding, connection, upgrade,
                expect, end,
            ) = general
            raw = b""
            forwardable = None

        memos = self._memo_limit >= 0
        head = request_verdict(
            method, target, version, host, content_length, transfer_encoding, connection, upgrade, expect, headers,
            raw, forwardable, self._vetted, self._valid_host, memos,
        )
        if memos and host is not None:
            self._valid_host = host
        events.append(head)
        after = _state_after(head)
        if end - pos <= self._memo_limit:
            self._last_head = key = buf[pos:end]
            self._last_event = head
            self._last_after = after
            if shared is not None and end - pos <= MAX_SHARED_HEAD and key.endswith(END_OF_HEAD):
                shared.remember(key, head)
            if raw and target[0] == SLASH and after == HEAD:
                self._near_prefix = method + b" "
                self._near_event = head
                self._near_after = buf[pos + len(method) + 1 + len(target) : end]
                self._near_state = after
            else:
                self._near_after = b""
        self._request_body(head.body, events, after)
        return end

    def _request_body(self, framing: Framing, events: list[Event], after: int) -> None:
        """Start the body of the request whose head was just reported; no body, the common case, inlined."""
        if framing is NO_BODY:
            events.append(END_OF_MESSAGE)
            self._state = after
        else:
            self._begin_body(framing, events, after)

    def _near_target(self, buf: bytes, pos: int, events: list[Event]) -> int:
        """Clients repeat a head with only the path changed (a crawler, an API client, a benchmark with
        distinct targets). When the bytes at `pos` are the memo's head with another origin-form target,
        valid by the fast path's own rule, the new head is the memo's verdict with that target: the
        method, the field section and everything derived from them are the same bytes, already
        validated, and an origin-form target decides nothing. The position after the head, or -1 (take
        the usual path)."""
        prefix = self._near_prefix
        start = pos + len(prefix)
        if buf[pos:start] != prefix:
            return -1
        space = buf.find(b" ", start, pos + self.max_start_line - _AFTER_TARGET)  # the request line's limit
        if space < 0:
            return -1
        after = self._near_after
        end = space + len(after)
        if end > len(buf) or buf[space:end] != after or buf[start] != SLASH:
            return -1
        if TARGET_RE.fullmatch(buf, start, space) is None:
            return -1
        last = self._near_event
        head = RequestHead(last.method, buf[start:space], last.version, None, last.keep_alive, last.body,
                           last.upgrade, last.expect_continue, last.host, last.connection, last.raw,
                           last.forwardable)
        events.append(head)
        self._request_body(head.body, events, self._near_state)
        return end

    def _general_fields(
        self, buf: bytes, pos: int
    ) -> tuple[bytes, bytes, bytes, Headers, _Field, _Field, _Field, _Field, _Field, _Field, int] | None:
        """The general path: validate the request line and the field section of a head in any valid form.

        Returns None while the head is incomplete (after checking what has arrived), else (method, target,
        version, headers, then the declared fields' values: Host, Content-Length, Transfer-Encoding,
        Connection, Upgrade, Expect, and the position after the head); list fields sent on several lines
        are joined with ", ", and of several Expect lines a 100-continue one is kept.
        """
        end = self._head_end(buf, pos)
        if end < 0:
            return None
        line_end = buf.find(CRLF, pos)
        if line_end - pos > self.max_start_line:
            self._start_line_too_long()
        if end - line_end > self.max_header_section:
            raise ProtocolError("header section too large", 431)
        match = REQUEST_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            bad_request_line(buf[pos:line_end])
        method, target, version = match.groups()
        if version != V11 and version != V10:
            raise ProtocolError("HTTP version not supported", 505)

        headers: Headers = ()
        host = content_length = transfer_encoding = connection = upgrade = expect = None
        if end != line_end:
            headers, host, content_length, transfer_encoding, connection, upgrade, expect = self._declared_fields(
                buf, line_end + len(CRLF), end, _TABLE, 431
            )
        return (
            method, target, version, headers, host, content_length, transfer_encoding, connection, upgrade, expect,
            end + len(END_OF_HEAD),
        )
