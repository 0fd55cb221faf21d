-- What the array-file readers (npy.lua, hdf5.lua) share: the layouts an array of examples may be
-- stored in, and labels read from a file (0-based class ids on disk, 1..C in Lua).
--
-- Layouts (the `layout` option; nil keeps the stored shape as it is):
--   "NCHW"  (N, C, H, W) images, as retort uses them
--   "NHWC"  (N, H, W, C) images (numpy / TensorFlow / PIL order): transposed to (N, C, H, W) when read
--   "NHW"   (N, H, W) single-channel images: seen as (N, 1, H, W)
--   "NC"    (N, D) vectors
-- Inputs are transposed when read, never stored twice: the Loader, its augmentation and the dataset
-- fingerprint all see (N, C, H, W).
local M = {}

M.LAYOUTS = {
   NCHW = {rank = 4, stored = "(N, C, H, W)"},
   NHWC = {rank = 4, stored = "(N, H, W, C)", perm = {1, 4, 2, 3}},
   NHW = {rank = 3, stored = "(N, H, W)", grey = true},
   NC = {rank = 2, stored = "(N, D)"},
}

local function shape_str(s) return "(" .. table.concat(s, ",") .. ")" end
M.shapeString = shape_str

--- checkLayout(fname, layout, level): the layout's entry (nil for nil), or an error naming the known ones.
function M.checkLayout(fname, layout, level)
   if layout == nil then return nil end
   local l = M.LAYOUTS[layout]
   if not l then
      error(("%s: layout must be \"NCHW\", \"NHWC\", \"NHW\" or \"NC\" (or nil: as stored), got %s"):format(
         fname, type(layout) == "string" and ("\"" .. layout .. "\"") or tostring(layout)), level + 1)
   end
   return l
end

--- luaShape(fname, where, layout, stored, level): the shape x has in Lua for an array stored with
--- shape `stored` in that layout (errors on a wrong rank; `where` names the file and array).
function M.luaShape(fname, where, layout, stored, level)
   if #stored < 1 then
      error(("%s: %s is a scalar; expected an array with the examples along its first dim"):format(fname, where),
            level + 1)
   end
   local l = M.LAYOUTS[layout or ""]
   if not l then return {table.unpack(stored)} end
   if #stored ~= l.rank then
      error(("%s: %s has shape %s (%d dims); layout %s expects %d dims %s"):format(fname, where, shape_str(stored),
         #stored, layout, l.rank, l.stored), level + 1)
   end
   if l.perm then return {stored[1], stored[4], stored[2], stored[3]} end
   if l.grey then return {stored[1], 1, stored[2], stored[3]} end
   return {table.unpack(stored)}
end

--- toLua(t, layout): rows t (examples first) in the stored layout -> the Lua shape, contiguous.
function M.toLua(t, layout)
   local l = M.LAYOUTS[layout or ""]
   if l and l.perm then return t:permute(l.perm):contiguous() end
   if l and l.grey then return t:contiguous():view(t:size(1), 1, t:size(2), t:size(3)) end
   return t
end

local MAX_LABEL = 2 ^ 31 - 1

--- labels(fname, where, y, numClasses, level): y (an integer tensor of 0-based class ids, 1-D)
--- checked and turned into i64 1..C; returns it and C (numClasses, or the largest label + 1).
function M.labels(fname, where, y, numClasses, level)
   if y:dim() ~= 1 then
      error(("%s: %s has shape %s; labels must be 1-D (one class id per example)"):format(fname, where,
         shape_str(y:shape())), level + 1)
   end
   if numClasses ~= nil and (math.type(numClasses) ~= "integer" or numClasses < 1) then
      error(("%s: numClasses must be an integer >= 1, got %s"):format(fname, tostring(numClasses)), level + 1)
   end
   y = y:long()
   local n = y:size(1)
   if n == 0 then return y, numClasses or 0 end
   local lo, hi = y:min():item(), y:max():item()
   if lo < 0 then
      error(("%s: %s has a negative label %d (example %d); labels must be 0-based class ids >= 0"):format(fname, where,
         lo, y:argmin():item()), level + 1)
   end
   if hi > MAX_LABEL then
      error(("%s: %s has a label %d (example %d); labels must be 0-based class ids below 2^31"):format(fname, where,
         hi, y:argmax():item()), level + 1)
   end
   if numClasses and hi >= numClasses then
      error(("%s: %s has a label %d (example %d), but numClasses is %d (labels 0..%d)"):format(fname, where, hi,
         y:argmax():item(), numClasses, numClasses - 1), level + 1)
   end
   return y + 1, numClasses or hi + 1
end

return M
