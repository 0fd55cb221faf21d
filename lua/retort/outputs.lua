-- Outputs that runs write (run directories, checkpoints, soft-target caches): one writer at a time,
-- and no litter from writers that were killed.
--
--   local outputs = require "retort.outputs"
--   local lk = outputs.lock(dir .. "/.lock", "train.fit: run directory " .. dir)  -- errors if held
--   ...; lk:release()                          -- also released at exit, by __close and by __gc
--   outputs.removeStaleTemps(dir)              -- NAME.tmp-PID[-N] files whose process is gone
--
-- Locks are advisory flock(2) locks (retort.core.lock): a second run into the same output fails at
-- once, naming the process that holds it, instead of interleaving its writes with the first's.
-- Files are written as NAME.tmp-PID-N (HDF5 files: N counts the process's files, core/src/h5.c) or
-- NAME.tmp-PID and renamed when complete, so a temporary whose PID is no longer alive was left by a
-- killed writer and can go; one whose writer lives is kept.
local core = require "retort.core"

local M = {}

--- lock(path, what): takes the lock or raises "<what> is in use by process PID (...)".
function M.lock(path, what)
   local lk, err, pid = core.lock(path)
   if lk then return lk end
   if pid then
      error(("%s is in use by process %d (lock %s): wait for it to finish, or stop it"):format(what, pid, path), 0)
   end
   error(("%s: %s"):format(what, err), 0)
end

--- removeStaleTemps(dir [, base]): removes dir/<base>.tmp-PID[-N] (any base when nil) whose PID is dead;
--- returns the names removed.
function M.removeStaleTemps(dir, base)
   local removed = {}
   for _, name in ipairs(core.listDir(dir) or {}) do
      local stem, pid = name:match("^(.*)%.tmp%-(%d+)%-%d+$")
      if not stem then stem, pid = name:match("^(.*)%.tmp%-(%d+)$") end
      pid = pid and math.tointeger(tonumber(pid))
      if stem and pid and pid > 0 and pid <= 0x7fffffff and (base == nil or stem == base)
         and not core.pidAlive(pid) then
         if os.remove(dir .. "/" .. name) then removed[#removed + 1] = name end
      end
   end
   return removed
end

return M
