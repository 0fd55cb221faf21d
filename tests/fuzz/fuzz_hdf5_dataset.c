/* libFuzzer target: HDF5 datasets, as training reads them: retort.data.hdf5{path = ...}
 * (lua/retort/data/hdf5.lua over core rt_h5_read_index / rt_h5_read_rows), the rows of a shuffled
 * batch with a repeat, one example, the streamed fingerprint; then the same file read whole
 * (inMemory = true) and as NHWC.
 * Seeds: tests/fuzz/make_corpus.py (h5py: uint8 NCHW and NHWC images, float32/float16/float64
 * vectors, contiguous, chunked and compressed, several label types) and make_corpus.lua (files
 * retort writes). See fuzz_lua.h for what counts as a bug. */
#include "fuzz_lua.h"

static const char DRIVER[] =
    "local retort = require 'retort'\n"
    "local data = require 'retort.data'\n"
    "local function use(ds)\n"
    "   local n = ds:size()\n"
    "   if n > 0 then\n"
    "      if ds.read then ds:read(retort.tensor({n, 1, n, (n + 1) // 2}, 'i64')) end\n"
    "      ds:get(n)\n"
    "   end\n"
    "   if ds.fingerprint then ds:fingerprint() end\n"
    "   if ds.close then ds:close() end\n"
    "end\n"
    "return function(path)\n"
    "   local ok, err = pcall(function() use(data.hdf5{path = path}) end)\n"
    "   pcall(function() use(data.hdf5{path = path, inMemory = true}) end)\n"
    "   pcall(function() use(data.hdf5{path = path, layout = 'NHWC'}) end)\n"
    "   if not ok then error(err, 0) end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_lua_init("fuzz_hdf5_dataset", DRIVER);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("hdf5_dataset", data, size);
    return 0;
}
