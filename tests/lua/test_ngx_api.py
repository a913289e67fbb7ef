"""Every listed ngx function, through a real LuaJIT runtime, driven by LuaFilter on a plain ExchangeView."""

from __future__ import annotations

import json

import pytest

from rsp.pipeline.messages import LocalReply
from support.lua_exchange import FakeExchange


def say(lua, body: str, ex: FakeExchange | None = None, extra: str = "") -> bytes:  # type: ignore[no-untyped-def]
    """Run `body` as an access handler and return what it printed."""
    flt = lua.filter("{ access = function()\n" + body + "\nend }", extra)
    reply = flt.access(ex or FakeExchange(b"/p/a%20b?x=1&y=two&x=3", headers=[
        (b"Host", b"Example.COM:8080"), (b"User-Agent", b"t/1"), (b"Cookie", b"a=1; sess=abc"),
        (b"X-Multi", b"1"), (b"X-Multi", b"2")]))
    assert isinstance(reply, LocalReply), reply
    return reply.body


def test_ngx_var(lua) -> None:  # type: ignore[no-untyped-def]
    ex = FakeExchange(b"/p/a%20b?x=1&y=two&x=3", authority=b"Example.COM:8080", headers=[
        (b"User-Agent", b"t/1"), (b"Cookie", b"a=1; sess=abc"), (b"X-Multi", b"1"), (b"X-Multi", b"2")])
    ex.status_value, ex.upstream_addr_value, ex.upstream_status_value = 200, "127.0.0.1:9000", 201
    ex.clock = 1001.25
    names = ["host", "uri", "request_uri", "args", "arg_x", "arg_y", "arg_none", "http_user_agent", "http_x_multi",
             "cookie_sess", "cookie_none", "remote_addr", "remote_port", "server_port", "scheme", "request_method",
             "status", "upstream_addr", "upstream_status", "request_time"]
    body = "local out = {}\nfor _, n in ipairs({" + ",".join(f'"{n}"' for n in names) + "}) do\n" \
        "  out[#out + 1] = n .. '=' .. tostring(ngx.var[n])\nend\nngx.print(table.concat(out, '|'))"
    got = dict(part.split("=", 1) for part in say(lua, body, ex).decode().split("|"))
    assert got == {"host": "example.com", "uri": "/p/a b", "request_uri": "/p/a%20b?x=1&y=two&x=3",
                   "args": "x=1&y=two&x=3", "arg_x": "1", "arg_y": "two", "arg_none": "nil",
                   "http_user_agent": "t/1", "http_x_multi": "1, 2", "cookie_sess": "abc", "cookie_none": "nil",
                   "remote_addr": "192.0.2.7", "remote_port": "40000", "server_port": "8080", "scheme": "http",
                   "request_method": "GET", "status": "200", "upstream_addr": "127.0.0.1:9000",
                   "upstream_status": "201", "request_time": "1.250"}


def test_ngx_var_snapshot_follows_request_changes(lua) -> None:  # type: ignore[no-untyped-def]
    """The variables ngx.var serves from one snapshot per step are read anew after every ngx.req change, and in
    the next phase after a change made outside Lua."""
    flt = lua.filter("""{ rewrite = function()
        local before = ngx.var.uri .. " " .. ngx.var.host .. " " .. tostring(ngx.var.args) .. " " ..
                       ngx.var.request_method
        ngx.req.set_uri("/moved")
        local uri = ngx.var.uri
        ngx.req.set_uri_args("k=v")
        local args = ngx.var.args .. " " .. ngx.var.request_uri
        ngx.req.set_header("Host", "Other.example")
        local host = ngx.var.host .. " " .. ngx.var.http_host
        ngx.req.set_method(ngx.HTTP_POST)
        ngx.ctx.seen = table.concat({before, uri, args, host, ngx.var.request_method}, "|")
      end,
      access = function() ngx.say(ngx.ctx.seen, "|", ngx.var.uri, "|", ngx.var.host) end }""")
    ex = FakeExchange(b"/start", authority=b"First.example")
    assert flt.rewrite(ex) is None
    ex.request.target = b"/python?x=1"  # a Python filter's change between the phases
    reply = flt.access(ex)
    assert isinstance(reply, LocalReply)
    assert reply.body == (b"/start first.example nil GET|/moved|k=v /moved?k=v|other.example Other.example|POST|"
                          b"/python|other.example\n")


