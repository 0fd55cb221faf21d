-- Pooling over (N, C, H, W):
--   nn.MaxPool2d(k [, {stride = k, padding = 0}])
--   nn.AvgPool2d(k [, {stride = k, padding = 0, countIncludePad = true}])
--   nn.AdaptiveAvgPool2d(oh [, ow = oh])    -- (N, C, oh, ow) whatever H, W; 1 gives global pooling
local Module = require "retort.nn.Module"

local M = {}

local function need(x, method, name)
   if x[method] == nil then error(("nn.%s: this build's tensors have no %s yet"):format(name, method), 4) end
   if x:dim() ~= 4 then
      error(("nn.%s: expected input (N, C, H, W), got (%s)"):format(name, table.concat(x:shape(), "x")), 4)
   end
end

local MaxPool2d = Module.class("MaxPool2d", Module)
function MaxPool2d:__init(k, opts)
   Module.__init(self)
   opts = opts or {}
   self.kernel, self.stride, self.padding = k, opts.stride or k, opts.padding or 0
end
function MaxPool2d:apply(x)
   need(x, "maxPool2d", "MaxPool2d")
   return x:maxPool2d(self.kernel, {stride = self.stride, padding = self.padding})
end
function MaxPool2d:extraRepr()
   return ("%s, stride %s%s"):format(tostring(self.kernel), tostring(self.stride),
      self.padding ~= 0 and (", pad " .. tostring(self.padding)) or "")
end
M.MaxPool2d = MaxPool2d

local AvgPool2d = Module.class("AvgPool2d", Module)
function AvgPool2d:__init(k, opts)
   Module.__init(self)
   opts = opts or {}
   self.kernel, self.stride, self.padding = k, opts.stride or k, opts.padding or 0
   self.countIncludePad = opts.countIncludePad ~= false
end
function AvgPool2d:apply(x)
   need(x, "avgPool2d", "AvgPool2d")
   return x:avgPool2d(self.kernel, {stride = self.stride, padding = self.padding,
                                    countIncludePad = self.countIncludePad})
end
AvgPool2d.extraRepr = MaxPool2d.extraRepr
M.AvgPool2d = AvgPool2d

local AdaptiveAvgPool2d = Module.class("AdaptiveAvgPool2d", Module)
function AdaptiveAvgPool2d:__init(oh, ow)
   Module.__init(self)
   self.oh, self.ow = oh or 1, ow or oh or 1
end
function AdaptiveAvgPool2d:apply(x)
   need(x, "adaptiveAvgPool2d", "AdaptiveAvgPool2d")
   return x:adaptiveAvgPool2d(self.oh, self.ow)
end
function AdaptiveAvgPool2d:extraRepr() return ("%dx%d"):format(self.oh, self.ow) end
M.AdaptiveAvgPool2d = AdaptiveAvgPool2d

return M
