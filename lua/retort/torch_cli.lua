-- `retort import-torch` and `retort export-torch`: PyTorch state dicts in and out from the command
-- line (the work is retort/interop/torch.lua's; docs/checkpoint.md is the user's page).
--
--   retort import-torch teacher.pth teacher.h5 --model=resnet32x4 [--num_classes=100]
--   retort export-torch runs/s/best.h5 student.pth --model=resnet8x4 [--container=model]
--
-- Options take --name=value or --name value. Exit status: 0 done; 2 anything that stops it (a
-- mistake on the command line, a file that cannot be read or does not match the model, a missing
-- python3-torch), with a plain `retort import-torch: ...` message and no traceback; 130 on Ctrl-C.
local M = {}

local USAGE = {
   import = [[
usage: retort import-torch IN.pth OUT.h5 --model=NAME [--num_classes=N] [--modelOptions=TABLE] [--strip=PREFIX]
Converts a PyTorch state dict (a bare one, or one under the key 'model', 'state_dict' or 'net') into
a retort checkpoint that retort.load and Module:loadStateDict take: net:loadStateDict(retort.load(OUT).model).
The file is read with torch.load(weights_only=True) (Debian's python3-torch and python3-h5py).
  --model=NAME         the retort model (retort.models): resnet8..110, resnet8x4, resnet32x4,
                       wrn_16_1..wrn_40_2, vgg8..vgg19, MobileNetV2, ShuffleV1, ShuffleV2,
                       ResNet18..ResNet152, mlp, cnn
  --num_classes=N      its number of classes (default: the model's own, 100 for the CIFAR models)
  --modelOptions=TABLE other options of the model as a Lua table, e.g. 'sizes={784,800,800,10}'
  --strip=PREFIX       remove PREFIX from every key first (nn.DataParallel's 'module.')
  -h, --help           this help
Tensors of the file that map to no tensor of the model, and tensors of the model the file lacks,
are an error that lists every one with its shape. docs/checkpoint.md has the details.]],
   export = [[
usage: retort export-torch IN.h5 OUT.pth [--model=NAME] [--num_classes=N] [--modelOptions=TABLE] [--container=KEY]
Writes the model state of a retort checkpoint (its /model: what train.fit, retort.save{model = net}
and import-torch write) as a PyTorch state dict with PyTorch's names, which
torch.load(OUT, weights_only=True) reads and load_state_dict takes.
  --model=NAME         the retort model the checkpoint holds (not needed for one import-torch made)
  --num_classes=N      its number of classes (default: the model's own)
  --modelOptions=TABLE other options of the model as a Lua table, e.g. 'sizes={784,800,800,10}'
  --container=KEY      save {KEY: state_dict} (e.g. model, as RepDistiller does) instead of the bare dict
  -h, --help           this help]],
}

local OWN = {
   import = {model = true, num_classes = true, modelOptions = true, strip = true, help = true},
   export = {model = true, num_classes = true, modelOptions = true, container = true, help = true},
}

local function fail(cmd, msg)
   msg = tostring(msg)
   io.stderr:write("retort ", cmd, "-torch: ", msg, "\n")
   io.stderr:flush()
   os.exit(msg:find("interrupted!", 1, true) and 130 or 2)
end

local function parse(cmd, args)
   local o, files = {}, {}
   local i = 1
   local function usage_error(msg) fail(cmd, msg .. "\n" .. USAGE[cmd]) end
   while i <= #args do
      local a = args[i]
      if a == "-h" or a == "--help" then
         print(USAGE[cmd])
         os.exit(0)
      end
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-(.+)$") end
      if a == "--" then
         for j = i + 1, #args do files[#files + 1] = args[j] end
         break
      elseif name then
         if not OWN[cmd][name] then
            local hint = require("retort.options").suggest(name, OWN[cmd])
            usage_error(("unknown option '%s'%s"):format(a, hint and (" (did you mean --%s?)"):format(hint) or ""))
         end
         if value == nil then
            i = i + 1
            value = args[i]
            if value == nil then usage_error(("--%s needs a value"):format(name)) end
         end
         o[name] = value
      elseif a:match("^%-.") then
         usage_error(("unknown option '%s'"):format(a))
      else
         files[#files + 1] = a
      end
      i = i + 1
   end
   if #files ~= 2 then
      usage_error(#files < 2 and ("expected an input and an output file, got %d file%s"):format(#files,
         #files == 1 and "" or "s") or ("expected an input and an output file, got %d: %s"):format(
         #files, table.concat(files, " ")))
   end
   if cmd == "import" and not o.model then usage_error("--model=NAME is required") end
   return o, files[1], files[2]
end

--- main(args, cmd): cmd "import" or "export"; args are the words after the subcommand.
function M.main(args, cmd)
   if cmd ~= "import" and cmd ~= "export" then error("torch_cli.main: cmd must be 'import' or 'export'", 2) end
   local o, src, dst = parse(cmd, args or {})
   local torch = require "retort.interop.torch"
   local ok, err = pcall(function()
      local mopts = o.modelOptions and torch.parseModelOptions(o.modelOptions) or nil
      if cmd == "import" then
         local _, info = torch.importFile(src, dst, o.model, {numClasses = o.num_classes, options = mopts,
                                                              optionsText = o.modelOptions, strip = o.strip})
         local dropped = 0
         for _ in pairs(info.numBatchesTracked) do dropped = dropped + 1 end
         print(("%s -> %s: %d tensors of %s%s%s"):format(src, dst, info.count - dropped, o.model,
            info.container ~= "" and (" (the state dict under '" .. info.container .. "')") or "",
            dropped > 0 and ("; %d num_batches_tracked counters kept aside"):format(dropped) or ""))
      else
         local n, _, name = torch.exportFile(src, dst, o.model, {numClasses = o.num_classes, options = mopts,
                                                                  container = o.container})
         print(("%s -> %s: %d tensors of %s%s"):format(src, dst, n, name,
            o.container and (" under '" .. o.container .. "'") or ""))
      end
   end)
   if not ok then fail(cmd, err) end
end

return M
