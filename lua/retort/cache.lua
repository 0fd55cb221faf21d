-- Soft-target caches (DESIGN.md §5): run the teacher once over the training set, store its logits
-- (and, if asked, its features at named taps) in HDF5, and distill from the file afterwards.
--
--   local cache = retort.cache.build{teacher = net, data = trainLoader, path = "runs/t.cache.h5",
--                                    views = 4, taps = {"relu2"}}
--   local c = retort.cache.open("runs/t.cache.h5", {loader = trainLoader, teacher = net})
--   c:teacherLogits(idx, epoch)        -- [B, C] f32 for the loader's dataset indices idx (1-based)
--   retort.distill.Distiller{teacher = c, student = s, T = 4, alpha = 0.9, gamma = 0.1}
--
-- The file (readable with h5py / h5dump):
--   /logits            f32 [N, C], or [V, N, C] with V augmentation views; chunked + deflate
--   /labels            i64 [N], 0-based class ids
--   /features/<tap>    f32 [N, ...] or [V, N, ...], when built with taps
--   root attributes    format = "retort.softtargets", version, num_examples, num_classes, views,
--                      teacher_fingerprint, dataset_fingerprint, augment_crop, augment_flip,
--                      augment_seed, view_seeds (with augmentation: int64 [V]), taps, teacher (its
--                      architecture), input (the loader), created, rows_done, complete
-- Logits, not probabilities: softmax(logits / T) is exact at any T at read time.
--
-- Views: view v of example i is the crop/flip the loader draws for (augment_seed, v, i): the bits
-- r = core.rngBits(view_seeds[v], i) (i 1-based) place the crop window in the padded image at
-- row (r & 0xffffff) % (2 crop + 1), column ((r >> 24) & 0xffffff) % (2 crop + 1), and flip it
-- when flip is on and the top bit of r is set (core/src/augment.c). A loader
-- made with views = V uses view (e - 1) % V + 1 in epoch e, so the student sees exactly the image
-- the teacher saw when the cache was built (retort.data.Loader, option views).
--
-- Crash safety: a build writes blocks of rows into <path>.parts/, each block its own file written
-- under a temporary name and renamed when complete, next to a manifest of what is being built.
-- Killed at any moment (kill -9 included), the same build run again checks the manifest, keeps the
-- finished blocks and computes the rest; the blocks are fixed row ranges in fixed batches, so the
-- result is the same as an uninterrupted build. When all blocks exist they are assembled into
-- <path> (again written to a temporary and renamed) and the folder is removed. One build per path
-- at a time.
--
-- Refusals (open): not an HDF5 file or truncated; not a soft-target cache; written by a newer
-- retort; incomplete (unless partial = true); and, given a loader / teacher / class count, a
-- different example count, dataset, augmentation, teacher or class count. Each message says which.
--
-- Trust (open): the file's checksums (core/src/h5.c) catch changed bytes ("file is corrupt"); then every
-- root attribute is checked against ATTRS below (its type and range; rows_done <= num_examples, complete
-- only with every row done, view_seeds one per view), /logits against the attributes, /labels against
-- 0..num_classes-1 and the features of every tap listed against [N, ...] or [V, N, ...]. The message names
-- the file, the attribute, what was expected and what was found. Strings from the file (teacher, input,
-- tap names, fingerprints) are printed with their control characters escaped (retort.printable).
local core = require "retort.core"
local loss = require "retort.loss"
local options = require "retort.options"
local printable = require "retort.printable"
local progress = require "retort.progress"
local outputs = require "retort.outputs"

local M = {FORMAT = "retort.softtargets", VERSION = 1}

local Cache = {}
Cache.__index = Cache
Cache.__name = "retort.cache.Cache"

local DEFAULT_BLOCK_ROWS = 4096

