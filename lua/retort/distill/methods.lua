-- Method classes for the losses without trainable parts, each with RepDistiller's published weight
-- (mdistiller's for DKD). The formulas are next to the functions in features.lua and logits.lua.
--   AT{p = 2} 1000   SP 3000   PKT 30000   RKD{distance = 25, angle = 50} 1   NST 50   Hint 1
--   LogitL2 1 (on logits)   DKD{alpha = 1, beta = 8, T = 4} 1 (on logits, needs labels)
--   FSP 1 (a pair of pairs of layers; init stage, as RepDistiller trains it)
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

-- FSP (Yim et al. 2017) compares the flow between two layers of each network, so its pair names two
-- taps on each side: {hint = {"t.a", "t.b"}, guided = {"s.a", "s.b"}, loss = "fsp"}. RepDistiller
-- trains it in the init stage only (phase "init"), then the main stage uses CE and KD.
M.FSP = nn.class("FSP", Method)
M.FSP.weight = 1
M.FSP.phase = "init"
function M.FSP:loss(fs, ft)
   if type(fs) ~= "table" or type(ft) ~= "table" or #fs ~= 2 or #ft ~= 2 then
      error("FSP: compares two layers of each network; give the pair hint = {\"t.a\", \"t.b\"} and "
            .. "guided = {\"s.a\", \"s.b\"}", 2)
   end
   return features.fsp(fs[1], fs[2], ft[1], ft[2])
end

return M
