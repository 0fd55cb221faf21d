#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (normal and sanitizer builds), runs the
# C tests and the busted specs (through the `retort` host) under ASan/UBSan, then the specs again
# on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test build
scripts/setup.sh build-asan -DRETORT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export OMP_WAIT_POLICY=PASSIVE
# LeakSanitizer: OpenBLAS/libgomp keep per-thread buffers until exit; they are not ours.
export ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/c/lsan.supp
echo "== C tests and Lua specs under ASan/UBSan =="
ctest --test-dir build-asan --output-on-failure
echo "== Lua specs (release build) =="
ctest --test-dir build --output-on-failure -R lua_specs
