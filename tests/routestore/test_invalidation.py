"""The store's invalidation logic without Redis: pushes, answers in flight, the default route, with a fake
clock. (The Redis client is created but never connects: nothing here awaits it.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from rsp.config.model import Backend, Pool, RouteStore
from rsp.routestore.cache import ROUTE_HOST, ROUTE_MISSING
from rsp.routestore.store import RouteStore as Store


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


B1 = Backend("10.0.0.1", 80)
B2 = Backend("10.0.0.2", 80)


@pytest.fixture
def store() -> Iterator[Store]:
    loop = asyncio.new_event_loop()
    template = Pool("default", (Backend("127.0.0.1", 1),))
    try:
        yield Store(RouteStore(url="redis://127.0.0.1:1/0", ttl=5.0), template, {}, loop, clock=Clock())
    finally:
        loop.close()


def test_answers_route_hosts_to_shared_pools(store: Store) -> None:
    store._apply({"a.test": ((B1, B2), ROUTE_HOST), "b.test": ((B2, B1), ROUTE_HOST)})
    assert store.host_pools["a.test"] is store.host_pools["b.test"]
    store._apply({"b.test": ((B1,), ROUTE_HOST)})
    assert store.host_pools["a.test"] is not store.host_pools["b.test"]
    store._apply({"a.test": ((), ROUTE_MISSING)})  # removed from Redis
    assert "a.test" not in store.host_pools
    assert store.dynamic.refs == {(B1, B2): 0, (B1,): 1}  # the old set waits for retirement


def test_a_push_marks_the_host_due_and_wakes_the_refresher(store: Store) -> None:
    store._apply({"a.test": ((B1,), ROUTE_HOST)})
    assert store.cache.due_hosts() == []
    store._message("A.Test")
    assert store.cache.due_hosts() == ["a.test"] and store._kick.is_set()
    assert "a.test" in store.host_pools  # served as before until the refresh answers


def test_a_push_during_a_lookup_in_flight_asks_again(store: Store) -> None:
    # The answer in flight may have been read before the write the push announces.
    store.refreshing.add("a.test")
    store._message("a.test")
    store.refreshing.discard("a.test")
    store._apply({"a.test": ((B1,), ROUTE_HOST)})
    assert store.cache.due_hosts() == []
    store._recheck()
    assert store.cache.due_hosts() == ["a.test"]


def test_star_refreshes_everything_and_the_default(store: Store) -> None:
    store._apply({"a.test": ((B1,), ROUTE_HOST), "b.test": ((), ROUTE_MISSING)})
    store.default_route = ()
    store.default_fetched = store.clock()
    assert not store._default_due()
    store._message("*")
    assert sorted(store.cache.due_hosts()) == ["a.test", "b.test"] and store._default_due()


def test_the_default_route_is_refetched_after_a_ttl(store: Store) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    assert store._default_due()  # never fetched
    store.default_route = (B1,)
    store.default_fetched = clock.now
    assert not store._default_due()
    clock.now += 5.0
    assert store._default_due()


def test_default_route_pool_survives_without_hosts(store: Store) -> None:
    store._set_default((B1,))
    pool = store._default_pool()
    assert pool is not None and [r.spec for r in pool.records] == [B1]
    store._set_default((B2,))
    assert store.dynamic.refs[(B1,)] == 0 and store.dynamic.refs[(B2,)] == 1
