local n, err = ngx.shared.hits:incr("requests", 1, 0)
if not n then ngx.log(ngx.ERR, "incr: ", err) end
