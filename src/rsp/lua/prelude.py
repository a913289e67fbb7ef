"""The Lua half of the ngx API and of the sandbox (`prelude.lua` beside this file, package data), run once
per worker runtime (rsp.lua.engine).

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
"""

from __future__ import annotations

from importlib import resources

# Read once per process at import. Lua source stays Lua (a .lua file an editor and luacheck understand),
# and a compiled engine always runs the prelude that is on disk: nothing of it is built into the engine.
PRELUDE: str = resources.files("rsp.lua").joinpath("prelude.lua").read_text(encoding="utf-8")
