-- ngx.shared (lua_shared_dict parity 1m in nginx, shared = { parity = "1m" } in rsp)
local d = ngx.shared.parity
d:set("k", "v")
local added, err = d:add("k", "w")
local n = d:incr("n", 5, 10)
local missing, merr = d:incr("missing", 1)
ngx.say(d:get("k"), "|", tostring(added), "|", err, "|", n, "|", tostring(missing), "|", merr, "|",
        d:ttl("k"), "|", tostring(d:get("nope")))
d:flush_all()
ngx.exit(ngx.HTTP_OK)
