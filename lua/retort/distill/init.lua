-- retort.distill: knowledge-distillation losses, methods and the Distiller (DESIGN.md §4).
--
--   local loss, terms = retort.distill.kd(studentLogits, teacherLogits, {T = 4, alpha = 0.9, labels = y})
--   terms.kl (unscaled KL), terms.klScaled (T^2 * KL), terms.ce (hard-label cross-entropy)
--
-- Plain functions on tensors (logits.lua, features.lua): kd, kl, logitL2, dkd, hint, at, sp, pkt,
-- rkd, nst, fsp, cc. Every formula is written next to its code.
local distill = {}

for _, part in ipairs{"retort.distill.logits", "retort.distill.features"} do
   for name, fn in pairs(require(part)) do distill[name] = fn end
end

return distill
