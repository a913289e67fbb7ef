"""Prior knowledge: the connection preface tells HTTP/2 from HTTP/1.1 exactly, whatever the read sizes."""

from __future__ import annotations

from rsp.http2.codes import PREFACE
from rsp.http2.preface import HTTP1, HTTP2, UNDECIDED, sniff


def test_the_preface_in_any_split_is_http2() -> None:
    data = PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    for cut in range(len(PREFACE)):
        assert sniff(data[:cut]) == UNDECIDED
    assert sniff(PREFACE) == HTTP2
    assert sniff(data) == HTTP2


def test_http1_requests_are_decided_at_once() -> None:
    assert sniff(b"GET / HTTP/1.1\r\n") == HTTP1
    assert sniff(b"G") == HTTP1
    assert sniff(b"POST / HTTP/1.1\r\n") == HTTP1  # starts with P, differs at the second byte
    assert sniff(b"PUT / HTTP/1.1\r\n") == HTTP1
    assert sniff(b"PRI * HTTP/1.1\r\n") == HTTP1
