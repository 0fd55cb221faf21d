-- nn.init: weight initialisers (in place, under noGrad, from the seeded default generator),
-- following PyTorch's torch.nn.init formulas. Each returns the tensor.
--
--   fan_in  = size(2) * receptive field,  fan_out = size(1) * receptive field
--             (receptive field = product of sizes 3.., 1 for matrices)
--   gain:     linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leakyRelu sqrt(2 / (1 + a^2)), selu 3/4
--   kaimingUniform(t, {a = 0, mode = "fanIn", nonlinearity = "leakyRelu"}):
--             U(-b, b), b = gain * sqrt(3 / fan)
--   kaimingNormal(t, {...same}):   N(0, std), std = gain / sqrt(fan)
--   xavierUniform(t, {gain = 1}):  U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
--   xavierNormal(t, {gain = 1}):   N(0, std), std = gain * sqrt(2 / (fan_in + fan_out))
--   uniform(t, lo, hi), normal(t, mean, std), zeros(t), ones(t), constant(t, v)
--
-- Layer defaults (as PyTorch): Linear and Conv2d weights kaimingUniform with a = sqrt(5)
-- (b = 1 / sqrt(fan_in)), biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm weight 1, bias 0.
local retort = require "retort"

local init = {}

--- fans(t) -> fan_in, fan_out
function init.fans(t)
   local s = t:shape()
   if #s < 2 then error(("nn.init: fan in/out need a tensor with 2 or more dims, got %d"):format(#s), 3) end
   local receptive = 1
   for i = 3, #s do receptive = receptive * s[i] end
   return s[2] * receptive, s[1] * receptive
end

--- calculateGain(nonlinearity [, param])
function init.calculateGain(nl, param)
   nl = nl or "leakyRelu"
   if nl == "linear" or nl == "conv2d" or nl == "sigmoid" or nl == "identity" then return 1 end
   if nl == "tanh" then return 5 / 3 end
   if nl == "relu" then return math.sqrt(2) end
   if nl == "leakyRelu" or nl == "leaky_relu" then
      local a = param or 0.01
      return math.sqrt(2 / (1 + a * a))
   end
   if nl == "selu" then return 3 / 4 end
   error(("nn.init.calculateGain: unknown nonlinearity '%s'"):format(tostring(nl)), 2)
end

local function kaiming_std(t, o)
   o = o or {}
   local fan_in, fan_out = init.fans(t)
   local mode = o.mode or "fanIn"
   local fan
   if mode == "fanIn" or mode == "fan_in" then fan = fan_in
   elseif mode == "fanOut" or mode == "fan_out" then fan = fan_out
   else error(("nn.init: mode must be \"fanIn\" or \"fanOut\", got '%s'"):format(tostring(mode)), 3) end
   local gain = init.calculateGain(o.nonlinearity or "leakyRelu", o.a or 0)
   return gain / math.sqrt(fan)
end

local function inplace(fn) return retort.noGrad(fn) end

function init.uniform(t, lo, hi)
   inplace(function() t:uniform_(lo or 0, hi or 1) end)
   return t
end

function init.normal(t, mean, std)
   inplace(function() t:normal_(mean or 0, std or 1) end)
   return t
end

function init.constant(t, v)
   inplace(function() t:fill_(v) end)
   return t
end

function init.zeros(t) return init.constant(t, 0) end
function init.ones(t) return init.constant(t, 1) end

function init.kaimingUniform(t, o)
   local b = math.sqrt(3) * kaiming_std(t, o)
   return init.uniform(t, -b, b)
end

function init.kaimingNormal(t, o)
   return init.normal(t, 0, kaiming_std(t, o))
end

function init.xavierUniform(t, o)
   local fan_in, fan_out = init.fans(t)
   local b = ((o and o.gain) or 1) * math.sqrt(6 / (fan_in + fan_out))
   return init.uniform(t, -b, b)
end

function init.xavierNormal(t, o)
   local fan_in, fan_out = init.fans(t)
   return init.normal(t, 0, ((o and o.gain) or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

--- default(weight, bias): PyTorch's Linear/Conv reset_parameters.
function init.default(w, b)
   init.kaimingUniform(w, {a = math.sqrt(5)})
   if b then
      local fan_in = init.fans(w)
      local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
      init.uniform(b, -bound, bound)
   end
end

return init
