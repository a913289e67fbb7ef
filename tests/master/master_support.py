"""Helpers for the master/worker loopback tests: the admin socket as JSON, waiting for a condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rsp.admin.socket_server import admin_request


def admin(path: str, command: str, timeout: float = 60.0) -> Any:
    return json.loads(admin_request(path, command, timeout=timeout))


def eventually(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """The first truthy value of `predicate()` within `timeout`; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)


def serving_pids(socket_path: str) -> list[int]:
    return sorted(w["pid"] for w in admin(socket_path, "show workers")["workers"]
                  if w["role"] == "serving" and w["state"] == "running")
