-- Rate limit per client address with ngx.shared and incr: at most 100 requests a minute, counted across every
-- worker of the machine (ngx.shared is one LMDB store per machine). rsp examples/lua/rate_limit.lua
listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }
backends = { "127.0.0.1:9001" }
workers = 2
lua = {
  shared = { limits = "10m" },
  access = function()
    local limit, window = 100, 60
    local key = ngx.var.remote_addr .. ":" .. math.floor(ngx.time() / window)
    -- init 0 and init_ttl = the window: the counter starts at the first request and disappears after it
    local count, err = ngx.shared.limits:incr(key, 1, 0, window)
    if not count then
      ngx.log(ngx.ERR, "rate limit store: ", err)
      return
    end
    if count > limit then
      ngx.header["Retry-After"] = window - ngx.time() % window
      return ngx.exit(ngx.HTTP_TOO_MANY_REQUESTS)
    end
  end,
}
