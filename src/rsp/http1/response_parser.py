"""Response heads: the memos, the fast path, the general path (RFC 9112 §4, §5), then the shared verdict."""

from __future__ import annotations

from typing import Final

from rsp.errors import ProtocolError
from rsp.http1.events import END_OF_MESSAGE, NO_BODY, Data, EndOfMessage, Event, Framing, Headers, ResponseHead
from rsp.http1.fast_path import RESPONSE_GROUP, SECTION, forwardable_section
from rsp.http1.framing import CLOSED, DONE, HEAD, PAUSED, UNTIL_CLOSE, MessageParser
from rsp.http1.grammar import CONNECT, CRLF, END_OF_HEAD, STATUS_CODES, STATUS_LINE_RE, V10, V11
from rsp.http1.head_fields import (
    RESPONSE_FIELDS,
    HeadFields,
    fields_table,
)
from rsp.http1.limits import MAX_HEADER_COUNT, MAX_HEADER_SECTION, MAX_STATUS_LINE
from rsp.http1.memo import NearMemo, starts_with
from rsp.http1.verdict import response_verdict

_Field = bytes | None  # a field value the general path found, or None

# Where the fast path's values sit in match.groups() (named groups, numbered by the expression).
_MINOR: Final = RESPONSE_GROUP["minor"]
_CODE: Final = RESPONSE_GROUP["code"]
_REASON: Final = RESPONSE_GROUP["reason"]
_SECTION: Final = RESPONSE_GROUP[SECTION]
_CONTENT_LENGTH: Final = RESPONSE_GROUP["content_length"]
_TRANSFER_ENCODING: Final = RESPONSE_GROUP["transfer_encoding"]
_CONNECTION: Final = RESPONSE_GROUP["connection"]
_KEEP_ALIVE: Final = RESPONSE_GROUP["keep_alive"]
# The fast path's status line is `HTTP/1.x SP code [SP reason] CRLF`: its length without the reason, and
# the bytes around the reason when there is one, with and without the CRLF.
_LINE_WITHOUT_REASON: Final = len(b"HTTP/1.1 200\r\n")
_LINE_AROUND_REASON: Final = len(b"HTTP/1.1 200 \r\n")
_LINE_WITHOUT_CRLF: Final = len(b"HTTP/1.1 200")
_TABLE: Final = fields_table(RESPONSE_FIELDS)
# Placeholder for the exact memo (never returned: it starts empty).
_NO_RESPONSE: Final = ResponseHead(0, b"", b"", (), False, NO_BODY)


