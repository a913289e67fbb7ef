-- The Lua half of the ngx API and of the sandbox: see rsp/lua/prelude.py, which loads this file.
local B, opts = ...
local co_create, co_resume, co_yield, co_status, co_running, co_wrap =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status, coroutine.running, coroutine.wrap
local sethook, getinfo = debug.sethook, debug.getinfo
local type, pairs, ipairs, tostring, tonumber, select, error, setmetatable, rawget, rawset, pcall =
  type, pairs, ipairs, tostring, tonumber, select, error, setmetatable, rawget, rawset, pcall
local concat, insert, sort = table.concat, table.insert, table.sort
local unpack = unpack or table.unpack
local load, floor = load, math.floor
local HOOK_EVERY = opts.hook_every
-- LuaJIT's traces call no count hook, so no code of a handler may ever be compiled: every chunk made from
-- text (handlers, modules, the sandbox's load) gets jit.off for itself and every function inside it (LuaJIT
-- neither starts a trace in such a function nor records into one: a trace that would call it aborts), and
-- runs on the interpreter, where the hook counts each instruction. rsp's own functions in this file are
-- compiled once hot (the JIT is switched on at the end of this file): like OpenResty's ngx API in C, a call
-- of one is not counted instruction by instruction, but each does a bounded amount of work for the handler
-- that calls it, and that handler's own loop is counted. tests/lua/test_sandbox.py checks runaway loops over
-- them in a handler, a module and a loaded chunk.
local nojit = jit and jit.off or function() end

local OP = {}        -- first value a driver-bound yield carries
local WAIT = B.wait_marker
local null = newproxy and newproxy(false) or setmetatable({}, {__tostring = function() return "null" end})

-- the budget of the handler that runs now (math.huge while none does)
local remaining = math.huge
local budget_hit = false
local budget_message = "handler exceeded its instruction budget"
local hook
hook = function()
  -- only handlers (and the coroutines they make) are counted: never the driver between two steps, which
  -- runs on the main thread (LuaJIT's hook is global)
  local co, main = co_running()
  if co == nil or main then return end
  if budget_hit then
    -- a pcall caught the first error: fail again at every instruction until the error leaves the handler
    error(budget_message, 0)
  end
  remaining = remaining - HOOK_EVERY
  if remaining < 0 then
    budget_hit = true
    -- the innermost frame of the handler's own code: not rsp's ngx functions, not C
    local where = "?"
    for level = 2, 50 do
      local info = getinfo(level, "Sl")
      if not info then break end
      if info.what ~= "C" and info.source ~= "=<rsp>" then
        where = info.short_src .. ":" .. tostring(info.currentline)
        break
      end
    end
    budget_message = where .. ": handler exceeded its instruction budget (" .. tostring(opts.budget) ..
                     " instructions): does it loop forever?"
    if jit then sethook(hook, "", 1) else sethook(co_running(), hook, "", 1) end
    error(budget_message, 0)
  end
end

local function pack(...) return {n = select("#", ...), ...} end

-- An error raised by the Python half of an ngx function carries no Lua position: every bridge function is
-- called through `checked`, which names the handler's own line (the innermost frame outside rsp's code).
local function where()
  for level = 2, 50 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.source ~= "=<rsp>" then
      return info.short_src .. ":" .. tostring(info.currentline) .. ": "
    end
  end
  return ""
end
local function checked(ok, ...)
  if ok then return ... end
  error(where() .. tostring((...)), 0)
end
-- ngx.req.set_header / clear_header in a request phase are recorded here (name, value or false, ...) and
-- applied in one crossing: handed back with the step's result when the handler ends (rsp.lua.engine), or
-- sent before any other call into Python (which might read the request) and before the step yields.
local edits, n_edits = {}, 0
local batching = false  -- the step runs a request phase's handler from its start (LuaEngine.run)
local B_apply
local function flush_edits()
  local n = n_edits
  n_edits = 0
  B_apply(unpack(edits, 1, n))
