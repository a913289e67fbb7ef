"""The route store once per machine: the master's RouteStore (rsp.routestore.store) answers the workers'
lookups and tells every worker each change of a route (rsp.routestore.client is the worker's side).

A worker asks for a host it has no route for (`lookup`); the answer comes from the master's table at once
when the machine knows the host (with Redis down too), else after the store's own Redis lookup, shared by
every worker asking meanwhile. The Redis-supplied pools live in the master's pools mapping: checked once
per machine, listed by `show backends`, their state sent with the other pools' (rsp.master.backend_state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rsp.config.model import Config
from rsp.logs import get_logger
from rsp.master import control
from rsp.master.backend_state import pools_state
from rsp.proxy.pools import PoolRuntime
from rsp.routestore.client import encode_backends
from rsp.routestore.dynamic_pools import BackendSet
from rsp.routestore.store import RouteStore

Send = Callable[[str, dict[str, Any]], None]  # (worker name, message)
Broadcast = Callable[[dict[str, Any]], None]


class _Question:
    """One worker's lookup of one host, waiting for the store (a rsp.routestore.store.RouteWaiter)."""

    __slots__ = ("host", "routes", "worker")

    def __init__(self, routes: MachineRoutes, worker: str, host: str) -> None:
        self.routes = routes
        self.worker = worker
        self.host = host

    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        self.routes.answer(self.worker, self.host, pool, status)


class MachineRoutes:
    def __init__(self, config: Config, pools: dict[str, PoolRuntime], loop: asyncio.AbstractEventLoop, send: Send,
                 broadcast: Broadcast, health_changed: Callable[[str], None]) -> None:
        settings = config.route_store
        assert settings is not None
        self.send = send
        self.broadcast = broadcast
        self.store = RouteStore(settings, config.pools[settings.template], pools, loop,
                                on_route=self._changed, on_health=health_changed)

    async def start(self, previous: MachineRoutes | None = None) -> None:
        """`previous`: the store of the config before a reload, whose routes this one starts from."""
        if previous is not None:
            self.store.adopt(previous.store)
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    def lookup(self, worker: str, host: str) -> None:
        pool = self.store.host_pools.get(host)
        if pool is not None:  # known to the machine: the answer, whatever Redis's state
            self.answer(worker, host, pool, self.store.settings.missing_status)
            return
        self.store.lookup(_Question(self, worker, host), host)

    def answer(self, worker: str, host: str, pool: PoolRuntime | None, status: int) -> None:
        message: dict[str, Any] = {"t": control.ROUTE, "host": host, "status": status, "backends": [],
                                   "cached": False, "source": self._source(host)}
        if pool is not None:
            message["backends"] = encode_backends(pool.spec.backends)
            message["cached"] = self.store.host_pools.get(host) is pool
            message["state"] = pools_state({pool.name: pool})[pool.name]
        self.send(worker, message)

    def _changed(self, host: str, backends: BackendSet) -> None:
        get_logger().debug("route store: %s -> %s", host, ", ".join(b.label for b in backends) or "no route")
        self.broadcast({"t": control.ROUTED, "host": host, "backends": encode_backends(backends),
                        "source": self._source(host)})

    def _source(self, host: str) -> str:
        """Where the machine's answer for `host` comes from: its own key, the default route, or none."""
        entry = self.store.cache.get(host)
        return entry.source if entry is not None else ""
