"""The only importer of lupa: the config's sandboxed Lua 5.4 (runtime.py) and the handlers' LuaJIT runtime per
worker with OpenResty's ngx API (engine.py, prelude.py, bridge.py, filter.py; docs/lua.md)."""
