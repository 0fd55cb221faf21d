-- models.cnn{inChannels = 1, size = 28, channels = {32, 64}, hidden = 128, classes = 10, dropout = 0}
-- A small CNN: per entry of channels, conv 3x3 (pad 1) - relu - maxpool 2; then flatten,
-- fc1 (hidden) - relu - [dropout] - fc2 (classes). Children: conv1, relu1, pool1, conv2, ...,
-- flatten, fc1, relu, [drop], fc2; taps also "logits".
local nn = require "retort.nn"
local options = require "retort.options"

local CNN = nn.class("CNN", nn.Sequential)

function CNN:__init(o)
   nn.Sequential.__init(self)
   o = o or {}
   options.check("models.cnn", o, {inChannels = true, size = true, channels = true, hidden = true, classes = true,
                                   dropout = true}, 3)
   local c = o.inChannels or 1
   local size = o.size or 28
   local channels = o.channels or {32, 64}
   for i, ch in ipairs(channels) do
      self:add("conv" .. i, nn.Conv2d(c, ch, 3, {padding = 1}))
      self:add("relu" .. i, nn.ReLU())
      self:add("pool" .. i, nn.MaxPool2d(2))
      c = ch
      size = size // 2
   end
   local hidden, classes = o.hidden or 128, o.classes or 10
   self:add("flatten", nn.Flatten())
   self:add("fc1", nn.Linear(c * size * size, hidden))
   self:add("relu", nn.ReLU())
   if o.dropout and o.dropout > 0 then self:add("drop", nn.Dropout(o.dropout)) end
   self:add("fc2", nn.Linear(hidden, classes))
   self:declareTap("logits")
end

function CNN:apply(x, ctx)
   return self:emit(ctx, "logits", nn.Sequential.apply(self, x, ctx))
end

return function(o) return CNN(o) end
