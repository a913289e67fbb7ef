"""Backend state sent by the master and applied by a worker: drain, weight, health, added and removed."""

from __future__ import annotations

import time

from rsp.config.model import Backend, HealthCheck, Pool
from rsp.master.backend_state import apply_pools_state, pools_state
from rsp.proxy.pools import PoolRuntime


def pool(checked: bool = False) -> PoolRuntime:
    spec = Pool("web", (Backend("127.0.0.1", 9001), Backend("127.0.0.1", 9002, name="b")),
                health=HealthCheck(kind="tcp" if checked else "none"))
    return PoolRuntime(spec, time.monotonic)


def test_a_fresh_pool_already_matches() -> None:
    master, worker = pool(), pool()
    assert apply_pools_state({"web": worker}, pools_state({"web": master})) == []


def test_drain_weight_add_and_remove_reach_the_worker() -> None:
    master, worker = pool(), pool()
    master.set_draining(master.records[0], True)
    master.set_weight(master.records[1], 5)
    added = master.add_backend(Backend("127.0.0.1", 9003, weight=2, name="web/3"))
    master.remove_backend(master.records[0])
    changes = apply_pools_state({"web": worker}, pools_state({"web": master}))
    assert "removed web/1" in changes and "added web/3" in changes
    assert [r.name for r in worker.records] == ["b", "web/3"]
    assert worker.records[0].weight == 5
    assert worker.records[1].spec.address == added.spec.address
    assert worker.records[1].weight == 2
    # The balancer picks only what the master's state allows.
    picks = {worker.pick(None, ()).name for _ in range(20)}  # type: ignore[union-attr]
    assert picks == {"b", "web/3"}


def test_health_is_applied_only_for_checked_pools() -> None:
    for checked in (False, True):
        master, worker = pool(checked), pool(checked)
        master.records[0].up = False
        apply_pools_state({"web": worker}, pools_state({"web": master}))
        assert worker.records[0].up is (not checked)


def test_unknown_pools_are_ignored() -> None:
    worker = pool()
    assert apply_pools_state({"web": worker}, {"api": [{"name": "x"}]}) == []
