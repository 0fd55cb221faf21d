-- `retort export-onnx`: a checkpoint's model as an ONNX file (retort.onnx.export does the work).
--
--   retort export-onnx runs/cifar/resnet8x4/best.h5 --model=resnet8x4 --out=resnet8x4.onnx
--   retort export-onnx runs/mlp/best.h5 --model=mlp --modelOptions='{sizes = {784, 800, 800, 10}}' --out=mlp.onnx
--
-- The checkpoint holds weights, not the architecture: --model names it as retort.models.get does,
-- built with the options it was trained with (--classes, --modelOptions); the weights are loaded
-- strictly, so a wrong architecture or option is an error that lists the mismatched entries. The
-- sample the model is traced on is zeros of --batch x --input (its values do not matter).
-- Exit status: 0 written; 1 the checkpoint, the model or the export failed; 2 a mistake on the
-- command line. Messages go to stderr as `retort export-onnx: ...`.
local M = {}

local USAGE = [[
usage: retort export-onnx CHECKPOINT --model=NAME --out=FILE.onnx [options]
Writes the model saved in CHECKPOINT (a retort.save file: runs/x/best.h5) as an ONNX file.
  --model=NAME         its architecture, a name retort.models.get knows (resnet8x4, mlp, cnn, ...)
  --out=FILE           the ONNX file to write
  --classes=N          the classes it was built with (default: the model's own default)
  --modelOptions=LUA   more options of the model, a Lua table: '{sizes = {784, 800, 800, 10}}'
  --input=CxHxW        one example's shape (default: mlp its first size, cnn 1x28x28, else 3x32x32)
  --batch=N            the batch of the sample it is traced on (default 2)
  --opset=N            the ONNX opset, 13 (default) to 17
  --staticBatch        a fixed batch size (--batch) instead of the symbolic N
  --taps=a,b           extra outputs: the outputs of these module paths (e.g. pool)
  -h, --help           this help]]

local OWN = {model = true, out = true, classes = true, modelOptions = true, input = true, batch = true, opset = true,
             staticBatch = true, taps = true, help = true}
local FLAGS = {staticBatch = true}

local function fail(status, msg)
   io.stderr:write("retort export-onnx: ", tostring(msg), "\n")
   io.stderr:flush()
   os.exit(status)
end

local function parse(args)
   return require("retort.cli_args").parse(args, {known = OWN, flags = FLAGS, usage = USAGE, fail = fail})
end

local function positive_int(name, s)
   local n = math.tointeger(tonumber(s))
   if not n or n < 1 then fail(2, ("--%s must be a positive integer, got '%s'"):format(name, tostring(s))) end
   return n
end

local function model_options(o)
   local opts = {}
   if o.modelOptions then
      local chunk, err = load("return " .. o.modelOptions, "=--modelOptions", "t", {})
      local ok, t = false, err
      if chunk then ok, t = pcall(chunk) end
      if not ok or type(t) ~= "table" then
         fail(2, ("--modelOptions must be a Lua table such as '{sizes = {784, 800, 10}}': %s"):format(
            ok and ("got " .. type(t)) or tostring(t)))
      end
      opts = t
   end
   if o.classes then opts.classes = positive_int("classes", o.classes) end
   return opts
end

-- one example's shape: --input, else what the architecture takes
local function input_shape(o, name, net, opts)
   if o.input then
      local shape = {}
      for part in tostring(o.input):gmatch("[^x]+") do shape[#shape + 1] = positive_int("input", part) end
      if #shape == 0 then fail(2, "--input must be sizes joined by x, such as 3x32x32") end
      return shape
   end
   if name == "mlp" then return {net.sizes[1]} end
   if name == "cnn" then return {opts.inChannels or 1, opts.size or 28, opts.size or 28} end
   return {opts.inChannels or 3, 32, 32}
end

local function megabytes(n) return ("%.1f MB"):format(n / 1e6) end

function M.main(args)
   local o, files = parse(args or {})
   if #files ~= 1 then
      fail(2, (#files == 0 and "no checkpoint given" or "one checkpoint at a time") .. "\n" .. USAGE)
   end
   if not o.model then fail(2, "--model is missing (the checkpoint's architecture)\n" .. USAGE) end
   if not o.out then fail(2, "--out is missing (the ONNX file to write)\n" .. USAGE) end
   local opset = o.opset and positive_int("opset", o.opset) or 13
   local batch = o.batch and positive_int("batch", o.batch) or 2
   local taps = {}
   for t in tostring(o.taps or ""):gmatch("[^,]+") do taps[#taps + 1] = t end
   local opts = model_options(o)

   local retort = require "retort"
   local ok, why = retort.onnx.available()
   if not ok then fail(1, why) end
   local path = files[1]
   local lok, ck = pcall(retort.load, path)
   if not lok then fail(1, tostring(ck)) end
   if type(ck.model) ~= "table" then
      fail(1, ("%s holds no model (the /model group retort.save writes for {model = net})"):format(path))
   end
   local bok, net = pcall(retort.models.get, o.model, opts)
   if not bok then fail(1, tostring(net)) end
   local sok, serr = pcall(net.loadStateDict, net, ck.model)
   if not sok then
      fail(1, ("%s does not fit --model=%s: %s\n(give the options it was trained with: --classes, --modelOptions)")
         :format(path, o.model, tostring(serr)))
   end
   local shape = input_shape(o, o.model, net, opts)
   local sample = retort.zeros({batch, table.unpack(shape)})
   local eok, info = pcall(retort.onnx.export, net, sample, o.out,
      {opset = opset, dynamicBatch = not o.staticBatch, taps = taps})
   if not eok then fail(1, tostring(info)) end
   print(("wrote %s (%s): %s, opset %d, %d nodes: %s"):format(o.out, megabytes(info.bytes), o.model, info.opset,
      info.nodes, retort.onnx.summary(info.ops)))
   for _, kind in ipairs{"inputs", "outputs"} do
      for _, v in ipairs(info[kind]) do
         local label = kind == "inputs" and "input" or "output"
         print(("  %-6s %s  (%s)"):format(label, v.name, table.concat(v.shape, ", ")))
      end
   end
end

return M
