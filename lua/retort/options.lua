-- Option tables passed to constructors and builders: an unknown key is an error that names the
-- function and lists the known keys (a misspelt option must never be silently ignored).
local M = {}

--- check(fn, opts, known, level): known is a set {name = true, ...}; level is the error level the
--- caller would pass to error() itself.
function M.check(fn, opts, known, level)
   for k in pairs(opts) do
      if not known[k] then
         local names = {}
         for n in pairs(known) do names[#names + 1] = n end
         table.sort(names)
         error(("%s: unknown option '%s' (known: %s)"):format(fn, tostring(k), table.concat(names, ", ")), level + 1)
      end
   end
end

return M
