-- Option tables passed to constructors and builders: an unknown key is an error that names the
-- function, lists the known keys and suggests the nearest one (a misspelt option must never be
-- silently ignored).
--
--   options.check("Loader", opts, {batchSize = true, shuffle = true}, level)
--   options.suggest("batchsize", {"batchSize", "shuffle"})   --> "batchSize"
--   options.distance("epoch", "epochs")                      --> 1
--
-- suggest() is shared with retort.recipe (command-line options) so both spell their "did you
-- mean" the same way. The distance is Damerau-Levenshtein in its optimal-string-alignment form
-- (an adjacent transposition costs 1, as a typo does; no substring is edited twice), compared
-- case-insensitively, so "weightdecay" finds "weightDecay" at distance 0. A name is suggested
-- when it is within max(1, #typed // 3) edits (one typo in a short name, more in a long one;
-- "lr" never suggests "T"), else when the typed text starts exactly one known name
-- ("--teach" -> teacher); ties go to the alphabetically first name, so the hint is stable.
local M = {}

--- distance(a, b): the number of single-character insertions, deletions, substitutions and
--- adjacent transpositions turning a into b (case-insensitive).
function M.distance(a, b)
   a, b = a:lower(), b:lower()
   local la, lb = #a, #b
   if la == 0 then return lb end
   if lb == 0 then return la end
   -- three rolling rows: d[i-2], d[i-1], d[i] over j = 0..lb
   local prev2, prev, cur = {}, {}, {}
   for j = 0, lb do prev[j] = j end
   for i = 1, la do
      cur[0] = i
      local ca = a:byte(i)
      for j = 1, lb do
         local cb = b:byte(j)
         local cost = ca == cb and 0 or 1
         local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
         if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
            v = math.min(v, prev2[j - 2] + 1)
         end
         cur[j] = v
      end
      prev2, prev, cur = prev, cur, prev2
   end
   return prev[lb]
end

--- suggest(name, candidates): the known name nearest to `name` (candidates: a list of strings,
--- or a set {name = true}), or nil when none is close enough to be a likely typo.
function M.suggest(name, candidates)
   name = tostring(name)
   local list = {}
   if candidates[1] ~= nil or next(candidates) == nil then
      for _, c in ipairs(candidates) do list[#list + 1] = tostring(c) end
   else
      for c in pairs(candidates) do list[#list + 1] = tostring(c) end
   end
   table.sort(list)
   local best, best_d = nil, math.max(1, #name // 3) + 1
   for _, c in ipairs(list) do
      if c ~= name then
         local d = M.distance(name, c)
         if d < best_d then best, best_d = c, d end
      end
   end
   if best or #name == 0 then return best end
   local lname, prefixed = name:lower(), nil
   for _, c in ipairs(list) do
      if c:lower():sub(1, #lname) == lname then
         if prefixed then return nil end -- two names start so: no single guess
         prefixed = c
      end
   end
   return prefixed
end

--- check(fn, opts, known, level): known is a set {name = true, ...}; level is the error level the
--- caller would pass to error() itself.
function M.check(fn, opts, known, level)
   for k in pairs(opts) do
      if not known[k] then
         local names = {}
         for n in pairs(known) do names[#names + 1] = n end
         table.sort(names)
         local hint = type(k) == "string" and M.suggest(k, names)
         error(("%s: unknown option '%s' (known: %s)%s"):format(fn, tostring(k), table.concat(names, ", "),
            hint and ("; did you mean '%s'?"):format(hint) or ""), level + 1)
      end
   end
end

return M
