"""What the Python half of the ngx API (rsp.lua.bridge, rsp.lua.cosocket, rsp.lua.shared_lua) needs of the
worker's Lua engine, and the state of one handler call: the bottom of rsp.lua's handler half, so that its
imports point one way (engine -> bridge -> cosocket, shared_lua -> host; docs/architecture.md).

LuaHost is the narrow interface those modules see; rsp.lua.engine.LuaEngine implements it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from rsp.pipeline.phases import ExchangeView


class Waiter:
    """An operation a handler waits for: the bridge creates it, the I/O completes it with the values the
    waiting Lua call returns, and the engine's callback resumes the coroutine."""

    __slots__ = ("callback", "result")

    def __init__(self) -> None:
        self.callback: Callable[[tuple[Any, ...]], None] | None = None
        self.result: tuple[Any, ...] | None = None

    def done(self, *values: Any) -> None:
        if self.result is not None:
            return
        self.result = values
        if self.callback is not None:
            self.callback(values)


class CallState:
    """What one handler call sees through the ngx API: the exchange (None in a timer), the phase, and what the
    handler has said so far (output, status and headers of a local reply; the body chunk in body_filter)."""

    __slots__ = ("chunk", "exchange", "last", "output", "output_size", "phase", "reply_headers", "reply_status",
                 "sockets")

    def __init__(self, exchange: ExchangeView | None, phase: str) -> None:
        self.exchange = exchange
        self.phase = phase
        self.output: list[bytes] = []
        self.output_size = 0
        self.reply_status = 0
        self.reply_headers: list[tuple[bytes, bytes]] = []
        self.chunk = b""
        self.last = False
        self.sockets: list[int] | None = None  # cosockets this call opened: closed when it ends


class LuaHost(Protocol):
    """The engine as the ngx API's Python half sees it.

    current: the handler call running now (None between calls); pending: the operation the call waits on,
    set by the function that must wait (it then returns wait_marker, and the Lua half yields). lua / lupa: the
    runtime and lupa's module (lua_type, the error classes). null, new_table: made in the runtime at start.
    """

    current: CallState | None
    pending: Waiter | None
    lua: Any
    lupa: Any
    loop: asyncio.AbstractEventLoop | None
    pools: frozenset[str] | None
    shared: Any
    package_path: tuple[str, ...]
    worker_id: int
    worker_count: int
    timers: int
    null: Any
    new_table: Any
    wait_marker: Any

    def restore(self, message: str) -> str:
        """`message` with chunk tokens replaced by the files they stand for."""
    def token(self, path: str) -> str:
        """The chunk token of `path` (made at its first use)."""
    def start_timer(self, delay: float, function: Any, every: bool, args: Any) -> None:
        """ngx.timer.at / every: run `function` after `delay` seconds (again every `delay` when `every`)."""
