-- retort.dist: data-parallel runs over several processes (DESIGN.md §11).
--
--   mpirun -np 4 retort run recipes/kd.lua --epochs=10     -- four ranks; retort.train.fit shards the data
--
--   local dist = retort.dist
--   dist.rank(), dist.size(), dist.localRank()   -- 0-based rank of this process, number of ranks, rank on
--                                                -- this machine (one process: 0, 1, 0)
--   dist.isDistributed()                         -- more than one rank
--   dist.allReduce(t, "sum" | "mean" | "max")    -- a new tensor: the element-wise reduction over the ranks;
--                                                -- differentiable for sum and mean (SyncBatchNorm's statistics)
--   dist.broadcast(t, root)                      -- a new tensor holding root's t (root defaults to 0)
--   dist.allGather(t)                            -- the ranks' t concatenated along dim 1, in rank order (the
--                                                -- first dims may differ, the other dims and dtype may not)
--   dist.barrier()                               -- wait until every rank is here
--   dist.allReduce_(t, op), dist.broadcast_(t, root)   -- in place, return t
--   dist.allReduceNumbers({a, b, ...}, op)       -- Lua numbers reduced in f64 (logged sums)
--   dist.broadcastValue(v, root)                 -- a string, number, boolean or nil from root
--   dist.broadcastModule(net, root)              -- every parameter and buffer of net takes root's values
--   dist.broadcastTensors(list, root)            -- the same for a list of tensors
--   dist.Reducer(params, {bucketMB = 4})         -- gradient buckets all-reduced during backward (below)
--   dist.setTimeout(seconds)                     -- how long a collective waits for the other ranks (600 s,
--                                                -- or $RETORT_DIST_TIMEOUT) before it fails
--   dist.info()                                  -- "rank 0 of 4 on host (MPI, NCCL for CUDA tensors)"
--
-- With one process (no launcher, or a build without MPI) every collective is the identity: allReduce
-- returns a copy of t, allGather t itself as a new tensor of shape (n, ...), barrier returns at once.
--
-- Ranks are 0-based, as MPI, mpirun's messages ("rank 1 exited ...") and PyTorch number them: a rank is
-- a process's name, not a position in a Lua list.
--
-- Rules: every rank calls the same collectives in the same order (a rank that skips one leaves the
-- others waiting until the timeout fails them), with tensors of the same dtype and element count: a
-- mismatch fails on every rank with a message saying what differed. Tensors may be on the CPU or the
-- GPU (NCCL when built with it, else through the host).
--
-- Reducer: r = dist.Reducer(optimizer's parameters) (every rank builds it: it checks that all built the
-- same buckets); per step: r:begin(); loss:backward(); r:finish() leaves every gradient the mean over the
-- ranks. Buckets of a few MB start their all-reduce during
-- backward, as soon as their last gradient is final (core/src/dist_reducer.c says how); train.fit does
-- this by itself.
local core = require "retort.core"
local options = require "retort.options"

local C = core._dist
C.init() -- a plain lua5.4 under mpirun starts MPI here; the retort host already did

local dist = {}

dist.rank = C.rank
dist.size = C.size
dist.localRank = C.localRank
dist.localSize = C.localSize
dist.host = C.host
dist.barrier = C.barrier
dist.allReduce = C.allReduce
dist.allReduce_ = C.allReduce_
dist.broadcast_ = C.broadcast_
dist.allGather = C.allGather
dist.setTimeout = C.setTimeout
dist.timeout = C.timeout
dist.builtWithMpi = C.builtWithMpi
dist.builtWithNccl = C.builtWithNccl

--- isDistributed(): more than one rank.
function dist.isDistributed() return C.size() > 1 end

--- broadcast(t [, root = 0]): a new tensor holding root's t on every rank.
function dist.broadcast(t, root)
   if not core.isTensor(t) then
      error(("bad argument #1 to 'broadcast' (retort.Tensor expected, got %s)"):format(type(t)), 2)
   end
   local c = core.noGrad(function() return t:clone() end)
   return C.broadcast_(c, root or 0)
end

local OPS = {sum = true, mean = true, max = true}

--- allReduceNumbers(list, op = "sum"): the numbers of list reduced over the ranks, in f64 (a new list).
function dist.allReduceNumbers(list, op)
   if type(list) ~= "table" then
      error(("bad argument #1 to 'allReduceNumbers' (table of numbers expected, got %s)"):format(type(list)), 2)
   end
   op = op or "sum"
   if not OPS[op] then
      error(("bad argument #2 to 'allReduceNumbers' (\"sum\", \"mean\" or \"max\" expected, got %s)"):format(
         tostring(op)), 2)
   end
   for i, v in ipairs(list) do
      if type(v) ~= "number" then
         error(("bad argument #1 to 'allReduceNumbers' (entry %d is a %s, not a number)"):format(i, type(v)), 2)
      end
   end
   if C.size() == 1 or #list == 0 then return {table.unpack(list)} end
   return C.allReduce_(core.tensor(list, "f64"), op):totable()
end

