-- Checkpoints: retort.save(path, tbl) / retort.load(path) (DESIGN.md §5). Plain HDF5, readable
-- with h5py and h5dump, written atomically (a temporary file renamed over `path` once complete).
--
--   retort.save("ckpt.h5", {model = net, optim = opt, epoch = 3, rng = retort.getRngState(),
--                           options = {lr = 0.1, arch = "mlp", nesterov = true}})
--   local ck = retort.load("ckpt.h5")
--   net:loadStateDict(ck.model); opt:loadStateDict(ck.optim); retort.setRngState(ck.rng)
--
-- What goes where in the file:
--   tensor                 -> a dataset (any dtype, shape kept; large ones chunked + compressed)
--   table                  -> a group; its number/boolean/string fields are attributes of the group
--                             (integer -> int64, float -> double, boolean -> h5py-style bool enum,
--                             string -> UTF-8 string), its tensor and table fields are members
--   array-like table       -> a group with attribute retort.kind = "list", members/attributes named
--                             "1", "2", ... (any integer keys: sparse arrays round-trip too)
--   object with stateDict  -> v:stateDict() is stored as a group with attribute retort.kind =
--   (modules, optimizers)     "stateDict" and retort.class = the object's class name. A module's flat
--                             state (path -> tensor, "fc1.weight") is stored as nested groups
--                             (/model/fc1/weight, retort.layout = "dotted") and comes back flat.
--   root                   -> attributes format = "retort.checkpoint", version = 1
--
-- load() returns plain tables: a saved module or optimizer comes back as its state table, which
-- the user gives to model:loadStateDict(ck.model) / opt:loadStateDict(ck.optim). Integers come
-- back as integers and floats as floats (math.type is kept); tensors come back on the CPU.
--
-- Reserved names: keys starting with "retort." (anywhere), and "format"/"version" at the root.
-- Keys must be strings (not containing "/", not "." or "..") or integers; one table may not mix
-- the two. Strings may not contain zero bytes. Anything else (functions, userdata other than
-- tensors, cycles) is an error that names the key path.
--
-- Trust (load): the file is HDF5 with checksums on all metadata and on every chunk of data (small
-- datasets sit inside their checksummed object headers; core/src/h5.c), so a changed byte is "file is
-- corrupt", never a silent load. Files of retort 0.1 (no checksums, variable-length strings) still load
-- when intact; their attribute messages and string heap are verified before HDF5 reads them. A
-- checkpoint is a tree: a member that is not a group or a dataset, a soft or external link, or a second
-- name for an object already read (a cycle, or a shared object) is refused, as is nesting deeper than
-- 64 groups; every object is read once, so loading is linear in the file. Errors name the file and the
-- object, and control characters from the file are escaped (retort.printable).
--
-- Writing a file into a full filesystem fails with the OS error, keeps the previous file, and removes
-- the temporary one: "retort.save: cannot write ckpt.h5: No space left on device (...)".
local core = require "retort.core"
local printable = require "retort.printable"

local M = {}

M.FORMAT = "retort.checkpoint"
M.VERSION = 1

local KIND, CLASS, LAYOUT = "retort.kind", "retort.class", "retort.layout"

local function child_path(group, name)
   return group == "/" and ("/" .. name) or (group .. "/" .. name)
end

local function display(path) return path == "/" and "the root" or path end

local function check_name(name, where)
   if name == "" or name == "." or name == ".." or name:find("/", 1, true) then
      error(("retort.save: key '%s' in %s cannot be stored (keys may not be empty, '.', '..' or contain '/')")
         :format(name, display(where)), 0)
   end
   if name:sub(1, 7) == "retort." then
      error(("retort.save: key '%s' in %s is reserved (names starting with 'retort.' are used by the format)")
         :format(name, display(where)), 0)
   end
end

local function class_name(v)
   local mt = getmetatable(v)
   local name = (type(mt) == "table" and rawget(mt, "__name")) or v.__name
   if type(name) ~= "string" and type(v.typename) == "function" then
      local ok, n = pcall(v.typename, v)
      if ok then name = n end
   end
   return type(name) == "string" and name or "object"
end

