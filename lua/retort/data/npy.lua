-- retort.data.npy{x = "x.npy", y = "y.npy"}: a dataset from two NumPy .npy files, held in memory.
--
--   local ds = retort.data.npy{x = "train_x.npy", y = "train_y.npy", layout = "NHWC"}
--   ds.x, ds.y           -- x keeps the file's dtype (u8 / f32 / f64 / i64; other integers arrive as
--                        -- i64); y i64 (N), classes 1..C (the file's 0-based ids + 1)
--   ds:size(), ds:get(i) -- the i-th example: input, label (1-based)
--   ds.numClasses        -- the numClasses option, else the largest label + 1
--
-- Options: x, y (paths, required), layout (nil: as stored; "NCHW", "NHWC" (transposed to NCHW once,
-- when read), "NHW" (seen as (N,1,H,W)), "NC"; see arrays.lua), numClasses (checked against the labels).
-- The files are parsed by core/src/npy.c (rt_npy_read): C-order arrays only, little-endian; every
-- malformed file is an error naming the file and what was expected. Labels must be integers
-- (any width, signed or unsigned) in 0..2^31-1; x and y must hold as many examples.
-- A Loader scales u8 inputs to [0, 1]; float inputs are used as they are.
local core = require "retort.core"
local options = require "retort.options"
local arrays = require "retort.data.arrays"
local datasets = require "retort.data.datasets"

local KNOWN = {x = true, y = true, layout = true, numClasses = true}

local function read(path)
   local ok, t, descr = pcall(core.readNpy, path)
   if not ok then error("npy: " .. tostring(t), 3) end
   return t, descr
end

local function basename(p) return p:match("([^/]*)$") end

return function(opts)
   if type(opts) ~= "table" then
      error("npy: bad argument #1 (table of options expected, got " .. type(opts) .. ")", 2)
   end
   options.check("npy", opts, KNOWN, 2)
   for _, k in ipairs{"x", "y"} do
      if type(opts[k]) ~= "string" then
         error(("npy: option '%s' must be the path of a .npy file, got %s"):format(k, type(opts[k])), 2)
      end
   end
   local layout = opts.layout
   arrays.checkLayout("npy", layout, 2)
   local x, xdescr = read(opts.x)
   local y, ydescr = read(opts.y)
   local shape = arrays.luaShape("npy", opts.x, layout, x:shape(), 2)
   local kind = ydescr:sub(2, 2)
   if kind ~= "i" and kind ~= "u" then
      error(("npy: %s holds '%s' values; labels must be integers (0-based class ids; save "
         .. "labels.astype('int64'))"):format(opts.y, ydescr), 2)
   end
   if y:dim() == 1 and y:size(1) ~= shape[1] then
      error(("npy: %s has %d examples but %s has %d labels"):format(opts.x, shape[1], opts.y, y:size(1)), 2)
   end
   local labels, classes = arrays.labels("npy", opts.y, y, opts.numClasses, 2)
   x = arrays.toLua(x, layout)
   local d = datasets.tensorDataset(x, labels, ("npy(%s)"):format(basename(opts.x)))
   d.numClasses, d.files, d.layout, d.descr = classes, {opts.x, opts.y}, layout, {x = xdescr, y = ydescr}
   return d
end
