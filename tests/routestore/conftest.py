"""Fixtures of the route store's tests: a real redis-server per test and HTTP backends that say their name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.http_backends import HttpBackend
from support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def named_backend() -> Iterator[Callable[[str], HttpBackend]]:
    """named_backend("a") -> a started HttpBackend whose bodies begin with "a "; all stopped at teardown."""
    started: list[HttpBackend] = []

    def make(name: str) -> HttpBackend:
        backend = HttpBackend(name=name)
        backend.start()
        started.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in started:
            backend.stop()
