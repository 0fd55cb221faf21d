-- Distributed runs under mpirun (OpenMPI; DESIGN.md §11): the scripts in tests/dist/ run as 1 to 4 ranks
-- on this machine (--oversubscribe: more ranks than cores is fine, one thread each), and these specs
-- compare their results with one process and with plain-Lua computations. Skipped with a message when
-- mpirun is missing or the build has no MPI.
local support = require "support"

local MPIRUN = "mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1"

-- under LeakSanitizer, OpenMPI's leftovers are suppressed by library (tests/c/lsan.supp): its components
-- stay loaded and every leak's stack is unwound fully
local function env()
   local e = {OMPI_MCA_mca_base_component_disable_dlclose = "1", OMP_NUM_THREADS = "1"}
   if os.getenv("ASAN_OPTIONS") then e.ASAN_OPTIONS = os.getenv("ASAN_OPTIONS") .. ":fast_unwind_on_malloc=0" end
   return e
end

local why_not = nil -- why these specs cannot run here (nil: they can)
do
   local r = support.sh("command -v mpirun")
   if r.status ~= 0 then
      why_not = "mpirun not found (Debian: openmpi-bin)"
   else
      local q = support.run({"-e", "io.write(tostring(require('retort.dist').builtWithMpi()))"})
      if q.stdout ~= "true" then why_not = "this retort was built without MPI (Debian: libopenmpi-dev)" end
      local probe = support.sh("timeout 60 " .. MPIRUN .. " -np 2 true")
      if not why_not and probe.status ~= 0 then
         why_not = "mpirun cannot start 2 ranks here: " .. (probe.stderr:match("[^\n]*%S[^\n]*") or "?")
      end
   end
end

