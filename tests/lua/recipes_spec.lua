-- The training recipes, run as a user would (through the retort executable) on a small slice
-- of Fashion-MNIST, so the whole path — data, model, optimizer, loop, files — is exercised.
local support = require "support"

local function have_fashion_mnist()
   local f = io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb")
   if f then f:close() end
   return f ~= nil or os.getenv("RETORT_DATA_ROOT") ~= nil
end

describe("recipes", function()
   it("train_mlp trains, writes metrics and checkpoints, and resumes", function()
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local dir = support.tmpdir()
      local r = support.run({"run", "recipes/train_mlp.lua", "--size=student", "--epochs=1", "--limit=512",
                             "--dir=" .. dir})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("MLP student: test accuracy 0%.%d+ after 1 epochs", r.stdout)
      for _, f in ipairs{"metrics.csv", "last.h5", "best.h5"} do
         local h = io.open(dir .. "/" .. f, "rb")
         assert.is_not_nil(h, f .. " written")
         h:close()
      end
      -- asking for a second epoch with --resume continues from last.h5: one more metrics row
      r = support.run({"run", "recipes/train_mlp.lua", "--size=student", "--epochs=2", "--limit=512",
                       "--dir=" .. dir, "--resume"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("resuming from .*last%.h5 at epoch 2", r.stderr)
      local rows = require("retort.train.metrics").read(dir .. "/metrics.csv")
      assert.are.equal(2, #rows)
      assert.are.equal(2, rows[2].epoch)
      support.rmrf(dir)
   end)

   it("train_teacher runs a CNN epoch with augmentation", function()
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local dir = support.tmpdir()
      local r = support.run({"run", "recipes/train_teacher.lua", "--epochs=1", "--limit=256", "--channels=8,16",
                             "--hidden=32", "--dir=" .. dir})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("CNN teacher: test accuracy 0%.%d+ after 1 epochs", r.stdout)
      support.rmrf(dir)
   end)

   it("kd trains a teacher, the student alone and the distilled student, and prints the three accuracies", function()
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local dir = support.tmpdir()
      local r = support.run({"run", "recipes/kd.lua", "--epochs=1", "--teacherEpochs=1", "--limit=256",
                             "--dir=" .. dir, "--export=" .. dir .. "/student.onnx"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("teacher 0%.%d+ | student alone 0%.%d+ | distilled student 0%.%d+ %(T = 20, alpha = 0.9%)",
                     r.stdout)
      if require("retort.core").onnxAvailable() then -- the distilled student as ONNX (onnx_spec checks the format)
         assert.matches("exported to " .. dir .. "/student.onnx (ONNX, ", r.stdout, 1, true)
         assert.matches("Flatten 1, Gemm 3, Relu 2)", r.stdout, 1, true)
      end
      -- the teacher's soft targets cached with `retort cache`, inspected, verified, and distilled from
      local teacher, cache = dir .. "/teacher/best.h5", dir .. "/t.cache.h5"
      r = support.run({"cache", "--recipe", "recipes/kd.lua", "--teacher", teacher, "--limit=256", "--out", cache})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("examples     256 %(complete%)", r.stdout)
      r = support.run({"cache", "--info", cache})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("teacher accuracy on these examples %(view 1%): 0%.%d+", r.stdout)
      r = support.run({"cache", "--verify", cache, "--recipe", "recipes/kd.lua", "--teacher=" .. teacher, "--limit=256",
                       "--rows=64"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("64 rows x 1 view%(s%) recomputed with the teacher: largest difference .-: OK", r.stdout)
      r = support.run({"cache", "--verify", cache, "--recipe", "recipes/kd.lua", "--teacher=" .. teacher,
                       "--limit=200"})
      assert.are.equal(2, r.status)
      assert.matches("built for 256 examples, but the loader's dataset has 200", r.stderr, 1, true)
      -- a second run into the same --dir: refused (the first run's results stay), unless --overwrite
      local args = {"run", "recipes/kd.lua", "--epochs=1", "--teacher=" .. teacher, "--cache=" .. cache, "--limit=256",
                    "--dir=" .. dir}
      r = support.run(args)
      assert.are_not.equal(0, r.status)
      assert.matches("already holds a run (metrics.csv, last.h5, best.h5): pass resume = true to continue it "
                     .. "(--resume)", r.stderr, 1, true)
      args[#args + 1] = "--overwrite"
      r = support.run(args)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("distilled student 0%.%d+", r.stdout)
      r = support.run({"cache", "--out", cache})
      assert.are.equal(2, r.status)
      assert.matches("--recipe is required", r.stderr, 1, true)
      -- curriculum vs none from that cache
      r = support.run({"run", "recipes/curriculum.lua", "--teacherModel=mlp", "--teacher=" .. teacher,
                       "--cache=" .. cache, "--limit=256", "--epochs=2", "--schedules=none,easy,weights",
                       "--dir=" .. dir .. "/cur"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("| none      | 0%.%d+ | 0%.%d+ |", r.stdout)
      assert.matches("| easy      | 0%.%d+ | 0%.%d+ |", r.stdout)
      support.rmrf(dir)
   end)

   it("fitnet runs both stages from a checkpointed stage 1 and prints the comparison", function()
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local dir = support.tmpdir()
      local r = support.run({"run", "recipes/fitnet.lua", "--teacherEpochs=1", "--hintEpochs=1", "--epochs=1",
                             "--limit=128", "--dir=" .. dir})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("hints +hint loss %d", r.stdout)
      for _, name in ipairs{"fitnet", "scratch", "kd%-only"} do assert.matches("\n" .. name .. " +0%.%d+", r.stdout) end
      -- stage 2 alone, from stage 1's checkpoint
      r = support.run({"run", "recipes/fitnet.lua", "--stage=2", "--baselines=false", "--epochs=1", "--limit=128",
                       "--teacher=" .. dir .. "/teacher/last.h5", "--from=" .. dir .. "/hints/last.h5",
                       "--dir=" .. dir, "--overwrite"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("fitnet +test accuracy", r.stdout)
      support.rmrf(dir)
   end)

   it("compare trains the student with each method and prints a table", function()
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local dir = support.tmpdir()
      local r = support.run({"run", "recipes/compare.lua", "--teacherEpochs=1", "--epochs=1", "--limit=128",
                             "--methods=ce,kd,fitnet,vid,ab,ft,crd,dkd", "--initEpochs=1", "--crdNegatives=16",
                             "--dir=" .. dir})
      assert.are.equal(0, r.status, r.stderr)
      for _, m in ipairs{"ce", "kd", "fitnet", "vid", "ab", "ft", "crd", "dkd"} do
         assert.matches("| " .. m .. " +| 0%.%d+ | 0%.%d+ |", r.stdout)
      end
      r = support.run({"run", "recipes/compare.lua", "--teacherEpochs=1", "--limit=64", "--methods=kd,magic",
                       "--dir=" .. dir})
      assert.are_not.equal(0, r.status)
      assert.matches("unknown method 'magic' in --methods; known: ab, at, cc, ce", r.stderr, 1, true)
      support.rmrf(dir)
   end)

   it("compare gives the CPU's results with --device=cuda on the emulated cuda device", function()
      -- RETORT_EMULATE_CUDA=1: cuda tensors in host memory; any tensor left on the wrong device fails
      if not have_fashion_mnist() then return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)") end
      local function table_of(device)
         local dir = support.tmpdir()
         local r = support.run({"run", "recipes/compare.lua", "--teacherEpochs=1", "--epochs=1", "--limit=64",
                                "--initEpochs=1", "--crdNegatives=16", "--device=" .. device, "--dir=" .. dir},
                               {env = {RETORT_EMULATE_CUDA = device == "cuda" and "1" or "0"}})
         support.rmrf(dir)
         assert.are.equal(0, r.status, r.stderr)
         assert.is_nil(r.stderr:find(" failed: ", 1, true), r.stderr)
         local rows = {}
         for method, last, best in r.stdout:gmatch("| (%a+%d?) +| (%S+) | (%S+) |") do
            if method ~= "method" then rows[#rows + 1] = method .. " " .. last .. " " .. best end
         end
         return rows
      end
      local cpu = table_of("cpu")
      assert.are.equal(15, #cpu) -- every method
      assert.are.same(cpu, table_of("cuda"))
   end)

   it("refuses an unknown option and lists the known ones", function()
      local r = support.run({"run", "recipes/train_mlp.lua", "--epoch=3"})
      assert.are_not.equal(0, r.status)
      assert.matches("unknown option '%-%-epoch=3'", r.stderr)
      assert.matches("%-%-epochs=10", r.stderr)
   end)
end)