def test_ngx_ctx_is_per_exchange_and_shared_across_phases(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ rewrite = function() ngx.ctx.n = (ngx.ctx.n or 0) + 1 end,
                         access = function() ngx.ctx.n = ngx.ctx.n + 10; ngx.say(ngx.ctx.n) end }""")
    for _ in range(2):
        ex = FakeExchange()
        assert flt.rewrite(ex) is None
        reply = flt.access(ex)
        assert isinstance(reply, LocalReply) and reply.body == b"11\n"


def test_ngx_req(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ rewrite = function()
        local h = ngx.req.get_headers()
        assert(h["user-agent"] == "t/1" and h.User_Agent == "t/1" and h["x-multi"][2] == "2")
        assert(ngx.req.get_method() == "GET")
        ngx.req.set_method(ngx.HTTP_POST)
        local args = ngx.req.get_uri_args()
        assert(args.x[1] == "1" and args.x[2] == "3" and args.flag == true and args.y == "two")
        ngx.req.set_uri_args({ page = 2, q = "a b" })
        ngx.req.set_uri("/new path")
        ngx.req.set_header("X-Added", "yes")
        ngx.req.set_header("X-Multi", { "a", "b" })
        ngx.req.clear_header("User-Agent")
        ngx.req.read_body()
        assert(ngx.req.get_body_data() == nil)
    end }""")
    ex = FakeExchange(b"/old?x=1&y=two&x=3&flag", headers=[(b"User-Agent", b"t/1"), (b"X-Multi", b"1"),
                                                           (b"X-Multi", b"2")])
    assert flt.rewrite(ex) is None
    assert ex.request.method == b"POST"
    assert ex.request.target == b"/new%20path?page=2&q=a%20b"
    assert ex.request.get(b"x-added") == b"yes"
    assert ex.request.get(b"user-agent") is None
    assert [v for k, v in ex.request.headers if k == b"x-multi"] == [b"a", b"b"]
    assert ex.request.changed


def test_a_header_set_from_lua_can_never_split_the_head(lua) -> None:  # type: ignore[no-untyped-def]
    # As OpenResty escapes them: CR, LF and other control bytes in a value, and anything but tchar in a name
    # (RFC 9110 §5.5, §5.6.2), become %XX, so a handler fed user input cannot inject a field or end the head.
    flt = lua.filter(r"""{ rewrite = function()
        ngx.req.set_header("X-Batched", "a\r\nEvil: 1")
        ngx.req.set_header("X-Table", { "b\nc", "tab\tkept" })
        ngx.req.set_header("Bad Name:", "v")
    end, header_filter = function()
        ngx.header["X-Out"] = "d\r\n\r\nbody"
    end, access = function()
        ngx.redirect("/x\r\nSet-Cookie: s=1")
    end }""")
    ex = FakeExchange()
    assert flt.rewrite(ex) is None
    assert ex.request.get(b"x-batched") == b"a%0D%0AEvil: 1"
    assert [v for k, v in ex.request.headers if k == b"x-table"] == [b"b%0Ac", b"tab\tkept"]
    assert ex.request.get(b"bad%20name%3a") == b"v"  # (get takes a lower-case name)
    assert all(b"\r" not in k + v and b"\n" not in k + v for k, v in ex.request.headers)
    from rsp.pipeline.messages import Response
    ex.response = Response(200, [], 0)
    assert flt.header_filter(ex) is None
    assert ex.response.get(b"x-out") == b"d%0D%0A%0D%0Abody"
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.get(b"location") == b"/x%0D%0ASet-Cookie: s=1"


