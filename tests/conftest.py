"""Shared fixtures: free ports, running rsp as a subprocess, and backend servers on loopback.

- `free_port()`                          -> an unused TCP port on 127.0.0.1 (`free_port("::1")` for IPv6)
- `dead_port`                            -> a port on 127.0.0.1 that refuses connections for the whole test
- `run_rsp(config_text, listeners=1, args=(), timeout=15.0)` -> a started `RspProcess`
  (.port, .ports, .proc, .pid, .stdout_lines, .stderr_lines, .rss_kib(), .stop() -> exit code);
  every process is stopped at teardown (SIGTERM, then SIGKILL of its process group).
- `start_backend(cls, *args, **kwargs)`  -> a started backend from support.backends, stopped at teardown
- `echo_backend`, `sized_backend`        -> ready-made started backends
- `redis_server`                          -> a real redis-server on loopback, one per test (support.redis_server)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

# Test modules import `support.*`; make that work whatever the rootdir/import mode is.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# The mypyc build must match the sources (no .so older than its .py) and what the run expects
# (RSP_EXPECT_COMPILED=1 / RSP_EXPECT_PURE=1, set by scripts/test): see support/native_build.py. Checked
# on import, reported from pytest_configure: an exit raised while conftest loads becomes a traceback.
from support.native_build import REPO_ROOT, session_problem  # noqa: E402

_NATIVE_PROBLEM = session_problem(REPO_ROOT, os.environ)


def pytest_configure(config: pytest.Config) -> None:
    if _NATIVE_PROBLEM is not None:
        pytest.exit(_NATIVE_PROBLEM, returncode=3)

from support.backends import BackendServer, EchoBackend, SizedBackend  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402
from support.rsp_process import RspProcess  # noqa: E402
from support.rsp_process import free_port as _free_port  # noqa: E402
from support.sockets import refused_port  # noqa: E402

B = TypeVar("B", bound=BackendServer)


@pytest.fixture
def free_port() -> Callable[..., int]:
    return _free_port


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test (support.sockets.refused_port)."""
    with refused_port() as port:
        yield port


@pytest.fixture
def run_rsp(tmp_path: Path) -> Iterator[Callable[..., RspProcess]]:
    started: list[RspProcess] = []

    def launch(config_text: str, listeners: int = 1, args: tuple[str, ...] = (),
               timeout: float = 15.0) -> RspProcess:
        path = tmp_path / f"rsp-{len(started)}.lua"
        path.write_text(config_text)
        proc = RspProcess(path, *args)
        started.append(proc)
        return proc.start(listeners, timeout)

    try:
        yield launch
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def start_backend() -> Iterator[Callable[..., Any]]:
    servers: list[BackendServer] = []

    def start(cls: type[B], *args: Any, **kwargs: Any) -> B:
        server = cls(*args, **kwargs)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def echo_backend() -> Iterator[EchoBackend]:
    with EchoBackend() as server:
        yield server


@pytest.fixture
def sized_backend() -> Iterator[SizedBackend]:
    with SizedBackend() as server:
        yield server


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
