"""A sandboxed Lua 5.4 runtime (lupa) for evaluating configuration files.

A config is data and functions: its chunk runs in an empty environment (no io, os, require, load,
string or table libraries, no `python` bridge), under an instruction budget and a memory cap, so a
config that never finishes or allocates without end stops with an error instead of hanging rsp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lupa.lua54 as lupa

# A real config runs a few thousand instructions; 50 million is far above any honest config and still a
# fraction of a second of Lua, so that `while true do end` fails fast.
MAX_CONFIG_INSTRUCTIONS = 50_000_000
# The count hook fires every this many VM instructions; small enough for a prompt stop, large enough
# that the hook costs nothing measurable.
HOOK_EVERY = 10_000
# A config's tables are tiny; 64 MiB stops a runaway allocation long before it hurts the host.
MAX_CONFIG_MEMORY = 64 * 1024 * 1024

# Lua cuts chunk names to 60 bytes (LUA_IDSIZE), which would truncate long paths in error messages:
# run under this short token and substitute the path afterwards.
CHUNK_TOKEN = "<config>"

# Runs a chunk in a fresh environment that records the line of each global's first assignment,
# so that a validation error can name the Lua line of the offending key.
_RUNNER = """
local getinfo, sethook, pcall, load, rawset, setmetatable, error, tostring =
      debug.getinfo, debug.sethook, pcall, load, rawset, setmetatable, error, tostring
return function(src, chunkname, budget, every)
  local env, lines = {}, {}
  setmetatable(env, {__newindex = function(t, k, v)
    local info = getinfo(2, 'l')
    if info and info.currentline and info.currentline > 0 then lines[k] = info.currentline end
    rawset(t, k, v)
  end})
  local fn, err = load(src, chunkname, 't', env)
  if not fn then return false, err end
  local used = 0
  sethook(function()
    used = used + every
    if used > budget then error('config exceeded its instruction budget (' .. tostring(budget) ..
                                ' instructions): does it loop forever?', 2) end
  end, '', every)
  local ok, res = pcall(fn)
  sethook()
  setmetatable(env, nil)
  if not ok then return false, tostring(res) end
  return true, env, lines
end
"""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The globals a chunk defined (converted to Python values) and the line each was first set on."""

    globals: dict[str, Any]
    lines: dict[str, int]


class ConfigFunction:
    """A function the config defined, callable as before, with what rsp.lua.function_source needs to find its
    text again: the lines it spans, the names of its upvalues (anything but _ENV is a config local it would
    lose in a worker), and its stripped bytecode (to tell apart two functions written on one line)."""

    __slots__ = ("dump", "function", "last_line", "line", "upvalues")

    def __init__(self, function: Any, line: int, last_line: int, upvalues: tuple[str, ...], dump: bytes) -> None:
        self.function = function
        self.line = line
        self.last_line = last_line
        self.upvalues = upvalues
        self.dump = dump

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __repr__(self) -> str:
        return f"ConfigFunction(lines {self.line}-{self.last_line})"


# The facts a ConfigFunction carries, read in the config's own runtime.
_DESCRIBE = """
return function(f)
  local info = debug.getinfo(f, 'Su')
  local names = {}
  for i = 1, info.nups do names[i] = (debug.getupvalue(f, i)) end
  local ok, dump = pcall(string.dump, f, true)
  -- as hex: the runtime decodes strings as UTF-8, and bytecode is not text
  local hex = ok and dump:gsub('.', function(c) return string.format('%02x', c:byte()) end) or ''
  return info.linedefined, info.lastlinedefined, names, hex
end
"""


class LuaChunkError(Exception):
    """The chunk failed to compile or run; `message` is Lua's own text (it names chunk and line)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _deny_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python attribute access is disabled in rsp's Lua sandbox")


def lua_to_python(value: Any, describe: Any = None) -> Any:
    """Convert Lua values to Python: tables become dicts (keys as Lua gave them), functions stay callables
    (ConfigFunction, when `describe` is the runtime's _DESCRIBE)."""
    kind = lupa.lua_type(value)
    if kind == "table":
        return {k: lua_to_python(v, describe) for k, v in value.items()}
    if kind == "function" and describe is not None:
        line, last, names, dump = describe(value)
        upvalues = tuple(str(names[i]) for i in range(1, len(names) + 1))
        return ConfigFunction(value, int(line), int(last), upvalues, bytes.fromhex(str(dump)))
    return value


def run_config_chunk(source: str, chunkname: str) -> ChunkResult:
    """Evaluate a config chunk in a fresh sandbox and return its globals."""
    lua = lupa.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        attribute_filter=_deny_attributes,
        max_memory=MAX_CONFIG_MEMORY,
    )
    try:
        describe = lua.execute(_DESCRIBE)
        runner = lua.execute(_RUNNER)
        result = runner(source, "=" + CHUNK_TOKEN, MAX_CONFIG_INSTRUCTIONS, HOOK_EVERY)
    except lupa.LuaMemoryError as exc:
        raise LuaChunkError(f"{chunkname}: config exceeded its memory limit ({MAX_CONFIG_MEMORY} bytes)") from exc
    except lupa.LuaError as exc:
        raise LuaChunkError(str(exc)) from exc
    if not result[0]:
        # Lua names the chunk "<config>:LINE:"; put the real path back in full.
        message = str(result[1]).replace(CHUNK_TOKEN + ":", chunkname + ":")
        if "not enough memory" in message:
            message = f"{chunkname}: config exceeded its memory limit ({MAX_CONFIG_MEMORY} bytes)"
        raise LuaChunkError(message)
    env, lines = result[1], result[2]
    py_globals = {str(k): lua_to_python(v, describe) for k, v in env.items()}
    py_lines = {str(k): int(v) for k, v in lines.items()}
    return ChunkResult(py_globals, py_lines)
