"""The filters of each HTTP listener, in the one order every process uses: a user's Lua handlers, then the
response cache (docs/architecture.md, "The request pipeline").

Request phases run the chain in this order, so Lua's rewrite and access run before the cache is looked up
(as in nginx, where the access phase precedes proxy_cache's lookup in the content phase). Response phases run
it backwards (rsp.pipeline.phases.Chain), so the cache sees the backend's response before a Lua header_filter
changes it (nginx stores the upstream's response, not what its header filters made of it) and Lua's
header_filter and body_filter see every response the client gets, cache hits included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rsp.cache.hook import cache_hook
from rsp.config.model import Config, Listener
from rsp.lua_wiring import lua_filters
from rsp.pipeline.phases import Filter


def filters_for(config: Config, loop: asyncio.AbstractEventLoop, *, worker_id: int = 0
                ) -> Callable[[Listener], list[Filter]] | None:
    """The callback that gives each HTTP listener its filters (Server(filters_for=...)); None when the config
    has neither Lua handlers nor a cache: the session then runs its no-filter path."""
    hooks = [hook for hook in (lua_filters(config, loop, worker_id=worker_id), cache_hook(config)) if hook is not None]
    if not hooks:
        return None

    def for_listener(listener: Listener) -> list[Filter]:
        return [flt for hook in hooks for flt in hook(listener)]
    return for_listener
