-- Demo: fit a small two-layer network to a noisy sine with the tensor and autograd API alone.
-- Run: retort run recipes/demo_fit.lua [--steps=N] [--seed=N]
local retort = require "retort"

local opts = require("retort.recipe").options({steps = 300, seed = 7, lr = 0.05, hidden = 32,
                                                precision = "f32"}, {...}, {
   steps = "gradient-descent steps",
   seed = "random seed (the data and the initial weights)",
   lr = "learning rate (plain gradient descent)",
   hidden = "hidden units (one tanh layer)",
   precision = require("retort.recipe").PRECISION_HELP,
})

retort.manualSeed(opts.seed)
local n = 256
local x = retort.rand(n, 1) * 6 - 3                      -- inputs in [-3, 3)
-- target: a smooth curve built from tanh and a Gaussian bump, plus noise
local y = (x * 1.5):tanh() * 0.8 + (x:pow(2) * -0.5):exp() * 0.3 + retort.randn(n, 1) * 0.02

local w1 = (retort.randn(opts.hidden, 1) * 0.8):requiresGrad()
local b1 = retort.zeros(opts.hidden):requiresGrad()
local w2 = (retort.randn(1, opts.hidden) * (1 / math.sqrt(opts.hidden))):requiresGrad()
local b2 = retort.zeros(1):requiresGrad()
local params = {w1, b1, w2, b2}

local function predict(input)
   return input:linear(w1, b1):tanh():linear(w2, b2)
end

local first
for step = 1, opts.steps do
   local loss = retort.autocast(opts.precision, function() return (predict(x) - y):pow(2):mean() end)
   for _, p in ipairs(params) do p:zeroGrad() end
   loss:backward()
   retort.noGrad(function()
      for _, p in ipairs(params) do p:add_(p.grad, -opts.lr) end
   end)
   first = first or loss:item()
   if step == 1 or step % 50 == 0 or step == opts.steps then
      print(("step %4d  mse %.5f"):format(step, loss:item()))
   end
end
local final = retort.noGrad(function() return (predict(x) - y):pow(2):mean():item() end)
print(("mse %.5f -> %.5f (%.1fx lower)"):format(first, final, first / final))
