"""error_pages: every canned error is a complete, closing HTTP/1.1 response."""

from __future__ import annotations

import pytest

from rsp.http1.error_pages import CONTINUE_100, error_response
from rsp.http1.events import Data, EndOfMessage, ResponseHead
from rsp.http1.parser import ResponseParser
from rsp.http1.reasons import reason

STATUSES = [400, 408, 413, 414, 431, 501, 502, 503, 504, 505]


def read(raw: bytes, method: bytes = b"GET") -> tuple[ResponseHead, bytes]:
    parser = ResponseParser()
    parser.expect(method)
    events = parser.feed(raw)
    assert isinstance(events[0], ResponseHead) and isinstance(events[-1], EndOfMessage)
    return events[0], b"".join(e.data for e in events if isinstance(e, Data))


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("html", [True, False])
def test_error_response_is_complete_and_closes(status: int, html: bool) -> None:
    raw = error_response(status, html=html)
    head, body = read(raw)
    assert (head.status, head.reason.decode()) == (status, reason(status))
    assert not head.keep_alive and head.connection == (b"close",)
    assert head.body.length == len(body) and str(status).encode() in body
    assert dict(head.headers)[b"Content-Type"] == (b"text/html" if html else b"text/plain")


@pytest.mark.parametrize("status", STATUSES)
def test_answer_to_head_has_the_same_fields_and_no_body(status: int) -> None:
    full = error_response(status)
    head_only = error_response(status, head_only=True)
    assert full.startswith(head_only) and head_only.endswith(b"\r\n\r\n")
    head, body = read(head_only, b"HEAD")
    assert body == b"" and head.status == status


def test_uncommon_status_is_built_on_demand() -> None:
    head, body = read(error_response(599))
    assert head.status == 599 and body.startswith(b"<html>")


def test_continue() -> None:
    parser = ResponseParser()
    parser.expect(b"POST")
    [head, end] = parser.feed(CONTINUE_100)
    assert isinstance(head, ResponseHead) and head.status == 100 and end == EndOfMessage()
