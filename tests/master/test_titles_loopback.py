"""Process titles and the pid file on loopback: `rsp: master CONFIG` and `rsp: worker G.N` as `ps` shows them,
the pid file written once rsp serves and removed at a clean stop, and the README's reload one-liner run as
written (with the config's pid_file path put in)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsp.pidfile import read_pid_file
from rsp.proctitle import title_of
from support.backends import EchoBackend
from support.rsp_process import legacy_config, run_cli
from support.waiting import eventually

README = Path(__file__).resolve().parents[2] / "README.md"
README_PID_FILE = "/run/rsp.pid"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as fh:
        return fh.read().strip()


def readme_reload_command() -> str:
    """The README's `kill -HUP` line, its command part."""
    for line in README.read_text().splitlines():
        if line.startswith("kill -HUP"):
            return line.split("#", 1)[0].strip()
    raise AssertionError("README has no kill -HUP line")


def test_master_and_workers_have_titles_and_the_pid_file_names_the_master(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    pid_file = tmp_path / "rsp.pid"
    rsp = run_rsp(legacy_config(free_port(), backend.port, extra=f'workers = 2\npid_file = "{pid_file}"'))
    assert title_of(rsp.pid) == f"rsp: master {os.path.abspath(rsp.config_path)}"
    master_comm = f"rsp: master {os.path.abspath(rsp.config_path)}"[:15]  # TASK_COMM_LEN - 1
    assert comm(rsp.pid) == master_comm
    workers = eventually(lambda: sorted(title_of(p) for p in children(rsp.pid)) or None)
    assert workers == ["rsp: worker 1.1", "rsp: worker 1.2"]
    assert read_pid_file(str(pid_file)) == rsp.pid
    # No rsp process is named plain `rsp` or `python` any more: `pidof rsp` finds none of them.
    names = {comm(p) for p in [rsp.pid, *children(rsp.pid)]}
    assert names == {master_comm, "rsp: worker 1.1", "rsp: worker 1.2"}

    command = readme_reload_command()
    assert README_PID_FILE in command, command
    subprocess.run(["sh", "-c", command.replace(README_PID_FILE, str(pid_file))], check=True, timeout=10)
    assert rsp.wait_for_stderr(r"reload: generation 2 serving", timeout=60) is not None
    # The old workers say what they are while they finish, then leave; the new ones are generation 2.
    assert eventually(lambda: sorted(title_of(p) for p in children(rsp.pid)) == ["rsp: worker 2.1",
                                                                                  "rsp: worker 2.2"])
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(30) == 0
    assert not pid_file.exists()


def test_one_process_is_titled_as_the_master_and_writes_its_pid_file(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    pid_file = tmp_path / "one.pid"
    rsp = run_rsp(legacy_config(free_port(), backend.port, extra=f'workers = 1\npid_file = "{pid_file}"'))
    assert re.fullmatch(r"rsp: master /.*\.lua", title_of(rsp.pid))
    assert read_pid_file(str(pid_file)) == rsp.pid
    # A second rsp with the same pid_file is refused and leaves the running one's file alone.
    second = run_cli(str(write_config(tmp_path / "second.lua", legacy_config(
        free_port(), backend.port, extra=f'workers = 1\npid_file = "{pid_file}"'))))
    assert second.returncode == 1
    assert f"already running as pid {rsp.pid}" in second.stderr, second.stderr
    assert read_pid_file(str(pid_file)) == rsp.pid
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(30) == 0
    eventually(lambda: not pid_file.exists(), timeout=5)  # the master removes its pid file as it stops
