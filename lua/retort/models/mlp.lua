-- models.mlp{sizes = {784, 1200, 1200, 10}, dropout = 0.5, inputDropout = 0, activation = "relu"}
-- A fully connected classifier (Hinton et al. 2015: teacher 784-1200-1200-10 with dropout,
-- student 784-800-800-10). Children: [inputDrop], fc1, relu1, [drop1], fc2, relu2, [drop2], ...,
-- fcL; the last Linear's output is also the tap "logits". Inputs (N, ...) are flattened.
local nn = require "retort.nn"
local options = require "retort.options"

local ACTIVATIONS = {relu = nn.ReLU, tanh = nn.Tanh, sigmoid = nn.Sigmoid, leakyRelu = nn.LeakyReLU}

local MLP = nn.class("MLP", nn.Sequential)

function MLP:__init(o)
   nn.Sequential.__init(self)
   o = o or {}
   options.check("models.mlp", o, {sizes = true, dropout = true, inputDropout = true, activation = true}, 3)
   local sizes = o.sizes or {784, 1200, 1200, 10}
   if #sizes < 2 then error("models.mlp: sizes needs at least {in, out}", 3) end
   local act = o.activation or "relu"
   local Act = ACTIVATIONS[act]
   if not Act then
      error(("models.mlp: unknown activation '%s' (relu, tanh, sigmoid, leakyRelu)"):format(tostring(act)), 3)
   end
   self.sizes = sizes
   self:add("flatten", nn.Flatten())
   if o.inputDropout and o.inputDropout > 0 then self:add("inputDrop", nn.Dropout(o.inputDropout)) end
   for i = 1, #sizes - 1 do
      self:add("fc" .. i, nn.Linear(sizes[i], sizes[i + 1]))
      if i < #sizes - 1 then
         self:add(act .. i, Act())
         if o.dropout and o.dropout > 0 then self:add("drop" .. i, nn.Dropout(o.dropout)) end
      end
   end
   self:declareTap("logits")
end

function MLP:apply(x, ctx)
   return self:emit(ctx, "logits", nn.Sequential.apply(self, x, ctx))
end

function MLP:extraRepr() return table.concat(self.sizes, "-") end

return function(o) return MLP(o) end
