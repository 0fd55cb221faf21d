-- Fully connected layers: nn.Linear and nn.Maxout.
--
--   nn.Linear(in, out [, {bias = true}])   y = x W^T + b;  weight (out, in), bias (out)
--   nn.Maxout(in, out, k [, {bias = true}]) y_j = max_{p=1..k} (x W_{j,p}^T + b_{j,p})  (Goodfellow
--      et al. 2013; FitNets' teachers): one Linear(in, out*k) whose outputs are grouped per unit,
--      rows (j-1)*k+1 .. j*k of the weight belong to unit j.
local retort = require "retort"
local Module = require "retort.nn.Module"
local init = require "retort.nn.initializers"

local Linear = Module.class("Linear", Module)

function Linear:__init(inFeatures, outFeatures, opts)
   Module.__init(self)
   if math.type(inFeatures) ~= "integer" or math.type(outFeatures) ~= "integer"
      or inFeatures < 1 or outFeatures < 1 then
      error(("nn.Linear(in, out): positive integer sizes expected, got %s, %s"):format(tostring(inFeatures),
         tostring(outFeatures)), 3)
   end
   opts = opts or {}
   self.inFeatures, self.outFeatures = inFeatures, outFeatures
   local w = retort.empty(outFeatures, inFeatures)
   local b = opts.bias ~= false and retort.empty(outFeatures) or nil
   init.default(w, b)
   self:registerParameter("weight", w)
   self:registerParameter("bias", b)
end

function Linear:apply(x)
   local d = x:dim()
   if d < 1 or x:size(d) ~= self.inFeatures then
      error(("nn.Linear(%d -> %d): input of size (%s) has %s features in its last dim, expected %d"):format(
         self.inFeatures, self.outFeatures, table.concat(x:shape(), "x"), d >= 1 and x:size(d) or "no",
         self.inFeatures), 3)
   end
   return x:linear(self.weight, self.bias)
end

function Linear:extraRepr()
   return ("%d -> %d%s"):format(self.inFeatures, self.outFeatures, self.bias and "" or ", no bias")
end

--- maxPieces(y, k): max over groups of k consecutive entries of dim 2 (N, out*k, ...) -> (N, out, ...)
local function max_pieces(y, k)
   local s = y:shape()
   local shape = {s[1], s[2] // k, k}
   for i = 3, #s do shape[#shape + 1] = s[i] end
   return (y:view(shape):max(3))
end

local Maxout = Module.class("Maxout", Module)

function Maxout:__init(inFeatures, outFeatures, k, opts)
   Module.__init(self)
   if math.type(k) ~= "integer" or k < 1 then
      error(("nn.Maxout(in, out, k): k (pieces) must be a positive integer, got %s"):format(tostring(k)), 3)
   end
   self.inFeatures, self.outFeatures, self.pieces = inFeatures, outFeatures, k
   self:addModule("linear", Linear(inFeatures, outFeatures * k, opts))
end

function Maxout:apply(x, ctx)
   return max_pieces(self:runChild("linear", x, ctx), self.pieces)
end

function Maxout:extraRepr() return ("%d -> %d, %d pieces"):format(self.inFeatures, self.outFeatures, self.pieces) end

return {Linear = Linear, Maxout = Maxout, maxPieces = max_pieces}
