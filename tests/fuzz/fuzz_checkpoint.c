/* libFuzzer target: checkpoints, as a user loads them: retort.load(path) (lua/retort/checkpoint.lua
 * over core/src/h5.c and lua/bind/bind_h5.c), every value of the result touched, the model and
 * optimizer states given to a model and an optimizer of the seeds' architecture
 * (loadStateDict), and retort.checkpoint.info(path).
 * Seeds: tests/fuzz/make_corpus.lua (retort.save of an MLP with its SGD state, a CNN with batch
 * norm and Adam, and a table of every kind of value). See fuzz_lua.h for what counts as a bug. */
#include "fuzz_lua.h"

static const char DRIVER[] =
    "local retort = require 'retort'\n"
    "local nn = retort.nn\n"
    "local function walk(v, depth)\n"
    "   if depth > 64 then return end\n"
    "   if type(v) == 'table' then\n"
    "      for _, x in pairs(v) do walk(x, depth + 1) end\n"
    "   elseif retort.isTensor(v) then\n"
    "      local _ = v:shape(), v:dtype(), v:numel() > 0 and v:numel() < 4096 and v:sum()\n"
    "   end\n"
    "end\n"
    "local function mlp()\n" /* the architecture of make_corpus.lua's mlp checkpoint */
    "   return nn.Sequential():add('fc1', nn.Linear(4, 3)):add('relu', nn.ReLU()):add('fc2', nn.Linear(3, 2))\n"
    "end\n"
    "return function(path)\n"
    "   pcall(retort.checkpoint.info, path)\n"
    "   local ck = retort.load(path)\n"
    "   walk(ck, 0)\n"
    "   if type(ck) == 'table' and ck.model ~= nil then\n"
    "      local net = mlp()\n"
    "      pcall(net.loadStateDict, net, ck.model)\n"
    "      local opt = retort.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9})\n"
    "      if ck.optim ~= nil then pcall(opt.loadStateDict, opt, ck.optim) end\n"
    "   end\n"
    "   if type(ck) == 'table' and type(ck.rng) == 'table' then pcall(retort.setRngState, ck.rng) end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_lua_init("fuzz_checkpoint", DRIVER);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("checkpoint", data, size);
    return 0;
}
