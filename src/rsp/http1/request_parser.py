"""Request heads: the memos, the fast path, the general path (RFC 9112 §3, §5), then the shared verdict."""

from __future__ import annotations

from typing import Final

from rsp.errors import ProtocolError
from rsp.http1.events import END_OF_MESSAGE, NO_BODY, Event, Framing, Headers, RequestHead
from rsp.http1.fast_path import REQUEST_GROUP, SECTION, forwardable_section
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
from rsp.http1.limits import MAX_HEADER_COUNT, MAX_HEADER_SECTION, MAX_REQUEST_LINE
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


class RequestParser(MessageParser):
    """Parses the requests a client sends on one connection.

    Errors carry 400, except: request line too long 414, header section too large or too many fields
    431, unsupported transfer coding 501, HTTP version other than 1.0 / 1.1 505.
    memos=False turns the parser's memos off (for the differential tests); `declared` may extend the
    declaration of the fields that decide a request (rsp.http1.head_fields).
    """

    __slots__ = ("_last_after", "_last_event", "_last_head", "_near_after", "_near_event",
                 "_near_prefix", "_near_state", "_valid_host")

    def __init__(
        self,
        *,
        max_request_line: int = MAX_REQUEST_LINE,
        max_header_section: int = MAX_HEADER_SECTION,
        max_header_count: int = MAX_HEADER_COUNT,
        memos: bool = True,
        declared: HeadFields = REQUEST_FIELDS,
    ) -> None:
        super().__init__(400, max_request_line, max_header_section, max_header_count, memos, declared, REQUEST_FIELDS)
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
        if self._state == HEAD and not (self._buf.strip(b"\r\n") or any(self._more)):
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
        if head.upgrade is not None or method == CONNECT:
            after = PAUSED
        elif head.keep_alive:
            after = HEAD
        else:
            after = CLOSED
        if end - pos <= self._memo_limit:
            self._last_head = buf[pos:end]
            self._last_event = head
            self._last_after = after
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
