"""`sandbox = false`: an app rsp runs and supervises on 127.0.0.1 at its own port (no root needed)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.http_client import get
from support.native_build import REPO_ROOT
from support.rsp_process import RspProcess, free_port

HELLO = str(Path(REPO_ROOT) / "examples" / "apps" / "hello.py")


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_an_unsandboxed_app_joins_its_pool_on_loopback_and_is_restarted(
        run_rsp: Callable[..., RspProcess], tmp_path: Path) -> None:
    web, app_port = free_port(), free_port()
    proc = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {web}, pool = "web", mode = "http" }} }}
apps = {{ solo = {{ command = {{ "{sys.executable}", "{HELLO}" }}, port = {app_port}, pool = "web",
                   sandbox = false, env = {{ APP_NAME = "solo" }} }} }}
sandbox_instance = "u{os.getpid() % 100000}"
sandbox_runtime_dir = "{tmp_path}"
""", timeout=30)
    state_file = next(iter(tmp_path.glob("sandbox-*"))) / "state.json"

    def state() -> dict[str, object]:
        try:
            app: dict[str, object] = json.loads(state_file.read_text())["apps"][0]
        except (FileNotFoundError, json.JSONDecodeError, IndexError):
            return {}
        return app

    wait_for(lambda: state().get("state") == "ready")
    assert state()["address"] == f"127.0.0.1:{app_port}" and state()["netns"] == ""
    reply = get(proc.port)
    assert reply.status == 200 and reply.body.startswith(b"Hello from app solo")
    os.kill(int(str(state()["pid"])), signal.SIGKILL)  # unsandboxed: the launcher pid is the app itself
    wait_for(lambda: state().get("state") == "ready" and int(str(state().get("restarts"))) >= 1)
    reply = get(proc.port)
    assert reply.status == 200 and reply.body.startswith(b"Hello from app solo")
