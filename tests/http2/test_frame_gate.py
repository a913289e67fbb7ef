"""The frame gate's byte handling: whatever the read boundaries, h2 gets exactly the client's bytes minus the
GOAWAY frames, and the GOAWAY payloads come out whole (hypothesis over splits)."""

from __future__ import annotations

import itertools

from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.config.model import Http2Settings
from rsp.http2.codes import PREFACE
from rsp.http2.flood import FloodMeter, budgets
from rsp.http2.frame_gate import FrameGate
from support.h2_peer import FakeClock

FRAMES: list[Frame] = [
    SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1000}),
    HeadersFrame(1, data=b"\x82\x86\x84", flags=["END_HEADERS"]),
    DataFrame(1, data=b"x" * 300),
    GoAwayFrame(0, last_stream_id=0, error_code=0, additional_data=b"bye"),
    PingFrame(0, opaque_data=b"abcdefgh"),
    DataFrame(1, data=b"y" * 40, flags=["END_STREAM"]),
    GoAwayFrame(0, last_stream_id=0, error_code=0),
    WindowUpdateFrame(0, window_increment=100),
]


def gate() -> FrameGate:
    clock = FakeClock()
    s = Http2Settings()
    return FrameGate(s, FloodMeter(budgets(s), s.flood_interval, clock), clock)


def expected() -> tuple[bytes, list[bytes]]:
    kept = PREFACE + b"".join(f.serialize() for f in FRAMES if not isinstance(f, GoAwayFrame))
    goaways = [f.serialize()[9:] for f in FRAMES if isinstance(f, GoAwayFrame)]
    return kept, goaways


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_any_split_gives_h2_the_same_bytes_without_goaway(cuts: list[int]) -> None:
    data = PREFACE + b"".join(f.serialize() for f in FRAMES)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    g = gate()
    out = b"".join(g.feed(data[a:b]) for a, b in itertools.pairwise(points))
    kept, goaways = expected()
    assert out == kept
    assert g.goaways == goaways
    assert g.block_started is None


def test_byte_by_byte() -> None:
    data = PREFACE + b"".join(f.serialize() for f in FRAMES)
    g = gate()
    out = b"".join(g.feed(data[i:i + 1]) for i in range(len(data)))
    assert (out, g.goaways) == expected()
