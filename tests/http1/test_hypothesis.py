"""Property tests of the parsers.

- Any way of cutting the same bytes into reads gives the same events (Data pieces merged) and the same
  error status: for generated valid requests and responses, and for mutated (mostly invalid) requests.
- Generated valid messages parse to exactly what was generated.
- Mutated requests never raise anything but ProtocolError, and whatever the parser accepts is forwarded
  (rsp.http1.forward) as a byte stream the independent strict judge (tests/conformance/judge.py) reads
  back as the same requests: acceptance never opens a desync.
- llhttp (through httptools) as an oracle: a stream of requests rsp accepts to its end, llhttp accepts
  too. rsp is stricter in places (see tests/conformance/harness.py), never more lenient, with two
  deliberate exceptions kept out of the comparison: methods llhttp does not know, and bytes after a
  request that closes the connection (llhttp fails on them, rsp ignores them).
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.harness import merged, normalisation_problem
from rsp.errors import ProtocolError
from rsp.http1.events import EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Names that would make the generated message mean something else (framing, routing, hop-by-hop).
RESERVED = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te", "trailer"}

tokens = st.text(TCHARS, min_size=1, max_size=12).map(str.encode)
field_names = tokens.filter(lambda n: n.lower().decode() not in RESERVED and b"_" not in n and b"--" not in n)
vchar = st.sampled_from([bytes([b]) for b in [*range(0x21, 0x7F), 0x80, 0xA0, 0xE9, 0xFF]])
field_values = st.lists(st.one_of(vchar, st.sampled_from([b" ", b"\t"])), max_size=20).map(
    lambda parts: b"".join(parts).strip(b" \t")
)
path_chars = "abcXYZ019-._~!$&'()*+,;=:@/%?\"\\"
targets = st.text(path_chars, max_size=20).map(lambda s: b"/" + s.encode())
bodies = st.binary(max_size=300)


@dataclass(frozen=True)
class Request:
    method: bytes
    target: bytes
    version: bytes
    fields: tuple[tuple[bytes, bytes], ...]
    body: bytes
    chunked: bool
    chunks: tuple[int, ...]
    trailers: tuple[tuple[bytes, bytes], ...]

    def encode(self, ows: bytes = b" ") -> bytes:
        head = [b"%s %s HTTP/%s\r\n" % (self.method, self.target, self.version)]
        fields = list(self.fields)
        if self.version == b"1.1":
            fields.insert(0, (b"Host", b"example.com"))
        if self.chunked:
            fields.append((b"Transfer-Encoding", b"chunked"))
        elif self.body:
            fields.append((b"Content-Length", b"%d" % len(self.body)))
        else:
            pass
        if self.version == b"1.0":
            fields.append((b"Connection", b"keep-alive"))
        head += [name + b":" + ows + value + ows + b"\r\n" for name, value in fields]
        head.append(b"\r\n")
        if not self.chunked:
            return b"".join(head) + self.body
        out = b"".join(head)
        position = 0
        for size in self.chunks:
            piece = self.body[position : position + size]
            position += size
            if piece:
                out += b"%x;ext=v\r\n%s\r\n" % (len(piece), piece)
        if position < len(self.body):
            out += b"%X\r\n%s\r\n" % (len(self.body) - position, self.body[position:])
        out += b"0\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in self.trailers) + b"\r\n"
        return out


@st.composite
def requests(draw: st.DrawFn) -> Request:
    chunked = draw(st.booleans())
    version = b"1.1" if chunked else draw(st.sampled_from([b"1.1", b"1.0"]))
    return Request(
        method=draw(st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE"]) | tokens),
        target=draw(targets),
        version=version,
        fields=tuple(draw(st.lists(st.tuples(field_names, field_values), max_size=6))),
        body=draw(bodies),
        chunked=chunked,
        chunks=tuple(draw(st.lists(st.integers(1, 120), max_size=4))),
        trailers=tuple(draw(st.lists(st.tuples(field_names, field_values), max_size=2))) if chunked else (),
    )


def feed_in_pieces(parser: RequestParser | ResponseParser, raw: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        if cut > previous:  # an empty read would mean end of stream
            events += parser.feed(raw[previous:cut])
            previous = cut
    return events


def outcome(parser: RequestParser | ResponseParser, raw: bytes, cuts: list[int]) -> tuple[object, ...]:
    try:
        events = feed_in_pieces(parser, raw, cuts)
        events += parser.feed(b"")
    except ProtocolError as error:
        return ("error", error.status)
    return ("ok", merged(events))


@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=3), st.sampled_from([b"", b" ", b"\t \t"]), st.data())
def test_requests_parse_to_what_was_sent_however_the_bytes_are_cut(
    messages: list[Request], ows: bytes, data: st.DataObject
) -> None:
    raw = b"".join(message.encode(ows) for message in messages)
    whole = RequestParser().feed(raw)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert merged(feed_in_pieces(RequestParser(), raw, cuts)) == merged(whole)

    found = merged(whole)
    for message in messages:
        head = found.pop(0)
        assert isinstance(head, RequestHead)
        assert (head.method, head.target, head.version) == (message.method, message.target, message.version)
        assert [
            f for f in head.headers if f[0] not in (b"Host", b"Transfer-Encoding", b"Content-Length", b"Connection")
        ] == list(message.fields)
        assert head.keep_alive
        body = found.pop(0) if message.body else b""
        assert body == message.body
        end = found.pop(0)
        assert isinstance(end, EndOfMessage) and end.trailers == message.trailers
    assert found == []


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(method, raw response) pairs covering every body rule of RFC 9112 §6.3."""
    method = draw(st.sampled_from([b"GET", b"HEAD", b"POST"]))
    status = draw(st.sampled_from([200, 201, 204, 304, 404, 500]))
    body = draw(bodies)
    framing = draw(st.sampled_from(["length", "chunked"]))
    fields = draw(st.lists(st.tuples(field_names, field_values), max_size=4))
    head = b"HTTP/1.1 %d Reason Phrase\r\n" % status + b"".join(n + b": " + v + b"\r\n" for n, v in fields)
    if framing == "length":
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        payload = body
    else:
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    if method == b"HEAD" or status in (204, 304):
        payload = b""
    return method, head + payload


