-- Containers: nn.Container (children run by the subclass) and nn.Sequential (children in order).
--
--   local net = nn.Sequential()
--      :add("fc1", nn.Linear(784, 800)):add("relu1", nn.ReLU())   -- named children
--      :add(nn.Linear(800, 10))                                    -- unnamed: "3" (its position)
--   local net2 = nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)}       -- children "1".."3"
--   local net3 = nn.Sequential{{"fc", nn.Linear(4, 2)}, {"act", nn.Tanh()}}       -- named pairs
--   net:get("fc1"), net[1] (the first child), #net (number of children)
local Module = require "retort.nn.Module"

local Container = Module.class("Container", Module)

function Container:__init()
   Module.__init(self)
end

--- size(): number of children.
function Container:size() return #self._children end

local Sequential = Module.class("Sequential", Container)

function Sequential:__init(list)
   Container.__init(self)
   if list ~= nil then
      if type(list) ~= "table" or Module.isInstance(list, Module) then
         error("nn.Sequential: expected a list of modules (nn.Sequential{m1, m2, ...})", 3)
      end
      for i, item in ipairs(list) do
         if Module.isInstance(item, Module) then
            self:add(item)
         elseif type(item) == "table" and type(item[1]) == "string" and Module.isInstance(item[2], Module) then
            self:add(item[1], item[2])
         else
            error(("nn.Sequential: item %d is not a module or a {name, module} pair"):format(i), 3)
         end
      end
   end
end

--- add([name,] module): append a child; without a name it is called by its position ("1", ...).
function Sequential:add(name, m)
   if m == nil then
      m = name
      name = tostring(#self._children + 1)
   end
   if not Module.isInstance(m, Module) then
      error(("Sequential:add: expected an nn.Module, got %s"):format(type(m)), 2)
   end
   name = tostring(name)
   if self._modules[name] then error(("Sequential:add: a child named '%s' already exists"):format(name), 2) end
   Module.addModule(self, name, m)
   return self
end

function Sequential:apply(x, ctx)
   for _, name in ipairs(self._children) do x = self:runChild(name, x, ctx) end
   return x
end

Sequential.__len = function(self) return #self._children end

-- net[i]: the i-th child (integer keys only; other keys are ordinary fields and methods)
Sequential.__index = function(self, k)
   if math.type(k) == "integer" then
      local name = rawget(self, "_children")[k]
      return name and rawget(self, "_modules")[name]
   end
   return Sequential[k]
end

return {Container = Container, Sequential = Sequential}
