#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the CNN teacher on Fashion-MNIST
# briefly (3 epochs, about two minutes on 2 cores), printing its test accuracy. Extra arguments
# go to the recipe (e.g. --epochs=15 for the full run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/bin/retort run recipes/train_teacher.lua --epochs=3 --dir=runs/quickstart-teacher "$@"