-- Sorted keys of t, all strings or all integers; errors on anything else.
local function table_keys(t, where)
   local strs, ints = {}, {}
   for k in pairs(t) do
      if type(k) == "string" then
         strs[#strs + 1] = k
      elseif math.type(k) == "integer" then
         ints[#ints + 1] = k
      else
         error(("retort.save: %s has a key of type %s (%s); keys must be strings or integers")
            :format(display(where), math.type(k) or type(k), tostring(k)), 0)
      end
   end
   if #strs > 0 and #ints > 0 then
      error(("retort.save: %s mixes string keys ('%s') and integer keys (%d); use one kind per table")
         :format(display(where), strs[1], ints[1]), 0)
   end
   table.sort(strs)
   table.sort(ints)
   if #ints > 0 then return ints, true end
   return strs, false
end

local write_table

-- An object's state: a flat path -> tensor table (a module's) becomes nested groups split at the
-- dots; anything else (an optimizer's nested state) is stored like any table.
local function write_state(f, path, obj, state, seen)
   if type(state) ~= "table" then
      error(("retort.save: %s:stateDict() returned a %s, not a table"):format(path, type(state)), 0)
   end
   f:createGroup(path)
   f:setAttr(path, KIND, "stateDict")
   f:setAttr(path, CLASS, class_name(obj))
   local flat = next(state) ~= nil
   for k, x in pairs(state) do
      if type(k) ~= "string" or not core.isTensor(x) then
         flat = false
         break
      end
   end
   if not flat then return write_table(f, path, state, seen) end
   f:setAttr(path, LAYOUT, "dotted")
   local keys = {}
   for k in pairs(state) do keys[#keys + 1] = k end
   table.sort(keys)
   local taken = {}
   for _, k in ipairs(keys) do
      local parts = {}
      for part in k:gmatch("[^.]+") do parts[#parts + 1] = part end
      if #parts == 0 or table.concat(parts, ".") ~= k then
         error(("retort.save: state key '%s' of %s has an empty component"):format(k, path), 0)
      end
      for i, part in ipairs(parts) do
         check_name(part, path)
         local prefix = table.concat(parts, ".", 1, i)
         local want = i == #parts and "tensor" or "group"
         if taken[prefix] and (taken[prefix] ~= want or want == "tensor") then
            error(("retort.save: state keys of %s clash at '%s' (a tensor and a prefix of another key)")
               :format(path, prefix), 0)
         end
         taken[prefix] = want
      end
      f:write(path .. "/" .. table.concat(parts, "/"), state[k]:detach())
   end
end

local function write_value(f, group, name, v, seen)
   local path = child_path(group, name)
   local tv = type(v)
   if core.isTensor(v) then
      f:write(path, v:detach())
   elseif tv == "number" then
      f:setAttr(group, name, v)
   elseif tv == "boolean" or tv == "string" then
      if tv == "string" and v:find("\0", 1, true) then
         error(("retort.save: string %s contains a zero byte (not storable as an HDF5 string)"):format(path), 0)
      end
      f:setAttr(group, name, v)
   elseif tv == "table" or tv == "userdata" then
      local sd
      if tv == "table" then
         sd = v.stateDict
      else
         local ok, m = pcall(function() return v.stateDict end)
         sd = ok and m or nil
      end
      if type(sd) == "function" then
         write_state(f, path, v, sd(v), seen)
      elseif tv == "table" then
         f:createGroup(path)
         write_table(f, path, v, seen)
      else
         error(("retort.save: %s is a userdata without a stateDict() method"):format(path), 0)
      end
   else
      error(("retort.save: %s is a %s; checkpoints hold tensors, tables, numbers, booleans and strings")
         :format(path, tv), 0)
   end
end

function write_table(f, group, t, seen)
   if seen[t] then
      error(("retort.save: %s refers back to a table that contains it (a cycle)"):format(display(group)), 0)
   end
   seen[t] = true
   local keys, ints = table_keys(t, group)
   if ints then f:setAttr(group, KIND, "list") end
   for _, k in ipairs(keys) do
      local name = ints and tostring(k) or k
      if not ints then check_name(name, group) end
      if group == "/" and (name == "format" or name == "version") then
         error(("retort.save: key '%s' is reserved at the checkpoint root"):format(name), 0)
      end
      write_value(f, group, name, t[k], seen)
   end
   seen[t] = nil
end

-- A message of the core's HDF5 layer without its function prefix ("h5_close: ").
local function core_message(err) return (tostring(err):gsub("^h5_[%w_]+: ", "")) end

--- save(path, tbl): writes tbl to an HDF5 checkpoint at path (atomically).
function M.save(path, tbl)
   if type(path) ~= "string" then
      error("retort.save: bad argument #1 (path string expected, got " .. type(path) .. ")", 2)
   end
   if type(tbl) ~= "table" then error("retort.save: bad argument #2 (table expected, got " .. type(tbl) .. ")", 2) end
   local okc, f = pcall(core.h5Create, path)
   if not okc then error("retort.save: " .. core_message(f), 2) end
   local ok, err = pcall(function()
      f:setAttr("/", "format", M.FORMAT)
      f:setAttr("/", "version", M.VERSION)
      write_table(f, "/", tbl, {})
   end)
   if not ok then
      f:abort()
      if tostring(err):find("retort.save: ", 1, true) then error(err, 2) end
      error("retort.save: " .. core_message(err), 2)
   end
   local okw, werr = pcall(f.close, f)
   if not okw then error("retort.save: " .. core_message(werr), 2) end
end

local read_group

-- The members of group path, each checked: a hard link to a group or dataset not read before (seen: the
-- objects read so far, by id, with the path they were read at).
local function members(r, path)
   local out = {}
   for _, m in ipairs(r.f:list(path)) do
      local p = child_path(path, m.name)
      if m.link ~= "hard" then
         r.fail("%s is a%s link; a checkpoint holds only groups and datasets", p,
                m.link == "soft" and " soft" or m.link == "external" and "n external" or " user-defined")
      elseif m.kind ~= "group" and m.kind ~= "dataset" then
         r.fail("%s is neither a group nor a dataset (a checkpoint holds only groups and datasets)", p)
      elseif r.seen[m.id] then
         r.fail("%s is a second name for %s (a hard link: %s); a checkpoint is a tree", p, r.seen[m.id],
                r.within(r.seen[m.id], p) and "a cycle" or "a shared object")
      end
      r.seen[m.id] = p
      out[#out + 1] = {name = m.name, kind = m.kind, path = p}
   end
   return out
end

local function read_into(r, path, out, flatten_prefix)
   for _, m in ipairs(members(r, path)) do
      if m.kind == "dataset" then
         out[flatten_prefix .. m.name] = r.f:read(m.path)
      else
         read_into(r, m.path, out, flatten_prefix .. m.name .. ".")
      end
   end
end

function read_group(r, path)
   local attrs = r.f:attrs(path)
   local kind = attrs[KIND]
   local out = {}
   if kind == "stateDict" and attrs[LAYOUT] == "dotted" then
      read_into(r, path, out, "")
      return out
   end
   local list = kind == "list"
   local function key(name)
      if list then
         local k = math.tointeger(tonumber(name))
         if not k then r.fail("%s is a list but has a member named '%s'", path, name) end
         return k
      end
      return name
   end
   for name, v in pairs(attrs) do
      if name:sub(1, 7) ~= "retort." and not (path == "/" and (name == "format" or name == "version")) then
         out[key(name)] = v
      end
   end
   for _, m in ipairs(members(r, path)) do
      if m.kind == "dataset" then
         out[key(m.name)] = r.f:read(m.path)
      else
         out[key(m.name)] = read_group(r, m.path)
      end
   end
   return out
end

-- A reader's state: the file, the objects read so far (id -> path), and its error function.
local function reader(f, path)
   local r = {f = f, seen = {}}
   function r.fail(fmt, ...)
      local args = table.pack(...)
      for i = 1, args.n do args[i] = printable.escape(args[i]) end
      error(("retort.load: %s: " .. fmt):format(printable.escape(path), table.unpack(args, 1, args.n)), 0)
   end
   function r.within(ancestor, p) return ancestor == "/" or p:sub(1, #ancestor + 1) == ancestor .. "/" end
   return r
end

--- load(path): the table saved by save(path, tbl), with modules/optimizers as their state tables.
function M.load(path)
   if type(path) ~= "string" then
      error("retort.load: bad argument #1 (path string expected, got " .. type(path) .. ")", 2)
   end
   local ok, f = pcall(core.h5Open, path)
   if not ok then error("retort.load: " .. core_message(f), 2) end
   local ok2, res = pcall(function()
      local format, version = f:getAttr("/", "format"), f:getAttr("/", "version")
      if format ~= M.FORMAT then
         error(("retort.load: %s is an HDF5 file but not a retort checkpoint (no format=\"%s\" attribute%s)")
            :format(path, M.FORMAT, format and (", format is \"" .. printable.escape(format) .. "\"") or ""), 0)
      end
      if math.type(version) ~= "integer" then
         error(("retort.load: %s has no integer version attribute"):format(path), 0)
      end
      if version > M.VERSION then
         error(("retort.load: %s is a checkpoint of version %d, written by a newer retort; this one reads version %d")
            :format(path, version, M.VERSION), 0)
      end
      if version < 1 then
         error(("retort.load: %s: file is corrupt: its version attribute is %d (versions start at 1)")
            :format(path, version), 0)
      end
      local r = reader(f, path)
      r.seen[f:id("/")] = "/"
      return read_group(r, "/")
   end)
   f:abort() -- read-only: just closes
   if not ok2 then
      res = tostring(res)
      error(res:find("retort.load: ", 1, true) == 1 and res or ("retort.load: " .. core_message(res)), 2)
   end
   return res
end

--- info(path): format, version and the top-level keys, without reading tensors.
function M.info(path)
   if type(path) ~= "string" then
      error("retort.checkpoint.info: bad argument #1 (path string expected, got " .. type(path) .. ")", 2)
   end
   local ok, f = pcall(core.h5Open, path)
   if not ok then error("retort.checkpoint.info: " .. core_message(f), 2) end
   local ok2, r = pcall(function()
      local r = {format = f:getAttr("/", "format"), version = f:getAttr("/", "version"), keys = {}}
      for _, m in ipairs(f:list("/")) do r.keys[#r.keys + 1] = m.name end
      return r
   end)
   f:abort()
   if not ok2 then error("retort.checkpoint.info: " .. core_message(r), 2) end
   return r
end

return M
