-- rsp's prelude, part 1 of 8: the prelude's locals (what it uses of the standard library and of debug), the
-- instruction budget's count hook, the bridge's functions checked and named, the ngx.req edits batched, and
-- `env`: the sandbox every handler, module and loaded chunk runs in.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

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
-- runs on the interpreter, where the hook counts each instruction. rsp's own functions (the prelude's) are
-- compiled once hot (the JIT is switched on at the prelude's end): like OpenResty's ngx API in C, a call
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
