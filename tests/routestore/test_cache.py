"""The pure parts of the route store with a fake clock: cache, rate-limited log, schema, dynamic pools."""

from __future__ import annotations

import pytest

from rsp.config.model import Backend, Pool
from rsp.proxy.pools import PoolRuntime
from rsp.routestore.bad_data import BadDataLog
from rsp.routestore.cache import ROUTE_DEFAULT, ROUTE_HOST, ROUTE_MISSING, RouteCache
from rsp.routestore.dynamic_pools import DynamicPools, backend_set, pool_name
from rsp.routestore.schema import backends_key, host_of_key, parse_member


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


B1 = Backend("10.0.0.1", 80)
B2 = Backend("10.0.0.2", 80)


def test_entries_are_fresh_for_their_ttl_then_due_but_kept() -> None:
    clock = Clock()
    cache = RouteCache(ttl=5.0, negative_ttl=1.0, clock=clock)
    cache.put("a.test", (B1,), ROUTE_HOST)
    cache.put("gone.test", (), ROUTE_MISSING)
    entry = cache.get("a.test")
    assert entry is not None and cache.is_fresh(entry)
    clock.now += 1.5
    assert cache.due_hosts() == ["gone.test"]  # negative entries expire sooner
    clock.now += 4.0
    assert sorted(cache.due_hosts()) == ["a.test", "gone.test"]
    # Expired entries stay: they answer until a refresh brings something else (Redis may be down).
    assert cache.get("a.test") is entry and entry.backends == (B1,)
    cache.put("a.test", (B2,), ROUTE_HOST)
    assert cache.due_hosts() == ["gone.test"]


def test_invalidation_marks_due_at_once() -> None:
    clock = Clock()
    cache = RouteCache(ttl=60.0, negative_ttl=60.0, clock=clock)
    cache.put("a.test", (B1,), ROUTE_HOST)
    cache.put("b.test", (B1,), ROUTE_DEFAULT)
    assert cache.due_hosts() == []
    assert cache.invalidate("a.test") and not cache.invalidate("unknown.test")
    assert cache.due_hosts() == ["a.test"]
    cache.invalidate_all()
    assert cache.due_hosts() == ["a.test", "b.test"]
    cache.put("a.test", (B1,), ROUTE_HOST)  # a new answer clears the mark
    assert cache.due_hosts() == ["b.test"]


def test_the_cache_is_bounded_oldest_answer_first() -> None:
    cache = RouteCache(ttl=5.0, negative_ttl=1.0, clock=Clock(), max_hosts=3)
    for host in ("a", "b", "c"):
        assert cache.put(host, (B1,), ROUTE_HOST) == []
    cache.put("a", (B2,), ROUTE_HOST)  # re-answered: now the newest
    assert cache.put("d", (B1,), ROUTE_HOST) == ["b"]
    assert list(cache) == ["c", "a", "d"]


def test_bad_data_log_is_rate_limited_per_key() -> None:
    clock = Clock()
    lines: list[str] = []
    log = BadDataLog(lines.append, clock, interval=60.0)
    assert log.report("k1", "WRONGTYPE")
    assert not log.report("k1", "WRONGTYPE")
    assert log.report("k2", "garbage")
    clock.now += 61
    assert log.report("k1", "WRONGTYPE")
    assert len(lines) == 3 and log.suppressed == 1 and "k1" in lines[0] and "skipped" in lines[0]


@pytest.mark.parametrize(("member", "parsed"), [
    (b"10.0.0.1:8080", Backend("10.0.0.1", 8080)),
    (b"[::1]:80", Backend("::1", 80)),
    (b"app-1.internal:8080", Backend("app-1.internal", 8080)),
    (" 10.0.0.1:80 ", Backend("10.0.0.1", 80)),
    (b"10.0.0.1", None),
    (b"10.0.0.1:0", None),
    (b"10.0.0.1:65536", None),
    (b"::1:80", None),  # an unbracketed v6 address is ambiguous
    (b"[10.0.0.1]:80", None),
    (b"garbage", None),
    (b"not an address:80", None),
    (b"\xff\xfe:80", None),
    (b"a" * 400 + b":80", None),
])
def test_parse_member(member: bytes | str, parsed: Backend | None) -> None:
    assert parse_member(member) == parsed


def test_keys() -> None:
    assert backends_key("hostnames:", "a.test") == "hostnames:a.test:backends"
    assert host_of_key("hostnames:", "hostnames:a.test:backends") == "a.test"
    assert host_of_key("hostnames:", "other:a.test:backends") is None
    assert host_of_key("hostnames:", "hostnames::backends") is None