def test_every_byte_of_a_batched_value_is_kept_or_escaped_as_the_escape_says(lua) -> None:  # type: ignore[no-untyped-def]
    # The batched set_header checks a value with one translate before escaping it (rsp.lua.ngx_req.apply_edits):
    # each of the 256 bytes, alone and inside text, must come out as ngx_text.safe_header_value makes it.
    from rsp.lua.ngx_text import safe_header_value
    flt = lua.filter(r"""{ rewrite = function()
        for i = 0, 255 do
            ngx.req.set_header("X-Alone-" .. i, string.char(i))
            ngx.req.set_header("X-Inside-" .. i, "a" .. string.char(i) .. "b")
        end
    end }""")
    ex = FakeExchange()
    assert flt.rewrite(ex) is None
    for i in range(256):
        byte = bytes([i])
        assert ex.request.get(b"x-alone-%d" % i) == safe_header_value(byte), i
        assert ex.request.get(b"x-inside-%d" % i) == safe_header_value(b"a" + byte + b"b"), i
    assert ex.request.get(b"x-alone-13") == b"%0D" and ex.request.get(b"x-inside-9") == b"a\tb"


def test_the_request_line_set_from_lua_can_never_be_split(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter(r"""{ rewrite = function()
        ngx.req.set_uri_args("a=1 HTTP/1.1\r\nEvil: 1&b=%20")
    end, access = function()
        ngx.req.set_method("GET / HTTP/1.1\r\n")
    end }""")
    ex = FakeExchange(b"/p")
    assert flt.rewrite(ex) is None
    assert ex.request.target == b"/p?a=1%20HTTP/1.1%0D%0AEvil:%201&b=%20"  # its own escapes kept
    reply = flt.access(ex)  # a method that is not a token is the handler's error: 500
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert ex.request.method == b"GET"


def test_header_and_status_in_header_filter(lua) -> None:  # type: ignore[no-untyped-def]
    from rsp.pipeline.messages import Response
    flt = lua.filter("""{ header_filter = function()
        assert(ngx.status == 200 and ngx.header["Content-Type"] == "text/html")
        ngx.header["X-Frame-Options"] = "DENY"
        ngx.header.server = nil
        ngx.header["Set-Cookie"] = { "a=1", "b=2" }
        ngx.status = 203
    end }""")
    ex = FakeExchange()
    ex.response = Response(200, [(b"Content-Type", b"text/html"), (b"Server", b"backend")], 10)
    assert flt.header_filter(ex) is None
    assert ex.response.status == 203 and ex.response.changed
    assert ex.response.get(b"server") is None
    assert ex.response.get(b"x-frame-options") == b"DENY"
    assert [v for k, v in ex.response.headers if k == b"set-cookie"] == [b"a=1", b"b=2"]


def test_ngx_arg_in_body_filter(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ body_filter = function()
        local chunk, eof = ngx.arg[1], ngx.arg[2]
        ngx.arg[1] = string.upper(chunk) .. (eof and "<end>" or "")
    end }""")
    ex = FakeExchange()
    assert flt.body_filter(ex, b"abc", False) == b"ABC"
    assert flt.body_filter(ex, b"", True) == b"<end>"


@pytest.mark.parametrize(("body", "status", "text"), [
    ("ngx.exit(403)", 403, b"<h1>403</h1>"),
    ("ngx.status = 201; ngx.say('made'); ngx.exit(ngx.HTTP_OK)", 201, b"made\n"),
    ("ngx.print('a', {'b', {'c'}}, 1); return", 200, b"abc1"),
    ("ngx.header['X-A'] = 'v'; ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)", 503, b"<h1>503</h1>"),
    ("pcall(ngx.exit, 429); ngx.say('not reached')", 429, b"<h1>429</h1>"),
])
def test_exit_say_print(lua, body: str, status: int, text: bytes) -> None:  # type: ignore[no-untyped-def]
    reply = lua.filter("{ access = function() " + body + " end }").access(FakeExchange())
    assert isinstance(reply, LocalReply)
    assert reply.response.status == status
    assert text in reply.body


def test_exit_ok_continues(lua) -> None:  # type: ignore[no-untyped-def]
    assert lua.filter("{ access = function() ngx.exit(ngx.OK) end }").access(FakeExchange()) is None


def test_redirect(lua) -> None:  # type: ignore[no-untyped-def]
    reply = lua.filter("{ access = function() ngx.redirect('/login?next=' .. ngx.escape_uri(ngx.var.request_uri), "
                       "301) end }").access(FakeExchange(b"/a?b=c"))
    assert isinstance(reply, LocalReply) and reply.response.status == 301
    assert reply.response.get(b"location") == b"/login?next=%2Fa%3Fb%3Dc"


def test_log_names_file_and_line(lua, caplog) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("{ access = function()\n  ngx.log(ngx.WARN, 'careful ', 42)\nend }")
    flt.access(FakeExchange())
    assert any("rsp.lua:4: careful 42 (warn, access)" in r.getMessage() for r in caplog.records)


def test_constants(lua) -> None:  # type: ignore[no-untyped-def]
    body = say(lua, "ngx.print(ngx.HTTP_OK, ' ', ngx.HTTP_NOT_FOUND, ' ', ngx.HTTP_GET, ' ', ngx.ERR, ' ', "
                    "ngx.DEBUG, ' ', ngx.OK, ' ', type(ngx.null), ' ', tostring(ngx.null == require('cjson').null))")
    assert body == b"200 404 GET 4 8 0 userdata true"


def test_time_functions(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        ngx.print(ngx.time(), '|', ngx.now(), '|', ngx.http_time(1290079655), '|', ngx.cookie_time(1290079655),
                  '|', ngx.parse_http_time('Thu, 18 Nov 2010 11:27:35 GMT'), '|', #ngx.today(),
                  '|', #ngx.localtime(), '|', #ngx.utctime())
    end }""", clock=lambda: 1290079655.5)
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply)
    assert reply.body == (b"1290079655|1290079655.5|Thu, 18 Nov 2010 11:27:35 GMT|Thu, 18-Nov-10 11:27:35 GMT|"
                          b"1290079655|10|19|19")


