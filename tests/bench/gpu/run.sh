#!/usr/bin/env bash
# Runs on the lent GPU machine, from the repository root, with .gpu/ carried (see pack.sh):
#   bash tests/bench/gpu/run.sh test        # tests/c/test_cuda: every kernel against the CPU backend
#                                           # (on a failure, once more without cuBLASLt and synchronised)
#   bash tests/bench/gpu/run.sh bench       # tests/bench/bench_gpu.lua against PyTorch on this GPU
#   bash tests/bench/gpu/run.sh recipes     # recipes/compare.lua, every method, one epoch, --device=cuda
#   bash tests/bench/gpu/run.sh sanitize    # test_cuda under compute-sanitizer's memcheck, then racecheck
#   bash tests/bench/gpu/run.sh lua FILE... # any Lua script through the packed retort
# Several words run in turn. Logs go to $OUT when it is set (the device tool's output folder). Each
# step has a time limit (seconds; RETORT_GPU_LIMIT_<STEP> overrides it), so that a hang costs that
# step and not the call's others: test 150, bench 300, recipes 240, sanitize 240 for each tool.
# RETORT_TEST_ONLY=test_softmax,... narrows test and sanitize to those tests of test_cuda.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
root=/tmp/retort-gpu
if [ ! -x $root/bin/retort ]; then
  mkdir -p $root && tar -xJf .gpu/retort.tar.xz -C $root || exit 1
fi
# PyTorch (the benchmark's reference) must not see the packed libraries: it gets the original path
python="env LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} python3"
export LD_LIBRARY_PATH=$root/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# CUDA's side of what retort loads (the runtime, NCCL, and cuBLAS/cuBLASLt, opened at the first
# product) is not packed, and where the lent machine keeps it is not known here: NCCL, for one, may
# only be in PyTorch's wheels. Each library the loader cannot find is looked for and its folder added.
findable() {
  ldconfig -p | grep -q "[[:space:]]$1 " && return 0
  local d; for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$1" ] && return 0; done; return 1
}
site=$($python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
major=$(ldd $root/bin/retort | sed -n 's/^[[:space:]]*libcudart\.so\.\([0-9]*\) .*/\1/p')
for so in $(ldd $root/bin/retort $root/bin/test_cuda | awk '/not found/ {print $1}' | sort -u) \
          libcublas.so.$major libcublasLt.so.$major; do
  findable "$so" && continue
  lib=$(find /usr/local/cuda*/ ${site:+$site/nvidia} -name "$so" 2>/dev/null | head -1)
  if [ -n "$lib" ]; then
    export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:${lib%/*}; echo "run.sh: $so from ${lib%/*}"
  else
    echo "run.sh: $so is nowhere on this machine (looked in /usr/local/cuda*/ and ${site:-the packages of python3})"
  fi
done
export RETORT_LUA_PATH=$PWD/lua RETORT_DATA_ROOT=$PWD/.gpu/data
out=${OUT:-/tmp/retort-gpu/out}; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
status=0
# limited NAME DEFAULT_S CMD...: CMD under the step's time limit; says so when the limit stopped it
limited() {
  local name=$1 var="RETORT_GPU_LIMIT_${1^^}"; local limit=${!var:-$2}; shift 2
  timeout -k 10 "$limit" "$@"; local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "run.sh: $name stopped at its limit of $limit s (a hang?)" >&2; fi
  return $rc
}
while [ $# -gt 0 ]; do
  case "$1" in
    test) limited test 150 $root/bin/test_cuda 2>&1 | tee $out/test_cuda.log | tail -40; rc=${PIPESTATUS[0]}
          status=$((status | rc))
          if [ $rc -ne 0 ]; then # a lent GPU is rare: gather the diagnostics in the same call
            echo "== again without cuBLASLt's bias epilogue, every kernel waited for (RETORT_CUDA_NO_LT=1 RETORT_CUDA_SYNC=1) =="
            RETORT_CUDA_NO_LT=1 RETORT_CUDA_SYNC=1 limited test 150 $root/bin/test_cuda > $out/test_cuda_no_lt_sync.log 2>&1
            grep -E '^(FAIL|  FAIL)|passed,' $out/test_cuda_no_lt_sync.log | tail -20
          fi ;;
    bench) limited bench 300 $root/bin/retort tests/bench/bench_gpu.lua "--python=$python" 2>&1 | tee $out/bench_gpu.log
           status=$((status | ${PIPESTATUS[0]})) ;;
    recipes) limited recipes 240 $root/bin/retort recipes/compare.lua --device=cuda --teacherEpochs=2 --epochs=1 \
               --initEpochs=1 --dir=/tmp/retort-gpu/runs --overwrite 2>&1 | tee $out/recipes.log | grep -E '\||failed|retort:'
             status=$((status | ${PIPESTATUS[0]})) ;;
    sanitize) for tool in memcheck racecheck; do
                echo "== compute-sanitizer --tool $tool (log: $out/sanitize_$tool.log) =="
                limited sanitize 240 compute-sanitizer --tool $tool --error-exitcode 3 $root/bin/test_cuda \
                  > $out/sanitize_$tool.log 2>&1; rc=$?; status=$((status | rc))
                grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|passed,|not supported|Error|run.sh:' $out/sanitize_$tool.log | tail -8
              done ;;
    lua) shift; $root/bin/retort "$@"; exit $? ;;
    *) echo "run.sh: unknown step '$1' (test, bench, recipes, sanitize, lua FILE...)"; exit 2 ;;
  esac
  shift
done
exit $status
