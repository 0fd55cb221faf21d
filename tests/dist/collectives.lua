-- retort.dist's collectives on every rank against plain-Lua computations: rank r's data is a function of
-- (r, i), so every rank computes what the reduction over all ranks must be with Lua loops.
--   mpirun -np N retort tests/dist/collectives.lua [--device=cuda] [--out=result.lua]
-- f32, f64 and i64; sizes 1, 5, 1023 (odd); sum, mean, max; broadcast from every root; allGather with
-- a different row count per rank; a transposed (non-contiguous) tensor; allReduceNumbers; broadcastValue;
-- the gradient through allReduce; a mismatched tensor refused on every rank (the ranks stay in step);
-- argument errors. --device=cuda puts the tensors on the GPU (NCCL, or the host path under
-- RETORT_EMULATE_CUDA=1). Writes {checks = n, ranks = R} to --out (rank 0).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local retort = require "retort"
local common = require "common"
local dist = retort.dist

local opts = common.options({device = "cpu", out = ""}, {...})
local R, me = dist.size(), dist.rank()
local checks = 0
local function check(cond, fmt, ...)
   checks = checks + 1
   common.check(cond, fmt, ...)
end

-- rank r's i-th value: integers and halves (exact in f32 and in any summation order)
local function value(r, i, dtype)
   if dtype == "i64" then return (i * 7 + r * 13) % 23 - 11 + r * 1000000000000 end
   return (i * 7 + r * 13) % 23 - 11 + 0.5 * (r % 2)
end

local function values(r, n, dtype)
   local v = {}
   for i = 1, n do v[i] = value(r, i, dtype) end
   return v
end

local function on_device(t) return opts.device == "cpu" and t or t:to(opts.device) end

local function same(got, want, tol, what)
   check(#got == #want, "%s: %d values, expected %d", what, #got, #want)
   for i = 1, #want do
      local ok = tol == 0 and got[i] == want[i] or math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i]))
      check(ok, "%s: element %d is %s, expected %s", what, i, tostring(got[i]), tostring(want[i]))
   end
end

-- all-reduce: every dtype, size and reduction, new tensor and in place
for _, dtype in ipairs{"f32", "f64", "i64"} do
   for _, n in ipairs{1, 5, 1023} do
      for _, op in ipairs{"sum", "mean", "max"} do
         if not (op == "mean" and dtype == "i64") then
            local want = {}
            for i = 1, n do
               local acc = op == "max" and -math.huge or 0
               for r = 0, R - 1 do
                  local v = value(r, i, dtype)
                  acc = op == "max" and math.max(acc, v) or acc + v
               end
               want[i] = op == "mean" and acc / R or acc
            end
            local t = on_device(retort.tensor(values(me, n, dtype), dtype))
            local got = dist.allReduce(t, op)
            same(got:cpu():totable(), want, dtype == "f32" and 1e-6 or (dtype == "f64" and 1e-15 or 0),
                 ("allReduce %s %s n=%d"):format(dtype, op, n))
            same(t:cpu():totable(), values(me, n, dtype), 0, "allReduce leaves its argument alone")
            dist.allReduce_(t, op)
            same(t:cpu():totable(), want, dtype == "f32" and 1e-6 or (dtype == "f64" and 1e-15 or 0), "allReduce_")
         end
      end
   end
end

-- a transposed view: reduced through its strides
do
   local base = on_device(retort.tensor(values(me, 12, "f64"), "f64"):view(3, 4))
   local tview = base:transpose(1, 2)
   dist.allReduce_(tview, "sum")
   local want = {}
   for i = 1, 12 do
      want[i] = 0
      for r = 0, R - 1 do want[i] = want[i] + value(r, i, "f64") end
   end
   same(base:cpu():view(12):totable(), want, 1e-15, "allReduce_ of a transposed view")
end

-- broadcast from every root
for root = 0, R - 1 do
   for _, dtype in ipairs{"f32", "i64"} do
      local t = on_device(retort.tensor(values(me, 9, dtype), dtype))
      local b = dist.broadcast(t, root)
      same(b:cpu():totable(), values(root, 9, dtype), 0, ("broadcast %s from %d"):format(dtype, root))
      same(t:cpu():totable(), values(me, 9, dtype), 0, "broadcast leaves its argument alone")
      dist.broadcast_(t, root)
      same(t:cpu():totable(), values(root, 9, dtype), 0, "broadcast_")
   end
end

