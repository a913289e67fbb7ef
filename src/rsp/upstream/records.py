"""The mutable runtime record of one backend.

One `BackendRecord` exists per configured backend (per `rsp.config.model.Backend` of a pool). It sits on the
hot path: the balancer reads it on every pick and the proxy updates its counters on every connection, so it
uses `__slots__` and plain attributes.

Who writes what:
- the proxy: `active` (+1 on connect, -1 on close) and `total` (+1 on connect);
- the health checker (rsp.health.checker): `up` and `last_check`;
- the outlier detector (rsp.health.passive): `up` and `failures` (the proxy reports failures to it and does
  not touch `failures` itself);
- the runtime API: `draining` and `weight`;
- everyone above: the counters in `stats` (rsp.metrics.counters), which only rsp.metrics reads.
Whoever changes `up`, `draining` or `weight` calls the pool balancer's `update()` afterwards.
"""

from __future__ import annotations

from typing import Final

from rsp.config.model import Backend, Pool
from rsp.metrics.counters import BackendStats

STATE_UP: Final = "up"
STATE_DOWN: Final = "down"
STATE_DRAIN: Final = "drain"


class LoadWatcher:
    """Told each time a record's `active` changes: the balancers that keep their members ordered by load
    (rsp.balance.leastconn) instead of reading every member at each pick. A base class, not a Protocol: compiled,
    the call is a native method call on every connect and close."""

    __slots__ = ()

    def load_changed(self, record: BackendRecord) -> None:
        raise NotImplementedError


class BackendRecord:
    """Runtime state of one backend of pool `pool`, at position `index` (0-based) of `pool.backends`."""

    __slots__ = (
        "_active",
        "draining",
        "failures",
        "index",
        "last_check",
        "load_watcher",
        "max_conns",
        "name",
        "pool",
        "spec",
        "stats",
        "total",
        "up",
        "weight",
    )

    def __init__(self, spec: Backend, index: int, pool: str) -> None:
        self.spec = spec
        self.index = index
        self.pool = pool
        # The display name of logs and the runtime API: the configured name, else `pool/N` with N counted
        # from 1 like HAProxy's server ids (`web/1` is the first backend of pool `web`).
        self.name = spec.name or f"{pool}/{index + 1}"
        # HAProxy starts servers UP and lets the checks take them down; so do we.
        self.up = True
        self.draining = False
        self._active = 0
        # The balancer told of every change of `active` (set by rsp.balance.leastconn), else None.
        self.load_watcher: LoadWatcher | None = None
        self.total = 0
        self.failures = 0
        self.last_check = ""  # "" until the first active check: then "ok", "timeout", "status 500", ...
        self.weight = spec.weight  # effective weight; the runtime API may change it (then call update())
        # The spec's limit as an attribute of this compiled class: every pick reads it, and the spec is an
        # interpreted dataclass (a generic attribute lookup). The spec is frozen, so the copy stays true.
        self.max_conns = spec.max_conns
        self.stats = BackendStats()  # this process's counters (rsp.metrics)

    @property
    def active(self) -> int:
        """Connections open or opening to this backend (the proxy's +1 on connect, -1 on close)."""
        return self._active

    @active.setter
    def active(self, value: int) -> None:
        self._active = value
        watcher = self.load_watcher
        if watcher is not None:
            watcher.load_changed(self)

    def available(self) -> bool:
        """May take a new connection now: up, not draining, and below its connection limit."""
        return (
            self.up
            and not self.draining
            and (self.max_conns == 0 or self._active < self.max_conns)
        )

    @property
    def label(self) -> str:
        """`name address`, the way log lines name a backend (HAProxy's `server` lines do the same)."""
        return f"{self.name} {self.spec.address}"

    @property
    def status(self) -> str:
        """"up", "down" or "drain". Draining is an operator's decision and is shown even when the backend
        is also down (HAProxy shows its MAINT/DRAIN admin states over the operational state too)."""
        if self.draining:
            return STATE_DRAIN
        return STATE_UP if self.up else STATE_DOWN

    def snapshot(self) -> dict[str, object]:
        """A plain dict for the runtime API and the stats page."""
        return {
            "name": self.name,
            "address": self.spec.address,
            "state": self.status,
            "active": self.active,
            "total": self.total,
            "failures": self.failures,
            "last_check": self.last_check,
            "weight": self.weight,
            "backup": self.spec.backup,
        }

    def __repr__(self) -> str:
        return f"<BackendRecord {self.name} {self.spec.address} {self.status} active={self.active}>"


def records_for(pool: Pool) -> tuple[BackendRecord, ...]:
    """One fresh record per backend of `pool`, in declaration order."""
    return tuple(BackendRecord(spec, index, pool.name) for index, spec in enumerate(pool.backends))
