"""What an operator does to a running machine's caches: purge URLs, ban by URL prefix or regex, read the store's
figures. One implementation for `rsp cache` (rsp.commands.cache, on the file, rsp running or not) and for the
runtime API's `cache ...` commands (rsp.master.machine_cache, in the master).

The store is one LMDB file per cache per machine that every worker maps (docs/cache.md), so acting on the file
is acting on every worker at once: nothing is sent to the workers. Each operation opens the store, acts and
closes it (`opened`): LMDB allows one open environment per file per process, and the master otherwise never
opens a cache (its workers do), so it holds nothing between commands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from rsp.cache.entry import primary_key
from rsp.cache.store import CacheStore
from rsp.cache.wiring import store_path
from rsp.config.model import Config
from rsp.errors import ConfigError


def url_key(url: str) -> bytes:
    """The cache's primary key of an absolute URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an absolute http(s) URL: {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return primary_key(parts.scheme.encode(), parts.netloc.encode("idna"), target.encode("latin-1"))


def prefix_key(url: str) -> bytes:
    """A URL prefix as a key prefix: like url_key, but an empty path stays empty (`http://host` bans it all)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an absolute http(s) URL prefix: {url!r}")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return primary_key(parts.scheme.encode(), parts.netloc.encode("idna"), rest.encode("latin-1"))


def ban_matcher(prefix: str | None, regex: str | None) -> Callable[[bytes], bool]:
    """What `ban` removes: keys starting with the prefix's key, or keys the regex finds a match in."""
    if prefix is not None:
        start = prefix_key(prefix)
        return lambda key: key.startswith(start)
    try:
        pattern = re.compile(regex or "")
    except re.error as exc:
        raise ConfigError(f"bad regex {regex!r}: {exc}") from exc
    return lambda key: pattern.search(key.decode("latin-1")) is not None


def chosen(config: Config, name: str | None) -> list[str]:
    """The caches an operation acts on: `name`, or every cache of the config."""
    if not config.caches:
        raise ConfigError(f"{config.path} defines no caches", path=config.path)
    if name is None:
        return sorted(config.caches)
    if name not in config.caches:
        raise ConfigError(f"{config.path} has no cache named {name!r} (it has {', '.join(sorted(config.caches))})",
                          path=config.path)
    return [name]


@contextmanager
def opened(config: Config, name: str) -> Iterator[CacheStore]:
    """Cache `name`'s store, opened for one operation and closed after it. Never creates a store: one made
    here would be one no rsp reads (a memory-backed store's file name holds the user's id: run as the user rsp
    runs as, or give the cache a path)."""
    settings = config.caches[name]
    store = CacheStore(store_path(settings, config.path), settings.size)
    if not os.path.exists(store.path):
        raise ConfigError(f"cache {name!r} has no store at {store.path} (has rsp run with this config, as "
                          "this user?)", path=config.path)
    store.open()
    try:
        yield store
    finally:
        store.close()


def purge(store: CacheStore, urls: list[bytes]) -> dict[str, int]:
    """Every variant of each URL (primary keys, url_key's) removed."""
    return {"purged": sum(store.delete(url) for url in urls)}


def ban(store: CacheStore, matches: Callable[[bytes], bool]) -> dict[str, int]:
    return {"banned": store.ban(matches)}


def store_figures(store: CacheStore) -> dict[str, Any]:
    """The machine-wide figures of one store: what every worker sees."""
    return {"entries": store.count(), "bytes": store.used(), "budget": store.budget, "path": store.path}
