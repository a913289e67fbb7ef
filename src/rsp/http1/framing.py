"""Body framing and buffering shared by the request and response parsers (RFC 9112 §6, §7).

`MessageParser` owns the state machine between heads: Content-Length and chunked bodies, trailers, bodies
read until the close, the pause after a message that may switch protocols, and the checks on a head whose
end has not arrived yet. The subclasses (request_parser, response_parser) parse heads.
"""

from __future__ import annotations

from typing import Final, NoReturn

from rsp.errors import ProtocolError
from rsp.http1 import fields
from rsp.http1.events import END_OF_MESSAGE, Data, EndOfMessage, Event, Framing, Headers
from rsp.http1.fast_path import FastPath, fast_path
from rsp.http1.fields import FIELD_LINE_RE
from rsp.http1.grammar import CHUNK_LINE_RE, CR, CRLF, END_OF_HEAD, FORBIDDEN_TRAILERS, LF
from rsp.http1.head_fields import (
    BAD,
    CONNECTION,
    CONTENT_LENGTH,
    EXPECT,
    HOST,
    LOOKALIKE,
    TRANSFER_ENCODING,
    UPGRADE,
    HeadFields,
)
from rsp.http1.limits import MAX_CHUNK_LINE, MAX_MEMO_HEAD, MAX_TRAILER_COUNT, MAX_TRAILER_SECTION

# Parser states. Those that parse nothing more carry the STOPPED bit (one test instead of three).
HEAD: Final = 0
LENGTH: Final = 1
CHUNK_HEAD: Final = 2
CHUNK_DATA: Final = 3
CHUNK_END: Final = 4
TRAILERS: Final = 5
UNTIL_CLOSE: Final = 6
STOPPED: Final = 16
PAUSED: Final = STOPPED | 0  # after a message that may switch protocols, bytes are kept for the tunnel
CLOSED: Final = STOPPED | 1  # after a message that ends the connection, bytes are ignored
DONE: Final = STOPPED | 2  # after an error, the end of the stream or take_trailing_data()
_Field = bytes | None  # a field value the general path found, or None
# States whose next step needs a line feed: bytes without one cannot complete them.
_LINE_STATES: Final = frozenset((HEAD, CHUNK_HEAD, TRAILERS))


