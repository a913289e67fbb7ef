-- rsp's prelude, part 7 of 8: the built-in modules (cjson, ngx.balancer, ngx.re, ...) and the sandbox's `require`.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

-- built-in modules
local cjson = {null = null}
function cjson.encode(v)
  local s, err = B.json_encode(v)
  if s == nil then error(err, 2) end
  return s
end
function cjson.decode(s)
  local v, err = B.json_decode(tostring(s))
  if err ~= nil then error(err, 2) end
  return v
end
function cjson.new() return cjson end
local function safe_decode(s)
  local v, err = B.json_decode(tostring(s))
  if err then return nil, err end
  return v
end
cjson.safe = {null = null, encode = function(v) return B.json_encode(v) end, decode = safe_decode,
              new = function() return cjson.safe end}
cjson.empty_table_mt = {}
cjson.encode_empty_table_as_object = function() end
cjson.decode_array_with_array_mt = function() end

local balancer = {}
function balancer.set_current_peer(host, port) return B.set_peer(tostring(host), tonumber(port)) end
function balancer.set_more_tries(n) return B.set_more_tries(tonumber(n)) end
function balancer.get_last_failure() return B.last_failure() end
function balancer.set_timeouts(connect, send, read) return B.set_timeouts(connect, send, read) end

loaded["cjson"] = cjson
loaded["cjson.safe"] = cjson.safe
loaded["ngx.balancer"] = balancer
loaded["ngx.re"] = re
loaded["resty.core"] = {}
loaded["table.new"] = (pcall(require, "table.new")) and require("table.new") or function() return {} end
loaded["table.clear"] = (pcall(require, "table.clear")) and require("table.clear") or
  function(t) for k in pairs(t) do t[k] = nil end end
loaded["bit"] = env.bit
for _, name in ipairs({"string", "table", "math", "coroutine", "os"}) do loaded[name] = env[name] end

local function chunk_name(path) return "=" .. B.chunk_token(path) end

function env.require(name)
  name = tostring(name)
  local mod = loaded[name]
  if mod ~= nil then return mod end
  if name:find("/", 1, true) then error("module '" .. name .. "' not found (a module name has no '/')", 2) end
  local path, text = B.find_module(name)
  if not path then error("module '" .. name .. "' not found in package_path:" .. tostring(text), 2) end
  local fn, err = load(text, chunk_name(path), "t", env)
  if not fn then error(B.restore(err), 2) end
  nojit(fn, true)
  mod = fn(name)
  if mod == nil then mod = true end
  loaded[name] = mod
  return mod
end
env.package = {loaded = loaded, path = opts.package_path}
