"""The `lua` tables: where handlers may go, what the model keeps (source text, never a function), and the
errors that name file, line and key."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from rsp.config.lua_loader import load_config
from rsp.config.model import Config
from rsp.errors import ConfigError

HEAD = 'backends = { "127.0.0.1:9" }\npools = { other = { backends = { "127.0.0.1:10" } } }\n'


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "rsp.lua"
    path.write_text(text)
    return load_config(str(path))


def fail(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_handlers_at_every_level_survive_pickling(tmp_path: Path) -> None:
    (tmp_path / "lua").mkdir()
    (tmp_path / "lua" / "pick.lua").write_text("require('ngx.balancer').set_current_peer('127.0.0.1', 9)\n")
    config = load(tmp_path, HEAD + """listen = { { port = 8080, mode = "http",
  lua = { access = function() ngx.exit(403) end } } }
routes = { { host = "a.example", pool = "other", lua = { balancer = "lua/pick.lua" } } }
lua = {
  init_worker = function() end,
  header_filter = function()
    ngx.header["X-A"] = "1"
  end,
  shared = { hits = "1m", small = "64k", raw = 10000 },
  package_path = "lua/?.lua;lib/?/init.lua",
}
""")
    copy = pickle.loads(pickle.dumps(config))  # what a worker receives
    assert copy == config
    assert copy.lua is not None and copy.listeners[0].lua is not None and copy.routes[0].lua is not None
    header = copy.lua.handler("header_filter")
    assert header is not None and header.kind == "function" and header.line == 8
    assert header.source == "\n" * 7 + 'return function()\n    ngx.header["X-A"] = "1"\n  end'
    assert copy.lua.handler("init_worker") is not None
    assert dict(copy.lua.shared) == {"hits": 1024 * 1024, "small": 64 * 1024, "raw": 10000}
    assert copy.lua.package_path == (str(tmp_path / "lua" / "?.lua"), str(tmp_path / "lib" / "?" / "init.lua"))
    access = copy.listeners[0].lua.handler("access")
    assert access is not None and access.key == "listen[1].lua.access"
    pick = copy.routes[0].lua.handler("balancer")
    assert pick is not None and pick.kind == "file" and pick.path == str(tmp_path / "lua" / "pick.lua")


@pytest.mark.parametrize(("text", "line", "words"), [
    ('listen = { { port = 1, mode = "http", lua = { shared = { a = "1m" } } } }\n', 3,
     "belongs in the top-level lua table"),
    ('listen = { { port = 1, mode = "tcp", lua = { access = function() end } } }\n', 3, "mode = 'http'"),
    ('listen = { { port = 1, mode = "http" } }\nroutes = { { pool = "other", lua = {\n'
     '  rewrite = function() end } } }\n', 5, "a route is chosen after rewrite"),
    ('listen = { { port = 1, mode = "http" } }\nlocal limit = 10\nlua = {\n  access = function()\n'
     '    if limit then end\n  end }\n', 6, "uses the config's local 'limit'"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  acces = function() end }\n', 5, "unknown key 'acces'"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  shared = { d = "12q" } }\n', 5, "must be a size"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  shared = { d = "1k" } }\n', 5, "at least 8k"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  shared = { ' + "d" * 256 + ' = "1m" } }\n', 5,
     "identifiers of at most 255 characters"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  package_path = "lua/x.lua" }\n', 5, "needs a '?'"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  access = "missing.lua" }\n', 5, "cannot read"),
    ('listen = { { port = 1, mode = "http" } }\nlua = {\n  access = 42 }\n', 5,
     "must be a function or the path of a Lua file"),
])
def test_errors_name_line_and_key(tmp_path: Path, text: str, line: int, words: str) -> None:
    error = fail(tmp_path, HEAD + text)
    assert words in error.message
    assert error.line == line, error


def test_syntax_error_in_a_handler_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "h.lua").write_text("local a = 1\n\nif a then\n")
    error = fail(tmp_path, HEAD + 'listen = { { port = 1, mode = "http" } }\nlua = { log = "h.lua" }\n')
    assert error.path == str(tmp_path / "h.lua") and error.line == 4 and "(in lua.log)" in error.message


def test_a_handler_in_5_4_only_syntax_fails_for_the_workers_lua(tmp_path: Path) -> None:
    # The config is evaluated by Lua 5.4, handlers run on LuaJIT (OpenResty's dialect): // is not LuaJIT's.
    error = fail(tmp_path, HEAD + 'listen = { { port = 1, mode = "http" } }\nlua = {\n'
                               '  access = function() local x = 7 // 2 end }\n')
    assert error.line == 5
