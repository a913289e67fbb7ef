-- rsp's prelude, part 3 of 8: the request: ngx.var (a per-step snapshot of the request's variables and fields),
-- ngx.ctx and ngx.status, ngx.header, ngx.arg and ngx.req.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

local B_var, B_vars = B.var, B.var_snapshot
local lower, find, sub, gsub, match, gmatch = string.lower, string.find, string.sub, string.gsub, string.match,
  string.gmatch
-- The request's most read variables (rsp.lua.ngx_vars.SNAPSHOT, in its order) and its header fields come from
-- one Python call per step, made at the first read of any of them: a call into Python costs more than
-- computing a variable in Lua, so `http_*`, `cookie_*` and `arg_*` are computed here from what that call
-- gave (as rsp.lua.ngx_vars computes them; tests/lua/test_ngx_vars_lua.py compares the two). Every ngx.req
-- change, and every step (a step may be another exchange's, or follow a Python filter's change), drops the
-- snapshot; the other variables (status, request_time, upstream_*, ...) are one call each.
local SNAPSHOT = {uri = 1, document_uri = 1, host = 2, args = 3, query_string = 3, request_uri = 4,
                  request_method = 5, scheme = 6, remote_addr = 7, http_host = 8}
local FIELDS = 9     -- the snapshot's last value: the fields, "name\0value\0..." with lower-case names
local step_vars = nil
local step_fields = nil   -- name -> value (several lines joined with ", "), and [COOKIES] the cookie lines
local COOKIES = {}
local NO_COOKIES = {}  -- (never written: a request without cookies makes no table for them)
local function vars_changed() step_vars = nil step_fields = nil end
-- A field set or cleared: only the fields are stale (the snapshot's other values do not depend on them),
-- unless it is Host, which is the authority (host, http_host).
local function field_changed(name)
  if step_vars ~= nil and lower(name) ~= "host" then
    step_vars[FIELDS] = false
    step_fields = nil
  else
    vars_changed()
  end
end
local function snapshot()
  local values = step_vars
  if values == nil then
    values = {B_vars()}
    step_vars = values
  end
  return values
end
-- value i of the snapshot: the call's snapshot leaves out (false) what the handler's text does not name
-- (rsp.lua.ngx_vars.wanted_by); a module or a computed name that reads one gets the whole snapshot then
local function snapshot_value(i)
  local v = snapshot()[i]
  if v == false then
    local fresh = {B_vars()}
    step_vars = fresh
    v = fresh[i]
  end
  return v
end
-- the request's fields as one NUL-separated run (name, value, ...; names lower-case)
local function field_blob()
  local values = snapshot()
  local blob = values[FIELDS]
  if blob == false then  -- a field changed since the snapshot: the fields again (the one call gives all)
    local fresh = {B_vars()}
    blob = fresh[FIELDS]
    values[FIELDS] = blob
  end
  return blob
end
-- the fields as a flat list {name, value, ...} (names lower-case)
local function field_list()
  local blob = field_blob()
  local list, n, pos, len = {}, 0, 1, #blob
  while pos <= len do
    local a = find(blob, "\0", pos, true)
    local b = find(blob, "\0", a + 1, true) or len + 1
    list[n + 1] = sub(blob, pos, a - 1)
    list[n + 2] = sub(blob, a + 1, b - 1)
    n = n + 2
    pos = b + 1
  end
  return list
end
local function fields()
  local map = step_fields
  if map ~= nil then return map end
  map = {}
  local cookies = NO_COOKIES
  local blob = field_blob()
  -- one pattern match per line (a name is never empty; an empty value is; the NUL after a value is skipped
  -- by gmatch's search for the next name)
  for name, value in gmatch(blob, "(%Z+)%z(%Z*)") do
    local old = map[name]
    map[name] = old and (old .. ", " .. value) or value
    if name == "cookie" then
      if cookies == NO_COOKIES then cookies = {} end
      cookies[#cookies + 1] = value
    end
  end
  map[COOKIES] = cookies
  step_fields = map
  return map
end
local dashed = setmetatable({}, {__index = function(t, name)
  local v = (gsub(lower(name), "_", "-"))
  t[name] = v
  return v
end})
local function cookie(name)
  for _, line in ipairs(fields()[COOKIES]) do
    for pair in gmatch(line, "[^;]+") do
      local p = match(pair, "^%s*(.-)%s*$")
      local eq = find(p, "=", 1, true)
      if eq and sub(p, 1, eq - 1) == name then return sub(p, eq + 1) end
    end
  end
  return nil
end
local function arg(name)
  local query = snapshot_value(3) or ""
  name = lower(name)
  local pos, len = 1, #query
  while pos <= len + 1 do
    local amp = find(query, "&", pos, true) or len + 1
    local part = sub(query, pos, amp - 1)
    local eq = find(part, "=", 1, true)
    if lower(eq and sub(part, 1, eq - 1) or part) == name then return eq and sub(part, eq + 1) or "" end
    pos = amp + 1
  end
  return nil
end
-- A prefixed variable's family and argument, found once per name: {HTTP, "x-canary"} for http_x_canary,
-- {ARG, "page"}, {COOKIE, "beta"}; false for any other name (a call into Python). At most MAX_KINDS names are
-- kept (a handler may build names from the request).
local HTTP, ARG, COOKIE = 1, 2, 3
local MAX_KINDS, n_kinds = 1024, 0
local var_kind = setmetatable({}, {__index = function(t, name)
  local kind = false
  if type(name) == "string" then
    if sub(name, 1, 5) == "http_" then kind = {HTTP, dashed[sub(name, 6)]}
    elseif sub(name, 1, 4) == "arg_" then kind = {ARG, sub(name, 5)}
    elseif sub(name, 1, 7) == "cookie_" then kind = {COOKIE, sub(name, 8)} end
    if n_kinds < MAX_KINDS then
      n_kinds = n_kinds + 1
      rawset(t, name, kind)
    end
  end
  return kind
end})
ngx.var = setmetatable({}, {
  __index = function(_, name)
    local i = SNAPSHOT[name]
    if i ~= nil then return snapshot_value(i) end
    local kind = var_kind[name]
    if kind then
      local family = kind[1]
      if family == HTTP then return fields()[kind[2]] end
      if family == ARG then return arg(kind[2]) end
      return cookie(kind[2])
    end
    return B_var(name)
  end,
  __newindex = function(_, name, value)
    vars_changed()
    B.var_set(tostring(name), value ~= nil and tostring(value) or nil)
  end,
})

-- ngx.ctx of the exchange that runs now: the driver receives it with each step (nil until a handler of the
-- exchange first used it), and hands a table made here back to the engine when the step ends
local step_ctx = nil
local ctx_new = false
setmetatable(ngx, {
  __index = function(_, k)
    if k == "ctx" then
      if step_ctx == nil then step_ctx = {} ctx_new = true end
      return step_ctx
    end
    if k == "status" then return B.status_get() end
    if k == "is_subrequest" then return false end
    return nil
  end,
  __newindex = function(t, k, v)
    if k == "ctx" then B.ctx_set(v) step_ctx = v ctx_new = false return end
    if k == "status" then B.status_set(tonumber(v)) return end
    rawset(t, k, v)
  end,
})

-- headers: lower-case keys, `_` read as `-`, several values as a list (OpenResty's get_headers table)
local function normalise(name) return (tostring(name):lower():gsub("_", "-")) end
local headers_mt = {__index = function(t, k) return rawget(t, normalise(k)) end}
local function header_table(pairs_list, raw)
  local t = {}
  for i = 1, #pairs_list, 2 do
    local k, v = pairs_list[i], pairs_list[i + 1]
    if not raw then k = k:lower() end
    local old = t[k]
    if old == nil then t[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else t[k] = {old, v} end
  end
  return raw and t or setmetatable(t, headers_mt)
end

ngx.header = setmetatable({}, {
  __index = function(_, name)
    local values = B.header_get(tostring(name))
    if values == nil or #values == 0 then return nil end
    if #values == 1 then return values[1] end
    local list = {}
    for i = 1, #values do list[i] = values[i] end
    return list
  end,
  __newindex = function(_, name, value)
    if type(value) == "table" then
      local list = {}
      for i = 1, #value do list[i] = tostring(value[i]) end
      B.header_set(tostring(name), list)
    elseif value == nil then B.header_set(tostring(name), nil)
    else B.header_set(tostring(name), tostring(value)) end
  end,
})

-- ngx.arg in body_filter: [1] the chunk (writable), [2] whether it is the last
ngx.arg = setmetatable({}, {
  __index = function(_, i) return B.arg_get(i) end,
  __newindex = function(_, i, v) B.arg_set(i, v) end,
})

local req = {}
ngx.req = req
function req.get_method() return B.req_method() end
function req.set_method(m)
  if type(m) == "string" then vars_changed() B.req_set_method(m) return end
  error("bad method: pass ngx.HTTP_GET and the like (strings in rsp)", 2)
end
function req.http_version() return B.req_version() end
function req.get_uri_args(max) return B.decode_args(B.req_query(), max or 100) end
function req.set_uri_args(args)
  if type(args) == "table" then args = ngx.encode_args(args) end
  vars_changed()
  B.req_set_query(tostring(args))
end
function req.set_uri(uri, jump)
  if jump then error("ngx.req.set_uri with jump = true is not supported: rsp routes after rewrite anyway", 2) end
  vars_changed()
  B.req_set_path(tostring(uri))
end
function req.get_headers(max, raw)
  if raw then return header_table(B.req_headers(), true) end
  return header_table(field_list(), false)
end
local function set_header(name, value)
  name = tostring(name)
  field_changed(name)
  local t = type(value)
  if batching and t ~= "table" then
    edits[n_edits + 1] = name
    edits[n_edits + 2] = value ~= nil and tostring(value) or false
    n_edits = n_edits + 2
  elseif t == "table" then
    local list = {}
    for i = 1, #value do list[i] = tostring(value[i]) end
    B.req_set_header(tostring(name), list)
  else B.req_set_header(tostring(name), value ~= nil and tostring(value) or nil) end
end
req.set_header = set_header
function req.clear_header(name) set_header(name, nil) end
function req.read_body() wait(B.req_read_body()) end
function req.get_body_data() return B.req_body() end
function req.set_body_data(data) B.req_set_body(tostring(data)) end
function req.discard_body() B.req_discard_body() end
function req.get_body_file() return nil end  -- rsp writes no request body to a file (rsp.pipeline.request_body)
function req.start_time() return B.started() end