-- allGather: rank r gives r + 1 rows of 3; a 0-dim tensor gives one element
do
   local mine = on_device(retort.tensor(values(me, 3 * (me + 1), "f64"), "f64"):view(me + 1, 3))
   local g = dist.allGather(mine)
   check(g:size(1) == R * (R + 1) // 2 and g:size(2) == 3, "allGather shape %s", table.concat(g:shape(), "x"))
   local want = {}
   for r = 0, R - 1 do
      for _, v in ipairs(values(r, 3 * (r + 1), "f64")) do want[#want + 1] = v end
   end
   same(g:cpu():view(-1):totable(), want, 0, "allGather rows in rank order")
   local s = dist.allGather(on_device(retort.tensor(me + 0.25, "f64")))
   local ws = {}
   for r = 0, R - 1 do ws[r + 1] = r + 0.25 end
   same(s:cpu():totable(), ws, 0, "allGather of 0-dim tensors")
end

-- numbers and values
do
   same(dist.allReduceNumbers({me, 1, me * 0.5}), {R * (R - 1) / 2, R, R * (R - 1) / 4}, 1e-15, "allReduceNumbers")
   same(dist.allReduceNumbers({me}, "max"), {R - 1}, 0, "allReduceNumbers max")
   local bytes = {}
   for c = 0, 255 do bytes[#bytes + 1] = string.char(c) end
   local s = table.concat(bytes):rep(20)
   check(dist.broadcastValue(me == 0 and s or nil) == s, "broadcastValue of a binary string")
   check(dist.broadcastValue(me == R - 1 and 2 ^ 53 + 1 or 0, R - 1) == 2 ^ 53 + 1, "broadcastValue of an integer")
   check(math.type(dist.broadcastValue(me == 0 and 7 or nil)) == "integer", "an integer stays an integer")
   check(dist.broadcastValue(me == 0 and 0.1 or nil) == 0.1, "broadcastValue of a float")
   check(dist.broadcastValue(me == 0 or nil) == true, "broadcastValue of true")
   check(dist.broadcastValue(me ~= 0 and "x" or nil) == nil, "broadcastValue of nil")
end

-- the gradient through allReduce: y = allReduce(c_r x, mean), L_r = sum(d_r * y) =>
-- dL/dx on rank r = c_r * mean over ranks of d
do
   local x = on_device(retort.tensor(values(me, 6, "f64"), "f64")):requiresGrad()
   local d = on_device(retort.tensor(values(me + 3, 6, "f64"), "f64"))
   local y = dist.allReduce(x * (me + 1), "mean")
   ;(y * d):sum():backward()
   local want = {}
   for i = 1, 6 do
      local s = 0
      for r = 0, R - 1 do s = s + value(r + 3, i, "f64") end
      want[i] = (me + 1) * s / R
   end
   same(x.grad:cpu():totable(), want, 1e-14, "gradient through allReduce")
end

-- mismatches are refused on every rank, and the ranks stay in step
if R > 1 then
   local ok, err = pcall(dist.allReduce, on_device(retort.zeros(me + 2)), "sum")
   check(not ok and tostring(err):find("different tensors: element count 2 on some ranks, " .. (R + 1), 1, true),
         "mismatch refused: %s", tostring(err))
   ok, err = pcall(dist.allGather, on_device(retort.zeros(2, me + 1)))
   check(not ok and tostring(err):find("size of dim 2", 1, true), "allGather mismatch refused: %s", tostring(err))
end
dist.barrier()

-- argument errors (raised before any communication)
do
   local ok, err = pcall(dist.allReduce, retort.zeros(2), "prod")
   check(not ok and tostring(err):find("bad argument #2 to '[%w.]*allReduce' %(invalid option 'prod'%)"),
         "bad op: %s", tostring(err))
   ok, err = pcall(dist.broadcast_, retort.zeros(2), R)
   check(not ok and tostring(err):find("root must be a rank in 0..", 1, true), "bad root: %s", tostring(err))
   ok, err = pcall(dist.allReduce, retort.zeros(2, "i64"), "mean")
   check(not ok and tostring(err):find("mean needs a float tensor", 1, true), "mean of i64: %s", tostring(err))
   ok, err = pcall(dist.allReduce, retort.zeros(2):requiresGrad(), "max")
   check(not ok and tostring(err):find("max has no gradient", 1, true), "max with grad: %s", tostring(err))
end

local total = dist.allReduceNumbers({checks})[1]
common.write(opts.out, {checks = total, ranks = R})
if me == 0 then print(("collectives: %d checks passed on %d ranks (%s)"):format(total, R, dist.info())) end
