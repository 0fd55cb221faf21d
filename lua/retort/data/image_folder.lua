-- retort.data.imageFolder{root = DIR, size = {H, W}, channels = 3}: a dataset of PNG and JPEG files,
-- one folder per class (torchvision's ImageFolder layout), decoded in C on demand.
--
--   local ds = retort.data.imageFolder{root = "pets", size = {64, 64}}   -- pets/cat/*.jpg, pets/dog/*.png
--   ds.classes       -- {"cat", "dog"}: the class folders, sorted in byte order; labels 1..#classes
--   ds.y             -- i64 (N), the labels; ds.files: the N paths relative to root, in example order
--   ds.shape         -- {N, channels, H, W}; ds.dtype "u8"
--   ds:read(idx)     -- u8 (#idx, channels, H, W): those examples decoded (idx i64, 1-based, any order)
--   ds:get(i), ds:size(), ds.numClasses, ds:fingerprint(n), ds.skipped
--   retort.data.Loader(ds, {batchSize = 64, shuffle = true, augment = {crop = 4, flip = true}})
--
-- Options: root (required), size (required: {H, W}, or one number for a square), channels (3, or 1
-- for grey), inMemory (false; true decodes every image once at construction and keeps them as x, an
-- ordinary in-memory dataset), skipBad (false; see below).
--
-- What is taken: every folder directly in root is a class (names starting with "." are hidden and
-- skipped; a file directly in root belongs to no class and is ignored). Inside a class folder, files
-- are found recursively (sub-folders are walked, symbolic links followed), and the files ending in
-- .png, .jpg or .jpeg in any case are its images; examples are ordered by class, then by their path
-- inside the class folder in byte order. Other files (.txt, .csv, hidden files) are ignored, with one
-- exception: files in another image format (.bmp .gif .webp .tif .tiff .ppm .pgm .pbm .pnm .tga)
-- are an error naming them (retort decodes PNG and JPEG only, and silently training on part of a
-- folder is worse than stopping), unless skipBad is set, which skips them with the bad files.
-- A root that is missing or holds no class folder, and a class folder without images, are errors.
--
-- Decoding (core/src/image.c, image_resize.c; rules in core/include/retort/image.h): the format is
-- read from the file's first bytes, not its extension. Each image is converted to `channels` as PIL's
-- Image.open(f).convert("L" or "RGB") does and resized to size with PIL's Image.BILINEAR filter
-- (antialiased when shrinking), the same pixels as a torchvision pipeline built on PIL; an image
-- already of that size is not resampled. A batch is decoded on the OpenMP team, one image per loop
-- iteration (retort.setNumThreads sets the team).
--
-- Bad files: a file that cannot be decoded (truncated, corrupt, empty, not an image despite its
-- name) is an error naming it and what went wrong, raised by the read that meets it. With
-- skipBad = true every file is decoded once at construction (and kept when inMemory is set), so
-- that the examples are fixed before training: the bad ones are dropped, ds.skipped lists them
-- (paths relative to root), and one warning goes to stderr with the count and the first names.
-- That probe costs one full decoding pass (tests/bench/bench_image_folder.lua measures it).
--
-- Fingerprint: fingerprint(n) equals core.fingerprint(x, y) of the first n examples as decoded
-- ((n, C, H, W) u8 pixels and the i64 labels), so a soft-target cache built over the folder also
-- opens with inMemory = true, with any other dataset holding the same pixels, and is refused after
-- a change of size, channels, file contents or labels. Without inMemory computing it decodes the
-- first n images once more, in blocks (the Loader computes it once; only caches ask for it).
local core = require "retort.core"
local options = require "retort.options"

local KNOWN = {root = true, size = true, channels = true, inMemory = true, skipBad = true}
local IMAGE_EXT = {png = true, jpg = true, jpeg = true}
local OTHER_IMAGE_EXT = {bmp = true, gif = true, webp = true, tif = true, tiff = true, ppm = true, pgm = true,
                         pbm = true, pnm = true, tga = true}
local BLOCK = 256           -- images decoded per call when probing or fingerprinting
local NAMES_SHOWN = 5       -- bad files named in the skipBad warning and in errors
local MAX_PIXELS = 178956970 -- RT_IMAGE_MAX_PIXELS (core/include/retort/image.h), PIL's limit

local ImageFolder = {}
ImageFolder.__index = ImageFolder
ImageFolder.__name = "retort.data.ImageFolder"

local function fail(msg, level) error("imageFolder: " .. msg, level + 1) end

local function extension(path) return (path:match("%.([^./]+)$") or ""):lower() end

-- "a, b, c (and 4 more)"
local function some(list, n)
   local shown = {}
   for i = 1, math.min(n or NAMES_SHOWN, #list) do shown[i] = list[i] end
   local s = table.concat(shown, ", ")
   if #list > #shown then s = s .. (" (and %d more)"):format(#list - #shown) end
   return s
end

function ImageFolder:size() return self.shape[1] end
ImageFolder.__len = ImageFolder.size

-- the paths of examples idx (i64 tensor, 1-based)
local function paths_of(self, idx)
   local n, list = self.shape[1], {}
   for k, i in ipairs(idx:totable()) do
      if math.type(i) ~= "integer" or i < 1 or i > n then
         error(("%s:read: index %s out of range 1..%d"):format(self.name, tostring(i), n), 3)
      end
      list[k] = self.paths[i]
   end
   return list
end

--- read(idx): u8 (#idx, C, H, W), the examples idx (i64 tensor, 1-based, any order, repeats allowed)
function ImageFolder:read(idx)
   if not core.isTensor(idx) or idx:dim() ~= 1 or idx:dtype() ~= "i64" then
      error(("%s:read: bad argument #1 (a 1-D i64 tensor of indices expected)"):format(self.name), 2)
   end
   if self.x then return self.x:indexSelect(1, idx) end
   local paths = paths_of(self, idx)
   local ok, x = pcall(core.decodeImages, paths, self.shape[3], self.shape[4], self.shape[2])
   if not ok then error(("%s: %s"):format(self.name, x), 2) end
   return x
end

--- get(i): the i-th image (u8 (C, H, W)) and its label (1..C)
function ImageFolder:get(i)
   local n = self.shape[1]
   if math.type(i) ~= "integer" or i < 1 or i > n then
      error(("%s:get: index %s out of range 1..%d"):format(self.name, tostring(i), n), 2)
   end
   local x = self:read(core.tensor({i}, "i64")):select(1, 1)
   return x, math.tointeger(self.y:get(i))
end

-- the examples start .. start + count - 1 decoded (strict)
local function block(self, start, count)
   if self.x then return self.x:narrow(1, start, count) end
   local paths = table.move(self.paths, start, start + count - 1, 1, {})
   local ok, x = pcall(core.decodeImages, paths, self.shape[3], self.shape[4], self.shape[2])
   if not ok then error(("%s: %s"):format(self.name, x), 3) end
   return x
end

--- fingerprint([n]): core.fingerprint(x, y) of the first n examples (default all) as decoded
function ImageFolder:fingerprint(n)
   local N = self.shape[1]
   n = n or N
   if math.type(n) ~= "integer" or n < 0 or n > N then
      error(("%s:fingerprint: n must be an integer in 0..%d, got %s"):format(self.name, N, tostring(n)), 2)
   end
   local fp = core.fingerprinter():header("u8", {n, self.shape[2], self.shape[3], self.shape[4]})
   for start = 1, n, BLOCK do
      fp:data(block(self, start, math.min(BLOCK, n - start + 1)))
   end
   return fp:add(self.y:narrow(1, 1, n)):hex()
end

function ImageFolder:__tostring()
   return ("%s: %d images of %d classes, u8 %s%s"):format(self.name, self.shape[1], #self.classes,
      table.concat(self.shape, "x", 2), self.x and ", in memory" or "")
end

-- opts.size -> H, W
local function check_size(size)
   if math.type(size) == "integer" then size = {size, size} end
   if type(size) ~= "table" or #size ~= 2 or math.type(size[1]) ~= "integer" or math.type(size[2]) ~= "integer"
      or size[1] < 1 or size[2] < 1 then
      fail("size must be {H, W} (two integers >= 1, the size every image is resized to) or one integer, got "
           .. (type(size) == "table" and "{" .. table.concat(size, ", ") .. "}" or tostring(size)), 3)
   end
   if size[1] * size[2] > MAX_PIXELS then
      fail(("size {%d, %d} is more than the %d pixels an image may have"):format(size[1], size[2], MAX_PIXELS), 3)
   end
   return size[1], size[2]
end

-- the class folders and their images: classes, paths, files (relative), labels, unsupported
local function scan(root)
   local classes, err = core.listSubdirs(root)
   if not classes then fail(err, 3) end
   if #classes == 0 then
      local loose = core.listFiles(root) or {}
      fail(("%s has no class folders (expected %s/<class>/<image>, one folder per class; %s)"):format(root, root,
         #loose > 0 and ("it holds %d files outside any folder, e.g. %s"):format(#loose, loose[1])
         or "it is empty"), 3)
   end
   local paths, files, labels, unsupported, empty = {}, {}, {}, {}, {}
   for c, name in ipairs(classes) do
      local dir = root .. "/" .. name
      local list, lerr = core.listFiles(dir)
      if not list then fail(lerr, 3) end
      local found, others = 0, {}
      for _, rel in ipairs(list) do
         local ext = extension(rel)
         if IMAGE_EXT[ext] then
            found = found + 1
            paths[#paths + 1] = dir .. "/" .. rel
            files[#files + 1] = name .. "/" .. rel
            labels[#labels + 1] = c
         else
            if OTHER_IMAGE_EXT[ext] then unsupported[#unsupported + 1] = name .. "/" .. rel end
            others[#others + 1] = rel
         end
      end
      if found == 0 then
         empty[#empty + 1] = #others > 0 and ("%s (%d other files, e.g. %s)"):format(name, #others, others[1])
                             or (name .. " (empty)")
      end
   end
   if #empty > 0 then
      fail(("%d of the %d class folders under %s hold no .png/.jpg/.jpeg image: %s"):format(#empty, #classes, root,
         some(empty)), 3)
   end
   return classes, paths, files, labels, unsupported
end

-- the reason part of a core message "image_decode: <path>: <reason>"
local function reason(msg, path)
   local at = msg:find(path, 1, true)
   return at and msg:sub(at + #path):gsub("^: ", "") or msg
end

return function(opts)
   if type(opts) ~= "table" then fail("bad argument #1 (table of options expected, got " .. type(opts) .. ")", 2) end
   options.check("imageFolder", opts, KNOWN, 2)
   local root = opts.root
   if type(root) ~= "string" or root == "" then fail("root (the folder of class folders) is required", 2) end
   root = root:gsub("(.)/+$", "%1")
   local h, w = check_size(opts.size)
   local channels = opts.channels or 3
   if channels ~= 1 and channels ~= 3 then
      fail(("channels must be 1 (grey) or 3 (RGB), got %s"):format(tostring(channels)), 2)
   end
   local classes, paths, files, labels, unsupported = scan(root)
   local skipped = {}
   if #unsupported > 0 and not opts.skipBad then
      fail(("%d files under %s are in an image format retort does not decode (PNG and JPEG only): %s; "
         .. "convert them, or pass skipBad = true to leave them out"):format(#unsupported, root, some(unsupported)), 2)
   end
   for _, f in ipairs(unsupported) do skipped[#skipped + 1] = {file = f, reason = "not PNG or JPEG (by its name)"} end

   local x
   if opts.skipBad or opts.inMemory then
      -- decode everything once, in blocks: bad files found now (skipBad) and/or the pixels kept (inMemory,
      -- copied into one tensor as they come: no second copy of the dataset at the end)
      local keep = {}
      if opts.inMemory then x = core.empty(#paths, channels, h, w, "u8") end
      for start = 1, #paths, BLOCK do
         local part = table.move(paths, start, math.min(start + BLOCK - 1, #paths), 1, {})
         local ok, xb, report = pcall(core.decodeImages, part, h, w, channels, opts.skipBad and true or false)
         if not ok then fail(xb, 2) end
         local bad, rows = {}, {}
         for k, i in ipairs(report and report.indices or {}) do
            bad[i] = true
            local j = start + i - 1
            skipped[#skipped + 1] = {file = files[j], reason = k <= #report.messages
                                     and reason(report.messages[k], paths[j]) or nil}
         end
         for i = 1, #part do
            if not bad[i] then keep[#keep + 1], rows[#rows + 1] = start + i - 1, i end
         end
         if x and #rows > 0 then
            if #rows < #part then xb = xb:indexSelect(1, core.tensor(rows, "i64")) end
            x:narrow(1, #keep - #rows + 1, #rows):copy_(xb)
         end
      end
      if #keep < #paths then
         local p2, f2, l2 = {}, {}, {}
         for k, j in ipairs(keep) do p2[k], f2[k], l2[k] = paths[j], files[j], labels[j] end
         paths, files, labels = p2, f2, l2
         if x and #keep > 0 then x = x:narrow(1, 1, #keep) end -- the bad rows' space stays unused
      end
   end
   if #skipped > 0 then
      local names = {}
      for i, s in ipairs(skipped) do names[i] = s.reason and (s.file .. " (" .. s.reason .. ")") or s.file end
      io.stderr:write(("imageFolder: skipped %d of %d files under %s that could not be decoded: %s\n"):format(
         #skipped, #paths + #skipped, root, some(names)))
      io.stderr:flush()
   end
   local empty = {}
   local count = {}
   for _, c in ipairs(labels) do count[c] = (count[c] or 0) + 1 end
   for c, name in ipairs(classes) do if not count[c] then empty[#empty + 1] = name end end
   if #empty > 0 then
      fail(("after skipping bad files, %d classes under %s have no image left: %s"):format(#empty, root,
         some(empty)), 2)
   end
   local skippedFiles = {}
   for i, s in ipairs(skipped) do skippedFiles[i] = s.file end
   local classToIndex = {}
   for c, name in ipairs(classes) do classToIndex[name] = c end
   local self = setmetatable({
      name = ("imageFolder(%s)"):format(root), root = root, classes = classes, classToIndex = classToIndex,
      numClasses = #classes, paths = paths, files = files, skipped = skippedFiles,
      y = core.tensor(labels, "i64"), shape = {#paths, channels, h, w}, dtype = "u8", x = x,
   }, ImageFolder)
   return self
end
