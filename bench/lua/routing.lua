local uri = ngx.var.uri
local tier = "default"
if uri:sub(1, 5) == "/api/" then tier = "api"
elseif ngx.var.http_x_canary == "1" then tier = "canary"
elseif ngx.var.cookie_beta then tier = "beta" end
local args = ngx.var.args
if args and args:find("debug", 1, true) then tier = tier .. "-debug" end
ngx.req.set_header("X-Tier", tier)
ngx.ctx.tier = tier
ngx.ctx.host = ngx.var.host
