-- retort.distill: knowledge-distillation losses, methods and the Distiller (DESIGN.md §4).
--
--   local loss, terms = retort.distill.kd(studentLogits, teacherLogits, {T = 4, alpha = 0.9, labels = y})
--   terms.kl (unscaled KL), terms.klScaled (T^2 * KL), terms.ce (hard-label cross-entropy): 0-dim
--   tensors, read with :item() (on a GPU that waits for the queue)
--
-- Plain functions on tensors (logits.lua, features.lua): kd, kl, logitL2, dkd, hint, at, sp, pkt,
-- rkd, nst, fsp, cc, ab, factorTransfer, crd. Every formula is written next to its code.
-- Method classes (Method.lua protocol; trainable parts show up in parameters()): FitNet, AT, SP,
-- PKT, RKD, NST, Hint, LogitL2, DKD, FSP (methods.lua), CC, VID, AB, FT, CRD; distill.methods maps
-- lower-case names to them for Distiller pairs ({loss = "at"}).
-- Distiller.lua: frozen teacher(s) + student + hint/guided pairs, the combined loss and its terms.
local distill = {}

for _, part in ipairs{"retort.distill.logits", "retort.distill.features"} do
   for name, fn in pairs(require(part)) do distill[name] = fn end
end

distill.Method = require "retort.distill.Method"
distill.Distiller = require "retort.distill.Distiller"
distill.FitNet = require "retort.distill.FitNet"
distill.CC = require "retort.distill.CC"
distill.VID = require "retort.distill.VID"
distill.AB = require "retort.distill.AB"
distill.FT = require "retort.distill.FT"
distill.CRD = require "retort.distill.CRD"
for name, cls in pairs(require "retort.distill.methods") do distill[name] = cls end

distill.methods = {}
for _, name in ipairs{"FitNet", "CC", "VID", "AT", "SP", "PKT", "RKD", "NST", "Hint", "LogitL2", "DKD", "FSP", "AB",
                      "FT", "CRD"} do
   distill.methods[name:lower()] = distill[name]
end

return distill
