"""Sans-IO HTTP/1.1 parsers: bytes in, events out (RFC 9112).

API (one call per `data_received`, the shape an asyncio Protocol wants):

    parser = RequestParser()
    for event in parser.feed(data):      # data=b"" means the peer closed (EOF)
        ...                              # RequestHead, Data*, EndOfMessage, next RequestHead...

`feed()` returns every event the bytes complete, in order, across pipelined messages; a list is cheaper
than an h11-style `next_event()` loop (one call and one list per read instead of one call per event plus
a NEED_DATA sentinel). On a protocol violation it raises `rsp.errors.ProtocolError` whose `status` is
the answer to give (400, 414, 431, 501, 505 for requests; always 502 for responses); events completed
earlier in the same call are lost with it, so the connection must be answered and closed. The parser
parses nothing afterwards (later feeds return []), as after the end of the stream.

After a request that asks to switch protocols (`head.upgrade`, or method CONNECT) and after a 101 or a
2xx-to-CONNECT response, the parser pauses: later bytes are kept, not parsed. `take_trailing_data()`
returns them when the switch happens (they belong to the tunnel); `resume()` parses them as HTTP when
it does not (the backend refused the upgrade). After a message that ends the connection
(`keep_alive` false) the parser ignores everything else: nothing after it may reach a backend.

Bodies are handed out as `Data` holding slices of the received bytes (the very object received when a
read is all body); nothing is copied twice. Heads are parsed with compiled regular expressions over the
whole head at once: one expression for the usual shape of a head (the fast path), the general path for
everything else, and a one-head memo for a head identical to the previous one; see rsp/http1/README.md
for the measurements behind these choices.
"""

from __future__ import annotations

import re
from typing import Final, NoReturn

from rsp.errors import ProtocolError
from rsp.http1 import fields
from rsp.http1.events import (
    CHUNKED,
    END_OF_MESSAGE,
    NO_BODY,
    UNTIL_CLOSE,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Headers,
    RequestHead,
    ResponseHead,
)
from rsp.http1.fields import COMMON_CONNECTION as _COMMON_CONNECTION
from rsp.http1.fields import FIELD_LINE_RE, QUOTED_STRING, TCHAR
from rsp.http1.limits import (
    MAX_CHUNK_LINE,
    MAX_CHUNK_SIZE_DIGITS,
    MAX_CONTENT_LENGTH_DIGITS,
    MAX_HEADER_COUNT,
    MAX_HEADER_SECTION,
    MAX_MEMO_HEAD,
    MAX_REQUEST_LINE,
    MAX_STATUS_LINE,
    MAX_TRAILER_COUNT,
    MAX_TRAILER_SECTION,
)

# request-line = method SP request-target SP HTTP-version (RFC 9112 §3). The target is restricted to
# visible ASCII without "#": a fragment is never sent (RFC 9112 §3.2), bytes above 0x7E are not URI
# characters (RFC 3986 §2), and HAProxy refuses both by default too. Every rule that reads a target uses these.
_TARGET_CHARS: Final = rb"\x21\x22\x24-\x7e"
_REQUEST_LINE_RE: Final = re.compile(rb"([%s]+) ([%s]+) HTTP/([0-9]\.[0-9])" % (TCHAR, _TARGET_CHARS))
_LOOSE_VERSION_RE: Final = re.compile(rb"[^ ]+ [^ ]+ HTTP/[0-9]\.[0-9]")
# status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). A missing SP after the
# code is tolerated: the reason is optional and some servers drop the space with it.
_STATUS_LINE_RE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([1-5][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")
# absolute-form (RFC 9112 §3.2.2): only http and https URIs mean anything to a reverse proxy.
_ABSOLUTE_RE: Final = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?]*)([/?].*)?", re.DOTALL)
# authority-form (RFC 9112 §3.2.3): uri-host ":" port, the port is required.
_AUTHORITY_RE: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+):[0-9]+")
# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1, §7.1.1). chunk-ext = *( BWS ";" BWS name
# [ BWS "=" BWS value ] ): BWS is something "a sender MUST NOT generate" and whitespace around chunk
# sizes is a known desync vector (HTTP Garden transducer bug 24), so none is accepted, as in llhttp.
_CHUNK_LINE_RE: Final = re.compile(
    rb"([0-9A-Fa-f]{1,%d})(?:;[%s]+(?:=(?:[%s]+|%s))?)*" % (MAX_CHUNK_SIZE_DIGITS, TCHAR, TCHAR, QUOTED_STRING)
)

# Fields acted on while parsing. b"" is the marker FIELD_LINE_RE gives a line outside the grammar.
_BAD: Final = 0
_HOST: Final = 1
_CONTENT_LENGTH: Final = 2
_TRANSFER_ENCODING: Final = 3
_CONNECTION: Final = 4
_UPGRADE: Final = 5
_EXPECT: Final = 6
_LOOKALIKE: Final = 7
_SPECIAL: Final = {
    b"": _BAD,
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
}
# Names that become one of these fields once "-" and "_" are confused: CGI, WSGI, PHP and Rails all map
# both to "_" (Transfer_Encoding and Transfer-Encoding are the same HTTP_TRANSFER_ENCODING), which
# splits framing between rsp and such a backend, or lets a client's X_Forwarded_For stand beside the
# X-Forwarded-For rsp writes. nginx drops names with "_" by default for these reasons; rsp refuses the
# ones that collide. Being a dictionary entry, the check costs nothing per field.
_SPECIAL.update(
    (variant, _LOOKALIKE)
    for name in fields.LOOKALIKE_TARGETS
    for variant in fields.separator_variants(name)
)

# Trailer fields that would change framing, routing or connection handling if a recipient merged them
# into the header section (RFC 9110 §6.5.1 lists framing, routing and connection-management fields among
# those that cannot be processed as trailers): refused.
_FORBIDDEN_TRAILERS: Final = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    )
)

