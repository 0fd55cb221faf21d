-- REPL helpers used by the `retort` host (lua/host/main.c): how results are shown, help(), and
-- Tab completion. The host does the reading (readline, continuation lines, Ctrl-C); this module
-- formats, documents and completes.
--
--   repl.show(v)      -> string: tostring semantics (tensors print Torch-style through their
--                        __tostring); plain tables shown briefly: {1, 2, 3, n = 4, ...}
--   repl.print(...)   writes all results separated by tabs, then a newline
--   repl.help([v])    bound as the global `help` in the REPL: no argument prints a short
--                     orientation; a function prints its doc comment; a module or class lists its
--                     functions with their first doc line; a string is looked up as a dotted name;
--                     any other value shows its type and methods
--   repl.complete(text) -> sorted list of completions of "retort.ra", "x:na", "net:for", "pri"
--                     (called by the host's readline completion; see "Completion" below)
--
-- Completion. The host hands readline's word to complete(); everything before the last '.' or
-- ':' is resolved name by name from _G, and the keys that start with the rest are offered.
-- Lookups never run code: tables are read with rawget/next (no __index, no __pairs), and a value's
-- metatable (debug.getmetatable, so __metatable does not hide it) is followed through its
-- __index when that is a table, then that table's own metatable, and so on, at most MAX_CHAIN
-- levels with cycles cut: an nn module instance reaches its class, the parent classes and
-- nn.Module (`net:for` -> forward), a string reaches the string library. When an __index is a
-- function it is never called; the tables it closes over (its upvalues, read with
-- debug.getupvalue; `_ENV` excepted) are read instead: a tensor's C __index keeps the methods
-- table there (`x:na` -> narrow), the `retort` table's lazy loader keeps the names of the
-- submodules it loads on first use (`retort.pl` -> plot). The one __index that is called is that
-- loader's, as it only requires a retort submodule: `retort.nn.Li` loads retort.nn, as typing
-- `retort.nn` would, and completes Linear. After ':' only functions (and callable tables) are
-- offered. Names starting with '_' appear only when the typed part starts with '_';
-- Lua keywords complete at the start of a name.
--
-- Doc comments. help(f) for a Lua function reads its source file (debug.getinfo(f, "S"): source
-- and linedefined) and prints the comment lines right above the definition (`---` lines, or a
-- block of `--` lines), under a signature made from the parameter names (debug.getlocal). C
-- functions have no source: help says so and prints their name. Files are read only when help
-- is called.

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

  help(retort.distill.kd)    a function's doc comment     help(retort.distill)   a module's functions
  help(x)                    a value's type and methods   help("retort.nn.Linear")   by name

Keys: Tab completes names, fields and methods (x:na<Tab>, net:for<Tab>), Ctrl-C stops a
computation (or clears the line), Ctrl-D quits. Lines starting with '=' print their value.
Docs: README.md (overview), lua/README.md (the Lua side), recipes/ (runnable examples).]]

-- ------------------------------------------------------------------- completion

local MAX_CHAIN = 8 -- metatable __index levels followed (class chains are a few deep)

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