end
do
  local raw = B
  B = {}
  for name, f in pairs(raw) do
    if name == "wait_marker" then B[name] = f
    else B[name] = function(...)
      if n_edits > 0 then flush_edits() end
      return checked(pcall(f, ...))
    end end
  end
  local apply = raw.req_apply
  B_apply = function(...) return checked(pcall(apply, ...)) end
end

-- ---- the sandbox ----------------------------------------------------------------------------------------
local env = {}
local loaded = {}

-- LuaJIT's hooks belong to the whole state: set once, the hook counts every coroutine. Lua 5.4's belong to
-- each coroutine: set on each.
local GLOBAL_HOOK = jit ~= nil
if GLOBAL_HOOK then sethook(hook, "", HOOK_EVERY) end
local function new_coroutine(fn)
  local co = co_create(fn)
  if not GLOBAL_HOOK then sethook(co, hook, "", HOOK_EVERY) end
  return co
end

-- A coroutine of the handler's own that waits on ngx I/O passes the wait up to the driver, transparently
-- (OpenResty does the same): its OP yields are re-yielded, and their results handed back.
local function user_resume(co, ...)
  local r = pack(co_resume(co, ...))
  while r[1] and r[2] == OP and co_status(co) == "suspended" do
    r = pack(co_resume(co, co_yield(unpack(r, 2, r.n))))
  end
  return unpack(r, 1, r.n)
end

local safe_coroutine = {
  create = new_coroutine,
  resume = user_resume,
  yield = co_yield,
  status = co_status,
  running = co_running,
  isyieldable = coroutine.isyieldable,
  wrap = function(fn)
    local co = new_coroutine(fn)
    return function(...)
      local r = pack(user_resume(co, ...))
      if not r[1] then error(r[2], 0) end
      return unpack(r, 2, r.n)
    end
  end,
}

local safe_string = {}
for k, v in pairs(string) do if k ~= "dump" then safe_string[k] = v end end

local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end

for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
                       "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type",
                       "unpack", "xpcall", "newproxy"}) do
  env[name] = _G[name]
end
env.unpack = unpack
env.string = safe_string
env.table = copy(table)
env.math = copy(math)
env.coroutine = safe_coroutine
env.bit = bit and copy(bit) or nil
env.os = {time = os.time, clock = os.clock, date = os.date, difftime = os.difftime}
env.collectgarbage = function(what)
  if what == nil or what == "collect" or what == "count" or what == "step" then return collectgarbage(what) end
  error("collectgarbage('" .. tostring(what) .. "') is not allowed in rsp's sandbox", 2)
end
-- text chunks only: no bytecode (it can break out of any sandbox)
env.load = function(chunk, name, mode, e)
  if type(chunk) ~= "string" then return nil, "rsp's sandbox loads only strings" end
  local fn, err = load(chunk, name, "t", e or env)
  if fn then nojit(fn, true) end
  return fn, err
end
env.loadstring = function(chunk, name) return env.load(chunk, name) end
env._G = env

-- ---- ngx --------------------------------------------------------------------------------------------------
local ngx = {null = null, OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5}
env.ngx = ngx
ngx.config = {subsystem = "http", ngx_lua_version = 10026, nginx_version = 1027000, debug = false}
ngx.worker = {id = function() return B.worker_id() end, count = function() return B.worker_count() end,
              pid = function() return B.worker_pid() end, exiting = function() return false end}

for name, code in pairs({CONTINUE = 100, SWITCHING_PROTOCOLS = 101, OK = 200, CREATED = 201, ACCEPTED = 202,
    NO_CONTENT = 204, PARTIAL_CONTENT = 206, SPECIAL_RESPONSE = 300, MOVED_PERMANENTLY = 301,
    MOVED_TEMPORARILY = 302, SEE_OTHER = 303, NOT_MODIFIED = 304, TEMPORARY_REDIRECT = 307,
    PERMANENT_REDIRECT = 308, BAD_REQUEST = 400, UNAUTHORIZED = 401, PAYMENT_REQUIRED = 402, FORBIDDEN = 403,
    NOT_FOUND = 404, NOT_ALLOWED = 405, NOT_ACCEPTABLE = 406, REQUEST_TIMEOUT = 408, CONFLICT = 409, GONE = 410,
    UPGRADE_REQUIRED = 426, TOO_MANY_REQUESTS = 429, CLOSE = 444, ILLEGAL = 451, INTERNAL_SERVER_ERROR = 500,
    METHOD_NOT_IMPLEMENTED = 501, BAD_GATEWAY = 502, SERVICE_UNAVAILABLE = 503, GATEWAY_TIMEOUT = 504,
    VERSION_NOT_SUPPORTED = 505, INSUFFICIENT_STORAGE = 507}) do
  ngx["HTTP_" .. name] = code
