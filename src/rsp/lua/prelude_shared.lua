-- rsp's prelude, part 5 of 8: ngx.shared: a dictionary's methods, its incr bound once, and the numbers a handler
-- repeats bound too.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

-- ngx.shared.DICT over the machine's store (rsp.lua.shared_dict)
local dict_mt = {}
dict_mt.__index = dict_mt
for _, op in ipairs({"get", "get_stale", "set", "safe_set", "add", "safe_add", "replace", "incr", "delete", "ttl",
                     "expire", "flush_all", "flush_expired", "get_keys", "capacity", "free_space"}) do
  dict_mt[op] = function(self, ...) return B.shared(op, self.name, ...) end
end
-- each dictionary's incr, bound to it once (rsp.lua.shared_lua.SharedIncr): it returns the new value alone, or
-- (nil, err), or (value, nil, true) when the write evicted entries
local incr_of = {}
-- ... and with the numbers (value, init, init_ttl) a handler repeats fixed, called with the key alone: every
-- argument that crosses to Python costs lupa a conversion and a tuple copy. At most MAX_BOUND sets per
-- dictionary; other calls pass their arguments.
local MAX_BOUND = 8
local bound_of = {}
local function is_number(x) return type(x) == "number" and x == x end  -- (NaN equals nothing: never bound)
local function bound_incr(self, value, init, init_ttl)
  local list = bound_of[self]
  for i = 1, #list do
    local b = list[i]
    if b[1] == value and b[2] == init and b[3] == init_ttl then return b[4] end
  end
  if #list >= MAX_BOUND or not is_number(value) or (init ~= nil and not is_number(init))
     or (init_ttl ~= nil and not is_number(init_ttl)) then
    return nil
  end
  local g = B.shared_incr_bound(self.name, value, init, init_ttl)
  list[#list + 1] = {value, init, init_ttl, g}
  return g
end
function dict_mt:incr(key, value, init, init_ttl)
  local f = incr_of[self]
  if f == nil then return B.shared("incr", self.name, key, value, init, init_ttl) end
  -- otherwise only the arguments given cross to Python
  local n, err, forcible
  local g = bound_incr(self, value, init, init_ttl)
  if g ~= nil then n, err, forcible = g(key)
  elseif init_ttl ~= nil then n, err, forcible = f(key, value, init, init_ttl)
  elseif init ~= nil then n, err, forcible = f(key, value, init)
  else n, err = f(key, value) end
  if n == nil then return nil, err end
  -- as resty.core: (value, nil, forcible) when called with init, the value alone otherwise
  if init ~= nil then return n, nil, forcible or false end
  return n
end
ngx.shared = setmetatable({}, {__index = function(t, name)
  if not B.shared_exists(tostring(name)) then return nil end
  local d = setmetatable({name = tostring(name)}, dict_mt)
  incr_of[d] = B.shared_incr_for(d.name)
  bound_of[d] = {}
  rawset(t, name, d)
  return d
end})
