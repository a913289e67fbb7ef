"""The store's TTL refresh against a real redis-server: an unchanged reply is not parsed again, a changed one
is, and a member naming a host is resolved again at every refresh (rsp.routestore.store._fetch)."""

from __future__ import annotations

import asyncio

from rsp.config.model import Backend, Pool, RouteStore
from rsp.routestore.cache import ROUTE_HOST
from rsp.routestore.store import RouteStore as Store
from support.redis_server import RedisServer

KEY = "hostnames:a.test:backends"


async def refresh(url: str, steps: list[tuple[str, ...]]) -> list[tuple[tuple[Backend, ...], bool]]:
    """For each step: set a.test's members to it in Redis, fetch and apply as the refresher does; returns the
    cached backends after each step and whether they are the very tuple of the step before (reused)."""
    store = Store(RouteStore(url=url), Pool("default", (Backend("127.0.0.1", 1),)), {}, asyncio.get_running_loop())
    out: list[tuple[tuple[Backend, ...], bool]] = []
    try:
        before: tuple[Backend, ...] | None = None
        for members in steps:
            await store.link.client.delete(KEY)
            await store.link.client.sadd(KEY, *members)
            store._apply(*await store._fetch(["a.test"]))
            entry = store.cache.get("a.test")
            assert entry is not None and entry.source == ROUTE_HOST
            out.append((entry.backends, entry.backends is before))
            before = entry.backends
    finally:
        await store.link.stop()
    return out


def test_an_unchanged_reply_reuses_the_parsed_backends_and_a_changed_one_is_parsed(
        redis_server: RedisServer) -> None:
    steps = [("10.0.0.1:80",), ("10.0.0.1:80",), ("10.0.0.1:80", "10.0.0.2:80"), ("10.0.0.2:80", "10.0.0.1:80")]
    got = asyncio.run(refresh(redis_server.url, steps))
    one, two = Backend("10.0.0.1", 80), Backend("10.0.0.2", 80)
    assert got == [((one,), False), ((one,), True), ((one, two), False), ((one, two), True)]


def test_a_member_naming_a_host_is_resolved_at_every_refresh(redis_server: RedisServer) -> None:
    got = asyncio.run(refresh(redis_server.url, [("localhost:80",), ("localhost:80",)]))
    assert [reused for _, reused in got] == [False, False]
    assert all(backends[0].port == 80 and backends[0].name == "localhost:80" for backends, _ in got)
