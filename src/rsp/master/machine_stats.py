"""The stats endpoint of rsp.metrics, run once per machine by the master: it serves every worker's metrics
snapshot (gathered over the control channels) with the master's own health-check results, moves when a
reload changes the `stats` section, and closes at stop. Only the master imports this module."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from rsp.config.model import Config
from rsp.errors import StartupError
from rsp.logs import get_logger
from rsp.preflight import stats_bind_error
from rsp.proxy.pools import PoolRuntime


class MachineStats:
    """The endpoint of the running config's `stats` section (none when the config has no such section or
    the build has no rsp.metrics). `snapshots` gathers one snapshot per serving worker, `pools` is the
    master's current copy of the pools (the health checks' results), `machine` the master's facts."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 snapshots: Callable[[], Awaitable[list[dict[str, Any]]]],
                 pools: Callable[[], dict[str, PoolRuntime]], machine: Callable[[], dict[str, Any]]) -> None:
        self.loop = loop
        self.snapshots = snapshots
        self.pools = pools
        self.machine = machine
        self.endpoint: Any = None  # rsp.metrics.endpoint.StatsEndpoint, imported only when a config asks

    async def start(self, config: Config) -> None:
        """Start the endpoint `config` asks for, if any; StartupError (file, line, key) when its address
        cannot be bound."""
        settings = getattr(config, "stats", None)
        if settings is None:
            return
        endpoint = importlib.import_module("rsp.metrics.endpoint")
        self.endpoint = endpoint.StatsEndpoint(self.loop, settings.host, settings.port, self.gather_metrics,
                                               self.machine, settings.refresh)
        try:
            await self.endpoint.start()
        except OSError as exc:
            self.endpoint = None
            raise stats_bind_error(config, settings.host, settings.port, exc) from exc
        get_logger().info("stats: http://%s:%d/ (metrics at /metrics)", settings.host, self.endpoint.port)

    async def gather_metrics(self) -> list[dict[str, Any]]:
        """Every worker's metrics snapshot, with the machine's health-check results (the master's checks) in
        each: the workers count traffic, the master checks."""
        from rsp.metrics.snapshot import health, with_health

        checks = health(self.pools())
        return [with_health(s["metrics"], checks) for s in await self.snapshots() if s.get("metrics")]

    async def reload(self, old: Config, new: Config) -> list[str]:
        """Apply a changed `stats` section at reload: the endpoint moves (or starts, or stops). When the new
        address cannot be bound, the old endpoint stays and the reply says so."""
        if old.stats == new.stats:
            return []
        previous = self.endpoint
        if previous is not None:
            previous.close()  # first: the new address may be the old one (a changed refresh)
            self.endpoint = None
        try:
            await self.start(new)
        except StartupError as exc:
            if previous is not None:
                await self.start(old)
            return [f"stats not applied, the old endpoint stays: {exc}"]
        return []

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None