def make_pools(clock: Clock, max_pools: int = 10) -> tuple[DynamicPools, dict[str, PoolRuntime], list[str]]:
    events: list[str] = []
    registry: dict[str, PoolRuntime] = {}
    template = Pool("web", (Backend("127.0.0.1", 1),), algorithm="leastconn", retries=1)
    pools = DynamicPools(template, registry, clock, lambda p: events.append(f"+{p.name}"),
                         lambda p: events.append(f"-{p.name}"), max_pools=max_pools, retire_after=60.0)
    return pools, registry, events


def test_a_backend_set_is_one_pool_with_the_templates_settings() -> None:
    clock = Clock()
    pools, registry, events = make_pools(clock)
    first = pools.acquire(backend_set((B2, B1)))
    again = pools.acquire(backend_set((B1, B2, B1)))
    assert first is again and first is not None
    assert first.name == pool_name((B1, B2)) == "redis:10.0.0.1:80,10.0.0.2:80"
    assert first.spec.algorithm == "leastconn" and first.spec.retries == 1  # the template's settings
    assert [r.spec for r in first.records] == [B1, B2]
    assert registry == {first.name: first} and events == [f"+{first.name}"]


def test_unreferenced_pools_retire_after_a_while_unless_busy() -> None:
    clock = Clock()
    pools, registry, events = make_pools(clock)
    key = backend_set((B1,))
    pool = pools.acquire(key)
    assert pool is not None
    pools.acquire(key)
    pools.release(key)
    clock.now += 120
    assert pools.retire_unused() == []  # still referenced once
    pools.release(key)
    clock.now += 30
    assert pools.retire_unused() == []  # unreferenced for less than retire_after
    pool.records[0].active = 1
    clock.now += 60
    assert pools.retire_unused() == []  # a request in flight keeps it
    pool.records[0].active = 0
    assert pools.retire_unused() == [pool]
    assert registry == {} and events == [f"+{pool.name}", f"-{pool.name}"]


def test_the_pool_count_is_bounded() -> None:
    clock = Clock()
    pools, _, _ = make_pools(clock, max_pools=2)
    one, two, three = backend_set((B1,)), backend_set((B2,)), backend_set((B1, B2))
    assert pools.acquire(one) is not None and pools.acquire(two) is not None
    assert pools.acquire(three) is None  # every pool is referenced: refused
    pools.release(one)
    assert pools.acquire(three) is not None  # an unreferenced pool retired early to make room
    assert len(pools) == 2


def test_due_hosts_lists_the_marked_first_then_the_expired_oldest_answer_first() -> None:
    clock = Clock()
    cache = RouteCache(ttl=5.0, negative_ttl=1.0, clock=clock)
    for host in ("a", "b", "c", "d"):
        cache.put(host, (B1,), ROUTE_HOST)
        clock.now += 1.0
    cache.put("gone", (), ROUTE_MISSING)
    cache.put("b", (B2,), ROUTE_HOST)  # answered again: now the newest of its TTL
    clock.now += 1.5  # a, c, d are 5.5, 3.5, 2.5 s old; b and gone 1.5 s
    assert cache.due_hosts() == ["a", "gone"]
    cache.invalidate("d")
    clock.now += 2.0  # a 7.5, c 5.5, d 4.5 (marked), b 3.5
    assert cache.due_hosts() == ["d", "a", "c", "gone"]
    cache.put("a", (B1,), ROUTE_HOST)
    cache.remove("c")
    assert cache.due_hosts() == ["d", "gone"]


def test_evicted_and_answered_again_hosts_leave_the_due_list() -> None:
    clock = Clock()
    cache = RouteCache(ttl=5.0, negative_ttl=5.0, clock=clock, max_hosts=2)
    cache.put("a", (B1,), ROUTE_HOST)
    cache.invalidate("a")
    cache.put("b", (), ROUTE_MISSING)
    assert cache.put("c", (B1,), ROUTE_HOST) == ["a"]  # evicted: marked, yet no longer cached
    clock.now += 10.0
    assert cache.due_hosts() == ["c", "b"]
    assert len(cache) == 2


def test_the_expired_hosts_listed_are_bounded_oldest_first_and_the_marked_always_listed() -> None:
    clock = Clock()
    cache = RouteCache(ttl=5.0, negative_ttl=5.0, clock=clock)
    for host in ("a", "b", "c", "d"):
        cache.put(host, (B1,), ROUTE_HOST)
        clock.now += 0.1
    cache.invalidate("c")
    cache.invalidate("d")
    clock.now += 10.0
    assert cache.due_hosts(expired_limit=1) == ["c", "d", "a"]
    assert cache.due_hosts(expired_limit=0) == ["c", "d"]
    assert cache.due_hosts() == ["c", "d", "a", "b"]
