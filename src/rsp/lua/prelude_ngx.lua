-- rsp's prelude, part 2 of 8: the `ngx` table: its constants, output (print, say, exit, redirect) and log, and what
-- the later parts use to wait on I/O (`wait`) and to render values (`flatten`, `render`).
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

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
