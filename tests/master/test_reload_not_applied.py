"""A reload says what it did not apply (workers = 2, loopback): a moved `stats` listener is applied (the old
address closes, the new one serves), a changed `admin_socket` and `error_log` are named in the reply and the
log; a config that does not load, reloaded with `rsp reload CONFIG`, is refused by the running rsp, which logs
the refusal as it does for SIGHUP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.backends import EchoBackend
from support.http_client import get


def config_text(port: int, backend: int, stats: int, admin: Path, extra: str = "") -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, pool = "default" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend}" }}\n'
            f'stats = {{ listen = "127.0.0.1:{stats}" }}\n'
            f'workers = 2\nadmin_socket = "{admin}"\n{extra}')


def reload_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsp", "reload", *args], capture_output=True, text=True,
                          timeout=90, check=False)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_reload_applies_stats_and_names_what_it_keeps(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    port, stats, moved = free_port(), free_port(), free_port()
    admin = tmp_path / "admin.sock"
    rsp = run_rsp(config_text(port, backend.port, stats, admin))
    config = Path(rsp.config_path)
    assert get(stats, "/metrics").status == 200

    config.write_text(config_text(port, backend.port, moved, tmp_path / "other.sock",
                                  f'error_log = "{tmp_path / "error.log"}"\n'))
    result = reload_cli("--admin", str(admin))
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["generation"] == 2
    assert reply["not_applied"] == ["admin_socket changed but is kept as it was until rsp restarts",
                                    "error_log changed but is kept as it was until rsp restarts"]
    assert "rsp reload: not applied: admin_socket changed" in result.stderr
    assert rsp.wait_for_stderr(r"reload: admin_socket changed but is kept", timeout=10) is not None
    assert get(moved, "/metrics").status == 200
    assert refused(stats)
    assert admin.exists() and not (tmp_path / "other.sock").exists()


def test_a_config_that_does_not_load_is_refused_and_logged_by_the_running_rsp(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    admin = tmp_path / "admin.sock"
    rsp = run_rsp(config_text(free_port(), backend.port, free_port(), admin))
    config = Path(rsp.config_path)
    config.write_text(config.read_text() + "listenPrt = 1\n")
    result = reload_cli(str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(f"rsp reload: reload refused, the running config stays: {config}:6: "
                                    "listenPrt: unknown key"), result.stderr
    assert rsp.wait_for_stderr(rf"reload refused, the running config stays: {config}:6: listenPrt", 10) is not None
    assert rsp.alive
