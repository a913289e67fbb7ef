"""One format for every error a config entry causes, `rsp: FILE:LINE: key: message`, at `rsp --check` and at
start alike: a busy listen port at start (one process and with workers), the stats listener's bind (no
Python tuple in it), a config that does not load. Real rsp processes on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.rsp_process import free_port, run_cli


@contextmanager
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rsp.lua"
    path.write_text(text)
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_a_busy_port_at_start_names_file_line_and_key_as_check_does(tmp_path: Path, workers: int) -> None:
    with held_port() as busy:
        config = write(tmp_path, f'backends = {{ "127.0.0.1:9" }}\nworkers = {workers}\n'
                                 f'listen = {{ {{ address = "127.0.0.1", port = {busy} }} }}\n')
        start = run_cli(str(config))
        check = run_cli("--check", str(config))
    expected = f"rsp: {config}:3: listen[1]: cannot listen on 127.0.0.1:{busy}: address already in use"
    assert start.returncode == 1 and start.stderr_lines[-1] == expected, start.stderr
    assert check.returncode == 1 and check.stderr_lines == [expected], check.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_busy_stats_port_at_start_is_one_line_without_a_tuple(tmp_path: Path, workers: int) -> None:
    with held_port() as busy:
        config = write(tmp_path, f'backends = {{ "127.0.0.1:9" }}\nworkers = {workers}\n'
                                 f'listen = {{ {{ address = "127.0.0.1", port = {free_port()} }} }}\n'
                                 f'stats = {{ listen = "127.0.0.1:{busy}" }}\n')
        start = run_cli(str(config))
    assert start.returncode == 1
    assert start.stderr_lines[-1] == (f"rsp: {config}:4: stats.listen: cannot listen for stats on "
                                      f"127.0.0.1:{busy}: address already in use"), start.stderr
    assert "('127.0.0.1'" not in start.stderr


def test_a_config_that_does_not_load_reads_like_a_check_failure(tmp_path: Path) -> None:
    config = write(tmp_path, 'backends = { "127.0.0.1:9" }\nlisten = { { port = "x" } }\n')
    for args in ((str(config),), ("--check", str(config))):
        result = run_cli(*args)
        assert result.returncode == 1
        # The key leads the message already: it is not repeated.
        assert result.stderr_lines == [f"rsp: {config}:2: listen[1].port must be a port number, got 'x'"], \
            result.stderr
