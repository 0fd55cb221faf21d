-- The weight initialisations of RepDistiller's CIFAR-100 models (each model's __init__ or
-- _initialize_weights), so that a model trained here starts as the published ones did:
--   conv   weight ~ N(0, sqrt(2 / (kh kw out))): kaiming normal, fan_out, relu gain (resnet.py,
--          resnetv2.py, wrn.py, vgg.py, mobilenetv2.py; the same formula in each), bias 0
--   BN     weight 1, bias 0 (the layer default already)
--   linear "default" (PyTorch's: resnet.py, resnetv2.py), "zeroBias" (wrn.py: default weight, bias 0)
--          or "normal" (vgg.py, mobilenetv2.py: weight ~ N(0, 0.01), bias 0)
-- ShuffleNetV1/V2 keep PyTorch's layer defaults (their files set none): do not call this for them.
local nn = require "retort.nn"
local init = nn.init

--- apply(net, {linear = "default" | "zeroBias" | "normal"}): re-initialise net's Conv2d and Linear layers.
return function(net, o)
   local linear = (o and o.linear) or "default"
   for _, entry in ipairs(net:namedModules()) do
      local m = entry.module
      if m.__typename == "Conv2d" then
         init.kaimingNormal(m.weight, {mode = "fanOut", nonlinearity = "relu"})
         if m.bias then init.zeros(m.bias) end
      elseif m.__typename == "Linear" and linear ~= "default" then
         if linear == "normal" then init.normal(m.weight, 0, 0.01) end
         if m.bias then init.zeros(m.bias) end
      end
   end
   return net
end
