-- The balancer phase's body (as OpenResty's balancer_by_lua_file): pick this try's peer from Redis.
local redis = require "resty.redis"
local balancer = require "ngx.balancer"

local red = redis:new()
red:set_timeout(200)  -- ms: a slow Redis must not hold requests for long
local ok, err = red:connect("127.0.0.1", 6379)
if not ok then
  ngx.log(ngx.ERR, "redis: ", err, "; using the pool's own choice")
  return
end
local backend, err = red:get("backend:" .. ngx.var.host)
red:set_keepalive(60000, 32)  -- the connection goes back to the worker's pool for the next request
if not backend or backend == ngx.null then
  return ngx.exit(ngx.HTTP_NOT_FOUND)
end
local ip, port = backend:match("^(.-):(%d+)$")
local ok, err = balancer.set_current_peer(ip, tonumber(port))
if not ok then ngx.log(ngx.ERR, "set_current_peer: ", err) end
