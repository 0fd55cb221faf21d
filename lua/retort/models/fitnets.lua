-- FitNets-style networks (Romero et al. 2015), CIFAR-sized inputs (N, 3, 32, 32):
--   teacher: wide and shallow maxout network: maxout conv layers (default {96, 192, 192}
--            channels, 2 pieces, 5x5 pad 2), each followed by a 2x2 max pool, then a maxout fc
--            (500 units, 5 pieces) and the classifier. Children conv1..convK, pool1..poolK,
--            flatten, fc, logits layer "classifier"; taps also "logits".
--   student: thin and deep: 3x3 pad 1 maxout conv layers grouped in stages separated by 2x2 max
--            pools (default FitNet-1 widths {{16, 16, 16}, {32, 32, 32}, {48, 48, 64}}), then a
--            maxout fc and the classifier. Guided-layer candidates are named conv<i> (running index
--            over all stages) and pool<s>.
-- These follow the paper's shapes, not its exact hyper-parameters (which are not all published).
local nn = require "retort.nn"
local options = require "retort.options"

local FitNet = nn.class("FitNet", nn.Sequential)

local function build(self, o, stages, kernel, pad)
   local c, size, i = o.inChannels or 3, o.size or 32, 0
   local pieces = o.pieces or 2
   for s, widths in ipairs(stages) do
      for _, w in ipairs(widths) do
         i = i + 1
         self:add("conv" .. i, nn.MaxoutConv2d(c, w, kernel, pieces, {padding = pad}))
         c = w
      end
      self:add("pool" .. s, nn.MaxPool2d(2))
      size = size // 2
   end
   self:add("flatten", nn.Flatten())
   self:add("fc", nn.Maxout(c * size * size, o.hidden or 500, o.fcPieces or 5))
   if o.dropout and o.dropout > 0 then self:add("drop", nn.Dropout(o.dropout)) end
   self:add("classifier", nn.Linear(o.hidden or 500, o.classes or 10))
   self:declareTap("logits")
end

function FitNet:__init(o, stages, kernel, pad, kind)
   nn.Sequential.__init(self)
   self.kind = kind
   build(self, o, stages, kernel, pad)
end

function FitNet:apply(x, ctx)
   return self:emit(ctx, "logits", nn.Sequential.apply(self, x, ctx))
end

function FitNet:extraRepr() return self.kind end

local M = {FitNet = FitNet}

--- fitnetTeacher{channels = {96, 192, 192}, pieces = 2, hidden = 500, fcPieces = 5, classes = 10}
-- the options both take, plus channels (teacher) or stages (student)
local function known(extra)
   local k = {pieces = true, hidden = true, fcPieces = true, classes = true, inChannels = true, size = true,
              dropout = true}
   k[extra] = true
   return k
end

function M.fitnetTeacher(o)
   o = o or {}
   options.check("models.fitnetTeacher", o, known("channels"), 2)
   local stages = {}
   for i, c in ipairs(o.channels or {96, 192, 192}) do stages[i] = {c} end
   return FitNet(o, stages, 5, 2, "teacher (wide, shallow)")
end

--- fitnetStudent{stages = {{16, 16, 16}, {32, 32, 32}, {48, 48, 64}}, pieces = 2, hidden = 500, ...}
function M.fitnetStudent(o)
   o = o or {}
   options.check("models.fitnetStudent", o, known("stages"), 2)
   return FitNet(o, o.stages or {{16, 16, 16}, {32, 32, 32}, {48, 48, 64}}, 3, 1, "student (thin, deep)")
end

return M
