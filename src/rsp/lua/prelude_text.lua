-- rsp's prelude, part 4 of 8: the ngx functions that compute from their arguments: time, encodings, hashes, URI
-- and argument coding, and ngx.re.
-- rsp/lua/prelude.py joins the parts, in its PARTS order, into one chunk: a part uses the locals of the
-- parts before it.

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
