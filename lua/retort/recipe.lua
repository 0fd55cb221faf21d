-- Recipe options from the command line: `retort run recipes/x.lua --epochs=3 --T=4`.
--
--   local opts = require("retort.recipe").options({epochs = 10, lr = 0.1, name = "mlp"}, {...})
--
-- Each `--key=value` overrides the default of the same name and takes its type (numbers parse
-- as numbers, booleans accept true/false/1/0/yes/no, strings stay strings); a bare `--flag`
-- sets a boolean default to true. An unknown option, or a value of the wrong type, is an error
-- that lists the known options with their defaults. `--help` prints them and exits. A `device`
-- option ("cpu", "cuda" or "auto") is resolved at once to "cpu" or "cuda", so a recipe asked for a
-- GPU it cannot have stops before it trains anything.
-- recipe.optimizer(params, opts, epochs) builds the optimizer the recipes use: opts.optimizer "sgd"
-- (default: momentum, weightDecay) or "rmsprop" (weightDecay), learning rate opts.lr on a cosine
-- schedule over the epochs.
-- recipe.cache(opts, {teacher =, data =, views =, taps =}) gives recipes the soft-target cache
-- options (--cache, --cacheOnly, --cacheVerify) that `retort cache` drives.
local recipe = {}

local function known_list(defaults)
   local names = {}
   for k in pairs(defaults) do names[#names + 1] = k end
   table.sort(names)
   local parts = {}
   for _, k in ipairs(names) do parts[#parts + 1] = ("--%s=%s"):format(k, tostring(defaults[k])) end
   return table.concat(parts, " ")
end

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

--- Merge command-line arguments (a list of strings) into a copy of defaults.
function recipe.options(defaults, args)
   if type(defaults) ~= "table" then
      error(("bad argument #1 to 'options' (table of defaults expected, got %s)"):format(type(defaults)), 2)
   end
   local opts = {}
   for k, v in pairs(defaults) do opts[k] = v end
   for _, a in ipairs(args or {}) do
      if a == "--help" or a == "-h" then
         io.write("options (with defaults): ", known_list(defaults), "\n")
         os.exit(0)
      end
      local key, value = a:match("^%-%-([%w_%.%-]+)=(.*)$")
      if not key then
         key = a:match("^%-%-([%w_%.%-]+)$")
         if key and type(defaults[key]) == "boolean" then value = "true" end
      end
      if not key or defaults[key] == nil then
         error(("unknown option '%s' (known: %s)"):format(a, known_list(defaults)), 0)
      end
      if value == nil then
         error(("option --%s needs a value: --%s=%s"):format(key, key, tostring(defaults[key])), 0)
      end
      local v, err = convert(key, defaults[key], value)
      if err then error(err, 0) end
      opts[key] = v
   end
   if defaults.device ~= nil then
      opts.device = require("retort.cuda").resolveDevice(opts.device, "option --device", 0)
   end
   return opts
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
      if opts.cacheOnly or (opts.cacheVerify or 0) > 0 then error("--cacheOnly and --cacheVerify need --cache=path", 0) end
      return nil
   end
   local cache = require "retort.cache"
   if (opts.cacheVerify or 0) > 0 then
      local c = cache.open(opts.cache, {teacher = spec.teacher})
      local worst, scale, rows = c:verify(spec.teacher, spec.data, opts.cacheVerify)
      local ok = worst <= 1e-4 * math.max(1, scale)
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
