-- The command line of the host's subcommands that take files and --options (retort plot,
-- retort export-onnx): `--name=value` or `--name value`, bare `--flag`s, positional arguments, and
-- `--` ending the options. -h/--help prints the usage and exits 0; a mistake (an unknown option,
-- with the nearest known one suggested; a flag given a value; an option without one) calls
-- fail(2, message .. usage), which the caller makes a `retort <cmd>: ...` line and exit status.
local options = require "retort.options"

local M = {}

--- parse(args, {known = set, flags = set (optional), usage = text, fail = fn(status, msg),
---              positional = fn(arg) -> value (optional: the argument as it is)}) -> opts, positional
function M.parse(args, spec)
   local known, flags, usage, fail = spec.known, spec.flags or {}, spec.usage, spec.fail
   local o, rest = {}, {}
   local i = 1
   while i <= #args do
      local a = args[i]
      if a == "-h" or a == "--help" then
         print(usage)
         os.exit(0)
      end
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-(.+)$") end
      if a == "--" then
         for j = i + 1, #args do rest[#rest + 1] = spec.positional and spec.positional(args[j]) or args[j] end
         break
      elseif name then
         if not known[name] then
            local hint = options.suggest(name, known)
            local mean = hint and (" (did you mean --%s?)"):format(hint) or ""
            fail(2, ("unknown option '%s'%s\n%s"):format(a, mean, usage))
         end
         if flags[name] then
            if value ~= nil then fail(2, ("--%s takes no value\n%s"):format(name, usage)) end
            value = true
         elseif value == nil then
            i = i + 1
            value = args[i]
            if value == nil then fail(2, ("--%s needs a value\n%s"):format(name, usage)) end
         end
         o[name] = value
      elseif a:match("^%-.") then
         fail(2, ("unknown option '%s'\n%s"):format(a, usage))
      else
         rest[#rest + 1] = spec.positional and spec.positional(a) or a
      end
      i = i + 1
   end
   return o, rest
end

return M
