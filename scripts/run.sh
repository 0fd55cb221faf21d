#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the Hinton KD recipe end to end on
# Fashion-MNIST: a CNN teacher (5 epochs), the 784-800-800-10 student alone, and the same student
# distilled from the teacher's cached soft targets (T = 8, alpha = 0.3), printing the three test
# accuracies (a few minutes on 2 cores), and exports the distilled student as ONNX
# (runs/quickstart-kd/student.onnx). Extra arguments go to the recipe and override these (e.g.
# --seeds=3, or the paper's MLP teacher: --teacherModel=mlp --T=20 --alpha=0.9 --weightDecay=5e-4;
# it starts over each time (--overwrite); add --resume to continue an interrupted run instead).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/bin/retort run recipes/kd.lua --dir=runs/quickstart-kd --teacherModel=cnn --teacherEpochs=5 --T=8 --alpha=0.3 \
   --weightDecay=0 --cache=auto --export=runs/quickstart-kd/student.onnx --overwrite "$@"
