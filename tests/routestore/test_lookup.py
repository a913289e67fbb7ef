"""The store's request side without Redis: coalesced lookups, the bounded wait, the outage shortcuts.

A fake link stands in for Redis (RouteStore talks to it through `fetch`, `up` and `down_since` only); the
requests are fakes of the one method the store calls on an exchange, `route_to`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from rsp.config.model import Backend, Pool, RouteStore
from rsp.proxy.pools import PoolRuntime
from rsp.routestore.store import RouteStore as Store


class FakeLink:
    def __init__(self, real: Any) -> None:
        self.real = real  # the store's own link, never started: closed with the fake
        self.up = True
        self.down_since: float | None = None
        self.fetches: list[list[str]] = []
        self.answers: dict[str, list[bytes]] = {}
        self.release = asyncio.Event()
        self.fail: BaseException | None = None

    async def stop(self) -> None:
        await self.real.stop()

    async def fetch(self, keys: list[str]) -> list[list[bytes] | BaseException]:
        self.fetches.append(keys)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [sorted(self.answers.get(key, [])) for key in keys]


class FakeExchange:
    def __init__(self) -> None:
        self.routed: list[tuple[PoolRuntime | None, int]] = []

    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        self.routed.append((pool, status))


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def make_store(**settings: Any) -> tuple[Store, FakeLink]:
    loop = asyncio.get_running_loop()
    store = Store(RouteStore(url="redis://127.0.0.1:1/0", **settings), Pool("default", (Backend("127.0.0.1", 1),)),
                  {}, loop)
    link = FakeLink(store.link)
    store.link = link  # type: ignore[assignment]
    return store, link


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_requests_for_one_host_share_one_lookup() -> None:
    async def scenario() -> None:
        store, link = make_store()
        link.answers["hostnames:a.test:backends"] = [b"10.0.0.1:80"]
        waiting = [FakeExchange() for _ in range(10)]
        for exchange in waiting:
            store.lookup(exchange, "a.test")  # type: ignore[arg-type]
        await settle()
        assert len(link.fetches) == 1  # one Redis round trip for ten requests
        assert link.fetches[0] == ["hostnames:a.test:backends", "hostnames:httpDefault:backends"]
        assert all(not e.routed for e in waiting)  # they wait, the loop does not
        link.release.set()
        await settle()
        pool = store.host_pools["a.test"]
        assert [r.spec for r in pool.records] == [Backend("10.0.0.1", 80)]
        assert all(e.routed == [(pool, 503)] for e in waiting)
        await store.stop()

    run(scenario())


def test_a_lookup_that_outlasts_its_timeout_answers_the_missing_status() -> None:
    async def scenario() -> None:
        store, _ = make_store(lookup_timeout=0.05, missing_status=502)
        exchange = FakeExchange()
        store.lookup(exchange, "slow.test")  # type: ignore[arg-type]
        await asyncio.sleep(0.2)  # the fake never answers
        assert exchange.routed == [(None, 502)]
        assert "slow.test" not in store.waiting
        await store.stop()

    run(scenario())


def test_a_fresh_negative_entry_answers_without_redis() -> None:
    async def scenario() -> None:
        store, link = make_store()
        link.release.set()
        first = FakeExchange()
        store.lookup(first, "nobody.test")  # type: ignore[arg-type]
        await settle()
        assert first.routed == [(None, 503)] and len(link.fetches) == 1
        second = FakeExchange()
        store.lookup(second, "nobody.test")  # type: ignore[arg-type]
        assert second.routed == [(None, 503)] and len(link.fetches) == 1  # answered at once, no lookup
        await store.stop()

    run(scenario())


@pytest.mark.parametrize("default", [True, False])
def test_with_redis_down_a_new_host_gets_the_last_default_at_once(default: bool) -> None:
    async def scenario() -> None:
        store, link = make_store()
        if default:
            store._set_default((Backend("10.0.0.9", 80),))
        link.up = False
        link.down_since = 1.0
        exchange = FakeExchange()
        store.lookup(exchange, "new.test")  # type: ignore[arg-type]
        assert link.fetches == []  # no wait for a lookup that cannot succeed
        pool, status = exchange.routed[0]
        assert status == 503 and (pool is not None) == default
        await store.stop()

    run(scenario())


def test_a_failed_lookup_falls_back_to_the_default_route() -> None:
    async def scenario() -> None:
        store, link = make_store()
        store._set_default((Backend("10.0.0.9", 80),))
        link.fail = ConnectionError("gone")
        link.release.set()
        exchange = FakeExchange()
        store.lookup(exchange, "x.test")  # type: ignore[arg-type]
        await settle()
        pool, _ = exchange.routed[0]
        assert pool is not None and [r.spec for r in pool.records] == [Backend("10.0.0.9", 80)]
        await store.stop()

    run(scenario())
