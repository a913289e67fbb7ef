"""Find the source text of a function written in a config file, so that a worker can compile it again.

The config reaches the workers pickled, and a Lua function cannot be pickled: what travels is the text of the
function. Lua tells where a function starts and ends (debug.getinfo's linedefined and lastlinedefined), not
at which column, and one line may hold several functions (`a = function() end, b = function() end`). So each
`function` token on the first line is tried with each `end` token on the last line, and the candidate whose
compiled bytecode (stripped of debug information) equals the original's is the one. The text is padded with
newlines so that, compiled alone, its lines are the config file's lines: an error at run time names the
config's own line.
"""

from __future__ import annotations

import re
from typing import Final

import lupa.lua54 as lupa

from rsp.lua.runtime import ConfigFunction

_FUNCTION: Final = re.compile(r"\bfunction\b")
_END: Final = re.compile(r"\bend\b")
# `function name.path:method(` (a statement) becomes an expression: `function(self, ` for a method.
_NAMED: Final = re.compile(r"function\s+[A-Za-z_][A-Za-z0-9_.]*(?P<colon>:[A-Za-z_][A-Za-z0-9_]*)?\s*\(")
# Building a candidate closure runs no user code, but a candidate is still arbitrary text from the config:
# bound its run anyway.
_CANDIDATE_BUDGET: Final = 100_000

_COMPARE = """
return function(src, want, budget)
  local fn = load(src, '=candidate', 't', {})
  if not fn then return false end
  debug.sethook(function() error('budget') end, '', budget)
  local ok, made = pcall(fn)
  debug.sethook()
  if not ok or type(made) ~= 'function' then return false end
  local dump = string.dump(made, true)
  local hex = dump:gsub('.', function(c) return string.format('%02x', c:byte()) end)
  return hex == want
end
"""


class FunctionSourceError(Exception):
    """The function's text cannot be recovered (see `message`)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _as_expression(text: str) -> str:
    named = _NAMED.match(text)
    if named is None:
        return text
    opener = "function(self, " if named.group("colon") else "function("
    rest = text[named.end():]
    if named.group("colon") and rest.lstrip().startswith(")"):
        opener = "function(self"
    return opener + rest


def function_chunk(source: str, fn: ConfigFunction) -> str:
    """A chunk that returns `fn` (`return function ... end`), its lines at the config's own line numbers.

    Raises FunctionSourceError when the function closes over a config local (it would lose it in a worker)
    or when no candidate text compiles to the same bytecode (a function built by another function).
    """
    captured = [name for name in fn.upvalues if name != "_ENV"]
    if captured:
        raise FunctionSourceError(
            f"the function uses the config's local {', '.join(repr(n) for n in captured)}: a handler runs in "
            "each worker's own Lua runtime, where config locals do not exist; use a literal or ngx.shared")
    lines = source.split("\n")
    if not 1 <= fn.line <= fn.last_line <= len(lines):
        raise FunctionSourceError("the function's lines are not in the config file")
    first, last = lines[fn.line - 1], lines[fn.last_line - 1]
    middle = lines[fn.line:fn.last_line - 1]
    lua = lupa.LuaRuntime(register_eval=False, register_builtins=False)
    compare = lua.execute(_COMPARE)
    want = fn.dump.hex()
    padding = "\n" * (fn.line - 1)
    for start in _FUNCTION.finditer(first):
        for end in _END.finditer(last):
            if fn.line == fn.last_line:
                if end.end() <= start.start():
                    continue
                text = first[start.start():end.end()]
            else:
                text = "\n".join([first[start.start():], *middle, last[:end.end()]])
            chunk = padding + "return " + _as_expression(text)
            if compare(chunk, want, _CANDIDATE_BUDGET):
                return chunk
    raise FunctionSourceError(
        "cannot find this function's text in the config (a handler must be written as a function in the config "
        "file, not built by another function); or put it in a file and give its path")
