-- recipes/cifar.lua run as a user would (through the retort executable) on a small dataset in the
-- CIFAR-100 binary layout, written at test time by /usr/bin/python3 with numpy (pending without it):
-- a resnet8 teacher trained with --method=none, then resnet8 students distilled with kd, at (a feature
-- method, one pair per residual stage), ab (an init-stage method) and crd (memory banks keyed by the
-- dataset indices); each run finishes and writes metrics.csv with the expected columns and an accuracy
-- in [0, 1]; --resume continues a run; command-line mistakes are reported without a traceback.
local support = require "support"
local metrics = require "retort.train.metrics"

local GEN = [[
import sys, os, numpy as np
d = os.path.join(sys.argv[1], "cifar-100-binary"); os.makedirs(d)
rng = np.random.default_rng(3)
for split, n in [("train", 192), ("test", 64)]:
    fine = rng.integers(0, 100, n); coarse = fine // 5
    x = rng.integers(0, 256, (n, 3072))
    np.concatenate([np.stack([coarse, fine], 1), x], 1).astype(np.uint8).tofile(os.path.join(d, split + ".bin"))
]]

local BASE = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr", "seconds",
              "examples_per_s"}

local function header(path)
   local f = assert(io.open(path, "r"))
   local line = f:read("l")
   f:close()
   local cols = {}
   for c in line:gmatch("[^,]+") do cols[#cols + 1] = c end
   return cols
end

local function expect_columns(path, extra)
   local want = {}
   for _, c in ipairs(BASE) do want[#want + 1] = c end
   for _, c in ipairs(extra) do want[#want + 1] = c end
   assert.are.same(want, header(path))
end

describe("recipes/cifar.lua", function()
   local data, runs

   setup(function()
      if support.sh("/usr/bin/python3 -c 'import numpy'").status ~= 0 then return end
      data, runs = support.tmpdir(), support.tmpdir()
      os.execute("mkdir -p " .. support.shquote(data) .. " " .. support.shquote(runs))
      local script = support.tmpfile(GEN, ".py")
      local r = support.sh("/usr/bin/python3 " .. script .. " " .. support.shquote(data))
      os.remove(script)
      assert(r.status == 0, r.stderr)
   end)

   teardown(function()
      if data then support.rmrf(data) end
      if runs then support.rmrf(runs) end
   end)

   local function run(args)
      local all = {"run", "recipes/cifar.lua", "--data=" .. data, "--epochs=1", "--threads=1", "--batch=32"}
      for _, a in ipairs(args) do all[#all + 1] = a end
      return support.run(all)
   end

   local function accuracy_ok(path, rows)
      local got = metrics.read(path)
      assert.are.equal(rows, #got)
      for _, row in ipairs(got) do
         assert.is_number(row.test_acc)
         assert.is_true(row.test_acc >= 0 and row.test_acc <= 1, "test_acc " .. tostring(row.test_acc))
         assert.is_true(row.train_acc >= 0 and row.train_acc <= 1)
         assert.are.equal(0.05, row.lr) -- RepDistiller's rate, before the first milestone
      end
   end

   it("trains a teacher, then distills students with kd, at, ab and crd", function()
      if not data then return pending("numpy is not installed for /usr/bin/python3 (python3-numpy)") end
      local tdir = runs .. "/teacher"
      local r = run({"--method=none", "--model=resnet8", "--dir=" .. tdir})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("CIFAR%-100 from .*cifar%-100%-binary: 192 training, 64 test images", r.stderr)
      assert.matches("^resnet8: test accuracy 0?%.?%d+ after 1 epochs", r.stdout)
      expect_columns(tdir .. "/metrics.csv", {})
      accuracy_ok(tdir .. "/metrics.csv", 1)
      for _, f in ipairs{"last.h5", "best.h5"} do
         assert.is_not_nil(io.open(tdir .. "/" .. f, "rb"), f)
      end

      local teacher = {"--teacher=" .. tdir .. "/best.h5", "--teacherModel=resnet8", "--student=resnet8"}
      local cases = {
         {"kd", {"train_ce", "train_kl", "train_kd", "train_total"}},
         {"at", {"train_ce", "train_kl", "train_kd", "train_at", "train_at2", "train_at3", "train_total"}},
         {"ab", {"train_ce", "train_kl", "train_kd", "train_total"}, init = {"train_ab", "train_ab2", "train_ab3",
                                                                           "train_total"}},
         {"crd", {"train_ce", "train_kl", "train_kd", "train_crd", "train_total"}},
      }
      for _, c in ipairs(cases) do
         local dir = runs .. "/" .. c[1]
         local args = {"--method=" .. c[1], "--dir=" .. dir, "--initEpochs=1", "--crdNegatives=32"}
         for _, a in ipairs(teacher) do args[#args + 1] = a end
         r = run(args)
         assert.are.equal(0, r.status, c[1] .. ": " .. r.stderr)
         assert.matches("teacher resnet8: test accuracy 0?%.?%d+", r.stderr)
         assert.matches(("^resnet8 %%(%s from resnet8%%): test accuracy 0?%%.?%%d+ after 1 epochs"):format(c[1]),
                        r.stdout)
         expect_columns(dir .. "/metrics.csv", c[2])
         accuracy_ok(dir .. "/metrics.csv", 1)
         if c.init then expect_columns(dir .. "/init/metrics.csv", c.init) end
      end

      -- a distilled run's checkpoint serves as a teacher too (its student is under model/student)
      r = run({"--method=kd", "--teacher=" .. runs .. "/kd/best.h5", "--teacherModel=resnet8", "--student=resnet8",
               "--dir=" .. runs .. "/kd-of-kd", "--limit=32"})
      assert.are.equal(0, r.status, r.stderr)

      -- --resume: a second epoch continues the kd run
      r = run({"--method=kd", "--dir=" .. runs .. "/kd", "--epochs=2", "--resume", table.unpack(teacher)})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("resuming from .*kd/last%.h5 at epoch 2", r.stderr)
      accuracy_ok(runs .. "/kd/metrics.csv", 2)
   end)

   it("reports command-line mistakes without a traceback", function()
      if not data then return pending("numpy is not installed for /usr/bin/python3 (python3-numpy)") end
      local r = run({"--method=kd"})
      assert.are_not.equal(0, r.status)
      assert.matches("--method=kd needs --teacher=checkpoint.h5", r.stderr, 1, true)
      r = run({"--method=bogus"})
      assert.are_not.equal(0, r.status)
      assert.matches("unknown --method=bogus; known: none, ab, at, cc, crd, dkd", r.stderr, 1, true)
      r = run({"--method=none", "--model=resnet9"})
      assert.matches("unknown model 'resnet9'", r.stderr, 1, true)
      r = support.run({"run", "recipes/cifar.lua", "--data=" .. data .. "/nothing", "--method=none"})
      assert.are_not.equal(0, r.status)
      assert.matches("no CIFAR files under " .. data .. "/nothing", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("stack traceback", 1, true))
   end)
end)
