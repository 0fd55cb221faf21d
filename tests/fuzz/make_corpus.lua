-- Seed corpus of the readers written in Lua, made with retort itself (run by the `retort` host):
--   retort tests/fuzz/make_corpus.lua OUT
-- writes OUT/checkpoint/*.h5 (retort.save), OUT/cache/*.h5 (retort.cache.build) and
-- OUT/hdf5_dataset/*.h5 (core.h5Create, as retort writes datasets). The files are small (a few
-- KB: the fuzzer mutates every byte, and its -max_len follows the largest seed) and valid: each is
-- read back here before it is kept, so a seed that does not load is a failure of this script.
-- Everything is seeded: the same files every run.
local retort = require "retort"
local core = retort.core
local nn = retort.nn

local out = assert(arg[1], "usage: retort tests/fuzz/make_corpus.lua OUT")
for _, d in ipairs{"checkpoint", "cache", "hdf5_dataset"} do assert(core.mkdir(out .. "/" .. d)) end
retort.manualSeed(7)

local function checked(path, load)
   local ok, err = pcall(load, path)
   if not ok then error(("make_corpus: the seed %s does not read back: %s"):format(path, tostring(err)), 0) end
end

-- checkpoints: the MLP that fuzz_checkpoint.c loads states into, with its SGD state after a step
local mlp = nn.Sequential():add("fc1", nn.Linear(4, 3)):add("relu", nn.ReLU()):add("fc2", nn.Linear(3, 2))
local sgd = retort.optim.SGD(mlp:parameters(), {lr = 0.1, momentum = 0.9})
local x, y = retort.randn(5, 4), retort.tensor({1, 2, 1, 2, 2}, "i64")
sgd:zeroGrad()
retort.loss.crossEntropy(mlp:forward(x), y):backward()
sgd:step()
retort.save(out .. "/checkpoint/mlp.h5", {model = mlp, optim = sgd, epoch = 3, rng = retort.getRngState(),
                                           options = {lr = 0.1, arch = "mlp", nesterov = true}})

local cnn = nn.Sequential():add("conv", nn.Conv2d(1, 2, 3, {padding = 1})):add("bn", nn.BatchNorm2d(2))
   :add("relu", nn.ReLU()):add("flatten", nn.Flatten()):add("fc", nn.Linear(2 * 4 * 4, 3))
local adam = retort.optim.Adam(cnn:parameters(), {lr = 1e-3})
adam:zeroGrad()
retort.loss.crossEntropy(cnn:forward(retort.randn(2, 1, 4, 4)), retort.tensor({1, 3}, "i64")):backward()
adam:step()
retort.save(out .. "/checkpoint/cnn.h5", {model = cnn, optim = adam, epoch = 1})

retort.save(out .. "/checkpoint/values.h5", {
   f32 = retort.randn(2, 3), f64 = retort.randn(2, "f64"), i64 = retort.tensor({-3, 0, 2 ^ 40}, "i64"),
   u8 = retort.tensor({{0, 255}, {7, 128}}, "u8"), scalar = retort.tensor(2.5), empty = retort.zeros(0, 3),
   int = 3, float = 0.25, inf = math.huge, yes = true, no = false, name = "mlp", blank = "",
   nested = {a = {b = {c = retort.ones(2), d = 1}}, e = {}},
   list = {10, 20.5, "x", false, retort.zeros(1), {k = "v"}},
   sparse = {[1] = "a", [5] = "e", [-2] = "neg"},
})
for _, f in ipairs{"mlp", "cnn", "values"} do checked(("%s/checkpoint/%s.h5"):format(out, f), retort.load) end

-- soft-target caches over 6 tiny images of 3 classes
local teacher = nn.Sequential():add("conv", nn.Conv2d(1, 2, 3, {padding = 1})):add("relu", nn.ReLU())
   :add("pool", nn.MaxPool2d(2)):add("flatten", nn.Flatten()):add("fc", nn.Linear(2 * 2 * 2, 3))
local function loader(views)
   local d = retort.data.randomImages{n = 6, classes = 3, height = 4, width = 4, seed = 3}
   return retort.data.Loader(d, {batchSize = 4, shuffle = true, seed = 1, views = views,
                                 augment = views and {crop = 1, flip = true} or nil})
end
local caches = {
   plain = {},
   views = {views = 2, loader = loader(2)},
   taps = {taps = {"relu"}},
}
for name, o in pairs(caches) do
   local path = ("%s/cache/%s.h5"):format(out, name)
   os.remove(path)
   retort.cache.build{teacher = teacher, data = o.loader or loader(), path = path, views = o.views, taps = o.taps,
                      blockRows = 4, quiet = true}
   checked(path, function(p) return retort.cache.open(p, {partial = true}):summary() end)
end

-- datasets as retort writes them (/images N C H W, /labels 0-based)
local function h5data(name, images, labels)
   local path = ("%s/hdf5_dataset/%s.h5"):format(out, name)
   local f = core.h5Create(path)
   f:write("/images", images)
   f:write("/labels", labels)
   f:close()
   checked(path, function(p) return retort.data.hdf5{path = p}:fingerprint() end)
end
h5data("retort_u8", (retort.rand(4, 1, 3, 3) * 255):byte(), retort.tensor({0, 2, 1, 2}, "i64"))
h5data("retort_f32", retort.randn(5, 3), retort.tensor({1, 0, 1, 1, 0}, "i64"))
