"""`rsp --admin` against a real rsp process: exit status per reply, and the socket file's life."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from support.backends import EchoBackend
from support.rsp_process import RspProcess, legacy_config, run_cli

Run = Callable[..., RspProcess]


@pytest.fixture
def admin_path(tmp_path: Path) -> Path:
    return tmp_path / "admin.sock"


@pytest.fixture
def rsp(run_rsp: Run, echo_backend: EchoBackend, free_port: Callable[..., int], admin_path: Path) -> RspProcess:
    return run_rsp(legacy_config(free_port(), echo_backend.port, extra=f'admin_socket = "{admin_path}"'))


@pytest.mark.parametrize("command", [["bogus"], ["drain", "default", "nosuch"], ["drain", "nopool", "1"],
                                     ["set", "weight", "default", "1", "999"]])
def test_an_error_reply_is_printed_and_exits_1(rsp: RspProcess, admin_path: Path, command: list[str]) -> None:
    result = run_cli("--admin", str(admin_path), *command)
    assert result.returncode == 1, result
    assert "error" in json.loads(result.stdout)


def test_a_good_reply_exits_0(rsp: RspProcess, admin_path: Path, echo_backend: EchoBackend) -> None:
    shown = run_cli("--admin", str(admin_path), "show", "backends")
    assert shown.returncode == 0, shown
    assert [b["address"] for b in json.loads(shown.stdout)["default"]] == [f"127.0.0.1:{echo_backend.port}"]
    drained = run_cli("--admin", str(admin_path), "drain", "default", "1")
    assert drained.returncode == 0, drained
    assert json.loads(drained.stdout)["ok"] is True


def test_no_socket_exits_1_with_a_message(tmp_path: Path) -> None:
    result = run_cli("--admin", str(tmp_path / "none.sock"), "help")
    assert result.returncode == 1, result
    assert "cannot reach admin socket" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_clean_stop_removes_the_socket_file(rsp: RspProcess, admin_path: Path, signum: int) -> None:
    assert admin_path.is_socket()
    rsp.signal(signum)
    assert rsp.wait(10) == 0
    assert not admin_path.exists()


def test_a_socket_that_replaced_ours_is_left_alone(rsp: RspProcess, admin_path: Path, tmp_path: Path) -> None:
    """Another rsp took the path (it unlinks a stale socket and binds its own): ours must not remove it."""
    other = tmp_path / "other.sock"
    with socket.socket(socket.AF_UNIX) as newcomer:
        newcomer.bind(str(other))
        os.replace(other, admin_path)
        rsp.signal(signal.SIGTERM)
        assert rsp.wait(10) == 0
        assert admin_path.is_socket()


def test_a_socket_file_already_gone_at_stop_is_fine(rsp: RspProcess, admin_path: Path) -> None:
    admin_path.unlink()
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(10) == 0
    assert not any("Traceback" in line for line in rsp.stderr_lines), rsp.stderr_lines
