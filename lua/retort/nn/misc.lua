-- Shape and regularisation layers:
--   nn.Flatten([startDim = 2])   (N, C, H, W) -> (N, C*H*W)
--   nn.Identity()                returns its input
--   nn.Dropout([p = 0.5])        zeroes each element with probability p and scales the rest by
--                                1/(1-p) while training (inverted dropout); identity when evaluating
local Module = require "retort.nn.Module"

local M = {}

local Flatten = Module.class("Flatten", Module)
function Flatten:__init(startDim)
   Module.__init(self)
   self.startDim = startDim or 2
end
function Flatten:apply(x) return x:flatten(self.startDim) end
function Flatten:extraRepr() return self.startDim ~= 2 and ("from dim " .. self.startDim) or nil end
M.Flatten = Flatten

local Identity = Module.class("Identity", Module)
function Identity:__init() Module.__init(self) end
function Identity:apply(x) return x end
M.Identity = Identity

local Dropout = Module.class("Dropout", Module)
function Dropout:__init(p)
   Module.__init(self)
   p = p or 0.5
   if type(p) ~= "number" or p < 0 or p >= 1 then
      error(("nn.Dropout(p): p must be in [0, 1), got %s"):format(tostring(p)), 3)
   end
   self.p = p
end
function Dropout:apply(x)
   if not self._training or self.p == 0 then return x end
   if x.dropout == nil then error("nn.Dropout: this build's tensors have no dropout yet", 3) end
   return x:dropout(self.p, true)
end
function Dropout:extraRepr() return "p " .. tostring(self.p) end
M.Dropout = Dropout

return M
