"""merge(): counters and gauges summed, states by majority (ties: first), health results the machine's (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rsp.errors import MetricsError
from rsp.metrics.merge import majority, merge
from rsp.metrics.snapshot import with_health
from support.snapshots import backend, snap


def test_counters_and_gauges_are_summed() -> None:
    a = snap(1, [backend("a", ok=3, fail=1, active=2, idle=1, counts=[1, 2, 1], seconds=1.5)], accepted=4, retries=1)
    b = snap(2, [backend("a", ok=5, active=1, idle=4, counts=[4, 1, 0], seconds=0.5)], accepted=6, retries=2)
    merged = merge([a, b])
    listener = merged["listeners"][0]
    assert (listener["accepted"], listener["active"], listener["idle"]) == (10, 2, 4)
    assert (listener["bytes_received"], listener["bytes_sent"]) == (70, 90)
    assert listener["responses"]["2xx"] == 10
    pool = merged["pools"][0]
    assert pool["retries"] == 3 and pool["unserved"]["5xx"] == 3
    (a_merged,) = pool["backends"]
    assert a_merged["responses"]["2xx"] == 8 and a_merged["responses"]["5xx"] == 1
    assert (a_merged["active"], a_merged["idle"], a_merged["connections"]) == (3, 5, 9)
    assert a_merged["response_time"] == {"bounds": [0.1, 1.0], "counts": [5, 3, 1], "sum": 2.0, "count": 9}
    assert merged["pids"] == [1, 2]
    assert merged["time"] == 1002.0
    assert a_merged["address"] == "127.0.0.1:1" and a_merged["health_check"] == "tcp"


def test_inputs_are_not_changed() -> None:
    a = snap(1, [backend("a", ok=1)], accepted=1)
    b = snap(2, [backend("a", ok=2)], accepted=2)
    before = copy.deepcopy([a, b])
    merge([a, b])
    merged = merge([a, b])
    assert [a, b] == before
    assert merged["listeners"][0]["accepted"] == 3


def test_state_by_majority_and_first_on_tie() -> None:
    three = merge([snap(1, [backend("a", "up")]), snap(2, [backend("a", "down")]), snap(3, [backend("a", "down")])])
    assert three["pools"][0]["backends"][0]["state"] == "down"
    tie = merge([snap(1, [backend("a", "drain", weight=3)]), snap(2, [backend("a", "up", weight=5)])])
    assert tie["pools"][0]["backends"][0]["state"] == "drain"
    assert tie["pools"][0]["backends"][0]["weight"] == 3
    assert majority([]) is None
    assert majority(["x", "y", "y", "x", "z"]) == "x"


def test_health_results_are_the_machines_not_summed() -> None:
    """Checks run once per machine (the master): its results, put into every worker's snapshot, are taken
    as they are; summing them would count each check once per worker."""
    checks = {"web": {"a": {"checks_ok": 7, "checks_fail": 2, "last_check": "connection refused",
                            "last_check_time": 60.0}}}
    workers = [with_health(snap(pid, [backend("a", ok=3)]), checks) for pid in (1, 2, 3)]
    b = merge(workers)["pools"][0]["backends"][0]
    assert (b["checks_ok"], b["checks_fail"]) == (7, 2)
    assert (b["last_check"], b["last_check_time"]) == ("connection refused", 60.0)
    assert b["responses"]["2xx"] == 9  # traffic is still summed


def test_with_health_leaves_unknown_backends_alone() -> None:
    one = with_health(snap(1, [backend("a", ok=1), backend("b", ok=2)]), {"web": {"a": {"checks_ok": 5}}})
    a, b = one["pools"][0]["backends"]
    assert a["checks_ok"] == 5 and b["checks_ok"] == 2


def test_backends_reported_by_some_workers_only() -> None:
    merged = merge([snap(1, [backend("a", ok=1)]), snap(2, [backend("a", ok=1), backend("new", ok=4)])])
    names = [b["name"] for b in merged["pools"][0]["backends"]]
    assert names == ["a", "new"]
    assert merged["pools"][0]["backends"][1]["responses"]["2xx"] == 4


def test_single_snapshot_is_itself() -> None:
    one = snap(7, [backend("a", ok=2, last="ok", last_time=3.0)], accepted=2, retries=1)
    merged = merge([one])
    assert merged["listeners"] == one["listeners"]
    assert merged["pools"] == one["pools"]


def test_empty() -> None:
    assert merge([]) == {"pids": [], "time": 0.0, "listeners": [], "pools": [], "caches": {}}


def test_cache_counters_are_summed_and_the_store_taken_once() -> None:
    def cache(hits: int, evicted: int, entries: int) -> dict[str, Any]:
        return {"name": "pages", "hits": hits, "misses": 1, "stored": 1,
                "store": {"evicted_here": evicted, "bytes": 4096 * entries, "entries": entries, "budget": 9000}}

    one, two = snap(1, []), snap(2, [])
    one["caches"] = {"pages": cache(3, 1, 5)}
    two["caches"] = {"pages": cache(4, 2, 6), "other": cache(1, 0, 1)}  # a reload's new cache: one worker
    merged = merge([one, two])["caches"]
    assert merged["pages"] == {"name": "pages", "hits": 7, "misses": 2, "stored": 2,
                               "store": {"evicted_here": 3, "bytes": 4096 * 5, "entries": 5, "budget": 9000}}
    assert merged["other"]["hits"] == 1
    assert one["caches"]["pages"]["hits"] == 3  # inputs untouched


def test_different_buckets_are_refused() -> None:
    with pytest.raises(MetricsError):
        merge([snap(1, [backend("a", counts=[1, 0, 0])]), snap(2, [backend("a", counts=[1, 0, 0, 0])])])
