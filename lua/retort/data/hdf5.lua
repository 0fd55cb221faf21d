-- retort.data.hdf5{path = "train.h5", x = "/images", y = "/labels", layout = "NHWC"}: a dataset
-- read from an HDF5 file (as h5py writes it) in row blocks, on demand: a file larger than memory
-- still trains, because only the labels are held.
--
--   local ds = retort.data.hdf5{path = "train.h5", layout = "NHWC"}
--   ds.shape, ds.dtype   -- {N, C, H, W} (always NCHW in Lua), "u8" | "f32" | "f64"
--   ds.y                 -- i64 (N), classes 1..C (the file's 0-based ids + 1)
--   ds:read(idx)         -- the inputs of examples idx (i64, 1-based, any order, repeats allowed)
--   ds:get(i), ds:size(), ds.numClasses, ds:fingerprint(n), ds:close()
--
-- Options: path (required), x ("/images"), y ("/labels"), layout (nil: as stored; "NCHW", "NHWC",
-- "NHW", "NC": see arrays.lua; a 2-D (N, D) x is read as vectors), numClasses (default: the
-- largest label + 1), inMemory (false; true reads x whole once and gives an ordinary in-memory
-- dataset with x and y, as retort.data.tensorDataset).
--
-- Inputs: uint8 (-> u8), float16/float32 (-> f32) and float64 (-> f64) arrays; labels: a 1-D array
-- of any integer type. Refused, with the file and the dataset named: a missing dataset (the root's
-- members are listed), a wrong rank for the layout, another element type, non-integer labels,
-- labels outside 0..2^31-1, x and y of different lengths, and data kept outside the file (external
-- raw-data files, or a virtual dataset): retort reads only what is stored in the file itself.
--
-- Reading (read): the rows asked are sorted into runs of consecutive rows; the runs that share
-- chunks are read together, one H5Dread per group (core rt_h5_read_index: each chunk is
-- decompressed once per batch; contiguous data is one read), then the rows are put back in the
-- order asked and an NHWC file's rows are transposed to NCHW. A shuffled batch touches about one
-- chunk per row, so files chunked a few whole rows at a time (h5py chunks=(k, ...), small k) or
-- stored contiguously suit shuffled training; h5py's chunks=True cuts rows apart and is slow
-- (figures in data/README.md).
--
-- Fingerprint: fingerprint(n) equals core.fingerprint(x, y) of the first n examples held in memory
-- (x in NCHW with the dtype above, y the i64 1..C labels), so a soft-target cache built over this
-- dataset also opens with the same data loaded by inMemory = true or by retort.data.npy. It
-- streams the file in blocks of about 4 MiB (one pass over the first n rows) and is computed once
-- per loader (Loader:fingerprint caches it).
--
-- The file stays open (read-only) while the dataset lives; close() releases it early.
local core = require "retort.core"
local options = require "retort.options"
local arrays = require "retort.data.arrays"
local datasets = require "retort.data.datasets"

local KNOWN = {path = true, x = true, y = true, layout = true, numClasses = true, inMemory = true}
local INPUT_DTYPES = {uint8 = "u8", float16 = "f32", float32 = "f32", float64 = "f64"}

local H5Dataset = {}
H5Dataset.__index = H5Dataset
H5Dataset.__name = "retort.data.HDF5Dataset"
H5Dataset.fingerprintBlockBytes = 4 * 1024 * 1024 -- the rows fingerprint(n) reads at a time (whole chunks)

local function fail(msg, level) error("hdf5: " .. msg, level + 1) end

local function root_members(f)
   local names = {}
   for _, m in ipairs(f:list("/")) do names[#names + 1] = "/" .. m.name end
   return #names > 0 and table.concat(names, ", ") or "nothing"
end

-- the storage of dataset `name` (role: "x" or "y"), refusing what retort does not read
local function storage(f, path, name, role, level)
   local kind = f:kind(name)
   if kind == nil then
      fail(("%s has no dataset %s (option %s; the file's root holds %s)"):format(path, name, role, root_members(f)),
           level + 1)
   elseif kind ~= "dataset" then
      fail(("%s in %s is a %s, not a dataset (option %s)"):format(name, path, kind, role), level + 1)
   end
   local s = f:storage(name)
   if s.external > 0 then
      fail(("%s in %s keeps its data in %d external file(s); retort reads only data stored inside the HDF5 file "
            .. "(rewrite it without external=)"):format(name, path, s.external), level + 1)
   end
   if s.layout == "virtual" then
      fail(("%s in %s is a virtual dataset (its data lives in other files); retort reads only data stored inside "
            .. "the HDF5 file (copy it into a real dataset)"):format(name, path), level + 1)
   end
   return s
end

-- closes f when the scope is left by an error (the dataset keeps it open otherwise)
local function close_on_error(f)
   return setmetatable({}, {__close = function(_, err) if err ~= nil then f:abort() end end})
end

--- size(), #ds: the number of examples.
function H5Dataset:size() return self.shape[1] end
H5Dataset.__len = H5Dataset.size

local function check_open(self, fn)
   if not self.file:isOpen() then error(("%s:%s: the dataset was closed"):format(self.name, fn), 3) end
end

--- read(idx): the inputs of examples idx (i64 tensor, 1-based, any order, repeats allowed) as a new
--- contiguous CPU tensor (#idx, C, H, W) of dtype self.dtype.
function H5Dataset:read(idx)
   check_open(self, "read")
   if not core.isTensor(idx) or idx:dtype() ~= "i64" or idx:dim() ~= 1 then
      error(("%s:read: bad argument #1 (a 1-D i64 tensor of example indices expected)"):format(self.name), 2)
   end
   local ok, t = pcall(self.file.readIndex, self.file, self.xName, idx)
   if not ok then error(("%s:read: %s"):format(self.name, tostring(t)), 2) end
   return arrays.toLua(t, self.layout)
end

--- get(i): the i-th example (1-based): its input (C, H, W) and its label (1..C).
function H5Dataset:get(i)
   local n = self:size()
   if math.type(i) ~= "integer" or i < 1 or i > n then
      error(("%s:get: index %s out of range 1..%d"):format(self.name, tostring(i), n), 2)
   end
   return self:read(core.tensor({i}, "i64")):select(1, 1), math.tointeger(self.y:get(i))
end

--- fingerprint([n]): core.fingerprint(x, y) of the first n examples (default all) as they would be
--- held in memory, computed from the file in blocks of rows.
function H5Dataset:fingerprint(n)
   local N = self:size()
   n = n or N
   if math.type(n) ~= "integer" or n < 0 or n > N then
      error(("%s:fingerprint: n must be an integer in 0..%d, got %s"):format(self.name, N, tostring(n)), 2)
   end
   check_open(self, "fingerprint")
   local shape = {table.unpack(self.shape)}
   shape[1] = n
   local fp = core.fingerprinter():header(self.dtype, shape)
   local row_bytes = ({u8 = 1, f32 = 4, f64 = 8})[self.dtype]
   for i = 2, #shape do row_bytes = row_bytes * shape[i] end
   local rows = math.max(1, self.fingerprintBlockBytes // math.max(row_bytes, 1))
   local c = self.chunk and self.chunk[1]
   if c and rows > c then rows = rows // c * c end -- whole chunks: each is decompressed once
   for first = 1, n, rows do
      local k = math.min(rows, n - first + 1)
      fp:data(arrays.toLua(self.file:readRows(self.xName, first, k), self.layout))
   end
   return fp:add(n == N and self.y or self.y:narrow(1, 1, n)):hex()
end

--- close(): releases the file; the dataset cannot be read afterwards.
function H5Dataset:close()
   if self.file:isOpen() then self.file:abort() end -- read-only: nothing to commit
end

function H5Dataset:__tostring()
   return ("%s: %d examples, x %s (%s%s), y %d labels (%d classes)"):format(self.name, self:size(),
      table.concat(self.shape, "x", 2), self.dtype, self.layout and (", " .. self.layout .. " in the file") or "",
      self.y:size(1), self.numClasses)
end

return function(opts)
   if type(opts) ~= "table" then
      error("hdf5: bad argument #1 (table of options expected, got " .. type(opts) .. ")", 2)
   end
   options.check("hdf5", opts, KNOWN, 2)
   local path = opts.path
   if type(path) ~= "string" then
      error("hdf5: option 'path' must be the path of an HDF5 file, got " .. type(path), 2)
   end
   for _, k in ipairs{"x", "y"} do
      local v = opts[k]
      if v ~= nil and (type(v) ~= "string" or v:sub(1, 1) ~= "/") then
         error(("hdf5: option '%s' must be the absolute name of a dataset in the file (e.g. \"/images\"), got %s")
               :format(k, tostring(v)), 2)
      end
   end
   local layout = opts.layout
   arrays.checkLayout("hdf5", layout, 2)
   local ok, f = pcall(core.h5Open, path)
   if not ok then fail(tostring(f), 2) end
   local guard <close> = close_on_error(f) -- luacheck: ignore 211 (to-be-closed)
   local xname, yname = opts.x or "/images", opts.y or "/labels"
   local sx = storage(f, path, xname, "x", 2)
   local sy = storage(f, path, yname, "y", 2)
   local dtype = INPUT_DTYPES[sx.type]
   if not dtype then
      fail(("%s in %s holds %s values; expected uint8, float32 or float64 inputs (float16 is read as float32)")
           :format(xname, path, sx.type), 2)
   end
   if not sy.type:match("^u?int%d+$") then
      fail(("%s in %s holds %s values; labels must be integers (0-based class ids; write labels.astype('int64'))")
           :format(yname, path, sy.type), 2)
   end
   local shape = arrays.luaShape("hdf5", xname .. " in " .. path, layout, sx.shape, 2)
   if #sy.shape ~= 1 then
      fail(("%s in %s has shape %s; labels must be 1-D (one class id per example)"):format(yname, path,
         arrays.shapeString(sy.shape)), 2)
   end
   if sy.shape[1] ~= shape[1] then
      fail(("%s in %s has %d examples but %s has %d labels"):format(xname, path, shape[1], yname, sy.shape[1]), 2)
   end
   local y, classes = arrays.labels("hdf5", yname .. " in " .. path, f:read(yname), opts.numClasses, 2)
   local name = ("hdf5(%s:%s)"):format(path:match("([^/]*)$"), xname)
   if opts.inMemory then
      local x = arrays.toLua(f:read(xname), layout)
      f:abort() -- read-only: closing commits nothing
      local d = datasets.tensorDataset(x, y, name)
      d.numClasses, d.path, d.files, d.layout = classes, path, {path}, layout
      return d
   end
   return setmetatable({name = name, path = path, files = {path}, xName = xname, yName = yname, layout = layout,
                        shape = shape, dtype = dtype, y = y, numClasses = classes, chunk = sx.chunk, file = f},
                       H5Dataset)
end
