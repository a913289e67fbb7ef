"""forward: the heads rsp writes to backends and clients, and chunked re-encoding."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from rsp.http1 import forward
from rsp.http1.events import Data, EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser


def request(raw: bytes) -> RequestHead:
    head = RequestParser().feed(raw)[0]
    assert isinstance(head, RequestHead)
    return head


def response(raw: bytes, method: bytes = b"GET") -> ResponseHead:
    parser = ResponseParser()
    parser.expect(method)
    head = parser.feed(raw)[0]
    assert isinstance(head, ResponseHead)
    return head


def lines(head: bytes) -> list[bytes]:
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n")


def test_request_from_an_untrusted_client() -> None:
    head = request(
        b"GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nConnection: keep-alive, X-Secret\r\n"
        b"X-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X\r\n"
        b"Upgrade: websocket\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
        b"Forwarded: for=6.6.6.6\r\nVia: 1.0 upstream\r\n\r\n"
    )
    assert lines(forward.request_head(head, "192.0.2.7")) == [
        b"GET /p?q=1 HTTP/1.1",
        b"Host: example.com",
        b"User-Agent: t",
        b"Via: 1.0 upstream",
        b"X-Forwarded-For: 192.0.2.7",
        b"X-Forwarded-Proto: http",
        b"X-Forwarded-Host: example.com",
        b"Via: 1.1 rsp",
    ]


def test_request_from_a_trusted_proxy_extends_what_it_sent() -> None:
    head = request(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nForwarded: for=1.1.1.1\r\n\r\n"
    )
    out = lines(forward.request_head(head, "10.0.0.2", trusted=True, forwarded=True, via=False))
    assert out[2:] == [
        b"X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.2",
        b"X-Forwarded-Proto: https",
        b"X-Forwarded-Host: public.example",
        b"Forwarded: for=1.1.1.1, for=10.0.0.2;host=a;proto=http",
    ]


def test_forwarded_quotes_ipv6_and_hosts_with_a_port() -> None:
    head = request(b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n")
    out = lines(forward.request_head(head, "2001:db8::1", forwarded=True, proto=b"https"))
    assert b'Forwarded: for="[2001:db8::1]";host="a.example:8080";proto=https' in out
    assert b"X-Forwarded-Proto: https" in out


def test_absolute_form_becomes_origin_form_with_host_from_the_authority() -> None:
    for target, path in (
        (b"http://a.example:81/x?y", b"/x?y"),
        (b"http://a.example:81", b"/"),
        (b"https://a.example:81?q", b"/?q"),
    ):
        head = request(b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n")
        out = lines(forward.request_head(head, "1.2.3.4", via=False))
        assert out[:2] == [b"GET " + path + b" HTTP/1.1", b"Host: a.example:81"]


def test_http10_request_goes_out_as_http11_with_a_host() -> None:
    head = request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    out = lines(forward.request_head(head, "1.2.3.4", fallback_host=b"backend:80"))
    assert out[0] == b"GET / HTTP/1.1" and b"Host: backend:80" in out and out[-1] == b"Via: 1.0 rsp"


def test_chunked_body_is_announced_again_and_content_length_is_canonical() -> None:
    chunked = request(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in lines(forward.request_head(chunked, "1.2.3.4"))
    length = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n")
    assert b"Content-Length: 10" in lines(forward.request_head(length, "1.2.3.4"))
    zero = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n")
    assert b"Content-Length: 0" in lines(forward.request_head(zero, "1.2.3.4"))


def test_upgrade_is_forwarded_only_as_a_tunnel_request() -> None:
    head = request(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
    )
    out = lines(forward.request_head(head, "1.2.3.4", via=False))
    assert out[1:5] == [b"Host: a", b"Sec-WebSocket-Key: k", b"Upgrade: websocket", b"Connection: upgrade"]
    assert b"Upgrade: websocket" not in lines(forward.request_head(head, "1.2.3.4", tunnel=False))


def test_close_asks_the_backend_to_close() -> None:
    head = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"Connection: close" in lines(forward.request_head(head, "1.2.3.4", close=True))


def test_forwarded_request_reads_back_the_same() -> None:
    raw = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    events = RequestParser().feed(raw)
    out = b""
    for event in events:
        if isinstance(event, RequestHead):
            out += forward.request_head(event, "1.2.3.4")
        elif isinstance(event, Data):
            out += forward.encode_chunk(event.data)
        elif isinstance(event, EndOfMessage):
            out += forward.last_chunk(event.trailers)
    again: list[Event] = RequestParser().feed(out)
    assert again[1:] == events[1:]
    assert again[0].headers[:2] == ((b"Host", b"a"), (b"X-A", b"1"))  # type: ignore[union-attr]


def test_response_head_for_an_http11_client() -> None:
    get = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    head = response(
        b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: t\r\n"
        b"Transfer-Encoding: chunked\r\nServer: s\r\n\r\n"
    )
    assert forward.response_framing(head, get) == (True, True)
    assert lines(forward.response_head(head, request=get, keep_alive=True, chunked=True)) == [
        b"HTTP/1.1 200 OK",
        b"Server: s",
        b"Transfer-Encoding: chunked",
    ]
    assert lines(forward.response_head(head, request=get, keep_alive=False, chunked=True, via=True))[-2:] == [
        b"Connection: close",
        b"Via: 1.1 rsp",
    ]


def test_response_to_an_http10_client_is_never_chunked() -> None:
    get10 = request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    chunked = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert forward.response_framing(chunked, get10) == (False, False)
    sized = response(b"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n")
    assert forward.response_framing(sized, get10) == (False, True)
    out = lines(forward.response_head(sized, request=get10, keep_alive=True, chunked=False))
    assert out == [b"HTTP/1.1 200 OK", b"Content-Length: 7", b"Connection: keep-alive"]


def test_close_delimited_response_is_rechunked_for_http11_clients() -> None:
    get = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    until_close = response(b"HTTP/1.0 200 OK\r\n\r\n")
    assert forward.response_framing(until_close, get) == (True, True)
    assert forward.response_framing(until_close, get, close=True) == (True, False)


def test_switching_and_interim_heads() -> None:
    ws = request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    switching = response(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: x\r\n\r\n"
    )
    assert lines(forward.response_head(switching, request=ws, keep_alive=True, chunked=False, upgrade=True)) == [
        b"HTTP/1.1 101 Switching Protocols",
        b"Sec-WebSocket-Accept: x",
        b"Upgrade: websocket",
        b"Connection: upgrade",
    ]
    interim = response(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert (
        forward.response_head(interim, request=ws, keep_alive=False, chunked=True) == b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    assert forward.response_framing(interim, ws) == (False, True)


@pytest.mark.parametrize("size", [1, 15, 16, 255, 4096, 100_000])
def test_encode_chunk(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert forward.encode_chunk(data) == b"%x\r\n" % size + data + b"\r\n"


def test_empty_data_is_no_chunk_and_last_chunk_carries_trailers() -> None:
    assert forward.encode_chunk(b"") == b""
    assert forward.last_chunk() == forward.LAST_CHUNK == b"0\r\n\r\n"
    assert forward.last_chunk(((b"X-Sum", b"1"), (b"Y", b""))) == b"0\r\nX-Sum: 1\r\nY: \r\n\r\n"


# -- the declared inputs of forwarding (the key of rsp.proxy.reply_cache) ------------------------------------


def parameter_names(function: Callable[..., object]) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def test_forwarding_reads_a_head_and_one_context() -> None:
    """The proxy's caches key on a head and a context: a new input of forwarding must be a context field
    (then the caches key on it), never another parameter."""
    assert parameter_names(forward.forward_request) == ["head", "context"]
    assert parameter_names(forward.forward_response) == ["head", "context"]


def test_the_keyword_form_of_request_head_is_the_context() -> None:
    assert parameter_names(forward.request_head) == ["head", *parameter_names(forward.RequestContext)]


def test_a_response_context_is_compared_on_every_field() -> None:
    from rsp.proxy.reply_cache import ResponseHeadCache

    fields = parameter_names(forward.ResponseContext)
    assert parameter_names(forward.ResponseContext.matches) == fields
    assert parameter_names(ResponseHeadCache.head_bytes) == ["head", *fields]


# One value per field and another one, for contexts that differ in one field only.
REQUEST_CONTEXT_VALUES: dict[str, tuple[object, object]] = {
    "client_ip": ("192.0.2.1", "192.0.2.2"), "trusted": (False, True), "forwarded": (False, True),
    "via": (True, False), "proto": (b"http", b"https"), "tunnel": (None, False), "close": (False, True),
    "fallback_host": (b"", b"fb"),
}
RESPONSE_CONTEXT_VALUES: dict[str, tuple[object, object]] = {
    "request_version": (b"1.1", b"1.0"), "request_keep_alive": (True, False), "close": (False, True),
    "via": (False, True), "upgrade": (False, True),
}


CONTEXTS: list[tuple[Callable[..., object], dict[str, tuple[object, object]], str]] = [
    *((forward.RequestContext, REQUEST_CONTEXT_VALUES, field) for field in REQUEST_CONTEXT_VALUES),
    *((forward.ResponseContext, RESPONSE_CONTEXT_VALUES, field) for field in RESPONSE_CONTEXT_VALUES),
]


@pytest.mark.parametrize(("context_class", "values", "field"), CONTEXTS, ids=[c[2] for c in CONTEXTS])
def test_contexts_differing_in_one_field_are_not_the_same(context_class: Callable[..., object],
                                                          values: dict[str, tuple[object, object]],
                                                          field: str) -> None:
    assert set(values) == set(parameter_names(context_class))  # every field has its two values here
    base = {name: pair[0] for name, pair in values.items()}
    a: Any = context_class(**base)
    b: Any = context_class(**{**base, field: values[field][1]})
    assert a.same(context_class(**base))
    assert not a.same(b) and not b.same(a)


def test_forward_response_is_response_head_with_its_own_framing() -> None:
    get10 = request(b"GET / HTTP/1.0\r\n\r\n")
    for raw in (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\n"):
        head = response(raw)
        for close in (False, True):
            reply = forward.forward_response(head, forward.ResponseContext(b"1.0", get10.keep_alive, close, True))
            chunked, keep = forward.response_framing(head, get10, close=close)
            assert (reply.chunked, reply.keep_alive) == (chunked, keep)
            assert reply.data == forward.response_head(head, request=get10, keep_alive=keep, chunked=chunked, via=True)
            if head.forwardable is not None:
                assert reply.data == reply.prefix + head.forwardable + reply.suffix
            else:
                assert reply.prefix == reply.suffix == b""
