-- Helpers of the distributed test scripts (tests/dist/*.lua), which tests/lua/dist_*_spec.lua run under
-- `mpirun -np N retort tests/dist/x.lua --name=value ...` (and as one process, the reference). A script
-- checks what it can itself (every rank: an error ends the job with a non-zero status) and writes what
-- the spec compares across runs to --out as a Lua table (rank 0 only).
local retort = require "retort"

local M = {}

--- options(defaults, args): the script's --name=value options (retort.recipe.options).
function M.options(defaults, args) return retort.recipe.options(defaults, args) end

local function serialize(v, out)
   local t = type(v)
   if t == "number" then
      if math.type(v) == "integer" then out[#out + 1] = tostring(v)
      elseif v ~= v then out[#out + 1] = "0/0"
      elseif v == math.huge then out[#out + 1] = "math.huge"
      elseif v == -math.huge then out[#out + 1] = "-math.huge"
      else out[#out + 1] = ("%.17g"):format(v) end
   elseif t == "string" then
      out[#out + 1] = ("%q"):format(v)
   elseif t == "boolean" or t == "nil" then
      out[#out + 1] = tostring(v)
   elseif t == "table" then
      out[#out + 1] = "{"
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b)
         if type(a) == type(b) then return a < b end
         return type(a) == "number"
      end)
      for _, k in ipairs(keys) do
         out[#out + 1] = type(k) == "number" and ("[" .. k .. "]=") or ("[%q]="):format(k)
         serialize(v[k], out)
         out[#out + 1] = ","
      end
      out[#out + 1] = "}"
   else
      error("common.write: cannot serialize a " .. t)
   end
end

--- write(path, value): value (numbers, strings, booleans, tables of them) as `return <value>` (rank 0).
function M.write(path, value)
   if retort.dist.rank() ~= 0 or path == "" then return end
   local out = {"return "}
   serialize(value, out)
   local f = assert(io.open(path, "w"))
   f:write(table.concat(out), "\n")
   f:close()
end

--- check(cond, fmt, ...): raises (on this rank, ending the job) when cond is false.
function M.check(cond, fmt, ...)
   if not cond then error(("rank %d: check failed: " .. fmt):format(retort.dist.rank(), ...), 2) end
end

--- flat(module): every parameter of module, in order, as one f64 vector.
function M.flat(module)
   local parts = {}
   for _, p in ipairs(module:parameters()) do parts[#parts + 1] = p:detach():double():contiguous():view(-1) end
   return retort.cat(parts, 1)
end

--- identicalOnAllRanks(t): whether every rank holds bit-identical values of t (a 1-D tensor).
function M.identicalOnAllRanks(t)
   local all = retort.dist.allGather(t:view(1, -1))
   local first = all:select(1, 1)
   for r = 2, all:size(1) do
      if all:select(1, r):ne(first):long():sum():item() ~= 0 then return false end
   end
   return true
end

--- null: a log sink for train.fit.
M.null = {write = function(self) return self end, flush = function() end}

return M
