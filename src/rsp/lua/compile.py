"""Which Lua the workers run, and compiling a handler with it.

OpenResty code is Lua 5.1 / LuaJIT code, so the workers run lupa's LuaJIT 2.1 where the installed lupa has it,
else Lua 5.4. Chunk names are short tokens (Lua cuts a chunk name to 60 bytes, LUA_IDSIZE): `chunk_token`
makes one per file and `restore_paths` puts the full path back into an error message.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Final


def _lupa_module() -> ModuleType:
    try:
        return importlib.import_module("lupa.luajit21")
    except ImportError:
        return importlib.import_module("lupa.lua54")


LUPA: Final = _lupa_module()
_LINE: Final = re.compile(r"^[^\n]*?:(\d+): ")


def runtime_description() -> str:
    """What `rsp --version` prints for the handlers' Lua: "LuaJIT 2.1.x" or "Lua 5.4"."""
    lua = LUPA.LuaRuntime(register_eval=False, register_builtins=False)
    return str(lua.lua_implementation)


class LuaSyntaxError(Exception):
    """A handler does not compile: `message` is Lua's (with the full path), `line` its line when known."""

    def __init__(self, message: str, line: int | None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


def chunk_token(index: int) -> str:
    return f"<lua{index}>"


def restore_paths(message: str, tokens: dict[str, str]) -> str:
    for token, path in tokens.items():
        message = message.replace(token + ":", path + ":")
    return message


_CHECK = """
return function(src, name)
  local fn, err = load(src, name, 't', {})
  if fn then return true, nil end
  return false, err
end
"""


def check_syntax(source: str, path: str) -> None:
    """Compile `source` (not run it) with the workers' Lua; raise LuaSyntaxError naming `path` and the line."""
    lua = LUPA.LuaRuntime(register_eval=False, register_builtins=False, encoding=None)
    checker = lua.execute(_CHECK.encode())
    token = chunk_token(0)
    ok, err = checker(source.encode(), ("=" + token).encode())
    if ok:
        return
    message = restore_paths(bytes(err).decode("utf-8", "replace"), {token: path})
    found = _LINE.match(message[len(path):]) if message.startswith(path) else None
    raise LuaSyntaxError(message, int(found.group(1)) if found else None)