-- The tables an __index function closes over (it is never called): its upvalues that are tables,
-- _ENV excepted (a Lua function's globals are not its fields).
local function upvalue_tables(f)
   local out = {}
   local info = debug.getinfo(f, "u")
   for i = 1, info and info.nups or 0 do
      local name, v = debug.getupvalue(f, i)
      if type(v) == "table" and name ~= "_ENV" then out[#out + 1] = v end
   end
   return out
end

-- Visit the tables that hold v's fields, in lookup order: v itself when a table, then along the
-- metatable __index chain (tables, and the tables an __index function closes over, whose own
-- metatables are followed in turn: Sequential's __index function closes over the Sequential
-- class, whose metatable leads to nn.Module). visit returns true to stop.
local function field_tables(v, visit)
   local seen, done = {}, false
   local function see(t)
      if done or seen[t] then return false end
      seen[t] = true
      done = visit(t) and true or false
      return not done
   end
   local function follow(x, depth)
      if done or depth > MAX_CHAIN then return end
      local mt = debug.getmetatable(x)
      if type(mt) ~= "table" then return end
      local idx = rawget(mt, "__index")
      if type(idx) == "table" then
         if see(idx) then follow(idx, depth + 1) end
      elseif type(idx) == "function" then
         for _, t in ipairs(upvalue_tables(idx)) do
            if see(t) then follow(t, depth + 1) end
         end
      end
   end
   if type(v) == "table" and not see(v) then return end
   follow(v, 1)
end

--- lookup(v, key): v[key] as far as it can be found without running code (nil otherwise). One
--- exception: the `retort` table's own __index is called, as it only requires a retort submodule
--- (`retort.nn.Li<Tab>` loads retort.nn, as typing retort.nn would).
function M.lookup(v, key)
   if rawequal(v, package.loaded.retort) and type(key) == "string" then
      local ok, r = pcall(function() return v[key] end)
      return ok and r or nil
   end
   local found
   field_tables(v, function(t)
      found = rawget(t, key)
      return found ~= nil
   end)
   return found
end

local function callable(v)
   if type(v) == "function" then return true end
   local mt = debug.getmetatable(v)
   return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

--- fields(v, methodsOnly): the string keys reachable from v without running code (see the
--- header), a sorted list; methodsOnly keeps those whose value is callable.
function M.fields(v, methodsOnly)
   local set = {}
   field_tables(v, function(t)
      for k, val in next, t do
         if type(k) == "string" and (not methodsOnly or callable(val)) then set[k] = true end
      end
   end)
   local list = {}
   for k in pairs(set) do list[#list + 1] = k end
   table.sort(list)
   return list
end

-- Resolve a dotted name ("retort.distill") from env without running code; nil when not found.
local function resolve(path, env)
   local v = env
   for name in path:gmatch("[^.]+") do
      v = M.lookup(v, name)
      if v == nil then return nil end
   end
   return v
end

--- complete(text [, env]): the completions of `text` (a sorted list of whole words): fields of the
--- value named before the last '.' or ':' that start with what follows it, or global names and
--- keywords when there is no separator. env defaults to _G.
function M.complete(text, env)
   env = env or _G
   local head, sep, part = text:match("^(.*)([.:])([%w_]*)$")
   if not head then
      head, sep, part = nil, "", text
      if part ~= "" and not part:match("^[%a_][%w_]*$") then return {} end
   end
   local v = env
   if head then
      for name in (head .. "."):gmatch("([^.]*)%.") do -- every name of the head; "a:b.c", "a..b" refused
         if not name:match("^[%a_][%w_]*$") then return {} end
      end
      v = resolve(head, env)
      if v == nil then return {} end
   end
   local out = {}
   local want_hidden = part:sub(1, 1) == "_"
   for _, k in ipairs(M.fields(v, sep == ":")) do
      if k:sub(1, #part) == part and (want_hidden or k:sub(1, 1) ~= "_") and k:match("^[%a_][%w_]*$") then
         out[#out + 1] = (head and head .. sep or "") .. k
      end
   end
   if not head then
      for _, kw in ipairs(KEYWORDS) do
         if kw:sub(1, #part) == part then out[#out + 1] = kw end
      end
      table.sort(out)
   end
   return out
end

-- ------------------------------------------------------------------- help

-- Lines of the file a chunk name ("@path") names, cached in `cache` for one help() call.
local function source_lines(source, cache)
   local path = type(source) == "string" and source:match("^@(.+)$")
   if not path then return nil end
   if cache[path] == nil then
      local lines = false
      local f = io.open(path, "r")
      if f then
         lines = {}
         for l in f:lines() do lines[#lines + 1] = l end
         f:close()
      end
      cache[path] = lines
   end
   return cache[path] or nil, path
end

--- doc(f [, cache]): the doc comment above a Lua function's definition as a list of lines (comment
--- marks removed; empty when there is none), the file, the line of the definition and its text;
--- nil and the reason when the source cannot be read (a C function, code typed in the REPL).
function M.doc(f, cache)
   cache = cache or {}
   if type(f) ~= "function" then return nil, "not a function" end
   local info = debug.getinfo(f, "S")
   if info.what == "C" then return nil, "a C function: no Lua source" end
   local lines, path = source_lines(info.source, cache)
   if not lines then return nil, ("defined in %s, whose source cannot be read"):format(info.short_src) end
   local first = info.linedefined
   local doc = {}
   local i = first - 1
   while i >= 1 and lines[i] and lines[i]:match("^%s*%-%-") and not lines[i]:match("^%s*%-%-%[=*%[") do
      table.insert(doc, 1, (lines[i]:gsub("^%s*%-%-%-?%s?", "")))
      i = i - 1
   end
   return doc, path, first, lines[first]
end

-- The parameter list of a Lua function: "(s, t, opts)", "(...)"; "(?)" for a C function.
local function signature(f)
   if debug.getinfo(f, "S").what == "C" then return "(?)" end
   local info = debug.getinfo(f, "u")
   local names = {}
   for i = 1, info.nparams do names[i] = debug.getlocal(f, i) or ("arg" .. i) end
   if info.isvararg then names[#names + 1] = "..." end
   return "(" .. table.concat(names, ", ") .. ")"
end

-- A dotted name under which v is reached from the loaded modules or the globals
-- ("retort.distill.kd"): the shortest one without a hidden ("_x") part, if any; nil when none
-- within three levels of a module.
local function name_of(v)
   local best, best_hidden
   local function consider(name)
      local hidden = name:find("^_") ~= nil or name:find("%._") ~= nil
      if best and hidden ~= best_hidden then
         if hidden then return end
      elseif best and (#name > #best or (#name == #best and name >= best)) then
         return
      end
      best, best_hidden = name, hidden
   end
   local seen = {}
   local function walk(t, prefix, depth)
      if seen[t] and seen[t] <= depth then return end
      seen[t] = depth
      for k, val in next, t do
         if type(k) == "string" and k:match("^[%a_][%w_]*$") then
            local name = prefix == "" and k or (prefix .. "." .. k)
            if rawequal(val, v) then consider(name) end
            if type(val) == "table" and depth < 3 and k ~= "_G" and k ~= "loaded" then walk(val, name, depth + 1) end
         end
      end
   end
   for modname, mod in next, package.loaded do
      if type(modname) == "string" then
         if rawequal(mod, v) then consider(modname) end
         if type(mod) == "table" and modname ~= "_G" then walk(mod, modname, 1) end
      end
   end
   walk(_G, "", 1)
   return best
end

local function first_doc_line(f, cache)
   for _, l in ipairs(M.doc(f, cache) or {}) do
      if l:match("%S") then return (l:gsub("^%s+", "")) end
   end
   return nil
end

local function write(...) io.stdout:write(...) end

local function help_function(f, name, cache)
   name = name or name_of(f) or "function"
   if debug.getinfo(f, "S").what == "C" then
      write(name, ": a C function, built into the retort executable (no Lua source, so no doc comment).\n",
            "The tensor API is described in lua/README.md and README.md; help(retort) lists retort's functions.\n")
      return
   end
   local doc, path, line = M.doc(f, cache)
   local sig = signature(f)
   if sig:match("^%(self[,)]") and name:find(".", 1, true) then -- a method: Class:name(args)
      name, sig = name:gsub("%.([%a_][%w_]*)$", ":%1"), sig:gsub("^%(self,? ?", "(")
   end
   write(name, sig, "\n")
   if not doc then
      write("  ", path, "\n")
      return
   end
   write("  defined at ", path, ":", line, "\n")
   if #doc == 0 then
      write("  (no doc comment above its definition)\n")
   else
      write("\n")
      for _, l in ipairs(doc) do write(l, "\n") end
   end
end

local function help_table(t, name, cache)
   name = name or name_of(t)
   local funcs, tables, others, own = {}, {}, {}, {}
   for k, v in next, t do
      own[k] = true
      if type(k) == "string" and k:sub(1, 1) ~= "_" then
         if type(v) == "function" then funcs[#funcs + 1] = k
         elseif type(v) == "table" then tables[#tables + 1] = k
         else others[#others + 1] = k end
      end
   end
   table.sort(funcs); table.sort(tables); table.sort(others)
   local via = {} -- names that come through the metatable: inherited methods, submodules loaded on first use
   for _, k in ipairs(M.fields(t)) do
      if not own[k] and k:sub(1, 1) ~= "_" then via[#via + 1] = k end
   end
   write(name and (name .. ": ") or "", ("%d functions\n"):format(#funcs))
   local width = 0
   for _, k in ipairs(funcs) do width = math.max(width, #k) end
   width = math.min(width, 24)
   for _, k in ipairs(funcs) do
      local f = rawget(t, k)
      local line = first_doc_line(f, cache)
      if not line and debug.getinfo(f, "S").what == "C" then line = "(C function)" end
      write((("  %-" .. width .. "s  %s"):format(k, line or "")):gsub("%s+$", ""), "\n")
   end
   if #tables > 0 then write("tables: ", table.concat(tables, ", "), "\n") end
   if #others > 0 then write("values: ", table.concat(others, ", "), "\n") end
   if #via > 0 then write("also (inherited, or loaded on first use): ", table.concat(via, ", "), "\n") end
end

-- An object (an nn module, an optimizer): a table whose metatable has an __index, unless the
-- table is its own __index (a class) or a loaded module (retort's table loads submodules so).
local function is_instance(v)
   if rawget(v, "__index") == v then return false end
   for _, mod in next, package.loaded do
      if rawequal(mod, v) then return false end
   end
   local mt = debug.getmetatable(v)
   return type(mt) == "table" and rawget(mt, "__index") ~= nil
end

--- help([v]): no argument: a short orientation. A function: its doc comment. A module or class:
--- its functions with their first doc line. A string: the value of that dotted name
--- (help("retort.distill.kd")). Anything else: its type and methods.
function M.help(...)
   if select("#", ...) == 0 then
      write(M.helptext, "\n")
      io.stdout:flush()
      return
   end
   local v = ...
   local cache, name = {}, nil
   if type(v) == "string" and v:match("^[%a_][%w_]*[%w_%.]*$") then
      name = v -- looked up as the expression would be (submodules load); a bad step gives nil
      local ok, r = pcall(function()
         local x = _G
         for part in name:gmatch("[^.]+") do x = x[part] end
         return x
      end)
      v = ok and r or nil
      if v == nil then
         write(("help: no value named '%s'\n"):format(name))
         io.stdout:flush()
         return
      end
   end
   if v == nil then
      write("help: the value is nil (a misspelt name?); help() alone shows an orientation\n")
   elseif type(v) == "function" then
      help_function(v, name, cache)
   elseif type(v) == "table" and not is_instance(v) then
      help_table(v, name, cache)
   else
      local ok, s = pcall(tostring, v)
      s = ok and s or type(v)
      if type(v) == "userdata" and s:find("\n") then s = s:match("[^\n]*$") end -- a tensor: "[... of size ...]"
      local lines = {}
      for l in (s .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
      if #lines > 20 then s = table.concat(lines, "\n", 1, 20) .. "\n..." end
      write(("%s: %s\n"):format(type(v), s))
      local shown = {}
      for _, k in ipairs(M.fields(v, true)) do
         if k:sub(1, 1) ~= "_" then shown[#shown + 1] = k end
      end
      if #shown > 0 then write("methods: ", table.concat(shown, ", "), "\n") end
   end
   io.stdout:flush()
end

return M
