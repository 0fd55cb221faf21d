-- One writer per output and no litter from killed writers (retort.outputs): a second training run
-- into a run directory, or a second build of a soft-target cache, fails at once naming the process
-- that holds it (the holder here is a real second process); temporaries whose writer died are
-- removed, a live writer's are kept; `retort cache` interrupted by SIGINT exits 130.
local retort = require "retort"
local core = retort.core
local support = require "support"
local world = require "cache_world"
local outputs = require "retort.outputs"

-- a child retort that takes the lock on `path`, says "locked <pid>", and holds it until its stdin closes
local function holder(path)
   local code = ("local lk = assert(require('retort.core').lock(%q)); io.write('locked ', "
                 .. "io.open('/proc/self/stat'):read('n'), '\\n'); io.stdout:flush(); io.read('a')"):format(path)
   local cmd = ("%s -e %s"):format(support.shquote(support.bin), support.shquote(code))
   local p = assert(io.popen(cmd .. " > " .. support.shquote(path .. ".said"), "w"))
   for _ = 1, 200 do -- until the child says it holds the lock
      local said = support.slurp(path .. ".said")
      local pid = said and said:match("^locked (%d+)")
      if pid then return p, math.tointeger(tonumber(pid)) end
      os.execute("sleep 0.05")
   end
   p:close()
   error("the lock holder did not start")
end

-- the pid of a process that has exited
local function dead_pid()
   local f = assert(io.popen("sh -c 'echo $$'"))
   local pid = math.tointeger(tonumber(f:read("l")))
   f:close()
   return pid
end

describe("retort.outputs", function()
   local dir
   before_each(function() dir = support.tmpdir(); assert(core.mkdir(dir)) end)
   after_each(function() support.rmrf(dir) end)

   it("lock: a second taker fails naming the holder's pid, and succeeds once it is released", function()
      local lk = outputs.lock(dir .. "/l", "thing")
      local ok, err = pcall(outputs.lock, dir .. "/l", "thing")
      assert.is_false(ok)
      local me = math.tointeger(tonumber(support.slurp(dir .. "/l")))
      assert.are.equal(me, math.tointeger(io.open("/proc/self/stat"):read("n")))
      assert.are.equal(("thing is in use by process %d (lock %s/l): wait for it to finish, or stop it"):format(me, dir),
                       err)
      lk:release()
      outputs.lock(dir .. "/l", "thing"):release()
   end)

   it("train.fit refuses a run directory another process is training into, and leaves it untouched", function()
      local p, pid = holder(dir .. "/.lock")
      local net = retort.nn.Sequential():add("fc", retort.nn.Linear(2, 3))
      local ds = retort.data.blobs{n = 30, classes = 3, seed = 1}
      local ok, err = pcall(retort.train.fit, {model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1}),
         train = retort.data.Loader(ds, {batchSize = 10}), dir = dir, epochs = 1, log = io.open("/dev/null", "w")})
      p:close()
      assert.is_false(ok)
      assert.matches(("train.fit: run directory %s is in use by process %d"):format(dir, pid), err, 1, true)
      assert.is_nil(io.open(dir .. "/metrics.csv"))
      -- the holder is gone: the same call now trains
      local r = retort.train.fit{model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1}),
         train = retort.data.Loader(ds, {batchSize = 10}), dir = dir, epochs = 1, log = io.open("/dev/null", "w")}
      assert.are.equal(1, #r.history)
   end)

   it("a second build of the same cache fails at once, naming the first's process", function()
      local path = dir .. "/t.h5"
      assert(core.mkdir(path .. ".parts"))
      local p, pid = holder(path .. ".parts/lock")
      local ok, err = pcall(retort.cache.build, {teacher = world.teacher(), data = world.loader{n = 40}, path = path,
                                                 quiet = true})
      p:close()
      assert.is_false(ok)
      assert.matches(("retort.cache.build: %s is in use by process %d"):format(path, pid), err, 1, true)
      local c = retort.cache.build{teacher = world.teacher(), data = world.loader{n = 40}, path = path, quiet = true}
      assert.are.equal(40, c.numExamples)
   end)

   it("removes temporaries of dead writers only (checkpoints in a run directory, a cache's output)", function()
      local dead, alive = dead_pid(), 1 -- init: alive, and not this process (whose own temporaries are its saves)
      for _, name in ipairs{"last.h5.tmp-" .. dead, "last.h5.tmp-" .. dead .. "-7", "best.h5.tmp-" .. alive .. "-0",
                            "best.h5.tmp-" .. alive, "notes.tmp-x"} do
         local f = assert(io.open(dir .. "/" .. name, "w")); f:write("x"); f:close()
      end
      local net = retort.nn.Sequential():add("fc", retort.nn.Linear(2, 3))
      local ds = retort.data.blobs{n = 30, classes = 3, seed = 1}
      retort.train.fit{model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1}),
         train = retort.data.Loader(ds, {batchSize = 10}), dir = dir, epochs = 1, log = io.open("/dev/null", "w")}
      local names = core.listDir(dir)
      local has = {}
      for _, n in ipairs(names) do has[n] = true end
      assert.is_nil(has["last.h5.tmp-" .. dead])
      assert.is_nil(has["last.h5.tmp-" .. dead .. "-7"])
      assert.is_true(has["best.h5.tmp-" .. alive])
      assert.is_true(has["best.h5.tmp-" .. alive .. "-0"])
      assert.is_true(has["notes.tmp-x"])
      -- a cache build removes its own output's stale temporaries (an assembly that was killed)
      local f = assert(io.open(dir .. "/c.h5.tmp-" .. dead, "w")); f:write("x"); f:close()
      retort.cache.build{teacher = world.teacher(), data = world.loader{n = 40}, path = dir .. "/c.h5", quiet = true}
      assert.is_nil(io.open(dir .. "/c.h5.tmp-" .. dead))
   end)

   it("retort cache exits 130 on Ctrl-C, as every other command", function()
      if not support.have("timeout") then return pending("needs timeout(1)") end
      local recipe = dir .. "/spin.lua"
      local f = assert(io.open(recipe, "w"))
      f:write("local n = 0\nwhile true do n = n + 1 end\n")
      f:close()
      local r = support.run({"cache", "--recipe", recipe, "--out", dir .. "/x.h5"},
                            {prefix = "timeout --preserve-status -s INT 1"})
      assert.are.equal(130, r.status)
      assert.matches("interrupted", r.stderr)
   end)
end)
