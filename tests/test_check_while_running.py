"""`rsp --check CONFIG` while CONFIG's rsp runs (the nginx -t habit): the addresses that rsp holds are fine,
an address another program holds is still an error naming file:line and key, and the stats listener's bind is
tried too. Real rsp processes on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.backends import EchoBackend
from support.rsp_process import RspProcess, rsp_command, run_cli


@contextmanager
def held_port() -> Iterator[int]:
    """A port another program (this test) listens on for the duration of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def config_text(ports: list[int], backend: int, stats: int, extra: str = "") -> str:
    listeners = "\n".join(f'  {{ address = "127.0.0.1", port = {p}, pool = "default" }},' for p in ports)
    return (f"listen = {{\n{listeners}\n}}\n"
            f'backends = {{ "127.0.0.1:{backend}" }}\n'
            f'stats = {{ listen = "127.0.0.1:{stats}" }}\n'
            f"{extra}\n")


def test_check_of_the_running_config_passes_and_another_programs_port_still_fails(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    port, stats = free_port(), free_port()
    admin = tmp_path / "admin.sock"
    rsp = run_rsp(config_text([port], backend.port, stats, f'workers = 2\nadmin_socket = "{admin}"'))
    config = Path(rsp.config_path)

    check = run_cli("--check", str(config))
    assert check.returncode == 0, check.stderr
    assert f"127.0.0.1:{port} is held by this config's running rsp (pid {rsp.pid})" in check.stderr
    assert f"127.0.0.1:{stats} is held by this config's running rsp" in check.stderr

    # The edit, check, reload routine: a second listener on a port another program holds is refused with
    # its line, while the first (held by the running rsp) passes.
    with held_port() as busy:
        config.write_text(config_text([port, busy], backend.port, stats,
                                      f'workers = 2\nadmin_socket = "{admin}"'))
        check = run_cli("--check", str(config))
        assert check.returncode == 1
        assert check.stderr_lines == [f"rsp: {config}:3: listen[2]: cannot listen on 127.0.0.1:{busy}: "
                                      "address already in use"], check.stderr


def test_a_stats_port_held_by_another_program_fails_the_check_with_its_line(
        start_backend: Callable[..., Any], free_port: Callable[..., int], tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    config = tmp_path / "stats.lua"
    with held_port() as busy:
        config.write_text(config_text([free_port()], backend.port, busy))
        check = run_cli("--check", str(config))
    assert check.returncode == 1
    assert check.stderr_lines == [f"rsp: {config}:5: stats.listen: cannot listen on 127.0.0.1:{busy}: "
                                  "address already in use"], check.stderr


def test_a_single_process_without_pid_file_or_admin_socket_is_found_by_its_title(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int]) -> None:
    backend = start_backend(EchoBackend)
    port, stats = free_port(), free_port()
    rsp = run_rsp(config_text([port], backend.port, stats, "workers = 1"))
    check = run_cli("--check", rsp.config_path)
    assert check.returncode == 0, check.stderr
    assert f"127.0.0.1:{port} is held by this config's running rsp (pid {rsp.pid})" in check.stderr


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="starts rsp as root and checks as the user nobody")
def test_a_user_who_cannot_see_the_running_rsps_sockets_is_told_why(
        start_backend: Callable[..., Any], free_port: Callable[..., int]) -> None:
    backend = start_backend(EchoBackend)
    folder = Path(tempfile.mkdtemp(prefix="rsp-check-"))
    try:
        folder.chmod(0o755)  # nobody reads the config; rsp (root) runs it
        config = folder / "rsp.lua"
        port = free_port()
        config.write_text(config_text([port], backend.port, free_port(), "workers = 1"))
        config.chmod(0o644)
        rsp = RspProcess(config).start()
        try:
            check = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                    *rsp_command("--check", str(config))],
                                   capture_output=True, text=True, timeout=60, check=False)
        finally:
            rsp.stop()
        assert check.returncode == 1
        assert check.stderr.strip() == (
            f"rsp: {config}:2: listen[1]: cannot listen on 127.0.0.1:{port}: address already in use (this config's "
            f"rsp runs as pid {rsp.pid}, whose sockets this user cannot inspect: check as its user or as root)")
    finally:
        shutil.rmtree(folder)
