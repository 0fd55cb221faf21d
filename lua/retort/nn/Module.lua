-- nn.Module: the base of every layer and container, and the small class system they use.
--
-- Classes are plain tables: `cls.__index = cls`, a metatable whose __index is the parent class
-- and whose __call builds an instance (`nn.Linear(784, 800)` calls Linear.__init on a fresh
-- table). Instances are callable too: `m(x, opts)` is `m:forward(x, opts)`.
--
--   local Square = nn.class("Square", nn.Module)     -- a user-defined layer
--   function Square:__init() nn.Module.__init(self) end
--   function Square:apply(x) return x * x end
--
-- A module keeps three ordered lists of names: parameters (tensors requiring grad, stored as
-- fields: self.weight), buffers (state that is saved but not trained: BatchNorm's running
-- statistics) and children (sub-modules, in self._modules). Order is registration order, so
-- parameters(), stateDict() and the printed architecture are stable.
--
-- forward(x, {taps = {"features.conv3", ...}}) returns the output and a table of the requested
-- intermediate outputs, keyed by dotted module path. Every child path is a tap; a module may
-- also declare named points of its own (declareTap) that it emits from apply (ResNet's "pool",
-- "logits"). Asking for a name that does not exist is an error that lists the available ones.
-- Modules never cache outputs: two forwards give two independent results.
--
-- Subclasses implement apply(x, ctx): the computation. Containers call children through
-- self:runChild(name, x, ctx), which records taps; ctx is nil when no taps were asked for.
local retort = require "retort"

local Module = {}
Module.__index = Module
Module.__typename = "Module"

-- metamethods are looked up raw on the metatable, so every class copies them
local METAMETHODS = {"__call", "__tostring", "__close", "__len"}

--- class(name, parent): a new class; `cls(...)` constructs an instance via cls.__init.
local function class(name, parent)
   assert(type(name) == "string", "nn.class: a class name is expected")
   parent = parent or Module
   local cls = {}
   cls.__index = cls
   cls.__typename = name
   cls.__name = "retort.nn." .. name
   cls.__parent = parent
   for _, mm in ipairs(METAMETHODS) do cls[mm] = rawget(parent, mm) end
   return setmetatable(cls, {
      __index = parent,
      __call = function(c, ...)
         local o = setmetatable({}, c)
         o:__init(...)
         return o
      end,
      __tostring = function() return "nn." .. name .. " (class)" end,
   })
end

setmetatable(Module, {
   __call = function(c, ...)
      local o = setmetatable({}, c)
      o:__init(...)
      return o
   end,
   __tostring = function() return "nn.Module (class)" end,
})

--- isInstance(x, cls): x is an instance of cls or of a subclass.
local function isInstance(x, cls)
   if type(x) ~= "table" then return false end
   local c = getmetatable(x)
   while c do
      if c == cls then return true end
      c = rawget(c, "__parent")
   end
   return false
end

function Module:__init()
   self._params = {}
   self._buffers = {}
   self._children = {}
   self._modules = {}
   self._taps = {}
   self._training = true
end

function Module:typename() return self.__typename end

-- ------------------------------------------------------------------------------------------
-- registration

