-- The names PyTorch gives a retort model's parameters and buffers: one table per model family, used
-- by `retort import-torch` / `export-torch` (retort/interop/torch.lua). The PyTorch side is the
-- published code the family follows (RepDistiller's models/*.py for the CIFAR models; for retort's
-- own mlp and cnn, a PyTorch module with the same attribute names, as docs/checkpoint.md shows).
--
-- A retort state key becomes a PyTorch one in three steps, always in this order:
--   1. the family's renames: Lua patterns tried in turn on the whole key, each applied at most once
--      (e.g. WRN's "block1.2.shortcut.weight" -> "block1.layer.2.convShortcut.weight");
--   2. every numeric component minus one: retort numbers the unnamed children of a Sequential from
--      1, PyTorch's nn.Sequential / nn.ModuleList from 0 ("layer1.1.conv1" -> "layer1.0.conv1");
--   3. BatchNorm's buffers: runningMean -> running_mean, runningVar -> running_var.
-- PyTorch's num_batches_tracked has no retort counterpart: an import drops it (interop/torch.lua
-- keeps its value aside for an export back). Conv2d weights (out, in/groups, kh, kw), Linear weights
-- (out, in) and BatchNorm vectors have the same layout in both frameworks, so no family here needs a
-- transposition; a family that did would say so in its entry (`layout`), and a shape that differs
-- is an error, never reshaped.
-- Names are never guessed: the mapping is computed from the retort model's own keys, and a tensor
-- of the file that none of them maps to (or a key the file lacks) is an error listing every one.
local M = {}

-- family (the model's class name) -> {source = where the PyTorch names come from, rename = {{pattern,
-- replacement}, ...}}; models.get names map to these classes (resnet20 -> ResNet, ...). Numbers in a
-- replacement are still retort's, 1-based: step 2 lowers them (".downsample.1." ends as downsample.0).
M.families = {
   ResNet = { -- RepDistiller models/resnet.py: resnet8..110, resnet8x4, resnet32x4
      source = "RepDistiller models/resnet.py",
      rename = {{"%.shortcut%.conv%.", ".downsample.1."}, {"%.shortcut%.bn%.", ".downsample.2."}},
   },
   ResNetV2 = { -- RepDistiller models/resnetv2.py: ResNet18..152 (its shortcut is an nn.Sequential)
      source = "RepDistiller models/resnetv2.py",
      rename = {{"%.shortcut%.conv%.", ".shortcut.1."}, {"%.shortcut%.bn%.", ".shortcut.2."}},
   },
   WideResNet = { -- RepDistiller models/wrn.py: wrn_16_1 .. wrn_40_2 (blocks inside NetworkBlock.layer)
      source = "RepDistiller models/wrn.py",
      rename = {{"^(block%d+)%.", "%1.layer."}, {"%.shortcut%.", ".convShortcut."}, {"^bn%.", "bn1."}},
   },
   VGG = {source = "RepDistiller models/vgg.py (vgg8_bn .. vgg19_bn)", rename = {}},
   MobileNetV2 = {source = "RepDistiller models/mobilenetv2.py", rename = {}},
   ShuffleNetV1 = {source = "RepDistiller models/ShuffleNetv1.py", rename = {}},
   ShuffleNetV2 = {source = "RepDistiller models/ShuffleNetv2.py", rename = {}},
   MLP = {source = "retort's models.mlp: a module with attributes fc1, fc2, ... (docs/checkpoint.md)", rename = {}},
   CNN = {source = "retort's models.cnn: a module with attributes conv1, conv2, ..., fc1, fc2 (docs/checkpoint.md)",
          rename = {}},
}

local LEAVES = {runningMean = "running_mean", runningVar = "running_var"}

local function known()
   local names = {}
   for k in pairs(M.families) do names[#names + 1] = k end
   table.sort(names)
   return table.concat(names, ", ")
end

--- family(model): the name table of model's class, or an error naming the classes that have one.
function M.family(model)
   local cls = type(model) == "table" and model.__typename
   local fam = cls and M.families[cls]
   if not fam then
      error(("no PyTorch name table for %s (PyTorch names are known for the classes %s)")
         :format(cls and ("class " .. cls) or "this value", known()), 0)
   end
   return fam, cls
end

--- toTorch(family, key): the PyTorch name of the retort state key `key` (see the header).
function M.toTorch(fam, key)
   local name = key
   for _, r in ipairs(fam.rename) do name = name:gsub(r[1], r[2], 1) end
   local parts = {}
   for part in name:gmatch("[^.]+") do
      local n = part:match("^%d+$") and tonumber(part)
      parts[#parts + 1] = n and tostring(n - 1) or part
   end
   parts[#parts] = LEAVES[parts[#parts]] or parts[#parts]
   return table.concat(parts, ".")
end

--- mapping(model): {retort key -> PyTorch name}, {PyTorch name -> retort key}, and the retort keys in
--- PyTorch's state_dict order (module by module depth first, each module's parameters, then its
--- buffers), for every tensor of model:stateDict(). Two keys mapping to one name would be a broken
--- table: an error, not a silent overwrite.
function M.mapping(model)
   local fam = M.family(model)
   local toTorch, toRetort, order = {}, {}, {}
   for _, e in ipairs(model:namedModules()) do
      local path, m = e[1], e[2]
      for _, kind in ipairs{"_params", "_buffers"} do
         for _, field in ipairs(m[kind]) do
            if m[field] ~= nil then
               local key = path == "" and field or (path .. "." .. field)
               local name = M.toTorch(fam, key)
               if toRetort[name] then
                  error(("torch_names: %s and %s both map to the PyTorch name %s"):format(toRetort[name], key, name), 2)
               end
               toTorch[key], toRetort[name] = name, key
               order[#order + 1] = key
            end
         end
      end
   end
   return toTorch, toRetort, order
end

return M
