-- Canary by cookie: clients with `canary=1` (or 5 % of new visitors, who then keep it) go to the canary pool.
-- rsp examples/lua/canary.lua
listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }
pools = {
  default = { backends = { "127.0.0.1:9001" } },
  canary = { backends = { "127.0.0.1:9002" } },
}
lua = {
  access = function()
    local cookie = ngx.var.cookie_canary
    if cookie == nil then
      -- a new visitor: 1 in 20 joins the canary; header_filter remembers the choice in a cookie
      cookie = (ngx.crc32_short(ngx.var.remote_addr .. ngx.var.remote_port) % 20 == 0) and "1" or "0"
      ngx.ctx.set_canary = cookie
    end
    if cookie == "1" then ngx.var.rsp_pool = "canary" end
  end,
  header_filter = function()
    if ngx.ctx.set_canary then
      ngx.header["Set-Cookie"] = "canary=" .. ngx.ctx.set_canary .. "; Path=/; Max-Age=86400"
    end
  end,
}
