"""The Python half of the ngx API: the functions rsp.lua.prelude calls as `B.name(...)`.

Each reads or changes the call the engine runs now (`engine.current`: the exchange, the phase, what the
handler said). Strings cross as bytes (the runtime has no encoding: Lua strings are bytes). A function that
must wait creates a Waiter, stores it as `engine.pending` and returns WAIT; the Lua half then yields to the
driver. The ngx.req functions are rsp.lua.ngx_req's NgxReq, in the same `B` table.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Callable
from typing import Any, Final

from rsp.errors import ScriptError
from rsp.lua import ngx_text
from rsp.lua.cosocket import Cosockets
from rsp.lua.host import CallState, LuaHost, Waiter
from rsp.lua.ngx_req import REQUEST_PHASES, NgxReq, call_state, exchange_state, lua_values, text_of
from rsp.lua.ngx_vars import snapshot, variable
from rsp.lua.shared_lua import BoundIncr, SharedIncr, shared_call, shared_store
from rsp.pipeline.cache_vars import CACHE_VARIABLES, cache_var, set_cache_var
from rsp.pipeline.messages import UNKNOWN_LENGTH, header_set, header_values

# ngx.log's levels (ngx.STDERR .. ngx.DEBUG) as Python logging levels.
_LEVELS: Final = (logging.CRITICAL, logging.CRITICAL, logging.CRITICAL, logging.CRITICAL, logging.ERROR,
                  logging.WARNING, logging.INFO, logging.INFO, logging.DEBUG)
_LEVEL_NAMES: Final = ("stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
# cjson refuses deeper nesting (its default encode_max_depth / decode_max_depth is 1000).
MAX_JSON_DEPTH: Final = 1000
# A local answer is held whole before it is sent (rsp has no streamed ngx.print): its bound, so that a handler
# printing in a loop fails instead of filling the worker's memory outside the Lua heap's cap.
MAX_OUTPUT: Final = 16 * 1024 * 1024

log = logging.getLogger("rsp.lua")


class Bridge:
    def __init__(self, engine: LuaHost, cosockets: Cosockets, clock: Callable[[], float] | None) -> None:
        self.engine = engine
        self.cosockets = cosockets
        self.clock = clock or time.time
        self.wait_marker = engine.wait_marker
        self.req = NgxReq(engine)  # the ngx.req functions (rsp.lua.ngx_req)

    def table(self) -> Any:
        """The `B` table the prelude receives: every public method, this one's and NgxReq's, by name."""
        entries: dict[bytes, Any] = {}
        for part in (self, self.req):
            for n in dir(part):
                if not n.startswith("_") and n not in ("engine", "cosockets", "clock", "table", "req", "wait_marker"):
                    entries[n.encode()] = getattr(part, n)
        entries[b"wait_marker"] = self.wait_marker
        return self.engine.lua.table_from(entries)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _state(self) -> CallState:
        return call_state(self.engine)

    def _exchange_state(self, what: str) -> CallState:
        return exchange_state(self.engine, what)

    def _lua_list(self, items: list[Any]) -> Any:
        return self.engine.lua.table_from(items)

    # ---- variables, ctx, status, output, log ----------------------------------------------------------

    def var(self, name: Any) -> bytes | None:
        # per request and per variable: the shortest path (no helper calls)
        state = self.engine.current
        exchange = state.exchange if state is not None else None
        if exchange is None:
            self._exchange_state("ngx.var")  # raises the error that says where
            return None
        key = name if isinstance(name, bytes) else text_of(name)
        if key in CACHE_VARIABLES:  # rsp's own, for the response cache (rsp.pipeline.cache_vars)
            return cache_var(exchange.ctx, key)
        return variable(exchange, key)

    def var_snapshot(self) -> tuple[bytes | bool | None, ...]:
        """ngx_vars.SNAPSHOT's values, as many Lua values (the prelude keeps them for the step)."""
        state = self.engine.current
        exchange = state.exchange if state is not None else None
        if exchange is None:
            self._exchange_state("ngx.var")  # raises the error that says where
            return ()
        return snapshot(exchange)

    def var_set(self, name: bytes, value: bytes | None) -> None:
        if name == b"rsp_pool":
            # rsp's own variable: the pool this exchange goes to (nginx would `set $upstream` and proxy_pass it)
            state = self._exchange_state("ngx.var.rsp_pool")
            assert state.exchange is not None
            if state.phase not in REQUEST_PHASES:
                raise ScriptError(f"ngx.var.rsp_pool cannot be changed in {state.phase}")
            pool = (value or b"").decode("utf-8", "replace")
            if self.engine.pools is not None and pool not in self.engine.pools:
                raise ScriptError(f"no pool named '{pool}' (ngx.var.rsp_pool)")
            state.exchange.pool = pool
            return
        if name in CACHE_VARIABLES:  # rsp's own, for the response cache (rsp.pipeline.cache_vars)
            state = self._exchange_state(f"ngx.var.{name.decode('latin-1')}")
            assert state.exchange is not None
            error = set_cache_var(state.exchange.ctx, state.phase, name, value)
            if error is not None:
                raise ScriptError(error)
            return
        raise ScriptError(f"variable \"{name.decode('latin-1')}\" cannot be changed in rsp")

    def ctx(self) -> Any:
        state = self._exchange_state("ngx.ctx")
        assert state.exchange is not None
        ctx = state.exchange.ctx
        table = ctx.get("rsp.lua.ctx")
        if table is None:
            table = self.engine.new_table()
            ctx["rsp.lua.ctx"] = table
        return table

    def ctx_set(self, table: Any) -> None:
        state = self._state()
        if state.exchange is not None:  # (a timer's ngx.ctx lives for its call only)
            state.exchange.ctx["rsp.lua.ctx"] = table

    def status_get(self) -> int:
        state = self._state()
        ex = state.exchange
        if ex is not None and state.phase not in REQUEST_PHASES:
            if ex.response is not None:
                return ex.response.status
            return ex.status
        return state.reply_status

    def status_set(self, status: int | None) -> None:
        state = self._state()
        if status is None:
            raise ScriptError("ngx.status must be a number")
        ex = state.exchange
        if ex is not None and ex.response is not None and state.phase == "header_filter":
            ex.response.status = int(status)
            ex.response.changed = True
        elif state.phase in REQUEST_PHASES:
            state.reply_status = int(status)
        else:
            raise ScriptError(f"ngx.status cannot be changed in {state.phase} (the head is sent)")

    def output(self, data: bytes) -> None:
        state = self._state()
        if state.phase not in REQUEST_PHASES:
            raise ScriptError(f"ngx.say / ngx.print are not allowed in {state.phase}")
        state.output.append(data)
        state.output_size += len(data)
        if state.output_size > MAX_OUTPUT:
            raise ScriptError(f"ngx.say / ngx.print: the answer exceeds {MAX_OUTPUT} bytes")

    def log(self, level: Any, where: bytes, message: bytes) -> None:
        index = int(level) if isinstance(level, int | float) and 0 <= level < len(_LEVELS) else 4
        state = self.engine.current
        phase = state.phase if state is not None else "?"
        log.log(_LEVELS[index], "[lua] %s: %s (%s, %s)", self.engine.restore(where.decode("utf-8", "replace")),
                message.decode("utf-8", "replace"), _LEVEL_NAMES[index], phase)

    # ---- headers --------------------------------------------------------------------------------------

    def header_get(self, name: bytes) -> Any:
        state = self._state()
        key = name.lower().replace(b"_", b"-")
        ex = state.exchange
        if ex is not None and ex.response is not None and state.phase not in REQUEST_PHASES:
            return self._lua_list(header_values(ex.response.headers, key))
        return self._lua_list(header_values(state.reply_headers, key))

    def header_set(self, name: bytes, value: Any) -> None:
        state = self._state()
        key = ngx_text.safe_header_name(name).lower().replace(b"_", b"-")
        values = lua_values(self.engine, value)
        ex = state.exchange
        if ex is not None and ex.response is not None and state.phase == "header_filter":
            target = ex.response.headers
            ex.response.changed = True
            if key == b"content-length":
                ex.response.body_length = int(values[0]) if values and values[0].isdigit() else UNKNOWN_LENGTH
                return
        elif state.phase in REQUEST_PHASES:
            target = state.reply_headers
        else:
            raise ScriptError(f"ngx.header cannot be changed in {state.phase} (the head is sent)")
        header_set(target, key, None)
        target.extend((key, v) for v in values)

    # ---- body_filter ------------------------------------------------------------------------------------

    def arg_get(self, index: Any) -> Any:
        state = self._state()
        if state.phase != "body_filter":
            return None
        if index == 1:
            return state.chunk
        if index == 2:
            return state.last
        return None

    def arg_set(self, index: Any, value: Any) -> None:
        state = self._state()
        if state.phase != "body_filter":
            raise ScriptError("ngx.arg is only writable in body_filter")
        if index == 1:
            state.chunk = b"" if value is None else text_of(value)
        elif index == 2:
            state.last = bool(value)

    # ---- time and text ----------------------------------------------------------------------------------

    def time(self) -> int:
        return int(self.clock())

    def now(self) -> float:
        return round(self.clock(), 3)

    def today(self) -> bytes:
        return ngx_text.today(self.clock())

    def localtime(self) -> bytes:
        return ngx_text.localtime(self.clock())

    def utctime(self) -> bytes:
        return ngx_text.utctime(self.clock())

    def http_time(self, seconds: Any) -> bytes:
        return ngx_text.http_time(float(seconds))

    def cookie_time(self, seconds: Any) -> bytes:
        return ngx_text.cookie_time(float(seconds))

    def parse_http_time(self, text: bytes) -> int | None:
        return ngx_text.parse_http_time(text)

    def encode_base64(self, data: bytes, no_padding: bool) -> bytes:
        return ngx_text.encode_base64(data, no_padding)

    def decode_base64(self, data: bytes) -> bytes | None:
        return ngx_text.decode_base64(data)

    def md5(self, data: bytes) -> bytes:
        return ngx_text.md5_hex(data)

    def md5_bin(self, data: bytes) -> bytes:
        return ngx_text.md5_bin(data)

    def sha1_bin(self, data: bytes) -> bytes:
        return ngx_text.sha1_bin(data)

    def crc32(self, data: bytes) -> int:
        return zlib.crc32(data)

    def escape_uri(self, data: bytes) -> bytes:
        return ngx_text.escape_uri(data)

    def unescape_uri(self, data: bytes) -> bytes:
        return ngx_text.unescape_uri(data)

    def quote_sql_str(self, data: bytes) -> bytes:
        return ngx_text.quote_sql_str(data)

    def decode_args(self, query: bytes, max_args: Any) -> Any:
        decoded = ngx_text.decode_args(query, int(max_args or 0))
        out: dict[bytes, Any] = {}
        for key, values in decoded.items():
            if values is True:
                out[key] = True
            elif isinstance(values, list):
                out[key] = values[0] if len(values) == 1 else self._lua_list(values)
        return self.engine.lua.table_from(out)

    def encode_args(self, items: Any) -> bytes:
        pairs: list[tuple[bytes, bytes | bool | list[bytes]]] = []
        for i in range(1, len(items) + 1):
            name, value = items[i][1], items[i][2]
            if isinstance(value, bool):
                pairs.append((name, value))
            elif self.engine.lupa.lua_type(value) == "table":
                pairs.append((name, [value[j] for j in range(1, len(value) + 1)]))
            else:
                pairs.append((name, value))
        return ngx_text.encode_args(pairs)

    # ---- ngx.re -----------------------------------------------------------------------------------------

    def _captures(self, found: Any) -> Any:
        caps: dict[Any, Any] = {0: found.group(0)}
        for i in range(1, (found.re.groups or 0) + 1):
            value = found.group(i)
            caps[i] = value if value is not None else False
        for name, index in found.re.groupindex.items():
            caps[name.encode()] = caps[index]
        return self.engine.lua.table_from(caps)

    def re_match(self, subject: bytes, regex: bytes, options: bytes, pos: Any) -> tuple[Any, ...]:
        try:
            found = ngx_text.regex_search(subject, regex, options, int(pos))
        except ngx_text.RegexError as exc:
            return (None, str(exc).encode())
        if found is None:
            return (None,)
        return (self._captures(found), found.start() + 1, found.end())

    def re_find(self, subject: bytes, regex: bytes, options: bytes, pos: Any, nth: Any) -> tuple[Any, ...]:
        try:
            found = ngx_text.regex_search(subject, regex, options, int(pos))
        except ngx_text.RegexError as exc:
            return (None, str(exc).encode())
        if found is None:
            return (None,)
        n = int(nth or 0)
        if n > (found.re.groups or 0) or found.start(n) < 0:
            return (None,)
        return (found.start(n) + 1, found.end(n))

    def re_all(self, subject: bytes, regex: bytes, options: bytes, count: Any) -> tuple[Any, ...]:
        matches: list[Any] = []
        try:
            for found in ngx_text.regex_iter(subject, regex, options):
                matches.append(self.engine.lua.table_from(
                    {b"caps": self._captures(found), b"from": found.start() + 1, b"to": found.end()}))
                if count and len(matches) >= int(count):
                    break
        except ngx_text.RegexError as exc:
            return (None, str(exc).encode())
        return (self._lua_list(matches),)

    def re_sub(self, subject: bytes, regex: bytes, template: bytes, options: bytes, count: Any) -> tuple[Any, ...]:
        try:
            return ngx_text.regex_sub(subject, regex, template, options, int(count or 0))
        except ngx_text.RegexError as exc:
            return (None, None, str(exc).encode())

    # ---- cjson ------------------------------------------------------------------------------------------

    def json_encode(self, value: Any) -> tuple[Any, ...]:
        try:
            return (json.dumps(self._to_json(value, 0), separators=(",", ":"), ensure_ascii=False).encode(),)
        except (ValueError, TypeError) as exc:
            return (None, f"Cannot serialise: {exc}".encode())

    def _to_json(self, value: Any, depth: int) -> Any:
        if depth > MAX_JSON_DEPTH:
            raise ValueError("excessive nesting")
        kind = self.engine.lupa.lua_type(value)
        if kind == "table":
            keys = list(value.keys())
            if keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys) and \
                    sorted(keys) == list(range(1, len(keys) + 1)):
                return [self._to_json(value[i], depth + 1) for i in range(1, len(keys) + 1)]
            return {text_of(k).decode("utf-8", "replace"): self._to_json(v, depth + 1) for k, v in value.items()}
        if kind == "userdata":
            return None  # ngx.null / cjson.null: the only userdata a handler holds
        if kind is not None:
            raise TypeError(f"type '{kind}' is not supported")
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
        return value

    def json_decode(self, text: bytes) -> tuple[Any, ...]:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return (None, f"Expected value but found invalid token: {exc}".encode())
        return (self._from_json(data),)

    def _from_json(self, data: Any) -> Any:
        if data is None:
            return self.engine.null
        if isinstance(data, str):
            return data.encode("utf-8")
        if isinstance(data, list):
            return self.engine.lua.table_from([self._from_json(v) for v in data])
        if isinstance(data, dict):
            return self.engine.lua.table_from({k.encode("utf-8"): self._from_json(v) for k, v in data.items()})
        return data

    # ---- ngx.balancer -----------------------------------------------------------------------------------

    def _balancer_state(self, what: str) -> CallState:
        state = self._exchange_state(what)
        if state.phase != "balancer":
            raise ScriptError(f"{what} is only allowed in balancer")
        return state

    def set_peer(self, host: bytes, port: Any) -> tuple[Any, ...]:
        ex = self._balancer_state("ngx.balancer.set_current_peer").exchange
        assert ex is not None
        if not isinstance(port, int | float) or not 0 < int(port) < 65536:
            return (None, b"bad port")
        ex.peer = (host.decode("ascii", "replace"), int(port))
        return (True,)

    def set_more_tries(self, count: Any) -> tuple[Any, ...]:
        ex = self._balancer_state("ngx.balancer.set_more_tries").exchange
        assert ex is not None
        ex.more_tries = max(0, int(count or 0))
        return (True,)

    def last_failure(self) -> tuple[Any, ...]:
        ex = self._balancer_state("ngx.balancer.get_last_failure").exchange
        assert ex is not None
        if not ex.tries:
            return (None,)
        # OpenResty's state names: "failed" (connect error, timeout) or "next" (a bad response).
        failure = ex.last_failure
        return (b"next" if failure == "bad response" else b"failed", ex.upstream_status or 502,
                failure.encode())

    def set_timeouts(self, connect: Any, send: Any, read: Any) -> tuple[Any, ...]:
        ex = self._balancer_state("ngx.balancer.set_timeouts").exchange
        assert ex is not None
        values: list[float] = []
        for name, value in (("connect", connect), ("send", send), ("read", read)):
            # as lua-resty-core: seconds, nil for the default, else a positive number
            if value is None:
                values.append(0.0)
            elif isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                values.append(float(value))
            else:
                raise ScriptError(f"ngx.balancer.set_timeouts: bad {name} timeout")
        ex.set_timeouts(values[0], values[1], values[2])
        return (True,)

    # ---- timers, sleep ----------------------------------------------------------------------------------

    def sleep(self, seconds: Any) -> Any:
        state = self._state()
        if state.phase not in REQUEST_PHASES and state.phase != "timer":
            raise ScriptError(f"ngx.sleep is disabled in {state.phase}")
        waiter = Waiter()
        loop = self.engine.loop or _running_loop()
        loop.call_later(max(0.0, float(seconds)), waiter.done)
        self.engine.pending = waiter
        return self.wait_marker

    def timer(self, delay: Any, function: Any, every: bool, args: Any) -> tuple[Any, ...]:
        if self.engine.lupa.lua_type(function) != "function":
            return (None, b"bad argument #2: function expected")
        if every and float(delay) <= 0:
            return (None, b"bad argument #1: delay must be above 0 for ngx.timer.every")
        self.engine.start_timer(float(delay), function, every, args)
        return (True,)

    def timers_running(self) -> int:
        return 0

    def timers_pending(self) -> int:
        return self.engine.timers

    # ---- workers ----------------------------------------------------------------------------------------

    def worker_id(self) -> int:
        return self.engine.worker_id

    def worker_count(self) -> int:
        return self.engine.worker_count

    def worker_pid(self) -> int:
        return os.getpid()

    # ---- ngx.shared ---------------------------------------------------------------------------------------

    def shared_exists(self, name: bytes) -> bool:
        store = self.engine.shared
        return store is not None and store.has(name.decode("ascii", "replace"))

    def shared(self, op: bytes, name: bytes, *args: Any) -> tuple[Any, ...]:
        return shared_call(self.engine, op.decode("ascii"), name.decode("ascii"), args)

    def shared_incr_for(self, name: bytes) -> Callable[..., Any]:
        """A dictionary's incr, the per-request call of a counter, bound to its store and name once (the
        prelude calls it with only the handler's arguments: rsp.lua.shared_lua.SharedIncr)."""
        text = name.decode("ascii")
        return SharedIncr(shared_store(self.engine, text), text).incr

    def shared_incr_bound(self, name: bytes, value: Any, init: Any, init_ttl: Any) -> Callable[[Any], Any]:
        """A dictionary's incr with the numbers a handler repeats fixed, called with the key alone (the prelude
        binds only numbers: rsp.lua.shared_lua.BoundIncr)."""
        text = name.decode("ascii")
        return BoundIncr(SharedIncr(shared_store(self.engine, text), text), float(value),
                         None if init is None else float(init), 0.0 if init_ttl is None else float(init_ttl)).incr

    # ---- cosockets --------------------------------------------------------------------------------------

    def sock_new(self) -> int:
        return self.cosockets.new()

    def sock(self, op: bytes, handle: Any, *args: Any) -> Any:
        return self.cosockets.call(op.decode("ascii"), int(handle), args)

    # ---- require ----------------------------------------------------------------------------------------

    def chunk_token(self, path: bytes) -> bytes:
        return self.engine.token(path.decode()).encode()

    def restore(self, message: bytes) -> bytes:
        return self.engine.restore(message.decode("utf-8", "replace")).encode()

    def find_module(self, name: bytes) -> tuple[Any, ...]:
        relative = name.decode("utf-8", "replace").replace(".", "/")
        tried: list[str] = []
        for pattern in self.engine.package_path:
            path = pattern.replace("?", relative)
            tried.append(path)
            try:
                with open(path, "rb") as fh:
                    return (path.encode(), fh.read())
            except OSError:
                continue
        return (None, "".join(f"\n\tno file '{p}'" for p in tried).encode())


def _running_loop() -> Any:
    import asyncio
    return asyncio.get_event_loop()
