local recipe = require "retort.recipe"
local progress = require "retort.progress"
local metrics = require "retort.train.metrics"

describe("recipe.options", function()
   local defaults = {epochs = 3, lr = 0.1, name = "mlp", verbose = false}

   it("keeps defaults and converts overrides to the default's type", function()
      local o = recipe.options(defaults, {"--epochs=5", "--name=cnn", "--verbose"})
      assert.are.same({epochs = 5, lr = 0.1, name = "cnn", verbose = true}, o)
      assert.are.equal(3, defaults.epochs) -- defaults untouched
      assert.is_false(recipe.options(defaults, {"--verbose=no"}).verbose)
   end)

   it("refuses unknown options with a usage error that suggests the nearest name and lists the known ones", function()
      local ok, err = pcall(recipe.options, defaults, {"--epoch=2"})
      assert.is_false(ok)
      assert.is_true(recipe.isUsageError(err))
      assert.are.equal(2, err.exitStatus)
      local msg = tostring(err)
      assert.matches("^unknown option '%-%-epoch=2' %(did you mean %-%-epochs%?%)\n", msg)
      assert.matches("%-%-epochs=3", msg)
      assert.matches("%-%-lr=0.1", msg)
      -- case, transpositions, a bare word; nothing suggested when no name is near
      local function message(arg) return tostring(select(2, pcall(recipe.options, defaults, {arg}))) end
      assert.matches("(did you mean --verbose?)", message("--VERBOSE"), 1, true)
      assert.matches("(did you mean --epochs?)", message("--epcohs=1"), 1, true)
      assert.matches("(did you mean --name?)", message("name=cnn"), 1, true)
      msg = message("--momentum=0.9")
      assert.matches("^unknown option '%-%-momentum=0.9'\n", msg)
   end)

   it("refuses values of the wrong type", function()
      local ok, err = pcall(recipe.options, defaults, {"--lr=fast"})
      assert.is_false(ok)
      assert.is_true(recipe.isUsageError(err))
      assert.matches("option %-%-lr expects a number, got 'fast'", tostring(err))
      ok, err = pcall(recipe.options, defaults, {"--epochs"})
      assert.is_false(ok)
      assert.matches("needs a value", tostring(err))
   end)

   it("checks the descriptions table against the defaults", function()
      local ok, err = pcall(recipe.options, defaults, {}, {epoch = "epochs to train"})
      assert.is_false(ok)
      assert.matches("bad argument #3 to 'options' (description of 'epoch', which has no default; "
                     .. "did you mean 'epochs'?)", err, 1, true)
      ok, err = pcall(recipe.options, defaults, {}, {epochs = 3})
      assert.is_false(ok)
      assert.matches("description of 'epochs' must be a string, got number", err, 1, true)
      ok, err = pcall(recipe.options, defaults, {}, "epochs")
      assert.is_false(ok)
      assert.matches("bad argument #3 to 'options' (table of descriptions expected, got string)", err, 1, true)
      assert.are.same(defaults, recipe.options(defaults, {}, {epochs = "epochs to train"}))
   end)

   it("--help text: every option with its default and description, sorted, descriptions aligned", function()
      local descriptions = {epochs = "epochs to train", lr = "learning rate", verbose = "print more",
                            name = "model name, a description long enough that it has to wrap onto a second line of"
                                   .. " the help text when the terminal is a hundred columns wide"}
      local text = recipe.helpText(defaults, descriptions)
      local lines = {}
      for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal("options (--name=default):", lines[1])
      local order, column = {}, nil
      for _, l in ipairs(lines) do
         local head, desc = l:match("^  (%-%-%S+)(%s+%S.*)$")
         if head then
            order[#order + 1] = head
            local at = #l - #desc + #desc:match("^%s+") + 1
            column = column or at
            assert.are.equal(column, at, "description column of " .. head)
            assert.is_true(#l <= 100, "line longer than 100 columns: " .. l)
         end
      end
      assert.are.same({"--epochs=3", "--lr=0.1", "--name=mlp", "--verbose=false"}, order)
      local flat = text:gsub("%s+", " ")
      for k, d in pairs(descriptions) do
         local shown = ("--%s=%s %s"):format(k, tostring(defaults[k]), d)
         assert.truthy(flat:find(shown, 1, true), "help lacks: " .. shown)
      end
      -- options without a description are listed too; an empty string default shows as ""
      assert.truthy(recipe.helpText({dir = ""}):find('\n  --dir=""\n', 1, true))
   end)

   it("resolves a device option at once, refusing a GPU it cannot have", function()
      local has_cuda, why = require("retort").cuda.isAvailable()
      local d = {device = "cpu"}
      assert.are.equal("cpu", recipe.options(d, {}).device)
      assert.are.equal(has_cuda and "cuda" or "cpu", recipe.options(d, {"--device=auto"}).device)
      local ok, err = pcall(recipe.options, d, {"--device=gpu"})
      assert.is_false(ok)
      assert.are.equal('option --device must be "cpu", "cuda" or "auto", got gpu', tostring(err))
      assert.is_true(recipe.isUsageError(err))
      if not has_cuda then
         ok, err = pcall(recipe.options, d, {"--device=cuda"})
         assert.is_false(ok)
         assert.are.equal('option --device is "cuda" but CUDA is not available: ' .. why, tostring(err))
      end
   end)
end)

describe("option names: suggestions", function()
   local options = require "retort.options"

   -- Optimal-string-alignment distance by its recursive definition (memoized), case-insensitive:
   -- the reference for options.distance.
   local function osa(a, b)
      a, b = a:lower(), b:lower()
      local memo = {}
      local function d(i, j)
         if i == 0 then return j end
         if j == 0 then return i end
         local key = i * 1000 + j
         if memo[key] then return memo[key] end
         local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
         local v = math.min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + cost)
         if i > 1 and j > 1 and a:sub(i, i) == b:sub(j - 1, j - 1) and a:sub(i - 1, i - 1) == b:sub(j, j) then
            v = math.min(v, d(i - 2, j - 2) + 1)
         end
         memo[key] = v
         return v
      end
      return d(#a, #b)
   end

   it("distance is the case-insensitive optimal-string-alignment distance", function()
      assert.are.equal(1, options.distance("epoch", "epochs"))
      assert.are.equal(1, options.distance("epcohs", "epochs"))
      assert.are.equal(0, options.distance("weightdecay", "weightDecay"))
      assert.are.equal(3, options.distance("", "abc"))
      -- random short words over a small alphabet (so that transpositions and case matter)
      local seed = 12345
      local function rand(n)
         seed = (seed * 1103515245 + 12345) % 2147483648
         return seed % n
      end
      local alphabet = "abcAB"
      local function word()
         local t = {}
         for i = 1, rand(7) do
            local k = rand(#alphabet) + 1
            t[i] = alphabet:sub(k, k)
         end
         return table.concat(t)
      end
      for _ = 1, 300 do
         local a, b = word(), word()
         assert.are.equal(osa(a, b), options.distance(a, b), ("distance(%q, %q)"):format(a, b))
      end
   end)

   it("suggests the nearest known name, a unique prefix, or nothing", function()
      local names = {"epochs", "lr", "T", "teacher", "teacherModel", "weightDecay"}
      assert.are.equal("epochs", options.suggest("epoch", names))
      assert.are.equal("weightDecay", options.suggest("weightdecay", names))
      assert.are.equal("T", options.suggest("t", names))
      assert.are.equal("teacherModel", options.suggest("techerModel", names))
      assert.is_nil(options.suggest("lx", {"T"}))      -- two edits in a two-letter name: no guess
      assert.is_nil(options.suggest("zzzzzz", names))
      assert.are.equal("weightDecay", options.suggest("weig", names)) -- a prefix of one name only
      assert.is_nil(options.suggest("teac", names))                  -- a prefix of two: no guess
      assert.are.equal("epochs", options.suggest("epoch", {epochs = true, lr = true})) -- a set works too
   end)

   it("check's unknown-key errors say 'did you mean'", function()
      local ok, err = pcall(options.check, "Loader", {batchsize = 2}, {batchSize = true, shuffle = true}, 1)
      assert.is_false(ok)
      assert.matches("Loader: unknown option 'batchsize' (known: batchSize, shuffle); did you mean 'batchSize'?", err,
                     1, true)
      ok, err = pcall(options.check, "Loader", {xyz = 2}, {batchSize = true}, 1)
      assert.is_false(ok)
      assert.are.equal("Loader: unknown option 'xyz' (known: batchSize)", err:match("Loader: .*$"))
   end)
end)

describe("recipe.optimizer", function()
   local retort = require "retort"
   it("builds SGD or RMSProp on a cosine learning rate, and refuses other names", function()
      local p = {retort.zeros(2):requiresGrad()}
      local sgd = recipe.optimizer(p, {lr = 0.1, momentum = 0.9, weightDecay = 0}, 4)
      assert.are.equal("SGD", sgd.name)
      assert.are.equal(0.1, sgd:currentLr())
      local rms = recipe.optimizer(p, {optimizer = "rmsprop", lr = 1e-3, weightDecay = 0}, 4)
      assert.are.equal("RMSProp", rms.name)
      local ok, err = pcall(recipe.optimizer, p, {optimizer = "adagrad", lr = 1}, 1)
      assert.is_false(ok); assert.matches("--optimizer must be sgd or rmsprop, got adagrad", err, 1, true)
   end)
end)

describe("progress", function()
   it("prints plain lines with rate, values and a final elapsed time when not on a terminal", function()
      local path = os.tmpname()
      local f = io.open(path, "w")
      local p = progress.new{total = 100, label = "epoch 1/1", stream = f, tty = false, every = 0}
      p:update(50, {loss = 0.5})
      p:update(50)
      p:finish{loss = 0.25}
      f:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert.matches("epoch 1/1%s+50%%%s+50/100%s+[%d%.k]+ ex/s%s+loss 0.5%s+ETA", text)
      assert.matches("100%%%s+100/100.*loss 0.25%s+%d+:%d%d\n$", text)
   end)
end)

describe("metrics files", function()
   it("round-trips CSV rows and keeps the header when appending", function()
      local path = os.tmpname() .. ".csv"
      local w = metrics.open(path, {columns = {"epoch", "loss", "acc"}})
      w:write{epoch = 1, loss = 0.5}
      w:close()
      w = metrics.open(path, {append = true})
      w:write{epoch = 2, loss = 0.25, acc = 0.75}
      w:close()
      local rows = metrics.read(path)
      os.remove(path)
      assert.are.same({{epoch = 1, loss = 0.5}, {epoch = 2, loss = 0.25, acc = 0.75}}, rows)
   end)

   it("writes JSON lines with non-finite numbers as null", function()
      local path = os.tmpname() .. ".jsonl"
      local w = metrics.open(path)
      w:write{epoch = 1, loss = 0 / 0, split = "train"}
      w:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert.are.equal('{"epoch":1,"loss":null,"split":"train"}\n', text)
   end)
end)