class MessageParser:
    """Body framing and buffering shared by the request and response parsers."""

    __slots__ = (
        "_after_body",
        "_buf",
        "_cut",
        "_fast",
        "_memo_limit",
        "_more",
        "_more_size",
        "_remaining",
        "_short_head",
        "_state",
        "_status",
        "_vetted",
        "max_header_count",
        "max_header_section",
        "max_start_line",
    )

    def __init__(self, status: int, max_start_line: int, max_header_section: int, max_header_count: int,
                 memos: bool, declared: HeadFields, default: HeadFields, compiled: FastPath | None = None) -> None:
        if declared.captured[: len(default.captured)] != default.captured:
            raise ValueError("a declaration must extend the default one (its groups keep their numbers)")
        # The fast-path expression embeds the field count limit (set at construction); the hop-by-hop lines
        # it cuts, and the Connection options that leave `forwardable` valid, come with the declaration.
        # `compiled`: that pair, when the caller has it already for these settings (a parser per new
        # connection skips the cache lookup, whose key hashing cost ~800 instructions per connection).
        self._fast, self._cut = compiled if compiled is not None else fast_path(status == 400, declared,
                                                                                 max_header_count)
        self._vetted = declared.vetted
        self._status = status  # what every framing error answers: 400 for requests, 502 for responses
        self._state = HEAD
        self._buf = b""  # unparsed bytes carried to the next feed()
        # Later reads not yet joined to _buf (see feed); None until there are some: most connections never
        # have any, and an empty list is 56 bytes that every idle keep-alive connection would hold.
        self._more: list[bytes] | None = None
        self._more_size = 0
        self._remaining = 0  # body bytes left in a Content-Length body or the current chunk
        self._after_body = HEAD  # the state to enter when the current message ends
        self.max_start_line = max_start_line
        self.max_header_section = max_header_section
        self.max_header_count = max_header_count
        # A head no longer than this cannot exceed the start-line or the section limit.
        self._short_head = min(max_start_line, max_header_section)
        # Subclasses keep a one-head memo: the bytes of the last head parsed (b"" for none) with its event.
        # A keep-alive peer often sends the very same head again (a client polling or a load generator
        # repeating a request; a backend answering the same resource within the same second of its Date
        # field): the same bytes parse to the same event (for a response, to the same request method), so
        # a comparison of the bytes replaces the parse. Events are immutable and can be handed out again.
        # A different head costs one failed comparison (it stops at the first different byte) and one copy.
        # Heads up to this size are remembered; -1 (memos=False) remembers none, which turns every memo off.
        self._memo_limit = MAX_MEMO_HEAD if memos else -1

    # -- public -----------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """True between messages with nothing buffered (the keep-alive timeout applies, not the request one)."""
        return self._state == HEAD and not self._buf

    @property
    def ended(self) -> bool:
        """True once a message that ends the connection has been read whole: nothing after it is parsed, so
        its reader may stop reading (rsp.proxy.client)."""
        return self._state == CLOSED

    @property
    def paused(self) -> bool:
        """True after a message that may switch protocols; see take_trailing_data() and resume()."""
        return self._state == PAUSED

    def take_trailing_data(self) -> bytes:
        """Finish the HTTP stream and return the bytes received after the switching message."""
        data = self._joined()
        self._buf = b""
        self._state = DONE
        return data

    def resume(self) -> list[Event]:
        """The protocol switch did not happen: parse what arrived meanwhile as HTTP."""
        if self._state != PAUSED:
            return []
        self._state = HEAD
        data = self._joined()
        self._buf = b""
        return self.feed(data) if data else []

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        state = self._state
        if not data:
            try:
                if not state & STOPPED:
                    self._eof(events)
            finally:
                self._state = DONE  # what waited while paused stays for take_trailing_data()
            return events
        if state & STOPPED:
            if state == PAUSED:
                self._keep(data)
            return events
        if self._buf:
            if state in _LINE_STATES and b"\n" not in data:
                # Without a LF the step cannot complete: keep the piece aside instead of copying the
                # whole buffer once per read (a head sent one byte at a time would be quadratic).
                self._keep(data)
                self._more_size += len(data)
                self._check_partial_size(len(self._buf) + self._more_size)
                return events
            buf = self._joined() + data
        else:
            buf = data
        try:
            pos = 0
            end = len(buf)
            while pos < end:
                if state == HEAD:
                    if buf[pos] == CR:
                        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the
                        # request-line; responses too (some servers send a CRLF after a body).
                        while buf.startswith(CRLF, pos):
                            pos += len(CRLF)
                        if pos == end:
                            break
                    new = self._head(buf, pos, events)
                elif state == LENGTH:
                    remaining = self._remaining
                    if end - pos >= remaining:
                        events.append(Data(buf[pos : pos + remaining]))
                        new = pos + remaining
                        self._end_message(events, END_OF_MESSAGE)
                    else:
                        events.append(Data(buf[pos:] if pos else buf))
                        self._remaining = remaining - (end - pos)
                        new = end
                elif state == CHUNK_HEAD:
                    new = self._chunk_head(buf, pos)
                elif state == CHUNK_DATA:
                    remaining = self._remaining
                    if end - pos >= remaining:
                        events.append(Data(buf[pos : pos + remaining]))
                        new = pos + remaining
                        self._state = CHUNK_END
                    else:
                        events.append(Data(buf[pos:] if pos else buf))
                        self._remaining = remaining - (end - pos)
                        new = end
                elif state == CHUNK_END:
                    if end - pos < 2:
                        if buf[pos] != CR:
                            raise ProtocolError("chunk data not followed by CRLF (RFC 9112 §7.1)", self._status)
                        break
                    if buf[pos] != CR or buf[pos + 1] != LF:
                        raise ProtocolError("chunk data not followed by CRLF (RFC 9112 §7.1)", self._status)
                    new = pos + len(CRLF)
                    self._state = CHUNK_HEAD
                elif state == TRAILERS:
                    new = self._trailers(buf, pos, events)
                elif state == UNTIL_CLOSE:
                    events.append(Data(buf[pos:] if pos else buf))
                    new = end
                else:  # paused or closed by the message that just ended
                    if state == PAUSED:
                        self._keep(buf[pos:])
                    pos = end
                    break
                if new == pos:  # the step needs more bytes
                    break
                pos = new
                state = self._state
        except ProtocolError:
            self._fail()
            raise
        self._buf = buf[pos:] if pos < end else b""
        if self._buf and self._state & STOPPED:
            if self._state == PAUSED:
                self._keep(self._buf)
            self._buf = b""
        return events

    def _fail(self) -> None:
        """After an error or the end of the stream nothing more is parsed."""
        self._state = DONE
        self._buf = b""
        self._more = None

    # -- buffering --------------------------------------------------------------------------------

    def _keep(self, data: bytes) -> None:
        """Put `data` aside in _more (not joined to _buf yet)."""
        more = self._more
        if more is None:
            self._more = [data]
        else:
            more.append(data)

    def _joined(self) -> bytes:
        more = self._more
        if more is not None:
            self._buf = self._buf + b"".join(more)
            self._more = None
            self._more_size = 0
        return self._buf

    def _field_lines(self, buf: bytes, start: int, end: int, too_many: int) -> list[tuple[bytes, bytes]]:
        """The (name, value) pairs of the field section buf[start:end + 2], values without trailing OWS
        (RFC 9112 §5.1); more than max_header_count lines answers `too_many`."""
        pairs: list[tuple[bytes, bytes]] = FIELD_LINE_RE.findall(buf, start, end + 2)
        if len(pairs) > self.max_header_count:
            raise ProtocolError(f"more than {self.max_header_count} field lines", too_many)
        if buf.find(b" \r\n", start, end + 2) >= 0 or buf.find(b"\t\r\n", start, end + 2) >= 0:
            pairs = fields.strip_values(pairs)
        return pairs

    def _declared_fields(
        self, buf: bytes, start: int, end: int, table: dict[bytes, int], too_many: int
    ) -> tuple[Headers, _Field, _Field, _Field, _Field, _Field, _Field]:
        """The general path's reading of the field section buf[start:end + 2]: (headers, then the values of
        the fields `table` (head_fields.fields_table) declares: Host, Content-Length, Transfer-Encoding,
        Connection, Upgrade, Expect; None when absent or not declared). List fields sent on several lines
        are joined with ", " (RFC 9110 §5.3); of several Expect lines a 100-continue one is kept."""
        status = self._status
        host: _Field = None
        content_length: _Field = None
        transfer_encoding: _Field = None
        connection: _Field = None
        upgrade: _Field = None
        expect: _Field = None
        pairs = self._field_lines(buf, start, end, too_many)
        for name, value in pairs:
            key = table.get(name.lower())
            if key is None:
                continue
            if key == HOST:
                if host is not None:
                    raise ProtocolError("more than one Host field (RFC 9112 §3.2)", status)
                host = value
            elif key == CONTENT_LENGTH:
                if content_length is not None:
                    raise ProtocolError("multiple Content-Length fields (RFC 9112 §6.3)", status)
                content_length = value
            elif key == TRANSFER_ENCODING:
                transfer_encoding = value if transfer_encoding is None else transfer_encoding + b", " + value
            elif key == CONNECTION:
                connection = value if connection is None else connection + b", " + value
            elif key == UPGRADE:
                upgrade = value if upgrade is None else upgrade + b", " + value
            elif key == EXPECT:
                if expect is None or value.lower() == b"100-continue":
                    expect = value
            elif key == LOOKALIKE:
                fields.raise_lookalike(name, status)
            elif key == BAD:
                fields.raise_bad_line(buf, start, end + 2, status)
        return tuple(pairs), host, content_length, transfer_encoding, connection, upgrade, expect

    def _head_end(self, buf: bytes, pos: int) -> int:
        """Where the head at `pos` ends (its last CRLF), or -1 after checking what has arrived of it."""
        end = buf.find(END_OF_HEAD, pos)
        if end < 0 and pos < len(buf):
            self._incomplete_head(buf, pos)
        return end

    def _check_partial_size(self, size: int) -> None:
        """Refuse an incomplete line or section that already exceeds its limit."""
        state = self._state
        if state == HEAD:
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                if size > self.max_start_line:
                    self._start_line_too_long()
            elif size - line_end - 2 > self.max_header_section:
                raise ProtocolError("header section too large", self._too_large_status())
        elif state == CHUNK_HEAD:
            if size > MAX_CHUNK_LINE:
                raise ProtocolError("chunk header line too long", self._status)
        elif size > MAX_TRAILER_SECTION:
            raise ProtocolError("trailer section too large", self._too_large_status())

    def _too_large_status(self) -> int:
        return 431 if self._status == 400 else self._status

    def _start_line_too_long(self) -> NoReturn:
        raise ProtocolError("start line too long", 414 if self._status == 400 else self._status)

    def _incomplete_head(self, buf: bytes, pos: int) -> None:
        """Checks on a head whose end has not arrived yet: limits, bare LF (which would never end it), and
        the lines already complete, so that a broken head is refused now rather than at its end."""
        size = len(buf) - pos
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            if size > self.max_start_line:
                self._start_line_too_long()
        else:
            if line_end - pos > self.max_start_line:
                self._start_line_too_long()
            if size - (line_end - pos) - 2 > self.max_header_section:
                raise ProtocolError("header section too large", self._too_large_status())
            if buf.count(b"\r\n", pos) > self.max_header_count + 1:
                raise ProtocolError(f"more than {self.max_header_count} field lines", self._too_large_status())
        crlf = buf.count(b"\r\n", pos)
        if buf.count(b"\n", pos) != crlf:
            raise ProtocolError("bare LF line ending (RFC 9112 §2.2)", self._status)
        if buf.count(b"\r", pos) - crlf > (buf[-1] == CR):  # a CR at the very end may still get its LF
            raise ProtocolError("bare CR in head (RFC 9112 §2.2)", self._status)
        if line_end >= 0:
            self._check_start_line(buf, pos, line_end)
            if buf.find(b"\r\n ", line_end) >= 0 or buf.find(b"\r\n\t", line_end) >= 0:
                raise ProtocolError("obs-fold (line folding) is not accepted (RFC 9112 §5.2)", self._status)
            last = buf.rfind(b"\r\n", pos)
            if last > line_end:
                fields.parse_fields(buf, line_end + 2, last + 2, self.max_header_count, self._status)

    def _check_start_line(self, buf: bytes, pos: int, line_end: int) -> None:
        raise NotImplementedError

    # -- framing steps ----------------------------------------------------------------------------

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        raise NotImplementedError

    def _eof(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _begin_body(self, framing: Framing, events: list[Event], after: int) -> None:
        self._after_body = after
        kind = framing.kind
        if kind == "none":
            self._end_message(events, END_OF_MESSAGE)
        elif kind == "length":
            self._remaining = framing.length
            self._state = LENGTH
        elif kind == "chunked":
            self._state = CHUNK_HEAD
        else:
            self._state = UNTIL_CLOSE

    def _end_message(self, events: list[Event], end: EndOfMessage) -> None:
        events.append(end)
        self._state = self._after_body

    def _chunk_head(self, buf: bytes, pos: int) -> int:
        status = self._status
        lf = buf.find(b"\n", pos)
        if lf < 0:
            if len(buf) - pos > MAX_CHUNK_LINE:
                raise ProtocolError("chunk header line too long", status)
            if buf.find(b"\r", pos, len(buf) - 1) >= 0:
                raise ProtocolError("bare CR in chunk header (RFC 9112 §7.1)", status)
            return pos
        if lf - pos > MAX_CHUNK_LINE:
            raise ProtocolError("chunk header line too long", status)
        if lf == pos or buf[lf - 1] != CR:
            raise ProtocolError("chunk header not terminated by CRLF (RFC 9112 §7.1)", status)
        match = CHUNK_LINE_RE.fullmatch(buf, pos, lf - 1)
        if match is None:
            raise ProtocolError("invalid chunk size or chunk extension (RFC 9112 §7.1)", status)
        size = int(match.group(1), 16)
        if size:
            self._remaining = size
            self._state = CHUNK_DATA
        else:
            self._state = TRAILERS
        return lf + 1

    def _trailers(self, buf: bytes, pos: int, events: list[Event]) -> int:
        status = self._status
        if len(buf) - pos < 2:
            if buf[pos] == LF:
                raise ProtocolError("bare LF after last chunk (RFC 9112 §7.1)", status)
            return pos
        if buf[pos] == CR:
            if buf[pos + 1] != LF:
                raise ProtocolError("bare CR after last chunk (RFC 9112 §7.1)", status)
            self._end_message(events, END_OF_MESSAGE)
            return pos + len(CRLF)
        end = buf.find(END_OF_HEAD, pos)
        if end < 0:
            if len(buf) - pos > MAX_TRAILER_SECTION:
                raise ProtocolError("trailer section too large", self._too_large_status())
            crlf = buf.count(b"\r\n", pos)
            if buf.count(b"\n", pos) != crlf:
                raise ProtocolError("bare LF in trailer section (RFC 9112 §2.2)", status)
            if buf.count(b"\r", pos) - crlf > (buf[-1] == CR):
                raise ProtocolError("bare CR in trailer section (RFC 9112 §2.2)", status)
            if buf.count(b"\r\n", pos) > MAX_TRAILER_COUNT:
                raise ProtocolError("too many trailer fields", self._too_large_status())
            return pos
        if end - pos > MAX_TRAILER_SECTION:
            raise ProtocolError("trailer section too large", self._too_large_status())
        pairs = fields.parse_fields(buf, pos, end + 2, MAX_TRAILER_COUNT, status)
        for name, _ in pairs:
            if name.lower() in FORBIDDEN_TRAILERS:
                raise ProtocolError(f"{name.decode()} is not allowed in trailers (RFC 9110 §6.5.1)", status)
        self._end_message(events, EndOfMessage(tuple(pairs)))
        return end + len(END_OF_HEAD)
