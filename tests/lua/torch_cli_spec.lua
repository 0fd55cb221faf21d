-- `retort import-torch` / `retort export-torch` run as a user would, through the retort executable and
-- the helper it finds (tools/torch_state.py, through the build tree's share/retort/tools link): a
-- RepDistiller-style checkpoint imported and loaded by retort.load + loadStateDict, exported back
-- (with and without --model) and compared bit for bit by PyTorch (torch_twins.py check); a pickle that
-- would run code is refused without running it; a mismatch lists the names; usage errors exit 2.
-- Needs Debian's python3-torch (pending without it), except the usage checks.
local retort = require "retort"
local support = require "support"

local TWINS = support.spec_dir .. "/torch_twins.py"

describe("retort import-torch / export-torch", function()
   local dir
   local torch_ok = support.have_torch()

   setup(function()
      dir = support.mkdtemp()
      if torch_ok then
         -- resnet8 is saved under 'model' (with epoch and best_acc beside it), mlp_small bare
         local r = support.sh(("%s %s make %s mlp_small resnet8"):format(support.python, support.shquote(TWINS),
                                                                                  support.shquote(dir)))
         assert.are.equal(0, r.status, r.stderr)
      end
   end)

   teardown(function() support.rmrf(dir) end)

   it("print their usage with --help and refuse a bad command line with status 2", function()
      support.run_expect({"import-torch", "--help"}, 0, "usage: retort import%-torch IN%.pth OUT%.h5 %-%-model=NAME")
      support.run_expect({"export-torch", "-h"}, 0, "usage: retort export%-torch IN%.h5 OUT%.pth")
      support.run_expect({"import-torch", "a.pth", "b.h5", "--modle=resnet8"}, 2,
                         "retort import%-torch: unknown option '%-%-modle=resnet8' %(did you mean %-%-model%?%)")
      support.run_expect({"import-torch", "a.pth", "b.h5"}, 2, "%-%-model=NAME is required")
      support.run_expect({"import-torch", "a.pth", "--model=resnet8"}, 2,
                         "expected an input and an output file, got 1 file\n")
      support.run_expect({"import-torch", dir .. "/none.pth", dir .. "/o.h5", "--model=resnet8"}, 2,
                         "none%.pth: no such file")
      local r = support.run_expect({"import-torch", dir .. "/none.pth", dir .. "/o.h5", "--model=fitnetTeacher"}, 2,
                                   "no PyTorch name table for class FitNet")
      assert.not_matches("traceback", r.stderr)
      r = support.run({"--help"})
      assert.matches("import%-torch in%.pth out%.h5 %-%-model=NAME", r.stdout)
   end)

   it("import a RepDistiller-style checkpoint that retort.load and loadStateDict take, and export it back", function()
      if not torch_ok then return pending("python3-torch is not installed for /usr/bin/python3") end
      local pth, h5 = dir .. "/resnet8.pth", dir .. "/resnet8.h5"
      local r = support.run({"import-torch", pth, h5, "--model", "resnet8", "--num_classes=100"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("47 tensors of resnet8 %(the state dict under 'model'%); 9 num_batches_tracked", r.stdout)
      local ck = retort.load(h5)
      local net = retort.models.resnet8()
      net:loadStateDict(ck.model)
      assert.are.equal("resnet8", ck.torch.model)
      assert.are.equal("model", ck.torch.container)
      -- the logits the twin gave for its inputs
      local core = require "retort.core"
      local f = core.h5Open(dir .. "/resnet8.io.h5")
      local x, want = f:read("/x"), f:read("/logits")
      f:abort()
      net:evaluate()
      local got = retort.noGrad(function() return net:forward(x) end)
      assert.is_true((got - want):abs():max():item() <= 1e-4)
      -- back: the model name and counters come from the checkpoint; the twin checks every bit
      local out = dir .. "/resnet8.export.pth"
      r = support.run({"export-torch", h5, out, "--container=model"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("56 tensors of resnet8 under 'model'", r.stdout)
      -- torch_twins.py check reads NAME.export.h5: make that file from the .pth with the helper
      r = support.sh(("%s tools/torch_state.py to-h5 %s %s"):format(support.python, out, dir .. "/resnet8.export.h5"))
      assert.are.equal(0, r.status, r.stderr)
      r = support.sh(("%s %s check %s resnet8"):format(support.python, support.shquote(TWINS), support.shquote(dir)))
      assert.are.equal(0, r.status, r.stderr)
      local checked = assert(load(r.stdout))()
      assert.are.equal("", checked.resnet8.problems)
      assert.are.equal(0, checked.resnet8.delta)
   end)

   it("take model options and export a train.fit-style checkpoint given --model", function()
      if not torch_ok then return pending("python3-torch is not installed for /usr/bin/python3") end
      local h5 = dir .. "/mlp.h5"
      local r = support.run({"import-torch", dir .. "/mlp_small.pth", h5, "--model=mlp",
                             "--modelOptions=sizes = {784, 64, 32, 10}"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("6 tensors of mlp\n", r.stdout)
      -- a checkpoint as train.fit writes it: {model = net, ...}, no record of the architecture
      local net = retort.models.mlp{sizes = {784, 64, 32, 10}}
      net:loadStateDict(retort.load(h5).model)
      local plain = dir .. "/plain.h5"
      retort.save(plain, {model = net, train = {epoch = 3}})
      support.run_expect({"export-torch", plain, dir .. "/x.pth"}, 2,
                         "does not say which model it holds: give %-%-model=NAME")
      r = support.run({"export-torch", plain, dir .. "/mlp_small.export.pth", "--model=mlp",
                       "--modelOptions={sizes = {784, 64, 32, 10}}"})
      assert.are.equal(0, r.status, r.stderr)
      r = support.sh(("%s tools/torch_state.py to-h5 %s %s"):format(support.python, dir .. "/mlp_small.export.pth",
                                                                            dir .. "/mlp_small.export.h5"))
      assert.are.equal(0, r.status, r.stderr)
      r = support.sh(("%s %s check %s mlp_small"):format(support.python, support.shquote(TWINS), support.shquote(dir)))
      assert.are.equal(0, r.status, r.stderr)
      local checked = assert(load(r.stdout))()
      assert.are.equal("", checked.mlp_small.problems)
      -- the wrong architecture for the file: every unmatched name, both sides
      support.run_expect({"import-torch", dir .. "/mlp_small.pth", dir .. "/y.h5", "--model=mlp"}, 2,
                         "shapes differ %(5%):\n    fc1%.bias  file 64, model 1200  %(retort fc1%.bias%)")
      support.run_expect({"import-torch", dir .. "/resnet8.pth", dir .. "/y.h5", "--model=resnet14"}, 2,
                         "in the model, not in the file %(30%):\n" ..
                         "    layer1%.1%.bn1%.bias  16  %(retort layer1%.2%.bn1%.bias%)")
      assert.is_false(support.exists(dir .. "/y.h5"))
   end)

   it("refuse a pickle that would run code, without running it", function()
      if not torch_ok then return pending("python3-torch is not installed for /usr/bin/python3") end
      local marker = dir .. "/ran"
      local r = support.python_run(([[
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch %s",))
torch.save({"model": Payload()}, "%s/evil.pth")
]]):format(marker, dir))
      assert.are.equal(0, r.status, r.stderr)
      support.run_expect({"import-torch", dir .. "/evil.pth", dir .. "/evil.h5", "--model=resnet8"}, 2,
                         "refused by torch%.load%(weights_only=True%).*could run code")
      assert.is_false(support.exists(marker), "the payload ran")
      assert.is_false(support.exists(dir .. "/evil.h5"))
      -- the same beside Python floats (which torch 1.13's restricted loader cannot read, so retort's
      -- own allow-list reads the file): refused just the same, and the payload does not run
      r = support.python_run(([[
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch %s",))
torch.save({"lr": 0.05, "model": Payload()}, "%s/evil2.pth")
]]):format(marker, dir))
      assert.are.equal(0, r.status, r.stderr)
      support.run_expect({"import-torch", dir .. "/evil2.pth", dir .. "/evil2.h5", "--model=resnet8"}, 2,
                         "could run code when unpickled %(Unsupported class posix%.system")
      assert.is_false(support.exists(marker), "the payload ran")
   end)

   it("read RepDistiller's checkpoints, whose optimizer state holds Python floats", function()
      if not torch_ok then return pending("python3-torch is not installed for /usr/bin/python3") end
      local r = support.python_run(([[
import torch
sd = torch.load("%s/mlp_small.pth", weights_only=True)
opt = {"state": {}, "param_groups": [{"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "params": [0, 1]}]}
torch.save({"epoch": 240, "model": sd, "best_acc": torch.tensor(79.42), "optimizer": opt}, "%s/rep.pth")
]]):format(dir, dir))
      assert.are.equal(0, r.status, r.stderr)
      r = support.run({"import-torch", dir .. "/rep.pth", dir .. "/rep.h5", "--model=mlp",
                       "--modelOptions=sizes={784,64,32,10}"})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("under 'model'", r.stdout)
   end)

   it("find the state dict under 'state_dict' or 'net', strip 'module.', say what a file holds otherwise", function()
      if not torch_ok then return pending("python3-torch is not installed for /usr/bin/python3") end
      local r = support.python_run(([[
import torch
sd = torch.load("%s/mlp_small.pth", weights_only=True)
torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, "%s/dp.pth")
torch.save({"net": sd}, "%s/net.pth")
torch.save({"epoch": 3, "arch": "mlp"}, "%s/nothing.pth")
]]):format(dir, dir, dir, dir))
      assert.are.equal(0, r.status, r.stderr)
      local opts = "--modelOptions=sizes={784,64,32,10}"
      r = support.run({"import-torch", dir .. "/dp.pth", dir .. "/dp.h5", "--model=mlp", opts, "--strip=module."})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("under 'state_dict'", r.stdout)
      r = support.run({"import-torch", dir .. "/net.pth", dir .. "/net.h5", "--model=mlp", opts})
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("under 'net'", r.stdout)
      r = support.run({"import-torch", dir .. "/nothing.pth", dir .. "/n.h5", "--model=mlp", opts})
      assert.are.equal(2, r.status)
      assert.matches("no state dict found: expected a dict of tensors, or one under the key 'model', "
                     .. "'state_dict', 'net'; the file holds a dict of 2 entries {'epoch': int, 'arch': str}",
                     r.stderr, 1, true)
   end)

   it("say what to install when python3 or its torch is missing", function()
      local r = support.run({"import-torch", dir .. "/resnet8.pth", dir .. "/z.h5", "--model=resnet8"},
                            {env = {RETORT_PYTHON = "/nonexistent/python3"}})
      assert.are.equal(2, r.status)
      assert.matches("cannot run /nonexistent/python3: install Debian's python3%-torch and python3%-h5py", r.stderr)
      -- a python3 that finds none of Debian's packages (-S: no site-packages)
      local fake = support.tmpfile("#!/bin/sh\nexec " .. support.python .. " -S \"$@\"\n", ".sh")
      os.execute("chmod +x " .. support.shquote(fake))
      r = support.run({"import-torch", dir .. "/resnet8.pth", dir .. "/z.h5", "--model=resnet8"},
                      {env = {RETORT_PYTHON = fake}})
      os.remove(fake)
      assert.are.equal(2, r.status)
      assert.matches("cannot import .*torch.*apt%-get install .*python3%-torch", r.stderr)
   end)
end)
