"""The admin socket is never taken from a live rsp (real processes on loopback): a second rsp with the same
`admin_socket` is refused, naming the running one, and leaves its socket answering; a stale socket file (a
killed run) is removed and replaced; a path that is not a socket is refused, not removed."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rsp.admin.socket_server import admin_request
from support.backends import EchoBackend
from support.rsp_process import legacy_config, run_cli


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_rsp_on_a_live_admin_socket_is_refused_and_the_first_keeps_it(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path, workers: int) -> None:
    backend = start_backend(EchoBackend)
    admin = tmp_path / "admin.sock"
    extra = f'workers = {workers}\nadmin_socket = "{admin}"'
    first = run_rsp(legacy_config(free_port(), backend.port, extra=extra))
    inode = admin.stat().st_ino
    second_config = tmp_path / "second.lua"
    second_config.write_text(legacy_config(free_port(), backend.port, extra=extra))

    second = run_cli(str(second_config))
    assert second.returncode == 1
    assert (f"rsp: {second_config}:6: admin_socket: cannot open admin socket {admin}: a running process "
            f"answers on it (pid {first.pid}: rsp: master {first.config_path}); stop it or choose another "
            "admin_socket") in second.stderr_lines, second.stderr
    # Refused before anything started: no worker was started and stopped for nothing.
    assert not any("worker" in line for line in second.stderr_lines), second.stderr
    check = run_cli("--check", str(second_config))
    assert check.returncode == 1 and "another running process answers on it" in check.stderr, check.stderr

    assert admin.stat().st_ino == inode
    assert json.loads(admin_request(str(admin), "show backends"))
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0
    assert not admin.exists()


def test_a_stale_socket_file_is_replaced(run_rsp: Callable[..., Any], start_backend: Callable[..., Any],
                                         free_port: Callable[..., int], tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    admin = tmp_path / "admin.sock"
    with socket.socket(socket.AF_UNIX) as dead:  # bound, never listening: what a killed run leaves
        dead.bind(str(admin))
    rsp = run_rsp(legacy_config(free_port(), backend.port, extra=f'workers = 1\nadmin_socket = "{admin}"'))
    assert json.loads(admin_request(str(admin), "show backends"))
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(30) == 0


def test_a_path_that_is_not_a_socket_is_refused_and_kept(free_port: Callable[..., int], tmp_path: Path) -> None:
    admin = tmp_path / "admin.sock"
    admin.write_text("not a socket\n")
    config = tmp_path / "rsp.lua"
    config.write_text(legacy_config(free_port(), 9, extra=f'workers = 1\nadmin_socket = "{admin}"'))
    result = run_cli(str(config))
    assert result.returncode == 1
    assert result.stderr_lines[-1] == (f"rsp: {config}:6: admin_socket: cannot open admin socket {admin}: the "
                                       "path exists and is not a socket (not removed)"), result.stderr
    assert admin.read_text() == "not a socket\n"
