"""One Lua runtime per worker: the sandbox, the compiled handlers, and the driver of their coroutines.

A handler call is a coroutine (rsp.lua.prelude). `LuaEngine.run` starts it for one exchange and phase and
turns what it did into the pipeline's vocabulary: it finished (CONTINUE, or a LocalReply if it printed with
ngx.say or called ngx.exit with a status), it failed (500 and an error log line naming file and line: a Lua
error, the instruction budget, the memory cap), or it waits for I/O (SUSPEND; the engine resumes it from the
loop when the I/O completes and then calls exchange.resume() or exchange.answer(reply)).

Scripts are compiled once per runtime (per worker): handlers at start, modules at their first require.
A reload starts new workers with the new config, so new exchanges get the new code while the old workers
finish theirs on the old (docs/lua.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from rsp.config.model import LuaHandler, LuaSettings
from rsp.errors import ScriptError
from rsp.lua.bridge import Bridge
from rsp.lua.compile import LUPA, chunk_token, restore_paths
from rsp.lua.cosocket import Cosockets
from rsp.lua.host import CallState, Waiter
from rsp.lua.ngx_req import apply_edits
from rsp.lua.ngx_vars import snapshot, wanted_by
from rsp.lua.prelude import PRELUDE
from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import CONTINUE, SUSPEND, ExchangeView, Verdict

# What one handler call may run: about a tenth of a second of Lua on the interpreter; far above any honest
# handler (a routing handler runs a few hundred instructions), small enough that a runaway loop costs one
# slow request, not a stuck worker.
DEFAULT_INSTRUCTION_BUDGET: Final = 10_000_000
# The count hook fires every this many instructions: the budget's granularity, and its cost (one Lua call).
HOOK_EVERY: Final = 1000
# The Lua heap of one worker: lupa's allocator refuses more (an allocation beyond it fails with "not enough
# memory" in the handler that asked, which gets a 500).
DEFAULT_MEMORY_LIMIT: Final = 256 * 1024 * 1024
# "path:line: " at the start of a Lua error message
_POSITION: Final = re.compile(r"^\S+:\d+: ")
# Where an exchange keeps its Lua state in ExchangeView.ctx (shared by every filter: a namespaced key).
CTX_KEY: Final = "rsp.lua"
# Where an exchange keeps its ngx.ctx table (a Lua table) in ExchangeView.ctx.
CTX_TABLE: Final = "rsp.lua.ctx"
ERROR_STATUS: Final = 500
# LuaJIT's traces do not call count hooks, so with the JIT on a compiled loop would escape the budget: the
# handlers run on LuaJIT's interpreter (still several times faster than Lua 5.4's). Off while the prelude
# loads; the prelude switches it on once it can mark every chunk made from text as never to be compiled (its
# own functions are compiled: rsp/lua/prelude_sandbox.lua, `nojit`).
_JIT_OFF: Final = "if jit then jit.off() end"

log = logging.getLogger("rsp.lua")


class Compiled:
    """A compiled handler: the Lua function, where it came from, and `start`: the driver's function that runs
    it on a runner coroutine, taking only the exchange's ngx.ctx table (rsp.lua.prelude, driver.bind)."""

    __slots__ = ("function", "handler", "reads_vars", "request", "start", "wanted")

    def __init__(self, handler: LuaHandler, function: Any, start: Any, request: Any = None) -> None:
        self.handler = handler
        self.function = function
        self.start = start
        self.request = request  # the request phases' entry (ngx.req edits handed back, the snapshot passed)
        # A handler whose text reads ngx.var (or the headers) gets the variables' snapshot with its call (one
        # crossing fewer); any other handler, or a module it requires, takes it with a call of its own.
        self.reads_vars = "ngx.var" in handler.source or "get_headers" in handler.source
        # ... and of that snapshot only the values its text names (the others cost their conversion for nothing)
        self.wanted = wanted_by(handler.source)


def _deny_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python attribute access is disabled in rsp's Lua sandbox")


