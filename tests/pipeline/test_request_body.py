"""rsp.pipeline.request_body without a session: holding, waiting, the buffer limit, replacing, discarding."""

from __future__ import annotations

import pytest

from rsp.errors import PipelineError
from rsp.pipeline.request_body import RequestBody


def test_a_waiter_is_called_once_at_the_end_and_sees_the_whole_body() -> None:
    body = RequestBody()
    woken: list[bytes | None] = []
    assert not body.wait(lambda: woken.append(body.data()))
    assert not body.add(b"ab") and not body.add(b"cd")
    assert woken == [] and body.data() is None  # not complete yet
    body.end()
    assert woken == [b"abcd"] and body.data() == b"abcd"
    assert body.wait(lambda: woken.append(None))  # ready now: no second call
    assert woken == [b"abcd"]


def test_over_the_limit_the_holder_pauses_and_the_data_is_none() -> None:
    body = RequestBody(limit=4)
    woken: list[int] = []
    body.wait(lambda: woken.append(1))
    assert not body.add(b"abcd")  # at the limit: still fine
    assert body.add(b"e")  # past it: pause the client
    assert woken == [1]
    body.end()
    assert body.data() is None  # as OpenResty's nil when the body went to a file
    assert body.take() == [b"abcd", b"e"]  # still sent on, in order
    with pytest.raises(PipelineError, match="buffer"):
        body.replace(b"new")


def test_replace_needs_the_whole_body_and_an_empty_body_reads_as_none() -> None:
    body = RequestBody()
    body.add(b"x")
    with pytest.raises(PipelineError, match="read_body"):
        body.replace(b"y")
    body.end()
    body.replace(b"hello")
    assert body.replaced and body.data() == b"hello" and body.take() == [b"hello"]
    assert RequestBody(complete=True).data() is None  # no body: nil, as OpenResty


def test_discard_wakes_the_waiter_and_drops_what_comes_later() -> None:
    body = RequestBody()
    body.add(b"held")
    woken: list[int] = []
    body.wait(lambda: woken.append(1))
    body.discard()
    assert woken == [1]
    assert not body.add(b"later")
    body.end()
    assert body.data() is None and body.take() == []
