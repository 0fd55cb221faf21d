-- Trusting HDF5 files (checkpoints; caches are in cache_spec.lua): a damaged file is refused with a
-- message that names it and says it is corrupt, never loaded with other values, never a crash; hostile
-- structures (hard-link cycles, deep nesting, soft and external links, external raw storage, a filter that
-- is not installed) are refused with a sentence; a save into a full filesystem fails cleanly and the
-- process exits normally. Files with features retort never writes are made by h5py (/usr/bin/python3), and
-- those cases are pending when it is missing. The byte-flip loops here take a sample of positions; the full
-- sweep is tests/lua/h5_damage.lua (see tests/README.md).
local retort = require "retort"
local core = retort.core
local support = require "support"
local damage = require "h5_damage"

local function have_h5py() return support.sh("/usr/bin/python3 -c 'import h5py'").status == 0 end
local NO_H5PY = "h5py is not installed for /usr/bin/python3 (Debian package python3-h5py)"

local function tmpdir()
   local d = support.tmpdir()
   assert(core.mkdir(d))
   return d
end

-- runs a python script (h5py) with the directory as its first argument
local function h5py(dir, script)
   local py = support.tmpfile("import sys, h5py, numpy as np\nd = sys.argv[1]\n" .. script, ".py")
   local r = support.sh("/usr/bin/python3 " .. support.shquote(py) .. " " .. support.shquote(dir))
   os.remove(py)
   assert(r.status == 0, r.stderr)
end

local function load_error(p)
   local ok, err = pcall(retort.load, p)
   assert.is_false(ok, "loaded " .. p)
   return tostring(err)
end

