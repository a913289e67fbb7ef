-- rsp's prelude, part 6 of 8: what waits on rsp's loop: ngx.sleep, ngx.timer and the cosockets (ngx.socket.tcp).
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

function ngx.sleep(seconds) return wait(B.sleep(tonumber(seconds) or 0)) end
ngx.timer = {
  at = function(delay, fn, ...) return B.timer(tonumber(delay) or 0, fn, false, pack(...)) end,
  every = function(delay, fn, ...) return B.timer(tonumber(delay) or 0, fn, true, pack(...)) end,
  running_count = function() return B.timers_running() end,
  pending_count = function() return B.timers_pending() end,
}

-- cosockets (rsp.lua.cosocket): each method that waits yields to the driver through `wait`
local sock_mt = {}
sock_mt.__index = sock_mt
function sock_mt:connect(host, port, o) return wait(B.sock("connect", self.h, host, port, o)) end
function sock_mt:send(data)
  local out = {}
  flatten(out, data)
  return wait(B.sock("send", self.h, concat(out)))
end
function sock_mt:receive(pattern) return wait(B.sock("receive", self.h, pattern or "*l")) end
function sock_mt:receiveany(max) return wait(B.sock("receiveany", self.h, max)) end
function sock_mt:settimeout(ms) return B.sock("settimeout", self.h, ms) end
function sock_mt:settimeouts(c, s, r) return B.sock("settimeouts", self.h, c, s, r) end
function sock_mt:setkeepalive(timeout, size) return B.sock("setkeepalive", self.h, timeout, size) end
function sock_mt:getreusedtimes() return B.sock("getreusedtimes", self.h) end
function sock_mt:close() return B.sock("close", self.h) end
function sock_mt:setoption() return 1 end
function sock_mt:sslhandshake() return nil, "TLS on cosockets is not supported by rsp yet" end
ngx.socket = {tcp = function() return setmetatable({h = B.sock_new()}, sock_mt) end}
ngx.socket.stream = ngx.socket.tcp
