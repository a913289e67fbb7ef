"""The ClientHello parser (rsp.tls.client_hello), without sockets: real hellos from OpenSSL, every split, fuzz."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.errors import ClientHelloError
from rsp.tls.client_hello import MAX_HELLO_BYTES, server_name


def real_hello(name: str | None, *, tls12: bool = False) -> bytes:
    """The first flight of Python's (OpenSSL's) client for `name`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def records(message: bytes, size: int) -> bytes:
    """`message` (a handshake message) re-framed into handshake records of `size` bytes (RFC 8446 §5.1)."""
    out = b""
    for i in range(0, len(message), size):
        part = message[i:i + size]
        out += b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part
    return out


@pytest.mark.parametrize("tls12", [False, True])
def test_real_hello_names(tls12: bool) -> None:
    assert server_name(real_hello("a.example", tls12=tls12)) == "a.example"
    assert server_name(real_hello("Mixed.Case.Example", tls12=tls12)) == "mixed.case.example"
    assert server_name(real_hello(None, tls12=tls12)) == ""  # no server_name extension
    assert server_name(real_hello("127.0.0.1", tls12=tls12)) == ""  # addresses are not sent (RFC 6066 §3)


def test_every_prefix_asks_for_more() -> None:
    hello = real_hello("prefix.example")
    for cut in range(len(hello)):
        assert server_name(hello[:cut]) is None, cut
    assert server_name(hello) == "prefix.example"
    assert server_name(hello + b"\x17\x03\x03\x00\x01x") == "prefix.example"  # what follows is not read


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_hello_fragmented_over_records(size: int) -> None:
    message = real_hello("frag.example")[5:]
    data = records(message, size)
    assert server_name(data) == "frag.example"
    assert server_name(data[:-1]) is None


@pytest.mark.parametrize(("data", "reason"), [
    (b"GET / HTTP/1.1\r\n", "not a TLS handshake"),
    (b"\x80\x2e\x01\x00\x02", "not a TLS handshake"),  # an SSLv2-compatible hello
    (b"\x16\x02\x00\x00\x05hello", "not TLS"),
    (b"\x16\x03\x01\x00\x00", "outside"),  # an empty record
    (b"\x16\x03\x01\x40\x01", "outside"),  # 2^14 + 1
    (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "not client_hello"),  # a ServerHello
    (b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", "truncated"),  # an empty ClientHello body
    (b"\x16\x03\x01\x00\x04\x01\x01\x00\x00", "over"),  # announces 64 KiB
])
def test_refusals(data: bytes, reason: str) -> None:
    with pytest.raises(ClientHelloError, match=reason):
        server_name(data)


def test_a_record_of_another_type_inside_the_hello() -> None:
    message = real_hello("x.example")[5:]
    data = records(message[:10], 10) + b"\x15\x03\x03\x00\x02\x02\x28"  # an alert before the hello ended
    with pytest.raises(ClientHelloError, match="record type 21"):
        server_name(data)


def test_bounded_in_size() -> None:
    # Records that never complete a hello: refused once MAX_HELLO_BYTES are in, never held beyond.
    message = b"\x01" + (MAX_HELLO_BYTES * 2).to_bytes(3, "big")
    with pytest.raises(ClientHelloError):
        server_name(records(message + b"\x00" * 100, 50))
    # A hello that fits in MAX_HELLO_BYTES alone, but not with the headers of its 17 records.
    endless = records(b"\x01\x00\x3f\xf0" + b"\x00" * 0x3FF0, 1000)
    with pytest.raises(ClientHelloError):
        server_name(endless[:MAX_HELLO_BYTES + 10])


def _hello_with_extensions(extensions: bytes) -> bytes:
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += len(extensions).to_bytes(2, "big") + extensions
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return records(message, 1 << 14)


def _sni(*entries: tuple[int, bytes]) -> bytes:
    names = b"".join(bytes([t]) + len(n).to_bytes(2, "big") + n for t, n in entries)
    data = len(names).to_bytes(2, "big") + names
    return b"\x00\x00" + len(data).to_bytes(2, "big") + data


def test_handmade_hellos() -> None:
    assert server_name(_hello_with_extensions(_sni((0, b"hand.example")))) == "hand.example"
    with pytest.raises(ClientHelloError, match="two names"):
        server_name(_hello_with_extensions(_sni((0, b"a.example"), (0, b"b.example"))))
    with pytest.raises(ClientHelloError, match="trailing dot"):
        server_name(_hello_with_extensions(_sni((0, b"dot.example."))))
    with pytest.raises(ClientHelloError, match="ASCII"):
        server_name(_hello_with_extensions(_sni((0, "é.example".encode()))))
    with pytest.raises(ClientHelloError, match="twice"):
        server_name(_hello_with_extensions(_sni((0, b"a.example")) * 2))
    assert server_name(_hello_with_extensions(b"")) == ""  # no extension at all


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    try:
        result = server_name(data)
    except ClientHelloError:
        return
    assert result is None or isinstance(result, str)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_real_hello(data: st.DataObject) -> None:
    hello = bytearray(real_hello("fuzz.example"))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(hello) - 1))
        hello[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(hello)))
    try:
        result = server_name(bytes(hello[:cut]))
    except ClientHelloError:
        return
    assert result is None or isinstance(result, str)
