"""Rate-limited logging of what Redis holds that rsp cannot use (a garbage member, a key of the wrong type).

Bad data is skipped, never fatal; but a bad key is read again on every refresh, and one line per refresh
would flood the log. One line per key per BAD_DATA_LOG_INTERVAL, and the table of keys is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

# Once a minute per key: enough to notice, too rare to flood.
BAD_DATA_LOG_INTERVAL: Final = 60.0
# Keys remembered; beyond this the table is cleared (a flood of distinct bad keys logs a little more).
MAX_REMEMBERED_KEYS: Final = 10_000


class BadDataLog:
    def __init__(self, log: Callable[[str], None], clock: Callable[[], float],
                 interval: float = BAD_DATA_LOG_INTERVAL) -> None:
        self.log = log
        self.clock = clock
        self.interval = interval
        self.last: dict[str, float] = {}
        self.suppressed = 0

    def report(self, key: str, message: str) -> bool:
        """Log `message` about `key` unless it was logged within the interval; True when logged."""
        now = self.clock()
        last = self.last.get(key)
        if last is not None and now - last < self.interval:
            self.suppressed += 1
            return False
        if len(self.last) >= MAX_REMEMBERED_KEYS:
            self.last.clear()
        self.last[key] = now
        self.log(f"route store: bad data in Redis key {key}: {message} (skipped)")
        return True
