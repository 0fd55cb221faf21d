-- Argument checks shared by the distillation losses: errors name the function, say what was
-- expected and what was found, and point at the caller's line.
local retort = require "retort"

local check = {}

--- "(2x3x4)" for a tensor or a shape table.
local function shape_str(t) return "(" .. table.concat(retort.isTensor(t) and t:shape() or t, "x") .. ")" end
check.shape = shape_str

--- Do two tensors have the same shape?
function check.sameShape(a, b) return shape_str(a) == shape_str(b) end

--- t must be a tensor; what names it ("student features").
function check.tensor(fn, argn, t, what)
   if not retort.isTensor(t) then
      error(("bad argument #%d to '%s' (%s: retort.Tensor expected, got %s)"):format(argn, fn, what, type(t)), 4)
   end
end

--- Student and teacher logits: (batch, classes) each, same batch, same classes.
function check.logits(fn, s, t)
   check.tensor(fn, 1, s, "student logits")
   check.tensor(fn, 2, t, "teacher logits")
   if s:dim() ~= 2 or t:dim() ~= 2 then
      error(("%s: logits must be (batch, classes); got student %s and teacher %s"):format(
         fn, shape_str(s), shape_str(t)), 3)
   end
   local ss, ts = s:shape(), t:shape()
   if ss[2] ~= ts[2] then
      error(("%s: the student predicts %d classes and the teacher %d; they must predict the same classes"):format(
         fn, ss[2], ts[2]), 3)
   end
   if ss[1] ~= ts[1] then error(("%s: batch sizes differ: student %d, teacher %d"):format(fn, ss[1], ts[1]), 3) end
end

--- Two feature tensors with the same batch size and, when ndims is given, that many dimensions.
function check.features(fn, fs, ft, ndims)
   check.tensor(fn, 1, fs, "student features")
   check.tensor(fn, 2, ft, "teacher features")
   if fs:size(1) ~= ft:size(1) then
      error(("%s: batch sizes differ: student %s, teacher %s"):format(fn, shape_str(fs), shape_str(ft)), 3)
   end
   if ndims and (fs:dim() ~= ndims or ft:dim() ~= ndims) then
      error(("%s: expected %d-D features%s; got student %s and teacher %s"):format(fn, ndims,
         ndims == 4 and " (batch, channels, height, width)" or "", shape_str(fs), shape_str(ft)), 3)
   end
end

--- The options table of a loss function (argument argn; nil is none): a table whose keys are all
--- among `known` (a list); an unknown key is an error naming it and the nearest known one, so that
--- {temperature = 4} is not silently a run at the default T.
function check.options(fn, argn, opts, known)
   if opts == nil then return {} end
   if type(opts) ~= "table" then
      error(("bad argument #%d to '%s' (table of options expected, got %s)"):format(argn, fn, type(opts)), 3)
   end
   local set = {}
   for _, k in ipairs(known) do set[k] = true end
   require("retort.options").check(fn, opts, set, 3)
   return opts
end

--- A temperature: a positive finite number.
function check.T(fn, T)
   -- not (T > 0) is meant: it is also true for NaN, which T <= 0 would let through
   if type(T) ~= "number" or not (T > 0) or T == math.huge then -- luacheck: ignore 581 (NaN)
      error(("%s: temperature T must be a positive number, got %s"):format(fn, tostring(T)), 3)
   end
end

return check
