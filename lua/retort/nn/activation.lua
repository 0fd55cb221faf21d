-- Element-wise activations and the softmax family:
--   nn.ReLU(), nn.LeakyReLU(slope = 0.01), nn.Tanh(), nn.Sigmoid(),
--   nn.Softmax(dim, T), nn.LogSoftmax(dim, T)  -- softmax(x / T) along dim (default: the last dim)
local Module = require "retort.nn.Module"

local M = {}

local function simple(name, method)
   local C = Module.class(name, Module)
   function C:__init() Module.__init(self) end
   function C:apply(x) return x[method](x) end
   M[name] = C
end

simple("ReLU", "relu")
simple("Tanh", "tanh")
simple("Sigmoid", "sigmoid")

local LeakyReLU = Module.class("LeakyReLU", Module)
function LeakyReLU:__init(slope)
   Module.__init(self)
   self.slope = slope or 0.01
end
function LeakyReLU:apply(x)
   if x.leakyRelu == nil then error("nn.LeakyReLU: this build's tensors have no leakyRelu yet", 3) end
   return x:leakyRelu(self.slope)
end
function LeakyReLU:extraRepr() return tostring(self.slope) end
M.LeakyReLU = LeakyReLU

local function softmax_like(name, method)
   local C = Module.class(name, Module)
   function C:__init(dim, T)
      Module.__init(self)
      self.dim, self.T = dim, T
   end
   function C:apply(x) return x[method](x, self.dim, self.T) end
   function C:extraRepr()
      local parts = {}
      if self.dim then parts[#parts + 1] = "dim " .. self.dim end
      if self.T and self.T ~= 1 then parts[#parts + 1] = "T " .. tostring(self.T) end
      return #parts > 0 and table.concat(parts, ", ") or nil
   end
   M[name] = C
end

softmax_like("Softmax", "softmax")
softmax_like("LogSoftmax", "logSoftmax")

return M
