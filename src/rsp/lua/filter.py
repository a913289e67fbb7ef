"""LuaFilter: the config's Lua handlers as a pipeline filter (rsp.pipeline.phases).

A listener (or route) gets one LuaFilter with, per phase, the most specific handler: route over listener over
the top level, as nginx's *_by_lua directives inherit. The filter's class overrides exactly the phases it has
handlers for, so `phases_of` (and the Chain) calls it for those only: a phase without a handler costs nothing.
"""

from __future__ import annotations

from typing import Any, Final, cast

from rsp.config.model import LuaSettings
from rsp.lua.engine import CallState, Compiled, LuaEngine
from rsp.pipeline.phases import CONTINUE, PHASES, ExchangeView, Filter, Verdict


class LuaFilter(Filter):
    """Base of the generated per-phase-set classes (see `lua_filter`)."""

    name = "lua"

    def __init__(self, engine: LuaEngine, handlers: dict[str, Compiled]) -> None:
        self.engine = engine
        self.handlers = handlers


def _rewrite(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    return self.engine.run(self.handlers["rewrite"], exchange, "rewrite")


def _access(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    return self.engine.run(self.handlers["access"], exchange, "access")


def _balancer(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    return self.engine.run(self.handlers["balancer"], exchange, "balancer")


def _header_filter(self: LuaFilter, exchange: ExchangeView) -> Verdict:
    return self.engine.run_sync(self.handlers["header_filter"], CallState(exchange, "header_filter"))


def _body_filter(self: LuaFilter, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
    state = CallState(exchange, "body_filter")
    state.chunk = chunk
    state.last = last
    self.engine.run_sync(self.handlers["body_filter"], state)
    return state.chunk


def _log(self: LuaFilter, exchange: ExchangeView) -> None:
    self.engine.run_sync(self.handlers["log"], CallState(exchange, "log"))


_METHODS: Final[dict[str, Any]] = {"rewrite": _rewrite, "access": _access, "balancer": _balancer,
                                   "header_filter": _header_filter, "body_filter": _body_filter, "log": _log}
_CLASSES: dict[frozenset[str], type[LuaFilter]] = {}


def lua_filter(engine: LuaEngine, handlers: dict[str, Compiled]) -> LuaFilter:
    """A LuaFilter whose class overrides exactly the phases in `handlers`."""
    phases = frozenset(handlers)
    cls = _CLASSES.get(phases)
    if cls is None:
        namespace: dict[str, Any] = {phase: _METHODS[phase] for phase in PHASES if phase in phases}
        cls = cast(type[LuaFilter], type(f"LuaFilter_{'_'.join(sorted(phases))}", (LuaFilter,), namespace))
        _CLASSES[phases] = cls
    return cls(engine, handlers)


def filter_for(engine: LuaEngine, *levels: LuaSettings | None) -> LuaFilter | None:
    """The filter for one place (levels: top, listener[, route]), or None when no level has a handler."""
    handlers = engine.resolve(levels, PHASES)
    return lua_filter(engine, handlers) if handlers else None


__all__ = ["CONTINUE", "LuaFilter", "filter_for", "lua_filter"]
