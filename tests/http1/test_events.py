"""events: frozen, slotted, and the fast constructors build the very same objects."""

from __future__ import annotations

import dataclasses

import pytest

from rsp.http1.events import (
    CHUNKED,
    END_OF_MESSAGE,
    NO_BODY,
    Data,
    EndOfMessage,
    Framing,
    RequestHead,
    ResponseHead,
    make_request_head,
    make_response_head,
)


def test_fast_constructors_equal_the_dataclass_constructors() -> None:
    args = (b"GET", b"/", b"1.1", ((b"Host", b"a"),), True, CHUNKED, b"websocket", True, b"a", (b"upgrade",))
    fast = make_request_head(*args)
    assert type(fast) is RequestHead and fast == RequestHead(*args) and hash(fast) == hash(RequestHead(*args))
    assert repr(fast) == repr(RequestHead(*args))
    rargs = (204, b"No Content", b"1.1", (), True, NO_BODY, ())
    assert make_response_head(*rargs) == ResponseHead(*rargs)


def test_events_are_frozen_and_slotted() -> None:
    head = make_request_head(b"GET", b"/", b"1.1", (), True, NO_BODY, None, False, b"", ())
    for event in (head, Data(b"x"), END_OF_MESSAGE, Framing("length", 3)):
        assert not hasattr(event, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, dataclasses.fields(event)[0].name, b"y")
    assert EndOfMessage() == END_OF_MESSAGE and EndOfMessage(((b"a", b"b"),)) != END_OF_MESSAGE