def test_regex(lua) -> None:  # type: ignore[no-untyped-def]
    body = r"""
    local m = ngx.re.match("hello 1234 world", [[(?<word>[a-z]+) (\d+)]])
    local out = { m[0], m[1], m[2], m.word }
    local from, to = ngx.re.find("abc123", [[\d+]], "jo")
    out[#out + 1] = from .. "-" .. to
    local s, n = ngx.re.gsub("a1b22c333", [[\d+]], "<$0>")
    out[#out + 1] = s .. n
    s, n = ngx.re.sub("Hello", "l", "L")
    out[#out + 1] = s .. n
    s = ngx.re.gsub("a-b-c", "-", function(m) return "+" end)
    out[#out + 1] = s
    out[#out + 1] = tostring(ngx.re.match("ABC", "abc", "i")[0])
    out[#out + 1] = tostring(ngx.re.match("xabc", "abc", "a"))
    local words = {}
    for w in ngx.re.gmatch("one two three", [[\w+]]) do words[#words + 1] = w[0] end
    out[#out + 1] = table.concat(words, ",")
    local ctx = { pos = 5 }
    local m2 = ngx.re.match("aaa aaa", "a+", "", ctx)
    out[#out + 1] = m2[0] .. ctx.pos
    local bad, err = ngx.re.match("x", "(")
    out[#out + 1] = tostring(bad) .. (err and ":err" or "")
    ngx.print(table.concat(out, "|"))
    """
    assert say(lua, body) == b"hello 1234|hello|1234|hello|4-6|a<1>b<22>c<333>3|HeLlo1|a+b+c|ABC|nil|" \
        b"one,two,three|aaa8|nil:err"


def test_codecs(lua) -> None:  # type: ignore[no-untyped-def]
    body = r"""
    ngx.print(ngx.encode_base64("hello?"), "|", ngx.decode_base64("aGVsbG8/"), "|", tostring(ngx.decode_base64("!!")),
              "|", ngx.md5("abc"), "|", #ngx.md5_bin("abc"), "|", ngx.escape_uri("a b/c?d=é"), "|",
              ngx.unescape_uri("a%20b%2Fc"), "|", ngx.encode_args({ b = "2 3", a = 1, t = true, m = { "x", "y" } }),
              "|", ngx.decode_args("a=1&b=2&a=3").a[2], "|", ngx.quote_sql_str("it's"))
    """
    assert say(lua, body) == (b"aGVsbG8/|hello?|nil|900150983cd24fb0d6963f7d28e17f72|16|a%20b%2Fc%3Fd%3D%C3%A9|"
                              b"a b/c|a=1&b=2%203&m=x&m=y&t|3|'it\\'s'")