--- registerParameter(name, tensor): tensor becomes self[name] and requires grad. nil is
--- allowed (an absent bias) and registers nothing.
function Module:registerParameter(name, t)
   if t == nil then self[name] = nil; return end
   if not retort.isTensor(t) then error(("registerParameter: '%s' is not a tensor"):format(name), 2) end
   if not t:needsGrad() then t:requiresGrad() end
   self[name] = t
   for _, n in ipairs(self._params) do if n == name then return t end end
   self._params[#self._params + 1] = name
   return t
end

--- registerBuffer(name, tensor): saved in stateDict and converted with the module, not trained.
function Module:registerBuffer(name, t)
   if t == nil then self[name] = nil; return end
   self[name] = t
   for _, n in ipairs(self._buffers) do if n == name then return t end end
   self._buffers[#self._buffers + 1] = name
   return t
end

--- addModule(name, module): a named child (names may not contain '.').
function Module:addModule(name, m)
   name = tostring(name)
   if name:find(".", 1, true) or name == "" then
      error(("addModule: invalid child name '%s' (no dots, not empty)"):format(name), 2)
   end
   if not isInstance(m, Module) then
      error(("addModule: child '%s' is not an nn.Module (got %s)"):format(name, type(m)), 2)
   end
   if self._modules[name] then error(("addModule: a child named '%s' already exists"):format(name), 2) end
   self._children[#self._children + 1] = name
   self._modules[name] = m
   return self
end

--- declareTap(name): a named intermediate output this module emits itself (see emit).
function Module:declareTap(name)
   self._taps[#self._taps + 1] = name
   return self
end

-- ------------------------------------------------------------------------------------------
-- forward and taps

--- apply(x, ctx): the computation; subclasses override it.
function Module:apply(x) -- luacheck: ignore 212 (x: the signature subclasses implement; help() shows it)
   error(("%s: apply(x) is not implemented"):format(self.__typename), 2)
end

local function join(prefix, name)
   if prefix == "" then return name end
   return prefix .. "." .. name
end

--- runChild(name, x, ctx): run child `name` on x, recording its output when it was tapped.
function Module:runChild(name, x, ctx)
   local child = self._modules[name]
   if not child then error(("%s: no child named '%s'"):format(self.__typename, tostring(name)), 2) end
   if ctx == nil then return child:apply(x, nil) end
   local saved = ctx.prefix
   local path = join(saved, name)
   ctx.prefix = path
   local y = child:apply(x, ctx)
   ctx.prefix = saved
   if ctx.want[path] then ctx.out[path] = y end
   return y
end

--- emit(ctx, name, y): record a declared tap of this module; returns y.
function Module:emit(ctx, name, y)
   if ctx ~= nil then
      local path = join(ctx.prefix, name)
      if ctx.want[path] then ctx.out[path] = y end
   end
   return y
end

--- tapNames(): every name forward accepts in opts.taps, in module order.
function Module:tapNames(prefix, out)
   prefix, out = prefix or "", out or {}
   for _, name in ipairs(self._children) do
      local path = join(prefix, name)
      out[#out + 1] = path
      self._modules[name]:tapNames(path, out)
   end
   for _, name in ipairs(self._taps) do out[#out + 1] = join(prefix, name) end
   return out
end

--- forward(x [, {taps = {...}}]) -> output, taps (a table path -> tensor; empty without taps)
function Module:forward(x, opts)
   local taps = opts and opts.taps
   if taps == nil or #taps == 0 then return self:apply(x, nil), {} end
   local available = self:tapNames()
   local known = {}
   for _, n in ipairs(available) do known[n] = true end
   local want = {}
   for _, n in ipairs(taps) do
      if not known[n] then
         error(("%s:forward: unknown tap '%s'; available: %s"):format(self.__typename, tostring(n),
            #available > 0 and table.concat(available, ", ") or "(none)"), 2)
      end
      want[n] = true
   end
   local ctx = {want = want, out = {}, prefix = ""}
   local y = self:apply(x, ctx)
   return y, ctx.out
end

Module.__call = Module.forward

-- ------------------------------------------------------------------------------------------
-- traversal

--- children() / namedChildren(): direct children ({name, module} pairs for the named form).
function Module:children()
   local out = {}
   for i, name in ipairs(self._children) do out[i] = self._modules[name] end
   return out
end

function Module:namedChildren()
   local out = {}
   for i, name in ipairs(self._children) do
      out[i] = {name, self._modules[name], name = name, module = self._modules[name]}
   end
   return out
end

--- modules(): this module and every descendant, depth first, as {path, module} ("" for self).
function Module:namedModules(prefix, out)
   prefix, out = prefix or "", out or {}
   out[#out + 1] = {prefix, self, name = prefix, module = self}
   for _, name in ipairs(self._children) do
      self._modules[name]:namedModules(join(prefix, name), out)
   end
   return out
end

--- get("a.b.c"): a descendant by dotted path.
function Module:get(path)
   local m = self
   local walked = {}
   for part in tostring(path):gmatch("[^.]+") do
      local child = m._modules[part]
      if not child then
         local here = #walked > 0 and ("'" .. table.concat(walked, ".") .. "'") or "the root"
         error(("get: no child '%s' in %s (%s); children: %s"):format(part, here, m.__typename,
            #m._children > 0 and table.concat(m._children, ", ") or "(none)"), 2)
      end
      walked[#walked + 1] = part
      m = child
   end
   return m
end

-- list of {path, tensor, name=, tensor=} for the fields listed in `kind` (_params or _buffers)
local function named(self, kind, prefix, out, seen)
   for _, name in ipairs(self[kind]) do
      local t = self[name]
      if t ~= nil and not seen[t] then
         seen[t] = true
         local path = join(prefix, name)
         out[#out + 1] = {path, t, name = path, tensor = t}
      end
   end
   for _, cname in ipairs(self._children) do
      named(self._modules[cname], kind, join(prefix, cname), out, seen)
   end
   return out
end

--- namedParameters(): {path, tensor} entries (also .name/.tensor), parameters before children's.
function Module:namedParameters() return named(self, "_params", "", {}, {}) end

--- parameters(): the tensors of namedParameters, in the same order (shared tensors once).
function Module:parameters()
   local out = {}
   for i, e in ipairs(self:namedParameters()) do out[i] = e[2] end
   return out
end

function Module:namedBuffers() return named(self, "_buffers", "", {}, {}) end

function Module:buffers()
   local out = {}
   for i, e in ipairs(self:namedBuffers()) do out[i] = e[2] end
   return out
end

--- numParameters(): total number of parameter elements.
function Module:numParameters()
   local n = 0
   for _, p in ipairs(self:parameters()) do n = n + p:numel() end
   return n
end

-- ------------------------------------------------------------------------------------------
-- modes and gradients

function Module:training()
   self._training = true
   for _, name in ipairs(self._children) do self._modules[name]:training() end
   return self
end

function Module:evaluate()
   self._training = false
   for _, name in ipairs(self._children) do self._modules[name]:evaluate() end
   return self
end

function Module:isTraining() return self._training end

--- zeroGrad(): drop every parameter's gradient (the next backward starts from nothing).
function Module:zeroGrad()
   for _, p in ipairs(self:parameters()) do p:zeroGrad() end
   return self
end

-- ------------------------------------------------------------------------------------------
-- state

--- stateDict(): path -> tensor for every parameter and buffer (detached, sharing storage).
function Module:stateDict()
   local sd = {}
   for _, e in ipairs(self:namedParameters()) do sd[e[1]] = e[2]:detach() end
   for _, e in ipairs(self:namedBuffers()) do sd[e[1]] = e[2]:detach() end
   return sd
end

local function shape_str(t)
   return "(" .. table.concat(t:shape(), "x") .. ")"
end

local function same_shape(a, b)
   local sa, sb = a:shape(), b:shape()
   if #sa ~= #sb then return false end
   for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
   return true
end

--- loadStateDict(sd [, {strict = true}]): copy values in place (dtype converted). Missing and
--- unexpected entries are errors when strict; mis-shaped entries always are. All problems are
--- listed in one message. Returns {missing = {...}, unexpected = {...}}.
function Module:loadStateDict(sd, opts)
   if type(sd) ~= "table" then error("loadStateDict: a table path -> tensor is expected", 2) end
   local strict = not (opts and opts.strict == false)
   local targets, order = {}, {}
   for _, kind in ipairs{self:namedParameters(), self:namedBuffers()} do
      for _, e in ipairs(kind) do targets[e[1]] = e[2]; order[#order + 1] = e[1] end
   end
   local missing, unexpected, misshaped = {}, {}, {}
   for _, path in ipairs(order) do
      local src = sd[path]
      if src == nil then
         missing[#missing + 1] = path
      elseif not retort.isTensor(src) then
         misshaped[#misshaped + 1] = ("%s: expected a tensor, got %s"):format(path, type(src))
      elseif not same_shape(src, targets[path]) then
         misshaped[#misshaped + 1] = ("%s: checkpoint %s, model %s"):format(
            path, shape_str(src), shape_str(targets[path]))
      end
   end
   for k in pairs(sd) do
      if targets[k] == nil then unexpected[#unexpected + 1] = tostring(k) end
   end
   table.sort(unexpected)
   local problems = {}
   if #misshaped > 0 then problems[#problems + 1] = "size mismatch for " .. table.concat(misshaped, "; ") end
   if strict and #missing > 0 then problems[#problems + 1] = "missing keys: " .. table.concat(missing, ", ") end
   if strict and #unexpected > 0 then
      problems[#problems + 1] = "unexpected keys: " .. table.concat(unexpected, ", ")
   end
   if #problems > 0 then
      error(("loadStateDict (%s): %s"):format(self.__typename, table.concat(problems, "; ")), 2)
   end
   retort.noGrad(function()
      for _, path in ipairs(order) do
         local src = sd[path]
         if src ~= nil then targets[path]:copy_(src) end
      end
   end)
   return {missing = missing, unexpected = unexpected}
end

-- ------------------------------------------------------------------------------------------
-- conversions: replace every parameter and buffer by fn(tensor); parameters keep requiring grad

--- mapTensors(fn): each parameter and buffer becomes fn(itself), recursively. Parameters change in
--- place (t:replace_), so an optimizer built before net:cuda() or net:double() still holds them.
function Module:mapTensors(fn)
   retort.noGrad(function()
      for _, name in ipairs(self._params) do
         local t = self[name]
         if t ~= nil then
            local n = fn(t)
            if not rawequal(n, t) then
               n = n:detach()
               n:requiresGrad()
               t:replace_(n)
            end
         end
      end
      for _, name in ipairs(self._buffers) do
         local t = self[name]
         if t ~= nil then self[name] = fn(t) end
      end
   end)
   for _, name in ipairs(self._children) do self._modules[name]:mapTensors(fn) end
   return self
end

-- buffers holding integers (none today) keep their dtype; floating ones follow the module
local function is_float(t) local d = t:dtype(); return d == "f32" or d == "f64" end

function Module:float() return self:mapTensors(function(t) return is_float(t) and t:float() or t end) end
function Module:double() return self:mapTensors(function(t) return is_float(t) and t:double() or t end) end
function Module:cuda() return self:mapTensors(function(t) return t:cuda() end) end
function Module:cpu() return self:mapTensors(function(t) return t:cpu() end) end

-- the first tensor of `field` ("_params" or "_buffers") depth-first, own before children's,
-- without listing them all (device() runs once per batch in the Distiller)
local function first_tensor(m, field)
   for _, name in ipairs(m[field]) do
      if m[name] ~= nil then return m[name] end
   end
   for _, name in ipairs(m._children) do
      local t = first_tensor(m._modules[name], field)
      if t then return t end
   end
   return nil
end

--- device() -> "cpu" | "cuda": where the first parameter (else buffer) lives; "cpu" when there is none
function Module:device()
   local t = first_tensor(self, "_params") or first_tensor(self, "_buffers")
   return t and t:device() or "cpu"
end

--- type("f32" | "f64" | "float" | "double")
function Module:type(dtype)
   if dtype == nil then return self.__typename end
   if dtype == "f32" or dtype == "float" then return self:float() end
   if dtype == "f64" or dtype == "double" then return self:double() end
   error(("type: unsupported dtype '%s' (expected \"f32\" or \"f64\")"):format(tostring(dtype)), 2)
end

-- ------------------------------------------------------------------------------------------
-- printing

--- extraRepr(): the text after the class name (sizes, options); layers override it.
function Module:extraRepr() return nil end

local function own_count(m)
   local n = 0
   for _, e in ipairs(m:namedParameters()) do n = n + e[2]:numel() end
   return n
end

local function thousands(n)
   local s = tostring(math.floor(n))
   return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function describe(m)
   local extra = m:extraRepr()
   return "nn." .. m.__typename .. (extra and ("(" .. extra .. ")") or "")
end

local function lines(m, indent, out)
   for _, name in ipairs(m._children) do
      local child = m._modules[name]
      local n = own_count(child)
      local count = n > 0 and ("  " .. thousands(n) .. " params") or ""
      out[#out + 1] = ("%s(%s): %s%s"):format(indent, name, describe(child), count)
      lines(child, indent .. "  ", out)
   end
   return out
end

function Module:__tostring()
   local n = own_count(self)
   local out = {describe(self)}
   lines(self, "  ", out)
   local buffers = 0
   for _, b in ipairs(self:buffers()) do buffers = buffers + b:numel() end
   out[#out + 1] = ("total: %s parameters (%s tensors)%s"):format(thousands(n), #self:parameters(),
      buffers > 0 and (", " .. thousands(buffers) .. " buffer elements") or "")
   return table.concat(out, "\n")
end

Module.class = class
Module.isInstance = isInstance
Module.join = join
return Module
