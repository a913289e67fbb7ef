"""The backend keep-alive pool: sized by use (HAProxy's purge of what the last period did not need), capped by
`pool_max_idle`, aged out by `pool_idle_timeout`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from rsp.config.model import DEFAULT_POOL_MAX_IDLE, Backend
from rsp.proxy.http_upstream import POOL_TRIM_PERIOD, IdlePool, UpstreamConnection
from rsp.upstream.records import BackendRecord

TIMEOUT = 60.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def connections(loop: asyncio.AbstractEventLoop, pool: IdlePool, n: int) -> list[UpstreamConnection]:
    record = BackendRecord(Backend("127.0.0.1", 9), 0, "web")
    return [UpstreamConnection(loop, record, pool) for _ in range(n)]


def test_the_default_cap_is_above_a_thousand_requests_in_flight() -> None:
    # 256 made 1,000 keep-alive clients open a backend connection for a third of their requests.
    assert DEFAULT_POOL_MAX_IDLE >= 1000


def test_the_cap_closes_a_connection_put_back_to_a_full_pool(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(2, TIMEOUT, 1000)
    a, b, c = connections(loop, pool, 3)
    for conn in (a, b, c):
        pool.put(conn, 1.0)
    assert pool.idle == [a, b] and c.closed


def test_most_recently_used_first_and_a_closed_one_is_never_handed_out(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(10, TIMEOUT, 1000)
    a, b, c = connections(loop, pool, 3)
    for conn in (a, b, c):
        pool.put(conn, 1.0)
    c.close()  # the backend closed it while idle: it leaves the pool
    assert pool.idle == [a, b]
    assert pool.take() is b and pool.take() is a and pool.take() is None


def test_connections_used_every_period_are_kept(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(DEFAULT_POOL_MAX_IDLE, TIMEOUT, 1000)
    conns = connections(loop, pool, 100)
    now = 0.0
    for conn in conns:
        pool.put(conn, now)
    for _ in range(10):  # each period, all 100 are in use at once, then back
        taken = [pool.take() for _ in range(100)]
        now += 1.0
        for conn in taken:
            assert conn is not None
            pool.put(conn, now)
        now += POOL_TRIM_PERIOD
        pool.expire(now)
    assert len(pool.idle) == 100 and not any(c.closed for c in conns)


def test_what_a_period_did_not_need_is_halved_each_period(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(DEFAULT_POOL_MAX_IDLE, TIMEOUT, 1000)
    conns = connections(loop, pool, 1000)
    for conn in conns:
        pool.put(conn, 0.0)
    sizes = []
    now = 1.0
    for _ in range(5):
        # 10 requests in flight at once, on the most recently used connections
        taken = [pool.take() for _ in range(10)]
        for conn in taken:
            assert conn is not None
            pool.put(conn, now)
        now += POOL_TRIM_PERIOD
        pool.expire(now)
        sizes.append(len(pool.idle))
    # the 1,000 were put back during the first period, in use then: kept; then half the unused go per period
    assert sizes == [1000, 505, 257, 133, 71]
    # the oldest went, the warm ones stayed
    assert all(c.closed for c in conns[:495]) and not any(c.closed for c in conns[-10:])
    # and the pool never goes below what a period used at once
    for _ in range(20):
        taken = [pool.take() for _ in range(10)]
        for conn in taken:
            assert conn is not None
            pool.put(conn, now)
        now += POOL_TRIM_PERIOD
        pool.expire(now)
    assert len(pool.idle) == 10


def test_no_trim_within_a_period(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(DEFAULT_POOL_MAX_IDLE, TIMEOUT, 1000)
    for conn in connections(loop, pool, 50):
        pool.put(conn, 0.0)
    pool.expire(0.0)
    pool.expire(POOL_TRIM_PERIOD / 2)
    assert len(pool.idle) == 50


def test_the_idle_timeout_closes_the_oldest(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(DEFAULT_POOL_MAX_IDLE, 10.0, 1000)
    old, young = connections(loop, pool, 2)
    pool.put(old, 0.0)
    pool.put(young, 8.0)
    pool.take()
    pool.put(young, 8.0)  # in use during the period: the trim keeps both, the timeout does not
    pool.expire(11.0)
    assert pool.idle == [young] and old.closed and not young.closed


def test_close_all_empties_the_pool(loop: asyncio.AbstractEventLoop) -> None:
    pool = IdlePool(DEFAULT_POOL_MAX_IDLE, TIMEOUT, 1000)
    conns = connections(loop, pool, 3)
    for conn in conns:
        pool.put(conn, 0.0)
    pool.close_all()
    assert pool.idle == [] and all(c.closed for c in conns) and pool.take() is None
