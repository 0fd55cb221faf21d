-- Damaged HDF5 files: one-byte changes and truncations of a small checkpoint and of a small
-- soft-target cache, each loaded the way a user loads it, to count how many load, how many are
-- refused and how many crash or hang. Used two ways:
--
--   * by tests/lua/h5_trust_spec.lua (require "h5_damage"): a sample of positions, in-process;
--   * as the full sweep (every byte position, or every Nth), each mutant in a child process so that a
--     crash or a hang is counted instead of ending the run (run it with the ASan build):
--
--       ASAN_OPTIONS=detect_leaks=0 build-asan/bin/retort tests/lua/h5_damage.lua [--kind checkpoint|cache|
--           legacy|all] [--every N] [--timeout S] [--bin PATH]
--
--     It prints, per file kind: positions tried, loaded (and of those, how many gave back exactly
--     the original content), refused with an error, crashed (with the sanitizer's summary line), hung.
--     `legacy` is a checkpoint in the format retort wrote before checksums (written here with h5py,
--     variable-length strings, no checksums): flips in its raw data still load, by design.
--
-- A mutant is a copy of the file with byte p XORed with a value that depends on p (never 0), or the
-- file cut to its first p bytes. "Loads" means: retort.load and a training step from the loaded
-- state (checkpoint); retort.cache.open(partial = true), its --info summary and every logit (cache).
local retort = require "retort"

-- run as the sweep (a script, not required): support.lua and cache_world.lua are found beside this file
local as_script = arg and arg[0] and arg[0]:match("h5_damage%.lua$") and ... ~= "h5_damage"
if as_script then package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path end
local support = require "support"

local M = {}

-- a missing file is an error here (support.slurp would give "")
local slurp, spit = support.read_file, support.write_file
M.slurp, M.spit = slurp, spit

-- the small network of the sample checkpoint
local function net()
   local nn = retort.nn
   return nn.Sequential():add("fc1", nn.Linear(6, 5)):add("relu", nn.ReLU()):add("fc2", nn.Linear(5, 3))
end

--- checkpoint(path): writes a small checkpoint as train.fit does (model, optimizer, rng, train state,
--- options).
function M.checkpoint(path)
   retort.manualSeed(1)
   local model = net()
   local opt = retort.optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
   local x, y = retort.randn(4, 6), retort.tensor({1, 2, 3, 1}, "i64")
   local l = retort.loss.crossEntropy(model:forward(x), y)
   l:backward()
   opt:step()
   retort.save(path, {model = model, optim = opt, rng = retort.getRngState(),
                      train = {epoch = 2, step = 0, seen = 4, correct = 1, loss_sum = 1.5, best_acc = 0.25,
                               best_epoch = 1},
                      options = {lr = 0.1, arch = "mlp", nesterov = false}})
end

--- loadCheckpoint(path): what resuming does with a checkpoint: load, restore, one training step.
--- Returns the loaded table.
function M.loadCheckpoint(path)
   local ck = retort.load(path)
   local model = net()
   local opt = retort.optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
   model:loadStateDict(ck.model)
   opt:loadStateDict(ck.optim)
   retort.setRngState(ck.rng)
   local l = retort.loss.crossEntropy(model:forward(retort.randn(4, 6)), retort.tensor({1, 2, 3, 1}, "i64"))
   l:backward()
   opt:step()
   return ck
end

--- cache(path): builds a small soft-target cache (40 examples, 4 classes, a tap).
function M.cache(path)
   local world = require "cache_world"
   retort.cache.build{teacher = world.teacher(), data = world.loader{n = 40}, path = path, quiet = true,
                      taps = {"relu"}}
end

--- loadCache(path): what `retort cache --info` and a student run read. Returns the cache.
function M.loadCache(path)
   local c = retort.cache.open(path, {partial = true})
   c:summary()
   if c.rowsDone > 0 then
      local idx = retort.arange(1, c.rowsDone, "i64")
      c:teacherLogits(idx, 1)
      c:features("relu", idx, 1)
   end
   return c
end

--- same(a, b): deep equality of loaded values (tensors by dtype, shape and values).
function M.same(a, b)
   if retort.isTensor(a) or retort.isTensor(b) then
      if not (retort.isTensor(a) and retort.isTensor(b)) then return false end
      if a:dtype() ~= b:dtype() or table.concat(a:shape(), ",") ~= table.concat(b:shape(), ",") then return false end
      return a:numel() == 0 or retort.core.fingerprint(a) == retort.core.fingerprint(b)
   end
   if type(a) ~= "table" or type(b) ~= "table" then
      return a == b or (a ~= a and b ~= b)
   end
   for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
   for k in pairs(b) do if a[k] == nil then return false end end
   return true
end

--- content(kind, path): a comparable view of what was loaded.
function M.content(kind, path)
   if kind == "cache" then
      local c = M.loadCache(path)
      local idx = retort.arange(1, math.max(c.rowsDone, 1), "i64")
      return {attrs = c.attrs, logits = c.logits, labels = c.labels,
              relu = c.rowsDone > 0 and c:features("relu", idx, 1) or nil}
   end
   return retort.load(path)
end

--- mutate(orig, op): the damaged bytes: op = {flip = p} (1-based byte p changed) or {cut = n}.
function M.mutate(orig, op)
   if op.cut then return orig:sub(1, op.cut) end
   local p = op.flip
   local x = (p * 167 + 13) % 255 + 1 -- 1..255, varies with the position
   return orig:sub(1, p - 1) .. string.char(orig:byte(p) ~ x) .. orig:sub(p + 1)
end

--- ops(size, every, offset): flips of every `every`-th byte and cuts at every `every`-th length.
function M.ops(size, every, offset)
   local out = {}
   for p = 1 + (offset or 0) % every, size, every do out[#out + 1] = {flip = p} end
   for n = (offset or 0) % every, size - 1, every do out[#out + 1] = {cut = n} end
   return out
end

local function opname(op) return op.cut and ("cut " .. op.cut) or ("flip " .. op.flip) end
M.opname = opname

local LOADERS = {checkpoint = M.loadCheckpoint, legacy = M.loadCheckpoint, cache = M.loadCache}

-- ----------------------------------------------------------------------------------------------
-- the full sweep

local shquote = support.shquote

--- legacy(path): a checkpoint in the layout older retort versions wrote (no checksums, contiguous
--- datasets, variable-length string attributes), written with h5py. false when h5py is missing.
function M.legacy(path)
   local src = path .. ".src.h5"
   M.checkpoint(src)
   local script = path .. ".py"
   spit(script, ([[
import h5py, numpy as np
src = h5py.File(%q, "r")
with h5py.File(%q, "w", libver="earliest") as dst:
    def copy_attrs(a, b):
        for k, v in a.attrs.items():
            if isinstance(v, (bytes, np.bytes_)): v = v.decode()
            b.attrs[k] = v  # a Python str becomes a variable-length UTF-8 string, as retort wrote them
    def walk(g, out):
        copy_attrs(g, out)
        for k, v in g.items():
            if isinstance(v, h5py.Group): walk(v, out.create_group(k))
            else:
                d = out.create_dataset(k, data=v[()])
                copy_attrs(v, d)
    walk(src, dst)
]]):format(src, path))
   local ok = os.execute(support.python .. " " .. shquote(script) .. " 2>/dev/null")
   os.remove(script)
   os.remove(src)
   return ok == true
end

local function worker(kind, file, every, offset, first, last)
   local orig = slurp(file)
   local ops = M.ops(#orig, every, offset)
   local tmp = os.tmpname()
   local ref = M.content(kind, file)
   for i = first, math.min(last, #ops) do
      io.stdout:write("begin ", i, "\n"); io.stdout:flush()
      spit(tmp, M.mutate(orig, ops[i]))
      local ok, err = pcall(M.content, kind, tmp)
      local res
      if ok then
         res = M.same(err, ref) and "same" or "changed"
         local ok2, err2 = pcall(LOADERS[kind], tmp)
         if not ok2 then res, err = "error", err2 end
      else
         res = "error"
      end
      io.stdout:write(("result %d %s %s\n"):format(i, res, res == "error" and tostring(err):gsub("\n.*", "") or ""))
      io.stdout:flush()
   end
   os.remove(tmp)
   io.stdout:write("end\n")
end

local function sweep(kind, opts)
   local dir = os.tmpname()
   os.remove(dir)
   assert(retort.core.mkdir(dir))
   local file = dir .. "/" .. kind .. ".h5"
   if kind == "cache" then M.cache(file)
   elseif kind == "legacy" then
      if not M.legacy(file) then print("legacy: skipped (h5py is not installed for /usr/bin/python3)") return end
   else M.checkpoint(file) end
   local size = #slurp(file)
   local nops = #M.ops(size, opts.every, 0)
   local counts = {same = 0, changed = 0, error = 0, crash = 0, hang = 0}
   local crashes, messages = {}, {}
   local first = 1
   while first <= nops do
      local errf = dir .. "/stderr"
      local cmd = ("timeout -s KILL %d %s %s --worker %s %s %d 0 %d %d 2>%s"):format(opts.timeout, shquote(opts.bin),
         shquote(opts.script), kind, shquote(file), opts.every, first, math.min(nops, first + opts.batch - 1),
         shquote(errf))
      local h = io.popen(cmd, "r")
      local current, finished = nil, false
      for line in h:lines() do
         local b = line:match("^begin (%d+)")
         if b then current = tonumber(b) end
         local i, res, msg = line:match("^result (%d+) (%a+) ?(.*)$")
         if i then
            counts[res] = counts[res] + 1
            current = nil
            first = tonumber(i) + 1
            if res == "error" then
               local key = msg:gsub("/[%w%./_%-]+", "FILE"):gsub("%d+", "N"):sub(1, 110)
               messages[key] = (messages[key] or 0) + 1
            end
         end
         if line == "end" then finished = true end
      end
      local _, _, code = h:close()
      if finished then
         if first > nops then break end
         goto continue
      end
      if not current then
         io.stderr:write(slurp(errf))
         error("the sweep's worker died between mutants (exit " .. tostring(code) .. ")")
      end
      local ops = M.ops(size, opts.every, 0)
      local what = code == 137 and "hang" or "crash"
      counts[what] = counts[what] + 1
      local summary = slurp(errf):match("SUMMARY: [^\n]*") or slurp(errf):match("[^\n]*$") or ""
      crashes[#crashes + 1] = ("%s %s (exit %s): %s"):format(what, opname(ops[current]), tostring(code), summary)
      first = current + 1
      ::continue::
   end
   print(("%s: %d bytes, %d mutants (every %d): loaded %d (identical content %d, changed %d), refused %d, "
          .. "crashed %d, hung %d"):format(kind, size, nops, opts.every, counts.same + counts.changed, counts.same,
          counts.changed, counts.error, counts.crash, counts.hang))
   for _, c in ipairs(crashes) do print("  " .. c) end
   if opts.verbose then
      local keys = {}
      for k in pairs(messages) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return messages[a] > messages[b] end)
      for _, k in ipairs(keys) do print(("  %5d  %s"):format(messages[k], k)) end
   end
   os.execute("rm -rf " .. shquote(dir))
end

local function main(args)
   if args[1] == "--worker" then
      return worker(args[2], args[3], tonumber(args[4]), tonumber(args[5]), tonumber(args[6]), tonumber(args[7]))
   end
   local opts = {every = 1, timeout = 300, batch = 100, kind = "all", bin = arg and arg[-1] or "retort",
                 script = arg and arg[0]}
   local i = 1
   while i <= #args do
      local k = args[i]:match("^%-%-(%w+)$")
      if k == "verbose" then opts.verbose = true
      elseif k and args[i + 1] then
         opts[k] = tonumber(args[i + 1]) or args[i + 1]
         i = i + 1
      else
         error("usage: retort tests/lua/h5_damage.lua [--kind checkpoint|cache|legacy|all] [--every N] "
               .. "[--timeout S] [--bin PATH] [--verbose]", 0)
      end
      i = i + 1
   end
   for _, kind in ipairs(opts.kind == "all" and {"checkpoint", "cache", "legacy"} or {opts.kind}) do
      sweep(kind, opts)
   end
end

if as_script then main({...}) end

return M