def test_cjson(lua) -> None:  # type: ignore[no-untyped-def]
    body = r"""
    local cjson = require "cjson"
    local v = cjson.decode('{"a": [1, 2, null], "b": {"c": "d"}, "n": null}')
    assert(v.a[3] == cjson.null and v.n == ngx.null and v.b.c == "d")
    local ok = pcall(cjson.decode, "{bad")
    local safe = require("cjson.safe")
    ngx.print(cjson.encode({ list = { 1, 2, 3 }, name = "x", none = ngx.null, empty = {} }), "|", tostring(ok),
              "|", tostring(safe.decode("{bad")))
    """
    encoded, ok, safe = say(lua, body).decode().split("|")
    assert json.loads(encoded) == {"list": [1, 2, 3], "name": "x", "none": None, "empty": {}}
    assert (ok, safe) == ("false", "nil")


def test_balancer_module(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ balancer = function()
        local b = require "ngx.balancer"
        local state, code = b.get_last_failure()
        if state then ngx.ctx.failure = state .. code end
        assert(b.set_current_peer("127.0.0.2", 8081))
        b.set_more_tries(2)
        b.set_timeouts(1, 2, 3)
    end }""")
    ex = FakeExchange()
    assert flt.balancer(ex) is None
    assert ex.peer == ("127.0.0.2", 8081) and ex.more_tries == 2
    assert ex.timeouts == (1.0, 2.0, 3.0)
    ex.tries_value, ex.last_failure_value = 1, "connect refused"
    assert flt.balancer(ex) is None
    failure = lua.engines[0].lua.eval(b"function(t) return t.failure end")(ex.ctx["rsp.lua.ctx"])
    assert failure == b"failed502"


def test_set_timeouts_takes_seconds_and_nil_and_refuses_the_rest(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ balancer = function()
        local b = require "ngx.balancer"
        assert(b.set_timeouts(0.5, nil, 2))
        if ngx.var.arg_bad then b.set_timeouts(0, 1, 1) end
    end }""")
    ex = FakeExchange()
    assert flt.balancer(ex) is None and ex.timeouts == (0.5, 0.0, 2.0)
    bad = flt.balancer(FakeExchange(b"/?bad=1"))
    assert isinstance(bad, LocalReply) and bad.response.status == 500


def test_set_current_peer_outside_balancer_fails(lua) -> None:  # type: ignore[no-untyped-def]
    reply = lua.filter("{ access = function() require('ngx.balancer').set_current_peer('1.2.3.4', 80) end }"
                       ).access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 500


