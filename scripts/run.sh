#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the demo recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/bin/retort run recipes/demo_fit.lua "$@"