describe("damaged checkpoints", function()
   local dir
   before_each(function() dir = tmpdir() end)
   after_each(function() support.rmrf(dir) end)

   it("with any byte changed or cut off are refused as corrupt, naming the file, or read back exactly", function()
      local p, m = dir .. "/ck.h5", dir .. "/m.h5"
      damage.checkpoint(p)
      local orig, ref = support.slurp(p), retort.load(p)
      local n, loaded = 0, 0
      for _, op in ipairs(damage.ops(#orig, 23, 11)) do
         damage.spit(m, damage.mutate(orig, op))
         local ok, got = pcall(damage.loadCheckpoint, m)
         n = n + 1
         if ok then
            loaded = loaded + 1
            assert.is_true(damage.same(got, ref), damage.opname(op) .. " loaded changed values")
         else
            got = tostring(got)
            assert.matches("retort.load: ", got, 1, true)
            assert.matches(m, got, 1, true)
            assert.is_truthy(got:find("file is corrupt", 1, true) or got:find("truncated or corrupt", 1, true)
                             or got:find("not an HDF5 file", 1, true), damage.opname(op) .. ": " .. got)
         end
      end
      assert.is_true(n > 400, n .. " mutants")
      assert.are.equal(0, loaded, "a checksummed checkpoint has no byte that can change unnoticed")
   end)

   it("written by retort 0.1 (no checksums, variable-length strings) load when intact, never crash when not", function()
      if not have_h5py() then return pending(NO_H5PY) end
      local p, m = dir .. "/legacy.h5", dir .. "/m.h5"
      assert.is_true(damage.legacy(p))
      damage.checkpoint(dir .. "/new.h5")
      assert.is_true(damage.same(damage.loadCheckpoint(p), retort.load(dir .. "/new.h5")))
      local orig = support.slurp(p)
      for _, op in ipairs(damage.ops(#orig, 37, 3)) do
         damage.spit(m, damage.mutate(orig, op))
         local ok, err = pcall(damage.loadCheckpoint, m)
         if not ok and tostring(err):find("retort.load", 1, true) then
            assert.matches(m, tostring(err), 1, true)
         end
      end
   end)
end)

describe("hostile checkpoints", function()
   local dir
   before_each(function() dir = tmpdir() end)
   after_each(function() support.rmrf(dir) end)

   it("hard-link cycles, shared objects, deep nesting, soft and external links are refused with a sentence", function()
      if not have_h5py() then return pending(NO_H5PY) end
      h5py(dir, [[
def ck(name):
    f = h5py.File(d + "/" + name, "w")
    f.attrs["format"] = "retort.checkpoint"; f.attrs["version"] = 1
    return f
with ck("loop.h5") as f:
    f.create_group("a")["loop"] = f["/"]
with ck("shared.h5") as f:
    f["x"] = np.zeros(3); f["y"] = f["x"]
with ck("deep.h5") as f:
    g = f
    for i in range(400): g = g.create_group("a")
with ck("soft.h5") as f:
    f["x"] = np.zeros(3); f["s"] = h5py.SoftLink("/x")
with ck("ext.h5") as f:
    f["e"] = h5py.ExternalLink(d + "/shared.h5", "/x")
]])
      local function refused(name, want)
         local p = dir .. "/" .. name
         local err = load_error(p)
         assert.matches("retort.load: ", err, 1, true)
         assert.matches(want, err, 1, true)
         assert.matches(p, err, 1, true)
      end
      refused("loop.h5", ": /a/loop is a second name for / (a hard link: a cycle); a checkpoint is a tree")
      refused("shared.h5", ": /y is a second name for /x (a hard link: a shared object); a checkpoint is a tree")
      refused("deep.h5", " is nested more than 64 groups deep (retort reads at most 64)")
      refused("soft.h5", ": /s is a soft link; a checkpoint holds only groups and datasets")
      refused("ext.h5", ": /e is an external link; a checkpoint holds only groups and datasets")
      -- the raw binding refuses to follow them as well
      local f = core.h5Open(dir .. "/ext.h5")
      local ok, err = pcall(f.read, f, "/e")
      f:abort()
      assert.is_false(ok)
      assert.matches("is an external link (to /x in the file '" .. dir .. "/shared.h5'); retort never opens another "
                     .. "file", err, 1, true)
   end)

   it("data in an external raw file (/etc/passwd) or compressed with a filter not installed is not read", function()
      if not have_h5py() then return pending(NO_H5PY) end
      h5py(dir, [[
for name, kw in (("passwd.h5", dict(shape=(16,), dtype="u1", external=[("/etc/passwd", 0, 16)])),
                 ("lzf.h5", dict(data=np.arange(4096.0), compression="lzf"))):
    with h5py.File(d + "/" + name, "w") as f:
        f.attrs["format"] = "retort.checkpoint"; f.attrs["version"] = 1
        f.create_dataset("w", **kw)
]])
      local err = load_error(dir .. "/passwd.h5")
      assert.matches("/w in " .. dir .. "/passwd.h5 keeps its data in 1 external file(s); retort reads only data "
                     .. "stored inside the HDF5 file", err, 1, true)
      err = load_error(dir .. "/lzf.h5")
      assert.matches("/w in " .. dir .. "/lzf.h5 is compressed with the lzf filter (id 32000), which this HDF5 library "
                     .. "does not have (retort loads no filter plugins)", err, 1, true)
      assert.is_nil(err:find("plugins directory", 1, true) or err:find("can't open directory", 1, true))
   end)

   it("a damaged chunk index is refused also in datasets of more chunks than are checked one by one", function()
      if not have_h5py() then return pending(NO_H5PY) end
      -- 10000 chunks of one row: above the 8192 that core/src/h5.c checks with H5Dget_chunk_info, so these
      -- go through its walk of the chunk grid. h5py's default format keeps the chunks in a version-1 B-tree
      -- whose keys hold each chunk's stored size, its filter mask and its offset: the damage rewrites one key's
      -- size (only compressed chunks have one that libhdf5 reads).
      h5py(dir, [[
import struct
for name, size in (("big0.h5", 0), ("big_huge.h5", 2**31)):
    data = np.arange(40000, dtype="<f4").reshape(10000, 4)
    with h5py.File(d + "/" + name, "w") as f:
        f.attrs["format"] = "retort.checkpoint"; f.attrs["version"] = 1
        ds = f.create_dataset("w", data=data, chunks=(1, 4), compression="gzip")
        old = ds.id.get_chunk_info_by_coord((7000, 0)).size
    raw = open(d + "/" + name, "rb").read()
    key = struct.pack("<IIQQQ", old, 0, 7000, 0, 0)
    assert raw.count(key) == 1, name
    open(d + "/damaged_" + name, "wb").write(raw.replace(key, struct.pack("<IIQQQ", size, 0, 7000, 0, 0)))
]])
      for _, name in ipairs{"big0.h5", "big_huge.h5"} do
         local t = retort.load(dir .. "/" .. name).w
         assert.are.same({10000, 4}, t:shape())
         assert.are.equal(39999, t[10000][4])
      end
      local err = load_error(dir .. "/damaged_big0.h5")
      assert.matches(dir .. "/damaged_big0.h5: file is corrupt: the chunk index of /w counts 10000 chunks, "
                     .. "its grid holds 9999", err, 1, true)
      err = load_error(dir .. "/damaged_big_huge.h5")
      assert.matches(dir .. "/damaged_big_huge.h5: file is corrupt: the chunk of /w at (7000,0) has 2147483648 bytes, "
                     .. "more than the file", err, 1, true)
   end)

   it("row arguments that would overflow are errors, not arithmetic", function()
      local p = dir .. "/rows.h5"
      local f = core.h5Create(p)
      f:write("/x", retort.arange(1, 12):view(4, 3))
      f:close()
      f = core.h5Open(p)
      local ok, err = pcall(f.readRows, f, "/x", math.maxinteger, 2)
      assert.is_false(ok); assert.matches("out of range for /x (4,3)", err, 1, true)
      ok, err = pcall(f.readRows, f, "/x", 2, math.maxinteger)
      assert.is_false(ok); assert.matches("out of range for /x (4,3)", err, 1, true)
      ok, err = pcall(f.readIndex, f, "/x", retort.tensor({math.mininteger}, "i64"))
      assert.is_false(ok); assert.matches("row indices start at 1", err, 1, true)
      ok, err = pcall(f.readIndex, f, "/x", retort.tensor({math.maxinteger}, "i64"))
      assert.is_false(ok); assert.matches("out of range for /x with 4 rows", err, 1, true)
      f:abort()
   end)
end)

describe("a save into a full filesystem", function()
   it("fails with the OS error, keeps the old file, leaves no temporary, and the process exits normally", function()
      local mnt = support.tmpdir()
      assert(core.mkdir(mnt))
      local r = support.sh("mount -t tmpfs -o size=512k tmpfs " .. support.shquote(mnt))
      if r.status ~= 0 then
         os.remove(mnt)
         return pending("cannot mount a small tmpfs here (needs root): " .. r.stderr:gsub("\n", " "))
      end
      local ok, err = pcall(function()
         local script = support.tmpfile(([[
local retort = require "retort"
retort.save(%q, {w = retort.ones(10), epoch = 1})
local f = assert(io.open(%q, "wb"))
f:write(string.rep("x", 400 * 1024))
f:close()
retort.manualSeed(1)
local ok, err = pcall(retort.save, %q, {w = retort.randn(300, 300), epoch = 2}) -- 360 KB: does not fit
io.stderr:write(tostring(err), "\n")
assert(not ok, "the save into a full filesystem succeeded")
]]):format(mnt .. "/ck.h5", mnt .. "/fill", mnt .. "/ck.h5"), ".lua")
         local res = support.run({script})
         os.remove(script)
         assert.are.equal(0, res.status, "exit status " .. res.status .. ": " .. res.stderr)
         assert.matches("retort.save: cannot write " .. mnt .. "/ck.h5: No space left on device", res.stderr, 1, true)
         assert.matches("(" .. mnt .. "/ck.h5 was left as it was; the partial file " .. mnt .. "/ck.h5.tmp-",
                        res.stderr, 1, true)
         assert.is_nil(res.stderr:find("buf = 0x", 1, true), "HDF5 internals in the message")
         local ck = retort.load(mnt .. "/ck.h5")
         assert.are.equal(1, ck.epoch)
         assert.are.same({10}, ck.w:shape())
         for _, name in ipairs(core.listDir(mnt)) do
            assert.is_nil(name:find(".tmp-", 1, true), "a temporary file was left: " .. name)
         end
      end)
      support.sh("umount " .. support.shquote(mnt))
      os.remove(mnt)
      if not ok then error(err, 0) end
   end)
end)