def test_rsp_pool_variable(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        local before = ngx.var.rsp_pool
        ngx.var.rsp_pool = "canary"
        if ngx.var.arg_bad then ngx.var.rsp_pool = "nope" end
        ngx.ctx.before = before
    end }""", pools=frozenset({"default", "canary"}))
    ex = FakeExchange()
    assert flt.access(ex) is None and ex.pool == "canary"
    bad = flt.access(FakeExchange(b"/?bad=1"))
    assert isinstance(bad, LocalReply) and bad.response.status == 500


def test_the_lua54_fallback_runs_the_same_api(lua) -> None:  # type: ignore[no-untyped-def]
    # Where lupa has no LuaJIT, the workers run Lua 5.4: the prelude, the driver and the budget work there too.
    import lupa.lua54

    flt = lua.filter("""{ shared = { d = "64k" }, access = function()
        local m = ngx.re.match("a42", [[(\\d+)]])
        local n = ngx.shared.d:incr("n", 1, 0)
        ngx.say(ngx.var.uri, " ", m[1], " ", n, " ", require("cjson").encode({ 1, 2 }))
    end }""", lupa_module=lupa.lua54)
    reply = flt.access(FakeExchange(b"/x"))
    assert isinstance(reply, LocalReply) and reply.body == b"/x 42 1 [1,2]\n"
    assert lua.engines[-1].lua.lua_version == (5, 4)
    runaway = lua.filter("{ access = function() while true do end end }", lupa_module=lupa.lua54, budget=100_000)
    stopped = runaway.access(FakeExchange())
    assert isinstance(stopped, LocalReply) and stopped.response.status == 500


def test_log_phase_sees_the_outcome(lua) -> None:  # type: ignore[no-untyped-def]
    from rsp.pipeline.messages import Response
    flt = lua.filter("""{ shared = { stats = "64k" }, log = function()
        ngx.shared.stats:incr(ngx.var.status .. " " .. ngx.var.upstream_addr, 1, 0)
        ngx.shared.stats:set("last", ngx.var.request_time)
    end }""")
    ex = FakeExchange()
    ex.response = Response(502, [])
    ex.status_value, ex.upstream_addr_value, ex.clock = 502, "127.0.0.1:9000", 1000.5
    assert flt.log(ex) is None
    store = lua.stores[0]
    assert store.get("stats", b"502 127.0.0.1:9000")[0] == 1
    assert store.get("stats", b"last")[0] == b"0.500"


def test_read_body_waits_for_the_whole_body_then_get_and_set_body_data(lua) -> None:  # type: ignore[no-untyped-def]
    from rsp.pipeline.phases import SUSPEND
    from rsp.pipeline.request_body import RequestBody
    flt = lua.filter("""{ access = function()
        assert(ngx.req.get_body_data() == nil)  -- not read yet
        ngx.req.read_body()
        local data = ngx.req.get_body_data()
        ngx.req.set_body_data(data:upper() .. "!")
        ngx.ctx.read = data
    end }""")
    ex = FakeExchange(method=b"POST")
    ex.body = RequestBody()
    ex.body.add(b"ab")
    assert flt.access(ex) is SUSPEND  # the handler waits for the client's body
    ex.body.add(b"cd")
    assert ex.resumed == 0
    ex.body.end()
    assert ex.resumed == 1 and not ex.answers
    assert ex.body.data() == b"ABCD!" and ex.request.body_length == 5


def test_body_functions_over_the_buffer_and_outside_their_phases(lua) -> None:  # type: ignore[no-untyped-def]
    from rsp.pipeline.request_body import RequestBody
    body = """
        ngx.req.read_body()
        ngx.say(tostring(ngx.req.get_body_data()), " ", tostring(ngx.req.get_body_file()))
        if ngx.var.arg_set then ngx.req.set_body_data("x") end
    """
    ex = FakeExchange(b"/", method=b"POST")
    ex.body = RequestBody(limit=3)
    ex.body.add(b"abcd")  # over the buffer: nil (OpenResty: the body is in a file; rsp has no file)
    assert say(lua, body, ex) == b"nil nil\n"
    over = FakeExchange(b"/?set=1", method=b"POST")
    over.body = RequestBody(limit=3)
    over.body.add(b"abcd")
    flt = lua.filter("{ access = function()\n" + body + "\nend }")
    failed = flt.access(over)
    assert isinstance(failed, LocalReply) and failed.response.status == 500  # cannot replace it
    discard = lua.filter("{ access = function() ngx.req.discard_body() ngx.say(ngx.req.get_body_data()) end }")
    dropped = FakeExchange(method=b"POST")
    dropped.body = RequestBody()
    dropped.body.add(b"zz")
    reply = discard.access(dropped)
    assert isinstance(reply, LocalReply) and reply.body == b"nil\n" and dropped.request.body_length == 0
    in_balancer = lua.filter("{ balancer = function() ngx.req.read_body() end }").balancer(FakeExchange())
    assert isinstance(in_balancer, LocalReply) and in_balancer.response.status == 500


def test_upstream_times_in_nginx_format(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ shared = { t = "64k" }, log = function()
        local d = ngx.shared.t
        d:set("response", ngx.var.upstream_response_time)
        d:set("connect", ngx.var.upstream_connect_time)
        d:set("header", ngx.var.upstream_header_time)
        d:set("none", tostring(ngx.var.upstream_response_time == nil))
    end }""")
    ex = FakeExchange()
    ex.upstream_timings_value = ((-1.0, -1.0, 0.25), (0.0004, 0.0506, 1.2))
    assert flt.log(ex) is None
    store = lua.stores[0]
    assert store.get("t", b"response")[0] == b"0.250, 1.200"
    assert store.get("t", b"connect")[0] == b"-, 0.000"
    assert store.get("t", b"header")[0] == b"-, 0.051"
    assert store.get("t", b"none")[0] == b"false"
    assert flt.log(FakeExchange()) is None  # no try (a local answer): nil
    assert store.get("t", b"none")[0] == b"true"


