-- retort.save / retort.load: round trips of every kind of value, modules and optimizers through
-- their state, the atomic write, errors (not HDF5, not a checkpoint, newer version, missing file,
-- unstorable values), the raw HDF5 binding, and readability by h5py / h5dump when installed.
local retort = require "retort"
local core = retort.core
local support = require "support"
local nn = retort.nn

-- Whether a temporary of checkpoint p (p.tmp-...) is in its folder.
local function has_temporary(p)
   local dir, base = p:match("^(.*)/([^/]*)$")
   local h = io.popen("ls -a " .. support.shquote(dir))
   local listing = h:read("a"); h:close()
   return listing:find(base .. ".tmp-", 1, true) ~= nil
end

local function tmp(suffix)
   local p = os.tmpname()
   os.remove(p)
   return p .. (suffix or ".h5")
end

local function exists(p)
   local f = io.open(p, "rb")
   if f then f:close() end
   return f ~= nil
end

local function same(a, b)
   assert.are.same(a:shape(), b:shape())
   assert.are.equal(a:dtype(), b:dtype())
   assert.are.same(a:totable(), b:totable())
end

describe("retort.save / retort.load", function()
   it("round-trips tensors of every dtype, nested tables, numbers, booleans and strings", function()
      local p = tmp()
      local data = {
         f32 = retort.randn(3, 4), f64 = retort.randn(2, 2, "f64"), i64 = retort.tensor({-3, 0, 2 ^ 40}, "i64"),
         u8 = retort.tensor({{0, 255}, {7, 128}}, "u8"), scalar = retort.tensor(2.5), empty = retort.zeros(0, 3),
         strided = retort.arange(1, 12):view(3, 4):transpose(1, 2),
         epoch = 3, lr = 0.1, whole = 2.0, big = math.maxinteger, neg = -7, inf = math.huge,
         yes = true, no = false, name = "mlp-784", unicode = "héllo ✓", blank = "",
         nested = {a = {b = {c = retort.ones(2), d = 1}}, e = {}},
         list = {10, 20.5, "x", false, retort.zeros(1), {k = "v"}},
         sparse = {[1] = "a", [5] = "e", [-2] = "neg"},
         ["key with spaces.and dots"] = 1,
      }
      retort.save(p, data)
      local ck = retort.load(p)
      for _, k in ipairs{"f32", "f64", "i64", "u8", "scalar", "empty"} do same(ck[k], data[k]) end
      assert.are.same(data.strided:totable(), ck.strided:totable())
      assert.are.equal(3, ck.epoch); assert.are.equal("integer", math.type(ck.epoch))
      assert.are.equal(0.1, ck.lr)
      assert.are.equal("float", math.type(ck.whole))
      assert.are.equal(math.maxinteger, ck.big)
      assert.are.equal(-7, ck.neg)
      assert.are.equal(math.huge, ck.inf)
      assert.is_true(ck.yes); assert.is_false(ck.no)
      assert.are.equal("mlp-784", ck.name); assert.are.equal("héllo ✓", ck.unicode); assert.are.equal("", ck.blank)
      same(ck.nested.a.b.c, data.nested.a.b.c)
      assert.are.equal(1, ck.nested.a.b.d)
      assert.are.same({}, ck.nested.e)
      assert.are.equal(6, #ck.list)
      assert.are.equal(10, ck.list[1]); assert.are.equal(20.5, ck.list[2]); assert.are.equal("x", ck.list[3])
      assert.is_false(ck.list[4]); same(ck.list[5], data.list[5]); assert.are.equal("v", ck.list[6].k)
      assert.are.same({[1] = "a", [5] = "e", [-2] = "neg"}, ck.sparse)
      assert.are.equal(1, ck["key with spaces.and dots"])
      os.remove(p)
   end)

   it("stores a module as one group per module path and gives back its state dict", function()
      local p = tmp()
      retort.manualSeed(3)
      local net = nn.Sequential():add("fc1", nn.Linear(4, 3)):add("relu", nn.ReLU()):add("fc2", nn.Linear(3, 2))
      retort.save(p, {model = net})
      local f = core.h5Open(p)
      assert.are.equal("dataset", f:kind("/model/fc1/weight"))
      assert.are.equal("stateDict", f:getAttr("/model", "retort.kind"))
      assert.are.equal("retort.checkpoint", f:getAttr("/", "format"))
      assert.are.equal(1, f:getAttr("/", "version"))
      f:close()
      local ck = retort.load(p)
      local sd = net:stateDict()
      local n = 0
      for k, v in pairs(sd) do same(ck.model[k], v); n = n + 1 end
      for _ in pairs(ck.model) do n = n - 1 end
      assert.are.equal(0, n)
      retort.manualSeed(4)
      local other = nn.Sequential():add("fc1", nn.Linear(4, 3)):add("relu", nn.ReLU()):add("fc2", nn.Linear(3, 2))
      other:loadStateDict(ck.model)
      local x = retort.randn(5, 4)
      assert.are.same(net:forward(x):totable(), other:forward(x):totable())
      os.remove(p)
   end)

   it("round-trips an optimizer's state so that training continues identically", function()
      local p = tmp()
      local function setup()
         retort.manualSeed(5)
         local net = nn.Sequential():add("fc", nn.Linear(3, 2))
         return net, retort.optim.Adam(net:parameters(), {lr = 0.01})
      end
      local function step(net, opt, x)
         opt:zeroGrad()
         local l = net:forward(x):pow(2):mean()
         l:backward()
         opt:step()
      end
      local x = retort.randn(4, 3)
      local a, oa = setup()
      step(a, oa, x); step(a, oa, x)
      retort.save(p, {model = a, optim = oa, rng = retort.getRngState()})
      step(a, oa, x)
      local b, ob = setup()
      local ck = retort.load(p)
      b:loadStateDict(ck.model); ob:loadStateDict(ck.optim)
      step(b, ob, x)
      for k, v in pairs(a:stateDict()) do assert.are.same(v:totable(), b:stateDict()[k]:totable()) end
      os.remove(p)
   end)

   it("saves and restores the default generator's state", function()
      local p = tmp()
      retort.manualSeed(11)
      retort.randn(7)
      retort.save(p, {rng = retort.getRngState()})
      local want = retort.randn(5):totable()
      retort.manualSeed(999)
      retort.setRngState(retort.load(p).rng)
      assert.are.same(want, retort.randn(5):totable())
      os.remove(p)
   end)

   it("saves past a handle an interrupt left open: each file written has a temporary of its own", function()
      -- a Ctrl-C landing between a save's h5Create and its protected writes leaves that handle open
      -- until it is collected; the interrupted run's own save of the same path must still work
      local p = tmp()
      local leaked = core.h5Create(p)
      retort.save(p, {epoch = 3})
      assert.are.equal(3, retort.load(p).epoch)
      leaked:abort()
      assert.are.equal(3, retort.load(p).epoch)
      assert.is_false(has_temporary(p))
      os.remove(p)
   end)

   it("writes atomically: a failed save leaves the previous file and no temporary behind", function()
      local p = tmp()
      retort.save(p, {epoch = 1})
      local ok, err = pcall(retort.save, p, {epoch = 2, bad = function() end})
      assert.is_false(ok)
      assert.matches("/bad is a function", err, 1, true)
      assert.are.equal(1, retort.load(p).epoch)
      assert.is_false(has_temporary(p))
      os.remove(p)
   end)

   it("refuses values and keys it cannot store, naming them", function()
      local p = tmp()
      local cases = {
         {{f = print}, "/f is a function"},
         {{a = {[1.5] = 1}}, "/a has a key of type float"},
         {{a = {1, x = 2}}, "/a mixes string keys"},
         {{["a/b"] = 1}, "key 'a/b' in the root cannot be stored"},
         {{format = "x"}, "key 'format' is reserved at the checkpoint root"},
         {{g = {["retort.kind"] = 1}}, "reserved"},
         {{s = "a\0b"}, "contains a zero byte"},
      }
      local cyc = {}; cyc.self = cyc
      cases[#cases + 1] = {{c = cyc}, "cycle"}
      for _, c in ipairs(cases) do
         local ok, err = pcall(retort.save, p, c[1])
         assert.is_false(ok)
         assert.matches(c[2], err, 1, true)
         assert.is_false(exists(p))
      end
      assert.has_error(function() retort.save(p, 3) end, "retort.save: bad argument #2 (table expected, got number)")
   end)

   it("explains files that are missing, not HDF5, not checkpoints, or from a newer version", function()
      local ok, err = pcall(retort.load, "/nonexistent/ckpt.h5")
      assert.is_false(ok); assert.matches("cannot open /nonexistent/ckpt.h5: No such file", err, 1, true)
      local txt = support.tmpfile("just text, not HDF5\n", ".h5")
      ok, err = pcall(retort.load, txt)
      assert.is_false(ok); assert.matches(txt .. " is not an HDF5 file", err, 1, true)
      os.remove(txt)
      local p = tmp()
      local f = core.h5Create(p)
      f:write("/x", retort.zeros(2))
      f:close()
      ok, err = pcall(retort.load, p)
      assert.is_false(ok); assert.matches("is an HDF5 file but not a retort checkpoint", err, 1, true)
      f = core.h5Create(p)
      f:setAttr("/", "format", "retort.checkpoint")
      f:setAttr("/", "version", 2)
      f:close()
      ok, err = pcall(retort.load, p)
      assert.is_false(ok)
      assert.matches("checkpoint of version 2, written by a newer retort; this one reads version 1", err, 1, true)
      -- truncated
      retort.save(p, {w = retort.randn(200, 200)})
      local data = support.slurp(p)
      local out = io.open(p, "wb"); out:write(data:sub(1, #data // 2)); out:close()
      ok, err = pcall(retort.load, p)
      assert.is_false(ok); assert.matches("truncated or corrupt", err, 1, true)
      os.remove(p)
   end)

   it("says a damaged file is corrupt, in a sentence that names the file and the object", function()
      local p = tmp()
      retort.save(p, {w = retort.randn(100, 100), epoch = 3}) -- /w: chunks with a fletcher32 checksum
      local data = support.slurp(p)
      -- a byte in the middle of the data (the file is mostly /w's chunks)
      local at = #data // 2
      local out = io.open(p, "wb")
      out:write(data:sub(1, at - 1), string.char(data:byte(at) ~ 0x55), data:sub(at + 1))
      out:close()
      local ok, err = pcall(retort.load, p)
      assert.is_false(ok)
      assert.matches("retort.load: " .. p .. ": file is corrupt: cannot read /w (a checksum does not match: the file "
                     .. "changed after it was written)", err, 1, true)
      ok, err = pcall(retort.checkpoint.info, "/nonexistent/x.h5")
      assert.is_false(ok)
      assert.matches("retort.checkpoint.info: cannot open /nonexistent/x.h5: No such file", err, 1, true)
      local f = core.h5Create(p)
      f:setAttr("/", "format", "retort.checkpoint")
      f:setAttr("/", "version", 0)
      f:close()
      ok, err = pcall(retort.load, p)
      assert.is_false(ok)
      assert.matches("file is corrupt: its version attribute is 0 (versions start at 1)", err, 1, true)
      os.remove(p)
   end)
end)

describe("retort.core.h5Create / h5Open", function()
   it("lists members, reads attributes and row blocks, and reports missing objects", function()
      local p = tmp()
      local f = core.h5Create(p)
      f:createGroup("/a/b")
      f:write("/a/w", retort.ones(2, 3))
      f:setAttr("/a", "lr", 0.5); f:setAttr("/a", "n", 3); f:setAttr("/a", "ok", true); f:setAttr("/a", "s", "x")
      f:setAttr("/a", "d", 3, "double")
      f:createDataset("/logits", "f32", {5, 2})
      f:writeRows("/logits", 2, retort.tensor{{1, 2}, {3, 4}})
      assert.are.equal(tostring(f), "retort.H5File(" .. p .. ")")
      f:close()
      assert.is_true(exists(p))
      local g = core.h5Open(p)
      local members = g:list("/a")
      local function row(m) return {m.name, m.kind, m.link} end
      assert.are.same({{"b", "group", "hard"}, {"w", "dataset", "hard"}}, {row(members[1]), row(members[2])})
      assert.are.equal(g:id("/a/w"), members[2].id)
      assert.are.same({lr = 0.5, n = 3, ok = true, s = "x", d = 3.0}, g:attrs("/a"))
      assert.are.equal("float", math.type(g:getAttr("/a", "d")))
      assert.is_nil(g:getAttr("/a", "missing"))
      assert.is_nil(g:kind("/nope"))
      local shape, dtype = g:info("/logits")
      assert.are.same({5, 2}, shape); assert.are.equal("f32", dtype)
      assert.are.same({{0, 0}, {1, 2}, {3, 4}}, g:readRows("/logits", 1, 3):totable())
      local ok, err = pcall(g.read, g, "/a/missing")
      assert.is_false(ok); assert.matches("h5_read: /a/missing not found in " .. p, err, 1, true)
      ok, err = pcall(g.write, g, "/z", retort.ones(1))
      assert.is_false(ok); assert.matches("is open read-only", err, 1, true)
      g:close()
      assert.has_error(function() g:list("/") end, "retort.H5File is closed")
      os.remove(p)
   end)

   it("commits as a to-be-closed variable and aborts when the scope exits by an error", function()
      local p = tmp()
      do
         local f <close> = core.h5Create(p)
         f:setAttr("/", "k", 1)
      end
      assert.is_true(exists(p))
      os.remove(p)
      pcall(function()
         local f <close> = core.h5Create(p)
         f:setAttr("/", "k", 1)
         error("boom")
      end)
      assert.is_false(exists(p))
      -- garbage collected without close(): not committed
      core.h5Create(p)
      collectgarbage(); collectgarbage()
      assert.is_false(exists(p))
   end)
end)

describe("checkpoints in other tools", function()
   local function write_sample(p)
      retort.save(p, {model = nn.Sequential():add("fc1", nn.Linear(3, 2)), epoch = 4, name = "mlp",
                      flag = true, labels = retort.tensor({0, 1, 2}, "i64")})
   end

   it("are readable by h5py", function()
      if support.sh("/usr/bin/python3 -c 'import h5py'").status ~= 0 then
         return pending("h5py is not installed for /usr/bin/python3 (Debian package python3-h5py)")
      end
      local p = tmp()
      write_sample(p)
      local script = support.tmpfile(([[
import h5py
f = h5py.File(%q, "r")
# strings are fixed-length (checksummed with their object header): h5py reads them as bytes
assert f.attrs["format"] == b"retort.checkpoint", f.attrs["format"]
assert int(f.attrs["version"]) == 1
assert int(f.attrs["epoch"]) == 4 and f.attrs["name"].decode() == "mlp" and bool(f.attrs["flag"]) is True
w = f["/model/fc1/weight"][()]
assert w.shape == (2, 3) and str(w.dtype) == "float32", (w.shape, w.dtype)
assert list(f["/labels"][()]) == [0, 1, 2]
print("ok")
]]):format(p), ".py")
      local r = support.sh("/usr/bin/python3 " .. support.shquote(script))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches("ok", r.stdout)
      os.remove(script); os.remove(p)
   end)

   it("can read what h5py writes (int32, bool, fixed-length strings, float16 come back converted)", function()
      if support.sh("/usr/bin/python3 -c 'import h5py'").status ~= 0 then
         return pending("h5py is not installed for /usr/bin/python3 (Debian package python3-h5py)")
      end
      local p = tmp()
      local script = support.tmpfile(([==[
import h5py, numpy as np
with h5py.File(%q, "w") as f:
    f["i32"] = np.array([[1, -2], [3, 4]], dtype=np.int32)
    f["b"] = np.array([True, False, True])
    f["h"] = np.array([0.5, 1.5], dtype=np.float16)
    f.attrs["fixed"] = np.bytes_("abc")
    f.attrs["flag"] = np.bool_(False)
    f.attrs["n"] = np.int32(7)
]==]):format(p), ".py")
      local r = support.sh("/usr/bin/python3 " .. support.shquote(script))
      assert.are.equal(0, r.status, r.stderr)
      local f = core.h5Open(p)
      local i32 = f:read("/i32")
      assert.are.equal("i64", i32:dtype()); assert.are.same({{1, -2}, {3, 4}}, i32:totable())
      local b = f:read("/b")
      assert.are.equal("u8", b:dtype()); assert.are.same({1, 0, 1}, b:totable())
      local h = f:read("/h")
      assert.are.equal("f32", h:dtype()); assert.are.same({0.5, 1.5}, h:totable())
      assert.are.same({fixed = "abc", flag = false, n = 7}, f:attrs("/"))
      f:close()
      os.remove(script); os.remove(p)
   end)

   it("are readable by h5dump -H", function()
      if not support.have("h5dump") then return pending("h5dump is not installed (Debian package hdf5-tools)") end
      local p = tmp()
      write_sample(p)
      local r = support.sh("h5dump -H " .. support.shquote(p))
      assert.are.equal(0, r.status, r.stderr)
      assert.matches('GROUP "fc1"', r.stdout, 1, true)
      assert.matches('DATASET "weight"', r.stdout, 1, true)
      assert.matches("H5T_IEEE_F32LE", r.stdout, 1, true)
      assert.matches('ATTRIBUTE "format"', r.stdout, 1, true)
      os.remove(p)
   end)
end)
