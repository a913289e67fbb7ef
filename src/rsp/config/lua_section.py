"""The `lua` tables: handlers per phase at the top level, on a listener and on a route (docs/lua.md).

    lua = {
      init_worker = function() ... end,              -- top level only, as nginx's init_worker_by_lua
      access = function() ... end,                   -- a function written in the config
      balancer = "lua/pick.lua",                     -- or a file, relative to the config; its chunk is the body
      shared = { limits = "10m" },                   -- ngx.shared.limits, one per machine (top level only)
      package_path = "lua/?.lua;lib/?/init.lua",     -- where require looks (top level only)
    }

What the model keeps is source text, never a function: the config reaches the workers pickled. Every handler
is compiled here with the workers' Lua (rsp.lua.compile), so a syntax error fails `rsp --check` with its file
and line.
"""

from __future__ import annotations

import os
import re
from typing import Any, Final

from rsp.config.checks import Ctx, as_int, as_string, as_table, fields
from rsp.config.model import LuaHandler, LuaSettings
from rsp.errors import ConfigError
from rsp.lua.compile import LuaSyntaxError, check_syntax
from rsp.lua.function_source import FunctionSourceError, function_chunk
from rsp.lua.runtime import ConfigFunction

# nginx's phase handlers (*_by_lua) that rsp runs per exchange, and the two that run once.
EXCHANGE_PHASES: Final = ("rewrite", "access", "balancer", "header_filter", "body_filter", "log")
ONCE_PHASES: Final = ("init", "init_worker")
TOP_LEVEL_ONLY: Final = frozenset({*ONCE_PHASES, "shared", "package_path", "shared_dir"})
LUA_KEYS: Final = frozenset({*EXCHANGE_PHASES, *TOP_LEVEL_ONLY})
# lua_shared_dict's size syntax: a byte count, or a number with k or m (nginx's size units).
_SIZE: Final = re.compile(r"^(\d+)([kKmM]?)$")
_UNITS: Final = {"": 1, "k": 1024, "m": 1024 * 1024}
# A dictionary smaller than this cannot hold a useful entry with LMDB's per-entry overhead.
MIN_SHARED_SIZE: Final = 8 * 1024
# A dictionary name is a Lua field name, and its length one byte of its LMDB keys' prefix (at most 255:
# rsp.lua.shared_dict.MAX_NAME).
_DICT_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def parse_lua(value: Any, key: str, ctx: Ctx, source: str, *, top_level: bool,
              on_route: bool = False) -> LuaSettings | None:
    """A `lua` table (None when absent). `source` is the config file's text (for functions written in it)."""
    if value is None:
        return None
    allowed = set(LUA_KEYS) if top_level else set(EXCHANGE_PHASES)
    table = as_table(value, key, ctx)
    if on_route and "rewrite" in table:
        ctx.fail(f"{key}.rewrite", f"{key}.rewrite: a route is chosen after rewrite (rewrite may change what "
                                   "routing reads); put the rewrite handler on the listener or the top level")
    for k in table:
        if k in TOP_LEVEL_ONLY and not top_level:
            ctx.fail(f"{key}.{k}", f"{key}.{k}: '{k}' belongs in the top-level lua table (it is per machine)")
    f = fields(table, key, ctx, allowed)
    handlers = tuple(_handler(phase, f[phase], f"{key}.{phase}", ctx, source)
                     for phase in (*ONCE_PHASES, *EXCHANGE_PHASES) if phase in f)
    shared: list[tuple[str, int]] = []
    for name, size in as_table(f.get("shared", {}), f"{key}.shared", ctx).items():
        if not isinstance(name, str) or not _DICT_NAME.match(name):
            ctx.fail(f"{key}.shared", f"{key}.shared: dictionary names are identifiers of at most 255 characters, "
                                       f"got {name!r}")
        shared.append((name, _size(size, f"{key}.shared.{name}", ctx)))
    paths: list[str] = []
    if "package_path" in f:
        base = os.path.dirname(os.path.abspath(ctx.path))
        for pattern in as_string(f["package_path"], f"{key}.package_path", ctx).split(";"):
            if not pattern:
                continue
            if "?" not in pattern:
                ctx.fail(f"{key}.package_path", f"{key}.package_path: each pattern needs a '?', got {pattern!r}")
            paths.append(os.path.normpath(os.path.join(base, pattern)))
    shared_dir = as_string(f.get("shared_dir", ""), f"{key}.shared_dir", ctx)
    if shared_dir:
        shared_dir = os.path.join(os.path.dirname(os.path.abspath(ctx.path)), shared_dir)
    return LuaSettings(handlers=handlers, shared=tuple(sorted(shared)), package_path=tuple(paths),
                       shared_dir=shared_dir, key=key)


def _handler(phase: str, value: Any, key: str, ctx: Ctx, source: str) -> LuaHandler:
    if isinstance(value, ConfigFunction):
        try:
            chunk = function_chunk(source, value)
        except FunctionSourceError as exc:
            ctx.fail(key, f"{key}: {exc.message}")
        handler = LuaHandler(phase, "function", chunk, ctx.path, value.line, key)
    elif isinstance(value, str):
        path = os.path.join(os.path.dirname(os.path.abspath(ctx.path)), value)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            ctx.fail(key, f"{key}: cannot read {path}: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            ctx.fail(key, f"{key}: {path} is not UTF-8 text: {exc.reason}")
        handler = LuaHandler(phase, "file", text, os.path.normpath(path), 1, key)
    else:
        ctx.fail(key, f"{key} must be a function or the path of a Lua file")
    try:
        check_syntax(handler.source, handler.path)
    except LuaSyntaxError as exc:
        # The handler's own file and line (a file handler's error is in that file, not in the config).
        raise ConfigError(f"{exc.message} (in {key})", path=handler.path, line=exc.line, key=key) from exc
    return handler


def _size(value: Any, key: str, ctx: Ctx) -> int:
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match is None:
            ctx.fail(key, f"{key} must be a size like '10m', '512k' or a byte count, got {value!r}")
        size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        size = as_int(value, key, ctx, minimum=0)
    if size < MIN_SHARED_SIZE:
        ctx.fail(key, f"{key} must be at least {MIN_SHARED_SIZE // 1024}k")
    return size
