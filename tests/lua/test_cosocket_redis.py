"""Cosockets on the loop: ngx.sleep, ngx.timer, ngx.socket.tcp, and lua-resty-redis (vendored, unmodified)
from balancer and access against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import SUSPEND
from support.lua_exchange import FakeExchange
from support.redis_server import RedisServer

VENDOR = Path(__file__).parent / "vendor" / "lua-resty-redis" / "lib"
WAIT_LIMIT = 5.0  # seconds a test waits for a suspended handler: loopback Redis answers in well under 1 ms


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path).start()
    yield server
    server.stop()


def wait_for(loop: asyncio.AbstractEventLoop, done: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not done():
            await asyncio.sleep(0.002)
    loop.run_until_complete(asyncio.wait_for(poll(), WAIT_LIMIT))


def test_sleep_suspends_and_resumes(lua, loop) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function() ngx.sleep(0.01); ngx.ctx.slept = true end }", loop=loop)
    ex = FakeExchange()
    assert flt.access(ex) is SUSPEND
    assert ex.resumed == 0
    wait_for(loop, lambda: ex.resumed == 1)
    assert not ex.answers


def test_answer_after_suspension(lua, loop) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function() ngx.sleep(0); ngx.say('late') end }", loop=loop)
    ex = FakeExchange()
    assert flt.access(ex) is SUSPEND
    wait_for(loop, lambda: bool(ex.answers))
    assert ex.answers[0].body == b"late\n" and ex.resumed == 0


def test_header_edits_around_a_wait(lua, loop) -> None:  # type: ignore[no-untyped-def]
    """Header edits recorded before a wait are sent before the handler yields; those after it, at its end."""
    flt = lua.filter("""{ access = function()
        ngx.req.set_header("X-Before", "1")
        ngx.sleep(0)
        ngx.ctx.before = ngx.var.http_x_before
        ngx.req.set_header("X-After", "1")
    end }""", loop=loop)
    ex = FakeExchange()
    assert flt.access(ex) is SUSPEND
    assert ex.request.get(b"x-before") == b"1"
    wait_for(loop, lambda: ex.resumed == 1)
    assert ex.request.get(b"x-after") == b"1"


def test_timers(lua, loop) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ shared = { t = "64k" }, access = function()
        ngx.timer.at(0.01, function(premature, key) ngx.shared.t:set(key, "fired") end, "once")
        ngx.timer.every(0.005, function() ngx.shared.t:incr("ticks", 1, 0) end)
    end }""", loop=loop)
    assert flt.access(FakeExchange()) is None
    store = lua.stores[0]
    wait_for(loop, lambda: store.get("t", b"once")[0] == b"fired" and (store.get("t", b"ticks")[0] or 0) >= 3)


def test_tcp_connect_refused_and_receive_patterns(lua, loop, redis) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        local s = ngx.socket.tcp()
        local ok, err = s:connect("127.0.0.1", 1)
        local out = { tostring(ok), err }
        s = ngx.socket.tcp()
        s:settimeout(1000)
        assert(s:connect("127.0.0.1", PORT))
        assert(s:send({ "PING\\r\\n", "ECHO ", 5, "\\r\\n" }))
        out[#out + 1] = s:receive("*l")
        out[#out + 1] = s:receive(2)
        out[#out + 1] = s:receive()
        out[#out + 1] = s:receive()
        s:close()
        ngx.print(table.concat(out, "|"))
    end }""".replace("PORT", str(redis.port)), loop=loop)
    ex = FakeExchange()
    assert flt.access(ex) is SUSPEND
    wait_for(loop, lambda: bool(ex.answers))
    assert ex.answers[0].body == b"nil|connection refused|+PONG|$1||5"


def redis_filter(lua, loop, phase: str, port: int):  # type: ignore[no-untyped-def]
    use = ('require("ngx.balancer").set_current_peer(ip, tonumber(port))' if phase == "balancer"
           else 'ngx.req.set_header("X-Backend", backend)')
    return lua.filter("""{ package_path = "VENDOR/?.lua", PHASE = function()
        local redis = require "resty.redis"
        local red = redis:new()
        red:set_timeout(1000)
        local ok, err = red:connect("127.0.0.1", PORT)
        if not ok then ngx.log(ngx.ERR, "redis: ", err) return ngx.exit(503) end
        local host = ngx.var.host
        local backend, err = red:get("backend:" .. host)
        if backend == ngx.null or not backend then return ngx.exit(404) end
        ngx.ctx.reused = red:get_reused_times()
        red:set_keepalive(10000, 10)
        local ip, port = backend:match("^(.-):(%d+)$")
        USE
    end }""".replace("VENDOR", str(VENDOR)).replace("PHASE", phase).replace("PORT", str(port)).replace("USE", use),
        loop=loop)


def test_lua_resty_redis_from_balancer(lua, loop, redis) -> None:  # type: ignore[no-untyped-def]
    redis.client().set("backend:app.example", "127.0.0.5:8081")
    flt = redis_filter(lua, loop, "balancer", redis.port)
    reused = []
    for _ in range(3):
        ex = FakeExchange(authority=b"app.example")
        assert flt.balancer(ex) is SUSPEND
        wait_for(loop, lambda ex=ex: ex.resumed == 1)  # type: ignore[misc]
        assert ex.peer == ("127.0.0.5", 8081) and not ex.answers
        reused.append(lua.engines[0].lua.eval(b"function(t) return t.reused end")(ex.ctx["rsp.lua.ctx"]))
    assert reused == [0, 1, 2]  # one connection, kept alive across exchanges


def test_lua_resty_redis_from_access(lua, loop, redis) -> None:  # type: ignore[no-untyped-def]
    redis.client().set("backend:app.example", "10.0.0.1:80")
    flt = redis_filter(lua, loop, "access", redis.port)
    ex = FakeExchange(authority=b"app.example")
    assert flt.access(ex) is SUSPEND
    wait_for(loop, lambda: ex.resumed == 1)
    assert ex.request.get(b"x-backend") == b"10.0.0.1:80"
    missing = FakeExchange(authority=b"other.example")
    assert flt.access(missing) is SUSPEND
    wait_for(loop, lambda: bool(missing.answers))
    assert isinstance(missing.answers[0], LocalReply) and missing.answers[0].response.status == 404


def test_redis_down_answers_503(lua, loop, redis) -> None:  # type: ignore[no-untyped-def]
    flt = redis_filter(lua, loop, "access", redis.port)
    redis.stop()
    ex = FakeExchange(authority=b"app.example")
    assert flt.access(ex) is SUSPEND
    wait_for(loop, lambda: bool(ex.answers))
    assert ex.answers[0].response.status == 503


def test_a_handlers_open_cosockets_are_closed_when_it_ends(lua, loop, redis) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        local s = ngx.socket.tcp()
        assert(s:connect("127.0.0.1", PORT))
        ngx.ctx.sock = s
    end }""".replace("PORT", str(redis.port)), loop=loop)
    ex = FakeExchange()
    assert flt.access(ex) is SUSPEND
    wait_for(loop, lambda: ex.resumed == 1)
    assert not lua.engines[0].cosockets.sockets  # closed, not leaked