# -- the fast path -----------------------------------------------------------------------------------
# Nearly every head has one shape: each field line written `Name: value` (one space after the colon, no
# whitespace at the end of the value) and each field the parser acts on present at most once. One
# compiled expression recognises that shape (start line and whole field section, every byte validated as
# by FIELD_LINE_RE) and captures, in the same pass, the value of each field that decides framing or
# routing. Anything else -- another spacing, a repeated Connection, a look-alike name, an error, an
# incomplete head, a limit exceeded -- does not match and takes the general path below, which is the
# reference: the fast path only ever produces the events the general path would (tests/http1/
# test_fast_path.py checks both on generated heads), and it never raises.
#
# Per captured name, `(?(F)()VALUE|(VALUE))`: the first line fills group F; a repeated line fills the
# empty "duplicate" group instead; a refused name (a look-alike, or a field the fast path does not
# handle) fills a flag group; and conditionals at the end of the expression fail the whole match when a
# duplicate or flag group is set. The repetition of lines sits in an atomic group: it takes as many
# lines as match, each by the first alternative that matches, and the engine never comes back to read a
# special line as an ordinary one (nothing inside the group can fail after the repetition). Lines whose
# first letter starts no special name skip the alternatives (first branch). A special name's branch
# accepts exactly the values an ordinary line accepts, so the alternatives never change which heads
# match, only what is captured. A canonical value is not empty (an empty value takes the general path).
#
# Measured (bench/http1_micro.py --against 9b3f47c): nginx's /small response, 8 fields, 6.4 us on the
# general path, 3.9 us on the fast path with its events; 12-field browser GET 6.5 -> 4.5 us.
_CANONICAL_VALUE: Final = rb"[\x21-\x7e\x80-\xff][\t\x20-\x7e\x80-\xff]*+(?<![ \t])"
_CANONICAL_LINE: Final = rb"[%s]++: %s\r\n" % (TCHAR, _CANONICAL_VALUE)
# Separator variants of the forwarding fields (any mix of "-" and "_"); requests refuse even the
# canonical spelling on the fast path because forwarding rebuilds those fields.
_ANY_FORWARDED: Final = rb"x[-_]forwarded[-_](?:for|proto|host)"
_LOOKALIKE_FORWARDED: Final = rb"x(?:_forwarded[-_]|-forwarded_)(?:for|proto|host)"


def _fast_head_re(
    start: bytes, captured: tuple[bytes, ...], refused: tuple[bytes, ...], max_count: int
) -> re.Pattern[bytes]:
    """The fast-path expression: `start` (3 groups) then the section (group 4), then for each captured
    name a duplicate flag and the first value (groups 5, 6 for the first name, 7, 8 for the second...),
    then the refused-name flag."""
    group = re.compile(start).groups + 1  # the section
    assert group == 4
    branches = []
    flags = []
    initials = set()
    for name in captured:
        flags.append(group + 1)
        group += 2
        value = _CANONICAL_VALUE
        branches.append(rb"(?i:%s): (?(%d)()%s|(%s))\r\n" % (re.escape(name), group, value, value))
        initials.add(name[:1])
    group += 1
    flags.append(group)
    branches.append(rb"((?i:%s)):[^\r]*+\r\n" % b"|".join(refused))
    initials.update(name[:1] for name in refused)
    guard = b"".join(sorted(initials | {initial.upper() for initial in initials}))
    line = rb"(?=[^%s])%s|%s|%s" % (guard, _CANONICAL_LINE, b"|".join(branches), _CANONICAL_LINE)
    fail_if_flagged = b"".join(rb"(?(%d)(?!))" % flag for flag in flags)
    # The repetition sits in an atomic group, not in a possessive `{0,n}+`: CPython 3.11.7 raises SystemError
    # ("The span of capturing group is wrong") for a possessive repeat of groups that capture.
    return re.compile(rb"%s((?>(?:%s){0,%d}))\r\n%s" % (start, line, max_count, fail_if_flagged))


_REQUEST_FAST_START: Final = rb"([%s]++) ([%s]++) HTTP/1\.([01])\r\n" % (TCHAR, _TARGET_CHARS)
_REQUEST_CAPTURED: Final = (
    b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade", b"expect"
)
_REQUEST_REFUSED: Final = (
    b"te", b"trailer", b"proxy-connection", b"close", b"forwarded", _ANY_FORWARDED, b"content_length",
    b"transfer_encoding",
)
# Groups of the request expression: value of host 6, content-length 8, transfer-encoding 10, connection 12,
# keep-alive 14, upgrade 16, expect 18.
_Q_HOST: Final = 6
_Q_LENGTH: Final = 8
_Q_CODINGS: Final = 10
_Q_CONNECTION: Final = 12
_Q_KEEP_ALIVE: Final = 14
_Q_UPGRADE: Final = 16
_Q_EXPECT: Final = 18

_RESPONSE_FAST_START: Final = rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*+))?\r\n"
_RESPONSE_CAPTURED: Final = (b"content-length", b"transfer-encoding", b"connection", b"keep-alive")
_RESPONSE_REFUSED: Final = (
    b"te", b"trailer", b"proxy-connection", b"upgrade", b"close", _LOOKALIKE_FORWARDED, b"content_length",
    b"transfer_encoding",
)
_RESPONSE_CAPTURED_SET: Final = frozenset(_RESPONSE_CAPTURED)
# The captured lines that `forwardable` leaves out (hop-by-hop, RFC 9110 §7.6.1).
_RESPONSE_HOP_NAMES: Final = frozenset((b"transfer-encoding", b"connection", b"keep-alive"))
# A request-target as the request-line expressions accept it.
_TARGET_RE: Final = re.compile(rb"[%s]+" % _TARGET_CHARS)
# Groups of the response expression: content-length 6, transfer-encoding 8, connection 10, keep-alive 12.
_R_LENGTH: Final = 6
_R_CODINGS: Final = 8
_R_CONNECTION: Final = 10
_R_KEEP_ALIVE: Final = 12

