#!/usr/bin/env bash
# Packs what a lent GPU machine needs to test and benchmark retort's CUDA backend into .gpu/
# (git-ignored; carried with the device tool's `carry`). That machine has nvcc, CUDA's libraries,
# Python with PyTorch, but no Lua, OpenBLAS or HDF5 and no package registry, so retort is built
# HERE (Debian 12; its glibc is older than the lent machine's, so the binaries run there) and the
# shared libraries it links, other than glibc's, the C++ runtime's and CUDA's (all there, and
# newer), travel with it, compressed.
#   tests/bench/gpu/pack.sh            # then: run(command="bash tests/bench/gpu/run.sh test bench recipes", carry=[".gpu"])
set -euo pipefail
cd "$(dirname "$0")/../../.."
scripts/setup.sh build-gpu -DRETORT_CUDA=ON >/dev/null
rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/lib
cp build-gpu/bin/retort build-gpu/tests/test_cuda .gpu/stage/bin/
# every shared library the programs load, except the C library's own and CUDA's (the lent machine has those)
for exe in .gpu/stage/bin/*; do ldd "$exe"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so|/usr/local/cuda|libcuda\.so' |
  while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
tar -cJf .gpu/retort.tar.xz -C .gpu/stage .
rm -rf .gpu/stage
# the dataset (already gzip'ed: stored as it is)
mkdir -p .gpu/data/fashion-mnist
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/fashion-mnist/
du -sh .gpu
echo "pack: ready; carry .gpu and run: bash tests/bench/gpu/run.sh test bench recipes"
