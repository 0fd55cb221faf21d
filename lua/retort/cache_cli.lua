-- `retort cache`: build, inspect and verify soft-target caches from the command line.
--
--   retort cache --recipe recipes/kd.lua --teacher=runs/t/best.h5 --out runs/t.cache.h5 [recipe options]
--   retort cache --info runs/t.cache.h5
--   retort cache --verify runs/t.cache.h5 --recipe recipes/kd.lua --teacher=runs/t/best.h5 [--rows=256]
--
-- --info prints what the file says with control characters escaped (a crafted teacher or input string
-- cannot clear the screen or retitle the window: retort.printable).
--
-- Building and verifying run the recipe itself (its teacher, its data and augmentation), with
-- --cache=<file> and --cacheOnly / --cacheVerify=<rows> added: a recipe supports caches by passing
-- its options to retort.recipe.cache (recipes/kd.lua does). Other options go to the recipe, as
-- --name=value or --name value.
local M = {}

local USAGE = [[
usage: retort cache --recipe RECIPE --out FILE [recipe options]    build (or resume) a cache
       retort cache --info FILE                                      what a cache holds
       retort cache --verify FILE --recipe RECIPE [--rows=N] [recipe options]
                                                                     recompute N rows (256) and compare]]

local function fail(msg)
   msg = tostring(msg)
   -- a message may quote strings from a cache file: control characters are escaped, line by line
   local escape = require("retort.printable").escape
   msg = msg:gsub("[^\n]+", escape)
   io.stderr:write("retort cache: ", (msg:gsub("^retort%.cache: ", "")), "\n")
   -- Ctrl-C ends with 130 (128 + SIGINT) like every other command; a build resumes where it stopped
   os.exit(msg:find("interrupted!", 1, true) and 130 or 2)
end

-- splits "--name value" and "--name=value" for the tool's own flags; the rest goes to the recipe
local function parse(args)
   local own = {recipe = true, out = true, info = true, verify = true, rows = true}
   local o, rest = {}, {}
   local i = 1
   while i <= #args do
      local a = args[i]
      local name, value = a:match("^%-%-([%w]+)=(.*)$")
      if not name then name = a:match("^%-%-([%w]+)$") end
      if name == "help" or a == "-h" then
         print(USAGE)
         os.exit(0)
      elseif name and own[name] then
         if value == nil then
            i = i + 1
            value = args[i]
            if value == nil then fail(("--%s needs a value\n%s"):format(name, USAGE)) end
         end
         o[name] = value
      elseif name and value == nil and args[i + 1] and not args[i + 1]:match("^%-") then
         rest[#rest + 1] = ("--%s=%s"):format(name, args[i + 1]) -- "--teacher ckpt.h5": recipes take --name=value
         i = i + 1
      else
         rest[#rest + 1] = a
      end
      i = i + 1
   end
   return o, rest
end

local function run_recipe(recipe, args)
   local chunk, err = loadfile(recipe)
   if not chunk then fail(err) end
   chunk(table.unpack(args))
end

function M.main(args)
   local o, rest = parse(args or {})
   if o.info then
      if o.recipe or o.out or o.verify then fail("--info takes only the cache file") end
      local ok, c = pcall(require("retort.cache").open, o.info, {partial = true})
      if not ok then fail(tostring(c)) end
      for _, line in ipairs(c:summary()) do print(line) end
      return
   end
   if not o.recipe then fail("--recipe is required to build or verify a cache\n" .. USAGE) end
   if o.verify then
      if o.out then fail("give --verify or --out, not both") end
      local rows = math.tointeger(tonumber(o.rows or "256"))
      if not rows or rows < 1 then fail(("--rows must be a positive integer, got %s"):format(o.rows)) end
      rest[#rest + 1] = "--cache=" .. o.verify
      rest[#rest + 1] = "--cacheVerify=" .. rows
   elseif o.out then
      rest[#rest + 1] = "--cache=" .. o.out
      rest[#rest + 1] = "--cacheOnly=true"
   else
      fail("give --out FILE to build a cache, or --verify FILE\n" .. USAGE)
   end
   local ok, err = pcall(run_recipe, o.recipe, rest)
   if not ok then fail(tostring(err)) end
   fail(("%s returned without handling --cache (a recipe supports caches through retort.recipe.cache)"):format(
      o.recipe))
end

return M
