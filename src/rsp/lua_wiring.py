"""Lua handlers wired into the listeners (beside server.py, as tls_wiring.py): the worker's LuaEngine, its
handle on the machine's shared dictionaries, and the `filters_for` callback Server takes.

Who does what across processes: the master (or the single process) creates the shared dictionaries' LMDB
environment before any worker starts (`prepare_shared`: empty at start, kept on reload as nginx keeps its
zones); each worker builds its own runtime and opens the environment after it started (`lua_filters`), since
neither a Lua state nor an LMDB environment may cross a fork. A reload starts workers with the new config:
new exchanges run the new code, the old workers finish theirs on the old.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from rsp.config.model import Config, Listener
from rsp.lua.engine import LuaEngine
from rsp.lua.filter import NO_ROUTE, routed_filter_for
from rsp.lua.shared_dict import SharedStore, default_store_dir, prepare_store
from rsp.pipeline.phases import ExchangeView, Filter
from rsp.routes.router import Router


def uses_lua(config: Config) -> bool:
    return (config.lua is not None or any(lst.lua is not None for lst in config.listeners)
            or any(route.lua is not None for route in config.routes))


def store_dir(config: Config) -> str:
    if config.lua is not None and config.lua.shared_dir:
        return config.lua.shared_dir
    return default_store_dir(config.path, config.sandbox.runtime_dir)


def prepare_shared(config: Config, *, fresh: bool) -> None:
    """Create the machine's dictionaries (before workers start). `fresh`: emptied, as at start."""
    if config.lua is not None and config.lua.shared:
        prepare_store(store_dir(config), dict(config.lua.shared), fresh=fresh)


def _route_index(config: Config) -> Callable[[ExchangeView], int]:
    # The routing rules themselves, each naming its own index instead of its pool: the same first-match rule
    # the session applies, so a route's handlers run exactly for the exchanges routed by it.
    router = Router([dataclasses.replace(route, pool=str(i)) for i, route in enumerate(config.routes)], "")

    def route_of(exchange: ExchangeView) -> int:
        request = exchange.request
        found = router.match(request.authority, request.path, request.method)
        return NO_ROUTE if found is None else int(found)
    return route_of


def lua_filters(config: Config, loop: asyncio.AbstractEventLoop, *, worker_id: int = 0
                ) -> Callable[[Listener], list[Filter]] | None:
    """In a worker (or the single process): build the runtime, run init and init_worker, and return the
    callback that gives each HTTP listener its Lua filter. None when the config has no Lua."""
    if not uses_lua(config):
        return None
    top = config.lua
    shared = SharedStore(store_dir(config), dict(top.shared)) if top is not None and top.shared else None
    engine = LuaEngine(top, shared=shared, loop=loop, worker_id=worker_id, worker_count=config.process.workers,
                       pools=frozenset(config.pools))
    if top is not None:
        # OpenResty runs init in the master before the fork; rsp's workers do not share a Lua state, so each
        # runs it, then init_worker (docs/lua.md).
        for phase in ("init", "init_worker"):
            handler = top.handler(phase)
            if handler is not None:
                engine.run_once(handler)
    route_of = _route_index(config)
    route_settings = [route.lua for route in config.routes]

    def filters_for(listener: Listener) -> list[Filter]:
        flt = routed_filter_for(engine, top, listener.lua, route_settings, route_of)
        return [flt] if flt is not None else []
    return filters_for
