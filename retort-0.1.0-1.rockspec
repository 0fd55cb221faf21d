-- LuaRocks build of retort, from a checkout (Debian's luarocks defaults to Lua 5.1: name 5.4):
--
--   luarocks --lua-version=5.4 make retort-0.1.0-1.rockspec                      # into /usr/local
--   luarocks --lua-version=5.4 make --tree=/tmp/rt-tree retort-0.1.0-1.rockspec  # into a tree
--
-- The build is the project's CMake build (cmake/RetortInstall.cmake), told to put the Lua modules
-- in the rock's LUADIR and the binding in its LIBDIR (LuaRocks then moves them to the tree's
-- share/lua/5.4 and lib/lua/5.4), and the `retort` host in its bin. The C library for C programs
-- (libretort.so/.a, headers, retort.pc, the CMake package) is left to `cmake --install`: LuaRocks
-- would spread it over Lua's module folders. Tests and benchmarks are not built.
-- CMAKE_BUILD_PARALLEL_LEVEL=2 in the environment builds on two cores. RETORT_CUDA below is AUTO:
-- the CUDA backend is built when nvcc is found (minutes more); OFF skips it.
rockspec_format = "3.0"
package = "retort"
version = "0.1.0-1"

source = {
   -- `luarocks make` builds the working tree it is run in; this URL is only read by `luarocks pack`
   url = "git+file://.",
}

description = {
   summary = "Knowledge-distillation training framework: a C11 core embedded in Lua 5.4",
   detailed = [[
Tensors, reverse-mode autograd, distillation losses (KD, FitNets, AT, SP, CRD, DKD, ...), HDF5
checkpoints and soft-target caches, on OpenBLAS + OpenMP (and CUDA when built with it), driven
from Lua recipes, a command line and a REPL in the spirit of Torch7.]],
   labels = {"machine-learning", "distillation", "tensor"},
}

dependencies = {
   "lua >= 5.4, < 5.5",
}

build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      CMAKE_INSTALL_BINDIR = "$(BINDIR)",
      RETORT_INSTALL_LUADIR = "$(LUADIR)",
      RETORT_INSTALL_CMODDIR = "$(LIBDIR)",
      RETORT_INSTALL_C_LIBRARY = "OFF",
      RETORT_BUILD_TESTS = "OFF",
      RETORT_CUDA = "AUTO",
   },
}