def test_a_field_change_refreshes_the_fields_and_keeps_the_rest(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function()
        local a = tostring(ngx.var.http_x_tier) .. " " .. ngx.var.uri
        ngx.req.set_header("X-Tier", "gold")
        local b = ngx.var.http_x_tier .. " " .. ngx.var.uri .. " " .. ngx.req.get_headers()["x-tier"]
        ngx.req.clear_header("X-Tier")
        local c = tostring(ngx.var.http_x_tier) .. " " .. ngx.var.host
        ngx.req.set_header("host", "New.example")
        ngx.say(a, "|", b, "|", c, "|", ngx.var.host, " ", ngx.var.http_host)
    end }""")
    reply = flt.access(FakeExchange(b"/p", authority=b"old.example"))
    assert isinstance(reply, LocalReply)
    assert reply.body == b"nil /p|gold /p gold|nil old.example|new.example New.example\n"


def test_header_edits_recorded_in_lua_apply_in_order_at_the_end(lua) -> None:  # type: ignore[no-untyped-def]
    """set_header / clear_header in a request phase are applied when the handler ends (rsp.lua.prelude records
    them): in order, replacing the first line, a number as its string, a clear after a set."""
    flt = lua.filter("""{ access = function()
        ngx.req.set_header("X-One", "1")
        ngx.req.set_header("X_Two", 2)
        ngx.req.set_header("X-Gone", "soon")
        ngx.req.clear_header("x-gone")
        ngx.req.set_header("User-Agent", "new")
        ngx.req.set_header("X-One", "again")
    end }""")
    ex = FakeExchange(b"/p", headers=[(b"User-Agent", b"old"), (b"Accept", b"*/*")])
    assert flt.access(ex) is None
    assert ex.request.headers == [(b"User-Agent", b"new"), (b"Accept", b"*/*"), (b"x-one", b"again"),
                                  (b"x-two", b"2")]
    assert ex.request.changed


@pytest.mark.parametrize("between", [
    "ngx.say(ngx.var.http_x_a, ' ', ngx.req.get_headers()['x-a'])",   # a read of the fields: sent first
    "ngx.say(ngx.req.get_headers(nil, true)['x-a'])",                   # the raw headers (a call of its own)
    "ngx.log(ngx.INFO, 'x') ngx.say(ngx.var.http_x_a)",                 # any other call into Python
])
def test_recorded_header_edits_are_sent_before_a_read(lua, between: str) -> None:  # type: ignore[no-untyped-def]
    body = say(lua, f'ngx.req.set_header("X-A", "v")\n{between}', FakeExchange(b"/p"))
    assert body.split() in ([b"v", b"v"], [b"v"])


def test_header_edits_before_exit_ok_count(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ rewrite = function()
        ngx.req.set_header("X-Before-Exit", "1")
        ngx.exit(ngx.OK)
      end }""")
    ex = FakeExchange(b"/p")
    assert flt.rewrite(ex) is None
    assert ex.request.get(b"x-before-exit") == b"1"


def test_a_failed_handler_drops_its_recorded_edits(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ access = function() ngx.req.set_header("X-A", "v") error("boom") end }""")
    ex = FakeExchange(b"/p")
    reply = flt.access(ex)
    assert isinstance(reply, LocalReply) and reply.response.status == 500
    assert ex.request.get(b"x-a") is None
