"""rsp.lua's imports point one way (docs/architecture.md, "lua/"): each module of the handler half imports only
modules after it in ORDER, at run time or for type checking alike (the engine reaches the ngx API's Python
half, which sees the engine only through rsp.lua.host's LuaHost)."""

from __future__ import annotations

from pathlib import Path

import rsp
from support.imports import sibling_imports

ORDER = ["filter", "engine", "prelude", "bridge", "ngx_req", "cosocket", "shared_lua", "shared_dict", "ngx_vars",
         "ngx_text", "host", "compile", "function_source", "runtime"]
LUA = Path(rsp.__file__).parent / "lua"


def lua_imports(name: str) -> set[str]:
    """The rsp.lua modules `name` imports, wherever the import statement is."""
    return sibling_imports(LUA, "rsp.lua.", name, ORDER)


def test_every_module_of_rsp_lua_is_placed() -> None:
    assert {p.stem for p in LUA.glob("*.py")} - {"__init__"} == set(ORDER)


def test_each_lua_module_imports_only_modules_below_it() -> None:
    for position, name in enumerate(ORDER):
        upward = {imported for imported in lua_imports(name) if ORDER.index(imported) <= position}
        assert not upward, f"rsp.lua.{name} imports {sorted(upward)}, which are not below it"


def test_the_check_sees_imports_under_type_checking() -> None:
    assert "host" in lua_imports("shared_lua")  # imported only for type checking there
