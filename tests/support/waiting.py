"""The suite's one polling helper: loopback tests wait for an event rsp makes visible (a counter, a log
line, a worker's state), bounded in time, instead of sleeping a fixed duration and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

INTERVAL = 0.02  # seconds between two looks: short next to any bound a test sets, long next to a look's cost


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = INTERVAL) -> bool:
    """Whether `predicate()` became true within `timeout` seconds (it is asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def eventually(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = INTERVAL) -> Any:
    """The first truthy value of `predicate()` within `timeout`; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)
