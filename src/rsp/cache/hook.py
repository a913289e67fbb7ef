"""The one entry point the process start-up uses: the cache filters of each listener, or None when the config
names no cache (then nothing of the cache, LMDB included, is even imported)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rsp.config.model import Config, Listener
from rsp.pipeline.phases import Filter


def cache_hook(config: Config) -> Callable[[Listener], list[Filter]] | None:
    if not config.caches:
        return None
    from rsp.cache.wiring import cache_filters_for  # imports lmdb: only when a cache is configured

    return cache_filters_for(config)


def cache_figures(config: Config) -> dict[str, dict[str, Any]]:
    """This process's figures of each configured cache (rsp.cache.wiring.figures), {} without caches."""
    if not config.caches:
        return {}
    from rsp.cache.wiring import figures

    return figures()
