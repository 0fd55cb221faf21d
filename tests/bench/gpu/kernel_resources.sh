#!/usr/bin/env bash
# Registers and spills of every CUDA kernel, from ptxas (no GPU needed, only nvcc). A kernel launched
# with more threads than its registers allow fails on a GPU with "too many resources requested for
# launch", which the simulator cannot show: compare each kernel's "max threads" with the block size
# its launch uses. Spills go to local memory (slow); a few bytes are harmless.
#   tests/bench/gpu/kernel_resources.sh [ARCH=sm_90] [ROWS=25]
set -euo pipefail
cd "$(dirname "$0")/../../.."
arch=${1:-sm_90}
rows=${2:-25}
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
[ -x "$nvcc" ] || { echo "kernel_resources: no nvcc at $nvcc (set NVCC=)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in core/src/backend/cuda/*.cu; do
  b=$(basename "$f" .cu)
  # the sonames and directory only name where cuBLAS is opened at run time; any string compiles
  "$nvcc" -arch="$arch" -O3 -std=c++17 -DRETORT_HAVE_CUDA=1 -D_POSIX_C_SOURCE=200809L \
    -DRETORT_CUBLAS_SONAME='"-"' -DRETORT_CUBLASLT_SONAME='"-"' -DRETORT_CUBLAS_DIR='"-"' \
    -Icore/include -Icore/src -Xptxas -v -c "$f" -o "$out/$b.o" >"$out/$b.log" 2>&1 &
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n; done
done
wait
# ptxas prints, per kernel: "Compiling entry function 'NAME'", then its spills, then "Used N registers"
awk '/Compiling entry function/ { match($0, /\047[^\047]*\047/); fn = substr($0, RSTART + 1, RLENGTH - 2); sp = 0 }
     /spill stores/ { sp = $5 }
     /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) if ($i == "Used") r = $(i + 1); print r, sp, fn }' \
  "$out"/*.log | sort -k1,1nr -k3 | uniq >"$out/all"
echo "$(wc -l <"$out/all") kernels for $arch; the $rows with the most registers:"
printf '%9s %12s %11s  %s\n' registers spill_stores max_threads kernel
head -n "$rows" "$out/all" | while read -r regs spill fn; do
  # registers are allocated per warp in units of 256 (8 per thread); a block has 65536
  per_warp=$(( (regs + 7) / 8 * 8 * 32 ))
  max=$(( 65536 / per_warp * 32 ))
  [ "$max" -gt 1024 ] && max=1024
  printf '%9s %12s %11s  %s\n' "$regs" "$spill" "$max" "$(echo "$fn" | c++filt | cut -c1-120)"
done
spilled=$(awk '$2 > 0' "$out/all" | wc -l)
echo "$spilled kernels spill; the largest stores $(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$out/all") bytes"
echo "$(awk '$1 > 64' "$out/all" | wc -l) kernels use more than 64 registers, so cannot launch with 1024 threads: each must launch with at most its max_threads"
