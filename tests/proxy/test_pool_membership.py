"""Backends joining and leaving a pool at run time (the app sandbox's apps)."""

from __future__ import annotations

from rsp.config.model import Backend, Pool
from rsp.proxy.pools import PoolRuntime


def test_an_empty_pool_picks_nothing_until_a_backend_joins_and_nothing_after_it_leaves() -> None:
    pool = PoolRuntime(Pool("web", ()), lambda: 0.0)
    assert pool.pick(None, ()) is None
    one = pool.add_backend(Backend("127.0.0.1", 9001, name="app:one"))
    two = pool.add_backend(Backend("127.0.0.1", 9002, name="app:two"))
    assert {pool.pick(None, ()) for _ in range(4)} == {one, two}
    assert pool.addresses[two.index][1] == ("127.0.0.1", 9002)
    pool.remove_backend(one, allow_empty=True)
    assert {pool.pick(None, ()) for _ in range(4)} == {two}
    pool.remove_backend(two, allow_empty=True)
    assert pool.pick(None, ()) is None


def test_a_record_rejoins_as_the_same_object_and_up() -> None:
    pool = PoolRuntime(Pool("web", ()), lambda: 0.0)
    one = pool.add_backend(Backend("127.0.0.1", 9001))
    pool.remove_backend(one, allow_empty=True)
    one.up = False
    pool.rejoin(one)
    assert pool.pick(None, ()) is one and one.up
    assert len(pool.addresses) == 1
