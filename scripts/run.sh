#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the Hinton KD recipe end to end on
# Fashion-MNIST: a 784-1200-1200-10 teacher, the 784-800-800-10 student alone, and the same student
# distilled from the teacher (T = 20), printing the three test accuracies (a few minutes on 2 cores).
# Extra arguments go to the recipe (e.g. --seeds=3, --teacherModel=cnn --teacher=runs/cnn-teacher/best.h5).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/bin/retort run recipes/kd.lua --dir=runs/quickstart-kd "$@"
