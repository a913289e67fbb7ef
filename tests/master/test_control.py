"""The control channel codec: lines in any chunking, bad lines refused."""

from __future__ import annotations

import pytest

from rsp.errors import ControlError
from rsp.master import control
from rsp.master.control import Decoder, encode


def test_round_trip_whatever_the_chunking() -> None:
    messages = [{"t": "ready"}, {"t": "stop", "grace": 30.0}, {"t": "snapshot", "id": 7, "data": {"x": [1, 2]}}]
    wire = b"".join(encode(m) for m in messages)
    for size in (1, 2, 5, len(wire)):
        decoder = Decoder()
        got = []
        for i in range(0, len(wire), size):
            got += decoder.feed(wire[i : i + size])
        assert got == messages


def test_one_line_per_message() -> None:
    line = encode({"t": "eject", "pool": "web", "backend": "web/1"})
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"type": "ready"}\n', b'{"t": 3}\n'])
def test_bad_lines_are_refused(line: bytes) -> None:
    with pytest.raises(ControlError):
        Decoder().feed(line)


def test_encode_needs_a_type() -> None:
    with pytest.raises(ControlError):
        encode({"pool": "web"})


def test_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "MAX_MESSAGE_BYTES", 100)
    decoder = Decoder()
    decoder.feed(b'{"t": "x", "pad": "' + b"a" * 50)
    with pytest.raises(ControlError):
        decoder.feed(b"a" * 60)
