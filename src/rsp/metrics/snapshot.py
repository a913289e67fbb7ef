"""One process's counters and backend states as a plain, JSON-serialisable dict.

`snapshot(listening, pools)` walks what a worker holds (listeners with their proxies, pools, backend records,
idle pools, live connections) and copies numbers out; it changes nothing. It is fed what it reads: metrics
knows the proxies and pools, not the server that holds them. Gauges (connections active and idle) are counted
here, at read time, so the hot path keeps no gauge of its own: a scrape costs one pass over the live
connections, a request costs nothing extra. Bytes of TCP connections still open are added here too (a relay
adds its totals to the counters when it closes), so byte counters grow while a long tunnel runs.

The dict's shape (docs/metrics.md) is what rsp.metrics.merge sums and rsp.metrics.prometheus renders:

    {"pid", "time", "listeners": [{name, mode, pool, accepted, active, idle, bytes_received, bytes_sent,
     responses}], "pools": [{name, algorithm, retries, unserved, backends: [{name, address, state, weight,
     backup, active, idle, connections, responses, bytes_sent, bytes_received, connect_failures, ejections,
     checks_ok, checks_fail, last_check, last_check_time, health_check, response_time}]}],
     "caches": {NAME: rsp.cache.cache_filter.CacheFilter.figures()}}

Active health checks run once per machine, in the master (docs/architecture.md, "Where state lives"): a
worker's own check fields are empty. `health(pools)` reads them from the master's pools and `with_health`
puts them into each worker's snapshot before rsp.metrics.merge, which takes them as they are (not summed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from rsp.config.model import Listener
from rsp.metrics.counters import ListenerStats
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.upstream.records import BackendRecord

Health = dict[str, dict[str, dict[str, Any]]]  # pool -> backend -> rsp.metrics.merge.HEALTH_FIELDS


def snapshot(listening: Iterable[tuple[Listener, HttpProxy | TcpProxy]],
             pools: Mapping[str, PoolRuntime], caches: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """This process's counters, gauges and backend states (see the module docstring for the shape); `caches`:
    the process's cache figures (rsp.cache.hook.cache_figures), read by whoever holds the filters."""
    idle_upstream: dict[BackendRecord, int] = {}
    live_bytes: dict[BackendRecord, tuple[int, int]] = {}
    listeners: list[dict[str, Any]] = []
    for listener, proxy in listening:
        if isinstance(proxy, HttpProxy):
            for record, pool in proxy.idle_pools.items():
                idle_upstream[record] = idle_upstream.get(record, 0) + len(pool.idle)
        elif isinstance(proxy, TcpProxy):
            for relay in proxy.relays:
                if isinstance(relay.info, BackendRecord):
                    sent, received = live_bytes.get(relay.info, (0, 0))
                    live_bytes[relay.info] = (sent + relay.bytes_in, received + relay.bytes_out)
        listeners.append(_listener(listener.address, listener.mode, listener.pool, proxy))
    pool_docs = []
    for runtime in pools.values():
        backends = [_backend(r, idle_upstream.get(r, 0), live_bytes.get(r, (0, 0)), runtime.spec.health.kind)
                    for r in runtime.records]
        pool_docs.append({"name": runtime.name, "algorithm": runtime.spec.algorithm, "retries": runtime.stats.retries,
                      "unserved": runtime.stats.unserved.as_dict(), "backends": backends})
    return {"pid": os.getpid(), "time": time.time(), "listeners": listeners, "pools": pool_docs,
            "caches": dict(caches or {})}


def health(pools: Mapping[str, PoolRuntime]) -> Health:
    """The active checks' results per pool and backend, from the pools the checks run on (the master's)."""
    return {name: {r.name: _backend_health(r) for r in pool.records}
            for name, pool in pools.items()}


def _backend_health(record: BackendRecord) -> dict[str, Any]:
    """HEALTH_FIELDS of `record`."""
    return {"checks_ok": record.stats.checks_ok, "checks_fail": record.stats.checks_fail,
            "last_check": record.last_check, "last_check_time": record.stats.last_check_time or None}


def with_health(snap: dict[str, Any], checks: Health) -> dict[str, Any]:
    """`snap` (a worker's) with its backends' check fields set from the machine's `checks`, in place."""
    for pool in snap.get("pools", []):
        ours = checks.get(pool["name"], {})
        for backend in pool["backends"]:
            found = ours.get(backend["name"])
            if found is not None:
                backend.update(found)
    return snap


def _listener(name: str, mode: str, pool: str, proxy: HttpProxy | TcpProxy) -> dict[str, Any]:
    stats: ListenerStats = proxy.stats
    received, sent = stats.bytes_received, stats.bytes_sent
    if isinstance(proxy, HttpProxy):
        idle = sum(1 for conn in proxy.connections if conn.is_idle())
        active = len(proxy.connections) - idle
    else:
        # A TCP connection has no idle state rsp knows of: every relay is active until it closes.
        active, idle = len(proxy.relays) + len(proxy.sessions), 0
        for relay in proxy.relays:
            received += relay.bytes_in
            sent += relay.bytes_out
    return {"name": name, "mode": mode, "pool": pool, "accepted": stats.accepted, "active": active, "idle": idle,
            "bytes_received": received, "bytes_sent": sent, "responses": stats.responses.as_dict(),
            "http2_connections": stats.http2_connections, "http2_streams": stats.http2_streams}


def _backend(record: BackendRecord, idle: int, live: tuple[int, int], check_kind: str) -> dict[str, Any]:
    stats = record.stats
    return {
        "name": record.name,
        "address": record.spec.address,
        "state": record.status,
        "weight": record.weight,
        "backup": record.spec.backup,
        # record.active counts exchanges and relays holding (or opening) a connection to it.
        "active": record.active,
        "idle": idle,
        "connections": record.total,
        "responses": stats.responses.as_dict(),
        "bytes_sent": stats.bytes_sent + live[0],
        "bytes_received": stats.bytes_received + live[1],
        "connect_failures": stats.connect_failures,
        "ejections": stats.ejections,
        "checks_ok": stats.checks_ok,
        "checks_fail": stats.checks_fail,
        "last_check": record.last_check,
        "last_check_time": stats.last_check_time or None,
        "health_check": check_kind,
        "response_time": stats.response_time.as_dict(),
    }
