-- REPL helpers used by the `retort` host (lua/host/main.c): how results are shown, and help().
-- The host does the reading (readline, continuation lines, Ctrl-C); this module only formats.
--
--   repl.show(v)      -> string: tostring semantics (tensors print Torch-style through their
--                        __tostring); plain tables shown briefly: {1, 2, 3, n = 4, ...}
--   repl.print(...)   writes all results separated by tabs, then a newline
--   repl.help()       prints a short orientation (bound as the global `help` in the REPL)

local M = {}

local MAX_ITEMS = 12   -- entries shown of a plain table before "..."
local MAX_DEPTH = 2    -- nested plain tables deeper than this show as {...}
local MAX_STRING = 60  -- strings inside tables are cut to this many characters

local function is_plain_table(v)
   if type(v) ~= "table" then return false end
   local mt = getmetatable(v)
   return mt == nil or (type(mt) == "table" and rawget(mt, "__tostring") == nil
                        and rawget(mt, "__name") == nil)
end

local function is_identifier(s)
   return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local show_brief

local function show_inner(v, depth)
   local t = type(v)
   if t == "string" then
      if #v > MAX_STRING then v = v:sub(1, MAX_STRING) .. "..." end
      return string.format("%q", v)
   elseif is_plain_table(v) then
      return show_brief(v, depth + 1)
   end
   local ok, s = pcall(tostring, v)
   return ok and s or ("<" .. t .. ">")
end

function show_brief(t, depth)
   if depth > MAX_DEPTH then return next(t) == nil and "{}" or "{...}" end
   local parts, count, n = {}, 0, #t
   for i = 1, n do
      count = count + 1
      if count > MAX_ITEMS then break end
      parts[#parts + 1] = show_inner(rawget(t, i), depth)
   end
   local keys = {}
   for k in pairs(t) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
   end
   table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      if ta == "string" or ta == "number" then return a < b end
      return tostring(a) < tostring(b)
   end)
   local total = n + #keys
   for _, k in ipairs(keys) do
      count = count + 1
      if count > MAX_ITEMS then break end
      local ks = is_identifier(k) and k or ("[" .. show_inner(k, MAX_DEPTH) .. "]")
      parts[#parts + 1] = ks .. " = " .. show_inner(rawget(t, k), depth)
   end
   if total > MAX_ITEMS then
      parts[#parts + 1] = string.format("... (%d entries)", total)
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

--- The text shown for one REPL result.
function M.show(v)
   if is_plain_table(v) then return show_brief(v, 1) end
   return tostring(v)
end

--- Print REPL results: each shown with M.show, separated by tabs.
function M.print(...)
   local n = select("#", ...)
   local out = {}
   for i = 1, n do out[i] = M.show((select(i, ...))) end
   io.stdout:write(table.concat(out, "\t"), "\n")
   io.stdout:flush()
end

M.helptext = [[
retort: knowledge distillation in Lua (Torch7 style). The global `retort` is bound here.

  x = retort.tensor{{1, 2}, {3, 4}}     -- from nested tables (f32); also randn(2, 3), zeros(4)
  x                                      -- expressions print their value
  w = retort.randn(2, 2):requiresGrad()
  loss = x:matmul(w):pow(2):mean()
  loss:backward(); w.grad                -- reverse-mode gradient
  net = retort.nn.Sequential():add("fc", retort.nn.Linear(2, 3))

  retort.distill.kd(s, t, {T = 4, alpha = 0.9, labels = y})   -- distillation losses
  retort run recipes/<name>.lua --epochs=3                     -- recipes, from the shell

Keys: Tab completes names and fields, Ctrl-C stops a computation (or clears the line),
Ctrl-D quits. Lines starting with '=' print their value, as in Lua 5.1.
Docs: README.md (overview), lua/README.md (the Lua side), recipes/ (runnable examples).]]

--- Print a short orientation.
function M.help()
   io.stdout:write(M.helptext, "\n")
   io.stdout:flush()
end

return M
