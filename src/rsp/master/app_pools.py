"""The sandboxed apps in the master's pools: the layer above both joins an app to its pools when the sandbox
announces it ready, and takes it out when the sandbox says it is gone (rsp.sandbox.manager.Membership).

An app keeps one backend record per pool, made at its first readiness and put back on each later one, so
that its counters survive restarts; a reload builds new pools and the apps in rotation join them at once
(the apps themselves are not reloaded). Every change goes to the workers as backend state (`changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rsp.config.model import Backend
from rsp.proxy.pools import PoolRuntime
from rsp.upstream.records import BackendRecord


class AppPools:
    def __init__(self, pools: dict[str, PoolRuntime], changed: Callable[[], None]) -> None:
        self.pools = pools
        self.changed = changed
        self._offers: dict[str, list[tuple[str, Backend]]] = {}  # what each app offered when last ready
        self._records: dict[str, list[tuple[PoolRuntime, BackendRecord]]] = {}
        self._joined: set[str] = set()

    def ready(self, app: str, backends: Sequence[tuple[str, Backend]]) -> None:
        if app in self._joined:
            return
        self._offers[app] = list(backends)
        records = self._records.get(app)
        if records is None:
            # A pool the config does not have (anymore) is skipped: the app stays out of that rotation.
            self._records[app] = [(self.pools[name], self.pools[name].add_backend(backend))
                                  for name, backend in backends if name in self.pools]
        else:
            for pool, record in records:
                pool.rejoin(record)
        self._joined.add(app)
        self.changed()

    def gone(self, app: str) -> None:
        if app not in self._joined:
            return
        self._joined.discard(app)
        for pool, record in self._records.get(app, ()):
            pool.remove_backend(record, allow_empty=True)
        self.changed()

    def move_to(self, pools: dict[str, PoolRuntime]) -> None:
        """A reload built new pools: the apps in rotation join them now, and later joins and leaves act on them."""
        self.pools = pools
        joined = sorted(self._joined)
        self._records.clear()
        self._joined.clear()
        for app in joined:
            self.ready(app, self._offers[app])
