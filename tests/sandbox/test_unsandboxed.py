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
from support.rsp_process import RspProcess, free_port, run_cli

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
workers = 2
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


def test_relative_dir_and_command_resolve_against_the_config_folder_and_a_clean_stop_leaves_nothing(
        tmp_path: Path, free_port: Callable[[], int]) -> None:
    """Started from another directory, an app's relative `dir` and `./program` are the config file's; at a
    clean stop the runtime dir is left empty."""
    site = tmp_path / "site"
    (site / "app").mkdir(parents=True)
    program = site / "app" / "serve"
    program.write_text(f"#!{sys.executable}\n" + Path(HELLO).read_text())
    program.chmod(0o755)
    runtime = tmp_path / "run"
    web, app_port = free_port(), free_port()
    config = site / "rsp.lua"
    config.write_text(f"""
listen = {{ {{ address = "127.0.0.1", port = {web}, pool = "web", mode = "http" }} }}
apps = {{ rel = {{ command = {{ "./serve" }}, dir = "app", port = {app_port}, pool = "web", sandbox = false,
                  env = {{ APP_NAME = "rel" }} }} }}
sandbox_instance = "r{os.getpid() % 100000}"
sandbox_runtime_dir = "{runtime}"
workers = 2
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = RspProcess(config)
    proc.cwd = str(elsewhere)
    try:
        proc.start(1, timeout=30)
        wait_for(lambda: get(proc.port).status == 200)
        assert get(proc.port).body.startswith(b"Hello from app rel")
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.stop()
    assert list(runtime.iterdir()) == []


def test_an_app_that_exits_at_once_gets_its_last_output_lines_in_rsps_log(
        run_rsp: Callable[..., RspProcess], tmp_path: Path, free_port: Callable[[], int]) -> None:
    crash = "import sys; print('starting'); print('ModuleNotFoundError: no module named nope', file=sys.stderr); " \
            "sys.exit(3)"
    proc = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "web", mode = "http" }} }}
apps = {{ bad = {{ command = {{ "{sys.executable}", "-c", "{crash}" }}, port = {free_port()}, pool = "web",
                  sandbox = false }} }}
sandbox_instance = "b{os.getpid() % 100000}"
sandbox_runtime_dir = "{tmp_path}"
workers = 2
""", timeout=30)
    line = proc.wait_for_stderr(r"app bad exited with status 3 before it was ready; its last 2 line\(s\) of output",
                                timeout=20)
    assert line is not None, proc.stderr_text
    assert proc.wait_for_stderr(r"app bad> ModuleNotFoundError: no module named nope$", timeout=5), proc.stderr_text
    assert proc.wait_for_stderr(r"app bad> starting$", timeout=5)


def test_an_apps_missing_dir_is_located_like_a_config_error(tmp_path: Path, free_port: Callable[[], int]) -> None:
    config = tmp_path / "rsp.lua"
    config.write_text(f"""listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "web", mode = "http" }} }}
apps = {{
  gone = {{ command = {{ "./x" }}, dir = "nowhere", port = {free_port()}, pool = "web", sandbox = false }},
}}
sandbox_runtime_dir = "{tmp_path}"
""")
    result = run_cli(str(config))
    assert result.returncode == 1
    assert result.stderr_lines[-1] == (f"rsp: {config}:3: apps.gone.dir: {tmp_path / 'nowhere'} is not a "
                                       "directory"), result.stderr
