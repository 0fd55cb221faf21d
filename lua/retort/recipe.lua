-- Recipe options from the command line: `retort run recipes/x.lua --epochs=3 --T=4`.
--
--   local opts = require("retort.recipe").options({epochs = 10, lr = 0.1, name = "mlp"}, {...},
--                                                  {epochs = "epochs to train", lr = "learning rate", ...})
--
-- Each `--key=value` overrides the default of the same name and takes its type (numbers parse
-- as numbers, booleans accept true/false/1/0/yes/no, strings stay strings); a bare `--flag`
-- sets a boolean default to true. The third argument gives each option a one-line description
-- (optional; a description for an option that has no default is refused, so the two tables
-- cannot drift apart). `--help` (or `-h`) prints the recipe's summary (the first sentence of its
-- header comment), then every option, sorted by name, with its default and description in
-- aligned columns, and exits 0.
--
-- Mistakes on the command line (an unknown option, a value of the wrong type, a missing value,
-- a device that cannot be had) raise a usage error: an error object whose tostring is the
-- message and whose `exitStatus` is 2. The `retort` host prints such an object as a plain
-- `retort: <message>` line, with no traceback, and exits with that status (lua/host/main.c,
-- msghandler), so a user who types --epoch=3 sees
--   retort: unknown option '--epoch=3' (did you mean --epochs?)
--   known options: --batch=128 --epochs=10 ... (--help describes them)
-- The suggestion comes from retort.options.suggest (case-insensitive Damerau-Levenshtein). Code
-- that catches it with pcall gets the object; tostring(err) is the message.
--
-- A `device` option ("cpu", "cuda" or "auto") is resolved at once to "cpu" or "cuda", so a recipe
-- asked for a GPU it cannot have stops before it trains anything.
-- A `precision` option ("f32" or "bf16"; every recipe has one, described by recipe.PRECISION_HELP, and
-- passes it to train.fit) is checked at once too: bf16 on a CPU without a bf16 unit is a usage error.
-- recipe.optimizer(params, opts, epochs) builds the optimizer the recipes use: opts.optimizer "sgd"
-- (default: momentum, weightDecay) or "rmsprop" (weightDecay), learning rate opts.lr on a cosine
-- schedule over the epochs.
-- recipe.cache(opts, {teacher =, data =, views =, taps =}) gives recipes the soft-target cache
-- options (--cache, --cacheOnly, --cacheVerify) that `retort cache` drives.
local options_mod = require "retort.options"

local recipe = {}