# Hop-by-hop lines the fast path may meet, cut out of `forwardable`: group -> length of "Name: ".
_REQUEST_HOP_GROUPS: Final = ((_Q_CODINGS, 19), (_Q_CONNECTION, 12), (_Q_KEEP_ALIVE, 12), (_Q_UPGRADE, 9))
_RESPONSE_HOP_GROUPS: Final = ((_R_CODINGS, 19), (_R_CONNECTION, 12), (_R_KEEP_ALIVE, 12))
# Connection options whose fields the fast path has vetted (cut, or refused above): with any other option
# the named field would have to be dropped too, and `forwardable` is not offered.
_VETTED_OPTIONS: Final = frozenset(
    (b"close", b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade")
)

_FAST_RES: Final[dict[tuple[bool, int], re.Pattern[bytes]]] = {}


def _fast_re(request: bool, max_count: int) -> re.Pattern[bytes]:
    pattern = _FAST_RES.get((request, max_count))
    if pattern is None:
        if request:
            pattern = _fast_head_re(_REQUEST_FAST_START, _REQUEST_CAPTURED, _REQUEST_REFUSED, max_count)
        else:
            pattern = _fast_head_re(_RESPONSE_FAST_START, _RESPONSE_CAPTURED, _RESPONSE_REFUSED, max_count)
        _FAST_RES[(request, max_count)] = pattern
    return pattern


def _without_lines(raw: bytes, offset: int, match: re.Match[bytes], groups: tuple[tuple[int, int], ...]) -> bytes:
    """`raw` (which starts at `offset` in the matched buffer) without the lines whose value `groups` hold."""
    spans = []
    for group, prefix in groups:
        start = match.start(group)
        if start >= 0:
            spans.append((start - prefix - offset, match.end(group) + 2 - offset))
    spans.sort()
    pieces = []
    previous = 0
    for start, end in spans:
        pieces.append(raw[previous:start])
        previous = end
    pieces.append(raw[previous:])
    return b"".join(pieces)


# Content-Length values seen, validated, with their framing: a keep-alive backend serving the same
# resources repeats them, and a dictionary hit replaces a regular expression, int() and an allocation.
# Only values without leading zeros (which forwarding copies as they are). Bounded; once full, new values
# are validated every time (still correct, just not cached).
_MAX_CACHED_LENGTHS: Final = 4096
_LENGTH_FRAMINGS: Final[dict[bytes, Framing]] = {}


def _length_framing(value: bytes, status: int) -> Framing:
    length = fields.content_length(value, MAX_CONTENT_LENGTH_DIGITS, status)
    framing = Framing("length", length) if length else NO_BODY
    if len(_LENGTH_FRAMINGS) < _MAX_CACHED_LENGTHS and (value[0] != 48 or len(value) == 1):
        _LENGTH_FRAMINGS[value] = framing
    return framing


_STATUS_CODES: Final = {b"%d" % code: code for code in range(100, 600)}
# Statuses whose response has no content whatever its fields say (RFC 9112 §6.3 rule 1).
_NO_CONTENT_STATUS: Final = frozenset((*range(100, 200), 204, 304))
_Field = bytes | None  # a field value the general path found, or None

# Placeholders for the one-head memo of each parser (never returned: the memo starts empty).
_NO_REQUEST: Final = RequestHead(b"", b"", b"", (), False, NO_BODY)
_NO_RESPONSE: Final = ResponseHead(0, b"", b"", (), False, NO_BODY)


def _kept_ranges(raw: bytes, kept: bytes) -> list[tuple[int, int]]:
    """The ranges of `raw` that, joined, give `kept`: raw with some whole field lines left out (the
    parser's `forwardable`, whose left-out lines are hop-by-hop ones, never equal to a kept line)."""
    ranges: list[tuple[int, int]] = []
    i = 0
    for line in kept.split(b"\r\n")[:-1]:
        size = len(line) + 2
        while raw[i : i + size] != line + b"\r\n":
            i = raw.index(b"\n", i) + 1  # a left-out line
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + size)
        else:
            ranges.append((i, i + size))
        i += size
    return ranges


def _starts_with(buf: bytes, prefix: bytes, pos: int) -> bool:
    """buf.startswith(prefix, pos), for the memo check that runs on every message: compiled, a slice and
    a comparison cost less than bytes.startswith's argument parsing (and a slice of the whole of `buf`
    is `buf` itself, no copy)."""
    end = pos + len(prefix)
    return end <= len(buf) and buf[pos:end] == prefix


# Parser states.
_HEAD: Final = 0
_LENGTH: Final = 1
_CHUNK_HEAD: Final = 2
_CHUNK_DATA: Final = 3
_CHUNK_END: Final = 4
_TRAILERS: Final = 5
_UNTIL_CLOSE: Final = 6
_PAUSED: Final = 7  # first state that parses nothing
_CLOSED: Final = 8
_DONE: Final = 9
# States whose next step needs a line feed: bytes without one cannot complete them.
_LINE_STATES: Final = frozenset((_HEAD, _CHUNK_HEAD, _TRAILERS))

_CONNECT: Final = b"CONNECT"
_HEAD_METHOD: Final = b"HEAD"
_V11: Final = b"1.1"
_V10: Final = b"1.0"


