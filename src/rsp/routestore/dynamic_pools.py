"""One PoolRuntime per distinct backend set found in Redis, built from the template pool's settings.

Hosts that list the same backends share a pool, so the balancer, the health checks, passive ejection and
the upstream keep-alive connections are per backend set, as they would be for a static pool. A pool is
referenced by the hosts whose route names its set; one with no reference (and no request in flight) for
RETIRE_AFTER seconds is retired. Creating more than MAX_DYNAMIC_POOLS pools first retires unreferenced
ones early; if every pool is referenced, the new set is refused (the host answers the missing status).

The pools live in the server's `pools` mapping (name `redis:<backends>`) so that the runtime API's
`show backends`, the housekeeping tick (passive ejection cool-downs) and any snapshot of the mapping (the
metrics) see them like static pools.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from rsp.config.model import Backend, Pool
from rsp.proxy.pools import BackendTls, PoolRuntime

# An unreferenced pool lives this long: a route flapping back to the same set keeps its health state and
# its idle connections; longer would only hold file descriptors for sets no route names.
RETIRE_AFTER: Final = 60.0
# Distinct backend sets at once. Each pool costs a balancer, records, idle connections and possibly health
# checks; 10,000 covers a large hosting platform (apps share backends) and bounds a table gone wrong.
MAX_DYNAMIC_POOLS: Final = 10_000
POOL_NAME_PREFIX: Final = "redis:"

BackendSet = tuple[Backend, ...]


def backend_set(backends: tuple[Backend, ...]) -> BackendSet:
    """The canonical (sorted, deduplicated) form: the same members in another order are the same pool."""
    return tuple(sorted(set(backends), key=lambda b: (b.host, b.port, b.name)))


def pool_name(backends: BackendSet) -> str:
    return POOL_NAME_PREFIX + ",".join(b.label for b in backends)


class DynamicPools:
    """on_created/on_retired: the wiring (idle pools, health checkers) the server attaches to a pool. `tls`:
    the template pool's, given to every pool built from it (its backends are reached as the template's are)."""

    def __init__(self, template: Pool, pools: dict[str, PoolRuntime], clock: Callable[[], float],
                 on_created: Callable[[PoolRuntime], None], on_retired: Callable[[PoolRuntime], None],
                 max_pools: int = MAX_DYNAMIC_POOLS, retire_after: float = RETIRE_AFTER,
                 tls: BackendTls | None = None) -> None:
        self.template = template
        self.tls = tls
        self.pools = pools
        self.clock = clock
        self.on_created = on_created
        self.on_retired = on_retired
        self.max_pools = max_pools
        self.retire_after = retire_after
        self.by_set: dict[BackendSet, PoolRuntime] = {}
        self.refs: dict[BackendSet, int] = {}
        self.unreferenced_since: dict[BackendSet, float] = {}

    def __len__(self) -> int:
        return len(self.by_set)

    def acquire(self, backends: BackendSet) -> PoolRuntime | None:
        """The pool of `backends` (canonical), referenced once more; None when the bound is reached."""
        pool = self.by_set.get(backends)
        if pool is None:
            if len(self.by_set) >= self.max_pools:
                self.retire_unused(force=True)
                if len(self.by_set) >= self.max_pools:
                    return None
            name = pool_name(backends)
            spec = dataclasses.replace(self.template, name=name, backends=backends)
            # Backends here are IP literals (the store resolved names first): no DNS on the loop.
            pool = PoolRuntime(spec, self.clock, self.tls)
            self.by_set[backends] = pool
            self.refs[backends] = 0
            self.pools[name] = pool
            self.on_created(pool)
        self.refs[backends] += 1
        self.unreferenced_since.pop(backends, None)
        return pool

    def release(self, backends: BackendSet) -> None:
        refs = self.refs.get(backends)
        if refs is None:
            return
        self.refs[backends] = refs - 1
        if refs == 1:
            self.unreferenced_since[backends] = self.clock()

    def retire_unused(self, force: bool = False) -> list[PoolRuntime]:
        """Retire pools unreferenced for retire_after (any unreferenced one when `force`) with nothing in
        flight: a request still using a pool's backend keeps it."""
        now = self.clock()
        retired = []
        for backends, since in list(self.unreferenced_since.items()):
            if not force and now - since < self.retire_after:
                continue
            pool = self.by_set[backends]
            if any(r.active for r in pool.records):
                continue
            del self.by_set[backends], self.refs[backends], self.unreferenced_since[backends]
            self.pools.pop(pool.name, None)
            self.on_retired(pool)
            retired.append(pool)
        return retired
