"""The sandboxed Lua runtime used for configs."""

from __future__ import annotations

import pytest

from rsp.lua.runtime import LuaChunkError, run_config_chunk


def test_globals_and_their_lines() -> None:
    result = run_config_chunk("a = 1\n\nb = { x = 'y', 2 }\nlocal hidden = 3\n", "c.lua")
    assert result.globals == {"a": 1, "b": {"x": "y", 1: 2}}
    assert result.lines == {"a": 1, "b": 3}


def test_functions_are_kept_callable() -> None:
    result = run_config_chunk("function pick(n) return n * 2 end", "c.lua")
    assert result.globals["pick"](21) == 42


def test_each_chunk_runs_in_a_fresh_environment() -> None:
    run_config_chunk("leak = 1", "a.lua")
    assert "leak" not in run_config_chunk("other = 2", "b.lua").globals


def test_runtime_error_carries_lua_position() -> None:
    with pytest.raises(LuaChunkError) as info:
        run_config_chunk("x = 1\ny = x.field", "c.lua")
    assert info.value.message.startswith("c.lua:2: attempt to index a number value")


def test_not_even_the_base_library() -> None:
    # A config is data and functions: no print, no load, no error, no string library.
    for name in ("print", "load", "error", "pairs", "string", "setmetatable", "collectgarbage"):
        with pytest.raises(LuaChunkError) as info:
            run_config_chunk(f"x = {name}.x", "c.lua")
        assert f"global '{name}'" in info.value.message