class LuaEngine:
    """The worker's Lua: build it once per process (after fork), then hand its filters to the listeners."""

    def __init__(self, top: LuaSettings | None, *, budget: int = DEFAULT_INSTRUCTION_BUDGET,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT, shared: Any = None,
                 loop: asyncio.AbstractEventLoop | None = None, worker_id: int = 0, worker_count: int = 1,
                 clock: Callable[[], float] | None = None, pools: frozenset[str] | None = None,
                 lupa_module: Any = None) -> None:
        self.top = top
        self.pools = pools  # the config's pool names, for ngx.var.rsp_pool (None: not checked)
        self.budget = budget
        self.loop = loop
        self.worker_id = worker_id
        self.worker_count = worker_count
        self.current: CallState | None = None
        self.pending: Waiter | None = None
        self.tokens: dict[str, str] = {}  # chunk token -> file path, for error messages
        self._token_of: dict[str, str] = {}
        self.shared = shared
        self.package_path = top.package_path if top is not None else ()
        # lupa_module: tests run the engine on Lua 5.4 too (the fallback where lupa has no LuaJIT)
        self.lupa = lupa_module or LUPA
        self.lua = self.lupa.LuaRuntime(register_eval=False, register_builtins=False, encoding=None,
                                   attribute_filter=_deny_attributes, max_memory=memory_limit,
                                   unpack_returned_tuples=True)
        self.lua.execute(_JIT_OFF.encode())
        self.wait_marker = self.lua.table()  # what an ngx function that must wait returns (rsp.lua.host)
        self.cosockets = Cosockets(self)
        self.bridge = Bridge(self, self.cosockets, clock)
        # named "=<rsp>" so that positions inside it are told apart from the handlers' (the budget's message
        # names the handler's line, not the ngx function it was in)
        setup = self.lua.eval(b"function(src) return assert(load(src, '=<rsp>')) end")(PRELUDE.encode())
        opts = self.lua.table_from({b"hook_every": HOOK_EVERY, b"budget": budget,
                                    b"package_path": ";".join(self.package_path).encode()})
        self.driver = setup(self.bridge.table(), opts)
        self._bind = self.driver[b"bind"]
        self._start_args = self.driver[b"start_args"]
        self._resume_lua = self.driver[b"resume"]
        self._compile = self.driver[b"compile"]
        self.null = self.driver[b"null"]
        self.new_table = self.driver[b"new_table"]
        self._collect_lua = self.lua.eval(b"function() collectgarbage() end")
        self._compiled: dict[tuple[str, str, int, str], Compiled] = {}
        self.timers = 0

    # ---- compiling --------------------------------------------------------------------------------------

    def token(self, path: str) -> str:
        token = self._token_of.get(path)
        if token is None:
            token = chunk_token(len(self._token_of) + 1)
            self._token_of[path] = token
            self.tokens[token] = path
        return token

    def restore(self, message: str) -> str:
        return restore_paths(message, self.tokens)

    def compile(self, handler: LuaHandler) -> Compiled:
        """Compile `handler` once per runtime (the same handler inherited by many listeners compiles once)."""
        key = (handler.phase, handler.path, handler.line, handler.source)
        done = self._compiled.get(key)
        if done is not None:
            return done
        token = self.token(handler.path)
        function, err = self._compile(handler.source.encode(), token.encode(), handler.kind.encode())
        if function is None:
            raise ScriptError(f"{self.restore(bytes(err).decode('utf-8', 'replace'))} (in {handler.key})")
        request, start = self._bind(function)
        compiled = Compiled(handler, function, start, request)
        self._compiled[key] = compiled
        return compiled

    def resolve(self, levels: Iterable[LuaSettings | None], phases: Iterable[str]) -> dict[str, Compiled]:
        """For each phase, the most specific level's handler (levels from the least to the most specific: top
        level, listener, route), compiled: nginx's inheritance of *_by_lua directives."""
        chosen: dict[str, LuaHandler] = {}
        for settings in levels:
            if settings is None:
                continue
            for handler in settings.handlers:
                chosen[handler.phase] = handler
        return {phase: self.compile(chosen[phase]) for phase in phases if phase in chosen}

    # ---- running ----------------------------------------------------------------------------------------

    def run_once(self, handler: LuaHandler) -> None:
        """init / init_worker: run to the end now (no exchange; ngx.timer may start work that waits)."""
        compiled = self.compile(handler)
        state = CallState(None, handler.phase)
        outcome = self._step(state, compiled, compiled.start, None)
        if isinstance(outcome, _Failure):
            raise ScriptError(outcome.message)

    def run(self, compiled: Compiled, phase: str, exchange: ExchangeView) -> Verdict:
        """Run one request-phase handler for `exchange`: CONTINUE, a LocalReply, or SUSPEND."""
        state = CallState(exchange, phase)
        # The common case inline (a handler that ends without output): one Lua call, nothing else.
        ctx = exchange.ctx
        previous = self.current
        self.current = state
        self.pending = None
        try:
            if compiled.reads_vars:
                # (its values as arguments one by one: a star-call builds a list)
                v = snapshot(exchange, compiled.wanted)
                result = compiled.request(ctx.get(CTX_TABLE), v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8])
            else:
                result = compiled.request(ctx.get(CTX_TABLE))
        except (self.lupa.LuaError, self.lupa.LuaMemoryError) as exc:
            result = self._raised(exc, compiled)
        finally:
            self.current = previous
        if type(result) is tuple and result[0] == b"req":
            # done, with the ngx.req.set_header / clear_header calls the Lua half recorded (rsp.lua.prelude)
            apply_edits(exchange.request, result, 2)
            result = result[1] if result[1] is not False else None
        if result is None or type(result) not in (tuple, _Failure):
            if result is not None:
                ctx[CTX_TABLE] = result  # the exchange's ngx.ctx, made in this step
            if not state.output and state.sockets is None:
                return CONTINUE
            return self._verdict(_DONE, state, compiled, exchange, suspended=False)
        outcome = result if isinstance(result, _Failure) else self._outcome(result, compiled)
        return self._verdict(outcome, state, compiled, exchange, suspended=False)

    def run_sync(self, compiled: Compiled, state: CallState) -> Verdict:
        """header_filter, body_filter, log: the handler may not wait (OpenResty forbids it there too)."""
        exchange = state.exchange
        outcome = self._step(state, compiled, compiled.start,
                             exchange.ctx.get(CTX_TABLE) if exchange is not None else None)
        if isinstance(outcome, _Wait):
            self._fail(compiled, state, f"ngx API that waits (ngx.sleep, cosockets) is disabled in {state.phase}")
            return LocalReply(ERROR_STATUS) if state.phase == "header_filter" else CONTINUE
        return self._verdict(outcome, state, compiled, state.exchange, suspended=False)

    def _step(self, state: CallState, compiled: Compiled, call: Any, *args: Any) -> _Outcome:
        previous = self.current
        self.current = state
        self.pending = None
        try:
            result = call(*args)
        except (self.lupa.LuaError, self.lupa.LuaMemoryError) as exc:
            return self._raised(exc, compiled)
        finally:
            self.current = previous
        if result is None:
            return _DONE
        if type(result) is not tuple:
            exchange = state.exchange
            if exchange is not None:
                exchange.ctx[CTX_TABLE] = result  # the exchange's ngx.ctx, made in this step
            return _DONE
        return self._outcome(result, compiled)

    def _raised(self, exc: Exception, compiled: Compiled) -> _Failure:
        """A call into Lua raised (outside the handler's coroutine, which reports its own errors)."""
        if isinstance(exc, self.lupa.LuaMemoryError):
            self._collect()
            where = compiled.handler
            return _Failure(f"{where.path}:{where.line}: not enough memory: the handler exceeded the worker's Lua "
                            "memory limit")
        return _Failure(self.restore(str(exc)))

    def _outcome(self, result: tuple[Any, ...], compiled: Compiled) -> _Outcome:
        """What a step that did not end done returned (rsp.lua.prelude, finish)."""
        kind, co = bytes(result[0]), result[1]
        if kind in (b"error", b"budget"):
            message = self.restore(bytes(result[2]).decode("utf-8", "replace"))
            del co, result  # the dead coroutine holds what it allocated: let the collector have it
            if "not enough memory" in message:
                self._collect()
                if message.startswith("not enough memory"):
                    # LuaJIT leaves no position on an allocation failure: name the handler's own first line
                    where = compiled.handler
                    message = f"{where.path}:{where.line}: {message} (in the handler starting at this line)"
                message += ": the handler exceeded the worker's Lua memory limit"
            elif not _POSITION.match(message):
                # raised by the Python half of an ngx function: Lua gives no position; name the handler's
                # first line (the error text names the ngx function)
                where = compiled.handler
                message = f"{where.path}:{where.line}: {message} (in the handler starting at this line)"
            return _Failure(message)
        if kind == b"exit":
            status = result[2]
            return _Exit(int(status) if isinstance(status, int | float) else 0)
        if kind == b"wait":
            waiter = self.pending
            self.pending = None
            if waiter is None:
                return _Failure("internal: a wait without an operation")
            return _Wait(co, waiter)
        return _Failure(f"internal: unknown operation {kind!r}")

    def _collect(self) -> None:
        """A full collection after a handler hit the memory cap (a function made at start: compiling a chunk
        now could itself fail for memory)."""
        try:
            self._collect_lua()
        except self.lupa.LuaError:
            log.warning("lua: the collection after a memory error failed; the runtime stays near its cap")

    def _verdict(self, outcome: _Outcome, state: CallState, compiled: Compiled, exchange: ExchangeView | None,
                 *, suspended: bool) -> Verdict:
        if state.sockets and not isinstance(outcome, _Wait):
            # OpenResty closes a request's cosockets when it ends; rsp when the handler that opened them ends
            # (the ones given back with setkeepalive are in the pool by then, not here)
            self.cosockets.close_handles(state.sockets)
            state.sockets = None
        if isinstance(outcome, _Wait):
            outcome.waiter.callback = lambda values: self._continue(outcome.co, values, state, compiled, exchange)
            if outcome.waiter.result is not None:
                # completed before we could wait (a pooled connection, a zero sleep): go on now
                return self._continue_now(outcome.co, outcome.waiter.result, state, compiled, exchange, suspended)
            return SUSPEND
        if isinstance(outcome, _Failure):
            self._fail(compiled, state, outcome.message)
            return LocalReply(ERROR_STATUS)
        if isinstance(outcome, _Exit):
            return self._exit_reply(state, outcome.status)
        if state.output:
            return self._exit_reply(state, 0)
        return CONTINUE

    def _continue_now(self, co: Any, values: tuple[Any, ...], state: CallState, compiled: Compiled,
                      exchange: ExchangeView | None, suspended: bool) -> Verdict:
        packed = self.driver[b"pack"](*values)
        ctx = exchange.ctx.get(CTX_TABLE) if exchange is not None else None
        outcome = self._step(state, compiled, self._resume_lua, co, ctx, packed)
        return self._verdict(outcome, state, compiled, exchange, suspended=suspended)

    def _continue(self, co: Any, values: tuple[Any, ...], state: CallState, compiled: Compiled,
                  exchange: ExchangeView | None) -> None:
        """The I/O a suspended handler waited for is done: resume it, then tell the exchange."""
        try:
            verdict = self._continue_now(co, values, state, compiled, exchange, True)
        except Exception as exc:  # a bug of ours must not leave the exchange waiting forever
            self._fail(compiled, state, f"internal error: {type(exc).__name__}: {exc}")
            verdict = LocalReply(ERROR_STATUS)
        if verdict is SUSPEND or exchange is None:
            return
        if isinstance(verdict, LocalReply):
            exchange.answer(verdict)
        else:
            exchange.resume()

    def _exit_reply(self, state: CallState, status: int) -> Verdict:
        """ngx.exit(status) or output from ngx.say: the local reply, or CONTINUE for ngx.exit(ngx.OK) with no
        output (OpenResty: go on to the next phase)."""
        if status < 0:
            return LocalReply(ERROR_STATUS)
        if status == 0 and not state.output:
            return CONTINUE
        if status == 0 or (200 <= status < 300 and state.output):
            status = state.reply_status or 200
        body = b"".join(state.output)
        headers = list(state.reply_headers)
        if not body and status >= 300 and not any(k.lower() == b"content-type" for k, _ in headers):
            body = _error_body(status)
            headers.append((b"content-type", b"text/html"))
        elif body and not any(k.lower() == b"content-type" for k, _ in headers):
            headers.append((b"content-type", b"text/plain"))
        return LocalReply(status, headers, body)

    def _fail(self, compiled: Compiled, state: CallState, message: str) -> None:
        where = state.exchange
        request = f" {where.request.method.decode('latin-1')} {where.request.target.decode('latin-1')}" \
            if where is not None else ""
        log.error("lua %s handler (%s) failed%s: %s", state.phase, compiled.handler.key or compiled.handler.path,
                  request, message)

    # ---- timers (ngx.timer.at / every) --------------------------------------------------------------------

    def start_timer(self, delay: float, function: Any, every: bool, args: Any) -> None:
        loop = self.loop or asyncio.get_event_loop()
        handler = LuaHandler("timer", "function", "", "<timer>", 0, "ngx.timer")
        compiled = Compiled(handler, function, None)
        self.timers += 1

        def fire() -> None:
            if every:
                loop.call_later(delay, fire)
            else:
                self.timers -= 1
            state = CallState(None, "timer")
            outcome = self._step(state, compiled, self._start_args, function, False, *_unpack(args))  # premature
            self._verdict(outcome, state, compiled, None, suspended=False)

        loop.call_later(delay, fire)


def _unpack(args: Any) -> list[Any]:
    n = int(args[b"n"] or 0)
    return [args[i] for i in range(1, n + 1)]


def _error_body(status: int) -> bytes:
    return (f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n"
            f"<hr><center>rsp</center>\r\n</body>\r\n</html>\r\n").encode("ascii")


class _Done:
    __slots__ = ()


class _Failure:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Exit:
    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status


class _Wait:
    __slots__ = ("co", "waiter")

    def __init__(self, co: Any, waiter: Waiter) -> None:
        self.co = co
        self.waiter = waiter


_Outcome = _Done | _Failure | _Exit | _Wait
_DONE: Final = _Done()
