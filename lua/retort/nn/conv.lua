-- Convolutions: nn.Conv2d and nn.MaxoutConv2d (a conv with out*k channels followed by a max over
-- each group of k consecutive channels, as in FitNets' maxout teachers).
--
--   nn.Conv2d(in, out, k [, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true}])
--     k, stride, padding, dilation: a number or {h, w}; weight (out, in/groups, kh, kw), bias (out).
--     Input (N, in, H, W) -> (N, out, H', W'), H' = floor((H + 2p - d(k-1) - 1)/s) + 1.
--   nn.MaxoutConv2d(in, out, k, pieces [, conv options])
local retort = require "retort"
local Module = require "retort.nn.Module"
local init = require "retort.nn.initializers"
local linear = require "retort.nn.linear"

local function pair(v, name, default)
   if v == nil then v = default end
   if type(v) == "number" then return {v, v} end
   if type(v) == "table" and #v == 2 then return {v[1], v[2]} end
   error(("nn.Conv2d: %s must be a number or {h, w}, got %s"):format(name, tostring(v)), 4)
end

-- symmetric pairs go to the core as one number
local function collapse(p) if p[1] == p[2] then return p[1] end return p end

local function pair_repr(p) return p[1] == p[2] and tostring(p[1]) or ("{%d, %d}"):format(p[1], p[2]) end

local Conv2d = Module.class("Conv2d", Module)

function Conv2d:__init(inChannels, outChannels, kernel, opts)
   Module.__init(self)
   opts = opts or {}
   if math.type(inChannels) ~= "integer" or math.type(outChannels) ~= "integer" then
      error("nn.Conv2d(in, out, k): integer channel counts expected", 3)
   end
   local groups = opts.groups or 1
   if inChannels % groups ~= 0 or outChannels % groups ~= 0 then
      error(("nn.Conv2d: in (%d) and out (%d) channels must be divisible by groups (%d)"):format(inChannels,
         outChannels, groups), 3)
   end
   self.inChannels, self.outChannels, self.groups = inChannels, outChannels, groups
   self.kernel = pair(kernel, "kernel size")
   self.stride = pair(opts.stride, "stride", 1)
   self.padding = pair(opts.padding, "padding", 0)
   self.dilation = pair(opts.dilation, "dilation", 1)
   local w = retort.empty(outChannels, inChannels // groups, self.kernel[1], self.kernel[2])
   local b = opts.bias ~= false and retort.empty(outChannels) or nil
   init.default(w, b)
   self:registerParameter("weight", w)
   self:registerParameter("bias", b)
end

function Conv2d:apply(x)
   if x.conv2d == nil then error("nn.Conv2d: this build's tensors have no conv2d yet", 3) end
   if x:dim() ~= 4 or x:size(2) ~= self.inChannels then
      error(("nn.Conv2d(%d -> %d): expected input (N, %d, H, W), got (%s)"):format(self.inChannels,
         self.outChannels, self.inChannels, table.concat(x:shape(), "x")), 3)
   end
   return x:conv2d(self.weight, self.bias, {stride = collapse(self.stride), padding = collapse(self.padding),
                                            dilation = collapse(self.dilation), groups = self.groups})
end

function Conv2d:extraRepr()
   local s = ("%d -> %d, %s"):format(self.inChannels, self.outChannels,
      self.kernel[1] == self.kernel[2] and (self.kernel[1] .. "x" .. self.kernel[1]) or
      (self.kernel[1] .. "x" .. self.kernel[2]))
   if self.stride[1] ~= 1 or self.stride[2] ~= 1 then s = s .. ", stride " .. pair_repr(self.stride) end
   if self.padding[1] ~= 0 or self.padding[2] ~= 0 then s = s .. ", pad " .. pair_repr(self.padding) end
   if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then s = s .. ", dilation " .. pair_repr(self.dilation) end
   if self.groups ~= 1 then s = s .. ", groups " .. self.groups end
   if not self.bias then s = s .. ", no bias" end
   return s
end

local MaxoutConv2d = Module.class("MaxoutConv2d", Module)

function MaxoutConv2d:__init(inChannels, outChannels, kernel, pieces, opts)
   Module.__init(self)
   if math.type(pieces) ~= "integer" or pieces < 1 then
      error("nn.MaxoutConv2d(in, out, k, pieces): pieces must be a positive integer", 3)
   end
   self.pieces, self.inChannels, self.outChannels = pieces, inChannels, outChannels
   self:addModule("conv", Conv2d(inChannels, outChannels * pieces, kernel, opts))
end

function MaxoutConv2d:apply(x, ctx)
   return linear.maxPieces(self:runChild("conv", x, ctx), self.pieces)
end

function MaxoutConv2d:extraRepr()
   return ("%d -> %d, %d pieces"):format(self.inChannels, self.outChannels, self.pieces)
end

return {Conv2d = Conv2d, MaxoutConv2d = MaxoutConv2d}
