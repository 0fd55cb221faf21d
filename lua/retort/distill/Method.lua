-- The protocol of a distillation method: an nn.Module (so its trainable parts, if any, show up in
-- parameters() and state dicts) with
--   method:loss(fs, ft, ctx) -> loss tensor     fs/ft: the guided (student) and hint (teacher) outputs
--   method:setup(fsShape, ftShape)              optional: build parts that depend on the shapes
--   method.weight                               the published default weight (RepDistiller's beta)
-- ctx = {labels = y, indices = dataset indices of the batch, studentLogits = s, teacherLogits = t,
--        progress = {...}} for methods that need them.
-- Two-stage methods (RepDistiller's init stage, FitNets' stage 1; Distiller:setStage) also declare
--   method.phase                 "main" (default), "init" (trained in the init stage only: AB, FSP)
--                                or "both" (FT: its initLoss in the init stage, loss in the main)
--   method:initLoss(fs, ft, ctx) optional: the init stage's loss (default: loss)
--   method:initParameters()      optional: what the init stage trains of the method (default: all)
--   method.initTrainsStudent     false when the init stage leaves the student alone (FT)
--   method.initWeight            optional: the init loss's weight when it differs from weight (FT: 1)
--
-- Method.wrap(name, fn, weight, doc) makes a method class from a plain loss function.
local nn = require "retort.nn"

local Method = nn.class("Method", nn.Module)

function Method:__init(opts)
   nn.Module.__init(self)
   self.opts = opts or {}
   self.weight = self.opts.weight or self.weight
end

function Method:loss() error(("%s: loss(fs, ft) is not implemented"):format(self.__typename), 2) end

-- A method is not run through forward: it has no single input.
function Method:apply()
   error(("%s: a distillation method is called as method:loss(fs, ft)"):format(self.__typename), 2)
end

--- wrap(name, fn, weight): a method class calling fn(fs, ft, opts) with the options it was built with.
function Method.wrap(name, fn, weight)
   local cls = nn.class(name, Method)
   cls.weight = weight
   function cls:loss(fs, ft) return fn(fs, ft, self.opts) end
   return cls
end

return Method
