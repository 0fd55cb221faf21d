-- Method classes for the losses without trainable parts, each with RepDistiller's published weight
-- (mdistiller's for DKD). The formulas are next to the functions in features.lua and logits.lua.
--   AT{p = 2} 1000   SP 3000   PKT 30000   RKD{distance = 25, angle = 50} 1   NST 50   Hint 1
--   LogitL2 1 (on logits)   DKD{alpha = 1, beta = 8, T = 4} 1 (on logits, needs labels)
local Method = require "retort.distill.Method"
local features = require "retort.distill.features"
local logits = require "retort.distill.logits"
local nn = require "retort.nn"

local M = {
   AT = Method.wrap("AT", features.at, 1000),
   SP = Method.wrap("SP", features.sp, 3000),
   PKT = Method.wrap("PKT", features.pkt, 30000),
   RKD = Method.wrap("RKD", features.rkd, 1),
   NST = Method.wrap("NST", features.nst, 50),
   Hint = Method.wrap("Hint", features.hint, 1),
   LogitL2 = Method.wrap("LogitL2", logits.logitL2, 1),
}

-- DKD reads the labels from the Distiller's context.
M.DKD = nn.class("DKD", Method)
M.DKD.weight = 1
function M.DKD:loss(s, t, ctx)
   if not (ctx and ctx.labels) then error("DKD: needs the labels of the batch (run it inside a Distiller)", 2) end
   return (logits.dkd(s, t, ctx.labels, self.opts))
end

return M
