-- retort.models: ready-made networks with natural tap names (see each file):
--   models.mlp{sizes, dropout, activation}                 mlp.lua
--   models.cnn{...}                                        cnn.lua
--   models.resnet{depth, filters}, resnet8/14/20/32/44/56/110, resnet8x4, resnet32x4   resnet.lua
--   models.wrn{depth, widen}, wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2                    wrn.lua
--   models.fitnetTeacher{...}, models.fitnetStudent{...}   fitnets.lua
-- RepDistiller's other CIFAR-100 models, under its names (models/__init__.py's model_dict):
--   models.vgg{cfg}, vgg8, vgg11, vgg13, vgg16, vgg19 (with BN)                         vgg.lua
--   models.mobilenetv2{widthMult, expansion}, mobile_half (= MobileNetV2), mobile_full  mobilenetv2.lua
--   models.shufflenetv1{...}, ShuffleV1                                                shufflenetv1.lua
--   models.shufflenetv2{netSize}, ShuffleV2                                            shufflenetv2.lua
--   models.resnetv2{block, blocks}, ResNet18, ResNet34, ResNet50, ResNet101, ResNet152  resnetv2.lua
-- The CIFAR models carry featureTaps and preactTaps: the tap names of RepDistiller's is_feat feature
-- list (its f0, f1, ..., the pooled features last) and of its preact=True list, which distillation
-- recipes pair by position as RepDistiller does (recipes/cifar.lua).
-- models.get(name, opts) builds one by name (recipes and the command line use names).
local models = {
   mlp = require "retort.models.mlp",
   cnn = require "retort.models.cnn",
}
for _, file in ipairs{"resnet", "wrn", "fitnets", "vgg", "mobilenetv2", "shufflenetv1", "shufflenetv2", "resnetv2"} do
   for name, fn in pairs(require("retort.models." .. file)) do
      if type(fn) == "function" then models[name] = fn end
   end
end
models.MobileNetV2 = models.mobile_half -- the name of RepDistiller's table for its mobile_half

local function by_name(a, b) -- case-insensitive, so RepDistiller's capitalised names sort among the others
   local la, lb = a:lower(), b:lower()
   if la ~= lb then return la < lb end
   return a < b
end

--- get(name [, opts]): the model called name; an unknown name lists the known ones.
function models.get(name, opts)
   local fn = models[name]
   if type(fn) ~= "function" or name == "get" then
      local known = {}
      for k, v in pairs(models) do if type(v) == "function" and k ~= "get" then known[#known + 1] = k end end
      table.sort(known, by_name)
      error(("models.get: unknown model '%s'; known: %s"):format(tostring(name), table.concat(known, ", ")), 2)
   end
   return fn(opts)
end

return models
