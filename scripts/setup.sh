#!/usr/bin/env bash
# Installs the Debian packages retort needs (only the missing ones) and builds it.
#   scripts/setup.sh [--test] [build-dir] [extra cmake args...]
# --test also installs what the test suite uses to read files the way other tools do
# (h5dump, h5py, numpy, PIL, and PyTorch for the architecture twins). Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-busted libopenblas-dev libhdf5-dev
          libreadline-dev zlib1g-dev libpng-dev libjpeg-dev luarocks dataset-fashion-mnist)
# ONNX export: C generated from libonnx-dev's onnx.proto by protoc-c, linked with libprotobuf-c
packages+=(protobuf-c-compiler libprotobuf-c-dev libonnx-dev)
# distributed training: OpenMPI launches the ranks (mpirun) and carries CPU tensors
packages+=(libopenmpi-dev openmpi-bin)
# CPU convolutions through oneDNN (Debian's build runs on OpenMP, retort's one thread pool)
packages+=(libdnnl-dev)
if [ "${1:-}" = "--test" ]; then
  # independent writers and readers the tests compare against: h5dump, h5py, numpy, PIL
  packages+=(hdf5-tools python3-h5py python3-numpy python3-pil python3-torch)
  # the consumers the exported ONNX files are checked by: onnx.checker, shape inference, OpenCV's DNN
  packages+=(python3-onnx python3-opencv)
  # the Lua linter scripts/test.sh runs (luacheck)
  packages+=(lua-check)
  # the fuzz step (tests/fuzz): clang with libFuzzer and the sanitizer runtimes, and clang's OpenMP
  packages+=(clang libclang-rt-14-dev libomp-dev)
  shift
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build="${1:-build}"; shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
