"""The sandbox: what a handler cannot reach, and failures that answer 500 with file and line, never killing
the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.pipeline.messages import LocalReply
from support.lua_exchange import FakeExchange


def run(lua, body: str, **kw: object) -> LocalReply | None:  # type: ignore[no-untyped-def]
    reply = lua.filter("{ access = function()\n" + body + "\nend }", **kw).access(FakeExchange())
    assert reply is None or isinstance(reply, LocalReply)
    return reply


@pytest.mark.parametrize("expression", ["io", "os.execute", "os.exit", "debug", "dofile", "loadfile", "string.dump",
                                        "python", "jit", "package.loadlib"])
def test_dangerous_names_are_absent(lua, expression: str) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, f"ngx.print(tostring({expression}))")
    assert reply is not None and reply.body == b"nil", expression


def test_bytecode_cannot_be_loaded(lua) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, 'local f, err = load("\\27LJ\\2\\0"); ngx.print(tostring(f), " ", err)')
    assert reply is not None and reply.body.startswith(b"nil ")


def test_text_chunks_load_in_the_sandbox(lua) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, 'local f = load("return ngx.HTTP_OK + 1"); ngx.print(f())')
    assert reply is not None and reply.body == b"201"


def test_require_only_from_package_path(lua, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "greet.lua").write_text("local M = {}\nfunction M.hi(n) return 'hi ' .. n end\nreturn M\n")
    (tmp_path / "secret.lua").write_text("return 'secret'\n")
    flt = lua.filter("""{ package_path = "lib/?.lua", access = function()
        local ok = pcall(require, "secret")
        local ok2 = pcall(require, "../secret")
        ngx.print(require("greet").hi("x"), " ", tostring(ok), " ", tostring(ok2))
    end }""")
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.body == b"hi x false false"


def test_runaway_loop_answers_500_and_names_the_line(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function()\n  local n = 0\n  while ngx.var.arg_loop do n = n + 1 end\n"
                     "  ngx.say('fine')\nend }", budget=1_000_000)
    reply = flt.access(FakeExchange(b"/?loop=1"))
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "rsp.lua:5: handler exceeded its instruction budget" in message
    # the same runtime serves the next call, with a fresh budget
    for _ in range(3):
        ok = flt.access(FakeExchange())
        assert isinstance(ok, LocalReply) and ok.body == b"fine\n"


# LuaJIT compiles rsp's own functions (the prelude) but never a handler's: a loop that calls ngx functions many
# times (each hot enough to be compiled) still runs on the interpreter, where the count hook sees it. The loop
# in the handler, in a module it requires, and in a chunk it loads from text.
# (bounded far beyond the budget, so that a loop the hook did not see ends, and fails the test, instead of hanging)
_HOT_LOOPS = {
    "var": "for i = 1, 1e8 do local u = ngx.var.uri .. ngx.var.host end",
    "ctx": "for i = 1, 1e8 do ngx.ctx.n = i end",
    "headers": "local t for i = 1, 1e8 do t = ngx.req.get_headers() end",
    "recursion": "local function f(n) if n > 1e8 then return n end return f(n + #ngx.var.uri) end f(0)",
}


@pytest.mark.parametrize("where", ["handler", "module", "load"])
@pytest.mark.parametrize("loop", sorted(_HOT_LOOPS))
def test_runaway_loop_over_compiled_ngx_functions_is_stopped(lua, tmp_path: Path, caplog, where: str,
                                                               loop: str) -> None:  # type: ignore[no-untyped-def]
    code = _HOT_LOOPS[loop]
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "spin.lua").write_text(f"return function()\n{code}\nend\n")
    body = {"handler": code, "module": 'require("spin")()', "load": f"load({code!r})()"}[where]
    flt = lua.filter('{ package_path = "lib/?.lua", access = function()\n' + body + "\nend }", budget=2_000_000)
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert any("handler exceeded its instruction budget" in r.getMessage() for r in caplog.records)


def test_budget_is_per_call(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function() local n = 0 for i = 1, 50000 do n = n + i end ngx.print(n) end }",
                     budget=1_000_000)
    for _ in range(30):  # 30 calls together run far past one budget
        reply = flt.access(FakeExchange())
        assert isinstance(reply, LocalReply) and reply.body == b"1250025000"


def test_memory_bomb_answers_500(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function()\n  local t = {}\n  for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end\n"
                     "end }", memory_limit=32 * 1024 * 1024, budget=10 ** 12)
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert any("not enough memory" in r.getMessage() for r in caplog.records)
    after = lua.filter("{ access = function() ngx.say(#string.rep('y', 1000)) end }").access(FakeExchange())
    assert after is not None and after.body == b"1000\n"


def test_runtime_error_answers_500_with_file_and_line(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, "local t = nil\nreturn t.field")
    assert reply is not None and reply.response.status == 500
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "rsp.lua:5: attempt to index local 't' (a nil value)" in message


def test_error_in_a_file_handler_names_that_file(lua, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "handler.lua").write_text("local x = 1\n\nerror('boom')\n")
    reply = lua.filter('{ access = "handler.lua" }').access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert any(f"{tmp_path}/handler.lua:3: boom" in r.getMessage() for r in caplog.records)


def test_error_in_log_and_body_filter_does_not_raise(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ log = function() error('in log') end, body_filter = function() error('in body') end }")
    ex = FakeExchange()
    assert flt.body_filter(ex, b"chunk", False) == b"chunk"
    assert flt.log(ex) is None
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "in log" in text and "in body" in text


def test_waiting_is_refused_where_openresty_refuses_it(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ log = function() ngx.sleep(1) end }")
    assert flt.log(FakeExchange()) is None
    assert any("ngx.sleep is disabled in log" in r.getMessage() for r in caplog.records)


def test_error_in_header_filter_raises_for_the_pipelines_500(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    from rsp.errors import ScriptError
    from rsp.pipeline.messages import Response
    flt = lua.filter("{ header_filter = function()\n  error('bad header')\nend }")
    ex = FakeExchange()
    ex.response = Response(200, [])
    with pytest.raises(ScriptError):
        flt.header_filter(ex)
    assert any("rsp.lua:4: bad header" in r.getMessage() for r in caplog.records)


def test_a_pcall_cannot_swallow_the_budget(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function()\n  while true do\n    pcall(function() while true do end end)\n"
                     "    local co = coroutine.create(function() while true do end end)\n"
                     "    coroutine.resume(co)\n  end\nend }", budget=1_000_000)
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert any("rsp.lua:5: handler exceeded its instruction budget" in r.getMessage() for r in caplog.records)
    # the same runtime serves the next call, with its full budget again
    after = lua.engines[0].run(lua.engines[0].compile(lua.config(
        "{ access = function() local n = 0 for i = 1, 200000 do n = n + 1 end ngx.print(n) end }").lua.handlers[0]),
        "access", FakeExchange())
    assert isinstance(after, LocalReply) and after.body == b"200000"


def test_printing_in_a_loop_is_bounded(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, "for i = 1, 1e6 do ngx.print(string.rep('x', 1e6)) end", budget=10 ** 12)
    assert reply is not None and reply.response.status == 500
    assert any("exceeds 16777216 bytes" in r.getMessage() for r in caplog.records)


def test_an_error_from_an_ngx_function_names_the_handler(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    reply = run(lua, "local x = 1\nrequire('ngx.balancer').set_current_peer('1.2.3.4', 80)")
    assert reply is not None and reply.response.status == 500
    assert any("rsp.lua:5: ngx.balancer.set_current_peer is only allowed in balancer" in r.getMessage()
               for r in caplog.records)
