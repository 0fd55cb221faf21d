-- preset(ctor, fixed): a constructor fn(opts) calling ctor with `fixed` options under the user's
-- (resnet20 = preset(ResNet, {depth = 20, ...}); the user's options win).
return function(ctor, fixed)
   return function(o)
      local c = {}
      for k, v in pairs(fixed) do c[k] = v end
      for k, v in pairs(o or {}) do c[k] = v end
      return ctor(c)
   end
end
