"""events: immutable, slotted, lazy headers that equal eager ones, raw/forwardable not compared."""

from __future__ import annotations

import dataclasses
import importlib.machinery

import pytest

import rsp.http1.events as events_module
from rsp.http1.events import (
    CHUNKED,
    END_OF_MESSAGE,
    NO_BODY,
    Data,
    EndOfMessage,
    Framing,
    RequestHead,
    ResponseHead,
    split_raw,
)

COMPILED = str(events_module.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_lazy_headers_equal_eager_ones_and_raw_is_not_compared() -> None:
    raw = b"Host: h\r\nA:  b \r\n"
    lazy = RequestHead(b"GET", b"/", b"1.1", None, True, NO_BODY, None, False, b"h", (), raw, b"Host: h\r\n")
    eager = RequestHead(b"GET", b"/", b"1.1", ((b"Host", b"h"), (b"A", b"b")), True, NO_BODY, host=b"h")
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    assert lazy.headers == ((b"Host", b"h"), (b"A", b"b")) and lazy.headers is lazy.headers  # split once
    rebuilt = lazy.rebuilt()
    assert rebuilt == lazy and rebuilt.raw == b"" and rebuilt.forwardable is None
    response = ResponseHead(200, b"OK", b"1.1", None, True, NO_BODY, (), b"")
    assert response.headers == () and response == ResponseHead(200, b"OK", b"1.1", (), True, NO_BODY)
    assert response != ResponseHead(204, b"OK", b"1.1", (), True, NO_BODY)
    assert RequestHead(b"GET", b"/", b"1.1", (), True, CHUNKED) != RequestHead(b"GET", b"/", b"1.1", (), True, NO_BODY)
    assert Data(b"x") == Data(b"x") and Data(b"x") != Data(b"y") and hash(Data(b"x")) == hash(b"x")
    assert repr(Data(b"x")) == "Data(data=b'x')"


def test_heads_with_the_same_field_section_share_one_split() -> None:
    raw = b"Host: h\r\nUser-Agent: wrk \r\nA:b\r\n"
    first = RequestHead(b"GET", b"/1", b"1.1", None, True, NO_BODY, None, False, b"h", (), raw)
    second = RequestHead(b"GET", b"/2", b"1.1", None, True, NO_BODY, None, False, b"h", (), bytes(bytearray(raw)))
    assert first.headers == ((b"Host", b"h"), (b"User-Agent", b"wrk"), (b"A", b"b"))  # trailing OWS stripped
    assert second.headers is first.headers  # the memo's tuple (immutable, so sharing is safe)
    other = RequestHead(b"GET", b"/", b"1.1", None, True, NO_BODY, None, False, b"h", (), b"Host: i\r\n")
    assert other.headers == ((b"Host", b"i"),)


def test_the_split_memo_is_bounded() -> None:
    sections = [b"X-N: %d\r\n" % i for i in range(events_module.SPLIT_MEMO_SIZE * 2 + 3)]
    for section in sections:
        assert split_raw(section) == ((b"X-N", section[5:-2]),)
    assert len(events_module._SPLIT) <= events_module.SPLIT_MEMO_SIZE
    huge = b"X-Big: " + b"v" * events_module.SPLIT_MEMO_RAW + b"\r\n"
    assert split_raw(huge) == ((b"X-Big", b"v" * events_module.SPLIT_MEMO_RAW),)
    assert huge not in events_module._SPLIT  # too long to keep
    assert split_raw(sections[-1]) == ((b"X-N", sections[-1][5:-2]),)  # (still right after the memo emptied)


def test_events_are_slotted_and_the_dataclass_ones_frozen() -> None:
    head = RequestHead(b"GET", b"/", b"1.1", (), True, NO_BODY)
    for event in (head, ResponseHead(200, b"", b"1.1", (), True, NO_BODY), Data(b"x"), END_OF_MESSAGE,
                  Framing("length", 3)):
        assert not hasattr(event, "__dict__")
    for frozen in (END_OF_MESSAGE, Framing("length", 3)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, dataclasses.fields(frozen)[0].name, b"y")
    assert EndOfMessage() == END_OF_MESSAGE and EndOfMessage(((b"a", b"b"),)) != END_OF_MESSAGE


@pytest.mark.skipif(not COMPILED, reason="pure Python: `Final` attributes are checked by mypy, not at run time")
def test_compiled_heads_and_data_are_read_only() -> None:
    head = RequestHead(b"GET", b"/", b"1.1", (), True, NO_BODY)
    for event, name in ((head, "method"), (head, "headers"), (head, "raw"), (Data(b"x"), "data"),
                        (ResponseHead(200, b"", b"1.1", (), True, NO_BODY), "status")):
        with pytest.raises(AttributeError):
            setattr(event, name, b"y")