end
for _, m in ipairs({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND",
                    "PROPPATCH", "LOCK", "UNLOCK", "PATCH", "TRACE"}) do
  ngx["HTTP_" .. m] = m
end
local LEVELS = {"STDERR", "EMERG", "ALERT", "CRIT", "ERR", "WARN", "NOTICE", "INFO", "DEBUG"}
for i, name in ipairs(LEVELS) do ngx[name] = i - 1 end

local function wait(...)
  local r = pack(...)
  if r[1] == WAIT then return co_yield(OP, "wait") end
  return unpack(r, 1, r.n)
end

local function flatten(out, v)
  local t = type(v)
  if t == "table" then
    for i = 1, #v do flatten(out, v[i]) end
  elseif v == nil then out[#out + 1] = "nil"
  elseif v == null then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  else out[#out + 1] = tostring(v) end
end
local function render(...)
  local out = {}
  for i = 1, select("#", ...) do flatten(out, (select(i, ...))) end
  return concat(out)
end

function ngx.print(...) B.output(render(...)) return 1 end
function ngx.say(...) B.output(render(...) .. "\n") return 1 end
function ngx.flush() return 1 end
function ngx.eof() return 1 end
function ngx.exit(status) co_yield(OP, "exit", status) end
function ngx.redirect(uri, status)
  B.header_set("Location", tostring(uri))
  co_yield(OP, "exit", status or 302)
end

function ngx.log(level, ...)
  local info = getinfo(2, "Sl")
  local where = info and (info.short_src .. ":" .. tostring(info.currentline)) or "?"
  B.log(level, where, render(...))
end

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

ngx.time = function() return B.time() end
ngx.now = function() return B.now() end
ngx.update_time = function() end
ngx.today = function() return B.today() end
ngx.localtime = function() return B.localtime() end
ngx.utctime = function() return B.utctime() end
ngx.http_time = function(t) return B.http_time(t) end
ngx.cookie_time = function(t) return B.cookie_time(t) end
ngx.parse_http_time = function(s) return B.parse_http_time(s) end
ngx.encode_base64 = function(s, no_pad) return B.encode_base64(tostring(s), no_pad and true or false) end
ngx.decode_base64 = function(s) return B.decode_base64(tostring(s)) end
ngx.md5 = function(s) return B.md5(tostring(s)) end
ngx.md5_bin = function(s) return B.md5_bin(tostring(s)) end
ngx.sha1_bin = function(s) return B.sha1_bin(tostring(s)) end
ngx.crc32_short = function(s) return B.crc32(tostring(s)) end
ngx.crc32_long = ngx.crc32_short
ngx.escape_uri = function(s) return B.escape_uri(tostring(s)) end
ngx.unescape_uri = function(s) return B.unescape_uri(tostring(s)) end
ngx.quote_sql_str = function(s) return B.quote_sql_str(tostring(s)) end
ngx.decode_args = function(s, max) return B.decode_args(tostring(s), max or 100) end
function ngx.encode_args(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  sort(keys)  -- a stable order (OpenResty follows the table's, which Lua leaves unspecified)
  local items = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      local list = {}
      for i = 1, #v do list[i] = tostring(v[i]) end
      items[#items + 1] = {k, list}
    elseif type(v) == "boolean" then items[#items + 1] = {k, v}
    else items[#items + 1] = {k, tostring(v)} end
  end
  return B.encode_args(items)
end

function ngx.sleep(seconds) return wait(B.sleep(tonumber(seconds) or 0)) end
ngx.timer = {
  at = function(delay, fn, ...) return B.timer(tonumber(delay) or 0, fn, false, pack(...)) end,
  every = function(delay, fn, ...) return B.timer(tonumber(delay) or 0, fn, true, pack(...)) end,
  running_count = function() return B.timers_running() end,
  pending_count = function() return B.timers_pending() end,
}

-- ngx.re over Python's re (rsp.lua.ngx_text: the dialect)
local re = {}
ngx.re = re
function re.match(subject, regex, options, ctx, res)
  local pos = ctx and ctx.pos or 1
  local caps, from, to = B.re_match(tostring(subject), regex, options or "", pos - 1)
  if caps == nil or caps == false then return caps, from end
  if ctx then ctx.pos = to + 1 end
  if res then for k, v in pairs(caps) do res[k] = v end return res end
  return caps
end
function re.find(subject, regex, options, ctx, nth)
  local pos = ctx and ctx.pos or 1
  local from, to = B.re_find(tostring(subject), regex, options or "", pos - 1, nth or 0)
  if from == nil or from == false then return nil, to end
  if ctx then ctx.pos = to + 1 end
  return from, to
end
function re.gmatch(subject, regex, options)
  local all, err = B.re_all(tostring(subject), regex, options or "", 0)
  if all == nil then return nil, err end
  local i = 0
  return function()
    i = i + 1
    local m = all[i]
    return m and m.caps or nil
  end
end
local function replace(subject, regex, replacement, options, count)
  subject = tostring(subject)
  if type(replacement) ~= "function" then
    return B.re_sub(subject, regex, tostring(replacement), options or "", count)
  end
  local all, err = B.re_all(subject, regex, options or "", count)
  if all == nil then return nil, nil, err end
  local out, last = {}, 1
  for i = 1, #all do
    local m = all[i]
    out[#out + 1] = subject:sub(last, m.from - 1)
    out[#out + 1] = tostring(replacement(m.caps))
    last = m.to + 1
  end
  out[#out + 1] = subject:sub(last)
  return concat(out), #all
end
function re.sub(subject, regex, replacement, options) return replace(subject, regex, replacement, options, 1) end
function re.gsub(subject, regex, replacement, options) return replace(subject, regex, replacement, options, 0) end

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

-- ---- the driver -------------------------------------------------------------------------------------------
local driver = {OP = OP, null = null, env = env}

-- compile a handler: kind "function" chunks return the function, a file's chunk is the body
function driver.compile(text, token, kind)
  local fn, err = load(text, "=" .. token, "t", env)
  if not fn then return nil, err end
  nojit(fn, true)
  if kind == "function" then
    local ok, made = pcall(fn)
    if not ok then return nil, made end
    return made, nil
  end
  return fn, nil
end

-- Handlers of request phases run on runner coroutines that are reused: a runner calls a handler, yields DONE
-- when it returns, and waits at the top of its loop for the next one (making a coroutine per call costs more
-- than the handler of a small script). A runner whose handler failed, exited or still waits is not reused.
local DONE = {}
local MAX_IDLE_RUNNERS = 64
local idle, n_idle = {}, 0
local function runner(fn)
  while true do
    fn()
    fn = co_yield(DONE)
  end
end

-- A step ends: nil (done: the common case, nothing made for Python to convert), the exchange's new ngx.ctx
-- table (done, and a handler made ngx.ctx this step), or (kind, coroutine, values...): kind "error" |
-- "budget" (then the message), or the operation the handler waits on ("exit", "wait").
local function finish(co, ok, first, ...)
  remaining = math.huge
  batching = false
  if budget_hit and jit then sethook(hook, "", HOOK_EVERY) end
  local made = ctx_new and step_ctx or nil
  ctx_new = false
  if ok and (first == DONE or co_status(co) == "dead") then
    if first == DONE and n_idle < MAX_IDLE_RUNNERS then
      n_idle = n_idle + 1
      idle[n_idle] = co
    end
    if n_edits > 0 then
      -- the request's edits go back with the result: ("req", ngx.ctx made or false, name, value, ...)
      local n = n_edits
      n_edits = 0
      return "req", made or false, unpack(edits, 1, n)
    end
    return made
  end
  if n_edits > 0 then
    if ok then flush_edits()  -- ngx.exit(ngx.OK) goes on: its edits count
    else n_edits = 0 end      -- a failed handler's request is answered 500
  end
  if made ~= nil then B.ctx_set(made) end  -- a step that does not end done: the engine keeps it now
  if not ok then
    local message = tostring(first)
    if message == "not enough memory" then
      -- an allocation failure carries no position: take it from the dead coroutine's stack (Lua 5.4 keeps
      -- it; LuaJIT does not, and the engine names the handler's first line instead)
      pcall(function()
        for level = 0, 20 do
          local info = getinfo(co, level, "Sl")
          if not info then break end
          if info.what ~= "C" and info.source ~= "=<rsp>" and (info.currentline or 0) > 0 then
            message = info.short_src .. ":" .. tostring(info.currentline) .. ": " .. message
            break
          end
        end
      end)
    end
    if budget_hit then message = budget_message end  -- the first error, not a later one a pcall rethrew
    return budget_hit and "budget" or "error", co, message
  end
  if first ~= OP then return "error", co, "a handler yielded outside ngx's API (coroutine.yield)" end
  return ..., co, select(2, ...)
end

local BUDGET = opts.budget

local function step(co, ctx, ...)
  remaining = BUDGET
  budget_hit = false
  step_ctx = ctx
  ctx_new = false
  step_vars = nil
  step_fields = nil
  n_edits = 0
  return finish(co, co_resume(co, ...))
end

local function take_runner()
  if n_idle > 0 then
    local co = idle[n_idle]
    idle[n_idle] = nil
    n_idle = n_idle - 1
    return co
  end
  return new_coroutine(runner)
end

-- The two functions the engine calls for one compiled handler, each on a runner (no per-call arguments to
-- convert but these): `request(ctx, v1 .. v9)` for a request phase, whose ngx.req edits may be handed back
-- with its result; v1 .. v9 are the ngx.var snapshot (rsp.lua.ngx_vars.snapshot, FIELDS last) when the
-- engine passes it with the call (a handler whose text reads ngx.var: one crossing fewer), else nil.
-- `plain(ctx)` for the other phases and init. `ctx`: the exchange's ngx.ctx table, or nil.
local call_vars = {}
function driver.bind(fn)
  local function request(ctx, v1, v2, v3, v4, v5, v6, v7, v8, v9)
    local co = take_runner()
    remaining = BUDGET
    budget_hit = false
    step_ctx = ctx
    ctx_new = false
    step_fields = nil
    n_edits = 0
    if v9 ~= nil then
      -- one table for every call's snapshot (less for the collector: a request's garbage costs it time)
      local vars = call_vars
      vars[1], vars[2], vars[3], vars[4], vars[5], vars[6], vars[7], vars[8], vars[9] =
        v1, v2, v3, v4, v5, v6, v7, v8, v9
      step_vars = vars
    else
      step_vars = nil
    end
    batching = true
    return finish(co, co_resume(co, fn))
  end
  local function plain(ctx) return step(take_runner(), ctx, fn) end
  return request, plain
end
-- a timer's function, with its arguments, on a coroutine of its own
function driver.start_args(fn, ...)
  return step(new_coroutine(fn), nil, ...)
end
function driver.resume(co, ctx, values)
  return step(co, ctx, unpack(values, 1, values.n or #values))
end
function driver.pack(...) return pack(...) end
function driver.new_table() return {} end

-- (the engine switched the JIT off before loading this file, so that nothing ran compiled before the handlers'
-- chunks could be marked: see nojit above)
if jit then jit.on() end
-- lupa looks `debug.traceback` up in the globals at every call from Python (its pcall's message handler):
-- about 350 of the ~2,900 instructions a call costs. Handlers never see these globals (their `env` has no
-- debug), their errors are caught in their coroutines and named by `finish`, and this file keeps what it
-- uses of debug in locals; an error of the driver itself reaches the engine without lupa's traceback.
debug = nil
return driver
