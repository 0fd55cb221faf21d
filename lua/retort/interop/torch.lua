-- PyTorch state dicts in and out (DESIGN.md §10): what `retort import-torch` and `retort
-- export-torch` do (retort/torch_cli.lua is their command line), usable from Lua too:
--
--   local torch = require "retort.interop.torch"
--   local net = torch.load("teacher.pth", "resnet32x4")              -- a retort model holding its weights
--   torch.importFile("teacher.pth", "teacher.h5", "resnet32x4")        -- a retort checkpoint (retort.load)
--   torch.save(net, "student.pth")                                   -- a state dict with PyTorch's names
--   torch.exportFile("runs/s/best.h5", "student.pth", "resnet8x4")
--
-- The PyTorch side is tools/torch_state.py, run with Debian's python3 (python3-torch, python3-h5py):
-- it reads a .pth with torch.load(weights_only=True) and writes a neutral HDF5 file of the tensors
-- under their PyTorch names, or the reverse (its header describes that file). Everything else
-- happens here, in Lua: the names are mapped by the model family's table (interop/torch_names.lua),
-- the shapes checked, the model loaded with loadStateDict (strict), and the checkpoint written by
-- retort.save, so an imported teacher is exactly what a recipe loads with
-- `net:loadStateDict(retort.load(path).model)`.
--
-- Choices:
--  - A file that does not match the model is one error listing every tensor of the file that maps
--    to nothing, every tensor of the model the file lacks (PyTorch name, retort name), and every
--    shape that differs, each with its shape: names are never guessed. `strip` removes a prefix
--    from every key first (nn.DataParallel's "module."); a key without it is an error too.
--  - PyTorch's num_batches_tracked counters are dropped on import (retort's BatchNorm has none; the
--    count only matters to momentum=None training) and kept in the checkpoint as the attributes of
--    /torch/numBatchesTracked, so an export of an unchanged import gives back the same counters;
--    an export of any other checkpoint writes 0 for them (a strict load_state_dict needs the key).
--  - Floating tensors of any PyTorch precision load into the model's own dtype (f32 by default:
--    float16 and bfloat16 widen exactly; float64 rounds). Exports write the model's dtype.
--  - The helper is found next to the executable (../share/retort/tools, where `cmake --install`
--    puts it, and a link to tools/ in the build tree), else relative to these modules, else in
--    $RETORT_TOOLS_DIR, which overrides both. The interpreter is $RETORT_PYTHON, else
--    /usr/bin/python3 (Debian's, where python3-torch installs), else python3 on the PATH.
local retort = require "retort"
local core = require "retort.core"
local names = require "retort.interop.torch_names"

local M = {}

M.HELPER = "torch_state.py"
M.FORMAT = "retort.torch-tensors" -- the neutral file (tools/torch_state.py)
M.CHECKPOINT_KEY = "torch"        -- where an imported checkpoint keeps where it came from

local function shquote(s)
   s = tostring(s)
   if s:match("^[%w%-%./_=:,+@]+$") then return s end
   return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function readable(path)
   local f = io.open(path, "rb")
   if f then f:close() end
   return f ~= nil
end

local function shape_str(t)
   local s = t:shape()
   return #s == 0 and "scalar" or table.concat(s, "x")
end

-- ------------------------------------------------------------------------------------------
-- the helper and its interpreter

-- the folder of the running executable (/proc/<pid>/exe of this process: $PPID of the shell popen starts)
local function exe_dir()
   local p = io.popen('readlink -f "/proc/$PPID/exe" 2>/dev/null')
   if not p then return nil end
   local exe = p:read("l")
   p:close()
   return exe and exe:match("^(.*)/[^/]*$")
end

-- the folder above retort/ that this module was loaded from
local function module_root()
   local src = debug.getinfo(1, "S").source
   return src:match("^@(.*)/retort/interop/[^/]*$")
end

--- helperPath(): the path of tools/torch_state.py (see the header for where it is looked for).
function M.helperPath()
   local tried = {}
   local function try(dir)
      if not dir then return nil end
      local p = dir .. "/" .. M.HELPER
      tried[#tried + 1] = p
      return readable(p) and p or nil
   end
   local env = os.getenv("RETORT_TOOLS_DIR")
   if env and env ~= "" then
      local p = try(env)
      if p then return p end
      error(("RETORT_TOOLS_DIR=%s holds no %s"):format(env, M.HELPER), 0)
   end
   local bin, root = exe_dir(), module_root()
   local p = try(bin and bin .. "/../share/retort/tools") or try(root and root .. "/../../retort/tools")
             or try(root and root .. "/../tools")
   if p then return p end
   error(("cannot find retort's PyTorch helper %s (looked at %s); set RETORT_TOOLS_DIR to the folder that holds it")
      :format(M.HELPER, table.concat(tried, ", ")), 0)
end

--- python(): the interpreter that runs the helper.
function M.python()
   local env = os.getenv("RETORT_PYTHON")
   if env and env ~= "" then return env end
   if readable("/usr/bin/python3") then return "/usr/bin/python3" end
   return "python3"
end

local INSTALL = "install Debian's python3-torch and python3-h5py (apt-get install python3-torch python3-h5py), "
   .. "or set RETORT_PYTHON to a python3 that has torch and h5py"

--- runHelper(args): runs the helper with these arguments; errors with its message when it fails.
function M.runHelper(args)
   local helper = M.helperPath()
   local py = M.python()
   local words = {shquote(py), shquote(helper)}
   for _, a in ipairs(args) do words[#words + 1] = shquote(a) end
   local errfile = os.tmpname()
   local ok, how, code = os.execute(table.concat(words, " ") .. " </dev/null 2>" .. shquote(errfile))
   local f = io.open(errfile, "rb")
   local msg = f and f:read("a") or ""
   if f then f:close() end
   os.remove(errfile)
   msg = msg:gsub("%s+$", "")
   if ok then return true end
   if how == "signal" or code == 130 then error("interrupted!", 0) end
   if code == 127 then error(("cannot run %s: %s"):format(py, INSTALL), 0) end
   if code == 3 then error(msg .. "\n" .. INSTALL, 0) end
   if msg == "" then msg = ("%s %s failed (exit status %s)"):format(py, helper, tostring(code)) end
   error(msg, 0)
end

-- ------------------------------------------------------------------------------------------
-- the neutral file

--- readTensors(path): {names = {...} (the state dict's order), tensors = {name -> tensor},
--- dtypes = {name -> PyTorch dtype}, container = key the state dict was under ("" for none)}.
function M.readTensors(path)
   local f = core.h5Open(path)
   local ok, res = pcall(function()
      if f:getAttr("/", "format") ~= M.FORMAT or f:kind("/tensors") ~= "group" then
         error(("%s is not a %s file (no format attribute or /tensors group)"):format(path, M.FORMAT), 0)
      end
      local out = {names = {}, tensors = {}, dtypes = {}, container = f:getAttr("/", "container") or ""}
      for _, m in ipairs(f:list("/tensors")) do
         if m.kind == "dataset" then
            local p = "/tensors/" .. m.name
            out.tensors[m.name] = f:read(p)
            out.dtypes[m.name] = f:getAttr(p, "torch_dtype")
         end
      end
      local listed = f:getAttr("/", "names")
      for n in (listed or ""):gmatch("[^\n]+") do
         if out.tensors[n] then out.names[#out.names + 1] = n end
      end
      if #out.names ~= #f:list("/tensors") then -- no (or a partial) order: sorted
         out.names = {}
         for n in pairs(out.tensors) do out.names[#out.names + 1] = n end
         table.sort(out.names)
      end
      return out
   end)
   f:abort()
   if not ok then error(res, 0) end
   return res
end

--- writeTensors(path, {names =, tensors =, dtypes =, container =}): the neutral file the helper reads.
function M.writeTensors(path, t)
   local f = core.h5Create(path)
   local ok, err = pcall(function()
      f:setAttr("/", "format", M.FORMAT)
      f:setAttr("/", "version", 1)
      f:setAttr("/", "container", t.container or "")
      f:setAttr("/", "names", table.concat(t.names, "\n"))
      f:createGroup("/tensors")
      for _, n in ipairs(t.names) do
         local p = "/tensors/" .. n
         f:write(p, t.tensors[n]:contiguous())
         if t.dtypes and t.dtypes[n] then f:setAttr(p, "torch_dtype", t.dtypes[n]) end
      end
   end)
   if not ok then
      f:abort()
      error(err, 0)
   end
   f:close()
end

-- ------------------------------------------------------------------------------------------
-- models and their options

--- parseModelOptions(text): the table written in text, a Lua table constructor with or without its
--- braces ("sizes = {784, 800, 10}"); "" gives {}. Only data: it runs in an empty environment.
function M.parseModelOptions(text)
   if text == nil or text:match("^%s*$") then return {} end
   local src = text:match("^%s*{") and ("return " .. text) or ("return {" .. text .. "}")
   local chunk, err = load(src, "=model options", "t", {})
   if not chunk then error(("model options '%s' are not a Lua table: %s"):format(text, err), 0) end
   local ok, v = pcall(chunk)
   if not ok or type(v) ~= "table" then
      error(("model options '%s' are not a Lua table: %s"):format(text, ok and type(v) or tostring(v)), 0)
   end
   return v
end

--- model(name, {numClasses =, options =}): retort.models.get(name, options) with numClasses
--- classes (for mlp: the last of its sizes).
function M.model(name, o)
   o = o or {}
   local mopts = {}
   for k, v in pairs(o.options or {}) do mopts[k] = v end
   if o.numClasses then
      local n = math.tointeger(tonumber(o.numClasses))
      if not n or n < 1 then error(("--num_classes must be a positive integer, got '%s'"):format(o.numClasses), 0) end
      if name == "mlp" then
         local sizes = {}
         for i, s in ipairs(mopts.sizes or {784, 1200, 1200, 10}) do sizes[i] = s end
         sizes[#sizes] = n
         mopts.sizes = sizes
      else
         mopts.classes = n
      end
   end
   local ok, net = pcall(retort.models.get, name, mopts)
   if not ok then error((tostring(net):gsub("^.-models%.get: ", "")), 0) end
   names.family(net) -- a model without a name table is refused before any file is read
   return net
end

-- ------------------------------------------------------------------------------------------
-- PyTorch names <-> retort keys

local function listing(title, rows)
   if #rows == 0 then return nil end
   table.sort(rows)
   return ("  %s (%d):\n    %s"):format(title, #rows, table.concat(rows, "\n    "))
end

local FLOAT = {float16 = true, bfloat16 = true, float32 = true, float64 = true}

--- toRetort(model, file, {source =, strip =}): the state dict (retort keys) that file (readTensors's
--- table) holds for model, and the num_batches_tracked counters it dropped ({PyTorch module path ->
--- count}); an error listing every mismatch otherwise.
function M.toRetort(model, file, o)
   o = o or {}
   local toTorch, toRetort, order = names.mapping(model)
   local fam, cls = names.family(model)
   local targets = model:stateDict()
   local tensors, dtypes = {}, {}
   local unexpected, missing, misshaped, badtype, unstripped = {}, {}, {}, {}, {}
   for _, n in ipairs(file.names) do
      local key = n
      if o.strip and o.strip ~= "" then
         key = n:sub(1, #o.strip) == o.strip and n:sub(#o.strip + 1) or nil
         if not key then unstripped[#unstripped + 1] = ("%s  %s"):format(n, shape_str(file.tensors[n])) end
      end
      if key then tensors[key], dtypes[key] = file.tensors[n], file.dtypes[n] end
   end
   local sd, counters = {}, {}
   for name, t in pairs(tensors) do
      local r = toRetort[name]
      local prefix = name:match("^(.*)%.num_batches_tracked$") or (name == "num_batches_tracked" and "")
      if r then
         if not retort.isTensor(t) or table.concat(t:shape(), "x") ~= table.concat(targets[r]:shape(), "x") then
            misshaped[#misshaped + 1] = ("%s  file %s, model %s  (retort %s)"):format(
               name, shape_str(t), shape_str(targets[r]), r)
         elseif dtypes[name] and not FLOAT[dtypes[name]] and targets[r]:dtype():match("^f") then
            badtype[#badtype + 1] = ("%s  %s, model %s  (retort %s)"):format(name, dtypes[name], targets[r]:dtype(), r)
         else
            sd[r] = t
         end
      elseif prefix and toRetort[(prefix == "" and "" or prefix .. ".") .. "running_mean"] and t:numel() == 1 then
         if prefix ~= "" then counters[prefix] = math.tointeger(t:item()) or 0 end -- (a root BatchNorm's: 0)
      else
         unexpected[#unexpected + 1] = ("%s  %s"):format(name, shape_str(t))
      end
   end
   for _, r in ipairs(order) do
      if tensors[toTorch[r]] == nil then
         missing[#missing + 1] = ("%s  %s  (retort %s)"):format(toTorch[r], shape_str(targets[r]), r)
      end
   end
   local parts = {}
   for _, l in ipairs{{("keys without the prefix '%s'"):format(o.strip or ""), unstripped},
                      {"in the file, not in the model", unexpected}, {"in the model, not in the file", missing},
                      {"shapes differ", misshaped}, {"not floating point", badtype}} do
      parts[#parts + 1] = listing(l[1], l[2])
   end
   if #parts > 0 then
      error(("%s does not match %s (class %s, PyTorch names of %s):\n%s"):format(
         o.source or "the state dict", o.modelName or cls, cls, fam.source, table.concat(parts, "\n")), 0)
   end
   return sd, counters
end

--- fromRetort(model, counters, container): the neutral file's table for model's current tensors
--- under PyTorch's names, in PyTorch's order, with a num_batches_tracked (int64, counters[path] or
--- 0) after each BatchNorm's running_var.
function M.fromRetort(model, counters, container)
   local toTorch, _, order = names.mapping(model)
   local sd = model:stateDict()
   local out = {names = {}, tensors = {}, dtypes = {}, container = container or ""}
   local torch_dtype = {f32 = "float32", f64 = "float64", i64 = "int64", u8 = "uint8"}
   for _, r in ipairs(order) do
      local n = toTorch[r]
      local t = sd[r]:cpu()
      out.names[#out.names + 1] = n
      out.tensors[n], out.dtypes[n] = t, torch_dtype[t:dtype()] or "float32"
      local prefix = n:match("^(.*)%.running_var$")
      if prefix or n == "running_var" then
         local c = prefix and (prefix .. ".num_batches_tracked") or "num_batches_tracked"
         out.names[#out.names + 1] = c
         out.tensors[c] = retort.tensor((counters or {})[prefix or ""] or 0, "i64")
         out.dtypes[c] = "int64"
      end
   end
   return out
end

-- ------------------------------------------------------------------------------------------
-- files

local function tmp_h5()
   local p = os.tmpname()
   os.remove(p)
   return p .. ".h5"
end

local function with_tmp(fn)
   local tmp = tmp_h5()
   local ok, a, b = pcall(fn, tmp)
   os.remove(tmp)
   if not ok then error(a, 0) end
   return a, b
end

--- readPth(path): readTensors's table for a .pth file (through the helper).
function M.readPth(path)
   if not readable(path) then error(("%s: no such file or not readable"):format(path), 0) end
   return with_tmp(function(tmp)
      M.runHelper{"to-h5", path, tmp}
      return M.readTensors(tmp)
   end)
end

--- load(path, model | name, {numClasses =, options =, strip =}): the model (built from its name when
--- one is given) holding the weights of the PyTorch state dict in path, and
--- {container =, numBatchesTracked =} about the file.
function M.load(path, model, o)
   o = o or {}
   local name = type(model) == "string" and model or o.modelName
   if type(model) == "string" then model = M.model(model, o) end
   local file = M.readPth(path)
   local sd, counters = M.toRetort(model, file, {source = path, strip = o.strip, modelName = name})
   model:loadStateDict(sd)
   return model, {container = file.container, numBatchesTracked = counters, count = #file.names}
end

--- save(model, path, {container =, numBatchesTracked =}): model's weights as a PyTorch state dict
--- (torch.load(path, weights_only=True) reads it), wrapped as {container: state_dict} when given.
function M.save(model, path, o)
   o = o or {}
   local file = M.fromRetort(model, o.numBatchesTracked, o.container)
   with_tmp(function(tmp)
      M.writeTensors(tmp, file)
      M.runHelper{"to-pth", tmp, path}
   end)
   return #file.names
end

--- importFile(pth, out, name, {numClasses =, options =, strip =}): a retort checkpoint at out holding
--- {model = the model's state, torch = {source, container, model, modelOptions, numBatchesTracked}}.
function M.importFile(pth, out, name, o)
   o = o or {}
   local model, info = M.load(pth, name, o)
   local meta = {source = pth, container = info.container, model = name, numBatchesTracked = info.numBatchesTracked}
   if o.numClasses then meta.numClasses = math.tointeger(tonumber(o.numClasses)) end
   if o.optionsText and o.optionsText ~= "" then meta.modelOptions = o.optionsText end
   retort.save(out, {model = model, [M.CHECKPOINT_KEY] = meta})
   return model, info
end

--- exportFile(h5, pth, name, {numClasses =, options =, container =}): the model state of the retort
--- checkpoint h5 (its /model; the student of a distilled run, whose checkpoint holds it under
--- "student.") as a PyTorch state dict at pth. name may be nil for a checkpoint made by importFile
--- (it records the model's name and options).
function M.exportFile(h5, pth, name, o)
   o = o or {}
   local ck = retort.load(h5)
   if type(ck.model) ~= "table" then
      error(("%s holds no model state (/model); retort.save(path, {model = net}) and train.fit write one")
         :format(h5), 0)
   end
   local meta = type(ck[M.CHECKPOINT_KEY]) == "table" and ck[M.CHECKPOINT_KEY] or {}
   local opts = {numClasses = o.numClasses, options = o.options}
   if not name then
      if type(meta.model) ~= "string" then
         error(("%s does not say which model it holds: give --model=NAME"):format(h5), 0)
      end
      name = meta.model
      opts.numClasses = opts.numClasses or meta.numClasses
      if not opts.options and meta.modelOptions then opts.options = M.parseModelOptions(meta.modelOptions) end
   end
   local model = M.model(name, opts)
   local state, student = ck.model, {} -- a distilled run's checkpoint holds its student under "student."
   for k, v in pairs(ck.model) do
      local rest = type(k) == "string" and k:match("^student%.(.+)$")
      if rest then student[rest] = v end
   end
   if next(student) then state = student end
   local ok, err = pcall(model.loadStateDict, model, state)
   if not ok then error(("%s does not hold a %s: %s"):format(h5, name, tostring(err)), 0) end
   local counters = meta.model == name and meta.numBatchesTracked or nil
   return M.save(model, pth, {container = o.container, numBatchesTracked = counters}), model, name
end

return M