-- a value as a string that says its type: "s..." "n..." "i..." "b1" "b0" "-" (nil)
local function encode(v)
   local kind = type(v)
   if kind == "string" then return "s" .. v end
   if kind == "number" then return math.type(v) == "integer" and ("i" .. v) or ("n" .. ("%.17g"):format(v)) end
   if kind == "boolean" then return v and "b1" or "b0" end
   if kind == "nil" then return "-" end
   error(("broadcastValue: a string, number, boolean or nil is expected, got %s"):format(kind), 3)
end

local function decode(s)
   local tag, rest = s:sub(1, 1), s:sub(2)
   if tag == "s" then return rest end
   if tag == "i" then return math.tointeger(tonumber(rest)) end
   if tag == "n" then return tonumber(rest) end
   if tag == "b" then return rest == "1" end
   return nil
end

local function bytes_of(s)
   local t, n = {}, #s
   for i = 1, n, 4096 do
      local part = {s:byte(i, math.min(n, i + 4095))}
      for k = 1, #part do t[#t + 1] = part[k] end
   end
   return t
end

local function string_of(list)
   local parts = {}
   for i = 1, #list, 4096 do parts[#parts + 1] = string.char(table.unpack(list, i, math.min(#list, i + 4095))) end
   return table.concat(parts)
end

--- broadcastValue(v [, root = 0]): root's v (a string, number, boolean or nil) on every rank. The other
--- ranks' v is ignored (pass nil).
function dist.broadcastValue(v, root)
   root = root or 0
   local s = C.rank() == root and encode(v) or ""
   if C.size() == 1 then return v end
   local n = C.broadcast_(core.tensor({#s}, "i64"), root):item()
   local data = C.rank() == root and core.tensor(bytes_of(s), "u8") or core.zeros(n, "u8")
   return decode(string_of(C.broadcast_(data, root):totable()))
end

--- broadcastTensors(list [, root = 0]): every tensor of the list takes root's values, in place: one
--- broadcast per dtype and device, of the tensors laid end to end. Returns the list.
function dist.broadcastTensors(list, root)
   if type(list) ~= "table" then
      error(("bad argument #1 to 'broadcastTensors' (list of tensors expected, got %s)"):format(type(list)), 2)
   end
   for i, t in ipairs(list) do
      if not core.isTensor(t) then
         error(("bad argument #1 to 'broadcastTensors' (entry %d is a %s, not a tensor)"):format(i, type(t)), 2)
      end
   end
   root = root or 0
   if C.size() == 1 then return list end
   local groups, order = {}, {}
   for _, t in ipairs(list) do
      local key = t:dtype() .. "@" .. t:device()
      if not groups[key] then groups[key] = {}; order[#order + 1] = key end
      table.insert(groups[key], t)
   end
   core.noGrad(function()
      for _, key in ipairs(order) do
         local group, flat = groups[key], {}
         for i, t in ipairs(group) do flat[i] = t:contiguous():view(-1) end
         local all = C.broadcast_(#flat == 1 and flat[1]:clone() or core.cat(flat, 1), root)
         local at = 1
         for _, t in ipairs(group) do
            local n = t:numel()
            if C.rank() ~= root then t:copy_(all:narrow(1, at, n):view(t:shape())) end
            at = at + n
         end
      end
   end)
   return list
end

--- broadcastModule(module [, root = 0]): every parameter and buffer of module (an nn.Module) takes root's
--- values, in place. Returns the module.
function dist.broadcastModule(m, root)
   if type(m) ~= "table" or type(m.parameters) ~= "function" or type(m.buffers) ~= "function" then
      error(("bad argument #1 to 'broadcastModule' (nn.Module expected, got %s)"):format(type(m)), 2)
   end
   local list = m:parameters()
   for _, t in ipairs(m:buffers()) do list[#list + 1] = t end
   dist.broadcastTensors(list, root)
   return m
end

local REDUCER_OPTIONS = {bucketMB = true, sum = true}

--- Reducer(params [, {bucketMB = 4, sum = false}]): gradient buckets over the list of parameters (see the
--- header). sum = true leaves each gradient the sum over the ranks instead of the mean: for a loss already
--- divided by dist.size() (train.fit does that: the mean then costs no pass over the gradients).
function dist.Reducer(params, opts)
   if type(params) ~= "table" then
      error(("bad argument #1 to 'Reducer' (list of parameters expected, got %s)"):format(type(params)), 2)
   end
   opts = opts or {}
   options.check("dist.Reducer", opts, REDUCER_OPTIONS, 2)
   local mb = opts.bucketMB or 0
   if type(mb) ~= "number" or mb < 0 then
      error(("dist.Reducer: bucketMB must be a number >= 0 (0: 4 MB), got %s"):format(tostring(mb)), 2)
   end
   return C.Reducer(params, math.floor(mb * 1048576 + 0.5), opts.sum and true or false)
end

--- info(): one line saying what this process is in the run.
function dist.info()
   local how = C.builtWithMpi() and ("MPI" .. (C.builtWithNccl() and ", NCCL for CUDA tensors" or "")) or "no MPI"
   if C.size() == 1 then return ("one process (%s)"):format(how) end
   return ("rank %d of %d on %s (local rank %d of %d; %s)"):format(C.rank(), C.size(), C.host(), C.localRank(),
                                                                  C.localSize(), how)
end

--- abort([code = 1]): ends every rank of the job now (MPI_Abort); nothing with one process.
function dist.abort(code) C.abort(code or 1) end

return dist
