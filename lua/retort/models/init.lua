-- retort.models: ready-made networks with natural tap names (see each file):
--   models.mlp{sizes, dropout, activation}                 mlp.lua
--   models.cnn{...}                                        cnn.lua
--   models.resnet{depth, filters}, resnet8/14/20/32/44/56/110, resnet8x4, resnet32x4   resnet.lua
--   models.wrn{depth, widen}, wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2                    wrn.lua
--   models.fitnetTeacher{...}, models.fitnetStudent{...}   fitnets.lua
-- models.get(name, opts) builds one by name (recipes and the command line use names).
local models = {
   mlp = require "retort.models.mlp",
   cnn = require "retort.models.cnn",
}
for _, file in ipairs{"resnet", "wrn", "fitnets"} do
   for name, fn in pairs(require("retort.models." .. file)) do
      if type(fn) == "function" then models[name] = fn end
   end
end

--- get(name [, opts]): the model called name; an unknown name lists the known ones.
function models.get(name, opts)
   local fn = models[name]
   if type(fn) ~= "function" or name == "get" then
      local known = {}
      for k, v in pairs(models) do if type(v) == "function" and k ~= "get" then known[#known + 1] = k end end
      table.sort(known)
      error(("models.get: unknown model '%s'; known: %s"):format(tostring(name), table.concat(known, ", ")), 2)
   end
   return fn(opts)
end

return models
