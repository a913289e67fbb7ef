"""Fixtures and probes of the route store's tests: HTTP backends that say their name, and waiting for a route to
answer on a node (`redis_server`: tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from support.http_backends import HttpBackend
from support.http_client import ResponseError, get, http_config, lua
from support.redis_server import RedisServer
from support.rsp_process import run_cli


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


# The bound for a change to be live on every node. Pushes arrive in milliseconds on loopback; the
# margin (a busy 2-core test machine) is the rest of the second, so the assertion is a behaviour bound.
PROPAGATION_BOUND = 1.0
POLL = 0.01  # how often the tests ask while waiting for a change (well under the bound)


def body_of(port: int, host: str) -> str:
    """`<backend name>` for a 200, `status <n>` otherwise, `error` if the request failed."""
    try:
        response = get(port, "/", host=host, timeout=5.0)
    except (ResponseError, OSError):
        return "error"
    if response.status != 200:
        return f"status {response.status}"
    return response.body.decode().split(" ", 1)[0]


def wait_until(port: int, host: str, wanted: str, bound: float) -> float:
    """Seconds until `host` on `port` answers `wanted`; fails past `bound` (plus a little to report)."""
    start = time.monotonic()
    while True:
        got = body_of(port, host)
        elapsed = time.monotonic() - start
        if got == wanted:
            return elapsed
        assert elapsed < bound, f"{host} still answers {got!r}, not {wanted!r}, after {elapsed:.3f} s"
        time.sleep(POLL)


def store_config(port: int, redis: RedisServer, **store: object) -> str:
    """One HTTP listener whose static pool is unreachable: only the store can route a request. `workers`: one
    unless asked (the store is the machine's with any number: test_workers_share_the_store runs two)."""
    workers = store.pop("workers", 1)
    settings: dict[str, object] = {"url": redis.url, "template": "default"}
    settings.update(store)
    return http_config(port, ["127.0.0.1:1"], extra=f"workers = {workers}\nroute_store = {lua(settings)}")


def routes(redis: RedisServer, *args: str) -> str:
    result = run_cli("routes", "--redis", redis.url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout
