"""Helpers for the Lua tests: a config written to a temp dir, its engine and its top-level filter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.config.lua_loader import load_config
from rsp.config.model import Config
from rsp.lua.engine import LuaEngine
from rsp.lua.filter import LuaFilter, filter_for
from rsp.lua.shared_dict import SharedStore, prepare_store

CONFIG_HEAD = 'backends = { "127.0.0.1:9" }\nlisten = { { port = 18080, mode = "http" } }\n'


class LuaSetup:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.engines: list[LuaEngine] = []
        self.stores: list[SharedStore] = []

    def config(self, lua_table: str, extra: str = "", head: str = CONFIG_HEAD) -> Config:
        path = self.tmp_path / "rsp.lua"
        path.write_text(head + extra + "lua = " + lua_table + "\n")
        return load_config(str(path))

    def engine(self, config: Config, loop: asyncio.AbstractEventLoop | None = None, **kw: object) -> LuaEngine:
        shared = None
        if config.lua is not None and config.lua.shared:
            dicts = dict(config.lua.shared)
            store_dir = str(self.tmp_path / "shared")
            prepare_store(store_dir, dicts, fresh=True)
            shared = SharedStore(store_dir, dicts)
            self.stores.append(shared)
        engine = LuaEngine(config.lua, shared=shared, loop=loop, **kw)  # type: ignore[arg-type]
        self.engines.append(engine)
        return engine

    def filter(self, lua_table: str, extra: str = "", loop: asyncio.AbstractEventLoop | None = None,
               **kw: object) -> LuaFilter:
        config = self.config(lua_table, extra)
        engine = self.engine(config, loop, **kw)
        flt = filter_for(engine, config.lua)
        assert flt is not None
        return flt

    def close(self) -> None:
        for engine in self.engines:
            engine.cosockets.close_all()
        for store in self.stores:
            store.close()


@pytest.fixture
def lua(tmp_path: Path) -> Iterator[LuaSetup]:
    setup = LuaSetup(tmp_path)
    yield setup
    setup.close()
