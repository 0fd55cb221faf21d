-- retort.cuda: the GPU, when this build has the CUDA backend and the machine has a GPU.
--
--   if retort.cuda.isAvailable() then net:cuda(); x = x:cuda() end
--   print(retort.cuda.describe())        --> NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.2 GiB)
--   retort.cuda.memory()                 --> {inUse =, peakInUse =, cached =, peakReserved =} bytes
--   retort.cuda.waits()                  --> times the host has waited for the GPU so far
--   retort.cuda.launches()               --> kernels, cuBLAS calls and copies queued so far
--
-- Kernels are queued on one stream and run asynchronously; reading a value (x:item(), x:totable(),
-- x:cpu()) waits for them. retort.cuda.synchronize() waits explicitly (timing). With
-- retort.cuda.setSyncDebug(true) (or RETORT_CUDA_SYNC=1 in the environment) every kernel is waited
-- for as it is launched, so a fault is reported by the op that caused it.
local core = require "retort.core"

local cuda = {}

--- isAvailable() -> true, or false and the reason
function cuda.isAvailable() return core.deviceAvailable("cuda") end

local function need(what)
   local ok, why = core.deviceAvailable("cuda")
   if not ok then error(("retort.cuda.%s: CUDA is not available: %s"):format(what, why), 3) end
end

--- describe() -> one line naming the GPU
function cuda.describe()
   need("describe")
   return core.deviceDescribe("cuda")
end

--- synchronize(): waits for all queued GPU work; raises a fault an earlier kernel left
function cuda.synchronize()
   need("synchronize")
   core.synchronize("cuda")
end

--- memory() -> {inUse, peakInUse, cached, peakReserved} in bytes (tensors; the allocator's cache)
function cuda.memory() return core.deviceMemory("cuda") end

--- waits() -> how many times the host has waited for the GPU (x:item(), x:cpu(), synchronize...).
--- Each wait drains the queue and leaves the GPU idle while the host catches up: a training step
--- should not wait at all. Compare the count before and after a loop to find waits.
function cuda.waits() return core.deviceWaits("cuda") end

--- launches() -> how much work has been queued on the GPU (kernels, cuBLAS calls, copies, one each);
--- 0 on the emulated device. A small model's step costs about a launch's host time per launch.
function cuda.launches() return core.deviceLaunches("cuda") end

function cuda.resetPeakMemory() core.resetPeakMemory("cuda") end

--- emptyCache() -> bytes given back to the driver (freed blocks the allocator kept for reuse)
function cuda.emptyCache() return core.emptyCache("cuda") end

--- setSyncDebug(on): wait for every kernel as it is launched (slow; finds the op that faults)
function cuda.setSyncDebug(on)
   if type(on) ~= "boolean" then
      error(("bad argument #1 to 'setSyncDebug' (boolean expected, got %s)"):format(type(on)), 2)
   end
   core.setSyncDebug(on)
end

--- resolveDevice(spec, what, level) -> "cpu" | "cuda". spec: "cpu", "cuda" or "auto" (cuda when
--- available); `what` names the option in errors ("train: device"), raised at `level` (error's; 3:
--- the caller's caller, 0: no position, as for command-line options).
function cuda.resolveDevice(spec, what, level)
   what, level = what or "device", level or 3
   if spec == nil or spec == "cpu" then return "cpu" end
   if spec ~= "cuda" and spec ~= "auto" then
      error(("%s must be \"cpu\", \"cuda\" or \"auto\", got %s"):format(what, tostring(spec)), level)
   end
   local ok, why = core.deviceAvailable("cuda")
   if ok then return "cuda" end
   if spec == "auto" then return "cpu" end
   error(("%s is \"cuda\" but CUDA is not available: %s"):format(what, why), level)
end

return cuda
