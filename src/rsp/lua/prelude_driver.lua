-- rsp's prelude, part 8 of 8: the driver the engine calls: it compiles handlers, runs them on reusable runner
-- coroutines and ends each step (done, waiting, failed, over budget); then the JIT on and `debug` gone.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

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

-- (the engine switched the JIT off before loading the prelude, so that nothing ran compiled before the
-- handlers' chunks could be marked: see nojit in prelude_sandbox.lua)
if jit then jit.on() end
-- lupa looks `debug.traceback` up in the globals at every call from Python (its pcall's message handler):
-- about 350 of the ~2,900 instructions a call costs. Handlers never see these globals (their `env` has no
-- debug), their errors are caught in their coroutines and named by `finish`, and the prelude keeps what it
-- uses of debug in locals; an error of the driver itself reaches the engine without lupa's traceback.
debug = nil
return driver
