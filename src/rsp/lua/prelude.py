"""The Lua half of the ngx API and of the sandbox (the `prelude_*.lua` files beside this file, package data),
run once per worker runtime (rsp.lua.engine).

`setup(B, opts)` receives the Python bridge (a table of functions, rsp.lua.bridge) and returns the driver
functions the engine calls. Everything a handler can reach is in `env`: the safe parts of the standard
library, `ngx`, and a `require` limited to the package path and rsp's built-in modules. The Python bridge
itself, `debug`, `io`, `os` (but its clock functions), `string.dump`, `load` of bytecode, `dofile` and
`loadfile` never reach a handler.

Handlers run as coroutines. An ngx function that must wait (ngx.sleep, a cosocket) calls its Python half,
which starts the I/O on rsp's loop and returns WAIT; the Lua half then yields OP to the driver, and the engine
resumes the coroutine with the results when the I/O completes. ngx.exit yields too, so that a handler's own
pcall cannot swallow it. The instruction budget is one count hook (LuaJIT's hooks are global, Lua 5.4's per
coroutine: it is set on every coroutine), decrementing the budget of whichever handler runs.

The prelude is written as PARTS, one job each, joined in this order into one chunk (named `=<rsp>` by the
engine): a part uses the locals of the parts before it, exactly as if they were one file. One chunk, not a
chunk per part: the handlers' hot path (the budget hook, ngx.var's snapshot, the batched ngx.req edits, the
driver's step) reads and writes state the parts share, and as upvalues of one chunk that costs what it cost
in one file, where a table of shared state passed from part to part would cost a lookup each time. (The
chunk's main function keeps the same locals as before the split: LuaJIT allows 200.) A position inside the
prelude reads `<rsp>:LINE` with LINE counted in the joined text: `locate` names the part and its line.
"""

from __future__ import annotations

from importlib import resources

# The parts, in the order they run. Each ends with a newline, so a part's lines follow the one before's.
PARTS: tuple[str, ...] = (
    "prelude_sandbox.lua",   # the locals, the budget's hook, the checked bridge, the edits batch, `env`
    "prelude_ngx.lua",       # the ngx table: constants, output, log; `wait` and `render` for the parts after
    "prelude_request.lua",   # ngx.var, ngx.ctx, ngx.status, ngx.header, ngx.arg, ngx.req
    "prelude_text.lua",      # time, encodings, hashes, URI and argument coding, ngx.re
    "prelude_shared.lua",    # ngx.shared
    "prelude_io.lua",        # ngx.sleep, ngx.timer, ngx.socket.tcp
    "prelude_modules.lua",   # cjson, ngx.balancer, ... and the sandbox's require
    "prelude_driver.lua",    # what the engine calls; the JIT switched on, `debug` removed
)


def _read(name: str) -> str:
    text = resources.files("rsp.lua").joinpath(name).read_text(encoding="utf-8")
    return text if text.endswith("\n") else text + "\n"


_TEXTS = [_read(name) for name in PARTS]

# Read once per process at import. Lua source stays Lua (.lua files an editor understands), and a
# compiled engine always runs the prelude that is on disk: nothing of it is built into the engine. Hence not
# `Final`: mypyc copied a Final PRELUDE into the compiled engine, which then ran the old prelude after an edit
# until the next build (docs/performance.md).
PRELUDE: str = "".join(_TEXTS)


def locate(line: int) -> str:
    """`part.lua:N` for line `line` of the joined prelude (a position `<rsp>:LINE` in an error)."""
    rest = line
    for name, text in zip(PARTS, _TEXTS, strict=True):
        count = text.count("\n")
        if 0 < rest <= count:
            return f"{name}:{rest}"
        rest -= count
    return f"<rsp>:{line}"  # not a line of the prelude
