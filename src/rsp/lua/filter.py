"""LuaFilter: the config's Lua handlers as a pipeline filter (rsp.pipeline.phases).

A listener (or route) gets one LuaFilter with, per phase, the most specific handler: route over listener over
the top level, as nginx's *_by_lua directives inherit. The filter's class overrides exactly the phases it has
handlers for, so `phases_of` (and the Chain) calls it for those only: a phase without a handler costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final, cast

from rsp.config.model import LuaSettings
from rsp.errors import ScriptError
from rsp.lua.engine import Compiled, LuaEngine
from rsp.lua.host import CallState
from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import CONTINUE, PHASES, REQUEST_PHASES, ExchangeView, Filter, Verdict

# Where a routed filter keeps the index of the route an exchange matched (found once, after rewrite).
ROUTE_KEY: Final = "rsp.lua.route"
NO_ROUTE: Final = -1


class LuaFilter(Filter):
    """Base of the generated per-phase-set classes (see `lua_filter`). `routes`, when given, are the handler
    sets of routes with their own `lua` table, and `route_of` finds an exchange's route (its index, or
    NO_ROUTE) from the request as routing sees it after rewrite."""

    name = "lua"

    def __init__(self, engine: LuaEngine, handlers: dict[str, Compiled],
                 routes: dict[int, dict[str, Compiled]] | None = None,
                 route_of: Callable[[ExchangeView], int] | None = None) -> None:
        self.engine = engine
        self.handlers = handlers
        self.routes = routes or {}
        self.route_of = route_of
        if route_of is None:
            # The request phases' handlers called straight from the chain (the instance's attribute comes
            # before the class's method): the compiled engine, without a Python frame of this module between.
            for phase in REQUEST_PHASES:
                compiled = handlers.get(phase)
                if compiled is not None:
                    self.__dict__[phase] = partial(engine.run, compiled, phase)

    def handler(self, exchange: ExchangeView, phase: str) -> Compiled | None:
        if self.route_of is None:
            return self.handlers.get(phase)
        index = exchange.ctx.get(ROUTE_KEY)
        if not isinstance(index, int):
            index = self.route_of(exchange) if phase != "rewrite" else NO_ROUTE
            if phase != "rewrite":
                exchange.ctx[ROUTE_KEY] = index
        return self.routes.get(index, self.handlers).get(phase)


def _rewrite(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    handler = self.handlers.get("rewrite") if self.route_of is None else self.handler(exchange, "rewrite")
    return CONTINUE if handler is None else self.engine.run(handler, "rewrite", exchange)


def _access(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    handler = self.handlers.get("access") if self.route_of is None else self.handler(exchange, "access")
    return CONTINUE if handler is None else self.engine.run(handler, "access", exchange)


def _balancer(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    handler = self.handlers.get("balancer") if self.route_of is None else self.handler(exchange, "balancer")
    return CONTINUE if handler is None else self.engine.run(handler, "balancer", exchange)


def _header_filter(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    handler = self.handlers.get("header_filter") if self.route_of is None else self.handler(exchange, "header_filter")
    if handler is None:
        return CONTINUE
    verdict = self.engine.run_sync(handler, CallState(exchange, "header_filter"))
    if isinstance(verdict, LocalReply) and verdict.response.status >= 500:
        # The head is not sent yet: the pipeline answers 500 for a header_filter that raises (the engine has
        # logged the Lua error with its file and line).
        raise ScriptError(f"Lua header_filter failed ({handler.handler.key or handler.handler.path})")
    return CONTINUE


def _body_filter(self: LuaFilter, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
    handler = self.handlers.get("body_filter") if self.route_of is None else self.handler(exchange, "body_filter")
    if handler is None:
        return chunk
    state = CallState(exchange, "body_filter")
    state.chunk = chunk
    state.last = last
    self.engine.run_sync(handler, state)
    return state.chunk


def _log(self: LuaFilter, exchange: ExchangeView) -> None:
    handler = self.handlers.get("log") if self.route_of is None else self.handler(exchange, "log")
    if handler is not None:
        self.engine.run_sync(handler, CallState(exchange, "log"))


_METHODS: Final[dict[str, Any]] = {"rewrite": _rewrite, "access": _access, "balancer": _balancer,
                                   "header_filter": _header_filter, "body_filter": _body_filter, "log": _log}
_CLASSES: dict[frozenset[str], type[LuaFilter]] = {}


def lua_filter(engine: LuaEngine, handlers: dict[str, Compiled],
               routes: dict[int, dict[str, Compiled]] | None = None,
               route_of: Callable[[ExchangeView], int] | None = None) -> LuaFilter:
    """A LuaFilter whose class overrides exactly the phases some handler set has."""
    phases = frozenset(handlers).union(*(set(r) for r in (routes or {}).values()))
    cls = _CLASSES.get(phases)
    if cls is None:
        namespace: dict[str, Any] = {phase: _METHODS[phase] for phase in PHASES if phase in phases}
        cls = cast(type[LuaFilter], type(f"LuaFilter_{'_'.join(sorted(phases))}", (LuaFilter,), namespace))
        _CLASSES[phases] = cls
    return cls(engine, handlers, routes, route_of)


def filter_for(engine: LuaEngine, *levels: LuaSettings | None) -> LuaFilter | None:
    """The filter for one place (levels: top, listener[, route]), or None when no level has a handler."""
    handlers = engine.resolve(levels, PHASES)
    return lua_filter(engine, handlers) if handlers else None


def routed_filter_for(engine: LuaEngine, top: LuaSettings | None, listener: LuaSettings | None,
                      routes: list[LuaSettings | None], route_of: Callable[[ExchangeView], int]) -> LuaFilter | None:
    """A listener's filter when routes have their own handlers: per exchange, the matched route's set (route
    over listener over top level), else the listener's."""
    if not any(r is not None for r in routes):
        return filter_for(engine, top, listener)
    base = engine.resolve((top, listener), PHASES)
    per_route = {i: engine.resolve((top, listener, r), PHASES) for i, r in enumerate(routes) if r is not None}
    if not base and not any(per_route.values()):
        return None
    return lua_filter(engine, base, per_route, route_of)


__all__ = ["CONTINUE", "LuaFilter", "filter_for", "lua_filter"]
