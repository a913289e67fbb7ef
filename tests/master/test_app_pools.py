"""rsp.master.app_pools: the master joins a ready app to its pools and takes it out when it is gone (the
sandbox only announces, rsp.sandbox.manager.Membership). Pure: real PoolRuntimes, no sockets."""

from __future__ import annotations

import time

from rsp.config.model import Backend, Pool
from rsp.master.app_pools import AppPools
from rsp.proxy.pools import PoolRuntime

APP = Backend("10.99.0.2", 8000, name="app:web")


def pools() -> dict[str, PoolRuntime]:
    return {"web": PoolRuntime(Pool("web", (Backend("127.0.0.1", 9001),)), time.monotonic)}


def names(pool: PoolRuntime) -> list[str]:
    return [r.name for r in pool.records]


def test_a_ready_app_joins_its_pool_leaves_when_gone_and_keeps_its_record_when_back() -> None:
    p = pools()
    changes: list[int] = []
    apps = AppPools(p, lambda: changes.append(1))
    apps.ready("web", [("web", APP), ("gone", APP)])  # a pool the config does not have is skipped
    assert names(p["web"]) == ["web/1", "app:web"]
    record = p["web"].records[1]
    record.total = 7
    apps.ready("web", [("web", APP)])  # announced twice: joined once
    assert names(p["web"]) == ["web/1", "app:web"]
    apps.gone("web")
    apps.gone("web")
    assert names(p["web"]) == ["web/1"]
    apps.ready("web", [("web", APP)])  # restarted: the same record, with its counters, is put back
    assert p["web"].records[1] is record and record.total == 7
    assert len(changes) == 3


def test_after_a_reload_the_apps_in_rotation_join_the_new_pools_and_leave_from_them() -> None:
    old, new = pools(), pools()
    apps = AppPools(old, lambda: None)
    apps.ready("web", [("web", APP)])
    apps.ready("idle", [("web", Backend("10.99.0.3", 8000, name="app:idle"))])
    apps.gone("idle")
    apps.move_to(new)
    assert names(new["web"]) == ["web/1", "app:web"]  # only the app in rotation
    apps.gone("web")
    assert names(new["web"]) == ["web/1"]
    apps.ready("idle", [("web", Backend("10.99.0.3", 8000, name="app:idle"))])
    assert names(new["web"]) == ["web/1", "app:idle"]
