"""The apps' state file, written by the running rsp and read by `rsp apps`.

A JSON file in the instance's runtime directory, replaced atomically (write, then rename) at every change
of an app's state, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Final

STATE_FILE: Final = "state.json"


@dataclass(slots=True)
class AppState:
    name: str
    sandboxed: bool
    netns: str  # "" when unsandboxed
    address: str  # where rsp connects: app_ip:port or 127.0.0.1:port
    pid: int | None  # the launcher (a child of rsp); the app's PID 1 is its child
    state: str  # starting | ready | restarting | stopped
    restarts: int
    started_at: float | None  # wall clock
    log: str


def write_state(directory: str, rsp_pid: int, apps: list[AppState]) -> None:
    path = os.path.join(directory, STATE_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        # One string, one write; fields by hand (dataclasses.asdict deep-copies, and is slow).
        f.write(json.dumps({"rsp_pid": rsp_pid,
                            "apps": [{name: getattr(app, name) for name in AppState.__slots__} for app in apps]}))
    os.replace(tmp, path)


def read_state(directory: str) -> dict[str, Any]:
    with open(os.path.join(directory, STATE_FILE)) as f:
        data: dict[str, Any] = json.load(f)
    return data
