"""Merge the snapshots of several worker processes into one, as if one process had counted everything.

Pure: dicts in (rsp.metrics.snapshot's shape), a dict out of the same shape, inputs untouched.

- Counters (requests, bytes, connections accepted, failures, retries, ejections, check results, histogram
  buckets and sums) are summed: each worker counted its own share of the traffic.
- Gauges (connections active and idle) are summed too: each worker holds its own connections.
- A backend's state, weight and backup flag are taken by majority over the workers that report the backend;
  on a tie, the first worker's (in the order given: the master lists workers by their number). Health checks
  run once per machine and their result reaches every worker, so the workers agree except for the moment a
  change is on its way; the majority shows what most of the traffic sees meanwhile.
- A backend's health-check results (counts, last check and its time) are one per machine: the master puts
  its own into every worker's snapshot (rsp.metrics.snapshot.with_health), and they are taken as they are.
- A cache's counters (hits, misses, stores, evictions this worker's writes caused, ...) are summed; its store's
  figures (entries, bytes, budget) are one per machine, the same file every worker maps: the first worker's
  are taken (CACHE_STORE_KEPT).
- Listeners, pools, backends and caches are matched by name, kept in the order they first appear; one that only
  some workers report (during a reload) is merged over those.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Final

from rsp.errors import MetricsError

# The per-backend fields taken by majority rather than summed.
VOTED_FIELDS = ("state", "weight", "backup")
# A backend's fields that only the master's health checks write: one per machine.
HEALTH_FIELDS: Final = ("checks_ok", "checks_fail", "last_check", "last_check_time")
# Fields that describe rather than count, or that are one per machine: taken from the first report.
# A cache store's figures that are the machine's (every worker reads the same LMDB file): taken, not summed.
CACHE_STORE_KEPT: Final = frozenset({"bytes", "entries", "budget", "error"})
_KEPT = frozenset({"name", "address", "mode", "pool", "algorithm", "health_check", *HEALTH_FIELDS, *VOTED_FIELDS})


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """One snapshot summing `snapshots` (see the module docstring for the rule of each field)."""
    listeners: dict[str, dict[str, Any]] = {}
    pools: dict[str, dict[str, Any]] = {}
    backends: dict[tuple[str, str], dict[str, Any]] = {}
    votes: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for snap in snapshots:
        for listener in snap.get("listeners", []):
            _add(listeners, listener["name"], listener)
        for pool in snap.get("pools", []):
            name = pool["name"]
            if name not in pools:
                pools[name] = {k: copy.deepcopy(v) for k, v in pool.items() if k != "backends"}
                pools[name]["backends"] = []
            else:
                _sum_into(pools[name], {k: v for k, v in pool.items() if k != "backends"})
            for backend in pool["backends"]:
                key = (name, backend["name"])
                if key not in backends:
                    merged = copy.deepcopy(backend)
                    backends[key] = merged
                    pools[name]["backends"].append(merged)
                    votes[key] = {f: [] for f in VOTED_FIELDS}
                else:
                    merged = backends[key]
                    _sum_into(merged, backend)
                for f in VOTED_FIELDS:
                    votes[key][f].append(backend.get(f))
    for key, fields in votes.items():
        for f, values in fields.items():
            backends[key][f] = majority(values)
    caches: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        for name, figures in snap.get("caches", {}).items():
            _add_cache(caches, name, figures)
    return {
        "pids": [snap.get("pid") for snap in snapshots],
        "time": max((snap.get("time", 0.0) for snap in snapshots), default=0.0),
        "listeners": list(listeners.values()),
        "pools": list(pools.values()),
        "caches": caches,
    }


def majority(values: list[Any]) -> Any:
    """The most common value; on a tie the one that appears first."""
    if not values:
        return None
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def _add_cache(into: dict[str, dict[str, Any]], name: str, figures: dict[str, Any]) -> None:
    if name not in into:
        into[name] = copy.deepcopy(figures)
        return
    total = into[name]
    _sum_into(total, {k: v for k, v in figures.items() if k != "store"})
    store, theirs = total.setdefault("store", {}), figures.get("store", {})
    _sum_into(store, {k: v for k, v in theirs.items() if k not in CACHE_STORE_KEPT})


def _add(into: dict[str, dict[str, Any]], name: str, item: dict[str, Any]) -> None:
    if name in into:
        _sum_into(into[name], item)
    else:
        into[name] = copy.deepcopy(item)


def _sum_into(total: dict[str, Any], item: dict[str, Any]) -> None:
    """Add every number of `item` into `total`, recursing into dicts and summing lists element-wise."""
    for key, value in item.items():
        if key in _KEPT or key not in total:
            if key not in total:
                total[key] = copy.deepcopy(value)
            continue
        current = total[key]
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and isinstance(current, int | float):
            total[key] = current + value
        elif isinstance(value, dict) and isinstance(current, dict):
            _sum_into(current, value)
        elif isinstance(value, list) and isinstance(current, list) and key == "counts":
            if len(value) != len(current):
                raise MetricsError(f"histograms with different buckets: {len(current)} and {len(value)} counts")
            total[key] = [a + b for a, b in zip(current, value, strict=True)]