--- mpirun(np, script, args [, extra]): runs tests/dist/<script> on np ranks; returns support.sh's result
--- with .seconds. extra: {env = {...}} (names passed to the ranks with -x) and {timeout = s}.
local function mpirun(np, script, args, extra)
   extra = extra or {}
   local words = {"timeout", tostring(extra.timeout or 120), MPIRUN, "-np", tostring(np)}
   local e = env()
   for k, v in pairs(extra.env or {}) do e[k] = v end
   for k in pairs(e) do words[#words + 1] = "-x " .. k end
   words[#words + 1] = support.shquote(support.bin)
   words[#words + 1] = "tests/dist/" .. script
   for _, a in ipairs(args or {}) do words[#words + 1] = support.shquote(a) end
   local t0 = os.time()
   local r = support.sh(table.concat(words, " "), {env = e})
   r.seconds = os.time() - t0
   return r
end

local function ok(r, what)
   assert(r.status == 0, ("%s failed (status %d):\n%s\n%s"):format(what, r.status, r.stdout, r.stderr))
end

local function result(path)
   local chunk = assert(loadfile(path))
   return chunk()
end

local function close(a, b, tol) return math.abs(a - b) <= tol * (1 + math.abs(b)) end

local function same_rows(a, b, tol, what)
   for _, k in ipairs{"train_loss", "train_acc", "test_loss", "test_acc"} do
      if a[k] ~= nil or b[k] ~= nil then
         assert(close(a[k], b[k], tol), ("%s: %s %s vs %s"):format(what, k, tostring(a[k]), tostring(b[k])))
      end
   end
end

local function same_lists(a, b, tol, what)
   assert.are.equal(#b, #a, what .. ": lengths")
   for i = 1, #b do
      assert(close(a[i], b[i], tol), ("%s: element %d: %.9g vs %.9g"):format(what, i, a[i], b[i]))
   end
end

local function tmp()
   local d = support.tmpdir()
   os.execute("mkdir -p " .. support.shquote(d))
   return d
end

local describe_mpi = why_not and function(name) describe(name, function()
   it("skipped: " .. why_not, function() pending(why_not) end)
end) end or describe

describe_mpi("retort.dist collectives under mpirun", function()
   it("agree with plain-Lua sums, means and maxima on 2, 3 and 4 ranks (f32, f64, i64, odd sizes)", function()
      for _, np in ipairs{2, 3, 4} do
         local d = tmp()
         local r = mpirun(np, "collectives.lua", {"--out=" .. d .. "/r.lua"})
         ok(r, ("collectives on %d ranks"):format(np))
         local got = result(d .. "/r.lua")
         assert.are.equal(np, got.ranks)
         assert.is_true(got.checks > 20000 * np)
         support.rmrf(d)
      end
   end)

   it("carry CUDA tensors (the emulated device here: staged through the host)", function()
      local r = mpirun(2, "collectives.lua", {"--device=cuda"}, {env = {RETORT_EMULATE_CUDA = "1"}})
      ok(r, "collectives on cuda tensors")
      assert.matches("checks passed on 2 ranks", r.stdout)
   end)
end)

describe_mpi("train.fit under mpirun", function()
   it("2 ranks of batch B/2 = 1 process of batch B: per-step losses, final parameters (bit-identical on "
      .. "every rank), metrics", function()
      local d = tmp()
      ok(mpirun(1, "train_equiv.lua", {"--out=" .. d .. "/one.lua"}), "1 process")
      ok(mpirun(2, "train_equiv.lua", {"--out=" .. d .. "/two.lua"}), "2 ranks")
      ok(mpirun(4, "train_equiv.lua", {"--out=" .. d .. "/four.lua", "--n=60"}), "4 ranks, 60 examples (padded)")
      local one, two = result(d .. "/one.lua"), result(d .. "/two.lua")
      assert.is_true(two.identical)
      assert.is_true(result(d .. "/four.lua").identical)
      assert.is_true(two.buckets >= 2) -- the gradients went in several buckets
      same_lists(two.losses, one.losses, 1e-5, "per-step loss")
      same_lists(two.params, one.params, 1e-5, "final parameters")
      same_rows(two.row, one.row, 1e-5, "last metrics row")
      support.rmrf(d)
   end)

   it("with syncBatchNorm, 2 ranks of batch B/2 = 1 process of batch B with BatchNorm; without, each rank "
      .. "normalises its own half", function()
      local d = tmp()
      ok(mpirun(1, "train_equiv.lua", {"--model=bn", "--out=" .. d .. "/one.lua"}), "1 process")
      ok(mpirun(2, "train_equiv.lua", {"--model=bn", "--sync", "--out=" .. d .. "/sync.lua"}), "2 ranks, sync")
      ok(mpirun(2, "train_equiv.lua", {"--model=bn", "--out=" .. d .. "/own.lua"}), "2 ranks, per-rank BN")
      local one, sync, own = result(d .. "/one.lua"), result(d .. "/sync.lua"), result(d .. "/own.lua")
      assert.is_true(sync.identical and own.identical)
      same_lists(sync.losses, one.losses, 1e-5, "per-step loss")
      same_lists(sync.params, one.params, 1e-5, "final parameters")
      local far = 0
      for i = 1, #one.params do far = math.max(far, math.abs(own.params[i] - one.params[i])) end
      assert.is_true(far > 1e-4, "per-rank BatchNorm should differ from the whole batch's")
      support.rmrf(d)
   end)

   it("trains on the emulated CUDA device (gradients staged through the host)", function()
      local d = tmp()
      ok(mpirun(1, "train_equiv.lua", {"--out=" .. d .. "/one.lua"}), "1 process")
      ok(mpirun(2, "train_equiv.lua", {"--device=cuda", "--out=" .. d .. "/cuda.lua"},
                {env = {RETORT_EMULATE_CUDA = "1"}}), "2 ranks on cuda")
      local one, cuda = result(d .. "/one.lua"), result(d .. "/cuda.lua")
      assert.is_true(cuda.identical)
      same_lists(cuda.params, one.params, 1e-5, "final parameters")
      support.rmrf(d)
   end)

   for _, stage in ipairs{"kd", "fitnet", "cached"} do
      it(("runs %s under 2 ranks to the 1-process result with the same global batch"):format(
         stage == "kd" and "a KD run" or stage == "fitnet" and "a two-stage FitNets run" or "a cached-teacher run"),
         function()
         local d = tmp()
         os.execute("mkdir -p " .. d .. "/one " .. d .. "/two")
         ok(mpirun(1, "stages.lua", {"--stage=" .. stage, "--dir=" .. d .. "/one", "--out=" .. d .. "/one.lua"}),
            stage .. ", 1 process")
         ok(mpirun(2, "stages.lua", {"--stage=" .. stage, "--dir=" .. d .. "/two", "--out=" .. d .. "/two.lua"}),
            stage .. ", 2 ranks")
         local one, two = result(d .. "/one.lua"), result(d .. "/two.lua")
         for name, row in pairs(one.rows) do same_rows(two.rows[name], row, 1e-4, stage .. " " .. name) end
         same_lists(two.params, one.params, 1e-4, stage .. ": the student's parameters")
         support.rmrf(d)
      end)
   end
end)

describe_mpi("failures under mpirun", function()
   it("a rank killed with -9 ends the job within 10 s, naming the rank; resuming gives the uninterrupted "
      .. "run's metrics, and the checkpoint resumes under 1 and 3 ranks too", function()
      local d = tmp()
      ok(mpirun(2, "fit_run.lua", {"--dir=" .. d .. "/whole", "--out=" .. d .. "/whole.lua"}), "uninterrupted")
      local r = mpirun(2, "fit_run.lua", {"--dir=" .. d .. "/cut", "--kill=1:2:3", "--stamp=" .. d .. "/stamp"})
      local ended = require("retort").clock()
      local killed = tonumber(support.slurp(d .. "/stamp"))
      assert.is_not_nil(killed, "the rank never got to kill itself:\n" .. r.stderr)
      assert.are_not.equal(0, r.status)
      assert.is_true(ended - killed < 10, ("the job ended %.1f s after the kill"):format(ended - killed))
      assert.matches("rank 1", r.stderr)
      assert.matches("signal 9", r.stderr)
      -- the checkpoint of epoch 1 resumes under 1, 2 and 3 ranks
      os.execute(("cp -r %s/cut %s/cut1 && cp -r %s/cut %s/cut3"):format(d, d, d, d))
      ok(mpirun(2, "fit_run.lua", {"--dir=" .. d .. "/cut", "--resume", "--out=" .. d .. "/resumed.lua"}), "resume")
      local whole, resumed = result(d .. "/whole.lua"), result(d .. "/resumed.lua")
      assert.are.equal(2, #resumed.history) -- epochs 2 and 3
      same_rows(resumed.last, whole.last, 1e-6, "resumed vs uninterrupted")
      assert.are.equal(support.slurp(d .. "/whole/metrics.csv"):gsub(",[%d.e+-]+,[%d.e+-]+\n", "\n"),
                       (support.slurp(d .. "/cut/metrics.csv"):gsub(",[%d.e+-]+,[%d.e+-]+\n", "\n")))
      for _, np in ipairs{1, 3} do
         local out = ("%s/r%d.lua"):format(d, np)
         ok(mpirun(np, "fit_run.lua", {"--dir=" .. d .. "/cut" .. np, "--resume", "--out=" .. out}),
            ("resume under %d ranks"):format(np))
         local got = result(out)
         assert.are.equal(2, #got.history)
         assert.are.equal(3, got.last.epoch)
      end
      support.rmrf(d)
   end)

   it("a checkpoint taken mid-epoch by one process resumes under 2 ranks with the rest of that epoch",
      function()
      local d = tmp()
      ok(mpirun(1, "fit_run.lua", {"--dir=" .. d .. "/whole", "--out=" .. d .. "/whole.lua"}), "uninterrupted")
      ok(mpirun(1, "fit_run.lua", {"--dir=" .. d .. "/cut", "--interrupt=2:3", "--out=" .. d .. "/cut.lua"}),
         "interrupted")
      assert.is_true(result(d .. "/cut.lua").interrupted)
      ok(mpirun(2, "fit_run.lua", {"--dir=" .. d .. "/cut", "--resume", "--out=" .. d .. "/resumed.lua"}), "resumed")
      same_rows(result(d .. "/resumed.lua").last, result(d .. "/whole.lua").last, 1e-5, "resumed mid-epoch")
      support.rmrf(d)
   end)

   it("an error on one rank ends the job at once with a message naming the rank and the cause", function()
      local d = tmp()
      local r = mpirun(2, "fit_run.lua", {"--dir=" .. d .. "/run", "--fail=1:2:2"})
      assert.are_not.equal(0, r.status)
      assert.is_true(r.seconds < 10)
      assert.matches("retort: rank 1 of 2: [^\n]*deliberate failure at epoch 2, step 2", r.stderr)
      support.rmrf(d)
   end)

   it("a rank that never reaches a collective makes the others fail at the deadline, not wait forever",
      function()
      local r = mpirun(3, "fit_run.lua", {"--stall=2", "--timeout=1"})
      assert.are_not.equal(0, r.status)
      assert.is_true(r.seconds < 3 + 5, ("took %d s"):format(r.seconds))
      assert.matches("waited 1 s for the other ranks", r.stderr)
      assert.not_matches("the barrier returned", r.stderr)
   end)
end)

describe_mpi("soft-target caches under mpirun", function()
   it("a build shared by 3 ranks writes the single-process file", function()
      local d = tmp()
      ok(mpirun(1, "cache_build.lua", {"--path=" .. d .. "/one.h5"}), "1 process")
      ok(mpirun(3, "cache_build.lua", {"--path=" .. d .. "/three.h5"}), "3 ranks")
      local core = require "retort.core"
      local a, b = core.h5Open(d .. "/one.h5"), core.h5Open(d .. "/three.h5")
      for _, name in ipairs{"/logits", "/labels", "/features/relu1"} do
         assert.are.same(a:read(name):totable(), b:read(name):totable(), name)
      end
      local aa, ba = a:attrs("/"), b:attrs("/")
      aa.created, ba.created = nil, nil
      assert.are.same(aa, ba)
      a:abort(); b:abort()
      assert.is_nil(io.open(d .. "/three.h5.parts/manifest.h5", "rb")) -- the parts folder is gone
      support.rmrf(d)
   end)
end)

describe("NCCL (CUDA tensors on GPUs)", function()
   it("runs the collectives on 2 ranks when the build has NCCL and this machine a GPU", function()
      if why_not then return pending(why_not) end
      local q = support.run({"-e", "local d = require('retort.dist'); local c = require('retort.core'); io.write("
                                   .. "tostring(d.builtWithNccl()), ' ', tostring(c.deviceAvailable('cuda')))"})
      local nccl, gpu = q.stdout:match("^(%a+) (%a+)$")
      if nccl ~= "true" then return pending("NCCL path skipped: this build has no NCCL (it is built with CUDA when "
                                            .. "nccl.h is found)") end
      if gpu ~= "true" then return pending("NCCL path skipped: no GPU on this machine") end
      ok(mpirun(2, "collectives.lua", {"--device=cuda"}), "collectives on GPUs through NCCL")
      -- and training: the gradient buckets through NCCL, against one process on the CPU
      local d = tmp()
      ok(mpirun(1, "train_equiv.lua", {"--out=" .. d .. "/one.lua"}), "1 process")
      ok(mpirun(2, "train_equiv.lua", {"--device=cuda", "--out=" .. d .. "/gpu.lua"}), "2 ranks on GPUs")
      local one, two = result(d .. "/one.lua"), result(d .. "/gpu.lua")
      assert.is_true(two.identical)
      same_lists(two.params, one.params, 1e-4, "final parameters")
      support.rmrf(d)
   end)
end)