class ResponseParser(MessageParser):
    """Parses the responses a backend sends on one connection. Every error carries 502.

    The body of a response depends on the request it answers (RFC 9112 §6.3): call `expect(method)` for
    every request forwarded on the connection, in order. Bytes that arrive when no response is due (a
    backend answering HEAD with a body, or talking out of turn) are not parsed: the responses completed
    before them are returned as usual, parsing stops, and `unsolicited` counts those bytes, so that the
    I/O layer forwards what was complete and closes the connection.
    memos=False turns the parser's memos off (for the differential tests); `declared` may extend the
    declaration of the fields that decide a response (rsp.http1.head_fields).
    """

    __slots__ = ("_last_after", "_last_event", "_last_head", "_last_method", "_methods", "_near", "unsolicited")

    def __init__(
        self,
        *,
        max_status_line: int = MAX_STATUS_LINE,
        max_header_section: int = MAX_HEADER_SECTION,
        max_header_count: int = MAX_HEADER_COUNT,
        memos: bool = True,
        declared: HeadFields = RESPONSE_FIELDS,
    ) -> None:
        super().__init__(502, max_status_line, max_header_section, max_header_count, memos, declared, RESPONSE_FIELDS)
        # Methods of the requests sent whose final response is still due, oldest first. A list: compiled,
        # append and pop(0) are native operations (a deque's methods are generic calls), and it holds one
        # entry per request pipelined on the connection: at most one in rsp (one exchange at a time).
        self._methods: list[bytes] = []
        # The exact memo: the last final response head parsed, the method it answered, its event and the
        # state after it (see MessageParser.__init__).
        self._last_head = b""
        self._last_method = b""
        self._last_event = _NO_RESPONSE
        self._last_after = HEAD
        self._near = NearMemo(declared.never_volatile)
        # Bytes received when no response was due (see the class docstring); 0 while the stream is sound.
        self.unsolicited = 0

    def expect(self, method: bytes) -> None:
        """A request with this method was sent; its response comes after those already expected."""
        self._methods.append(method)

    @property
    def pending(self) -> int:
        """Requests sent whose final response has not been fully received."""
        return len(self._methods)

    def _eof(self, events: list[Event]) -> None:
        state = self._state
        if state == UNTIL_CLOSE:
            self._end_message(events, END_OF_MESSAGE)
            return
        if state == HEAD and not self._buf and self._more is None:
            return  # between responses: the I/O layer sees `pending` to tell an idle close from a lost one
        raise ProtocolError("backend closed the connection in the middle of a response", 502)

    def _end_message(self, events: list[Event], end: EndOfMessage) -> None:
        events.append(end)
        self._state = self._after_body
        self._methods.pop(0)  # the final response to the oldest request is complete

    def _check_start_line(self, buf: bytes, pos: int, line_end: int) -> None:
        match = STATUS_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            raise ProtocolError("invalid status line (RFC 9112 §4)", 502)
        version = match.group(1)
        if version != V11 and version != V10:
            raise ProtocolError("unsupported HTTP version in response", 502)

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        methods = self._methods
        if not methods:
            # Every response asked for is complete: these bytes answer nothing. A HEAD response's body is
            # the usual case (RFC 9112 §6.3 rule 1: a HEAD response has no content whatever its fields
            # say). Nothing after them can be framed with confidence, so parsing stops here.
            self.unsolicited = len(buf) - pos
            self._state = DONE
            return len(buf)
        last = self._last_head
        if self._near.values:
            # Heads whose values change (a Date, a request id): the exact memo would compare a whole head
            # in vain every time; the near memo also answers an identical head.
            if methods[0] == self._last_method:
                near = self._near_head(buf, pos, events)
                if near >= 0:
                    return near
        elif last and methods[0] == self._last_method and starts_with(buf, last, pos):
            # The previous final response again, to the same method: the same event.
            head = self._last_event
            events.append(head)
            return self._final_body(buf, pos + len(last), head.body, events, self._last_after)
        match = self._fast.match(buf, pos)
        if match is not None:
            groups = match.groups()
            reason: bytes | None = groups[_REASON]
            raw: bytes = groups[_SECTION]
            end = match.end()
            if end - pos > self._short_head and (
                len(raw) > self.max_header_section
                or (_LINE_WITHOUT_CRLF if reason is None else _LINE_WITHOUT_CRLF + 1 + len(reason))
                > self.max_start_line
            ):
                match = None  # the general path reports the limit
        if match is not None:
            version = V11 if groups[_MINOR] == b"1" else V10
            status = STATUS_CODES[groups[_CODE]]
            content_length: _Field = groups[_CONTENT_LENGTH]
            transfer_encoding: _Field = groups[_TRANSFER_ENCODING]
            connection: _Field = groups[_CONNECTION]
            headers: Headers | None = None
            section = pos + (_LINE_WITHOUT_REASON if reason is None else _LINE_AROUND_REASON + len(reason))
            forwardable: bytes | None = forwardable_section(
                raw, section, match, connection, _CONNECTION + 1,
                groups[_KEEP_ALIVE] is None and transfer_encoding is None, self._cut,
            )
        else:
            general = self._general_fields(buf, pos)
            if general is None:
                return pos
            version, status, reason, headers, content_length, transfer_encoding, connection, end = general
            raw = b""
            forwardable = None

        method = methods[0]
        memos = self._memo_limit >= 0
        head = response_verdict(
            status, reason or b"", version, method, content_length, transfer_encoding, connection, headers, raw,
            forwardable, self._vetted, memos,
        )
        events.append(head)
        if status == 101 or (method == CONNECT and 200 <= status < 300):
            self._begin_body(NO_BODY, events, PAUSED)  # the connection becomes a tunnel
            return end
        if status < 200:
            # Interim response (RFC 9110 §15.2): the final response to the same request is still to come.
            events.append(END_OF_MESSAGE)
            return end
        after = HEAD if head.keep_alive else CLOSED
        if end - pos <= self._memo_limit:
            if raw and method == self._last_method and after == self._last_after:
                self._near.learn(self._last_head, self._last_event.raw, buf[pos:end], head)
            else:
                self._near.forget()
            self._last_head = buf[pos:end]
            self._last_method = method
            self._last_event = head
            self._last_after = after
        return self._final_body(buf, end, head.body, events, after)

    def _near_head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        """The head at `pos` from the near memo (see memo.NearMemo): the position after it, or -1 (take the
        usual path)."""
        size = len(self._last_head)
        if pos + size > len(buf) or not self._near.matches(buf, pos):
            return -1
        # The learned head (its bytes and event go together) gives where the field section starts and how
        # its forwardable was cut from its raw; the same holds for this head, line for line.
        previous = self._last_event
        raw = buf[pos + size - len(previous.raw) - len(CRLF) : pos + size - len(CRLF)]
        head = ResponseHead(previous.status, previous.reason, previous.version, None, previous.keep_alive,
                            previous.body, previous.connection, raw, self._near.forwardable(previous, raw))
        events.append(head)
        # The exact memo keeps the head the near memo learned from (its bytes and its event go together).
        return self._final_body(buf, pos + size, head.body, events, self._last_after)

    def _final_body(self, buf: bytes, pos: int, framing: Framing, events: list[Event], after: int) -> int:
        """Start the body of a final response whose head ends at `pos`; inlined for the common cases."""
        if framing is NO_BODY:
            events.append(END_OF_MESSAGE)
            self._state = after
            self._methods.pop(0)
            return pos
        if framing.kind == "length" and len(buf) - pos >= framing.length:  # the whole body has arrived
            end = pos + framing.length
            events.append(Data(buf[pos:end]))
            events.append(END_OF_MESSAGE)
            self._state = after
            self._methods.pop(0)
            return end
        self._begin_body(framing, events, after)
        return pos

    def _general_fields(
        self, buf: bytes, pos: int
    ) -> tuple[bytes, int, bytes | None, Headers, _Field, _Field, _Field, int] | None:
        """The general path: validate the status line and the field section of a head in any valid form.

        Returns None while the head is incomplete (after checking what has arrived), else (version, status,
        reason, headers, then the declared fields' values: Content-Length, Transfer-Encoding, Connection,
        and the position after the head).
        """
        end = self._head_end(buf, pos)
        if end < 0:
            return None
        line_end = buf.find(CRLF, pos)
        if line_end - pos > self.max_start_line:
            raise ProtocolError("status line too long", 502)
        if end - line_end > self.max_header_section:
            raise ProtocolError("header section too large", 502)
        match = STATUS_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            raise ProtocolError("invalid status line (RFC 9112 §4)", 502)
        version, code, reason = match.groups()
        if version != V11 and version != V10:
            raise ProtocolError("unsupported HTTP version in response", 502)
        status = int(code)

        headers: Headers = ()
        content_length = transfer_encoding = connection = None
        if end != line_end:
            # Host, Upgrade and Expect are not declared for responses: the table leaves them None.
            headers, _, content_length, transfer_encoding, connection, _, _ = self._declared_fields(
                buf, line_end + len(CRLF), end, _TABLE, 502
            )
        return (
            version, status, reason, headers, content_length, transfer_encoding, connection, end + len(END_OF_HEAD)
        )
