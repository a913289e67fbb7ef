"""The cache variables a Lua handler sets (ngx.var.rsp_cache_key / _bypass / _no_store / _ttl,
rsp.pipeline.cache_vars), through real Lua: what they leave in the exchange's ctx for the cache, reading them
back, and the errors for a bad TTL or a phase after the cache's lookup."""

from __future__ import annotations

import pytest

from rsp.errors import ScriptError
from rsp.pipeline.cache_vars import CTX_CACHE_VARS
from rsp.pipeline.messages import LocalReply, Response
from support.lua_exchange import FakeExchange


def test_set_in_access_and_read_back(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        ngx.var.rsp_cache_key = ngx.var.host .. ngx.var.uri
        ngx.var.rsp_cache_ttl = 60
        if ngx.var.arg_fresh then ngx.var.rsp_cache_bypass = 1 end
        if ngx.var.arg_private then ngx.var.rsp_cache_no_store = "1" end
        ngx.req.set_header("X-Key", ngx.var.rsp_cache_key)
        ngx.req.set_header("X-Unset", tostring(ngx.var.rsp_cache_no_store))
    end }""")
    ex = FakeExchange(b"/page?fresh=1")
    assert flt.access(ex) is None
    assert ex.ctx[CTX_CACHE_VARS] == {b"rsp_cache_key": b"example.com/page", b"rsp_cache_ttl": b"60",
                                      b"rsp_cache_bypass": b"1"}
    assert ex.request.get(b"x-key") == b"example.com/page" and ex.request.get(b"x-unset") == b"nil"


def test_nil_unsets_and_rewrite_may_set_too(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ rewrite = function() ngx.var.rsp_cache_key = "k" end,
                          access = function() ngx.var.rsp_cache_key = nil; ngx.var.rsp_cache_no_store = 1 end }""")
    ex = FakeExchange()
    assert flt.rewrite(ex) is None and ex.ctx[CTX_CACHE_VARS] == {b"rsp_cache_key": b"k"}
    assert flt.access(ex) is None and ex.ctx[CTX_CACHE_VARS] == {b"rsp_cache_no_store": b"1"}


def test_a_bad_ttl_is_an_error(lua) -> None:  # type: ignore[no-untyped-def]
    for value in ('"soon"', "-5", "1.5", "99999999999"):
        flt = lua.filter(f"{{ access = function() ngx.var.rsp_cache_ttl = {value} end }}")
        reply = flt.access(FakeExchange())
        assert isinstance(reply, LocalReply) and reply.response.status == 500, value


def test_too_late_after_the_lookup(lua, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ header_filter = function() ngx.var.rsp_cache_no_store = 1 end }""")
    ex = FakeExchange()
    ex.response = Response(200, [], 0)
    with pytest.raises(ScriptError):  # the session answers 500 for a filter that raises
        flt.header_filter(ex)
    assert "ngx.var.rsp_cache_no_store cannot be changed in header_filter" in caplog.text
    assert CTX_CACHE_VARS not in ex.ctx
