-- retort: the public module table (DESIGN.md §3).
--
--   local retort = require "retort"
--   local x = retort.tensor{{1, 2}, {3, 4}}
--
-- Everything from the C module `retort.core` (constructors, grad mode, cat/stack/where, the
-- Tensor methods table, version, ...) is re-exported here. Submodules (nn, optim, distill, data,
-- train, loss, ...) are loaded on first access: `retort.nn` requires "retort.nn" once and caches
-- it in this table, so `require "retort"` stays cheap and a recipe pays only for what it uses.
-- Requiring retort defines no globals.

local core = require "retort.core"

local retort = {}
for name, value in pairs(core) do
   retort[name] = value
end
retort.core = core

-- Submodules that `retort.<name>` loads lazily (lua/retort/<name>.lua or <name>/init.lua).
local lazy = {
   nn = true, optim = true, distill = true, data = true, train = true, loss = true, models = true,
   cache = true, curriculum = true, schedule = true, recipe = true, repl = true,
   progress = true, plot = true, h5 = true, checkpoint = true, cuda = true,
   onnx = true, dist = true,
}

-- Checkpoints (retort/checkpoint.lua, loaded on first use).
function retort.save(path, tbl) return require("retort.checkpoint").save(path, tbl) end
function retort.load(path) return require("retort.checkpoint").load(path) end

return setmetatable(retort, {
   __index = function(self, name)
      if lazy[name] then
         local module = require("retort." .. name)
         rawset(self, name, module)
         return module
      end
      return nil
   end,
})
