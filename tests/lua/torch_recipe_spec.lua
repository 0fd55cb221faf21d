-- recipes/from_torch.lua end to end on a teacher PyTorch itself trains here: an MLP (784-128-10, the
-- names of retort's models.mlp) fitted for a few hundred Adam steps on a Fashion-MNIST slice by torch,
-- saved RepDistiller-style ({'model': state_dict, 'epoch': n}). The recipe imports it, and the test
-- accuracy it reports must be the one PyTorch measured on the same test slice (to within one example:
-- a near-tie may round the other way); then its soft-target cache, the distilled student's run and its
-- PyTorch export (read back by torch) must exist, and --export says whether ONNX could be written.
-- Pending without python3-torch or Fashion-MNIST.
local support = require "support"

local FMNIST = "/usr/share/datasets/fashion-mnist"

local TRAIN_TEACHER = [[
import gzip, sys, numpy as np, torch, torch.nn as nn
root, out, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def idx(name):
    with gzip.open(root + "/" + name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
def norm(x): return (torch.from_numpy(x.astype(np.float32) / 255.0) - 0.2860) / 0.3530
def labels(name, n): return torch.from_numpy(idx(name)[:n].astype(np.int64))
xtr, ytr = norm(idx("train-images-idx3-ubyte.gz")[:n_train]), labels("train-labels-idx1-ubyte.gz", n_train)
xte, yte = norm(idx("t10k-images-idx3-ubyte.gz")[:n_test]), labels("t10k-labels-idx1-ubyte.gz", n_test)
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten, self.fc1, self.relu1, self.fc2 = nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)
    def forward(self, x): return self.fc2(self.relu1(self.fc1(self.flatten(x))))
torch.manual_seed(0)
torch.set_num_threads(1)
net = MLP()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for step in range(300):
    i = torch.randint(0, n_train, (64,))
    loss = nn.functional.cross_entropy(net(xtr[i]), ytr[i])
    opt.zero_grad(); loss.backward(); opt.step()
net.eval()
with torch.no_grad():
    acc = (net(xte).argmax(1) == yte).float().mean().item()
torch.save({"model": net.state_dict(), "epoch": 1}, out)
print("%.6f" % acc)
]]

describe("recipes/from_torch.lua", function()
   it("imports a PyTorch-trained teacher, checks its accuracy, caches it, distils and exports a student", function()
      if not support.have_torch() then
         return pending("python3-torch is not installed for /usr/bin/python3")
      end
      if not support.exists(FMNIST .. "/train-images-idx3-ubyte.gz") then
         return pending("Fashion-MNIST is not installed (dataset-fashion-mnist)")
      end
      local dir = support.mkdtemp()
      local limit = 1000
      local r = support.python_run(TRAIN_TEACHER, {FMNIST, dir .. "/teacher.pth", 4000, limit})
      assert.are.equal(0, r.status, r.stderr)
      local torchAcc = assert(tonumber(r.stdout:match("[%d.]+")))
      local args = {"run", "recipes/from_torch.lua", "--teacher=" .. dir .. "/teacher.pth", "--teacherModel=mlp",
                    "--teacherOptions=sizes={784,128,10}", "--studentOptions=sizes={784,32,10}", "--epochs=1",
                    "--limit=" .. limit, "--dir=" .. dir .. "/run", "--exportTorch=" .. dir .. "/student.pth",
                    "--export=" .. dir .. "/student.onnx"}
      r = support.run(args)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("teacher: mlp %(MLP%) imported from .*teacher%.pth %(under 'model'%)", r.stdout)
      local acc = assert(tonumber(r.stdout:match("teacher test accuracy ([%d.]+)")))
      assert.is_true(math.abs(acc - torchAcc) <= 1 / limit + 1e-9,
                     ("retort %.4f vs PyTorch %.4f on the same %d test images"):format(acc, torchAcc, limit))
      assert.is_true(acc > 0.6, "a trained teacher")
      assert.matches("student test accuracy 0%.%d+ %(mlp, 1 epochs, T = 4, alpha = 0%.9; teacher", r.stdout)
      for _, f in ipairs{"run/teacher.h5", "run/teacher.cache.h5", "run/student/metrics.csv", "run/student/best.h5",
                         "student.pth"} do
         assert.is_true(support.exists(dir .. "/" .. f), f)
      end
      local core = require "retort.core"
      if pcall(require, "retort.onnx") and (not core.onnxAvailable or core.onnxAvailable()) then
         assert.is_true(support.exists(dir .. "/student.onnx"), "student.onnx")
      else
         assert.matches("ONNX export is unavailable %(", r.stdout)
      end
      -- the student's PyTorch state dict, read back with weights_only=True
      r = support.sh(("%s -c \"import torch; sd = torch.load('%s/student.pth', weights_only=True); "
                      .. "print(' '.join('%%s=%%s' %% (k, 'x'.join(map(str, v.shape))) for k, v in sd.items()))\"")
                     :format(support.python, dir))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("fc1.weight=32x784 fc1.bias=32 fc2.weight=10x32 fc2.bias=10", r.stdout, 1, true)
      -- --resume: the finished student is not trained again, the cache is reused
      r = support.run(args)
      assert.are_not.equal(0, r.status) -- a fresh run into a used --dir is refused
      assert.matches("already holds a run", r.stderr)
      args[#args + 1] = "--resume"
      r = support.run(args)
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("student test accuracy", r.stdout)
      support.rmrf(dir)
   end)

   it("says what is missing", function()
      support.run_expect({"run", "recipes/from_torch.lua"}, 2, "%-%-teacher=FILE%.pth is required")
      support.run_expect({"run", "recipes/from_torch.lua", "--teacher=x.pth", "--data=mnist2"}, 2,
                         "%-%-data must be fashion%-mnist, cifar10 or cifar100")
      support.run_expect({"run", "recipes/from_torch.lua", "--help"}, 0, "%-%-teacherModel=cnn")
   end)
end)
