#!/usr/bin/env bash
# Seed corpora of the fuzz targets, made at run time (nothing is committed):
#   tests/fuzz/make_corpus.sh OUT RETORT_BIN
# OUT/<target>/ for each target (idx, npy, cifar, image, checkpoint, cache, hdf5_dataset): small
# valid files written by other implementations (make_corpus.py: the standard library, numpy, PIL,
# h5py through /usr/bin/python3; a missing package skips its files) and by retort itself
# (make_corpus.lua, run by RETORT_BIN: checkpoints, caches, datasets; then h5py copies of the
# checkpoints and caches in HDF5's earliest format, without checksums). OUT is emptied first.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT RETORT_BIN}
retort=${2:?usage: make_corpus.sh OUT RETORT_BIN}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out"
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 "$here/make_corpus.py" "$out"
else
  echo "make_corpus.sh: /usr/bin/python3 is missing: no IDX, npy, CIFAR, image or h5py seeds" >&2
fi
# the host may be the sanitized one of the fuzz build: its exit-time leak check is not this script's business
ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 "$retort" "$here/make_corpus.lua" "$out"
# h5py copies of those checkpoints and caches, without HDF5's metadata checksums
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 "$here/make_corpus.py" --resave "$out"
fi
for t in idx npy cifar image checkpoint cache hdf5_dataset; do
  mkdir -p "$out/$t"
done
