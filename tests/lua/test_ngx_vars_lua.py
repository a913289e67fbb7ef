"""ngx.var's `http_*`, `cookie_*` and `arg_*`, and ngx.req.get_headers, are computed in Lua from one snapshot
per step (rsp.lua.prelude); rsp.lua.ngx_vars computes the same variables in Python. Both, on awkward requests:
repeated fields, case, `_` for `-`, cookies with spaces and without `=`, arguments without a value."""

from __future__ import annotations

import pytest

from rsp.lua.ngx_vars import ALL, ARGS, FIELDS, HOST, REMOTE_ADDR, URI, variable, wanted_by
from rsp.pipeline.messages import LocalReply
from support.lua_exchange import FakeExchange

NAMES = ["http_x_multi", "http_X_MULTI", "http_user_agent", "http_missing", "http_", "http_cookie",
         "cookie_a", "cookie_sess", "cookie_b", "cookie_none", "cookie_flag", "cookie_",
         "arg_x", "arg_X", "arg_flag", "arg_y", "arg_missing", "arg_", "arg_e"]

REQUESTS = [
    (b"/p?x=1&y=two&X=3&flag&e=", [(b"Host", b"h.example"), (b"User-Agent", b"t/1"), (b"X-Multi", b"1"),
                                   (b"x-multi", b"2"), (b"Cookie", b"a=1; sess=abc ;b"),
                                   (b"Cookie", b" flag=  ; a=2")]),
    (b"/", []),
    (b"/q?=v&&x", [(b"COOKIE", b"=x; a==b"), (b"X_Multi", b"underscore")]),
]


@pytest.mark.parametrize(("target", "headers"), REQUESTS)
def test_lua_and_python_agree(lua, target: bytes, headers: list[tuple[bytes, bytes]]) -> None:  # type: ignore[no-untyped-def]
    reads = "\n".join(f'out[#out + 1] = tostring(ngx.var["{n}"])' for n in NAMES)
    flt = lua.filter("{ access = function()\n local out = {}\n" + reads + "\n"
                     ' ngx.print(table.concat(out, "\\0")) end }')
    reply = flt.access(FakeExchange(target, headers=headers))
    assert isinstance(reply, LocalReply)
    ex = FakeExchange(target, headers=headers)
    expected = [variable(ex, n.encode()) for n in NAMES]
    got = reply.body.split(b"\0")
    assert got == [b"nil" if e is None else e for e in expected]


def test_get_headers_from_the_snapshot_and_raw(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        local h = ngx.req.get_headers()
        local raw = ngx.req.get_headers(100, true)
        ngx.say(h.host, " ", h["x-multi"][1], ",", h["x-multi"][2], " ", h.X_Multi[2], " ", tostring(h.none),
                " ", tostring(raw["X-Multi"]), " ", tostring(raw["x-multi"]))
    end }""")
    reply = flt.access(FakeExchange(b"/", authority=b"auth.example",
                                    headers=[(b"X-Multi", b"1"), (b"x-multi", b"2")]))
    assert isinstance(reply, LocalReply)
    # no Host line: the authority, as nginx's get_headers gives the Host it was asked with
    assert reply.body == b"auth.example 1,2 2 nil 1 2\n"


def test_wanted_by_names_what_the_text_reads() -> None:
    routing = 'local u = ngx.var.uri\nif ngx.var.http_x_canary then end\nlocal a = ngx.var.arg_page, ngx.var.host'
    assert wanted_by(routing) == URI | FIELDS | ARGS | HOST
    assert wanted_by("ngx.var.cookie_beta") == FIELDS
    assert wanted_by("ngx.var.query_string .. ngx.var.remote_addr") == ARGS | REMOTE_ADDR
    assert wanted_by("ngx.var.status") == 0  # not a snapshot variable: a call of its own
    assert wanted_by("ngx.req.get_headers()") == FIELDS
    # a name the text does not spell out: anything may be read
    assert wanted_by('local v = ngx.var["ho" .. "st"]') == ALL
    assert wanted_by("local var = ngx.var\nreturn var.uri") == ALL


def test_a_value_left_out_of_the_call_is_fetched_when_read(lua) -> None:  # type: ignore[no-untyped-def]
    """The handler's text names only ngx.var.uri, so its call's snapshot has only the uri; reads through
    another name for ngx (as a module's would be) still see every value, and the fields as edited."""
    headers = [(b"User-Agent", b"t/1"), (b"Cookie", b"a=1")]
    source = """{ access = function()
        local n = ngx
        ngx.req.set_header("X-Added", "yes")
        ngx.say(ngx.var.uri, " ", n.var.host, " ", n.var.args, " ", n.var.arg_q, " ", n.var.remote_addr, " ",
                n.var.request_method, " ", n.var.scheme, " ", n.var.http_host, " ", n.var.request_uri, " ",
                n.var.http_user_agent, " ", n.var.cookie_a, " ", n.var.http_x_added)
    end }"""
    assert wanted_by(source) == URI
    flt = lua.filter(source)
    reply = flt.access(FakeExchange(b"/a%20b?q=1", authority=b"Ex.COM:81", headers=headers))
    assert isinstance(reply, LocalReply)
    assert reply.body == b"/a b ex.com q=1 1 192.0.2.7 GET http Ex.COM:81 /a%20b?q=1 t/1 1 yes\n"
