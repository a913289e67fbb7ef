"""Fixtures of the route store's tests: HTTP backends that say their name (`redis_server`: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.http_backends import HttpBackend


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
