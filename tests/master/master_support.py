"""Helpers for the master/worker loopback tests: the admin socket as JSON, waiting for a condition."""

from __future__ import annotations

import json
from typing import Any

from rsp.admin.socket_server import admin_request


def admin(path: str, command: str, timeout: float = 60.0) -> Any:
    return json.loads(admin_request(path, command, timeout=timeout))




def serving_pids(socket_path: str) -> list[int]:
    return sorted(w["pid"] for w in admin(socket_path, "show workers")["workers"]
                  if w["role"] == "serving" and w["state"] == "running")