local function sorted_names(defaults)
   local names = {}
   for k in pairs(defaults) do names[#names + 1] = k end
   table.sort(names, function(a, b)
      local la, lb = tostring(a):lower(), tostring(b):lower()
      if la ~= lb then return la < lb end
      return tostring(a) < tostring(b)
   end)
   return names
end

local function show_default(v)
   if v == "" then return '""' end
   return tostring(v)
end

local function known_list(defaults)
   local parts = {}
   for _, k in ipairs(sorted_names(defaults)) do
      parts[#parts + 1] = ("--%s=%s"):format(k, show_default(defaults[k]))
   end
   return table.concat(parts, " ")
end

local UsageError = {__name = "retort.recipe.UsageError"}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end

--- usageError(message): the error object for a mistake on the command line (see the header): the
--- host prints its message without a traceback and exits with status 2.
function recipe.usageError(message)
   return setmetatable({message = message, exitStatus = 2}, UsageError)
end

--- isUsageError(e): e came from recipe.usageError.
function recipe.isUsageError(e) return getmetatable(e) == UsageError end

local function usage(fmt, ...) error(recipe.usageError(fmt:format(...)), 0) end

--- The description of the `precision` option the recipes share (train.fit's precision).
recipe.PRECISION_HELP = "f32, or bf16: mixed precision (bf16 matmul/conv with f32 accumulation, f32 weights;"
                        .. " needs AMX or AVX512-BF16)"

local booleans = {["true"] = true, ["1"] = true, yes = true, ["false"] = false, ["0"] = false, no = false}

local function convert(name, default, text)
   local kind = type(default)
   if kind == "number" then
      local v = tonumber(text)
      if not v then return nil, ("option --%s expects a number, got '%s'"):format(name, text) end
      return v
   elseif kind == "boolean" then
      local v = booleans[text:lower()]
      if v == nil then return nil, ("option --%s expects true or false, got '%s'"):format(name, text) end
      return v
   end
   return text
end

-- The first sentence of the header comment of the Lua file `source` (debug.getinfo's "@path"),
-- or nil: the comment lines joined up to a full stop (". " before a capital, or a final "."), or
-- ": " once there are 24 characters before it ("Hinton KD on Fashion-MNIST (...): a teacher, ..."
-- -> the part before the colon).
local function summary_of(source)
   local path = type(source) == "string" and source:match("^@(.+)$")
   local f = path and io.open(path, "r")
   if not f then return nil end
   local text = {}
   for line in f:lines() do
      if #text == 0 and line:match("^#!") then goto continue end
      local c = line:match("^%-%-+%s?(.*)$")
      if not c or c:match("^%s*$") then break end
      text[#text + 1] = c
      if #text >= 4 then break end
      ::continue::
   end
   f:close()
   if #text == 0 then return nil end
   local s = table.concat(text, " "):gsub("%s+", " ")
   local cut = s:find("%.%s+%u") or (s:match("%.$") and #s) or nil -- "et al. 2015" is not an end
   local colon = s:find(":%s", 24)
   if colon and (not cut or colon < cut) then cut = colon - 1 end
   if cut then s = s:sub(1, cut) end
   s = s:gsub(":$", "")
   return s
end

-- Words of `text` wrapped to `width` columns, later lines indented by `indent` spaces.
local function wrap(text, width, indent)
   local lines, line = {}, ""
   for word in text:gmatch("%S+") do
      if line ~= "" and #line + 1 + #word > width then
         lines[#lines + 1] = line
         line = word
      else
         line = line == "" and word or (line .. " " .. word)
      end
   end
   lines[#lines + 1] = line
   return table.concat(lines, "\n" .. (" "):rep(indent))
end

local HELP_COLUMN = 30 -- "--name=default" wider than this puts its description on the next line
local HELP_WIDTH = 100 -- descriptions wrap to this many columns

--- helpText(defaults, descriptions, source): what --help prints (source: the recipe's
--- debug.getinfo source, "@recipes/x.lua", for the summary and the usage line; may be nil).
function recipe.helpText(defaults, descriptions, source)
   descriptions = descriptions or {}
   local out = {}
   local path = type(source) == "string" and source:match("^@(.+)$")
   if path then
      local summary = summary_of(source)
      if summary then out[#out + 1] = wrap(path .. ": " .. summary, HELP_WIDTH, 2) .. "\n" end
      out[#out + 1] = ("usage: retort run %s [--name=value ...]"):format(path)
      out[#out + 1] = ""
   end
   out[#out + 1] = "options (--name=default):"
   local heads, width = {}, 0
   local names = sorted_names(defaults)
   for i, k in ipairs(names) do
      heads[i] = ("--%s=%s"):format(k, show_default(defaults[k]))
      if #heads[i] <= HELP_COLUMN then width = math.max(width, #heads[i]) end
   end
   for i, k in ipairs(names) do
      local d = descriptions[k]
      if not d then
         out[#out + 1] = "  " .. heads[i]
      else
         d = wrap(d, math.max(40, HELP_WIDTH - width - 4), width + 4)
         if #heads[i] <= width then
            out[#out + 1] = ("  %-" .. width .. "s  %s"):format(heads[i], d)
         else
            out[#out + 1] = "  " .. heads[i] .. "\n" .. (" "):rep(width + 4) .. d
         end
      end
   end
   return table.concat(out, "\n") .. "\n"
end

local function check_descriptions(defaults, descriptions)
   if descriptions == nil then return end
   if type(descriptions) ~= "table" then
      error(("bad argument #3 to 'options' (table of descriptions expected, got %s)"):format(type(descriptions)), 3)
   end
   for k, d in pairs(descriptions) do
      if defaults[k] == nil then
         local hint = options_mod.suggest(tostring(k), sorted_names(defaults))
         error(("bad argument #3 to 'options' (description of '%s', which has no default%s)"):format(
            tostring(k), hint and ("; did you mean '%s'?"):format(hint) or ""), 3)
      end
      if type(d) ~= "string" then
         error(("bad argument #3 to 'options' (description of '%s' must be a string, got %s)"):format(k, type(d)), 3)
      end
   end
end

local function unknown(a, defaults)
   local name = a:match("^%-*([^=]*)")
   local hint = name ~= "" and options_mod.suggest(name, sorted_names(defaults))
   usage("unknown option '%s'%s\nknown options: %s (--help describes them)", a,
         hint and (" (did you mean --%s?)"):format(hint) or "", known_list(defaults))
end

--- Merge command-line arguments (a list of strings) into a copy of defaults; descriptions (a
--- table name -> one line) are shown by --help.
function recipe.options(defaults, args, descriptions)
   if type(defaults) ~= "table" then
      error(("bad argument #1 to 'options' (table of defaults expected, got %s)"):format(type(defaults)), 2)
   end
   if args ~= nil and type(args) ~= "table" then
      error(("bad argument #2 to 'options' (list of arguments expected, got %s)"):format(type(args)), 2)
   end
   check_descriptions(defaults, descriptions)
   local opts = {}
   for k, v in pairs(defaults) do opts[k] = v end
   for _, a in ipairs(args or {}) do
      if a == "--help" or a == "-h" then
         io.write(recipe.helpText(defaults, descriptions, debug.getinfo(2, "S").source))
         io.stdout:flush()
         os.exit(0)
      end
      local key, value = a:match("^%-%-([%w_%.%-]+)=(.*)$")
      if not key then
         key = a:match("^%-%-([%w_%.%-]+)$")
         if key and type(defaults[key]) == "boolean" then value = "true" end
      end
      if not key or defaults[key] == nil then unknown(a, defaults) end
      if value == nil then
         usage("option --%s needs a value: --%s=%s", key, key, show_default(defaults[key]))
      end
      local v, err = convert(key, defaults[key], value)
      if err then usage("%s", err) end
      opts[key] = v
   end
   if defaults.device ~= nil then
      local ok, device = pcall(require("retort.cuda").resolveDevice, opts.device, "option --device", 0)
      if not ok then usage("%s", tostring(device)) end
      opts.device = device
   end
   if defaults.precision ~= nil then
      if opts.precision ~= "f32" and opts.precision ~= "bf16" then
         usage("option --precision must be f32 or bf16, got '%s'", tostring(opts.precision))
      end
      -- a GPU multiplies bf16 on its tensor cores whatever the CPU has
      local info = opts.precision == "bf16" and opts.device ~= "cuda" and require("retort").bf16Info()
      if info and not info.available then usage("option --precision=bf16: %s", info.reason) end
   end
   return opts
end

--- export(model, loader, path): the recipes' --export=FILE.onnx: writes `model` (a trained student) as
--- ONNX with a dynamic batch, traced on the first two examples the loader gives (in evaluation mode),
--- and prints where it went and which ops it holds. Nothing when path is "".
function recipe.export(model, loader, path)
   if (path or "") == "" then return nil end
   local retort = require "retort"
   local x = loader:gather(retort.arange(1, math.min(2, loader.n), "i64"), 1)
   local info = retort.onnx.export(model, x, path, {dynamicBatch = true})
   local ops = {}
   for op, n in pairs(info.ops or {}) do ops[#ops + 1] = ("%s %d"):format(op, n) end
   table.sort(ops)
   print(("exported to %s (ONNX, %d bytes: %s)"):format(path, info.bytes, table.concat(ops, ", ")))
   return info
end

--- optimizer(params, opts, epochs): the recipes' optimizer (opts.optimizer: "sgd" with momentum and
--- weightDecay, or "rmsprop" with weightDecay) on a cosine learning rate from opts.lr to 0 over `epochs`.
function recipe.optimizer(params, opts, epochs)
   local retort = require "retort"
   local lr = retort.schedule.cosine{base = opts.lr, min = 0, epochs = epochs}
   local kind = opts.optimizer or "sgd"
   if kind == "sgd" then
      return retort.optim.SGD(params, {lr = lr, momentum = opts.momentum, weightDecay = opts.weightDecay})
   elseif kind == "rmsprop" then
      return retort.optim.RMSProp(params, {lr = lr, weightDecay = opts.weightDecay})
   end
   error(("--optimizer must be sgd or rmsprop, got %s"):format(tostring(kind)), 0)
end

--- teacher(kind): the recipes' teachers, untrained: "mlp" (Hinton's 784-1200-1200-10) or "cnn" (the
--- CNN recipes/train_teacher.lua trains with its defaults); load a checkpoint into it.
function recipe.teacher(kind)
   local models = require("retort").models
   if kind == "mlp" then return models.mlp{sizes = {784, 1200, 1200, 10}} end
   if kind == "cnn" then return models.cnn{dropout = 0.3} end
   error(("unknown --teacherModel=%s (mlp or cnn)"):format(tostring(kind)), 0)
end

--- cache(opts, {teacher, data, views, taps}): the soft-target cache a recipe's --cache=path names
--- (nil when it is ""): opened and checked if it exists, else built (resuming an interrupted build).
--- --cache=auto keeps it in <dir>/teacher.cache.h5 and rebuilds it when the teacher or data changed.
--- --cacheOnly=true stops the recipe once the cache is ready (`retort cache --out`); --cacheVerify=N
--- recomputes N rows with the teacher, prints the largest difference and exits (`retort cache
--- --verify`), with status 1 when they differ by more than 1e-4 relative to the logits' scale.
function recipe.cache(opts, spec)
   if (opts.cache or "") == "" then
      if opts.cacheOnly or (opts.cacheVerify or 0) > 0 then
         error("--cacheOnly and --cacheVerify need --cache=path", 0)
      end
      return nil
   end
   local cache = require "retort.cache"
   if (opts.cacheVerify or 0) > 0 then
      local c = cache.open(opts.cache, {teacher = spec.teacher})
      local worst, scale, rows = c:verify(spec.teacher, spec.data, opts.cacheVerify)
      -- finite values only: NaN compares false everywhere, and inf <= 1e-4 * inf would pass
      local finite = worst == worst and scale == scale and worst < math.huge and scale < math.huge
      local ok = finite and worst <= 1e-4 * math.max(1, scale)
      print(("%s: %d rows x %d view(s) recomputed with the teacher: largest difference %.3g (logits up to %.3g): %s")
            :format(opts.cache, rows, c.views, worst, scale, ok and "OK" or "MISMATCH"))
      os.exit(ok and 0 or 1)
   end
   local auto = opts.cache == "auto" -- the run's own cache: rebuilt when it is not this teacher's or this data's
   local path = auto and (opts.dir or ".") .. "/teacher.cache.h5" or opts.cache
   local c = cache.ensure{teacher = spec.teacher, data = spec.data, path = path, views = spec.views, taps = spec.taps,
                          replaceStale = auto}
   if opts.cacheOnly then
      for _, line in ipairs(c:summary()) do print(line) end
      os.exit(0)
   end
   return c
end

return recipe