class _MessageParser:
    """Body framing and buffering shared by the request and response parsers."""

    __slots__ = (
        "_after_body",
        "_buf",
        "_fast",
        "_more",
        "_more_size",
        "_remaining",
        "_short_head",
        "_state",
        "_status",
        "max_header_count",
        "max_header_section",
        "max_start_line",
    )

    def __init__(self, status: int, max_start_line: int, max_header_section: int, max_header_count: int) -> None:
        self._status = status  # what every framing error answers: 400 for requests, 502 for responses
        self._state = _HEAD
        self._buf = b""  # unparsed bytes carried to the next feed()
        self._more: list[bytes] = []  # later reads not yet joined to _buf (see feed)
        self._more_size = 0
        self._remaining = 0  # body bytes left in a Content-Length body or the current chunk
        self._after_body = _HEAD  # the state to enter when the current message ends
        self.max_start_line = max_start_line
        self.max_header_section = max_header_section
        self.max_header_count = max_header_count
        # The fast-path expression embeds the field count limit (set at construction).
        self._fast = _fast_re(status == 400, max_header_count)
        # A head no longer than this cannot exceed the start-line or the section limit.
        self._short_head = min(max_start_line, max_header_section)
        # Subclasses keep a one-head memo: the bytes of the last head parsed (b"" for none) with its event.
        # A keep-alive peer often sends the very same head again (a client polling or a load generator
        # repeating a request; a backend answering the same resource within the same second of its Date
        # field): the same bytes parse to the same event (for a response, to the same request method), so
        # a comparison of the bytes replaces the parse. Events are immutable and can be handed out again.
        # A different head costs one failed comparison (it stops at the first different byte) and one copy.

    # -- public -----------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """True between messages with nothing buffered (the keep-alive timeout applies, not the request one)."""
        return self._state == _HEAD and not self._buf

    @property
    def paused(self) -> bool:
        """True after a message that may switch protocols; see take_trailing_data() and resume()."""
        return self._state == _PAUSED

    def take_trailing_data(self) -> bytes:
        """Finish the HTTP stream and return the bytes received after the switching message."""
        data = self._joined()
        self._buf = b""
        self._state = _DONE
        return data

    def resume(self) -> list[Event]:
        """The protocol switch did not happen: parse what arrived meanwhile as HTTP."""
        if self._state != _PAUSED:
            return []
        self._state = _HEAD
        data = self._joined()
        self._buf = b""
        return self.feed(data) if data else []

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        state = self._state
        if not data:
            try:
                if state < _PAUSED:
                    self._eof(events)
            finally:
                self._state = _DONE  # what waited while paused stays for take_trailing_data()
            return events
        if state >= _PAUSED:
            if state == _PAUSED:
                self._more.append(data)
            return events
        if self._buf:
            if state in _LINE_STATES and b"\n" not in data:
                # Without a LF the step cannot complete: keep the piece aside instead of copying the
                # whole buffer once per read (a head sent one byte at a time would be quadratic).
                self._more.append(data)
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
                if state == _HEAD:
                    new = self._head(buf, pos, events)
                elif state == _LENGTH:
                    remaining = self._remaining
                    if end - pos >= remaining:
                        events.append(Data(buf[pos : pos + remaining]))
                        new = pos + remaining
                        self._end_message(events, END_OF_MESSAGE)
                    else:
                        events.append(Data(buf[pos:] if pos else buf))
                        self._remaining = remaining - (end - pos)
                        new = end
                elif state == _CHUNK_HEAD:
                    new = self._chunk_head(buf, pos)
                elif state == _CHUNK_DATA:
                    remaining = self._remaining
                    if end - pos >= remaining:
                        events.append(Data(buf[pos : pos + remaining]))
                        new = pos + remaining
                        self._state = _CHUNK_END
                    else:
                        events.append(Data(buf[pos:] if pos else buf))
                        self._remaining = remaining - (end - pos)
                        new = end
                elif state == _CHUNK_END:
                    if end - pos < 2:
                        if buf[pos] != 13:
                            raise ProtocolError("chunk data not followed by CRLF (RFC 9112 §7.1)", self._status)
                        break
                    if buf[pos] != 13 or buf[pos + 1] != 10:
                        raise ProtocolError("chunk data not followed by CRLF (RFC 9112 §7.1)", self._status)
                    new = pos + 2
                    self._state = _CHUNK_HEAD
                elif state == _TRAILERS:
                    new = self._trailers(buf, pos, events)
                elif state == _UNTIL_CLOSE:
                    events.append(Data(buf[pos:] if pos else buf))
                    new = end
                else:  # paused or closed by the message that just ended
                    if state == _PAUSED:
                        self._more.append(buf[pos:])
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
        if self._buf and self._state >= _PAUSED:
            if self._state == _PAUSED:
                self._more.append(self._buf)
            self._buf = b""
        return events

    def _fail(self) -> None:
        """After an error or the end of the stream nothing more is parsed."""
        self._state = _DONE
        self._buf = b""
        self._more = []

    # -- buffering --------------------------------------------------------------------------------

    def _joined(self) -> bytes:
        if self._more:
            self._buf = self._buf + b"".join(self._more)
            self._more = []
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

    def _check_partial_size(self, size: int) -> None:
        """Refuse an incomplete line or section that already exceeds its limit."""
        state = self._state
        if state == _HEAD:
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                if size > self.max_start_line:
                    self._start_line_too_long()
            elif size - line_end - 2 > self.max_header_section:
                raise ProtocolError("header section too large", self._too_large_status())
        elif state == _CHUNK_HEAD:
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
        if buf.count(b"\r", pos) - crlf > (buf[-1] == 13):  # a CR at the very end may still get its LF
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
            self._state = _LENGTH
        elif kind == "chunked":
            self._state = _CHUNK_HEAD
        else:
            self._state = _UNTIL_CLOSE

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
        if lf == pos or buf[lf - 1] != 13:
            raise ProtocolError("chunk header not terminated by CRLF (RFC 9112 §7.1)", status)
        match = _CHUNK_LINE_RE.fullmatch(buf, pos, lf - 1)
        if match is None:
            raise ProtocolError("invalid chunk size or chunk extension (RFC 9112 §7.1)", status)
        size = int(match.group(1), 16)
        if size:
            self._remaining = size
            self._state = _CHUNK_DATA
        else:
            self._state = _TRAILERS
        return lf + 1

    def _trailers(self, buf: bytes, pos: int, events: list[Event]) -> int:
        status = self._status
        if len(buf) - pos < 2:
            if buf[pos] == 10:
                raise ProtocolError("bare LF after last chunk (RFC 9112 §7.1)", status)
            return pos
        if buf[pos] == 13:
            if buf[pos + 1] != 10:
                raise ProtocolError("bare CR after last chunk (RFC 9112 §7.1)", status)
            self._end_message(events, END_OF_MESSAGE)
            return pos + 2
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if len(buf) - pos > MAX_TRAILER_SECTION:
                raise ProtocolError("trailer section too large", self._too_large_status())
            crlf = buf.count(b"\r\n", pos)
            if buf.count(b"\n", pos) != crlf:
                raise ProtocolError("bare LF in trailer section (RFC 9112 §2.2)", status)
            if buf.count(b"\r", pos) - crlf > (buf[-1] == 13):
                raise ProtocolError("bare CR in trailer section (RFC 9112 §2.2)", status)
            if buf.count(b"\r\n", pos) > MAX_TRAILER_COUNT:
                raise ProtocolError("too many trailer fields", self._too_large_status())
            return pos
        if end - pos > MAX_TRAILER_SECTION:
            raise ProtocolError("trailer section too large", self._too_large_status())
        pairs = fields.parse_fields(buf, pos, end + 2, MAX_TRAILER_COUNT, status)
        for name, _ in pairs:
            if name.lower() in _FORBIDDEN_TRAILERS:
                raise ProtocolError(f"{name.decode()} is not allowed in trailers (RFC 9110 §6.5.1)", status)
        self._end_message(events, EndOfMessage(tuple(pairs)))
        return end + 4



