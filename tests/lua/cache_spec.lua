-- retort.cache: soft-target caches. Stored logits against the live teacher on the same inputs
-- (views replayed), features at taps, training from a cache against training with the live
-- teacher, builds killed with SIGKILL and resumed against an uninterrupted build (datasets equal
-- byte for byte), and every refusal.
local retort = require "retort"
local core = retort.core
local support = require "support"
local world = require "cache_world"

local function tmpdir()
   local d = support.tmpdir()
   assert(core.mkdir(d))
   return d
end

local function live_logits(teacher, loader, idx, view)
   teacher:evaluate()
   return retort.noGrad(function() return teacher:forward(loader:gather(idx, view)) end)
end

local function max_diff(a, b) return (a - b):abs():max():item() end

local function copy(src, dst)
   local s = support.slurp(src)
   local f = assert(io.open(dst, "wb")); f:write(s); f:close()
end

describe("retort.cache", function()
   local dir
   before_each(function() dir = tmpdir() end)
   after_each(function() support.rmrf(dir) end)

   it("stores the teacher's logits, 0-based labels and the attributes DESIGN.md §5 lists", function()
      local loader, teacher = world.loader{n = 100}, world.teacher()
      local path = dir .. "/t.h5"
      local c = retort.cache.build{teacher = teacher, data = loader, path = path, blockRows = 30, batchSize = 7,
                                   quiet = true}
      assert.are.equal(100, c.numExamples); assert.are.equal(4, c.numClasses); assert.are.equal(1, c.views)
      local all = retort.arange(1, 100, "i64")
      assert.is_true(max_diff(c:teacherLogits(all, 1), live_logits(teacher, loader, all, 1)) < 1e-5)
      assert.are.same((loader.y - 1):totable(), c.labels:totable())
      assert.is_nil(io.open(path .. ".parts/manifest.h5")) -- the build folder is gone
      local f = core.h5Open(path)
      local a = f:attrs("/")
      assert.are.same({100, 4}, (f:info("/logits")))
      f:abort()
      assert.are.equal("retort.softtargets", a.format); assert.are.equal(1, a.version)
      assert.are.equal(100, a.num_examples); assert.are.equal(100, a.rows_done); assert.is_true(a.complete)
      assert.are.equal(retort.cache.teacherFingerprint(teacher), a.teacher_fingerprint)
      assert.are.equal(core.fingerprint(loader.x, loader.y), a.dataset_fingerprint)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", a.created)
      -- a row lookup outside the cache is an error that says so
      local ok, err = pcall(c.teacherLogits, c, retort.tensor({101}, "i64"), 1)
      assert.is_false(ok); assert.matches("index 101 is outside the 100 rows it holds", err, 1, true)
   end)

   it("replays V augmentation views: epoch e reads view (e - 1) % V + 1, as the loader augments", function()
      local loader, teacher = world.loader{n = 64, views = 3}, world.teacher()
      local c = retort.cache.build{teacher = teacher, data = loader, path = dir .. "/v.h5", blockRows = 20,
                                   quiet = true, taps = {"relu"}}
      assert.are.equal(3, c.views)
      local disk = retort.cache.open(dir .. "/v.h5", {featureMemory = 0}) -- features read from the file
      local idx = retort.tensor({5, 1, 64, 17, 5}, "i64")
      for e = 1, 5 do
         -- the student's batch in epoch e is loader:gather(idx, e); the teacher on it gives the stored logits
         assert.is_true(max_diff(c:teacherLogits(idx, e), live_logits(teacher, loader, idx, e)) < 1e-5)
         local _, taps = retort.noGrad(function() return teacher:forward(loader:gather(idx, e), {taps = {"relu"}}) end)
         assert.is_true(max_diff(disk:features("relu", idx, e), taps.relu) < 1e-5)
         assert.are.equal(0, max_diff(disk:features("relu", idx, e), c:features("relu", idx, e)))
      end
      assert.is_true(max_diff(c:teacherLogits(idx, 1), c:teacherLogits(idx, 2)) > 1e-3) -- the views differ
      local f = core.h5Open(dir .. "/v.h5")
      assert.are.same({3, 64, 4}, (f:info("/logits")))
      local seeds = f:getAttr("/", "view_seeds")
      f:abort()
      -- the per-view seeds describe the crops and flips exactly (as the cache documents them),
      -- rebuilt here by a naive loop from the raw images
      assert.are.equal(3, #seeds)
      local pad, h, w = 1, 8, 8
      for v = 1, 3 do
         for _, i in ipairs({1, 17, 64}) do
            local r = core.rngBits(seeds[v], i)
            local dy, dx = (r & 0xffffff) % (2 * pad + 1), ((r >> 24) & 0xffffff) % (2 * pad + 1)
            local flipped = (r >> 63) == 1
            local raw = loader.x[i]:to("f64"):totable()[1]
            local got = loader:gather(retort.tensor({i}, "i64"), v):totable()[1][1]
            for y = 1, h do
               for x = 1, w do
                  local sy, sx = y + dy - pad, (flipped and w + 1 - x or x) + dx - pad
                  local value = (sy >= 1 and sy <= h and sx >= 1 and sx <= w) and raw[sy][sx] or 0
                  if loader.scale then value = value / 255 end
                  assert.is_true(math.abs(got[y][x] - (value - 0.3) / 0.3) < 1e-5,
                                 ("view %d example %d pixel (%d, %d)"):format(v, i, y, x))
               end
            end
         end
      end
   end)

   it("stores features at taps and refuses taps it does not hold", function()
      local loader, teacher = world.loader{n = 50}, world.teacher()
      local c = retort.cache.build{teacher = teacher, data = loader, path = dir .. "/f.h5", taps = {"relu"},
                                   quiet = true}
      local idx = retort.tensor({3, 50}, "i64")
      teacher:evaluate()
      local _, taps = retort.noGrad(function() return teacher:forward(loader:gather(idx, 1), {taps = {"relu"}}) end)
      assert.is_true(max_diff(c:features("relu", idx, 1), taps.relu) < 1e-5)
      -- the same rows read from the file (row chunks) when the features exceed the memory budget
      local disk = retort.cache.open(dir .. "/f.h5", {featureMemory = 0})
      assert.are.equal(0, max_diff(disk:features("relu", idx, 1), c:features("relu", idx, 1)))
      local ok, err = pcall(c.features, c, "pool", idx, 1)
      assert.is_false(ok); assert.matches("holds no features for tap 'pool'; it holds: relu", err, 1, true)
      ok, err = pcall(retort.distill.Distiller, {teacher = c, student = world.teacher(2),
                                                 pairs = {{hint = "pool", guided = "pool", loss = "at"}}})
      assert.is_false(ok); assert.matches("holds no features for tap 'pool'; it holds: relu", err, 1, true)
   end)

   it("trains a student to the same metrics as the live teacher, same seed (KD and a feature pair)", function()
      local teacher = world.teacher()
      local cache = retort.cache.build{teacher = teacher, data = world.loader{views = 2}, path = dir .. "/k.h5",
                                       taps = {"relu"}, quiet = true}
      local function run(t)
         retort.manualSeed(4)
         local d = retort.distill.Distiller{teacher = t, student = world.teacher(5), T = 3, alpha = 0.7, gamma = 0.3,
                                            pairs = {{hint = "relu", guided = "relu", loss = "at", weight = 10}}}
         return retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.01, momentum = 0.9}),
                                 train = world.loader{views = 2}, test = world.loader{n = 100}, epochs = 3,
                                 log = io.open("/dev/null", "w")}.history
      end
      local live, cached = run(teacher), run(cache)
      for e = 1, 3 do
         for _, k in ipairs({"train_loss", "train_kl", "train_at", "test_loss"}) do
            assert.is_true(math.abs(live[e][k] - cached[e][k]) < 1e-5 * math.max(1, math.abs(live[e][k])),
                           ("epoch %d %s: live %.9g, cache %.9g"):format(e, k, live[e][k], cached[e][k]))
         end
         assert.are.equal(live[e].test_acc, cached[e].test_acc)
      end
      -- a cache beside a live teacher (multi-teacher average) trains as two live teachers do
      local function run2(t)
         retort.manualSeed(4)
         local d = retort.distill.Distiller{teacher = t, student = world.teacher(5), T = 3, alpha = 0.7, gamma = 0.3}
         return retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.01}),
                                 train = world.loader{views = 2}, epochs = 2, log = io.open("/dev/null", "w")}.history
      end
      local both_live, mixed = run2({teacher, teacher}), run2({cache, teacher})
      for e = 1, 2 do
         assert.is_true(math.abs(both_live[e].train_loss - mixed[e].train_loss) < 1e-5,
                        ("epoch %d: live %.9g, mixed %.9g"):format(e, both_live[e].train_loss, mixed[e].train_loss))
      end
      -- without the batch's dataset indices the cache cannot be read
      local d = retort.distill.Distiller{teacher = cache, student = world.teacher(5)}
      local x = world.loader{views = 2}:gather(retort.arange(1, 4, "i64"), 1)
      local ok, err = pcall(d.trainingStep, d, x, retort.tensor({1, 2, 3, 4}, "i64"), {epoch = 1})
      assert.is_false(ok); assert.matches("a cached teacher needs the batch's dataset indices", err, 1, true)
   end)

   it("resumes builds killed with SIGKILL to datasets equal byte for byte to an uninterrupted build", function()
      local script = support.tmpfile(([[
package.path = %q .. package.path
local retort = require "retort"
retort.setNumThreads(1)
local world = require "cache_world"
retort.cache.build{teacher = world.teacher(), data = world.loader{n = 3000, views = 2}, path = arg[1],
                   blockRows = 50, batchSize = 25, taps = {"pool"}}
]]):format("tests/lua/?.lua;"), ".lua")
      local ref = dir .. "/ref.h5"
      local started = core.clock()
      local r = support.run({script, ref})
      local full = core.clock() - started
      assert.are.equal(0, r.status, r.stderr)
      local out = dir .. "/killed.h5"
      local partial_resumes, kills = 0, 0
      for _, frac in ipairs({0.3, 0.5, 0.7, 0.9}) do
         if io.open(out) then break end
         r = support.run({script, out}, {prefix = ("timeout -s KILL %.2f"):format(frac * full)})
         if r.status == 137 then kills = kills + 1 end
         local done = r.stderr:match("resuming .- (%d+) of 3000 rows already built")
         if done and tonumber(done) > 0 then partial_resumes = partial_resumes + 1 end
      end
      r = support.run({script, out})
      assert.are.equal(0, r.status, r.stderr)
      if r.stderr:match("resuming") then partial_resumes = partial_resumes + 1 end
      assert.is_true(kills >= 1, "no build was killed")
      assert.is_true(partial_resumes >= 1, "no build resumed from rows already written")
      local a, b = core.h5Open(ref), core.h5Open(out)
      for _, p in ipairs({"/logits", "/labels", "/features/pool"}) do
         assert.are.equal(core.fingerprint(a:read(p)), core.fingerprint(b:read(p)), p)
      end
      a:abort(); b:abort()
      os.remove(script)
   end)

   it("recipe.cache: --cache=auto keeps the run's cache in --dir and rebuilds it for another teacher", function()
      local loader = world.loader{n = 30}
      local a = retort.recipe.cache({cache = "auto", dir = dir}, {teacher = world.teacher(1), data = loader})
      assert.are.equal(dir .. "/teacher.cache.h5", a.path)
      assert.are.equal(retort.cache.teacherFingerprint(world.teacher(1)), a.attrs.teacher_fingerprint)
      local b = retort.recipe.cache({cache = "auto", dir = dir}, {teacher = world.teacher(2), data = loader})
      assert.are.equal(retort.cache.teacherFingerprint(world.teacher(2)), b.attrs.teacher_fingerprint)
      -- a named cache is never replaced: another teacher is refused
      local ok, err = pcall(retort.recipe.cache, {cache = dir .. "/teacher.cache.h5"},
                            {teacher = world.teacher(3), data = loader})
      assert.is_false(ok); assert.matches("built from another teacher", err, 1, true)
      assert.is_nil(retort.recipe.cache({cache = ""}, {}))
   end)

   describe("refuses", function()
      local loader, teacher, path
      before_each(function()
         loader, teacher = world.loader{n = 80}, world.teacher()
         path = dir .. "/c.h5"
         retort.cache.build{teacher = teacher, data = loader, path = path, quiet = true}
      end)

      local function refused(p, o, want)
         local ok, err = pcall(retort.cache.open, p, o)
         assert.is_false(ok)
         assert.matches(want, err, 1, true)
      end

      it("a file that is not HDF5, a truncated one, and another kind of HDF5 file", function()
         local junk = support.tmpfile("plain text, not a cache")
         refused(junk, nil, "is not an HDF5 file")
         local s = support.slurp(path)
         local cut = dir .. "/cut.h5"
         local f = assert(io.open(cut, "wb")); f:write(s:sub(1, #s // 2)); f:close()
         refused(cut, nil, "truncated or corrupt")
         retort.save(dir .. "/ckpt.h5", {x = retort.zeros(2)})
         refused(dir .. "/ckpt.h5", nil,
                 "an HDF5 file but not a retort soft-target cache (format is \"retort.checkpoint\"")
         refused(dir .. "/missing.h5", nil, "No such file")
         os.remove(junk)
      end)

      it("a cache from a newer format version, and an incomplete one", function()
         local newer = dir .. "/newer.h5"
         copy(path, newer)
         local f = core.h5Open(newer, "r+"); f:setAttr("/", "version", 2); f:close()
         refused(newer, nil, "a cache of format version 2, written by a newer retort; this one reads version 1")
         local half = dir .. "/half.h5"
         copy(path, half)
         f = core.h5Open(half, "r+"); f:setAttr("/", "complete", false); f:setAttr("/", "rows_done", 40); f:close()
         refused(half, nil, "incomplete cache: 40 of 80 rows done")
         local c = retort.cache.open(half, {partial = true})
         assert.are.equal(40, c.rowsDone)
      end)

      it("an interrupted build, unless opened as partial", function()
         local p = dir .. "/i.h5"
         local script = support.tmpfile(([[
package.path = %q .. package.path
local retort = require "retort"
local world = require "cache_world"
local c = retort.cache
-- a build that dies after its first block: the data loader fails on row 31
local l = world.loader{n = 80}
local gather = l.gather
l.gather = function(self, idx, v)
   if idx:max():item() > 30 then os.exit(9) end
   return gather(self, idx, v)
end
c.build{teacher = world.teacher(), data = l, path = arg[1], blockRows = 30, quiet = true}
]]):format("tests/lua/?.lua;"), ".lua")
         local r = support.run({script, p})
         assert.are.equal(9, r.status, r.stderr)
         refused(p, nil, "incomplete cache: its build stopped with 30 of 80 rows done")
         local c = retort.cache.open(p, {partial = true})
         assert.are.equal(30, c.rowsDone)
         assert.is_true(max_diff(c:teacherLogits(retort.arange(1, 30, "i64"), 1),
                                 live_logits(teacher, loader, retort.arange(1, 30, "i64"), 1)) < 1e-5)
         local ok2, err = pcall(c.teacherLogits, c, retort.tensor({31}, "i64"), 1)
         assert.is_false(ok2); assert.matches("outside the 30 rows built so far (a partial cache)", err, 1, true)
         -- the same build again resumes and finishes
         local done = retort.cache.build{teacher = teacher, data = loader, path = p, blockRows = 30, quiet = true}
         assert.is_true(done.complete)
         os.remove(script)
      end)

      it("another dataset, example count, class count, augmentation or teacher", function()
         refused(path, {loader = world.loader{n = 80, dataSeed = 4}}, "built for another dataset (dataset fingerprint")
         refused(path, {loader = world.loader{n = 81}}, "built for 80 examples, but the loader's dataset has 81")
         refused(path, {numClasses = 10}, "built for 4 classes, but 10 were expected")
         refused(path, {loader = world.loader{n = 80, views = 2}},
                 "built with augmentation crop 0, flip false, seed 0; the loader has crop 1")
         refused(path, {teacher = world.teacher(12)}, "built from another teacher (teacher fingerprint")
         assert.are.equal(80, retort.cache.open(path, {loader = loader, teacher = teacher, numClasses = 4}).numExamples)
         local ok, err = pcall(retort.distill.Distiller, {teacher = retort.cache.open(path),
            sample = loader:gather(retort.arange(1, 2, "i64")), student = retort.models.mlp{sizes = {64, 8, 10}}})
         assert.is_false(ok); assert.matches("class", err)
      end)

      it("bad build options with messages that say what was expected", function()
         local function bad(o, want)
            local ok, err = pcall(retort.cache.build, o)
            assert.is_false(ok); assert.matches(want, err, 1, true)
         end
         bad({teacher = teacher, data = loader}, "option 'path' must be a file name")
         bad({teacher = {}, data = loader, path = path}, "option 'teacher' must be an nn.Module")
         bad({teacher = teacher, data = {}, path = path}, "option 'data' must be a retort.data.Loader")
         bad({teacher = teacher, data = loader, path = path, view = 2}, "unknown option 'view'")
         bad({teacher = teacher, data = loader, path = dir .. "/v.h5", views = 2},
             "views = 2 needs an augmenting loader")
         bad({teacher = teacher, data = world.loader{n = 80, views = 2}, path = dir .. "/v.h5", views = 3},
             "a cache of 3 view(s) needs a loader with views = 3")
      end)
   end)

   describe("non-finite logits", function()
      it("a teacher that gives NaN is refused while building, naming the example", function()
         local teacher = world.teacher()
         retort.noGrad(function() teacher:get("fc").bias:narrow(1, 2, 1):fill_(0 / 0) end)
         local ok, err = pcall(retort.cache.build, {teacher = teacher, data = world.loader{n = 40},
                                                    path = dir .. "/n.h5", quiet = true})
         assert.is_false(ok)
         assert.matches("retort.cache.build: the teacher's logits for example 1 (view 1) hold a NaN or an infinity",
                        err, 1, true)
      end)

      it("a file whose logits hold NaN or an infinity is refused at open, naming the example", function()
         local path = dir .. "/t.h5"
         retort.cache.build{teacher = world.teacher(), data = world.loader{n = 50}, path = path, quiet = true}
         local src = core.h5Open(path)
         local attrs, logits, labels = src:attrs("/"), src:read("/logits"), src:read("/labels")
         src:abort()
         for _, bad in ipairs{0 / 0, math.huge, -math.huge} do
            local forged = dir .. "/forged.h5"
            local lg = logits:clone()
            lg[37][3] = bad
            local f = core.h5Create(forged)
            for k, v in pairs(attrs) do f:setAttr("/", k, v) end
            f:write("/logits", lg)
            f:write("/labels", labels)
            f:close()
            local ok, err = pcall(retort.cache.open, forged)
            assert.is_false(ok)
            assert.matches(("retort.cache: %s: /logits hold a NaN or an infinity (example 37, view 1)"):format(forged),
                           err, 1, true)
         end
         assert.are.equal(50, retort.cache.open(path).numExamples) -- the untouched file still opens
      end)

      it("verify reports NaN, never 0, when the live teacher gives NaN", function()
         local loader, teacher = world.loader{n = 40}, world.teacher()
         local c = retort.cache.build{teacher = teacher, data = loader, path = dir .. "/v.h5", quiet = true}
         local worst, scale = c:verify(teacher, loader, 8)
         assert.is_true(worst < 1e-5 and scale > 0)
         retort.noGrad(function() teacher:get("fc").bias:fill_(0 / 0) end)
         worst = c:verify(teacher, loader, 8)
         assert.is_true(worst ~= worst)
      end)
   end)
end)

-- Damaged and forged caches: every root attribute checked at open (type and range, named with the file,
-- the attribute, what was expected and what was found), labels in 0..C-1, and strings from the file
-- printed without their control characters.
describe("retort.cache refuses forged attributes", function()
   local dir, path, attrs, logits, labels
   before_each(function()
      dir = tmpdir()
      path = dir .. "/c.h5"
      retort.cache.build{teacher = world.teacher(), data = world.loader{n = 30}, path = path, quiet = true}
      local f = core.h5Open(path)
      attrs, logits, labels = f:attrs("/"), f:read("/logits"), f:read("/labels")
      f:abort()
   end)
   after_each(function() support.rmrf(dir) end)

   local DELETE = {}
   -- a copy of the cache with the attributes in changes replaced (DELETE: left out) and /labels given
   local function forge(changes, lab)
      local p = dir .. "/forged.h5"
      local f = core.h5Create(p)
      for k, v in pairs(attrs) do
         local c = changes[k]
         if c == nil then c = v end
         if c ~= DELETE then f:setAttr("/", k, c) end
      end
      for k, v in pairs(changes) do
         if attrs[k] == nil and v ~= DELETE then f:setAttr("/", k, v) end
      end
      f:write("/logits", logits)
      f:write("/labels", lab or labels)
      f:close()
      return p
   end

   local function refused(p, want)
      local ok, err = pcall(retort.cache.open, p)
      assert.is_false(ok, "opened " .. p)
      assert.matches("retort.cache: " .. p .. ": " .. want, err, 1, true)
      return err
   end

   it("each attribute of the wrong type or out of range, naming what was expected and what was found", function()
      assert.are.equal(30, retort.cache.open(forge{}).numExamples) -- the copy itself is fine
      local cases = {
         {{views = 0}, "attribute views should be an integer in 1..65536, found integer 0"},
         {{views = -3}, "attribute views should be an integer in 1..65536, found integer -3"},
         {{augment_crop = DELETE}, "attribute augment_crop should be an integer >= 0, found nothing"},
         {{augment_crop = "2"}, "attribute augment_crop should be an integer >= 0, found the string \"2\""},
         {{augment_flip = 1}, "attribute augment_flip should be a boolean, found integer 1"},
         {{rows_done = 31}, "attribute rows_done should be an integer in 0..30 (num_examples), found integer 31"},
         {{rows_done = 10}, "attribute rows_done should be 30 (num_examples: the cache says it is complete)"},
         {{version = 0}, "attribute version should be an integer in 1..1, found integer 0"},
         {{version = -1}, "attribute version should be an integer in 1..1, found integer -1"},
         {{version = 1.0}, "attribute version should be an integer in 1..1, found float 1.0"},
         {{num_examples = 0}, "attribute num_examples should be an integer >= 1, found integer 0"},
         {{num_classes = DELETE}, "attribute num_classes should be an integer in 1..2^31, found nothing"},
         {{teacher_fingerprint = 7}, "attribute teacher_fingerprint should be a string, found integer 7"},
         {{taps = "a/b"}, "attribute taps should be a comma-separated list of tap names (no '/')"},
         {{view_seeds = {1, 2}},
          "attribute view_seeds should be a list of 1 integers (views), found a list of 2 value(s)"},
         {{taps = "relu"}, "its taps attribute lists 'relu' but the file has no dataset /features/relu"},
      }
      for _, c in ipairs(cases) do refused(forge(c[1]), c[2]) end
      -- an incomplete cache may say fewer rows, when opened as partial
      assert.are.equal(10, retort.cache.open(forge{rows_done = 10, complete = false}, {partial = true}).rowsDone)
   end)

   it("labels outside 0..num_classes-1, naming the example", function()
      for _, bad in ipairs{-5, 99, 2 ^ 62 // 1} do
         local lab = labels:clone()
         lab[7] = bad
         refused(forge({}, lab),
                 ("/labels holds %d at example 7; class ids must be in 0..3 (num_classes - 1)"):format(bad))
      end
      refused(forge({}, labels:narrow(1, 1, 29)), "/labels should be i64 [30] (num_examples), found i64 [29]")
   end)

   it("prints the teacher, input and tap names of --info with their control characters escaped", function()
      local evil = "\27[2J\27]0;owned\7mlp\194\155"
      local p = forge{teacher = "Sequential\n  " .. evil, input = evil, created = evil}
      local r = support.run({"cache", "--info", p})
      assert.are.equal(0, r.status, r.stderr)
      assert.is_nil(r.stdout:find("[\27\7]"), "a control character reached the terminal")
      assert.is_nil(r.stdout:find("\194\155", 1, true), "a C1 control reached the terminal")
      assert.matches("\\x1b[2J\\x1b]0;owned\\x07mlp\\xc2\\x9b", r.stdout, 1, true)
      assert.matches("Sequential", r.stdout, 1, true) -- the architecture's lines are kept, each escaped
      -- and the same in an error that quotes a string from the file
      r = support.run({"cache", "--info", forge{format = "retort.softtargets" .. evil}})
      assert.are_not.equal(0, r.status)
      assert.is_nil(r.stderr:find("[\27\7]"), "a control character reached the terminal")
      assert.matches("format is \"retort.softtargets\\x1b[2J", r.stderr, 1, true)
   end)

   it("a cache file with any byte changed is refused as corrupt, or reads back exactly (a sample)", function()
      local damage = require "h5_damage"
      path = dir .. "/d.h5"
      damage.cache(path) -- 40 examples, a tap
      local orig = support.slurp(path)
      local ref = damage.content("cache", path)
      local m, loaded, n = dir .. "/m.h5", 0, 0
      for _, op in ipairs(damage.ops(#orig, 41, 5)) do
         damage.spit(m, damage.mutate(orig, op))
         local ok, got = pcall(damage.content, "cache", m)
         n = n + 1
         if ok then
            loaded = loaded + 1
            assert.is_true(damage.same(got, ref), damage.opname(op) .. " loaded changed values")
         else
            assert.matches(m, tostring(got), 1, true)
         end
      end
      assert.is_true(n > 100 and loaded < n // 10, ("%d of %d damaged copies loaded"):format(loaded, n))
   end)
end)
