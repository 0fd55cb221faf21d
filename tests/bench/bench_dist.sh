#!/usr/bin/env bash
# Data-parallel training on this machine: examples/s of the MLP teacher's (784-1200-1200-10) and the
# CNN's (recipes/train_teacher.lua's) training step, 2 ranks x 1 thread against 1 rank x 1 thread (the
# scaling efficiency: examples/s of 2 ranks over twice those of 1), and against PyTorch's
# DistributedDataParallel on gloo in the same configuration, measured in the same run; then one step's
# gradient exchange against what its message sizes allow, and a 10 MB all-reduce's bandwidth.
# The 1-rank figure is rank 0 alone inside the same job (the other rank waiting), measured in rounds
# alternating with the 2-rank steps, best of each: other load on the machine weighs on both alike.
# A benchmark, not a test: it prints figures and ratios, and asserts nothing.
#
#   tests/bench/bench_dist.sh [BUILD_DIR]          (default: build; needs mpirun, and /usr/bin/python3 with
#                                                  torch for the PyTorch side)
#   BATCH=128 MLP_STEPS=20 CNN_STEPS=4 tests/bench/bench_dist.sh build
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
bin="$build/bin/retort"
batch="${BATCH:-128}"
mlp_steps="${MLP_STEPS:-20}"
cnn_steps="${CNN_STEPS:-4}"
cores=$(getconf _NPROCESSORS_ONLN)
mpi=(mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1)
export OMP_NUM_THREADS=1

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($cores cores; load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "batch $batch per rank, 1 thread per rank"
have_torch=1
/usr/bin/python3 -c "import torch.distributed as d; assert d.is_gloo_available()" 2>/dev/null || have_torch=0

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'; }

for model in mlp cnn; do
  steps=$mlp_steps; [ "$model" = cnn ] && steps=$cnn_steps
  ours=$("${mpi[@]}" -np 2 "$bin" tests/bench/bench_dist.lua step "$model" "$batch" "$steps")
  echo "$ours" | sed "s/^/$model retort /"
  if [ "$have_torch" = 1 ]; then
    theirs=$(/usr/bin/python3 tests/bench/torch_ddp_step.py "$model" "$batch" "$steps" 2)
    echo "$theirs" | sed "s/^/$model torch DDP (gloo) /"
    echo "$model retort / torch, 2 ranks (examples/s): $(ratio "$(echo "$ours" | grep ranks: | field examples_per_s)" \
      "$(echo "$theirs" | grep ranks: | field examples_per_s)")"
  else
    echo "$model torch: skipped (no /usr/bin/python3 with torch.distributed and gloo)"
  fi
done
for model in mlp cnn; do
  echo "$model gradient exchange, 2 ranks: $("${mpi[@]}" -np 2 "$bin" tests/bench/bench_dist.lua allreduce "$model" | tr '\n' ' ')"
done
