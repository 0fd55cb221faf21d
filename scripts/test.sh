#!/usr/bin/env bash
# The whole test suite: installs what is missing, lints the Lua with luacheck (.luacheckrc; any
# warning fails the suite), builds (normal and sanitizer builds), runs the C tests and the busted
# specs (through the `retort` host) under ASan/UBSan, then the C tests and the specs again on the
# release build. The release build has the CUDA backend whenever nvcc is found (its tests skip
# without a GPU). The sanitizer build compiles the same CUDA sources for the
# CUDA simulator (RETORT_CUDA=SIM, core/src/backend/cuda/sim): there test_cuda runs every kernel
# on the CPU against the CPU backend, with ASan watching each kernel's memory accesses, and the
# specs that need a GPU run on it. Last, tests/fuzz/run_bounded.sh builds the readers with clang
# and libFuzzer (build-fuzz) and fuzzes each for a few thousand inputs (about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test build
echo "== luacheck =="
luacheck -q .
scripts/setup.sh build-asan -DRETORT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DRETORT_CUDA=SIM
export OMP_WAIT_POLICY=PASSIVE
# LeakSanitizer: OpenBLAS/libgomp keep per-thread buffers until exit; they are not ours.
# allocator_may_return_null: a huge malloc fails as glibc's does (a damaged file's sizes reach libhdf5's
# own allocations; it must then refuse the file) instead of ASan aborting the process.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions=$PWD/tests/c/lsan.supp
echo "== C tests and Lua specs under ASan/UBSan =="
ctest --test-dir build-asan --output-on-failure
echo "== C tests and Lua specs (release build) =="
ctest --test-dir build --output-on-failure
echo "== fuzz: every file reader under libFuzzer, a bounded run (tests/fuzz/README.md) =="
tests/fuzz/run_bounded.sh
