"""From the config's `caches` to filters: one CacheStore per cache name per process, and the default file of a
cache without `path`.

"Memory-backed" (no `path`) means a file in /dev/shm (tmpfs: RAM, never written to disk), named after the
user, the config file and the cache, so that every worker of one rsp, its restarted workers and its reloads
open the same store, and two rsp instances with different configs do not share one. Without /dev/shm, the
system's temporary directory is used instead (rsp.cache.memory_files, which also removes them when rsp
stops).
"""

from __future__ import annotations

from collections.abc import Callable

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.memory_files import default_path
from rsp.cache.selector import CacheSelector
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings, Config, Listener
from rsp.pipeline.phases import Filter

# name -> store, per process: every listener and route naming one cache shares its environment (LMDB allows
# one open per file per process).
_stores: dict[tuple[str, int], CacheStore] = {}
# name -> this process's filter of that cache, the latest built (what its figures are read from: metrics,
# `rsp admin cache stats`).
_filters: dict[str, CacheFilter] = {}


def store_path(settings: CacheSettings, config_path: str) -> str:
    return settings.path or default_path(config_path, settings.name)


def cache_store(settings: CacheSettings, config_path: str) -> CacheStore:
    """The process's store for this cache (opened lazily, on first use, in the process that uses it)."""
    path = store_path(settings, config_path)
    key = (path, settings.size)
    store = _stores.get(key)
    if store is None:
        # A reload may change the size: the old store object is dropped, the file (and its entries) kept.
        for old_key in [k for k in _stores if k[0] == path]:
            _stores.pop(old_key).close()
        store = _stores[key] = CacheStore(path, settings.size)
    return store


def cache_filter(config: Config, name: str) -> CacheFilter:
    """The filter for `cache = "NAME"` on a listener or a route."""
    settings = config.caches[name]
    return CacheFilter(settings, cache_store(settings, config.path))


def filters_by_name(config: Config) -> dict[str, CacheFilter]:
    """One filter per configured cache, its store opened in this process (StartupError when it cannot be)."""
    filters = {name: cache_filter(config, name) for name in config.caches}
    for flt in filters.values():
        flt.store.open()
    _filters.clear()
    _filters.update(filters)
    return filters


def figures() -> dict[str, dict[str, object]]:
    """This process's figures of each cache (CacheFilter.figures), for its metrics snapshot."""
    return {name: flt.figures() for name, flt in _filters.items()}


def cache_filters_for(config: Config) -> Callable[[Listener], list[Filter]]:
    """The cache's part of each HTTP listener's filter chain (rsp.server.Server's `filters_for`): nothing
    when neither the listener nor a route names a cache (the listener keeps its filter-free fast path), the
    listener's CacheFilter when no route names one, else a CacheSelector over the routes."""
    filters = filters_by_name(config)

    def for_listener(listener: Listener) -> list[Filter]:
        if listener.mode != "http":
            return []
        default = filters[listener.cache] if listener.cache else None
        if not any(route.cache for route in config.routes):
            return [default] if default is not None else []
        routed = tuple((route, filters[route.cache] if route.cache else default) for route in config.routes)
        return [CacheSelector(routed, default)]

    return for_listener
