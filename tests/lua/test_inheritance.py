"""For each phase the most specific handler runs (route over listener over top level, as nginx's *_by_lua
inheritance), and a filter is called only for the phases it has handlers for."""

from __future__ import annotations

import asyncio

from rsp.lua_wiring import lua_filters
from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import phases_of
from support.lua_exchange import FakeExchange


def test_route_over_listener_over_top(lua) -> None:  # type: ignore[no-untyped-def]
    config = lua.config("""{
      access = function() ngx.say("top access") end,
      log = function() end,
    }""", head="""backends = { "127.0.0.1:9" }
listen = {
  { port = 18080, mode = "http", lua = { access = function() ngx.say("listener access") end } },
  { port = 18081, mode = "http" },
}
routes = { { host = "r.example", pool = "default", lua = { access = function() ngx.say("route access") end } } }
""")
    loop = asyncio.new_event_loop()
    try:
        filters_for = lua_filters(config, loop)
        assert filters_for is not None
        first, second = (filters_for(listener)[0] for listener in config.listeners)
        assert phases_of(first) == {"access", "log"} and phases_of(second) == {"access", "log"}

        def said(flt, host: bytes) -> bytes:  # type: ignore[no-untyped-def]
            reply = flt.access(FakeExchange(authority=host))
            assert isinstance(reply, LocalReply)
            return reply.body

        assert said(first, b"x.example") == b"listener access\n"
        assert said(first, b"r.example") == b"route access\n"
        assert said(second, b"x.example") == b"top access\n"
        assert said(second, b"R.Example:8080") == b"route access\n"
    finally:
        loop.close()


def test_no_lua_no_filter(lua) -> None:  # type: ignore[no-untyped-def]
    from rsp.config.lua_loader import load_config
    path = lua.tmp_path / "plain.lua"
    path.write_text('backends = { "127.0.0.1:9" }\nlisten = { { port = 18080, mode = "http" } }\n')
    loop = asyncio.new_event_loop()
    try:
        assert lua_filters(load_config(str(path)), loop) is None
    finally:
        loop.close()


def test_only_overridden_phases_are_called(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ balancer = function() end }")
    assert phases_of(flt) == {"balancer"}


def test_init_worker_runs_once_per_runtime(lua) -> None:  # type: ignore[no-untyped-def]
    config = lua.config("""{
      shared = { s = "64k" }, shared_dir = "sh",
      init = function() ngx.shared.s:incr("init", 1, 0) end,
      init_worker = function() ngx.shared.s:incr("worker", 1, 0) end,
      access = function() ngx.say(ngx.shared.s:get("init"), " ", ngx.shared.s:get("worker")) end,
    }""")
    from rsp.lua_wiring import prepare_shared
    prepare_shared(config, fresh=True)
    loop = asyncio.new_event_loop()
    try:
        filters_for = lua_filters(config, loop)
        assert filters_for is not None
        reply = filters_for(config.listeners[0])[0].access(FakeExchange())
        assert isinstance(reply, LocalReply) and reply.body == b"1 1\n"
    finally:
        loop.close()