--- teacherFingerprint(net): a hash of the architecture (tostring) and every parameter and buffer.
function M.teacherFingerprint(net)
   local sd = net:stateDict()
   local names = {}
   for k in pairs(sd) do names[#names + 1] = k end
   table.sort(names)
   local args = {tostring(net)}
   for _, k in ipairs(names) do
      args[#args + 1] = k
      args[#args + 1] = sd[k]
   end
   return core.fingerprint(table.unpack(args))
end

--- datasetFingerprint(x, y): a hash of the inputs and labels (dtype, shape and values).
function M.datasetFingerprint(x, y) return core.fingerprint(x, y) end

local function is_loader(l)
   return type(l) == "table" and core.isTensor(l.y) and type(l.gather) == "function"
      and type(l.fingerprint) == "function"
end

-- the augmentation a loader applies, as the cache records it
local function augment_of(loader)
   return {crop = loader.pad or 0, flip = loader.flip and true or false, seed = loader.pad and loader.seed or 0}
end

local function parts_dir(path) return path .. ".parts" end
local function block_name(b) return ("block-%06d.h5"):format(b) end

local function exists(path)
   local f = io.open(path, "rb")
   if f then f:close() end
   return f ~= nil
end

-- a message of the HDF5 layer as part of ours ("h5_read: x" -> "x")
local function core_message(err) return (tostring(err):gsub("^h5_[%w_]+: ", "")) end

local function remove_tree(dir)
   for _, name in ipairs(core.listDir(dir) or {}) do os.remove(dir .. "/" .. name) end
   os.remove(dir)
end

-- The first (view, row) of logits (N, C) or (V, N, C) holding a NaN or an infinity, or nil. x * 0 is 0
-- where x is finite and NaN elsewhere, so one sum says whether to look further (60,000 x 10 logits:
-- about 1 ms); the rows are only read out when something is wrong.
local function first_non_finite(lg)
   if lg:numel() == 0 then return nil end
   local z = lg * 0
   local total = z:sum():item()
   if total == total then return nil end
   local c = lg:size(lg:dim())
   local n = lg:dim() == 3 and lg:size(2) or lg:size(1)
   local per_row = z:view(-1, c):sum(2):totable()
   for i, v in ipairs(per_row) do
      if v ~= v then return (i - 1) // n + 1, (i - 1) % n + 1 end
   end
end

-- --------------------------------------------------------------------------------------------
-- metadata shared by the manifest, the blocks and the finished file

local META_KEYS = {"num_examples", "num_classes", "views", "teacher_fingerprint", "dataset_fingerprint",
                   "augment_crop", "augment_flip", "augment_seed", "taps", "block_rows", "batch_size"}

local function write_meta(f, meta)
   f:setAttr("/", "format", M.FORMAT)
   f:setAttr("/", "version", M.VERSION)
   for k, v in pairs(meta) do f:setAttr("/", k, v) end
end

-- why two metadata tables differ ("teacher_fingerprint: 1a2b... vs 3c4d..."), or nil
local function meta_difference(want, have)
   for _, k in ipairs(META_KEYS) do
      if want[k] ~= have[k] then return ("%s: %s here, %s there"):format(k, tostring(want[k]), tostring(have[k])) end
   end
end

local function taps_list(s)
   local out = {}
   for name in tostring(s or ""):gmatch("[^,]+") do out[#out + 1] = name end
   return out
end

-- What each root attribute must be (the manifest and the blocks of a build carry the same ones, without
-- rows_done and complete): {description, check, required}. Checked at open, in this order.
local function integer_from(lo, hi)
   return function(v) return math.type(v) == "integer" and v >= lo and (not hi or v <= hi) end
end
local function is_string(v) return type(v) == "string" end
local ATTRS = {
   {"version", ("an integer in 1..%d"):format(M.VERSION), integer_from(1, M.VERSION), true},
   {"num_examples", "an integer >= 1", integer_from(1), true},
   {"num_classes", "an integer in 1..2^31", integer_from(1, 2 ^ 31), true},
   {"views", "an integer in 1..65536", integer_from(1, 65536), true},
   {"teacher_fingerprint", "a string", is_string, true},
   {"dataset_fingerprint", "a string", is_string, true},
   {"augment_crop", "an integer >= 0", integer_from(0), true},
   {"augment_flip", "a boolean", function(v) return type(v) == "boolean" end, true},
   {"augment_seed", "an integer", function(v) return math.type(v) == "integer" end, true},
   {"taps", "a comma-separated list of tap names (no '/')",
    function(v) return type(v) == "string" and not v:find("/") end, true},
   {"block_rows", "an integer >= 1", integer_from(1), true},
   {"batch_size", "an integer >= 1", integer_from(1), true},
   {"rows_done", "an integer in 0..num_examples", integer_from(0), "file"},
   {"complete", "a boolean", function(v) return type(v) == "boolean" end, "file"},
   {"view_seeds", "a list of integers, one per view", function(v) return type(v) == "table" end, false},
   {"teacher", "a string", is_string, false},
   {"input", "a string", is_string, false},
   {"created", "a string", is_string, false},
}

local found = printable.value

-- errors unless the attributes a of path (a finished file when file, else a build's manifest) are what
-- a cache holds; where says which file they came from when it is not path itself
local function check_attrs(path, a, file, where)
   local function bad(k, want, v)
      error(("retort.cache: %s: %sattribute %s should be %s, found %s"):format(printable.escape(path),
         where and (where .. ": ") or "", k, want, found(v)), 0)
   end
   for _, rule in ipairs(ATTRS) do
      local k, want, ok, required = rule[1], rule[2], rule[3], rule[4]
      local v = a[k]
      if (required == true or (required == "file" and file)) and v == nil then bad(k, want, v) end
      if v ~= nil and not ok(v) then bad(k, want, v) end
   end
   if file then
      if a.rows_done > a.num_examples then
         bad("rows_done", ("an integer in 0..%d (num_examples)"):format(a.num_examples), a.rows_done)
      end
      if a.complete and a.rows_done ~= a.num_examples then
         bad("rows_done", ("%d (num_examples: the cache says it is complete)"):format(a.num_examples), a.rows_done)
      end
   end
   if a.view_seeds ~= nil then
      if #a.view_seeds ~= a.views then
         bad("view_seeds", ("a list of %d integers (views)"):format(a.views), a.view_seeds)
      end
      for _, v in ipairs(a.view_seeds) do
         if math.type(v) ~= "integer" then bad("view_seeds", "a list of integers", a.view_seeds) end
      end
   end
   for _, t in ipairs(taps_list(a.taps)) do
      if t:find("^%s*$") then bad("taps", "a comma-separated list of tap names", a.taps) end
   end
end

-- errors unless /labels (i64 [N]) holds class ids in 0..num_classes-1
local function check_labels(path, labels, a)
   if labels:dtype() ~= "i64" or labels:dim() ~= 1 or labels:size(1) ~= a.num_examples then
      error(("retort.cache: %s: /labels should be i64 [%d] (num_examples), found %s [%s]"):format(
         printable.escape(path), a.num_examples, labels:dtype(), table.concat(labels:shape(), "x")), 0)
   end
   local lo, hi = labels:min():item(), labels:max():item()
   if lo < 0 or hi > a.num_classes - 1 then
      local v = lo < 0 and lo or hi
      local at = (lo < 0 and labels:argmin() or labels:argmax()):item()
      error(("retort.cache: %s: /labels holds %d at example %d; class ids must be in 0..%d (num_classes - 1)")
         :format(printable.escape(path), v, at, a.num_classes - 1), 0)
   end
end

-- --------------------------------------------------------------------------------------------
-- building

local function check_build_opts(o)
   if type(o) ~= "table" then error("retort.cache.build: bad argument #1 (table of options expected)", 3) end
   local known = {teacher = true, data = true, path = true, views = true, taps = true, batchSize = true,
                  blockRows = true, quiet = true, replaceStale = true} -- replaceStale: ensure's
   options.check("retort.cache.build", o, known, 3)
   if type(o.teacher) ~= "table" or type(o.teacher.forward) ~= "function" then
      error("retort.cache.build: option 'teacher' must be an nn.Module (the teacher network)", 3)
   end
   if not is_loader(o.data) then error("retort.cache.build: option 'data' must be a retort.data.Loader", 3) end
   if type(o.path) ~= "string" or o.path == "" then
      error("retort.cache.build: option 'path' must be a file name", 3)
   end
   local loader = o.data
   local views = o.views or loader.views or 1
   if math.type(views) ~= "integer" or views < 1 then
      error(("retort.cache.build: views must be an integer >= 1, got %s"):format(tostring(views)), 3)
   end
   if loader.pad then
      if loader.views ~= views then
         error(("retort.cache.build: the loader augments (crop/flip) but was made with views = %s; a cache of %d "
                .. "view(s) needs a loader with views = %d, so that training replays the same crops and flips")
               :format(tostring(loader.views), views, views), 3)
      end
   elseif views > 1 then
      error(("retort.cache.build: views = %d needs an augmenting loader (augment = {crop =, flip =}); without "
             .. "augmentation every view is the same image"):format(views), 3)
   end
   local taps = o.taps or {}
   if type(taps) ~= "table" then error("retort.cache.build: taps must be a list of tap names", 3) end
   for _, t in ipairs(taps) do
      if type(t) ~= "string" or t == "" or t:find("[,/]") then
         error(("retort.cache.build: tap names must be non-empty strings without ',' or '/', got %s"):format(
            tostring(t)), 3)
      end
   end
   local batch = o.batchSize or 500
   local block = o.blockRows or DEFAULT_BLOCK_ROWS
   if math.type(batch) ~= "integer" or batch < 1 then
      error("retort.cache.build: batchSize must be an integer >= 1", 3)
   end
   if math.type(block) ~= "integer" or block < 1 then
      error("retort.cache.build: blockRows must be an integer >= 1", 3)
   end
   return views, taps, batch, block
end

-- the teacher's logits and taps for rows idx of view v (on the teacher's device; writes download them)
local function teacher_rows(teacher, loader, idx, v, taps)
   local x = loader:gather(idx, v)
   if teacher.device then x = x:to(teacher:device()) end
   return core.noGrad(function() return teacher:forward(x, {taps = taps}) end)
end

-- computes block b (rows first .. first + rows - 1) and writes it atomically
local function build_block(o, meta, b, first, rows, bar)
   local V, taps = meta.views, taps_list(meta.taps)
   local logits, feats = {}, {}
   for v = 1, V do
      local parts, fparts = {}, {}
      for at = first, first + rows - 1, meta.batch_size do
         local n = math.min(meta.batch_size, first + rows - at)
         local y, t = teacher_rows(o.teacher, o.data, core.arange(at, at + n - 1, "i64"), v, taps)
         parts[#parts + 1] = y:float()
         for i, name in ipairs(taps) do
            fparts[i] = fparts[i] or {}
            fparts[i][#fparts[i] + 1] = t[name]:float()
         end
         bar:update(n)
      end
      logits[v] = core.cat(parts, 1)
      local _, bad = first_non_finite(logits[v])
      if bad then
         error(("retort.cache.build: the teacher's logits for example %d (view %d) hold a NaN or an infinity; "
                .. "a cache of them would train nothing (is the teacher's checkpoint broken?)"):format(
                first + bad - 1, v), 0)
      end
      for i = 1, #taps do
         feats[i] = feats[i] or {}
         feats[i][v] = core.cat(fparts[i], 1)
      end
   end
   local f = core.h5Create(parts_dir(o.path) .. "/" .. block_name(b))
   local ok, err = pcall(function()
      write_meta(f, meta)
      f:setAttr("/", "first_row", first)
      f:setAttr("/", "rows", rows)
      f:write("/logits", core.stack(logits, 1))
      for i, name in ipairs(taps) do f:write("/features/" .. name, core.stack(feats[i], 1)) end
   end)
   if not ok then f:abort(); error(err, 0) end
   f:close()
end

-- reads a block file's metadata; false when it is unreadable or belongs to another build
local function block_ok(path, meta, first, rows)
   local ok, f = pcall(core.h5Open, path)
   if not ok then return false end
   local oka, a = pcall(f.attrs, f, "/")
   f:abort()
   return oka and a.format == M.FORMAT and meta_difference(meta, a) == nil and a.first_row == first and a.rows == rows
end

-- joins the finished blocks into the cache file (atomically)
local function assemble(o, meta, nblocks)
   local dir, V, N, C = parts_dir(o.path), meta.views, meta.num_examples, meta.num_classes
   local taps = taps_list(meta.taps)
   local f = core.h5Create(o.path)
   local ok, err = pcall(function()
      write_meta(f, meta) -- created, teacher and input included
      f:setAttr("/", "rows_done", N)
      f:setAttr("/", "complete", true)
      f:write("/labels", o.data.y:long() - 1)
      -- logits are read whole when the cache opens: blocks of rows of about 512 KiB
      local rows = math.max(1, math.min(N, 131072 // C))
      f:createDataset("/logits", "f32", V > 1 and {V, N, C} or {N, C}, V > 1 and {1, rows, C} or {rows, C})
      local created = {}
      for b = 0, nblocks - 1 do
         local bf = core.h5Open(dir .. "/" .. block_name(b))
         local first = bf:getAttr("/", "first_row")
         local lg = bf:read("/logits")
         for v = 1, V do
            f:writeRows("/logits", first, lg:select(1, v), V > 1 and {v} or nil)
         end
         for _, name in ipairs(taps) do
            local ft = bf:read("/features/" .. name)
            local p = "/features/" .. name
            if not created[name] then
               -- features may be read a batch of random rows at a time: one chunk per row
               local fs, chunk = ft:shape(), {}
               table.remove(fs, 1)
               fs[1] = N
               if V > 1 then table.insert(fs, 1, V) end
               for i, n in ipairs(fs) do chunk[i] = i <= (V > 1 and 2 or 1) and 1 or n end
               f:createDataset(p, "f32", fs, chunk)
               created[name] = true
            end
            for v = 1, V do f:writeRows(p, first, ft:select(1, v), V > 1 and {v} or nil) end
         end
         bf:abort()
      end
   end)
   if not ok then f:abort(); error(err, 0) end
   f:close()
end

--- build{teacher, data, path, views, taps, batchSize = 500, blockRows = 4096, quiet}: runs the
--- teacher over every example of the loader `data` (in dataset order, each of `views` views) and
--- writes the cache to path, resuming a build that was interrupted. Returns the opened cache.
function M.build(o)
   local views, taps, batch, block = check_build_opts(o)
   local loader, teacher = o.data, o.teacher
   local N = loader.n
   if N == 0 then error("retort.cache.build: the loader has no examples", 2) end
   teacher:evaluate()
   local probe = teacher_rows(teacher, loader, core.arange(1, 1, "i64"), 1, taps)
   if probe:dim() ~= 2 then
      error(("retort.cache.build: the teacher's output must be logits (batch, classes), got %s"):format(
         table.concat(probe:shape(), "x")), 2)
   end
   local aug = augment_of(loader)
   local meta = {
      num_examples = N, num_classes = probe:size(2), views = views,
      teacher_fingerprint = M.teacherFingerprint(teacher),
      dataset_fingerprint = loader:fingerprint(),
      augment_crop = aug.crop, augment_flip = aug.flip, augment_seed = aug.seed,
      taps = table.concat(taps, ","), block_rows = block, batch_size = batch,
   }
   if loader.pad then -- the seed of each augmentation view (derived from augment_seed, so not compared)
      meta.view_seeds = {}
      for v = 1, views do meta.view_seeds[v] = loader:viewSeed(v) end
   end
   local dir = parts_dir(o.path)
   local manifest = dir .. "/manifest.h5"
   -- several ranks (mpirun -np N retort cache ...; retort.dist): rank 0 prepares the parts folder while the
   -- others wait, each rank builds every N-th missing block, and rank 0 assembles them: the blocks are
   -- fixed row ranges in fixed batches, so the file is the one a single process writes
   local dist = require "retort.dist"
   local ranks, lead = dist.size(), dist.rank() == 0
   if not lead then dist.barrier() end -- until rank 0 has written the manifest (read below)
   local ok, err = core.mkdir(dir)
   if not ok then error("retort.cache.build: " .. err, 2) end
   -- one build per file: a second fails here, naming the first's process (released on any exit)
   local what = "retort.cache.build: " .. o.path
   local lock <close> = lead and outputs.lock(dir .. "/lock", what) or nil -- luacheck: ignore 211 (to-be-closed)
   if lead then
      outputs.removeStaleTemps(dir) -- temporaries of a build that was killed
      local out_dir, out_name = o.path:match("^(.*)/([^/]*)$")
      outputs.removeStaleTemps(out_dir or ".", out_name or o.path)
   end
   if exists(manifest) then
      local okm, f = pcall(core.h5Open, manifest)
      local a
      if okm then
         okm, a = pcall(f.attrs, f, "/")
         f:abort()
      end
      if not okm then error(("retort.cache.build: %s is unreadable (%s); remove %s to start over"):format(
         manifest, core_message(a or f), dir), 2) end
      local why = meta_difference(meta, a)
      if why then
         error(("retort.cache.build: %s holds a partial build of a different cache (%s); remove it to start over")
               :format(dir, why), 2)
      end
      meta.created, meta.teacher, meta.input = a.created, a.teacher, a.input
   else
      meta.created = os.date("!%Y-%m-%dT%H:%M:%SZ")
      meta.teacher = tostring(teacher)
      meta.input = tostring(loader)
      local f = core.h5Create(manifest)
      local okw, werr = pcall(write_meta, f, meta)
      if not okw then f:abort(); error(werr, 2) end
      f:close()
   end
   if lead and ranks > 1 then dist.barrier() end
   local nblocks = (N + block - 1) // block
   local todo, done_rows = {}, 0
   for b = 0, nblocks - 1 do
      local first, rows = b * block + 1, math.min(block, N - b * block)
      if block_ok(dir .. "/" .. block_name(b), meta, first, rows) then
         done_rows = done_rows + rows
      else
         todo[#todo + 1] = {b, first, rows}
      end
   end
   if ranks > 1 then dist.barrier() end -- every rank has its list before any block is written
   local quiet = o.quiet or not lead
   if not quiet and done_rows > 0 then
      io.stderr:write(("cache: resuming %s, %d of %d rows already built\n"):format(o.path, done_rows, N))
   end
   local mine, my_rows = {}, 0 -- this rank's blocks: every ranks-th missing one
   for i, t in ipairs(todo) do
      if (i - 1) % ranks == dist.rank() then mine[#mine + 1], my_rows = t, my_rows + t[3] end
   end
   local bar = progress.new{total = my_rows * views, label = ranks > 1 and ("cache (rank 0 of %d)"):format(ranks)
                            or "cache", quiet = quiet}
   for _, t in ipairs(mine) do build_block(o, meta, t[1], t[2], t[3], bar) end
   bar:finish()
   if ranks > 1 then dist.barrier() end -- every block is written
   if lead then
      assemble(o, meta, nblocks)
      remove_tree(dir)
   end
   if ranks > 1 then dist.barrier() end -- the file is in place
   return M.open(o.path, {loader = loader}) -- the teacher is the one just fingerprinted into it
end

-- --------------------------------------------------------------------------------------------
-- reading

-- the error "retort.cache: <path>: <why>", with the strings among the arguments escaped
local function refuse(path, why, ...)
   local args = table.pack(...)
   for i = 1, args.n do
      if type(args[i]) == "string" then args[i] = printable.escape(args[i]) end
   end
   error(("retort.cache: %s: " .. why):format(printable.escape(path), table.unpack(args, 1, args.n)), 0)
end

-- errors unless a (the root attributes of path) say: a soft-target cache this retort reads
local function check_format(path, a)
   if a.format ~= M.FORMAT then
      refuse(path, "an HDF5 file but not a retort soft-target cache (format is %s, expected \"%s\")",
             a.format and ("\"" .. printable.escape(a.format) .. "\"") or "missing", M.FORMAT)
   end
   if math.type(a.version) == "integer" and a.version > M.VERSION then
      refuse(path, "a cache of format version %d, written by a newer retort; this one reads version %d",
             a.version, M.VERSION)
   end
end

-- attributes and logits of a finished file
local function read_file(path)
   local ok, f = pcall(core.h5Open, path)
   if not ok then error("retort.cache: " .. core_message(f), 0) end
   local res = table.pack(pcall(function()
      local a = f:attrs("/")
      check_format(path, a)
      check_attrs(path, a, true)
      local lg = f:read("/logits")
      local want = a.views > 1 and {a.views, a.num_examples, a.num_classes} or {a.num_examples, a.num_classes}
      if table.concat(lg:shape(), "x") ~= table.concat(want, "x") then
         refuse(path, "/logits is %s but the attributes say %s", table.concat(lg:shape(), "x"), table.concat(want, "x"))
      end
      local view, row = first_non_finite(lg)
      if view then
         refuse(path, "/logits hold a NaN or an infinity (example %d, view %d): the file is damaged or was built "
                .. "from a broken teacher; build it again", row, view)
      end
      local labels = f:read("/labels")
      check_labels(path, labels, a)
      local feats = {}
      for _, name in ipairs(taps_list(a.taps)) do
         local p = "/features/" .. name
         if f:kind(p) ~= "dataset" then
            refuse(path, "its taps attribute lists '%s' but the file has no dataset %s", name, p)
         end
         local fs = f:info(p)
         local lead = a.views > 1 and {a.views, a.num_examples} or {a.num_examples}
         if #fs <= #lead or fs[1] ~= lead[1] or (lead[2] and fs[2] ~= lead[2]) then
            refuse(path, "%s is %s but the attributes say %s x ...", p, table.concat(fs, "x"), table.concat(lead, "x"))
         end
         feats[name] = p
      end
      return a, lg, labels, feats
   end))
   f:abort()
   if not res[1] then
      local err = tostring(res[2])
      error(err:find("retort.cache: ", 1, true) == 1 and err or ("retort.cache: " .. core_message(err)), 0)
   end
   return table.unpack(res, 2, 5)
end

-- attributes and logits of an unfinished build (its finished leading blocks)
local function read_parts(path)
   local dir = parts_dir(path)
   local manifest = dir .. "/manifest.h5"
   local okf, f = pcall(core.h5Open, manifest)
   if not okf then error("retort.cache: " .. core_message(f), 0) end
   local oka, a = pcall(f.attrs, f, "/")
   f:abort()
   if not oka then error("retort.cache: " .. core_message(a), 0) end
   check_format(manifest, a)
   check_attrs(path, a, false, manifest)
   local logits, rows = {}, 0
   for b = 0, (a.num_examples + a.block_rows - 1) // a.block_rows - 1 do
      local first, n = b * a.block_rows + 1, math.min(a.block_rows, a.num_examples - b * a.block_rows)
      local name = dir .. "/" .. block_name(b)
      if not block_ok(name, a, first, n) then break end
      local okb, lg = pcall(function()
         local bf <close> = core.h5Open(name)
         return bf:read("/logits")
      end)
      if not okb then error("retort.cache: " .. core_message(lg), 0) end
      if table.concat(lg:shape(), "x") ~= table.concat({a.views, n, a.num_classes}, "x") then
         refuse(path, "%s holds /logits %s but the build's manifest says %s", name, table.concat(lg:shape(), "x"),
                table.concat({a.views, n, a.num_classes}, "x"))
      end
      logits[#logits + 1] = lg
      rows = rows + n
   end
   a.rows_done, a.complete = rows, false
   local lg = #logits > 0 and core.cat(logits, 2) or core.zeros(a.views, 0, a.num_classes)
   if a.views == 1 then lg = lg:select(1, 1) end
   local view, row = first_non_finite(lg)
   if view then
      refuse(path, "the partial build's logits hold a NaN or an infinity (example %d, view %d); remove %s and build "
             .. "again", row, view, dir)
   end
   return a, lg, nil, {}
end

--- open(path [, {loader =, teacher =, numClasses =, partial = false, featureMemory = 1 GiB}]): the
--- cache at path, checked against the loader's dataset and augmentation, the teacher and the class
--- count when given. Features at taps up to featureMemory bytes are read into memory on first use;
--- larger ones are read from the file a batch of rows at a time.
function M.open(path, o)
   if type(path) ~= "string" then
      error("retort.cache.open: bad argument #1 (path string expected, got " .. type(path) .. ")", 2)
   end
   o = o or {}
   if type(o) ~= "table" then error("retort.cache.open: bad argument #2 (table of options expected)", 2) end
   local a, logits, labels, feats
   if not exists(path) and exists(parts_dir(path) .. "/manifest.h5") then
      a, logits, labels, feats = read_parts(path)
      if not o.partial then
         refuse(path, "incomplete cache: its build stopped with %d of %d rows done (in %s); run the build again "
                .. "to resume it, or open it with partial = true", a.rows_done, a.num_examples, parts_dir(path))
      end
   else
      a, logits, labels, feats = read_file(path)
      if a.complete ~= true and not o.partial then
         refuse(path, "incomplete cache: %d of %d rows done; rebuild it, or open it with partial = true",
                a.rows_done, a.num_examples)
      end
   end
   local self = setmetatable({path = path, attrs = a, numExamples = a.num_examples, numClasses = a.num_classes,
                              views = a.views, rowsDone = a.rows_done, complete = a.complete == true,
                              taps = taps_list(a.taps), labels = labels, _features = feats, _loaded = {},
                              featureMemory = o.featureMemory or 2 ^ 30}, Cache)
   self.logits = a.views > 1 and logits or logits:view(1, logits:size(1), logits:size(2))
   self:check(o)
   return self
end

--- check{loader =, teacher =, numClasses =}: errors unless the cache was built for these.
function Cache:check(o)
   local path, a = self.path, self.attrs
   if o.numClasses and o.numClasses ~= a.num_classes then
      refuse(path, "built for %d classes, but %d were expected", a.num_classes, o.numClasses)
   end
   if o.loader then
      local l = o.loader
      if not is_loader(l) then error("retort.cache: option 'loader' must be a retort.data.Loader", 0) end
      if l.n ~= a.num_examples then
         refuse(path, "built for %d examples, but the loader's dataset has %d", a.num_examples, l.n)
      end
      local fp = l:fingerprint()
      if fp ~= a.dataset_fingerprint then
         refuse(path, "built for another dataset (dataset fingerprint %s, the loader's is %s: same size, other "
                .. "images or labels)", tostring(a.dataset_fingerprint), fp)
      end
      if l.n > 0 and l.y:max():item() > a.num_classes then
         refuse(path, "built for %d classes, but the loader's labels go up to %d", a.num_classes, l.y:max():item())
      end
      local aug = augment_of(l)
      if aug.crop ~= a.augment_crop or aug.flip ~= a.augment_flip or aug.seed ~= a.augment_seed then
         refuse(path, "built with augmentation crop %d, flip %s, seed %d; the loader has crop %d, flip %s, seed %d",
                a.augment_crop, tostring(a.augment_flip), a.augment_seed, aug.crop, tostring(aug.flip), aug.seed)
      end
      if l.pad and l.views ~= a.views then
         refuse(path, "holds %d augmentation view(s), but the loader was made with views = %s", a.views,
                tostring(l.views))
      end
   end
   if o.teacher then
      local fp = M.teacherFingerprint(o.teacher)
      if fp ~= a.teacher_fingerprint then
         refuse(path, "built from another teacher (teacher fingerprint %s, this teacher's is %s)",
                tostring(a.teacher_fingerprint), fp)
      end
   end
   return self
end

--- view(epoch): the view that epoch reads ((epoch - 1) % views + 1), as Loader:view does.
function Cache:view(epoch) return ((epoch or 1) - 1) % self.views + 1 end

local function check_rows(self, idx)
   if not core.isTensor(idx) then
      error("retort.cache: teacher rows are looked up by the loader's dataset indices (an i64 tensor), got "
            .. type(idx), 3)
   end
   if idx:numel() > 0 then
      local hi, lo = idx:max():item(), idx:min():item()
      if lo < 1 or hi > self.rowsDone then
         error(("retort.cache: %s: index %d is outside the %d rows %s"):format(self.path, lo < 1 and lo or hi,
            self.rowsDone, self.complete and "it holds" or "built so far (a partial cache)"), 3)
      end
   end
end

--- teacherLogits(idx, epoch): the stored logits [B, C] of dataset rows idx (i64, 1-based) in that
--- epoch's view.
function Cache:teacherLogits(idx, epoch)
   check_rows(self, idx)
   return self.logits:select(1, self:view(epoch)):indexSelect(1, idx)
end

--- features(tap, idx, epoch): the stored teacher features at a tap, for rows idx in that epoch's view:
--- from memory (the first call reads the dataset whole) when it fits in featureMemory bytes, else
--- from the file (one chunk per row, so a random batch costs one read of its rows).
function Cache:features(tap, idx, epoch)
   local p = self._features[tap]
   if not p then
      error(("retort.cache: %s holds no features for tap '%s'; it holds: %s"):format(self.path, tostring(tap),
         #self.taps > 0 and table.concat(self.taps, ", ") or "(none: built without taps)"), 2)
   end
   check_rows(self, idx)
   -- the file's errors (a damaged chunk: "file is corrupt") as retort.cache's, without a Lua position
   local function file_call(fn, ...)
      local res = table.pack(pcall(fn, ...))
      if not res[1] then error("retort.cache: " .. core_message(res[2]), 0) end
      return table.unpack(res, 2, res.n)
   end
   local t = self._loaded[tap] -- the features in memory, false when they stay in the file, nil until decided
   if t == nil then
      self._file = self._file or file_call(core.h5Open, self.path)
      local bytes = 4
      for _, n in ipairs((file_call(self._file.info, self._file, p))) do bytes = bytes * n end
      t = false
      if bytes <= self.featureMemory then
         local res = file_call(self._file.read, self._file, p)
         t = self.views > 1 and res or res:view(1, table.unpack(res:shape()))
      end
      self._loaded[tap] = t
   end
   if not t then
      return file_call(self._file.readIndex, self._file, p, idx, self.views > 1 and {self:view(epoch)} or nil)
   end
   return t:select(1, self:view(epoch)):indexSelect(1, idx)
end

--- logitsOfView(v): all stored logits [N, C] of view v (difficulty scores, --info).
function Cache:logitsOfView(v) return self.logits:select(1, v or 1) end

--- verify(teacher, loader [, rows = 256]): recomputes `rows` rows (spread over the dataset) of every
--- view with the teacher and compares them with the stored logits. Returns the largest absolute
--- difference, the largest logit magnitude, and the number of rows compared.
--- verify(teacher, loader [, rows = 256]): recomputes `rows` rows (spread over the cache) with the
--- live teacher; returns the largest difference, the largest stored |logit| and the rows compared.
--- A NaN on either side makes the difference NaN (and an infinity infinite): callers treat only a
--- finite difference within tolerance as a match (recipe.cache does).
function Cache:verify(teacher, loader, rows)
   self:check{loader = loader}
   rows = math.min(rows or 256, self.rowsDone)
   if rows < 1 then return 0, 0, 0 end
   local step = self.rowsDone / rows
   local pick = {}
   for k = 0, rows - 1 do pick[#pick + 1] = math.floor(k * step) + 1 end
   local idx = core.tensor(pick, "i64")
   teacher:evaluate()
   -- math.max(0, NaN) is 0: a NaN anywhere must make the result NaN, never hide it
   local function max(a, b) return (a ~= a or b ~= b) and 0 / 0 or math.max(a, b) end
   local worst, scale = 0, 0
   for v = 1, self.views do
      local live = teacher_rows(teacher, loader, idx, v, {})
      local stored = self:teacherLogits(idx, v)
      worst = max(worst, (live:float() - stored):abs():max():item())
      scale = max(scale, stored:abs():max():item())
   end
   return worst, scale, rows
end

--- summary(): the lines `retort cache --info` prints.
function Cache:summary()
   local a = self.attrs
   local lg = self:logitsOfView(1):narrow(1, 1, self.rowsDone)
   local lines = {
      ("%s: retort soft-target cache, format version %d"):format(printable.escape(self.path), a.version),
      ("  examples     %d (%s)"):format(self.numExamples, self.complete and "complete"
         or ("INCOMPLETE: " .. self.rowsDone .. " rows done")),
      ("  classes      %d"):format(self.numClasses),
      ("  views        %d%s"):format(self.views, (a.augment_crop > 0 or a.augment_flip)
         and (" (crop %d, flip %s, augment seed %d)"):format(a.augment_crop, tostring(a.augment_flip), a.augment_seed)
         or " (no augmentation)"),
      ("  /logits      f32 %s (logits, not probabilities: soft targets at any temperature T are exact)")
         :format(table.concat(self.views > 1 and {self.views, self.numExamples, self.numClasses}
                              or {self.numExamples, self.numClasses}, "x")),
   }
   local esc = printable.escape -- strings from the file: no control characters reach the terminal
   for _, tap in ipairs(self.taps) do lines[#lines + 1] = ("  /features/%s"):format(esc(tap)) end
   lines[#lines + 1] = ("  teacher      fingerprint %s"):format(esc(a.teacher_fingerprint))
   for line in tostring(a.teacher or ""):gmatch("[^\n]+") do lines[#lines + 1] = "               " .. esc(line) end
   lines[#lines + 1] = ("  dataset      fingerprint %s; input %s"):format(esc(a.dataset_fingerprint), esc(a.input))
   lines[#lines + 1] = ("  created      %s"):format(esc(a.created))
   if self.labels and self.rowsDone > 0 then
      local y = self.labels:narrow(1, 1, self.rowsDone) + 1
      local acc = loss.accuracy(lg, y)
      lines[#lines + 1] = ("  teacher accuracy on these examples (view 1): %.4f"):format(acc)
   end
   return lines
end

function Cache:__tostring()
   return ("retort.cache(%s: %d examples, %d classes, %d view(s)%s%s)"):format(self.path, self.numExamples,
      self.numClasses, self.views, #self.taps > 0 and (", taps " .. table.concat(self.taps, ",")) or "",
      self.complete and "" or (", partial: " .. self.rowsDone .. " rows"))
end

M.Cache = Cache
M.isCache = function(x) return getmetatable(x) == Cache end

--- ensure{teacher, data, path, views, taps, ..., replaceStale = false}: the cache at path if it exists
--- (checked against the teacher and the loader), else build it (resuming an interrupted build). With
--- replaceStale, a cache at path that does not pass the check is deleted and built anew instead.
function M.ensure(o)
   if type(o) == "table" and type(o.path) == "string" and exists(o.path) then
      local ok, c = pcall(M.open, o.path, {loader = o.data, teacher = o.teacher})
      if ok then
         remove_tree(parts_dir(o.path)) -- left by a build killed after its rename (nothing if absent)
         return c
      end
      if not o.replaceStale then error(c, 0) end
      os.remove(o.path)
   end
   return M.build(o)
end

return M