class RequestParser(_MessageParser):
    """Parses the requests a client sends on one connection.

    Errors carry 400, except: request line too long 414, header section too large or too many fields
    431, unsupported transfer coding 501, HTTP version other than 1.0 / 1.1 505.
    """

    __slots__ = ("_last_after", "_last_event", "_last_head", "_near_after", "_near_event", "_near_prefix",
                 "_near_state", "_valid_host")

    def __init__(
        self,
        *,
        max_request_line: int = MAX_REQUEST_LINE,
        max_header_section: int = MAX_HEADER_SECTION,
        max_header_count: int = MAX_HEADER_COUNT,
    ) -> None:
        super().__init__(400, max_request_line, max_header_section, max_header_count)
        # The last Host value validated: a keep-alive client repeats it, a comparison is cheaper than the
        # regular expression.
        self._valid_host: bytes | None = None
        # The last head parsed, its event and the state after it (see _MessageParser.__init__).
        self._last_head = b""
        self._last_event = _NO_REQUEST
        self._last_after = _HEAD
        # The target memo (see _near_target): the last origin-form head from the fast path as
        # `METHOD SP`, its event, everything after its target (version, field section, empty line), and
        # the state after it. _near_after is b"" when not armed.
        self._near_prefix = b""
        self._near_event = _NO_REQUEST
        self._near_after = b""
        self._near_state = _HEAD

    def _eof(self, events: list[Event]) -> None:
        if self._state == _HEAD and not (self._buf.strip(b"\r\n") or any(self._more)):
            return
        raise ProtocolError("connection closed in the middle of a request", 400)

    def _check_start_line(self, buf: bytes, pos: int, line_end: int) -> None:
        match = _REQUEST_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            _bad_request_line(buf[pos:line_end])
        version = match.group(3)
        if version != _V11 and version != _V10:
            raise ProtocolError("HTTP version not supported", 505)

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request-line.
        if buf[pos] == 13:
            while buf.startswith(b"\r\n", pos):
                pos += 2
            if pos == len(buf):
                return pos
        last = self._last_head
        if last and _starts_with(buf, last, pos):  # the previous head again: the same bytes, the same event
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
            (
                method, target, minor, raw, _, host_field, _, length_field, _, codings, _, connection, _,
                keep_alive_field, _, upgrades, _, expect, _,
            ) = match.groups()
            end = match.end()
            if end - pos > self._short_head and (
                len(raw) > self.max_header_section or len(method) + len(target) + 10 > self.max_start_line
            ):
                match = None  # the general path reports the limit
        if match is not None:
            version = _V11 if minor == b"1" else _V10
            expect_continue = expect is not None and (expect == b"100-continue" or expect.lower() == b"100-continue")
            headers: Headers | None = None
            if host_field is None:
                forwardable: bytes | None = None  # forwarding adds a Host
            elif keep_alive_field is None and codings is None and upgrades is None:
                if connection is None:
                    forwardable = raw
                else:  # only the Connection line to leave out, the usual case
                    cut = match.start(_Q_CONNECTION) - 12 - pos - len(method) - len(target) - 12
                    forwardable = raw[:cut] + raw[cut + 14 + len(connection) :]
            else:
                forwardable = _without_lines(raw, pos + len(method) + len(target) + 12, match, _REQUEST_HOP_GROUPS)
        else:
            general = self._general_fields(buf, pos)
            if general is None:
                return pos
            (
                method, target, version, headers, host_field, length_field, codings, connection, upgrades,
                expect_continue, end,
            ) = general
            raw = b""
            forwardable = None

        # Request target forms (RFC 9112 §3.2) and the authority of the target URI.
        if target[0] == 47:  # "/": origin-form
            if method == _CONNECT:
                raise ProtocolError("CONNECT needs an authority-form target (RFC 9112 §3.2.3)", 400)
            host = b""
        elif method == _CONNECT:
            if _AUTHORITY_RE.fullmatch(target) is None:
                raise ProtocolError("invalid authority-form target (RFC 9112 §3.2.3)", 400)
            host = target
        elif target == b"*":
            if method != b"OPTIONS":
                raise ProtocolError("asterisk-form is only for OPTIONS (RFC 9112 §3.2.4)", 400)
            host = b""
        else:
            host = _absolute_authority(target)

        if host_field is None:
            if version == _V11:
                raise ProtocolError("HTTP/1.1 request without Host (RFC 9112 §3.2)", 400)
        else:
            if host_field != self._valid_host:
                if not fields.valid_host(host_field):
                    raise ProtocolError("invalid Host field value (RFC 9112 §3.2)", 400)
                self._valid_host = host_field
            if not host:
                host = host_field

        options: tuple[bytes, ...] = ()
        if connection is not None:
            common = _COMMON_CONNECTION.get(connection)  # the usual values, all of them vetted
            if common is not None:
                options = common
            else:
                options = fields.connection_options(connection, 400)
                if forwardable is not None and not _VETTED_OPTIONS.issuperset(options):
                    forwardable = None
        if version == _V11:
            keep_alive = b"close" not in options
        else:
            # RFC 9112 §9.3 / Appendix C.2.2: HTTP/1.0 persists only with the keep-alive option.
            keep_alive = b"keep-alive" in options and b"close" not in options
            expect_continue = False  # RFC 9110 §10.1.1: ignore 100-continue from an HTTP/1.0 client

        if codings is not None:
            if length_field is not None:
                raise ProtocolError("both Transfer-Encoding and Content-Length (RFC 9112 §6.1)", 400)
            if version == _V10:
                raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)", 400)
            fields.check_transfer_encoding(codings, 400, 501)
            framing = CHUNKED
        elif length_field is not None:
            cached = _LENGTH_FRAMINGS.get(length_field)  # values without leading zeros only
            if cached is not None:
                framing = cached
            else:
                framing = _length_framing(length_field, 400)
                if length_field[0] == 48 and len(length_field) > 1:
                    forwardable = None  # forwarding writes it without the leading zeros
        else:
            framing = NO_BODY
        if method == _CONNECT and (codings is not None or length_field is not None):
            raise ProtocolError("a CONNECT request has no content (RFC 9110 §9.3.6)", 400)

        upgrade = None
        # RFC 9110 §7.8 (an HTTP/1.0 Upgrade is ignored). h2c is never passed on: a tunnelled HTTP/2
        # connection would carry requests past every rule of the proxy ("h2c smuggling").
        if (
            upgrades is not None
            and version == _V11
            and b"upgrade" in options
            and b"h2c" not in [element.lower() for element in fields.split_list(upgrades)]
        ):
            upgrade = upgrades

        head = RequestHead(
            method, target, version, headers, keep_alive, framing, upgrade, expect_continue, host, options, raw,
            forwardable,
        )
        events.append(head)
        if upgrade is not None or method == _CONNECT:
            after = _PAUSED
        elif keep_alive:
            after = _HEAD
        else:
            after = _CLOSED
        if end - pos <= MAX_MEMO_HEAD:
            self._last_head = buf[pos:end]
            self._last_event = head
            self._last_after = after
            if raw and target[0] == 47 and after == _HEAD:
                self._near_prefix = method + b" "
                self._near_event = head
                self._near_after = buf[pos + len(method) + 1 + len(target) : end]
                self._near_state = after
            else:
                self._near_after = b""
        self._request_body(framing, events, after)
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
        validated. The position after the head, or -1 (take the usual path)."""
        prefix = self._near_prefix
        start = pos + len(prefix)
        if buf[pos:start] != prefix:
            return -1
        space = buf.find(b" ", start, pos + self.max_start_line - 9)  # the request line's limit, as in _head
        if space < 0:
            return -1
        after = self._near_after
        end = space + len(after)
        if end > len(buf) or buf[space:end] != after or buf[start] != 47:
            return -1
        if _TARGET_RE.fullmatch(buf, start, space) is None:
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
    ) -> tuple[bytes, bytes, bytes, Headers, _Field, _Field, _Field, _Field, _Field, bool, int] | None:
        """The general path: validate the request line and the field section of a head in any valid form.

        Returns None while the head is incomplete (after checking what has arrived), else (method, target,
        version, headers, Host, Content-Length, Transfer-Encoding, Connection, Upgrade, expect 100-continue,
        the position after the head); list fields sent on several lines are joined with ", ".
        """
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if pos < len(buf):
                self._incomplete_head(buf, pos)
            return None
        line_end = buf.find(b"\r\n", pos)
        if line_end - pos > self.max_start_line:
            self._start_line_too_long()
        if end - line_end > self.max_header_section:
            raise ProtocolError("header section too large", 431)
        match = _REQUEST_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            _bad_request_line(buf[pos:line_end])
        method, target, version = match.groups()
        if version != _V11 and version != _V10:
            raise ProtocolError("HTTP version not supported", 505)

        host_field: bytes | None = None
        length_field: bytes | None = None
        codings: bytes | None = None
        connection: bytes | None = None
        upgrades: bytes | None = None
        expect_continue = False
        headers: Headers = ()
        if end != line_end:
            start = line_end + 2
            pairs = self._field_lines(buf, start, end, 431)
            for name, value in pairs:
                key = _SPECIAL.get(name.lower())
                if key is None:
                    continue
                if key == _HOST:
                    if host_field is not None:
                        raise ProtocolError("more than one Host field (RFC 9112 §3.2)", 400)
                    host_field = value
                elif key == _CONTENT_LENGTH:
                    if length_field is not None:
                        raise ProtocolError("multiple Content-Length fields (RFC 9112 §6.3)", 400)
                    length_field = value
                elif key == _TRANSFER_ENCODING:
                    # Field lines of a list field combine with ", " (RFC 9110 §5.3).
                    codings = value if codings is None else codings + b", " + value
                elif key == _CONNECTION:
                    connection = value if connection is None else connection + b", " + value
                elif key == _UPGRADE:
                    upgrades = value if upgrades is None else upgrades + b", " + value
                elif key == _EXPECT:
                    if value.lower() == b"100-continue":
                        expect_continue = True
                elif key == _LOOKALIKE:
                    fields.raise_lookalike(name, 400)
                else:
                    fields.raise_bad_line(buf, start, end + 2, 400)
            headers = tuple(pairs)
        return (
            method, target, version, headers, host_field, length_field, codings, connection, upgrades, expect_continue,
            end + 4,
        )


class ResponseParser(_MessageParser):
    """Parses the responses a backend sends on one connection. Every error carries 502.

    The body of a response depends on the request it answers (RFC 9112 §6.3): call `expect(method)` for
    every request forwarded on the connection, in order. A response nobody asked for is an error.
    """

    __slots__ = ("_last_after", "_last_event", "_last_head", "_last_method", "_methods", "_near_chunks",
                 "_near_fixed", "_near_kept", "_near_values", "_near_volatile", "_switching")

    def __init__(
        self,
        *,
        max_status_line: int = MAX_STATUS_LINE,
        max_header_section: int = MAX_HEADER_SECTION,
        max_header_count: int = MAX_HEADER_COUNT,
    ) -> None:
        super().__init__(502, max_status_line, max_header_section, max_header_count)
        # Methods of the requests sent whose final response is still due, oldest first. A list: compiled,
        # append and pop(0) are native operations (a deque's methods are generic calls), and it holds one
        # entry per request pipelined on the connection: at most one in rsp (one exchange at a time).
        self._methods: list[bytes] = []
        # The last final response head parsed, the method it answered, its event and the state after it
        # (see _MessageParser.__init__).
        self._last_head = b""
        self._last_method = b""
        self._last_event = _NO_RESPONSE
        self._last_after = _HEAD
        # The near memo (see _learn_near): the value ranges that may differ from the last head, the fixed
        # ranges around them and their bytes, the field lines that differed so far, and the ranges of `raw`
        # that make up `forwardable` when it is neither raw itself nor None.
        self._near_values: list[tuple[int, int]] = []
        self._near_fixed: list[tuple[int, int]] = []
        self._near_chunks: list[bytes] = []
        self._near_volatile: set[int] = set()
        self._near_kept: list[tuple[int, int]] = []

    def expect(self, method: bytes) -> None:
        """A request with this method was sent; its response comes after those already expected."""
        self._methods.append(method)

    @property
    def pending(self) -> int:
        """Requests sent whose final response has not been fully received."""
        return len(self._methods)

    def _eof(self, events: list[Event]) -> None:
        state = self._state
        if state == _UNTIL_CLOSE:
            self._end_message(events, END_OF_MESSAGE)
            return
        if state == _HEAD and not self._buf and not self._more:
            return  # between responses: the I/O layer sees `pending` to tell an idle close from a lost one
        raise ProtocolError("backend closed the connection in the middle of a response", 502)

    def _end_message(self, events: list[Event], end: EndOfMessage) -> None:
        events.append(end)
        self._state = self._after_body
        self._methods.pop(0)  # the final response to the oldest request is complete

    def _check_start_line(self, buf: bytes, pos: int, line_end: int) -> None:
        match = _STATUS_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            raise ProtocolError("invalid status line (RFC 9112 §4)", 502)
        version = match.group(1)
        if version != _V11 and version != _V10:
            raise ProtocolError("unsupported HTTP version in response", 502)

    def _head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        # Empty lines before a status line are skipped as before a request line (RFC 9112 §2.2): some
        # servers send a CRLF after a body.
        if buf[pos] == 13:
            while buf.startswith(b"\r\n", pos):
                pos += 2
            if pos == len(buf):
                return pos
        methods = self._methods
        if not methods:
            match = None
        else:
            last = self._last_head
            if self._near_values:
                # Heads whose values change (a Date, a request id): the exact memo would compare a whole head
                # in vain every time; the near memo also answers an identical head.
                if methods[0] == self._last_method:
                    near = self._near_head(buf, pos, events)
                    if near >= 0:
                        return near
            elif last and methods[0] == self._last_method and _starts_with(buf, last, pos):
                # The previous final response again, to the same method: the same event.
                head = self._last_event
                events.append(head)
                return self._final_body(buf, pos + len(last), head.body, events, self._last_after)
            match = self._fast.match(buf, pos)
        if match is not None:
            (
                minor, code, reason, raw, _, length_field, _, codings, _, connection, _, keep_alive_field, _,
            ) = match.groups()
            end = match.end()
            if end - pos > self._short_head and (
                len(raw) > self.max_header_section or (12 if reason is None else 13 + len(reason)) > self.max_start_line
            ):
                match = None  # the general path reports the limit
        if match is not None:
            version = _V11 if minor == b"1" else _V10
            status = _STATUS_CODES[code]
            headers: Headers | None = None
            offset = pos + (14 if reason is None else 15 + len(reason))  # where the section starts
            if keep_alive_field is None and codings is None:
                if connection is None:
                    forwardable: bytes | None = raw
                else:  # only the Connection line to leave out, the usual case
                    cut = match.start(_R_CONNECTION) - 12 - offset
                    forwardable = raw[:cut] + raw[cut + 14 + len(connection) :]
            else:
                forwardable = _without_lines(raw, offset, match, _RESPONSE_HOP_GROUPS)
        else:
            general = self._general_fields(buf, pos)
            if general is None:
                return pos
            version, status, reason, headers, length_field, codings, connection, end = general
            raw = b""
            forwardable = None

        options: tuple[bytes, ...] = ()
        if connection is not None:
            common = _COMMON_CONNECTION.get(connection)  # the usual values, all of them vetted
            if common is not None:
                options = common
            else:
                options = fields.connection_options(connection, 502)
                if forwardable is not None and not _VETTED_OPTIONS.issuperset(options):
                    forwardable = None
        if version == _V11:
            keep_alive = b"close" not in options
        else:
            keep_alive = b"keep-alive" in options and b"close" not in options

        # The same scrutiny as requests: a response the proxy cannot frame unambiguously is refused
        # even where its framing would not be used (HEAD, 1xx, 204, 304).
        framing: Framing
        if codings is not None:
            if length_field is not None:
                raise ProtocolError("both Transfer-Encoding and Content-Length (RFC 9112 §6.1)", 502)
            if version == _V10:
                raise ProtocolError("Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1)", 502)
            fields.check_transfer_encoding(codings, 502, 502)
            framing = CHUNKED
        elif length_field is not None:
            cached = _LENGTH_FRAMINGS.get(length_field)  # values without leading zeros only
            if cached is not None:
                framing = cached
            else:
                framing = _length_framing(length_field, 502)
                if length_field[0] == 48 and len(length_field) > 1:
                    forwardable = None  # forwarding writes it without the leading zeros
        else:
            framing = UNTIL_CLOSE

        method = methods[0]
        # RFC 9112 §6.3 rules 1 and 2.
        if status in _NO_CONTENT_STATUS or method == _HEAD_METHOD or (method == _CONNECT and status < 300):
            framing = NO_BODY
        if framing is UNTIL_CLOSE:
            keep_alive = False

        head = ResponseHead(
            status, reason or b"", version, headers, keep_alive, framing, options, raw, forwardable
        )
        events.append(head)
        if status == 101 or (method == _CONNECT and 200 <= status < 300):
            self._begin_body(NO_BODY, events, _PAUSED)  # the connection becomes a tunnel
            return end
        if status < 200:
            # Interim response (RFC 9110 §15.2): the final response to the same request is still to come.
            events.append(END_OF_MESSAGE)
            return end
        after = _HEAD if keep_alive else _CLOSED
        if end - pos <= MAX_MEMO_HEAD:
            if raw and method == self._last_method and after == self._last_after:
                self._learn_near(buf, pos, end, head)
            else:
                self._near_values = []
                self._near_volatile = set()
            self._last_head = buf[pos:end]
            self._last_method = method
            self._last_event = head
            self._last_after = after
        return self._final_body(buf, end, framing, events, after)

    # -- the near memo ------------------------------------------------------------------------------
    # Backends repeat a response head with a line or two changed: nginx's Date once a second, a request
    # id or a cookie every time. The exact memo misses those, and the fast path's expression costs about
    # 3 us for nginx's head. The near memo learns which lines change between consecutive heads of the
    # same shape ("volatile" lines: the same name, the same length, a name the fast path neither captures
    # nor refuses) and then checks a new head as: the bytes around the volatile values equal the last
    # head's (a few memcmp), and each volatile value is a canonical value (the fast path's own rule).
    # When both hold, the new head is the last one's verdict (status, framing, keep-alive, Connection
    # options) with the new `raw` and `forwardable`: exactly what the fast path would return, because
    # every other byte is the one it validated last time and no line that decides framing or is refused
    # can have changed. Anything else takes the usual path, which re-learns.

    def _learn_near(self, buf: bytes, pos: int, end: int, head: ResponseHead) -> None:
        """After a fast-path parse of the head at buf[pos:end]: compare it with the last head and remember
        which value ranges may differ next time (offsets from the head's start)."""
        previous = self._last_head
        current = buf[pos:end]
        self._near_values = []
        self._near_fixed = []
        if len(previous) != len(current) or self._last_event.raw == b"":
            return
        old_lines = previous.split(b"\r\n")
        new_lines = current.split(b"\r\n")
        if len(old_lines) != len(new_lines) or old_lines[0] != new_lines[0]:
            return
        volatile = self._near_volatile
        offset = len(new_lines[0]) + 2
        values: list[tuple[int, int]] = []
        for i in range(1, len(new_lines)):
            old = old_lines[i]
            new = new_lines[i]
            colon = new.find(b":")
            if (old != new or i in volatile) and colon > 0:
                if (len(old) != len(new) or old[: colon + 2] != new[: colon + 2]
                        or new[:colon].lower() in _RESPONSE_CAPTURED_SET):
                    self._near_volatile = set()
                    return
                volatile.add(i)
                values.append((offset + colon + 2, offset + len(new)))
            elif old != new:
                self._near_volatile = set()
                return
            offset += len(new) + 2
        if not values:
            return
        fixed: list[tuple[int, int]] = []
        previous_end = 0
        for start, stop in values:
            fixed.append((previous_end, start))
            previous_end = stop
        fixed.append((previous_end, len(current)))
        self._near_values = values
        self._near_fixed = fixed
        self._near_chunks = [current[start:stop] for start, stop in fixed]
        raw = head.raw
        forwardable = head.forwardable
        if forwardable is not None and forwardable is not raw:
            # `forwardable` is `raw` without its hop-by-hop lines; they are fixed, so the cut is the same
            # one next time: remember the kept ranges of raw.
            try:
                self._near_kept = _kept_ranges(raw, forwardable)
            except ValueError:  # cannot happen for a forwardable the fast path built; never guess
                self._near_values = []

    def _near_head(self, buf: bytes, pos: int, events: list[Event]) -> int:
        """The head at `pos` from the near memo: the position after it, or -1 (take the usual path)."""
        size = len(self._last_head)
        if pos + size > len(buf):
            return -1
        chunks = self._near_chunks
        for i, (start, stop) in enumerate(self._near_fixed):
            if buf[pos + start : pos + stop] != chunks[i]:
                return -1
        for start, stop in self._near_values:
            # The fast path's rule for a value (_CANONICAL_VALUE): not empty, no control byte but HTAB, and
            # no SP or HTAB at either end.
            # Compiled, this loop costs less than half a regular expression call on a 32-byte request id.
            first = pos + start
            last = pos + stop - 1
            if last < first or buf[first] in (9, 32) or buf[last] in (9, 32):
                return -1
            for i in range(first, stop + pos):
                c = buf[i]
                if (c < 32 and c != 9) or c == 127:
                    return -1
        # The learned head (its bytes and event go together) gives where the field section starts and how
        # its forwardable was cut from its raw; the same holds for this head, line for line.
        previous = self._last_event
        raw = buf[pos + size - len(previous.raw) - 2 : pos + size - 2]
        forwardable: bytes | None
        if previous.forwardable is None:
            forwardable = None
        elif previous.forwardable is previous.raw:
            forwardable = raw
        else:
            forwardable = b"".join([raw[a:b] for a, b in self._near_kept])
        head = ResponseHead(previous.status, previous.reason, previous.version, None, previous.keep_alive,
                            previous.body, previous.connection, raw, forwardable)
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
    ) -> tuple[bytes, int, bytes | None, Headers, bytes | None, bytes | None, bytes | None, int] | None:
        """The general path: validate the status line and the field section of a head in any valid form.

        Returns None while the head is incomplete (after checking what has arrived), else (version, status,
        reason, headers, Content-Length, Transfer-Encoding, Connection, the position after the head).
        """
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if pos < len(buf):
                self._incomplete_head(buf, pos)
            return None
        if not self._methods:
            raise ProtocolError("response without a request", 502)
        line_end = buf.find(b"\r\n", pos)
        if line_end - pos > self.max_start_line:
            raise ProtocolError("status line too long", 502)
        if end - line_end > self.max_header_section:
            raise ProtocolError("header section too large", 502)
        match = _STATUS_LINE_RE.fullmatch(buf, pos, line_end)
        if match is None:
            raise ProtocolError("invalid status line (RFC 9112 §4)", 502)
        version, code, reason = match.groups()
        if version != _V11 and version != _V10:
            raise ProtocolError("unsupported HTTP version in response", 502)
        status = int(code)

        length_field: bytes | None = None
        codings: bytes | None = None
        connection: bytes | None = None
        headers: Headers = ()
        if end != line_end:
            start = line_end + 2
            pairs = self._field_lines(buf, start, end, 502)
            for name, value in pairs:
                key = _SPECIAL.get(name.lower())
                if key is None:
                    continue
                if key == _CONTENT_LENGTH:
                    if length_field is not None:
                        raise ProtocolError("multiple Content-Length fields (RFC 9112 §6.3)", 502)
                    length_field = value
                elif key == _TRANSFER_ENCODING:
                    codings = value if codings is None else codings + b", " + value
                elif key == _CONNECTION:
                    connection = value if connection is None else connection + b", " + value
                elif key == _BAD:
                    fields.raise_bad_line(buf, start, end + 2, 502)
                elif key == _LOOKALIKE:
                    fields.raise_lookalike(name, 502)
            headers = tuple(pairs)
        return version, status, reason, headers, length_field, codings, connection, end + 4


def _bad_request_line(line: bytes) -> NoReturn:
    if b"\n" in line or b"\r" in line:
        raise ProtocolError("bare CR or LF in request line (RFC 9112 §2.2)", 400)
    if _LOOSE_VERSION_RE.fullmatch(line) is not None:
        raise ProtocolError("invalid method or request-target (RFC 9112 §3)", 400)
    raise ProtocolError("invalid request line (RFC 9112 §3)", 400)


def _absolute_authority(target: bytes) -> bytes:
    match = _ABSOLUTE_RE.fullmatch(target)
    if match is None:
        raise ProtocolError("invalid request-target (RFC 9112 §3.2)", 400)
    scheme, authority, _ = match.groups()
    if scheme.lower() not in (b"http", b"https"):
        raise ProtocolError("absolute-form target with a scheme other than http(s)", 400)
    if b"@" in authority:
        # RFC 9110 §4.2.4: userinfo in an http(s) URI is deprecated; recipients SHOULD treat it as an error.
        raise ProtocolError("userinfo in request-target (RFC 9110 §4.2.4)", 400)
    if not authority or authority[0] == 58 or not fields.valid_host(authority):
        raise ProtocolError("invalid authority in request-target (RFC 9110 §4.2.1)", 400)
    return authority
