/* libFuzzer target: soft-target caches, as `retort cache --info` and a training run read them:
 * retort.cache.open(path, {partial = true}) (lua/retort/cache.lua over core/src/h5.c), the
 * summary --info prints, the teacher logits of the first and last rows done, and the stored
 * features of each tap (read whole, then again from the file a row at a time).
 * Seeds: tests/fuzz/make_corpus.lua (caches built by retort.cache.build over a tiny dataset and
 * teacher: one view, two augmentation views, with a feature tap). See fuzz_lua.h. */
#include "fuzz_lua.h"

static const char DRIVER[] =
    "local retort = require 'retort'\n"
    "local cache = require 'retort.cache'\n"
    "return function(path)\n"
    "   local c = cache.open(path, {partial = true})\n"
    "   local lines = c:summary()\n"
    "   local _ = #lines, tostring(c)\n"
    "   if c.rowsDone > 0 then\n"
    "      local idx = retort.tensor({1, c.rowsDone}, 'i64')\n"
    "      c:teacherLogits(idx, 1)\n"
    "      c:teacherLogits(idx, 2)\n"
    "      for _, tap in ipairs(c.taps) do\n"
    "         c:features(tap, idx, 1)\n"
    "         local small = cache.open(path, {partial = true, featureMemory = 0})\n" /* rows from the file */
    "         small:features(tap, idx, 2)\n"
    "      end\n"
    "   end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_lua_init("fuzz_cache", DRIVER);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("cache", data, size);
    return 0;
}
