"""Counters of cheap-to-send, costly-to-serve frames per interval: the flood defences of docs/http2.md.

Each kind of frame a client can send without limit (SETTINGS, PING, PRIORITY, empty DATA, WINDOW_UPDATE,
unknown types, and premature stream resets for rapid reset) has a budget per interval. A counter over its
budget ends the connection with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §7: "the endpoint detected that its peer
is exhibiting a behavior that might be generating excessive load"). Fixed intervals, not a sliding window:
at most twice the budget passes across one interval's edge, and the check is one add and one compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rsp.config.model import Http2Settings
from rsp.errors import Http2ConnectionError
from rsp.http2.codes import ENHANCE_YOUR_CALM

SETTINGS_FRAMES: Final = "settings"
PING_FRAMES: Final = "ping"
PRIORITY_FRAMES: Final = "priority"
EMPTY_DATA_FRAMES: Final = "empty data"
WINDOW_UPDATE_FRAMES: Final = "window update"
UNKNOWN_FRAMES: Final = "unknown"
CLOSED_STREAM_DATA: Final = "data on closed streams"
RESETS: Final = "stream resets"


def budgets(settings: Http2Settings) -> dict[str, int]:
    """Each kind's budget per interval, from the listener's settings."""
    return {
        SETTINGS_FRAMES: settings.max_settings,
        PING_FRAMES: settings.max_pings,
        PRIORITY_FRAMES: settings.max_priority,
        EMPTY_DATA_FRAMES: settings.max_empty_data,
        WINDOW_UPDATE_FRAMES: settings.max_window_updates,
        UNKNOWN_FRAMES: settings.max_unknown_frames,
        CLOSED_STREAM_DATA: settings.max_closed_stream_data,
        RESETS: settings.max_resets,
    }


class FloodMeter:
    """Counts per kind within the current interval of `interval` seconds on `clock`."""

    __slots__ = ("_budgets", "_clock", "_counts", "_interval", "_started")

    def __init__(self, limits: dict[str, int], interval: float, clock: Callable[[], float]) -> None:
        self._budgets = limits
        self._interval = interval
        self._clock = clock
        self._counts = dict.fromkeys(limits, 0)
        self._started = clock()

    def hit(self, kind: str) -> None:
        """Count one of `kind`; raises Http2ConnectionError(ENHANCE_YOUR_CALM) past its budget."""
        now = self._clock()
        if now - self._started >= self._interval:
            self._started = now
            for name in self._counts:
                self._counts[name] = 0
        count = self._counts[kind] + 1
        self._counts[kind] = count
        if count > self._budgets[kind]:
            raise Http2ConnectionError(
                f"{kind} flood: more than {self._budgets[kind]} in {self._interval:g} s", ENHANCE_YOUR_CALM)

    def count(self, kind: str) -> int:
        return self._counts[kind]
