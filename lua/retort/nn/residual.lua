-- Residual connections.
--
--   nn.Residual(body [, shortcut = nn.Identity()] [, {activation = module}])
--       y = activation(body(x) + shortcut(x)); children "body", "shortcut" (and "activation").
--   nn.BasicBlock(inPlanes, planes [, {stride = 1, shortcut = "auto" | "conv" | "identity"}])
--       The CIFAR ResNet basic block (He et al. 2016; RepDistiller's resnet.py):
--       conv1 3x3/stride - bn1 - relu - conv2 3x3 - bn2, plus the shortcut, then relu.
--       shortcut "auto" (default) uses 1x1 conv (stride) + BN when the shape changes (stride ~= 1
--       or inPlanes ~= planes) and the identity otherwise; "conv" always uses the projection.
--       Taps: its children (conv1, bn1, ..., shortcut) and "preact" (the sum before the last relu).
local Module = require "retort.nn.Module"
local misc = require "retort.nn.misc"
local conv = require "retort.nn.conv"
local norm = require "retort.nn.normalization"
local Sequential = require("retort.nn.Sequential").Sequential

local Residual = Module.class("Residual", Module)

function Residual:__init(body, shortcut, opts)
   Module.__init(self)
   if opts == nil and type(shortcut) == "table" and not Module.isInstance(shortcut, Module) then
      opts, shortcut = shortcut, nil
   end
   opts = opts or {}
   self:addModule("body", body)
   self:addModule("shortcut", shortcut or misc.Identity())
   if opts.activation then self:addModule("activation", opts.activation) end
end

function Residual:apply(x, ctx)
   local y = self:runChild("body", x, ctx) + self:runChild("shortcut", x, ctx)
   if self._modules.activation then y = self:runChild("activation", y, ctx) end
   return y
end

local BasicBlock = Module.class("BasicBlock", Module)
BasicBlock.expansion = 1

function BasicBlock:__init(inPlanes, planes, opts)
   Module.__init(self)
   opts = opts or {}
   local stride = opts.stride or 1
   self.inPlanes, self.planes, self.stride = inPlanes, planes, stride
   self:addModule("conv1", conv.Conv2d(inPlanes, planes, 3, {stride = stride, padding = 1, bias = false}))
   self:addModule("bn1", norm.BatchNorm2d(planes))
   self:addModule("conv2", conv.Conv2d(planes, planes, 3, {stride = 1, padding = 1, bias = false}))
   self:addModule("bn2", norm.BatchNorm2d(planes))
   local kind = opts.shortcut or "auto"
   if kind ~= "auto" and kind ~= "conv" and kind ~= "identity" then
      error(("nn.BasicBlock: shortcut must be \"auto\", \"conv\" or \"identity\", got '%s'"):format(tostring(kind)), 3)
   end
   local project = kind == "conv" or (kind == "auto" and (stride ~= 1 or inPlanes ~= planes))
   if project then
      self:addModule("shortcut", Sequential()
         :add("conv", conv.Conv2d(inPlanes, planes, 1, {stride = stride, bias = false}))
         :add("bn", norm.BatchNorm2d(planes)))
   else
      if stride ~= 1 or inPlanes ~= planes then
         error("nn.BasicBlock: an identity shortcut needs stride 1 and inPlanes == planes", 3)
      end
      self:addModule("shortcut", misc.Identity())
   end
   self:declareTap("preact")
end

function BasicBlock:apply(x, ctx)
   local out = self:runChild("conv1", x, ctx)
   out = self:runChild("bn1", out, ctx):relu()
   out = self:runChild("conv2", out, ctx)
   out = self:runChild("bn2", out, ctx)
   out = out + self:runChild("shortcut", x, ctx)
   self:emit(ctx, "preact", out)
   return out:relu()
end

function BasicBlock:extraRepr()
   return ("%d -> %d%s"):format(self.inPlanes, self.planes, self.stride ~= 1 and (", stride " .. self.stride) or "")
end

return {Residual = Residual, BasicBlock = BasicBlock}
