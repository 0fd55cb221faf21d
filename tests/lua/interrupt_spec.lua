-- Ctrl-C is delivered exactly once. A C loop (backward, a convolution) that sees the interrupt first
-- raises "interrupted! (...)" and consumes it, so the host's hook, still set, raises nothing more:
-- a pcall around the loop catches it and the script goes on; train.fit catches it too, saves a
-- mid-epoch last.h5 and exits 130, and resuming ends with the same weights as a run never stopped.
-- The interrupts are real SIGINTs (timeout -s INT) at several delays, so both paths are taken:
-- the signal landing in Lua code (the hook) and in C code (the core's flag).
local support = require "support"

local function script(text)
   local path = support.tmpfile(text, ".lua")
   return path
end

local function interrupted_run(args, delay, signal)
   return support.run(args, {prefix = ("timeout --preserve-status -s %s %.2f"):format(signal or "INT", delay)})
end

-- RETORT_KILL_LOOP=N runs the SIGKILL loop below at N delays instead of 4 (the longer check of
-- tests/README.md)
local KILL_DELAYS = tonumber(os.getenv("RETORT_KILL_LOOP") or "4")

describe("Ctrl-C", function()
   if not support.have("timeout") then
      it("needs timeout(1)", function() pending("timeout(1) is not installed") end)
      return
   end

   it("is caught once by a pcall around a backward loop, wherever it lands", function()
      local loop = script([[
local r = require "retort"
r.setNumThreads(1)
local w = r.randn(300, 300):requiresGrad()
local x = r.randn(300, 300)
local ok, err = pcall(function()
   while true do
      local y = x
      for _ = 1, 20 do y = (y:matmul(w)):relu() end
      y:sum():backward()
   end
end)
print("caught", ok, err)
local n = 0
for i = 1, 3e6 do n = n + i end -- Lua instructions after the pcall: a hook left set would raise here
print("after", n > 0)
]])
      local in_c, in_lua = 0, 0
      for _, delay in ipairs{0.3, 0.45, 0.6, 0.75, 0.9, 1.05} do
         local r = interrupted_run({loop}, delay)
         assert.are.equal(0, r.status, r.stderr)
         assert.matches("caught\tfalse\t.*interrupted!", r.stdout)
         assert.matches("after\ttrue", r.stdout)
         if r.stdout:find("interrupted! (", 1, true) then in_c = in_c + 1 else in_lua = in_lua + 1 end
      end
      assert.are.equal(6, in_c + in_lua)
      os.remove(loop)
   end)

   it("stops train.fit (SIGINT, SIGKILL) with a resumable last.h5 every time, and resuming ends as a run never "
      .. "stopped", function()
      local train = script([[
local retort = require "retort"
local dir, epochs, resume = ...
retort.setNumThreads(1)
retort.manualSeed(5)
local ds = retort.data.blobs{n = 20000, dim = 64, classes = 10, seed = 2}
local net = retort.models.mlp{sizes = {64, 256, 256, 10}, dropout = 0.1}
local opt = retort.optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
local r = retort.train.fit{model = net, optimizer = opt, epochs = tonumber(epochs), dir = dir,
   train = retort.data.Loader(ds, {batchSize = 32, shuffle = true, seed = 3}), resume = resume == "resume",
   log = io.open("/dev/null", "w")}
if r.interrupted then os.exit(130) end
print("final", retort.fingerprint(table.unpack(net:parameters())))
]])
      local base = support.tmpdir()
      local clock = require("retort").clock
      local t0 = clock()
      local full = support.run({train, base .. "/full", "2"})
      local took = clock() - t0 -- the kills below are spread over the time a whole run takes here
      assert.are.equal(0, full.status, full.stderr)
      local want = full.stdout:match("final\t(%x+)")
      assert.is_not_nil(want)
      local interrupts = 0
      for k, delay in ipairs{0.35, 0.6, 0.85, 1.1, 1.35} do
         local dir = ("%s/cut%d"):format(base, k)
         local r = interrupted_run({train, dir, "2"}, delay)
         if r.status == 130 then
            -- on a busy machine the signal may land before the first batch (nothing to save yet): the
            -- resume then starts afresh, and must still end where the uninterrupted run did
            local f = io.open(dir .. "/last.h5", "rb")
            if f then f:close(); interrupts = interrupts + 1 end
            local resumed = support.run({train, dir, "2", "resume"})
            assert.are.equal(0, resumed.status, resumed.stderr)
            assert.are.equal(want, resumed.stdout:match("final\t(%x+)"))
         else -- the run ended before the signal (a fast machine): it must have ended normally
            assert.are.equal(0, r.status, r.stderr)
            assert.are.equal(want, r.stdout:match("final\t(%x+)"))
         end
      end
      assert.is_true(interrupts >= 1)
      -- SIGKILL: nothing runs at the kill, so what is on disk is the last checkpoint saved whole (saves
      -- are atomic); resuming from it must still end exactly where the uninterrupted run did
      local kills = 0
      for k = 1, KILL_DELAYS do
         local dir = ("%s/kill%d"):format(base, k)
         local at = took * (0.15 + 0.8 * (k - 1) / math.max(1, KILL_DELAYS - 1))
         local r = interrupted_run({train, dir, "2"}, at, "KILL")
         if r.status == 137 then
            kills = kills + 1
            local resumed = support.run({train, dir, "2", "resume"})
            if resumed.status ~= 0 and resumed.stderr:find("no checkpoint", 1, true) then -- killed before any
               resumed = support.run({train, dir, "2"})
            end
            assert.are.equal(0, resumed.status, resumed.stderr)
            assert.are.equal(want, resumed.stdout:match("final\t(%x+)"))
         else
            assert.are.equal(0, r.status, r.stderr)
            assert.are.equal(want, r.stdout:match("final\t(%x+)"))
         end
      end
      io.stderr:write(("[interrupt_spec: %d SIGINTs with a checkpoint, %d SIGKILLs, each resumed to the "
                       .. "uninterrupted run's weights]\n"):format(interrupts, kills))
      support.rmrf(base)
      os.remove(train)
   end)
end)