@SETTINGS
@given(st.lists(responses(), min_size=1, max_size=3), st.data())
def test_responses_parse_the_same_however_the_bytes_are_cut(
    items: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    raw = b"".join(response for _, response in items)

    def parser() -> ResponseParser:
        p = ResponseParser()
        for method, _ in items:
            p.expect(method)
        return p

    whole = parser().feed(raw)
    assert sum(1 for e in whole if isinstance(e, ResponseHead)) == len(items)
    assert sum(1 for e in whole if isinstance(e, EndOfMessage)) == len(items)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert merged(feed_in_pieces(parser(), raw, cuts)) == merged(whole)


# Bytes a mutation inserts or substitutes: the ones that matter to HTTP framing.
INTERESTING = [
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x85",
    b"\xa0",
    b"\xff",
    b":",
    b";",
    b",",
    b"=",
    b'"',
    b"0",
    b"9",
    b"a",
    b"F",
    b"-",
    b"_",
    b"#",
    b"/",
    b"?",
    b"chunked",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"\r\n\r\n",
    b"Host: b\r\n",
    b"Connection: close\r\n",
    b"Connection: upgrade\r\nUpgrade: websocket\r\n",
    b"GET / HTTP/1.1\r\n",
    b"0\r\n\r\n",
    b"HTTP/1.0",
]


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    raw = b"".join(m.encode() for m in draw(st.lists(requests(), min_size=1, max_size=2)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["insert", "replace", "delete", "duplicate"]))
        if kind == "insert":
            raw = raw[:position] + draw(st.sampled_from(INTERESTING)) + raw[position:]
        elif kind == "replace":
            raw = raw[:position] + draw(st.sampled_from(INTERESTING)) + raw[position + 1 :]
        elif kind == "delete":
            raw = raw[:position] + raw[position + draw(st.integers(1, 4)) :]
        else:
            end = draw(st.integers(position, min(len(raw), position + 40)))
            raw = raw[:end] + raw[position:end] + raw[end:]
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests(), st.data())
def test_mutated_requests_raise_only_protocol_errors_and_accepted_ones_forward_cleanly(
    raw: bytes, data: st.DataObject
) -> None:
    parser = RequestParser()
    try:
        events = parser.feed(raw)
    except ProtocolError as error:
        assert error.status in (400, 414, 431, 501, 505)
        events = None
    if events is not None:
        problem = normalisation_problem(events)
        assert problem is None, problem
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    assert outcome(RequestParser(), raw, cuts) == outcome(RequestParser(), raw, [])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_errors(raw: bytes) -> None:
    for parser in (RequestParser(), ResponseParser()):
        if isinstance(parser, ResponseParser):
            parser.expect(b"GET")
        try:
            parser.feed(raw)
            parser.feed(b"")
        except ProtocolError:
            pass


def test_a_known_tricky_mutation_is_stable() -> None:
    # Found while writing the properties: a request line split inside "\r\n" must not change the answer.
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\r\n\r\n"
    assert outcome(RequestParser(), raw, [29, 30]) == outcome(RequestParser(), raw, []) == ("error", 400)
    # The error is the second request's: the first one alone is a complete, valid request.
    first = raw[: raw.index(b"GET", 1)]
    assert outcome(RequestParser(), first, [10, 20]) == outcome(RequestParser(), first, [])
    events = RequestParser().feed(first)
    assert [type(event) for event in events] == [RequestHead, EndOfMessage]


LLHTTP_METHODS = {b"GET", b"POST", b"PUT", b"PATCH", b"DELETE"}


class _Callbacks:
    """httptools needs a protocol object; rsp's comparison needs none of the callbacks."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests())
def test_what_rsp_accepts_llhttp_accepts(raw: bytes) -> None:
    parser = RequestParser()
    try:
        events = parser.feed(raw) + parser.feed(b"")
    except ProtocolError:
        return
    heads = [event for event in events if isinstance(event, RequestHead)]
    if not heads or any(h.method not in LLHTTP_METHODS or not h.keep_alive for h in heads):
        return
    try:
        httptools.HttpRequestParser(_Callbacks()).feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # llhttp stops at an upgrade request, as rsp pauses
